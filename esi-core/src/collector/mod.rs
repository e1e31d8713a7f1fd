//! The CollectorAgent (monitoring.md) as an in-process component: it holds the targets that
//! `ESI::Monitoring::MonitoringTarget` resources register, polls their devices through a
//! [`DeviceRegistry`], runs the etcd syncer with its hold window
//! ([`crate::exec::monitor::EtcdSync`]) and returns the `/monitoring/v2.0/<plural>/<id>`
//! writes and deletes as plain data ([`MonitoringWrite`]).
//!
//! No store access (the runtime applies the writes) and no timers: [`Collector::poll`] is
//! called with the current time and polls the targets that are due; a target is first due one
//! interval after its creation (monitoring.md §3, 60 s by default). The creation time of a
//! target (the start of its hold window) is read from the [`Clock`] given at construction.
//!
//! What is polled, per target type (decisions O4, O5, O7 of open-questions.md):
//!
//! | type | poll | status |
//! |---|---|---|
//! | `snmp_device`, `snmp_device_fw`, `snmp_device_lb` | [`Device::ping`] on `device_ip` with the community | `UP` |
//! | `snmp_ports_status`, `snmp_ports` | [`Device::interface_status`] of `if_name` | `UP` / `DOWN` |
//! | `vrrp_pool` | [`Device::vrrp_status`] of every vrid on `primary`/`secondary` `interface` | `{"primary": "MASTER", …}`, `primary_vrid<i>` keys for several vrids; a router that fails → `FAIL` for its keys |
//! | `bgp_pool` | [`Device::bgp_peer_status`] of `peer_address` in `instance` | `{"primary": "ESTABLISHED", …}` |
//! | `virtual_machine_interface`, `compute` | nothing to poll in the embedded default (the resource exists while its stack does) | `UP` |
//! | `snmp_ports_metric`, `igs_counter` | tsdb only: never polled for etcd | – |
//! | any other type | – | a failure |
//!
//! A failed poll (device unknown, unreachable, interface not found …) counts as a failure; the
//! status `FAIL` is published after `fail_threshold` consecutive failures (default 2) and the
//! counter resets on success.

pub use crate::clock::{Clock, ManualClock, SystemClock};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use futures_util::StreamExt;
use serde_json::{json, Map, Value};

use crate::device::{Credentials, Device, DeviceAddress, DeviceRegistry};
use crate::exec::monitor::{target_response, EtcdSync, MonitorError, MonitoringTarget, Timestamp};
use crate::heat::ids::SeededIds;
use crate::secret::{redact, Secret};

pub use crate::exec::monitor::MonitoringWrite;

/// Errors of registering a target (the agent's `400`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CollectorError {
    /// The request body is not a valid target.
    #[error("monitoring target {target}: {reason}")]
    Malformed {
        /// `<resource_type>/<resource_id>` or `?`.
        target: String,
        /// What is wrong.
        reason: String,
    },
    /// The shared target registry (the store) cannot be reached.
    #[error("monitoring targets: store unavailable: {reason}")]
    Unavailable {
        /// What failed.
        reason: String,
    },
}

/// The CollectorAgent API's view of the targets (what `POST`/`GET`/`DELETE /targets` call):
/// the in-process [`Collector`] itself, or a registry shared between processes through the
/// store ([`crate::runtime::monitor::SharedTargets`]).
#[async_trait::async_trait]
pub trait TargetService: Send + Sync {
    /// `POST /targets`: the `201` document (secrets masked).
    async fn create(&self, request: &Value) -> Result<Value, CollectorError>;
    /// `GET /targets/<id>`: the document (secrets masked), with `values` once polled here.
    async fn show(&self, id: &str) -> Result<Option<Value>, CollectorError>;
    /// `DELETE /targets/<id>`: `false` for an unknown id.
    async fn remove(&self, id: &str) -> Result<bool, CollectorError>;
    /// The last tsdb results polled by this process.
    fn tsdb_samples(&self) -> Vec<TsdbSample>;
}

#[async_trait::async_trait]
impl TargetService for Collector {
    async fn create(&self, request: &Value) -> Result<Value, CollectorError> {
        self.register(request)
    }
    async fn show(&self, id: &str) -> Result<Option<Value>, CollectorError> {
        Ok(self.target(id))
    }
    async fn remove(&self, id: &str) -> Result<bool, CollectorError> {
        Ok(self.unregister(id))
    }
    fn tsdb_samples(&self) -> Vec<TsdbSample> {
        Collector::tsdb_samples(self)
    }
}

impl From<MonitorError> for CollectorError {
    fn from(e: MonitorError) -> Self {
        let target = match &e {
            MonitorError::MalformedTarget { target, .. } => target.clone(),
            _ => "?".into(),
        };
        CollectorError::Malformed {
            target,
            reason: e.to_string(),
        }
    }
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// `YYYY-MM-DDThh:mm:ssZ` (second precision, as the agent writes `created_at`).
pub fn rfc3339_seconds(t: Timestamp) -> String {
    let secs = t.unix_seconds();
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Settings of the collector.
#[derive(Debug, Clone, PartialEq)]
pub struct CollectorConfig {
    /// Seconds between polls of a target (60 recorded).
    pub interval_secs: f64,
    /// Consecutive failed polls before `FAIL` is published (decision O7: 2).
    pub fail_threshold: u32,
    /// The agent's advertised base URL (`monitorer`, the prefix of `link`).
    pub monitorer: String,
    /// Seed of the target ids.
    pub seed: u64,
    /// Spread of the polls: each target gets a stable phase in `[0, jitter × interval)` added
    /// to its due times (so targets registered together are not polled in one burst). `0`
    /// (the default) keeps the recorded timing exactly: first result one interval after
    /// creation.
    pub jitter: f64,
    /// Device groups polled at once (every target of one device is polled in one iteration).
    pub max_concurrent: usize,
    /// Also poll the tsdb results (traffic, cpu, memory, tcp counters) of targets whose
    /// `syncer_properties` name a `tsdb` syncer ([`Collector::tsdb_samples`]).
    pub tsdb: bool,
}

impl Default for CollectorConfig {
    fn default() -> Self {
        CollectorConfig {
            interval_secs: 60.0,
            fail_threshold: 2,
            monitorer: "http://collector.esi.local:7070".into(),
            seed: 0,
            jitter: 0.0,
            max_concurrent: 16,
            tsdb: false,
        }
    }
}

/// One tsdb result of a target (monitoring.md §5): the recorded metric name, its tags and
/// the last polled value.
#[derive(Debug, Clone, PartialEq)]
pub struct TsdbSample {
    /// The target id.
    pub target: String,
    /// The report key (`traffic.in`, `cpu.user`, …).
    pub key: String,
    /// `syncer_properties.tsdb.<key>.metric` (`traffic.bytes`, …).
    pub metric: String,
    /// `syncer_properties.tsdb.<key>.tags`, values as text.
    pub tags: BTreeMap<String, String>,
    /// The last value.
    pub value: f64,
}

#[derive(Debug, Clone)]
struct TsdbSpec {
    key: String,
    metric: String,
    tags: BTreeMap<String, String>,
}

fn tsdb_specs(body: &Value) -> Vec<TsdbSpec> {
    let Some(Value::Object(m)) = body.pointer("/syncer_properties/tsdb") else {
        return Vec::new();
    };
    m.iter()
        .filter_map(|(key, spec)| {
            let metric = spec.get("metric")?.as_str()?.to_string();
            let tags = match spec.get("tags") {
                Some(Value::Object(t)) => t
                    .iter()
                    .map(|(k, v)| {
                        let v = match v {
                            Value::String(s) => s.clone(),
                            other => other.to_string(),
                        };
                        (k.clone(), v)
                    })
                    .collect(),
                _ => BTreeMap::new(),
            };
            Some(TsdbSpec {
                key: key.clone(),
                metric,
                tags,
            })
        })
        .collect()
}

/// A stable fraction in `[0, 1)` from a target id (its polling phase).
fn phase_of(id: &str) -> f64 {
    let h = id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    (h >> 11) as f64 / (1u64 << 53) as f64
}

/// Targets polled together: one SNMP agent (device IP + community), one router pair, or the
/// target alone.
fn group_key(id: &str, body: &Value) -> String {
    let kind = body.get("type").and_then(Value::as_str).unwrap_or("");
    let props = body.get("properties").cloned().unwrap_or(Value::Null);
    if kind.starts_with("snmp_") {
        return format!(
            "snmp\u{0}{}\u{0}{}",
            text(&props, "device_ip").unwrap_or_default(),
            text(&props, "community_name").unwrap_or_default()
        );
    }
    if kind == "vrrp_pool" || kind == "bgp_pool" {
        let end = |r: &str| {
            props
                .get(r)
                .map(|v| {
                    format!(
                        "{}@{}:{}",
                        text(v, "login").unwrap_or_default(),
                        text(v, "host").unwrap_or_default(),
                        port_of(v).unwrap_or(0)
                    )
                })
                .unwrap_or_default()
        };
        return format!("pair\u{0}{}\u{0}{}", end("primary"), end("secondary"));
    }
    format!("one\u{0}{id}")
}

fn is_port_type(kind: &str) -> bool {
    matches!(
        kind,
        "snmp_ports_status" | "snmp_ports" | "snmp_ports_metric"
    )
}

struct Registered {
    /// The request body (secrets included: the agent logs in with them).
    body: Value,
    /// The response document (secrets masked).
    response: Value,
    sync: Option<EtcdSync>,
    next_due: Timestamp,
    failures: u32,
    last: Option<(Value, Timestamp, Timestamp)>,
    tsdb: Vec<TsdbSpec>,
    samples: Vec<(usize, f64)>,
}

#[derive(Default)]
struct State {
    targets: BTreeMap<String, Registered>,
    created: BTreeMap<String, u64>,
    pending: Vec<MonitoringWrite>,
}

/// The in-process CollectorAgent.
pub struct Collector {
    registry: Arc<dyn DeviceRegistry>,
    clock: Arc<dyn Clock>,
    config: CollectorConfig,
    ids: SeededIds,
    state: Mutex<State>,
    wake: tokio::sync::Notify,
}

impl fmt::Debug for Collector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Collector")
            .field("targets", &self.lock().targets.len())
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// What one poll of one target gave.
struct Polled {
    id: String,
    observation: Observation,
    metrics: Option<Vec<(String, f64)>>,
}

/// The outcome of one poll of one target.
#[derive(Debug, Clone)]
enum Observation {
    Status(Value),
    Failed(String),
    Skip,
}

fn text(v: &Value, field: &str) -> Option<String> {
    match v.get(field)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn port_of(v: &Value) -> Option<u16> {
    match v.get("port")? {
        Value::Number(n) => n.as_u64().and_then(|p| u16::try_from(p).ok()),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

impl Collector {
    /// A collector polling through `registry`, reading creation times from `clock`.
    pub fn new(
        registry: Arc<dyn DeviceRegistry>,
        clock: Arc<dyn Clock>,
        config: CollectorConfig,
    ) -> Self {
        Collector {
            registry,
            clock,
            ids: SeededIds::new(config.seed),
            config,
            state: Mutex::new(State::default()),
            wake: tokio::sync::Notify::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `POST /targets`: registers a target (the resolved properties of a MonitoringTarget
    /// resource) and returns the `201` body: the request plus `id`, `created_at`, `monitorer`,
    /// `link`, with secrets masked (decision O3).
    pub fn register(&self, request: &Value) -> Result<Value, CollectorError> {
        let (id, full, created) = self.new_target(request)?;
        let target = MonitoringTarget::from_value(&full)?;
        let sync = EtcdSync::new(&target, None)?;
        let mut response = full;
        redact(&mut response);
        tracing::debug!(target = %target.label(), id = %id, kind = %target.target_type, "monitoring target registered");
        let next_due = self.first_due(&id, created);
        self.lock().targets.insert(
            id,
            Registered {
                tsdb: tsdb_specs(request),
                body: request.clone(),
                response: response.clone(),
                sync,
                next_due,
                failures: 0,
                last: None,
                samples: Vec::new(),
            },
        );
        self.wake.notify_one();
        Ok(response)
    }

    /// A new target document for `request` (id, `created_at`, `monitorer`, `link`; secrets
    /// included) without registering it here: what a registry shared between processes
    /// stores. The second value is the `201` body (secrets masked).
    pub fn prepare(&self, request: &Value) -> Result<(Value, Value), CollectorError> {
        let (_, full, _) = self.new_target(request)?;
        let target = MonitoringTarget::from_value(&full)?;
        EtcdSync::new(&target, None)?;
        let mut response = full.clone();
        redact(&mut response);
        Ok((full, response))
    }

    fn new_target(&self, request: &Value) -> Result<(String, Value, Timestamp), CollectorError> {
        let now = self.clock.now();
        let created = Timestamp(now.unix_seconds().saturating_mul(1_000_000_000));
        let created_at = rfc3339_seconds(created);
        let identity: Vec<String> = ["resource_type", "resource_id", "field_name", "version"]
            .iter()
            .map(|f| text(request, f).unwrap_or_default())
            .collect();
        let mut st = self.lock();
        let key = identity.join("/");
        let n = st.created.get(&key).copied().unwrap_or(0);
        let mut parts: Vec<&str> = vec!["target"];
        parts.extend(identity.iter().map(String::as_str));
        let count = n.to_string();
        parts.push(&count);
        let id = self.ids.uuid(&parts);
        let full = target_response(request, &id, &created_at, &self.config.monitorer);
        // refuse a malformed target before counting it
        let target = MonitoringTarget::from_value(&full)?;
        EtcdSync::new(&target, None)?;
        st.created.insert(key, n + 1);
        Ok((id, full, created))
    }

    /// Completes when a target was registered or adopted since the last call (the poll loop
    /// recomputes its next wake-up).
    pub async fn changed(&self) {
        self.wake.notified().await;
    }

    /// One interval after creation (monitoring.md §3), plus the target's phase.
    fn first_due(&self, id: &str, created: Timestamp) -> Timestamp {
        let interval = self.config.interval_secs;
        let phase = self.config.jitter.clamp(0.0, 1.0) * interval * phase_of(id);
        created.plus_seconds(interval + phase)
    }

    /// Takes over a target registered elsewhere (another process, a stored registry):
    /// `doc` is the stored document (the request with `id` and `created_at`, secrets
    /// included). Its hold window still starts at the recorded `created_at`; its first poll is
    /// one interval after creation, or now when that has passed. `etcd_value` is what its
    /// `/monitoring` key holds now (so an unchanged status is not written again). Adopting an
    /// id already present does nothing.
    pub fn adopt(&self, doc: &Value, etcd_value: Option<Value>) -> Result<String, CollectorError> {
        let target = MonitoringTarget::from_value(doc)?;
        let id = target.id.clone().ok_or_else(|| CollectorError::Malformed {
            target: target.label(),
            reason: "stored target without an id".into(),
        })?;
        let created = target.created_at.unwrap_or_else(|| self.clock.now());
        let mut sync = EtcdSync::new(&target, etcd_value)?;
        if let Some(s) = sync.as_mut() {
            s.resume();
        }
        let mut response = doc.clone();
        redact(&mut response);
        let mut body = doc.clone();
        if let Value::Object(m) = &mut body {
            m.remove("id");
            m.remove("created_at");
            m.remove("monitorer");
            m.remove("link");
        }
        let next_due = self.first_due(&id, created);
        let mut st = self.lock();
        if st.targets.contains_key(&id) {
            return Ok(id);
        }
        tracing::debug!(target = %target.label(), id = %id, "monitoring target adopted");
        st.targets.insert(
            id.clone(),
            Registered {
                tsdb: tsdb_specs(&body),
                body,
                response,
                sync,
                next_due,
                failures: 0,
                last: None,
                samples: Vec::new(),
            },
        );
        drop(st);
        self.wake.notify_one();
        Ok(id)
    }

    /// Stops polling a target without deleting its `/monitoring` key (another process takes
    /// it over). `false` for an unknown id.
    pub fn release(&self, id: &str) -> bool {
        self.lock().targets.remove(id).is_some()
    }

    /// The stored form of a registered target: the request with `id`, `created_at`,
    /// `monitorer` and `link`, **secrets included** (what another process needs to poll it;
    /// never returned by the API).
    pub fn stored_document(&self, id: &str) -> Option<Value> {
        let st = self.lock();
        let t = st.targets.get(id)?;
        let mut doc = t.body.clone();
        if let (Value::Object(m), Value::Object(r)) = (&mut doc, &t.response) {
            for f in ["id", "created_at", "monitorer", "link"] {
                if let Some(v) = r.get(f) {
                    m.insert(f.into(), v.clone());
                }
            }
        }
        Some(doc)
    }

    /// The last tsdb results of every target (with [`CollectorConfig::tsdb`]).
    pub fn tsdb_samples(&self) -> Vec<TsdbSample> {
        let st = self.lock();
        let mut out = Vec::new();
        for (id, t) in &st.targets {
            for (i, value) in &t.samples {
                if let Some(spec) = t.tsdb.get(*i) {
                    out.push(TsdbSample {
                        target: id.clone(),
                        key: spec.key.clone(),
                        metric: spec.metric.clone(),
                        tags: spec.tags.clone(),
                        value: *value,
                    });
                }
            }
        }
        out
    }

    /// `DELETE /targets/<id>`: stops polling; the target's `/monitoring` key is deleted (the
    /// delete is returned by the next poll). `false` for an unknown id (the agent's `404`,
    /// which Heat treats as success).
    pub fn unregister(&self, id: &str) -> bool {
        let mut st = self.lock();
        let Some(mut t) = st.targets.remove(id) else {
            return false;
        };
        if let Some(w) = t.sync.as_mut().and_then(EtcdSync::delete) {
            st.pending.push(w);
        }
        tracing::debug!(id, "monitoring target deleted");
        true
    }

    /// `GET /targets/<id>`: the target document (secrets masked) with `values` once polled.
    pub fn target(&self, id: &str) -> Option<Value> {
        let st = self.lock();
        let t = st.targets.get(id)?;
        let mut doc = t.response.clone();
        if let (Some((value, reported, changed)), Value::Object(m)) = (&t.last, &mut doc) {
            m.insert(
                "values".into(),
                json!([{"reporter": "esi-collector", "key": "status", "value": value,
                        "last_reported": rfc3339_seconds(*reported),
                        "last_changed": rfc3339_seconds(*changed),
                        "fail_counter": t.failures}]),
            );
        }
        Some(doc)
    }

    /// Ids of the registered targets (sorted).
    pub fn target_ids(&self) -> Vec<String> {
        self.lock().targets.keys().cloned().collect()
    }

    /// Seconds between polls of a target.
    pub fn interval_secs(&self) -> f64 {
        self.config.interval_secs
    }

    /// When the next target is due, if any target is polled for etcd.
    pub fn next_due(&self) -> Option<Timestamp> {
        let tsdb = self.config.tsdb;
        self.lock()
            .targets
            .values()
            .filter(|t| t.sync.is_some() || (tsdb && !t.tsdb.is_empty()))
            .map(|t| t.next_due)
            .min()
    }

    /// Polls every target due at `now` and returns the etcd writes, deletes of unregistered
    /// targets first.
    pub async fn poll(&self, now: Timestamp) -> Vec<MonitoringWrite> {
        self.poll_targets(now, false).await
    }

    /// Polls every target now, due or not (for runs that do not simulate time).
    pub async fn poll_all(&self, now: Timestamp) -> Vec<MonitoringWrite> {
        self.poll_targets(now, true).await
    }

    async fn poll_targets(&self, now: Timestamp, all: bool) -> Vec<MonitoringWrite> {
        let tsdb = self.config.tsdb;
        let (mut writes, due): (Vec<MonitoringWrite>, Vec<(String, Value, bool)>) = {
            let mut st = self.lock();
            let due = st
                .targets
                .iter()
                .filter(|(_, t)| {
                    (t.sync.is_some() || (tsdb && !t.tsdb.is_empty())) && (all || t.next_due <= now)
                })
                .map(|(id, t)| (id.clone(), t.body.clone(), tsdb && !t.tsdb.is_empty()))
                .collect();
            (std::mem::take(&mut st.pending), due)
        };
        let mut groups: BTreeMap<String, Vec<(String, Value, bool)>> = BTreeMap::new();
        for (id, body, metrics) in due {
            groups
                .entry(group_key(&id, &body))
                .or_default()
                .push((id, body, metrics));
        }
        let mut results: Vec<Polled> = futures_util::stream::iter(groups.into_values())
            .map(|g| self.poll_group(g))
            .buffer_unordered(self.config.max_concurrent.max(1))
            .flat_map(futures_util::stream::iter)
            .collect()
            .await;
        results.sort_by(|a, b| a.id.cmp(&b.id));
        for Polled {
            id,
            observation,
            metrics,
        } in results
        {
            let mut st = self.lock();
            let threshold = self.config.fail_threshold.max(1);
            let interval = self.config.interval_secs;
            let Some(t) = st.targets.get_mut(&id) else {
                continue; // unregistered while polling
            };
            while t.next_due <= now {
                t.next_due = t.next_due.plus_seconds(interval.max(0.05));
            }
            if let Some(m) = metrics {
                t.samples = t
                    .tsdb
                    .iter()
                    .enumerate()
                    .filter_map(|(i, spec)| {
                        m.iter().find(|(k, _)| *k == spec.key).map(|(_, v)| (i, *v))
                    })
                    .collect();
            }
            if t.sync.is_none() {
                continue;
            }
            let status = match observation {
                Observation::Skip => continue,
                Observation::Status(s) => {
                    t.failures = 0;
                    s
                }
                Observation::Failed(reason) => {
                    t.failures += 1;
                    tracing::debug!(id = %id, failures = t.failures, reason = %reason, "poll failed");
                    if t.failures < threshold {
                        continue;
                    }
                    Value::String("FAIL".into())
                }
            };
            let changed = match &t.last {
                Some((prev, _, changed)) if *prev == status => *changed,
                _ => now,
            };
            t.last = Some((status.clone(), now, changed));
            if let Some(w) = t.sync.as_mut().and_then(|s| s.next(&status, now)) {
                writes.push(w);
            }
        }
        writes
    }

    /// Polls every target of one device (one group): port targets with one batched status
    /// request, the others one by one.
    async fn poll_group(&self, group: Vec<(String, Value, bool)>) -> Vec<Polled> {
        let kind_of = |b: &Value| {
            b.get("type")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        let all_ports = group.iter().all(|(_, b, _)| is_port_type(&kind_of(b)));
        if !all_ports {
            let mut out = Vec::with_capacity(group.len());
            for (id, body, metrics) in group {
                let observation = self.observe(&body).await;
                let metrics = if metrics {
                    self.poll_metrics(&body, None).await
                } else {
                    None
                };
                out.push(Polled {
                    id,
                    observation,
                    metrics,
                });
            }
            return out;
        }
        let props = group
            .first()
            .and_then(|(_, b, _)| b.get("properties").cloned())
            .unwrap_or(Value::Null);
        let community = Credentials::Community(Secret::new(
            text(&props, "community_name").unwrap_or_default(),
        ));
        let device = match self
            .connect(text(&props, "device_ip"), None, community)
            .await
        {
            Ok(d) => d,
            Err(e) => {
                return group
                    .into_iter()
                    .map(|(id, body, _)| Polled {
                        observation: if kind_of(&body) == "snmp_ports_metric" {
                            Observation::Skip
                        } else {
                            Observation::Failed(e.clone())
                        },
                        id,
                        metrics: None,
                    })
                    .collect()
            }
        };
        let name_of = |b: &Value| {
            b.get("properties")
                .and_then(|p| text(p, "if_name"))
                .unwrap_or_default()
        };
        let status_of: Vec<usize> = group
            .iter()
            .enumerate()
            .filter(|(_, (_, b, _))| kind_of(b) != "snmp_ports_metric")
            .map(|(i, _)| i)
            .collect();
        let names: Vec<String> = status_of.iter().map(|i| name_of(&group[*i].1)).collect();
        let statuses = if names.is_empty() {
            Vec::new()
        } else {
            device.interface_statuses(&names).await
        };
        let mut observations: Vec<Observation> = vec![Observation::Skip; group.len()];
        for (i, r) in status_of.iter().zip(statuses) {
            observations[*i] = match r {
                Ok(s) => Observation::Status(s.as_str().into()),
                Err(e) => Observation::Failed(e.to_string()),
            };
        }
        let mut out = Vec::with_capacity(group.len());
        for ((id, body, metrics), observation) in group.into_iter().zip(observations) {
            let metrics = if metrics {
                let name = name_of(&body);
                device
                    .metrics(&kind_of(&body), Some(&name))
                    .await
                    .map_err(|e| tracing::debug!(id = %id, error = %e, "tsdb poll failed"))
                    .ok()
            } else {
                None
            };
            out.push(Polled {
                id,
                observation,
                metrics,
            });
        }
        out
    }

    /// The tsdb results of a non-port target (`snmp_device_fw`, `snmp_device_lb`).
    async fn poll_metrics(
        &self,
        body: &Value,
        interface: Option<&str>,
    ) -> Option<Vec<(String, f64)>> {
        let kind = body.get("type").and_then(Value::as_str).unwrap_or("");
        if !kind.starts_with("snmp_") {
            return None;
        }
        let props = body.get("properties").cloned().unwrap_or(Value::Null);
        let community = Credentials::Community(Secret::new(
            text(&props, "community_name").unwrap_or_default(),
        ));
        let device = self
            .connect(text(&props, "device_ip"), None, community)
            .await
            .ok()?;
        device
            .metrics(kind, interface)
            .await
            .map_err(|e| tracing::debug!(error = %e, "tsdb poll failed"))
            .ok()
    }

    async fn connect(
        &self,
        host: Option<String>,
        port: Option<u16>,
        credentials: Credentials,
    ) -> Result<Arc<dyn Device>, String> {
        let host = host.ok_or_else(|| "no device address".to_string())?;
        self.registry
            .connect(&DeviceAddress { host, port }, &credentials)
            .await
            .map_err(|e| e.to_string())
    }

    async fn observe(&self, body: &Value) -> Observation {
        let kind = body.get("type").and_then(Value::as_str).unwrap_or("");
        let props = body.get("properties").cloned().unwrap_or(Value::Null);
        let community = || {
            Credentials::Community(Secret::new(
                text(&props, "community_name").unwrap_or_default(),
            ))
        };
        match kind {
            "snmp_device" | "snmp_device_fw" | "snmp_device_lb" => {
                match self
                    .connect(text(&props, "device_ip"), None, community())
                    .await
                {
                    Ok(d) => match d.ping().await {
                        Ok(()) => Observation::Status("UP".into()),
                        Err(e) => Observation::Failed(e.to_string()),
                    },
                    Err(e) => Observation::Failed(e),
                }
            }
            "snmp_ports_status" | "snmp_ports" => {
                let if_name = text(&props, "if_name").unwrap_or_default();
                match self
                    .connect(text(&props, "device_ip"), None, community())
                    .await
                {
                    Ok(d) => match d.interface_status(&if_name).await {
                        Ok(s) => Observation::Status(s.as_str().into()),
                        Err(e) => Observation::Failed(e.to_string()),
                    },
                    Err(e) => Observation::Failed(e),
                }
            }
            "vrrp_pool" | "bgp_pool" => self.observe_pair(kind, &props).await,
            "virtual_machine_interface" | "compute" => Observation::Status("UP".into()),
            "snmp_ports_metric" | "igs_counter" => Observation::Skip,
            other => Observation::Failed(format!("unsupported target type {other}")),
        }
    }

    async fn observe_pair(&self, kind: &str, props: &Value) -> Observation {
        let vrids: Vec<u32> = match props.get("vrid") {
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(|v| match v {
                    Value::Number(n) => n.as_u64().and_then(|x| u32::try_from(x).ok()),
                    Value::String(s) => s.trim().parse().ok(),
                    _ => None,
                })
                .collect(),
            Some(Value::Number(n)) => n
                .as_u64()
                .and_then(|x| u32::try_from(x).ok())
                .into_iter()
                .collect(),
            _ => Vec::new(),
        };
        if kind == "vrrp_pool" && vrids.is_empty() {
            return Observation::Failed("vrrp_pool without vrid".into());
        }
        let mut status = Map::new();
        for role in ["primary", "secondary"] {
            let Some(r) = props.get(role) else {
                continue;
            };
            let credentials = Credentials::Login {
                username: text(r, "login").unwrap_or_default(),
                password: Secret::new(text(r, "password").unwrap_or_default()),
            };
            let device = self.connect(text(r, "host"), port_of(r), credentials).await;
            if kind == "bgp_pool" {
                let instance = text(props, "instance").unwrap_or_default();
                let peer = text(r, "peer_address").unwrap_or_default();
                let state = match &device {
                    Ok(d) => d
                        .bgp_peer_status(&instance, &peer)
                        .await
                        .map(|s| s.as_str().to_string())
                        .unwrap_or_else(|_| "FAIL".into()),
                    Err(_) => "FAIL".into(),
                };
                status.insert(role.into(), state.into());
                continue;
            }
            let interface = text(r, "interface").unwrap_or_default();
            for (i, vrid) in vrids.iter().enumerate() {
                let key = if vrids.len() == 1 {
                    role.to_string()
                } else {
                    format!("{role}_vrid{}", i + 1)
                };
                let state = match &device {
                    Ok(d) => d
                        .vrrp_status(&interface, *vrid)
                        .await
                        .map(|s| s.as_str().to_string())
                        .unwrap_or_else(|_| "FAIL".into()),
                    Err(_) => "FAIL".into(),
                };
                status.insert(key, state.into());
            }
        }
        if status.is_empty() {
            return Observation::Failed(format!("{kind} without primary/secondary"));
        }
        Observation::Status(Value::Object(status))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_adopted_target_keeps_its_hold_unless_a_positive_status_was_published() {
        use crate::device::SimFabric;
        let clock = Arc::new(ManualClock::new(
            Timestamp::parse("2026-01-01T00:00:00Z").unwrap(),
        ));
        let c = Collector::new(
            Arc::new(SimFabric::auto()),
            clock.clone(),
            CollectorConfig {
                interval_secs: 10.0,
                ..CollectorConfig::default()
            },
        );
        let doc = |rid: &str| {
            json!({"type": "snmp_ports_status", "resource_type": "ports", "resource_id": rid,
                   "version": 2, "field_name": "port", "id": format!("id-{rid}"),
                   "created_at": "2026-01-01T00:00:00Z",
                   "properties": {"community_name": "c", "device_ip": "10.0.0.1", "if_name": "nope-0/0/0"},
                   "syncer_properties": {"etcd": {"status": {"key": "port"},
                       "hold_options": {"positive_status": ["UP"], "time_seconds": 300}}}})
        };
        // a: nothing published yet: the failure is withheld inside the window
        c.adopt(&doc("a"), None).unwrap();
        // b: the previous poller published UP: the window is over, FAIL is written
        c.adopt(&doc("b"), Some(json!({"port": "UP", "version": 2})))
            .unwrap();
        assert_eq!(c.target_ids(), vec!["id-a".to_string(), "id-b".to_string()]);
        let mut writes = Vec::new();
        for s in [10, 20] {
            let now = Timestamp::parse("2026-01-01T00:00:00Z")
                .unwrap()
                .plus_seconds(f64::from(s));
            writes.extend(c.poll(now).await);
        }
        let keys: Vec<String> = writes.iter().map(|w| w.to_json().to_string()).collect();
        assert_eq!(writes.len(), 1, "{keys:?}");
        assert!(
            keys[0].contains("/monitoring/v2.0/ports/b") && keys[0].contains("FAIL"),
            "{keys:?}"
        );
        // released targets are not polled and keep their key
        assert!(c.release("id-b"));
        assert!(c.stored_document("id-b").is_none());
        assert!(c
            .stored_document("id-a")
            .is_some_and(|d| d["properties"]["community_name"] == json!("c")));
    }

    #[test]
    fn formats_rfc3339() {
        let t = Timestamp::parse("2018-04-16T00:12:47Z").unwrap();
        assert_eq!(rfc3339_seconds(t), "2018-04-16T00:12:47Z");
        let t = Timestamp::parse("1999-12-31T23:59:59.9Z").unwrap();
        assert_eq!(rfc3339_seconds(t), "1999-12-31T23:59:59Z");
        assert_eq!(rfc3339_seconds(Timestamp(0)), "1970-01-01T00:00:00Z");
    }
}
