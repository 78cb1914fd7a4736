//! Criterion benches for the reddit-decider dialect: scenarios d and e of
//! `../shared/bench/README.md` (one full decision per iteration), an unknown feature, and
//! loading a generated 10,000-feature document. `cargo bench -p xtask --bench decider`.

use std::hint::black_box;
use std::path::Path;

use criterion::{BatchSize, Criterion, Throughput, criterion_main};
use experiments_decider::{Context, Manifest};
use xtask::bench::decider::{self, SCENARIOS, Workload};

fn shared() -> Manifest {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/bench/decider.json");
    decider::load(&path).unwrap_or_else(|e| panic!("{e}"))
}

fn decisions(c: &mut Criterion) {
    let manifest = shared();
    let work = Workload::new();
    let mut ctx = Context::new();
    let mut group = c.benchmark_group("decider");
    group.throughput(Throughput::Elements(1));
    for s in SCENARIOS {
        let mut i = 0usize;
        group.bench_function(format!("choose_{}", s.letter), |b| {
            b.iter(|| {
                decider::fill(&mut ctx, i, work.id(i));
                i = (i + 1) % work.len();
                black_box(manifest.choose(s.feature, &ctx).ok().and_then(|d| d.variant()).is_some())
            })
        });
    }
    group.bench_function("unknown_feature", |b| {
        b.iter(|| black_box(manifest.choose("no_such_feature", &ctx).is_err()))
    });
    group.finish();
}

fn load(c: &mut Criterion) {
    let doc = decider::generate_document(10_000);
    let mut group = c.benchmark_group("decider_load");
    group.sample_size(10);
    group.throughput(Throughput::Bytes(doc.len() as u64));
    group.bench_function("features_10000", |b| {
        b.iter_batched(
            || doc.as_bytes(),
            |bytes| {
                let m = Manifest::from_slice(bytes).unwrap_or_else(|e| panic!("{e}"));
                assert!(m.errors().is_empty(), "{:?}", m.errors().iter().next());
                black_box(m)
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

mod group {
    #![allow(missing_docs)]
    use super::*;
    criterion::criterion_group!(benches, decisions, load);
}

criterion_main!(group::benches);
