//! YAML text → JSON value, as used for "parsed-YAML equality" of rendered
//! HOT templates and for reading a template's `parameters:` section.
//!
//! Dates stay text: `heat_template_version: 2013-05-23` parses to the string
//! `"2013-05-23"`, which is what the corpus expects after converting PyYAML
//! dates to ISO strings. Non-string mapping keys become their text (as
//! Python's `json.dumps` would write them).

use serde_json::{Map, Number, Value};

/// Error of [`parse_yaml`].
#[derive(Debug, thiserror::Error)]
pub enum YamlError {
    /// The text is not valid YAML.
    #[error("invalid YAML: {0}")]
    Syntax(String),
    /// A float that JSON cannot represent (`.inf`, `.nan`).
    #[error("YAML value {0} has no JSON representation")]
    NotJson(String),
}

/// Parses YAML text into a JSON value. Duplicate mapping keys are
/// accepted, the last one wins (PyYAML's and Heat's behaviour; the world
/// template `interdc_interface` declares a parameter twice).
pub fn parse_yaml(text: &str) -> Result<Value, YamlError> {
    let v: JsonFromYaml =
        serde_yaml_ng::from_str(text).map_err(|e| YamlError::Syntax(e.to_string()))?;
    Ok(v.0)
}

/// A JSON value deserialised from YAML with last-wins duplicate keys.
struct JsonFromYaml(Value);

struct YamlVisitor;

impl<'de> serde::Deserialize<'de> for JsonFromYaml {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(YamlVisitor)
    }
}

fn key_text(v: Value) -> String {
    match v {
        Value::String(s) => s,
        Value::Bool(true) => "true".to_string(),
        Value::Bool(false) => "false".to_string(),
        Value::Null => "null".to_string(),
        other => other.to_string(),
    }
}

impl<'de> serde::de::Visitor<'de> for YamlVisitor {
    type Value = JsonFromYaml;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<JsonFromYaml, E> {
        Ok(JsonFromYaml(Value::Bool(v)))
    }

    fn visit_i64<E>(self, v: i64) -> Result<JsonFromYaml, E> {
        Ok(JsonFromYaml(Value::from(v)))
    }

    fn visit_u64<E>(self, v: u64) -> Result<JsonFromYaml, E> {
        Ok(JsonFromYaml(Value::from(v)))
    }

    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<JsonFromYaml, E> {
        Number::from_f64(v)
            .map(|n| JsonFromYaml(Value::Number(n)))
            .ok_or_else(|| E::custom(YamlError::NotJson(v.to_string())))
    }

    fn visit_str<E>(self, v: &str) -> Result<JsonFromYaml, E> {
        Ok(JsonFromYaml(Value::String(v.to_string())))
    }

    fn visit_string<E>(self, v: String) -> Result<JsonFromYaml, E> {
        Ok(JsonFromYaml(Value::String(v)))
    }

    fn visit_unit<E>(self) -> Result<JsonFromYaml, E> {
        Ok(JsonFromYaml(Value::Null))
    }

    fn visit_none<E>(self) -> Result<JsonFromYaml, E> {
        Ok(JsonFromYaml(Value::Null))
    }

    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<JsonFromYaml, D::Error> {
        serde::Deserialize::deserialize(d)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<JsonFromYaml, A::Error> {
        let mut items = Vec::new();
        while let Some(JsonFromYaml(v)) = seq.next_element()? {
            items.push(v);
        }
        Ok(JsonFromYaml(Value::Array(items)))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<JsonFromYaml, A::Error> {
        let mut out = Map::new();
        while let Some((JsonFromYaml(k), JsonFromYaml(v))) = map.next_entry()? {
            let key = key_text(k);
            // last one wins, at the position of the first occurrence (Python dict)
            out.insert(key, v);
        }
        Ok(JsonFromYaml(Value::Object(out)))
    }

    fn visit_enum<A: serde::de::EnumAccess<'de>>(self, data: A) -> Result<JsonFromYaml, A::Error> {
        // a tagged value (`!tag value`): keep the value
        use serde::de::VariantAccess;
        let (_tag, variant): (String, _) = data.variant()?;
        variant.newtype_variant::<JsonFromYaml>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn dates_stay_text_and_types_are_kept() {
        let v =
            parse_yaml("heat_template_version: 2013-05-23\nport: 830\nok: true\nf: 1.5\n").unwrap();
        assert_eq!(
            v,
            json!({"heat_template_version": "2013-05-23", "port": 830, "ok": true, "f": 1.5})
        );
    }

    #[test]
    fn duplicate_keys_last_wins() {
        let v = parse_yaml("a: 1\nb: 2\na: 3\n").unwrap();
        assert_eq!(v, json!({"b": 2, "a": 3}));
        assert_eq!(
            parse_yaml("? [1]\n: x\n1: y\n").unwrap(),
            json!({"[1]": "x", "1": "y"})
        );
    }

    #[test]
    fn syntax_errors_are_typed() {
        assert!(matches!(parse_yaml("a: [1"), Err(YamlError::Syntax(_))));
    }
}
