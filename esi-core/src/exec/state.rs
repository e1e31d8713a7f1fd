//! Heat result → ordered etcd operations of the HeatWorker (EXEC.md kind
//! `state`, execution.md §7).
//!
//! Success (status ends in `_COMPLETE`), `<pl>` = `resource_type + "s"`:
//!
//! 1. `set job_state` = `{}` — only for the first job of its chain;
//! 2. `set /esi-worker/heat_stacks/v2.0/<pl>/<id>` (stack document; blanked
//!    `stack_id`/`output`/`status_reason` for deletes);
//! 3. `compareAndSwap job_state` = `{heat_outputs, orchestration_state}`;
//! 4. `set /state/v2.0/<pl>/<id>` with `worker_state` `<ACTION>_COMPLETED`
//!    and `heat_outputs` as Python `json.dumps` text;
//! 5. `compareAndDelete job_state` — only for the last job of its chain;
//! 6. `logical_delete` only: `delete /state…`, then `delete heat_stacks…`.
//!
//! Failures were never recorded in etcd. Decision (open-questions E1,
//! execution.md §10), implemented by [`state_writes`] for a Heat status not
//! ending in `_COMPLETE` (e.g. `CREATE_FAILED`):
//!
//! * heat_stacks is written as usual with Heat's status, reason and outputs
//!   (the stack exists and is left in place for inspection — no rollback);
//! * job_state is swapped to `{heat_outputs, orchestration_state, error}`;
//! * `/state` gets `worker_state` `<ACTION>_ERROR` (`CREATE_ERROR`,
//!   `MODIFY_ERROR`, `DELETE_ERROR`), `orchestration_state` = Heat status,
//!   `error` = Heat's status reason, version = job version;
//! * job_state is deleted at the end of the chain as on success;
//! * a failed `logical_delete` never deletes `/state` or heat_stacks, so
//!   Gohan keeps the resource.
//!
//! A worker-side failure before any Heat call (template missing, output
//! missing, render error) is covered by [`worker_error_writes`]: no
//! heat_stacks document, `/state` with `<ACTION>_ERROR`, empty
//! `orchestration_state` and the error text.

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::job::{Job, JobAction};
use super::pytext;

/// Errors of [`state_writes`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    /// The stack status is still in progress; nothing is written yet.
    #[error("job {job}: stack status {status} is not terminal")]
    NotTerminal {
        /// Job id.
        job: String,
        /// The status.
        status: String,
    },
}

/// One etcd v2 operation.
#[derive(Debug, Clone, PartialEq)]
pub enum EtcdOp {
    /// `set key = value`.
    Set {
        /// Key.
        key: String,
        /// Document.
        value: Value,
    },
    /// `compareAndSwap key = value` (against the previous value/index).
    CompareAndSwap {
        /// Key.
        key: String,
        /// Document.
        value: Value,
    },
    /// `compareAndDelete key`.
    CompareAndDelete {
        /// Key.
        key: String,
    },
    /// `delete key`.
    Delete {
        /// Key.
        key: String,
    },
}

impl EtcdOp {
    /// The etcd action name (`set`, `compareAndSwap`, …).
    pub fn op_name(&self) -> &'static str {
        match self {
            EtcdOp::Set { .. } => "set",
            EtcdOp::CompareAndSwap { .. } => "compareAndSwap",
            EtcdOp::CompareAndDelete { .. } => "compareAndDelete",
            EtcdOp::Delete { .. } => "delete",
        }
    }

    /// The key.
    pub fn key(&self) -> &str {
        match self {
            EtcdOp::Set { key, .. }
            | EtcdOp::CompareAndSwap { key, .. }
            | EtcdOp::CompareAndDelete { key }
            | EtcdOp::Delete { key } => key,
        }
    }

    /// The written document, if any.
    pub fn value(&self) -> Option<&Value> {
        match self {
            EtcdOp::Set { value, .. } | EtcdOp::CompareAndSwap { value, .. } => Some(value),
            _ => None,
        }
    }

    /// `{op, key, value?}` as in the conformance cases.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("op".into(), self.op_name().into());
        m.insert("key".into(), self.key().into());
        if let Some(v) = self.value() {
            m.insert("value".into(), v.clone());
        }
        Value::Object(m)
    }
}

/// What Heat reported for the stack once it left `…_IN_PROGRESS`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StackResult {
    /// Stack status (`CREATE_COMPLETE`, `UPDATE_FAILED`, `DELETE_COMPLETE`, …).
    pub status: String,
    /// Heat's output list, in the order received (`[]` for deletes).
    #[serde(default)]
    pub outputs: Vec<Value>,
    /// Status reason (`null` for deletes, the stack no longer exists).
    #[serde(default)]
    pub reason: Option<String>,
}

/// `/esi-worker/job_state/v2.0/<pl>/<id>`.
pub fn job_state_key(job: &Job) -> String {
    format!(
        "/esi-worker/job_state/v2.0/{}/{}",
        job.plural(),
        job.resource_id
    )
}

/// `/esi-worker/heat_stacks/v2.0/<pl>/<id>`.
pub fn heat_stacks_key(job: &Job) -> String {
    format!(
        "/esi-worker/heat_stacks/v2.0/{}/{}",
        job.plural(),
        job.resource_id
    )
}

/// `/state/v2.0/<pl>/<id>`.
pub fn state_key(job: &Job) -> String {
    format!("/state/v2.0/{}/{}", job.plural(), job.resource_id)
}

fn tenant_id(job: &Job) -> Value {
    job.resource_input
        .get("tenant_id")
        .cloned()
        .unwrap_or(Value::Null)
}

fn is_in_progress(status: &str) -> bool {
    status.ends_with("_IN_PROGRESS")
}

/// The ordered etcd operations for one job whose stack reached `result`
/// (success or Heat failure; see the module documentation).
pub fn state_writes(job: &Job, result: &StackResult) -> Result<Vec<EtcdOp>, StateError> {
    if is_in_progress(&result.status) {
        return Err(StateError::NotTerminal {
            job: job.label(),
            status: result.status.clone(),
        });
    }
    let success = result.status.ends_with("_COMPLETE");
    let outputs = Value::Array(result.outputs.clone());
    let reason = result.reason.clone().unwrap_or_default();
    let js_key = job_state_key(job);
    let mut ops = Vec::new();
    if job.is_first {
        ops.push(EtcdOp::Set {
            key: js_key.clone(),
            value: json!({}),
        });
    }
    let blank = success && job.action.is_delete();
    let stack_doc = json!({
        "stack_id": if blank { String::new() } else { job.stack_name() },
        "tenant_id": tenant_id(job),
        "stack_status": result.status,
        "output": if blank { json!([]) } else { outputs.clone() },
        "status_reason": if blank { String::new() } else { reason.clone() },
        "id": format!("{}:{}", job.resource_type, job.resource_id),
    });
    ops.push(EtcdOp::Set {
        key: heat_stacks_key(job),
        value: stack_doc,
    });
    let mut js = json!({"heat_outputs": outputs, "orchestration_state": result.status});
    if !success {
        js["error"] = Value::String(reason.clone());
    }
    ops.push(EtcdOp::CompareAndSwap {
        key: js_key.clone(),
        value: js,
    });
    let suffix = if success { "COMPLETED" } else { "ERROR" };
    ops.push(EtcdOp::Set {
        key: state_key(job),
        value: json!({
            "state": {
                "worker_state": format!("{}_{}", job.action.state_word(), suffix),
                "heat_outputs": pytext::json_dumps(&outputs),
                "orchestration_state": result.status,
            },
            "version": job.version,
            "error": if success { String::new() } else { reason },
        }),
    });
    if job.is_last {
        ops.push(EtcdOp::CompareAndDelete { key: js_key });
    }
    if success && job.action == JobAction::LogicalDelete {
        ops.push(EtcdOp::Delete {
            key: state_key(job),
        });
        ops.push(EtcdOp::Delete {
            key: heat_stacks_key(job),
        });
    }
    Ok(ops)
}

/// The etcd operations for a job that failed before Heat was called
/// (`error` names the job, template and param): no heat_stacks document,
/// `/state` with `<ACTION>_ERROR`, empty `orchestration_state`.
pub fn worker_error_writes(job: &Job, error: &str) -> Vec<EtcdOp> {
    let js_key = job_state_key(job);
    let mut ops = Vec::new();
    if job.is_first {
        ops.push(EtcdOp::Set {
            key: js_key.clone(),
            value: json!({}),
        });
    }
    ops.push(EtcdOp::Set {
        key: state_key(job),
        value: json!({
            "state": {
                "worker_state": format!("{}_ERROR", job.action.state_word()),
                "heat_outputs": "[]",
                "orchestration_state": "",
            },
            "version": job.version,
            "error": error,
        }),
    });
    if job.is_last {
        ops.push(EtcdOp::CompareAndDelete { key: js_key });
    }
    ops
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(action: &str) -> Job {
        Job::from_value(
            &json!({"id": "j", "resource_type": "thing", "resource_id": "t1",
            "action": action, "version": 3, "resource_input": {"tenant_id": "ten"}}),
        )
        .unwrap()
    }

    fn ops(v: &[EtcdOp]) -> Vec<(&str, &str)> {
        v.iter().map(|o| (o.op_name(), o.key())).collect()
    }

    #[test]
    fn create_success_sequence() {
        let r = StackResult {
            status: "CREATE_COMPLETE".into(),
            outputs: vec![json!({"output_key": "id", "output_value": "x"})],
            reason: Some("ok".into()),
        };
        let w = state_writes(&job("create"), &r).unwrap();
        assert_eq!(
            ops(&w),
            vec![
                ("set", "/esi-worker/job_state/v2.0/things/t1"),
                ("set", "/esi-worker/heat_stacks/v2.0/things/t1"),
                ("compareAndSwap", "/esi-worker/job_state/v2.0/things/t1"),
                ("set", "/state/v2.0/things/t1"),
                ("compareAndDelete", "/esi-worker/job_state/v2.0/things/t1"),
            ]
        );
        assert_eq!(
            w[3].value().unwrap()["state"]["heat_outputs"],
            json!("[{\"output_key\": \"id\", \"output_value\": \"x\"}]")
        );
        assert_eq!(w[1].value().unwrap()["stack_id"], json!("thing_t1"));
    }

    #[test]
    fn logical_delete_blanks_and_removes() {
        let r = StackResult {
            status: "DELETE_COMPLETE".into(),
            outputs: vec![],
            reason: None,
        };
        let w = state_writes(&job("logical_delete"), &r).unwrap();
        assert_eq!(w.len(), 7);
        assert_eq!(w[1].value().unwrap()["stack_id"], json!(""));
        assert_eq!(
            w[3].value().unwrap()["state"]["worker_state"],
            json!("DELETE_COMPLETED")
        );
        assert_eq!(
            w[5],
            EtcdOp::Delete {
                key: "/state/v2.0/things/t1".into()
            }
        );
    }

    #[test]
    fn failure_is_recorded_and_never_completes_a_delete() {
        let r = StackResult {
            status: "DELETE_FAILED".into(),
            outputs: vec![],
            reason: Some("boom".into()),
        };
        let w = state_writes(&job("logical_delete"), &r).unwrap();
        assert_eq!(w.len(), 5);
        let st = w[3].value().unwrap();
        assert_eq!(st["state"]["worker_state"], json!("DELETE_ERROR"));
        assert_eq!(st["error"], json!("boom"));
        assert!(state_writes(
            &job("create"),
            &StackResult {
                status: "CREATE_IN_PROGRESS".into(),
                outputs: vec![],
                reason: None
            }
        )
        .is_err());
        let e = worker_error_writes(&job("modify"), "template missing");
        assert_eq!(
            e[1].value().unwrap()["state"]["worker_state"],
            json!("MODIFY_ERROR")
        );
    }
}
