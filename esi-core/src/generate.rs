//! Generated worlds of any size, for benchmarks and simulation tests.
//!
//! A six-level hierarchy `zone ← region ← site ← rack ← switch ← port` (each child names its
//! parent through a relation field). Templates read through relation chains 1 to 5 hops deep
//! with every walk form (`F`, `{field, path}`, `M`, `{output_key, path}`, `for_field`), so
//! expanding a port evaluates chains of 3–5 hops.

use crate::catalog::LoadError;
use crate::world::World;
use serde_json::{json, Map, Value};

/// A resource type of the hierarchy: name, share of the resources (percent), and the relation
/// field and type of its parent.
type Level = (&'static str, u32, Option<(&'static str, &'static str)>);

/// Levels, top first.
const LEVELS: &[Level] = &[
    ("zone", 2, None),
    ("region", 3, Some(("zone_id", "zone"))),
    ("site", 5, Some(("region_id", "region"))),
    ("rack", 10, Some(("site_id", "site"))),
    ("switch", 20, Some(("rack_id", "rack"))),
    ("port", 60, Some(("switch_id", "switch"))),
];

fn schemas() -> Value {
    let mut m = Map::new();
    for (ty, _, parent) in LEVELS {
        let relations = match parent {
            Some((field, target)) => json!({ *field: target }),
            None => json!({}),
        };
        m.insert(
            ty.to_string(),
            json!({"id": ty, "plural": format!("{ty}s"), "prefix": format!("/v2.0/{ty}s"),
                   "template_paths": {"heat_worker": format!("C{ty}")}, "relations": relations}),
        );
    }
    Value::Object(m)
}

/// Every generated type renders to the same small stack: one resource, whose id is the `id`
/// output the other types' `output_key` params read.
const TEMPLATE: &str = "heat_template_version: 2013-05-23\nresources:\n  node:\n    type: OS::Heat::None\noutputs:\n  id:\n    value: {get_resource: node}\n";

fn templates() -> Value {
    let base = |extra: Value| {
        let mut m = json!({"name": "Pname", "heat_timeout": "C5", "version": "Vauto", "tenant_id": "Ptenant_id"});
        if let (Value::Object(o), Value::Object(e)) = (&mut m, extra) {
            o.extend(e);
        }
        json!({"handler": "heat_worker", "watch": [], "template_file": TEMPLATE, "parameter_mappings": m})
    };
    json!({
        "zone": base(json!({})),
        "region": base(json!({"zone_name": "Fzone+zone_id:name"})),
        "site": base(json!({"zone_name": {"field": "name", "path": ["region_id", "zone_id"]}})),
        "rack": base(json!({
            "zone_name": "Fsite+site_id:region+region_id:zone+zone_id:name",
            "site_out": "Msite:site_id:id"
        })),
        "switch": base(json!({
            "zone_name": {"field": "name", "path": ["rack_id", "site_id", "region_id", "zone_id"]},
            "site_name": "Frack+rack_id:site+site_id:name",
            "uplinks": {"for_field": "uplinks", "for_mapping": {"field": ""}}
        })),
        "port": base(json!({
            "zone_name": "Fswitch+switch_id:rack+rack_id:site+site_id:region+region_id:zone+zone_id:name",
            "region_label": "ACregion-&Fswitch+switch_id:rack+rack_id:site+site_id:region+region_id:name",
            "site_name": {"field": "name", "path": ["switch_id", "rack_id", "site_id"]},
            "rack_out": {"output_key": "id", "path": ["switch_id", "rack_id"]},
            "switch_out": "Mswitch:switch_id:id",
            "vlan": "Pvlan",
            "peers": {"for_field": "peer_ports", "for_mapping": {"output_key": "id", "path": [{"type": "port", "id": ""}]}}
        }))
    })
}

/// Builds a world of exactly `n` resources (at least one per level when `n >= 6`).
pub fn world(n: usize) -> Result<World, LoadError> {
    World::from_json(&world_document(n))
}

/// The world document [`world`] loads: one JSON object (`name`, `handlers`, `schemas`,
/// `heat_templates`, `resources`) that `esi` reads as a world file.
pub fn world_document(n: usize) -> Value {
    let mut counts: Vec<usize> = LEVELS
        .iter()
        .map(|(_, pct, _)| (n * *pct as usize / 100).max(usize::from(n >= LEVELS.len())))
        .collect();
    let assigned: usize = counts.iter().sum();
    if let Some(last) = counts.last_mut() {
        *last = (*last + n).saturating_sub(assigned);
    }
    let mut resources = Map::new();
    for (level, (ty, _, parent)) in LEVELS.iter().enumerate() {
        let mut ids = Map::new();
        for i in 0..counts[level] {
            let id = format!("{ty}-{i:06}");
            let mut body = json!({"id": id, "name": format!("{ty} {i}"), "tenant_id": "tenant-0"});
            if let Some((field, target)) = parent {
                let parent_count = counts[level - 1].max(1);
                body[*field] = json!(format!("{target}-{:06}", i % parent_count));
            }
            match *ty {
                "switch" => {
                    body["uplinks"] =
                        json!([format!("xe-0/0/{}", i % 4), format!("xe-0/0/{}", 4 + i % 4)])
                }
                "port" => {
                    body["vlan"] = json!(100 + i % 3000);
                    if i >= 2 {
                        body["peer_ports"] =
                            json!([format!("port-{:06}", i - 1), format!("port-{:06}", i - 2)]);
                    }
                }
                _ => {}
            }
            ids.insert(id, json!({"body": body, "version": 1}));
        }
        resources.insert(ty.to_string(), Value::Object(ids));
    }
    json!({
        "name": format!("generated-{n}"),
        "handlers": ["heat_worker"],
        "schemas": schemas(),
        "heat_templates": templates(),
        "resources": resources,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expand::{expand_world, SeededSuffixes};

    #[test]
    fn generated_worlds_have_the_requested_size_and_expand_cleanly() {
        for n in [6, 100, 1000] {
            let w = world(n).expect("loads");
            assert_eq!(w.resources.len(), n);
            let out = expand_world(&w, &mut SeededSuffixes::new(1));
            assert!(out.iter().all(|o| o.result.is_ok()), "no errors for n={n}");
            let port = out
                .iter()
                .find(|o| o.resource.resource_type == "port")
                .expect("a port");
            let jobs = port.result.as_ref().expect("ok");
            let zone = jobs[0]
                .params
                .iter()
                .find(|p| p.param == "zone_name")
                .expect("param");
            assert_eq!(zone.resources.len(), 5, "a five-hop chain");
        }
    }
}
