//! Heat's display of stack parameters (`heat stack-show`), for a fake Heat
//! and for comparisons with recorded transcripts (EXEC.md "Heat's view of
//! parameters", execution.md §8).
//!
//! Heat prints every declared parameter as a string:
//!
//! * `hidden: true` → `******`, whatever the value;
//! * not sent or sent as `null` → the template default, printed by the rules
//!   below (no default: `null` for `json`, empty text otherwise);
//! * `number` → decimal text; `boolean` → `True`/`False`;
//!   `comma_delimited_list` → items joined by `,`;
//! * `json` → JSON text; an empty value (`[]`, `{}`) prints the default if
//!   there is one, else `null`;
//! * `string` → the text; numbers/booleans as Python text; a dict/list as its
//!   CPython 2 repr (compare with [`CompareMode::PyRepr`]).
//!
//! Inside the stack, `get_param` yields the typed value instead — see
//! [`HeatParamSchema::typed_value`].

use serde_json::{Map, Value};

use super::pytext;

/// Errors reading a template's `parameters:` section.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeatViewError {
    /// `parameters` is not a mapping, or a parameter is not a mapping.
    #[error("template parameter {name}: {reason}")]
    MalformedParameter {
        /// Parameter name (`<parameters>` for the section itself).
        name: String,
        /// What is wrong.
        reason: String,
    },
}

/// HOT parameter types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeatParamType {
    /// `string`.
    String,
    /// `number`.
    Number,
    /// `boolean`.
    Boolean,
    /// `comma_delimited_list`.
    CommaDelimitedList,
    /// `json`.
    Json,
}

impl HeatParamType {
    /// Parses a HOT (or CFN-style) type name.
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "string" => Some(Self::String),
            "number" => Some(Self::Number),
            "boolean" => Some(Self::Boolean),
            "comma_delimited_list" | "commadelimitedlist" => Some(Self::CommaDelimitedList),
            "json" => Some(Self::Json),
            _ => None,
        }
    }
}

/// The declaration of one template parameter.
#[derive(Debug, Clone, PartialEq)]
pub struct HeatParamSchema {
    /// Parameter name.
    pub name: String,
    /// Declared type.
    pub kind: HeatParamType,
    /// `default`, if declared.
    pub default: Option<Value>,
    /// `hidden: true`.
    pub hidden: bool,
}

/// How a displayed value is compared with a recorded one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareMode {
    /// Exact text.
    Exact,
    /// Both sides parsed as JSON.
    Json,
    /// Both sides parsed as Python literals (CPython 2 dict order).
    PyRepr,
}

impl CompareMode {
    /// Parses `exact` / `json` / `pyrepr`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "exact" => Some(Self::Exact),
            "json" => Some(Self::Json),
            "pyrepr" => Some(Self::PyRepr),
            _ => None,
        }
    }

    /// Whether `expected` and `actual` are equal under this mode. A side
    /// that does not parse falls back to exact comparison.
    pub fn equal(self, expected: &str, actual: &str) -> bool {
        match self {
            CompareMode::Exact => expected == actual,
            CompareMode::Json => {
                match (
                    serde_json::from_str::<Value>(expected),
                    serde_json::from_str::<Value>(actual),
                ) {
                    (Ok(a), Ok(b)) => a == b,
                    _ => expected == actual,
                }
            }
            CompareMode::PyRepr => {
                match (
                    pytext::parse_py_literal(expected),
                    pytext::parse_py_literal(actual),
                ) {
                    (Ok(a), Ok(b)) => a == b,
                    _ => expected == actual,
                }
            }
        }
    }
}

/// One parameter as Heat prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisplayedParam {
    /// The printed text.
    pub text: String,
    /// How to compare it with a recording.
    pub compare: CompareMode,
}

/// Reads the `parameters:` section of a parsed template (declaration order).
pub fn template_parameters(template: &Value) -> Result<Vec<HeatParamSchema>, HeatViewError> {
    let params = match template.get("parameters") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Object(m)) => m,
        Some(_) => {
            return Err(HeatViewError::MalformedParameter {
                name: "<parameters>".into(),
                reason: "not a mapping".into(),
            })
        }
    };
    params
        .iter()
        .map(|(name, decl)| {
            let bad = |reason: &str| HeatViewError::MalformedParameter {
                name: name.clone(),
                reason: reason.into(),
            };
            let Value::Object(d) = decl else {
                return Err(bad("declaration is not a mapping"));
            };
            let type_name = d
                .get("type")
                .and_then(Value::as_str)
                .ok_or_else(|| bad("no type"))?;
            let kind = HeatParamType::parse(type_name)
                .ok_or_else(|| bad(&format!("unknown type {type_name}")))?;
            let hidden = match d.get("hidden") {
                Some(Value::Bool(b)) => *b,
                Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
                _ => false,
            };
            Ok(HeatParamSchema {
                name: name.clone(),
                kind,
                default: d.get("default").cloned(),
                hidden,
            })
        })
        .collect()
}

fn is_empty_container(v: &Value) -> bool {
    match v {
        Value::Array(a) => a.is_empty(),
        Value::Object(m) => m.is_empty(),
        Value::String(s) => s.is_empty(),
        Value::Null => true,
        _ => false,
    }
}

fn number_text(v: &Value) -> String {
    match v {
        Value::String(s) => {
            let t = s.trim();
            if let Ok(i) = t.parse::<i64>() {
                i.to_string()
            } else if let Ok(f) = t.parse::<f64>() {
                pytext::py_float(f, "inf", "nan")
            } else {
                s.clone()
            }
        }
        other => pytext::py3_str(other),
    }
}

fn bool_value(v: &Value) -> bool {
    match v {
        Value::Bool(b) => *b,
        Value::String(s) => matches!(
            s.trim().to_ascii_lowercase().as_str(),
            "t" | "true" | "on" | "y" | "yes" | "1"
        ),
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        _ => false,
    }
}

impl HeatParamSchema {
    /// How Heat prints this parameter when `sent` was sent (`None` = not sent).
    pub fn display(&self, sent: Option<&Value>) -> DisplayedParam {
        let exact = |text: String| DisplayedParam {
            text,
            compare: CompareMode::Exact,
        };
        if self.hidden {
            return exact("******".into());
        }
        let mut value = sent.filter(|v| !v.is_null());
        if self.kind == HeatParamType::Json && value.is_some_and(is_empty_container) {
            value = None;
        }
        let Some(value) = value.or(self.default.as_ref().filter(|v| !v.is_null())) else {
            return match self.kind {
                HeatParamType::Json => DisplayedParam {
                    text: "null".into(),
                    compare: CompareMode::Json,
                },
                _ => exact(String::new()),
            };
        };
        match self.kind {
            HeatParamType::Number => exact(number_text(value)),
            HeatParamType::Boolean => {
                exact(if bool_value(value) { "True" } else { "False" }.into())
            }
            HeatParamType::CommaDelimitedList => exact(match value {
                Value::Array(items) => items
                    .iter()
                    .map(pytext::py3_str)
                    .collect::<Vec<_>>()
                    .join(","),
                Value::String(s) if s.is_empty() => String::new(),
                Value::String(s) => s.split(',').map(str::trim).collect::<Vec<_>>().join(","),
                other => pytext::py3_str(other),
            }),
            HeatParamType::Json => DisplayedParam {
                text: match value {
                    Value::String(s) => match serde_json::from_str::<Value>(s) {
                        Ok(v) => pytext::json_dumps(&v),
                        Err(_) => s.clone(),
                    },
                    other => pytext::json_dumps(other),
                },
                compare: CompareMode::Json,
            },
            HeatParamType::String => match value {
                Value::Array(_) | Value::Object(_) => DisplayedParam {
                    text: pytext::py2_repr(value),
                    compare: CompareMode::PyRepr,
                },
                other => exact(pytext::py3_str(other)),
            },
        }
    }

    /// The typed value `get_param` yields inside the stack: `number` →
    /// number, `boolean` → bool, `comma_delimited_list` → list, other types
    /// keep whatever JSON value was sent (a `string` parameter sent `20`
    /// yields `20`); not sent / `null` → the default.
    pub fn typed_value(&self, sent: Option<&Value>) -> Value {
        let value = sent
            .filter(|v| !v.is_null())
            .or(self.default.as_ref())
            .cloned()
            .unwrap_or(Value::Null);
        match (self.kind, &value) {
            (HeatParamType::Number, Value::String(s)) => {
                let t = s.trim();
                t.parse::<i64>()
                    .map(Value::from)
                    .ok()
                    .or_else(|| {
                        t.parse::<f64>()
                            .ok()
                            .and_then(serde_json::Number::from_f64)
                            .map(Value::Number)
                    })
                    .unwrap_or(value)
            }
            (HeatParamType::Boolean, Value::String(_) | Value::Number(_)) => {
                Value::Bool(bool_value(&value))
            }
            (HeatParamType::CommaDelimitedList, Value::String(s)) if s.trim().is_empty() => {
                Value::Array(Vec::new())
            }
            (HeatParamType::CommaDelimitedList, Value::String(s)) => Value::Array(
                s.split(',')
                    .map(|x| Value::String(x.trim().into()))
                    .collect(),
            ),
            _ => value,
        }
    }
}

/// Heat's display of all declared parameters of `template` (parsed YAML)
/// given the parameters sent, in declaration order.
pub fn heat_view(
    template: &Value,
    sent: &Map<String, Value>,
) -> Result<Vec<(String, DisplayedParam)>, HeatViewError> {
    Ok(template_parameters(template)?
        .into_iter()
        .map(|p| {
            let d = p.display(sent.get(&p.name));
            (p.name, d)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema(kind: HeatParamType, default: Option<Value>, hidden: bool) -> HeatParamSchema {
        HeatParamSchema {
            name: "p".into(),
            kind,
            default,
            hidden,
        }
    }

    fn show(kind: HeatParamType, default: Option<Value>, sent: Option<Value>) -> String {
        schema(kind, default, false).display(sent.as_ref()).text
    }

    #[test]
    fn hidden_is_masked() {
        let s = schema(HeatParamType::String, Some(json!("")), true);
        assert_eq!(s.display(Some(&json!("pw"))).text, "******");
        assert_eq!(s.display(None).text, "******");
    }

    #[test]
    fn scalar_rules() {
        use HeatParamType::*;
        assert_eq!(show(Number, None, Some(json!(42))), "42");
        assert_eq!(show(Number, None, Some(json!("0042"))), "42");
        assert_eq!(show(Boolean, None, Some(json!(false))), "False");
        assert_eq!(show(Boolean, Some(json!(true)), None), "True");
        assert_eq!(show(String, None, Some(json!(7))), "7");
        assert_eq!(show(String, Some(json!("d")), Some(json!(null))), "d");
        assert_eq!(show(String, Some(json!("")), None), "");
    }

    #[test]
    fn list_and_json_rules() {
        use HeatParamType::*;
        assert_eq!(
            show(CommaDelimitedList, None, Some(json!(["a", "b"]))),
            "a,b"
        );
        assert_eq!(show(CommaDelimitedList, Some(json!([])), None), "");
        assert_eq!(show(Json, None, Some(json!([]))), "null");
        assert_eq!(show(Json, Some(json!([])), Some(json!([]))), "[]");
        assert_eq!(show(Json, None, Some(json!({"a": 1}))), "{\"a\": 1}");
        let d = schema(String, None, false).display(Some(&json!([{"k": "v"}])));
        assert_eq!(d.text, "[{u'k': u'v'}]");
        assert_eq!(d.compare, CompareMode::PyRepr);
    }

    #[test]
    fn compare_modes() {
        assert!(CompareMode::Json.equal("{\"a\": 1, \"b\": 2}", "{\"b\":2,\"a\":1}"));
        assert!(CompareMode::PyRepr.equal("{u'a': u'1', u'b': u'2'}", "{u'b': u'2', u'a': u'1'}"));
        assert!(!CompareMode::Exact.equal("a", "b"));
    }

    #[test]
    fn typed_values_for_get_param() {
        let n = schema(HeatParamType::Number, None, false);
        assert_eq!(n.typed_value(Some(&json!("65101"))), json!(65101));
        let s = schema(HeatParamType::String, None, false);
        assert_eq!(s.typed_value(Some(&json!(20))), json!(20));
    }

    #[test]
    fn reads_declarations() {
        let t = json!({"parameters": {"a": {"type": "number", "default": 0}, "b": {"type": "string", "hidden": true}}});
        let p = template_parameters(&t).unwrap();
        assert_eq!(p.len(), 2);
        assert!(p[1].hidden);
        assert!(template_parameters(&json!({"parameters": {"c": {"type": "weird"}}})).is_err());
    }
}
