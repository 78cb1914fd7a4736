//! Loading one version of the file into an immutable snapshot.
//!
//! Every step is bounded: only regular files are opened, the open never blocks (a FIFO or a
//! device in place of the file is refused, not waited on), at most `max_file_size + 1` bytes
//! are read, and the document's JSON values are counted by a linear scan before anything is
//! parsed, so a document over `max_json_values` costs no more than its bytes.

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};
use std::fs::{self, File, Metadata};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use experiments_core::{Config, ConfigError, ValidationReport};
use sha2::{Digest, Sha256};

use crate::settings::DEFAULT_MAX_JSON_VALUES;

/// Where a [`Snapshot`] came from: the file, the HTTP response or the fixed config that a
/// source offered to the [`ConfigStore`](crate::ConfigStore).
///
/// Build one with [`Origin::file`], [`Origin::http`], [`Origin::fixed`] or
/// [`Origin::other`] (custom sources); match on it to read it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Origin {
    /// Read from a file.
    #[non_exhaustive]
    File {
        /// The path as configured (symlinks not resolved).
        path: PathBuf,
        /// The file's modification time when it was read.
        mtime: Option<SystemTime>,
    },
    /// Fetched over HTTP.
    #[non_exhaustive]
    Http {
        /// The URL, with any credentials of its userinfo and its query redacted.
        url: String,
        /// The response's `ETag`, sent back as `If-None-Match` on the next request.
        etag: Option<String>,
        /// The response's `Last-Modified`, sent back as `If-Modified-Since`.
        last_modified: Option<String>,
    },
    /// A config given already built ([`FixedSource`](crate::FixedSource), tests).
    Fixed,
    /// A custom source, described by itself (keep secrets out of it).
    Other(String),
}

impl Origin {
    /// A snapshot read from the file at `path`, modified at `mtime`.
    pub fn file(path: impl Into<PathBuf>, mtime: Option<SystemTime>) -> Origin {
        Origin::File { path: path.into(), mtime }
    }

    /// A snapshot fetched from `url` (give it already redacted: it is shown in `Debug` and
    /// status), with the validators of its response.
    pub fn http(
        url: impl Into<String>,
        etag: Option<String>,
        last_modified: Option<String>,
    ) -> Origin {
        Origin::Http { url: url.into(), etag, last_modified }
    }

    /// A config given already built.
    pub fn fixed() -> Origin {
        Origin::Fixed
    }

    /// A custom source's own description of where the document came from.
    pub fn other(description: impl Into<String>) -> Origin {
        Origin::Other(description.into())
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File { path, .. } => write!(f, "file:{}", path.display()),
            Origin::Http { url, .. } => f.write_str(url),
            Origin::Fixed => f.write_str("fixed"),
            Origin::Other(d) => f.write_str(d),
        }
    }
}

/// One loaded version of the config. Immutable; readers share it through an `Arc`.
///
/// Fields are public for reading; snapshots are built by the
/// [`ConfigStore`](crate::ConfigStore) (or [`Snapshot::load`]), so new fields can be added.
#[derive(Debug)]
#[non_exhaustive]
pub struct Snapshot {
    /// The parsed config, in baseplate's dialect (empty when [`Snapshot::dialect`] is
    /// [`Dialect::Decider`]).
    pub config: Config,
    /// The dialect the document was read in.
    pub dialect: Dialect,
    /// The reddit-decider manifest, when [`Snapshot::dialect`] is [`Dialect::Decider`].
    pub decider: Option<experiments_decider::Manifest>,
    /// 1 for the first snapshot of a store, +1 for every later one (a document whose bytes
    /// equal the served one's makes no new version).
    pub version: u64,
    /// When this version was loaded.
    pub loaded_at: SystemTime,
    /// The file's modification time when it was read (`None` for other origins).
    pub file_mtime: Option<SystemTime>,
    /// The size of the document in bytes (0 for a config given already built).
    pub file_size: u64,
    /// Lower-case hex SHA-256 of the bytes (empty for a config given already built, which
    /// has no bytes).
    pub digest: String,
    /// Validation report of the config at `loaded_at`.
    pub report: ValidationReport,
    /// Where the document came from.
    pub origin: Origin,
}

/// Seconds since the epoch of a `SystemTime` (0 before the epoch).
pub fn epoch_seconds(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

/// Why a document could not be loaded, as a stable category: the file watcher reports a
/// failure once per change of kind, so the details of the message (a size, a line and
/// column) that change from one check to the next do not make each failure look new.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FailureKind {
    /// The path (or the target of a symlink on it) does not exist.
    Missing,
    /// The file cannot be opened or its directory cannot be searched.
    PermissionDenied,
    /// Any other IO error, by kind.
    Io(io::ErrorKind),
    /// The path is a directory.
    Directory,
    /// The path is a FIFO, socket or device: never opened for reading.
    NotRegular,
    /// More than the size limit.
    TooLarge,
    /// More than the `max_json_values` limit.
    TooManyValues,
    /// Nothing but whitespace.
    Empty,
    /// Not JSON the engine reads (syntax, encoding).
    InvalidJson,
    /// JSON, but not an object at the top level.
    NotAnObject,
    /// An HTTP answer with this status (neither 200 nor an expected 304).
    Status(u16),
    /// The request could not be sent or its answer not received (connection refused,
    /// reset, TLS, too many redirects...).
    Network,
    /// No complete answer within the time allowed.
    Timeout,
    /// Anything else a source reports.
    Other,
}

/// Why a check did not produce a snapshot: its [`FailureKind`] and a one-line human message
/// naming the path, the URL (redacted) or the parse error.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
#[non_exhaustive]
pub struct LoadFailure {
    /// The category.
    pub kind: FailureKind,
    /// What happened, on one line.
    pub message: String,
}

/// Longest message kept for a failure (a custom source's message could be anything).
const MAX_MESSAGE_CHARS: usize = 1000;

impl LoadFailure {
    /// A failure of `kind`; the message is put on one line (whitespace runs collapsed) and
    /// cut to 1000 characters.
    pub fn new(kind: FailureKind, message: impl AsRef<str>) -> LoadFailure {
        let mut line = String::new();
        for (i, word) in message.as_ref().split_whitespace().enumerate() {
            if i > 0 {
                line.push(' ');
            }
            line.push_str(word);
        }
        if let Some((cut, _)) = line.char_indices().nth(MAX_MESSAGE_CHARS) {
            line.truncate(cut);
            line.push('…');
        }
        LoadFailure { kind, message: line }
    }

    fn io(path: &Path, e: &io::Error) -> LoadFailure {
        match e.kind() {
            io::ErrorKind::NotFound => {
                LoadFailure::new(FailureKind::Missing, format!("{} does not exist", path.display()))
            }
            io::ErrorKind::PermissionDenied => LoadFailure::new(
                FailureKind::PermissionDenied,
                format!("{}: permission denied", path.display()),
            ),
            kind => LoadFailure::new(FailureKind::Io(kind), format!("{}: {e}", path.display())),
        }
    }
}

/// The bytes of a file read for a load, with its modification time.
#[derive(Debug)]
pub(crate) struct FileRead {
    pub bytes: Vec<u8>,
    pub mtime: Option<SystemTime>,
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

/// Refuses anything but a regular file (symlinks already followed by the caller's `stat` or
/// `fstat`): a directory, and a FIFO, socket or device, which could block a read forever or
/// stream without end.
fn require_regular(path: &Path, meta: &Metadata) -> Result<(), LoadFailure> {
    let kind = meta.file_type();
    if kind.is_file() {
        return Ok(());
    }
    if kind.is_dir() {
        return Err(LoadFailure::new(
            FailureKind::Directory,
            format!("{} is a directory, not a file", path.display()),
        ));
    }
    #[cfg(unix)]
    let what = {
        use std::os::unix::fs::FileTypeExt;
        if kind.is_fifo() {
            "a FIFO (named pipe)"
        } else if kind.is_socket() {
            "a socket"
        } else if kind.is_char_device() {
            "a character device"
        } else if kind.is_block_device() {
            "a block device"
        } else {
            "a special file"
        }
    };
    #[cfg(not(unix))]
    let what = "a special file";
    Err(LoadFailure::new(
        FailureKind::NotRegular,
        format!("{} is {what}, not a regular file", path.display()),
    ))
}

fn too_large(path: &Path, size: u64, max_size: u64) -> LoadFailure {
    LoadFailure::new(
        FailureKind::TooLarge,
        format!("{} is {size} bytes, over the limit of {max_size} bytes", path.display()),
    )
}

/// `stat`s the path (following symlinks) and rejects what cannot be a config file: a missing
/// path, anything but a regular file, a file over `max_size` bytes. Never opens the file.
pub(crate) fn stat(path: &Path, max_size: u64) -> Result<Fingerprint, LoadFailure> {
    let meta = fs::metadata(path).map_err(|e| LoadFailure::io(path, &e))?;
    require_regular(path, &meta)?;
    if meta.len() > max_size {
        return Err(too_large(path, meta.len(), max_size));
    }
    #[cfg(unix)]
    let (dev, ino, ctime_ns) = {
        use std::os::unix::fs::MetadataExt;
        (
            meta.dev(),
            meta.ino(),
            meta.ctime().saturating_mul(1_000_000_000).saturating_add(meta.ctime_nsec()),
        )
    };
    #[cfg(not(unix))]
    let (dev, ino, ctime_ns) = (0, 0, 0);
    Ok(Fingerprint { dev, ino, size: meta.len(), mtime: meta.modified().ok(), ctime_ns })
}

/// Opens `path` for reading without ever blocking: `O_NONBLOCK` makes opening a FIFO that has
/// no writer return at once (a plain open would wait for a writer forever), and `O_NOCTTY`
/// keeps a terminal from becoming the process's controlling terminal. Both are harmless for
/// the regular file actually wanted (reads of regular files ignore `O_NONBLOCK`).
#[cfg(unix)]
fn open_nonblocking(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY).open(path)
}

#[cfg(not(unix))]
fn open_nonblocking(path: &Path) -> io::Result<File> {
    File::open(path)
}

/// Reads the whole file, refusing more than `max_size` bytes even if it grows meanwhile.
///
/// The type is checked on the opened descriptor (`fstat`), not only by the earlier [`stat`]:
/// the path may have been replaced by a FIFO or a device in between, and nothing but a regular
/// file is ever read.
pub(crate) fn read(path: &Path, max_size: u64) -> Result<FileRead, LoadFailure> {
    let file = open_nonblocking(path).map_err(|e| LoadFailure::io(path, &e))?;
    let meta = file.metadata().map_err(|e| LoadFailure::io(path, &e))?;
    require_regular(path, &meta)?;
    if meta.len() > max_size {
        return Err(too_large(path, meta.len(), max_size));
    }
    // `meta.len() <= max_size` here; the `usize` conversion cannot lose anything that matters
    // (a hint only), and `take` bounds what is actually read.
    let hint = usize::try_from(meta.len()).unwrap_or(0);
    let mut bytes = Vec::with_capacity(hint);
    file.take(max_size.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| LoadFailure::io(path, &e))?;
    if bytes.len() as u64 > max_size {
        return Err(LoadFailure::new(
            FailureKind::TooLarge,
            format!("{} grew over the limit of {max_size} bytes while read", path.display()),
        ));
    }
    Ok(FileRead { bytes, mtime: meta.modified().ok() })
}

/// Lower-case hex SHA-256 of `bytes`: what tells two versions of a document apart.
pub(crate) fn digest_hex(bytes: &[u8]) -> String {
    let mut digest = String::with_capacity(64);
    for b in Sha256::digest(bytes) {
        let _ = write!(digest, "{b:02x}");
    }
    digest
}

/// Refuses a document of more than `max_size` bytes (what a source that cannot bound its
/// own read, or a caller of [`ConfigStore::offer_bytes`](crate::ConfigStore::offer_bytes),
/// hands over).
pub(crate) fn check_size(len: usize, max_size: u64) -> Result<(), LoadFailure> {
    let len = u64::try_from(len).unwrap_or(u64::MAX);
    if len > max_size {
        return Err(LoadFailure::new(
            FailureKind::TooLarge,
            format!("the document is {len} bytes, over the limit of {max_size} bytes"),
        ));
    }
    Ok(())
}

/// What each top-level entry (an experiment) adds to the count of
/// [`count_values`], beyond its key and value: the engine compiles every entry into an
/// experiment that costs about 1.3 KB even when the entry is as small as `"k":0`, about four
/// times what a JSON value costs, so a document of tiny entries is counted at its real weight.
pub(crate) const TOP_LEVEL_ENTRY_WEIGHT: u64 = 3;

/// Counts the JSON values of a document — every object, array, string, number and literal,
/// object keys included, plus [`TOP_LEVEL_ENTRY_WEIGHT`] for each entry of the top-level
/// object — in one pass over the bytes, without allocating, and stops as soon as the count
/// exceeds `max` (then returns `Err` with the count so far).
///
/// On invalid JSON the count is still an upper bound of the values a parser could build
/// before giving up: every value it builds starts at a token this scan counts (an opening
/// bracket or brace, a quote outside a string, or the first byte of a bare scalar).
pub(crate) fn count_values(bytes: &[u8], max: u64) -> Result<u64, u64> {
    let mut count: u64 = 0;
    let mut depth: u64 = 0;
    let mut in_string = false;
    let mut escaped = false;
    let mut in_scalar = false;
    for &b in bytes {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        let weight = match b {
            b'"' => {
                in_string = true;
                in_scalar = false;
                1
            }
            b'{' | b'[' => {
                in_scalar = false;
                depth += 1;
                1
            }
            b'}' | b']' => {
                in_scalar = false;
                depth = depth.saturating_sub(1);
                0
            }
            // One colon per member: at depth 1, one per top-level entry.
            b':' => {
                in_scalar = false;
                if depth == 1 { TOP_LEVEL_ENTRY_WEIGHT } else { 0 }
            }
            b',' | b' ' | b'\t' | b'\n' | b'\r' => {
                in_scalar = false;
                0
            }
            _ => u64::from(!std::mem::replace(&mut in_scalar, true)),
        };
        count += weight;
        if count > max {
            return Err(count);
        }
    }
    Ok(count)
}

/// How much of the [`max_json_values`](crate::WatchSettings::max_json_values) budget a
/// document uses: its JSON values (objects, arrays, strings, numbers, literals, object keys)
/// plus 3 for each top-level entry, counted as the watcher counts them before parsing. One
/// linear pass, no allocation; meaningful for invalid JSON too (an upper bound of what a
/// parser would build). Use it to size the budget for your configs.
pub fn count_json_values(bytes: &[u8]) -> u64 {
    match count_values(bytes, u64::MAX) {
        Ok(n) | Err(n) => n,
    }
}

/// Parses a document into a config, refusing documents with more than `max_values` JSON
/// values before parsing them (see
/// [`WatchSettings::max_json_values`](crate::WatchSettings::max_json_values)).
/// A parsed document, in its dialect.
pub(crate) enum Document {
    Baseplate(Config),
    Decider(experiments_decider::Manifest),
}

/// Parses a document in `dialect`, or in the dialect [`detect_dialect`] finds (baseplate
/// when it finds none), within the value budget.
pub(crate) fn parse_document(
    bytes: &[u8],
    max_values: u64,
    dialect: Option<Dialect>,
) -> Result<Document, LoadFailure> {
    // The budget and the empty check come first, before anything parses the document.
    let config = || parse_config(bytes, max_values).map(Document::Baseplate);
    match dialect {
        Some(Dialect::Baseplate) => config(),
        Some(Dialect::Decider) => parse_manifest(bytes, max_values).map(Document::Decider),
        None => match check_budget(bytes, max_values).map(|()| detect_dialect(bytes))? {
            Some(Dialect::Decider) => parse_manifest(bytes, max_values).map(Document::Decider),
            _ => config(),
        },
    }
}

fn parse_manifest(
    bytes: &[u8],
    max_values: u64,
) -> Result<experiments_decider::Manifest, LoadFailure> {
    check_budget(bytes, max_values)?;
    // Every load error of the reference (syntax, not an object, a malformed
    // `$override_groups`) is "not a document the engine reads".
    experiments_decider::Manifest::from_slice(bytes)
        .map_err(|e| LoadFailure::new(FailureKind::InvalidJson, e.to_string()))
}

/// The dialect of the `experiments.json` in `bytes`, when the document says it
/// unambiguously: reddit-decider for `$override_groups` / `$properties`, a
/// `dynamic_config` entry, or an entry with one of its own fields (`parent_hg_name`,
/// `parent_meg_name`, `value_type`, `emit_event`, `measured`, `namespaces`, `value`);
/// baseplate for an entry of a type only baseplate has (`r2`, `feature_flag`,
/// `single_variant`, `multi_variant`) or a variant with a `size`. `None` when the document
/// shows neither or both (or is not a JSON object).
///
/// Builds no tree of the document: each level is read as a map of raw slices
/// (`serde_json::value::RawValue`), and only the members that tell the dialects apart are
/// looked into, so detecting before the engine parses costs a few scans, not a second copy
/// of the document in memory.
pub fn detect_dialect(bytes: &[u8]) -> Option<Dialect> {
    use serde_json::value::RawValue;
    type Members<'a> = BTreeMap<String, &'a RawValue>;
    /// The members of `raw` when it is an object.
    fn members(raw: &RawValue) -> Option<Members<'_>> {
        serde_json::from_str(raw.get()).ok()
    }
    const DECIDER_FIELDS: [&str; 7] = [
        "parent_hg_name",
        "parent_meg_name",
        "value_type",
        "emit_event",
        "measured",
        "namespaces",
        "value",
    ];
    const BASEPLATE_TYPES: [&str; 4] = ["r2", "feature_flag", "single_variant", "multi_variant"];
    let doc: Members<'_> = serde_json::from_slice(bytes).ok()?;
    let mut decider = doc.contains_key("$override_groups") || doc.contains_key("$properties");
    let mut baseplate = false;
    for entry in doc.values().filter_map(|raw| members(raw)) {
        let kind = entry.get("type").and_then(|t| serde_json::from_str::<String>(t.get()).ok());
        let kind = kind.as_deref();
        decider |=
            kind == Some("dynamic_config") || DECIDER_FIELDS.iter().any(|f| entry.contains_key(*f));
        let sized = || {
            let variants = members(entry.get("experiment")?)?.get("variants").copied()?;
            let variants: Vec<&RawValue> = serde_json::from_str(variants.get()).ok()?;
            Some(variants.iter().filter_map(|v| members(v)).any(|v| v.contains_key("size")))
        };
        baseplate |= kind.is_some_and(|k| BASEPLATE_TYPES.contains(&k)) || sized() == Some(true);
    }
    match (decider, baseplate) {
        (true, false) => Some(Dialect::Decider),
        (false, true) => Some(Dialect::Baseplate),
        _ => None,
    }
}

/// The dialect of an `experiments.json`: Reddit's two engines read the same file name with
/// different semantics.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Dialect {
    /// `baseplate.lib.experiments` (1.5.5): [`experiments_core`].
    #[default]
    Baseplate,
    /// reddit-decider (1.18.2): [`experiments_decider`].
    Decider,
}

impl Dialect {
    /// `"baseplate"` or `"decider"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Dialect::Baseplate => "baseplate",
            Dialect::Decider => "decider",
        }
    }
}

/// `Err` when the document is empty or has more JSON values than the budget.
fn check_budget(bytes: &[u8], max_values: u64) -> Result<(), LoadFailure> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(LoadFailure::new(FailureKind::Empty, "the document is empty"));
    }
    if count_values(bytes, max_values).is_err() {
        return Err(LoadFailure::new(
            FailureKind::TooManyValues,
            format!(
                "the document has more than {max_values} JSON values (the max_json_values \
                 limit, which bounds the memory parsing takes)"
            ),
        ));
    }
    Ok(())
}

pub(crate) fn parse_config(bytes: &[u8], max_values: u64) -> Result<Config, LoadFailure> {
    check_budget(bytes, max_values)?;
    Config::from_slice(bytes).map_err(|e| {
        // Every other document error (syntax, encoding, byte order mark) is "not JSON the
        // engine reads": one kind, whatever the position or details in the message.
        let kind = match e {
            ConfigError::NotAnObject { .. } => FailureKind::NotAnObject,
            _ => FailureKind::InvalidJson,
        };
        LoadFailure::new(kind, e.to_string())
    })
}

impl From<Config> for Document {
    fn from(config: Config) -> Self {
        Document::Baseplate(config)
    }
}

impl Snapshot {
    /// A snapshot of an already parsed document: loaded now, its validation report computed
    /// for now.
    pub(crate) fn build(
        document: impl Into<Document>,
        version: u64,
        origin: Origin,
        size: u64,
        digest: String,
    ) -> Snapshot {
        let loaded_at = SystemTime::now();
        let (config, decider, dialect) = match document.into() {
            Document::Baseplate(config) => (config, None, Dialect::Baseplate),
            Document::Decider(manifest) => (Config::default(), Some(manifest), Dialect::Decider),
        };
        let report = config.report(epoch_seconds(loaded_at));
        let file_mtime = match &origin {
            Origin::File { mtime, .. } => *mtime,
            _ => None,
        };
        Snapshot {
            config,
            dialect,
            decider,
            version,
            loaded_at,
            file_mtime,
            file_size: size,
            digest,
            report,
            origin,
        }
    }
}

/// Parses a read file into snapshot `version` (see [`parse_config`]).
pub(crate) fn parse(
    path: &Path,
    read: FileRead,
    version: u64,
    max_values: u64,
    dialect: Option<Dialect>,
) -> Result<Snapshot, LoadFailure> {
    let document = parse_document(&read.bytes, max_values, dialect)?;
    let digest = digest_hex(&read.bytes);
    let size = read.bytes.len() as u64;
    drop(read.bytes);
    Ok(Snapshot::build(document, version, Origin::file(path, read.mtime), size, digest))
}

impl Snapshot {
    /// Loads `path` once (what the watcher does on every change), as version 1, with the
    /// default [`max_json_values`](crate::WatchSettings::max_json_values) budget.
    ///
    /// Only a regular file (symlinks followed) is read; a FIFO, socket, device or directory
    /// is refused without blocking. The error is one line naming the path or the cause.
    pub fn load(path: &Path, max_size: u64) -> Result<Snapshot, String> {
        Self::load_with_limits(path, max_size, DEFAULT_MAX_JSON_VALUES)
    }

    /// [`Snapshot::load`] with an explicit budget of JSON values (`max_values`).
    pub fn load_with_limits(
        path: &Path,
        max_size: u64,
        max_values: u64,
    ) -> Result<Snapshot, String> {
        let bytes = read(path, max_size).map_err(|f| f.message)?;
        parse(path, bytes, 1, max_values, None).map_err(|f| f.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DECIDER: &str = r#"{"f": {"id": 1, "name": "f", "enabled": true, "version": "1",
        "type": "range_variant", "emit_event": true, "start_ts": 0, "stop_ts": 0,
        "experiment": {"experiment_version": 1, "bucket_val": "user_id",
          "variants": [{"name": "a", "range_start": 0.0, "range_end": 1.0}]}}}"#;
    const BASEPLATE: &str = r#"{"e": {"id": 1, "name": "e", "type": "single_variant",
        "start_ts": 0, "stop_ts": 4102444800,
        "experiment": {"experiment_version": 1, "variants": [{"name": "a", "size": 1.0}]}}}"#;

    #[test]
    fn dialects_are_detected_only_when_unambiguous() {
        let d = |s: &str| detect_dialect(s.as_bytes());
        assert_eq!(d(DECIDER), Some(Dialect::Decider));
        assert_eq!(d(BASEPLATE), Some(Dialect::Baseplate));
        assert_eq!(d(r#"{"$override_groups": {}}"#), Some(Dialect::Decider));
        assert_eq!(d(r#"{"x": {"type": "dynamic_config", "value": 1}}"#), Some(Dialect::Decider));
        assert_eq!(d(r#"{"x": {"type": "r2"}}"#), Some(Dialect::Baseplate));
        // Shapes both dialects share, nothing, both, or not an object: undecided.
        assert_eq!(d(r#"{"x": {"type": "range_variant", "experiment": {}}}"#), None);
        assert_eq!(d("{}"), None);
        assert_eq!(d(r#"{"x": {"type": "r2", "parent_hg_name": "h"}}"#), None);
        assert_eq!(d("[1]"), None);
        assert_eq!(d("not json"), None);
    }

    #[test]
    fn documents_parse_in_their_dialect() {
        let parse = |s: &str, d| parse_document(s.as_bytes(), 10_000, d);
        assert!(
            matches!(parse(DECIDER, None), Ok(Document::Decider(m)) if m.feature("f").is_some())
        );
        assert!(matches!(parse(BASEPLATE, None), Ok(Document::Baseplate(c)) if c.len() == 1));
        // Undecided documents are baseplate's; a named dialect is obeyed.
        assert!(matches!(parse("{}", None), Ok(Document::Baseplate(_))));
        assert!(matches!(parse("{}", Some(Dialect::Decider)), Ok(Document::Decider(_))));
        assert!(matches!(parse(DECIDER, Some(Dialect::Baseplate)), Ok(Document::Baseplate(_))));
        // The value budget and the empty check apply to both.
        for d in [None, Some(Dialect::Decider), Some(Dialect::Baseplate)] {
            assert_eq!(parse(DECIDER, d).err().map(|f| f.kind), None);
            let tight = parse_document(DECIDER.as_bytes(), 5, d).err().map(|f| f.kind);
            assert_eq!(tight, Some(FailureKind::TooManyValues), "{d:?}");
            let empty = parse_document(b" ", 5, d).err().map(|f| f.kind);
            assert_eq!(empty, Some(FailureKind::Empty), "{d:?}");
        }
        let broken = parse_document(b"{", 5, Some(Dialect::Decider)).err().map(|f| f.kind);
        assert_eq!(broken, Some(FailureKind::InvalidJson));
    }

    #[test]
    fn count_values_counts_every_value_and_key() {
        let count = |s: &str| count_values(s.as_bytes(), u64::MAX).unwrap();
        let entry = TOP_LEVEL_ENTRY_WEIGHT;
        assert_eq!(count("{}"), 1);
        assert_eq!(count("[]"), 1);
        assert_eq!(count("  17  "), 1);
        // The object, 2 keys, 1, the array and its 4 items; 2 top-level entries.
        assert_eq!(count(r#"{"a": 1, "b": [true, null, -2.5e3, "x"]}"#), 9 + 2 * entry);
        // Members of nested objects are plain values.
        assert_eq!(count(r#"{"e": {"a": {"b": 1}}}"#), 7 + entry);
        assert_eq!(count(r#"[{"a": 1}, {"b": 2}]"#), 7);
        // Brackets, quotes, commas and colons inside strings (escaped or not) are not tokens.
        assert_eq!(count(r#"["a,b", "[{\"}]", "\\", ":"]"#), 5);
        assert_eq!(count(r#"{"k:{": "]"}"#), 3 + entry);
        // Adjacent scalars without separators are still counted one by one after a break.
        assert_eq!(count("[1,2,3]"), 4);
        assert_eq!(count("1\"a\""), 2);
        // Unbalanced closers do not underflow.
        assert_eq!(count("]]]{\"a\":1"), 3 + entry);
    }

    #[test]
    fn count_values_stops_past_the_budget() {
        let list = format!("[{}]", vec!["1"; 1000].join(","));
        assert_eq!(count_values(list.as_bytes(), 1001), Ok(1001));
        assert_eq!(count_values(list.as_bytes(), 1000), Err(1001));
        assert_eq!(count_values(list.as_bytes(), 10), Err(11));
    }

    #[cfg(unix)]
    #[test]
    fn read_refuses_a_fifo_on_the_descriptor_without_blocking() {
        // `read` alone (no `stat` first, as when the path is swapped between the two): the
        // open must not wait for a writer, and the fstat must refuse the pipe.
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("pipe");
        let status = std::process::Command::new("mkfifo").arg(&fifo).status().unwrap();
        assert!(status.success());
        let (tx, rx) = std::sync::mpsc::channel();
        let path = fifo.clone();
        std::thread::spawn(move || {
            let _ = tx.send(read(&path, 1 << 20).map(|r| r.bytes.len()));
        });
        let result = rx
            .recv_timeout(std::time::Duration::from_secs(5))
            .expect("read() returned instead of blocking on the FIFO");
        let failure = result.unwrap_err();
        assert_eq!(failure.kind, FailureKind::NotRegular);
        assert!(failure.message.contains("FIFO"), "{}", failure.message);
    }

    #[cfg(unix)]
    #[test]
    fn devices_are_refused_by_stat_and_read() {
        let dev = Path::new("/dev/zero");
        if !dev.exists() {
            return;
        }
        assert_eq!(stat(dev, 1 << 20).unwrap_err().kind, FailureKind::NotRegular);
        assert_eq!(read(dev, 1 << 20).unwrap_err().kind, FailureKind::NotRegular);
    }

    #[test]
    fn causes_do_not_depend_on_sizes_or_positions() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.json");
        fs::write(&path, vec![b' '; 50]).unwrap();
        let a = stat(&path, 10).unwrap_err();
        fs::write(&path, vec![b' '; 60]).unwrap();
        let b = stat(&path, 10).unwrap_err();
        assert_ne!(a.message, b.message);
        assert_eq!((a.kind, b.kind), (FailureKind::TooLarge, FailureKind::TooLarge));
        let parse_text = |t: &str| parse_config(t.as_bytes(), 100).unwrap_err();
        let (x, y) = (parse_text("{,"), parse_text("\n\n{\"a\": ]"));
        assert_ne!(x.message, y.message);
        assert_eq!((x.kind, y.kind), (FailureKind::InvalidJson, FailureKind::InvalidJson));
        assert_eq!(parse_text("[1]").kind, FailureKind::NotAnObject);
        assert_eq!(parse_text(" \n").kind, FailureKind::Empty);
        assert_eq!(
            parse_text(&format!("[{}]", vec!["0"; 200].join(","))).kind,
            FailureKind::TooManyValues
        );
    }
}
