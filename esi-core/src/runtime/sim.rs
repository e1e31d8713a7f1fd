//! A seeded, single-threaded driver for the whole system: the API emulation, manager
//! candidates and workers are stepped in a random (seeded) order until the system is quiet.
//! Faults can be injected at random points: a worker dropped mid-job, a duplicated `/config`
//! event, the manager losing its leadership lease. Same seed, same run.

use super::api::{Api, ApiError};
use super::manager::{Manager, ManagerConfig};
use super::worker::{Worker, WorkerConfig};
use super::{decode_config, RuntimeError, SimRng};
use crate::catalog::Catalog;
use crate::clock::{Clock, ManualClock, Timestamp};
use crate::collector::Collector;
use crate::exec::monitor::MonitoringWrite;
use crate::expand::SeededSuffixes;
use crate::heat::Heat;
use crate::keys;
use crate::store::{MemoryStore, PutMode, Store};

/// Revisions of watch history the simulation keeps (and rounds between compactions).
const HISTORY_WINDOW: i64 = 4096;
use crate::world::World;
use serde::Deserialize;
use serde_json::Value;
use std::sync::Arc;

/// Faults to inject (each at most once per run, at a random point).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Faults {
    /// Drop a worker that holds a job (its claim lease is revoked; a new worker replaces it).
    pub drop_worker_mid_job: bool,
    /// Deliver a `/config` change twice (the same value stored again).
    pub duplicate_config_event: bool,
    /// Revoke the leader's lease (it must step down; a candidate takes over and resyncs).
    pub manager_loses_lease: bool,
}

/// Simulation settings.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Seed of every random choice (scheduling, faults, ids).
    pub seed: u64,
    /// Number of workers (job slots).
    pub workers: usize,
    /// Number of manager candidates.
    pub managers: usize,
    /// Faults to inject.
    pub faults: Faults,
    /// Steps after which a run that is still busy is an error (livelock guard).
    pub max_steps: u64,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            seed: 0,
            workers: 4,
            managers: 2,
            faults: Faults::default(),
            max_steps: 1_000_000,
        }
    }
}

/// A scripted change (`esi run --changes`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Change {
    /// Create a resource.
    Create {
        /// Type.
        #[serde(rename = "type")]
        resource_type: String,
        /// Id.
        id: String,
        /// Full body (must contain `id`).
        body: Value,
    },
    /// Merge top-level fields into a resource.
    Modify {
        /// Type.
        #[serde(rename = "type")]
        resource_type: String,
        /// Id.
        id: String,
        /// Fields to set.
        body: Value,
    },
    /// Two-step delete.
    Delete {
        /// Type.
        #[serde(rename = "type")]
        resource_type: String,
        /// Id.
        id: String,
    },
}

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunStats {
    /// Component steps that did work.
    pub busy_steps: u64,
    /// Faults injected, described.
    pub faults: Vec<String>,
    /// `/monitoring` documents written or deleted.
    pub monitoring_writes: u64,
}

/// The simulated system.
pub struct Simulation {
    store: Arc<MemoryStore>,
    catalog: Arc<Catalog>,
    heat: Arc<dyn Heat>,
    clock: Arc<ManualClock>,
    api: Api,
    managers: Vec<Manager>,
    workers: Vec<Worker>,
    rng: SimRng,
    config: SimConfig,
    injected: Faults,
    next_worker: usize,
    collector: Option<Arc<Collector>>,
}

impl Simulation {
    /// Builds the system on a fresh in-memory store, with its own manual clock.
    pub async fn new(
        catalog: Arc<Catalog>,
        heat: Arc<dyn Heat>,
        config: SimConfig,
    ) -> Result<Self, RuntimeError> {
        Self::with_clock(
            catalog,
            heat,
            config,
            Arc::new(ManualClock::new(Timestamp(0))),
        )
        .await
    }

    /// Builds the system on a fresh in-memory store, on a clock shared with other components
    /// (the collector's hold windows).
    pub async fn with_clock(
        catalog: Arc<Catalog>,
        heat: Arc<dyn Heat>,
        config: SimConfig,
        clock: Arc<ManualClock>,
    ) -> Result<Self, RuntimeError> {
        let store = Arc::new(MemoryStore::new());
        let dyn_store: Arc<dyn Store> = store.clone();
        let mut api = Api::new(dyn_store.clone(), catalog.clone());
        api.start(1).await?;
        let mut rng = SimRng::new(config.seed);
        let managers = (0..config.managers.max(1))
            .map(|i| {
                Manager::new(
                    rng.uuid(),
                    dyn_store.clone(),
                    catalog.clone(),
                    Box::new(SeededSuffixes::new(config.seed.wrapping_add(i as u64))),
                    ManagerConfig::default(),
                )
            })
            .collect();
        let mut sim = Self {
            store,
            catalog,
            heat,
            clock,
            api,
            managers,
            workers: Vec::new(),
            rng,
            config,
            injected: Faults::default(),
            next_worker: 0,
            collector: None,
        };
        for _ in 0..sim.config.workers.max(1) {
            let w = sim.new_worker();
            sim.workers.push(w);
        }
        Ok(sim)
    }

    fn new_worker(&mut self) -> Worker {
        self.next_worker += 1;
        Worker::new(
            format!("worker-{}", self.next_worker),
            self.store.clone(),
            self.heat.clone(),
            self.catalog.clone(),
            self.clock.clone(),
            WorkerConfig::default(),
            self.config
                .seed
                .wrapping_mul(31)
                .wrapping_add(self.next_worker as u64),
        )
    }

    /// Adds the monitoring side: once the system is quiet, the clock moves one poll interval
    /// and every target is polled; the `/monitoring` writes go to the store.
    pub fn with_collector(mut self, collector: Arc<Collector>) -> Self {
        self.collector = Some(collector);
        self
    }

    /// The clock of the run.
    pub fn clock(&self) -> &Arc<ManualClock> {
        &self.clock
    }

    /// The store (to inspect documents).
    pub fn store(&self) -> &Arc<MemoryStore> {
        &self.store
    }

    /// The API emulation (to submit changes).
    pub fn api(&self) -> &Api {
        &self.api
    }

    /// Submits every resource of a world as a create, in processing order.
    pub async fn submit_world(&self, world: &World) -> Result<(), ApiError> {
        for key in world.processing_order() {
            if let Some(r) = world.resources.get(&key.resource_type, &key.resource_id) {
                self.api
                    .create(&key.resource_type, &key.resource_id, &r.body)
                    .await?;
            }
        }
        Ok(())
    }

    /// Submits one scripted change.
    pub async fn apply(&self, change: &Change) -> Result<(), ApiError> {
        match change {
            Change::Create {
                resource_type,
                id,
                body,
            } => self.api.create(resource_type, id, body).await,
            Change::Modify {
                resource_type,
                id,
                body,
            } => self.api.modify(resource_type, id, body).await.map(|_| ()),
            Change::Delete { resource_type, id } => self
                .api
                .mark_for_deletion(resource_type, id)
                .await
                .map(|_| ()),
        }
    }

    /// Steps every component in a seeded order until none has work left (advancing the
    /// manual clock to pending retry deadlines), injecting the configured faults on the way.
    pub async fn run_until_quiet(&mut self) -> Result<RunStats, RuntimeError> {
        let mut stats = RunStats::default();
        let mut steps = 0u64;
        let mut polled = false;
        loop {
            let n = 1 + self.managers.len() + self.workers.len();
            let mut order: Vec<usize> = (0..n).collect();
            for i in (1..order.len()).rev() {
                order.swap(i, self.rng.below(i + 1));
            }
            let mut busy = false;
            for c in order {
                let did = self.step_component(c).await?;
                if did {
                    busy = true;
                    stats.busy_steps += 1;
                    if let Some(f) = self.maybe_inject().await? {
                        stats.faults.push(f);
                    }
                }
            }
            steps += 1;
            if steps.is_multiple_of(HISTORY_WINDOW as u64) {
                self.compact_history().await?;
            }
            if steps > self.config.max_steps {
                return Err(RuntimeError::Store(crate::store::StoreError::Backend {
                    backend: "simulation",
                    message: format!("still busy after {steps} rounds"),
                }));
            }
            if busy {
                polled = false;
                continue;
            }
            if let Some(at) = self.workers.iter().filter_map(Worker::next_deadline).min() {
                if at > self.clock.now() {
                    self.clock.set(at);
                }
                continue;
            }
            match (&self.collector, polled) {
                (Some(c), false) => {
                    polled = true;
                    self.clock.advance(c.interval_secs());
                    let writes = c.poll_all(self.clock.now()).await;
                    stats.monitoring_writes += writes.len() as u64;
                    self.apply_monitoring(&writes).await?;
                }
                _ => return Ok(stats),
            }
        }
    }

    /// Etcd-style auto-compaction: keeps the last [`HISTORY_WINDOW`] revisions of watch
    /// history, so memory follows the live keys rather than every write ever made. Live
    /// watches are unaffected; a watch from an older revision gets `Compacted` and the manager
    /// resyncs, as it does against etcd.
    async fn compact_history(&self) -> Result<(), RuntimeError> {
        let rev = self.store.revision().await?;
        if rev > HISTORY_WINDOW {
            self.store.compact(rev - HISTORY_WINDOW).await?;
        }
        Ok(())
    }

    async fn apply_monitoring(&self, writes: &[MonitoringWrite]) -> Result<(), RuntimeError> {
        for w in writes {
            match w {
                MonitoringWrite::Set { key, .. } => {
                    let text = w.etcd_text().unwrap_or_default();
                    self.store.put(key, &text, PutMode::Overwrite, None).await?;
                }
                MonitoringWrite::Delete { key } => {
                    self.store.delete(key, None).await?;
                }
            }
        }
        Ok(())
    }

    async fn step_component(&mut self, c: usize) -> Result<bool, RuntimeError> {
        let m = self.managers.len();
        let r = if c == 0 {
            self.api.step().await
        } else if c <= m {
            self.managers[c - 1].step().await
        } else {
            self.workers[c - 1 - m].step().await
        };
        match r {
            Ok(did) => Ok(did),
            Err(RuntimeError::Store(e)) => Err(RuntimeError::Store(e)),
            Err(e) => {
                tracing::warn!(error = %e, "component step failed; going on");
                Ok(true)
            }
        }
    }

    async fn maybe_inject(&mut self) -> Result<Option<String>, RuntimeError> {
        let f = self.config.faults;
        // Roughly one chance in twenty per busy step, so faults land at varied points.
        if self.rng.below(20) != 0 {
            return Ok(None);
        }
        if f.drop_worker_mid_job && !self.injected.drop_worker_mid_job {
            if let Some(i) = self.workers.iter().position(Worker::busy) {
                self.injected.drop_worker_mid_job = true;
                let dropped = self.workers.remove(i);
                if let Some(lease) = dropped.lease() {
                    let _ = self.store.revoke(lease).await;
                }
                let fresh = self.new_worker();
                self.workers.push(fresh);
                return Ok(Some(format!("dropped {} mid-job", dropped.name())));
            }
        }
        if f.duplicate_config_event && !self.injected.duplicate_config_event {
            let (config, _) = self.store.range(&format!("{}/", keys::CONFIG)).await?;
            let live: Vec<_> = config
                .into_iter()
                .filter(|kv| decode_config(&kv.value).is_ok())
                .collect();
            if !live.is_empty() {
                self.injected.duplicate_config_event = true;
                let kv = &live[self.rng.below(live.len())];
                self.store
                    .put(&kv.key, &kv.value, PutMode::Overwrite, None)
                    .await?;
                return Ok(Some(format!("duplicated the event of {}", kv.key)));
            }
        }
        if f.manager_loses_lease && !self.injected.manager_loses_lease {
            if let Some(lease) = self.managers.iter().find_map(Manager::leader_lease) {
                self.injected.manager_loses_lease = true;
                let _ = self.store.revoke(lease).await;
                return Ok(Some("revoked the leader's lease".to_string()));
            }
        }
        Ok(None)
    }
}
