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
//!
//! # Limits
//!
//! The file is outside input; nothing it does can block the caller, grow memory without
//! bound or flood the event hook:
//!
//! - **Only regular files are read** (symlinks followed). A FIFO, socket or device in place
//!   of the file is refused like a broken file: the path is opened with `O_NONBLOCK` and the
//!   type checked again on the opened descriptor, so even a swap between the check and the
//!   open never blocks on a pipe.
//! - **Callers never wait on the file.** Only the watcher's thread touches it;
//!   [`ConfigWatcher::status`] copies recorded state, [`ConfigWatcher::reload_now`] and a
//!   [`ConfigWatcher::start`] without timeout wait for a check at most 10 s, and dropping the
//!   watcher at most 1 s before detaching a thread stuck in a file system that does not
//!   answer.
//! - **Bytes read**: at most [`WatchSettings::max_file_size`] + 1.
//! - **Memory**: the JSON values are counted, before parsing, against
//!   [`WatchSettings::max_json_values`], and a load allocates at most about 400 bytes per
//!   value plus 6 per byte of the file (measured on the costliest shapes found): about 660 MB
//!   at most with the defaults, where the size limit alone allowed up to about 165 times the
//!   file size. See that field.
//! - **Events**: a failure is reported once per cause (missing, not a regular file, too
//!   large, too many values, empty, invalid JSON, not an object...), not once per check, and
//!   failure events are rate-limited (a burst of 5, then one per second; the current cause
//!   is reported when allowed). [`ConfigWatcher::status`] always has the latest error and
//!   the count of failed checks.
//! - **Notifications stay truthful**: when the directory holding the file is deleted, moved
//!   or replaced, [`WatchStatus::notifications`] turns false and the watch is re-armed on the
//!   directory now at that path as soon as it exists (tried every 200 ms); the poll covers the
//!   gap.

mod settings;
mod snapshot;
mod watcher;

pub use settings::{
    DEFAULT_BACKOFF, DEFAULT_MAX_FILE_SIZE, DEFAULT_MAX_JSON_VALUES, DEFAULT_PATH,
    DEFAULT_POLL_INTERVAL, WatchSettings,
};
pub use snapshot::{Snapshot, count_json_values, epoch_seconds};
pub use watcher::{
    ConfigWatcher, StartError, Unavailable, WatchEvent, WatchStatus, WatcherBuilder,
};
