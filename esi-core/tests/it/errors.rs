//! Every error kind: found at load time for malformed input, at evaluation for broken data;
//! each names the template / param / resource and the offending fragment.

use crate::fixture::*;
use esi_core::catalog::LoadError;
use esi_core::mapping::{parse_mapping, parse_template_path, EvalError};
use esi_core::{expand, ChangeEvent, EventAction, ExpandError, InFlight, SeededSuffixes, World};
use serde_json::{json, Value};

fn syntax(v: Value) -> String {
    match parse_mapping(&v) {
        Err(e) => e.to_string(),
        Ok(m) => panic!("{v} parsed as {m:?}"),
    }
}

#[test]
fn malformed_mappings_are_rejected_with_the_fragment() {
    for (m, needle) in [
        (json!("Xfoo"), "unknown mapping tag `X`"),
        (json!(""), "empty mapping string"),
        (json!("Fvnf_plan:flavor"), "has no `+`"),
        (json!("Fonly"), "at least one"),
        (json!("Mnet:net_id"), "exactly"),
        (json!("Ma:b:c:d"), "exactly"),
        (json!("Onokey"), "`O` needs"),
        (json!("P"), "empty field name"),
        (json!("ACx&AP"), "nested concatenation"),
        (json!({}), "unknown or conflicting"),
        (
            json!({"field": "a", "constant": 1}),
            "unknown or conflicting",
        ),
        (
            json!({"field": "a", "path": "not-a-list"}),
            "`path` must be a list",
        ),
        (json!({"field": "a", "path": [42]}), "path item"),
        (
            json!({"field": "a", "path": [{"type": "x"}]}),
            "unknown path item",
        ),
        (json!({"for_field": "a"}), "without `for_mapping`"),
        (
            json!({"for_field": 3, "for_mapping": "Pa"}),
            "`for_field` must be",
        ),
        (
            json!({"if_mapping": {"less": [1, 2]}, "then_mapping": "Pa", "else_mapping": "Pb"}),
            "unknown condition",
        ),
        (
            json!({"if_mapping": {"equal": [{"field": "a"}]}, "then_mapping": "Pa", "else_mapping": "Pb"}),
            "exactly two",
        ),
        (
            json!({"if_mapping": {"regexp": [{"field": "a"}, {"constant": "("}]}, "then_mapping": "Pa", "else_mapping": "Pb"}),
            "invalid regular expression",
        ),
        (json!({"nested": []}), "non-empty list"),
        (json!({"concatenate": [{"bogus": 1}]}), "unknown operand"),
        (
            json!({"field": "a", "path": [], "ignore_missing": "yes"}),
            "must be a boolean",
        ),
        (json!(42), "string or an object"),
    ] {
        let e = syntax(m.clone());
        assert!(e.contains(needle), "{m}: `{e}` does not mention `{needle}`");
    }
    // the fragment is part of the message
    assert!(syntax(json!("Fvnf_plan:flavor")).contains("Fvnf_plan:flavor"));
}

#[test]
fn malformed_template_paths_are_rejected() {
    for (p, needle) in [
        (json!("Bese_device"), "unknown template path tag"),
        (json!("ACa&Fx+y:z"), "must start with C or P"),
        (json!({"output_key": "id"}), "unknown template path form"),
        (json!(7), "must be null"),
    ] {
        let e = parse_template_path(&p).expect_err("malformed").to_string();
        assert!(e.contains(needle), "{p}: `{e}`");
    }
    assert!(parse_template_path(&Value::Null)
        .expect("null is fine")
        .is_none());
}

#[test]
fn load_errors_name_the_template_and_param() {
    let mut doc = document();
    doc["heat_templates"]["pair"]["parameter_mappings"]["broken"] = json!("Fnoplus:ip");
    let e = World::from_json(&doc).expect_err("malformed mapping");
    match &e {
        LoadError::MalformedMapping {
            template,
            param,
            source,
        } => {
            assert_eq!(template, "pair");
            assert_eq!(param, "broken");
            assert_eq!(source.fragment, "Fnoplus:ip");
        }
        other => panic!("unexpected {other:?}"),
    }
    let mut doc = document();
    doc["schemas"]["router"]["template_paths"]["heat_worker"] = json!("Zrouter");
    match World::from_json(&doc).expect_err("malformed path") {
        LoadError::MalformedTemplatePath {
            schema, handler, ..
        } => {
            assert_eq!(
                (schema.as_str(), handler.as_str()),
                ("router", "heat_worker")
            );
        }
        other => panic!("unexpected {other:?}"),
    }
}

/// Expands `id` of type `ty` with the given mappings installed on `template`, expecting an error.
fn eval_error(template: &str, ty: &str, id: &str, mappings: Value) -> ExpandError {
    let w = world_with_mappings(template, mappings);
    let r = w.resources.get(ty, id).expect("resource").clone();
    let event = ChangeEvent {
        action: EventAction::Create,
        resource: r,
        previous: None,
    };
    expand(
        &w.catalog,
        &w.resources,
        &event,
        &InFlight::new(),
        &mut SeededSuffixes::new(0),
    )
    .expect_err("should fail")
}

fn source_of(e: &ExpandError) -> &EvalError {
    match e {
        ExpandError::Mapping { source, .. } | ExpandError::TemplatePath { source, .. } => {
            source.as_ref()
        }
    }
}

#[test]
fn broken_chains_are_typed_errors_naming_resource_template_param_and_hop() {
    // a dangling id: MissingResource at hop 1
    let e = eval_error(
        "uplink_l3",
        "uplink",
        UPLINK,
        json!({"gone": {"field": "id", "path": ["pair_id", {"type": "router", "id": "role"}]}}),
    );
    let text = e.to_string();
    assert!(text.contains(&format!("uplink/{UPLINK}")), "{text}");
    assert!(
        text.contains("template `uplink_l3`") && text.contains("param `gone`"),
        "{text}"
    );
    assert_eq!(
        source_of(&e),
        &EvalError::MissingResource {
            hop: 1,
            target: esi_core::ResourceRef::new("router", "backup")
        }
    );
    // the F form behaves the same
    let e = eval_error(
        "uplink_l3",
        "uplink",
        UPLINK,
        json!({"gone": "Fnet+net_hint:name"}),
    );
    assert!(matches!(
        source_of(&e),
        EvalError::MissingResource { hop: 0, .. }
    ));
    // a bare path item that is not a relation
    let e = eval_error(
        "uplink_l3",
        "uplink",
        UPLINK,
        json!({"x": {"field": "ip", "path": ["no_such_id"]}}),
    );
    assert_eq!(
        source_of(&e),
        &EvalError::UnknownRelation {
            resource_type: "uplink".into(),
            field: "no_such_id".into()
        }
    );
    // an empty relation value on a walk
    let e = eval_error(
        "router",
        "router",
        R2,
        json!({"x": {"field": "name", "path": ["site_id"]}}),
    );
    assert!(
        matches!(source_of(&e), EvalError::EmptyRelation { hop: 0, .. }),
        "{e}"
    );
    // M with a null relation
    let e = eval_error("router", "router", R1, json!({"x": "Mnet:no_field:id"}));
    assert_eq!(
        source_of(&e),
        &EvalError::NullRelation {
            field: "no_field".into()
        }
    );
    // an id that is not a string
    let e = eval_error(
        "router",
        "router",
        R1,
        json!({"x": {"field": "a", "path": [{"type": "site", "id": "ssh_port"}]}}),
    );
    assert!(
        matches!(
            source_of(&e),
            EvalError::IdNotAString {
                found: "number",
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn shape_errors_are_typed() {
    let e = eval_error(
        "router",
        "router",
        R1,
        json!({"x": {"for_field": "hostname", "for_mapping": "Pa"}}),
    );
    assert_eq!(
        source_of(&e),
        &EvalError::NotAList {
            field: "hostname".into(),
            found: "string"
        }
    );
    let e = eval_error("router", "router", R1, json!({"x": "ACa&Pno_such"}));
    assert_eq!(source_of(&e), &EvalError::NullInConcatenation { part: 1 });
    let e = eval_error("router", "router", R1, json!({"x": "ACa&Ptags"}));
    assert_eq!(
        source_of(&e),
        &EvalError::NotAScalar {
            part: 1,
            found: "object"
        }
    );
    let e = eval_error(
        "router",
        "router",
        R1,
        json!({"x": {"if_mapping": {"regexp": [{"field": "hostname"}, {"concatenate": ["(", {"field": "hostname"}]}]}, "then_mapping": "Pa", "else_mapping": "Pb"}}),
    );
    assert!(
        matches!(source_of(&e), EvalError::InvalidRegex { .. }),
        "{e}"
    );
}

#[test]
fn concatenation_prints_numbers_and_python_booleans() {
    let w = world_with_mappings("router", json!({"x": "APssh_port&C/&Penabled"}));
    let p = crate::mapping::params(&w, "router", R1);
    assert_eq!(p["x"]["value"], json!("830/True"));
}

#[test]
fn a_template_path_that_is_not_a_string_is_an_error() {
    let mut doc = document();
    doc["schemas"]["router"]["template_paths"]["heat_worker"] = json!({"constant": 5});
    let w = World::from_json(&doc).expect("loads");
    let r = w.resources.get("router", R1).expect("resource").clone();
    let event = ChangeEvent {
        action: EventAction::Create,
        resource: r,
        previous: None,
    };
    let e = expand(
        &w.catalog,
        &w.resources,
        &event,
        &InFlight::new(),
        &mut SeededSuffixes::new(0),
    )
    .expect_err("fails");
    assert!(matches!(e, ExpandError::TemplatePath { .. }));
    assert!(e.to_string().contains("router/"), "{e}");
}
