//! Settings of the HTTP sink.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use base64::Engine as _;
use experiments_events::Encoding;
use serde::{Deserialize, Deserializer};

/// The signing secret: configured as base64 (like baseplate's `key.secret`), never printed.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(Vec<u8>);

impl Secret {
    /// A secret from raw bytes.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Secret(bytes.into())
    }

    /// A secret from its base64 form.
    pub fn from_base64(text: &str) -> Result<Self, base64::DecodeError> {
        base64::engine::general_purpose::STANDARD.decode(text.trim()).map(Secret)
    }

    /// The raw bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Secret::from_base64(&text)
            .map_err(|e| serde::de::Error::custom(format!("secret is not base64: {e}")))
    }
}

/// Settings of an [`HttpLogger`](crate::HttpLogger). Durations in human form (`"3s"`).
///
/// ```
/// let s: experiments_http::HttpSettings = serde_json::from_str(
///     r#"{"url": "https://collector.example/v2", "key_name": "exp", "secret": "c2VjcmV0"}"#).unwrap();
/// assert_eq!(s.secret.bytes(), b"secret");
/// assert_eq!(format!("{:?}", s.secret), "Secret(<redacted>)");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSettings {
    /// The collector endpoint, e.g. `https://collector.example/v2`.
    pub url: String,
    /// The name of the signing key (`X-Signature: key=<name>, ...`).
    pub key_name: String,
    /// The signing secret, base64.
    pub secret: Secret,
    /// Body format (`v2`).
    #[serde(default = "default_format")]
    pub format: Encoding,
    /// Compress bodies with gzip (`true`).
    #[serde(default = "default_gzip")]
    pub gzip: bool,
    /// Timeout of one request, connection included (3 s).
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// Timeout to establish a connection (1 s).
    #[serde(default = "default_connect_timeout", with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// Largest uncompressed body (500 KiB); larger batches are split.
    #[serde(default = "default_max_batch_bytes")]
    pub max_batch_bytes: usize,
    /// Batches in flight at once (1).
    #[serde(default = "default_max_in_flight")]
    pub max_in_flight: usize,
    /// An extra CA certificate (PEM) to trust.
    #[serde(default)]
    pub ca_certificate: Option<PathBuf>,
}

fn default_format() -> Encoding {
    Encoding::V2
}
fn default_gzip() -> bool {
    true
}
fn default_timeout() -> Duration {
    Duration::from_secs(3)
}
fn default_connect_timeout() -> Duration {
    Duration::from_secs(1)
}
fn default_max_batch_bytes() -> usize {
    500 * 1024
}
fn default_max_in_flight() -> usize {
    1
}

impl HttpSettings {
    /// Settings with the defaults for `url`, `key_name` and `secret`.
    pub fn new(url: impl Into<String>, key_name: impl Into<String>, secret: Secret) -> Self {
        HttpSettings {
            url: url.into(),
            key_name: key_name.into(),
            secret,
            format: default_format(),
            gzip: default_gzip(),
            timeout: default_timeout(),
            connect_timeout: default_connect_timeout(),
            max_batch_bytes: default_max_batch_bytes(),
            max_in_flight: default_max_in_flight(),
            ca_certificate: None,
        }
    }
}
