//! NETCONF push throughput: one configuration change committed on each of 50 `esi netsim`
//! routers concurrently (real SSH + NETCONF over loopback, sessions reused across
//! iterations, one transaction = discard, lock, load, commit, unlock). Criterion reports
//! commits/s; per-commit latency percentiles are printed at the end.
//!
//! `cargo bench --features netconf --bench netconf` (add `-- --quick` for a short run).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use esi::device::{ConfigChange, Credentials, Device, DeviceAddress, DeviceRegistry, SimRouter};
use esi::netconf::netsim::{Netsim, NetsimOptions};
use esi::netconf::{HostKeyPolicy, NetconfOptions, NetconfRegistry};
use esi::secret::Secret;

const ROUTERS: usize = 50;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn bench_push(c: &mut Criterion) {
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => panic!("no tokio runtime: {e}"),
    };
    let (sim, devices) = rt.block_on(async {
        let routers = (1..=ROUTERS)
            .map(|i| Arc::new(SimRouter::new(format!("r{i}"), "127.0.0.1", 0)))
            .collect();
        let sim = match Netsim::start(
            routers,
            "127.0.0.1:0".parse().unwrap_or_else(|_| unreachable!()),
            NetsimOptions::default(),
        )
        .await
        {
            Ok(s) => s,
            Err(e) => panic!("netsim: {e}"),
        };
        let pins = sim.routers().iter().map(|r| r.fingerprint()).collect();
        let registry = NetconfRegistry::new(
            NetconfOptions::default().with_host_keys(HostKeyPolicy::Fingerprints(pins)),
        );
        let mut devices: Vec<Arc<dyn Device>> = Vec::new();
        for r in sim.routers() {
            let d = registry
                .connect(
                    &DeviceAddress {
                        host: "127.0.0.1".into(),
                        port: Some(r.addr().port()),
                    },
                    &Credentials::Login {
                        username: "esi".into(),
                        password: Secret::new("esi".into()),
                    },
                )
                .await;
            match d {
                Ok(d) => devices.push(d),
                Err(e) => panic!("connect: {e}"),
            }
        }
        (sim, devices)
    });
    let latencies = Arc::new(Mutex::new(Vec::<Duration>::new()));
    let mut round = 0u64;
    let mut g = c.benchmark_group("netconf_push_50_routers");
    g.sample_size(10);
    g.throughput(Throughput::Elements(ROUTERS as u64));
    g.bench_function("commits", |b| {
        b.iter(|| {
            round += 1;
            let text = format!(
                "interfaces {{ ae0 {{ unit {u} {{ vlan-id {v}; description \"bench {round}\"; }} }} }}",
                u = round % 4000 + 1,
                v = round % 4000 + 1
            );
            rt.block_on(async {
                let mut set = tokio::task::JoinSet::new();
                for d in &devices {
                    let d = Arc::clone(d);
                    let change = ConfigChange { resource: format!("bench/{round}"), merge_text: text.clone(), ..Default::default() };
                    let lat = Arc::clone(&latencies);
                    set.spawn(async move {
                        let t = Instant::now();
                        let r = d.load_config(&change).await;
                        if let Ok(mut l) = lat.lock() {
                            l.push(t.elapsed());
                        }
                        r
                    });
                }
                while let Some(r) = set.join_next().await {
                    match r {
                        Ok(Ok(_)) => {}
                        Ok(Err(e)) => panic!("push failed: {e}"),
                        Err(e) => panic!("task: {e}"),
                    }
                }
            })
        })
    });
    g.finish();
    let mut l = latencies.lock().map(|l| l.clone()).unwrap_or_default();
    l.sort();
    println!(
        "netconf push latency over {} commits: p50 {:?}  p90 {:?}  p99 {:?}  max {:?}",
        l.len(),
        percentile(&l, 0.50),
        percentile(&l, 0.90),
        percentile(&l, 0.99),
        l.last().copied().unwrap_or_default()
    );
    drop(devices);
    drop(sim);
}

criterion_group!(benches, bench_push);
criterion_main!(benches);
