//! Properties: the parsers never panic; evaluation never panics; expansion is deterministic.

use crate::fixture::*;
use esi_core::expand::expand_world;
use esi_core::mapping::{parse_mapping, parse_template_path, Evaluator, Subject};
use esi_core::SeededSuffixes;
use proptest::prelude::*;
use serde_json::{json, Value};

/// Every key the mapping grammar knows: random documents made of them reach deep into the parser.
const MAPPING_KEYS: &[&str] = &[
    "field",
    "path",
    "constant",
    "output_key",
    "for_field",
    "for_mapping",
    "if_mapping",
    "then_mapping",
    "else_mapping",
    "regexp",
    "equal",
    "nested",
    "concatenate",
    "type",
    "id",
    "ignore_missing",
    "version",
];

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        "[A-Za-z_:+&]{0,12}".prop_map(Value::String),
        prop::sample::select(MAPPING_KEYS).prop_map(|s| Value::String(s.to_string())),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(prop::sample::select(MAPPING_KEYS), inner, 0..4).prop_map(
                |m| Value::Object(m.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
            ),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn parsers_never_panic_on_strings(s in "\\PC{0,40}") {
        let v = Value::String(s);
        let _ = parse_mapping(&v);
        let _ = parse_template_path(&v);
    }

    #[test]
    fn parsers_never_panic_on_tagged_strings(s in "[PCVOAFM][a-z_+:&]{0,30}") {
        let v = Value::String(s);
        let _ = parse_mapping(&v);
        let _ = parse_template_path(&v);
    }

    #[test]
    fn parsers_never_panic_on_json(v in arb_json()) {
        let _ = parse_mapping(&v);
        let _ = parse_template_path(&v);
    }

    #[test]
    fn whatever_parses_evaluates_without_panicking(v in arb_json(), s in "[PCVOAFM][a-z_+:&]{0,30}") {
        let w = world();
        let r = w.resources.get("pair", PAIR).expect("pair");
        let subject = Subject { resource_type: "pair", resource_id: PAIR, version: 1, body: &r.body };
        let ev = Evaluator::new(&w.catalog, &w.resources);
        for candidate in [v, Value::String(s)] {
            if let Ok(m) = parse_mapping(&candidate) {
                let _ = ev.evaluate(&m, subject, "p");
            }
        }
    }

    #[test]
    fn expansion_is_deterministic_for_a_fixed_seed(seed in any::<u64>()) {
        let w = world();
        let a = expand_world(&w, &mut SeededSuffixes::new(seed));
        let b = expand_world(&w, &mut SeededSuffixes::new(seed));
        let ids = |o: &[esi_core::ResourceOutcome]| -> Vec<Value> {
            o.iter().map(|x| match &x.result {
                Ok(jobs) => Value::Array(jobs.iter().map(|j| j.to_record()).collect()),
                Err(e) => Value::String(e.to_string()),
            }).collect()
        };
        prop_assert_eq!(ids(&a), ids(&b));
    }
}

#[test]
fn different_seeds_give_different_suffixes() {
    let w = world();
    let a = expand_world(&w, &mut SeededSuffixes::new(1));
    let b = expand_world(&w, &mut SeededSuffixes::new(2));
    let first_id = |o: &[esi_core::ResourceOutcome]| {
        o.iter()
            .find_map(|x| {
                x.result
                    .as_ref()
                    .ok()
                    .and_then(|j| j.first())
                    .map(|j| j.id.clone())
            })
            .expect("some job")
    };
    assert_ne!(first_id(&a), first_id(&b));
}
