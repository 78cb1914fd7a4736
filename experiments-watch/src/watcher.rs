//! The watcher: a background thread that follows the file (notifications on the parent
//! directory plus a periodic poll) and publishes each good version through an `ArcSwap`.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use arc_swap::ArcSwapOption;
use notify::{RecommendedWatcher, RecursiveMode, Watcher as _};

use crate::settings::{DEFAULT_BACKOFF, WatchSettings};
use crate::snapshot::{self, Fingerprint, Snapshot};

/// How long change notifications are collected before one check runs.
const DEBOUNCE: Duration = Duration::from_millis(30);

/// A state change of the watcher, as the `follow` example prints it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WatchEvent {
    /// A new version was loaded (or the file recovered with unchanged bytes).
    Loaded {
        /// The version now served.
        version: u64,
        /// Experiments in the config.
        experiments: usize,
        /// Invalid experiments among them.
        invalid: usize,
    },
    /// The file changed but could not be loaded; `version` is still served.
    Kept {
        /// The version still served.
        version: u64,
        /// Why the change could not be loaded (one line).
        error: String,
    },
    /// Nothing has been loaded yet.
    Unavailable {
        /// Why (one line).
        error: String,
    },
}

impl fmt::Display for WatchEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WatchEvent::Loaded { version, experiments, invalid } => {
                write!(f, "loaded version={version} experiments={experiments} invalid={invalid}")
            }
            WatchEvent::Kept { version, error } => {
                write!(f, "kept version={version} error={error}")
            }
            WatchEvent::Unavailable { error } => write!(f, "unavailable error={error}"),
        }
    }
}

/// No snapshot has been loaded yet.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("experiments config {path} unavailable: {error}")]
pub struct Unavailable {
    /// The watched path.
    pub path: PathBuf,
    /// The last reason the file could not be loaded.
    pub error: String,
}

/// The watcher could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// No valid file appeared within the startup timeout.
    #[error("timed out after {timeout:?} waiting for {path}: last error was: {last_error}")]
    Timeout {
        /// The watched path.
        path: PathBuf,
        /// The configured timeout.
        timeout: Duration,
        /// The last reason the file could not be loaded.
        last_error: String,
    },
    /// The background thread could not be spawned.
    #[error("cannot start the watcher thread: {0}")]
    Thread(#[from] std::io::Error),
}

/// Freshness and health of the watched config, for metrics and alerts.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct WatchStatus {
    /// The watched path.
    pub path: PathBuf,
    /// The version served (`None`: nothing loaded yet).
    pub version: Option<u64>,
    /// When the served version was loaded.
    pub loaded_at: Option<SystemTime>,
    /// How long ago that was.
    pub age: Option<Duration>,
    /// SHA-256 of the served bytes.
    pub digest: Option<String>,
    /// The most recent load error (kept after recovery, as history).
    pub last_error: Option<String>,
    /// When it happened.
    pub last_error_at: Option<SystemTime>,
    /// Failed checks since the last good one (0 when the file is healthy).
    pub consecutive_failures: u64,
    /// When the file was last checked.
    pub last_check: Option<SystemTime>,
    /// Whether change notifications are active (else only polling).
    pub notifications: bool,
}

type EventHook = Box<dyn Fn(&WatchEvent) + Send + Sync>;

#[derive(Default)]
struct State {
    /// Fingerprint of the file the served snapshot was read from.
    good: Option<Fingerprint>,
    /// Fingerprint of the file at the last failure (`None`: it could not be stat'ed).
    failed: Option<Option<Fingerprint>>,
    last_error: Option<(String, SystemTime)>,
    /// The error last reported through an event, to report each state change once.
    reported_error: Option<String>,
    consecutive_failures: u64,
    last_check: Option<SystemTime>,
    notifications: bool,
}

struct Shared {
    settings: WatchSettings,
    current: ArcSwapOption<Snapshot>,
    state: Mutex<State>,
    hook: Option<EventHook>,
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        // A panic in a hook cannot leave State inconsistent: recover the guard.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Checks the file; `forced` re-reads it even when `stat` shows no change. Returns
    /// whether a snapshot is being served after the check.
    fn check(&self, forced: bool) -> bool {
        let event = self.check_inner(forced);
        if let (Some(event), Some(hook)) = (event, &self.hook) {
            hook(&event);
        }
        self.current.load().is_some()
    }

    fn check_inner(&self, forced: bool) -> Option<WatchEvent> {
        let s = &self.settings;
        let mut st = self.state();
        st.last_check = Some(SystemTime::now());
        let fp = match snapshot::stat(&s.path, s.max_file_size) {
            Ok(fp) => fp,
            Err(e) => return self.fail(&mut st, e, None),
        };
        if !forced {
            if st.failed.is_none() && st.good == Some(fp) {
                return None;
            }
            if st.failed == Some(Some(fp)) {
                // Still the same broken file.
                st.consecutive_failures += 1;
                return None;
            }
        }
        let read = match snapshot::read(&s.path, s.max_file_size) {
            Ok(r) => r,
            Err(e) => return self.fail(&mut st, e, Some(fp)),
        };
        let current = self.current.load_full();
        if let Some(cur) = current.as_ref().filter(|c| c.digest == read.digest) {
            // Identical bytes: no new version; a recovery is still a state change.
            st.good = Some(fp);
            st.consecutive_failures = 0;
            let recovered = st.failed.take().is_some();
            st.reported_error = None;
            return recovered.then(|| loaded_event(cur));
        }
        let version = current.as_ref().map_or(1, |c| c.version + 1);
        match snapshot::parse(read, version) {
            Ok(snap) => {
                let event = loaded_event(&snap);
                self.current.store(Some(Arc::new(snap)));
                st.good = Some(fp);
                st.failed = None;
                st.consecutive_failures = 0;
                st.reported_error = None;
                Some(event)
            }
            Err(e) => self.fail(&mut st, e, Some(fp)),
        }
    }

    fn fail(&self, st: &mut State, error: String, fp: Option<Fingerprint>) -> Option<WatchEvent> {
        let error = one_line(&error);
        st.consecutive_failures += 1;
        st.last_error = Some((error.clone(), SystemTime::now()));
        let changed = st.failed != Some(fp) || st.reported_error.as_deref() != Some(&error);
        st.failed = Some(fp);
        if !changed {
            return None;
        }
        st.reported_error = Some(error.clone());
        Some(match self.current.load().as_ref() {
            Some(cur) => WatchEvent::Kept { version: cur.version, error },
            None => WatchEvent::Unavailable { error },
        })
    }

    fn last_error(&self) -> String {
        self.state()
            .last_error
            .as_ref()
            .map_or_else(|| "not loaded yet".to_owned(), |e| e.0.clone())
    }
}

fn loaded_event(s: &Snapshot) -> WatchEvent {
    WatchEvent::Loaded {
        version: s.version,
        experiments: s.report.experiments,
        invalid: s.report.invalid.len(),
    }
}

enum Msg {
    Changed,
    Stop,
}

/// Keeps an always-valid snapshot of one `experiments.json`.
///
/// Readers call [`ConfigWatcher::snapshot`] (lock-free); a background thread re-loads the
/// file when it changes, off the request path, and keeps serving the last good version when
/// a change cannot be loaded. Dropping the watcher stops the thread.
///
/// ```no_run
/// use experiments_watch::{ConfigWatcher, WatchSettings};
/// let watcher = ConfigWatcher::start(WatchSettings::default())?;
/// if let Ok(snapshot) = watcher.snapshot() {
///     println!("serving version {} ({} experiments)", snapshot.version, snapshot.config.len());
/// }
/// # Ok::<(), experiments_watch::StartError>(())
/// ```
pub struct ConfigWatcher {
    shared: Arc<Shared>,
    tx: Sender<Msg>,
    thread: Option<JoinHandle<()>>,
}

impl fmt::Debug for ConfigWatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConfigWatcher").field("path", &self.shared.settings.path).finish()
    }
}

/// Builds a [`ConfigWatcher`] with an optional event hook.
pub struct WatcherBuilder {
    settings: WatchSettings,
    hook: Option<EventHook>,
}

impl WatcherBuilder {
    /// Calls `hook` on every state change (from the watcher's thread; keep it short and do
    /// not call back into the watcher from it).
    #[must_use]
    pub fn on_event(mut self, hook: impl Fn(&WatchEvent) + Send + Sync + 'static) -> Self {
        self.hook = Some(Box::new(hook));
        self
    }

    /// Loads the file once, waits for it up to `timeout` when one is set, then follows it.
    pub fn start(self) -> Result<ConfigWatcher, StartError> {
        let shared = Arc::new(Shared {
            settings: self.settings,
            current: ArcSwapOption::empty(),
            state: Mutex::new(State::default()),
            hook: self.hook,
        });
        // Watch before the first load, so no change between the two is missed.
        let (tx, rx) = mpsc::channel();
        let notifier = watch_parent(&shared, &tx);
        shared.state().notifications = notifier.is_some();
        let mut loaded = shared.check(true);
        if let (false, Some(timeout)) = (loaded, shared.settings.timeout) {
            let deadline = Instant::now() + timeout;
            let mut backoff = shared.settings.backoff.unwrap_or(DEFAULT_BACKOFF);
            while !loaded {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(StartError::Timeout {
                        path: shared.settings.path.clone(),
                        timeout,
                        last_error: shared.last_error(),
                    });
                }
                std::thread::sleep(backoff.min(left));
                backoff = backoff.saturating_mul(2);
                loaded = shared.check(true);
            }
        }
        let thread = {
            let shared = Arc::clone(&shared);
            let tx = tx.clone();
            std::thread::Builder::new()
                .name("experiments-watch".into())
                .spawn(move || run(&shared, notifier, &rx, &tx))?
        };
        Ok(ConfigWatcher { shared, tx, thread: Some(thread) })
    }
}

/// Whether a notification about `changed` may concern `target` (same name, or Kubernetes'
/// `..data` symlink swap in the same directory).
fn concerns(target: &Path, changed: &Path) -> bool {
    let name = changed.file_name().map(|n| n.to_string_lossy());
    match (target.file_name(), name) {
        (_, None) => true,
        (Some(t), Some(n)) => *t == *n || n.starts_with(".."),
        (None, Some(_)) => true,
    }
}

fn watch_parent(shared: &Shared, tx: &Sender<Msg>) -> Option<RecommendedWatcher> {
    let path = shared.settings.path.clone();
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let tx = tx.clone();
    let target = path.clone();
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        let relevant = match res {
            Ok(ev) => ev.paths.is_empty() || ev.paths.iter().any(|p| concerns(&target, p)),
            Err(_) => true,
        };
        if relevant {
            let _ = tx.send(Msg::Changed);
        }
    })
    .ok()?;
    watcher.watch(&dir, RecursiveMode::NonRecursive).ok()?;
    Some(watcher)
}

fn run(
    shared: &Shared,
    mut notifier: Option<RecommendedWatcher>,
    rx: &Receiver<Msg>,
    tx: &Sender<Msg>,
) {
    loop {
        match rx.recv_timeout(shared.settings.poll_interval) {
            Ok(Msg::Stop) | Err(RecvTimeoutError::Disconnected) => return,
            Ok(Msg::Changed) => {
                let until = Instant::now() + DEBOUNCE;
                loop {
                    match rx.recv_timeout(until.saturating_duration_since(Instant::now())) {
                        Ok(Msg::Changed) => {}
                        Ok(Msg::Stop) | Err(RecvTimeoutError::Disconnected) => return,
                        Err(RecvTimeoutError::Timeout) => break,
                    }
                }
                shared.check(true);
            }
            Err(RecvTimeoutError::Timeout) => {
                if notifier.is_none() {
                    // The directory may exist now (or inotify limits may have eased).
                    notifier = watch_parent(shared, tx);
                    shared.state().notifications = notifier.is_some();
                }
                shared.check(false);
            }
        }
    }
}

impl ConfigWatcher {
    /// Starts watching with `settings` (see [`WatcherBuilder::start`]).
    pub fn start(settings: WatchSettings) -> Result<ConfigWatcher, StartError> {
        Self::builder(settings).start()
    }

    /// A builder, to set an event hook.
    pub fn builder(settings: WatchSettings) -> WatcherBuilder {
        WatcherBuilder { settings, hook: None }
    }

    /// The current snapshot (lock-free), or why there is none yet.
    pub fn snapshot(&self) -> Result<Arc<Snapshot>, Unavailable> {
        self.shared.current.load_full().ok_or_else(|| self.unavailable())
    }

    /// Runs `f` on the current snapshot without touching its reference count (the fastest
    /// read; do not block inside `f`).
    pub fn with_snapshot<R>(&self, f: impl FnOnce(&Snapshot) -> R) -> Result<R, Unavailable> {
        match self.shared.current.load().as_ref() {
            Some(s) => Ok(f(s)),
            None => Err(self.unavailable()),
        }
    }

    fn unavailable(&self) -> Unavailable {
        Unavailable { path: self.shared.settings.path.clone(), error: self.shared.last_error() }
    }

    /// Re-checks the file now, on the caller's thread (tests, admin endpoints).
    pub fn reload_now(&self) -> bool {
        self.shared.check(true)
    }

    /// Freshness and health.
    pub fn status(&self) -> WatchStatus {
        let snap = self.shared.current.load_full();
        let st = self.shared.state();
        WatchStatus {
            path: self.shared.settings.path.clone(),
            version: snap.as_ref().map(|s| s.version),
            loaded_at: snap.as_ref().map(|s| s.loaded_at),
            age: snap.as_ref().and_then(|s| s.loaded_at.elapsed().ok()),
            digest: snap.as_ref().map(|s| s.digest.clone()),
            last_error: st.last_error.as_ref().map(|e| e.0.clone()),
            last_error_at: st.last_error.as_ref().map(|e| e.1),
            consecutive_failures: st.consecutive_failures,
            last_check: st.last_check,
            notifications: st.notifications,
        }
    }

    /// The settings in use.
    pub fn settings(&self) -> &WatchSettings {
        &self.shared.settings
    }
}

impl Drop for ConfigWatcher {
    fn drop(&mut self) {
        let _ = self.tx.send(Msg::Stop);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
