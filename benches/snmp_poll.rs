//! Collector throughput on a real SNMP agent: 1,000 port targets (`snmp_ports_status`, 125
//! device IPs × 8 interfaces, every device routed to snmpsim with v2c) polled by the
//! [`esi::collector::Collector`] through [`esi::snmp::SnmpRegistry`]: one round = every target
//! polled once (the 8 targets of a device in one GET, 16 devices at once). Criterion reports
//! polls/s; the process CPU time (user + system, `/proc/self/stat`) over all rounds is printed
//! as the share of one core.
//!
//! Needs snmpsim: `bash .ci/services/40-snmp.sh start`, then
//! `SNMPSIM_ENDPOINT=127.0.0.1:16101 cargo bench --features snmp --bench snmp_poll`.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use esi::collector::{Collector, CollectorConfig, SystemClock};
use esi::snmp::{SnmpConfig, SnmpRegistry, SnmpRoute};
use serde_json::json;

const DEVICES: usize = 125;
const PORTS: [&str; 8] = [
    "xe-0/0/3.1025",
    "xe-0/0/3.1026",
    "ge-0/0/0",
    "xe-0/0/3.1027",
    "xe-0/0/3.1028",
    "xe-0/0/3.1029",
    "ae0.100",
    "ae0.200",
];

/// user + system CPU time of this process.
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // fields after the command name (which may contain spaces): state is field 3
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<u64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    // utime, stime are fields 14 and 15 (1-based) = index 11, 12 after the ')'
    let ticks = f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0);
    Duration::from_secs_f64(ticks as f64 / 100.0)
}

fn bench_poll(c: &mut Criterion) {
    let Some(sim) = std::env::var("SNMPSIM_ENDPOINT")
        .ok()
        .and_then(|s| s.parse().ok())
    else {
        panic!("SNMPSIM_ENDPOINT (host:port) is not set: bash .ci/services/40-snmp.sh start");
    };
    // one thread: the CPU share is of one core
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => panic!("no tokio runtime: {e}"),
    };
    let registry = SnmpRegistry::new(SnmpConfig {
        timeout: Duration::from_secs(2),
        ..SnmpConfig::default()
    });
    for d in 0..DEVICES {
        registry.route(
            format!("10.40.{}.{}", d / 250, d % 250 + 1),
            SnmpRoute {
                addr: sim,
                auth: None,
            },
        );
    }
    let collector = Arc::new(Collector::new(
        Arc::new(registry),
        Arc::new(SystemClock),
        CollectorConfig {
            max_concurrent: 16,
            ..CollectorConfig::default()
        },
    ));
    for d in 0..DEVICES {
        for (p, if_name) in PORTS.iter().enumerate() {
            let body = json!({
                "type": "snmp_ports_status", "resource_type": "ese_physical_ports",
                "resource_id": format!("port-{d}-{p}"), "tenant_id": "t", "version": 1,
                "field_name": "port",
                "properties": {"community_name": "public",
                               "device_ip": format!("10.40.{}.{}", d / 250, d % 250 + 1),
                               "if_name": if_name},
                "syncer_properties": {"etcd": {"status": {"key": "port"}}}
            });
            if let Err(e) = collector.register(&body) {
                panic!("register: {e}");
            }
        }
    }
    let targets = collector.target_ids().len() as u64;
    // warm the ifName caches and check every target answers
    let writes = rt.block_on(collector.poll_all(esi::exec::monitor::Timestamp(0)));
    assert_eq!(writes.len() as u64, targets, "every target reported");

    let totals = Arc::new(Mutex::new((Duration::ZERO, Duration::ZERO, 0u64)));
    let mut group = c.benchmark_group("snmp_poll");
    group.throughput(Throughput::Elements(targets));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    let t = totals.clone();
    group.bench_function("1000_port_targets_round", |b| {
        b.iter_custom(|iters| {
            let cpu0 = cpu_time();
            let t0 = Instant::now();
            for i in 0..iters {
                let now = esi::exec::monitor::Timestamp(i as i64 + 1);
                rt.block_on(collector.poll_all(now));
            }
            let wall = t0.elapsed();
            let mut tot = t.lock().unwrap_or_else(|p| p.into_inner());
            tot.0 += wall;
            tot.1 += cpu_time().saturating_sub(cpu0);
            tot.2 += iters * targets;
            wall
        })
    });
    group.finish();
    let (wall, cpu, polls) = *totals.lock().unwrap_or_else(|p| p.into_inner());
    println!(
        "snmp_poll: {polls} polls in {:.2} s = {:.0} polls/s; CPU {:.2} s = {:.1} % of one core \
         ({:.1} µs CPU per poll)",
        wall.as_secs_f64(),
        polls as f64 / wall.as_secs_f64().max(1e-9),
        cpu.as_secs_f64(),
        100.0 * cpu.as_secs_f64() / wall.as_secs_f64().max(1e-9),
        1e6 * cpu.as_secs_f64() / (polls.max(1) as f64)
    );
}

criterion_group!(benches, bench_poll);
criterion_main!(benches);
