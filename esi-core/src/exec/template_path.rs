//! The HeatWorker's view of a template path: the schema's `template_path` evaluated on a job's
//! `resource_input` (EXEC.md "Template id", mappings.md §2.7).
//!
//! The language and its evaluation are those of [`crate::mapping`] (one parser, one evaluator
//! for the manager and the worker, so both always agree): `C…`, `P…`, `A…&…`, `{"constant"}`,
//! `{"field"}`, `{"concatenate"}` and `{"if_mapping"}` with `equal` / `regexp` (Python
//! `re.match`: anchored at the start only; a `null` value never matches). Numbers print as JSON
//! text and booleans as `True`/`False` inside concatenations; a `null`, object or array part is an
//! error, so no template named `ese_device_None` is ever looked up.

use crate::mapping::{self, EvalError, Evaluator, Relations, ResourceView, Subject};
use serde_json::{Map, Value};

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
        /// The zero-based part index.
        part: String,
    },
    /// Evaluation failed otherwise (a part that is not a scalar, a non-string result, an
    /// invalid computed pattern).
    #[error("template path: {0}")]
    Eval(EvalError),
}

/// A parsed template path (`null` parses to "no template").
#[derive(Debug, Clone)]
pub struct TemplatePath(Option<mapping::TemplatePath>);

/// Template paths read only the body: no relations, no other resources.
struct BodyOnly;

impl Relations for BodyOnly {
    fn relation(&self, _: &str, _: &str) -> Option<&str> {
        None
    }
}

impl ResourceView for BodyOnly {
    fn body(&self, _: &str, _: &str) -> Option<&Value> {
        None
    }
}

impl From<mapping::TemplatePath> for TemplatePath {
    fn from(p: mapping::TemplatePath) -> Self {
        TemplatePath(Some(p))
    }
}

impl TemplatePath {
    /// Parses a template path.
    pub fn parse(v: &Value) -> Result<Self, TemplatePathError> {
        mapping::parse_template_path(v)
            .map(TemplatePath)
            .map_err(|e| TemplatePathError::Malformed {
                path: v.to_string(),
                reason: e.to_string(),
            })
    }

    /// Evaluates the path on `resource_input`, giving the template id or `None` when the path
    /// selects "no template".
    pub fn template_id(
        &self,
        input: &Map<String, Value>,
    ) -> Result<Option<String>, TemplatePathError> {
        let Some(path) = &self.0 else {
            return Ok(None);
        };
        let body = Value::Object(input.clone());
        let subject = Subject {
            resource_type: "",
            resource_id: "",
            version: 0,
            body: &body,
        };
        Evaluator::new(&BodyOnly, &BodyOnly)
            .template_id(&path.0, subject)
            .map_err(|e| match e {
                EvalError::NullInConcatenation { part } => TemplatePathError::NullInConcatenation {
                    part: part.to_string(),
                },
                other => TemplatePathError::Eval(other),
            })
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
