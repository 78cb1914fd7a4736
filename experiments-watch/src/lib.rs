//! # experiments-watch
//!
//! An always-valid snapshot of the `experiments.json` file written by the config fetcher.
//!
//! [`ConfigWatcher`] loads the file, parses it once per change with `experiments-core`, and
//! hands readers an `Arc<Snapshot>` lock-free (`arc-swap`). Changes are seen through
//! notifications on the parent directory (so renames, re-creation and Kubernetes' `..data`
//! symlink swaps are caught) plus a periodic poll that catches anything missed. A broken,
//! truncated, empty, deleted, unreadable, oversized file or a directory never replaces the
//! last good snapshot: the error is recorded in [`ConfigWatcher::status`] and the watcher
//! recovers by itself when the file is valid again. Identical bytes never make a new version.

mod settings;
mod snapshot;
mod watcher;

pub use settings::{
    DEFAULT_BACKOFF, DEFAULT_MAX_FILE_SIZE, DEFAULT_PATH, DEFAULT_POLL_INTERVAL, WatchSettings,
};
pub use snapshot::{Snapshot, epoch_seconds};
pub use watcher::{
    ConfigWatcher, StartError, Unavailable, WatchEvent, WatchStatus, WatcherBuilder,
};
