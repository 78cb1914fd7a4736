//! Watcher settings, with baseplate's names and defaults.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

/// Baseplate's default location of the file written by the config fetcher.
pub const DEFAULT_PATH: &str = "/var/local/experiments.json";
/// Baseplate's `DEFAULT_FILEWATCHER_BACKOFF`: the first retry delay while waiting at startup.
pub const DEFAULT_BACKOFF: Duration = Duration::from_millis(10);
/// How often the file is re-checked even without a change notification.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(1);
/// Files larger than this are refused (the last good snapshot stays).
pub const DEFAULT_MAX_FILE_SIZE: u64 = 10 * 1024 * 1024;
/// Documents counting more JSON values than this are refused before parsing (the last good
/// snapshot stays). Realistic configs count 8 bytes or more per value (compact feature flags
/// are the densest), so at the default [`DEFAULT_MAX_FILE_SIZE`] the size limit binds first
/// for them; only documents that are mostly tiny values (long lists of numbers, nested empty
/// containers) reach this limit.
pub const DEFAULT_MAX_JSON_VALUES: u64 = 1_500_000;

/// Settings of a [`ConfigWatcher`](crate::ConfigWatcher).
///
/// Deserializes from e.g. `{"path": "/etc/exp.json", "timeout": "30s", "backoff": "500ms"}`;
/// every field is optional.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct WatchSettings {
    /// The watched file (`/var/local/experiments.json`).
    pub path: PathBuf,
    /// How long [`ConfigWatcher::start`](crate::ConfigWatcher::start) waits for a first
    /// valid file. `None` (the default): return at once; readers get
    /// [`Unavailable`](crate::Unavailable) until the file appears.
    #[serde(with = "humantime_serde")]
    pub timeout: Option<Duration>,
    /// First retry delay while waiting at startup, doubled after every attempt
    /// (`None`: 10 ms, like baseplate).
    #[serde(with = "humantime_serde")]
    pub backoff: Option<Duration>,
    /// Re-check period; it catches changes notifications missed and is the only mechanism
    /// when notifications cannot be set up (1 s; values under 10 ms count as 10 ms).
    #[serde(with = "humantime_serde")]
    pub poll_interval: Duration,
    /// Largest accepted file, in bytes (10 MiB).
    ///
    /// This bounds the bytes **read** (at most `max_file_size + 1`, even from a file that
    /// grows while read), not the memory a load takes: parsing turns every JSON value into a
    /// tree node of at least 72 bytes, and the engine compiles every top-level entry into an
    /// experiment of about 1.3 KB, so a file of tiny values costs far more than its size.
    /// Measured peaks, without the value budget: about 85 times the file size for a flat list
    /// of one-digit numbers (a 10 MiB file: 880 MB), up to about 165 times for one-element
    /// arrays nested in a list (1.7 GB). Memory is bounded by
    /// [`max_json_values`](Self::max_json_values) instead.
    pub max_file_size: u64,
    /// Largest accepted number of JSON values in the document (1,500,000), the bound on the
    /// memory a load takes.
    ///
    /// Every object, array, string, number, `true`/`false`/`null` and object key counts one,
    /// and every top-level entry (an experiment) counts 3 more, for the experiment the engine
    /// compiles from it; [`count_json_values`](crate::count_json_values) gives a document's
    /// count. The count is a linear scan of the bytes before anything is parsed, so a refused
    /// document costs only its bytes.
    ///
    /// A load then allocates at most **400 bytes per counted value plus 6 bytes per byte of
    /// the file** (measured peaks, including the bytes read and the document tree alive while
    /// the engine compiles it: at most about 335 bytes per value, for one-element containers
    /// nested in lists; about 170 for flat lists of numbers; 130 to 200 for realistic configs;
    /// at most about 5.2 bytes per byte, for long keys; `tests/memory.rs` checks the bound on
    /// the costliest shapes found). With the defaults that is at most about 660 MB, and about
    /// 255 MB for the long-list attack (a targeting list of millions of numbers). The bound is
    /// measured, not proven: it depends on `serde_json`'s and the engine's representations. Each 100,000 values less lowers the bound by
    /// 40 MB: lower it when memory matters more than room for very large configs.
    pub max_json_values: u64,
}

impl Default for WatchSettings {
    fn default() -> Self {
        WatchSettings {
            path: PathBuf::from(DEFAULT_PATH),
            timeout: None,
            backoff: None,
            poll_interval: DEFAULT_POLL_INTERVAL,
            max_file_size: DEFAULT_MAX_FILE_SIZE,
            max_json_values: DEFAULT_MAX_JSON_VALUES,
        }
    }
}

impl WatchSettings {
    /// Default settings for `path`.
    pub fn for_path(path: impl Into<PathBuf>) -> Self {
        WatchSettings { path: path.into(), ..WatchSettings::default() }
    }
}
