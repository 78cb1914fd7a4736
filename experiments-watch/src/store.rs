//! The store: one current snapshot, fed by any [`ConfigSource`](crate::ConfigSource).
//!
//! Readers load the snapshot lock-free (`arc-swap`); the recorded state behind
//! [`ConfigStore::status`] sits under a mutex that is only held for short copies and
//! updates, never across IO or parsing. Writers (sources) are serialized by a second mutex
//! held across the parse of an offered document, so versions stay unique and increasing
//! whatever number of sources feed one store, and readers and `status` never wait on it.

use std::fmt;
use std::future::Future;
use std::pin::{Pin, pin};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::Poll;
use std::time::{Duration, Instant, SystemTime};

use arc_swap::ArcSwapOption;
use experiments_core::Config;
use tokio::sync::{oneshot, watch};

use crate::settings::{DEFAULT_MAX_FILE_SIZE, DEFAULT_MAX_JSON_VALUES};
use crate::snapshot::Dialect;
use crate::snapshot::{self, LoadFailure, Origin, Snapshot};
use crate::source::{ConfigSource, SourceError, SourceGuard};

/// The limits a [`ConfigStore`] applies to every document offered as bytes.
///
/// They bound what one load can cost: `max_size` the bytes, `max_json_values` the memory
/// parsing takes (see [`WatchSettings::max_json_values`](crate::WatchSettings::max_json_values)
/// for the measured bound). A built-in source applies the tighter of its own settings and
/// the store's limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoreLimits {
    /// Largest accepted document, in bytes (10 MiB by default).
    pub max_size: u64,
    /// Largest accepted number of JSON values (1,500,000 by default).
    pub max_json_values: u64,
    /// How documents are read: baseplate's `experiments.json` or reddit-decider's. `None`
    /// (the default): detected from each document ([`crate::detect_dialect`]), baseplate when
    /// the document is ambiguous.
    pub dialect: Option<Dialect>,
}

impl Default for StoreLimits {
    fn default() -> Self {
        StoreLimits {
            max_size: DEFAULT_MAX_FILE_SIZE,
            max_json_values: DEFAULT_MAX_JSON_VALUES,
            dialect: None,
        }
    }
}

impl StoreLimits {
    /// Limits of `max_size` bytes and `max_json_values` JSON values, dialect detected.
    pub fn new(max_size: u64, max_json_values: u64) -> Self {
        StoreLimits { max_size, max_json_values, dialect: None }
    }

    /// The same limits, reading every document in `dialect`.
    #[must_use]
    pub fn with_dialect(mut self, dialect: Option<Dialect>) -> Self {
        self.dialect = dialect;
        self
    }

    /// The tighter of both limits, field by field; a dialect named by either wins (`self`'s
    /// first).
    pub(crate) fn tightest(self, other: StoreLimits) -> StoreLimits {
        StoreLimits {
            max_size: self.max_size.min(other.max_size),
            max_json_values: self.max_json_values.min(other.max_json_values),
            dialect: self.dialect.or(other.dialect),
        }
    }
}

/// What [`ConfigStore::subscribe`] publishes: the version served and the number of checks
/// sources have reported. It changes on every recorded check (a new version, an unchanged
/// document, a failure), so a subscriber wakes once per check; compare `version` to act on
/// new snapshots only.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoreVersion {
    /// The version served (`None`: nothing loaded yet).
    pub version: Option<u64>,
    /// Checks reported so far (successful or not).
    pub checks: u64,
}

/// Whether the store serves a snapshot, and whether it is current.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Health {
    /// Nothing loaded yet: readers get no snapshot.
    Empty,
    /// A snapshot is served and the latest check succeeded (or found nothing new).
    Ready,
    /// A snapshot is served but the latest check failed: it may be out of date.
    Stale,
}

/// Freshness and health of a [`ConfigStore`], for metrics, alerts and admin endpoints.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
#[non_exhaustive]
pub struct StoreStatus {
    /// The source feeding the store (`file:/var/local/experiments.json`, or a URL with its
    /// credentials and query redacted).
    pub source: String,
    /// The version served (`None`: nothing loaded yet).
    pub version: Option<u64>,
    /// When the served version was loaded.
    pub loaded_at: Option<SystemTime>,
    /// How long ago that was.
    pub age: Option<Duration>,
    /// SHA-256 of the served bytes (`None` also for a config given already built).
    pub digest: Option<String>,
    /// The most recent failure (kept after recovery, as history).
    pub last_error: Option<String>,
    /// When it happened.
    pub last_error_at: Option<SystemTime>,
    /// Failed checks since the last good one (0 when the source is healthy).
    pub consecutive_failures: u64,
    /// Checks reported so far.
    pub checks: u64,
    /// When the last check was reported.
    pub last_check: Option<SystemTime>,
    /// [`Health::Empty`], [`Health::Ready`] or [`Health::Stale`].
    pub health: Health,
}

/// No snapshot could be handed out: nothing was loaded within the wait, or the source's
/// first check failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "experiments config from {description} is not ready{}: {}",
    waited_text(.waited),
    .last_error.as_deref().unwrap_or("the source has not reported a result yet")
)]
#[non_exhaustive]
pub struct NotReady {
    /// The store's source ([`StoreStatus::source`]).
    pub description: String,
    /// The last failure the source reported, if any.
    pub last_error: Option<String>,
    /// How long was waited, when the wait ran out (`None`: the first check failed).
    pub waited: Option<Duration>,
}

fn waited_text(waited: &Option<Duration>) -> String {
    match waited {
        Some(d) => format!(" after {d:?}"),
        None => " (the first check failed)".to_owned(),
    }
}

/// The last failure, kept for the status.
struct RecordedError {
    message: String,
    at: SystemTime,
}

/// What the store records about checks, behind a mutex held only for short copies.
#[derive(Default)]
struct State {
    last_error: Option<RecordedError>,
    consecutive_failures: u64,
    checks: u64,
    last_check: Option<SystemTime>,
}

struct Inner {
    description: String,
    limits: StoreLimits,
    current: ArcSwapOption<Snapshot>,
    state: Mutex<State>,
    /// Signalled after every recorded check (for [`ConfigStore::wait_ready_blocking`]).
    recorded: Condvar,
    /// Serializes writers: the compare with the served digest, the parse and the publish.
    writer: Mutex<()>,
    notify: watch::Sender<StoreVersion>,
}

/// The outcome of one check, as recorded.
enum Check {
    /// A new snapshot was published, or the document equals the served one, or nothing
    /// changed: the source is healthy.
    Good,
    /// The check failed.
    Failed(LoadFailure),
    /// The check failed like the previous one (the file watcher's unchanged broken file):
    /// counted, the recorded error kept.
    FailedAgain,
}

/// One current snapshot of the experiments config, fed by pluggable sources.
///
/// Cheap to clone (an `Arc` inside); every clone is the same store. Readers call
/// [`snapshot`](Self::snapshot) (lock-free) and [`status`](Self::status) (a copy of recorded
/// state, never waits on IO); start-up code waits with [`ready`](Self::ready),
/// [`first_check`](Self::first_check) or [`wait_ready_blocking`](Self::wait_ready_blocking);
/// [`subscribe`](Self::subscribe) notifies of every check.
///
/// Sources feed it with [`offer_bytes`](Self::offer_bytes),
/// [`offer_config`](Self::offer_config), [`record_failure`](Self::record_failure) and
/// [`record_unchanged`](Self::record_unchanged). A store never replaces a good snapshot with
/// a bad document: failures are recorded, the last good snapshot stays.
///
/// ```
/// use experiments_watch::{ConfigStore, Health, Origin};
/// let store = ConfigStore::new("example");
/// assert!(store.snapshot().is_none());
/// store.offer_bytes(br#"{"flag": {"id": 1, "name": "flag", "type": "feature_flag",
///     "start_ts": 0, "stop_ts": 4102444800, "experiment": {"variants": {"active": 100}}}}"#,
///     Origin::other("inline")).unwrap();
/// assert!(store.offer_bytes(b"{broken", Origin::other("inline")).is_err());
/// let status = store.status();
/// assert_eq!((status.version, status.health), (Some(1), Health::Stale));
/// assert_eq!(store.snapshot().unwrap().config.len(), 1);
/// ```
#[derive(Clone)]
pub struct ConfigStore {
    inner: Arc<Inner>,
}

impl fmt::Debug for ConfigStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConfigStore")
            .field("source", &self.inner.description)
            .field("version", &self.inner.current.load().as_ref().map(|s| s.version))
            .finish()
    }
}

impl ConfigStore {
    /// An empty store with the default [`StoreLimits`]; `description` names its source in
    /// status and errors (keep secrets out of it).
    pub fn new(description: impl Into<String>) -> Self {
        Self::with_limits(description, StoreLimits::default())
    }

    /// An empty store with explicit limits.
    pub fn with_limits(description: impl Into<String>, limits: StoreLimits) -> Self {
        let (notify, _) = watch::channel(StoreVersion::default());
        ConfigStore {
            inner: Arc::new(Inner {
                description: description.into(),
                limits,
                current: ArcSwapOption::empty(),
                state: Mutex::new(State::default()),
                recorded: Condvar::new(),
                writer: Mutex::new(()),
                notify,
            }),
        }
    }

    /// An empty store described by `source` and with its limits
    /// ([`ConfigSource::describe`], [`ConfigSource::limits`]).
    pub fn for_source(source: &dyn ConfigSource) -> Self {
        Self::with_limits(source.describe(), source.limits())
    }

    /// Makes a store for `source` ([`ConfigStore::for_source`]) and starts the source on it.
    /// Returns at once: wait for the first load with [`ready`](Self::ready),
    /// [`first_check`](Self::first_check) or [`wait_ready_blocking`](Self::wait_ready_blocking).
    /// Keep the guard: dropping it stops the source.
    pub fn start(source: impl ConfigSource) -> Result<(ConfigStore, SourceGuard), SourceError> {
        let store = Self::for_source(&source);
        let guard = Box::new(source).start(store.clone())?;
        Ok((store, guard))
    }

    /// The description of the source, as given at creation.
    pub fn description(&self) -> &str {
        &self.inner.description
    }

    /// The limits applied to offered bytes.
    pub fn limits(&self) -> StoreLimits {
        self.inner.limits
    }

    /// The current snapshot (lock-free), `None` until a first one is loaded.
    pub fn snapshot(&self) -> Option<Arc<Snapshot>> {
        self.inner.current.load_full()
    }

    /// Runs `f` on the current snapshot without touching its reference count (the fastest
    /// read; do not block inside `f`). `None` until a first snapshot is loaded.
    pub fn with_snapshot<R>(&self, f: impl FnOnce(&Snapshot) -> R) -> Option<R> {
        self.inner.current.load().as_deref().map(f)
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // Nothing panics while holding it; recover the guard anyway.
        self.inner.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The version served and the number of checks recorded, as [`subscribe`](Self::subscribe)
    /// publishes them.
    pub fn version(&self) -> StoreVersion {
        *self.inner.notify.borrow()
    }

    /// Freshness and health. Never waits on IO: it copies what the last checks recorded.
    pub fn status(&self) -> StoreStatus {
        let snap = self.inner.current.load_full();
        let st = self.state();
        let health = match (&snap, st.consecutive_failures) {
            (None, _) => Health::Empty,
            (Some(_), 0) => Health::Ready,
            (Some(_), _) => Health::Stale,
        };
        StoreStatus {
            source: self.inner.description.clone(),
            version: snap.as_ref().map(|s| s.version),
            loaded_at: snap.as_ref().map(|s| s.loaded_at),
            age: snap.as_ref().and_then(|s| s.loaded_at.elapsed().ok()),
            digest: snap.as_ref().map(|s| s.digest.clone()).filter(|d| !d.is_empty()),
            last_error: st.last_error.as_ref().map(|e| e.message.clone()),
            last_error_at: st.last_error.as_ref().map(|e| e.at),
            consecutive_failures: st.consecutive_failures,
            checks: st.checks,
            last_check: st.last_check,
            health,
        }
    }

    /// A receiver of change notifications: it is marked changed after every recorded check
    /// (see [`StoreVersion`]). Works with any async runtime.
    pub fn subscribe(&self) -> watch::Receiver<StoreVersion> {
        self.inner.notify.subscribe()
    }

    fn last_error(&self) -> Option<String> {
        self.state().last_error.as_ref().map(|e| e.message.clone())
    }

    fn not_ready(&self, waited: Option<Duration>) -> NotReady {
        NotReady {
            description: self.inner.description.clone(),
            last_error: self.last_error(),
            waited,
        }
    }

    /// Waits, without blocking a thread, until a snapshot exists, at most `timeout`; on
    /// time-out the error carries the source's last failure. Works on any async runtime
    /// (the deadline is kept by a short-lived helper thread, which ends as soon as this
    /// returns or is dropped).
    pub async fn ready(&self, timeout: Duration) -> Result<Arc<Snapshot>, NotReady> {
        let found = self.wait_until(timeout, |store| store.snapshot()).await;
        found.ok_or_else(|| self.not_ready(Some(timeout)))
    }

    /// Waits, without blocking a thread, until the source has reported its first result,
    /// at most `timeout`. Returns the snapshot served then, or [`NotReady`] with the failure
    /// when the first check failed (and none was loaded since): a fail-fast start-up policy.
    pub async fn first_check(&self, timeout: Duration) -> Result<Arc<Snapshot>, NotReady> {
        let checked = self.wait_until(timeout, |store| (store.version().checks > 0).then_some(()));
        match checked.await {
            Some(()) => self.snapshot().ok_or_else(|| self.not_ready(None)),
            None => Err(self.not_ready(Some(timeout))),
        }
    }

    /// Blocks the calling thread until a snapshot exists, at most `timeout`.
    ///
    /// For code without an async runtime. Do not call it on an async runtime's worker
    /// thread: it would block that worker (and, on a single-threaded runtime, the source
    /// that should feed the store); use [`ready`](Self::ready) there.
    pub fn wait_ready_blocking(&self, timeout: Duration) -> Result<Arc<Snapshot>, NotReady> {
        let deadline = Instant::now().checked_add(timeout);
        let mut st = self.state();
        loop {
            if let Some(snap) = self.snapshot() {
                return Ok(snap);
            }
            let left = match deadline {
                Some(d) => d.saturating_duration_since(Instant::now()),
                // Too far to represent: wait in long steps, forever if need be.
                None => Duration::from_secs(3600),
            };
            if left.is_zero() {
                drop(st);
                return Err(self.not_ready(Some(timeout)));
            }
            st = match self.inner.recorded.wait_timeout(st, left) {
                Ok((guard, _)) => guard,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
    }

    /// Polls `probe` after every recorded check until it gives a value or `timeout` passes.
    async fn wait_until<T>(
        &self,
        timeout: Duration,
        probe: impl Fn(&ConfigStore) -> Option<T>,
    ) -> Option<T> {
        // Subscribe before probing, so no check between the two is missed.
        let mut rx = self.subscribe();
        if let Some(v) = probe(self) {
            return Some(v);
        }
        if timeout.is_zero() {
            return None;
        }
        let Ok(mut deadline) = Deadline::start(timeout) else {
            // No thread to keep the time: do not wait unbounded.
            return probe(self);
        };
        let probe = &probe;
        let mut changes = pin!(async move {
            loop {
                if let Some(v) = probe(self) {
                    return Some(v);
                }
                if rx.changed().await.is_err() {
                    // The sender lives in the store, which `self` keeps alive: unreachable
                    // in practice, and answered by one last probe.
                    return probe(self);
                }
            }
        });
        std::future::poll_fn(|cx| {
            if let Poll::Ready(v) = changes.as_mut().poll(cx) {
                return Poll::Ready(v);
            }
            match Pin::new(&mut deadline.expired).poll(cx) {
                Poll::Ready(_) => Poll::Ready(probe(self)),
                Poll::Pending => Poll::Pending,
            }
        })
        .await
    }

    /// Offers a document's bytes, checked against the store's [`StoreLimits`].
    ///
    /// - Bytes equal to the served snapshot's (same SHA-256): `Ok(None)`, no new version; the
    ///   check counts as good (consecutive failures reset).
    /// - A valid document: published as the next version, returned.
    /// - Too large, too many values, empty, not JSON, not an object: the failure is recorded
    ///   ([`status`](Self::status) turns [`Health::Stale`] if a snapshot is served), the last
    ///   good snapshot stays, and the failure is returned.
    ///
    /// Parsing happens on the calling thread; readers are never blocked by it.
    pub fn offer_bytes(
        &self,
        bytes: &[u8],
        origin: Origin,
    ) -> Result<Option<Arc<Snapshot>>, LoadFailure> {
        self.offer_bytes_within(bytes, origin, self.inner.limits)
    }

    /// [`offer_bytes`](Self::offer_bytes) with the tighter of the store's limits and
    /// `limits` (a built-in source's own settings).
    pub(crate) fn offer_bytes_within(
        &self,
        bytes: &[u8],
        origin: Origin,
        limits: StoreLimits,
    ) -> Result<Option<Arc<Snapshot>>, LoadFailure> {
        let limits = self.inner.limits.tightest(limits);
        let result = self.publish_bytes(bytes, origin, limits);
        match &result {
            Ok(_) => self.record(Check::Good),
            Err(failure) => self.record(Check::Failed(failure.clone())),
        }
        result
    }

    fn writer(&self) -> MutexGuard<'_, ()> {
        self.inner.writer.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn publish_bytes(
        &self,
        bytes: &[u8],
        origin: Origin,
        limits: StoreLimits,
    ) -> Result<Option<Arc<Snapshot>>, LoadFailure> {
        snapshot::check_size(bytes.len(), limits.max_size)?;
        let digest = snapshot::digest_hex(bytes);
        let _writer = self.writer();
        let current = self.inner.current.load_full();
        if current.as_ref().is_some_and(|c| c.digest == digest) {
            return Ok(None);
        }
        let document = snapshot::parse_document(bytes, limits.max_json_values, limits.dialect)?;
        let version = current.as_ref().map_or(1, |c| c.version.saturating_add(1));
        let snap = Arc::new(Snapshot::build(document, version, origin, bytes.len() as u64, digest));
        self.inner.current.store(Some(Arc::clone(&snap)));
        Ok(Some(snap))
    }

    /// Publishes an already built config as the next version (always a new version: there
    /// are no bytes to compare) and records a good check.
    pub fn offer_config(&self, config: Config, origin: Origin) -> Arc<Snapshot> {
        let snap = {
            let _writer = self.writer();
            let version = self.inner.current.load().as_ref().map_or(1, |c| c.version + 1);
            let snap = Arc::new(Snapshot::build(config, version, origin, 0, String::new()));
            self.inner.current.store(Some(Arc::clone(&snap)));
            snap
        };
        self.record(Check::Good);
        snap
    }

    /// Records a failed check that produced no document (a fetch error: missing file,
    /// network error, bad HTTP status, time-out). The served snapshot stays.
    pub fn record_failure(&self, failure: LoadFailure) {
        self.record(Check::Failed(failure));
    }

    /// Records a check that failed exactly like the previous one: counted, the recorded
    /// error (and its time) kept.
    pub(crate) fn record_repeated_failure(&self) {
        self.record(Check::FailedAgain);
    }

    /// Records a check that found nothing new (HTTP 304, an unchanged file): updates the
    /// time of the last check and resets the consecutive failures.
    pub fn record_unchanged(&self) {
        self.record(Check::Good);
    }

    fn record(&self, check: Check) {
        let now = SystemTime::now();
        let version = {
            let mut st = self.state();
            st.checks = st.checks.saturating_add(1);
            st.last_check = Some(now);
            match check {
                Check::Good => st.consecutive_failures = 0,
                Check::Failed(failure) => {
                    st.consecutive_failures = st.consecutive_failures.saturating_add(1);
                    st.last_error = Some(RecordedError { message: failure.message, at: now });
                }
                Check::FailedAgain => {
                    st.consecutive_failures = st.consecutive_failures.saturating_add(1);
                }
            }
            StoreVersion {
                version: self.inner.current.load().as_ref().map(|s| s.version),
                checks: st.checks,
            }
        };
        self.inner.recorded.notify_all();
        self.inner.notify.send_replace(version);
    }
}

/// A deadline kept by a helper thread, so waits work on any async runtime (or none): the
/// thread completes `expired` when the time is up, and ends at once, without completing it,
/// when the deadline is dropped.
struct Deadline {
    expired: oneshot::Receiver<()>,
    /// Dropping it disconnects the helper thread's channel, which ends it.
    _cancel: mpsc::Sender<()>,
}

impl Deadline {
    fn start(timeout: Duration) -> std::io::Result<Deadline> {
        let (expire, expired) = oneshot::channel();
        let (cancel, cancelled) = mpsc::channel::<()>();
        std::thread::Builder::new().name("experiments-watch-deadline".into()).spawn(move || {
            // A timeout too large for an `Instant` makes `recv_timeout` wait for the
            // disconnection only.
            if let Err(RecvTimeoutError::Timeout) = cancelled.recv_timeout(timeout) {
                let _ = expire.send(());
            }
        })?;
        Ok(Deadline { expired, _cancel: cancel })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::FailureKind;

    fn doc(n: usize) -> String {
        let entries: Vec<String> = (0..n)
            .map(|i| {
                format!(
                    r#""e{i}": {{"id": {i}, "name": "e{i}", "type": "feature_flag",
                    "start_ts": 0, "stop_ts": 4102444800,
                    "experiment": {{"variants": {{"active": 100}}}}}}"#
                )
            })
            .collect();
        format!("{{{}}}", entries.join(","))
    }

    fn origin() -> Origin {
        Origin::other("test")
    }

    #[test]
    fn the_store_can_be_shared_between_threads() {
        fn shareable<T: Send + Sync + Clone>() {}
        shareable::<ConfigStore>();
        fn send<T: Send>(_: &T) {}
        let store = ConfigStore::new("t");
        send(&store.ready(Duration::ZERO));
        send(&store.first_check(Duration::ZERO));
    }

    #[test]
    fn a_good_snapshot_is_never_replaced_by_a_bad_document() {
        let store = ConfigStore::with_limits("t", StoreLimits::new(10_000, 1_000));
        let first = store.offer_bytes(doc(2).as_bytes(), origin()).unwrap().unwrap();
        assert_eq!(first.version, 1);
        assert_eq!(store.status().health, Health::Ready);
        let big = doc(100);
        let many = format!("{{\"a\": [{}]}}", vec!["1"; 2000].join(","));
        for (bad, kind) in [
            ("{not json", FailureKind::InvalidJson),
            ("[1, 2]", FailureKind::NotAnObject),
            ("  ", FailureKind::Empty),
            (big.as_str(), FailureKind::TooLarge),
            (many.as_str(), FailureKind::TooManyValues),
        ] {
            let err = store.offer_bytes(bad.as_bytes(), origin()).unwrap_err();
            assert_eq!(err.kind, kind, "{err}");
            let snap = store.snapshot().unwrap();
            assert_eq!((snap.version, snap.config.len()), (1, 2));
        }
        let status = store.status();
        assert_eq!(status.health, Health::Stale);
        assert_eq!(status.consecutive_failures, 5);
        assert_eq!(status.checks, 6);
        assert!(status.last_error.unwrap().contains("JSON values"));
        // A failure without a document keeps it too.
        store.record_failure(LoadFailure::new(FailureKind::Network, "connection\nrefused"));
        assert_eq!(store.status().last_error.as_deref(), Some("connection refused"));
        assert_eq!(store.snapshot().unwrap().version, 1);
        // Recovery.
        let second = store.offer_bytes(doc(3).as_bytes(), origin()).unwrap().unwrap();
        assert_eq!(second.version, 2);
        let status = store.status();
        assert_eq!((status.health, status.consecutive_failures), (Health::Ready, 0));
        assert!(status.last_error.is_some(), "kept as history");
    }

    #[test]
    fn identical_bytes_make_no_new_version() {
        let store = ConfigStore::new("t");
        let text = doc(2);
        let first = store.offer_bytes(text.as_bytes(), origin()).unwrap().unwrap();
        assert_eq!(first.digest.len(), 64);
        store.record_failure(LoadFailure::new(FailureKind::Timeout, "slow"));
        assert_eq!(store.offer_bytes(text.as_bytes(), origin()).unwrap().map(|s| s.version), None);
        let status = store.status();
        assert_eq!(status.version, Some(1));
        assert_eq!(status.consecutive_failures, 0, "an unchanged document is a good check");
        assert_eq!(status.health, Health::Ready);
        // Built configs always make a new version; versions keep increasing.
        let cfg = Config::from_slice(doc(1).as_bytes()).unwrap();
        let built = store.offer_config(cfg, Origin::fixed());
        assert_eq!((built.version, built.origin.clone()), (2, Origin::Fixed));
        assert_eq!(store.status().digest, None);
        let again = store.offer_bytes(text.as_bytes(), origin()).unwrap().unwrap();
        assert_eq!(again.version, 3);
    }

    #[test]
    fn record_unchanged_resets_failures() {
        let store = ConfigStore::new("t");
        store.offer_bytes(doc(1).as_bytes(), origin()).unwrap();
        store.record_failure(LoadFailure::new(FailureKind::Status(500), "HTTP 500"));
        store.record_repeated_failure();
        assert_eq!(store.status().consecutive_failures, 2);
        let before = store.status().last_check;
        store.record_unchanged();
        let status = store.status();
        assert_eq!((status.consecutive_failures, status.checks), (0, 4));
        assert!(status.last_check >= before);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn subscribers_are_notified_of_every_check() {
        let store = ConfigStore::new("t");
        let mut rx = store.subscribe();
        assert_eq!(*rx.borrow_and_update(), StoreVersion { version: None, checks: 0 });
        let writer = store.clone();
        let task = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            writer.offer_bytes(doc(1).as_bytes(), origin()).unwrap();
        });
        tokio::time::timeout(Duration::from_secs(5), rx.changed()).await.unwrap().unwrap();
        assert_eq!(*rx.borrow_and_update(), StoreVersion { version: Some(1), checks: 1 });
        task.join().unwrap();
        store.record_unchanged();
        assert!(rx.has_changed().unwrap());
        assert_eq!(*rx.borrow_and_update(), StoreVersion { version: Some(1), checks: 2 });
        assert_eq!(store.version(), StoreVersion { version: Some(1), checks: 2 });
    }

    #[tokio::test(flavor = "current_thread")]
    async fn ready_waits_for_a_snapshot_and_times_out() {
        let store = ConfigStore::new("file:/x.json");
        let err = store.ready(Duration::from_millis(100)).await.unwrap_err();
        assert_eq!(err.waited, Some(Duration::from_millis(100)));
        assert!(err.to_string().contains("file:/x.json"), "{err}");
        assert!(err.to_string().contains("not reported a result"), "{err}");
        store.record_failure(LoadFailure::new(FailureKind::Missing, "/x.json does not exist"));
        let err = store.ready(Duration::ZERO).await.unwrap_err();
        assert_eq!(err.last_error.as_deref(), Some("/x.json does not exist"));
        // A snapshot arriving during the wait ends it.
        let writer = store.clone();
        let feeder = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            writer.offer_bytes(doc(1).as_bytes(), origin()).unwrap();
        });
        let started = Instant::now();
        let snap = store.ready(Duration::from_secs(30)).await.unwrap();
        assert_eq!(snap.version, 1);
        assert!(started.elapsed() < Duration::from_secs(10));
        feeder.join().unwrap();
        // Huge timeouts are fine.
        assert!(store.ready(Duration::MAX).await.is_ok());
    }

    #[tokio::test(flavor = "current_thread")]
    async fn first_check_fails_fast_on_a_failure() {
        let store = ConfigStore::new("http://h/x");
        let err = store.first_check(Duration::from_millis(50)).await.unwrap_err();
        assert_eq!(err.waited, Some(Duration::from_millis(50)));
        let writer = store.clone();
        let feeder = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            writer.record_failure(LoadFailure::new(FailureKind::Status(404), "HTTP 404"));
        });
        let started = Instant::now();
        let err = store.first_check(Duration::from_secs(30)).await.unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(10), "fails fast");
        assert_eq!((err.waited, err.last_error.as_deref()), (None, Some("HTTP 404")));
        assert!(err.to_string().contains("first check failed"), "{err}");
        feeder.join().unwrap();
        store.offer_bytes(doc(1).as_bytes(), origin()).unwrap();
        assert_eq!(store.first_check(Duration::ZERO).await.unwrap().version, 1);
    }

    #[test]
    fn wait_ready_blocking_waits_and_times_out() {
        let store = ConfigStore::new("t");
        let started = Instant::now();
        assert!(store.wait_ready_blocking(Duration::from_millis(100)).is_err());
        assert!(started.elapsed() >= Duration::from_millis(100));
        let writer = store.clone();
        let feeder = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            writer.offer_bytes(doc(1).as_bytes(), origin()).unwrap();
        });
        assert_eq!(store.wait_ready_blocking(Duration::from_secs(30)).unwrap().version, 1);
        feeder.join().unwrap();
    }

    #[test]
    fn concurrent_writers_get_unique_increasing_versions() {
        let store = ConfigStore::new("t");
        let writers: Vec<_> = (0..4)
            .map(|w| {
                let store = store.clone();
                std::thread::spawn(move || {
                    let mut versions = Vec::new();
                    for i in 0..20 {
                        let text = doc(1 + (w * 20 + i) % 7 + w * 10);
                        if let Ok(Some(s)) = store.offer_bytes(text.as_bytes(), origin()) {
                            versions.push(s.version);
                        }
                    }
                    versions
                })
            })
            .collect();
        let mut all: Vec<u64> = writers.into_iter().flat_map(|w| w.join().unwrap()).collect();
        let n = all.len();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), n, "no version published twice");
        assert_eq!(store.snapshot().unwrap().version, *all.last().unwrap());
    }
}
