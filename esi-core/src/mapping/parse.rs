//! Parsing `parameter_mappings` entries and `template_path` expressions into the AST.
//!
//! Grammar: `shared/spec/mappings.md` §1. Everything malformed is rejected here, with the
//! offending fragment, so that evaluation never meets a malformed tree.

use super::ast::{Condition, Hop, Items, Mapping, Pattern, TemplatePath};
use super::SyntaxError;
use regex::Regex;
use serde_json::{Map, Value};

fn err(fragment: &Value, reason: impl Into<String>) -> SyntaxError {
    SyntaxError {
        fragment: fragment_text(fragment),
        reason: reason.into(),
    }
}

fn fragment_text(v: &Value) -> String {
    let s = match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if s.chars().count() > 120 {
        let cut: String = s.chars().take(117).collect();
        format!("{cut}...")
    } else {
        s
    }
}

/// Parses one `parameter_mappings` value.
pub fn parse_mapping(v: &Value) -> Result<Mapping, SyntaxError> {
    match v {
        Value::String(s) => parse_string_mapping(s, v),
        Value::Object(m) => parse_dict_mapping(m, v),
        _ => Err(err(v, "a mapping must be a string or an object")),
    }
}

/// Parses a schema's `template_path` for one handler; `null` means "no template".
pub fn parse_template_path(v: &Value) -> Result<Option<TemplatePath>, SyntaxError> {
    match v {
        Value::Null => Ok(None),
        _ => parse_path_expr(v).map(|m| Some(TemplatePath(m))),
    }
}

fn parse_path_expr(v: &Value) -> Result<Mapping, SyntaxError> {
    match v {
        Value::Null => Ok(Mapping::Constant(Value::Null)),
        Value::String(s) => {
            let mut chars = s.chars();
            match chars.next() {
                Some('C') => Ok(Mapping::Text(chars.as_str().to_string())),
                Some('P') => Ok(Mapping::Read(non_empty(chars.as_str(), v, "field name")?)),
                Some('A') => {
                    let parts = chars
                        .as_str()
                        .split('&')
                        .map(|part| {
                            let pv = Value::String(part.to_string());
                            match part.chars().next() {
                                Some('C') | Some('P') => parse_path_expr(&pv),
                                _ => Err(err(
                                    v,
                                    format!("template path part `{part}` must start with C or P"),
                                )),
                            }
                        })
                        .collect::<Result<Vec<_>, _>>()?;
                    Ok(Mapping::Concat(parts))
                }
                Some(c) => Err(err(
                    v,
                    format!("unknown template path tag `{c}` (expected C, P or A)"),
                )),
                None => Err(err(v, "empty template path")),
            }
        }
        Value::Object(m) => {
            let keys = key_set(m);
            match keys.as_slice() {
                ["constant"] => Ok(Mapping::Constant(m["constant"].clone())),
                ["field"] => Ok(Mapping::Read(string_field(m, "field", v)?)),
                ["concatenate"] => Ok(Mapping::Concat(operand_list(&m["concatenate"], v)?)),
                ["else_mapping", "if_mapping", "then_mapping"] => Ok(Mapping::If {
                    cond: Box::new(parse_condition(&m["if_mapping"])?),
                    then: Box::new(parse_path_expr(&m["then_mapping"])?),
                    otherwise: Box::new(parse_path_expr(&m["else_mapping"])?),
                }),
                _ => Err(err(
                    v,
                    format!("unknown template path form with keys {keys:?}"),
                )),
            }
        }
        _ => Err(err(
            v,
            "a template path must be null, a string or an object",
        )),
    }
}

fn non_empty(s: &str, whole: &Value, what: &str) -> Result<String, SyntaxError> {
    if s.is_empty() {
        Err(err(whole, format!("empty {what}")))
    } else {
        Ok(s.to_string())
    }
}

fn key_set(m: &Map<String, Value>) -> Vec<&str> {
    let mut keys: Vec<&str> = m.keys().map(String::as_str).collect();
    keys.sort_unstable();
    keys
}

fn string_field(m: &Map<String, Value>, key: &str, whole: &Value) -> Result<String, SyntaxError> {
    match m.get(key) {
        Some(Value::String(s)) => Ok(s.clone()),
        _ => Err(err(whole, format!("`{key}` must be a string"))),
    }
}

fn parse_string_mapping(s: &str, whole: &Value) -> Result<Mapping, SyntaxError> {
    let mut chars = s.chars();
    let tag = chars
        .next()
        .ok_or_else(|| err(whole, "empty mapping string"))?;
    let rest = chars.as_str();
    match tag {
        'P' => Ok(Mapping::Read(non_empty(rest, whole, "field name")?)),
        'C' => Ok(Mapping::Text(rest.to_string())),
        'V' => Ok(Mapping::Version),
        'O' => {
            let (obj, key) = rest
                .split_once(':')
                .ok_or_else(|| err(whole, "`O` needs `<object>:<key>`"))?;
            Ok(Mapping::Nested(vec![
                non_empty(obj, whole, "object name")?,
                non_empty(key, whole, "key")?,
            ]))
        }
        'A' => {
            let parts = rest
                .split('&')
                .map(|part| {
                    if part.starts_with('A') {
                        return Err(err(whole, format!("nested concatenation in part `{part}`")));
                    }
                    parse_string_mapping(part, whole)
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Mapping::Concat(parts))
        }
        'F' => {
            let segments: Vec<&str> = rest.split(':').collect();
            let (field, hops) = match segments.split_last() {
                Some((field, hops)) if !hops.is_empty() => (*field, hops),
                _ => {
                    return Err(err(
                        whole,
                        "`F` needs at least one `<type>+<field>` hop and a final field",
                    ))
                }
            };
            let path = hops
                .iter()
                .map(|seg| {
                    let (ty, id_field) = seg
                        .split_once('+')
                        .ok_or_else(|| err(whole, format!("hop `{seg}` has no `+`")))?;
                    Ok(Hop::Typed {
                        resource_type: non_empty(ty, whole, "hop type")?,
                        id_field: non_empty(id_field, whole, "hop id field")?,
                    })
                })
                .collect::<Result<Vec<_>, SyntaxError>>()?;
            Ok(Mapping::Walk {
                path,
                field: non_empty(field, whole, "final field")?,
                ignore_missing: false,
            })
        }
        'M' => {
            let parts: Vec<&str> = rest.split(':').collect();
            match parts.as_slice() {
                [ty, rel, key] => Ok(Mapping::RelatedOutput {
                    resource_type: non_empty(ty, whole, "type")?,
                    id_field: non_empty(rel, whole, "relation field")?,
                    output_key: non_empty(key, whole, "output key")?,
                }),
                _ => Err(err(
                    whole,
                    "`M` needs exactly `<type>:<relation field>:<output key>`",
                )),
            }
        }
        other => Err(err(whole, format!("unknown mapping tag `{other}`"))),
    }
}

fn parse_dict_mapping(m: &Map<String, Value>, whole: &Value) -> Result<Mapping, SyntaxError> {
    let keys = key_set(m);
    match keys.as_slice() {
        ["constant"] => Ok(Mapping::Constant(m["constant"].clone())),
        ["version"] => Ok(Mapping::Version),
        ["nested"] => Ok(Mapping::Nested(string_list(&m["nested"], whole, "nested")?)),
        ["concatenate"] => Ok(Mapping::Concat(operand_list(&m["concatenate"], whole)?)),
        ["field"] => Ok(Mapping::Field(string_field(m, "field", whole)?)),
        ["field", "ignore_missing"] => {
            ignore_flag(m, whole)?;
            Ok(Mapping::Field(string_field(m, "field", whole)?))
        }
        ["field", "path"] | ["field", "ignore_missing", "path"] => Ok(Mapping::Walk {
            path: parse_path(&m["path"], whole)?,
            field: string_field(m, "field", whole)?,
            ignore_missing: ignore_flag(m, whole)?,
        }),
        ["output_key"] | ["output_key", "path"] | ["ignore_missing", "output_key", "path"] => {
            Ok(Mapping::Output {
                output_key: non_empty(&string_field(m, "output_key", whole)?, whole, "output key")?,
                path: match m.get("path") {
                    Some(p) => parse_path(p, whole)?,
                    None => Vec::new(),
                },
                ignore_missing: ignore_flag(m, whole)?,
            })
        }
        ["for_field", "for_mapping"] => {
            let items = match &m["for_field"] {
                Value::String(f) => Items::Field(f.clone()),
                other @ Value::Object(_) => Items::Mapping(parse_mapping(other)?),
                _ => return Err(err(whole, "`for_field` must be a field name or a mapping")),
            };
            Ok(Mapping::ForEach {
                items: Box::new(items),
                each: Box::new(parse_mapping(&m["for_mapping"])?),
            })
        }
        ["else_mapping", "if_mapping", "then_mapping"] => Ok(Mapping::If {
            cond: Box::new(parse_condition(&m["if_mapping"])?),
            then: Box::new(parse_mapping(&m["then_mapping"])?),
            otherwise: Box::new(parse_mapping(&m["else_mapping"])?),
        }),
        ["for_field"] => Err(err(whole, "`for_field` without `for_mapping`")),
        ["for_mapping"] => Err(err(whole, "`for_mapping` without `for_field`")),
        _ => Err(err(
            whole,
            format!("unknown or conflicting mapping keys {keys:?}"),
        )),
    }
}

fn ignore_flag(m: &Map<String, Value>, whole: &Value) -> Result<bool, SyntaxError> {
    match m.get("ignore_missing") {
        None => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(err(whole, "`ignore_missing` must be a boolean")),
    }
}

fn string_list(v: &Value, whole: &Value, what: &str) -> Result<Vec<String>, SyntaxError> {
    match v {
        Value::Array(items) if !items.is_empty() => items
            .iter()
            .map(|i| match i {
                Value::String(s) => Ok(s.clone()),
                _ => Err(err(whole, format!("`{what}` items must be strings"))),
            })
            .collect(),
        _ => Err(err(whole, format!("`{what}` must be a non-empty list"))),
    }
}

fn parse_path(v: &Value, whole: &Value) -> Result<Vec<Hop>, SyntaxError> {
    let items = match v {
        Value::Array(items) => items,
        _ => return Err(err(whole, "`path` must be a list")),
    };
    items
        .iter()
        .map(|item| match item {
            Value::String(r) => Ok(Hop::Relation(non_empty(r, whole, "relation field")?)),
            Value::Object(o) => match key_set(o).as_slice() {
                ["id", "type"] => Ok(Hop::Typed {
                    resource_type: non_empty(&string_field(o, "type", item)?, item, "type")?,
                    id_field: string_field(o, "id", item)?,
                }),
                ["concatenate"] => Ok(Hop::Computed(operand_list(&o["concatenate"], item)?)),
                keys => Err(err(item, format!("unknown path item with keys {keys:?}"))),
            },
            _ => Err(err(
                item,
                "a path item must be a relation field, {type, id} or {concatenate}",
            )),
        })
        .collect()
}

fn operand_list(v: &Value, whole: &Value) -> Result<Vec<Mapping>, SyntaxError> {
    match v {
        Value::Array(items) if !items.is_empty() => items.iter().map(parse_operand).collect(),
        _ => Err(err(whole, "`concatenate` must be a non-empty list")),
    }
}

fn parse_operand(v: &Value) -> Result<Mapping, SyntaxError> {
    match v {
        Value::String(s) => Ok(Mapping::Text(s.clone())),
        Value::Object(m) => match key_set(m).as_slice() {
            ["field"] => Ok(Mapping::Read(string_field(m, "field", v)?)),
            ["constant"] => Ok(Mapping::Constant(m["constant"].clone())),
            ["nested"] => Ok(Mapping::Nested(string_list(&m["nested"], v, "nested")?)),
            ["concatenate"] => Ok(Mapping::Concat(operand_list(&m["concatenate"], v)?)),
            keys => Err(err(v, format!("unknown operand with keys {keys:?}"))),
        },
        _ => Err(err(
            v,
            "an operand must be a string, {field}, {constant}, {nested} or {concatenate}",
        )),
    }
}

fn parse_condition(v: &Value) -> Result<Condition, SyntaxError> {
    let m = match v {
        Value::Object(m) if m.len() == 1 => m,
        _ => {
            return Err(err(
                v,
                "a condition must be {\"equal\": [a, b]} or {\"regexp\": [value, pattern]}",
            ))
        }
    };
    let (kind, args) = m.iter().next().ok_or_else(|| err(v, "empty condition"))?;
    let (a, b) = match args {
        Value::Array(items) if items.len() == 2 => (&items[0], &items[1]),
        _ => return Err(err(v, format!("`{kind}` needs exactly two operands"))),
    };
    match kind.as_str() {
        "equal" => Ok(Condition::Equal(parse_operand(a)?, parse_operand(b)?)),
        "regexp" => {
            let value = parse_operand(a)?;
            let pattern = match parse_operand(b)? {
                Mapping::Text(p) | Mapping::Constant(Value::String(p)) => {
                    Pattern::Static(compile_anchored(&p).map_err(|e| err(v, e))?)
                }
                dynamic => Pattern::Dynamic(dynamic),
            };
            Ok(Condition::Regexp(value, pattern))
        }
        other => Err(err(
            v,
            format!("unknown condition `{other}` (expected equal or regexp)"),
        )),
    }
}

/// Compiles a pattern with Python `re.match` semantics: anchored at the start only.
pub fn compile_anchored(pattern: &str) -> Result<Regex, String> {
    Regex::new(&format!("^(?:{pattern})"))
        .map_err(|e| format!("invalid regular expression `{pattern}`: {e}"))
}
