//! End-to-end throughput of `esi run` on the embedded default: a generated world of 1,000
//! resources (relation chains 1–5 hops) submitted to the API emulation, expanded by the manager,
//! executed by four workers through LocalHeat, until the system is quiet. Reports resources/s.
//!
//! `cargo bench --bench run` (add `-- --quick` for a short run).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use esi::runtime::embedded::{self, EmbeddedOptions};
use std::hint::black_box;

/// The allocator the `esi` binary ships with, so the figures are those of the CLI.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const RESOURCES: usize = 1_000;

fn bench_run(c: &mut Criterion) {
    let world = match esi::generate::world(RESOURCES) {
        Ok(w) => w,
        Err(e) => panic!("generated world does not load: {e}"),
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => panic!("no tokio runtime: {e}"),
    };
    let options = EmbeddedOptions::default();
    let mut g = c.benchmark_group("esi_run_1k");
    g.sample_size(10);
    g.throughput(Throughput::Elements(RESOURCES as u64));
    g.bench_function("resources", |b| {
        b.iter(|| {
            let phases = rt.block_on(embedded::run(&world, &[], &options));
            black_box(phases.map(|p| p.len()).unwrap_or(0))
        })
    });
    g.finish();
}

criterion_group!(benches, bench_run);
criterion_main!(benches);
