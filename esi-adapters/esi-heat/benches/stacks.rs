//! Stacks through `OpenStackHeat` against a real Heat, at concurrency 1, 4 and 8
//! (`ESI_HEAT_BENCH_CONCURRENCY=1,4,8`), in two parts:
//!
//! 1. **Phases of 100 stacks** (`ESI_HEAT_BENCH_STACKS`, default 100): per level, create 100
//!    stacks, then update the 100, then delete the 100, each phase with at most `concurrency`
//!    operations in flight. Printed per phase: stacks/s and the adapter's latency (p50/p95 per
//!    stack), next to Heat's own time for the same operations read from its events: per stack
//!    the first `<ACTION>_IN_PROGRESS` to the `<ACTION>_COMPLETE` event (mean and p95; Heat
//!    stamps events to the second, so these are ±1 s each), and the phase as Heat saw it (the
//!    first stack's `IN_PROGRESS` to the last one's `COMPLETE`).
//! 2. **Criterion**: one iteration is a batch of `ESI_HEAT_BENCH_BATCH` (default 8) whole
//!    lifecycles (create, update, delete) run by `concurrency` workers; the throughput is
//!    lifecycles per second. `ESI_HEAT_BENCH_PHASES_ONLY=1` skips this part.
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

/// Seconds since the epoch of Heat's `event_time` (`2026-12-03T14:04:23Z`, maybe with a
/// fraction).
fn epoch_secs(t: &str) -> Option<f64> {
    let t = t.trim_end_matches('Z');
    let (date, time) = t.split_once('T')?;
    let mut d = date.split('-').map(|x| x.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let mut hms = time.split(':');
    let h: f64 = hms.next()?.parse().ok()?;
    let mi: f64 = hms.next()?.parse().ok()?;
    let sec: f64 = hms.next()?.parse().ok()?;
    // days from civil (Howard Hinnant)
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days as f64 * 86_400.0 + h * 3600.0 + mi * 60.0 + sec)
}

/// Heat's own `(start, end)` of `action` on stack `name`/`id`: its first `<action>_IN_PROGRESS`
/// and last `<action>_COMPLETE` stack event.
async fn heat_span(
    http: &reqwest::Client,
    base: &str,
    name: &str,
    id: &str,
    action: &str,
) -> Option<(f64, f64)> {
    let url = format!("{base}/stacks/{name}/{id}/events?resource_name={name}&limit=200");
    let v: Value = http.get(url).send().await.ok()?.json().await.ok()?;
    let mut start: Option<f64> = None;
    let mut end: Option<f64> = None;
    for e in v.get("events")?.as_array()? {
        let status = e.get("resource_status").and_then(Value::as_str)?;
        let at = e
            .get("event_time")
            .and_then(Value::as_str)
            .and_then(epoch_secs)?;
        if status == format!("{action}_IN_PROGRESS") {
            start = Some(start.map_or(at, |s: f64| s.min(at)));
        } else if status == format!("{action}_COMPLETE") {
            end = Some(end.map_or(at, |s: f64| s.max(at)));
        }
    }
    Some((start?, end?))
}

async fn stack_id(http: &reqwest::Client, base: &str, name: &str) -> Option<String> {
    let v: Value = http
        .get(format!("{base}/stacks/{name}"))
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    v.pointer("/stack/id")?.as_str().map(str::to_string)
}

/// One phase: `op` on every stack of `names`, at most `conc` at once; per stack latencies.
async fn phase(
    heat: &Arc<OpenStackHeat>,
    names: &[String],
    op: StackOperation,
    conc: usize,
) -> (Duration, Vec<Duration>) {
    let sem = Arc::new(tokio::sync::Semaphore::new(conc));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let (heat, sem, name) = (heat.clone(), sem.clone(), name.clone());
        tasks.push(tokio::spawn(async move {
            let _p = sem.acquire_owned().await.expect("semaphore");
            let t = Instant::now();
            let o = match op {
                StackOperation::Delete => heat.delete(&name).await,
                StackOperation::Create => heat.create(&request(&name, op, i as u64)).await,
                StackOperation::Update => heat.update(&request(&name, op, i as u64 + 1)).await,
            };
            let status = o.map(|o| o.status).unwrap_or_else(|e| e.to_string());
            assert!(status.ends_with("_COMPLETE"), "{name}: {status}");
            t.elapsed()
        }));
    }
    let mut lat = Vec::new();
    for t in tasks {
        lat.push(t.await.expect("task"));
    }
    (start.elapsed(), lat)
}

/// The 100-stack phases at each concurrency level, with Heat's own times from its events.
async fn phases(heat: Arc<OpenStackHeat>, base: &str, n: usize, levels: &[usize]) {
    let http = reqwest::Client::new();
    eprintln!("| conc | phase | stacks/s | esi p50 / p95 ms | Heat per stack mean / p95 s | phase esi s | phase in Heat s |");
    eprintln!("|---|---|---|---|---|---|---|");
    for &conc in levels {
        let names: Vec<String> = (0..n)
            .map(|i| format!("bench100_{}_{conc}_{i}", std::process::id()))
            .collect();
        let mut ids = Vec::new();
        for (op, action) in [
            (StackOperation::Create, "CREATE"),
            (StackOperation::Update, "UPDATE"),
            (StackOperation::Delete, "DELETE"),
        ] {
            let (wall, mut lat) = phase(&heat, &names, op, conc).await;
            if ids.is_empty() {
                for name in &names {
                    ids.push(stack_id(&http, base, name).await.unwrap_or_default());
                }
            }
            let mut own = Vec::new();
            let (mut first, mut last) = (f64::MAX, f64::MIN);
            for (name, id) in names.iter().zip(&ids) {
                if let Some((s, e)) = heat_span(&http, base, name, id, action).await {
                    own.push(Duration::from_secs_f64(e - s));
                    first = first.min(s);
                    last = last.max(e);
                }
            }
            let mean = own.iter().map(Duration::as_secs_f64).sum::<f64>() / own.len().max(1) as f64;
            eprintln!(
                "| {conc} | {} ({n}) | {:.1} | {:.0} / {:.0} | {:.2} / {:.0} ({} stacks) | {:.1} | {:.0} |",
                action.to_lowercase(),
                n as f64 / wall.as_secs_f64(),
                pct(&mut lat, 0.5),
                pct(&mut lat, 0.95),
                mean,
                pct(&mut own, 0.95) / 1000.0,
                own.len(),
                wall.as_secs_f64(),
                last - first,
            );
        }
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
    let base = url.trim_end_matches('/').to_string();
    let mut cfg = HeatConfig::noauth(url);
    cfg.poll.initial = Duration::from_millis(100);
    cfg.max_in_flight = 8;
    let heat = Arc::new(OpenStackHeat::new(cfg).expect("config"));
    let stacks: usize = std::env::var("ESI_HEAT_BENCH_STACKS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let levels: Vec<usize> = std::env::var("ESI_HEAT_BENCH_CONCURRENCY")
        .unwrap_or_else(|_| "1,4,8".into())
        .split(',')
        .filter_map(|c| c.trim().parse().ok())
        .collect();
    if stacks > 0 {
        rt.block_on(phases(heat.clone(), &base, stacks, &levels));
    }
    if std::env::var("ESI_HEAT_BENCH_PHASES_ONLY").is_ok_and(|v| v == "1") {
        return;
    }
    let mut group = c.benchmark_group("heat_stack_lifecycle");
    group.sample_size(10);
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(20));
    let batch: u64 = std::env::var("ESI_HEAT_BENCH_BATCH")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8);
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
