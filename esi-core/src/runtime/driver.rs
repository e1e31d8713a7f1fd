//! The real-time driver: the components of [`super`] run as tokio tasks over any [`Store`] and
//! [`Heat`], woken by store watches (timers only for lease keep-alives, retry deadlines and
//! monitoring polls), until the shutdown future the caller supplies completes.
//!
//! ```no_run
//! # async fn demo(store: std::sync::Arc<dyn esi_core::Store>,
//! #               heat: std::sync::Arc<dyn esi_core::heat::Heat>,
//! #               stop: tokio::sync::oneshot::Receiver<()>) {
//! use esi_core::runtime::driver::{Driver, DriverConfig};
//! let driver = Driver::new(store, heat, Default::default(), DriverConfig::default());
//! // `esi serve` passes a future that completes on SIGTERM/SIGINT (`tokio::signal`).
//! driver.run(async { let _ = stop.await; }).await.ok();
//! # }
//! ```
//! (Signals are the caller's: esi-core does no I/O itself.)
//!
//! Roles: `reader` (the API side: completes two-step deletes), `manager` (a leadership
//! candidate; the leader expands changes into jobs, every write fenced by `/job_manager_id`),
//! `worker` (`jobs` job slots claiming ready jobs with lease-bound keys) and `monitor` (polls the
//! collector's targets and writes `/monitoring`). Shutdown: workers finish their job within
//! [`DriverConfig::shutdown_grace`] or hand it back (claim lease revoked, the manager requeues
//! it), then the leader resigns (lease revoked, a candidate elsewhere takes over at once).
//!
//! Each process registers itself under `/esi/processes/<name>` (bound to a lease) with its
//! roles and its job slots' claim leases, which `esi status` and `esi jobs` read.

use super::api::Api;
use super::manager::{Manager, ManagerConfig};
use super::metrics::Metrics;
use super::monitor::SharedTargets;
use super::stored::{is_catalog_key, load_catalog};
use super::worker::{Worker, WorkerConfig};
use super::{RuntimeError, SimRng};
use crate::catalog::Catalog;
use crate::clock::{Clock, SystemClock};
use crate::collector::{rfc3339_seconds, Collector};
use crate::exec::monitor::MonitoringWrite;
use crate::expand::SeededSuffixes;
use crate::heat::Heat;
use crate::keys;
use crate::store::{LeaseId, PutMode, Store, StoreError, WatchEvent};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Prefix of process registrations.
pub const PROCESSES: &str = "/esi/processes";

/// Which components a process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Roles {
    /// The API side (completes two-step deletes).
    pub reader: bool,
    /// A manager candidate.
    pub manager: bool,
    /// Job slots.
    pub worker: bool,
    /// Monitoring polls.
    pub monitor: bool,
}

impl Default for Roles {
    fn default() -> Self {
        Roles {
            reader: true,
            manager: true,
            worker: true,
            monitor: true,
        }
    }
}

impl Roles {
    /// The role names, comma-separated.
    pub fn names(&self) -> Vec<&'static str> {
        let mut v = Vec::new();
        for (on, n) in [
            (self.reader, "reader"),
            (self.manager, "manager"),
            (self.worker, "worker"),
            (self.monitor, "monitor"),
        ] {
            if on {
                v.push(n);
            }
        }
        v
    }
}

/// Tunables; the defaults are the recorded timings.
#[derive(Debug, Clone)]
pub struct DriverConfig {
    /// This process's name (its manager candidate id and registration key).
    pub name: String,
    /// Components to run.
    pub roles: Roles,
    /// Concurrent jobs (job slots).
    pub jobs: usize,
    /// Claim lease TTL (recorded: 60 s).
    pub claim_ttl: Duration,
    /// Claim lease refresh (recorded: 30 s).
    pub claim_refresh: Duration,
    /// Leadership lease TTL (recorded: 65 s).
    pub leader_ttl: Duration,
    /// Leadership refresh (recorded: 30 s).
    pub leader_refresh: Duration,
    /// How long a candidate waits before campaigning again when no deletion of the leadership
    /// key was seen (a safety net: a watch wakes it as soon as the key goes).
    pub campaign_retry: Duration,
    /// Attempts of a failing stack.
    pub max_attempts: u32,
    /// First retry delay.
    pub backoff: Duration,
    /// How long a worker may finish its job after shutdown before handing it back.
    pub shutdown_grace: Duration,
    /// Metrics sampling and registration refresh.
    pub status_interval: Duration,
    /// Seed of reservation ids and job-id suffixes.
    pub seed: u64,
}

impl Default for DriverConfig {
    fn default() -> Self {
        DriverConfig {
            name: "esi".into(),
            roles: Roles::default(),
            jobs: 4,
            claim_ttl: Duration::from_secs(60),
            claim_refresh: Duration::from_secs(30),
            leader_ttl: Duration::from_secs(65),
            leader_refresh: Duration::from_secs(30),
            campaign_retry: Duration::from_secs(15),
            max_attempts: 3,
            backoff: Duration::from_secs(2),
            shutdown_grace: Duration::from_secs(30),
            status_interval: Duration::from_secs(5),
            seed: 0,
        }
    }
}

impl DriverConfig {
    /// Short timings for tests: every TTL and refresh scaled to `ttl` (refresh = ttl / 3).
    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.claim_ttl = ttl;
        self.claim_refresh = ttl / 3;
        self.leader_ttl = ttl;
        self.leader_refresh = ttl / 3;
        self.campaign_retry = ttl / 4;
        self.status_interval = (ttl / 4).max(Duration::from_millis(50));
        self
    }
}

/// The driver.
pub struct Driver {
    store: Arc<dyn Store>,
    heat: Arc<dyn Heat>,
    catalog: Arc<Catalog>,
    collector: Option<Arc<Collector>>,
    shared_targets: Option<Arc<SharedTargets>>,
    clock: Arc<dyn Clock>,
    config: DriverConfig,
    metrics: Arc<Metrics>,
}

/// Aborts the driver's tasks when dropped: dropping [`Driver::run`]'s future (a killed
/// process, in tests) stops everything at once without resigning or handing back, so leases
/// expire as they would after a crash.
struct AbortOnDrop(Vec<tokio::task::AbortHandle>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        for h in &self.0 {
            h.abort();
        }
    }
}

/// What the running tasks share.
struct Shared {
    store: Arc<dyn Store>,
    config: DriverConfig,
    metrics: Arc<Metrics>,
    clock: Arc<dyn Clock>,
    ready: Notify,
    catalog: watch::Sender<Arc<Catalog>>,
    base_catalog: Arc<Catalog>,
    worker_leases: Mutex<Vec<Option<LeaseId>>>,
    busy: Mutex<Vec<bool>>,
}

impl Driver {
    /// A driver over `store` and `heat`; `catalog` is the base the stored catalog is merged over
    /// (usually empty: schemas and templates are applied to the store).
    pub fn new(
        store: Arc<dyn Store>,
        heat: Arc<dyn Heat>,
        catalog: Arc<Catalog>,
        config: DriverConfig,
    ) -> Self {
        Driver {
            store,
            heat,
            catalog,
            collector: None,
            shared_targets: None,
            clock: Arc::new(SystemClock),
            config,
            metrics: Arc::new(Metrics::new()),
        }
    }

    /// Adds the monitoring side (polled by the `monitor` role).
    pub fn with_collector(mut self, collector: Arc<Collector>) -> Self {
        self.collector = Some(collector);
        self
    }

    /// Monitoring targets shared with the other processes through the store: the `monitor`
    /// role joins the membership and polls its share of them (through `shared`'s collector).
    pub fn with_shared_targets(mut self, shared: Arc<SharedTargets>) -> Self {
        self.collector = Some(shared.collector());
        self.shared_targets = Some(shared);
        self
    }

    /// Uses this metrics registry (shared with the HTTP surface).
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = metrics;
        self
    }

    /// The metrics registry.
    pub fn metrics(&self) -> Arc<Metrics> {
        self.metrics.clone()
    }

    /// Runs every configured role until `shutdown` completes, then stops in order: workers
    /// finish or hand back their jobs, the leader resigns, the registration is removed.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<(), RuntimeError> {
        let cfg = self.config.clone();
        let catalog = load_catalog(self.store.as_ref(), &self.catalog).await?;
        let (catalog_tx, _) = watch::channel(Arc::new(catalog));
        let shared = Arc::new(Shared {
            store: self.store.clone(),
            config: cfg.clone(),
            metrics: self.metrics.clone(),
            clock: self.clock.clone(),
            ready: Notify::new(),
            catalog: catalog_tx,
            base_catalog: self.catalog.clone(),
            worker_leases: Mutex::new(vec![None; cfg.jobs]),
            busy: Mutex::new(vec![false; cfg.jobs]),
        });
        let (stop_workers, workers_rx) = watch::channel(false);
        let (stop_rest, rest_rx) = watch::channel(false);
        tracing::info!(name = %cfg.name, roles = ?cfg.roles.names(), jobs = cfg.jobs, "esi driver starting");

        let mut rest: Vec<JoinHandle<()>> = Vec::new();
        rest.push(tokio::spawn(observer_task(shared.clone(), rest_rx.clone())));
        if cfg.roles.reader {
            let api = Api::new(self.store.clone(), self.catalog.clone());
            rest.push(tokio::spawn(reader_task(api, rest_rx.clone())));
        }
        let mut manager_handle = None;
        if cfg.roles.manager {
            let m = Manager::new(
                cfg.name.clone(),
                self.store.clone(),
                self.catalog.clone(),
                Box::new(SeededSuffixes::new(
                    cfg.seed ^ SimRng::new(name_seed(&cfg.name)).next_u64(),
                )),
                ManagerConfig {
                    leader_ttl: cfg.leader_ttl,
                    ..ManagerConfig::default()
                },
            );
            manager_handle = Some(tokio::spawn(manager_task(
                m,
                shared.clone(),
                rest_rx.clone(),
            )));
        }
        if cfg.roles.monitor {
            if let Some(t) = self.shared_targets.clone() {
                rest.push(tokio::spawn(t.run(rest_rx.clone())));
            }
            if let Some(c) = self.collector.clone() {
                rest.push(tokio::spawn(monitor_task(
                    c,
                    shared.clone(),
                    rest_rx.clone(),
                )));
            }
        }
        let mut workers = Vec::new();
        if cfg.roles.worker {
            for slot in 0..cfg.jobs {
                let w = Worker::new(
                    format!("{}/{slot}", cfg.name),
                    self.store.clone(),
                    self.heat.clone(),
                    shared.catalog.borrow().clone(),
                    self.clock.clone(),
                    WorkerConfig {
                        claim_ttl: cfg.claim_ttl,
                        max_attempts: cfg.max_attempts,
                        backoff: cfg.backoff,
                        ..WorkerConfig::default()
                    },
                    name_seed(&cfg.name).wrapping_add(slot as u64),
                );
                workers.push(tokio::spawn(worker_task(
                    w,
                    slot,
                    shared.clone(),
                    workers_rx.clone(),
                )));
            }
        }

        let _guard = AbortOnDrop(
            rest.iter()
                .chain(workers.iter())
                .chain(manager_handle.iter())
                .map(JoinHandle::abort_handle)
                .collect(),
        );
        shutdown.await;
        tracing::info!(name = %cfg.name, "shutdown: finishing or handing back jobs");
        let _ = stop_workers.send(true);
        for w in workers {
            let _ = w.await;
        }
        let _ = stop_rest.send(true);
        if let Some(m) = manager_handle {
            let _ = m.await;
        }
        for t in rest {
            let _ = t.await;
        }
        let _ = self
            .store
            .delete(&format!("{PROCESSES}/{}", cfg.name), None)
            .await;
        tracing::info!(name = %cfg.name, "esi driver stopped");
        Ok(())
    }
}

fn name_seed(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// Sleeps `d` unless `stop` turns true first; returns whether it stopped.
async fn pause(d: Duration, stop: &mut watch::Receiver<bool>) -> bool {
    if *stop.borrow() {
        return true;
    }
    tokio::select! {
        _ = tokio::time::sleep(d) => *stop.borrow(),
        _ = stop.changed() => true,
    }
}

async fn reader_task(mut api: Api, mut stop: watch::Receiver<bool>) {
    loop {
        if *stop.borrow() {
            return;
        }
        let r = tokio::select! {
            r = api.step_wait() => r,
            _ = stop.changed() => return,
        };
        if let Err(e) = r {
            tracing::warn!(error = %e, "reader: step failed; retrying");
            if pause(Duration::from_secs(1), &mut stop).await {
                return;
            }
            let _ = api.resync().await;
        }
    }
}

async fn manager_task(mut m: Manager, shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let cfg = &shared.config;
    let mut refreshed = Instant::now();
    let (mut refused_seen, mut fenced_seen) = (0, 0);
    loop {
        if *stop.borrow() {
            break;
        }
        if m.is_leader() && refreshed.elapsed() >= cfg.leader_refresh {
            refreshed = Instant::now();
            if let Err(e) = m.keep_alive().await {
                tracing::warn!(manager = %m.name(), error = %e, "leadership lost at refresh");
            }
        }
        let was_leader = m.is_leader();
        let r = m.step().await;
        if !was_leader && m.is_leader() {
            refreshed = Instant::now();
        }
        shared.metrics.set_leader(m.is_leader());
        shared
            .metrics
            .add_refused_writes(m.refused_writes() - refused_seen);
        refused_seen = m.refused_writes();
        shared
            .metrics
            .add_fenced_writes(m.fenced_writes() - fenced_seen);
        fenced_seen = m.fenced_writes();
        match r {
            Ok(true) => continue,
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(manager = %m.name(), error = %e, "manager step failed; retrying");
                if pause(Duration::from_millis(500), &mut stop).await {
                    break;
                }
                continue;
            }
        }
        if m.is_leader() {
            let until_refresh = cfg.leader_refresh.saturating_sub(refreshed.elapsed());
            tokio::select! {
                r = m.wait_for_change() => if let Err(e) = r {
                    tracing::warn!(manager = %m.name(), error = %e, "manager watch failed");
                    if pause(Duration::from_millis(500), &mut stop).await { break; }
                },
                _ = tokio::time::sleep(until_refresh) => {}
                _ = stop.changed() => {}
            }
        } else {
            // A candidate: wake when the leadership key goes (or after the retry period).
            let watch = match shared.store.revision().await {
                Ok(rev) => shared.store.watch(keys::JOB_MANAGER_ID, rev + 1).await.ok(),
                Err(_) => None,
            };
            let exists = matches!(shared.store.get(keys::JOB_MANAGER_ID).await, Ok(Some(_)));
            if !exists {
                continue;
            }
            match watch {
                Some(mut w) => {
                    let deadline = Instant::now() + cfg.campaign_retry;
                    loop {
                        tokio::select! {
                            ev = w.next() => match ev {
                                Some(Ok(WatchEvent::Delete { .. })) | None | Some(Err(_)) => break,
                                Some(Ok(WatchEvent::Put(_))) => continue,
                            },
                            _ = tokio::time::sleep_until(deadline) => break,
                            _ = stop.changed() => break,
                        }
                    }
                }
                None => {
                    if pause(cfg.campaign_retry, &mut stop).await {
                        break;
                    }
                }
            }
        }
    }
    m.resign().await;
    shared.metrics.set_leader(false);
}

async fn worker_task(
    mut w: Worker,
    slot: usize,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) {
    let cfg = &shared.config;
    let mut catalog = shared.catalog.subscribe();
    let mut refreshed = Instant::now();
    let mut stopped_at: Option<Instant> = None;
    let (mut claims, mut retries) = (0, 0);
    loop {
        if *stop.borrow() {
            let since = *stopped_at.get_or_insert_with(Instant::now);
            if !w.busy() {
                break;
            }
            if w.waiting_for_retry() || since.elapsed() >= cfg.shutdown_grace {
                w.hand_back().await;
                break;
            }
        }
        if catalog.has_changed().unwrap_or(false) {
            w.set_catalog(catalog.borrow_and_update().clone());
        }
        if refreshed.elapsed() >= cfg.claim_refresh {
            refreshed = Instant::now();
            let _ = w.keep_alive().await;
        }
        let notified = shared.ready.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let r = if *stop.borrow() && !w.busy() {
            Ok(false)
        } else {
            // A step may wait on Heat for a long time (a long stack, a Heat that is down):
            // the claim lease is refreshed meanwhile, or the manager would take the job back.
            let heartbeat = keep_claim_alive(shared.store.clone(), w.lease(), cfg.claim_refresh);
            tokio::select! {
                r = w.step() => r,
                never = heartbeat => match never {},
            }
        };
        if let Ok(mut leases) = shared.worker_leases.lock() {
            if let Some(l) = leases.get_mut(slot) {
                *l = w.lease();
            }
        }
        if let Ok(mut busy) = shared.busy.lock() {
            if let Some(b) = busy.get_mut(slot) {
                *b = w.busy();
            }
            shared
                .metrics
                .set_busy_workers(busy.iter().filter(|b| **b).count() as i64);
        }
        shared.metrics.add_claims(w.claims() - claims);
        shared.metrics.add_retries(w.retries() - retries);
        (claims, retries) = (w.claims(), w.retries());
        match r {
            Ok(true) => continue,
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(worker = %w.name(), error = %e, "worker step failed; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        }
        let mut wake = cfg.claim_refresh.saturating_sub(refreshed.elapsed());
        if let Some(at) = w.next_deadline() {
            let now = shared.clock.now();
            let nanos = u64::try_from(at.0.saturating_sub(now.0)).unwrap_or(0);
            wake = wake.min(Duration::from_nanos(nanos));
        }
        tokio::select! {
            _ = notified => {}
            _ = tokio::time::sleep(wake) => {}
            _ = stop.changed() => {}
        }
    }
}

/// Refreshes claim lease `lease` every `every` until dropped (never completes; a lease that
/// is gone is left to the worker's own refresh, which abandons the job).
async fn keep_claim_alive(
    store: Arc<dyn Store>,
    lease: Option<LeaseId>,
    every: Duration,
) -> std::convert::Infallible {
    if let Some(l) = lease {
        loop {
            tokio::time::sleep(every).await;
            if store.keep_alive(l).await.is_err() {
                break;
            }
        }
    }
    std::future::pending().await
}

async fn monitor_task(c: Arc<Collector>, shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let interval = Duration::from_secs_f64(c.interval_secs().max(0.05));
    loop {
        let now = shared.clock.now();
        let wait = match c.next_due() {
            Some(at) => {
                Duration::from_nanos(u64::try_from(at.0.saturating_sub(now.0)).unwrap_or(0))
                    .min(interval)
            }
            None => interval.min(Duration::from_secs(1)),
        };
        tokio::select! {
            stopped = pause(wait, &mut stop) => if stopped { return },
            _ = c.changed() => continue,
        }
        let writes = c.poll(shared.clock.now()).await;
        apply_monitoring(shared.store.as_ref(), &writes).await;
    }
}

/// Applies the collector's writes to the store (monitoring.md §4.3): a `Set` reads the key
/// first and writes only when it is absent or holds something else, so a target taken over by
/// another process never writes the same document twice; a `Delete` removes the key.
pub async fn apply_monitoring(store: &dyn Store, writes: &[MonitoringWrite]) -> usize {
    let mut written = 0;
    for w in writes {
        let r = match w {
            MonitoringWrite::Set { key, value, .. } => {
                let text = w.etcd_text().unwrap_or_default();
                match store.get(key).await {
                    Ok(Some(kv))
                        if serde_json::from_str::<serde_json::Value>(&kv.value)
                            .ok()
                            .as_ref()
                            == Some(value) =>
                    {
                        Ok(())
                    }
                    _ => store
                        .put(key, &text, PutMode::Overwrite, None)
                        .await
                        .map(|_| written += 1),
                }
            }
            MonitoringWrite::Delete { key } => store.delete(key, None).await.map(|_| ()),
        };
        if let Err(e) = r {
            tracing::warn!(error = %e, "monitoring write failed");
        }
    }
    written
}

/// Follows every change: keeps the job-queue gauges, wakes idle workers when a job becomes
/// ready, reloads the catalog when schemas or templates change, measures the watch lag and keeps
/// the process registration alive.
async fn observer_task(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let store = shared.store.clone();
    let cfg = &shared.config;
    let mut registration: Option<LeaseId> = None;
    let started = rfc3339_seconds(shared.clock.now());
    let queues = ["all", "waiting", "ready", "working", "finished"];
    'relist: loop {
        if *stop.borrow() {
            return;
        }
        let mut sets: BTreeMap<&str, BTreeSet<String>> =
            queues.iter().map(|q| (*q, BTreeSet::new())).collect();
        let listed = match store.range("/jobs/").await {
            Ok((kvs, rev)) => {
                for kv in kvs {
                    if let Some((q, id)) = queue_of(&kv.key) {
                        if let Some(s) = sets.get_mut(q) {
                            s.insert(id.to_string());
                        }
                    }
                }
                rev
            }
            Err(e) => {
                tracing::warn!(error = %e, "observer: listing failed");
                if pause(Duration::from_secs(1), &mut stop).await {
                    return;
                }
                continue 'relist;
            }
        };
        reload_catalog(&shared).await;
        shared.ready.notify_waiters();
        let mut watch = match store.watch("/", listed + 1).await {
            Ok(w) => w,
            Err(_) => {
                if pause(Duration::from_secs(1), &mut stop).await {
                    return;
                }
                continue 'relist;
            }
        };
        let mut last = listed;
        let mut tick = tokio::time::interval(cfg.status_interval);
        loop {
            for q in queues {
                shared
                    .metrics
                    .set_jobs(q, sets.get(q).map_or(0, |s| s.len() as i64));
            }
            tokio::select! {
                ev = watch.next() => match ev {
                    Some(Ok(ev)) => {
                        last = last.max(ev.revision());
                        if is_catalog_key(ev.key()) {
                            reload_catalog(&shared).await;
                        }
                        if let Some((q, id)) = queue_of(ev.key()) {
                            let put = matches!(ev, WatchEvent::Put(_));
                            if let Some(s) = sets.get_mut(q) {
                                if put { s.insert(id.to_string()); } else { s.remove(id); }
                            }
                            if put && q == "ready" {
                                shared.ready.notify_waiters();
                            }
                        }
                    }
                    Some(Err(StoreError::Compacted { .. })) | None => continue 'relist,
                    Some(Err(e)) => {
                        tracing::warn!(error = %e, "observer: watch failed");
                        if pause(Duration::from_secs(1), &mut stop).await { return; }
                        continue 'relist;
                    }
                },
                _ = tick.tick() => {
                    match store.revision().await {
                        Ok(head) => {
                            shared.metrics.set_store_up(true);
                            shared.metrics.set_watch_lag((head - last).max(0));
                        }
                        Err(e) => {
                            shared.metrics.set_store_up(false);
                            tracing::warn!(error = %e, "store unreachable");
                        }
                    }
                    registration = register(&shared, registration, &started).await;
                }
                _ = stop.changed() => return,
            }
        }
    }
}

async fn reload_catalog(shared: &Shared) {
    match load_catalog(shared.store.as_ref(), &shared.base_catalog).await {
        Ok(c) => {
            shared.catalog.send_replace(Arc::new(c));
        }
        Err(e) => tracing::warn!(error = %e, "catalog reload failed"),
    }
}

/// (queue, job id) of a `/jobs/<queue>/<id>` key.
fn queue_of(key: &str) -> Option<(&str, &str)> {
    let rest = key.strip_prefix("/jobs/")?;
    let (q, id) = rest.split_once('/')?;
    (!id.is_empty()).then_some((q, id))
}

/// Keeps `/esi/processes/<name>` alive (lease-bound, rewritten every status tick).
async fn register(shared: &Shared, lease: Option<LeaseId>, started: &str) -> Option<LeaseId> {
    let store = &shared.store;
    let cfg = &shared.config;
    let lease = match lease {
        Some(l) if store.keep_alive(l).await.is_ok() => l,
        _ => store.grant(cfg.claim_ttl).await.ok()?,
    };
    let leases: Vec<LeaseId> = shared
        .worker_leases
        .lock()
        .map(|l| l.iter().flatten().copied().collect())
        .unwrap_or_default();
    let value = json!({
        "name": cfg.name,
        "roles": cfg.roles.names(),
        "jobs": cfg.jobs,
        "started": started,
        "leader": shared.metrics.is_leader(),
        "worker_leases": leases,
    });
    let key = format!("{PROCESSES}/{}", cfg.name);
    match store
        .put(&key, &value.to_string(), PutMode::Overwrite, Some(lease))
        .await
    {
        Ok(_) => Some(lease),
        Err(_) => None,
    }
}
