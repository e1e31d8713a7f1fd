//! `MemoryStore`: the embedded default, an in-memory store with etcd's semantics.
//!
//! A global revision incremented once per write transaction; per-key create/mod revision and
//! version; a history of events for watches from a past revision, discarded by `compact`;
//! leases whose expiry deletes their keys (checked on every operation, with tokio's clock, so a
//! paused test clock drives it deterministically).

use super::{
    Compare, KeyValue, LeaseId, PutMode, Revision, Store, StoreError, Txn, TxnOp, TxnResponse,
    Watch, WatchEvent,
};
use async_trait::async_trait;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

struct Lease {
    ttl: Duration,
    deadline: Instant,
    keys: BTreeSet<String>,
}

struct Watcher {
    prefix: String,
    tx: mpsc::UnboundedSender<Result<WatchEvent, StoreError>>,
}

#[derive(Default)]
struct Inner {
    revision: Revision,
    kv: BTreeMap<String, KeyValue>,
    history: Vec<WatchEvent>,
    compacted: Revision,
    leases: HashMap<LeaseId, Lease>,
    next_lease: LeaseId,
    watchers: Vec<Watcher>,
}

/// The in-memory store.
#[derive(Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let g = self.lock();
        f.debug_struct("MemoryStore")
            .field("revision", &g.revision)
            .field("keys", &g.kv.len())
            .field("leases", &g.leases.len())
            .finish()
    }
}

impl MemoryStore {
    /// An empty store at revision 0.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A poisoned lock means a panic while holding it; the data is still consistent because
        // every mutation below completes before any call that could panic.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Expires due leases now (operations do this too; exposed for idle simulations).
    pub fn expire_leases(&self) {
        self.lock().expire();
    }

    /// Every key and value, for snapshots in tests and reports.
    pub fn dump(&self) -> Vec<(String, String)> {
        let mut g = self.lock();
        g.expire();
        g.kv.values()
            .map(|kv| (kv.key.clone(), kv.value.clone()))
            .collect()
    }
}

impl Inner {
    fn expire(&mut self) {
        let now = Instant::now();
        let due: Vec<LeaseId> = self
            .leases
            .iter()
            .filter(|(_, l)| l.deadline <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            self.revoke(id);
        }
    }

    fn revoke(&mut self, id: LeaseId) -> bool {
        let Some(lease) = self.leases.remove(&id) else {
            return false;
        };
        let live: Vec<String> = lease
            .keys
            .into_iter()
            .filter(|k| self.kv.contains_key(k))
            .collect();
        if !live.is_empty() {
            self.revision += 1;
            let rev = self.revision;
            for k in live {
                self.remove_key(&k, rev);
            }
        }
        true
    }

    fn emit(&mut self, ev: WatchEvent) {
        self.watchers.retain(|w| {
            if ev.key().starts_with(&w.prefix) {
                w.tx.send(Ok(ev.clone())).is_ok()
            } else {
                !w.tx.is_closed()
            }
        });
        self.history.push(ev);
    }

    fn write_key(
        &mut self,
        key: &str,
        value: &str,
        lease: Option<LeaseId>,
        rev: Revision,
    ) -> Result<(), StoreError> {
        if let Some(id) = lease {
            let l = self
                .leases
                .get_mut(&id)
                .ok_or(StoreError::LeaseNotFound(id))?;
            l.keys.insert(key.to_string());
        }
        let kv = match self.kv.get(key) {
            Some(old) => {
                if let Some(prev) = old.lease.filter(|p| Some(*p) != lease) {
                    if let Some(l) = self.leases.get_mut(&prev) {
                        l.keys.remove(key);
                    }
                }
                KeyValue {
                    key: key.to_string(),
                    value: value.to_string(),
                    create_revision: old.create_revision,
                    mod_revision: rev,
                    version: old.version + 1,
                    lease,
                }
            }
            None => KeyValue {
                key: key.to_string(),
                value: value.to_string(),
                create_revision: rev,
                mod_revision: rev,
                version: 1,
                lease,
            },
        };
        self.kv.insert(key.to_string(), kv.clone());
        self.emit(WatchEvent::Put(kv));
        Ok(())
    }

    fn remove_key(&mut self, key: &str, rev: Revision) -> bool {
        match self.kv.remove(key) {
            Some(old) => {
                if let Some(l) = old.lease.and_then(|id| self.leases.get_mut(&id)) {
                    l.keys.remove(key);
                }
                self.emit(WatchEvent::Delete {
                    key: key.to_string(),
                    revision: rev,
                });
                true
            }
            None => false,
        }
    }

    fn holds(&self, c: &Compare) -> bool {
        match c {
            Compare::Absent(k) => !self.kv.contains_key(k),
            Compare::ModRevision(k, r) => self.kv.get(k).is_some_and(|kv| kv.mod_revision == *r),
            Compare::Value(k, v) => self.kv.get(k).is_some_and(|kv| &kv.value == v),
        }
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError> {
        let mut g = self.lock();
        g.expire();
        Ok(g.kv.get(key).cloned())
    }

    async fn range(&self, prefix: &str) -> Result<(Vec<KeyValue>, Revision), StoreError> {
        let mut g = self.lock();
        g.expire();
        let kvs =
            g.kv.range(prefix.to_string()..)
                .take_while(|(k, _)| k.starts_with(prefix))
                .map(|(_, v)| v.clone())
                .collect();
        Ok((kvs, g.revision))
    }

    async fn put(
        &self,
        key: &str,
        value: &str,
        mode: PutMode,
        lease: Option<LeaseId>,
    ) -> Result<Revision, StoreError> {
        let mut g = self.lock();
        g.expire();
        match mode {
            PutMode::Overwrite => {}
            PutMode::Create => {
                if g.kv.contains_key(key) {
                    return Err(StoreError::AlreadyExists(key.to_string()));
                }
            }
            PutMode::Update(expected) => {
                if g.kv.get(key).is_none_or(|kv| kv.mod_revision != expected) {
                    return Err(StoreError::Precondition {
                        key: key.to_string(),
                        expected,
                    });
                }
            }
        }
        if let Some(id) = lease {
            if !g.leases.contains_key(&id) {
                return Err(StoreError::LeaseNotFound(id));
            }
        }
        g.revision += 1;
        let rev = g.revision;
        g.write_key(key, value, lease, rev)?;
        Ok(rev)
    }

    async fn delete(&self, key: &str, if_revision: Option<Revision>) -> Result<bool, StoreError> {
        let mut g = self.lock();
        g.expire();
        if let Some(expected) = if_revision {
            if g.kv.get(key).is_none_or(|kv| kv.mod_revision != expected) {
                return Err(StoreError::Precondition {
                    key: key.to_string(),
                    expected,
                });
            }
        }
        if !g.kv.contains_key(key) {
            return Ok(false);
        }
        g.revision += 1;
        let rev = g.revision;
        Ok(g.remove_key(key, rev))
    }

    async fn txn(&self, txn: Txn) -> Result<TxnResponse, StoreError> {
        let mut g = self.lock();
        g.expire();
        let succeeded = txn.compares.iter().all(|c| g.holds(c));
        let ops = if succeeded { txn.success } else { txn.failure };
        for op in &ops {
            if let TxnOp::Put {
                lease: Some(id), ..
            } = op
            {
                if !g.leases.contains_key(id) {
                    return Err(StoreError::LeaseNotFound(*id));
                }
            }
        }
        let writes = ops.iter().any(|op| match op {
            TxnOp::Put { .. } => true,
            TxnOp::Delete { key } => g.kv.contains_key(key),
            TxnOp::Get { .. } => false,
        });
        if writes {
            g.revision += 1;
        }
        let rev = g.revision;
        let mut results = Vec::with_capacity(ops.len());
        for op in ops {
            match op {
                TxnOp::Put { key, value, lease } => {
                    g.write_key(&key, &value, lease, rev)?;
                    results.push(None);
                }
                TxnOp::Delete { key } => {
                    g.remove_key(&key, rev);
                    results.push(None);
                }
                TxnOp::Get { key } => results.push(g.kv.get(&key).cloned()),
            }
        }
        Ok(TxnResponse {
            succeeded,
            revision: rev,
            results,
        })
    }

    async fn watch(&self, prefix: &str, from: Revision) -> Result<Watch, StoreError> {
        let mut g = self.lock();
        g.expire();
        if from > 0 && from <= g.compacted {
            return Err(StoreError::Compacted {
                requested: from,
                compacted: g.compacted,
            });
        }
        let (tx, rx) = mpsc::unbounded_channel();
        for ev in g
            .history
            .iter()
            .filter(|e| e.revision() >= from && e.key().starts_with(prefix))
        {
            // The receiver is alive: it is returned below.
            let _ = tx.send(Ok(ev.clone()));
        }
        g.watchers.push(Watcher {
            prefix: prefix.to_string(),
            tx,
        });
        Ok(Watch::from_channel(rx))
    }

    async fn grant(&self, ttl: Duration) -> Result<LeaseId, StoreError> {
        let mut g = self.lock();
        g.expire();
        g.next_lease += 1;
        let id = g.next_lease;
        g.leases.insert(
            id,
            Lease {
                ttl,
                deadline: Instant::now() + ttl,
                keys: BTreeSet::new(),
            },
        );
        Ok(id)
    }

    async fn keep_alive(&self, lease: LeaseId) -> Result<(), StoreError> {
        let mut g = self.lock();
        g.expire();
        let l = g
            .leases
            .get_mut(&lease)
            .ok_or(StoreError::LeaseNotFound(lease))?;
        l.deadline = Instant::now() + l.ttl;
        Ok(())
    }

    async fn revoke(&self, lease: LeaseId) -> Result<(), StoreError> {
        let mut g = self.lock();
        g.expire();
        if g.revoke(lease) {
            Ok(())
        } else {
            Err(StoreError::LeaseNotFound(lease))
        }
    }

    async fn compact(&self, revision: Revision) -> Result<(), StoreError> {
        let mut g = self.lock();
        if revision > g.revision {
            return Err(StoreError::Backend {
                backend: "memory",
                message: format!(
                    "cannot compact to future revision {revision} (current {})",
                    g.revision
                ),
            });
        }
        if revision > g.compacted {
            g.compacted = revision;
            g.history.retain(|e| e.revision() > revision);
        }
        Ok(())
    }

    async fn revision(&self) -> Result<Revision, StoreError> {
        let mut g = self.lock();
        g.expire();
        Ok(g.revision)
    }
}
