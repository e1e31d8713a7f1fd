//! The stored job (`/jobs/all/<id>`, element 1 of the stored triple), as far
//! as the execution half reads it.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub use crate::model::{JobAction, ParamType};

/// One job parameter `{param, type, value, resources}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobParam {
    /// Parameter name (`jinja_*`, `heat_timeout` or a Heat parameter).
    pub param: String,
    /// How to resolve `value`.
    #[serde(rename = "type")]
    pub kind: ParamType,
    /// The stored value (meaning depends on `kind`).
    #[serde(default)]
    pub value: Value,
    /// Resources the value depends on (informative here).
    #[serde(default)]
    pub resources: Vec<Value>,
}

/// A stored job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    /// Job id (`<action>:<handler>:<type>:<id>:<version>:<suffix>`).
    #[serde(default)]
    pub id: String,
    /// Singular resource type (`port`, `gw_interface`).
    pub resource_type: String,
    /// Gohan id of the resource.
    pub resource_id: String,
    /// What to do.
    pub action: JobAction,
    /// Config version of the resource.
    pub version: Value,
    /// Parameters in stored order.
    #[serde(default)]
    pub params: Vec<JobParam>,
    /// The resource body the JobManager saw.
    #[serde(default)]
    pub resource_input: Map<String, Value>,
    /// First job of its chain (writes the empty job_state). Absent = `true`.
    #[serde(default = "yes")]
    pub is_first: bool,
    /// Last job of its chain (deletes job_state). Absent = `true`.
    #[serde(default = "yes")]
    pub is_last: bool,
    /// Handler name (`heat_worker`).
    #[serde(default)]
    pub handler: String,
}

fn yes() -> bool {
    true
}

impl Job {
    /// Deserialises a stored job, naming the problem on failure.
    pub fn from_value(v: &Value) -> Result<Self, serde_json::Error> {
        serde_json::from_value(v.clone())
    }

    /// Heat stack name `<resource_type>_<resource_id>`.
    pub fn stack_name(&self) -> String {
        format!("{}_{}", self.resource_type, self.resource_id)
    }

    /// Plural used in per-resource etcd keys (`<resource_type>s`).
    pub fn plural(&self) -> String {
        format!("{}s", self.resource_type)
    }

    /// A short label naming the job for error messages.
    pub fn label(&self) -> String {
        if self.id.is_empty() {
            format!(
                "{:?} {}/{}",
                self.action, self.resource_type, self.resource_id
            )
        } else {
            self.id.clone()
        }
    }
}
