//! Evaluating parsed mappings against a resource and the resources it relates to.
//!
//! Semantics: `shared/spec/mappings.md` §2. Every mapping yields an [`Evaluated`] triple
//! (type, value, resource chain).

use super::ast::{Condition, Hop, Items, Mapping, Pattern};
use super::parse::compile_anchored;
use super::EvalError;
use crate::model::{ParamType, ResourceRef};
use serde_json::{json, Value};

/// Read access to resource bodies, as they are at the moment of the change.
pub trait ResourceView {
    /// The body of resource `(resource_type, id)`, or `None` when it does not exist.
    fn body(&self, resource_type: &str, id: &str) -> Option<&Value>;
}

/// Relation fields of resource types (from the schemas).
pub trait Relations {
    /// The target type of relation field `field` of type `resource_type`, if it is one.
    fn relation(&self, resource_type: &str, field: &str) -> Option<&str>;
}

/// The resource a mapping is evaluated for.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    /// Its type.
    pub resource_type: &'a str,
    /// Its id.
    pub resource_id: &'a str,
    /// The config version of the change.
    pub version: u64,
    /// The body the mapping reads.
    pub body: &'a Value,
}

/// The result of evaluating one mapping.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluated {
    /// `value`, `output_key` or `list`.
    pub kind: ParamType,
    /// The value.
    pub value: Value,
    /// Every resource visited, in visit order.
    pub resources: Vec<ResourceRef>,
}

impl Evaluated {
    fn value(value: Value) -> Self {
        Self {
            kind: ParamType::Value,
            value,
            resources: Vec::new(),
        }
    }
}

static NULL: Value = Value::Null;

/// Evaluates mappings against a view of the world.
pub struct Evaluator<'a> {
    relations: &'a dyn Relations,
    view: &'a dyn ResourceView,
}

#[derive(Clone, Copy)]
struct Ctx<'a> {
    subject: Subject<'a>,
    element: Option<&'a Value>,
}

impl<'a> Ctx<'a> {
    fn read(&self, field: &str) -> &'a Value {
        match self.element {
            Some(e) if field.is_empty() => e,
            Some(e) => e.get(field).unwrap_or(&NULL),
            None => self.subject.body.get(field).unwrap_or(&NULL),
        }
    }
}

/// Where a walk currently stands.
struct Cursor<'a> {
    resource_type: String,
    body: &'a Value,
    /// Still at the context (first hop), which may be a loop element.
    at_context: bool,
}

enum Walked<'a> {
    Reached(Cursor<'a>, Vec<ResourceRef>),
    Missing,
}

impl<'a> Evaluator<'a> {
    /// Builds an evaluator over schema relations and a resource view.
    pub fn new(relations: &'a dyn Relations, view: &'a dyn ResourceView) -> Self {
        Self { relations, view }
    }

    /// Evaluates `mapping` for `subject` at resource level; `param` names the sub-params of a
    /// `list` result.
    pub fn evaluate<'s>(
        &self,
        mapping: &Mapping,
        subject: Subject<'s>,
        param: &str,
    ) -> Result<Evaluated, EvalError>
    where
        'a: 's,
    {
        self.eval(
            mapping,
            Ctx {
                subject,
                element: None,
            },
            param,
        )
    }

    /// Evaluates a template path: `Ok(None)` for "no template".
    pub fn template_id<'s>(
        &self,
        path: &Mapping,
        subject: Subject<'s>,
    ) -> Result<Option<String>, EvalError>
    where
        'a: 's,
    {
        match self.evaluate(path, subject, "")?.value {
            Value::Null => Ok(None),
            Value::String(s) => Ok(Some(s)),
            other => Err(EvalError::TemplateIdNotAString {
                found: json_kind(&other),
            }),
        }
    }

    fn eval<'s>(&self, m: &Mapping, ctx: Ctx<'s>, name: &str) -> Result<Evaluated, EvalError>
    where
        'a: 's,
    {
        Ok(match m {
            Mapping::Read(f) => Evaluated::value(ctx.read(f).clone()),
            Mapping::Text(t) => Evaluated::value(Value::String(t.clone())),
            Mapping::Constant(c) => Evaluated::value(c.clone()),
            Mapping::Version => Evaluated::value(Value::from(ctx.subject.version)),
            Mapping::Nested(keys) => {
                let mut cur = ctx.read(&keys[0]);
                for k in &keys[1..] {
                    cur = match cur {
                        Value::Object(o) => o.get(k).unwrap_or(&NULL),
                        _ => &NULL,
                    };
                }
                Evaluated::value(cur.clone())
            }
            Mapping::Concat(parts) => {
                let mut text = String::new();
                let mut resources = Vec::new();
                for (i, part) in parts.iter().enumerate() {
                    let r = self.eval(part, ctx, name)?;
                    append_text(&mut text, &r.value, i)?;
                    resources.extend(r.resources);
                }
                Evaluated {
                    kind: ParamType::Value,
                    value: Value::String(text),
                    resources,
                }
            }
            Mapping::Field(f) => {
                let value = ctx.read(f).clone();
                let mut resources = Vec::new();
                if ctx.element.is_none() {
                    if let (Some(target), Value::String(id)) = (
                        self.relations.relation(ctx.subject.resource_type, f),
                        &value,
                    ) {
                        if !id.is_empty() {
                            resources.push(ResourceRef::new(target, id.clone()));
                        }
                    }
                }
                Evaluated {
                    kind: ParamType::Value,
                    value,
                    resources,
                }
            }
            Mapping::Walk {
                path,
                field,
                ignore_missing,
            } => match self.walk(path, ctx, *ignore_missing)? {
                Walked::Reached(cur, resources) => {
                    let value = if cur.at_context {
                        ctx.read(field).clone()
                    } else {
                        cur.body.get(field).cloned().unwrap_or(Value::Null)
                    };
                    Evaluated {
                        kind: ParamType::Value,
                        value,
                        resources,
                    }
                }
                Walked::Missing => Evaluated::value(Value::String(String::new())),
            },
            Mapping::RelatedOutput {
                resource_type,
                id_field,
                output_key,
            } => match ctx.read(id_field) {
                Value::String(id) if !id.is_empty() => Evaluated {
                    kind: ParamType::OutputKey,
                    value: output_ref(output_key, resource_type, id),
                    resources: vec![ResourceRef::new(resource_type.clone(), id.clone())],
                },
                Value::Null | Value::String(_) => {
                    return Err(EvalError::NullRelation {
                        field: id_field.clone(),
                    })
                }
                other => {
                    return Err(EvalError::IdNotAString {
                        field: id_field.clone(),
                        found: json_kind(other),
                    })
                }
            },
            Mapping::Output {
                output_key,
                path,
                ignore_missing,
            } => {
                if path.is_empty() {
                    Evaluated {
                        kind: ParamType::OutputKey,
                        value: output_ref(
                            output_key,
                            ctx.subject.resource_type,
                            ctx.subject.resource_id,
                        ),
                        resources: Vec::new(),
                    }
                } else {
                    match self.walk(path, ctx, *ignore_missing)? {
                        Walked::Reached(_, resources) => {
                            let last = resources.last().cloned().unwrap_or_else(|| {
                                ResourceRef::new(ctx.subject.resource_type, ctx.subject.resource_id)
                            });
                            Evaluated {
                                kind: ParamType::OutputKey,
                                value: output_ref(
                                    output_key,
                                    &last.resource_type,
                                    &last.resource_id,
                                ),
                                resources,
                            }
                        }
                        Walked::Missing => Evaluated::value(Value::String(String::new())),
                    }
                }
            }
            Mapping::ForEach { items, each } => self.for_each(items, each, ctx, name)?,
            Mapping::If {
                cond,
                then,
                otherwise,
            } => {
                if self.condition(cond, ctx, name)? {
                    self.eval(then, ctx, name)?
                } else {
                    self.eval(otherwise, ctx, name)?
                }
            }
        })
    }

    fn for_each<'s>(
        &self,
        items: &Items,
        each: &Mapping,
        ctx: Ctx<'s>,
        name: &str,
    ) -> Result<Evaluated, EvalError>
    where
        'a: 's,
    {
        let (list, mut resources, field_name): (Value, Vec<ResourceRef>, String) = match items {
            Items::Field(f) => (ctx.read(f).clone(), Vec::new(), f.clone()),
            Items::Mapping(m) => {
                let r = self.eval(m, ctx, name)?;
                (r.value, r.resources, "for_field".to_string())
            }
        };
        let elements = match list {
            Value::Null => Vec::new(),
            Value::Array(a) => a,
            other => {
                return Err(EvalError::NotAList {
                    field: field_name,
                    found: json_kind(&other),
                })
            }
        };
        let mut subs = Vec::with_capacity(elements.len());
        for element in &elements {
            let r = self.eval(
                each,
                Ctx {
                    subject: ctx.subject,
                    element: Some(element),
                },
                name,
            )?;
            subs.push(r);
        }
        let all_values = subs.iter().all(|s| s.kind == ParamType::Value);
        let mut values = Vec::with_capacity(subs.len());
        for s in subs {
            resources.extend(s.resources);
            values.push(if all_values {
                s.value
            } else {
                json!({"param": name, "type": s.kind.as_str(), "value": s.value, "resources": []})
            });
        }
        Ok(Evaluated {
            kind: if all_values {
                ParamType::Value
            } else {
                ParamType::List
            },
            value: Value::Array(values),
            resources,
        })
    }

    fn walk<'s>(
        &self,
        path: &[Hop],
        ctx: Ctx<'s>,
        ignore_missing: bool,
    ) -> Result<Walked<'s>, EvalError>
    where
        'a: 's,
    {
        let mut cur = Cursor {
            resource_type: ctx.subject.resource_type.to_string(),
            body: ctx.subject.body,
            at_context: true,
        };
        let mut visited = Vec::with_capacity(path.len());
        for (hop_index, hop) in path.iter().enumerate() {
            let read = |field: &str| -> &'s Value {
                if cur.at_context {
                    ctx.read(field)
                } else {
                    cur.body.get(field).unwrap_or(&NULL)
                }
            };
            let (target, id_field): (String, String) = match hop {
                Hop::Typed {
                    resource_type,
                    id_field,
                } => (resource_type.clone(), id_field.clone()),
                Hop::Relation(r) => (self.relation_of(&cur.resource_type, r)?, r.clone()),
                Hop::Computed(operands) => {
                    let mut name = String::new();
                    for (i, op) in operands.iter().enumerate() {
                        let v = if cur.at_context {
                            self.eval(op, ctx, "")?.value
                        } else {
                            let sub = Ctx {
                                subject: Subject {
                                    resource_type: &cur.resource_type,
                                    resource_id: "",
                                    version: ctx.subject.version,
                                    body: cur.body,
                                },
                                element: None,
                            };
                            self.eval(op, sub, "")?.value
                        };
                        append_text(&mut name, &v, i)?;
                    }
                    (self.relation_of(&cur.resource_type, &name)?, name)
                }
            };
            let id = match read(&id_field) {
                Value::String(s) if !s.is_empty() => s.clone(),
                Value::Null | Value::String(_) => {
                    if ignore_missing {
                        return Ok(Walked::Missing);
                    }
                    return Err(EvalError::EmptyRelation {
                        hop: hop_index,
                        field: id_field,
                        target,
                    });
                }
                other => {
                    return Err(EvalError::IdNotAString {
                        field: id_field,
                        found: json_kind(other),
                    })
                }
            };
            let body = match self.view.body(&target, &id) {
                Some(b) => b,
                None if ignore_missing => return Ok(Walked::Missing),
                None => {
                    return Err(EvalError::MissingResource {
                        hop: hop_index,
                        target: ResourceRef::new(target, id),
                    })
                }
            };
            visited.push(ResourceRef::new(target.clone(), id));
            cur = Cursor {
                resource_type: target,
                body,
                at_context: false,
            };
        }
        Ok(Walked::Reached(cur, visited))
    }

    fn relation_of(&self, resource_type: &str, field: &str) -> Result<String, EvalError> {
        self.relations
            .relation(resource_type, field)
            .map(str::to_string)
            .ok_or_else(|| EvalError::UnknownRelation {
                resource_type: resource_type.to_string(),
                field: field.to_string(),
            })
    }

    fn condition<'s>(&self, c: &Condition, ctx: Ctx<'s>, name: &str) -> Result<bool, EvalError>
    where
        'a: 's,
    {
        match c {
            Condition::Equal(a, b) => {
                Ok(self.eval(a, ctx, name)?.value == self.eval(b, ctx, name)?.value)
            }
            Condition::Regexp(value, pattern) => {
                let v = self.eval(value, ctx, name)?.value;
                let text = match &v {
                    Value::Null => return Ok(false),
                    Value::String(s) => s.clone(),
                    Value::Bool(true) => "True".to_string(),
                    Value::Bool(false) => "False".to_string(),
                    other => other.to_string(),
                };
                match pattern {
                    Pattern::Static(re) => Ok(re.is_match(&text)),
                    Pattern::Dynamic(m) => match self.eval(m, ctx, name)?.value {
                        Value::String(p) => {
                            let re = compile_anchored(&p)
                                .map_err(|reason| EvalError::InvalidRegex { pattern: p, reason })?;
                            Ok(re.is_match(&text))
                        }
                        other => Err(EvalError::InvalidRegex {
                            pattern: other.to_string(),
                            reason: "the pattern is not a string".to_string(),
                        }),
                    },
                }
            }
        }
    }
}

fn output_ref(key: &str, resource_type: &str, resource_id: &str) -> Value {
    json!({"output_key": key, "resource_type": resource_type, "resource_id": resource_id})
}

/// Appends the text form of a concatenation part (spec mappings.md §4.7).
fn append_text(out: &mut String, v: &Value, part: usize) -> Result<(), EvalError> {
    match v {
        Value::String(s) => out.push_str(s),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::Bool(true) => out.push_str("True"),
        Value::Bool(false) => out.push_str("False"),
        Value::Null => return Err(EvalError::NullInConcatenation { part }),
        Value::Array(_) | Value::Object(_) => {
            return Err(EvalError::NotAScalar {
                part,
                found: json_kind(v),
            })
        }
    }
    Ok(())
}

/// A short name of a JSON value's type, for error messages.
pub fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "list",
        Value::Object(_) => "object",
    }
}
