//! Chains, actions, the duplicated-resources quirk and the dependency rule.

use crate::fixture::*;
use esi_core::expand::{expand_world, HandlerDecision};
use esi_core::model::{JobAction, OnFailure};
use esi_core::{expand, ChangeEvent, EventAction, InFlight, Job, Resource, SeededSuffixes, World};
use serde_json::json;

fn event(w: &World, ty: &str, id: &str, action: EventAction) -> ChangeEvent {
    ChangeEvent {
        action,
        resource: w.resources.get(ty, id).expect("resource").clone(),
        previous: None,
    }
}

fn run(w: &World, ev: &ChangeEvent, in_flight: &[Job]) -> Vec<Job> {
    let in_flight: InFlight = in_flight.iter().cloned().collect();
    expand(
        &w.catalog,
        &w.resources,
        ev,
        &in_flight,
        &mut SeededSuffixes::new(7),
    )
    .expect("expands")
    .jobs
}

#[test]
fn create_writes_one_complete_job() {
    let w = world();
    let jobs = run(&w, &event(&w, "pair", PAIR, EventAction::Create), &[]);
    assert_eq!(jobs.len(), 1);
    let j = &jobs[0];
    assert_eq!(j.action, JobAction::Create);
    assert_eq!(j.handler, "heat_worker");
    assert_eq!(j.job_name, format!("pair:{PAIR}:1"));
    let prefix = format!("create:heat_worker:pair:{PAIR}:1:");
    assert!(j.id.starts_with(&prefix), "{}", j.id);
    let suffix = &j.id[prefix.len()..];
    assert_eq!(suffix.len(), 5);
    assert!(
        suffix
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()),
        "{suffix}"
    );
    assert!(j.is_first && j.is_last);
    assert_eq!(j.on_failure, OnFailure::Fail);
    assert!(j.dependency.is_empty());
    assert_eq!(
        j.resource_input,
        w.resources.get("pair", PAIR).expect("pair").body
    );
    let record = j.to_record();
    assert_eq!(record[0], json!("heat_worker"));
    assert_eq!(record[2], json!(0));
    assert_eq!(record[1]["action"], json!("create"));
}

#[test]
fn modify_and_logical_delete_repeat_each_resource_list_twice() {
    let w = world();
    for (action, job_action) in [
        (EventAction::Modify, JobAction::Modify),
        (EventAction::LogicalDelete, JobAction::LogicalDelete),
    ] {
        let jobs = run(&w, &event(&w, "vport", VPORT, action), &[]);
        assert_eq!(jobs.len(), 1);
        assert_eq!(jobs[0].action, job_action);
        let p = |n: &str| {
            jobs[0]
                .params
                .iter()
                .find(|p| p.param == n)
                .expect("param")
                .clone()
        };
        assert_eq!(
            serde_json::to_value(&p("network").resources).expect("json"),
            json!([rref("net", NET), rref("net", NET)])
        );
        let subnets = p("jinja_subnets");
        assert_eq!(subnets.resources.len(), 4, "[s1, s2] twice");
        for sub in subnets.value.as_array().expect("list") {
            assert_eq!(sub["resources"], json!([]), "list sub-params keep []");
        }
        assert!(p("jinja_ips").resources.is_empty(), "[] stays []");
    }
}

#[test]
fn delete_and_non_workable_changes_write_nothing() {
    let w = world();
    assert!(run(&w, &event(&w, "router", R1, EventAction::Delete), &[]).is_empty());
    let e = expand(
        &w.catalog,
        &w.resources,
        &event(&w, "vport", DHCP, EventAction::Create),
        &InFlight::new(),
        &mut SeededSuffixes::new(0),
    )
    .expect("ok");
    assert!(e.jobs.is_empty());
    assert_eq!(
        e.decisions,
        vec![HandlerDecision::NoTemplate {
            handler: "heat_worker".into()
        }]
    );
    let e = expand(
        &w.catalog,
        &w.resources,
        &event(&w, "site", SITE, EventAction::Create),
        &InFlight::new(),
        &mut SeededSuffixes::new(0),
    )
    .expect("ok");
    assert!(e.jobs.is_empty());
    assert_eq!(
        e.decisions,
        vec![HandlerDecision::NoPath {
            handler: "heat_worker".into()
        }]
    );
}

#[test]
fn a_path_naming_a_missing_template_skips_the_handler() {
    let mut doc = document();
    doc["resources"]["uplink"][UPLINK]["body"]["kind"] = json!("l2");
    let w = World::from_json(&doc).expect("loads");
    let e = expand(
        &w.catalog,
        &w.resources,
        &event(&w, "uplink", UPLINK, EventAction::Create),
        &InFlight::new(),
        &mut SeededSuffixes::new(0),
    )
    .expect("ok");
    assert!(e.jobs.is_empty());
    assert_eq!(
        e.decisions,
        vec![HandlerDecision::UnknownTemplate {
            handler: "heat_worker".into(),
            template: "uplink_l2".into()
        }]
    );
}

fn two_handler_world() -> World {
    let mut doc = document();
    doc["handlers"] = json!(["heat_worker", "monitoring_worker"]);
    doc["schemas"]["router"]["template_paths"]["monitoring_worker"] = json!("Crouter_monitoring");
    doc["heat_templates"]["router_monitoring"] = json!({
        "handler": "monitoring_worker", "watch": [], "template_file": "",
        "parameter_mappings": {"host": "Phostname", "site": {"field": "site_id"}}
    });
    World::from_json(&doc).expect("loads")
}

#[test]
fn two_handler_create_and_modify_chains() {
    let w = two_handler_world();
    let created = run(&w, &event(&w, "router", R1, EventAction::Create), &[]);
    let shape: Vec<(JobAction, &str, bool, bool)> = created
        .iter()
        .map(|j| (j.action, j.handler.as_str(), j.is_first, j.is_last))
        .collect();
    assert_eq!(
        shape,
        vec![
            (JobAction::Create, "heat_worker", true, false),
            (JobAction::Create, "monitoring_worker", false, true)
        ]
    );
    assert_eq!(created[1].dependency, vec![created[0].id.clone()]);

    let mut ev = event(&w, "router", R1, EventAction::Modify);
    let mut previous = ev.resource.body.clone();
    previous["hostname"] = json!("old-name");
    ev.previous = Some((0, previous));
    ev.resource.version = 2;
    let chain = run(&w, &ev, &[]);
    let shape: Vec<(JobAction, &str, OnFailure)> = chain
        .iter()
        .map(|j| (j.action, j.handler.as_str(), j.on_failure))
        .collect();
    assert_eq!(
        shape,
        vec![
            (JobAction::Delete, "monitoring_worker", OnFailure::Ignore),
            (JobAction::Modify, "heat_worker", OnFailure::Fail),
            (JobAction::Create, "monitoring_worker", OnFailure::Fail),
        ]
    );
    let host = |j: &Job| {
        j.params
            .iter()
            .find(|p| p.param == "host")
            .expect("host")
            .value
            .clone()
    };
    assert_eq!(
        host(&chain[0]),
        json!("old-name"),
        "the delete reads the previous body"
    );
    assert_eq!(host(&chain[2]), json!("er-1"));
    assert_eq!(
        chain[0].resource_input["hostname"],
        json!("er-1"),
        "resource_input is the new body"
    );
    let site_copies = |j: &Job| {
        j.params
            .iter()
            .find(|p| p.param == "site")
            .expect("site")
            .resources
            .len()
    };
    assert_eq!(
        (site_copies(&chain[0]), site_copies(&chain[2])),
        (2, 3),
        "2x then 3x for the same template"
    );
    assert!(chain
        .iter()
        .all(|j| j.version == 2 && j.job_name.ends_with(":2")));
    assert_eq!(chain[1].dependency, vec![chain[0].id.clone()]);
    assert_eq!(
        chain[2].dependency,
        vec![chain[0].id.clone(), chain[1].id.clone()]
    );
}

#[test]
fn dependencies_forward_backward_same_handler_and_same_resource() {
    let w = two_handler_world();
    let r1 = run(&w, &event(&w, "router", R1, EventAction::Create), &[]);
    let r2 = run(&w, &event(&w, "router", R2, EventAction::Create), &[]);
    let net = run(&w, &event(&w, "net", NET, EventAction::Create), &[]);
    let mut in_flight: Vec<Job> = r1.iter().chain(&r2).chain(&net).cloned().collect();

    // forward: the pair's params name both routers; only the heat jobs match (the pair has no
    // monitoring template), and the unrelated net job is not a dependency.
    let pair = run(
        &w,
        &event(&w, "pair", PAIR, EventAction::Create),
        &in_flight,
    );
    let mut deps = pair[0].dependency.clone();
    deps.sort();
    let mut want = vec![r1[0].id.clone(), r2[0].id.clone()];
    want.sort();
    assert_eq!(deps, want);

    // backward: modifying R2 while the pair (whose params name R2) is in flight; the modify
    // chain also depends on R2's own in-flight jobs (same resource), each id once.
    in_flight.extend(pair.iter().cloned());
    let mut ev = event(&w, "router", R2, EventAction::Modify);
    ev.previous = Some((2, ev.resource.body.clone()));
    ev.resource.version = 3;
    let chain = run(&w, &ev, &in_flight);
    let first = &chain[0].dependency;
    assert!(first.contains(&pair[0].id), "backward rule");
    assert!(
        first.contains(&r2[0].id) && first.contains(&r2[1].id),
        "same resource"
    );
    assert!(!first.contains(&r1[0].id), "R1 is unrelated");
    let mut unique = first.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), first.len(), "no duplicates");
}

#[test]
fn world_expansion_orders_by_relations_and_reports_errors_per_resource() {
    let mut doc = document();
    // a dangling relation makes the pair fail; everything else still expands
    doc["resources"]["pair"][PAIR]["body"]["backup_id"] = json!("99999999-dead");
    let w = World::from_json(&doc).expect("loads");
    let out = expand_world(&w, &mut SeededSuffixes::new(3));
    let pos = |ty: &str, id: &str| {
        out.iter()
            .position(|o| o.resource.resource_type == ty && o.resource.resource_id == id)
            .expect("present")
    };
    assert!(pos("router", R1) < pos("pair", PAIR));
    assert!(pos("pair", PAIR) < pos("uplink", UPLINK));
    assert!(pos("net", NET) < pos("subnet", SUB1));
    // the pair and the uplink (which walks through the pair's backup_id) fail, each named
    let failed: Vec<_> = out.iter().filter(|o| o.result.is_err()).collect();
    let names: Vec<&str> = failed
        .iter()
        .map(|o| o.resource.resource_type.as_str())
        .collect();
    assert_eq!(names, vec!["pair", "uplink"]);
    for o in &failed {
        let msg = o
            .result
            .as_ref()
            .err()
            .map(ToString::to_string)
            .unwrap_or_default();
        assert!(
            msg.contains(&o.resource.resource_id) && msg.contains("99999999-dead"),
            "{msg}"
        );
    }
    // two routers, the net, two subnets and the compute port; the site and the DHCP port are recorded only
    assert_eq!(
        out.iter()
            .filter(|o| o.result.as_ref().is_ok_and(|j| !j.is_empty()))
            .count(),
        6
    );
}

#[test]
fn marked_resources_expand_as_logical_deletes() {
    let mut doc = document();
    doc["resources"]["net"][NET]["marked_for_deletion"] = json!(true);
    let w = World::from_json(&doc).expect("loads");
    let out = expand_world(&w, &mut SeededSuffixes::new(3));
    let net = out
        .iter()
        .find(|o| o.resource.resource_id == NET)
        .expect("net");
    assert_eq!(net.action, EventAction::LogicalDelete);
    assert_eq!(
        net.result.as_ref().expect("ok")[0].action,
        JobAction::LogicalDelete
    );
}

#[test]
fn gohan_schema_export_loads_relations_paths_and_parent() {
    let doc = json!({"schemas": [
        {"id": "gw", "singular": "gw", "plural": "gws", "prefix": "/v2.0", "parent": "tenant",
         "metadata": {"template_path": "Cgw"},
         "schema": {"properties": {"uplink_id": {"type": "string", "relation": "uplink"}, "name": {"type": "string"}}}}
    ]});
    let w = World::from_json(&doc).expect("loads");
    let s = &w.catalog.schemas["gw"];
    assert_eq!(
        s.relations.get("uplink_id").map(String::as_str),
        Some("uplink")
    );
    assert_eq!(
        s.relations.get("tenant_id").map(String::as_str),
        Some("tenant")
    );
    assert!(s.template_paths.contains_key("heat_worker"));
    assert_eq!(s.config_key("x"), "/config/v2.0/gws/x");
    let r = Resource::new("gw", "x", json!({"id": "x"}), 1);
    assert_eq!(
        esi_core::expand::template_for(&w.catalog, "heat_worker", &r, &w.resources)
            .expect("ok")
            .as_deref(),
        Some("gw")
    );
}
