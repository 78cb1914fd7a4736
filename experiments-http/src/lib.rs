//! # experiments-http
//!
//! An [`EventSink`] that POSTs batches to an HTTP endpoint speaking Reddit's v2 event
//! collector protocol. The shared pipeline of `experiments-events` does intake, batching,
//! retries and accounting; this crate only exports a batch:
//!
//! - body `v2`: `{"1":{"lst":["rec",N,<event>,...]}}` around the Thrift-JSON events;
//!   body `json`: a JSON array of the `json` encoding;
//! - `Content-Encoding: gzip` (configurable), `Content-Type: application/json`, `Date`,
//!   `User-Agent: experiments-http/<version>`;
//! - `X-Signature: key=<key name>, mac=<hex HMAC-SHA256(secret, uncompressed body)>`;
//! - the sink's [`EventSink::profile`] names its `format`, `max_batch_bytes` (500 KiB
//!   uncompressed) and `max_in_flight`, so the pipeline feeding it always builds batches in
//!   that format and within that size (and refuses settings that say otherwise); a batch
//!   larger than `max_batch_bytes` given to [`HttpSink::export`] directly is split over
//!   several requests.
//!
//! Outcomes, by status of the response:
//!
//! - 2xx: delivered.
//! - 5xx, 408, 429, connection errors and timeouts: retryable. `Retry-After` (seconds or an
//!   HTTP date) is honoured up to [`MAX_RETRY_AFTER`]; longer waits are capped to it.
//! - 3xx, every one of them (300 and 304 included): rejected, with a reason that names the
//!   status and the `Location`. Redirects are never followed: on 301/302/303 an HTTP client
//!   re-sends the POST as a bodiless GET, and the 200 of the page it lands on would count a
//!   batch as delivered that no collector received. A redirect means the configured URL is
//!   wrong (`http` for `https`, a missing trailing path, a moved collector); retrying the
//!   same URL cannot succeed, so the events are counted `rejected_by_sink` and the reason
//!   (logged at `warn`) says which URL to configure instead.
//! - 422, the other 4xx and any other status: rejected for good (status and the start of
//!   the body are logged).
//!
//! Responses are never read whole: the sink reads at most 64 KiB of a body (so a short reply
//! leaves the connection reusable), keeps at most 2 KiB of an error body for the reason, and
//! drops the connection of a longer reply. A collector that answers with gigabytes, or
//! with a body that never ends, costs a bounded amount of memory and no time beyond the
//! request timeout.
//!
//! **Delivery guarantee: at least once.** A request that times out after the collector
//! stored it is retried, so the collector may see an event twice; every event carries a
//! unique `uuid` to dedupe on. Nothing is lost silently: an event is delivered, or counted
//! as dropped by the pipeline with its reason.

#[cfg(feature = "collector")]
pub mod collector;
mod settings;

use std::io::Write;
use std::time::{Duration, SystemTime};

use experiments_events::{
    Batch, Encoding, EventFate, EventSink, ExportOutcome, SinkProfile, async_trait,
};
use flate2::Compression;
use flate2::write::GzEncoder;
use hmac::{Hmac, Mac};
use reqwest::StatusCode;
use reqwest::header::{
    CONTENT_ENCODING, CONTENT_TYPE, DATE, HeaderValue, LOCATION, RETRY_AFTER, USER_AGENT,
};
use sha2::Sha256;

use settings::redact_url;
pub use settings::{HttpSettings, InvalidSecret, Secret};

/// The `User-Agent` of every request.
pub const USER_AGENT_VALUE: &str = concat!("experiments-http/", env!("CARGO_PKG_VERSION"));

/// The longest wait a collector's `Retry-After` can impose: 5 minutes, the pipeline's
/// default retry budget. Larger values (`Retry-After: 18446744073709551615`, digits beyond
/// `u64`, an HTTP date centuries ahead) are capped to it before they leave the sink, so a
/// caller can add the wait to a clock without overflowing; a pipeline whose budget ends
/// sooner gives the batch up at once (`retry_budget_exhausted`) instead of waiting.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);

/// How many characters of an error response's body go into the reason and the log.
const LOGGED_BODY: usize = 512;

/// How many bytes of an error response's body are kept to find those characters (UTF-8
/// takes at most 4 bytes per character).
const LOGGED_BODY_BYTES: usize = 4 * LOGGED_BODY;

/// How many bytes of any response body are read at most. Reading a short body to its end
/// returns the connection to the pool; a longer one is abandoned, which closes its
/// connection, so a collector cannot make the sink buffer or wait for more than this.
const MAX_BODY_READ: usize = 64 * 1024;

/// How many characters of a redirect's `Location` go into the reason.
const LOGGED_LOCATION: usize = 256;

/// The sink could not be built.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The extra CA certificate could not be read or parsed.
    #[error("CA certificate {path}: {reason}")]
    CaCertificate {
        /// Its path.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// The HTTP client could not be built.
    #[error("HTTP client: {0}")]
    Client(#[from] reqwest::Error),
}

/// POSTs batches of events to a collector.
pub struct HttpSink {
    client: reqwest::Client,
    settings: HttpSettings,
}

impl std::fmt::Debug for HttpSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpSink").field("settings", &self.settings).finish_non_exhaustive()
    }
}

/// `X-Signature` of an uncompressed body.
pub fn signature(key_name: &str, secret: &[u8], body: &[u8]) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(secret) else {
        return format!("key={key_name}, mac=");
    };
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("key={key_name}, mac={hex}")
}

/// The request body of some events of a batch: the v2 batch around v2 events, a JSON array
/// of the events in every other encoding.
pub fn body(encoding: Encoding, payloads: &[&[u8]]) -> Vec<u8> {
    let size: usize = payloads.iter().map(|p| p.len() + 1).sum();
    let mut out = Vec::with_capacity(size + 32);
    match encoding {
        Encoding::V2 => {
            out.extend_from_slice(format!(r#"{{"1":{{"lst":["rec",{}"#, payloads.len()).as_bytes());
            for p in payloads {
                out.push(b',');
                out.extend_from_slice(p);
            }
            out.extend_from_slice(b"]}}");
        }
        _ => {
            out.push(b'[');
            for (i, p) in payloads.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(p);
            }
            out.push(b']');
        }
    }
    out
}

/// Splits `batch` into runs of indices whose bodies stay within `limit` bytes (a single
/// event always forms a run, whatever its size).
fn chunks(batch: &Batch, limit: usize) -> Vec<Vec<usize>> {
    let mut out: Vec<Vec<usize>> = Vec::new();
    let mut size = 32;
    for (i, e) in batch.events.iter().enumerate() {
        let add = e.payload.len() + 1;
        match out.last_mut() {
            Some(run) if size + add <= limit => run.push(i),
            _ => {
                out.push(vec![i]);
                size = 32;
            }
        }
        size += add;
    }
    out
}

/// `Retry-After` as seconds or an HTTP date, capped to [`MAX_RETRY_AFTER`] (a number too
/// large for `u64` counts as "very long", so it is capped too). `None` when absent or
/// unreadable: the pipeline then uses its own backoff.
fn retry_after(value: Option<&HeaderValue>) -> Option<Duration> {
    let text = value?.to_str().ok()?.trim();
    let wait = if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        Duration::from_secs(text.parse::<u64>().unwrap_or(u64::MAX))
    } else {
        let when = httpdate::parse_http_date(text).ok()?;
        when.duration_since(SystemTime::now()).unwrap_or_default()
    };
    Some(wait.min(MAX_RETRY_AFTER))
}

/// Reads at most [`MAX_BODY_READ`] bytes of a response body and returns the first `keep` of
/// them. A body that ends within the bound leaves its connection reusable; a longer one is
/// abandoned when the response is dropped (hyper then closes the connection). A read error
/// (timeout, reset) ends the read: the status has already decided the outcome.
async fn read_bounded(mut response: reqwest::Response, keep: usize) -> Vec<u8> {
    let mut kept = Vec::new();
    let mut read = 0usize;
    while read < MAX_BODY_READ {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                read = read.saturating_add(chunk.len());
                let room = keep.saturating_sub(kept.len()).min(chunk.len());
                kept.extend_from_slice(&chunk[..room]);
            }
            Ok(None) | Err(_) => break,
        }
    }
    kept
}

/// The first [`LOGGED_BODY`] characters of a body (invalid UTF-8 replaced).
fn excerpt(body: &[u8]) -> String {
    String::from_utf8_lossy(body).chars().take(LOGGED_BODY).collect()
}

/// A redirect's `Location` for the reason: credentials redacted, length bounded.
fn location(value: Option<&HeaderValue>) -> String {
    match value.map(HeaderValue::to_str) {
        None => "no Location".to_owned(),
        Some(Err(_)) => "a Location that is not text".to_owned(),
        Some(Ok(text)) => {
            let shown: String = redact_url(text).chars().take(LOGGED_LOCATION).collect();
            format!("Location {shown}")
        }
    }
}

/// A failed request described without the URL reqwest attaches (the caller names the
/// redacted one) and with the chain of causes reqwest's own message leaves out
/// ("connection refused", "timed out", ...).
fn describe(error: reqwest::Error) -> String {
    let error = error.without_url();
    let mut text = error.to_string();
    let mut source = std::error::Error::source(&error);
    // Causes are few; the bound only guards against a pathological chain.
    for _ in 0..8 {
        let Some(cause) = source else { break };
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// What one POST came to.
enum Posted {
    Ok,
    Retry(String, Option<Duration>),
    Reject(String),
}

impl HttpSink {
    /// Builds the sink: one connection-reusing client that never follows redirects (see
    /// the crate docs for how a 3xx is counted).
    pub fn new(settings: HttpSettings) -> Result<Self, HttpError> {
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(settings.timeout)
            .connect_timeout(settings.connect_timeout)
            .pool_idle_timeout(Duration::from_secs(90));
        if let Some(path) = &settings.ca_certificate {
            let err = |reason: String| HttpError::CaCertificate {
                path: path.display().to_string(),
                reason,
            };
            let pem = std::fs::read(path).map_err(|e| err(e.to_string()))?;
            let cert = reqwest::Certificate::from_pem(&pem).map_err(|e| err(e.to_string()))?;
            builder = builder.add_root_certificate(cert);
        }
        Ok(HttpSink { client: builder.build()?, settings })
    }

    /// The settings.
    pub fn settings(&self) -> &HttpSettings {
        &self.settings
    }

    async fn post(&self, encoding: Encoding, payloads: &[&[u8]]) -> Posted {
        let s = &self.settings;
        let raw = body(encoding, payloads);
        let sig = signature(&s.key_name, s.secret.bytes(), &raw);
        let mut request = self
            .client
            .post(&s.url)
            .header(CONTENT_TYPE, "application/json")
            .header(DATE, httpdate::fmt_http_date(SystemTime::now()))
            .header(USER_AGENT, USER_AGENT_VALUE)
            .header("X-Signature", sig);
        let body = if s.gzip {
            let mut gz = GzEncoder::new(Vec::with_capacity(raw.len() / 4), Compression::fast());
            if let Err(e) = gz.write_all(&raw) {
                return Posted::Reject(format!("gzip: {e}"));
            }
            match gz.finish() {
                Ok(b) => {
                    request = request.header(CONTENT_ENCODING, "gzip");
                    b
                }
                Err(e) => return Posted::Reject(format!("gzip: {e}")),
            }
        } else {
            raw
        };
        let response = match request.body(body).send().await {
            Ok(r) => r,
            Err(e) => {
                let reason = format!("request to {} failed: {}", redact_url(&s.url), describe(e));
                return Posted::Retry(reason, None);
            }
        };
        let status = response.status();
        if status.is_success() {
            // Read a short body to its end so the connection can be reused.
            read_bounded(response, 0).await;
            return Posted::Ok;
        }
        if status.is_redirection() {
            let to = location(response.headers().get(LOCATION));
            read_bounded(response, 0).await;
            let reason = format!(
                "HTTP {status}: the collector URL {} answered with a redirection ({to}); \
                 redirects are not followed, configure the final URL",
                redact_url(&s.url)
            );
            tracing::warn!(status = status.as_u16(), %reason, "collector redirected a batch");
            return Posted::Reject(reason);
        }
        let after = retry_after(response.headers().get(RETRY_AFTER));
        let excerpt = excerpt(&read_bounded(response, LOGGED_BODY_BYTES).await);
        let reason = format!("HTTP {status}: {excerpt}");
        let retryable = status.is_server_error()
            || status == StatusCode::REQUEST_TIMEOUT
            || status == StatusCode::TOO_MANY_REQUESTS;
        if retryable {
            Posted::Retry(reason, after)
        } else {
            tracing::warn!(status = status.as_u16(), body = %excerpt, "collector rejected a batch");
            Posted::Reject(reason)
        }
    }
}

#[async_trait]
impl EventSink for HttpSink {
    /// The body format of the settings (`format`), their `max_batch_bytes` and
    /// `max_in_flight`: the pipeline cannot send this collector another format.
    fn profile(&self) -> SinkProfile {
        SinkProfile::new(self.settings.format)
            .max_batch_bytes(self.settings.max_batch_bytes)
            .max_concurrent_exports(self.settings.max_in_flight.max(1))
    }

    async fn export(&self, batch: &Batch) -> ExportOutcome {
        let mut fates = batch.fates(EventFate::Delivered);
        for run in chunks(batch, self.settings.max_batch_bytes) {
            let payloads: Vec<&[u8]> =
                run.iter().map(|&i| batch.events[i].payload.as_slice()).collect();
            let fate = match self.post(batch.encoding, &payloads).await {
                Posted::Ok => continue,
                Posted::Retry(reason, after) => {
                    if let Some(wait) = after {
                        fates.retry_after(wait);
                    }
                    fates.add_reason(reason);
                    EventFate::Retry
                }
                Posted::Reject(reason) => {
                    fates.add_reason(reason);
                    EventFate::Rejected
                }
            };
            for i in run {
                fates.set(i, fate);
            }
        }
        fates.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_in_seconds_or_http_date() {
        assert_eq!(retry_after(Some(&HeaderValue::from_static("7"))), Some(Duration::from_secs(7)));
        let later = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(120));
        let parsed = retry_after(Some(&HeaderValue::from_str(&later).unwrap())).unwrap();
        assert!(
            parsed > Duration::from_secs(100) && parsed <= Duration::from_secs(120),
            "{parsed:?}"
        );
        assert_eq!(retry_after(Some(&HeaderValue::from_static("soon"))), None);
        assert_eq!(retry_after(None), None);
    }

    #[test]
    fn retry_after_is_capped() {
        for text in [
            "18446744073709551615",
            "99999999999999999999999999",
            "301",
            "Fri, 31 Dec 9999 23:59:59 GMT",
        ] {
            let value = HeaderValue::from_str(text).unwrap();
            assert_eq!(retry_after(Some(&value)), Some(MAX_RETRY_AFTER), "{text}");
        }
        assert_eq!(retry_after(Some(&HeaderValue::from_static("300"))), Some(MAX_RETRY_AFTER));
        assert_eq!(
            retry_after(Some(&HeaderValue::from_static("299"))),
            Some(Duration::from_secs(299))
        );
        // A date in the past means "now".
        let past = HeaderValue::from_static("Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(retry_after(Some(&past)), Some(Duration::ZERO));
        assert_eq!(retry_after(Some(&HeaderValue::from_static("-5"))), None);
        assert_eq!(retry_after(Some(&HeaderValue::from_static(""))), None);
    }

    #[test]
    fn locations_are_redacted_and_bounded() {
        let value = HeaderValue::from_static("https://user:hunter2@other.example/v2");
        assert_eq!(location(Some(&value)), "Location https://user:<redacted>@other.example/v2");
        let long = HeaderValue::from_str(&format!("/{}", "a".repeat(10_000))).unwrap();
        assert_eq!(location(Some(&long)).chars().count(), "Location ".len() + LOGGED_LOCATION);
        assert_eq!(location(None), "no Location");
        let binary = HeaderValue::from_bytes(b"/caf\xe9").unwrap();
        assert_eq!(location(Some(&binary)), "a Location that is not text");
    }

    #[test]
    fn bodies_wrap_the_encoded_events() {
        let events: [&[u8]; 2] = [b"{\"a\":1}", b"{\"b\":2}"];
        assert_eq!(body(Encoding::V2, &events), br#"{"1":{"lst":["rec",2,{"a":1},{"b":2}]}}"#);
        assert_eq!(body(Encoding::Json, &events), br#"[{"a":1},{"b":2}]"#);
        assert_eq!(body(Encoding::V2, &[]), br#"{"1":{"lst":["rec",0]}}"#);
    }

    #[test]
    fn a_bad_ca_certificate_is_a_clear_error() {
        let mut s = HttpSettings::new("http://127.0.0.1:1/v2", "k", Secret::new(b"s".to_vec()));
        s.ca_certificate = Some("/nonexistent/ca.pem".into());
        let err = HttpSink::new(s).unwrap_err().to_string();
        assert!(err.contains("/nonexistent/ca.pem"), "{err}");
    }
}
