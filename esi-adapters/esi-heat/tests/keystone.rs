//! Against the real Keystone + Heat of `.ci/services/31-keystone-heat.sh`: password and
//! application-credential login, endpoint from the catalog, token renewal on 401 and on expiry,
//! and wrong credentials rejected naming Keystone.

mod common;

use std::time::{Duration, Instant};

use common::*;
use esi_core::exec::stack::StackOperation;
use esi_core::heat::{Heat, HeatError};
use esi_core::secret::Secret;
use esi_heat::{Auth, HeatConfig, OpenStackHeat};
use serde_json::json;

fn password_config() -> HeatConfig {
    let mut c = HeatConfig::from_vars(keystone_vars).expect("KS_* variables");
    assert!(matches!(c.auth, Auth::Password { .. }), "{:?}", c.auth);
    c.poll.initial = Duration::from_millis(200);
    c
}

fn appcred_config() -> HeatConfig {
    let mut c = HeatConfig::from_vars(|k| match k {
        "OS_USERNAME" | "OS_PASSWORD" | "OS_PROJECT_NAME" => None,
        "OS_APPLICATION_CREDENTIAL_ID" | "OS_APPLICATION_CREDENTIAL_SECRET" => {
            Some(need(&format!("KS_{k}"), KEYSTONE))
        }
        _ => keystone_vars(k),
    })
    .expect("KS_* variables");
    assert!(
        matches!(c.auth, Auth::ApplicationCredential { .. }),
        "{:?}",
        c.auth
    );
    c.poll.initial = Duration::from_millis(200);
    c
}

async fn lifecycle(heat: &OpenStackHeat, prefix: &str) {
    let name = unique(prefix);
    let out = heat
        .create(&request(
            &name,
            StackOperation::Create,
            VALUES,
            json!({"vlan": 11}),
        ))
        .await
        .unwrap();
    assert_eq!(out.status, "CREATE_COMPLETE", "{}", out.reason);
    assert_eq!(output(&out.outputs, "vlan"), json!(11));
    let out = heat
        .update(&request(
            &name,
            StackOperation::Update,
            VALUES,
            json!({"vlan": 12}),
        ))
        .await
        .unwrap();
    assert_eq!(out.status, "UPDATE_COMPLETE", "{}", out.reason);
    assert_eq!(output(&out.outputs, "vlan"), json!(12));
    assert_eq!(heat.delete(&name).await.unwrap().status, "DELETE_COMPLETE");
    assert_eq!(heat.get(&name).await.unwrap(), None);
}

#[tokio::test]
#[ignore = "needs keystone+heat: bash .ci/services/31-keystone-heat.sh start"]
async fn password_login_finds_heat_in_the_catalog() {
    let heat = OpenStackHeat::new(password_config()).unwrap();
    lifecycle(&heat, "ks_pw").await;
}

#[tokio::test]
#[ignore = "needs keystone+heat: bash .ci/services/31-keystone-heat.sh start"]
async fn application_credential_login() {
    let heat = OpenStackHeat::new(appcred_config()).unwrap();
    lifecycle(&heat, "ks_ac").await;
}

#[tokio::test]
#[ignore = "needs keystone+heat: bash .ci/services/31-keystone-heat.sh start"]
async fn a_revoked_token_is_renewed_once_and_the_request_replayed() {
    // (project by id this time)
    let cfg = HeatConfig::from_vars(keystone_vars_by_id).unwrap();
    assert!(matches!(
        &cfg.auth,
        Auth::Password {
            project: esi_heat::Named::Id(_),
            ..
        }
    ));
    let heat = OpenStackHeat::new(cfg).unwrap();
    let name = unique("ks_revoked");
    let out = heat
        .create(&request(
            &name,
            StackOperation::Create,
            VALUES,
            json!({"vlan": 1}),
        ))
        .await
        .unwrap();
    assert_eq!(out.status, "CREATE_COMPLETE", "{}", out.reason);
    let before = heat.token_renewals();
    heat.revoke_cached_token().await.unwrap();
    // Heat answers 401 to the revoked token; the client renews it and replays the request
    let out = heat
        .update(&request(
            &name,
            StackOperation::Update,
            VALUES,
            json!({"vlan": 2}),
        ))
        .await
        .unwrap();
    assert_eq!(out.status, "UPDATE_COMPLETE", "{}", out.reason);
    assert_eq!(heat.token_renewals(), before + 1);
    assert_eq!(heat.delete(&name).await.unwrap().status, "DELETE_COMPLETE");
}

#[tokio::test]
#[ignore = "needs keystone+heat: bash .ci/services/31-keystone-heat.sh start"]
async fn a_token_that_expires_mid_run_is_renewed_without_a_failure() {
    let lifetime: u64 = need("KS_TOKEN_EXPIRATION", KEYSTONE).parse().unwrap();
    assert!(
        lifetime <= 60,
        "KS_TOKEN_EXPIRATION={lifetime}: start 31-keystone-heat.sh with CI_KS_TOKEN_EXPIRATION=30 (its default)"
    );
    let heat = OpenStackHeat::new(password_config()).unwrap();
    let name = unique("ks_expiry");
    let out = heat
        .create(&request(
            &name,
            StackOperation::Create,
            VALUES,
            json!({"vlan": 0}),
        ))
        .await
        .unwrap();
    assert_eq!(out.status, "CREATE_COMPLETE", "{}", out.reason);
    let start = Instant::now();
    let mut vlan = 1;
    // keep updating past the token's lifetime
    while start.elapsed() < Duration::from_secs(lifetime + 5) {
        let out = heat
            .update(&request(
                &name,
                StackOperation::Update,
                VALUES,
                json!({"vlan": vlan}),
            ))
            .await
            .unwrap();
        assert_eq!(out.status, "UPDATE_COMPLETE", "{}", out.reason);
        assert_eq!(output(&out.outputs, "vlan"), json!(vlan));
        vlan += 1;
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    assert!(heat.token_renewals() >= 1, "no renewal in {vlan} updates");
    assert_eq!(heat.delete(&name).await.unwrap().status, "DELETE_COMPLETE");
}

#[tokio::test]
#[ignore = "needs keystone+heat: bash .ci/services/31-keystone-heat.sh start"]
async fn a_wrong_password_is_rejected_naming_keystone_without_retrying() {
    let mut cfg = password_config();
    if let Auth::Password { password, .. } = &mut cfg.auth {
        *password = Secret::new("wrong-password-xyz".into());
    }
    let heat = OpenStackHeat::new(cfg).unwrap();
    let name = unique("ks_wrong");
    let t = Instant::now();
    let err = heat
        .create(&request(
            &name,
            StackOperation::Create,
            VALUES,
            json!({"vlan": 1}),
        ))
        .await
        .unwrap_err();
    match &err {
        HeatError::Rejected { stack, reason } => {
            assert_eq!(stack, &name);
            assert!(reason.contains("keystone"), "{reason}");
            assert!(reason.contains("401"), "{reason}");
        }
        other => panic!("not rejected: {other:?}"),
    }
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "retry storm? {:?}",
        t.elapsed()
    );
    let shown = format!("{err} {err:?} {heat:?}");
    assert!(!shown.contains("wrong-password-xyz"), "{shown}");
    assert_eq!(heat.token_renewals(), 0);
}

#[tokio::test]
#[ignore = "needs keystone+heat: bash .ci/services/31-keystone-heat.sh start"]
async fn a_member_on_another_project_is_rejected_by_heat() {
    // the demo user's token used against the admin project's Heat URL: 401/403, Rejected
    let admin_url = need("KS_HEAT_URL", KEYSTONE);
    let cfg = HeatConfig::from_vars(|k| match k {
        "OS_USERNAME" => Some(need("KS_DEMO_USERNAME", KEYSTONE)),
        "OS_PASSWORD" => Some(need("KS_DEMO_PASSWORD", KEYSTONE)),
        "OS_PROJECT_NAME" => Some(need("KS_DEMO_PROJECT_NAME", KEYSTONE)),
        "OS_PROJECT_ID" => None,
        "HEAT_URL" => Some(admin_url.clone()),
        _ => keystone_vars(k),
    })
    .unwrap();
    let heat = OpenStackHeat::new(cfg).unwrap();
    let name = unique("ks_demo");
    let err = heat
        .create(&request(
            &name,
            StackOperation::Create,
            VALUES,
            json!({"vlan": 1}),
        ))
        .await
        .unwrap_err();
    assert!(matches!(err, HeatError::Rejected { .. }), "{err:?}");
}
