//! The template-path mini-language that selects a Heat template id from a
//! job's `resource_input` (EXEC.md "Template id", mappings.md §2.7).
//!
//! ```text
//! "C<text>"                     constant
//! "P<field>"                    resource_input[field]
//! "A<part>&<part>…"             concatenation of C/P parts
//! {"constant": json}            constant (null = no template)
//! {"field": f}                  resource_input[f]
//! {"concatenate": [operand…]}   concatenation
//! {"if_mapping": {"equal"|"regexp": [a, b]}, "then_mapping": p, "else_mapping": p}
//! ```
//!
//! `regexp [value, pattern]` has Python `re.match` semantics (anchored at the
//! start only); a `null` value never matches. Decisions for unrecorded
//! inputs (open-questions M6/M7): numbers print as JSON text and booleans as
//! `True`/`False` inside concatenations; a `null`, object or array part is an
//! error, so no template named `ese_device_None` is ever looked up.

use serde_json::{Map, Value};

use super::pytext;

/// Errors of parsing or evaluating a template path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplatePathError {
    /// The path text or structure is not part of the language.
    #[error("malformed template path {path}: {reason}")]
    Malformed {
        /// The offending path (JSON text).
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// A concatenation part is `null` (e.g. a missing field).
    #[error("template path part {part} is null")]
    NullInConcatenation {
        /// The part (e.g. `Pexisting`).
        part: String,
    },
    /// A concatenation part is an object or array.
    #[error("template path part {part} is not a scalar")]
    NotAScalar {
        /// The part.
        part: String,
    },
    /// The evaluated path is not a string (or null).
    #[error("template path yields a non-string template id: {value}")]
    NotAString {
        /// The value (JSON text).
        value: String,
    },
    /// A `regexp` pattern does not compile.
    #[error("invalid regular expression {pattern:?} in template path: {reason}")]
    InvalidRegex {
        /// The pattern.
        pattern: String,
        /// The regex error.
        reason: String,
    },
}

/// A parsed template path.
#[derive(Debug, Clone, PartialEq)]
pub enum TemplatePath {
    /// A constant (`C…` or `{"constant": …}`); `null` = no template.
    Constant(Value),
    /// A field of `resource_input` (`P…`, `{"field": …}`), or a nested
    /// key path (`{"nested": [a, b]}`).
    Field(Vec<String>),
    /// Concatenation of the parts' texts (`A…&…`, `{"concatenate": […]}`).
    Concat(Vec<TemplatePath>),
    /// Conditional selection.
    If {
        /// The condition.
        condition: Box<Condition>,
        /// Path when the condition holds.
        then_path: Box<TemplatePath>,
        /// Path otherwise.
        else_path: Box<TemplatePath>,
    },
}

/// A condition of an `if_mapping`.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    /// Both operands equal as JSON values.
    Equal(TemplatePath, TemplatePath),
    /// `re.match(pattern, value)`: `(value, pattern)`.
    Regexp(TemplatePath, TemplatePath),
}

impl TemplatePath {
    /// Parses the JSON form stored in the schema / HeatWorker mapping.
    pub fn parse(v: &Value) -> Result<Self, TemplatePathError> {
        let malformed = |reason: &str| TemplatePathError::Malformed {
            path: v.to_string(),
            reason: reason.to_string(),
        };
        match v {
            Value::String(s) => Self::parse_text(s).map_err(|r| malformed(&r)),
            Value::Object(m) => {
                if let Some(c) = m.get("constant") {
                    return Ok(TemplatePath::Constant(c.clone()));
                }
                if let Some(f) = m.get("field") {
                    return f
                        .as_str()
                        .map(|f| TemplatePath::Field(vec![f.to_string()]))
                        .ok_or_else(|| malformed("field is not a string"));
                }
                if let Some(Value::Array(parts)) = m.get("concatenate") {
                    return parts
                        .iter()
                        .map(Self::parse_operand)
                        .collect::<Result<Vec<_>, _>>()
                        .map(TemplatePath::Concat);
                }
                if let Some(Value::Array(keys)) = m.get("nested") {
                    let names: Option<Vec<String>> = keys
                        .iter()
                        .map(|k| k.as_str().map(str::to_string))
                        .collect();
                    return names
                        .map(TemplatePath::Field)
                        .ok_or_else(|| malformed("nested keys must be strings"));
                }
                if let Some(cond) = m.get("if_mapping") {
                    let then_path = m
                        .get("then_mapping")
                        .ok_or_else(|| malformed("if_mapping without then_mapping"))?;
                    let else_path = m
                        .get("else_mapping")
                        .ok_or_else(|| malformed("if_mapping without else_mapping"))?;
                    return Ok(TemplatePath::If {
                        condition: Box::new(Self::parse_condition(cond)?),
                        then_path: Box::new(Self::parse(then_path)?),
                        else_path: Box::new(Self::parse(else_path)?),
                    });
                }
                Err(malformed("no known discriminating key"))
            }
            Value::Null => Ok(TemplatePath::Constant(Value::Null)),
            _ => Err(malformed("not a string or object")),
        }
    }

    fn parse_operand(v: &Value) -> Result<Self, TemplatePathError> {
        match v {
            // a bare JSON string inside a condition/concatenation is a literal
            Value::String(s) => Ok(TemplatePath::Constant(Value::String(s.clone()))),
            other => Self::parse(other),
        }
    }

    fn parse_condition(v: &Value) -> Result<Condition, TemplatePathError> {
        let malformed = |reason: &str| TemplatePathError::Malformed {
            path: v.to_string(),
            reason: reason.to_string(),
        };
        let Value::Object(m) = v else {
            return Err(malformed("condition is not an object"));
        };
        let (kind, args) = if let Some(a) = m.get("regexp") {
            ("regexp", a)
        } else if let Some(a) = m.get("equal") {
            ("equal", a)
        } else {
            return Err(malformed("condition is neither equal nor regexp"));
        };
        let Some([a, b]) = args.as_array().map(Vec::as_slice) else {
            return Err(malformed("condition needs exactly two operands"));
        };
        let (a, b) = (Self::parse_operand(a)?, Self::parse_operand(b)?);
        Ok(if kind == "regexp" {
            Condition::Regexp(a, b)
        } else {
            Condition::Equal(a, b)
        })
    }

    fn parse_text(s: &str) -> Result<Self, String> {
        let mut chars = s.chars();
        match chars.next() {
            Some('C') => Ok(TemplatePath::Constant(Value::String(chars.as_str().into()))),
            Some('P') => Ok(TemplatePath::Field(vec![chars.as_str().into()])),
            Some('A') => chars
                .as_str()
                .split('&')
                .map(|part| match Self::parse_text(part)? {
                    p @ (TemplatePath::Constant(_) | TemplatePath::Field(_)) => Ok(p),
                    _ => Err(format!("part {part:?} must be C… or P…")),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(TemplatePath::Concat),
            _ => Err(format!("unknown tag letter in {s:?}")),
        }
    }

    /// Evaluates the path on `resource_input`, giving the template id or
    /// `None` when the path selects "no template".
    pub fn template_id(
        &self,
        input: &Map<String, Value>,
    ) -> Result<Option<String>, TemplatePathError> {
        match self.eval(input)? {
            Value::Null => Ok(None),
            Value::String(s) => Ok(Some(s)),
            other => Err(TemplatePathError::NotAString {
                value: other.to_string(),
            }),
        }
    }

    fn eval(&self, input: &Map<String, Value>) -> Result<Value, TemplatePathError> {
        match self {
            TemplatePath::Constant(v) => Ok(v.clone()),
            TemplatePath::Field(f) => Ok(read_field(input, f)),
            TemplatePath::Concat(parts) => {
                let mut out = String::new();
                for p in parts {
                    out.push_str(&concat_text(p, &p.eval(input)?)?);
                }
                Ok(Value::String(out))
            }
            TemplatePath::If {
                condition,
                then_path,
                else_path,
            } => {
                if condition.holds(input)? {
                    then_path.eval(input)
                } else {
                    else_path.eval(input)
                }
            }
        }
    }

    fn describe(&self) -> String {
        match self {
            TemplatePath::Constant(v) => format!("C{}", v.as_str().unwrap_or(&v.to_string())),
            TemplatePath::Field(f) => format!("P{}", f.join(".")),
            other => format!("{other:?}"),
        }
    }
}

fn read_field(input: &Map<String, Value>, keys: &[String]) -> Value {
    let Some((first, rest)) = keys.split_first() else {
        return Value::Null;
    };
    let mut cur = input.get(first).cloned().unwrap_or(Value::Null);
    for k in rest {
        cur = cur.get(k).cloned().unwrap_or(Value::Null);
    }
    cur
}

fn concat_text(part: &TemplatePath, v: &Value) -> Result<String, TemplatePathError> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(_) | Value::Bool(_) => Ok(pytext::py3_str(v)),
        Value::Null => Err(TemplatePathError::NullInConcatenation {
            part: part.describe(),
        }),
        _ => Err(TemplatePathError::NotAScalar {
            part: part.describe(),
        }),
    }
}

impl Condition {
    fn holds(&self, input: &Map<String, Value>) -> Result<bool, TemplatePathError> {
        match self {
            Condition::Equal(a, b) => Ok(a.eval(input)? == b.eval(input)?),
            Condition::Regexp(value, pattern) => {
                let value = value.eval(input)?;
                let pattern = pattern.eval(input)?;
                let text = match &value {
                    Value::Null => return Ok(false),
                    v => pytext::py3_str(v),
                };
                let pattern = pytext::py3_str(&pattern);
                super::render::python_re_match(&pattern, &text).map_err(|e| {
                    TemplatePathError::InvalidRegex {
                        pattern,
                        reason: e.to_string(),
                    }
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn id(path: Value, input: Value) -> Result<Option<String>, TemplatePathError> {
        let Value::Object(m) = input else { panic!() };
        TemplatePath::parse(&path)?.template_id(&m)
    }

    #[test]
    fn constant_field_and_concat() {
        assert_eq!(
            id(json!("Cnet"), json!({})).unwrap().as_deref(),
            Some("net")
        );
        assert_eq!(
            id(json!("ACdev_&Pkind"), json!({"kind": "old"}))
                .unwrap()
                .as_deref(),
            Some("dev_old")
        );
        assert_eq!(
            id(json!("ACdev_&Pn"), json!({"n": 2})).unwrap().as_deref(),
            Some("dev_2")
        );
        assert!(matches!(
            id(json!("ACdev_&Pmissing"), json!({})),
            Err(TemplatePathError::NullInConcatenation { .. })
        ));
        assert!(id(json!("Xbad"), json!({})).is_err());
    }

    #[test]
    fn regexp_is_anchored_at_start_only() {
        let path = json!({"if_mapping": {"regexp": [{"field": "o"}, {"constant": "net:a|net:b"}]},
                          "then_mapping": {"constant": null}, "else_mapping": {"constant": "p"}});
        assert_eq!(id(path.clone(), json!({"o": "net:a"})).unwrap(), None);
        assert_eq!(id(path.clone(), json!({"o": "net:bx"})).unwrap(), None);
        assert_eq!(
            id(path.clone(), json!({"o": "x net:a"}))
                .unwrap()
                .as_deref(),
            Some("p")
        );
        assert_eq!(id(path, json!({"o": null})).unwrap().as_deref(), Some("p"));
    }

    #[test]
    fn equal_condition() {
        let path = json!({"if_mapping": {"equal": [{"field": "t"}, "a"]},
                          "then_mapping": "Cyes", "else_mapping": "Cno"});
        assert_eq!(
            id(path.clone(), json!({"t": "a"})).unwrap().as_deref(),
            Some("yes")
        );
        assert_eq!(id(path, json!({"t": 1})).unwrap().as_deref(), Some("no"));
    }
}
