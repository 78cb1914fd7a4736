//! # experiments-watch
//!
//! An always-valid snapshot of the experiments config (`experiments.json`), kept current by
//! a pluggable source.
//!
//! # Store and sources
//!
//! Three separate pieces, in the style of Eppo's `eppo_core` (store, fetcher, poller):
//!
//! - [`ConfigStore`] holds the current [`Snapshot`]: readers get an `Arc<Snapshot>`
//!   lock-free (`arc-swap`) with [`ConfigStore::snapshot`], [`ConfigStore::status`] copies
//!   recorded state ([`StoreStatus`], with a [`Health`] of `Empty`, `Ready` or `Stale`),
//!   [`ConfigStore::subscribe`] notifies of every check, and start-up code waits with
//!   [`ConfigStore::ready`], [`ConfigStore::first_check`] (fail fast when the first check
//!   fails) or [`ConfigStore::wait_ready_blocking`]. Documents are parsed once per change
//!   with `experiments-core`; a bad document never replaces the last good snapshot, and
//!   identical bytes (same SHA-256) never make a new version. Versions start at 1 and only
//!   grow.
//! - A [`ConfigSource`] feeds a store from the background until its [`SourceGuard`] is
//!   dropped: [`FileSource`] follows a file, `HttpSource` (feature `http`) polls a URL with
//!   conditional requests and back-off, [`FixedSource`] publishes a config once. A custom
//!   source calls [`ConfigStore::offer_bytes`], [`ConfigStore::offer_config`],
//!   [`ConfigStore::record_failure`] and [`ConfigStore::record_unchanged`]. Starting a source
//!   never waits for the first load; waiting is the caller's choice.
//! - [`ConfigWatcher`] is the file source with its own store ([`ConfigWatcher::store`]), the
//!   blocking start-up of baseplate (`timeout`), an event hook ([`WatchEvent`]) and a
//!   file-specific status ([`WatchStatus`]).
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use experiments_watch::{ConfigStore, FileSource, WatchSettings};
//! let (store, _guard) = ConfigStore::start(FileSource(WatchSettings::default()))?;
//! store.ready(Duration::from_secs(30)).await?;
//! let snapshot = store.snapshot().expect("ready");
//! println!("version {} from {}", snapshot.version, snapshot.origin);
//! # Ok(()) }
//! ```
//!
//! # Following a file
//!
//! The file source loads the file, and sees changes through notifications on the parent
//! directory (so renames, re-creation and Kubernetes' `..data` symlink swaps are caught) plus
//! a periodic poll that catches anything missed. A broken, truncated, empty, deleted,
//! unreadable, oversized file or a directory never replaces the last good snapshot: the
//! error is recorded in the status and the source recovers by itself when the file is valid
//! again.
//!
//! # Polling a URL (feature `http`)
//!
//! `HttpSource` polls from a tokio task (started within a tokio runtime). Each request after
//! an accepted document carries `If-None-Match` / `If-Modified-Since`; a `304` is an
//! unchanged check. Any other status, a network error, a time-out or a bad body is recorded
//! and the last good snapshot stays; consecutive failures back off exponentially with jitter
//! up to `max_backoff`. Credentials in the URL and header values are never shown in
//! `Debug`, status or errors.
//!
//! # Limits
//!
//! Files and responses are outside input; nothing they do can block the caller, grow memory
//! without bound or flood the event hook:
//!
//! - **Only regular files are read** (symlinks followed). A FIFO, socket or device in place
//!   of the file is refused like a broken file: the path is opened with `O_NONBLOCK` and the
//!   type checked again on the opened descriptor, so even a swap between the check and the
//!   open never blocks on a pipe.
//! - **Callers never wait on IO.** Only a source's thread or task touches the file or the
//!   network; [`ConfigStore::status`] and [`ConfigWatcher::status`] copy recorded state,
//!   [`ConfigWatcher::reload_now`] and a [`ConfigWatcher::start`] without timeout wait for a
//!   check at most 10 s, and dropping the watcher (or a file source's guard) at most 1 s
//!   before detaching a thread stuck in a file system that does not answer. Every HTTP
//!   request is bounded by `request_timeout`, body included, and at most 3 redirects are
//!   followed.
//! - **Bytes read**: at most [`WatchSettings::max_file_size`] + 1 from a file; from HTTP a
//!   larger `Content-Length` is refused unread and a body is abandoned as soon as it passes
//!   `max_file_size` (at most the limit plus one network chunk is buffered). A store also
//!   refuses offered bytes over its [`StoreLimits::max_size`].
//! - **Memory**: the JSON values are counted, before parsing, against
//!   [`WatchSettings::max_json_values`] (for HTTP, its `max_json_values`; for a store,
//!   [`StoreLimits::max_json_values`]), and a load allocates at most about 400 bytes per
//!   value plus 6 per byte of the document (measured on the costliest shapes found): about
//!   660 MB at most with the defaults, where the size limit alone allowed up to about 165
//!   times the document size. See that field.
//! - **Events**: a failure is reported once per cause (missing, not a regular file, too
//!   large, too many values, empty, invalid JSON, not an object...), not once per check, and
//!   failure events are rate-limited (a burst of 5, then one per second; the current cause
//!   is reported when allowed). [`ConfigWatcher::status`] always has the latest error and
//!   the count of failed checks. A store's subscribers are woken once per check (the watch
//!   channel keeps only the latest value, so a slow subscriber never queues them).
//! - **Notifications stay truthful**: when the directory holding the file is deleted, moved
//!   or replaced, [`WatchStatus::notifications`] turns false and the watch is re-armed on the
//!   directory now at that path as soon as it exists (tried every 200 ms); the poll covers the
//!   gap.

#[cfg(feature = "http")]
mod http;
mod settings;
mod snapshot;
mod source;
mod store;
mod watcher;

#[cfg(feature = "http")]
pub use http::{
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_HTTP_POLL_INTERVAL, DEFAULT_MAX_BACKOFF,
    DEFAULT_REQUEST_TIMEOUT, HttpSource, HttpSourceSettings, MAX_REDIRECTS,
};
pub use settings::{
    DEFAULT_BACKOFF, DEFAULT_MAX_FILE_SIZE, DEFAULT_MAX_JSON_VALUES, DEFAULT_PATH,
    DEFAULT_POLL_INTERVAL, WatchSettings,
};
pub use snapshot::{
    Dialect, FailureKind, LoadFailure, Origin, Snapshot, count_json_values, detect_dialect,
    epoch_seconds,
};
pub use source::{ConfigSource, FileSource, FixedSource, SettingsError, SourceError, SourceGuard};
pub use store::{ConfigStore, Health, NotReady, StoreLimits, StoreStatus, StoreVersion};
pub use watcher::{
    ConfigWatcher, StartError, Unavailable, WatchEvent, WatchStatus, WatcherBuilder,
};
