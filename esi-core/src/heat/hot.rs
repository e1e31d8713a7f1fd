//! HOT (Heat Orchestration Template) evaluation shared by [`super::local::LocalHeat`] and the
//! monitoring side ([`crate::exec::monitor::target_request`]): the one implementation of Heat's
//! intrinsic functions, the `parameters:` section with Heat's typing, and the resource graph.
//!
//! Intrinsics: `get_param` (with a path into the value), `get_resource`, `get_attr` (with a
//! path), `str_replace` (one pass, longest key first), `list_join`. A single-key mapping whose
//! key is not an intrinsic is an ordinary mapping.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use crate::exec::heat_view::{template_parameters, HeatParamSchema, HeatParamType};
use crate::exec::pytext;
use crate::exec::yaml::parse_yaml;

/// An intrinsic function that cannot be resolved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("resource {resource}: {function}: {reason}")]
pub struct IntrinsicError {
    /// Heat resource (or `outputs.<key>`) being evaluated.
    pub resource: String,
    /// The function (`get_param`, `get_attr`, …).
    pub function: String,
    /// What is wrong.
    pub reason: String,
}

/// A template that cannot be used (Heat answers such a request with a validation error).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// The text is not YAML, or not a mapping.
    #[error("template is not a YAML mapping: {0}")]
    Syntax(String),
    /// A section has the wrong shape.
    #[error("section {section}: {reason}")]
    Malformed {
        /// `parameters.<name>`, `resources.<name>`, `outputs.<key>` …
        section: String,
        /// What is wrong.
        reason: String,
    },
    /// A resource depends (explicitly or through `get_resource`/`get_attr`) on a resource the
    /// template does not define.
    #[error("resource {resource} depends on undefined resource {missing}")]
    UnknownResource {
        /// The depending resource (or `outputs.<key>`).
        resource: String,
        /// The missing name.
        missing: String,
    },
    /// `get_param` of a parameter the template does not declare.
    #[error("{resource}: get_param of undeclared parameter {parameter}")]
    UnknownParameter {
        /// Where (`resources.<name>` or `outputs.<key>`).
        resource: String,
        /// The parameter.
        parameter: String,
    },
    /// The dependency graph has a cycle.
    #[error("circular dependency between resources {0}")]
    Cycle(String),
}

/// A parameter value the template refuses (Heat: `StackValidationFailed`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParameterError {
    /// Declared without a default and not sent.
    #[error("The Parameter ({0}) was not provided.")]
    Missing(String),
    /// Sent but not declared (strict mode only).
    #[error("The Parameter ({0}) was not defined in template.")]
    Undeclared(String),
    /// The value does not fit the declared type.
    #[error("Parameter '{name}' is invalid: {reason}")]
    Invalid {
        /// Parameter name.
        name: String,
        /// What is wrong.
        reason: String,
    },
}

/// What intrinsic functions can see: parameters, resource references and attributes.
pub trait Scope {
    /// The typed value of parameter `name` (`get_param`).
    fn parameter(&self, name: &str) -> Option<Value>;
    /// The reference (physical id) of resource `name` (`get_resource`).
    fn reference(&self, name: &str) -> Option<Value>;
    /// Attribute `attr` of resource `name` (`get_attr`); `None` if the resource or the
    /// attribute does not exist.
    fn attribute(&self, name: &str, attr: &str) -> Option<Value>;
}

/// Values visible inside the stack for intrinsic functions, as two maps (the shape of the
/// conformance `monitor` cases).
#[derive(Debug, Clone, Copy)]
pub struct StackContext<'a> {
    /// Typed parameter values (what `get_param` yields).
    pub parameters: &'a Map<String, Value>,
    /// `{name: {ref, attrs}}` of other resources of the stack.
    pub resources: &'a Map<String, Value>,
}

impl Scope for StackContext<'_> {
    fn parameter(&self, name: &str) -> Option<Value> {
        self.parameters.get(name).cloned()
    }

    fn reference(&self, name: &str) -> Option<Value> {
        self.resources.get(name).and_then(|r| r.get("ref")).cloned()
    }

    fn attribute(&self, name: &str, attr: &str) -> Option<Value> {
        self.resources
            .get(name)
            .and_then(|r| r.get("attrs"))
            .and_then(|a| a.get(attr))
            .cloned()
    }
}

/// The text a value contributes to `str_replace` / `list_join` (Python `str`, JSON for
/// containers, empty for null).
pub fn text_for_replace(v: &Value) -> String {
    match v {
        Value::Array(_) | Value::Object(_) => pytext::json_dumps(v),
        Value::Null => String::new(),
        other => pytext::py3_str(other),
    }
}

fn walk_path(mut cur: Value, path: &[Value]) -> Option<Value> {
    for p in path {
        cur = match (p, &cur) {
            (Value::String(k), Value::Object(m)) => m.get(k)?.clone(),
            (Value::Number(n), Value::Array(a)) => {
                a.get(usize::try_from(n.as_u64()?).ok()?)?.clone()
            }
            (Value::String(k), Value::Array(a)) => a.get(k.parse::<usize>().ok()?)?.clone(),
            _ => return None,
        };
    }
    Some(cur)
}

/// The intrinsic function names this module evaluates.
pub const INTRINSICS: [&str; 5] = [
    "get_param",
    "get_resource",
    "get_attr",
    "str_replace",
    "list_join",
];

/// Resolves Heat intrinsic functions in `v` against the maps of `ctx` (resource `resource`
/// names errors).
pub fn resolve_intrinsics(
    resource: &str,
    v: &Value,
    ctx: StackContext<'_>,
) -> Result<Value, IntrinsicError> {
    resolve(resource, v, &ctx)
}

/// Resolves Heat intrinsic functions in `v` against any [`Scope`].
pub fn resolve(resource: &str, v: &Value, scope: &dyn Scope) -> Result<Value, IntrinsicError> {
    let err = |function: &str, reason: String| IntrinsicError {
        resource: resource.to_string(),
        function: function.to_string(),
        reason,
    };
    match v {
        Value::Object(m) if m.len() == 1 => {
            let Some((fname, arg)) = m.iter().next().map(|(k, v)| (k.as_str(), v)) else {
                return Ok(v.clone());
            };
            match fname {
                "get_param" => {
                    let arg = resolve(resource, arg, scope)?;
                    let (name, path) = match &arg {
                        Value::String(s) => (s.clone(), Vec::new()),
                        Value::Array(a) if !a.is_empty() => (
                            a[0].as_str()
                                .map(str::to_string)
                                .ok_or_else(|| err(fname, "name is not a string".into()))?,
                            a[1..].to_vec(),
                        ),
                        _ => return Err(err(fname, format!("bad argument {arg}"))),
                    };
                    let value = scope
                        .parameter(&name)
                        .ok_or_else(|| err(fname, format!("unknown parameter {name}")))?;
                    walk_path(value, &path)
                        .ok_or_else(|| err(fname, format!("path not found in parameter {name}")))
                }
                "get_resource" => {
                    let arg = resolve(resource, arg, scope)?;
                    let name = arg
                        .as_str()
                        .ok_or_else(|| err(fname, "name is not a string".into()))?;
                    scope
                        .reference(name)
                        .ok_or_else(|| err(fname, format!("no reference of resource {name}")))
                }
                "get_attr" => {
                    let arg = resolve(resource, arg, scope)?;
                    let Some([name, attr, path @ ..]) = arg.as_array().map(Vec::as_slice) else {
                        return Err(err(fname, format!("bad argument {arg}")));
                    };
                    let (Some(name), Some(attr)) = (name.as_str(), attr.as_str()) else {
                        return Err(err(fname, format!("bad argument {arg}")));
                    };
                    let value = scope.attribute(name, attr).ok_or_else(|| {
                        err(fname, format!("no attribute {attr} of resource {name}"))
                    })?;
                    walk_path(value, path)
                        .ok_or_else(|| err(fname, format!("path not found in {name}.{attr}")))
                }
                "str_replace" => {
                    let arg = resolve(resource, arg, scope)?;
                    let template = arg
                        .get("template")
                        .and_then(Value::as_str)
                        .ok_or_else(|| err(fname, "template is not text".into()))?;
                    let params = arg
                        .get("params")
                        .and_then(Value::as_object)
                        .ok_or_else(|| err(fname, "params is not a mapping".into()))?;
                    Ok(Value::String(str_replace(template, params)))
                }
                "list_join" => {
                    let arg = resolve(resource, arg, scope)?;
                    let Some([sep, rest @ ..]) = arg.as_array().map(Vec::as_slice) else {
                        return Err(err(fname, format!("bad argument {arg}")));
                    };
                    let sep = sep
                        .as_str()
                        .ok_or_else(|| err(fname, "separator is not text".into()))?;
                    let mut parts = Vec::new();
                    for list in rest {
                        let items = list
                            .as_array()
                            .ok_or_else(|| err(fname, "not a list".into()))?;
                        parts.extend(items.iter().map(text_for_replace));
                    }
                    Ok(Value::String(parts.join(sep)))
                }
                _ => resolve_members(resource, m, scope),
            }
        }
        Value::Object(m) => resolve_members(resource, m, scope),
        Value::Array(items) => items
            .iter()
            .map(|i| resolve(resource, i, scope))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array),
        other => Ok(other.clone()),
    }
}

fn resolve_members(
    resource: &str,
    m: &Map<String, Value>,
    scope: &dyn Scope,
) -> Result<Value, IntrinsicError> {
    let mut out = Map::new();
    for (k, v) in m {
        out.insert(k.clone(), resolve(resource, v, scope)?);
    }
    Ok(Value::Object(out))
}

/// Heat's `str_replace`: one pass over the template, at each position the
/// longest matching key is substituted by its value's text.
pub fn str_replace(template: &str, params: &Map<String, Value>) -> String {
    let mut keys: Vec<(&String, String)> = params
        .iter()
        .filter(|(k, _)| !k.is_empty())
        .map(|(k, v)| (k, text_for_replace(v)))
        .collect();
    keys.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then_with(|| a.0.cmp(b.0)));
    let mut out = String::new();
    let mut rest = template;
    'outer: while !rest.is_empty() {
        for (k, v) in &keys {
            if rest.starts_with(k.as_str()) {
                out.push_str(v);
                rest = &rest[k.len()..];
                continue 'outer;
            }
        }
        let mut chars = rest.chars();
        if let Some(c) = chars.next() {
            out.push(c);
        }
        rest = chars.as_str();
    }
    out
}

/// Names referenced by intrinsics inside `v`: `(get_param names, resource names of
/// get_resource/get_attr)`. Only literal names are collected (a computed name is checked when
/// it is resolved).
pub fn references(v: &Value) -> (BTreeSet<String>, BTreeSet<String>) {
    let mut params = BTreeSet::new();
    let mut resources = BTreeSet::new();
    collect_refs(v, &mut params, &mut resources);
    (params, resources)
}

fn collect_refs(v: &Value, params: &mut BTreeSet<String>, resources: &mut BTreeSet<String>) {
    match v {
        Value::Object(m) => {
            if m.len() == 1 {
                if let Some((k, arg)) = m.iter().next() {
                    match (k.as_str(), arg) {
                        ("get_param", Value::String(s)) => {
                            params.insert(s.clone());
                        }
                        ("get_param", Value::Array(a)) => {
                            if let Some(Value::String(s)) = a.first() {
                                params.insert(s.clone());
                            }
                        }
                        ("get_resource", Value::String(s)) => {
                            resources.insert(s.clone());
                        }
                        ("get_attr", Value::Array(a)) => {
                            if let Some(Value::String(s)) = a.first() {
                                resources.insert(s.clone());
                            }
                        }
                        _ => {}
                    }
                }
            }
            m.values().for_each(|x| collect_refs(x, params, resources));
        }
        Value::Array(items) => items
            .iter()
            .for_each(|x| collect_refs(x, params, resources)),
        _ => {}
    }
}

/// One resource definition of a template.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceDef {
    /// Resource name (key under `resources:`).
    pub name: String,
    /// Resource type (`OS::Contrail::NetconfNamedConfigs`).
    pub resource_type: String,
    /// Properties, intrinsics unresolved.
    pub properties: Value,
    /// Explicit `depends_on` plus the implicit `get_resource` / `get_attr` dependencies,
    /// sorted.
    pub depends_on: Vec<String>,
}

/// One output definition.
#[derive(Debug, Clone, PartialEq)]
pub struct OutputDef {
    /// Output key.
    pub key: String,
    /// The value expression.
    pub value: Value,
    /// `description` (Heat shows `No description given` when absent).
    pub description: String,
}

/// A parsed HOT template.
#[derive(Debug, Clone, PartialEq)]
pub struct HotTemplate {
    /// `heat_template_version` as text (dates stay text).
    pub version: String,
    /// Declared parameters in declaration order.
    pub parameters: Vec<HeatParamSchema>,
    /// Resources in template order.
    pub resources: Vec<ResourceDef>,
    /// Outputs in template order.
    pub outputs: Vec<OutputDef>,
}

/// Pseudo parameters every stack offers (`OS::stack_name`, `OS::stack_id`, `OS::project_id`).
pub const PSEUDO_PARAMETERS: [&str; 3] = ["OS::stack_name", "OS::stack_id", "OS::project_id"];

fn section<'a>(
    doc: &'a Value,
    name: &str,
) -> Result<Option<&'a Map<String, Value>>, TemplateError> {
    match doc.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(m)) => Ok(Some(m)),
        Some(_) => Err(TemplateError::Malformed {
            section: name.into(),
            reason: "not a mapping".into(),
        }),
    }
}

impl HotTemplate {
    /// Parses rendered template text (YAML with Heat's duplicate-key behaviour).
    pub fn parse(text: &str) -> Result<Self, TemplateError> {
        let doc = parse_yaml(text).map_err(|e| TemplateError::Syntax(e.to_string()))?;
        Self::from_value(&doc)
    }

    /// Reads a parsed template and validates its references.
    pub fn from_value(doc: &Value) -> Result<Self, TemplateError> {
        if !doc.is_object() {
            return Err(TemplateError::Syntax(
                "the document is not a mapping".into(),
            ));
        }
        let version = match doc.get("heat_template_version") {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => {
                return Err(TemplateError::Malformed {
                    section: "heat_template_version".into(),
                    reason: "missing".into(),
                })
            }
        };
        let parameters = template_parameters(doc).map_err(|e| TemplateError::Malformed {
            section: "parameters".into(),
            reason: e.to_string(),
        })?;
        let mut resources = Vec::new();
        for (name, def) in section(doc, "resources")?.into_iter().flatten() {
            let bad = |reason: &str| TemplateError::Malformed {
                section: format!("resources.{name}"),
                reason: reason.into(),
            };
            let Value::Object(d) = def else {
                return Err(bad("not a mapping"));
            };
            let resource_type = d
                .get("type")
                .and_then(Value::as_str)
                .ok_or_else(|| bad("no type"))?
                .to_string();
            let properties = match d.get("properties") {
                None | Some(Value::Null) => Value::Object(Map::new()),
                Some(p @ Value::Object(_)) => p.clone(),
                Some(_) => return Err(bad("properties is not a mapping")),
            };
            let mut deps: BTreeSet<String> = match d.get("depends_on") {
                None | Some(Value::Null) => BTreeSet::new(),
                Some(Value::String(s)) => [s.clone()].into(),
                Some(Value::Array(a)) => a
                    .iter()
                    .map(|x| {
                        x.as_str()
                            .map(str::to_string)
                            .ok_or_else(|| bad("depends_on item is not a name"))
                    })
                    .collect::<Result<_, _>>()?,
                Some(_) => return Err(bad("depends_on is not a name or a list")),
            };
            deps.extend(references(&properties).1);
            resources.push(ResourceDef {
                name: name.clone(),
                resource_type,
                properties,
                depends_on: deps.into_iter().collect(),
            });
        }
        let mut outputs = Vec::new();
        for (key, def) in section(doc, "outputs")?.into_iter().flatten() {
            let Value::Object(d) = def else {
                return Err(TemplateError::Malformed {
                    section: format!("outputs.{key}"),
                    reason: "not a mapping".into(),
                });
            };
            outputs.push(OutputDef {
                key: key.clone(),
                value: d.get("value").cloned().unwrap_or(Value::Null),
                description: d
                    .get("description")
                    .map(text_for_replace)
                    .unwrap_or_else(|| "No description given".into()),
            });
        }
        let t = HotTemplate {
            version,
            parameters,
            resources,
            outputs,
        };
        t.validate_references()?;
        Ok(t)
    }

    fn validate_references(&self) -> Result<(), TemplateError> {
        let names: BTreeSet<&str> = self.resources.iter().map(|r| r.name.as_str()).collect();
        let declared: BTreeSet<&str> = self.parameters.iter().map(|p| p.name.as_str()).collect();
        let check = |label: String, v: &Value, deps: &[String]| -> Result<(), TemplateError> {
            let (params, res) = references(v);
            for r in res.iter().chain(deps) {
                if !names.contains(r.as_str()) {
                    return Err(TemplateError::UnknownResource {
                        resource: label,
                        missing: r.clone(),
                    });
                }
            }
            for p in params {
                if !declared.contains(p.as_str()) && !PSEUDO_PARAMETERS.contains(&p.as_str()) {
                    return Err(TemplateError::UnknownParameter {
                        resource: label,
                        parameter: p,
                    });
                }
            }
            Ok(())
        };
        for r in &self.resources {
            check(
                format!("resources.{}", r.name),
                &r.properties,
                &r.depends_on,
            )?;
        }
        for o in &self.outputs {
            check(format!("outputs.{}", o.key), &o.value, &[])?;
        }
        Ok(())
    }

    /// Resource names in an order where every resource comes after its dependencies; ties in
    /// template order (deterministic).
    pub fn creation_order(&self) -> Result<Vec<String>, TemplateError> {
        let index: BTreeMap<&str, usize> = self
            .resources
            .iter()
            .enumerate()
            .map(|(i, r)| (r.name.as_str(), i))
            .collect();
        let mut done = vec![false; self.resources.len()];
        let mut order = Vec::with_capacity(self.resources.len());
        while order.len() < self.resources.len() {
            let next = self.resources.iter().enumerate().find(|(i, r)| {
                !done[*i]
                    && r.depends_on
                        .iter()
                        .all(|d| index.get(d.as_str()).is_none_or(|&j| done[j]))
            });
            match next {
                Some((i, r)) => {
                    done[i] = true;
                    order.push(r.name.clone());
                }
                None => {
                    let rest: Vec<&str> = self
                        .resources
                        .iter()
                        .enumerate()
                        .filter(|(i, _)| !done[*i])
                        .map(|(_, r)| r.name.as_str())
                        .collect();
                    return Err(TemplateError::Cycle(rest.join(", ")));
                }
            }
        }
        Ok(order)
    }

    /// The resource named `name`.
    pub fn resource(&self, name: &str) -> Option<&ResourceDef> {
        self.resources.iter().find(|r| r.name == name)
    }

    /// The typed parameter values of a stack: sent values over defaults, typed as `get_param`
    /// yields them. Undeclared sent parameters are an error in `strict` mode and otherwise
    /// kept as sent (so templates without a `parameters:` section still see them).
    pub fn typed_parameters(
        &self,
        sent: &Map<String, Value>,
        strict: bool,
    ) -> Result<Map<String, Value>, ParameterError> {
        let mut out = Map::new();
        for p in &self.parameters {
            let given = sent.get(&p.name).filter(|v| !v.is_null());
            if given.is_none() && p.default.is_none() {
                return Err(ParameterError::Missing(p.name.clone()));
            }
            check_type(p, given.or(p.default.as_ref()))?;
            out.insert(p.name.clone(), p.typed_value(sent.get(&p.name)));
        }
        for (name, v) in sent {
            if out.contains_key(name) {
                continue;
            }
            if strict {
                return Err(ParameterError::Undeclared(name.clone()));
            }
            out.insert(name.clone(), v.clone());
        }
        Ok(out)
    }
}

fn check_type(p: &HeatParamSchema, v: Option<&Value>) -> Result<(), ParameterError> {
    let invalid = |reason: String| ParameterError::Invalid {
        name: p.name.clone(),
        reason,
    };
    let Some(v) = v else { return Ok(()) };
    match (p.kind, v) {
        (HeatParamType::Number, Value::Number(_)) => Ok(()),
        (HeatParamType::Number, Value::String(s)) if s.trim().parse::<f64>().is_ok() => Ok(()),
        (HeatParamType::Number, other) => Err(invalid(format!(
            "could not convert {} to a number",
            text_for_replace(other)
        ))),
        (HeatParamType::Boolean, Value::Bool(_) | Value::Number(_)) => Ok(()),
        (HeatParamType::Boolean, Value::String(s))
            if matches!(
                s.trim().to_ascii_lowercase().as_str(),
                "t" | "true" | "on" | "y" | "yes" | "1" | "f" | "false" | "off" | "n" | "no" | "0"
            ) =>
        {
            Ok(())
        }
        (HeatParamType::Boolean, other) => Err(invalid(format!(
            "Unrecognized value \"{}\", acceptable values are: true, false",
            text_for_replace(other)
        ))),
        (HeatParamType::Json, Value::String(s)) if serde_json::from_str::<Value>(s).is_err() => {
            Err(invalid("not valid JSON".into()))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_orders_and_types() {
        let t = HotTemplate::parse(
            "heat_template_version: 2013-05-23\nparameters:\n  n: {type: number, default: 3}\n  s: {type: string}\nresources:\n  b:\n    type: X\n    properties: {r: {get_resource: a}}\n  a:\n    type: Y\n    depends_on: [c]\n  c: {type: Z}\noutputs:\n  o: {value: {get_attr: [b, x]}}\n",
        )
        .unwrap();
        assert_eq!(t.version, "2013-05-23");
        assert_eq!(t.creation_order().unwrap(), vec!["c", "a", "b"]);
        assert_eq!(t.outputs[0].description, "No description given");
        let Value::Object(sent) = json!({"s": 5, "n": "7"}) else {
            unreachable!()
        };
        let p = t.typed_parameters(&sent, true).unwrap();
        assert_eq!(Value::Object(p), json!({"n": 7, "s": 5}));
        assert_eq!(
            t.typed_parameters(&Map::new(), true),
            Err(ParameterError::Missing("s".into()))
        );
        let Value::Object(bad) = json!({"s": "x", "n": "seven"}) else {
            unreachable!()
        };
        assert!(matches!(
            t.typed_parameters(&bad, true),
            Err(ParameterError::Invalid { .. })
        ));
    }

    #[test]
    fn cycles_and_unknown_names_are_errors() {
        let cyc = HotTemplate::parse(
            "heat_template_version: 2013-05-23\nresources:\n  a: {type: X, depends_on: b}\n  b: {type: X, properties: {x: {get_attr: [a, y]}}}\n",
        )
        .unwrap();
        assert!(matches!(cyc.creation_order(), Err(TemplateError::Cycle(_))));
        assert!(matches!(
            HotTemplate::parse(
                "heat_template_version: 1\nresources:\n  a: {type: X, depends_on: zz}\n"
            ),
            Err(TemplateError::UnknownResource { .. })
        ));
        assert!(matches!(
            HotTemplate::parse("heat_template_version: 1\nresources:\n  a: {type: X, properties: {p: {get_param: q}}}\n"),
            Err(TemplateError::UnknownParameter { .. })
        ));
    }
}
