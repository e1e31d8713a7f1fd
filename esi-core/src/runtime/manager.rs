//! The job manager: reads `/config`, expands changes into chains, queues jobs, releases
//! dependents when jobs finish (`shared/spec/jobs.md` §1, §5, §6).
//!
//! Exactly one manager is active: leadership is a lease-bound `/job_manager_id` key, won with a
//! create-if-absent transaction, and **every** write of the leader is fenced by a compare on that
//! key's revision, so a deposed leader cannot write jobs. On winning, a manager rebuilds its
//! queue and resource cache from the store (start-up resync) and then follows watches.

use super::{decode_config, split_id, state_document, RuntimeError};
use crate::catalog::Catalog;
use crate::expand::{expand, ChangeEvent, EventAction, InFlight, SuffixSource};
use crate::keys;
use crate::model::{Job, OnFailure, Resource, ResourceRef};
use crate::store::{Compare, LeaseId, Revision, Store, StoreError, Txn, TxnOp, Watch, WatchEvent};
use crate::world::ResourceSet;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

/// Tunables (defaults are the recorded values).
#[derive(Debug, Clone)]
pub struct ManagerConfig {
    /// TTL of the leadership lease (recorded: 65 s, refreshed every 30 s).
    pub leader_ttl: Duration,
    /// How often a job whose worker vanished is put back to ready before it is failed.
    pub max_requeues: u32,
}

impl Default for ManagerConfig {
    fn default() -> Self {
        Self {
            leader_ttl: Duration::from_secs(65),
            max_requeues: 1,
        }
    }
}

struct Leadership {
    lease: LeaseId,
    fence: Revision,
    /// `/config/` and `/jobs/` watches, from the revision of the last resync.
    watches: Option<(Watch, Watch)>,
}

/// One change read from `/config` and not processed yet.
enum Pending {
    Put {
        key: String,
        value: String,
    },
    /// A schema, heat template or handler list changed under `/config`: rebuild the catalog.
    Catalog,
    Delete {
        key: String,
    },
    Finished {
        id: String,
        value: String,
    },
    WorkingGone {
        id: String,
    },
}

/// The job manager.
pub struct Manager {
    name: String,
    store: Arc<dyn Store>,
    catalog: Arc<Catalog>,
    /// The catalog given at construction; the stored one (`/config` schemas and templates) is
    /// merged over it.
    base_catalog: Arc<Catalog>,
    /// Fenced writes refused because the leadership was lost (a deposed leader's attempts).
    refused: u64,
    /// Fenced writes attempted (sent to the store), refused or not.
    fenced: u64,
    config: ManagerConfig,
    suffixes: Box<dyn SuffixSource + Send>,
    prefixes: BTreeMap<String, String>,
    leader: Option<Leadership>,
    /// The configuration as the API holds it (mapping walks read it).
    view: ResourceSet,
    /// Version and body last processed per resource (the `/esi-worker/config` cache).
    processed: HashMap<ResourceRef, (u64, Value)>,
    in_flight: InFlight,
    waiting: BTreeSet<String>,
    requeues: HashMap<String, u32>,
    pending: VecDeque<Pending>,
}

impl Manager {
    /// A manager candidate named `name` (its JobsWorker id, written to `/job_manager_id`).
    pub fn new(
        name: impl Into<String>,
        store: Arc<dyn Store>,
        catalog: Arc<Catalog>,
        suffixes: Box<dyn SuffixSource + Send>,
        config: ManagerConfig,
    ) -> Self {
        let prefixes = catalog
            .schemas
            .values()
            .map(|s| (s.prefix.clone(), s.id.clone()))
            .collect();
        Self {
            name: name.into(),
            store,
            base_catalog: catalog.clone(),
            catalog,
            refused: 0,
            fenced: 0,
            config,
            suffixes,
            prefixes,
            leader: None,
            view: ResourceSet::default(),
            processed: HashMap::new(),
            in_flight: InFlight::new(),
            waiting: BTreeSet::new(),
            requeues: HashMap::new(),
            pending: VecDeque::new(),
        }
    }

    /// The candidate's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// True while this manager holds the leadership.
    pub fn is_leader(&self) -> bool {
        self.leader.is_some()
    }

    /// The lease of the leadership, if leader (tests revoke it to depose the manager).
    pub fn leader_lease(&self) -> Option<LeaseId> {
        self.leader.as_ref().map(|l| l.lease)
    }

    /// Number of jobs in flight.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Fenced writes refused so far because this manager was no longer the leader.
    pub fn refused_writes(&self) -> u64 {
        self.refused
    }

    /// Fenced writes attempted so far (each one transaction sent to the store).
    pub fn fenced_writes(&self) -> u64 {
        self.fenced
    }

    /// The catalog in use (the base merged with the stored schemas and templates).
    pub fn catalog(&self) -> Arc<Catalog> {
        self.catalog.clone()
    }

    /// Waits until a watch delivers a change (queued for the next [`Manager::step`]); returns
    /// at once when not leading. An error (a compacted watch) is handled by the next step.
    pub async fn wait_for_change(&mut self) -> Result<(), RuntimeError> {
        let Some((config_watch, jobs_watch)) =
            self.leader.as_mut().and_then(|l| l.watches.as_mut())
        else {
            return Ok(());
        };
        let ev = tokio::select! {
            ev = config_watch.next() => ev,
            ev = jobs_watch.next() => ev,
        };
        match ev {
            None | Some(Err(StoreError::Compacted { .. })) => {
                tracing::info!(manager = %self.name, "watch compacted or closed: resyncing");
                self.resync().await
            }
            Some(Err(e)) => Err(e.into()),
            Some(Ok(ev)) => {
                if let Some(p) = self.classify_event(ev) {
                    self.pending.push_back(p);
                }
                Ok(())
            }
        }
    }

    /// Rebuilds the catalog: the base merged with the schemas, templates and handler list
    /// stored under `/config`. A malformed stored entry is logged and skipped.
    async fn reload_catalog(&mut self) -> Result<(), RuntimeError> {
        let catalog = super::stored::load_catalog(self.store.as_ref(), &self.base_catalog).await?;
        self.prefixes = catalog
            .schemas
            .values()
            .map(|s| (s.prefix.clone(), s.id.clone()))
            .collect();
        self.catalog = Arc::new(catalog);
        Ok(())
    }

    /// Refreshes the leadership lease (the recorded 30 s refresh).
    pub async fn keep_alive(&mut self) -> Result<(), RuntimeError> {
        if let Some(l) = &self.leader {
            if let Err(e) = self.store.keep_alive(l.lease).await {
                tracing::warn!(manager = %self.name, error = %e, "leadership lease lost");
                self.step_down();
                return Err(RuntimeError::LostLeadership);
            }
        }
        Ok(())
    }

    /// Handles at most one unit of work; returns whether there was any.
    pub async fn step(&mut self) -> Result<bool, RuntimeError> {
        let r = self.step_inner().await;
        match r {
            Err(RuntimeError::LostLeadership) => {
                self.step_down();
                Ok(true)
            }
            Err(RuntimeError::Store(StoreError::Compacted { .. })) => {
                tracing::info!(manager = %self.name, "watch compacted: resyncing");
                self.resync().await?;
                Ok(true)
            }
            other => other,
        }
    }

    async fn step_inner(&mut self) -> Result<bool, RuntimeError> {
        if self.leader.is_none() {
            return self.campaign().await;
        }
        if let Some(p) = self.pending.pop_front() {
            self.handle(p).await?;
            return Ok(true);
        }
        let Some((config_watch, jobs_watch)) =
            self.leader.as_mut().and_then(|l| l.watches.as_mut())
        else {
            // A resync that failed half-way (a watch could not be opened while an etcd member
            // was down) left a leader without watches: it would never hear of a change again.
            tracing::info!(manager = %self.name, "no watches after a failed resync: resyncing");
            self.resync().await?;
            return Ok(true);
        };
        let next = match config_watch.try_next() {
            Some(ev) => Some(ev),
            None => jobs_watch.try_next(),
        };
        match next {
            None => Ok(false),
            Some(Err(e)) => Err(e.into()),
            Some(Ok(ev)) => {
                if let Some(p) = self.classify_event(ev) {
                    self.handle(p).await?;
                }
                Ok(true)
            }
        }
    }

    /// Gives up the leadership (shutdown): revokes the lease so a candidate takes over at
    /// once instead of after the TTL.
    pub async fn resign(&mut self) {
        if let Some(l) = self.leader.take() {
            tracing::info!(manager = %self.name, "resigning the leadership");
            let _ = self.store.revoke(l.lease).await;
            self.step_down();
        }
    }

    fn step_down(&mut self) {
        tracing::warn!(manager = %self.name, "stepping down: dropping in-memory state");
        self.leader = None;
        self.view = ResourceSet::default();
        self.processed.clear();
        self.in_flight = InFlight::new();
        self.waiting.clear();
        self.requeues.clear();
        self.pending.clear();
    }

    async fn campaign(&mut self) -> Result<bool, RuntimeError> {
        let lease = self.store.grant(self.config.leader_ttl).await?;
        let r = self
            .store
            .txn(Txn {
                compares: vec![Compare::Absent(keys::JOB_MANAGER_ID.to_string())],
                success: vec![TxnOp::Put {
                    key: keys::JOB_MANAGER_ID.to_string(),
                    value: self.name.clone(),
                    lease: Some(lease),
                }],
                failure: vec![],
            })
            .await?;
        if !r.succeeded {
            let _ = self.store.revoke(lease).await;
            return Ok(false);
        }
        tracing::info!(manager = %self.name, revision = r.revision, "became the job manager");
        self.leader = Some(Leadership {
            lease,
            fence: r.revision,
            watches: None,
        });
        self.resync().await?;
        Ok(true)
    }

    /// Start-up resync (`shared/spec/jobs.md` §6.7): rebuild the queue and the cache from the
    /// store, queue every `/config` entry the cache has not seen (or has at a lower version)
    /// and the cleanup of every cached resource whose `/config` is gone, then watch from the
    /// revision of the listing.
    async fn resync(&mut self) -> Result<(), RuntimeError> {
        self.view = ResourceSet::default();
        self.processed.clear();
        self.in_flight = InFlight::new();
        self.waiting.clear();
        self.pending.clear();
        // Watches start right after the first listing: whatever changes while the rest is listed
        // is seen twice (listed and replayed), never missed; every handler is idempotent.
        let (all, first_rev) = self.store.range(&format!("{}/", keys::JOBS_ALL)).await?;
        for kv in &all {
            match serde_json::from_str::<Value>(&kv.value)
                .ok()
                .and_then(|v| v.get(1).cloned())
                .and_then(|j| serde_json::from_value::<Job>(j).ok())
            {
                Some(job) => self.in_flight.push(job),
                None => tracing::warn!(key = %kv.key, "unreadable job record ignored"),
            }
        }
        let ids = |kvs: Vec<crate::store::KeyValue>, prefix: &str| -> BTreeSet<String> {
            kvs.into_iter()
                .filter_map(|kv| kv.key.strip_prefix(prefix).map(str::to_string))
                .collect()
        };
        let waiting_prefix = format!("{}/", keys::JOBS_WAITING);
        let ready_prefix = format!("{}/", keys::JOBS_READY);
        let working_prefix = format!("{}/", keys::JOBS_WORKING);
        let finished_prefix = format!("{}/", keys::JOBS_FINISHED);
        self.waiting = ids(self.store.range(&waiting_prefix).await?.0, &waiting_prefix);
        let ready = ids(self.store.range(&ready_prefix).await?.0, &ready_prefix);
        let working = ids(self.store.range(&working_prefix).await?.0, &working_prefix);
        let (finished, _) = self.store.range(&finished_prefix).await?;
        let finished_ids: BTreeSet<String> = finished
            .iter()
            .filter_map(|kv| kv.key.strip_prefix(&finished_prefix).map(str::to_string))
            .collect();
        for kv in finished {
            if let Some(id) = kv.key.strip_prefix(&finished_prefix) {
                self.pending.push_back(Pending::Finished {
                    id: id.to_string(),
                    value: kv.value.clone(),
                });
            }
        }
        // A job in no queue lost its claim while no manager was watching: back to ready.
        let orphans: Vec<String> = self
            .in_flight
            .iter()
            .map(|j| j.id.clone())
            .filter(|id| {
                !self.waiting.contains(id)
                    && !ready.contains(id)
                    && !working.contains(id)
                    && !finished_ids.contains(id)
            })
            .collect();
        for id in orphans {
            self.pending.push_back(Pending::WorkingGone { id });
        }

        self.reload_catalog().await?;
        let (cached, _) = self
            .store
            .range(&format!("{}/", keys::WORKER_CONFIG))
            .await?;
        for kv in cached {
            let Some(rest) = kv.key.strip_prefix(keys::WORKER_CONFIG) else {
                continue;
            };
            let Some((ty, id)) = self.type_of(rest) else {
                continue;
            };
            let Ok(v) = serde_json::from_str::<Value>(&kv.value) else {
                continue;
            };
            let version = v.get("version").and_then(Value::as_u64).unwrap_or(0);
            let body = v.get("body").cloned().unwrap_or(Value::Null);
            self.processed
                .insert(ResourceRef::new(ty, id), (version, body));
        }
        let (config, _) = self.store.range(&format!("{}/", keys::CONFIG)).await?;
        // The catalog is read after the listing, so it holds every schema and template written
        // before any listed resource (apply writes them first): a resource listed here is never
        // judged against a catalog older than itself.
        self.reload_catalog().await?;
        let rev = first_rev;
        let mut seen: BTreeSet<ResourceRef> = BTreeSet::new();
        // Replayed in creation order: the API only accepts references to resources that exist, so
        // creation order respects every relation (a re-delivered event keeps its create revision).
        let mut changed: Vec<((Revision, Revision), String, String)> = Vec::new();
        for kv in config {
            let Some(rest) = kv.key.strip_prefix(keys::CONFIG) else {
                continue;
            };
            let Some((ty, id)) = self.type_of(rest) else {
                continue;
            };
            let key = ResourceRef::new(ty.clone(), id.clone());
            let decoded = decode_config(&kv.value);
            if let Ok(c) = &decoded {
                // The view holds everything the API holds, so a replayed change can walk to
                // resources whose own events come later in the replay.
                let mut r = Resource::new(ty.clone(), id.clone(), c.body.clone(), c.version);
                r.marked_for_deletion = c.marked_for_deletion;
                self.view.insert(r);
            }
            let newer = match (&decoded, self.processed.get(&key)) {
                (Ok(c), Some((v, _))) => c.version > *v,
                _ => true,
            };
            seen.insert(key);
            if newer {
                changed.push((
                    (kv.create_revision, kv.mod_revision),
                    kv.key.clone(),
                    kv.value.clone(),
                ));
            }
        }
        changed.sort();
        for (_, key, value) in changed {
            self.pending.push_back(Pending::Put { key, value });
        }
        let gone: Vec<ResourceRef> = self
            .processed
            .keys()
            .filter(|k| !seen.contains(k))
            .cloned()
            .collect();
        for k in gone {
            if let Some(schema) = self.catalog.schemas.get(&k.resource_type) {
                self.pending.push_back(Pending::Delete {
                    key: schema.config_key(&k.resource_id),
                });
            }
        }
        let config_watch = self
            .store
            .watch(&format!("{}/", keys::CONFIG), rev + 1)
            .await?;
        let jobs_watch = self.store.watch("/jobs/", rev + 1).await?;
        if let Some(l) = self.leader.as_mut() {
            l.watches = Some((config_watch, jobs_watch));
        }
        tracing::info!(manager = %self.name, in_flight = self.in_flight.len(), pending = self.pending.len(), "resync done");
        Ok(())
    }

    fn type_of(&self, prefixed: &str) -> Option<(String, String)> {
        let (prefix, id) = split_id(prefixed)?;
        let ty = self.prefixes.get(prefix)?;
        Some((ty.clone(), id.to_string()))
    }

    fn classify_event(&self, ev: WatchEvent) -> Option<Pending> {
        let finished = format!("{}/", keys::JOBS_FINISHED);
        let working = format!("{}/", keys::JOBS_WORKING);
        if super::stored::is_catalog_key(ev.key()) {
            return Some(Pending::Catalog);
        }
        match ev {
            WatchEvent::Put(kv) if kv.key.starts_with("/config/") => Some(Pending::Put {
                key: kv.key,
                value: kv.value,
            }),
            WatchEvent::Delete { key, .. } if key.starts_with("/config/") => {
                Some(Pending::Delete { key })
            }
            WatchEvent::Put(kv) => kv.key.strip_prefix(&finished).map(|id| Pending::Finished {
                id: id.to_string(),
                value: kv.value.clone(),
            }),
            WatchEvent::Delete { key, .. } => key
                .strip_prefix(&working)
                .map(|id| Pending::WorkingGone { id: id.to_string() }),
        }
    }

    async fn handle(&mut self, p: Pending) -> Result<(), RuntimeError> {
        match p {
            Pending::Put { key, value } => self.config_put(&key, &value).await,
            Pending::Delete { key } => self.config_delete(&key).await,
            Pending::Finished { id, value } => self.job_finished(&id, &value).await,
            Pending::WorkingGone { id } => self.working_gone(&id).await,
            Pending::Catalog => {
                // Resync: resources ignored for want of a schema are replayed with the new one.
                tracing::info!(manager = %self.name, "schemas or templates changed: reloading");
                self.resync().await
            }
        }
    }

    /// Writes `ops` in one transaction fenced by the leadership key.
    async fn fenced(&mut self, ops: Vec<TxnOp>) -> Result<(), RuntimeError> {
        let Some(l) = &self.leader else {
            return Err(RuntimeError::LostLeadership);
        };
        self.fenced += 1;
        // What the write was, for the log of a refused one: keys, and a hash of each value
        // (values may carry secrets).
        let summary: Vec<String> = ops.iter().map(op_summary).collect();
        tracing::debug!(manager = %self.name, ops = %summary.join(" "), "fenced write");
        let r = self
            .store
            .txn(Txn {
                compares: vec![Compare::ModRevision(
                    keys::JOB_MANAGER_ID.to_string(),
                    l.fence,
                )],
                success: ops,
                failure: vec![],
            })
            .await?;
        if r.succeeded {
            Ok(())
        } else {
            self.refused += 1;
            tracing::warn!(manager = %self.name, refused = self.refused, ops = %summary.join(" "), "fenced write refused: no longer the leader");
            Err(RuntimeError::LostLeadership)
        }
    }

    fn put(key: impl Into<String>, value: impl Into<String>) -> TxnOp {
        TxnOp::Put {
            key: key.into(),
            value: value.into(),
            lease: None,
        }
    }

    fn del(key: impl Into<String>) -> TxnOp {
        TxnOp::Delete { key: key.into() }
    }

    async fn config_put(&mut self, key: &str, value: &str) -> Result<(), RuntimeError> {
        let Some(rest) = key.strip_prefix(keys::CONFIG) else {
            return Ok(());
        };
        let Some((ty, id)) = self.type_of(rest) else {
            tracing::debug!(key, "no schema for this key: ignored");
            return Ok(());
        };
        let Some(schema) = self.catalog.schemas.get(&ty) else {
            return Ok(());
        };
        let state_key = keys::state(&schema.prefix, &id);
        let decoded = match decode_config(value) {
            Ok(d) => d,
            Err(msg) => {
                tracing::warn!(resource = %format!("{ty}/{id}"), error = %msg, "malformed resource");
                let known = self
                    .processed
                    .get(&ResourceRef::new(ty.clone(), id.clone()))
                    .map(|(v, _)| *v)
                    .unwrap_or(0);
                let text = format!("resource {ty}/{id}: malformed /config value: {msg}");
                return self
                    .fenced(vec![Self::put(
                        state_key,
                        state_document("READ_ERROR", &text, known),
                    )])
                    .await;
            }
        };
        let key = ResourceRef::new(ty.clone(), id.clone());
        let previous = self.processed.get(&key).cloned();
        if let Some((v, _)) = &previous {
            if decoded.version <= *v {
                tracing::debug!(resource = %format!("{ty}/{id}"), version = decoded.version, "already processed: ignored");
                return Ok(());
            }
        }
        let mut resource = Resource::new(
            ty.clone(),
            id.clone(),
            decoded.body.clone(),
            decoded.version,
        );
        resource.marked_for_deletion = decoded.marked_for_deletion;
        let action = if decoded.marked_for_deletion {
            EventAction::LogicalDelete
        } else if self.store.get(&state_key).await?.is_some() {
            EventAction::Modify
        } else {
            EventAction::Create
        };
        let cache_value =
            json!({"body": decoded.body, "deleted": false, "version": decoded.version}).to_string();
        let cache_op = Self::put(keys::worker_config(&schema.prefix, &id), cache_value);
        self.view.insert(resource.clone());
        self.processed
            .insert(key, (decoded.version, decoded.body.clone()));
        let event = ChangeEvent {
            action,
            resource,
            previous,
        };
        match expand(
            &self.catalog,
            &self.view,
            &event,
            &self.in_flight,
            self.suffixes.as_mut(),
        ) {
            Err(e) => {
                tracing::warn!(error = %e, "change not expanded");
                self.fenced(vec![
                    cache_op,
                    Self::put(
                        state_key,
                        state_document("READ_ERROR", &e.to_string(), decoded.version),
                    ),
                ])
                .await
            }
            Ok(x) if x.jobs.is_empty() => {
                self.fenced(vec![
                    cache_op,
                    Self::put(
                        state_key,
                        state_document("READ_COMPLETE", "", decoded.version),
                    ),
                ])
                .await
            }
            Ok(x) => {
                let mut ops = vec![cache_op];
                let mut queued = Vec::new();
                for job in &x.jobs {
                    let ready = job.dependency.iter().all(|d| !self.in_flight.contains(d));
                    ops.push(Self::put(keys::job(&job.id), job.to_record().to_string()));
                    let queue = if ready {
                        keys::JOBS_READY
                    } else {
                        keys::JOBS_WAITING
                    };
                    ops.push(Self::put(
                        format!("{queue}/{}", job.id),
                        job.handler.clone(),
                    ));
                    queued.push((job.clone(), ready));
                    // Later jobs of the chain depend on earlier ones: they are in flight now.
                    self.in_flight.push(job.clone());
                }
                if let Err(e) = self.fenced(ops).await {
                    for (job, _) in &queued {
                        self.in_flight.remove(&job.id);
                    }
                    return Err(e);
                }
                for (job, ready) in queued {
                    tracing::info!(job = %job.id, ready, "job queued");
                    if !ready {
                        self.waiting.insert(job.id);
                    }
                }
                Ok(())
            }
        }
    }

    async fn config_delete(&mut self, key: &str) -> Result<(), RuntimeError> {
        let Some(rest) = key.strip_prefix(keys::CONFIG) else {
            return Ok(());
        };
        let Some((ty, id)) = self.type_of(rest) else {
            return Ok(());
        };
        let Some(schema) = self.catalog.schemas.get(&ty) else {
            return Ok(());
        };
        tracing::info!(resource = %format!("{ty}/{id}"), "resource removed by the API: cleaning up");
        let key = ResourceRef::new(ty.clone(), id.clone());
        self.view.remove(&key);
        self.processed.remove(&key);
        self.fenced(vec![
            Self::del(keys::worker_config(&schema.prefix, &id)),
            Self::del(keys::heat_stack(&ty, &id)),
        ])
        .await
    }

    async fn job_finished(&mut self, id: &str, value: &str) -> Result<(), RuntimeError> {
        let Some(on_failure) = self.in_flight.get(id).map(|j| j.on_failure) else {
            // Already cleaned up (a duplicated event): just drop the marker.
            return self
                .fenced(vec![Self::del(format!("{}/{id}", keys::JOBS_FINISHED))])
                .await;
        };
        let failure: Option<String> = if value.trim().is_empty() || value.trim() == "\"\"" {
            None
        } else {
            serde_json::from_str::<Value>(value)
                .ok()
                .filter(|v| v.get("status").and_then(Value::as_str) == Some("failed"))
                .map(|v| {
                    v.get("error")
                        .and_then(Value::as_str)
                        .unwrap_or("failed")
                        .to_string()
                })
        };
        let mut ops = vec![
            Self::del(keys::job(id)),
            Self::del(format!("{}/{id}", keys::JOBS_FINISHED)),
        ];
        let mut removed = vec![id.to_string()];
        let mut removed_set: HashSet<String> = HashSet::from([id.to_string()]);
        if let (Some(reason), OnFailure::Fail) = (&failure, on_failure) {
            // Every job that (transitively) depends on the failed one is not run. Only the
            // dependents index is walked: the cost is the size of the failed subtree.
            let mut failed = vec![id.to_string()];
            while let Some(f) = failed.pop() {
                let dependents: Vec<&Job> = self
                    .in_flight
                    .dependents(&f)
                    .filter(|j| !removed_set.contains(&j.id))
                    .collect();
                for d in dependents {
                    tracing::warn!(job = %d.id, failed = %f, "dependency failed: job dropped");
                    ops.push(Self::del(keys::job(&d.id)));
                    ops.push(Self::del(format!("{}/{}", keys::JOBS_WAITING, d.id)));
                    ops.push(Self::del(format!("{}/{}", keys::JOBS_READY, d.id)));
                    let text = format!("dependency {f} failed: {reason}");
                    let worker_state = format!("{}_ERROR", d.action.state_word());
                    ops.push(Self::put(
                        format!("/state/v2.0/{}s/{}", d.resource_type, d.resource_id),
                        state_document(&worker_state, &text, d.version),
                    ));
                    removed_set.insert(d.id.clone());
                    removed.push(d.id.clone());
                    failed.push(d.id.clone());
                }
            }
        }
        // Waiting jobs that may become ready: the dependents of what is removed, nothing else.
        let mut candidates: Vec<String> = Vec::new();
        for r in &removed {
            candidates.extend(
                self.in_flight
                    .dependents(r)
                    .filter(|j| !removed_set.contains(&j.id))
                    .map(|j| j.id.clone()),
            );
        }
        for r in &removed {
            self.in_flight.remove(r);
            self.waiting.remove(r);
        }
        self.requeues.remove(id);
        // Release waiting jobs whose dependencies are all gone.
        candidates.sort_unstable();
        candidates.dedup();
        let released: Vec<String> = candidates
            .into_iter()
            .filter(|w| {
                self.waiting.contains(w)
                    && self
                        .in_flight
                        .get(w)
                        .is_some_and(|j| j.dependency.iter().all(|d| !self.in_flight.contains(d)))
            })
            .collect();
        for w in &released {
            if let Some(j) = self.in_flight.get(w) {
                ops.push(Self::put(
                    format!("{}/{w}", keys::JOBS_READY),
                    j.handler.clone(),
                ));
                ops.push(Self::del(format!("{}/{w}", keys::JOBS_WAITING)));
            }
        }
        self.fenced(ops).await?;
        for w in released {
            self.waiting.remove(&w);
        }
        Ok(())
    }

    async fn working_gone(&mut self, id: &str) -> Result<(), RuntimeError> {
        if !self.in_flight.contains(id) {
            return Ok(());
        }
        if self
            .store
            .get(&format!("{}/{id}", keys::JOBS_FINISHED))
            .await?
            .is_some()
        {
            return Ok(()); // finished normally; the finished event does the rest
        }
        for queue in [keys::JOBS_READY, keys::JOBS_WORKING] {
            if self.store.get(&format!("{queue}/{id}")).await?.is_some() {
                return Ok(()); // already requeued or claimed again (a replayed event)
            }
        }
        let n = self.requeues.entry(id.to_string()).or_insert(0);
        *n += 1;
        if *n <= self.config.max_requeues {
            tracing::warn!(job = id, attempt = *n, "worker vanished: job back to ready");
            let handler = self
                .in_flight
                .get(id)
                .map(|j| j.handler.clone())
                .unwrap_or_default();
            return self
                .fenced(vec![Self::put(
                    format!("{}/{id}", keys::JOBS_READY),
                    handler,
                )])
                .await;
        }
        tracing::warn!(job = id, "worker vanished again: job failed");
        let value = json!({"status": "failed", "error": "the worker running it vanished twice"})
            .to_string();
        self.job_finished(id, &value).await
    }
}

/// `put:KEY:HASH` or `delete:KEY` (HASH: FNV-1a 64 of the value, hex), for logs.
pub fn op_summary(op: &TxnOp) -> String {
    match op {
        TxnOp::Put { key, value, .. } => format!("put:{key}:{:016x}", fnv1a(value)),
        TxnOp::Delete { key } => format!("delete:{key}"),
        TxnOp::Get { key } => format!("get:{key}"),
    }
}

/// FNV-1a 64 of `text`.
pub fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}
