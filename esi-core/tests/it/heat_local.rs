//! LocalHeat: HOT evaluation, idempotence by stack name, injected faults, NetconfNamedConfigs
//! landing on simulated routers, MonitoringTargets feeding the collector, and the example
//! world's templates run end to end.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use esi_core::collector::{Collector, CollectorConfig, ManualClock, MonitoringWrite};
use esi_core::device::{canonical_text, Device, SimFabric, SimRouter};
use esi_core::exec::junos::set_lines::set_lines;
use esi_core::exec::junos::NetconfProperties;
use esi_core::exec::monitor::Timestamp;
use esi_core::exec::stack::{build_stack_request, HeatTemplate, StackOperation, StackRequest};
use esi_core::exec::template_path::TemplatePath;
use esi_core::heat::hot::{resolve_intrinsics, HotTemplate, StackContext};
use esi_core::heat::local::StackFault;
use esi_core::heat::plugins::{
    PluginError, ResourceContext, ResourcePlugin, ResourceState, UpdateOutcome,
};
use esi_core::heat::{Heat, HeatError, LocalHeat};
use esi_core::secret::Secret;
use serde_json::{json, Map, Value};

fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

fn request(name: &str, op: StackOperation, text: &str, params: Value) -> StackRequest {
    StackRequest {
        stack_name: name.into(),
        operation: op,
        template_id: Some("t".into()),
        timeout_mins: Some(5),
        disable_rollback: true,
        request_parameters: obj(params),
        jinja_params: Map::new(),
        template_text: Some(text.into()),
    }
}

/// Records every plug-in call: `(verb, resource name, resolved properties)`.
#[derive(Default)]
struct Recorder {
    calls: Mutex<Vec<(String, String, Value)>>,
}

impl Recorder {
    fn calls(&self) -> Vec<(String, String, Value)> {
        self.calls.lock().unwrap().clone()
    }
}

#[async_trait]
impl ResourcePlugin for Recorder {
    async fn create(
        &self,
        ctx: &ResourceContext<'_>,
        properties: &Value,
    ) -> Result<ResourceState, PluginError> {
        self.calls.lock().unwrap().push((
            "create".into(),
            ctx.resource_name.into(),
            properties.clone(),
        ));
        Ok(ResourceState {
            physical_id: format!("phys-{}", ctx.resource_name),
            attributes: obj(
                json!({"size": properties.get("size").cloned().unwrap_or(Value::Null),
                                   "names": ["x", ctx.resource_name]}),
            ),
            open_attributes: false,
            data: Value::Null,
        })
    }

    async fn update(
        &self,
        ctx: &ResourceContext<'_>,
        current: &ResourceState,
        _old: &Value,
        new: &Value,
    ) -> Result<UpdateOutcome, PluginError> {
        self.calls
            .lock()
            .unwrap()
            .push(("update".into(), ctx.resource_name.into(), new.clone()));
        let mut s = current.clone();
        s.attributes.insert(
            "size".into(),
            new.get("size").cloned().unwrap_or(Value::Null),
        );
        Ok(UpdateOutcome::Updated(s))
    }

    async fn delete(
        &self,
        ctx: &ResourceContext<'_>,
        _: &ResourceState,
        _: &Value,
    ) -> Result<(), PluginError> {
        self.calls
            .lock()
            .unwrap()
            .push(("delete".into(), ctx.resource_name.into(), Value::Null));
        Ok(())
    }
}

const SMALL: &str = r#"heat_template_version: 2013-05-23
description: small
parameters:
  name:
    type: string
  size:
    type: number
    default: 3
  enabled:
    type: boolean
    default: "yes"
  tags:
    type: comma_delimited_list
    default: "a, b"
  secret:
    type: string
    hidden: true
    default: s3cr3t
resources:
  second:
    type: Test::Thing
    properties:
      label:
        str_replace:
          template: "%NAME%-%SIZE%-%NAMEX%"
          params:
            "%NAME%": { get_param: name }
            "%NAMEX%": x
            "%SIZE%": { get_attr: [first, size] }
      first_ref: { get_resource: first }
  first:
    type: Test::Thing
    properties:
      size: { get_param: size }
      enabled: { get_param: enabled }
  third:
    type: Other::Unknown
    depends_on: [second]
    properties:
      tags: { get_param: tags }
outputs:
  label:
    description: the label
    value: { get_attr: [first, names, 1] }
  joined:
    value: { list_join: ["/", { get_param: tags }, [{ get_resource: second }]] }
  unknown_attr:
    value: { get_attr: [third, anything] }
"#;

#[tokio::test]
async fn evaluates_parameters_order_intrinsics_and_outputs() {
    let rec = Arc::new(Recorder::default());
    let heat = LocalHeat::new(1).with_plugin("Test::Thing", rec.clone());
    let out = heat
        .create(&request(
            "thing_1",
            StackOperation::Create,
            SMALL,
            json!({"name": "n1", "size": "7"}),
        ))
        .await
        .unwrap();
    assert_eq!(out.status, "CREATE_COMPLETE");
    assert_eq!(out.reason, "Stack CREATE completed successfully");
    assert_eq!(
        Value::Array(out.outputs.clone()),
        json!([
            {"output_key": "label", "output_value": "first", "description": "the label"},
            {"output_key": "joined", "output_value": "a/b/phys-second", "description": "No description given"},
            {"output_key": "unknown_attr", "output_value": null, "description": "No description given"}
        ])
    );
    // dependency order: first (implicit dependency of second), second, third (depends_on)
    let calls = rec.calls();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0].1, "first");
    // number typed from "7", boolean from "yes"
    assert_eq!(calls[0].2, json!({"size": 7, "enabled": true}));
    assert_eq!(
        calls[1].2,
        json!({"label": "n1-7-x", "first_ref": "phys-first"})
    );
    let snap = heat.stack("thing_1").unwrap();
    let names: Vec<&str> = snap.resources.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["first", "second", "third"]);
    assert_eq!(snap.parameters["secret"], json!("******"));
    assert_eq!(snap.parameters["tags"], json!(["a", "b"]));
    assert_eq!(snap.id.len(), 36);
}

#[tokio::test]
async fn create_is_idempotent_update_changes_only_what_changed_delete_twice() {
    let rec = Arc::new(Recorder::default());
    let heat = LocalHeat::new(9).with_plugin("Test::Thing", rec.clone());
    let req = request(
        "thing_2",
        StackOperation::Create,
        SMALL,
        json!({"name": "n"}),
    );
    let a = heat.create(&req).await.unwrap();
    let id = heat.stack("thing_2").unwrap().id;
    let b = heat.create(&req).await.unwrap();
    assert_eq!(a, b);
    assert_eq!(heat.stack("thing_2").unwrap().id, id);
    assert_eq!(heat.creations("thing_2"), 1);
    assert_eq!(rec.calls().len(), 2, "an identical create touches nothing");
    // the same seed gives the same ids in another engine
    let other = LocalHeat::new(9);
    other.create(&req).await.unwrap();
    assert_eq!(other.stack("thing_2").unwrap().id, id);
    let seeded_differently = LocalHeat::new(10);
    seeded_differently.create(&req).await.unwrap();
    assert_ne!(seeded_differently.stack("thing_2").unwrap().id, id);

    // change `size`: first is updated in place, second's label changes → updated too
    let up = heat
        .update(&request(
            "thing_2",
            StackOperation::Update,
            SMALL,
            json!({"name": "n", "size": 4}),
        ))
        .await
        .unwrap();
    assert_eq!(
        (up.status.as_str(), up.reason.as_str()),
        ("UPDATE_COMPLETE", "Stack successfully updated")
    );
    let verbs: Vec<(String, String)> = rec.calls()[2..]
        .iter()
        .map(|c| (c.0.clone(), c.1.clone()))
        .collect();
    assert_eq!(
        verbs,
        [
            ("update".to_string(), "first".to_string()),
            ("update".to_string(), "second".to_string())
        ]
    );
    assert_eq!(heat.stack("thing_2").unwrap().id, id);

    // create on an existing, different stack = update
    let c = heat
        .create(&request(
            "thing_2",
            StackOperation::Create,
            SMALL,
            json!({"name": "m", "size": 4}),
        ))
        .await
        .unwrap();
    assert_eq!(c.status, "UPDATE_COMPLETE");

    let d = heat.delete("thing_2").await.unwrap();
    assert_eq!(d.status, "DELETE_COMPLETE");
    assert!(d.outputs.is_empty());
    assert_eq!(heat.get("thing_2").await.unwrap(), None);
    let deletes: Vec<String> = rec
        .calls()
        .iter()
        .filter(|c| c.0 == "delete")
        .map(|c| c.1.clone())
        .collect();
    assert_eq!(deletes, ["second", "first"], "reverse creation order");
    let again = heat.delete("thing_2").await.unwrap();
    assert_eq!(again.status, "DELETE_COMPLETE");
    assert_eq!(rec.calls().iter().filter(|c| c.0 == "delete").count(), 2);
}

#[tokio::test]
async fn injected_failure_once_then_success() {
    let heat = LocalHeat::new(0);
    let req = request("s_1", StackOperation::Create, SMALL, json!({"name": "n"}));
    heat.fail_stack("s_1", 1, "Resource CREATE failed: injected");
    let out = heat.create(&req).await.unwrap();
    assert!(out.failed());
    assert_eq!(out.status, "CREATE_FAILED");
    assert_eq!(out.reason, "Resource CREATE failed: injected");
    assert!(out.outputs.is_empty());
    assert_eq!(
        heat.get("s_1").await.unwrap().map(|o| o.status),
        Some("CREATE_FAILED".into())
    );
    let out = heat.create(&req).await.unwrap();
    assert_eq!(out.status, "CREATE_COMPLETE");
    assert_eq!(heat.creations("s_1"), 1);

    // only updates fail
    heat.inject(
        "s_1",
        StackFault::fail(1, "nope").on(StackOperation::Update),
    );
    assert_eq!(heat.create(&req).await.unwrap().status, "CREATE_COMPLETE");
    let mut upd = req.clone();
    upd.operation = StackOperation::Update;
    assert_eq!(heat.update(&upd).await.unwrap().status, "UPDATE_FAILED");
    assert_eq!(heat.update(&upd).await.unwrap().status, "UPDATE_COMPLETE");

    heat.inject("s_1", StackFault::unavailable(1));
    assert!(matches!(
        heat.update(&upd).await,
        Err(HeatError::Unavailable(_))
    ));
    heat.fail_stack("s_1", 1, "cannot delete");
    assert_eq!(heat.delete("s_1").await.unwrap().status, "DELETE_FAILED");
    assert_eq!(heat.delete("s_1").await.unwrap().status, "DELETE_COMPLETE");
}

#[tokio::test(start_paused = true)]
async fn delay_and_timeout() {
    let heat = LocalHeat::new(0);
    let mut req = request("s_2", StackOperation::Create, SMALL, json!({"name": "n"}));
    heat.delay_stack("s_2", Duration::from_secs(90));
    let t0 = tokio::time::Instant::now();
    assert_eq!(heat.create(&req).await.unwrap().status, "CREATE_COMPLETE");
    assert!(t0.elapsed() >= Duration::from_secs(90));
    req.timeout_mins = Some(1);
    req.request_parameters.insert("name".into(), json!("other"));
    let out = heat.create(&req).await.unwrap();
    assert_eq!(
        (out.status.as_str(), out.reason.as_str()),
        ("UPDATE_FAILED", "Update timed out")
    );
    heat.clear_faults("s_2");
    assert_eq!(heat.create(&req).await.unwrap().status, "UPDATE_COMPLETE");
}

#[tokio::test]
async fn rejected_requests_leave_no_stack() {
    let heat = LocalHeat::new(0).strict_parameters(true);
    let cases = [
        (SMALL, json!({})),                               // name missing
        (SMALL, json!({"name": "n", "size": "big"})),     // not a number
        (SMALL, json!({"name": "n", "undeclared": 1})),   // strict
        ("heat_template_version: 2013-05-23\nresources:\n  a: {type: X, properties: {p: {get_param: nope}}}\n", json!({})),
        ("heat_template_version: 2013-05-23\nresources:\n  a: {type: X, depends_on: b}\n  b: {type: X, depends_on: a}\n", json!({})),
        ("resources: [", json!({})),
    ];
    for (text, params) in cases {
        let r = heat
            .create(&request(
                "bad_1",
                StackOperation::Create,
                text,
                params.clone(),
            ))
            .await;
        assert!(
            matches!(r, Err(HeatError::Rejected { ref stack, .. }) if stack == "bad_1"),
            "{params} {r:?}"
        );
    }
    assert!(heat.stack_names().is_empty());
    // lenient by default: an undeclared parameter is accepted, but get_param still needs a
    // declaration (Heat's template validation)
    let lenient = LocalHeat::new(0);
    let out = lenient
        .create(&request(
            "ok_1",
            StackOperation::Create,
            "heat_template_version: 2013-05-23\noutputs:\n  x: {value: {get_param: extra}}\n",
            json!({"extra": 5}),
        ))
        .await;
    assert!(matches!(out, Err(HeatError::Rejected { .. })));
    let out = lenient
        .create(&request(
            "ok_2",
            StackOperation::Create,
            "heat_template_version: 2013-05-23\n",
            json!({"extra": 5}),
        ))
        .await
        .unwrap();
    assert_eq!(out.status, "CREATE_COMPLETE");
}

fn netconf_template(on_update: &str) -> String {
    format!(
        r#"heat_template_version: 2013-05-23
parameters:
  device_ip: {{type: string}}
  device_port: {{type: number, default: 830}}
  password: {{type: string, hidden: true}}
  vlan: {{type: number}}
  description: {{type: string, default: "uplink"}}
  priority: {{type: number, default: 200}}
resources:
  netconf_primary:
    type: OS::Contrail::NetconfNamedConfigs
    properties:
      device_ip: {{get_param: device_ip}}
      port: {{get_param: device_port}}
      username: esi
      password: {{get_param: password}}
      lock_timeout: 3000
{on_update}
      configs:
        - path:
            - {{config_type: tag, xml_type: tag, tag: interfaces}}
            - {{config_type: name, xml_type: named_tag, tag: interface, name: ae0}}
            - {{config_type: named_tag, xml_type: named_tag, tag: unit, name: {{get_param: vlan}}}}
          config:
            str_replace:
              template: |
                vlan-id %VLAN%;
                description "%DESC%";
              params:
                "%VLAN%": {{get_param: vlan}}
                "%DESC%": {{get_param: description}}
        - path:
            - {{config_type: tag, xml_type: tag, tag: interfaces}}
            - {{config_type: name, xml_type: named_tag, tag: interface, name: ae0}}
            - {{config_type: named_tag, xml_type: named_tag, tag: unit, name: {{get_param: vlan}}}}
            - {{config_type: tag, xml_type: tag, tag: family}}
            - {{config_type: tag, xml_type: tag, tag: inet}}
            - {{config_type: named_tag, xml_type: named_tag, tag: address, name: "10.0.0.2/24\n"}}
          config:
            str_replace:
              template: |
                vrrp-group 5 {{
                    virtual-address 10.0.0.1;
                    priority %PRIO%;
                }}
              params:
                "%PRIO%": {{get_param: priority}}
"#
    )
}

fn composed_for(
    text: &str,
    params: &Value,
    resource: &str,
) -> esi_core::exec::junos::ComposedConfig {
    let tpl = HotTemplate::parse(text).unwrap();
    let typed = tpl
        .typed_parameters(params.as_object().unwrap(), false)
        .unwrap();
    let empty = Map::new();
    let props = resolve_intrinsics(
        resource,
        &tpl.resource(resource).unwrap().properties,
        StackContext {
            parameters: &typed,
            resources: &empty,
        },
    )
    .unwrap();
    NetconfProperties::from_value(resource, &props)
        .unwrap()
        .compose()
}

fn world_engine(fabric: &Arc<SimFabric>, clock: &Arc<ManualClock>) -> (LocalHeat, Arc<Collector>) {
    let collector = Arc::new(Collector::new(
        fabric.clone(),
        clock.clone(),
        CollectorConfig::default(),
    ));
    let heat = LocalHeat::embedded(3, fabric.clone(), collector.clone());
    (heat, collector)
}

fn t0() -> Timestamp {
    Timestamp::parse("2024-01-01T00:00:00Z").unwrap()
}

#[tokio::test]
async fn netconf_configs_land_on_the_router_and_follow_update_and_delete() {
    let fabric = Arc::new(SimFabric::new());
    let router = fabric.add(
        SimRouter::new("edge-1", "192.0.2.1", 830).with_login("esi", Secret::new("pw".into())),
    );
    let clock = Arc::new(ManualClock::new(t0()));
    let (heat, _) = world_engine(&fabric, &clock);
    let text = netconf_template("");
    let params = json!({"device_ip": "192.0.2.1", "password": "pw", "vlan": 101});
    let out = heat
        .create(&request(
            "gw_1",
            StackOperation::Create,
            &text,
            params.clone(),
        ))
        .await
        .unwrap();
    assert_eq!(out.status, "CREATE_COMPLETE", "{}", out.reason);
    let composed = composed_for(&text, &params, "netconf_primary");
    assert_eq!(
        router.config_text(),
        canonical_text(&composed.text).unwrap()
    );
    assert_eq!(set_lines(&router.config_text()), composed.set_lines());
    assert_eq!(router.commits().len(), 1);
    assert_eq!(router.commits()[0].resource, "gw_1/netconf_primary");

    // another resource shares `interfaces ae0`; it must survive the gateway's changes
    router
        .load_config(&esi_core::device::ConfigChange {
            resource: "other".into(),
            merge_text: "interfaces { ae0 { mtu 9192; } }".into(),
            ..Default::default()
        })
        .await
        .unwrap();

    // update without on_update: the old unit disappears, the new one is merged
    let params2 =
        json!({"device_ip": "192.0.2.1", "password": "pw", "vlan": 102, "description": "new"});
    let out = heat
        .update(&request(
            "gw_1",
            StackOperation::Update,
            &text,
            params2.clone(),
        ))
        .await
        .unwrap();
    assert_eq!(out.status, "UPDATE_COMPLETE", "{}", out.reason);
    let composed2 = composed_for(&text, &params2, "netconf_primary");
    let mut expected: BTreeSet<String> = composed2.set_lines().into_iter().collect();
    expected.insert("interfaces ae0 mtu 9192".into());
    let got: BTreeSet<String> = set_lines(&router.config_text()).into_iter().collect();
    assert_eq!(got, expected);

    // delete removes exactly what the resource configured
    assert_eq!(heat.delete("gw_1").await.unwrap().status, "DELETE_COMPLETE");
    assert_eq!(
        set_lines(&router.config_text()),
        ["interfaces ae0 mtu 9192"]
    );

    // a commit failure fails the stack once, the retry succeeds
    router.fail_next_commits(1, "configuration check-out failed");
    let out = heat
        .create(&request(
            "gw_2",
            StackOperation::Create,
            &text,
            params.clone(),
        ))
        .await
        .unwrap();
    assert_eq!(out.status, "CREATE_FAILED");
    assert!(
        out.reason.contains("resources.netconf_primary") && out.reason.contains("edge-1"),
        "{}",
        out.reason
    );
    assert!(!out.reason.contains("pw"));
    let out = heat
        .create(&request(
            "gw_2",
            StackOperation::Create,
            &text,
            params.clone(),
        ))
        .await
        .unwrap();
    assert_eq!(out.status, "CREATE_COMPLETE");

    // wrong password: authentication fails, the password is not in the reason
    let bad = json!({"device_ip": "192.0.2.1", "password": "wrong-pw", "vlan": 7});
    let out = heat
        .create(&request("gw_3", StackOperation::Create, &text, bad))
        .await
        .unwrap();
    assert_eq!(out.status, "CREATE_FAILED");
    assert!(out.reason.contains("authentication failed") && !out.reason.contains("wrong-pw"));
}

#[tokio::test]
async fn on_update_merge_keeps_leftovers_until_delete() {
    let fabric = Arc::new(SimFabric::auto());
    let clock = Arc::new(ManualClock::new(t0()));
    let (heat, _) = world_engine(&fabric, &clock);
    let text = netconf_template("      on_update: merge");
    let p1 = json!({"device_ip": "198.51.100.9", "password": "x", "vlan": 10});
    let p2 = json!({"device_ip": "198.51.100.9", "password": "x", "vlan": 11});
    heat.create(&request("m_1", StackOperation::Create, &text, p1.clone()))
        .await
        .unwrap();
    heat.update(&request("m_1", StackOperation::Update, &text, p2.clone()))
        .await
        .unwrap();
    let router = fabric.router_at("198.51.100.9").unwrap();
    let lines: BTreeSet<String> = set_lines(&router.config_text()).into_iter().collect();
    let union: BTreeSet<String> = composed_for(&text, &p1, "netconf_primary")
        .set_lines()
        .into_iter()
        .chain(composed_for(&text, &p2, "netconf_primary").set_lines())
        .collect();
    assert_eq!(lines, union);
    heat.delete("m_1").await.unwrap();
    assert_eq!(router.config_text(), "");
}

const VRRP_MON: &str = r#"heat_template_version: 2013-05-23
parameters:
  gohan_id: {type: string}
  version: {type: number}
  vrid: {type: string}
resources:
  primary:
    type: OS::Contrail::NetconfNamedConfigs
    properties:
      device_ip: 192.0.2.1
      port: 830
      username: esi
      password: pw1
      configs:
        - path:
            - {config_type: tag, xml_type: tag, tag: interfaces}
            - {config_type: name, xml_type: named_tag, tag: interface, name: ae0}
            - {config_type: named_tag, xml_type: named_tag, tag: unit, name: "5"}
            - {config_type: tag, xml_type: tag, tag: family}
            - {config_type: tag, xml_type: tag, tag: inet}
            - {config_type: named_tag, xml_type: named_tag, tag: address, name: 10.0.0.2/24}
          config: "vrrp-group 21 { virtual-address 10.0.0.1; priority 200; }"
  secondary:
    type: OS::Contrail::NetconfNamedConfigs
    depends_on: primary
    properties:
      device_ip: 192.0.2.2
      port: 830
      username: esi
      password: pw2
      configs:
        - path:
            - {config_type: tag, xml_type: tag, tag: interfaces}
            - {config_type: name, xml_type: named_tag, tag: interface, name: ae1}
            - {config_type: named_tag, xml_type: named_tag, tag: unit, name: "5"}
            - {config_type: tag, xml_type: tag, tag: family}
            - {config_type: tag, xml_type: tag, tag: inet}
            - {config_type: named_tag, xml_type: named_tag, tag: address, name: 10.0.0.3/24}
          config: "vrrp-group 21 { virtual-address 10.0.0.1; priority 100; }"
  monitor:
    type: ESI::Monitoring::MonitoringTarget
    depends_on: secondary
    properties:
      type: vrrp_pool
      resource_type: gw_interfaces
      resource_id: {get_param: gohan_id}
      version: {get_param: version}
      field_name: status
      properties:
        vrid: [{get_param: vrid}]
        primary: {host: 192.0.2.1, port: 830, login: esi, password: pw1, interface: ae0.5}
        secondary: {host: 192.0.2.2, port: 830, login: esi, password: pw2, interface: ae1.5}
      syncer_properties:
        etcd:
          status: {key: status}
          hold_options:
            positive_status: {primary: MASTER, secondary: BACKUP}
            time_seconds: 300
outputs:
  monitoring_target_id: {value: {get_resource: monitor}}
  monitoring_link: {value: {get_attr: [monitor, link]}}
"#;

fn set_of(w: &MonitoringWrite) -> (String, String, bool) {
    match w {
        MonitoringWrite::Set {
            key, first_time, ..
        } => (key.clone(), w.etcd_text().unwrap_or_default(), *first_time),
        MonitoringWrite::Delete { key } => (key.clone(), "<delete>".into(), false),
    }
}

#[tokio::test]
async fn monitoring_target_registers_and_collector_applies_the_hold() {
    let fabric = Arc::new(SimFabric::new());
    let r1 = fabric
        .add(SimRouter::new("r1", "192.0.2.1", 830).with_login("esi", Secret::new("pw1".into())));
    let r2 = fabric
        .add(SimRouter::new("r2", "192.0.2.2", 830).with_login("esi", Secret::new("pw2".into())));
    let clock = Arc::new(ManualClock::new(t0()));
    let (heat, collector) = world_engine(&fabric, &clock);
    let out = heat
        .create(&request(
            "gw_interface_g1",
            StackOperation::Create,
            VRRP_MON,
            json!({"gohan_id": "g1", "version": 3, "vrid": 21}),
        ))
        .await
        .unwrap();
    assert_eq!(out.status, "CREATE_COMPLETE", "{}", out.reason);
    let id = out.outputs[0]["output_value"].as_str().unwrap().to_string();
    assert_eq!(collector.target_ids(), std::slice::from_ref(&id));
    assert_eq!(
        out.outputs[1]["output_value"],
        json!(format!("http://collector.esi.local:7070/targets/{id}"))
    );
    let doc = collector.target(&id).unwrap();
    assert_eq!(
        doc["properties"]["vrid"],
        json!([21]),
        "string param keeps the sent number"
    );
    assert_eq!(doc["properties"]["primary"]["password"], json!("******"));
    assert_eq!(doc["created_at"], json!("2024-01-01T00:00:00Z"));

    // the primary's unit is down: INIT/MASTER is not positive → withheld inside the window
    r1.set_interface_down("ae0.5", true);
    assert!(
        collector.poll(t0().plus_seconds(30.0)).await.is_empty(),
        "not due yet"
    );
    assert!(collector.poll(t0().plus_seconds(60.0)).await.is_empty());
    assert!(
        collector.target(&id).unwrap()["values"][0]["value"]
            == json!({"primary": "INIT", "secondary": "MASTER"})
    );
    r1.set_interface_down("ae0.5", false);
    let w = collector.poll(t0().plus_seconds(120.0)).await;
    assert_eq!(
        w.iter().map(set_of).collect::<Vec<_>>(),
        [(
            "/monitoring/v2.0/gw_interfaces/g1".to_string(),
            r#"{"status":{"primary":"MASTER","secondary":"BACKUP"},"version":3}"#.to_string(),
            true
        )]
    );
    assert!(
        collector.poll(t0().plus_seconds(180.0)).await.is_empty(),
        "unchanged"
    );
    // hold over: a non-positive status is written
    r2.set_unreachable(true);
    let w = collector.poll(t0().plus_seconds(240.0)).await;
    assert_eq!(
        w.iter().map(set_of).map(|s| s.1).collect::<Vec<_>>(),
        [r#"{"status":{"primary":"MASTER","secondary":"FAIL"},"version":3}"#]
    );
    r2.set_unreachable(false);

    // a new version replaces the target: the old key is deleted, the new target writes again
    clock.set(t0().plus_seconds(300.0));
    let out = heat
        .update(&request(
            "gw_interface_g1",
            StackOperation::Update,
            VRRP_MON,
            json!({"gohan_id": "g1", "version": 4, "vrid": 21}),
        ))
        .await
        .unwrap();
    assert_eq!(out.status, "UPDATE_COMPLETE", "{}", out.reason);
    let new_id = out.outputs[0]["output_value"].as_str().unwrap().to_string();
    assert_ne!(new_id, id);
    assert_eq!(collector.target_ids(), std::slice::from_ref(&new_id));
    assert_eq!(
        r1.commits().len(),
        1,
        "unchanged NETCONF resources are not touched"
    );
    let w = collector.poll(t0().plus_seconds(300.0)).await;
    assert_eq!(
        w.iter().map(set_of).map(|s| s.1).collect::<Vec<_>>(),
        ["<delete>"]
    );
    let w = collector.poll(t0().plus_seconds(360.0)).await;
    assert_eq!(
        w.iter().map(set_of).collect::<Vec<_>>(),
        [(
            "/monitoring/v2.0/gw_interfaces/g1".to_string(),
            r#"{"status":{"primary":"MASTER","secondary":"BACKUP"},"version":4}"#.to_string(),
            true
        )]
    );

    heat.delete("gw_interface_g1").await.unwrap();
    assert!(collector.target_ids().is_empty());
    assert!(r1.config_text().is_empty() && r2.config_text().is_empty());
}

// ---------------------------------------------------------------------------------------------
// The example world, end to end through build_stack_request and LocalHeat.

fn read(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap();
    if path.extension().is_some_and(|e| e == "json") {
        serde_json::from_str(&text).unwrap()
    } else {
        serde_yaml_ng::from_str(&text).unwrap()
    }
}

pub(crate) fn example_documents() -> Vec<(String, Value)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/vpn-gateway");
    let mut files = vec![
        dir.join("world.yaml"),
        dir.join("schemas.yaml"),
        dir.join("schemas-gohan.json"),
        dir.join("resources.yaml"),
    ];
    let mut templates: Vec<_> = std::fs::read_dir(dir.join("templates"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    templates.sort();
    files.extend(templates);
    files
        .into_iter()
        .map(|p| (p.display().to_string(), read(&p)))
        .collect()
}

/// Raw heat_worker template paths per type, from both schema forms.
fn raw_template_paths(docs: &[(String, Value)]) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    for (_, d) in docs {
        if let Some(Value::Object(schemas)) = d.get("schemas") {
            for (ty, s) in schemas {
                if let Some(p) = s.pointer("/template_paths/heat_worker") {
                    out.insert(ty.clone(), p.clone());
                }
            }
        }
        if let Some(Value::Array(list)) = d.get("gohan_schemas") {
            for s in list {
                if let (Some(id), Some(p)) = (
                    s.get("id").and_then(Value::as_str),
                    s.pointer("/metadata/template_path"),
                ) {
                    out.insert(id.to_string(), p.clone());
                }
            }
        }
    }
    out
}

/// Runs jobs the way a worker does and remembers what a plan predicts per stack and device.
struct WorldRun {
    heat: LocalHeat,
    paths: BTreeMap<String, Value>,
    world: esi_core::World,
    outputs: BTreeMap<String, Vec<Value>>,
    /// stack name → device host → predicted set lines
    predicted: BTreeMap<String, BTreeMap<String, BTreeSet<String>>>,
    ran: Vec<String>,
}

impl WorldRun {
    async fn run(&mut self, jobs: &[esi_core::Job]) {
        for job in jobs {
            let job =
                esi_core::exec::job::Job::from_value(&serde_json::to_value(job).unwrap()).unwrap();
            let path = self
                .paths
                .get(&job.resource_type)
                .map(|p| TemplatePath::parse(p).unwrap());
            let template_id = path
                .as_ref()
                .filter(|_| !job.action.is_delete())
                .and_then(|p| p.template_id(&job.resource_input).unwrap());
            let template = template_id.as_ref().and_then(|id| {
                self.world.catalog.templates.get(id).map(|t| HeatTemplate {
                    name: id.clone(),
                    template_file: t.template_file.clone(),
                    parameter_mappings: Value::Null,
                })
            });
            let req = build_stack_request(&job, path.as_ref(), template.as_ref(), &self.outputs)
                .unwrap_or_else(|e| panic!("{e}"));
            let out = match req.operation {
                StackOperation::Create => self.heat.create(&req).await,
                StackOperation::Update => self.heat.update(&req).await,
                StackOperation::Delete => self.heat.delete(&req.stack_name).await,
            }
            .unwrap_or_else(|e| panic!("{e}"));
            assert!(
                !out.failed(),
                "{}: {} {}",
                req.stack_name,
                out.status,
                out.reason
            );
            self.ran
                .push(format!("{:?} {}", job.action, job.resource_type));
            let key = format!("{}/{}", job.resource_type, job.resource_id);
            if req.operation == StackOperation::Delete {
                self.outputs.remove(&key);
                self.predicted.remove(&req.stack_name);
                continue;
            }
            self.outputs.insert(key, out.outputs.clone());
            // what a plan predicts: every NetconfNamedConfigs of the stack, composed
            let text = req.template_text.clone().unwrap();
            let tpl = HotTemplate::parse(&text).unwrap();
            let typed = tpl
                .typed_parameters(&req.request_parameters, false)
                .unwrap();
            let per_device = self.predicted.entry(req.stack_name.clone()).or_default();
            per_device.clear();
            for r in tpl
                .resources
                .iter()
                .filter(|r| r.resource_type == "OS::Contrail::NetconfNamedConfigs")
            {
                let empty = Map::new();
                let props = resolve_intrinsics(
                    &r.name,
                    &r.properties,
                    StackContext {
                        parameters: &typed,
                        resources: &empty,
                    },
                )
                .unwrap();
                let c = NetconfProperties::from_value(&r.name, &props)
                    .unwrap()
                    .compose();
                per_device
                    .entry(c.device.device_ip.clone())
                    .or_default()
                    .extend(c.set_lines());
            }
        }
    }

    fn predicted_for(&self, host: &str) -> BTreeSet<String> {
        self.predicted
            .values()
            .filter_map(|d| d.get(host))
            .flatten()
            .cloned()
            .collect()
    }
}

fn lines_of(router: &SimRouter) -> BTreeSet<String> {
    set_lines(&router.config_text()).into_iter().collect()
}

#[tokio::test]
async fn example_world_runs_end_to_end_and_both_routers_get_their_configuration() {
    let docs = example_documents();
    let mut b = esi_core::WorldBuilder::default();
    for (origin, d) in &docs {
        b.merge(d, origin).unwrap();
    }
    let world = b.build();
    let mut suffixes = esi_core::SeededSuffixes::new(5);
    let outcomes = esi_core::expand_world(&world, &mut suffixes);

    let fabric = Arc::new(SimFabric::new());
    let edge_a = fabric.add(
        SimRouter::new("edge-a", "192.0.2.11", 830)
            .with_login("esi-netconf", Secret::new("example-secret-1".into()))
            .with_community(Secret::new("example-community-ro".into())),
    );
    let edge_b = fabric.add(
        SimRouter::new("edge-b", "192.0.2.12", 830)
            .with_login("esi-netconf", Secret::new("example-secret-2".into()))
            .with_community(Secret::new("example-community-ro".into())),
    );
    let clock = Arc::new(ManualClock::new(t0()));
    let (heat, collector) = world_engine(&fabric, &clock);
    let mut run = WorldRun {
        heat,
        paths: raw_template_paths(&docs),
        world,
        outputs: BTreeMap::new(),
        predicted: BTreeMap::new(),
        ran: Vec::new(),
    };
    for outcome in &outcomes {
        if let Ok(jobs) = &outcome.result {
            run.run(jobs).await;
        }
    }
    for ty in [
        "edge_router",
        "ha_router",
        "ha_interface",
        "network",
        "subnet",
        "port",
        "vpn_gateway",
        "gw_interface",
    ] {
        assert!(
            run.ran.iter().any(|t| t.ends_with(&format!(" {ty}"))),
            "no {ty} job ran: {:?}",
            run.ran
        );
    }
    let vpn_stack = run
        .heat
        .stack_names()
        .into_iter()
        .find(|n| n.starts_with("vpn_gateway_"))
        .unwrap();
    let vpn = run.heat.stack(&vpn_stack).unwrap();
    assert_eq!(vpn.status, "CREATE_COMPLETE");
    assert!(vpn.outputs.iter().any(|o| o["output_key"] == "vrf_name"));

    for (router, host) in [(&edge_a, "192.0.2.11"), (&edge_b, "192.0.2.12")] {
        let got = lines_of(router);
        let want = run.predicted_for(host);
        assert!(!want.is_empty());
        assert_eq!(got, want, "router {host}");
        assert!(
            got.iter().any(|l| l.starts_with("routing-instances VRF-")),
            "{host}: no VRF"
        );
        assert!(
            got.iter().any(|l| l.contains("vrrp-group 21")),
            "{host}: no VRRP group"
        );
        assert!(!router.config_text().contains("example-secret"));
    }
    // VRRP: edge-a (priority 200) is master, edge-b backup; the gw_interface target says so
    // after its first interval (the hold ends with the positive status)
    let writes = collector.poll(t0().plus_seconds(60.0)).await;
    let texts: Vec<(String, String, bool)> = writes.iter().map(set_of).collect();
    assert!(
        texts.iter().any(
            |(k, v, first)| k.starts_with("/monitoring/v2.0/gw_interfaces/")
                && v.contains(r#""primary":"MASTER","secondary":"BACKUP""#)
                && *first
        ),
        "{texts:?}"
    );
    assert!(
        texts
            .iter()
            .any(|(k, v, _)| k.starts_with("/monitoring/v2.0/edge_routers/")
                && v.contains(r#""router":"UP""#)),
        "{texts:?}"
    );
    assert!(
        texts.iter().all(|(k, _, _)| !k.contains("vpn_gateways")),
        "tsdb-only targets never write etcd"
    );

    // changes.yaml 1: the gateway moves to the 50M option (on_update: merge)
    let gw = esi_core::ResourceRef::new("vpn_gateway", "b68f4fe2-48a4-480e-b752-8379c2680db3");
    let mut resources = run.world.resources.clone();
    let mut modified = resources
        .get(&gw.resource_type, &gw.resource_id)
        .unwrap()
        .clone();
    let previous = (modified.version, modified.body.clone());
    modified.body["qos_option_id"] = json!("e098b44a-43d4-4687-893a-93b00e95948c");
    modified.body["description"] = json!("VPN gateway for the Osaka and Kyoto offices");
    modified.version += 1;
    resources.insert(modified.clone());
    let event = esi_core::ChangeEvent {
        action: esi_core::EventAction::Modify,
        resource: modified,
        previous: Some(previous),
    };
    let exp = esi_core::expand(
        &run.world.catalog,
        &resources,
        &event,
        &esi_core::InFlight::new(),
        &mut suffixes,
    )
    .unwrap();
    run.world.resources = resources;
    run.run(&exp.jobs).await;
    assert_eq!(
        run.heat.stack(&vpn_stack).unwrap().status,
        "UPDATE_COMPLETE"
    );
    for router in [&edge_a, &edge_b] {
        let got = lines_of(router);
        assert!(got.contains("firewall policer VPNGW-example-corp-osaka-POLICER if-exceeding bandwidth-limit 50m"), "{got:?}");
        assert!(
            !got.iter().any(|l| l.ends_with("bandwidth-limit 10m")),
            "merge replaces the old value"
        );
        assert!(got.iter().any(|l| l.ends_with(
            "description example-corp-osaka - VPN gateway for the Osaka and Kyoto offices"
        )));
        assert_eq!(
            got.iter()
                .filter(|l| l.contains(" unit 2101 description "))
                .count(),
            1
        );
    }

    // changes.yaml 2: port, gw_interface, vpn_gateway are deleted (logical deletes)
    for (ty, id) in [
        ("port", "d50eae16-9e42-4036-b320-b0c24b58f751"),
        ("gw_interface", "6e9a106b-2fe2-4225-8210-60790cba2de4"),
        ("vpn_gateway", "b68f4fe2-48a4-480e-b752-8379c2680db3"),
    ] {
        let mut resources = run.world.resources.clone();
        let mut r = resources.get(ty, id).unwrap().clone();
        let previous = (r.version, r.body.clone());
        r.marked_for_deletion = true;
        r.version += 1;
        resources.insert(r.clone());
        let event = esi_core::ChangeEvent {
            action: esi_core::EventAction::LogicalDelete,
            resource: r,
            previous: Some(previous),
        };
        let exp = esi_core::expand(
            &run.world.catalog,
            &resources,
            &event,
            &esi_core::InFlight::new(),
            &mut suffixes,
        )
        .unwrap();
        assert!(!exp.jobs.is_empty(), "{ty}: no delete job");
        run.run(&exp.jobs).await;
        resources.remove(&esi_core::ResourceRef::new(ty, id));
        run.world.resources = resources;
        assert!(run.heat.stack(&format!("{ty}_{id}")).is_none());
    }
    // what remains on the routers is exactly what the remaining stacks configured
    for (router, host) in [(&edge_a, "192.0.2.11"), (&edge_b, "192.0.2.12")] {
        let got = lines_of(router);
        assert_eq!(
            got,
            run.predicted_for(host),
            "router {host} after the deletes"
        );
        assert!(
            !got.iter().any(|l| l.contains("VRF-") || l.contains("2101")),
            "{got:?}"
        );
    }
    let writes = collector.poll(t0().plus_seconds(120.0)).await;
    assert!(
        writes.iter().any(|w| matches!(w, MonitoringWrite::Delete { key } if key.starts_with("/monitoring/v2.0/gw_interfaces/"))),
        "{writes:?}"
    );
}
