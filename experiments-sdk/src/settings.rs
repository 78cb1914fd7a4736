//! The one settings document a service reads: where the config comes from, how long start-up
//! may wait for it, the event pipeline and the sink.
//!
//! ```json
//! {"config": {"path": "experiments.json"},
//!  "sink": {"http": {"url": "http://127.0.0.1:8080/v2", "key_name": "k", "secret": "c2VjcmV0", "format": "v2"}}}
//! {"config": {"url": "http://127.0.0.1:8000/experiments.json", "poll_interval": "1s"},
//!  "sink": {"kafka": {"brokers": "127.0.0.1:9092", "topic": "experiments", "encoding": "json"}}}
//! {"config": {"path": "experiments.json"}, "sink": "stdout"}
//! ```

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use experiments_events::{Encoding, PipelineSettings};
use experiments_watch::{Dialect, WatchSettings};
use serde::de::{self, DeserializeOwned, Deserializer};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// How long start-up waits for a first config by default (`config.timeout`).
pub const DEFAULT_STARTUP_TIMEOUT: Duration = Duration::from_secs(10);

/// Everything a service's experiments client needs, as one document (JSON, or any
/// self-describing serde format). Build the client with
/// [`ExperimentsClient::from_settings`](crate::ExperimentsClient::from_settings).
///
/// - `config` (required): where the experiments document comes from — a file
///   (`{"path": ...}`, followed as it changes) or a URL (`{"url": ...}`, polled) — plus the
///   start-up policy (`startup`, `timeout`). See [`ConfigSettings`].
/// - `events` (optional): the delivery pipeline ([`PipelineSettings`]); the encoding and the
///   batch limits come from the sink.
/// - `sink` (optional, `"stdout"` by default): where events go — `"stdout"`, `"none"`,
///   `{"stdout": {"encoding": "v2"}}`, `{"http": {...}}`, `{"kafka": {...}}`.
///
/// Unknown fields are errors, and every error names the field
/// (`sink.http.format: unknown variant ...`).
///
/// ```
/// use experiments_sdk::Settings;
///
/// let s = Settings::from_json(r#"{"config": {"path": "experiments.json"}, "sink": "stdout"}"#)?;
/// assert_eq!(s.config.source_name(), "experiments.json");
/// let err = Settings::from_json(r#"{"config": {"path": "x.json", "startup": "sometimes"}}"#)
///     .unwrap_err();
/// assert!(err.to_string().starts_with("config.startup: unknown variant `sometimes`"), "{err}");
/// # Ok::<(), experiments_sdk::SettingsError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Settings {
    /// Where the config comes from and how start-up waits for it.
    pub config: ConfigSettings,
    /// The event pipeline.
    pub events: PipelineSettings,
    /// Where events go.
    pub sink: SinkSettings,
}

impl<'de> Deserialize<'de> for Settings {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Settings::from_value(Value::deserialize(deserializer)?).map_err(de::Error::custom)
    }
}

impl Settings {
    /// Settings with this config and the defaults for everything else (stdout sink).
    pub fn new(config: ConfigSettings) -> Self {
        Settings { config, events: PipelineSettings::default(), sink: SinkSettings::default() }
    }

    /// Parses a JSON settings document. Relative paths stay relative to the working
    /// directory; use [`Settings::from_file`] to resolve them against the document's own.
    pub fn from_json(text: &str) -> Result<Settings, SettingsError> {
        let value: Value =
            serde_json::from_str(text).map_err(|e| SettingsError::new("", e.to_string()))?;
        Settings::from_value(value)
    }

    /// Reads settings from an already parsed document, naming the failing field exactly
    /// (`config.timeout`, `sink.http.secret`).
    pub fn from_value(value: Value) -> Result<Settings, SettingsError> {
        let Value::Object(mut map) = value else {
            return Err(SettingsError::new("", "expected an object"));
        };
        let config = match map.remove("config") {
            Some(Value::Object(c)) => ConfigSettings::from_object(c)?,
            Some(_) => return Err(SettingsError::new("config", "expected an object")),
            None => return Err(SettingsError::new("", "missing field `config`")),
        };
        let events = match map.remove("events") {
            Some(v) => from_value(v, "events")?,
            None => PipelineSettings::default(),
        };
        let sink = match map.remove("sink") {
            Some(v) => SinkSettings::from_value(v)?,
            None => SinkSettings::default(),
        };
        if let Some(unknown) = map.keys().next() {
            return Err(SettingsError::new(
                "",
                format!("unknown field `{unknown}`, expected `config`, `events` or `sink`"),
            ));
        }
        Ok(Settings { config, events, sink })
    }

    /// Reads a JSON settings document from `path`. A relative `config.path` (and
    /// `config.ca_file`) is resolved against the directory holding the document, so a
    /// settings file and its `experiments.json` can move together.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Settings, SettingsError> {
        Ok(Settings::from_file_with_sections(path, &[])?.0)
    }

    /// Reads a settings document that also holds sections of its own for the program that
    /// reads it (`"serve"` for `experiments serve`): those top-level members are taken out
    /// and returned as they are, and the rest is read as [`Settings::from_file`] reads it.
    pub fn from_file_with_sections(
        path: impl AsRef<Path>,
        sections: &[&str],
    ) -> Result<(Settings, Map<String, Value>), SettingsError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .map_err(|e| SettingsError::new("", format!("cannot read {}: {e}", path.display())))?;
        let mut value: Value =
            serde_json::from_str(&text).map_err(|e| SettingsError::new("", e.to_string()))?;
        let mut taken = Map::new();
        if let Value::Object(map) = &mut value {
            for name in sections {
                if let Some(section) = map.remove(*name) {
                    taken.insert((*name).to_owned(), section);
                }
            }
        }
        let mut settings = Settings::from_value(value)?;
        if let Some(dir) = path.parent() {
            settings.config.resolve_relative_to(dir);
        }
        Ok((settings, taken))
    }
}

/// A settings document that cannot be used: the field (a dotted path such as
/// `sink.http.secret`, empty for the document as a whole) and what is wrong with it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}{message}", if field.is_empty() { String::new() } else { format!("{field}: ") })]
pub struct SettingsError {
    /// Where the problem is, as a dotted path into the document (`config.poll_interval`).
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl SettingsError {
    /// An error about `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        SettingsError { field: field.into(), message: message.into() }
    }

    fn from_path(e: serde_path_to_error::Error<serde_json::Error>) -> Self {
        let field = e.path().to_string();
        let field = if field == "." { String::new() } else { field };
        SettingsError { field, message: e.into_inner().to_string() }
    }

    /// This error, one level deeper in the document: `parent.field`.
    fn within(mut self, parent: &str) -> Self {
        self.field = if self.field.is_empty() {
            parent.to_owned()
        } else {
            format!("{parent}.{}", self.field)
        };
        self
    }
}

/// What start-up does while the first config is not loaded yet.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Startup {
    /// Wait up to `config.timeout` for a valid config; start-up fails if none arrives by
    /// then (the error says why). The default.
    #[default]
    Wait,
    /// Fail as soon as the source's first attempt fails (missing file, HTTP error, broken
    /// document), waiting at most `config.timeout` for that attempt.
    FailFast,
    /// Start at once with no config: every variant is `None` until one loads. Logged at
    /// `warn` when the client starts and visible in its status; for services that must come
    /// up without their experiments.
    Empty,
}

/// Where the config comes from, its dialect, and the start-up policy. Deserializes from an
/// object with either `path` (a file, [`WatchSettings`]) or `url` (an HTTP(S) document,
/// [`experiments_watch::HttpSourceSettings`], feature `http-config`), plus `dialect`,
/// `startup` and `timeout`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConfigSettings {
    /// The source.
    pub source: SourceSettings,
    /// The document's dialect (`"baseplate"` or `"decider"`); `None` (absent): detected from
    /// each document, baseplate when the document is ambiguous
    /// ([`experiments_watch::detect_dialect`]).
    pub dialect: Option<Dialect>,
    /// What start-up does while no config is loaded.
    pub startup: Startup,
    /// How long start-up waits (`Wait`: for a valid config; `FailFast`: for the first
    /// attempt). 10 s by default.
    pub timeout: Duration,
}

/// The config source named by [`ConfigSettings`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SourceSettings {
    /// A file, followed as it changes.
    File(WatchSettings),
    /// A document fetched over HTTP(S) and polled with conditional requests.
    #[cfg(feature = "http-config")]
    Http(experiments_watch::HttpSourceSettings),
}

impl ConfigSettings {
    /// A file source with the default start-up policy.
    pub fn file(path: impl Into<PathBuf>) -> Self {
        ConfigSettings::from_source(SourceSettings::File(WatchSettings::for_path(path)))
    }

    /// An HTTP(S) source with the default start-up policy.
    #[cfg(feature = "http-config")]
    pub fn url(url: impl Into<String>) -> Self {
        ConfigSettings::from_source(SourceSettings::Http(
            experiments_watch::HttpSourceSettings::new(url),
        ))
    }

    fn from_source(source: SourceSettings) -> Self {
        ConfigSettings {
            source,
            dialect: None,
            startup: Startup::default(),
            timeout: DEFAULT_STARTUP_TIMEOUT,
        }
    }

    /// The file path, or the URL with its secrets redacted (`HttpSourceSettings::shown_url`),
    /// for messages and status pages.
    pub fn source_name(&self) -> String {
        match &self.source {
            SourceSettings::File(w) => w.path.display().to_string(),
            #[cfg(feature = "http-config")]
            SourceSettings::Http(h) => h.shown_url(),
        }
    }

    fn resolve_relative_to(&mut self, dir: &Path) {
        let resolve = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = dir.join(&*p);
            }
        };
        match &mut self.source {
            SourceSettings::File(w) => resolve(&mut w.path),
            #[cfg(feature = "http-config")]
            SourceSettings::Http(h) => {
                if let Some(ca) = &mut h.ca_file {
                    resolve(ca);
                }
            }
        }
    }
}

/// Deserializes `value` into `T`, naming the failing field relative to `parent`.
fn from_value<T: DeserializeOwned>(value: Value, parent: &str) -> Result<T, SettingsError> {
    serde_path_to_error::deserialize(value).map_err(|e| SettingsError::from_path(e).within(parent))
}

/// A human duration (`"10s"`, `"500ms"`).
fn duration(value: Value, field: &str) -> Result<Duration, SettingsError> {
    let text: String = from_value(value, field)?;
    humantime::parse_duration(&text).map_err(|e| SettingsError::new(field, e.to_string()))
}

impl ConfigSettings {
    /// Reads the `config` object (already parsed), naming errors under `config`.
    fn from_object(mut map: Map<String, Value>) -> Result<Self, SettingsError> {
        let startup = match map.remove("startup") {
            Some(v) => from_value(v, "config.startup")?,
            None => Startup::default(),
        };
        let timeout = match map.remove("timeout") {
            Some(v) => duration(v, "config.timeout")?,
            None => DEFAULT_STARTUP_TIMEOUT,
        };
        let dialect = match map.remove("dialect") {
            Some(Value::String(s)) if s == "auto" => None,
            Some(v) => Some(from_value(v, "config.dialect")?),
            None => None,
        };
        let source = match (map.contains_key("path"), map.contains_key("url")) {
            (true, true) => {
                return Err(SettingsError::new("config", "give either `path` or `url`, not both"));
            }
            (true, false) => SourceSettings::File(from_value(Value::Object(map), "config")?),
            #[cfg(feature = "http-config")]
            (false, true) => {
                let http: experiments_watch::HttpSourceSettings =
                    from_value(Value::Object(map), "config")?;
                http.validate()
                    .map_err(|e| SettingsError::new(format!("config.{}", e.field), e.reason))?;
                SourceSettings::Http(http)
            }
            #[cfg(not(feature = "http-config"))]
            (false, true) => {
                return Err(SettingsError::new(
                    "config.url",
                    "fetching the config over HTTP needs the `http-config` feature of experiments-sdk",
                ));
            }
            (false, false) => {
                return Err(SettingsError::new(
                    "config",
                    "missing `path` (a file) or `url` (an HTTP(S) document)",
                ));
            }
        };
        Ok(ConfigSettings { source, dialect, startup, timeout })
    }
}

impl<'de> Deserialize<'de> for ConfigSettings {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let map = Map::<String, Value>::deserialize(deserializer)?;
        ConfigSettings::from_object(map).map_err(de::Error::custom)
    }
}

/// Where events go, as named in the settings document.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SinkSettings {
    /// One event per line on standard output (`"stdout"`, or `{"stdout": {"encoding": "v2"}}`).
    Stdout {
        /// The event encoding (`json`).
        encoding: Encoding,
    },
    /// Events are discarded (`"none"`): decisions are made, nothing is sent.
    None,
    /// The v2 event collector protocol over HTTP(S) (feature `http`).
    #[cfg(feature = "http")]
    Http(experiments_http::HttpSettings),
    /// A Kafka topic (feature `kafka`).
    #[cfg(feature = "kafka")]
    Kafka(experiments_kafka::KafkaSettings),
}

impl Default for SinkSettings {
    /// `json` lines on standard output.
    fn default() -> Self {
        SinkSettings::Stdout { encoding: Encoding::Json }
    }
}

impl SinkSettings {
    /// The sink's kind: `stdout`, `none`, `http` or `kafka`.
    pub fn kind(&self) -> &'static str {
        match self {
            SinkSettings::Stdout { .. } => "stdout",
            SinkSettings::None => "none",
            #[cfg(feature = "http")]
            SinkSettings::Http(_) => "http",
            #[cfg(feature = "kafka")]
            SinkSettings::Kafka(_) => "kafka",
        }
    }
}

impl fmt::Debug for SinkSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SinkSettings::Stdout { encoding } => {
                f.debug_struct("Stdout").field("encoding", encoding).finish()
            }
            SinkSettings::None => f.write_str("None"),
            // Both print their secrets redacted.
            #[cfg(feature = "http")]
            SinkSettings::Http(s) => f.debug_tuple("Http").field(s).finish(),
            #[cfg(feature = "kafka")]
            SinkSettings::Kafka(s) => f.debug_tuple("Kafka").field(s).finish(),
        }
    }
}

/// `{"encoding": ...}` of the stdout sink.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StdoutFields {
    #[serde(default)]
    encoding: Encoding,
}

const SINKS: &str = "`stdout`, `none`, `http` or `kafka`";

impl SinkSettings {
    fn named(name: &str, body: Option<Value>) -> Result<Self, SettingsError> {
        let field = |name: &str| format!("sink.{name}");
        match name {
            "stdout" => {
                let fields: StdoutFields = match body {
                    None | Some(Value::Null) => StdoutFields { encoding: Encoding::Json },
                    Some(v) => from_value(v, &field(name))?,
                };
                Ok(SinkSettings::Stdout { encoding: fields.encoding })
            }
            "none" => match body {
                None | Some(Value::Null) => Ok(SinkSettings::None),
                Some(_) => Err(SettingsError::new(field(name), "takes no settings")),
            },
            #[cfg(feature = "http")]
            "http" => {
                Ok(SinkSettings::Http(from_value(body.unwrap_or(Value::Null), &field(name))?))
            }
            #[cfg(feature = "kafka")]
            "kafka" => {
                Ok(SinkSettings::Kafka(from_value(body.unwrap_or(Value::Null), &field(name))?))
            }
            #[cfg(not(feature = "http"))]
            "http" => Err(SettingsError::new(
                "sink",
                "the `http` sink needs the `http` feature of experiments-sdk",
            )),
            #[cfg(not(feature = "kafka"))]
            "kafka" => Err(SettingsError::new(
                "sink",
                "the `kafka` sink needs the `kafka` feature of experiments-sdk",
            )),
            other => {
                Err(SettingsError::new("sink", format!("unknown sink `{other}`, expected {SINKS}")))
            }
        }
    }
}

impl<'de> Deserialize<'de> for SinkSettings {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        SinkSettings::from_value(Value::deserialize(deserializer)?).map_err(de::Error::custom)
    }
}

impl SinkSettings {
    /// Reads the `sink` member of a settings document.
    fn from_value(value: Value) -> Result<Self, SettingsError> {
        match value {
            Value::String(name) => SinkSettings::named(&name, None),
            Value::Object(map) if map.len() == 1 => {
                let (name, body) = map.into_iter().next().expect("one member");
                SinkSettings::named(&name, Some(body))
            }
            _ => Err(SettingsError::new(
                "sink",
                format!("expected a sink name or an object with one member, one of {SINKS}"),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        Settings::from_json(text).unwrap_err().to_string()
    }

    #[test]
    fn the_minimal_documents_are_accepted_as_written() {
        let s =
            Settings::from_json(r#"{"config": {"path": "experiments.json"}, "sink": "stdout"}"#)
                .unwrap();
        assert_eq!(
            s.config.source,
            SourceSettings::File(WatchSettings::for_path("experiments.json"))
        );
        assert_eq!((s.config.startup, s.config.timeout), (Startup::Wait, DEFAULT_STARTUP_TIMEOUT));
        assert_eq!(s.sink, SinkSettings::Stdout { encoding: Encoding::Json });
        assert_eq!(s.events, PipelineSettings::default());
    }

    #[test]
    fn the_dialect_is_a_setting_or_detected() {
        let dialect = |text: &str| Settings::from_json(text).map(|s| s.config.dialect);
        assert_eq!(
            dialect(
                r#"{"config": {"path": "experiments.json", "dialect": "decider"}, "sink": "stdout"}"#
            ),
            Ok(Some(Dialect::Decider))
        );
        assert_eq!(
            dialect(r#"{"config": {"path": "e.json", "dialect": "baseplate"}}"#),
            Ok(Some(Dialect::Baseplate))
        );
        assert_eq!(dialect(r#"{"config": {"path": "e.json", "dialect": "auto"}}"#), Ok(None));
        assert_eq!(dialect(r#"{"config": {"path": "e.json"}}"#), Ok(None));
        let e = Settings::from_json(r#"{"config": {"path": "e.json", "dialect": "python"}}"#)
            .unwrap_err();
        assert_eq!(e.field, "config.dialect", "{e}");
    }

    /// The three documents of the issue, byte for byte: tools outside the project write them.
    #[cfg(all(feature = "http", feature = "kafka", feature = "http-config"))]
    #[test]
    fn the_documents_tools_write_are_accepted_as_written() {
        let http = Settings::from_json(
            r#"{"config": {"path": "experiments.json"},
 "sink": {"http": {"url": "http://127.0.0.1:8080/v2", "key_name": "k", "secret": "c2VjcmV0", "format": "v2"}}}"#,
        )
        .unwrap();
        let SinkSettings::Http(h) = &http.sink else { panic!("{:?}", http.sink) };
        assert_eq!(
            (h.url.as_str(), h.key_name.as_str(), h.format),
            ("http://127.0.0.1:8080/v2", "k", Encoding::V2)
        );
        let kafka = Settings::from_json(
            r#"{"config": {"url": "http://127.0.0.1:8000/experiments.json", "poll_interval": "1s"},
 "sink": {"kafka": {"brokers": "127.0.0.1:9092", "topic": "experiments", "encoding": "json"}}}"#,
        )
        .unwrap();
        let SourceSettings::Http(src) = &kafka.config.source else { panic!() };
        assert_eq!(
            (src.url.as_str(), src.poll_interval),
            ("http://127.0.0.1:8000/experiments.json", Duration::from_secs(1))
        );
        let SinkSettings::Kafka(k) = &kafka.sink else { panic!() };
        assert_eq!(
            (k.brokers.as_str(), k.topic.as_str(), k.encoding),
            ("127.0.0.1:9092", "experiments", Encoding::Json)
        );
        let stdout =
            Settings::from_json(r#"{"config": {"path": "experiments.json"}, "sink": "stdout"}"#)
                .unwrap();
        assert_eq!(stdout.sink.kind(), "stdout");
        let e = Settings::from_json(r#"{"config": {"url": "ftp://x/e.json"}}"#).unwrap_err();
        assert_eq!(e.field, "config.url", "{e}");
    }

    #[test]
    fn startup_policy_and_timeout() {
        let s = Settings::from_json(
            r#"{"config": {"path": "e.json", "startup": "fail_fast", "timeout": "250ms", "poll_interval": "2s"}}"#,
        )
        .unwrap();
        assert_eq!(
            (s.config.startup, s.config.timeout),
            (Startup::FailFast, Duration::from_millis(250))
        );
        let SourceSettings::File(w) = &s.config.source else { panic!() };
        assert_eq!(w.poll_interval, Duration::from_secs(2));
        assert_eq!(s.sink.kind(), "stdout", "stdout by default");
    }

    #[test]
    fn errors_name_the_field() {
        assert!(
            err(r#"{"config": {"path": "e.json", "timeout": "soon"}}"#)
                .starts_with("config.timeout: ")
        );
        let e = err(r#"{"config": {"path": "e.json", "pol_interval": "1s"}}"#);
        assert!(e.starts_with("config.pol_interval: unknown field `pol_interval`"), "{e}");
        assert_eq!(
            err(r#"{"config": {}}"#),
            "config: missing `path` (a file) or `url` (an HTTP(S) document)"
        );
        assert_eq!(
            err(r#"{"config": {"path": "a", "url": "http://x"}}"#),
            "config: give either `path` or `url`, not both"
        );
        assert_eq!(err(r#"{"sink": "stdout"}"#), "missing field `config`");
        assert!(
            err(r#"{"config": {"path": "a"}, "sink": "kafak"}"#)
                .starts_with("sink: unknown sink `kafak`")
        );
        assert!(
            err(r#"{"config": {"path": "a"}, "sink": {"stdout": {"encoding": "xml"}}}"#)
                .starts_with("sink.stdout.encoding: unknown variant `xml`")
        );
        assert!(
            err(r#"{"config": {"path": "a"}, "events": {"queue_capacity": -1}}"#)
                .starts_with("events.queue_capacity: invalid value")
        );
        assert!(
            err(r#"{"config": {"path": "a"}, "extra": 1}"#).starts_with("unknown field `extra`")
        );
        assert!(
            err(r#"{"config": {"path": "a"}, "sink": "none"} x"#)
                .starts_with("trailing characters")
        );
        assert_eq!(err(r#"{"config": 1}"#), "config: expected an object");
        assert!(
            err(r#"{"config": {"path": "a"}, "sink": {"none": 1}}"#)
                .starts_with("sink.none: takes no settings")
        );
        assert!(
            err(r#"{"config": {"path": "a"}, "sink": {"stdout": {}, "none": null}}"#)
                .starts_with("sink: expected a sink name")
        );
    }

    #[test]
    fn stdout_and_none_sinks() {
        let sink = |text: &str| {
            Settings::from_json(&format!(r#"{{"config": {{"path": "a"}}, "sink": {text}}}"#))
                .unwrap()
                .sink
        };
        assert_eq!(
            sink(r#"{"stdout": {"encoding": "v2"}}"#),
            SinkSettings::Stdout { encoding: Encoding::V2 }
        );
        assert_eq!(sink(r#"{"stdout": null}"#), SinkSettings::Stdout { encoding: Encoding::Json });
        assert_eq!(sink(r#""none""#), SinkSettings::None);
    }

    #[test]
    fn relative_paths_follow_the_settings_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("settings.json");
        std::fs::write(&file, r#"{"config": {"path": "experiments.json"}}"#).unwrap();
        let s = Settings::from_file(&file).unwrap();
        let SourceSettings::File(w) = &s.config.source else { panic!() };
        assert_eq!(w.path, dir.path().join("experiments.json"));
        std::fs::write(&file, r#"{"config": {"path": "/abs/experiments.json"}}"#).unwrap();
        let s = Settings::from_file(&file).unwrap();
        let SourceSettings::File(w) = &s.config.source else { panic!() };
        assert_eq!(w.path, PathBuf::from("/abs/experiments.json"));
        let missing = Settings::from_file(dir.path().join("nope.json")).unwrap_err();
        assert!(missing.to_string().starts_with("cannot read "), "{missing}");
    }
}
