//! Criterion benches of `experiments-watch`: loading a 10,000-experiment file, and reader
//! latency (`snapshot` + one evaluation) idle and while reloads run in a loop.
//! `cargo bench -p xtask --bench watch`.

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use criterion::{Criterion, criterion_main};
use experiments_core::{Inputs, NoTrace};
use experiments_watch::{ConfigWatcher, DEFAULT_MAX_FILE_SIZE, Snapshot, WatchSettings};
use xtask::bench::{NOW, generate_document};

fn load(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("experiments.json");
    std::fs::write(&path, generate_document(10_000)).expect("write");
    let mut group = c.benchmark_group("watch");
    group.sample_size(10);
    group.bench_function("load_10000_experiments", |b| {
        b.iter(|| black_box(Snapshot::load(&path, DEFAULT_MAX_FILE_SIZE).map(|s| s.version)))
    });
    group.finish();
}

fn read(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("experiments.json");
    let (a, b) = (generate_document(1_000), generate_document(1_001));
    std::fs::write(&path, &a).expect("write");
    let settings = {
        let mut ps = WatchSettings::for_path(&path);
        ps.poll_interval = Duration::from_millis(50);
        ps
    };
    let watcher = ConfigWatcher::start(settings).expect("watcher");
    let inputs = Inputs::new()
        .with("user_id", "t2_abc")
        .with("logged_in", true)
        .with("app_name", "ios")
        .with("num_votes", 9);
    let read_once = || {
        watcher
            .with_snapshot(|s| {
                s.config
                    .evaluate("generated_2", &inputs, NOW, &mut NoTrace)
                    .ok()
                    .flatten()
                    .map(|e| e.variant.is_some())
            })
            .ok()
    };
    let mut group = c.benchmark_group("watch");
    group.bench_function("read_idle", |bench| bench.iter(|| black_box(read_once())));

    let stop = Arc::new(AtomicBool::new(false));
    let writes = Arc::new(AtomicU64::new(0));
    let writer = {
        let (stop, writes, path) = (Arc::clone(&stop), Arc::clone(&writes), path.clone());
        std::thread::spawn(move || {
            let tmp = path.with_extension("tmp");
            while !stop.load(Ordering::Relaxed) {
                let text = if writes.load(Ordering::Relaxed) % 2 == 0 { &b } else { &a };
                if std::fs::write(&tmp, text).and_then(|()| std::fs::rename(&tmp, &path)).is_ok() {
                    writes.fetch_add(1, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    let before = watcher.status().store.version.unwrap_or(0);
    group.bench_function("read_while_reloading", |bench| bench.iter(|| black_box(read_once())));
    stop.store(true, Ordering::Relaxed);
    let _ = writer.join();
    let after = watcher.status().store.version.unwrap_or(0);
    eprintln!(
        "reloads during the measurement: {} (file writes: {})",
        after - before,
        writes.load(Ordering::Relaxed)
    );
    group.finish();
}

mod group {
    #![allow(missing_docs)]
    use super::{load, read};
    criterion::criterion_group!(benches, load, read);
}

criterion_main!(group::benches);
