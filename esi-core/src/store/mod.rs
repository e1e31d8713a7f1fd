//! The storage trait: a key-value store with etcd v3 semantics.
//!
//! One small required trait ([`Store`]) with conditional writes as part of the interface
//! ([`PutMode`]), semantic errors callers can branch on ([`StoreError`]), an in-memory backend
//! next to it ([`MemoryStore`]), and a conformance suite every backend runs ([`suite`]).
//!
//! The recorded system used etcd v2 operation names (`set`, `create`, `compareAndSwap`,
//! `compareAndDelete`, `delete`); they map onto this trait as `put(Overwrite)`, `put(Create)`,
//! `put(Update(rev))`, `delete(Some(rev))`, `delete(None)` (`shared/spec/keys.md`).

mod memory;
pub mod suite;

pub use memory::MemoryStore;

use async_trait::async_trait;
use std::time::Duration;
use thiserror::Error;
use tokio::sync::mpsc;

/// A store-wide revision (etcd's `header.revision`), growing by one per write transaction.
pub type Revision = i64;

/// A lease id.
pub type LeaseId = i64;

/// One stored key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    /// The key.
    pub key: String,
    /// The value (JSON text for every key esi writes).
    pub value: String,
    /// Revision of the write that created the key.
    pub create_revision: Revision,
    /// Revision of the last write to the key.
    pub mod_revision: Revision,
    /// Number of writes since creation (1 after the create).
    pub version: i64,
    /// The lease the key is bound to, if any.
    pub lease: Option<LeaseId>,
}

/// How a put treats an existing key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PutMode {
    /// Write whatever is there (v2 `set`).
    #[default]
    Overwrite,
    /// Only if the key does not exist (v2 `create`); else [`StoreError::AlreadyExists`].
    Create,
    /// Only if the key's `mod_revision` is this one (v2 `compareAndSwap`); else
    /// [`StoreError::Precondition`].
    Update(Revision),
}

/// A condition of a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Compare {
    /// The key does not exist.
    Absent(String),
    /// The key exists with this `mod_revision`.
    ModRevision(String, Revision),
    /// The key exists with this value.
    Value(String, String),
}

/// An operation inside a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxnOp {
    /// Unconditional put, optionally bound to a lease.
    Put {
        /// Key.
        key: String,
        /// Value.
        value: String,
        /// Lease.
        lease: Option<LeaseId>,
    },
    /// Delete (no error when absent).
    Delete {
        /// Key.
        key: String,
    },
    /// Read.
    Get {
        /// Key.
        key: String,
    },
}

/// A multi-operation transaction: if every compare holds, `success` runs, else `failure`; all
/// at one revision.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Txn {
    /// Conditions.
    pub compares: Vec<Compare>,
    /// Operations when all conditions hold.
    pub success: Vec<TxnOp>,
    /// Operations otherwise.
    pub failure: Vec<TxnOp>,
}

/// The result of a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnResponse {
    /// Whether the compares held.
    pub succeeded: bool,
    /// The store revision after the transaction.
    pub revision: Revision,
    /// Per operation: the key read by a `Get` (None for puts, deletes and absent keys).
    pub results: Vec<Option<KeyValue>>,
}

/// A change seen by a watch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchEvent {
    /// The key was written.
    Put(KeyValue),
    /// The key was deleted (at `revision`), explicitly or by lease expiry.
    Delete {
        /// The key.
        key: String,
        /// The revision of the deletion.
        revision: Revision,
    },
}

impl WatchEvent {
    /// The key concerned.
    pub fn key(&self) -> &str {
        match self {
            WatchEvent::Put(kv) => &kv.key,
            WatchEvent::Delete { key, .. } => key,
        }
    }

    /// The revision of the change.
    pub fn revision(&self) -> Revision {
        match self {
            WatchEvent::Put(kv) => kv.mod_revision,
            WatchEvent::Delete { revision, .. } => *revision,
        }
    }
}

/// A stream of changes under a prefix.
#[derive(Debug)]
pub struct Watch {
    rx: mpsc::UnboundedReceiver<Result<WatchEvent, StoreError>>,
}

impl Watch {
    /// Wraps a channel fed by a backend.
    pub fn from_channel(rx: mpsc::UnboundedReceiver<Result<WatchEvent, StoreError>>) -> Self {
        Self { rx }
    }

    /// The next change; `None` when the store closed the watch.
    pub async fn next(&mut self) -> Option<Result<WatchEvent, StoreError>> {
        self.rx.recv().await
    }

    /// The next change if one is already queued.
    pub fn try_next(&mut self) -> Option<Result<WatchEvent, StoreError>> {
        self.rx.try_recv().ok()
    }
}

/// Errors a store reports; the first four are semantic and meant to be matched on.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum StoreError {
    /// A create-only put found the key.
    #[error("key `{0}` already exists")]
    AlreadyExists(String),
    /// A conditional write found another revision (or no key).
    #[error("key `{key}` is not at revision {expected}")]
    Precondition {
        /// The key.
        key: String,
        /// The revision the caller expected.
        expected: Revision,
    },
    /// The requested watch start revision was compacted: relist, then watch from the list's
    /// revision.
    #[error("revision {requested} is compacted (oldest available: {compacted})")]
    Compacted {
        /// What was asked for.
        requested: Revision,
        /// The compaction revision.
        compacted: Revision,
    },
    /// The lease does not exist (expired or revoked).
    #[error("lease {0} not found")]
    LeaseNotFound(LeaseId),
    /// Anything else, from the named backend.
    #[error("{backend}: {message}")]
    Backend {
        /// Backend name (`memory`, `etcd`).
        backend: &'static str,
        /// What happened.
        message: String,
    },
}

/// A key-value store with etcd semantics.
#[async_trait]
pub trait Store: Send + Sync {
    /// Reads one key.
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError>;
    /// Reads every key under `prefix` (sorted by key) and the store revision of the read.
    async fn range(&self, prefix: &str) -> Result<(Vec<KeyValue>, Revision), StoreError>;
    /// Writes a key; returns the new revision.
    async fn put(
        &self,
        key: &str,
        value: &str,
        mode: PutMode,
        lease: Option<LeaseId>,
    ) -> Result<Revision, StoreError>;
    /// Deletes a key, only at `if_revision` when given; returns whether a key was deleted.
    /// A conditional delete of a key at another revision is [`StoreError::Precondition`].
    async fn delete(&self, key: &str, if_revision: Option<Revision>) -> Result<bool, StoreError>;
    /// Runs a transaction.
    async fn txn(&self, txn: Txn) -> Result<TxnResponse, StoreError>;
    /// Watches every change under `prefix` with a revision `>= from` (`from = current + 1`
    /// for "from now on").
    async fn watch(&self, prefix: &str, from: Revision) -> Result<Watch, StoreError>;
    /// Grants a lease with a time to live.
    async fn grant(&self, ttl: Duration) -> Result<LeaseId, StoreError>;
    /// Renews a lease for another TTL.
    async fn keep_alive(&self, lease: LeaseId) -> Result<(), StoreError>;
    /// Revokes a lease, deleting its keys.
    async fn revoke(&self, lease: LeaseId) -> Result<(), StoreError>;
    /// Discards history up to `revision` (watches from before it fail with `Compacted`).
    async fn compact(&self, revision: Revision) -> Result<(), StoreError>;
    /// The current revision.
    async fn revision(&self) -> Result<Revision, StoreError>;
}
