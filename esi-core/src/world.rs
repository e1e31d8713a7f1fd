//! Worlds: a catalog plus a set of resources, loaded from JSON/YAML documents.
//!
//! A world document (the conformance format, or one file of an example world directory) may hold
//! any of the top-level keys `name`, `about`, `handlers`, `schemas` (reduced form, a map by type;
//! or Gohan's export list), `gohan_schemas` (Gohan's export list), `heat_templates` and
//! `resources`. [`WorldBuilder`] merges several such documents; file reading is the caller's job.

use crate::catalog::{Catalog, HeatTemplate, LoadError, Schema};
use crate::mapping::ResourceView;
use crate::model::{Resource, ResourceRef};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap, HashSet};

/// Resources by type, then id.
#[derive(Debug, Clone, Default)]
pub struct ResourceSet {
    by_type: BTreeMap<String, BTreeMap<String, Resource>>,
    /// Insertion order, used as the tie-break of the processing order.
    order: Vec<ResourceRef>,
}

impl ResourceSet {
    /// Inserts or replaces a resource.
    pub fn insert(&mut self, r: Resource) {
        let key = r.key.clone();
        let slot = self.by_type.entry(key.resource_type.clone()).or_default();
        if slot.insert(key.resource_id.clone(), r).is_none() {
            self.order.push(key);
        }
    }

    /// Removes a resource.
    pub fn remove(&mut self, key: &ResourceRef) -> Option<Resource> {
        let removed = self
            .by_type
            .get_mut(&key.resource_type)?
            .remove(&key.resource_id);
        if removed.is_some() {
            self.order.retain(|k| k != key);
        }
        removed
    }

    /// Looks a resource up.
    pub fn get(&self, resource_type: &str, id: &str) -> Option<&Resource> {
        self.by_type.get(resource_type)?.get(id)
    }

    /// All resources, in insertion order.
    pub fn iter(&self) -> impl Iterator<Item = &Resource> {
        self.order
            .iter()
            .filter_map(|k| self.get(&k.resource_type, &k.resource_id))
    }

    /// Number of resources.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }
}

impl ResourceView for ResourceSet {
    fn body(&self, resource_type: &str, id: &str) -> Option<&Value> {
        self.get(resource_type, id).map(|r| &r.body)
    }
}

/// A view that applies overrides (`Some`: replaced, `None`: absent) on top of a base view.
pub struct Overlay<'a> {
    base: &'a dyn ResourceView,
    overrides: &'a HashMap<ResourceRef, Option<Resource>>,
}

impl<'a> Overlay<'a> {
    /// Builds the overlay.
    pub fn new(
        base: &'a dyn ResourceView,
        overrides: &'a HashMap<ResourceRef, Option<Resource>>,
    ) -> Self {
        Self { base, overrides }
    }
}

impl ResourceView for Overlay<'_> {
    fn body(&self, resource_type: &str, id: &str) -> Option<&Value> {
        match self.overrides.get(&ResourceRef::new(resource_type, id)) {
            Some(Some(r)) => Some(&r.body),
            Some(None) => None,
            None => self.base.body(resource_type, id),
        }
    }
}

/// A catalog and the resources of one run or example.
#[derive(Debug, Clone, Default)]
pub struct World {
    /// Name.
    pub name: String,
    /// Free text.
    pub about: String,
    /// Handlers, schemas, templates.
    pub catalog: Catalog,
    /// The resources.
    pub resources: ResourceSet,
}

impl World {
    /// Loads one document in the conformance world format.
    pub fn from_json(v: &Value) -> Result<Self, LoadError> {
        let mut b = WorldBuilder::default();
        b.merge(v, "world")?;
        Ok(b.build())
    }

    /// The order in which `esi expand` processes the resources: a resource after the resources
    /// its relation fields name (depth-first over the schemas' relations), otherwise in load
    /// order. Relation cycles are broken at the first revisit ([`crate::validate`] reports
    /// them). Iterative: a relation chain of any depth is fine.
    pub fn processing_order(&self) -> Vec<ResourceRef> {
        let mut done: HashSet<ResourceRef> = HashSet::new();
        let mut out = Vec::with_capacity(self.resources.len());
        for r in self.resources.iter() {
            if !done.insert(r.key.clone()) {
                continue;
            }
            // (node, its relation targets, next target index); post-order like the recursion.
            let mut stack = vec![(
                r.key.clone(),
                crate::validate::relation_targets(self, &r.key),
                0usize,
            )];
            while let Some(top) = stack.last_mut() {
                if top.2 < top.1.len() {
                    let next = top.1[top.2].clone();
                    top.2 += 1;
                    if done.insert(next.clone()) {
                        let targets = crate::validate::relation_targets(self, &next);
                        stack.push((next, targets, 0));
                    }
                } else if let Some((k, _, _)) = stack.pop() {
                    out.push(k);
                }
            }
        }
        out
    }
}

/// The top-level keys of a world document (`era`, `recorded`, `scenario`, `source` describe a
/// recorded world and are ignored).
pub const WORLD_KEYS: &[&str] = &[
    "name",
    "about",
    "handlers",
    "schemas",
    "gohan_schemas",
    "heat_templates",
    "resources",
    "era",
    "recorded",
    "scenario",
    "source",
];

/// Merges world documents.
#[derive(Debug, Default)]
pub struct WorldBuilder {
    world: World,
}

impl WorldBuilder {
    /// Merges one document; `origin` names it in errors (a file name, say).
    pub fn merge(&mut self, v: &Value, origin: &str) -> Result<(), LoadError> {
        let o = v
            .as_object()
            .ok_or_else(|| LoadError::invalid(origin, "a world document must be an object"))?;
        for k in o.keys() {
            if !WORLD_KEYS.contains(&k.as_str()) {
                let hint = crate::validate::nearest(k, WORLD_KEYS.iter().copied())
                    .map(|s| format!(" (did you mean `{s}`?)"))
                    .unwrap_or_default();
                return Err(LoadError::invalid(
                    origin,
                    format!("unknown top-level key `{k}`{hint}"),
                ));
            }
        }
        let w = &mut self.world;
        if let Some(Value::String(n)) = o.get("name") {
            w.name = n.clone();
        }
        if let Some(Value::String(a)) = o.get("about") {
            w.about = a.clone();
        }
        if let Some(h) = o.get("handlers") {
            let list = h
                .as_array()
                .ok_or_else(|| LoadError::invalid(origin, "`handlers` must be a list"))?;
            w.catalog.handlers = list
                .iter()
                .map(|x| {
                    x.as_str().map(str::to_string).ok_or_else(|| {
                        LoadError::invalid(origin, "`handlers` items must be strings")
                    })
                })
                .collect::<Result<_, _>>()?;
        }
        match o.get("schemas") {
            Some(Value::Object(m)) => {
                for (ty, s) in m {
                    w.catalog
                        .schemas
                        .insert(ty.clone(), Schema::from_reduced(ty, s)?);
                }
            }
            Some(list @ Value::Array(_)) => Self::merge_gohan(&mut w.catalog, list, origin)?,
            Some(_) => {
                return Err(LoadError::invalid(
                    origin,
                    "`schemas` must be a map or a list",
                ))
            }
            None => {}
        }
        if let Some(list) = o.get("gohan_schemas") {
            Self::merge_gohan(&mut w.catalog, list, origin)?;
        }
        if let Some(t) = o.get("heat_templates") {
            let m = t
                .as_object()
                .ok_or_else(|| LoadError::invalid(origin, "`heat_templates` must be a map"))?;
            for (id, body) in m {
                w.catalog
                    .templates
                    .insert(id.clone(), HeatTemplate::from_json(id, body)?);
            }
        }
        if let Some(r) = o.get("resources") {
            let by_type = r.as_object().ok_or_else(|| {
                LoadError::invalid(
                    origin,
                    "`resources` must be a map of type to id to resource",
                )
            })?;
            for (ty, ids) in by_type {
                let ids = ids.as_object().ok_or_else(|| {
                    LoadError::invalid(
                        format!("{origin}: resources.{ty}"),
                        "must be a map of id to resource",
                    )
                })?;
                for (id, entry) in ids {
                    let r = resource_entry(ty, id, entry, origin)?;
                    if w.resources.get(ty, id).is_some() {
                        return Err(LoadError::invalid(
                            format!("{origin}: resource {ty}/{id}"),
                            "defined twice (an earlier file already defines it)",
                        ));
                    }
                    w.resources.insert(r);
                }
            }
        }
        Ok(())
    }

    fn merge_gohan(catalog: &mut Catalog, list: &Value, origin: &str) -> Result<(), LoadError> {
        let items = list
            .as_array()
            .ok_or_else(|| LoadError::invalid(origin, "Gohan schemas must be a list"))?;
        for item in items {
            let s = Schema::from_gohan(item)?;
            catalog.schemas.insert(s.id.clone(), s);
        }
        Ok(())
    }

    /// The merged world.
    pub fn build(self) -> World {
        self.world
    }
}

/// Parses one `resources.<type>.<id>` entry `{body, version, marked_for_deletion?}`.
pub fn resource_entry(
    ty: &str,
    id: &str,
    entry: &Value,
    origin: &str,
) -> Result<Resource, LoadError> {
    let what = format!("{origin}: resource {ty}/{id}");
    let o = entry
        .as_object()
        .ok_or_else(|| LoadError::invalid(&what, "must be an object {body, version}"))?;
    let body = match o.get("body") {
        Some(b @ Value::Object(_)) => b.clone(),
        _ => return Err(LoadError::invalid(&what, "`body` must be an object")),
    };
    let version = match o.get("version") {
        None => 1,
        Some(v) => v
            .as_u64()
            .ok_or_else(|| LoadError::invalid(&what, "`version` must be a non-negative integer"))?,
    };
    let marked = match o.get("marked_for_deletion") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            return Err(LoadError::invalid(
                &what,
                "`marked_for_deletion` must be a boolean",
            ))
        }
    };
    Ok(Resource {
        key: ResourceRef::new(ty, id),
        body,
        version,
        marked_for_deletion: marked,
    })
}
