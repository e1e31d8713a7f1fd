//! The runtime on MemoryStore: end states, the job queue draining, idempotency, faults.

use crate::fixture;
use async_trait::async_trait;
use esi_core::exec::stack::StackRequest;
use esi_core::heat::{Heat, HeatError, StackOutcome};
use esi_core::runtime::sim::{Change, Faults, SimConfig, Simulation};
use esi_core::store::Store;
use esi_core::World;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// A recording Heat: every operation succeeds (or fails as told), stacks are kept by name.
#[derive(Default)]
struct RecordingHeat {
    inner: Mutex<Recorded>,
}

#[derive(Default)]
struct Recorded {
    stacks: BTreeMap<String, Value>,
    /// Creates that made a new stack, per name.
    created: BTreeMap<String, usize>,
    ops: Vec<String>,
    fail_next: BTreeMap<String, usize>,
}

impl RecordingHeat {
    fn fail(&self, stack_prefix: &str, times: usize) {
        self.lock()
            .fail_next
            .insert(stack_prefix.to_string(), times);
    }
    fn lock(&self) -> std::sync::MutexGuard<'_, Recorded> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
    fn outcome(&self, op: &str, req: &StackRequest) -> StackOutcome {
        let mut g = self.lock();
        g.ops.push(format!("{op} {}", req.stack_name));
        let failing = g
            .fail_next
            .iter_mut()
            .find(|(p, n)| req.stack_name.starts_with(p.as_str()) && **n > 0);
        if let Some((_, n)) = failing {
            *n -= 1;
            return StackOutcome {
                status: format!("{}_FAILED", op.to_uppercase()),
                reason: "injected failure".into(),
                outputs: vec![],
            };
        }
        if !g.stacks.contains_key(&req.stack_name) {
            *g.created.entry(req.stack_name.clone()).or_default() += 1;
        }
        g.stacks.insert(
            req.stack_name.clone(),
            Value::Object(req.request_parameters.clone()),
        );
        StackOutcome {
            status: format!("{}_COMPLETE", op.to_uppercase()),
            reason: format!("Stack {} completed successfully", op.to_uppercase()),
            outputs: vec![
                json!({"output_key": "id", "output_value": req.stack_name, "description": "id"}),
                json!({"output_key": "fq_name", "output_value": ["default", req.stack_name], "description": "fq name"}),
            ],
        }
    }
}

#[async_trait]
impl Heat for RecordingHeat {
    async fn create(&self, r: &StackRequest) -> Result<StackOutcome, HeatError> {
        Ok(self.outcome("create", r))
    }
    async fn update(&self, r: &StackRequest) -> Result<StackOutcome, HeatError> {
        Ok(self.outcome("update", r))
    }
    async fn delete(&self, name: &str) -> Result<StackOutcome, HeatError> {
        let mut g = self.lock();
        g.ops.push(format!("delete {name}"));
        g.stacks.remove(name);
        Ok(StackOutcome {
            status: "DELETE_COMPLETE".into(),
            reason: "Stack DELETE completed successfully".into(),
            outputs: vec![],
        })
    }
    async fn get(&self, name: &str) -> Result<Option<StackOutcome>, HeatError> {
        Ok(self.lock().stacks.get(name).map(|_| StackOutcome {
            status: "CREATE_COMPLETE".into(),
            reason: String::new(),
            outputs: vec![],
        }))
    }
}

async fn state_of(store: &dyn Store, key: &str) -> Option<Value> {
    store
        .get(key)
        .await
        .ok()
        .flatten()
        .and_then(|kv| serde_json::from_str(&kv.value).ok())
}

async fn assert_quiet_queue(store: &dyn Store) {
    let (jobs, _) = store.range("/jobs/").await.expect("range");
    assert!(
        jobs.is_empty(),
        "job records left behind: {:?}",
        jobs.iter().map(|k| &k.key).collect::<Vec<_>>()
    );
}

/// The fixture world without the router's `self_id` (its own stack output, which cannot exist
/// before the stack does: the worker rightly records that as an error).
fn runnable_world() -> World {
    let mut doc = fixture::document();
    if let Some(m) = doc["heat_templates"]["router"]["parameter_mappings"].as_object_mut() {
        m.remove("self_id");
    }
    World::from_json(&doc).expect("loads")
}

async fn run_fixture(seed: u64, faults: Faults, heat: Arc<RecordingHeat>) -> (Simulation, World) {
    let (sim, world, _) = run_fixture_stats(seed, faults, heat).await;
    (sim, world)
}

async fn run_fixture_stats(
    seed: u64,
    faults: Faults,
    heat: Arc<RecordingHeat>,
) -> (Simulation, World, Vec<String>) {
    let world = runnable_world();
    let catalog = Arc::new(world.catalog.clone());
    let config = SimConfig {
        seed,
        faults,
        ..SimConfig::default()
    };
    let mut sim = Simulation::new(catalog, heat, config).await.expect("sim");
    sim.submit_world(&world).await.expect("submit");
    let stats = sim.run_until_quiet().await.expect("quiet");
    (sim, world, stats.faults)
}

async fn assert_final_states(sim: &Simulation, world: &World) {
    let store: &dyn Store = sim.store().as_ref();
    for r in world.resources.iter() {
        let schema = &world.catalog.schemas[&r.key.resource_type];
        let st = state_of(
            store,
            &esi_core::keys::state(&schema.prefix, &r.key.resource_id),
        )
        .await
        .unwrap_or_else(|| panic!("no state for {}", r.key));
        let ws = st["state"]["worker_state"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let workable = ["router", "pair", "uplink", "net", "subnet"]
            .contains(&r.key.resource_type.as_str())
            || r.key.resource_id == fixture::VPORT;
        let want = if workable {
            "CREATE_COMPLETED"
        } else {
            "READ_COMPLETE"
        };
        assert_eq!(ws, want, "{}: {st}", r.key);
        assert_eq!(st["version"], json!(1), "{}", r.key);
    }
    assert_quiet_queue(store).await;
}

#[tokio::test]
async fn a_world_runs_to_its_final_state() {
    let heat = Arc::new(RecordingHeat::default());
    let (sim, world) = run_fixture(1, Faults::default(), heat.clone()).await;
    assert_final_states(&sim, &world).await;
    let g = heat.lock();
    assert_eq!(
        g.created.len(),
        8,
        "two routers, pair, uplink, net, two subnets, compute port: {:?}",
        g.created
    );
    assert!(
        g.created.values().all(|n| *n == 1),
        "each stack created once: {:?}",
        g.created
    );
    // output_key params were resolved from the stored stack outputs of earlier stacks
    let subnet = &g.stacks[&format!("subnet_{}", fixture::SUB1)];
    assert_eq!(subnet["network"], json!(format!("net_{}", fixture::NET)));
}

#[tokio::test]
async fn faults_do_not_change_the_outcome() {
    let mut injected: Vec<String> = Vec::new();
    for seed in 0..12u64 {
        let heat = Arc::new(RecordingHeat::default());
        heat.fail("pair_", 1);
        let faults = Faults {
            drop_worker_mid_job: true,
            duplicate_config_event: true,
            manager_loses_lease: true,
        };
        let (sim, world, faults) = run_fixture_stats(seed, faults, heat.clone()).await;
        assert_final_states(&sim, &world).await;
        let g = heat.lock();
        assert!(
            g.created.values().all(|n| *n == 1),
            "seed {seed}: each stack created once: {:?}",
            g.created
        );
        assert_eq!(g.created.len(), 8, "seed {seed}");
        assert!(
            g.ops
                .iter()
                .filter(|o| o.starts_with("create pair_"))
                .count()
                >= 2,
            "seed {seed}: the pair's stack failed once and was retried"
        );
        injected.extend(faults);
    }
    for kind in ["mid-job", "duplicated the event", "leader's lease"] {
        let n = injected.iter().filter(|f| f.contains(kind)).count();
        assert!(
            n >= 6,
            "fault `{kind}` injected in only {n} of 12 runs: {injected:?}"
        );
    }
}

#[tokio::test]
async fn same_seed_same_run() {
    let trace = |heat: &RecordingHeat| heat.lock().ops.clone();
    let faults = Faults {
        drop_worker_mid_job: true,
        duplicate_config_event: true,
        manager_loses_lease: true,
    };
    let (h1, h2) = (
        Arc::new(RecordingHeat::default()),
        Arc::new(RecordingHeat::default()),
    );
    let _ = run_fixture(5, faults, h1.clone()).await;
    let _ = run_fixture(5, faults, h2.clone()).await;
    assert_eq!(trace(&h1), trace(&h2));
}

#[tokio::test]
async fn modify_and_two_step_delete() {
    let heat = Arc::new(RecordingHeat::default());
    let (mut sim, world) = run_fixture(3, Faults::default(), heat.clone()).await;
    let store: Arc<dyn Store> = sim.store().clone();
    sim.apply(&Change::Modify {
        resource_type: "router".into(),
        id: fixture::R1.into(),
        body: json!({"hostname": "er-1b"}),
    })
    .await
    .expect("modify");
    sim.run_until_quiet().await.expect("quiet");
    let st = state_of(
        store.as_ref(),
        &format!("/state/v2.0/routers/{}", fixture::R1),
    )
    .await
    .expect("state");
    assert_eq!(st["state"]["worker_state"], json!("MODIFY_COMPLETED"));
    assert_eq!(st["version"], json!(2));
    assert_eq!(
        heat.lock().stacks[&format!("router_{}", fixture::R1)]["hostname"],
        json!("er-1b")
    );

    sim.apply(&Change::Delete {
        resource_type: "vport".into(),
        id: fixture::VPORT.into(),
    })
    .await
    .expect("delete");
    sim.run_until_quiet().await.expect("quiet");
    let key = |p: &str| format!("{p}/v2.0/vports/{}", fixture::VPORT);
    assert!(
        store.get(&key("/config")).await.expect("get").is_none(),
        "config removed by the API step"
    );
    assert!(
        store.get(&key("/state")).await.expect("get").is_none(),
        "state removed"
    );
    assert!(
        store
            .get(&key("/esi-worker/config"))
            .await
            .expect("get")
            .is_none(),
        "cache removed"
    );
    assert!(store
        .get(&format!(
            "/esi-worker/heat_stacks/v2.0/vports/{}",
            fixture::VPORT
        ))
        .await
        .expect("get")
        .is_none());
    assert!(
        !heat
            .lock()
            .stacks
            .contains_key(&format!("vport_{}", fixture::VPORT)),
        "stack deleted"
    );
    assert_quiet_queue(store.as_ref()).await;
    let _ = world;
}

#[tokio::test]
async fn a_stack_that_keeps_failing_is_left_in_an_error_state_and_nothing_else_breaks() {
    let heat = Arc::new(RecordingHeat::default());
    heat.fail("pair_", 99);
    let (sim, _) = run_fixture(2, Faults::default(), heat.clone()).await;
    let store: &dyn Store = sim.store().as_ref();
    let st = state_of(store, &format!("/state/v2.0/pairs/{}", fixture::PAIR))
        .await
        .expect("state");
    assert_eq!(st["state"]["worker_state"], json!("CREATE_ERROR"), "{st}");
    assert!(
        st["error"]
            .as_str()
            .unwrap_or_default()
            .contains("injected failure"),
        "{st}"
    );
    let attempts = heat
        .lock()
        .ops
        .iter()
        .filter(|o| o.starts_with("create pair_"))
        .count();
    assert_eq!(attempts, 3, "retried up to the limit");
    // the uplink depends on the pair: not run, its state says why
    let up = state_of(store, &format!("/state/v2.0/uplinks/{}", fixture::UPLINK))
        .await
        .expect("state");
    assert_eq!(up["state"]["worker_state"], json!("CREATE_ERROR"), "{up}");
    assert!(
        up["error"]
            .as_str()
            .unwrap_or_default()
            .contains("dependency"),
        "{up}"
    );
    // everything else completed
    let net = state_of(store, &format!("/state/v2.0/nets/{}", fixture::NET))
        .await
        .expect("state");
    assert_eq!(net["state"]["worker_state"], json!("CREATE_COMPLETED"));
    assert_quiet_queue(store).await;
}

#[tokio::test]
async fn a_job_naming_a_missing_output_fails_with_a_clear_error() {
    let world = fixture::world(); // the router template reads its own (not yet existing) output
    let heat = Arc::new(RecordingHeat::default());
    let mut sim = Simulation::new(Arc::new(world.catalog.clone()), heat, SimConfig::default())
        .await
        .expect("sim");
    sim.submit_world(&world).await.expect("submit");
    sim.run_until_quiet().await.expect("quiet");
    let st = state_of(
        sim.store().as_ref(),
        &format!("/state/v2.0/routers/{}", fixture::R1),
    )
    .await
    .expect("state");
    assert_eq!(st["state"]["worker_state"], json!("CREATE_ERROR"));
    let err = st["error"].as_str().unwrap_or_default();
    assert!(
        err.contains("self_id") && err.contains(fixture::R1),
        "{err}"
    );
    assert_quiet_queue(sim.store().as_ref()).await;
}

#[tokio::test]
async fn a_malformed_resource_is_recorded_and_the_manager_goes_on() {
    let heat = Arc::new(RecordingHeat::default());
    let (mut sim, _) = run_fixture(4, Faults::default(), heat).await;
    let store: Arc<dyn Store> = sim.store().clone();
    store
        .put(
            "/config/v2.0/nets/broken-1",
            "{\"body\": \"{not json\", \"version\": 1}",
            esi_core::store::PutMode::Overwrite,
            None,
        )
        .await
        .expect("put");
    sim.apply(&Change::Create {
        resource_type: "net".into(),
        id: "net-after".into(),
        body: json!({"id": "net-after", "name": "after", "pools": []}),
    })
    .await
    .expect("create");
    sim.run_until_quiet().await.expect("quiet");
    let bad = state_of(store.as_ref(), "/state/v2.0/nets/broken-1")
        .await
        .expect("error recorded");
    assert_eq!(bad["state"]["worker_state"], json!("READ_ERROR"));
    assert!(
        bad["error"]
            .as_str()
            .unwrap_or_default()
            .contains("net/broken-1"),
        "{bad}"
    );
    let good = state_of(store.as_ref(), "/state/v2.0/nets/net-after")
        .await
        .expect("state");
    assert_eq!(good["state"]["worker_state"], json!("CREATE_COMPLETED"));
}

#[tokio::test]
async fn an_operator_retries_a_failed_resource_by_changing_it() {
    let heat = Arc::new(RecordingHeat::default());
    heat.fail("pair_", 99);
    let (mut sim, _) = run_fixture(6, Faults::default(), heat.clone()).await;
    let store: Arc<dyn Store> = sim.store().clone();
    let key = format!("/state/v2.0/pairs/{}", fixture::PAIR);
    let failed = state_of(store.as_ref(), &key).await.expect("state");
    assert_eq!(failed["state"]["worker_state"], json!("CREATE_ERROR"));
    // the cause goes away; the operator submits the resource again (a new version)
    heat.fail("pair_", 0);
    sim.apply(&Change::Modify {
        resource_type: "pair".into(),
        id: fixture::PAIR.into(),
        body: json!({"role": "backup"}),
    })
    .await
    .expect("modify");
    sim.run_until_quiet().await.expect("quiet");
    let st = state_of(store.as_ref(), &key).await.expect("state");
    assert_eq!(
        st["state"]["worker_state"],
        json!("MODIFY_COMPLETED"),
        "{st}"
    );
    assert_eq!(st["version"], json!(2));
    assert_eq!(st["error"], json!(""));
    assert!(
        heat.lock()
            .stacks
            .contains_key(&format!("pair_{}", fixture::PAIR)),
        "the stack exists now"
    );
    assert_quiet_queue(store.as_ref()).await;
}
