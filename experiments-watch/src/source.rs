//! Sources: what feeds a [`ConfigStore`]. A source is started once on a store and keeps
//! feeding it until its [`SourceGuard`] is dropped.

use std::fmt;
use std::path::PathBuf;

use experiments_core::Config;

use crate::settings::WatchSettings;
use crate::snapshot::Origin;
use crate::store::{ConfigStore, StoreLimits};

/// Something that feeds a [`ConfigStore`]: a file ([`FileSource`]), a URL (`HttpSource`,
/// feature `http`), a fixed config ([`FixedSource`]), or your own.
///
/// A custom source calls the store's writer methods ([`ConfigStore::offer_bytes`],
/// [`ConfigStore::offer_config`], [`ConfigStore::record_failure`],
/// [`ConfigStore::record_unchanged`]) once per check, from whatever thread or task it runs.
pub trait ConfigSource: Send + 'static {
    /// Human description for status and logs (`file:/var/local/experiments.json`); keep
    /// secrets (credentials, tokens in query strings) out of it.
    fn describe(&self) -> String;

    /// The limits a store made for this source should apply
    /// ([`ConfigStore::for_source`]); the defaults unless the source has its own settings.
    fn limits(&self) -> StoreLimits {
        StoreLimits::default()
    }

    /// Starts feeding `store` in the background and returns at once (waiting for the first
    /// load is the caller's job: [`ConfigStore::ready`], [`ConfigStore::first_check`]); the
    /// returned guard stops the source when dropped.
    fn start(self: Box<Self>, store: ConfigStore) -> Result<SourceGuard, SourceError>;
}

/// Keeps a started source running; dropping it stops the source (a file source's thread,
/// an HTTP source's task). A stopped source no longer writes to its store (only a document
/// already being parsed when the guard is dropped may still be published); the store keeps
/// its last snapshot.
pub struct SourceGuard {
    reload: Option<Box<dyn Fn() -> bool + Send + Sync>>,
    /// Dropped last, after the reload hook.
    _keep: Box<dyn Send + Sync>,
}

impl fmt::Debug for SourceGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SourceGuard").field("reload", &self.reload.is_some()).finish()
    }
}

impl SourceGuard {
    /// A guard keeping `keep` alive: whatever stops the source in its `Drop` (a handle that
    /// aborts a task, a flag, a thread's sender). `()` for a source with nothing running.
    pub fn new(keep: impl Send + Sync + 'static) -> Self {
        SourceGuard { reload: None, _keep: Box::new(keep) }
    }

    /// Adds the hook [`reload_now`](Self::reload_now) calls: it asks the source to check now
    /// and returns whether the request was delivered. It must not block.
    #[must_use]
    pub fn with_reload(mut self, reload: impl Fn() -> bool + Send + Sync + 'static) -> Self {
        self.reload = Some(Box::new(reload));
        self
    }

    /// Asks the source to check now, without waiting for the result (watch
    /// [`ConfigStore::subscribe`] or [`ConfigStore::status`] for it). Returns `false` when
    /// the source has no such hook or did not take the request (it has stopped).
    pub fn reload_now(&self) -> bool {
        self.reload.as_ref().is_some_and(|reload| reload())
    }
}

/// A setting that cannot work, named by its field; the value is never quoted (it may be a
/// secret).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid setting `{field}`: {reason}")]
#[non_exhaustive]
pub struct SettingsError {
    /// The field (`url`, `poll_interval`, `headers`...).
    pub field: &'static str,
    /// Why, without the value.
    pub reason: String,
}

impl SettingsError {
    /// An error about `field`.
    pub fn new(field: &'static str, reason: impl Into<String>) -> Self {
        SettingsError { field, reason: reason.into() }
    }
}

/// A source could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    /// A background thread could not be spawned.
    #[error("cannot start the source's thread: {0}")]
    Thread(#[from] std::io::Error),
    /// The source runs as a tokio task and was started outside a tokio runtime.
    #[error("this source must be started from within a tokio runtime")]
    NoRuntime,
    /// The settings cannot work.
    #[error(transparent)]
    Settings(#[from] SettingsError),
    /// The extra CA certificate cannot be read or is not PEM.
    #[error("cannot use the CA certificate {path}: {reason}")]
    CaFile {
        /// The configured file.
        path: PathBuf,
        /// What went wrong: the read error, or that the file holds no PEM certificate.
        reason: String,
    },
    /// The HTTP client could not be built (TLS set-up).
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
}

/// Follows a file, like [`ConfigWatcher`](crate::ConfigWatcher) (notifications on the parent
/// directory, a poll, every limit of [`WatchSettings`]), feeding the store it is started on.
///
/// Starting does not wait for the first load, whatever `timeout` says: waiting is the
/// caller's job ([`ConfigStore::ready`], [`ConfigStore::first_check`],
/// [`ConfigStore::wait_ready_blocking`]). [`SourceGuard::reload_now`] asks for a check at
/// once. Dropping the guard stops the thread, waiting at most 1 s for a check in progress.
///
/// ```no_run
/// use std::time::Duration;
/// use experiments_watch::{ConfigStore, FileSource, WatchSettings};
/// let (store, _guard) = ConfigStore::start(FileSource(WatchSettings::default()))?;
/// let snapshot = store.wait_ready_blocking(Duration::from_secs(10))?;
/// println!("serving version {}", snapshot.version);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct FileSource(pub WatchSettings);

impl ConfigSource for FileSource {
    fn describe(&self) -> String {
        format!("file:{}", self.0.path.display())
    }

    fn limits(&self) -> StoreLimits {
        StoreLimits::new(self.0.max_file_size, self.0.max_json_values)
    }

    fn start(self: Box<Self>, store: ConfigStore) -> Result<SourceGuard, SourceError> {
        let follower = crate::watcher::Follower::spawn(self.0, store, None)?;
        let poke = follower.poker();
        Ok(SourceGuard::new(follower).with_reload(move || poke.poke()))
    }
}

/// A config given already built: published once, as one version, when started.
///
/// For tests, and services that embed their config.
///
/// ```
/// use experiments_watch::{ConfigStore, FixedSource};
/// let config = experiments_core::Config::from_slice(b"{}").unwrap();
/// let (store, _guard) = ConfigStore::start(FixedSource(config)).unwrap();
/// assert_eq!(store.snapshot().unwrap().version, 1);
/// ```
pub struct FixedSource(pub Config);

impl fmt::Debug for FixedSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("FixedSource").field(&format_args!("{} experiments", self.0.len())).finish()
    }
}

impl ConfigSource for FixedSource {
    fn describe(&self) -> String {
        "fixed".to_owned()
    }

    fn start(self: Box<Self>, store: ConfigStore) -> Result<SourceGuard, SourceError> {
        store.offer_config(self.0, Origin::fixed());
        Ok(SourceGuard::new(()))
    }
}
