//! Loading one version of the file into an immutable snapshot.

use std::fmt::Write as _;
use std::fs::{self, File};
use std::io::Read;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use experiments_core::{Config, ValidationReport};
use sha2::{Digest, Sha256};

/// One loaded version of the config file. Immutable; readers share it through an `Arc`.
#[derive(Debug)]
pub struct Snapshot {
    /// The parsed config.
    pub config: Config,
    /// 1 for the first load, +1 for every load whose bytes differ from the previous one.
    pub version: u64,
    /// When this version was loaded.
    pub loaded_at: SystemTime,
    /// The file's modification time when it was read.
    pub file_mtime: Option<SystemTime>,
    /// The file's size in bytes.
    pub file_size: u64,
    /// Lower-case hex SHA-256 of the bytes.
    pub digest: String,
    /// Validation report of the config at `loaded_at`.
    pub report: ValidationReport,
}

/// Seconds since the epoch of a `SystemTime` (0 before the epoch).
pub fn epoch_seconds(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

/// The bytes of a file read for a load, with what identifies that version of the file.
#[derive(Debug)]
pub(crate) struct FileRead {
    pub bytes: Vec<u8>,
    pub mtime: Option<SystemTime>,
    pub digest: String,
}

/// Identity of the file as `stat` sees it (following symlinks): a cheap "did it change?".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Fingerprint {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: Option<SystemTime>,
    ctime_ns: i64,
}

/// `stat`s the path and rejects what cannot be a config file.
pub(crate) fn stat(path: &Path, max_size: u64) -> Result<Fingerprint, String> {
    let meta = fs::metadata(path).map_err(|e| io_message(path, &e))?;
    if meta.is_dir() {
        return Err(format!("{} is a directory, not a file", path.display()));
    }
    if meta.len() > max_size {
        return Err(format!(
            "{} is {} bytes, over the limit of {max_size} bytes",
            path.display(),
            meta.len()
        ));
    }
    #[cfg(unix)]
    let (dev, ino, ctime_ns) = {
        use std::os::unix::fs::MetadataExt;
        (meta.dev(), meta.ino(), meta.ctime().saturating_mul(1_000_000_000) + meta.ctime_nsec())
    };
    #[cfg(not(unix))]
    let (dev, ino, ctime_ns) = (0, 0, 0);
    Ok(Fingerprint { dev, ino, size: meta.len(), mtime: meta.modified().ok(), ctime_ns })
}

fn io_message(path: &Path, e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => format!("{} does not exist", path.display()),
        std::io::ErrorKind::PermissionDenied => format!("{}: permission denied", path.display()),
        _ => format!("{}: {e}", path.display()),
    }
}

/// Reads the whole file, refusing more than `max_size` bytes even if it grows meanwhile.
pub(crate) fn read(path: &Path, max_size: u64) -> Result<FileRead, String> {
    let file = File::open(path).map_err(|e| io_message(path, &e))?;
    let meta = file.metadata().map_err(|e| io_message(path, &e))?;
    if meta.is_dir() {
        return Err(format!("{} is a directory, not a file", path.display()));
    }
    let mut bytes = Vec::with_capacity(meta.len().min(max_size) as usize);
    file.take(max_size + 1).read_to_end(&mut bytes).map_err(|e| io_message(path, &e))?;
    if bytes.len() as u64 > max_size {
        return Err(format!("{} is over the limit of {max_size} bytes", path.display()));
    }
    let mut digest = String::with_capacity(64);
    for b in Sha256::digest(&bytes) {
        let _ = write!(digest, "{b:02x}");
    }
    Ok(FileRead { bytes, mtime: meta.modified().ok(), digest })
}

/// Parses a read file into snapshot `version`.
pub(crate) fn parse(read: FileRead, version: u64) -> Result<Snapshot, String> {
    if read.bytes.iter().all(u8::is_ascii_whitespace) {
        return Err("the file is empty".to_owned());
    }
    let config = Config::from_slice(&read.bytes).map_err(|e| e.to_string())?;
    let loaded_at = SystemTime::now();
    let report = config.report(epoch_seconds(loaded_at));
    Ok(Snapshot {
        config,
        version,
        loaded_at,
        file_mtime: read.mtime,
        file_size: read.bytes.len() as u64,
        digest: read.digest,
        report,
    })
}

impl Snapshot {
    /// Loads `path` once (what the watcher does on every change), as version 1.
    pub fn load(path: &Path, max_size: u64) -> Result<Snapshot, String> {
        parse(read(path, max_size)?, 1)
    }
}
