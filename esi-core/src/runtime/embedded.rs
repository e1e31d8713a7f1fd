//! The embedded default end to end: a world on a [`crate::store::MemoryStore`], `LocalHeat`,
//! simulated routers and the collector, driven by the [`Simulation`] until quiet; then each
//! scripted change the same way. What `esi run` shows.

use super::sim::{Change, Faults, RunStats, SimConfig, Simulation};
use super::{decode_config, RuntimeError};
use crate::clock::{ManualClock, Timestamp};
use crate::collector::{Collector, CollectorConfig};
use crate::device::sim::SimFabric;
use crate::heat::local::LocalHeat;
use crate::keys;
use crate::model::ResourceRef;
use crate::plan::Scrubber;
use crate::store::Store;
use crate::world::World;
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;

/// One resource as the system left it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ResourceRow {
    /// Type.
    #[serde(rename = "type")]
    pub resource_type: String,
    /// Id.
    pub id: String,
    /// Config version (`None`: the resource was deleted).
    pub version: Option<u64>,
    /// `/state` worker_state (`CREATE_COMPLETED`, `READ_COMPLETE`, `*_ERROR` …).
    pub worker_state: Option<String>,
    /// `/state` orchestration_state (Heat's stack status).
    pub orchestration_state: Option<String>,
    /// The `/monitoring` document, if any.
    pub monitoring: Option<Value>,
    /// The `/state` error text (empty on success).
    pub error: Option<String>,
}

/// The system after one phase (the initial load, or one change).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Phase {
    /// What was applied.
    pub label: String,
    /// Every resource the run has seen, in submission order.
    pub resources: Vec<ResourceRow>,
    /// Each simulated router's configuration (secrets masked).
    pub devices: BTreeMap<String, String>,
    /// Faults injected during the phase.
    pub faults: Vec<String>,
}

/// Options of an embedded run.
#[derive(Debug, Clone, Default)]
pub struct EmbeddedOptions {
    /// Seed of every random choice.
    pub seed: u64,
    /// Faults to inject.
    pub faults: Faults,
}

/// Errors of an embedded run.
#[derive(Debug, thiserror::Error)]
pub enum EmbeddedError {
    /// The runtime failed.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    /// A change was refused by the API (`change` is its position, 1-based).
    #[error("change {change}: {source}")]
    Change {
        /// Position in the script.
        change: usize,
        /// Why.
        #[source]
        source: super::api::ApiError,
    },
}

/// The embedded backends: simulated routers, the collector polling them, and `LocalHeat` with
/// the NETCONF and monitoring plug-ins. `esi run` drives them with the simulation, `esi serve
/// --heat local --devices sim` with the real-time driver.
pub struct LocalBackends {
    /// The simulated routers.
    pub fabric: Arc<SimFabric>,
    /// The collector (targets registered by the monitoring plug-in).
    pub collector: Arc<Collector>,
    /// Local Heat.
    pub heat: Arc<LocalHeat>,
}

impl LocalBackends {
    /// Builds them; `devices` may wrap the device registry (metrics).
    pub fn new(
        seed: u64,
        clock: Arc<dyn crate::clock::Clock>,
        devices: impl FnOnce(
            Arc<dyn crate::device::DeviceRegistry>,
        ) -> Arc<dyn crate::device::DeviceRegistry>,
    ) -> Self {
        let fabric = Arc::new(SimFabric::auto());
        let (collector, heat) = Self::over(seed, clock, devices(fabric.clone()));
        LocalBackends {
            fabric,
            collector,
            heat,
        }
    }

    /// The collector and a `LocalHeat` whose plug-ins drive `registry` (simulated routers, or
    /// real ones over NETCONF).
    pub fn over(
        seed: u64,
        clock: Arc<dyn crate::clock::Clock>,
        registry: Arc<dyn crate::device::DeviceRegistry>,
    ) -> (Arc<Collector>, Arc<LocalHeat>) {
        let collector = Arc::new(Collector::new(
            registry.clone(),
            clock,
            CollectorConfig {
                seed,
                ..CollectorConfig::default()
            },
        ));
        let heat = Arc::new(LocalHeat::embedded(seed, registry, collector.clone()));
        (collector, heat)
    }
}

/// Runs a world and then the changes; returns the state after the load and after each change.
pub async fn run(
    world: &World,
    changes: &[Change],
    options: &EmbeddedOptions,
) -> Result<Vec<Phase>, EmbeddedError> {
    run_with_progress(world, changes, options, &mut |_, _, _| {}).await
}

/// [`run`], calling `progress(label, done, total)` before each phase starts and once at the end
/// (`done == total`): what a progress bar shows.
pub async fn run_with_progress(
    world: &World,
    changes: &[Change],
    options: &EmbeddedOptions,
    progress: &mut (dyn FnMut(&str, usize, usize) + Send),
) -> Result<Vec<Phase>, EmbeddedError> {
    let total = changes.len() + 1;
    progress("load", 0, total);
    let catalog = Arc::new(world.catalog.clone());
    let config = SimConfig {
        seed: options.seed,
        faults: options.faults,
        ..SimConfig::default()
    };
    // The collector shares the simulation's clock, so hold windows and poll times agree.
    let clock = Arc::new(ManualClock::new(Timestamp(0)));
    let LocalBackends {
        fabric,
        collector,
        heat,
    } = LocalBackends::new(options.seed, clock.clone(), |d| d);
    let mut sim = Simulation::with_clock(catalog, heat.clone(), config, clock)
        .await?
        .with_collector(collector);

    // Everything printed is scrubbed of known secret values: secret-named body fields, and the
    // values of hidden / secret-named stack parameters (routers keep them in clear text).
    let mut scrubber = Scrubber::new();
    for r in world.resources.iter() {
        scrubber.add_secret_members(&r.body);
    }
    for c in changes {
        if let Change::Create { body, .. } | Change::Modify { body, .. } = c {
            scrubber.add_secret_members(body);
        }
    }
    let mut seen: Vec<ResourceRef> = world.processing_order();
    sim.submit_world(world)
        .await
        .map_err(|source| EmbeddedError::Change { change: 0, source })?;
    let stats = sim.run_until_quiet().await?;
    let mut phases = vec![snapshot(&sim, world, &seen, &fabric, "load", stats).await?];
    heat.secret_parameter_values()
        .iter()
        .for_each(|v| scrubber.add(v));
    for (i, change) in changes.iter().enumerate() {
        let (label, key) = match change {
            Change::Create {
                resource_type, id, ..
            } => (
                format!("create {resource_type}/{id}"),
                ResourceRef::new(resource_type, id),
            ),
            Change::Modify {
                resource_type, id, ..
            } => (
                format!("modify {resource_type}/{id}"),
                ResourceRef::new(resource_type, id),
            ),
            Change::Delete { resource_type, id } => (
                format!("delete {resource_type}/{id}"),
                ResourceRef::new(resource_type, id),
            ),
        };
        if !seen.contains(&key) {
            seen.push(key);
        }
        progress(&label, i + 1, total);
        sim.apply(change)
            .await
            .map_err(|source| EmbeddedError::Change {
                change: i + 1,
                source,
            })?;
        let stats = sim.run_until_quiet().await?;
        phases.push(snapshot(&sim, world, &seen, &fabric, &label, stats).await?);
        heat.secret_parameter_values()
            .iter()
            .for_each(|v| scrubber.add(v));
    }
    for p in &mut phases {
        scrub(&scrubber, p);
    }
    progress("done", total, total);
    Ok(phases)
}

fn scrub(s: &Scrubber, p: &mut Phase) {
    for text in p.devices.values_mut() {
        *text = s.text(text);
    }
    for r in &mut p.resources {
        if let Some(e) = &mut r.error {
            *e = s.text(e);
        }
        if let Some(m) = &mut r.monitoring {
            s.value(m);
        }
    }
}

async fn snapshot(
    sim: &Simulation,
    world: &World,
    seen: &[ResourceRef],
    fabric: &SimFabric,
    label: &str,
    stats: RunStats,
) -> Result<Phase, RuntimeError> {
    let store: &dyn Store = sim.store().as_ref();
    let mut resources = Vec::with_capacity(seen.len());
    for key in seen {
        let Some(schema) = world.catalog.schemas.get(&key.resource_type) else {
            continue;
        };
        let json = |v: Option<crate::store::KeyValue>| {
            v.and_then(|kv| serde_json::from_str::<Value>(&kv.value).ok())
        };
        let config = store.get(&schema.config_key(&key.resource_id)).await?;
        let version = config
            .and_then(|kv| decode_config(&kv.value).ok())
            .map(|c| c.version);
        let state = json(
            store
                .get(&keys::state(&schema.prefix, &key.resource_id))
                .await?,
        );
        let monitoring = json(
            store
                .get(&keys::monitoring(&schema.plural, &key.resource_id))
                .await?,
        );
        let text = |v: &Option<Value>, p: &str| {
            v.as_ref()
                .and_then(|s| s.pointer(p))
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        resources.push(ResourceRow {
            resource_type: key.resource_type.clone(),
            id: key.resource_id.clone(),
            version,
            worker_state: text(&state, "/state/worker_state"),
            orchestration_state: text(&state, "/state/orchestration_state"),
            monitoring,
            error: text(&state, "/error"),
        });
    }
    Ok(Phase {
        label: label.to_string(),
        resources,
        devices: fabric.configurations(),
        faults: stats.faults,
    })
}
