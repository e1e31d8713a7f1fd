//! Scale: `esi plan`, `esi run` and `esi expand` (library calls) on generated worlds of 1,000,
//! 5,000 and 20,000 resources. Time should grow linearly with the world (issue 11: at 20k,
//! plan and run each under 10 s on a 2-core machine). Peak memory is measured on the CLI with
//! `/usr/bin/time -v` over `cargo run --release --example generate_world` worlds (README).
//!
//! `cargo bench --bench scale -- --quick` (one size: `-- --quick 5000`).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use esi::expand::{expand_world, SeededSuffixes};
use esi::plan::{plan_world, PlanOptions};
use esi::runtime::embedded::{self, EmbeddedOptions};
use std::hint::black_box;

/// The allocator the `esi` binary ships with, so the figures are those of the CLI.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const SIZES: [usize; 3] = [1_000, 5_000, 20_000];

fn bench_scale(c: &mut Criterion) {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => panic!("no tokio runtime: {e}"),
    };
    let mut g = c.benchmark_group("scale");
    g.sample_size(10);
    for n in SIZES {
        let world = match esi::generate::world(n) {
            Ok(w) => w,
            Err(e) => panic!("generated world does not load: {e}"),
        };
        g.throughput(Throughput::Elements(n as u64));
        g.bench_with_input(BenchmarkId::new("expand", n), &world, |b, w| {
            b.iter(|| black_box(expand_world(w, &mut SeededSuffixes::new(7)).len()))
        });
        g.bench_with_input(BenchmarkId::new("plan", n), &world, |b, w| {
            b.iter(|| {
                black_box(
                    plan_world(w, &mut SeededSuffixes::new(0), PlanOptions::default())
                        .resources
                        .len(),
                )
            })
        });
        g.bench_with_input(BenchmarkId::new("run", n), &world, |b, w| {
            b.iter(|| {
                let phases = rt.block_on(embedded::run(w, &[], &EmbeddedOptions::default()));
                black_box(phases.map(|p| p.len()).unwrap_or(0))
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench_scale);
criterion_main!(benches);
