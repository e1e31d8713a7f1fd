//! The real-time driver on the in-memory store: the example world applied to two processes'
//! worth of drivers, failover after the leader's process dies, a graceful shutdown.

use esi_core::clock::SystemClock;
use esi_core::heat::Heat;
use esi_core::model::ResourceRef;
use esi_core::runtime::client::{self, ApplySet};
use esi_core::runtime::driver::{Driver, DriverConfig};
use esi_core::runtime::embedded::LocalBackends;
use esi_core::store::{MemoryStore, Store};
use esi_core::Catalog;
use serde_json::Value;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

fn example_set() -> ApplySet {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/vpn-gateway");
    let mut files: Vec<_> = Vec::new();
    let mut stack = vec![dir];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("example dir") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                stack.push(p);
            } else if matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("yaml" | "json")
            ) && p.file_stem().is_some_and(|s| s != "changes")
            {
                files.push(p);
            }
        }
    }
    files.sort();
    let mut set = ApplySet::default();
    for f in files {
        let text = std::fs::read_to_string(&f).expect("read");
        let v: Value = serde_yaml_ng::from_str(&text).expect("parse");
        set.add(&v, &f.display().to_string()).expect("loads");
    }
    set
}

fn spawn(
    store: Arc<dyn Store>,
    heat: Arc<dyn Heat>,
    name: &str,
) -> (
    tokio::task::JoinHandle<()>,
    tokio::sync::oneshot::Sender<()>,
) {
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let config = DriverConfig {
        name: name.into(),
        jobs: 2,
        backoff: Duration::from_millis(50),
        shutdown_grace: Duration::from_secs(5),
        ..DriverConfig::default()
    }
    .with_ttl(Duration::from_millis(900));
    let d = Driver::new(store, heat, Arc::new(Catalog::default()), config);
    let h = tokio::spawn(async move {
        d.run(async {
            let _ = rx.await;
        })
        .await
        .expect("driver runs");
    });
    (h, tx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_drivers_run_the_example_and_survive_the_leader_dying() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let backends = LocalBackends::new(1, Arc::new(SystemClock), |d| d);
    let heat: Arc<dyn Heat> = backends.heat.clone();
    let (a, a_stop) = spawn(store.clone(), heat.clone(), "a");
    let (b, b_stop) = spawn(store.clone(), heat.clone(), "b");

    let set = example_set();
    let wanted: Vec<ResourceRef> = set.resources().to_vec();
    assert_eq!(wanted.len(), 15);
    let lines = client::apply(store.as_ref(), set).await.expect("applies");
    assert!(lines.iter().all(|l| l.version == 1));
    let rows = client::wait_final(
        store.as_ref(),
        &wanted,
        Some(Duration::from_secs(60)),
        Duration::from_millis(200),
    )
    .await
    .expect("all final");
    assert_eq!(rows.len(), 15);
    for r in &rows {
        assert!(!r.is_error(), "{}/{}: {:?}", r.resource_type, r.id, r.error);
    }
    for name in backends.heat.stack_names() {
        assert_eq!(backends.heat.creations(&name), 1, "{name} created once");
    }
    // Re-applying the same world writes nothing.
    let again = client::apply(store.as_ref(), example_set())
        .await
        .expect("applies");
    assert!(again
        .iter()
        .all(|l| l.outcome == client::Applied::Unchanged));

    // The leader's process dies without resigning: its lease must expire and the other take over.
    let leader = store
        .get("/job_manager_id")
        .await
        .expect("get")
        .expect("a leader")
        .value;
    let (dead, survivor_stop, survivor) = if leader == "a" {
        (a, b_stop, b)
    } else {
        (b, a_stop, a)
    };
    dead.abort();
    let _ = dead.await;
    // A two-step delete needs the new leader (the job) and a reader (the final removal).
    let gw = wanted
        .iter()
        .find(|r| r.resource_type == "gw_interface")
        .expect("a gw_interface")
        .clone();
    let t0 = std::time::Instant::now();
    client::delete(store.as_ref(), &gw).await.expect("marks");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let rows = client::get(store.as_ref(), None, Some("gw_interface"))
            .await
            .expect("get");
        if rows.is_empty() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "delete not completed: {rows:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let new_leader = store
        .get("/job_manager_id")
        .await
        .expect("get")
        .expect("a leader");
    assert_ne!(new_leader.value, leader);
    assert!(
        t0.elapsed() < Duration::from_secs(10),
        "failover took {:?}",
        t0.elapsed()
    );
    let jobs = client::list_jobs(store.as_ref()).await.expect("jobs");
    assert!(jobs.is_empty(), "{jobs:?}");

    let _ = survivor_stop.send(());
    survivor.await.expect("stops cleanly");
    assert!(
        store.get("/job_manager_id").await.expect("get").is_none(),
        "resigned"
    );
}

/// A leader that is paused past its lease (SIGSTOP, a long GC, a partition) and then resumes
/// with work queued can no longer write: every write it attempts is refused by the fence and
/// nothing reaches the store.
#[tokio::test(start_paused = true)]
async fn a_paused_leader_is_fenced_off_after_its_lease_expired() {
    use esi_core::expand::SeededSuffixes;
    use esi_core::runtime::manager::{Manager, ManagerConfig};
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let manager = |name: &str, seed: u64| {
        Manager::new(
            name,
            store.clone(),
            Arc::new(Catalog::default()),
            Box::new(SeededSuffixes::new(seed)),
            ManagerConfig {
                leader_ttl: Duration::from_secs(2),
                ..ManagerConfig::default()
            },
        )
    };
    let mut a = manager("a", 1);
    for _ in 0..10 {
        if a.is_leader() {
            break;
        }
        a.step().await.expect("a steps");
    }
    assert!(a.is_leader(), "a leads");
    // While `a` is paused: the world is applied, a's lease runs out, `b` takes over.
    client::apply(store.as_ref(), example_set())
        .await
        .expect("applies");
    tokio::time::advance(Duration::from_secs(3)).await;
    let mut b = manager("b", 2);
    for _ in 0..10 {
        if b.is_leader() {
            break;
        }
        b.step().await.expect("b steps");
    }
    assert!(b.is_leader(), "b took over");
    let before = store.revision().await.expect("revision");
    let dump_before = store.range("/").await.expect("range").0;
    // `a` resumes with queued events and tries to act on them.
    for _ in 0..50 {
        if !a.is_leader() {
            break;
        }
        let _ = a.step().await;
    }
    assert!(!a.is_leader(), "a stepped down");
    assert!(a.refused_writes() >= 1, "a's writes were refused");
    assert_eq!(
        store.revision().await.expect("revision"),
        before,
        "a wrote nothing"
    );
    assert_eq!(store.range("/").await.expect("range").0, dump_before);
    assert_eq!(
        store
            .get("/job_manager_id")
            .await
            .expect("get")
            .map(|kv| kv.value),
        Some("b".to_string())
    );
}

/// `apply` refuses a world `esi plan` rejects (or a type without a schema) before writing
/// anything.
#[tokio::test]
async fn apply_refuses_a_broken_world_and_writes_nothing() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let mut set = example_set();
    let broken: Value = serde_json::json!({"resources": {"ha_router": {"bad-pair": {
        "version": 1,
        "body": {"id": "bad-pair", "name": "broken", "tenant_id": "01163ae164b34f0a91cef0d391b36768",
                 "primary_router_id": "no-such-router", "secondary_router_id": "no-such-router-2"}}}}});
    set.add(&broken, "broken.yaml").expect("loads");
    let err = client::apply(store.as_ref(), set)
        .await
        .expect_err("refused");
    let text = err.to_string();
    assert!(text.contains("ha_router/bad-pair"), "{text}");
    assert_eq!(
        store.revision().await.expect("revision"),
        0,
        "nothing written"
    );

    let mut set = ApplySet::default();
    set.add(
        &serde_json::json!({"resources": {"widget": {"w1": {"version": 1, "body": {"id": "w1"}}}}}),
        "w.yaml",
    )
    .expect("loads");
    let err = client::apply(store.as_ref(), set)
        .await
        .expect_err("unknown type");
    assert!(err.to_string().contains("widget"), "{err}");
    assert_eq!(
        store.revision().await.expect("revision"),
        0,
        "nothing written"
    );

    // The one validation of expand/plan/run: a body id that differs from its key.
    let mut set = example_set();
    set.add(
        &serde_json::json!({"resources": {"network": {"n-key": {"version": 1, "body": {"id": "n-other", "name": "x"}}}}}),
        "mismatch.yaml",
    )
    .expect("loads");
    let err = client::apply(store.as_ref(), set)
        .await
        .expect_err("id mismatch");
    assert!(
        matches!(err, client::ClientError::Invalid(_)) && err.to_string().contains("n-key"),
        "{err}"
    );
    assert_eq!(
        store.revision().await.expect("revision"),
        0,
        "nothing written"
    );
}

/// A stack that takes longer than the claim lease's TTL (a long Heat operation, or a Heat that
/// is down and waited for): the claim is refreshed while the worker waits, so the job is not
/// taken back from a live worker and the stack is created once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stack_longer_than_the_claim_lease_is_not_taken_back() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let backends = LocalBackends::new(1, Arc::new(SystemClock), |d| d);
    let heat: Arc<dyn Heat> = backends.heat.clone();
    let slow = "edge_router_90dcde27-9ca4-4bc7-92f6-c5c5e978d269";
    // the claim TTL of `spawn` is 0.9 s: 3 s is more than three leases
    backends.heat.delay_stack(slow, Duration::from_secs(3));
    let (d, stop) = spawn(store.clone(), heat, "slow");
    let set = example_set();
    let wanted: Vec<ResourceRef> = set.resources().to_vec();
    client::apply(store.as_ref(), set).await.expect("applies");
    let rows = client::wait_final(
        store.as_ref(),
        &wanted,
        Some(Duration::from_secs(60)),
        Duration::from_millis(200),
    )
    .await
    .expect("all final");
    for r in &rows {
        assert!(!r.is_error(), "{}/{}: {:?}", r.resource_type, r.id, r.error);
    }
    assert_eq!(backends.heat.creations(slow), 1, "created once");
    let _ = stop.send(());
    d.await.expect("stops cleanly");
}
