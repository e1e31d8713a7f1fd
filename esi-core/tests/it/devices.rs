//! Simulated routers: transaction semantics, retries, operational state, registry, secrets.

use std::sync::Arc;
use std::time::Duration;

use esi_core::collector::{Collector, CollectorConfig, ManualClock, MonitoringWrite};
use esi_core::device::{
    load_with_retry, BgpState, ConfigChange, Credentials, Device, DeviceAddress, DeviceError,
    DeviceRegistry, OperStatus, RetryPolicy, SimFabric, SimRouter, VrrpState,
};
use esi_core::exec::monitor::Timestamp;
use esi_core::secret::Secret;
use serde_json::json;

fn change(resource: &str, text: &str) -> ConfigChange {
    ConfigChange {
        resource: resource.into(),
        merge_text: text.into(),
        ..Default::default()
    }
}

fn vrrp(addr: &str, prio: u32) -> String {
    format!(
        "interfaces {{ ae0 {{ unit 5 {{ family inet {{ address {addr}/24 {{ vrrp-group 9 {{ virtual-address 10.0.0.1; priority {prio}; }} }} }} }} }} }}"
    )
}

#[tokio::test]
async fn vrrp_election_follows_priority_and_interface_state() {
    let fabric = SimFabric::new();
    let a = fabric.add(SimRouter::new("a", "192.0.2.1", 830));
    let b = fabric.add(SimRouter::new("b", "192.0.2.2", 830));
    a.load_config(&change("x", &vrrp("10.0.0.2", 150)))
        .await
        .unwrap();
    // alone: master
    assert_eq!(a.vrrp_status("ae0.5", 9).await.unwrap(), VrrpState::Master);
    b.load_config(&change("x", &vrrp("10.0.0.3", 200)))
        .await
        .unwrap();
    assert_eq!(a.vrrp_status("ae0.5", 9).await.unwrap(), VrrpState::Backup);
    assert_eq!(b.vrrp_status("ae0.5", 9).await.unwrap(), VrrpState::Master);
    // b's unit disabled → INIT, a takes over
    b.load_config(&change("y", "interfaces { ae0 { unit 5 { disable; } } }"))
        .await
        .unwrap();
    assert_eq!(b.vrrp_status("ae0.5", 9).await.unwrap(), VrrpState::Init);
    assert_eq!(a.vrrp_status("ae0.5", 9).await.unwrap(), VrrpState::Master);
    assert_eq!(b.interface_status("ae0.5").await.unwrap(), OperStatus::Down);
    assert_eq!(b.interface_status("ae0").await.unwrap(), OperStatus::Up);
    assert!(matches!(
        a.vrrp_status("ae0.5", 10).await,
        Err(DeviceError::NotConfigured { .. })
    ));
    assert!(matches!(
        a.interface_status("xe-9/9/9").await,
        Err(DeviceError::NotConfigured { .. })
    ));
    // equal priorities: the higher address wins
    b.remove_config(
        "y",
        &[vec![
            "interfaces".into(),
            "ae0".into(),
            "unit".into(),
            "5".into(),
            "disable".into(),
        ]],
    )
    .await
    .unwrap();
    b.load_config(&change("x", &vrrp("10.0.0.3", 150)))
        .await
        .unwrap();
    assert_eq!(b.vrrp_status("ae0.5", 9).await.unwrap(), VrrpState::Master);
    assert_eq!(a.vrrp_status("ae0.5", 9).await.unwrap(), VrrpState::Backup);
}

#[tokio::test]
async fn bgp_and_physical_interfaces() {
    let r = SimRouter::new("r", "192.0.2.1", 830).with_physical_interfaces(["ge-0/0/0"]);
    assert_eq!(
        r.interface_status("ge-0/0/0").await.unwrap(),
        OperStatus::Up
    );
    r.set_interface_down("ge-0/0/0", true);
    assert_eq!(
        r.interface_status("ge-0/0/0").await.unwrap(),
        OperStatus::Down
    );
    r.load_config(&change(
        "bgp",
        "routing-instances { V { protocols { bgp { group G { neighbor 10.0.0.9 { authentication-key \"k\"; } } } } } }",
    ))
    .await
    .unwrap();
    assert_eq!(
        r.bgp_peer_status("V", "10.0.0.9").await.unwrap(),
        BgpState::Established
    );
    assert!(r.bgp_peer_status("V", "10.0.0.8").await.is_err());
    assert!(r.bgp_peer_status("", "10.0.0.9").await.is_err());
}

#[tokio::test]
async fn failed_load_discards_and_unlocks() {
    let r = SimRouter::new("r", "192.0.2.1", 830);
    let err = r.load_config(&change("bad", "a { b;")).await.unwrap_err();
    assert!(matches!(err, DeviceError::LoadFailed { ref resource, .. } if resource == "bad"));
    assert!(!err.is_retryable());
    assert_eq!(
        r.rpc_log(),
        [
            "discard-changes",
            "lock",
            "load-configuration action=merge format=text",
            "discard-changes",
            "unlock"
        ]
    );
    let mut c = change("cmd", "f { term a { then accept; } }");
    c.additional_commands = vec!["rollback 3".into()];
    assert!(matches!(
        r.load_config(&c).await,
        Err(DeviceError::LoadFailed { .. })
    ));
    assert_eq!(r.config_text(), "");
    assert!(r.commits().is_empty());
}

#[tokio::test(start_paused = true)]
async fn lock_contention_is_retried_within_the_budget() {
    let r = Arc::new(SimRouter::new("r", "192.0.2.1", 830));
    r.hold_lock(true);
    let policy = RetryPolicy {
        budget: Duration::from_secs(20),
        interval: Duration::from_secs(5),
    };
    let r2 = Arc::clone(&r);
    let release = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(12)).await;
        r2.hold_lock(false);
    });
    let t0 = tokio::time::Instant::now();
    let info = load_with_retry(r.as_ref(), &change("x", "a;"), policy)
        .await
        .unwrap();
    assert_eq!(info.sequence, 1);
    assert_eq!(t0.elapsed(), Duration::from_secs(15));
    release.await.unwrap();
    r.hold_lock(true);
    let err = load_with_retry(r.as_ref(), &change("x", "b;"), policy)
        .await
        .unwrap_err();
    assert!(
        matches!(err, DeviceError::RetriesExhausted { attempts: 5, .. }),
        "{err}"
    );
    // configuration errors are never retried
    r.hold_lock(false);
    r.fail_next_commits(1, "bad");
    let t1 = tokio::time::Instant::now();
    assert!(matches!(
        load_with_retry(r.as_ref(), &change("x", "c;"), policy).await,
        Err(DeviceError::CommitFailed { .. })
    ));
    assert_eq!(t1.elapsed(), Duration::ZERO);
}

#[tokio::test]
async fn registry_resolves_by_address_and_checks_credentials() {
    let fabric = SimFabric::new();
    fabric.add(
        SimRouter::new("edge", "192.0.2.1", 830)
            .with_login("esi", Secret::new("pw".into()))
            .with_community(Secret::new("ro".into())),
    );
    let addr = |port| DeviceAddress {
        host: "192.0.2.1".into(),
        port,
    };
    let login = |pw: &str| Credentials::Login {
        username: "esi".into(),
        password: Secret::new(pw.into()),
    };
    let d = fabric
        .connect(&addr(Some(830)), &login("pw"))
        .await
        .unwrap();
    assert_eq!(d.name(), "edge");
    assert!(matches!(
        fabric.connect(&addr(Some(22)), &login("pw")).await,
        Err(DeviceError::UnknownDevice { .. })
    ));
    let e = fabric
        .connect(&addr(None), &login("nope"))
        .await
        .err()
        .unwrap();
    assert!(matches!(e, DeviceError::AuthenticationFailed { .. }));
    assert!(fabric
        .connect(
            &addr(None),
            &Credentials::Community(Secret::new("ro".into()))
        )
        .await
        .is_ok());
    let shown = format!("{:?} {:?} {e}", login("pw"), fabric);
    assert!(
        !shown.contains("pw\"") && !shown.contains("\"pw"),
        "{shown}"
    );
    // auto fabrics create routers on first contact
    let auto = SimFabric::auto();
    auto.connect(&addr(Some(830)), &Credentials::None)
        .await
        .unwrap();
    assert_eq!(auto.configurations().len(), 1);
}

#[tokio::test]
async fn collector_fail_threshold_and_tsdb_only_targets() {
    let fabric = Arc::new(SimFabric::new());
    let r = fabric.add(SimRouter::new("edge", "192.0.2.1", 830));
    let t0 = Timestamp::parse("2024-05-01T10:00:00Z").unwrap();
    let clock = Arc::new(ManualClock::new(t0));
    let collector = Collector::new(fabric.clone(), clock.clone(), CollectorConfig::default());
    let resp = collector
        .register(
            &json!({"type": "snmp_device", "resource_type": "edge_routers", "resource_id": "e1",
            "version": 2, "field_name": "router",
            "properties": {"device_ip": "192.0.2.1", "community_name": "c"},
            "syncer_properties": {"etcd": {"status": {"key": "router"}}}}),
        )
        .unwrap();
    assert_eq!(resp["properties"]["community_name"], json!("******"));
    collector
        .register(&json!({"type": "snmp_ports_metric", "resource_type": "vpn_gateways", "resource_id": "v1",
            "version": 1, "field_name": "primary_router",
            "properties": {"device_ip": "192.0.2.1", "if_name": "ae0.5"},
            "syncer_properties": {"tsdb": {}}}))
        .unwrap();
    assert_eq!(collector.next_due(), Some(t0.plus_seconds(60.0)));
    let w = collector.poll(t0.plus_seconds(60.0)).await;
    assert_eq!(w.len(), 1);
    assert_eq!(w[0].etcd_text().unwrap(), r#"{"router":"UP","version":2}"#);
    r.set_unreachable(true);
    assert!(
        collector.poll(t0.plus_seconds(120.0)).await.is_empty(),
        "one failure is not published"
    );
    let w = collector.poll(t0.plus_seconds(180.0)).await;
    assert_eq!(
        w[0].etcd_text().unwrap(),
        r#"{"router":"FAIL","version":2}"#
    );
    r.set_unreachable(false);
    let w = collector.poll_all(t0.plus_seconds(181.0)).await;
    assert_eq!(w[0].etcd_text().unwrap(), r#"{"router":"UP","version":2}"#);
    let id = resp["id"].as_str().unwrap();
    assert!(collector.unregister(id));
    assert!(!collector.unregister(id));
    let w = collector.poll(t0.plus_seconds(240.0)).await;
    assert_eq!(
        w,
        [MonitoringWrite::Delete {
            key: "/monitoring/v2.0/edge_routers/e1".into()
        }]
    );
    assert!(collector
        .register(
            &json!({"type": "snmp_device", "resource_type": "x", "resource_id": "y",
            "syncer_properties": {"etcd": {"status": {}}}})
        )
        .is_err());
}

/// Every recorded NETCONF composition, merge-loaded into an empty simulated router, shows the
/// same normalised set lines as the composition itself.
#[test]
#[ignore = "needs the conformance corpus: ../shared/conformance beside the repo, or ESI_CONFORMANCE=<dir>"]
fn recorded_compositions_load_into_a_sim_router_unchanged() {
    use esi_core::device::JunosConfig;
    use esi_core::exec::junos::set_lines::set_line_set;
    use esi_core::exec::junos::NetconfProperties;
    let mut files = Vec::new();
    let mut stack = vec![crate::corpus().join("cases")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.to_string_lossy().contains("/exec/netconf/")
                && p.extension().is_some_and(|x| x == "json")
            {
                files.push(p);
            }
        }
    }
    assert!(!files.is_empty());
    for f in &files {
        let case: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(f).unwrap()).unwrap();
        let props = NetconfProperties::from_value("r", &case["input"]["properties"]).unwrap();
        let composed = props.compose();
        let loaded = JunosConfig::parse(&composed.text).unwrap().to_text(true);
        assert_eq!(
            set_line_set(&loaded),
            set_line_set(&composed.text),
            "{}",
            f.display()
        );
    }
}
