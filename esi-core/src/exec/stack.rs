//! Job → Heat request (EXEC.md kind `stack`, execution.md §2–§6).
//!
//! * params named `jinja_*` become Jinja variables, `heat_timeout` becomes
//!   `timeout_mins = int(value)`, everything else is a Heat parameter of the
//!   same name (no filtering against the template);
//! * values resolve by type: `value` untouched, `output_key` from the stored
//!   outputs of the referenced resource, `list` element-wise;
//! * the template id comes from the template path applied to
//!   `resource_input`; the template body is rendered with only the Jinja
//!   variables as context;
//! * `modify` re-sends the full template and all parameters (Heat update),
//!   deletes only name the stack.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::job::{Job, JobParam, ParamType};
use super::render::{render_template, RenderError};
use super::template_path::{TemplatePath, TemplatePathError};

/// Errors while turning a job into a Heat request. Every variant names the
/// job (its id) and, where relevant, the parameter.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StackError {
    /// No heat_stacks document (no stored outputs) for a referenced resource.
    #[error("job {job}: param {param}: no stored heat stack outputs for {resource}")]
    OutputsMissing {
        /// Job id.
        job: String,
        /// Parameter name.
        param: String,
        /// `<resource_type>/<resource_id>`.
        resource: String,
    },
    /// The referenced resource's outputs lack the requested key.
    #[error("job {job}: param {param}: output {output_key} missing in the outputs of {resource}")]
    OutputKeyMissing {
        /// Job id.
        job: String,
        /// Parameter name.
        param: String,
        /// `<resource_type>/<resource_id>`.
        resource: String,
        /// The missing output key.
        output_key: String,
    },
    /// A parameter's stored value does not fit its type.
    #[error("job {job}: param {param}: {reason}")]
    MalformedParam {
        /// Job id.
        job: String,
        /// Parameter name.
        param: String,
        /// What is wrong.
        reason: String,
    },
    /// `heat_timeout` is not an integer (or integer text).
    #[error("job {job}: param heat_timeout: not an integer: {value}")]
    InvalidTimeout {
        /// Job id.
        job: String,
        /// The value (JSON text).
        value: String,
    },
    /// A create/modify job without a template path for its type.
    #[error("job {job}: no template path for resource type {resource_type}")]
    NoTemplatePath {
        /// Job id.
        job: String,
        /// Resource type.
        resource_type: String,
    },
    /// The template path could not be evaluated.
    #[error("job {job}: template path: {source}")]
    TemplatePath {
        /// Job id.
        job: String,
        /// Cause.
        #[source]
        source: TemplatePathError,
    },
    /// The template path selects no template (`null`) for a create/modify.
    #[error("job {job}: the template path selects no template")]
    UnknownTemplate {
        /// Job id.
        job: String,
    },
    /// No template body was supplied for the selected id.
    #[error("job {job}: template {template_id} not found")]
    TemplateMissing {
        /// Job id.
        job: String,
        /// Selected template id.
        template_id: String,
    },
    /// Rendering failed.
    #[error("job {job}: {source}")]
    Render {
        /// Job id.
        job: String,
        /// Cause.
        #[source]
        source: RenderError,
    },
}

/// A `/config/v2.0/heat_templates/<name>` body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeatTemplate {
    /// Template id.
    pub name: String,
    /// Jinja2 source of the HOT template.
    pub template_file: String,
    /// The JobManager's parameter mappings (not used by the worker).
    #[serde(default)]
    pub parameter_mappings: Value,
}

/// One Heat stack output `{output_key, output_value, description}`.
pub type HeatOutput = Value;

/// Source of stored stack outputs
/// (`/esi-worker/heat_stacks/v2.0/<T>s/<I>` → `output`).
pub trait OutputStore {
    /// The stored output list of resource `<resource_type>/<resource_id>`,
    /// `None` when no heat_stacks document exists.
    fn outputs(&self, resource_type: &str, resource_id: &str) -> Option<Vec<HeatOutput>>;
}

/// Keys are `"<resource_type>/<resource_id>"`, values output lists (the
/// conformance `outputs` input).
impl OutputStore for Map<String, Value> {
    fn outputs(&self, resource_type: &str, resource_id: &str) -> Option<Vec<HeatOutput>> {
        match self.get(&format!("{resource_type}/{resource_id}"))? {
            Value::Array(items) => Some(items.clone()),
            _ => None,
        }
    }
}

/// Keys are `"<resource_type>/<resource_id>"`.
impl OutputStore for HashMap<String, Vec<HeatOutput>> {
    fn outputs(&self, resource_type: &str, resource_id: &str) -> Option<Vec<HeatOutput>> {
        self.get(&format!("{resource_type}/{resource_id}")).cloned()
    }
}

/// Keys are `"<resource_type>/<resource_id>"`.
impl OutputStore for BTreeMap<String, Vec<HeatOutput>> {
    fn outputs(&self, resource_type: &str, resource_id: &str) -> Option<Vec<HeatOutput>> {
        self.get(&format!("{resource_type}/{resource_id}")).cloned()
    }
}

/// The Heat operation of a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StackOperation {
    /// Stack create (`create` jobs).
    Create,
    /// Stack update with the full template and parameters (`modify`).
    Update,
    /// Stack delete by name (`logical_delete`, `delete`).
    Delete,
}

impl StackOperation {
    /// `create` / `update` / `delete`.
    pub fn as_str(self) -> &'static str {
        match self {
            StackOperation::Create => "create",
            StackOperation::Update => "update",
            StackOperation::Delete => "delete",
        }
    }
}

/// What the HeatWorker sends to Heat for one job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StackRequest {
    /// `<resource_type>_<resource_id>`.
    pub stack_name: String,
    /// Create / update / delete.
    pub operation: StackOperation,
    /// Selected template id (`None` for deletes).
    pub template_id: Option<String>,
    /// `int(heat_timeout)` (`None` for deletes or without `heat_timeout`).
    pub timeout_mins: Option<i64>,
    /// Always `true` (rollback disabled by design).
    pub disable_rollback: bool,
    /// Typed Heat parameters, in job order.
    pub request_parameters: Map<String, Value>,
    /// The `jinja_*` variables, in job order.
    pub jinja_params: Map<String, Value>,
    /// Rendered HOT template text (`None` for deletes).
    pub template_text: Option<String>,
}

impl StackRequest {
    /// The request in the conformance/CLI JSON shape (deletes: name and
    /// operation only).
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("stack_name".into(), Value::String(self.stack_name.clone()));
        m.insert("operation".into(), self.operation.as_str().into());
        if self.operation == StackOperation::Delete {
            return Value::Object(m);
        }
        m.insert("template_id".into(), self.template_id.clone().into());
        m.insert("timeout_mins".into(), self.timeout_mins.into());
        m.insert("disable_rollback".into(), self.disable_rollback.into());
        m.insert(
            "request_parameters".into(),
            Value::Object(self.request_parameters.clone()),
        );
        m.insert(
            "jinja_params".into(),
            Value::Object(self.jinja_params.clone()),
        );
        m.insert("template_text".into(), self.template_text.clone().into());
        Value::Object(m)
    }

    /// Parameters with every member whose name contains `password` masked,
    /// as the HeatWorker logs them.
    pub fn masked_parameters(&self) -> Value {
        crate::secret::mask_passwords(&Value::Object(self.request_parameters.clone()))
    }
}

/// Resolves one job parameter's value (EXEC.md rule 2).
pub fn resolve_param(
    job: &Job,
    param: &JobParam,
    outputs: &dyn OutputStore,
) -> Result<Value, StackError> {
    let malformed = |reason: String| StackError::MalformedParam {
        job: job.label(),
        param: param.param.clone(),
        reason,
    };
    match param.kind {
        ParamType::Value => Ok(param.value.clone()),
        ParamType::OutputKey => {
            let field = |k: &str| {
                param
                    .value
                    .get(k)
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .ok_or_else(|| malformed(format!("output_key value lacks string {k}")))
            };
            let (key, rtype, rid) = (
                field("output_key")?,
                field("resource_type")?,
                field("resource_id")?,
            );
            let resource = format!("{rtype}/{rid}");
            let list = outputs
                .outputs(&rtype, &rid)
                .ok_or_else(|| StackError::OutputsMissing {
                    job: job.label(),
                    param: param.param.clone(),
                    resource: resource.clone(),
                })?;
            list.iter()
                .find(|o| o.get("output_key").and_then(Value::as_str) == Some(key.as_str()))
                .map(|o| o.get("output_value").cloned().unwrap_or(Value::Null))
                .ok_or(StackError::OutputKeyMissing {
                    job: job.label(),
                    param: param.param.clone(),
                    resource,
                    output_key: key,
                })
        }
        ParamType::List => {
            let Value::Array(items) = &param.value else {
                return Err(malformed("list param value is not a list".into()));
            };
            items
                .iter()
                .map(|item| {
                    let sub: JobParam = serde_json::from_value(item.clone())
                        .map_err(|e| malformed(format!("bad list element: {e}")))?;
                    // sub-params report errors under the outer param's name
                    resolve_param(job, &sub, outputs).map_err(|e| rename_param(e, &param.param))
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Value::Array)
        }
    }
}

fn rename_param(e: StackError, outer: &str) -> StackError {
    match e {
        StackError::OutputsMissing { job, resource, .. } => StackError::OutputsMissing {
            job,
            param: outer.into(),
            resource,
        },
        StackError::OutputKeyMissing {
            job,
            resource,
            output_key,
            ..
        } => StackError::OutputKeyMissing {
            job,
            param: outer.into(),
            resource,
            output_key,
        },
        other => other,
    }
}

/// Python `int(value)` of a `heat_timeout` value (`"13"` or `13`).
fn timeout_of(job: &Job, v: &Value) -> Result<i64, StackError> {
    let bad = || StackError::InvalidTimeout {
        job: job.label(),
        value: v.to_string(),
    };
    match v {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| {
                n.as_f64()
                    .filter(|f| f.is_finite())
                    .map(|f| f.trunc() as i64)
            })
            .ok_or_else(bad),
        Value::String(s) => s.trim().replace('_', "").parse::<i64>().map_err(|_| bad()),
        Value::Bool(b) => Ok(i64::from(*b)),
        _ => Err(bad()),
    }
}

/// The split parameters of a job (EXEC.md rule 1), values resolved.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SplitParams {
    /// Heat parameters.
    pub heat: Map<String, Value>,
    /// Jinja variables.
    pub jinja: Map<String, Value>,
    /// `int(heat_timeout)`, if present.
    pub timeout_mins: Option<i64>,
}

/// Splits and resolves a job's params.
pub fn split_params(job: &Job, outputs: &dyn OutputStore) -> Result<SplitParams, StackError> {
    let mut out = SplitParams::default();
    for p in &job.params {
        let v = resolve_param(job, p, outputs)?;
        if p.param.starts_with("jinja_") {
            out.jinja.insert(p.param.clone(), v);
        } else if p.param == "heat_timeout" {
            out.timeout_mins = Some(timeout_of(job, &v)?);
        } else {
            out.heat.insert(p.param.clone(), v);
        }
    }
    Ok(out)
}

/// Builds the Heat request of a job.
///
/// `template_path` is the HeatWorker's mapping for `job.resource_type`;
/// `template` the `/config/v2.0/heat_templates/<id>` body in force. Both are
/// ignored for deletes.
pub fn build_stack_request(
    job: &Job,
    template_path: Option<&TemplatePath>,
    template: Option<&HeatTemplate>,
    outputs: &dyn OutputStore,
) -> Result<StackRequest, StackError> {
    let stack_name = job.stack_name();
    if job.action.is_delete() {
        return Ok(StackRequest {
            stack_name,
            operation: StackOperation::Delete,
            template_id: None,
            timeout_mins: None,
            disable_rollback: true,
            request_parameters: Map::new(),
            jinja_params: Map::new(),
            template_text: None,
        });
    }
    let path = template_path.ok_or_else(|| StackError::NoTemplatePath {
        job: job.label(),
        resource_type: job.resource_type.clone(),
    })?;
    let template_id = path
        .template_id(&job.resource_input)
        .map_err(|source| StackError::TemplatePath {
            job: job.label(),
            source,
        })?
        .ok_or_else(|| StackError::UnknownTemplate { job: job.label() })?;
    let template = template.ok_or_else(|| StackError::TemplateMissing {
        job: job.label(),
        template_id: template_id.clone(),
    })?;
    let split = split_params(job, outputs)?;
    let text =
        render_template(&template_id, &template.template_file, &split.jinja).map_err(|source| {
            StackError::Render {
                job: job.label(),
                source,
            }
        })?;
    let operation = if job.action == super::job::JobAction::Modify {
        StackOperation::Update
    } else {
        StackOperation::Create
    };
    tracing::debug!(job = %job.label(), template = %template_id, "built heat request");
    Ok(StackRequest {
        stack_name,
        operation,
        template_id: Some(template_id),
        timeout_mins: split.timeout_mins,
        disable_rollback: true,
        request_parameters: split.heat,
        jinja_params: split.jinja,
        template_text: Some(text),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn job(action: &str, params: Value) -> Job {
        Job::from_value(&json!({
            "id": "j1", "resource_type": "widget", "resource_id": "w1", "action": action,
            "version": 2, "params": params, "resource_input": {"kind": "big", "tenant_id": "t"}
        }))
        .unwrap()
    }

    fn store() -> Map<String, Value> {
        let Value::Object(m) = json!({"net/n1": [{"output_key": "id", "output_value": "uuid-1"},
                                                  {"output_key": "fq", "output_value": [["a", "b"]]}]})
        else {
            panic!()
        };
        m
    }

    #[test]
    fn split_resolve_and_render() {
        let j = job(
            "create",
            json!([
                {"param": "heat_timeout", "type": "value", "value": "7"},
                {"param": "jinja_nets", "type": "list", "value": [
                    {"param": "jinja_nets", "type": "output_key", "value": {"output_key": "id", "resource_type": "net", "resource_id": "n1"}}]},
                {"param": "fq", "type": "output_key", "value": {"output_key": "fq", "resource_type": "net", "resource_id": "n1"}},
                {"param": "count", "type": "value", "value": 1},
                {"param": "nothing", "type": "value", "value": null}
            ]),
        );
        let path = TemplatePath::parse(&json!("ACw_&Pkind")).unwrap();
        let tpl = HeatTemplate {
            name: "w_big".into(),
            template_file:
                "a: 1\n{% for n in jinja_nets %}\nnet_{{ loop.index }}: {{ n }}\n{% endfor %}\n"
                    .into(),
            parameter_mappings: Value::Null,
        };
        let req = build_stack_request(&j, Some(&path), Some(&tpl), &store()).unwrap();
        assert_eq!(req.stack_name, "widget_w1");
        assert_eq!(req.operation, StackOperation::Create);
        assert_eq!(req.template_id.as_deref(), Some("w_big"));
        assert_eq!(req.timeout_mins, Some(7));
        assert_eq!(
            Value::Object(req.request_parameters.clone()),
            json!({"fq": [["a", "b"]], "count": 1, "nothing": null})
        );
        assert_eq!(
            Value::Object(req.jinja_params.clone()),
            json!({"jinja_nets": ["uuid-1"]})
        );
        assert_eq!(
            req.template_text.as_deref(),
            Some("a: 1\n\nnet_1: uuid-1\n")
        );
    }

    #[test]
    fn missing_outputs_are_typed_errors() {
        let j = job(
            "modify",
            json!([{"param": "x", "type": "output_key", "value": {"output_key": "nope", "resource_type": "net", "resource_id": "n1"}}]),
        );
        let err = split_params(&j, &store()).unwrap_err();
        assert!(
            matches!(err, StackError::OutputKeyMissing { ref param, ref output_key, .. } if param == "x" && output_key == "nope")
        );
        let j = job(
            "modify",
            json!([{"param": "y", "type": "list", "value": [{"param": "y", "type": "output_key", "value": {"output_key": "id", "resource_type": "net", "resource_id": "zz"}}]}]),
        );
        let err = split_params(&j, &store()).unwrap_err();
        assert!(
            matches!(err, StackError::OutputsMissing { ref resource, .. } if resource == "net/zz")
        );
        assert!(err.to_string().contains("j1"));
    }

    #[test]
    fn delete_names_the_stack_only() {
        let req = build_stack_request(&job("logical_delete", json!([])), None, None, &Map::new())
            .unwrap();
        assert_eq!(
            req.to_json(),
            json!({"stack_name": "widget_w1", "operation": "delete"})
        );
    }

    #[test]
    fn timeout_forms() {
        let j = job("create", json!([]));
        assert_eq!(timeout_of(&j, &json!(" 13 ")).unwrap(), 13);
        assert_eq!(timeout_of(&j, &json!(3)).unwrap(), 3);
        assert!(timeout_of(&j, &json!("x")).is_err());
    }
}
