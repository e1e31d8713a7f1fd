//! Schemas and heat templates: what the reader and the manager know about resource types.
//!
//! Both are validated when loaded: every `template_path` and every `parameter_mappings` entry
//! is parsed into an AST here, so a malformed one is reported against its schema or template
//! before any job is built.

use crate::mapping::{self, Mapping, Relations, SyntaxError, TemplatePath};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use thiserror::Error;

/// The handler of the single-handler eras.
pub const HEAT_WORKER: &str = "heat_worker";
/// The monitoring handler of the two-handler era.
pub const MONITORING_WORKER: &str = "monitoring_worker";

/// An error found while loading schemas, templates or resources.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum LoadError {
    /// A `parameter_mappings` entry does not parse.
    #[error("template `{template}`, param `{param}`: malformed mapping: {source}")]
    MalformedMapping {
        /// Template id.
        template: String,
        /// Param name.
        param: String,
        /// What is wrong.
        #[source]
        source: SyntaxError,
    },
    /// A schema's template path does not parse.
    #[error("schema `{schema}`, handler `{handler}`: malformed template path: {source}")]
    MalformedTemplatePath {
        /// Schema id.
        schema: String,
        /// Handler name.
        handler: String,
        /// What is wrong.
        #[source]
        source: SyntaxError,
    },
    /// A document does not have the expected shape.
    #[error("{what}: {reason}")]
    InvalidDocument {
        /// Which document or entry.
        what: String,
        /// What is wrong.
        reason: String,
    },
}

impl LoadError {
    pub(crate) fn invalid(what: impl Into<String>, reason: impl Into<String>) -> Self {
        LoadError::InvalidDocument {
            what: what.into(),
            reason: reason.into(),
        }
    }
}

/// One resource type.
#[derive(Debug, Clone)]
pub struct Schema {
    /// Type name (`port`).
    pub id: String,
    /// Singular name.
    pub singular: String,
    /// Plural name (`ports`).
    pub plural: String,
    /// Parent type, empty when none.
    pub parent: String,
    /// Key prefix: the config key is `/config` + prefix + `/` + id.
    pub prefix: String,
    /// Template path per handler (handlers without a path are absent).
    pub template_paths: BTreeMap<String, TemplatePath>,
    /// Relation field → target type.
    pub relations: BTreeMap<String, String>,
}

impl Schema {
    /// Parses the reduced form used by the conformance worlds:
    /// `{id, singular, plural, parent, prefix, template_path, template_paths, relations}`.
    pub fn from_reduced(type_name: &str, v: &Value) -> Result<Self, LoadError> {
        let o = object(v, &format!("schema `{type_name}`"))?;
        let id = str_or(o, "id", type_name);
        let mut template_paths = BTreeMap::new();
        match o.get("template_paths") {
            Some(Value::Object(paths)) => {
                for (handler, p) in paths {
                    insert_path(&mut template_paths, &id, handler, p)?;
                }
            }
            Some(Value::Null) | None => {
                if let Some(p) = o.get("template_path") {
                    insert_path(&mut template_paths, &id, HEAT_WORKER, p)?;
                }
            }
            Some(_) => {
                return Err(LoadError::invalid(
                    format!("schema `{id}`"),
                    "`template_paths` must be an object",
                ))
            }
        }
        let mut relations = BTreeMap::new();
        if let Some(rel) = o.get("relations") {
            let rel = object(rel, &format!("schema `{id}` relations"))?;
            for (field, target) in rel {
                match target {
                    Value::String(t) => {
                        relations.insert(field.clone(), t.clone());
                    }
                    _ => {
                        return Err(LoadError::invalid(
                            format!("schema `{id}` relation `{field}`"),
                            "target must be a type name",
                        ))
                    }
                }
            }
        }
        Ok(Self::finish(o, id, template_paths, relations))
    }

    /// Parses one schema of Gohan's own export (`{"schemas": [ ... ]}` items): template paths from
    /// `metadata.template_path` (or a per-handler `metadata.template_paths`), relations from
    /// `schema.properties.<field>.relation`, plus the implicit `<parent>_id` relation.
    pub fn from_gohan(v: &Value) -> Result<Self, LoadError> {
        let o = object(v, "gohan schema")?;
        let id = match o.get("id") {
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            _ => return Err(LoadError::invalid("gohan schema", "missing `id`")),
        };
        let mut template_paths = BTreeMap::new();
        if let Some(Value::Object(meta)) = o.get("metadata") {
            if let Some(Value::Object(paths)) = meta.get("template_paths") {
                for (handler, p) in paths {
                    insert_path(&mut template_paths, &id, handler, p)?;
                }
            } else if let Some(p) = meta.get("template_path") {
                insert_path(&mut template_paths, &id, HEAT_WORKER, p)?;
            }
        }
        let mut relations = BTreeMap::new();
        if let Some(Value::Object(props)) = o.get("schema").and_then(|s| s.get("properties")) {
            for (field, prop) in props {
                if let Some(Value::String(target)) = prop.get("relation") {
                    relations.insert(field.clone(), target.clone());
                }
            }
        }
        if let Some(Value::String(parent)) = o.get("parent") {
            if !parent.is_empty() {
                relations
                    .entry(format!("{parent}_id"))
                    .or_insert_with(|| parent.clone());
            }
        }
        let mut s = Self::finish(o, id, template_paths, relations);
        // Gohan's schema files give the URL prefix without the plural (`/v2.0`); its served
        // schema list and the recorded worlds carry the full path (`/v2.0/ports`).
        if !s.prefix.ends_with(&format!("/{}", s.plural)) {
            s.prefix = format!("{}/{}", s.prefix.trim_end_matches('/'), s.plural);
        }
        Ok(s)
    }

    fn finish(
        o: &Map<String, Value>,
        id: String,
        template_paths: Paths,
        relations: BTreeMap<String, String>,
    ) -> Self {
        let singular = str_or(o, "singular", &id);
        let plural = str_or(o, "plural", &format!("{singular}s"));
        let prefix = str_or(o, "prefix", &format!("/v2.0/{plural}"));
        Schema {
            parent: str_or(o, "parent", ""),
            singular,
            plural,
            prefix,
            template_paths,
            relations,
            id,
        }
    }

    /// The `/config` key of a resource of this type.
    pub fn config_key(&self, id: &str) -> String {
        format!("/config{}/{}", self.prefix, id)
    }
}

/// Parsed template paths, per handler.
type Paths = BTreeMap<String, TemplatePath>;

fn insert_path(paths: &mut Paths, schema: &str, handler: &str, p: &Value) -> Result<(), LoadError> {
    let parsed =
        mapping::parse_template_path(p).map_err(|source| LoadError::MalformedTemplatePath {
            schema: schema.to_string(),
            handler: handler.to_string(),
            source,
        })?;
    if let Some(path) = parsed {
        paths.insert(handler.to_string(), path);
    }
    Ok(())
}

fn object<'v>(v: &'v Value, what: &str) -> Result<&'v Map<String, Value>, LoadError> {
    v.as_object()
        .ok_or_else(|| LoadError::invalid(what, "expected an object"))
}

fn str_or(o: &Map<String, Value>, key: &str, default: &str) -> String {
    match o.get(key) {
        Some(Value::String(s)) if !s.is_empty() || default.is_empty() => s.clone(),
        _ => default.to_string(),
    }
}

/// One heat template (`/config/v2.0/heat_templates/<id>`), its mappings parsed.
#[derive(Debug, Clone)]
pub struct HeatTemplate {
    /// Template id.
    pub id: String,
    /// The handler that executes it.
    pub handler: String,
    /// The `watch` list as stored (unused by the recorded behaviour).
    pub watch: Value,
    /// The Jinja2 text that renders to a HOT document.
    pub template_file: String,
    /// Parsed mappings, in stored order.
    pub mappings: Vec<(String, Mapping)>,
    /// The mappings as stored.
    pub raw_mappings: Value,
}

impl HeatTemplate {
    /// Parses a template body `{handler, watch, template_file, parameter_mappings}`.
    pub fn from_json(id: &str, v: &Value) -> Result<Self, LoadError> {
        let o = object(v, &format!("heat template `{id}`"))?;
        let raw_mappings = o
            .get("parameter_mappings")
            .cloned()
            .unwrap_or(Value::Object(Map::new()));
        let pm = object(
            &raw_mappings,
            &format!("heat template `{id}` parameter_mappings"),
        )?;
        let mut mappings = Vec::with_capacity(pm.len());
        for (param, m) in pm {
            let parsed =
                mapping::parse_mapping(m).map_err(|source| LoadError::MalformedMapping {
                    template: id.to_string(),
                    param: param.clone(),
                    source,
                })?;
            mappings.push((param.clone(), parsed));
        }
        let template_file = match o.get("template_file") {
            Some(Value::String(s)) => s.clone(),
            None | Some(Value::Null) => String::new(),
            Some(_) => {
                return Err(LoadError::invalid(
                    format!("heat template `{id}`"),
                    "`template_file` must be a string",
                ))
            }
        };
        Ok(HeatTemplate {
            id: id.to_string(),
            handler: str_or(o, "handler", HEAT_WORKER),
            watch: o.get("watch").cloned().unwrap_or(Value::Array(Vec::new())),
            template_file,
            mappings,
            raw_mappings,
        })
    }
}

/// What the manager needs to know about types: handlers, schemas and templates.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    /// Handlers in the order their jobs are considered.
    pub handlers: Vec<String>,
    /// Schemas by type name.
    pub schemas: BTreeMap<String, Schema>,
    /// Heat templates by id.
    pub templates: BTreeMap<String, HeatTemplate>,
}

impl Relations for Catalog {
    fn relation(&self, resource_type: &str, field: &str) -> Option<&str> {
        self.schemas
            .get(resource_type)?
            .relations
            .get(field)
            .map(String::as_str)
    }
}

impl Catalog {
    /// The handlers, defaulting to `heat_worker` alone.
    pub fn handlers(&self) -> Vec<String> {
        if self.handlers.is_empty() {
            vec![HEAT_WORKER.to_string()]
        } else {
            self.handlers.clone()
        }
    }
}

/// A Heat parameter as a template text declares it in its top-level `parameters:` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeclaredParameter {
    /// Parameter name.
    pub name: String,
    /// Declared `hidden: true`.
    pub hidden: bool,
    /// Has a `default:`.
    pub has_default: bool,
}

/// The Heat parameters declared in the top-level `parameters:` section of a (Jinja) template
/// text, read line by line without rendering: what can be known before any job runs. Lines of
/// Jinja statements (`{% … %}`) and comments are skipped.
pub fn declared_parameters(text: &str) -> Vec<DeclaredParameter> {
    let mut out: Vec<DeclaredParameter> = Vec::new();
    let mut inside = false;
    let mut entry_indent: Option<usize> = None;
    for line in text.lines() {
        let trimmed = line.trim_start();
        if trimmed.is_empty()
            || trimmed.starts_with('#')
            || trimmed.starts_with("{%")
            || trimmed.starts_with("{#")
        {
            continue;
        }
        let indent = line.len() - trimmed.len();
        if indent == 0 {
            inside = line.trim_end() == "parameters:";
            entry_indent = None;
            continue;
        }
        if !inside {
            continue;
        }
        let e = *entry_indent.get_or_insert(indent);
        let flags: String = trimmed.chars().filter(|c| !c.is_whitespace()).collect();
        let flags = flags.to_ascii_lowercase();
        if indent == e {
            let Some((name, rest)) = trimmed.split_once(':') else {
                continue;
            };
            let rest: String = rest.chars().filter(|c| !c.is_whitespace()).collect();
            out.push(DeclaredParameter {
                name: name
                    .trim()
                    .trim_matches(|c| c == '"' || c == '\'')
                    .to_string(),
                hidden: false,
                has_default: false,
            });
            scan_flags(out.last_mut(), &rest.to_ascii_lowercase());
        } else if indent > e {
            scan_flags(out.last_mut(), &flags);
        }
    }
    out
}

fn scan_flags(p: Option<&mut DeclaredParameter>, flags: &str) {
    if let Some(p) = p {
        if [
            "hidden:true",
            "hidden:\"true\"",
            "hidden:yes",
            "hidden:'true'",
        ]
        .iter()
        .any(|f| flags.contains(f))
        {
            p.hidden = true;
        }
        if flags.contains("default:") {
            p.has_default = true;
        }
    }
}
