//! The `"serve"` section of the settings document: where the sidecar listens, who may call
//! it and the limits that keep it up under any input.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use experiments_sdk::{Settings, SettingsError};
use serde::Deserialize;
use serde_json::Value;

/// The address `experiments serve` listens on when neither `--listen` nor `serve.listen`
/// says otherwise (the port OFREP providers default to).
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8016";

/// The sidecar's own settings: the `"serve"` member of the settings document (every field
/// optional).
///
/// ```
/// use experiments_serve::ServeSettings;
///
/// let s = ServeSettings::from_value(serde_json::json!({
///     "listen": "0.0.0.0:8016",
///     "auth": {"api_keys": ["k-123"]},
///     "request_timeout": "2s"
/// }))?;
/// assert_eq!(s.listen.port(), 8016);
/// assert_eq!(s.request_timeout, std::time::Duration::from_secs(2));
/// let err = ServeSettings::from_value(serde_json::json!({"max_body_bytes": -1})).unwrap_err();
/// assert!(err.to_string().starts_with("serve.max_body_bytes: "), "{err}");
/// # Ok::<(), experiments_sdk::SettingsError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct ServeSettings {
    /// Where to listen (`127.0.0.1:8016`); `--listen` wins.
    pub listen: SocketAddr,
    /// Who may evaluate (`None`: anyone who can reach the address).
    pub auth: Option<AuthSettings>,
    /// The input the evaluation context's `targetingKey` becomes (`user_id`): see
    /// `experiments_openfeature::ProviderBuilder::targeting_key_field`.
    pub targeting_key_field: String,
    /// The largest request body read (`65536` bytes); larger ones get `413`.
    pub max_body_bytes: usize,
    /// The longest a request may take, body included (`5s`); slower ones get `408`.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// Requests evaluated at once (`1024`); more get `429` with `Retry-After: 1`.
    pub max_concurrent_requests: usize,
    /// Open connections (`4096`); more wait in the listen backlog.
    pub max_connections: usize,
    /// How long a connection may take to send a request's headers, and stay idle between
    /// requests (`30s`).
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// On SIGTERM/SIGINT: how long in-flight requests may finish, then how long events may
    /// flush (`10s` each).
    #[serde(with = "humantime_serde")]
    pub shutdown_timeout: Duration,
    /// Distinct flags the metrics label separately (`1000`); the rest count as `_other`.
    pub metrics_max_flags: usize,
    /// Cross-origin access for OFREP clients in browsers (absent: no CORS headers, so only
    /// same-origin pages and non-browser clients can call).
    pub cors: Option<CorsSettings>,
    /// Whether bulk evaluation logs an exposure for every variant it returns (`true`, as
    /// single evaluations do). Client-side providers fetch every flag ahead of use, so an
    /// analysis counting exposures may want `false`: variants are then decided without
    /// exposure (baseplate's `bucketing_event_override=False`, decider's
    /// `get_variant_without_expose`, which still logs holdout events).
    pub bulk_exposures: bool,
}

impl Default for ServeSettings {
    fn default() -> Self {
        ServeSettings {
            listen: DEFAULT_LISTEN.parse().unwrap_or_else(|_| ([127, 0, 0, 1], 8016).into()),
            auth: None,
            targeting_key_field: "user_id".to_owned(),
            max_body_bytes: 64 * 1024,
            request_timeout: Duration::from_secs(5),
            max_concurrent_requests: 1024,
            max_connections: 4096,
            idle_timeout: Duration::from_secs(30),
            shutdown_timeout: Duration::from_secs(10),
            metrics_max_flags: 1000,
            bulk_exposures: true,
            cors: None,
        }
    }
}

/// Credentials callers must present: an `X-API-Key` header or an `Authorization: Bearer`
/// token (OFREP's two schemes), compared in constant time. Either list may be empty, not
/// both.
///
/// In the settings document each credential is a string, or is read when the settings are:
/// `{"env": "NAME"}` takes an environment variable's value, `{"file": "path"}` a file's
/// contents without the trailing line break (a relative path is relative to the settings
/// file), so the secret itself need not be in the document.
///
/// ```
/// use experiments_serve::ServeSettings;
///
/// let s = ServeSettings::from_value(serde_json::json!({
///     "auth": {"api_keys": ["k-literal"], "bearer_tokens": [{"file": "/run/secrets/ofrep"}]}
/// }));
/// // Read when the settings are: a missing file is an error naming the field.
/// let err = s.unwrap_err().to_string();
/// assert!(err.starts_with("serve.auth.bearer_tokens: entry 0: /run/secrets/ofrep: "), "{err}");
/// # Ok::<(), experiments_sdk::SettingsError>(())
/// ```
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct AuthSettings {
    /// Accepted `X-API-Key` values.
    #[serde(default, deserialize_with = "credentials")]
    pub api_keys: Vec<String>,
    /// Accepted bearer tokens.
    #[serde(default, deserialize_with = "credentials")]
    pub bearer_tokens: Vec<String>,
}

/// The largest credential file read: a secret is short, a mistaken path may not be.
const MAX_CREDENTIAL_FILE: u64 = 64 * 1024;

/// A credential as the settings document gives it.
#[derive(Deserialize)]
#[serde(untagged, deny_unknown_fields, expecting = "a string, {\"env\": NAME} or {\"file\": PATH}")]
enum CredentialEntry {
    Literal(String),
    Env { env: String },
    File { file: std::path::PathBuf },
}

/// Deserializes a credential list, resolving `{"env"}` and `{"file"}` entries.
fn credentials<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    use serde::de::Error;
    let entries = Vec::<CredentialEntry>::deserialize(d)?;
    entries
        .into_iter()
        .enumerate()
        .map(|(i, entry)| match entry {
            CredentialEntry::Literal(secret) => Ok(secret),
            CredentialEntry::Env { env } => std::env::var(&env).map_err(|e| {
                D::Error::custom(format_args!("entry {i}: environment variable {env}: {e}"))
            }),
            CredentialEntry::File { file } => read_credential_file(&file)
                .map_err(|e| D::Error::custom(format_args!("entry {i}: {}: {e}", file.display()))),
        })
        .collect()
}

/// A credential file's contents without the trailing line break; refuses files over
/// [`MAX_CREDENTIAL_FILE`] and text that is not UTF-8.
fn read_credential_file(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open(path)?.take(MAX_CREDENTIAL_FILE + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_CREDENTIAL_FILE {
        return Err(std::io::Error::other(format!("larger than {MAX_CREDENTIAL_FILE} bytes")));
    }
    let text = String::from_utf8(bytes).map_err(|_| std::io::Error::other("not UTF-8"))?;
    Ok(text.trim_end_matches(['\n', '\r']).to_owned())
}

/// Makes the relative `{"file": PATH}` credentials of a `"serve"` section relative to `dir`.
fn resolve_credential_files(serve: &mut Value, dir: &Path) {
    let Some(auth) = serve.get_mut("auth").and_then(Value::as_object_mut) else { return };
    for list in ["api_keys", "bearer_tokens"] {
        let Some(entries) = auth.get_mut(list).and_then(Value::as_array_mut) else { continue };
        for entry in entries {
            if let Some(Value::String(file)) = entry.get_mut("file")
                && Path::new(file.as_str()).is_relative()
            {
                *file = dir.join(file.as_str()).to_string_lossy().into_owned();
            }
        }
    }
}

/// Which web origins may call the server from a browser (CORS), for OpenFeature's web OFREP
/// provider: preflights are answered before routing, authentication and limits, answers
/// carry `Access-Control-Allow-Origin` for an allowed `Origin` and expose `ETag` (the bulk
/// cache) and `Retry-After`. Allowed request headers: `Content-Type`, `If-None-Match`,
/// `Authorization`, `X-API-Key`.
///
/// ```
/// use experiments_serve::ServeSettings;
///
/// let s = ServeSettings::from_value(serde_json::json!({
///     "cors": {"allowed_origins": ["https://app.example.com"], "max_age": "10m"}
/// }))?;
/// assert_eq!(s.cors.unwrap().allowed_origins, ["https://app.example.com"]);
/// let err = ServeSettings::from_value(serde_json::json!({
///     "cors": {"allowed_origins": ["https://app.example.com/path"]}
/// })).unwrap_err();
/// assert!(err.to_string().starts_with("serve.cors.allowed_origins: "), "{err}");
/// # Ok::<(), experiments_sdk::SettingsError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct CorsSettings {
    /// Origins as browsers send them (`scheme://host[:port]`, no path), or `["*"]` for any.
    pub allowed_origins: Vec<String>,
    /// How long browsers may cache a preflight answer (`1h`).
    #[serde(default = "default_cors_max_age", with = "humantime_serde")]
    pub max_age: Duration,
}

fn default_cors_max_age() -> Duration {
    Duration::from_secs(3600)
}

impl CorsSettings {
    /// Refuses an empty list, `*` among other origins, and anything that is not an origin.
    fn validate(&self) -> Result<(), SettingsError> {
        let field = "serve.cors.allowed_origins";
        if self.allowed_origins.is_empty() {
            return Err(SettingsError::new(field, "give at least one origin, or [\"*\"]"));
        }
        if self.allowed_origins.iter().any(|o| o == "*") {
            if self.allowed_origins.len() > 1 {
                return Err(SettingsError::new(field, "\"*\" allows every origin: give it alone"));
            }
            return Ok(());
        }
        for origin in &self.allowed_origins {
            if !is_origin(origin) {
                return Err(SettingsError::new(
                    field,
                    format!("{origin:?} is not an origin (scheme://host[:port], without a path)"),
                ));
            }
        }
        Ok(())
    }
}

/// `scheme://host[:port]` in the form browsers send in `Origin`: a lowercase `http` or
/// `https` scheme, a host of visible ASCII without `/`, `?`, `#`, `@` or spaces.
fn is_origin(origin: &str) -> bool {
    let Some((scheme, host)) = origin.split_once("://") else { return false };
    matches!(scheme, "http" | "https")
        && !host.is_empty()
        && host.bytes().all(|b| b.is_ascii_graphic() && !b"/?#@\\".contains(&b))
}

impl AuthSettings {
    /// Credentials accepting these API keys and bearer tokens.
    pub fn new(api_keys: Vec<String>, bearer_tokens: Vec<String>) -> Self {
        AuthSettings { api_keys, bearer_tokens }
    }
}

impl std::fmt::Debug for AuthSettings {
    /// Counts, never the secrets.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthSettings")
            .field("api_keys", &format_args!("{} redacted", self.api_keys.len()))
            .field("bearer_tokens", &format_args!("{} redacted", self.bearer_tokens.len()))
            .finish()
    }
}

impl ServeSettings {
    /// Reads the `"serve"` section, naming a failing field `serve.<field>`.
    pub fn from_value(value: Value) -> Result<ServeSettings, SettingsError> {
        if !value.is_object() {
            return Err(SettingsError::new("serve", "expected an object"));
        }
        let settings: ServeSettings = serde_path_to_error::deserialize(value).map_err(|e| {
            let path = e.path().to_string();
            let field = if path == "." { "serve".to_owned() } else { format!("serve.{path}") };
            SettingsError::new(field, e.into_inner().to_string())
        })?;
        settings.validate()?;
        Ok(settings)
    }

    /// Refuses values the server cannot run with (zero limits, empty credentials).
    pub fn validate(&self) -> Result<(), SettingsError> {
        let positive = [
            ("max_body_bytes", self.max_body_bytes),
            ("max_concurrent_requests", self.max_concurrent_requests),
            ("max_connections", self.max_connections),
            ("metrics_max_flags", self.metrics_max_flags),
        ];
        for (field, value) in positive {
            if value == 0 {
                return Err(SettingsError::new(format!("serve.{field}"), "must be at least 1"));
            }
        }
        for (field, value) in
            [("request_timeout", self.request_timeout), ("idle_timeout", self.idle_timeout)]
        {
            if value.is_zero() {
                return Err(SettingsError::new(format!("serve.{field}"), "must be positive"));
            }
        }
        if self.targeting_key_field.is_empty() {
            return Err(SettingsError::new("serve.targeting_key_field", "must not be empty"));
        }
        if let Some(cors) = &self.cors {
            cors.validate()?;
        }
        if let Some(auth) = &self.auth {
            if auth.api_keys.is_empty() && auth.bearer_tokens.is_empty() {
                return Err(SettingsError::new(
                    "serve.auth",
                    "give `api_keys` or `bearer_tokens` (or leave `auth` out)",
                ));
            }
            let all = auth.api_keys.iter().map(|k| ("api_keys", k));
            let all = all.chain(auth.bearer_tokens.iter().map(|t| ("bearer_tokens", t)));
            for (field, secret) in all {
                if secret.is_empty() || secret.chars().any(|c| c.is_control() || c == ' ') {
                    return Err(SettingsError::new(
                        format!("serve.auth.{field}"),
                        "a credential must be non-empty, without spaces or control characters",
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Reads a settings document for `experiments serve`: the client's settings
/// ([`Settings::from_file`]) and the `"serve"` section ([`ServeSettings`], defaults when
/// absent).
pub fn read_settings_file(
    path: impl AsRef<Path>,
) -> Result<(Settings, ServeSettings), SettingsError> {
    let path = path.as_ref();
    let (settings, mut sections) = Settings::from_file_with_sections(path, &["serve"])?;
    let serve = match sections.remove("serve") {
        Some(mut value) => {
            let dir = path.parent().unwrap_or(Path::new("."));
            resolve_credential_files(&mut value, dir);
            ServeSettings::from_value(value)?
        }
        None => ServeSettings::default(),
    };
    Ok((settings, serve))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn defaults_and_errors_name_fields() {
        let s = ServeSettings::from_value(json!({})).unwrap();
        assert_eq!(s, ServeSettings::default());
        assert_eq!(s.listen.to_string(), DEFAULT_LISTEN);
        for (doc, field) in [
            (json!({"listen": "nowhere"}), "serve.listen"),
            (json!({"max_concurrent_requests": 0}), "serve.max_concurrent_requests"),
            (json!({"request_timeout": "soon"}), "serve.request_timeout"),
            (json!({"auth": {}}), "serve.auth"),
            (json!({"auth": {"api_keys": [""]}}), "serve.auth.api_keys"),
            (json!({"auth": {"tokens": ["x"]}}), "serve.auth.tokens"),
            (json!({"colour": "blue"}), "serve.colour"),
            (json!({"cors": {}}), "serve.cors"),
            (json!({"cors": {"allowed_origins": []}}), "serve.cors.allowed_origins"),
            (
                json!({"cors": {"allowed_origins": ["*", "https://a.b"]}}),
                "serve.cors.allowed_origins",
            ),
            (json!({"cors": {"allowed_origins": ["a.b"]}}), "serve.cors.allowed_origins"),
            (json!({"cors": {"allowed_origins": ["ftp://a.b"]}}), "serve.cors.allowed_origins"),
            (json!({"cors": {"allowed_origins": ["https://"]}}), "serve.cors.allowed_origins"),
            (json!({"cors": {"allowed_origins": ["https://a.b/"]}}), "serve.cors.allowed_origins"),
            (json!({"cors": {"allowed_origins": ["https://u@a.b"]}}), "serve.cors.allowed_origins"),
            (json!({"cors": {"allowed_origins": ["https://a.b\n"]}}), "serve.cors.allowed_origins"),
            (json!({"cors": {"allowed_origins": ["https://ä.b"]}}), "serve.cors.allowed_origins"),
            (json!({"cors": {"allowed_origins": ["*"], "max_age": "x"}}), "serve.cors.max_age"),
            (json!(["not", "an", "object"]), "serve"),
        ] {
            let err = ServeSettings::from_value(doc.clone()).unwrap_err();
            assert_eq!(err.field, field, "{doc}: {err}");
        }
    }

    #[test]
    fn the_readme_settings_document_is_accepted_as_written() {
        let readme = include_str!("../README.md");
        let start = readme.find("```json\n").expect("a JSON block") + "```json\n".len();
        let end = start + readme[start..].find("```").expect("its end");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("serve.json");
        std::fs::write(&path, &readme[start..end]).unwrap();
        let (settings, serve) = read_settings_file(&path).unwrap();
        assert_eq!(settings.config.source_name(), "https://config.internal/experiments.json");
        assert_eq!(serve.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(serve.auth.as_ref().map(|a| a.api_keys.len()), Some(1));
        assert_eq!(serve.metrics_max_flags, 1000);
        assert!(serve.cors.is_some() && serve.bulk_exposures);
    }

    /// The workspace README shows the `serve` section with every field at its default.
    #[test]
    fn the_workspace_readme_serve_document_is_accepted_as_written() {
        let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"));
        // Absent from a packaged crate: nothing to check there.
        let Ok(readme) = readme else { return };
        let block = readme
            .split("```json\n")
            .skip(1)
            .filter_map(|b| b.split_once("```").map(|(json, _)| json))
            .find(|json| json.contains("\"serve\""))
            .expect("a JSON block with a serve section");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("serve.json");
        std::fs::write(&path, block).unwrap();
        let (_, serve) = read_settings_file(&path).unwrap_or_else(|e| panic!("{e}\n{block}"));
        let expected = ServeSettings {
            auth: serve.auth.clone(),
            cors: serve.cors.clone(),
            ..ServeSettings::default()
        };
        assert_eq!(serve, expected, "every other field shown with its default");
    }

    #[test]
    fn credentials_come_from_files_relative_to_the_settings_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("key"), "k-1\r\n").unwrap();
        std::fs::write(dir.path().join("big"), vec![b'k'; 70_000]).unwrap();
        std::fs::write(dir.path().join("latin1"), b"k\xe9").unwrap();
        let path = dir.path().join("settings.json");
        let write = |auth: &str| {
            let doc = format!(r#"{{"config": {{"path": "e.json"}}, "serve": {{"auth": {auth}}}}}"#);
            std::fs::write(&path, doc).unwrap();
        };
        write(r#"{"api_keys": [{"file": "key"}, "k-2"]}"#);
        let (_, serve) = read_settings_file(&path).unwrap();
        assert_eq!(serve.auth.unwrap().api_keys, ["k-1", "k-2"]);
        for (auth, expected) in [
            (r#"{"api_keys": [{"file": "big"}]}"#, "larger than 65536 bytes"),
            (r#"{"api_keys": [{"file": "latin1"}]}"#, "not UTF-8"),
            (r#"{"api_keys": ["k", {"file": "absent"}]}"#, "entry 1: "),
            (r#"{"bearer_tokens": [{"file": "key", "env": "X"}]}"#, "a string, {\"env\""),
            (r#"{"bearer_tokens": [7]}"#, "a string, {\"env\""),
            (r#"{"bearer_tokens": [{"env": "EXPERIMENTS_SURELY_UNSET_VAR"}]}"#, "entry 0: "),
        ] {
            write(auth);
            let err = read_settings_file(&path).unwrap_err();
            assert!(err.field.starts_with("serve.auth."), "{auth}: {err}");
            assert!(err.to_string().contains(expected), "{auth}: {err}");
        }
        // An empty file is an empty credential, refused like an empty string.
        std::fs::write(dir.path().join("key"), "\n").unwrap();
        write(r#"{"api_keys": [{"file": "key"}]}"#);
        assert_eq!(read_settings_file(&path).unwrap_err().field, "serve.auth.api_keys");
    }

    #[test]
    fn secrets_stay_out_of_debug_output() {
        let s = ServeSettings::from_value(json!({"auth": {"bearer_tokens": ["s3cr3t"]}})).unwrap();
        let shown = format!("{s:?}");
        assert!(!shown.contains("s3cr3t") && shown.contains("1 redacted"), "{shown}");
    }

    #[test]
    fn a_settings_file_carries_the_serve_section() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("settings.json");
        std::fs::write(
            &path,
            r#"{"config": {"path": "experiments.json"}, "sink": "none",
                "serve": {"listen": "127.0.0.1:9999", "idle_timeout": "1s"}}"#,
        )
        .unwrap();
        let (settings, serve) = read_settings_file(&path).unwrap();
        assert_eq!(serve.listen.port(), 9999);
        assert_eq!(serve.idle_timeout, Duration::from_secs(1));
        assert_eq!(
            settings.config.source_name(),
            dir.path().join("experiments.json").display().to_string()
        );
        std::fs::write(&path, r#"{"config": {"path": "x.json"}, "serve": {"listen": 1}}"#).unwrap();
        assert_eq!(read_settings_file(&path).unwrap_err().field, "serve.listen");
    }
}
