//! `cargo xtask conformance|bench` — the project's automation, in Rust.

use std::alloc::{GlobalAlloc, Layout};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};

use xtask::bench;

mod ofrep_clients;
mod ofrep_web;

const USAGE: &str = "usage: cargo xtask <command>

commands:
  conformance [DIR|FILE ...]   replay conformance vectors, baseplate or reddit-decider files
                               (default ../shared/conformance/vectors ../shared/decider/vectors)
  bench-http [--events N]      sustained events/s into a loopback collector, gzip on
  bench-kafka [--events N]     sustained events/s and end-to-end latency to the local broker
  bench-serve [--seconds N] [--connections C]
                               sustained OFREP evaluations/s and latency against a release
                               `experiments serve` (default 10 s, 32 keep-alive connections),
                               events into a loopback collector; non-zero exit on a non-200
                               or an event not accounted for
  ofrep-python --python PATH   interop with the OpenFeature Python SDK and its OFREP provider
                               (installed in PATH's environment) against `experiments serve`;
                               non-zero exit on any disagreement with the engines
  ofrep-js --node-dir DIR      the same with the OpenFeature JavaScript server SDK and its
                               OFREP provider (installed in DIR/node_modules), run by `node`
  ofrep-rust                   the same with the OpenFeature Rust OFREP provider from crates.io
                               (open-feature-ofrep 0.1.2), linked in and run in-process
  ofrep-web --node-dir DIR --chromium PATH
                               the same with the OpenFeature web SDK and its OFREP web provider
                               (DIR/node_modules, bundled by its esbuild) in headless Chromium,
                               across origins (CORS), and refused from an origin not allowed
  services up|down             install if missing, start / stop the Kafka broker on 127.0.0.1:9092
  bench [--runs N] [--config FILE] [--decider-config FILE] [--scenario a|b|c|d|e]
                               time the shared scenarios (default ../shared/bench/experiments.json
                               for a-c, ../shared/bench/decider.json for d-e)
  fuzz [--seconds N] [--target NAME]
                               bounded coverage-guided fuzzing (cargo-fuzz, fuzz/): each target
                               (default: all) N seconds (default 60); non-zero exit on a crash";

/// Counts heap allocations so the bench can report allocations per call; allocates with
/// mimalloc, as a service logging from many threads should.
struct CountingAlloc;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards every call unchanged to the system allocator; only counts.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { mimalloc::MiMalloc.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { mimalloc::MiMalloc.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { mimalloc::MiMalloc.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("conformance") => conformance(&args[1..]),
        Some("bench") => run_bench(&args[1..]),
        Some("bench-http") => run_bench_http(&args[1..]),
        Some("bench-kafka") => run_bench_kafka(&args[1..]),
        Some("bench-serve") => xtask::serve_bench::run(&args[1..]),
        Some(task @ ("ofrep-python" | "ofrep-js" | "ofrep-rust" | "ofrep-web")) => {
            ofrep_clients::run(task, &args[1..])
        }
        Some("fuzz") => xtask::fuzz::run(&args[1..]),
        Some("services") => {
            let result = match args.get(1).map(String::as_str) {
                Some("up") => xtask::services::up(),
                Some("down") => xtask::services::down(),
                _ => Err(USAGE.to_owned()),
            };
            match result {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("services: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        _ => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}

fn conformance(args: &[String]) -> ExitCode {
    let dirs: Vec<PathBuf> = if args.is_empty() {
        vec![
            PathBuf::from("../shared/conformance/vectors"),
            PathBuf::from("../shared/decider/vectors"),
        ]
    } else {
        args.iter().map(PathBuf::from).collect()
    };
    let result =
        xtask::conformance::collect_files(&dirs).and_then(|f| xtask::conformance::run_files(&f));
    match result {
        Ok(summary) => ExitCode::from(xtask::conformance::report(&summary, 50) as u8),
        Err(e) => {
            eprintln!("conformance: {e}");
            ExitCode::from(2)
        }
    }
}

fn run_bench(args: &[String]) -> ExitCode {
    let mut runs = 7usize;
    let mut only: Option<char> = None;
    let mut config_path = PathBuf::from("../shared/bench/experiments.json");
    let mut decider_path = PathBuf::from("../shared/bench/decider.json");
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match (a.as_str(), it.next()) {
            ("--runs", Some(n)) => match n.parse() {
                Ok(n) if n >= 5 => runs = n,
                _ => {
                    eprintln!("--runs needs a number >= 5");
                    return ExitCode::from(2);
                }
            },
            ("--config", Some(p)) => config_path = PathBuf::from(p),
            ("--decider-config", Some(p)) => decider_path = PathBuf::from(p),
            ("--scenario", Some(s)) if s.len() == 1 => only = s.chars().next(),
            _ => {
                eprintln!("{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    let config = match bench::load_config(&config_path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("bench: {e}");
            return ExitCode::from(2);
        }
    };
    let mut ok = true;
    for s in bench::SCENARIOS.into_iter().filter(|s| only.is_none_or(|c| c == s.letter)) {
        let work = bench::Workload::new(s);
        let mut inputs = bench::template(s);
        // Warm-up pass, then one counted pass for allocations, then the timed runs.
        bench::run_pass(&config, &work, &mut inputs);
        let before = ALLOCATIONS.load(Ordering::Relaxed);
        let nonnull = bench::run_pass(&config, &work, &mut inputs);
        let allocs = ALLOCATIONS.load(Ordering::Relaxed) - before;
        let timing = bench::time_scenario(&config, &work, &mut inputs, runs);
        ok &= report_scenario(
            s.letter,
            work.len(),
            (nonnull, allocs),
            (timing.ns_per_call, &timing.runs),
            ("Python", s.python_nonnull),
        );
    }
    let decider: Vec<_> = bench::decider::SCENARIOS
        .into_iter()
        .filter(|s| only.is_none_or(|c| c == s.letter))
        .collect();
    if decider.is_empty() {
        return if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE };
    }
    let manifest = match bench::decider::load(&decider_path) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("bench: {e}");
            return ExitCode::from(2);
        }
    };
    let work = bench::decider::Workload::new();
    let mut ctx = experiments_decider::Context::new();
    for s in decider {
        bench::decider::run_pass(&manifest, s, &work, &mut ctx);
        let before = ALLOCATIONS.load(Ordering::Relaxed);
        let nonnull = bench::decider::run_pass(&manifest, s, &work, &mut ctx);
        let allocs = ALLOCATIONS.load(Ordering::Relaxed) - before;
        let (_, median, runs_ns) = bench::decider::time(&manifest, s, &work, &mut ctx, runs);
        ok &= report_scenario(
            s.letter,
            work.len(),
            (nonnull, allocs),
            (median, &runs_ns),
            ("reddit-decider", s.reference_nonnull),
        );
    }
    ok &= bench_decider_requests(&decider_path, &work, only, runs);
    if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

/// The wrapper's per-request `get_variant` for scenarios d and e through the service client,
/// with every exposure queued into its pipeline (a sink that drops batches): one line per
/// scenario, `scenario=d-request calls=.. nonnull=.. ns_per_call=.. allocs_per_call=..
/// python_us_per_call=..` (the bench README's Python wrapper figure).
fn bench_decider_requests(
    path: &std::path::Path,
    work: &bench::decider::Workload,
    only: Option<char>,
    runs: usize,
) -> bool {
    use experiments_sdk::events::{Batch, EventSink, ExportOutcome, PipelineSettings, async_trait};
    struct Drop;
    #[async_trait]
    impl EventSink for Drop {
        async fn export(&self, _batch: &Batch) -> ExportOutcome {
            ExportOutcome::Delivered
        }
    }
    let Ok(bytes) = std::fs::read(path) else { return false };
    let Ok(rt) = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()
    else {
        return false;
    };
    let mut events = PipelineSettings::default();
    events.queue_capacity = 4 * bench::decider::CALLS;
    let client = rt.block_on(
        experiments_sdk::ExperimentsClient::builder()
            .config_source(bench::decider::Document(bytes))
            .dialect(Some(experiments_sdk::watch::Dialect::Decider))
            .events(events)
            .sink(Drop)
            .build(),
    );
    let Ok(client) = client else { return false };
    let _guard = rt.enter();
    let mut ok = true;
    for (s, python_us) in bench::decider::SCENARIOS.into_iter().zip([17.8, 17.3]) {
        if only.is_some_and(|c| c != s.letter) {
            continue;
        }
        let flush = || {
            rt.block_on(
                client.pipeline().map(|p| p.flush(std::time::Duration::from_secs(60))).unwrap(),
            )
        };
        bench::decider::request_pass(&client, s, work);
        flush();
        let before = ALLOCATIONS.load(Ordering::Relaxed);
        let nonnull = bench::decider::request_pass(&client, s, work);
        let allocs = ALLOCATIONS.load(Ordering::Relaxed) - before;
        flush();
        let mut runs_ns: Vec<f64> = (0..runs.max(1))
            .map(|_| {
                let start = std::time::Instant::now();
                bench::decider::request_pass(&client, s, work);
                let ns = start.elapsed().as_nanos() as f64 / work.len() as f64;
                flush();
                ns
            })
            .collect();
        runs_ns.sort_by(f64::total_cmp);
        let median = runs_ns[runs_ns.len() / 2];
        let dropped = client.pipeline().map_or(0, |p| p.counters().dropped.total());
        println!(
            "scenario={}-request calls={} nonnull={nonnull} ns_per_call={median:.1} allocs_per_call={:.1} python_us_per_call={python_us} dropped_events={dropped}",
            s.letter,
            work.len(),
            allocs as f64 / work.len() as f64
        );
        ok &= nonnull == s.reference_nonnull && dropped == 0;
    }
    rt.block_on(client.shutdown(std::time::Duration::from_secs(10)));
    ok
}

/// Prints a scenario's line as tools read it (`scenario=.. calls=.. nonnull=.. ns_per_call=..
/// allocs_per_call=..`) and its runs; `false` when the non-null count differs from the
/// reference's (then the figures measure other work).
fn report_scenario(
    letter: char,
    calls: usize,
    (nonnull, allocs): (usize, u64),
    (median, runs): (f64, &[f64]),
    (reference, reference_nonnull): (&str, usize),
) -> bool {
    println!(
        "scenario={letter} calls={calls} nonnull={nonnull} ns_per_call={median:.1} allocs_per_call={}",
        allocs as f64 / calls as f64
    );
    let runs_text: Vec<String> = runs.iter().map(|r| format!("{r:.1}")).collect();
    eprintln!("  runs (ns/call): {}", runs_text.join(" "));
    if nonnull != reference_nonnull {
        eprintln!(
            "  MISMATCH: {reference} reports nonnull={reference_nonnull} for scenario {letter}"
        );
    }
    nonnull == reference_nonnull
}

fn run_bench_http(args: &[String]) -> ExitCode {
    let n = match args {
        [] => 200_000,
        [flag, n] if flag == "--events" => match n.parse() {
            Ok(n) => n,
            Err(_) => {
                eprintln!("{USAGE}");
                return ExitCode::from(2);
            }
        },
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match xtask::sinks::bench_http(n) {
        Ok(f) => {
            println!(
                "sink=http events={} delivered={} seconds={:.2} events_per_sec={:.0} wire_bytes_per_event={:.1} body_bytes_per_event={:.1} requests={}",
                f.events,
                f.delivered,
                f.elapsed.as_secs_f64(),
                f.delivered as f64 / f.elapsed.as_secs_f64(),
                f.wire_bytes_per_event,
                f.body_bytes_per_event,
                f.requests
            );
            if f.delivered == f.events { ExitCode::SUCCESS } else { ExitCode::FAILURE }
        }
        Err(e) => {
            eprintln!("bench-http: {e}");
            ExitCode::from(2)
        }
    }
}

fn run_bench_kafka(args: &[String]) -> ExitCode {
    let n = match args {
        [] => 300_000,
        [flag, n] if flag == "--events" => n.parse().unwrap_or(300_000),
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let brokers = std::env::var("EXPERIMENTS_KAFKA_BROKERS")
        .unwrap_or_else(|_| xtask::services::KAFKA_ADDR.into());
    match xtask::sinks::bench_kafka(&brokers, n, 2_000) {
        Ok(f) => {
            let t = &f.throughput;
            println!(
                "sink=kafka broker=tansu-0.6.0-memory encoding=json events={} delivered={} seconds={:.2} events_per_sec={:.0}",
                t.events,
                t.delivered,
                t.elapsed.as_secs_f64(),
                t.delivered as f64 / t.elapsed.as_secs_f64()
            );
            println!(
                "sink=kafka latency_rate={}/s events={} p50_ms={} p99_ms={}",
                f.latency_rate, f.latency_events, f.latency_p50_ms, f.latency_p99_ms
            );
            if t.delivered == t.events { ExitCode::SUCCESS } else { ExitCode::FAILURE }
        }
        Err(e) => {
            eprintln!("bench-kafka: {e}");
            ExitCode::from(2)
        }
    }
}
