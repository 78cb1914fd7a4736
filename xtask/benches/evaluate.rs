//! Criterion benches: the three shared scenarios, an unknown experiment, and parsing a
//! generated 10,000-experiment document. `cargo bench -p xtask`.

use std::hint::black_box;
use std::path::Path;

use criterion::{BatchSize, Criterion, Throughput, criterion_main};
use experiments_core::{Config, Experiments, NoTrace, NoopHandler};
use xtask::bench::{self, NOW, SCENARIOS};

fn shared_config() -> Config {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/bench/experiments.json");
    bench::load_config(&path).unwrap_or_else(|e| panic!("{e}"))
}

fn scenarios(c: &mut Criterion) {
    let config = shared_config();
    let mut group = c.benchmark_group("variant");
    for s in SCENARIOS {
        let work = bench::Workload::new(s);
        let mut inputs = bench::template(s);
        // One request of ten calls per iteration, cycling through the scenario's ids.
        let mut k = 0usize;
        group.throughput(Throughput::Elements(bench::CALLS_PER_REQUEST as u64));
        group.bench_function(format!("scenario_{}", s.letter), |b| {
            b.iter(|| {
                let mut client = Experiments::new(&config, NOW, NoopHandler);
                for _ in 0..bench::CALLS_PER_REQUEST {
                    bench::fill(s, k, work.id(k), &mut inputs);
                    black_box(client.variant(s.experiment, &inputs, None).ok());
                    k = (k + 1) % work.len();
                }
            })
        });
        let mut k = 0usize;
        group.throughput(Throughput::Elements(1));
        group.bench_function(format!("evaluate_only_{}", s.letter), |b| {
            b.iter(|| {
                bench::fill(s, k, work.id(k), &mut inputs);
                k = (k + 1) % work.len();
                black_box(
                    config
                        .evaluate(s.experiment, &inputs, NOW, &mut NoTrace)
                        .ok()
                        .flatten()
                        .map(|e| e.variant),
                )
            })
        });
    }
    let inputs = bench::inputs(SCENARIOS[0], 1);
    group.bench_function("unknown_experiment", |b| {
        let mut client = Experiments::new(&config, NOW, NoopHandler);
        b.iter(|| black_box(client.variant("no_such_experiment", &inputs, None).ok()))
    });
    group.finish();
}

fn parse(c: &mut Criterion) {
    let doc = bench::generate_document(10_000);
    let mut group = c.benchmark_group("parse");
    group.sample_size(10);
    group.throughput(Throughput::Bytes(doc.len() as u64));
    group.bench_function("10000_experiments", |b| {
        b.iter_batched(
            || doc.as_str(),
            |d| black_box(Config::parse(d).map(|c| c.len())),
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

mod group {
    #![allow(missing_docs)]
    use super::{parse, scenarios};
    criterion::criterion_group!(benches, scenarios, parse);
}

criterion_main!(group::benches);
