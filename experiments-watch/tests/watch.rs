//! The watcher on a real temporary directory: every kind of change and failure.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use experiments_watch::{ConfigWatcher, StartError, WatchEvent, WatchSettings};

const PICKUP: Duration = Duration::from_secs(2);

fn doc(n: usize) -> String {
    let entries: Vec<String> = (0..n)
        .map(|i| {
            format!(
                r#""e{i}": {{"id": {i}, "name": "e{i}", "type": "feature_flag", "start_ts": 0,
                "stop_ts": 4102444800, "experiment": {{"variants": {{"active": 100}}}}}}"#
            )
        })
        .collect();
    format!("{{{}}}", entries.join(","))
}

/// Writes via a temporary file and a rename, as the config fetcher does.
fn write_atomic(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    fs::write(&tmp, text).unwrap();
    fs::rename(&tmp, path).unwrap();
}

struct Harness {
    _dir: tempfile::TempDir,
    path: PathBuf,
    events: Receiver<WatchEvent>,
    watcher: ConfigWatcher,
}

fn settings(path: &Path) -> WatchSettings {
    // A long poll interval: changes must be seen through notifications within PICKUP.
    {
        let mut ps = WatchSettings::for_path(path);
        ps.poll_interval = Duration::from_secs(30);
        ps
    }
}

fn start_with(initial: Option<&str>, configure: impl FnOnce(&mut WatchSettings)) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("experiments.json");
    if let Some(text) = initial {
        fs::write(&path, text).unwrap();
    }
    let (tx, events) = mpsc::channel();
    let mut s = settings(&path);
    configure(&mut s);
    let watcher = ConfigWatcher::builder(s)
        .on_event(move |e| {
            let _ = tx.send(e.clone());
        })
        .start()
        .unwrap();
    Harness { _dir: dir, path, events, watcher }
}

fn start(initial: Option<&str>) -> Harness {
    start_with(initial, |_| {})
}

impl Harness {
    /// The next event, within `PICKUP`.
    fn next(&self) -> WatchEvent {
        self.events.recv_timeout(PICKUP).expect("a state change within 2 s")
    }

    fn version(&self) -> u64 {
        self.watcher.snapshot().unwrap().version
    }
}

fn loaded(version: u64, experiments: usize) -> WatchEvent {
    WatchEvent::Loaded { version, experiments, invalid: 0 }
}

#[test]
fn initial_load_and_identical_rewrites() {
    let h = start(Some(&doc(2)));
    assert_eq!(h.next(), loaded(1, 2));
    let snap = h.watcher.snapshot().unwrap();
    assert_eq!(snap.config.len(), 2);
    assert_eq!(snap.digest.len(), 64);
    // Same bytes, new file: no new version, no event.
    write_atomic(&h.path, &doc(2));
    assert!(h.events.recv_timeout(Duration::from_millis(500)).is_err());
    assert_eq!(h.version(), 1);
}

#[test]
fn rename_over_is_picked_up() {
    let h = start(Some(&doc(1)));
    assert_eq!(h.next(), loaded(1, 1));
    write_atomic(&h.path, &doc(3));
    assert_eq!(h.next(), loaded(2, 3));
    assert_eq!(h.watcher.snapshot().unwrap().config.len(), 3);
}

#[test]
fn in_place_rewrite_is_picked_up() {
    let h = start(Some(&doc(1)));
    assert_eq!(h.next(), loaded(1, 1));
    fs::write(&h.path, doc(4)).unwrap();
    // An in-place write may be seen half-written first; the final state must be loaded.
    let deadline = Instant::now() + PICKUP;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match h.events.recv_timeout(left).expect("loaded within 2 s") {
            WatchEvent::Loaded { experiments: 4, .. } => break,
            WatchEvent::Kept { .. } => continue,
            other => panic!("unexpected {other}"),
        }
    }
}

#[test]
fn delete_then_recreate_keeps_then_recovers() {
    let h = start(Some(&doc(2)));
    assert_eq!(h.next(), loaded(1, 2));
    fs::remove_file(&h.path).unwrap();
    match h.next() {
        WatchEvent::Kept { version: 1, error } => {
            assert!(error.contains("does not exist"), "{error}")
        }
        other => panic!("unexpected {other}"),
    }
    // Readers still get the last good snapshot.
    assert_eq!(h.watcher.snapshot().unwrap().config.len(), 2);
    let status = h.watcher.status();
    assert!(status.store.consecutive_failures >= 1);
    assert!(status.store.last_error.unwrap().contains("does not exist"));
    fs::write(&h.path, doc(5)).unwrap();
    let deadline = Instant::now() + PICKUP;
    while !matches!(
        h.events.recv_timeout(deadline.saturating_duration_since(Instant::now())),
        Ok(WatchEvent::Loaded { version: 2, experiments: 5, .. })
    ) {
        assert!(Instant::now() < deadline, "not recovered within 2 s");
    }
    assert_eq!(h.watcher.status().store.consecutive_failures, 0);
}

#[cfg(unix)]
#[test]
fn kubernetes_data_symlink_swap() {
    use std::os::unix::fs::symlink;
    let dir = tempfile::tempdir().unwrap();
    let d1 = dir.path().join("..2026_01");
    let d2 = dir.path().join("..2026_02");
    fs::create_dir(&d1).unwrap();
    fs::create_dir(&d2).unwrap();
    fs::write(d1.join("experiments.json"), doc(1)).unwrap();
    fs::write(d2.join("experiments.json"), doc(6)).unwrap();
    symlink("..2026_01", dir.path().join("..data")).unwrap();
    let path = dir.path().join("experiments.json");
    symlink("..data/experiments.json", &path).unwrap();
    let (tx, rx) = mpsc::channel();
    let watcher = ConfigWatcher::builder(settings(&path))
        .on_event(move |e| {
            let _ = tx.send(e.clone());
        })
        .start()
        .unwrap();
    assert_eq!(rx.recv_timeout(PICKUP).unwrap(), loaded(1, 1));
    // The kubelet's swap: a new symlink renamed over `..data`.
    symlink("..2026_02", dir.path().join("..data_tmp")).unwrap();
    fs::rename(dir.path().join("..data_tmp"), dir.path().join("..data")).unwrap();
    assert_eq!(rx.recv_timeout(PICKUP).unwrap(), loaded(2, 6));
    assert_eq!(watcher.snapshot().unwrap().config.len(), 6);
}

#[test]
fn broken_contents_keep_the_last_good_snapshot() {
    let h = start(Some(&doc(2)));
    assert_eq!(h.next(), loaded(1, 2));
    let full = doc(3);
    // (contents, expected error, whether its cause differs from the previous file's)
    for (bad, expect, new_cause) in [
        ("{not json", "not valid JSON", true),
        (&full[..full.len() / 2], "not valid JSON", false),
        ("", "empty", true),
        ("   \n", "empty", false),
        ("[1, 2]", "JSON object", true),
    ] {
        // Let the checks of the previous file settle before taking the baseline.
        std::thread::sleep(Duration::from_millis(150));
        let failures = h.watcher.status().store.consecutive_failures;
        write_atomic(&h.path, bad);
        if new_cause {
            match h.next() {
                WatchEvent::Kept { version: 1, error } => {
                    assert!(error.contains(expect), "{bad:?}: {error}");
                    assert!(!error.contains('\n'));
                }
                other => panic!("{bad:?}: unexpected {other}"),
            }
        } else {
            // The same cause again: no new event, but the status follows the file.
            let deadline = Instant::now() + PICKUP;
            while h.watcher.status().store.consecutive_failures <= failures {
                assert!(Instant::now() < deadline, "{bad:?} not checked within 2 s");
                std::thread::sleep(Duration::from_millis(10));
            }
            std::thread::sleep(Duration::from_millis(100));
            assert_eq!(h.events.try_recv().ok(), None, "{bad:?}: reported twice");
        }
        let error = h.watcher.status().store.last_error.unwrap();
        assert!(error.contains(expect), "{bad:?}: {error}");
        assert_eq!(h.watcher.snapshot().unwrap().config.len(), 2);
    }
    write_atomic(&h.path, &doc(2));
    // Back to the served bytes: the error clears, the version stays.
    assert_eq!(h.next(), loaded(1, 2));
    assert_eq!(h.watcher.status().store.consecutive_failures, 0);
}

#[test]
fn oversized_files_and_directories_are_refused() {
    let h = start_with(Some(&doc(1)), |s| s.max_file_size = 1000);
    assert_eq!(h.next(), loaded(1, 1));
    write_atomic(&h.path, &doc(40));
    match h.next() {
        WatchEvent::Kept { error, .. } => assert!(error.contains("over the limit"), "{error}"),
        other => panic!("unexpected {other}"),
    }
    fs::remove_file(&h.path).unwrap();
    let _ = h.next();
    fs::create_dir(&h.path).unwrap();
    let deadline = Instant::now() + PICKUP;
    loop {
        match h.events.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(WatchEvent::Kept { error, .. }) if error.contains("is a directory") => break,
            Ok(_) => continue,
            Err(_) => panic!("directory not reported within 2 s"),
        }
    }
    assert_eq!(h.watcher.snapshot().unwrap().config.len(), 1);
}

#[cfg(unix)]
#[test]
fn unreadable_file() {
    use std::os::unix::fs::PermissionsExt;
    let h = start(Some(&doc(1)));
    assert_eq!(h.next(), loaded(1, 1));
    let tmp = h.path.with_extension("tmp");
    fs::write(&tmp, doc(2)).unwrap();
    fs::set_permissions(&tmp, fs::Permissions::from_mode(0o000)).unwrap();
    let privileged = fs::read(&tmp).is_ok();
    fs::rename(&tmp, &h.path).unwrap();
    match h.next() {
        // As root the kernel does not enforce the mode: the file simply loads.
        WatchEvent::Loaded { version: 2, experiments: 2, .. } if privileged => {}
        WatchEvent::Kept { version: 1, error } if !privileged => {
            assert!(error.contains("permission denied"), "{error}")
        }
        other => panic!("unexpected {other} (privileged: {privileged})"),
    }
}

#[test]
fn startup_without_a_file() {
    // No timeout: return at once, readers get a clear "unavailable".
    let h = start(None);
    assert!(matches!(h.next(), WatchEvent::Unavailable { .. }));
    let err = h.watcher.snapshot().unwrap_err();
    assert!(err.to_string().contains("experiments.json"), "{err}");
    assert!(err.error.contains("does not exist"), "{err}");
    assert_eq!(h.watcher.status().store.version, None);
    write_atomic(&h.path, &doc(1));
    assert_eq!(h.next(), loaded(1, 1));
}

#[test]
fn startup_timeout_names_the_path_and_cause() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing.json");
    let started = Instant::now();
    let settings = {
        let mut ps = WatchSettings::for_path(&path);
        ps.timeout = Some(Duration::from_millis(300));
        ps.backoff = Some(Duration::from_millis(20));
        ps
    };
    match ConfigWatcher::start(settings) {
        Err(StartError::Timeout { path: p, last_error, .. }) => {
            assert_eq!(p, path);
            assert!(last_error.contains("does not exist"), "{last_error}");
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(300), "{waited:?}");
}

#[test]
fn a_zero_startup_timeout_still_checks_the_file_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("experiments.json");
    fs::write(&path, doc(2)).unwrap();
    let settings = {
        let mut ps = WatchSettings::for_path(&path);
        ps.timeout = Some(Duration::ZERO);
        ps
    };
    let watcher = ConfigWatcher::start(settings).expect("the file is there at once");
    assert_eq!(watcher.snapshot().unwrap().config.len(), 2);
}

#[test]
fn startup_waits_for_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("experiments.json");
    let writer = {
        let path = path.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            write_atomic(&path, &doc(2));
        })
    };
    let settings = {
        let mut ps = WatchSettings::for_path(&path);
        ps.timeout = Some(Duration::from_secs(5));
        ps
    };
    let watcher = ConfigWatcher::start(settings).expect("the file appears within the timeout");
    assert_eq!(watcher.snapshot().unwrap().config.len(), 2);
    writer.join().unwrap();
}

#[test]
fn polling_alone_finds_a_file_when_notifications_cannot_start() {
    // The parent directory does not exist yet, so it cannot be watched: only the poll runs.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("later").join("experiments.json");
    let settings = {
        let mut ps = WatchSettings::for_path(&path);
        ps.poll_interval = Duration::from_millis(100);
        ps
    };
    let watcher = ConfigWatcher::start(settings).unwrap();
    assert!(!watcher.status().notifications);
    fs::create_dir(path.parent().unwrap()).unwrap();
    fs::write(&path, doc(3)).unwrap();
    let deadline = Instant::now() + PICKUP;
    while watcher.snapshot().is_err() {
        assert!(Instant::now() < deadline, "not loaded by polling within 2 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(watcher.snapshot().unwrap().config.len(), 3);
}

#[test]
fn readers_only_see_complete_snapshots() {
    let h = start(Some(&doc(10)));
    assert_eq!(h.next(), loaded(1, 10));
    let watcher = Arc::new(h.watcher);
    let stop = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicUsize::new(0));
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (watcher, stop, reads) =
                (Arc::clone(&watcher), Arc::clone(&stop), Arc::clone(&reads));
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let snap = watcher.snapshot().expect("a snapshot is always available");
                    let n = snap.config.len();
                    assert!(n == 10 || n == 20, "incomplete snapshot with {n} experiments");
                    assert_eq!(snap.report.experiments, n);
                    reads.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    let (a, b) = (doc(10), doc(20));
    for i in 0..200 {
        let text = if i % 2 == 0 { &b } else { &a };
        if i % 3 == 0 {
            // In place: the watcher may see a torn file, which must never be published.
            fs::write(&h.path, text).unwrap();
        } else {
            write_atomic(&h.path, text);
        }
        if i % 20 == 0 {
            std::thread::sleep(Duration::from_millis(40));
        }
    }
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        r.join().expect("no reader saw a torn snapshot");
    }
    assert!(reads.load(Ordering::Relaxed) > 1000);
    assert!(watcher.status().store.version.unwrap() > 1, "reloads happened");
}

#[test]
fn dropping_the_watcher_stops_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("experiments.json");
    fs::write(&path, doc(1)).unwrap();
    let seen = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&seen);
    let watcher = ConfigWatcher::builder(settings(&path))
        .on_event(move |_| {
            counter.fetch_add(1, Ordering::SeqCst);
        })
        .start()
        .unwrap();
    assert_eq!(seen.load(Ordering::SeqCst), 1);
    drop(watcher);
    write_atomic(&path, &doc(2));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(seen.load(Ordering::SeqCst), 1, "no checks after drop");
}

#[test]
fn settings_use_baseplate_names_and_human_durations() {
    let s: WatchSettings = serde_json::from_str(
        r#"{"path": "/etc/exp.json", "timeout": "30s", "backoff": "500ms", "poll_interval": "2s"}"#,
    )
    .unwrap();
    assert_eq!(s.path, PathBuf::from("/etc/exp.json"));
    assert_eq!(s.timeout, Some(Duration::from_secs(30)));
    assert_eq!(s.backoff, Some(Duration::from_millis(500)));
    assert_eq!(s.poll_interval, Duration::from_secs(2));
    assert_eq!(s.max_file_size, 10 * 1024 * 1024);
    let d: WatchSettings = serde_json::from_str("{}").unwrap();
    assert_eq!(d, WatchSettings::default());
    assert_eq!(d.path, PathBuf::from("/var/local/experiments.json"));
    assert!(serde_json::from_str::<WatchSettings>(r#"{"timeout": "soon"}"#).is_err());
    assert!(serde_json::from_str::<WatchSettings>(r#"{"unknown": 1}"#).is_err());
}

#[test]
fn status_reports_freshness() {
    let h = start(Some(&doc(2)));
    assert_eq!(h.next(), loaded(1, 2));
    let s = h.watcher.status();
    assert_eq!(s.store.version, Some(1));
    assert!(s.store.age.unwrap() < Duration::from_secs(5));
    assert!(s.notifications);
    assert_eq!(s.store.consecutive_failures, 0);
    assert_eq!(s.store.last_error, None);
    assert!(s.store.last_check.is_some());
}

/// Runs `f` on its own thread and fails the test if it has not returned within `limit`, so a
/// regression that blocks fails the suite instead of hanging it (the stuck thread is leaked).
fn within<T: Send + 'static>(
    limit: Duration,
    what: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(limit) {
        Ok(v) => v,
        Err(mpsc::RecvTimeoutError::Disconnected) => panic!("{what} panicked (message above)"),
        Err(mpsc::RecvTimeoutError::Timeout) => {
            panic!("{what} did not return within {limit:?} (blocked)")
        }
    }
}

#[cfg(unix)]
fn mkfifo(path: &Path) {
    let status = std::process::Command::new("mkfifo").arg(path).status().expect("mkfifo runs");
    assert!(status.success(), "mkfifo {}", path.display());
}

/// Waits for a `Kept`/`Unavailable` event whose error contains `needle`, skipping others.
fn wait_for_error(events: &Receiver<WatchEvent>, needle: &str) -> WatchEvent {
    let deadline = Instant::now() + PICKUP;
    loop {
        match events.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(e @ (WatchEvent::Kept { .. } | WatchEvent::Unavailable { .. }))
                if e.to_string().contains(needle) =>
            {
                return e;
            }
            Ok(_) => continue,
            Err(_) => panic!("no event with {needle:?} within {PICKUP:?}"),
        }
    }
}

/// Waits for a `Loaded` event of `experiments` experiments, skipping others.
fn wait_for_loaded(events: &Receiver<WatchEvent>, experiments: usize) -> u64 {
    let deadline = Instant::now() + PICKUP;
    loop {
        match events.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(WatchEvent::Loaded { version, experiments: n, .. }) if n == experiments => {
                return version;
            }
            Ok(_) => continue,
            Err(_) => panic!("{experiments} experiments not loaded within {PICKUP:?}"),
        }
    }
}

const BOUND: Duration = Duration::from_secs(5);

#[cfg(unix)]
#[test]
fn a_fifo_in_place_of_the_file_never_blocks_the_watcher() {
    // The whole body is bounded: even dropping a watcher stuck on the pipe must not hang.
    within(Duration::from_secs(30), "the test body", fifo_in_place_of_the_file);
}

#[cfg(unix)]
fn fifo_in_place_of_the_file() {
    let h = start(Some(&doc(2)));
    assert_eq!(h.next(), loaded(1, 2));
    let fifo = h.path.with_extension("fifo");
    mkfifo(&fifo);
    fs::rename(&fifo, &h.path).unwrap();
    match wait_for_error(&h.events, "FIFO") {
        WatchEvent::Kept { version: 1, error } => {
            assert!(error.contains("not a regular file"), "{error}")
        }
        other => panic!("unexpected {other}"),
    }
    let Harness { _dir: dir, path, events, watcher } = h;
    let watcher = Arc::new(watcher);
    // Neither status, nor a forced reload, nor readers wait on the pipe.
    let w = Arc::clone(&watcher);
    let status = within(BOUND, "status()", move || w.status());
    assert_eq!(status.store.version, Some(1));
    assert!(status.store.last_error.unwrap().contains("FIFO"));
    let w = Arc::clone(&watcher);
    assert!(within(BOUND, "reload_now()", move || w.reload_now()), "version 1 still served");
    assert_eq!(watcher.snapshot().unwrap().config.len(), 2);
    // A symlink to a FIFO is refused too (the type is checked after following links).
    let target = dir.path().join("pipe");
    mkfifo(&target);
    let link = dir.path().join("link");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    fs::rename(&link, &path).unwrap();
    let w = Arc::clone(&watcher);
    assert!(within(BOUND, "reload_now() on a symlink to a FIFO", move || w.reload_now()));
    assert!(watcher.status().store.last_error.unwrap().contains("FIFO"));
    // A regular file again: recovered.
    write_atomic(&path, &doc(3));
    assert_eq!(wait_for_loaded(&events, 3), 2);
    let watcher = Arc::into_inner(watcher).expect("the only handle");
    within(BOUND, "dropping the watcher", move || drop(watcher));
}

#[cfg(unix)]
#[test]
fn starting_on_a_fifo_returns_instead_of_blocking() {
    within(Duration::from_secs(30), "the test body", starting_on_a_fifo);
}

#[cfg(unix)]
fn starting_on_a_fifo() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("experiments.json");
    mkfifo(&path);
    // No timeout: start returns at once and readers get "unavailable" with the cause.
    let p = path.clone();
    let watcher = within(BOUND, "start() without timeout", move || {
        ConfigWatcher::start(WatchSettings::for_path(&p))
    })
    .expect("starts");
    let err = watcher.snapshot().unwrap_err();
    assert!(err.error.contains("FIFO"), "{err}");
    within(BOUND, "dropping the watcher", move || drop(watcher));
    // A timeout: start gives up after it, naming the cause.
    let p = path.clone();
    let result = within(BOUND, "start() with a timeout", move || {
        ConfigWatcher::start({
            let mut ps = WatchSettings::for_path(&p);
            ps.timeout = Some(Duration::from_millis(300));
            ps
        })
    });
    match result {
        Err(StartError::Timeout { last_error, .. }) => {
            assert!(last_error.contains("FIFO"), "{last_error}")
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    // Loading a single version refuses it too.
    let p = path.clone();
    let loaded = within(BOUND, "Snapshot::load", move || {
        experiments_watch::Snapshot::load(&p, 1 << 20).map(|s| s.version)
    });
    assert!(loaded.unwrap_err().contains("FIFO"));
}

#[test]
fn deleting_and_recreating_the_directory_rearms_notifications() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("config");
    fs::create_dir(&dir).unwrap();
    let path = dir.join("experiments.json");
    fs::write(&path, doc(1)).unwrap();
    let (tx, events) = mpsc::channel();
    let watcher = ConfigWatcher::builder(settings(&path))
        .on_event(move |e| {
            let _ = tx.send(e.clone());
        })
        .start()
        .unwrap();
    assert_eq!(events.recv_timeout(PICKUP).unwrap(), loaded(1, 1));
    assert!(watcher.status().notifications);

    // Deleted: the loss of notifications is reported, not hidden.
    fs::remove_dir_all(&dir).unwrap();
    wait_for_error(&events, "does not exist");
    let deadline = Instant::now() + PICKUP;
    while watcher.status().notifications {
        assert!(Instant::now() < deadline, "status still claims notifications work");
        std::thread::sleep(Duration::from_millis(10));
    }
    // Re-created: notifications come back and changes are seen again (the poll is 30 s).
    fs::create_dir(&dir).unwrap();
    write_atomic(&path, &doc(2));
    assert_eq!(wait_for_loaded(&events, 2), 2);
    write_atomic(&path, &doc(3));
    assert_eq!(wait_for_loaded(&events, 3), 3);
    assert!(watcher.status().notifications);

    // Moved away (the watch would follow the old directory) and replaced by a new one.
    fs::rename(&dir, root.path().join("old")).unwrap();
    fs::create_dir(&dir).unwrap();
    write_atomic(&path, &doc(4));
    assert_eq!(wait_for_loaded(&events, 4), 4);
    write_atomic(&path, &doc(5));
    assert_eq!(wait_for_loaded(&events, 5), 5);
    assert!(watcher.status().notifications);
}

#[test]
fn an_endlessly_growing_file_is_reported_once_per_cause() {
    use std::io::Write as _;
    let h = start_with(Some(&doc(1)), |s| s.max_file_size = 2000);
    assert_eq!(h.next(), loaded(1, 1));
    // Appended to for 1.5 s: invalid JSON at once, then over the size limit.
    let mut file = fs::OpenOptions::new().append(true).open(&h.path).unwrap();
    let until = Instant::now() + Duration::from_millis(1500);
    while Instant::now() < until {
        file.write_all(&[b'x'; 40]).unwrap();
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(300));
    let kept: Vec<WatchEvent> = h.events.try_iter().collect();
    assert!(
        kept.iter().any(|e| e.to_string().contains("over the limit")),
        "the size limit is reported: {kept:?}"
    );
    assert!(kept.len() <= 2, "one event per cause, got {}: {kept:?}", kept.len());
    let status = h.watcher.status();
    assert!(status.store.consecutive_failures > 2, "every failed check is still counted");
    assert!(status.store.last_error.unwrap().contains("over the limit"));
}

#[test]
fn alternating_failures_are_rate_limited_and_the_last_one_is_reported() {
    let h = start(Some(&doc(1)));
    assert_eq!(h.next(), loaded(1, 1));
    // Two causes flipping every 20 ms for 2 s: ~100 state changes.
    let until = Instant::now() + Duration::from_secs(2);
    let mut i = 0;
    while Instant::now() < until {
        write_atomic(&h.path, if i % 2 == 0 { "" } else { "{broken" });
        i += 1;
        std::thread::sleep(Duration::from_millis(20));
    }
    write_atomic(&h.path, "[1]");
    let mut events = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(3);
    while let Ok(e) = h.events.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        events.push(e);
    }
    // A burst of 5, then one per second: at most 5 + 2 in the flood, + the final cause.
    assert!(events.len() <= 9, "{} events: {events:?}", events.len());
    match events.last() {
        Some(WatchEvent::Kept { version: 1, error }) => assert!(error.contains("JSON object")),
        other => panic!("the final cause is reported, got {other:?}"),
    }
}

#[test]
fn an_idle_file_is_not_re_read() {
    // The watcher's own reads (open/close notifications) must not trigger new checks.
    let h = start(Some(&doc(3)));
    assert_eq!(h.next(), loaded(1, 3));
    std::thread::sleep(Duration::from_millis(300));
    let first = h.watcher.status().store.last_check;
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        h.watcher.status().store.last_check,
        first,
        "the file was re-checked without a change"
    );
}

#[test]
fn too_many_json_values_are_refused_before_parsing() {
    let values = 10_000;
    let list = vec!["1"; values].join(",");
    let text = format!(
        r#"{{"e": {{"id": 1, "name": "e", "type": "feature_flag", "start_ts": 0, "stop_ts": 4102444800,
            "experiment": {{"variants": {{"active": 100}}, "targeting": {{"EQ": {{"field": "x", "values": [{list}]}}}}}}}}}}"#
    );
    let h = start_with(Some(&doc(1)), |s| s.max_json_values = 5_000);
    assert_eq!(h.next(), loaded(1, 1));
    write_atomic(&h.path, &text);
    match h.next() {
        WatchEvent::Kept { version: 1, error } => {
            assert!(error.contains("more than 5000 JSON values"), "{error}")
        }
        other => panic!("unexpected {other}"),
    }
    // Within the budget, the same document loads.
    drop(h);
    let h = start_with(Some(&text), |s| s.max_json_values = 20_000);
    assert!(matches!(h.next(), WatchEvent::Loaded { version: 1, experiments: 1, .. }));
    assert_eq!(experiments_watch::DEFAULT_MAX_JSON_VALUES, 1_500_000);
}

#[test]
fn a_file_source_feeds_a_store_without_blocking_the_start() {
    use experiments_watch::{ConfigStore, FileSource, Health, Origin};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("experiments.json");
    // Even with a start-up timeout, starting the source returns at once: waiting is the
    // caller's job.
    let settings = {
        let mut ps = settings(&path);
        ps.timeout = Some(Duration::from_secs(30));
        ps
    };
    let started = Instant::now();
    let (store, guard) = ConfigStore::start(FileSource(settings)).unwrap();
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
    assert_eq!(store.status().source, format!("file:{}", path.display()));
    let err = store.wait_ready_blocking(Duration::from_millis(200)).unwrap_err();
    assert!(err.last_error.unwrap().contains("does not exist"));
    assert_eq!(store.status().health, Health::Empty);
    write_atomic(&path, &doc(2));
    let snap = store.wait_ready_blocking(PICKUP).expect("loaded once the file appears");
    assert_eq!((snap.version, snap.config.len()), (1, 2));
    match &snap.origin {
        Origin::File { path: p, mtime, .. } => {
            assert_eq!(p, &path);
            assert!(mtime.is_some());
        }
        other => panic!("unexpected origin {other:?}"),
    }
    assert_eq!(snap.file_mtime, Some(fs::metadata(&path).unwrap().modified().unwrap()));
    // A broken file leaves the store stale, with the last good snapshot.
    write_atomic(&path, "{broken");
    let deadline = Instant::now() + PICKUP;
    while store.status().health != Health::Stale {
        assert!(Instant::now() < deadline, "the broken file not seen within 2 s");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(store.snapshot().unwrap().version, 1);
    // reload_now asks for a check without waiting for it.
    let checks = store.status().checks;
    assert!(guard.reload_now());
    let deadline = Instant::now() + PICKUP;
    while store.status().checks == checks {
        assert!(Instant::now() < deadline, "reload_now did not check within 2 s");
        std::thread::sleep(Duration::from_millis(10));
    }
    // Dropping the guard stops the thread; the store keeps its snapshot.
    drop(guard);
    let checks = store.status().checks;
    write_atomic(&path, &doc(3));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(store.status().checks, checks, "no checks after the guard was dropped");
    assert_eq!(store.snapshot().unwrap().config.len(), 2);
}

#[test]
fn the_watcher_publishes_into_its_store() {
    use experiments_watch::Health;
    let h = start(Some(&doc(2)));
    assert_eq!(h.next(), loaded(1, 2));
    let store = h.watcher.store();
    let mut changes = store.subscribe();
    assert_eq!(store.snapshot().unwrap().version, 1);
    assert_eq!(store.status().health, Health::Ready);
    changes.mark_unchanged();
    write_atomic(&h.path, &doc(4));
    assert_eq!(h.next(), loaded(2, 4));
    assert!(changes.has_changed().unwrap(), "subscribers see the new version");
    assert_eq!(changes.borrow_and_update().version, Some(2));
    let (watcher, store) = (h.watcher.status(), store.status());
    assert_eq!(watcher.store.version, store.version);
    assert_eq!(watcher.store.digest, store.digest);
    assert_eq!(watcher.store.last_check, store.last_check);
}

#[test]
fn a_fixed_source_publishes_once() {
    use experiments_watch::{ConfigStore, FixedSource, Health, Origin};
    let config = experiments_core::Config::from_slice(doc(3).as_bytes()).unwrap();
    let (store, guard) = ConfigStore::start(FixedSource(config)).unwrap();
    let snap = store.wait_ready_blocking(Duration::ZERO).unwrap();
    assert_eq!((snap.version, snap.config.len(), &snap.origin), (1, 3, &Origin::Fixed));
    let status = store.status();
    assert_eq!((status.source.as_str(), status.health, status.checks), ("fixed", Health::Ready, 1));
    assert!(!guard.reload_now(), "nothing to reload");
}
