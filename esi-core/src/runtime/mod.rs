//! The running system: the API-server emulation, the job manager (reader + scheduler), the
//! workers, and a seeded simulation driver, all generic over [`Store`] and [`Heat`].
//!
//! Each component is a state machine with an async `step()` that handles at most one unit of
//! work and says whether it did any. A deployment drives the steps from tasks; the
//! [`sim::Simulation`] drives them in a seeded order until the system is quiet, which makes
//! fault-injection runs reproducible.
//!
//! [`Heat`]: crate::heat::Heat

pub mod api;
pub mod client;
pub mod driver;
pub mod embedded;
pub mod manager;
pub mod metrics;
pub mod monitor;
pub mod sim;
pub mod stored;
pub mod worker;

use crate::exec::state::EtcdOp;
use crate::heat::HeatError;
use crate::store::{PutMode, Store, StoreError};
use serde_json::{json, Value};
use thiserror::Error;

/// Errors of the runtime components. Per-resource problems (a malformed resource, a broken
/// mapping, a failed stack) are not errors here: they are recorded on the resource's `/state`
/// and the component goes on. These are the problems of the component itself.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RuntimeError {
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// Heat could not be reached.
    #[error("heat: {0}")]
    Heat(#[from] HeatError),
    /// This manager is no longer the leader; it dropped its state and will campaign again.
    #[error("lost leadership")]
    LostLeadership,
}

/// The `/config` envelope Gohan writes: `{"body": "<json text>", "marked_for_deletion", "version"}`.
pub fn config_envelope(body: &Value, version: u64, marked_for_deletion: bool) -> String {
    json!({
        "body": body.to_string(),
        "marked_for_deletion": marked_for_deletion,
        "version": version,
    })
    .to_string()
}

/// A decoded `/config` value.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigValue {
    /// The decoded body.
    pub body: Value,
    /// The config version.
    pub version: u64,
    /// The two-step delete flag.
    pub marked_for_deletion: bool,
}

/// Decodes a `/config` value; the error names the field that is wrong.
pub fn decode_config(text: &str) -> Result<ConfigValue, String> {
    let v: Value = serde_json::from_str(text).map_err(|e| format!("value is not JSON: {e}"))?;
    let body = match v.get("body") {
        Some(Value::String(s)) => {
            serde_json::from_str(s).map_err(|e| format!("`body` is not JSON text: {e}"))?
        }
        Some(b @ Value::Object(_)) => b.clone(),
        _ => return Err("`body` is missing".to_string()),
    };
    if !body.is_object() {
        return Err("`body` is not an object".to_string());
    }
    let version = v
        .get("version")
        .and_then(Value::as_u64)
        .ok_or_else(|| "`version` is missing or not a non-negative integer".to_string())?;
    let marked_for_deletion = v
        .get("marked_for_deletion")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    Ok(ConfigValue {
        body,
        version,
        marked_for_deletion,
    })
}

/// A `/state` document.
pub fn state_document(worker_state: &str, error: &str, version: u64) -> String {
    json!({"error": error, "state": {"worker_state": worker_state}, "version": version}).to_string()
}

/// Applies the worker's v2-style operations to a v3 store: `set` → put, `compareAndSwap` →
/// put if the key still has the revision just read, `compareAndDelete` / `delete` → delete
/// (a missing key is fine: every step must be idempotent when a job runs twice).
pub async fn apply_ops(store: &dyn Store, ops: &[EtcdOp]) -> Result<(), StoreError> {
    for op in ops {
        match op {
            EtcdOp::Set { key, value } => {
                store
                    .put(key, &value.to_string(), PutMode::Overwrite, None)
                    .await?;
            }
            EtcdOp::CompareAndSwap { key, value } => {
                let mode = match store.get(key).await? {
                    Some(kv) => PutMode::Update(kv.mod_revision),
                    None => PutMode::Create,
                };
                store.put(key, &value.to_string(), mode, None).await?;
            }
            EtcdOp::CompareAndDelete { key } => {
                if let Some(kv) = store.get(key).await? {
                    match store.delete(key, Some(kv.mod_revision)).await {
                        Ok(_) | Err(StoreError::Precondition { .. }) => {}
                        Err(e) => return Err(e),
                    }
                }
            }
            EtcdOp::Delete { key } => {
                store.delete(key, None).await?;
            }
        }
    }
    Ok(())
}

/// Splits a key `<prefix>/<id>` into (prefix, id).
pub(crate) fn split_id(key: &str) -> Option<(&str, &str)> {
    key.rsplit_once('/')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_envelope_round_trips_with_exact_types() {
        let body = json!({"id": "p1", "port": 830, "name": "x", "flag": false});
        let text = config_envelope(&body, 3, true);
        let d = decode_config(&text).expect("decodes");
        assert_eq!(d.body, body);
        assert_eq!((d.version, d.marked_for_deletion), (3, true));
        assert!(decode_config("{\"body\": 5, \"version\": 1}")
            .unwrap_err()
            .contains("body"));
        assert!(decode_config("{\"body\": \"{}\"}")
            .unwrap_err()
            .contains("version"));
        assert!(decode_config("nope").unwrap_err().contains("JSON"));
    }
}

/// A small deterministic generator (xorshift64*) for reservation ids, jitter and scheduling.
#[derive(Debug, Clone)]
pub struct SimRng(u64);

impl SimRng {
    /// Seeds the generator.
    pub fn new(seed: u64) -> Self {
        Self(seed ^ 0x2545_F491_4F6C_DD1D)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0.max(1);
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n` (`0` when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next_u64() % n as u64) as usize
        }
    }

    /// A version-4-shaped UUID.
    pub fn uuid(&mut self) -> String {
        let (a, b) = (self.next_u64(), self.next_u64());
        format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0x0fff,
            0x8000 | (b >> 48 & 0x3fff),
            b & 0xffff_ffff_ffff
        )
    }
}
