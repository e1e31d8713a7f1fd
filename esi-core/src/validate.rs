//! One validation of a world, shared by `esi expand`, `esi plan` and `esi run` (and any later
//! command that takes a world): what one accepts the others accept, what one rejects the
//! others reject with the same message.
//!
//! Loading ([`crate::WorldBuilder`]) already rejects unknown top-level keys (naming the nearest
//! known key) and a resource defined twice; [`validate`] checks the loaded world: not empty,
//! every resource type known (nearest known type suggested), every body `id` equal to its key,
//! every field a chosen template reads directly (`P<field>`) for a Heat parameter without
//! default present (Heat would refuse the stack: "The Parameter (…) was not provided."), and no
//! relation cycle (reported naming the resources). Every check is iterative: no input depth can
//! overflow the stack.

use crate::catalog::declared_parameters;
use crate::expand::{decide, HandlerDecision};
use crate::mapping::ast::Mapping;
use crate::model::ResourceRef;
use crate::World;
use serde_json::Value;
use std::collections::HashMap;
use std::fmt;
use thiserror::Error;

/// One reason a world is unusable.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ValidationError {
    /// The world holds no resource.
    #[error("the world has no resources")]
    Empty,
    /// A resource's type has no schema.
    #[error(
        "{resource}: unknown resource type `{resource_type}`{}",
        hint(suggestion)
    )]
    UnknownType {
        /// The resource.
        resource: ResourceRef,
        /// Its type.
        resource_type: String,
        /// The nearest known type.
        suggestion: Option<String>,
    },
    /// The body's `id` differs from the key the resource is stored under.
    #[error("{resource}: body `id` is `{body_id}`, not the key `{}`", resource.resource_id)]
    IdMismatch {
        /// The resource.
        resource: ResourceRef,
        /// The body's id.
        body_id: String,
    },
    /// A field that the chosen template reads for a Heat parameter without default is missing.
    #[error("{resource}: field `{field}` is missing: template `{template}` passes it as Heat parameter `{param}`, which has no default")]
    MissingField {
        /// The resource.
        resource: ResourceRef,
        /// Template id.
        template: String,
        /// The template param.
        param: String,
        /// The body field.
        field: String,
    },
    /// The template path could not be evaluated.
    #[error("{0}")]
    TemplatePath(String),
    /// Resources that name each other through relation fields.
    #[error("relation cycle: {}", cycle_text(.0))]
    Cycle(Vec<ResourceRef>),
}

fn hint(s: &Option<String>) -> String {
    s.as_ref()
        .map(|s| format!(" (did you mean `{s}`?)"))
        .unwrap_or_default()
}

fn cycle_text(c: &[ResourceRef]) -> String {
    let mut parts: Vec<String> = c.iter().map(ToString::to_string).collect();
    if let Some(first) = parts.first().cloned() {
        parts.push(first);
    }
    parts.join(" → ")
}

/// Every problem found, in resource order.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub struct Invalid(pub Vec<ValidationError>);

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const SHOWN: usize = 20;
        write!(f, "invalid world ({} problems)", self.0.len())?;
        for e in self.0.iter().take(SHOWN) {
            write!(f, "\n  {e}")?;
        }
        if self.0.len() > SHOWN {
            write!(f, "\n  … and {} more", self.0.len() - SHOWN)?;
        }
        Ok(())
    }
}

/// The nearest of `known` to `name` (Levenshtein distance at most a third of the name, at
/// least 2), for "did you mean" hints.
pub fn nearest<'a>(name: &str, known: impl IntoIterator<Item = &'a str>) -> Option<String> {
    let limit = (name.chars().count() / 3).max(2);
    known
        .into_iter()
        .map(|k| (levenshtein(name, k), k))
        .filter(|(d, _)| *d <= limit)
        .min()
        .map(|(_, k)| k.to_string())
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

/// Checks a loaded world (see the module documentation). `Ok` means every command can take it.
pub fn validate(world: &World) -> Result<(), Invalid> {
    let mut errors = Vec::new();
    if world.resources.is_empty() {
        errors.push(ValidationError::Empty);
    }
    let types: Vec<&str> = world.catalog.schemas.keys().map(String::as_str).collect();
    for r in world.resources.iter() {
        let key = &r.key;
        if !world.catalog.schemas.contains_key(&key.resource_type) {
            errors.push(ValidationError::UnknownType {
                resource: key.clone(),
                resource_type: key.resource_type.clone(),
                suggestion: nearest(&key.resource_type, types.iter().copied()),
            });
            continue;
        }
        if let Some(id) = r.body.get("id") {
            let body_id = match id {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            if body_id != key.resource_id {
                errors.push(ValidationError::IdMismatch {
                    resource: key.clone(),
                    body_id,
                });
            }
        }
        if r.marked_for_deletion {
            continue;
        }
        let decisions = match decide(&world.catalog, r, &world.resources) {
            Ok(d) => d,
            Err(e) => {
                errors.push(ValidationError::TemplatePath(e.to_string()));
                continue;
            }
        };
        for d in decisions {
            let HandlerDecision::Template { template, .. } = d else {
                continue;
            };
            let Some(t) = world.catalog.templates.get(&template) else {
                continue;
            };
            let declared = declared_parameters(&t.template_file);
            for (param, mapping) in &t.mappings {
                let Mapping::Read(field) = mapping else {
                    continue;
                };
                let required = declared.iter().any(|p| &p.name == param && !p.has_default);
                if required && r.body.get(field).is_none_or(Value::is_null) {
                    errors.push(ValidationError::MissingField {
                        resource: key.clone(),
                        template: template.clone(),
                        param: param.clone(),
                        field: field.clone(),
                    });
                }
            }
        }
    }
    errors.extend(cycles(world).into_iter().map(ValidationError::Cycle));
    if errors.is_empty() {
        Ok(())
    } else {
        Err(Invalid(errors))
    }
}

/// The relation edges of a resource: the resources its relation fields name (in schema order).
pub(crate) fn relation_targets(world: &World, key: &ResourceRef) -> Vec<ResourceRef> {
    let mut out = Vec::new();
    if let (Some(r), Some(schema)) = (
        world.resources.get(&key.resource_type, &key.resource_id),
        world.catalog.schemas.get(&key.resource_type),
    ) {
        for (field, target) in &schema.relations {
            if let Some(Value::String(id)) = r.body.get(field) {
                if world.resources.get(target, id).is_some() {
                    out.push(ResourceRef::new(target.clone(), id.clone()));
                }
            }
        }
    }
    out
}

/// Every relation cycle met by an iterative depth-first walk (each reported once, as the
/// resources on it in walk order).
pub fn cycles(world: &World) -> Vec<Vec<ResourceRef>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Active,
        Done,
    }
    let mut mark: HashMap<ResourceRef, Mark> = HashMap::new();
    let mut out = Vec::new();
    for r in world.resources.iter() {
        if mark.contains_key(&r.key) {
            continue;
        }
        // (node, its targets, next target index)
        let mut stack: Vec<(ResourceRef, Vec<ResourceRef>, usize)> = Vec::new();
        mark.insert(r.key.clone(), Mark::Active);
        stack.push((r.key.clone(), relation_targets(world, &r.key), 0));
        while let Some(top) = stack.last_mut() {
            if top.2 < top.1.len() {
                let next = top.1[top.2].clone();
                top.2 += 1;
                match mark.get(&next) {
                    None => {
                        mark.insert(next.clone(), Mark::Active);
                        let targets = relation_targets(world, &next);
                        stack.push((next, targets, 0));
                    }
                    Some(Mark::Active) => {
                        let start = stack.iter().position(|(k, _, _)| *k == next).unwrap_or(0);
                        out.push(stack[start..].iter().map(|(k, _, _)| k.clone()).collect());
                    }
                    Some(Mark::Done) => {}
                }
            } else if let Some((k, _, _)) = stack.pop() {
                mark.insert(k, Mark::Done);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn world(resources: Value) -> World {
        World::from_json(&json!({
            "schemas": {
                "node": {"template_path": "Cnode", "relations": {"next_id": "node"}},
                "box": {"template_path": "Cbox"}
            },
            "heat_templates": {
                "node": {"parameter_mappings": {}, "template_file": "heat_template_version: 2013-05-23\n"},
                "box": {"parameter_mappings": {"device_ip": "Pmanagement_ip", "note": "Pnote"},
                        "template_file": "heat_template_version: 2013-05-23\nparameters:\n  device_ip: {type: string}\n  note:\n    type: string\n    default: ''\nresources: {}\n"}
            },
            "resources": resources
        }))
        .expect("loads")
    }

    #[test]
    fn names_are_suggested() {
        assert_eq!(
            nearest("resourcez", ["resources", "schemas"]),
            Some("resources".into())
        );
        assert_eq!(nearest("zzz", ["resources"]), None);
    }

    #[test]
    fn every_problem_is_reported_with_its_resource() {
        let w = world(json!({
            "nodes": {"n1": {"body": {"id": "n1"}}},
            "node": {"a": {"body": {"id": "b"}}},
            "box": {"x": {"body": {"id": "x"}}, "y": {"body": {"id": "y", "management_ip": "192.0.2.1"}}}
        }));
        let text = validate(&w).expect_err("invalid").to_string();
        assert!(
            text.contains("nodes/n1: unknown resource type `nodes` (did you mean `node`?)"),
            "{text}"
        );
        assert!(
            text.contains("node/a: body `id` is `b`, not the key `a`"),
            "{text}"
        );
        assert!(text.contains("box/x: field `management_ip` is missing: template `box` passes it as Heat parameter `device_ip`"), "{text}");
        assert!(!text.contains("box/y"), "{text}");
        assert!(
            !text.contains("note"),
            "a parameter with a default may be absent: {text}"
        );
        assert!(text.starts_with("invalid world (3 problems)"), "{text}");
    }

    #[test]
    fn empty_worlds_and_cycles_are_errors() {
        assert_eq!(
            validate(&world(json!({}))),
            Err(Invalid(vec![ValidationError::Empty]))
        );
        let w = world(json!({"node": {
            "a": {"body": {"id": "a", "next_id": "b"}},
            "b": {"body": {"id": "b", "next_id": "c"}},
            "c": {"body": {"id": "c", "next_id": "a"}}
        }}));
        let text = validate(&w).expect_err("cycle").to_string();
        assert!(
            text.contains("relation cycle: node/a → node/b → node/c → node/a"),
            "{text}"
        );
    }

    #[test]
    fn a_deep_chain_does_not_overflow_the_stack() {
        let n = 25_000;
        let mut nodes = serde_json::Map::new();
        for i in 0..n {
            let mut body = json!({"id": format!("n{i}")});
            if i + 1 < n {
                body["next_id"] = json!(format!("n{}", i + 1));
            }
            nodes.insert(format!("n{i}"), json!({"body": body}));
        }
        let w = world(json!({"node": nodes}));
        assert_eq!(validate(&w), Ok(()));
        let order = w.processing_order();
        assert_eq!(order.len(), n);
        assert_eq!(
            order[0].resource_id,
            format!("n{}", n - 1),
            "dependencies first"
        );
    }
}
