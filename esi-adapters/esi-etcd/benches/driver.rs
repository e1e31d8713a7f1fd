//! The real-time driver on real etcd against raw etcd puts, same server, same run.
//!
//! Each iteration applies a generated world of `N` resources to a fresh key namespace, runs a
//! [`Driver`] with every role (`SLOTS` job slots, the embedded LocalHeat, simulated devices)
//! until every resource is final, and stops it. Jobs/s is `N` per iteration time (one create
//! job per resource). The writes a job costs are counted as etcd revisions (one per put,
//! delete or transaction) consumed from the end of the apply to the last resource final,
//! divided by `N`. Raw put/s is `etcd-client` puts of 1 KiB values at concurrency `SLOTS`.
//! Printed at the end: `efficiency = jobs/s ÷ (raw put/s ÷ writes per job)`, the share of
//! etcd's raw write rate the driver turns into jobs.
//!
//! By hand, not in CI:
//! `ETCD_ENDPOINTS=http://127.0.0.1:23790 cargo bench -p esi-etcd --bench driver`.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use esi_core::catalog::Catalog;
use esi_core::clock::SystemClock;
use esi_core::device::SimFabric;
use esi_core::runtime::client::{self, ApplySet};
use esi_core::runtime::driver::{Driver, DriverConfig};
use esi_core::runtime::embedded::LocalBackends;
use esi_core::store::Store;
use esi_etcd::{EtcdConfig, EtcdStore};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const N: usize = 200;
const SLOTS: usize = 8;
const RAW_PUTS: usize = 2_000;

static RUN: AtomicU64 = AtomicU64::new(0);

/// Totals over the measured iterations.
#[derive(Default)]
struct Totals {
    driver_secs: f64,
    jobs: u64,
    writes: u64,
    raw_secs: f64,
    puts: u64,
}

async fn connect(endpoints: &str, ns: &str) -> Arc<EtcdStore> {
    Arc::new(
        EtcdStore::connect(EtcdConfig::from_list(endpoints).with_namespace(ns))
            .await
            .expect("connect to etcd"),
    )
}

/// One driver run: (seconds from the end of the apply to all final, revisions consumed).
async fn one_run(endpoints: &str, doc: &serde_json::Value) -> (f64, u64) {
    let run = RUN.fetch_add(1, Ordering::Relaxed);
    let ns = format!("/bench-driver-{}-{run}", std::process::id());
    let store = connect(endpoints, &ns).await;
    let mut set = ApplySet::default();
    set.add(doc, "generated").expect("world loads");
    client::apply(store.as_ref(), set).await.expect("applies");
    let applied = client::get(store.as_ref(), None, None)
        .await
        .expect("get")
        .len();
    assert_eq!(applied, N);
    let rev0 = store.revision().await.expect("revision");
    let t0 = Instant::now();
    let (collector, heat) =
        LocalBackends::over(run, Arc::new(SystemClock), Arc::new(SimFabric::auto()));
    let driver = Driver::new(
        store.clone(),
        heat,
        Arc::new(Catalog::default()),
        DriverConfig {
            name: format!("bench-{run}"),
            jobs: SLOTS,
            ..DriverConfig::default()
        },
    )
    .with_collector(collector);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(driver.run(async move {
        let _ = stopped.await;
    }));
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let rows = client::get(store.as_ref(), None, None).await.expect("get");
        if rows.len() == N && rows.iter().all(|r| r.is_final()) {
            assert!(rows.iter().all(|r| !r.is_error()), "a resource failed");
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(300),
            "not final in 300 s"
        );
    }
    let secs = t0.elapsed().as_secs_f64();
    let rev1 = store.revision().await.expect("revision");
    let _ = stop.send(());
    let _ = task.await;
    let mut c = store.client();
    let _ = c
        .delete(
            ns.as_str(),
            Some(etcd_client::DeleteOptions::new().with_prefix()),
        )
        .await;
    (secs, u64::try_from(rev1 - rev0).unwrap_or(0))
}

async fn raw_puts(store: &EtcdStore) -> f64 {
    let value = "x".repeat(1024);
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..SLOTS {
        let mut c = store.client();
        let v = value.clone();
        tasks.push(tokio::spawn(async move {
            for i in (w..RAW_PUTS).step_by(SLOTS) {
                c.put(format!("/bench-driver-raw/{i}"), v.as_str(), None)
                    .await
                    .expect("put");
            }
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    t0.elapsed().as_secs_f64()
}

fn bench(c: &mut Criterion) {
    let Ok(endpoints) = std::env::var("ETCD_ENDPOINTS") else {
        eprintln!("skipped: set ETCD_ENDPOINTS (bash .ci/services/10-etcd.sh start)");
        return;
    };
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let doc = esi_core::generate::world_document(N);
    let raw = rt.block_on(connect(&endpoints, ""));
    let totals = std::sync::Mutex::new(Totals::default());
    let mut g = c.benchmark_group("etcd_driver");
    g.sample_size(10);
    g.throughput(Throughput::Elements(RAW_PUTS as u64));
    g.bench_function(format!("raw put, concurrency {SLOTS}"), |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let secs = rt.block_on(raw_puts(&raw));
                total += Duration::from_secs_f64(secs);
                if let Ok(mut t) = totals.lock() {
                    t.raw_secs += secs;
                    t.puts += RAW_PUTS as u64;
                }
            }
            total
        })
    });
    g.throughput(Throughput::Elements(N as u64));
    g.bench_function(format!("driver jobs, {N} resources, {SLOTS} slots"), |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let (secs, writes) = rt.block_on(one_run(&endpoints, &doc));
                total += Duration::from_secs_f64(secs);
                if let Ok(mut t) = totals.lock() {
                    t.driver_secs += secs;
                    t.jobs += N as u64;
                    t.writes += writes;
                }
            }
            total
        })
    });
    g.finish();
    let t = totals.into_inner().unwrap_or_default();
    if t.jobs > 0 && t.puts > 0 {
        let jobs_per_s = t.jobs as f64 / t.driver_secs;
        let puts_per_s = t.puts as f64 / t.raw_secs;
        let writes_per_job = t.writes as f64 / t.jobs as f64;
        let ceiling = puts_per_s / writes_per_job;
        eprintln!(
            "driver: {jobs_per_s:.1} jobs/s over {} jobs; raw etcd: {puts_per_s:.0} put/s over {} puts \
             (concurrency {SLOTS}); {writes_per_job:.1} etcd writes per job; ceiling {ceiling:.1} jobs/s; \
             efficiency {:.2}",
            t.jobs,
            t.puts,
            jobs_per_s / ceiling
        );
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
