//! Stack lifecycles (create, update, delete) through `OpenStackHeat` against a real Heat, at
//! concurrency 1, 4 and 8 (`ESI_HEAT_BENCH_CONCURRENCY=1,4,8`): one criterion iteration is a
//! batch of `ESI_HEAT_BENCH_BATCH` (default 8) lifecycles run by that many workers, so the
//! throughput is stacks (whole lifecycles) per second; the per-operation latencies (p50/p95 of
//! create, update, delete) are printed after each level.
//!
//! Run by hand with a Heat up: `bash .ci/services/30-heat.sh start` then
//! `HEAT_URL=http://127.0.0.1:8004/v1/admin cargo bench -p esi-heat --bench stacks`.
//! Without `HEAT_URL` it prints a message and measures nothing.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use esi_core::exec::stack::{StackOperation, StackRequest};
use esi_core::heat::Heat;
use esi_heat::{HeatConfig, OpenStackHeat};
use serde_json::{json, Map, Value};

const TEMPLATE: &str = "heat_template_version: 2013-05-23
parameters:
  vlan: {type: number}
resources:
  v:
    type: OS::Heat::Value
    properties: {value: {get_param: vlan}}
  n:
    type: OS::Heat::None
outputs:
  vlan: {value: {get_attr: [v, value]}}
";

fn request(name: &str, op: StackOperation, vlan: u64) -> StackRequest {
    let mut p = Map::new();
    p.insert("vlan".into(), json!(vlan));
    StackRequest {
        stack_name: name.into(),
        operation: op,
        template_id: Some("bench".into()),
        timeout_mins: Some(5),
        disable_rollback: true,
        request_parameters: p,
        jinja_params: Map::new(),
        template_text: Some(TEMPLATE.into()),
    }
}

#[derive(Default)]
struct Latencies {
    create: Vec<Duration>,
    update: Vec<Duration>,
    delete: Vec<Duration>,
}

fn pct(v: &mut [Duration], p: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort();
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i].as_secs_f64() * 1000.0
}

static SEQ: AtomicU64 = AtomicU64::new(0);

async fn lifecycle(heat: &OpenStackHeat, lat: &Mutex<Latencies>) {
    let n = SEQ.fetch_add(1, Ordering::Relaxed);
    let name = format!("bench_{}_{n}", std::process::id());
    let t = Instant::now();
    let o = heat
        .create(&request(&name, StackOperation::Create, n))
        .await;
    let c = t.elapsed();
    assert_eq!(o.map(|o| o.status).unwrap_or_default(), "CREATE_COMPLETE");
    let t = Instant::now();
    let o = heat
        .update(&request(&name, StackOperation::Update, n + 1))
        .await;
    let u = t.elapsed();
    assert_eq!(o.map(|o| o.status).unwrap_or_default(), "UPDATE_COMPLETE");
    let t = Instant::now();
    let o = heat.delete(&name).await;
    let d = t.elapsed();
    assert_eq!(o.map(|o| o.status).unwrap_or_default(), "DELETE_COMPLETE");
    if let Ok(mut l) = lat.lock() {
        l.create.push(c);
        l.update.push(u);
        l.delete.push(d);
    }
}

fn bench(c: &mut Criterion) {
    let Ok(url) = std::env::var("HEAT_URL") else {
        eprintln!("stacks bench skipped: HEAT_URL is not set (bash .ci/services/30-heat.sh start)");
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut cfg = HeatConfig::noauth(url);
    cfg.poll.initial = Duration::from_millis(100);
    cfg.max_in_flight = 8;
    let heat = Arc::new(OpenStackHeat::new(cfg).expect("config"));
    let mut group = c.benchmark_group("heat_stack_lifecycle");
    group.sample_size(10);
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(20));
    let batch: u64 = std::env::var("ESI_HEAT_BENCH_BATCH")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8);
    let levels: Vec<usize> = std::env::var("ESI_HEAT_BENCH_CONCURRENCY")
        .unwrap_or_else(|_| "1,4,8".into())
        .split(',')
        .filter_map(|c| c.trim().parse().ok())
        .collect();
    group.throughput(Throughput::Elements(batch));
    for conc in levels {
        let lat = Arc::new(Mutex::new(Latencies::default()));
        group.bench_function(format!("concurrency_{conc}"), |b| {
            b.iter_custom(|iters| {
                let (heat, lat) = (heat.clone(), lat.clone());
                rt.block_on(async move {
                    let start = Instant::now();
                    let total = iters * batch;
                    let next = Arc::new(AtomicU64::new(0));
                    let mut workers = Vec::new();
                    for _ in 0..conc {
                        let (heat, lat, next) = (heat.clone(), lat.clone(), next.clone());
                        workers.push(tokio::spawn(async move {
                            while next.fetch_add(1, Ordering::Relaxed) < total {
                                lifecycle(&heat, &lat).await;
                            }
                        }));
                    }
                    for w in workers {
                        w.await.expect("worker");
                    }
                    start.elapsed()
                })
            })
        });
        let mut l = lat
            .lock()
            .map(|mut l| std::mem::take(&mut *l))
            .unwrap_or_default();
        let n = l.create.len();
        let row: Vec<Value> = vec![
            json!(pct(&mut l.create, 0.5)),
            json!(pct(&mut l.create, 0.95)),
            json!(pct(&mut l.update, 0.5)),
            json!(pct(&mut l.update, 0.95)),
            json!(pct(&mut l.delete, 0.5)),
            json!(pct(&mut l.delete, 0.95)),
        ];
        eprintln!(
            "concurrency {conc}: {n} lifecycles; latency ms p50/p95 create {:.0}/{:.0} update {:.0}/{:.0} delete {:.0}/{:.0}",
            row[0].as_f64().unwrap_or(0.0), row[1].as_f64().unwrap_or(0.0),
            row[2].as_f64().unwrap_or(0.0), row[3].as_f64().unwrap_or(0.0),
            row[4].as_f64().unwrap_or(0.0), row[5].as_f64().unwrap_or(0.0),
        );
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
