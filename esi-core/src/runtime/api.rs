//! The API-server side on the embedded default (Gohan's role in the recordings).
//!
//! It stores resources under `/config` with their version (`create`, `modify`, and the first step
//! of the two-step delete, `mark_for_deletion`), and performs step 4 of the two-step delete
//! (`shared/spec/keys.md`): when a resource marked for deletion gets a `DELETE_COMPLETED` (or,
//! for a resource without a template, `READ_COMPLETE`) `/state` whose version equals its config
//! version, it removes `/config` then `/state`. A `DELETE_ERROR` keeps the resource.

use super::{config_envelope, decode_config, RuntimeError};
use crate::catalog::Catalog;
use crate::keys;
use crate::store::{PutMode, Revision, Store, Watch, WatchEvent};
use serde_json::Value;
use std::sync::Arc;
use thiserror::Error;

/// A change refused by the API (the caller's mistake, reported to it; nothing is stored).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ApiError {
    /// No schema for the type.
    #[error("unknown resource type `{0}`")]
    UnknownType(String),
    /// Create of an existing resource.
    #[error("{0} already exists")]
    Exists(String),
    /// Modify or delete of a missing resource.
    #[error("{0} does not exist")]
    Missing(String),
    /// The body is not an object, or its `id` disagrees.
    #[error("{resource}: invalid body: {reason}")]
    InvalidBody {
        /// `type/id`.
        resource: String,
        /// Why.
        reason: String,
    },
    /// The runtime failed underneath.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
}

/// The API-server emulation.
pub struct Api {
    store: Arc<dyn Store>,
    catalog: Arc<Catalog>,
    watch: Option<Watch>,
}

impl Api {
    /// An API server over `store`.
    pub fn new(store: Arc<dyn Store>, catalog: Arc<Catalog>) -> Self {
        Self {
            store,
            catalog,
            watch: None,
        }
    }

    fn config_key(&self, ty: &str, id: &str) -> Result<String, ApiError> {
        self.catalog
            .schemas
            .get(ty)
            .map(|s| s.config_key(id))
            .ok_or_else(|| ApiError::UnknownType(ty.to_string()))
    }

    /// Stores a new resource at version 1.
    pub async fn create(&self, ty: &str, id: &str, body: &Value) -> Result<(), ApiError> {
        let key = self.config_key(ty, id)?;
        let resource = format!("{ty}/{id}");
        match body.get("id") {
            Some(Value::String(b)) if b == id => {}
            _ if !body.is_object() => {
                return Err(ApiError::InvalidBody {
                    resource,
                    reason: "not an object".into(),
                })
            }
            _ => {
                return Err(ApiError::InvalidBody {
                    resource,
                    reason: "`id` must equal the resource id".into(),
                })
            }
        }
        match self
            .store
            .put(
                &key,
                &config_envelope(body, 1, false),
                PutMode::Create,
                None,
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(crate::store::StoreError::AlreadyExists(_)) => Err(ApiError::Exists(resource)),
            Err(e) => Err(RuntimeError::from(e).into()),
        }
    }

    /// Merges `patch` (top-level fields) into the stored body and stores the next version.
    pub async fn modify(&self, ty: &str, id: &str, patch: &Value) -> Result<u64, ApiError> {
        self.update(
            ty,
            id,
            |body| {
                if let (Value::Object(b), Value::Object(p)) = (body, patch) {
                    for (k, v) in p {
                        if k != "id" {
                            b.insert(k.clone(), v.clone());
                        }
                    }
                }
            },
            false,
        )
        .await
    }

    /// First step of the two-step delete: store the next version marked for deletion.
    pub async fn mark_for_deletion(&self, ty: &str, id: &str) -> Result<u64, ApiError> {
        self.update(ty, id, |_| {}, true).await
    }

    async fn update(
        &self,
        ty: &str,
        id: &str,
        change: impl FnOnce(&mut Value),
        marked: bool,
    ) -> Result<u64, ApiError> {
        let key = self.config_key(ty, id)?;
        let resource = format!("{ty}/{id}");
        let kv = self
            .store
            .get(&key)
            .await
            .map_err(RuntimeError::from)?
            .ok_or_else(|| ApiError::Missing(resource.clone()))?;
        let mut current = decode_config(&kv.value).map_err(|reason| ApiError::InvalidBody {
            resource: resource.clone(),
            reason,
        })?;
        change(&mut current.body);
        let version = current.version + 1;
        self.store
            .put(
                &key,
                &config_envelope(&current.body, version, marked),
                PutMode::Update(kv.mod_revision),
                None,
            )
            .await
            .map_err(RuntimeError::from)?;
        Ok(version)
    }

    /// Follows `/state` from `from` (call once before the first step).
    pub async fn start(&mut self, from: Revision) -> Result<(), RuntimeError> {
        self.watch = Some(self.store.watch(&format!("{}/", keys::STATE), from).await?);
        Ok(())
    }

    /// Handles at most one `/state` change; returns whether there was any.
    pub async fn step(&mut self) -> Result<bool, RuntimeError> {
        let Some(w) = self.watch.as_mut() else {
            return Ok(false);
        };
        let ev = match w.try_next() {
            None => return Ok(false),
            Some(Err(e)) => return Err(e.into()),
            Some(Ok(ev)) => ev,
        };
        self.handle(ev).await
    }

    /// Waits for the next `/state` change and handles it (the real-time driver's loop).
    /// A compacted or closed watch is replaced after a relist of `/state` ([`Api::resync`]).
    pub async fn step_wait(&mut self) -> Result<bool, RuntimeError> {
        let Some(w) = self.watch.as_mut() else {
            return self.resync().await.map(|()| true);
        };
        match w.next().await {
            Some(Ok(ev)) => self.handle(ev).await,
            Some(Err(crate::store::StoreError::Compacted { .. })) | None => {
                self.resync().await.map(|()| true)
            }
            Some(Err(e)) => Err(e.into()),
        }
    }

    /// Lists `/state`, completes every deletion that is due, and watches from the listing.
    pub async fn resync(&mut self) -> Result<(), RuntimeError> {
        let (states, rev) = self.store.range(&format!("{}/", keys::STATE)).await?;
        self.watch = Some(
            self.store
                .watch(&format!("{}/", keys::STATE), rev + 1)
                .await?,
        );
        for kv in states {
            self.handle(WatchEvent::Put(kv)).await?;
        }
        Ok(())
    }

    async fn handle(&mut self, ev: WatchEvent) -> Result<bool, RuntimeError> {
        let WatchEvent::Put(kv) = ev else {
            return Ok(true);
        };
        let Some(rest) = kv.key.strip_prefix(keys::STATE) else {
            return Ok(true);
        };
        let state: Value = serde_json::from_str(&kv.value).unwrap_or(Value::Null);
        let state_version = state.get("version").and_then(Value::as_u64);
        let worker_state = state
            .pointer("/state/worker_state")
            .and_then(Value::as_str)
            .unwrap_or("");
        let config_key = format!("{}{rest}", keys::CONFIG);
        let Some(config) = self.store.get(&config_key).await? else {
            return Ok(true);
        };
        let Ok(c) = decode_config(&config.value) else {
            return Ok(true);
        };
        let done = matches!(worker_state, "DELETE_COMPLETED" | "READ_COMPLETE");
        if c.marked_for_deletion && done && state_version == Some(c.version) {
            tracing::info!(key = %config_key, "deletion completed: removing the resource");
            self.store.delete(&config_key, None).await?;
            self.store.delete(&kv.key, None).await?;
        }
        Ok(true)
    }
}
