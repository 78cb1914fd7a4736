//! Criterion benches of `experiments-events`: the cost of `log` on the request path (one
//! thread, and four threads at once) and the pipeline's throughput into a no-op sink.
//! `cargo bench -p xtask --bench events`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_main};
use experiments_core::{Config, Experiments, Inputs};
use experiments_events::{
    Batch, EventSink, ExportOutcome, Pipeline, PipelineSettings, async_trait,
};

// Services that log many events from many threads should use a modern allocator: with
// glibc's, freeing on the pipeline thread what request threads allocated dominates `log`.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Noop;

#[async_trait]
impl EventSink for Noop {
    async fn export(&self, _batch: &Batch) -> ExportOutcome {
        ExportOutcome::Delivered
    }
}

const CONFIG: &str = r#"{"e": {"id": 1, "name": "e", "owner": "bench", "type": "feature_rollout",
  "version": "1", "start_ts": 0, "stop_ts": 4102444800,
  "experiment": {"experiment_version": 1, "variants": [{"name": "on", "size": 1.0}]}}}"#;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime")
}

/// Times `iters` logs spread over `threads` producers, in rounds of at most 10,000 events
/// per producer with an untimed flush between rounds, so the queue never overflows and the
/// figure is the request-path cost of accepted events.
fn timed_logs(
    rt: &tokio::runtime::Runtime,
    pipeline: &Pipeline,
    config: &Config,
    inputs: &Inputs,
    iters: u64,
    threads: u64,
) -> Duration {
    let mut total = Duration::ZERO;
    let mut left = iters;
    while left > 0 {
        let round = left.min(10_000 * threads);
        left -= round;
        let per_thread = round / threads;
        let start = Instant::now();
        std::thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(|| {
                    let mut request = Experiments::new(config, 1.7e9, pipeline.sink(None));
                    for _ in 0..per_thread {
                        black_box(request.expose("e", Some("on"), inputs));
                    }
                });
            }
        });
        total += start.elapsed();
        rt.block_on(pipeline.flush(Duration::from_secs(30)));
    }
    // Wall time per event: with several producers, events are logged in parallel.
    total
}

fn log_cost(c: &mut Criterion) {
    let rt = runtime();
    let _guard = rt.enter();
    let pipeline = Pipeline::start(PipelineSettings::default(), Noop).expect("pipeline");
    let config = Config::parse(CONFIG).expect("config");
    let inputs =
        Inputs::new().with("user_id", "t2_abc").with("logged_in", true).with("app_name", "ios");
    let mut group = c.benchmark_group("events");
    group.throughput(Throughput::Elements(1));
    group.bench_function("expose_enrich_only", |b| {
        let mut sink = experiments_core::FnHandler(|e: &experiments_core::Event<'_>| {
            black_box(experiments_events::EnrichedEvent::new(e, None));
        });
        let mut request = Experiments::new(&config, 1.7e9, &mut sink);
        b.iter(|| black_box(request.expose("e", Some("on"), &inputs)))
    });
    group.bench_function("expose_noop", |b| {
        let mut request = Experiments::new(&config, 1.7e9, experiments_core::NoopHandler);
        b.iter(|| black_box(request.expose("e", Some("on"), &inputs)))
    });
    group.bench_function("log_one_thread", |b| {
        b.iter_custom(|iters| timed_logs(&rt, &pipeline, &config, &inputs, iters, 1))
    });
    group.bench_function("log_two_threads", |b| {
        b.iter_custom(|iters| timed_logs(&rt, &pipeline, &config, &inputs, iters, 2))
    });
    group.finish();
    let c = pipeline.counters();
    eprintln!(
        "log benches: accepted {} delivered {} queue_full {}",
        c.accepted, c.delivered, c.dropped.queue_full
    );
    rt.block_on(pipeline.shutdown(Duration::from_secs(30)));
}

fn throughput(c: &mut Criterion) {
    let rt = runtime();
    let _guard = rt.enter();
    let config = Config::parse(CONFIG).expect("config");
    let inputs =
        Inputs::new().with("user_id", "t2_abc").with("logged_in", true).with("app_name", "ios");
    let mut group = c.benchmark_group("events");
    group.sample_size(10);
    const N: u64 = 100_000;
    group.throughput(Throughput::Elements(N));
    group.bench_function("pipeline_100k_into_noop_sink", |b| {
        b.iter(|| {
            let settings = {
                let mut ps = PipelineSettings::default();
                ps.queue_capacity = N as usize;
                ps
            };
            let pipeline = Pipeline::start(settings, Noop).expect("pipeline");
            let mut request = Experiments::new(&config, 1.7e9, pipeline.sink(None));
            for _ in 0..N {
                request.expose("e", Some("on"), &inputs);
            }
            let report = rt.block_on(pipeline.shutdown(Duration::from_secs(60)));
            assert_eq!(report.counters.delivered, N);
        })
    });
    group.finish();
}

mod group {
    #![allow(missing_docs)]
    use super::{log_cost, throughput};
    criterion::criterion_group!(benches, log_cost, throughput);
}

criterion_main!(group::benches);
