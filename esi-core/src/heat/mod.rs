//! The orchestration engine behind the workers: the [`Heat`] trait.
//!
//! A worker turns a job into an [`crate::exec::stack::StackRequest`] and hands it to a `Heat`;
//! the outcome becomes the state documents ([`crate::exec::state::state_writes`]). Backends: the
//! in-process `LocalHeat` of the embedded default, and OpenStack Heat over HTTP (adapter crate).

pub mod drive;
pub mod hot;
pub mod ids;
pub mod local;
pub mod plugins;

pub use local::{HeatEvent, LocalHeat, StackFault, StackSnapshot};
pub use plugins::{ResourcePlugin, ResourceState};

use crate::exec::stack::StackRequest;
use async_trait::async_trait;
use serde_json::Value;
use thiserror::Error;

/// What Heat reports about a stack after an operation (or when asked).
#[derive(Debug, Clone, PartialEq)]
pub struct StackOutcome {
    /// Heat's status: `CREATE_COMPLETE`, `UPDATE_COMPLETE`, `DELETE_COMPLETE`, `CREATE_FAILED`, …
    pub status: String,
    /// Heat's status reason (`"Stack CREATE completed successfully"`, or why it failed).
    pub reason: String,
    /// The stack outputs `[{"output_key", "output_value", "description"}]` (`[]` after a delete).
    pub outputs: Vec<Value>,
}

impl StackOutcome {
    /// True for a `*_FAILED` status.
    pub fn failed(&self) -> bool {
        self.status.ends_with("_FAILED")
    }
}

/// A Heat that could not be asked (as opposed to a stack that failed, which is a
/// [`StackOutcome`] with a `*_FAILED` status).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum HeatError {
    /// The service did not answer or answered with a transport-level error; retrying may help.
    #[error("heat unavailable: {0}")]
    Unavailable(String),
    /// The request was refused (bad template, unknown parameter …); retrying will not help.
    #[error("stack `{stack}` rejected: {reason}")]
    Rejected {
        /// Stack name.
        stack: String,
        /// Heat's message.
        reason: String,
    },
}

/// An orchestration engine. Every operation is idempotent by stack name: creating a stack that
/// exists updates it, deleting a missing stack succeeds.
#[async_trait]
pub trait Heat: Send + Sync {
    /// Creates (or, if it exists, updates) the stack of a `create` request and waits for the
    /// outcome.
    async fn create(&self, request: &StackRequest) -> Result<StackOutcome, HeatError>;
    /// Updates the stack with the full rendered template and parameters and waits.
    async fn update(&self, request: &StackRequest) -> Result<StackOutcome, HeatError>;
    /// Deletes the stack and waits; a missing stack is `DELETE_COMPLETE`.
    async fn delete(&self, stack_name: &str) -> Result<StackOutcome, HeatError>;
    /// The current state of a stack, if it exists.
    async fn get(&self, stack_name: &str) -> Result<Option<StackOutcome>, HeatError>;
}
