//! The daemon's metrics: a small registry of counters, gauges and latency histograms, rendered
//! in the Prometheus text exposition format (`esi-http` serves it at `/metrics`). Heat and the
//! devices are measured by wrapping them ([`MeteredHeat`], [`MeteredDevices`]).

use crate::device::{
    BgpState, CommitInfo, ConfigChange, Credentials, Device, DeviceAddress, DeviceError,
    DeviceRegistry, OperStatus, VrrpState,
};
use crate::exec::stack::StackRequest;
use crate::heat::{Heat, HeatError, StackOutcome};
use async_trait::async_trait;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Upper bounds (seconds) of the latency buckets.
const BUCKETS: [f64; 10] = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0, 120.0];

#[derive(Debug, Default, Clone)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

impl Histogram {
    fn observe(&mut self, secs: f64) {
        for (i, b) in BUCKETS.iter().enumerate() {
            if secs <= *b {
                self.counts[i] += 1;
            }
        }
        self.sum += secs;
        self.count += 1;
    }
}

/// The registry (cheap to share: `Arc<Metrics>`).
#[derive(Debug, Default)]
pub struct Metrics {
    jobs: Mutex<BTreeMap<String, i64>>,
    claims: AtomicU64,
    retries: AtomicU64,
    leader: AtomicI64,
    refused_writes: AtomicU64,
    fenced_writes: AtomicU64,
    watch_lag: AtomicI64,
    busy_workers: AtomicI64,
    /// Seconds since the epoch of the last failed store round-trip (0: none since the last
    /// success).
    store_down_since: AtomicI64,
    latency: Mutex<BTreeMap<(String, String), Histogram>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Metrics {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the number of jobs in a queue (`waiting`, `ready`, `working`, `finished`, `all`).
    pub fn set_jobs(&self, state: &str, n: i64) {
        lock(&self.jobs).insert(state.to_string(), n);
    }

    /// The number of jobs last seen in a queue.
    pub fn jobs(&self, state: &str) -> i64 {
        lock(&self.jobs).get(state).copied().unwrap_or(0)
    }

    /// Counts claims made by this process.
    pub fn add_claims(&self, n: u64) {
        self.claims.fetch_add(n, Ordering::Relaxed);
    }

    /// Counts stack retries made by this process.
    pub fn add_retries(&self, n: u64) {
        self.retries.fetch_add(n, Ordering::Relaxed);
    }

    /// Counts fenced writes refused because this process's manager had lost the leadership.
    pub fn add_refused_writes(&self, n: u64) {
        self.refused_writes.fetch_add(n, Ordering::Relaxed);
    }

    /// Fenced writes refused so far.
    pub fn refused_writes(&self) -> u64 {
        self.refused_writes.load(Ordering::Relaxed)
    }

    /// Counts fenced writes this process's manager sent (refused or not).
    pub fn add_fenced_writes(&self, n: u64) {
        self.fenced_writes.fetch_add(n, Ordering::Relaxed);
    }

    /// Fenced writes sent so far.
    pub fn fenced_writes(&self) -> u64 {
        self.fenced_writes.load(Ordering::Relaxed)
    }

    /// Whether this process leads.
    pub fn set_leader(&self, leader: bool) {
        self.leader.store(i64::from(leader), Ordering::Relaxed);
    }

    /// True while this process leads.
    pub fn is_leader(&self) -> bool {
        self.leader.load(Ordering::Relaxed) == 1
    }

    /// Revisions between the store's head and the last event this process's watch delivered.
    pub fn set_watch_lag(&self, revisions: i64) {
        self.watch_lag.store(revisions, Ordering::Relaxed);
    }

    /// Records the outcome of a store round-trip (the driver checks every status interval).
    pub fn set_store_up(&self, up: bool) {
        if up {
            self.store_down_since.store(0, Ordering::Relaxed);
        } else {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_secs().max(1) as i64);
            let _ = self.store_down_since.compare_exchange(
                0,
                now,
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
        }
    }

    /// False when the last store round-trip failed.
    pub fn store_up(&self) -> bool {
        self.store_down_since.load(Ordering::Relaxed) == 0
    }

    /// Job slots currently holding a job.
    pub fn set_busy_workers(&self, n: i64) {
        self.busy_workers.store(n, Ordering::Relaxed);
    }

    /// Records one call's latency (`system` is `heat` or `device`).
    pub fn observe(&self, system: &str, operation: &str, took: Duration) {
        lock(&self.latency)
            .entry((system.to_string(), operation.to_string()))
            .or_default()
            .observe(took.as_secs_f64());
    }

    /// Calls observed for (`system`, `operation`).
    pub fn observed(&self, system: &str, operation: &str) -> u64 {
        lock(&self.latency)
            .get(&(system.to_string(), operation.to_string()))
            .map_or(0, |h| h.count)
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let mut metric = |name: &str, kind: &str, help: &str| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            name.to_string()
        };
        let jobs = lock(&self.jobs).clone();
        let mut body = String::new();
        let n = metric("esi_jobs", "gauge", "Jobs per queue as last seen.");
        for state in ["all", "waiting", "ready", "working", "finished"] {
            let v = jobs.get(state).copied().unwrap_or(0);
            let _ = writeln!(body, "{n}{{state=\"{state}\"}} {v}");
        }
        let counters = [
            (
                "esi_claims_total",
                "Jobs claimed by this process.",
                self.claims.load(Ordering::Relaxed) as i64,
                "counter",
            ),
            (
                "esi_retries_total",
                "Stack retries made by this process.",
                self.retries.load(Ordering::Relaxed) as i64,
                "counter",
            ),
            (
                "esi_refused_writes_total",
                "Fenced writes refused after a lost leadership.",
                self.refused_writes.load(Ordering::Relaxed) as i64,
                "counter",
            ),
            (
                "esi_fenced_writes_total",
                "Fenced writes (one transaction each) this process's manager sent.",
                self.fenced_writes.load(Ordering::Relaxed) as i64,
                "counter",
            ),
            (
                "esi_leader",
                "1 while this process's manager leads.",
                self.leader.load(Ordering::Relaxed),
                "gauge",
            ),
            (
                "esi_watch_lag_revisions",
                "Store head revision minus the last revision the watch delivered.",
                self.watch_lag.load(Ordering::Relaxed),
                "gauge",
            ),
            (
                "esi_store_up",
                "1 when the last store round-trip succeeded.",
                i64::from(self.store_up()),
                "gauge",
            ),
            (
                "esi_busy_workers",
                "Job slots holding a job.",
                self.busy_workers.load(Ordering::Relaxed),
                "gauge",
            ),
        ];
        let mut text = out;
        text.push_str(&body);
        for (name, help, v, kind) in counters {
            let _ = writeln!(
                text,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}"
            );
        }
        let latency = lock(&self.latency).clone();
        for system in ["heat", "device"] {
            let name = format!("esi_{system}_request_seconds");
            let _ = writeln!(
                text,
                "# HELP {name} Latency of {system} calls.\n# TYPE {name} histogram"
            );
            for ((s, op), h) in latency.iter().filter(|((s, _), _)| s == system) {
                let _ = s;
                for (i, b) in BUCKETS.iter().enumerate() {
                    let _ = writeln!(
                        text,
                        "{name}_bucket{{operation=\"{op}\",le=\"{b}\"}} {}",
                        h.counts[i]
                    );
                }
                let _ = writeln!(
                    text,
                    "{name}_bucket{{operation=\"{op}\",le=\"+Inf\"}} {c}\n{name}_sum{{operation=\"{op}\"}} {s:.6}\n{name}_count{{operation=\"{op}\"}} {c}",
                    c = h.count,
                    s = h.sum
                );
            }
        }
        text
    }
}

/// Heat, timed per operation into [`Metrics`].
pub struct MeteredHeat {
    inner: Arc<dyn Heat>,
    metrics: Arc<Metrics>,
}

impl MeteredHeat {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn Heat>, metrics: Arc<Metrics>) -> Self {
        Self { inner, metrics }
    }
}

#[async_trait]
impl Heat for MeteredHeat {
    async fn create(&self, request: &StackRequest) -> Result<StackOutcome, HeatError> {
        let t = Instant::now();
        let r = self.inner.create(request).await;
        self.metrics.observe("heat", "create", t.elapsed());
        r
    }
    async fn update(&self, request: &StackRequest) -> Result<StackOutcome, HeatError> {
        let t = Instant::now();
        let r = self.inner.update(request).await;
        self.metrics.observe("heat", "update", t.elapsed());
        r
    }
    async fn delete(&self, stack_name: &str) -> Result<StackOutcome, HeatError> {
        let t = Instant::now();
        let r = self.inner.delete(stack_name).await;
        self.metrics.observe("heat", "delete", t.elapsed());
        r
    }
    async fn get(&self, stack_name: &str) -> Result<Option<StackOutcome>, HeatError> {
        let t = Instant::now();
        let r = self.inner.get(stack_name).await;
        self.metrics.observe("heat", "get", t.elapsed());
        r
    }
}

/// A device registry whose devices are timed per call into [`Metrics`].
pub struct MeteredDevices {
    inner: Arc<dyn DeviceRegistry>,
    metrics: Arc<Metrics>,
}

impl MeteredDevices {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn DeviceRegistry>, metrics: Arc<Metrics>) -> Self {
        Self { inner, metrics }
    }
}

#[async_trait]
impl DeviceRegistry for MeteredDevices {
    async fn connect(
        &self,
        address: &DeviceAddress,
        credentials: &Credentials,
    ) -> Result<Arc<dyn Device>, DeviceError> {
        let t = Instant::now();
        let d = self.inner.connect(address, credentials).await;
        self.metrics.observe("device", "connect", t.elapsed());
        Ok(Arc::new(MeteredDevice {
            inner: d?,
            metrics: self.metrics.clone(),
        }))
    }
}

struct MeteredDevice {
    inner: Arc<dyn Device>,
    metrics: Arc<Metrics>,
}

impl MeteredDevice {
    fn done<T>(&self, op: &str, t: Instant, r: T) -> T {
        self.metrics.observe("device", op, t.elapsed());
        r
    }
}

#[async_trait]
impl Device for MeteredDevice {
    fn name(&self) -> &str {
        self.inner.name()
    }
    async fn load_config(&self, change: &ConfigChange) -> Result<CommitInfo, DeviceError> {
        let t = Instant::now();
        let r = self.inner.load_config(change).await;
        self.done("load_config", t, r)
    }
    async fn remove_config(
        &self,
        resource: &str,
        paths: &[Vec<String>],
    ) -> Result<CommitInfo, DeviceError> {
        let t = Instant::now();
        let r = self.inner.remove_config(resource, paths).await;
        self.done("remove_config", t, r)
    }
    async fn configuration(&self) -> Result<String, DeviceError> {
        let t = Instant::now();
        let r = self.inner.configuration().await;
        self.done("configuration", t, r)
    }
    async fn interface_status(&self, name: &str) -> Result<OperStatus, DeviceError> {
        let t = Instant::now();
        let r = self.inner.interface_status(name).await;
        self.done("interface_status", t, r)
    }
    async fn vrrp_status(&self, interface: &str, vrid: u32) -> Result<VrrpState, DeviceError> {
        let t = Instant::now();
        let r = self.inner.vrrp_status(interface, vrid).await;
        self.done("vrrp_status", t, r)
    }
    async fn bgp_peer_status(&self, instance: &str, peer: &str) -> Result<BgpState, DeviceError> {
        let t = Instant::now();
        let r = self.inner.bgp_peer_status(instance, peer).await;
        self.done("bgp_peer_status", t, r)
    }
    async fn ping(&self) -> Result<(), DeviceError> {
        let t = Instant::now();
        let r = self.inner.ping().await;
        self.done("ping", t, r)
    }
    async fn interface_statuses(&self, names: &[String]) -> Vec<Result<OperStatus, DeviceError>> {
        let t = Instant::now();
        let r = self.inner.interface_statuses(names).await;
        self.done("interface_statuses", t, r)
    }
    async fn metrics(
        &self,
        target_type: &str,
        interface: Option<&str>,
    ) -> Result<Vec<(String, f64)>, DeviceError> {
        let t = Instant::now();
        let r = self.inner.metrics(target_type, interface).await;
        self.done("metrics", t, r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_carries_every_family() {
        let m = Metrics::new();
        m.set_jobs("ready", 3);
        m.add_claims(2);
        m.set_leader(true);
        m.observe("heat", "create", Duration::from_millis(20));
        let text = m.render();
        assert!(text.contains("esi_jobs{state=\"ready\"} 3"), "{text}");
        assert!(text.contains("esi_claims_total 2"));
        assert!(text.contains("esi_leader 1"));
        assert!(
            text.contains("esi_heat_request_seconds_bucket{operation=\"create\",le=\"0.05\"} 1")
        );
        assert!(
            text.contains("esi_heat_request_seconds_bucket{operation=\"create\",le=\"0.01\"} 0")
        );
        assert!(text.contains("esi_heat_request_seconds_count{operation=\"create\"} 1"));
    }
}
