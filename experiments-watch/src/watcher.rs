//! The watcher: a background thread that follows the file (notifications on the parent
//! directory plus a periodic poll) and offers each version it reads to a [`ConfigStore`].
//!
//! Only that thread ever stats, opens, reads or parses the file. Callers never wait on it
//! for longer than a fixed bound: [`ConfigWatcher::status`] only copies state under locks
//! that are never held across IO or parsing, [`ConfigWatcher::reload_now`] asks the thread
//! and waits at most [`CHECK_WAIT`], and dropping the watcher (or a
//! [`FileSource`](crate::FileSource)'s guard) waits at most [`STOP_WAIT`] before detaching a
//! thread stuck in a file system that does not answer.

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, SyncSender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use notify::event::{AccessKind, AccessMode};
use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher as _};

use crate::settings::{DEFAULT_BACKOFF, WatchSettings};
use crate::snapshot::{self, FailureKind, Fingerprint, LoadFailure, Origin, Snapshot};
use crate::store::{ConfigStore, StoreLimits, StoreStatus};

/// How long change notifications are collected before one check runs.
const DEBOUNCE: Duration = Duration::from_millis(30);
/// The longest [`ConfigWatcher::reload_now`], and [`WatcherBuilder::start`] without a
/// timeout, wait for a check to finish. A check reads at most `max_file_size` bytes of a
/// regular file and parses them; only a file system that stops answering makes it longer.
pub(crate) const CHECK_WAIT: Duration = Duration::from_secs(10);
/// How long dropping the watcher waits for its thread to finish a check in progress; after
/// that the thread is detached and ends, without any event, when its check returns.
pub(crate) const STOP_WAIT: Duration = Duration::from_secs(1);
/// While the parent directory cannot be watched (it does not exist, was deleted or
/// replaced), how often watching it is tried again.
const REARM_INTERVAL: Duration = Duration::from_millis(200);
/// Shortest poll interval and startup retry delay honoured (smaller ones would spin).
const MIN_INTERVAL: Duration = Duration::from_millis(10);
/// Failure events (`Kept`, `Unavailable`) allowed in a burst...
const FAILURE_EVENT_BURST: u32 = 5;
/// ...and the period in which one more is allowed after the burst is spent.
const FAILURE_EVENT_PERIOD: Duration = Duration::from_secs(1);

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
    /// The file changed but could not be loaded; `version` is still served. Reported once
    /// per cause (missing, too large, invalid JSON...): further failures with the same cause
    /// only update [`WatchStatus`].
    Kept {
        /// The version still served.
        version: u64,
        /// Why the change could not be loaded (one line).
        error: String,
    },
    /// Nothing has been loaded yet. Reported once per cause, like `Kept`.
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

/// Freshness and health of the watched config, for metrics and alerts: the
/// [`StoreStatus`] of the watcher's store, with the watched path and
/// whether change notifications work.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
#[non_exhaustive]
pub struct WatchStatus {
    /// The watched path.
    pub path: PathBuf,
    /// The store's status: version, load time, age, digest, last error, failures, checks,
    /// health (serialized inline).
    #[serde(flatten)]
    pub store: StoreStatus,
    /// Whether change notifications are active on the file's directory as it is now. False
    /// while the directory is missing, after it was deleted or replaced (until the watch is
    /// re-armed on the new one, within about 200 ms of it appearing) or when notifications
    /// cannot be set up; only the poll follows the file meanwhile.
    pub notifications: bool,
}

type EventHook = Box<dyn Fn(&WatchEvent) + Send + Sync>;

/// The last failure, kept for events and [`Unavailable`] (the store keeps its own copy for
/// the status).
struct LastError {
    kind: FailureKind,
    message: String,
}

/// A token bucket that bounds the rate of failure events.
struct EventBudget {
    tokens: u32,
    /// When the last token was credited (or the bucket was last full).
    credited: Instant,
}

impl EventBudget {
    fn new(now: Instant) -> EventBudget {
        EventBudget { tokens: FAILURE_EVENT_BURST, credited: now }
    }

    fn refill(&mut self, now: Instant) {
        while self.tokens < FAILURE_EVENT_BURST {
            match self.credited.checked_add(FAILURE_EVENT_PERIOD) {
                Some(next) if next <= now => {
                    self.tokens += 1;
                    self.credited = next;
                }
                _ => break,
            }
        }
        if self.tokens == FAILURE_EVENT_BURST {
            self.credited = now;
        }
    }

    /// Spends one token if there is one.
    fn take(&mut self, now: Instant) -> bool {
        self.refill(now);
        let available = self.tokens > 0;
        if available {
            self.tokens -= 1;
        }
        available
    }

    /// When the next token is credited.
    fn next_token(&self) -> Instant {
        self.credited.checked_add(FAILURE_EVENT_PERIOD).unwrap_or(self.credited)
    }
}

/// What the checker knows, behind a mutex held only for short copies and updates (never
/// across IO, parsing or a hook).
struct State {
    /// Fingerprint of the file the served snapshot was read from.
    good: Option<Fingerprint>,
    /// Fingerprint of the file at the last failure (`None`: it could not be stat'ed).
    failed: Option<Option<Fingerprint>>,
    last_error: Option<LastError>,
    /// The kind of failure last reported through an event, to report each change once.
    reported: Option<FailureKind>,
    /// A change of kind was not reported for lack of event budget; it is reported when
    /// the budget allows, if still current.
    pending: bool,
    budget: EventBudget,
    /// Checks completed (with their hook), for the waits of `start`.
    checks: u64,
    notifications: bool,
}

impl State {
    fn new() -> State {
        State {
            good: None,
            failed: None,
            last_error: None,
            reported: None,
            pending: false,
            budget: EventBudget::new(Instant::now()),
            checks: 0,
            notifications: false,
        }
    }
}

struct Shared {
    settings: WatchSettings,
    /// Where every version read is offered; it serves the snapshot and records the checks.
    store: ConfigStore,
    state: Mutex<State>,
    /// Signalled after every completed check.
    checked: Condvar,
    hook: Option<EventHook>,
    /// Set when the watcher is dropped: the thread ends and emits no more events.
    stopping: AtomicBool,
}

/// `now + d`, or far in the future when that overflows (huge settings are not an error).
fn after(now: Instant, d: Duration) -> Instant {
    now.checked_add(d)
        .or_else(|| now.checked_add(Duration::from_secs(365 * 24 * 3600)))
        .unwrap_or(now)
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        // A panic in a hook cannot leave State inconsistent: recover the guard.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn emit(&self, event: Option<WatchEvent>) {
        if let (Some(event), Some(hook)) = (event, &self.hook)
            && !self.stopping.load(Ordering::Acquire)
        {
            hook(&event);
        }
    }

    /// Checks the file (on the watcher thread only); `forced` re-reads it even when `stat`
    /// shows no change. Records exactly one check in the store, calls the hook, then counts
    /// the check and wakes `start`. Returns whether a snapshot is being served after the
    /// check.
    fn check(&self, forced: bool) -> bool {
        let event = self.check_inner(forced);
        self.emit(event);
        self.state().checks += 1;
        self.checked.notify_all();
        self.served()
    }

    fn served(&self) -> bool {
        self.store.with_snapshot(|_| ()).is_some()
    }

    fn limits(&self) -> StoreLimits {
        StoreLimits::new(self.settings.max_file_size, self.settings.max_json_values)
    }

    fn check_inner(&self, forced: bool) -> Option<WatchEvent> {
        let s = &self.settings;
        let fp = match snapshot::stat(&s.path, s.max_file_size) {
            Ok(fp) => fp,
            Err(f) => return self.fail(f, None),
        };
        if !forced {
            let st = self.state();
            if st.failed.is_none() && st.good == Some(fp) {
                drop(st);
                self.store.record_unchanged();
                return None;
            }
            if st.failed == Some(Some(fp)) {
                // Still the same broken file.
                drop(st);
                self.store.record_repeated_failure();
                return None;
            }
        }
        let read = match snapshot::read(&s.path, s.max_file_size) {
            Ok(r) => r,
            Err(f) => return self.fail(f, Some(fp)),
        };
        let origin = Origin::file(&s.path, read.mtime);
        let offered = self.store.offer_bytes_within(&read.bytes, origin, self.limits());
        drop(read);
        match offered {
            Ok(None) => {
                // Identical bytes: no new version; a recovery is still a state change.
                let mut st = self.state();
                st.good = Some(fp);
                let recovered = st.failed.take().is_some();
                st.reported = None;
                st.pending = false;
                drop(st);
                if recovered { self.store.with_snapshot(loaded_event) } else { None }
            }
            Ok(Some(snap)) => {
                let mut st = self.state();
                st.good = Some(fp);
                st.failed = None;
                st.reported = None;
                st.pending = false;
                Some(loaded_event(&snap))
            }
            // Already recorded by the store.
            Err(f) => self.failed(f, Some(fp)),
        }
    }

    /// A failure before any document reached the store: recorded there, then here.
    fn fail(&self, failure: LoadFailure, fp: Option<Fingerprint>) -> Option<WatchEvent> {
        self.store.record_failure(failure.clone());
        self.failed(failure, fp)
    }

    /// Keeps the failure for events and [`Unavailable`], and reports it if its kind is new.
    fn failed(&self, failure: LoadFailure, fp: Option<Fingerprint>) -> Option<WatchEvent> {
        let mut st = self.state();
        st.last_error = Some(LastError { kind: failure.kind, message: failure.message });
        st.failed = Some(fp);
        self.report_failure(&mut st)
    }

    /// The event for the current failure when its cause differs from the one last reported
    /// and the event budget allows; otherwise nothing (marked pending when only the budget
    /// prevented it).
    fn report_failure(&self, st: &mut State) -> Option<WatchEvent> {
        let cause = match (&st.failed, &st.last_error) {
            (Some(_), Some(e)) => e.kind,
            _ => {
                st.pending = false;
                return None;
            }
        };
        if st.reported == Some(cause) {
            st.pending = false;
            return None;
        }
        if !st.budget.take(Instant::now()) {
            st.pending = true;
            return None;
        }
        st.pending = false;
        st.reported = Some(cause);
        let error = st.last_error.as_ref().map(|e| e.message.clone()).unwrap_or_default();
        Some(match self.store.with_snapshot(|s| s.version) {
            Some(version) => WatchEvent::Kept { version, error },
            None => WatchEvent::Unavailable { error },
        })
    }

    /// When a failure whose report was held back by the event budget can be reported.
    fn pending_report_at(&self) -> Option<Instant> {
        let st = self.state();
        st.pending.then(|| st.budget.next_token())
    }

    /// Reports a held-back failure if it is still current and the budget allows now.
    fn flush_pending(&self) {
        let event = {
            let mut st = self.state();
            if !st.pending {
                return;
            }
            self.report_failure(&mut st)
        };
        self.emit(event);
    }

    fn last_error(&self) -> String {
        let st = self.state();
        match (&st.last_error, st.checks) {
            (Some(e), _) => e.message.clone(),
            (None, 0) => {
                "the first check has not finished (is the file system responding?)".to_owned()
            }
            (None, _) => "not loaded yet".to_owned(),
        }
    }

    fn set_notifications(&self, on: bool) {
        self.state().notifications = on;
    }
}

fn loaded_event(s: &Snapshot) -> WatchEvent {
    WatchEvent::Loaded {
        version: s.version,
        experiments: s.report.experiments,
        invalid: s.report.invalid.len(),
    }
}

/// Coalesces notifications: the notifier's callback queues a message only when none of its
/// kind is waiting, so a flood of file system events cannot grow the queue.
#[derive(Default)]
struct Signals {
    changed: AtomicBool,
    directory: AtomicBool,
}

impl Signals {
    /// Queues `msg` unless one of its kind is already waiting.
    fn raise(&self, tx: &Sender<Msg>, msg: Msg) {
        let flag = match msg {
            Msg::Changed => &self.changed,
            Msg::Directory => &self.directory,
            _ => return,
        };
        if !flag.swap(true, Ordering::AcqRel) {
            let _ = tx.send(msg);
        }
    }

    /// Marks the message of `msg`'s kind as taken, so the next event queues a new one.
    fn taken(&self, msg: &Msg) {
        match msg {
            Msg::Changed => self.changed.store(false, Ordering::Release),
            Msg::Directory => self.directory.store(false, Ordering::Release),
            _ => {}
        }
    }
}

enum Msg {
    /// A notification that may concern the file.
    Changed,
    /// A notification about the watched directory itself (deleted, moved) or an error of
    /// the notifier: the watch may be dead.
    Directory,
    /// `reload_now`: check now, answer whether a snapshot is served.
    Check(SyncSender<bool>),
    Stop,
}

/// Keeps an always-valid snapshot of one `experiments.json`.
///
/// Readers call [`ConfigWatcher::snapshot`] (lock-free); a background thread re-loads the
/// file when it changes, off the request path, and keeps serving the last good version when
/// a change cannot be loaded. The snapshot lives in a [`ConfigStore`] the watcher owns
/// ([`ConfigWatcher::store`]), which async code can wait on and subscribe to. Dropping the
/// watcher stops the thread, waiting at most 1 s for a check in progress: a thread stuck in a
/// file system that does not answer is detached instead, and ends without any event when its
/// check returns. No hook call starts once the drop has returned.
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
    follower: Follower,
}

impl fmt::Debug for ConfigWatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConfigWatcher").field("path", &self.follower.shared.settings.path).finish()
    }
}

/// The thread following one file and feeding a store, shared by [`ConfigWatcher`] and
/// [`FileSource`](crate::FileSource). Dropping it stops the thread.
pub(crate) struct Follower {
    shared: Arc<Shared>,
    tx: Sender<Msg>,
    /// Disconnected when the thread has ended (its sender is dropped on exit). In a mutex
    /// only to keep the follower `Sync`; just `drop` uses it.
    ended: Mutex<Receiver<()>>,
    thread: Option<JoinHandle<()>>,
    started: Instant,
}

/// Asks a follower's thread for a check without waiting for it (a
/// [`SourceGuard::reload_now`](crate::SourceGuard::reload_now)).
pub(crate) struct Poker(Sender<Msg>);

impl Poker {
    /// Whether the request reached a running thread.
    pub(crate) fn poke(&self) -> bool {
        // Nobody waits for the answer: the thread's `try_send` of it fails quietly.
        let (reply, _) = mpsc::sync_channel(1);
        self.0.send(Msg::Check(reply)).is_ok()
    }
}

impl Follower {
    /// Starts the thread, which checks the file at once, then follows it, offering every
    /// version it reads to `store`. Returns without waiting for the first check.
    pub(crate) fn spawn(
        settings: WatchSettings,
        store: ConfigStore,
        hook: Option<EventHook>,
    ) -> std::io::Result<Follower> {
        let shared = Arc::new(Shared {
            settings,
            store,
            state: Mutex::new(State::new()),
            checked: Condvar::new(),
            hook,
            stopping: AtomicBool::new(false),
        });
        let started = Instant::now();
        let (tx, rx) = mpsc::channel();
        let (ended_tx, ended) = mpsc::channel::<()>();
        let thread = {
            let shared = Arc::clone(&shared);
            let tx = tx.clone();
            std::thread::Builder::new().name("experiments-watch".into()).spawn(move || {
                let _ended = ended_tx;
                Runner::new(&shared, tx, started).run(&rx);
            })?
        };
        Ok(Follower { shared, tx, ended: Mutex::new(ended), thread: Some(thread), started })
    }

    pub(crate) fn poker(&self) -> Poker {
        Poker(self.tx.clone())
    }

    /// Waits until `done(state, loaded)` holds after some check, or `deadline` passes;
    /// returns whether it holds.
    fn wait(&self, deadline: Instant, done: impl Fn(&State, bool) -> bool) -> bool {
        let shared = &self.shared;
        let mut st = shared.state();
        loop {
            if done(&st, shared.served()) {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            st = match shared.checked.wait_timeout(st, left) {
                Ok((guard, _)) => guard,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
    }
}

impl Drop for Follower {
    /// Stops the thread; no hook call starts once this returns. Waits at most 1 s for a
    /// check in progress: a thread stuck in a file system that does not answer is detached
    /// instead, and ends without any event when its check returns.
    fn drop(&mut self) {
        self.shared.stopping.store(true, Ordering::Release);
        let _ = self.tx.send(Msg::Stop);
        if let Some(thread) = self.thread.take() {
            let ended = self.ended.get_mut().unwrap_or_else(|p| p.into_inner());
            if let Err(RecvTimeoutError::Disconnected) = ended.recv_timeout(STOP_WAIT) {
                let _ = thread.join();
            }
        }
    }
}

/// Builds a [`ConfigWatcher`] with an optional event hook.
pub struct WatcherBuilder {
    settings: WatchSettings,
    hook: Option<EventHook>,
}

impl WatcherBuilder {
    /// Calls `hook` on every state change (always from the watcher's thread; keep it short
    /// and do not call back into the watcher from it). Failure events are reported once per
    /// cause and at most 5 in a burst, then one per second; a cause held back is reported
    /// when allowed if it is still current.
    #[must_use]
    pub fn on_event(mut self, hook: impl Fn(&WatchEvent) + Send + Sync + 'static) -> Self {
        self.hook = Some(Box::new(hook));
        self
    }

    /// Starts the watcher thread, which loads the file, then follows it.
    ///
    /// Without a `timeout` this returns once the first check has finished (so a readable
    /// file is served on return), or after 10 s if that check is stuck in a file system that
    /// does not answer. With a `timeout` it waits for a first valid file, retried with
    /// exponential `backoff`, and gives up with [`StartError::Timeout`] when the timeout
    /// passes. A path that is not a regular file (a FIFO, a device) fails the check at once;
    /// it is never opened for reading.
    ///
    /// (A [`FileSource`](crate::FileSource) never waits: its caller waits on the store.)
    pub fn start(self) -> Result<ConfigWatcher, StartError> {
        let limits = StoreLimits::new(self.settings.max_file_size, self.settings.max_json_values);
        let description = format!("file:{}", self.settings.path.display());
        let store = ConfigStore::with_limits(description, limits);
        let follower = Follower::spawn(self.settings, store, self.hook)?;
        let started = follower.started;
        let watcher = ConfigWatcher { follower };
        let f = &watcher.follower;
        match f.shared.settings.timeout {
            None => {
                f.wait(after(started, CHECK_WAIT), |st, _| st.checks > 0);
            }
            Some(timeout) => {
                let deadline = started.checked_add(timeout);
                let mut loaded = match deadline {
                    Some(deadline) => f.wait(deadline, |_, loaded| loaded),
                    // A timeout too large to represent: wait as long as it takes.
                    None => loop {
                        let far = after(Instant::now(), Duration::from_secs(3600));
                        if f.wait(far, |_, loaded| loaded) {
                            break true;
                        }
                    },
                };
                if !loaded {
                    // A timeout shorter than the first check (even zero) still gives that
                    // check its chance, within the same bound as without a timeout.
                    loaded = f
                        .wait(after(started, CHECK_WAIT), |st, loaded| loaded || st.checks > 0)
                        && f.shared.served();
                }
                if !loaded {
                    let last_error = f.shared.last_error();
                    let path = f.shared.settings.path.clone();
                    drop(watcher);
                    return Err(StartError::Timeout { path, timeout, last_error });
                }
            }
        }
        Ok(watcher)
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

/// Whether an event kind can mean the file's contents or identity changed. Opening, reading
/// and closing a file without writing cannot, and the watcher's own reads produce them: they
/// must not trigger checks, or every check would trigger the next.
fn may_change(kind: &EventKind) -> bool {
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        _ => true,
    }
}

/// The directory holding the watched file.
fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Identity of a directory (device and inode, symlinks followed); `None` when it is missing
/// or not a directory.
fn dir_identity(dir: &Path) -> Option<(u64, u64)> {
    let meta = fs::metadata(dir).ok().filter(fs::Metadata::is_dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        Some((meta.dev(), meta.ino()))
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        Some((0, 0))
    }
}

/// A live watch on the parent directory, with the identity of the directory it was set on.
struct Armed {
    _watcher: RecommendedWatcher,
    identity: (u64, u64),
}

/// Watches the parent directory of `path`. The identity is taken before the watch is set, so
/// a directory replaced in between shows as a mismatch later (and is re-armed) instead of
/// leaving a watch on a deleted directory that looks healthy.
fn arm(path: &Path, tx: &Sender<Msg>, signals: &Arc<Signals>) -> Option<Armed> {
    let dir = parent_dir(path);
    let identity = dir_identity(&dir)?;
    let tx = tx.clone();
    let signals = Arc::clone(signals);
    let target = path.to_path_buf();
    let watched = dir.clone();
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        let msg = match res {
            Ok(ev) if !may_change(&ev.kind) => return,
            Ok(ev) if ev.paths.contains(&watched) => Msg::Directory,
            Ok(ev) if ev.paths.is_empty() || ev.paths.iter().any(|p| concerns(&target, p)) => {
                Msg::Changed
            }
            Ok(_) => return,
            Err(_) => Msg::Directory,
        };
        signals.raise(&tx, msg);
    })
    .ok()?;
    watcher.watch(&dir, RecursiveMode::NonRecursive).ok()?;
    Some(Armed { _watcher: watcher, identity })
}

/// The watcher thread's loop and timers.
struct Runner<'a> {
    shared: &'a Shared,
    tx: Sender<Msg>,
    signals: Arc<Signals>,
    armed: Option<Armed>,
    poll: Duration,
    next_poll: Instant,
    next_rearm: Instant,
    /// Startup retries (a timeout is set and nothing is loaded yet): when the next attempt
    /// is due and the delay after it (doubled after every attempt).
    retry: Option<(Instant, Duration)>,
    /// End of the startup wait.
    startup_deadline: Option<Instant>,
}

impl<'a> Runner<'a> {
    fn new(shared: &'a Shared, tx: Sender<Msg>, started: Instant) -> Runner<'a> {
        let settings = &shared.settings;
        let poll = settings.poll_interval.max(MIN_INTERVAL);
        let backoff = settings.backoff.unwrap_or(DEFAULT_BACKOFF).max(MIN_INTERVAL);
        let startup_deadline = settings.timeout.map(|t| after(started, t));
        Runner {
            shared,
            tx,
            signals: Arc::default(),
            armed: None,
            poll,
            next_poll: after(started, poll),
            next_rearm: started,
            // The first attempt is the initial check; the delay is for the one after it.
            retry: startup_deadline.map(|_| (started, backoff)),
            startup_deadline,
        }
    }

    fn stopping(&self) -> bool {
        self.shared.stopping.load(Ordering::Acquire)
    }

    /// Watches the parent directory (replacing any previous watch) and records whether that
    /// worked. A missing directory is tried again every [`REARM_INTERVAL`]; one that exists
    /// but cannot be watched (the inotify limit, permissions) only every poll interval, since
    /// each attempt starts a notifier.
    fn rearm(&mut self) -> bool {
        self.armed = None;
        let path = &self.shared.settings.path;
        self.armed = arm(path, &self.tx, &self.signals);
        let retry_in = if self.armed.is_none() && dir_identity(&parent_dir(path)).is_some() {
            self.poll.max(REARM_INTERVAL)
        } else {
            REARM_INTERVAL
        };
        self.next_rearm = after(Instant::now(), retry_in);
        self.shared.set_notifications(self.armed.is_some());
        self.armed.is_some()
    }

    /// Whether the watch is still on the directory the path names now. When not (deleted,
    /// moved away, replaced), drops it, reports it in the status, and tries to watch the
    /// directory now there; returns whether a new watch was set (then the file is checked,
    /// since changes before the new watch were missed).
    fn verify_directory(&mut self) -> bool {
        let Some(armed) = &self.armed else { return false };
        if dir_identity(&parent_dir(&self.shared.settings.path)) == Some(armed.identity) {
            return false;
        }
        self.rearm()
    }

    fn finish_startup_retry(&mut self, loaded: bool) {
        let Some((_, delay)) = self.retry else { return };
        let now = Instant::now();
        let expired = self.startup_deadline.is_none_or(|d| now >= d);
        self.retry = if loaded || expired {
            None
        } else {
            Some((after(now, delay), delay.saturating_mul(2).max(MIN_INTERVAL)))
        };
    }

    fn run(mut self, rx: &Receiver<Msg>) {
        // Watch before the first load, so no change between the two is missed.
        self.rearm();
        let loaded = self.shared.check(true);
        self.finish_startup_retry(loaded);
        loop {
            if self.stopping() {
                return;
            }
            let now = Instant::now();
            let mut wake = self.next_poll;
            if let Some((at, _)) = self.retry {
                wake = wake.min(at);
            }
            if self.armed.is_none() {
                wake = wake.min(self.next_rearm);
            }
            if let Some(at) = self.shared.pending_report_at() {
                wake = wake.min(at);
            }
            let msg = match rx.recv_timeout(wake.saturating_duration_since(now)) {
                Ok(msg) => msg,
                Err(RecvTimeoutError::Timeout) => {
                    self.on_timers();
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => return,
            };
            self.signals.taken(&msg);
            match msg {
                Msg::Stop => return,
                Msg::Changed => {
                    let mut replies = Vec::new();
                    if !self.debounce(rx, &mut replies) {
                        return;
                    }
                    self.checked(true, replies);
                }
                Msg::Check(reply) => self.checked(true, vec![reply]),
                Msg::Directory => {
                    self.verify_directory();
                    self.checked(true, Vec::new());
                }
            }
            // Timers still run when notifications never leave the queue empty.
            self.on_timers();
        }
    }

    /// Collects notifications for [`DEBOUNCE`] (ending early for a `reload_now`, whose reply
    /// is queued); `false` when the watcher is stopping.
    fn debounce(&mut self, rx: &Receiver<Msg>, replies: &mut Vec<SyncSender<bool>>) -> bool {
        let until = after(Instant::now(), DEBOUNCE);
        loop {
            // Never longer than DEBOUNCE, even if notifications keep coming.
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return true;
            }
            let msg = match rx.recv_timeout(left) {
                Ok(msg) => msg,
                Err(RecvTimeoutError::Timeout) => return true,
                Err(RecvTimeoutError::Disconnected) => return false,
            };
            self.signals.taken(&msg);
            match msg {
                Msg::Changed => {}
                Msg::Directory => {
                    self.verify_directory();
                }
                Msg::Check(reply) => {
                    replies.push(reply);
                    return true;
                }
                Msg::Stop => return false,
            }
        }
    }

    /// Runs a check and answers the `reload_now` callers waiting for it.
    fn checked(&mut self, forced: bool, replies: Vec<SyncSender<bool>>) {
        let loaded = self.shared.check(forced);
        if self.retry.is_some() {
            self.finish_startup_retry(loaded);
        }
        for reply in replies {
            // The caller may have stopped waiting: nothing to do then.
            let _ = reply.try_send(loaded);
        }
    }

    fn on_timers(&mut self) {
        let now = Instant::now();
        if self.retry.is_some_and(|(at, _)| now >= at) {
            self.checked(true, Vec::new());
        }
        if self.armed.is_none() && now >= self.next_rearm && self.rearm() {
            // Watching again: what changed while nothing was watched has to be looked at.
            self.checked(true, Vec::new());
        }
        if now >= self.next_poll {
            self.next_poll = after(now, self.poll);
            let rearmed = self.verify_directory();
            self.checked(rearmed, Vec::new());
        }
        self.shared.flush_pending();
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

    /// The store the watcher feeds (a clone: the same store), for code that waits on it
    /// ([`ConfigStore::ready`]), subscribes to changes or reads its
    /// [`StoreStatus`](crate::StoreStatus). The store keeps its last snapshot after the
    /// watcher is dropped, but is no longer updated.
    pub fn store(&self) -> ConfigStore {
        self.follower.shared.store.clone()
    }

    /// The current snapshot (lock-free), or why there is none yet.
    pub fn snapshot(&self) -> Result<Arc<Snapshot>, Unavailable> {
        self.follower.shared.store.snapshot().ok_or_else(|| self.unavailable())
    }

    /// Runs `f` on the current snapshot without touching its reference count (the fastest
    /// read; do not block inside `f`).
    pub fn with_snapshot<R>(&self, f: impl FnOnce(&Snapshot) -> R) -> Result<R, Unavailable> {
        self.follower.shared.store.with_snapshot(f).ok_or_else(|| self.unavailable())
    }

    fn unavailable(&self) -> Unavailable {
        let shared = &self.follower.shared;
        Unavailable { path: shared.settings.path.clone(), error: shared.last_error() }
    }

    /// Has the watcher's thread re-check the file now (tests, admin endpoints) and waits for
    /// the result: whether a snapshot is served after the check. The wait is bounded
    /// (10 s, for a file system that stops answering); when it runs out, the answer is
    /// whether a snapshot is served at that moment. Any event is emitted from the watcher's
    /// thread before this returns.
    pub fn reload_now(&self) -> bool {
        let (reply, answer) = mpsc::sync_channel(1);
        if self.follower.tx.send(Msg::Check(reply)).is_ok()
            && let Ok(loaded) = answer.recv_timeout(CHECK_WAIT)
        {
            return loaded;
        }
        self.follower.shared.served()
    }

    /// Freshness and health. Never waits on the file: it copies what the last checks
    /// recorded.
    pub fn status(&self) -> WatchStatus {
        let shared = &self.follower.shared;
        WatchStatus {
            path: shared.settings.path.clone(),
            store: shared.store.status(),
            notifications: shared.state().notifications,
        }
    }

    /// The settings in use.
    pub fn settings(&self) -> &WatchSettings {
        &self.follower.shared.settings
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_watcher_can_be_shared_between_threads() {
        fn shareable<T: Send + Sync>() {}
        shareable::<ConfigWatcher>();
        shareable::<WatchStatus>();
    }

    #[test]
    fn open_and_read_notifications_do_not_trigger_checks() {
        assert!(!may_change(&EventKind::Access(AccessKind::Open(AccessMode::Any))));
        assert!(!may_change(&EventKind::Access(AccessKind::Close(AccessMode::Read))));
        assert!(!may_change(&EventKind::Access(AccessKind::Read)));
        assert!(may_change(&EventKind::Access(AccessKind::Close(AccessMode::Write))));
        assert!(may_change(&EventKind::Any));
    }

    #[test]
    fn the_event_budget_allows_a_burst_then_one_per_period() {
        let t0 = Instant::now();
        let mut budget = EventBudget::new(t0);
        for _ in 0..FAILURE_EVENT_BURST {
            assert!(budget.take(t0));
        }
        assert!(!budget.take(t0));
        assert_eq!(budget.next_token(), t0 + FAILURE_EVENT_PERIOD);
        assert!(!budget.take(t0 + FAILURE_EVENT_PERIOD / 2));
        assert!(budget.take(t0 + FAILURE_EVENT_PERIOD));
        assert!(!budget.take(t0 + FAILURE_EVENT_PERIOD));
        // A long quiet time refills the burst, no more.
        let later = t0 + FAILURE_EVENT_PERIOD * 100;
        for _ in 0..FAILURE_EVENT_BURST {
            assert!(budget.take(later));
        }
        assert!(!budget.take(later));
    }

    #[test]
    fn huge_durations_do_not_overflow() {
        let now = Instant::now();
        assert!(after(now, Duration::MAX) > now);
        assert_eq!(after(now, Duration::from_secs(1)), now + Duration::from_secs(1));
    }
}
