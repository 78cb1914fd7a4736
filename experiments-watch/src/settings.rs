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

/// Settings of a [`ConfigWatcher`](crate::ConfigWatcher).
///
/// Deserializes from e.g. `{"path": "/etc/exp.json", "timeout": "30s", "backoff": "500ms"}`;
/// every field is optional.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
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
    /// when notifications cannot be set up (1 s).
    #[serde(with = "humantime_serde")]
    pub poll_interval: Duration,
    /// Largest accepted file, in bytes (10 MiB).
    pub max_file_size: u64,
}

impl Default for WatchSettings {
    fn default() -> Self {
        WatchSettings {
            path: PathBuf::from(DEFAULT_PATH),
            timeout: None,
            backoff: None,
            poll_interval: DEFAULT_POLL_INTERVAL,
            max_file_size: DEFAULT_MAX_FILE_SIZE,
        }
    }
}

impl WatchSettings {
    /// Default settings for `path`.
    pub fn for_path(path: impl Into<PathBuf>) -> Self {
        WatchSettings { path: path.into(), ..WatchSettings::default() }
    }
}
