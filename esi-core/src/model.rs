//! The resource model: resources, references, job records and their params.
//!
//! Every type here serialises to exactly the JSON the recorded system wrote (field names,
//! JSON types), because job records are compared byte-for-byte by consumers of `/jobs/all`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::fmt;

/// A reference to one resource: its type (schema id) and its id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ResourceRef {
    /// The resource type, e.g. `port`.
    pub resource_type: String,
    /// The resource id (usually a UUID).
    pub resource_id: String,
}

impl ResourceRef {
    /// Builds a reference.
    pub fn new(resource_type: impl Into<String>, resource_id: impl Into<String>) -> Self {
        Self {
            resource_type: resource_type.into(),
            resource_id: resource_id.into(),
        }
    }
}

impl fmt::Display for ResourceRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.resource_type, self.resource_id)
    }
}

/// One stored resource: the decoded body plus the envelope fields of `/config/<prefix>/<id>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Resource {
    /// Type and id.
    #[serde(flatten)]
    pub key: ResourceRef,
    /// The decoded resource body (a JSON object; JSON types are preserved exactly).
    pub body: Value,
    /// The config version (starts at 1, grows by one per stored change).
    pub version: u64,
    /// ESI's two-step delete flag.
    #[serde(default)]
    pub marked_for_deletion: bool,
}

impl Resource {
    /// Builds a resource that is not marked for deletion.
    pub fn new(
        resource_type: impl Into<String>,
        resource_id: impl Into<String>,
        body: Value,
        version: u64,
    ) -> Self {
        Self {
            key: ResourceRef::new(resource_type, resource_id),
            body,
            version,
            marked_for_deletion: false,
        }
    }

    /// Reads a top-level body field; an absent field (or a non-object body) reads as `None`.
    pub fn field(&self, name: &str) -> Option<&Value> {
        self.body.get(name)
    }
}

/// The type of an evaluated param.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ParamType {
    /// A plain JSON value.
    Value,
    /// A reference to an output of another resource's stack:
    /// `{"output_key", "resource_type", "resource_id"}`.
    OutputKey,
    /// A list of sub-params (one per iterated element), at least one of which is not a value.
    List,
}

impl ParamType {
    /// The wire name (`value`, `output_key`, `list`).
    pub fn as_str(self) -> &'static str {
        match self {
            ParamType::Value => "value",
            ParamType::OutputKey => "output_key",
            ParamType::List => "list",
        }
    }
}

/// One evaluated mapping inside a job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobParam {
    /// The param name (the key of `parameter_mappings`).
    pub param: String,
    /// The param type.
    #[serde(rename = "type")]
    pub kind: ParamType,
    /// The value; for `list` a JSON list of sub-param objects.
    pub value: Value,
    /// The resource chain: every resource the evaluation visited, in visit order.
    pub resources: Vec<ResourceRef>,
}

/// What a job asks its worker to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobAction {
    /// Create the stack (or register the monitoring).
    Create,
    /// Update the stack in place.
    Modify,
    /// Delete the stack of a resource marked for deletion.
    LogicalDelete,
    /// Delete (the monitoring job placed first in a two-handler modify chain).
    Delete,
}

impl JobAction {
    /// The wire name used in job ids.
    pub fn as_str(self) -> &'static str {
        match self {
            JobAction::Create => "create",
            JobAction::Modify => "modify",
            JobAction::LogicalDelete => "logical_delete",
            JobAction::Delete => "delete",
        }
    }
}

impl JobAction {
    /// `true` for `logical_delete` and `delete`.
    pub fn is_delete(self) -> bool {
        matches!(self, JobAction::LogicalDelete | JobAction::Delete)
    }

    /// The prefix of `worker_state` (`CREATE`, `MODIFY`, `DELETE`).
    pub fn state_word(self) -> &'static str {
        match self {
            JobAction::Create => "CREATE",
            JobAction::Modify => "MODIFY",
            JobAction::LogicalDelete | JobAction::Delete => "DELETE",
        }
    }
}

impl fmt::Display for JobAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What happens to dependents when a job fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnFailure {
    /// Dependents are not run.
    Fail,
    /// Dependents are released as if the job had succeeded.
    Ignore,
}

impl OnFailure {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            OnFailure::Fail => "fail",
            OnFailure::Ignore => "ignore",
        }
    }
}

/// A job record, element 1 of the `/jobs/all/<id>` triple `["<handler>", job, 0]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    /// The action.
    pub action: JobAction,
    /// The worker kind (`heat_worker`, `monitoring_worker`).
    pub handler: String,
    /// The changed resource's type.
    pub resource_type: String,
    /// The changed resource's id.
    pub resource_id: String,
    /// The config version of the change.
    pub version: u64,
    /// `"<type>:<id>:<version>"`.
    pub job_name: String,
    /// `"<action>:<handler>:<type>:<id>:<version>:<suffix>"`.
    pub id: String,
    /// Failure policy.
    pub on_failure: OnFailure,
    /// First job of its chain.
    pub is_first: bool,
    /// Last job of its chain.
    pub is_last: bool,
    /// Ids of the jobs this one waits for (no duplicates).
    pub dependency: Vec<String>,
    /// The evaluated params.
    pub params: Vec<JobParam>,
    /// The new resource body.
    pub resource_input: Value,
}

impl Job {
    /// The resource this job works on.
    pub fn resource(&self) -> ResourceRef {
        ResourceRef::new(&self.resource_type, &self.resource_id)
    }

    /// Every resource named by this job's params (and their list sub-params), duplicates removed,
    /// in first-seen order. Dependency matching works on this set, never on the raw lists (which
    /// carry the recorded repetition quirk).
    pub fn referenced_resources(&self) -> Vec<ResourceRef> {
        let mut out: Vec<ResourceRef> = Vec::new();
        for p in &self.params {
            for r in &p.resources {
                if !out.contains(r) {
                    out.push(r.clone());
                }
            }
        }
        out
    }

    /// The stored triple `["<handler>", job, 0]` (the trailing `0` is constant in every recording).
    pub fn to_record(&self) -> Value {
        Value::Array(vec![
            Value::String(self.handler.clone()),
            serde_json::to_value(self).unwrap_or(Value::Null),
            Value::from(0),
        ])
    }

    /// The random suffix of the id (its last `:`-separated part).
    pub fn suffix(&self) -> &str {
        self.id.rsplit(':').next().unwrap_or("")
    }
}

/// Builds the id of a job: `"<action>:<handler>:<type>:<id>:<version>:<suffix>"`.
pub fn job_id(
    action: JobAction,
    handler: &str,
    r: &ResourceRef,
    version: u64,
    suffix: &str,
) -> String {
    format!(
        "{}:{}:{}:{}:{}:{}",
        action.as_str(),
        handler,
        r.resource_type,
        r.resource_id,
        version,
        suffix
    )
}

/// An empty JSON object.
pub fn empty_object() -> Value {
    Value::Object(Map::new())
}
