//! Against the real Heat of `.ci/services/30-heat.sh` (noauth, PostgreSQL): stack lifecycle,
//! failures, rejections, 409 races, and device resources driven by esi.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use esi_core::collector::{Collector, CollectorConfig, ManualClock};
use esi_core::device::{SimFabric, SimRouter};
use esi_core::exec::junos::set_lines::set_lines;
use esi_core::exec::monitor::Timestamp;
use esi_core::exec::stack::StackOperation;
use esi_core::heat::{Heat, HeatError, LocalHeat};
use esi_core::secret::Secret;
use esi_heat::{DeviceResources, OpenStackHeat};
use serde_json::json;

const IGNORE: &str = "needs heat: bash .ci/services/30-heat.sh start";

fn heat() -> OpenStackHeat {
    OpenStackHeat::new(noauth()).expect("config")
}

#[tokio::test]
#[ignore = "needs heat: bash .ci/services/30-heat.sh start"]
async fn create_update_get_delete_with_outputs() {
    let _ = IGNORE;
    let heat = heat();
    let name = unique("life");
    let out = heat
        .create(&request(
            &name,
            StackOperation::Create,
            VALUES,
            json!({"vlan": 101}),
        ))
        .await
        .unwrap();
    assert_eq!(out.status, "CREATE_COMPLETE", "{}", out.reason);
    assert_eq!(out.reason, "Stack CREATE completed successfully");
    assert_eq!(output(&out.outputs, "vlan"), json!(101));
    assert_eq!(output(&out.outputs, "label"), json!("unit-uplink"));
    // the state documents' shape: output_key, output_value, description, in that order
    let first = out
        .outputs
        .iter()
        .find(|o| o["output_key"] == "vlan")
        .unwrap();
    let keys: Vec<&String> = first.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["output_key", "output_value", "description"]);
    assert_eq!(first["description"], "the vlan");

    let got = heat.get(&name).await.unwrap().expect("stack exists");
    assert_eq!(got.status, "CREATE_COMPLETE");

    // update right after the create: full template and parameters again
    let out = heat
        .update(&request(
            &name,
            StackOperation::Update,
            VALUES,
            json!({"vlan": 102, "name": "core"}),
        ))
        .await
        .unwrap();
    assert_eq!(out.status, "UPDATE_COMPLETE", "{}", out.reason);
    assert_eq!(output(&out.outputs, "vlan"), json!(102));
    assert_eq!(output(&out.outputs, "label"), json!("unit-core"));

    // create of an existing name updates it (idempotent by name)
    let out = heat
        .create(&request(
            &name,
            StackOperation::Create,
            VALUES,
            json!({"vlan": 103}),
        ))
        .await
        .unwrap();
    assert_eq!(out.status, "UPDATE_COMPLETE", "{}", out.reason);
    assert_eq!(output(&out.outputs, "vlan"), json!(103));

    let out = heat.delete(&name).await.unwrap();
    assert_eq!(out.status, "DELETE_COMPLETE", "{}", out.reason);
    assert!(out.outputs.is_empty());
    assert_eq!(heat.get(&name).await.unwrap(), None);
    // deleting a missing stack succeeds
    assert_eq!(heat.delete(&name).await.unwrap().status, "DELETE_COMPLETE");
}

#[tokio::test]
#[ignore = "needs heat: bash .ci/services/30-heat.sh start"]
async fn update_of_a_missing_stack_creates_it_and_a_delete_request_deletes() {
    let heat = heat();
    let name = unique("upd_missing");
    let out = heat
        .update(&request(
            &name,
            StackOperation::Update,
            VALUES,
            json!({"vlan": 7}),
        ))
        .await
        .unwrap();
    assert_eq!(out.status, "CREATE_COMPLETE", "{}", out.reason);
    let mut del = request(&name, StackOperation::Delete, "", json!({}));
    del.template_text = None;
    assert_eq!(heat.update(&del).await.unwrap().status, "DELETE_COMPLETE");
    assert_eq!(heat.get(&name).await.unwrap(), None);
}

#[tokio::test]
#[ignore = "needs heat: bash .ci/services/30-heat.sh start"]
async fn a_stack_heat_fails_is_an_outcome_with_heats_reason() {
    let heat = heat();
    let name = unique("fails");
    let text = "heat_template_version: 2016-10-14
resources:
  broken:
    type: OS::Heat::TestResource
    properties: {value: x, fail: true}
outputs:
  v: {value: {get_attr: [broken, output]}}
";
    let out = heat
        .create(&request(&name, StackOperation::Create, text, json!({})))
        .await
        .unwrap();
    assert_eq!(out.status, "CREATE_FAILED");
    assert!(out.failed());
    assert!(out.reason.contains("resources.broken"), "{}", out.reason);
    // a later good template fixes the failed stack through an update
    let out = heat
        .update(&request(
            &name,
            StackOperation::Update,
            VALUES,
            json!({"vlan": 1}),
        ))
        .await
        .unwrap();
    assert_eq!(out.status, "UPDATE_COMPLETE", "{}", out.reason);
    assert_eq!(heat.delete(&name).await.unwrap().status, "DELETE_COMPLETE");
}

#[tokio::test]
#[ignore = "needs heat: bash .ci/services/30-heat.sh start"]
async fn a_template_heat_rejects_is_rejected_at_once() {
    let heat = heat();
    let name = unique("rejected");
    let text = "heat_template_version: 2013-05-23
resources:
  x:
    type: OS::Contrail::NetconfNamedConfigs
    properties: {device_ip: 192.0.2.1}
";
    let t = Instant::now();
    let err = heat
        .create(&request(&name, StackOperation::Create, text, json!({})))
        .await
        .unwrap_err();
    match &err {
        HeatError::Rejected { stack, reason } => {
            assert_eq!(stack, &name);
            assert!(reason.contains("400"), "{reason}");
            assert!(
                reason.contains("OS::Contrail::NetconfNamedConfigs"),
                "{reason}"
            );
        }
        other => panic!("not rejected: {other:?}"),
    }
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "retried? {:?}",
        t.elapsed()
    );
    assert_eq!(heat.get(&name).await.unwrap(), None, "no stack left");
    // a parameter of the wrong type, too
    let err = heat
        .create(&request(
            &name,
            StackOperation::Create,
            VALUES,
            json!({"vlan": "not-a-number"}),
        ))
        .await
        .unwrap_err();
    assert!(matches!(err, HeatError::Rejected { .. }), "{err:?}");
}

#[tokio::test]
#[ignore = "needs heat: bash .ci/services/30-heat.sh start"]
async fn back_to_back_updates_all_complete() {
    // Heat may answer 409 while it releases the stack lock right after *_COMPLETE: retried
    let heat = heat();
    let name = unique("b2b");
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
    for vlan in 2..6 {
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
    }
    assert_eq!(heat.delete(&name).await.unwrap().status, "DELETE_COMPLETE");
}

#[tokio::test]
#[ignore = "needs heat: bash .ci/services/30-heat.sh start"]
async fn many_stacks_at_once_under_a_small_in_flight_cap() {
    let mut cfg = noauth();
    cfg.max_in_flight = 2;
    let heat = Arc::new(OpenStackHeat::new(cfg).unwrap());
    let names: Vec<String> = (0..6).map(|i| unique(&format!("cap{i}"))).collect();
    let mut tasks = Vec::new();
    for (i, n) in names.iter().enumerate() {
        let (heat, n) = (heat.clone(), n.clone());
        tasks.push(tokio::spawn(async move {
            heat.create(&request(
                &n,
                StackOperation::Create,
                VALUES,
                json!({"vlan": i}),
            ))
            .await
        }));
    }
    for (i, t) in tasks.into_iter().enumerate() {
        let out = t.await.unwrap().unwrap();
        assert_eq!(out.status, "CREATE_COMPLETE", "{}", out.reason);
        assert_eq!(output(&out.outputs, "vlan"), json!(i));
    }
    for n in &names {
        assert_eq!(heat.delete(n).await.unwrap().status, "DELETE_COMPLETE");
    }
}

fn netconf_template() -> String {
    r#"heat_template_version: 2013-05-23
parameters:
  device_ip: {type: string}
  device_port: {type: number, default: 830}
  password: {type: string, hidden: true}
  vlan: {type: number}
  description: {type: string, default: "uplink"}
resources:
  anchor:
    type: OS::Heat::Value
    properties: {value: {get_param: vlan}}
  netconf_primary:
    type: OS::Contrail::NetconfNamedConfigs
    depends_on: anchor
    properties:
      device_ip: {get_param: device_ip}
      port: {get_param: device_port}
      username: esi
      password: {get_param: password}
      lock_timeout: 30
      configs:
        - path:
            - {config_type: tag, xml_type: tag, tag: interfaces}
            - {config_type: name, xml_type: named_tag, tag: interface, name: ae0}
            - {config_type: named_tag, xml_type: named_tag, tag: unit, name: {get_param: vlan}}
          config:
            str_replace:
              template: |
                vlan-id %VLAN%;
                description "%DESC%";
              params:
                "%VLAN%": {get_param: vlan}
                "%DESC%": {get_param: description}
outputs:
  vlan: {value: {get_attr: [anchor, value]}}
"#
    .into()
}

fn world() -> (Arc<SimFabric>, Arc<SimRouter>, Arc<Collector>) {
    let fabric = Arc::new(SimFabric::new());
    let router = fabric.add(
        SimRouter::new("edge-1", "192.0.2.1", 830).with_login("esi", Secret::new("pw".into())),
    );
    let clock = Arc::new(ManualClock::new(
        Timestamp::parse("2024-01-01T00:00:00Z").unwrap(),
    ));
    let collector = Arc::new(Collector::new(
        fabric.clone(),
        clock,
        CollectorConfig::default(),
    ));
    (fabric, router, collector)
}

#[tokio::test]
#[ignore = "needs heat: bash .ci/services/30-heat.sh start"]
async fn device_resources_esi_configure_the_router_like_local_heat() {
    let (fabric_l, router_l, collector_l) = world();
    let local = LocalHeat::embedded(1, fabric_l, collector_l);
    let (fabric_o, router_o, collector_o) = world();
    let heat = OpenStackHeat::new(noauth().device_resources(DeviceResources::Esi))
        .unwrap()
        .with_device_plugins(fabric_o, collector_o);
    let name = unique("gw");
    let text = netconf_template();
    let p1 = json!({"device_ip": "192.0.2.1", "password": "pw", "vlan": 101});
    let r1 = request(&name, StackOperation::Create, &text, p1);
    let (lo, oo) = (
        local.create(&r1).await.unwrap(),
        heat.create(&r1).await.unwrap(),
    );
    assert_eq!(oo.status, "CREATE_COMPLETE", "{}", oo.reason);
    assert_eq!(lo.status, oo.status);
    // the added device outputs are not reported (LocalHeat's generic OS::Heat::Value has no
    // value attribute, so only the keys compare)
    let keys = |o: &[serde_json::Value]| {
        o.iter()
            .map(|x| x["output_key"].clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(keys(&oo.outputs), keys(&lo.outputs));
    assert_eq!(output(&oo.outputs, "vlan"), json!(101));
    assert!(!router_o.config_text().is_empty());
    assert_eq!(router_o.config_text(), router_l.config_text());
    assert!(set_lines(&router_o.config_text())
        .iter()
        .any(|l| l.contains("unit 101 vlan-id 101")));
    // the stack in Heat holds a stand-in, not the device type
    assert_eq!(heat.get(&name).await.unwrap().unwrap().outputs, oo.outputs);

    let p2 = json!({"device_ip": "192.0.2.1", "password": "pw", "vlan": 102, "description": "new"});
    let r2 = request(&name, StackOperation::Update, &text, p2);
    let (lo, oo) = (
        local.update(&r2).await.unwrap(),
        heat.update(&r2).await.unwrap(),
    );
    assert_eq!(oo.status, "UPDATE_COMPLETE", "{}", oo.reason);
    assert_eq!(lo.status, oo.status);
    assert_eq!(router_o.config_text(), router_l.config_text());
    assert!(
        !router_o.config_text().contains("unit 101"),
        "the old unit is gone"
    );

    // a router that refuses the commit fails the stack with the device's reason
    router_o.fail_next_commits(1, "configuration check-out failed");
    let p3 = json!({"device_ip": "192.0.2.1", "password": "pw", "vlan": 103});
    let r3 = request(&name, StackOperation::Update, &text, p3);
    let oo = heat.update(&r3).await.unwrap();
    assert_eq!(oo.status, "UPDATE_FAILED");
    assert!(
        oo.reason.contains("resources.netconf_primary"),
        "{}",
        oo.reason
    );
    let oo = heat.update(&r3).await.unwrap();
    assert_eq!(oo.status, "UPDATE_COMPLETE", "{}", oo.reason);
    local.update(&r3).await.unwrap();
    assert_eq!(router_o.config_text(), router_l.config_text());

    let (lo, oo) = (
        local.delete(&name).await.unwrap(),
        heat.delete(&name).await.unwrap(),
    );
    assert_eq!(oo.status, "DELETE_COMPLETE", "{}", oo.reason);
    assert_eq!(lo.status, oo.status);
    assert!(
        set_lines(&router_o.config_text()).is_empty(),
        "{}",
        router_o.config_text()
    );
    assert_eq!(router_o.config_text(), router_l.config_text());
    assert_eq!(heat.get(&name).await.unwrap(), None);
}

#[tokio::test]
#[ignore = "needs heat: bash .ci/services/30-heat.sh start"]
async fn device_resources_heat_sends_the_template_untouched() {
    // without Heat's device plug-ins, the untouched template is refused by Heat
    let (fabric, _router, collector) = world();
    let heat = OpenStackHeat::new(noauth().device_resources(DeviceResources::Heat))
        .unwrap()
        .with_device_plugins(fabric, collector);
    let name = unique("gw_heat");
    let r = request(
        &name,
        StackOperation::Create,
        &netconf_template(),
        json!({"device_ip": "192.0.2.1", "password": "pw", "vlan": 101}),
    );
    let err = heat.create(&r).await.unwrap_err();
    assert!(
        matches!(&err, HeatError::Rejected { reason, .. } if reason.contains("OS::Contrail::NetconfNamedConfigs")),
        "{err:?}"
    );
    assert!(!format!("{err:?}").contains("\"pw\""));
}
