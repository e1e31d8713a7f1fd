//! Expansion throughput on a generated world of 10,000 resources whose templates walk relation
//! chains 3–5 hops deep. Reports resources/s and param evaluations/s.
//!
//! `cargo bench --bench expand` (add `-- --quick` for a short run).

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use esi::expand::{expand_world, SeededSuffixes};
use esi::generate;
use std::hint::black_box;

/// The allocator the `esi` binary ships with, so the figures are those of the CLI.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const RESOURCES: usize = 10_000;

fn bench_expand(c: &mut Criterion) {
    let world = match generate::world(RESOURCES) {
        Ok(w) => w,
        Err(e) => panic!("generated world does not load: {e}"),
    };
    // Count the param evaluations one expansion performs (one per mapping per job).
    let outcomes = expand_world(&world, &mut SeededSuffixes::new(1));
    let params: u64 = outcomes
        .iter()
        .filter_map(|o| o.result.as_ref().ok())
        .flatten()
        .map(|j| j.params.len() as u64)
        .sum();
    assert!(
        outcomes.iter().all(|o| o.result.is_ok()),
        "the generated world expands without errors"
    );

    let mut g = c.benchmark_group("expand_world_10k");
    g.sample_size(10);
    g.throughput(Throughput::Elements(RESOURCES as u64));
    g.bench_function("resources", |b| {
        b.iter_batched(
            || SeededSuffixes::new(7),
            |mut s| black_box(expand_world(&world, &mut s)),
            BatchSize::SmallInput,
        )
    });
    g.throughput(Throughput::Elements(params));
    g.bench_function("param_evaluations", |b| {
        b.iter_batched(
            || SeededSuffixes::new(7),
            |mut s| black_box(expand_world(&world, &mut s)),
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

criterion_group!(benches, bench_expand);
criterion_main!(benches);
