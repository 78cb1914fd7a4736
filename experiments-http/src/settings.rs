//! Settings of the HTTP sink.

use std::borrow::Cow;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use base64::Engine as _;
use experiments_events::Encoding;
use serde::de::{self, Deserialize, Deserializer, Visitor};

/// The signing secret: configured as base64 (like baseplate's `key.secret`), never printed:
/// its `Debug` is `Secret(<redacted>)`, and neither a malformed base64 text nor a value of
/// the wrong JSON type is quoted in an error.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(Vec<u8>);

impl Secret {
    /// A secret from raw bytes.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Secret(bytes.into())
    }

    /// A secret from its base64 form (standard alphabet, padded; surrounding whitespace
    /// ignored). The error says only that the text is not base64: the decoder's own errors
    /// quote the offending byte and its offset, a piece of the secret.
    pub fn from_base64(text: &str) -> Result<Self, InvalidSecret> {
        base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map(Secret)
            .map_err(|_| InvalidSecret)
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

/// A secret text that is not valid base64. Deliberately vague: which byte is wrong, and
/// where, would reveal part of the secret.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("not valid base64 (standard alphabet, padded); the value is not shown")]
pub struct InvalidSecret;

/// The error for a secret of the wrong type, which serde would otherwise quote (``invalid
/// type: integer `123` ``).
const SECRET_NOT_A_STRING: &str =
    "secret: expected a base64 string; a value of another type was given (not shown)";

/// Reads a [`Secret`] from a string and refuses every other type without quoting it.
struct SecretVisitor;

impl SecretVisitor {
    fn refuse<T, E: de::Error>() -> Result<T, E> {
        Err(E::custom(SECRET_NOT_A_STRING))
    }
}

impl<'de> Visitor<'de> for SecretVisitor {
    type Value = Secret;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a base64 string")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Secret, E> {
        Secret::from_base64(v).map_err(|e| E::custom(format_args!("secret: {e}")))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Secret, E> {
        Self::refuse()
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Secret, E> {
        Self::refuse()
    }
    fn visit_i128<E: de::Error>(self, _: i128) -> Result<Secret, E> {
        Self::refuse()
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Secret, E> {
        Self::refuse()
    }
    fn visit_u128<E: de::Error>(self, _: u128) -> Result<Secret, E> {
        Self::refuse()
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Secret, E> {
        Self::refuse()
    }
    fn visit_bytes<E: de::Error>(self, _: &[u8]) -> Result<Secret, E> {
        Self::refuse()
    }
    fn visit_none<E: de::Error>(self) -> Result<Secret, E> {
        Self::refuse()
    }
    fn visit_some<D: Deserializer<'de>>(self, _: D) -> Result<Secret, D::Error> {
        Self::refuse()
    }
    fn visit_unit<E: de::Error>(self) -> Result<Secret, E> {
        Self::refuse()
    }
    fn visit_newtype_struct<D: Deserializer<'de>>(self, _: D) -> Result<Secret, D::Error> {
        Self::refuse()
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, _: A) -> Result<Secret, A::Error> {
        Self::refuse()
    }
    fn visit_map<A: de::MapAccess<'de>>(self, _: A) -> Result<Secret, A::Error> {
        Self::refuse()
    }
    fn visit_enum<A: de::EnumAccess<'de>>(self, _: A) -> Result<Secret, A::Error> {
        Self::refuse()
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // `deserialize_any`, not `deserialize_str`: serde_json answers a mistyped value of
        // `deserialize_str` itself, quoting it, before the visitor can refuse it quietly.
        d.deserialize_any(SecretVisitor)
    }
}

/// `url` with the credentials in its userinfo hidden: `scheme://user:<redacted>@host/...`,
/// or `scheme://<redacted>@host/...` when the userinfo is a bare user name (often a token).
/// The authority ends at the first `/`, `\`, `?` or `#`; its last `@` ends the userinfo, so
/// a password containing `@` is hidden whole. Text without userinfo is returned unchanged.
pub(crate) fn redact_url(url: &str) -> Cow<'_, str> {
    let start = url.find("://").map_or(0, |i| i + 3);
    let rest = &url[start..];
    let authority = &rest[..rest.find(['/', '\\', '?', '#']).unwrap_or(rest.len())];
    let Some(at) = authority.rfind('@') else {
        return Cow::Borrowed(url);
    };
    let shown = match authority[..at].split_once(':') {
        Some((user, _)) => format!("{user}:<redacted>"),
        None => "<redacted>".to_owned(),
    };
    Cow::Owned(format!("{}{shown}{}", &url[..start], &url[start + at..]))
}

/// Settings of an [`HttpSink`](crate::HttpSink). Durations in human form (`"3s"`).
///
/// ```
/// let s: experiments_http::HttpSettings = serde_json::from_str(
///     r#"{"url": "https://collector.example/v2", "key_name": "exp", "secret": "c2VjcmV0"}"#).unwrap();
/// assert_eq!(s.secret.bytes(), b"secret");
/// assert_eq!(format!("{:?}", s.secret), "Secret(<redacted>)");
/// ```
///
/// `Debug` hides the secret and any credentials in the URL's userinfo
/// (`http://user:<redacted>@host/`).
#[derive(Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct HttpSettings {
    /// The collector endpoint, e.g. `https://collector.example/v2`. It must be the final
    /// URL: redirects are not followed, a 3xx rejects the batch.
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

impl fmt::Debug for HttpSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Destructured, so a new field cannot be forgotten here.
        let HttpSettings {
            url,
            key_name,
            secret,
            format,
            gzip,
            timeout,
            connect_timeout,
            max_batch_bytes,
            max_in_flight,
            ca_certificate,
        } = self;
        f.debug_struct("HttpSettings")
            .field("url", &redact_url(url))
            .field("key_name", key_name)
            .field("secret", secret)
            .field("format", format)
            .field("gzip", gzip)
            .field("timeout", timeout)
            .field("connect_timeout", connect_timeout)
            .field("max_batch_bytes", max_batch_bytes)
            .field("max_in_flight", max_in_flight)
            .field("ca_certificate", ca_certificate)
            .finish()
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_their_credentials_only() {
        for (url, shown) in [
            ("http://user:pw@h/v2", "http://user:<redacted>@h/v2"),
            ("https://token@h:1/", "https://<redacted>@h:1/"),
            ("http://u:p@ss@h/", "http://u:<redacted>@h/"),
            ("u:pw@h/v2", "u:<redacted>@h/v2"),
            ("http://h/a@b", "http://h/a@b"),
            ("http://h?q=a@b", "http://h?q=a@b"),
            ("http://h#a@b", "http://h#a@b"),
            ("http://h\\a@b", "http://h\\a@b"),
            ("http://:pw@h", "http://:<redacted>@h"),
            ("http://@h", "http://<redacted>@h"),
            ("", ""),
            ("://", "://"),
        ] {
            assert_eq!(redact_url(url), shown, "{url}");
        }
    }
}
