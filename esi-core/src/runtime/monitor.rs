//! Monitoring targets shared between processes (monitoring.md §2.4, decision O9): the targets
//! live in the store under [`TARGETS`], every process with the `monitor` role registers itself
//! under [`MEMBERS`] with a lease, and each target is polled by the live member that
//! [`rendezvous_owner`] picks for it (highest-random-weight hashing: when a member comes or
//! goes, only the targets it wins or held move).
//!
//! * [`SharedTargets`] is the CollectorAgent API's registry ([`TargetService`]): `POST` stores
//!   the target (any process can take it), `DELETE` removes it (the owner stops polling and
//!   deletes its `/monitoring` key), `GET` answers from this process's collector or the store.
//! * [`SharedTargets::run`] keeps the membership lease alive, follows members and targets with
//!   one watch, and hands the owned targets to the local [`Collector`] (adopted with their
//!   recorded `created_at`, so the hold window is unchanged, and with the current `/monitoring`
//!   value, so an unchanged status is not written again). A dead process's lease expires
//!   within its TTL and its targets move to the others; a process that cannot renew its lease
//!   stops polling at once. The list is read again every [`SharedConfig::resync`] (the
//!   recorded agent reconciles every 300 s) and after any watch error.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::watch;

use crate::collector::{Collector, CollectorError, TargetService, TsdbSample};
use crate::exec::monitor::MonitoringTarget;
use crate::secret::redact;
use crate::store::{LeaseId, PutMode, Store, StoreError, WatchEvent};

/// Prefix of everything the shared registry writes.
pub const MONITOR: &str = "/esi/monitor/";
/// Stored targets: `/esi/monitor/targets/<id>` → the target document (secrets included).
pub const TARGETS: &str = "/esi/monitor/targets/";
/// Live members: `/esi/monitor/members/<name>`, bound to the member's lease.
pub const MEMBERS: &str = "/esi/monitor/members/";

/// The member that polls `target` among `members`: the one with the highest hash of
/// (member, target). Stable while the membership is, and a change moves only the targets the
/// arriving member wins or the leaving member held.
pub fn rendezvous_owner<'a>(
    members: impl IntoIterator<Item = &'a String>,
    target: &str,
) -> Option<&'a String> {
    members.into_iter().max_by_key(|m| {
        let h = m
            .bytes()
            .chain(std::iter::once(0))
            .chain(target.bytes())
            .fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
            });
        // finalise (splitmix64) so similar names spread
        let mut z = h.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (z ^ (z >> 31), *m)
    })
}

/// Timings of the membership.
#[derive(Debug, Clone)]
pub struct SharedConfig {
    /// This member's name (the process name).
    pub name: String,
    /// Membership lease TTL: a dead member's targets move within it.
    pub ttl: Duration,
    /// Lease renewal period (a third of the TTL is usual).
    pub refresh: Duration,
    /// Full re-read of members and targets.
    pub resync: Duration,
}

/// The shared registry of one process.
pub struct SharedTargets {
    store: Arc<dyn Store>,
    collector: Arc<Collector>,
    config: SharedConfig,
}

impl std::fmt::Debug for SharedTargets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedTargets")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

fn unavailable(e: StoreError) -> CollectorError {
    CollectorError::Unavailable {
        reason: e.to_string(),
    }
}

fn target_id(key: &str) -> Option<&str> {
    key.strip_prefix(TARGETS).filter(|id| !id.is_empty())
}

fn member_name(key: &str) -> Option<&str> {
    key.strip_prefix(MEMBERS).filter(|n| !n.is_empty())
}

/// What the membership task knows.
#[derive(Default)]
struct View {
    members: BTreeSet<String>,
    targets: BTreeMap<String, Value>,
}

impl SharedTargets {
    /// The registry over `store`, polling through `collector`.
    pub fn new(store: Arc<dyn Store>, collector: Arc<Collector>, config: SharedConfig) -> Self {
        SharedTargets {
            store,
            collector,
            config,
        }
    }

    /// The local collector (polled by the driver's monitor task).
    pub fn collector(&self) -> Arc<Collector> {
        self.collector.clone()
    }

    /// Keeps the membership and the local share of targets until `stop` turns true, then
    /// leaves (revokes the lease: the others take over at once).
    pub async fn run(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let mut lease: Option<LeaseId> = None;
        'relist: loop {
            if *stop.borrow() {
                break;
            }
            let joined = match self.join(lease).await {
                Ok(l) => l,
                Err(e) => {
                    tracing::warn!(error = %e, "monitor membership: cannot join");
                    self.release_all();
                    lease = None;
                    if pause(self.config.refresh, &mut stop).await {
                        break;
                    }
                    continue 'relist;
                }
            };
            lease = Some(joined);
            let (kvs, rev) = match self.store.range(MONITOR).await {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "monitor membership: listing failed");
                    if pause(self.config.refresh, &mut stop).await {
                        break;
                    }
                    continue 'relist;
                }
            };
            let mut view = View::default();
            for kv in kvs {
                self.note(&mut view, &WatchEvent::Put(kv));
            }
            let mut w = match self.store.watch(MONITOR, rev + 1).await {
                Ok(w) => w,
                Err(e) => {
                    tracing::warn!(error = %e, "monitor membership: watch failed");
                    if pause(self.config.refresh, &mut stop).await {
                        break;
                    }
                    continue 'relist;
                }
            };
            self.reconcile(&view).await;
            let resync = tokio::time::sleep(self.config.resync);
            tokio::pin!(resync);
            let mut renew = tokio::time::interval(self.config.refresh);
            renew.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            renew.tick().await;
            loop {
                tokio::select! {
                    ev = w.next() => match ev {
                        Some(Ok(ev)) => {
                            let mut changed = self.note(&mut view, &ev);
                            while let Some(Ok(more)) = w.try_next() {
                                changed |= self.note(&mut view, &more);
                            }
                            if changed {
                                self.reconcile(&view).await;
                            }
                        }
                        Some(Err(e)) => {
                            tracing::debug!(error = %e, "monitor membership: watch ended; relisting");
                            continue 'relist;
                        }
                        None => continue 'relist,
                    },
                    _ = renew.tick() => {
                        if let Some(l) = lease {
                            if let Err(e) = self.store.keep_alive(l).await {
                                // the lease may be gone: stop polling until we are back
                                tracing::warn!(error = %e, "monitor membership: lease lost; releasing targets");
                                self.release_all();
                                lease = None;
                                continue 'relist;
                            }
                        }
                    }
                    _ = &mut resync => continue 'relist,
                    _ = stop.changed() => break 'relist,
                }
            }
        }
        if let Some(l) = lease {
            let _ = self.store.revoke(l).await;
        }
        self.release_all();
        tracing::info!(name = %self.config.name, "monitor membership left");
    }

    /// Registers this member (a new lease unless `lease` is still valid).
    async fn join(&self, lease: Option<LeaseId>) -> Result<LeaseId, StoreError> {
        let lease = match lease {
            Some(l) if self.store.keep_alive(l).await.is_ok() => l,
            _ => self.store.grant(self.config.ttl).await?,
        };
        let doc = serde_json::json!({"name": self.config.name}).to_string();
        self.store
            .put(
                &format!("{MEMBERS}{}", self.config.name),
                &doc,
                PutMode::Overwrite,
                Some(lease),
            )
            .await?;
        Ok(lease)
    }

    fn release_all(&self) {
        for id in self.collector.target_ids() {
            self.collector.release(&id);
        }
    }

    /// Applies a watch event to the view; `true` if anything changed.
    fn note(&self, view: &mut View, ev: &WatchEvent) -> bool {
        match ev {
            WatchEvent::Put(kv) => {
                if let Some(id) = target_id(&kv.key) {
                    match serde_json::from_str::<Value>(&kv.value) {
                        Ok(doc) => view.targets.insert(id.to_string(), doc).is_none(),
                        Err(e) => {
                            tracing::warn!(id, error = %e, "stored monitoring target is not JSON; ignored");
                            false
                        }
                    }
                } else if let Some(name) = member_name(&kv.key) {
                    view.members.insert(name.to_string())
                } else {
                    false
                }
            }
            WatchEvent::Delete { key, .. } => {
                if let Some(id) = target_id(key) {
                    view.targets.remove(id).is_some()
                } else if let Some(name) = member_name(key) {
                    view.members.remove(name)
                } else {
                    false
                }
            }
        }
    }

    /// Adopts the targets this member owns, releases the others, unregisters deleted ones.
    async fn reconcile(&self, view: &View) {
        let me = &self.config.name;
        let local: BTreeSet<String> = self.collector.target_ids().into_iter().collect();
        for id in &local {
            if !view.targets.contains_key(id) {
                // deleted from the store: stop and delete its /monitoring key
                self.collector.unregister(id);
            }
        }
        let (mut adopted, mut released) = (0usize, 0usize);
        for (id, doc) in &view.targets {
            let mine = rendezvous_owner(&view.members, id) == Some(me);
            let here = local.contains(id);
            if mine && !here {
                let current = match MonitoringTarget::from_value(doc) {
                    Ok(t) => match self.store.get(&t.etcd_key()).await {
                        Ok(kv) => kv.and_then(|kv| serde_json::from_str(&kv.value).ok()),
                        Err(e) => {
                            tracing::debug!(id, error = %e, "reading /monitoring failed");
                            None
                        }
                    },
                    Err(_) => None,
                };
                match self.collector.adopt(doc, current) {
                    Ok(_) => adopted += 1,
                    Err(e) => tracing::warn!(id, error = %e, "stored monitoring target refused"),
                }
            } else if !mine && here {
                self.collector.release(id);
                released += 1;
            }
        }
        if adopted + released > 0 {
            tracing::info!(
                name = %me,
                members = view.members.len(),
                targets = view.targets.len(),
                adopted,
                released,
                "monitor targets reassigned"
            );
        }
    }
}

async fn pause(d: Duration, stop: &mut watch::Receiver<bool>) -> bool {
    if *stop.borrow() {
        return true;
    }
    tokio::select! {
        _ = tokio::time::sleep(d) => *stop.borrow(),
        _ = stop.changed() => true,
    }
}

#[async_trait::async_trait]
impl TargetService for SharedTargets {
    async fn create(&self, request: &Value) -> Result<Value, CollectorError> {
        let (stored, response) = self.collector.prepare(request)?;
        let id = stored.get("id").and_then(Value::as_str).unwrap_or_default();
        // the owner (maybe this process) adopts it from the store
        self.store
            .put(
                &format!("{TARGETS}{id}"),
                &stored.to_string(),
                PutMode::Create,
                None,
            )
            .await
            .map_err(unavailable)?;
        Ok(response)
    }

    async fn show(&self, id: &str) -> Result<Option<Value>, CollectorError> {
        if let Some(doc) = self.collector.target(id) {
            return Ok(Some(doc));
        }
        let kv = self
            .store
            .get(&format!("{TARGETS}{id}"))
            .await
            .map_err(unavailable)?;
        Ok(kv
            .and_then(|kv| serde_json::from_str::<Value>(&kv.value).ok())
            .map(|mut doc| {
                redact(&mut doc);
                doc
            }))
    }

    async fn remove(&self, id: &str) -> Result<bool, CollectorError> {
        let key = format!("{TARGETS}{id}");
        let stored = self.store.get(&key).await.map_err(unavailable)?;
        let Some(stored) = stored else {
            return Ok(self.collector.unregister(id));
        };
        let existed = self.store.delete(&key, None).await.map_err(unavailable)?;
        self.collector.unregister(id);
        // the owner deletes the key too when it sees the target go; do it here at once
        if let Some(t) = serde_json::from_str::<Value>(&stored.value)
            .ok()
            .and_then(|doc| MonitoringTarget::from_value(&doc).ok())
        {
            if t.syncer_properties.get("etcd").is_some() {
                self.store
                    .delete(&t.etcd_key(), None)
                    .await
                    .map_err(unavailable)?;
            }
        }
        Ok(existed)
    }

    fn tsdb_samples(&self) -> Vec<TsdbSample> {
        self.collector.tsdb_samples()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendezvous_is_stable_balanced_and_moves_only_what_it_must() {
        let two: Vec<String> = vec!["a".into(), "b".into()];
        let three: Vec<String> = vec!["a".into(), "b".into(), "c".into()];
        let ids: Vec<String> = (0..600).map(|i| format!("target-{i}")).collect();
        let mut per = BTreeMap::new();
        for id in &ids {
            let o2 = rendezvous_owner(&two, id).expect("owner");
            assert_eq!(rendezvous_owner(&two, id), Some(o2), "stable");
            *per.entry(o2.clone()).or_insert(0) += 1;
            let o3 = rendezvous_owner(&three, id).expect("owner");
            // adding c moves a target only to c
            assert!(o3 == o2 || o3 == "c", "{id}: {o2} -> {o3}");
        }
        for (m, n) in &per {
            assert!((200..=400).contains(n), "{m} owns {n} of 600");
        }
        assert_eq!(rendezvous_owner(&Vec::<String>::new(), "x"), None);
    }
}
