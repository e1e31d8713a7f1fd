//! Every mapping form, evaluated through job expansion on the fixture world.

use crate::fixture::*;
use esi_core::expand::template_for;
use esi_core::{expand, ChangeEvent, EventAction, InFlight, SeededSuffixes, World};
use serde_json::{json, Value};
use std::collections::HashMap;

/// The params of the `create` job of one fixture resource, by name, as JSON.
pub fn params(world: &World, ty: &str, id: &str) -> HashMap<String, Value> {
    let r = world
        .resources
        .get(ty, id)
        .expect("fixture resource")
        .clone();
    let event = ChangeEvent {
        action: EventAction::Create,
        resource: r,
        previous: None,
    };
    let e = expand(
        &world.catalog,
        &world.resources,
        &event,
        &InFlight::new(),
        &mut SeededSuffixes::new(1),
    )
    .expect("expands");
    assert_eq!(e.jobs.len(), 1, "one create job");
    e.jobs[0]
        .params
        .iter()
        .map(|p| {
            (
                p.param.clone(),
                serde_json::to_value(p).expect("param serialises"),
            )
        })
        .collect()
}

fn value(p: &HashMap<String, Value>, name: &str) -> Value {
    p[name]["value"].clone()
}

fn resources(p: &HashMap<String, Value>, name: &str) -> Value {
    p[name]["resources"].clone()
}

#[test]
fn scalar_forms_keep_json_types() {
    let w = world();
    let p = params(&w, "router", R1);
    assert_eq!(value(&p, "hostname"), json!("er-1"));
    assert_eq!(value(&p, "port"), json!(830), "P keeps numbers");
    assert_eq!(value(&p, "enabled"), json!(true), "P keeps booleans");
    assert_eq!(value(&p, "timeout"), json!("5"), "C is always a string");
    assert_eq!(value(&p, "colon_text"), json!("a:b:c"), "C keeps colons");
    assert_eq!(value(&p, "retries"), json!(3), "constant keeps its type");
    assert_eq!(value(&p, "nothing"), Value::Null);
    assert_eq!(value(&p, "version"), json!(1));
    assert_eq!(value(&p, "version2"), json!(1));
    assert_eq!(value(&p, "region"), json!("eu"), "O reads obj:key");
    assert_eq!(value(&p, "row"), json!(3), "nested reads every level");
    assert_eq!(
        value(&p, "deep_missing"),
        Value::Null,
        "nested through a non-object is null"
    );
    assert_eq!(value(&p, "label"), json!("rt-er-1"));
    assert_eq!(value(&p, "joined"), json!("er-1-x"));
    assert_eq!(
        value(&p, "absent"),
        Value::Null,
        "an absent field reads as null"
    );
    for name in ["hostname", "port", "label", "joined", "region"] {
        assert_eq!(resources(&p, name), json!([]), "{name} names no resource");
        assert_eq!(p[name]["type"], json!("value"));
    }
}

#[test]
fn field_on_a_relation_names_the_related_resource_only_when_set() {
    let w = world();
    let p = params(&w, "router", R1);
    assert_eq!(value(&p, "site"), json!(SITE));
    assert_eq!(resources(&p, "site"), json!([rref("site", SITE)]));
    let p2 = params(&w, "router", R2);
    assert_eq!(value(&p2, "site"), json!(""));
    assert_eq!(
        resources(&p2, "site"),
        json!([]),
        "empty relation: no resource"
    );
}

#[test]
fn own_output_key_names_the_resource_itself() {
    let p = params(&world(), "router", R1);
    assert_eq!(p["self_id"]["type"], json!("output_key"));
    assert_eq!(
        value(&p, "self_id"),
        json!({"output_key": "id", "resource_type": "router", "resource_id": R1})
    );
    assert_eq!(resources(&p, "self_id"), json!([]));
}

#[test]
fn walks_record_every_hop_in_order() {
    let w = world();
    let p = params(&w, "pair", PAIR);
    assert_eq!(value(&p, "primary_ip"), json!("192.0.2.1"));
    assert_eq!(resources(&p, "primary_ip"), json!([rref("router", R1)]));
    assert_eq!(value(&p, "backup"), json!(R2));
    assert_eq!(resources(&p, "backup"), json!([rref("router", R2)]));
    assert_eq!(value(&p, "backup_ip"), json!("192.0.2.2"));
    assert_eq!(
        value(&p, "backup_port"),
        json!(22),
        "walked values keep numbers"
    );
    assert_eq!(value(&p, "name_of_both"), json!("er-1/er-2"));
    assert_eq!(
        resources(&p, "name_of_both"),
        json!([rref("router", R1), rref("router", R2)]),
        "A concatenates the parts' resources in order"
    );

    let u = params(&w, "uplink", UPLINK);
    assert_eq!(value(&u, "primary_host"), json!("er-1"));
    assert_eq!(
        resources(&u, "primary_host"),
        json!([rref("pair", PAIR), rref("router", R1)])
    );
    assert_eq!(value(&u, "backup_port"), json!(22));
    assert_eq!(
        resources(&u, "backup_port"),
        json!([rref("pair", PAIR), rref("router", R2)])
    );
    assert_eq!(
        value(&u, "role_ip"),
        json!("192.0.2.2"),
        "computed hop: role + _id = backup_id"
    );
    assert_eq!(
        resources(&u, "role_ip"),
        json!([rref("pair", PAIR), rref("router", R2)])
    );
}

#[test]
fn ignore_missing_yields_an_empty_string_and_no_resources() {
    let u = params(&world(), "uplink", UPLINK);
    assert_eq!(value(&u, "maybe_net"), json!(""));
    assert_eq!(resources(&u, "maybe_net"), json!([]));
}

#[test]
fn output_key_with_path_names_the_last_resource() {
    let u = params(&world(), "uplink", UPLINK);
    assert_eq!(u["pair_out"]["type"], json!("output_key"));
    assert_eq!(
        value(&u, "pair_out"),
        json!({"output_key": "id", "resource_type": "pair", "resource_id": PAIR})
    );
    assert_eq!(
        value(&u, "pair_router_out"),
        json!({"output_key": "fq_name", "resource_type": "router", "resource_id": R1})
    );
    assert_eq!(
        resources(&u, "pair_router_out"),
        json!([rref("pair", PAIR), rref("router", R1)])
    );
}

#[test]
fn related_output_m_form() {
    let p = params(&world(), "subnet", SUB1);
    assert_eq!(p["network"]["type"], json!("output_key"));
    assert_eq!(
        value(&p, "network"),
        json!({"output_key": "id", "resource_type": "net", "resource_id": NET})
    );
    assert_eq!(resources(&p, "network"), json!([rref("net", NET)]));
}

#[test]
fn iteration_types_values_and_lists() {
    let p = params(&world(), "vport", VPORT);
    // output keys per element: type list, sub-params with empty resources
    assert_eq!(p["jinja_subnets"]["type"], json!("list"));
    assert_eq!(
        value(&p, "jinja_subnets"),
        json!([
            {"param": "jinja_subnets", "type": "output_key", "value": {"output_key": "id", "resource_type": "subnet", "resource_id": SUB1}, "resources": []},
            {"param": "jinja_subnets", "type": "output_key", "value": {"output_key": "id", "resource_type": "subnet", "resource_id": SUB2}, "resources": []}
        ])
    );
    assert_eq!(
        resources(&p, "jinja_subnets"),
        json!([rref("subnet", SUB1), rref("subnet", SUB2)])
    );
    // plain values per element: type value, plain list
    assert_eq!(p["jinja_ips"]["type"], json!("value"));
    assert_eq!(
        value(&p, "jinja_ips"),
        json!(["198.51.100.5", "198.51.100.130"])
    );
    // `"id": ""`: the element itself is the id
    assert_eq!(
        value(&p, "jinja_cidrs"),
        json!(["198.51.100.128/25", "198.51.100.0/25"])
    );
    assert_eq!(
        resources(&p, "jinja_cidrs"),
        json!([rref("subnet", SUB2), rref("subnet", SUB1)])
    );
    // for_field given as a mapping: its resources come first
    assert_eq!(value(&p, "jinja_pools"), json!(["p1", "p2"]));
    assert_eq!(resources(&p, "jinja_pools"), json!([rref("net", NET)]));
    // an absent list iterates nothing
    assert_eq!(value(&p, "jinja_none"), json!([]));
    assert_eq!(p["jinja_none"]["type"], json!("value"));
    // if_mapping
    assert_eq!(value(&p, "owner_name"), json!("vm-a"));
}

#[test]
fn template_paths_select_or_refuse() {
    let w = world();
    let get = |ty: &str, id: &str| {
        let r = w.resources.get(ty, id).expect("resource");
        template_for(&w.catalog, "heat_worker", r, &w.resources).expect("path evaluates")
    };
    assert_eq!(get("router", R1).as_deref(), Some("router"), "C");
    assert_eq!(
        get("uplink", UPLINK).as_deref(),
        Some("uplink_l3"),
        "A with C and P parts"
    );
    assert_eq!(
        get("vport", VPORT).as_deref(),
        Some("vport"),
        "if/regexp else branch"
    );
    assert_eq!(get("vport", DHCP), None, "if/regexp then branch: null");
    assert_eq!(get("site", SITE), None, "no path");
}

#[test]
fn regexp_is_anchored_at_the_start_only() {
    let mut doc = document();
    doc["schemas"]["vport"]["template_paths"]["heat_worker"]["if_mapping"]["regexp"][1] =
        json!({"constant": "net"});
    let w = World::from_json(&doc).expect("loads");
    let r = w.resources.get("vport", DHCP).expect("resource");
    // "network:dhcp" starts with "net": match, then branch (null)
    assert_eq!(
        template_for(&w.catalog, "heat_worker", r, &w.resources).expect("ok"),
        None
    );
    doc["schemas"]["vport"]["template_paths"]["heat_worker"]["if_mapping"]["regexp"][1] =
        json!({"constant": "dhcp"});
    let w = World::from_json(&doc).expect("loads");
    let r = w.resources.get("vport", DHCP).expect("resource");
    // "dhcp" occurs, but not at the start: no match
    assert_eq!(
        template_for(&w.catalog, "heat_worker", r, &w.resources)
            .expect("ok")
            .as_deref(),
        Some("vport")
    );
}
