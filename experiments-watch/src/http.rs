//! `HttpSource` (feature `http`): a tokio task that polls a URL and offers what it gets to
//! a [`ConfigStore`].
//!
//! Every request is conditional once a document was accepted (`If-None-Match` with its
//! `ETag`, `If-Modified-Since` with its `Last-Modified`), bounded in time as a whole (body
//! included) and in size (the body is read in chunks and abandoned as soon as it passes the
//! limit). Failures back off exponentially, with jitter, up to `max_backoff`.

use std::collections::BTreeMap;
use std::fmt;
use std::hash::BuildHasher as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use reqwest::header::{
    ACCEPT, ETAG, HeaderMap, HeaderName, HeaderValue, IF_MODIFIED_SINCE, IF_NONE_MATCH,
    LAST_MODIFIED,
};
use reqwest::{StatusCode, Url};
use serde::Deserialize;
use tokio::sync::Notify;

use crate::settings::{DEFAULT_MAX_FILE_SIZE, DEFAULT_MAX_JSON_VALUES};
use crate::snapshot::{FailureKind, LoadFailure, Origin};
use crate::source::{ConfigSource, SettingsError, SourceError, SourceGuard};
use crate::store::{ConfigStore, StoreLimits};

/// Default [`HttpSourceSettings::poll_interval`].
pub const DEFAULT_HTTP_POLL_INTERVAL: Duration = Duration::from_secs(10);
/// Default [`HttpSourceSettings::request_timeout`].
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Default [`HttpSourceSettings::connect_timeout`].
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Default [`HttpSourceSettings::max_backoff`].
pub const DEFAULT_MAX_BACKOFF: Duration = Duration::from_secs(300);
/// Redirects followed for one request; one more fails the check.
pub const MAX_REDIRECTS: usize = 3;

/// Shortest accepted poll interval (a smaller one would hammer the server).
const MIN_POLL_INTERVAL: Duration = Duration::from_millis(10);
/// Longest wait actually used for any duration setting: larger ones are honoured as this
/// (a day), which keeps every deadline representable.
const MAX_WAIT: Duration = Duration::from_secs(24 * 3600);
/// Longest `ETag` or `Last-Modified` kept and sent back; longer ones are ignored.
const MAX_VALIDATOR_LEN: usize = 1024;
/// Initial capacity of a body buffer at most (it grows with the chunks up to the limit).
const MAX_INITIAL_BUFFER: u64 = 1 << 20;
/// Longest header name quoted in a settings error.
const MAX_QUOTED_NAME: usize = 64;
const USER_AGENT: &str = concat!("experiments-watch/", env!("CARGO_PKG_VERSION"));

/// Settings of an [`HttpSource`]. Durations in human form (`"10s"`, `"5m"`); only `url` is
/// required.
///
/// ```
/// let s: experiments_watch::HttpSourceSettings = serde_json::from_str(
///     r#"{"url": "https://config.example/experiments.json", "poll_interval": "30s",
///         "headers": {"Authorization": "Bearer secret-token"}}"#).unwrap();
/// assert!(s.validate().is_ok());
/// assert!(!format!("{s:?}").contains("secret-token"));
/// ```
///
/// `Debug` hides header values, the URL's userinfo and its query.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct HttpSourceSettings {
    /// The document's URL, `http` or `https`. Credentials in its userinfo are sent as basic
    /// authentication; status and logs show it redacted.
    pub url: String,
    /// Time between two requests while the server answers (10 s; at least 10 ms).
    #[serde(default = "default_poll_interval", with = "humantime_serde")]
    pub poll_interval: Duration,
    /// Limit on a whole request: connection, redirects, headers and body (10 s).
    #[serde(default = "default_request_timeout", with = "humantime_serde")]
    pub request_timeout: Duration,
    /// Limit on establishing a connection (5 s).
    #[serde(default = "default_connect_timeout", with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// Longest delay between requests after consecutive failures (5 min; at least
    /// `poll_interval`). The delay doubles from `poll_interval` with every failure, with
    /// jitter, and returns to `poll_interval` after a success.
    #[serde(default = "default_max_backoff", with = "humantime_serde")]
    pub max_backoff: Duration,
    /// Largest accepted body, in bytes (10 MiB, like
    /// [`WatchSettings::max_file_size`](crate::WatchSettings::max_file_size)): a larger
    /// `Content-Length` is refused before reading, a body without one is abandoned as soon
    /// as it passes the limit.
    #[serde(default = "default_max_file_size")]
    pub max_file_size: u64,
    /// Largest accepted number of JSON values (1,500,000; see
    /// [`WatchSettings::max_json_values`](crate::WatchSettings::max_json_values)).
    #[serde(default = "default_max_json_values")]
    pub max_json_values: u64,
    /// Extra request headers (name → value), e.g. `Authorization`. Values are marked
    /// sensitive and never shown.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// An extra root certificate (PEM) to trust, besides the built-in roots.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

fn default_poll_interval() -> Duration {
    DEFAULT_HTTP_POLL_INTERVAL
}
fn default_request_timeout() -> Duration {
    DEFAULT_REQUEST_TIMEOUT
}
fn default_connect_timeout() -> Duration {
    DEFAULT_CONNECT_TIMEOUT
}
fn default_max_backoff() -> Duration {
    DEFAULT_MAX_BACKOFF
}
fn default_max_file_size() -> u64 {
    DEFAULT_MAX_FILE_SIZE
}
fn default_max_json_values() -> u64 {
    DEFAULT_MAX_JSON_VALUES
}

impl fmt::Debug for HttpSourceSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Destructured, so a new field cannot be forgotten here.
        let HttpSourceSettings {
            url,
            poll_interval,
            request_timeout,
            connect_timeout,
            max_backoff,
            max_file_size,
            max_json_values,
            headers,
            ca_file,
        } = self;
        let headers: BTreeMap<&str, &str> =
            headers.keys().map(|k| (k.as_str(), "<redacted>")).collect();
        f.debug_struct("HttpSourceSettings")
            .field("url", &redact_url(url))
            .field("poll_interval", poll_interval)
            .field("request_timeout", request_timeout)
            .field("connect_timeout", connect_timeout)
            .field("max_backoff", max_backoff)
            .field("max_file_size", max_file_size)
            .field("max_json_values", max_json_values)
            .field("headers", &headers)
            .field("ca_file", ca_file)
            .finish()
    }
}

/// `url` without secrets: the userinfo (`user:password@`, or a bare token) becomes
/// `<redacted>@`, a query becomes `?<redacted>`, a fragment is dropped. Works on any text
/// (no parsing that could fail).
pub(crate) fn redact_url(url: &str) -> String {
    let url = &url[..url.find('#').unwrap_or(url.len())];
    let (base, query) = match url.find('?') {
        Some(q) => (&url[..q], Some(&url[q + 1..])),
        None => (url, None),
    };
    let start = base.find("://").map_or(0, |i| i + 3);
    let rest = &base[start..];
    let authority = &rest[..rest.find(['/', '\\']).unwrap_or(rest.len())];
    let mut out = match authority.rfind('@') {
        Some(at) => format!("{}<redacted>{}", &base[..start], &base[start + at..]),
        None => base.to_owned(),
    };
    if query.is_some_and(|q| !q.is_empty()) {
        out.push_str("?<redacted>");
    }
    out
}

/// A header name for an error message: bounded, and only printable ASCII shown.
fn quoted_name(name: &str) -> String {
    let shown: String = name
        .chars()
        .take(MAX_QUOTED_NAME)
        .map(|c| if c.is_ascii_graphic() { c } else { '?' })
        .collect();
    format!("`{shown}`")
}

impl HttpSourceSettings {
    /// The URL as status pages and logs show it: credentials in the userinfo and the query
    /// replaced by `<redacted>`, the fragment dropped.
    ///
    /// ```
    /// # use experiments_watch::HttpSourceSettings;
    /// let s = HttpSourceSettings::new("https://user:pw@config.internal/e.json?token=x");
    /// assert_eq!(s.shown_url(), "https://<redacted>@config.internal/e.json?<redacted>");
    /// ```
    pub fn shown_url(&self) -> String {
        redact_url(&self.url)
    }

    /// Default settings for `url`.
    pub fn new(url: impl Into<String>) -> Self {
        HttpSourceSettings {
            url: url.into(),
            poll_interval: DEFAULT_HTTP_POLL_INTERVAL,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            max_backoff: DEFAULT_MAX_BACKOFF,
            max_file_size: DEFAULT_MAX_FILE_SIZE,
            max_json_values: DEFAULT_MAX_JSON_VALUES,
            headers: BTreeMap::new(),
            ca_file: None,
        }
    }

    /// Checks that the settings can work; the error names the first bad field and never
    /// quotes a value (URLs and header values may hold secrets). [`HttpSource`] checks this
    /// when started; the CA file is read only then.
    pub fn validate(&self) -> Result<(), SettingsError> {
        self.parsed_url()?;
        if self.poll_interval < MIN_POLL_INTERVAL {
            return Err(SettingsError::new("poll_interval", "must be at least 10ms"));
        }
        if self.request_timeout.is_zero() {
            return Err(SettingsError::new("request_timeout", "must be more than zero"));
        }
        if self.connect_timeout.is_zero() {
            return Err(SettingsError::new("connect_timeout", "must be more than zero"));
        }
        if self.max_backoff < self.poll_interval {
            return Err(SettingsError::new("max_backoff", "must be at least poll_interval"));
        }
        if self.max_file_size == 0 {
            return Err(SettingsError::new("max_file_size", "must be at least 1 byte"));
        }
        if self.max_json_values == 0 {
            return Err(SettingsError::new("max_json_values", "must be at least 1"));
        }
        self.header_map().map(drop)
    }

    fn parsed_url(&self) -> Result<Url, SettingsError> {
        // The parser's errors describe the problem without quoting the text.
        let url = Url::parse(&self.url)
            .map_err(|e| SettingsError::new("url", format!("not a valid URL: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(SettingsError::new("url", "the scheme must be http or https"));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(SettingsError::new("url", "the URL has no host"));
        }
        Ok(url)
    }

    /// The extra headers, values marked sensitive.
    fn header_map(&self) -> Result<HeaderMap, SettingsError> {
        let mut map = HeaderMap::new();
        for (name, value) in &self.headers {
            let header = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                SettingsError::new(
                    "headers",
                    format!("{} is not a valid header name", quoted_name(name)),
                )
            })?;
            if header == IF_NONE_MATCH || header == IF_MODIFIED_SINCE {
                return Err(SettingsError::new(
                    "headers",
                    format!("{} is set by the source itself", quoted_name(name)),
                ));
            }
            let mut value = HeaderValue::from_str(value).map_err(|_| {
                SettingsError::new(
                    "headers",
                    format!(
                        "the value of {} is not a valid header value (not shown)",
                        quoted_name(name)
                    ),
                )
            })?;
            value.set_sensitive(true);
            map.append(header, value);
        }
        Ok(map)
    }

    fn limits(&self) -> StoreLimits {
        StoreLimits::new(self.max_file_size, self.max_json_values)
    }
}

/// Polls a URL from a tokio task and feeds the store it is started on (feature `http`).
///
/// Start it from within a tokio runtime (else [`SourceError::NoRuntime`]); it returns at
/// once. Each poll sends the accepted document's validators; a `304 Not Modified` is an
/// unchanged check, a `200` body is offered to the store (identical bytes make no new
/// version). Any other status, a network error, a time-out, an oversized or invalid body is
/// recorded as a failure and the last good snapshot stays. At most [`MAX_REDIRECTS`]
/// redirects are followed. [`SourceGuard::reload_now`] polls at once; dropping the guard
/// aborts the task.
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use std::time::Duration;
/// use experiments_watch::{ConfigStore, HttpSource, HttpSourceSettings};
/// let settings = HttpSourceSettings::new("https://config.example/experiments.json");
/// let (store, _guard) = ConfigStore::start(HttpSource(settings))?;
/// let snapshot = store.first_check(Duration::from_secs(10)).await?;
/// println!("serving version {}", snapshot.version);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct HttpSource(pub HttpSourceSettings);

impl ConfigSource for HttpSource {
    fn describe(&self) -> String {
        self.0.shown_url()
    }

    fn limits(&self) -> StoreLimits {
        self.0.limits()
    }

    fn start(self: Box<Self>, store: ConfigStore) -> Result<SourceGuard, SourceError> {
        let settings = self.0;
        settings.validate()?;
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| SourceError::NoRuntime)?;
        let url = settings.parsed_url()?;
        let client = client(&settings)?;
        let control = Arc::new(Control { reload: Notify::new(), stopped: AtomicBool::new(false) });
        let poller = Poller {
            client,
            url,
            shown_url: settings.shown_url(),
            poll_interval: settings.poll_interval.min(MAX_WAIT),
            request_timeout: settings.request_timeout.min(MAX_WAIT),
            connect_timeout: settings.connect_timeout.min(MAX_WAIT),
            max_backoff: settings.max_backoff.min(MAX_WAIT),
            limits: store.limits().tightest(settings.limits()),
            store,
            control: Arc::clone(&control),
        };
        let task = runtime.spawn(poller.run()).abort_handle();
        let reload = Arc::clone(&control);
        let guard = HttpGuard { task, control };
        Ok(SourceGuard::new(guard).with_reload(move || {
            let running = !reload.stopped.load(Ordering::Acquire);
            if running {
                reload.reload.notify_one();
            }
            running
        }))
    }
}

/// The client: redirects limited, the connect time-out, the extra headers and root
/// certificate. (The whole-request time-out wraps every request in [`Poller::poll_once`],
/// body included, so it is one deadline with one message.)
fn client(settings: &HttpSourceSettings) -> Result<reqwest::Client, SourceError> {
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::limited(MAX_REDIRECTS))
        .connect_timeout(settings.connect_timeout.min(MAX_WAIT))
        .user_agent(USER_AGENT)
        .default_headers(settings.header_map()?);
    if let Some(path) = &settings.ca_file {
        let err = |reason: String| SourceError::CaFile { path: path.clone(), reason };
        let pem = std::fs::read(path).map_err(|e| err(e.to_string()))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| err(describe(e)))?;
        if certs.is_empty() {
            return Err(err("no PEM certificate in the file".to_owned()));
        }
        for cert in certs {
            builder = builder.add_root_certificate(cert);
        }
    }
    builder.build().map_err(|e| SourceError::Client(describe(e)))
}

/// A reqwest error without the URL reqwest attaches (the caller names the redacted one)
/// and with the chain of causes its own message leaves out ("connection refused"...).
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

/// Shared by the task and its guard.
struct Control {
    /// [`SourceGuard::reload_now`]: poll at once.
    reload: Notify,
    /// Set when the guard is dropped: nothing more is written to the store.
    stopped: AtomicBool,
}

/// Stops the task when dropped.
struct HttpGuard {
    task: tokio::task::AbortHandle,
    control: Arc<Control>,
}

impl Drop for HttpGuard {
    fn drop(&mut self) {
        self.control.stopped.store(true, Ordering::Release);
        self.task.abort();
    }
}

/// The validators of the accepted document, sent back on the next request.
#[derive(Default)]
struct Validators {
    etag: Option<String>,
    last_modified: Option<String>,
}

impl Validators {
    fn any(&self) -> bool {
        self.etag.is_some() || self.last_modified.is_some()
    }
}

/// What one request brought.
enum Fetched {
    NotModified,
    Document { body: Vec<u8>, etag: Option<String>, last_modified: Option<String> },
}

struct Poller {
    client: reqwest::Client,
    url: Url,
    shown_url: String,
    poll_interval: Duration,
    request_timeout: Duration,
    connect_timeout: Duration,
    max_backoff: Duration,
    limits: StoreLimits,
    store: ConfigStore,
    control: Arc<Control>,
}

impl Poller {
    async fn run(self) {
        let mut validators = Validators::default();
        let mut failures: u32 = 0;
        let mut jitter = Jitter::new();
        loop {
            let good = self.poll_once(&mut validators).await;
            failures = if good { 0 } else { failures.saturating_add(1) };
            let delay = backoff(self.poll_interval, self.max_backoff, failures, &mut jitter);
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                () = self.control.reload.notified() => {}
            }
        }
    }

    fn stopped(&self) -> bool {
        self.control.stopped.load(Ordering::Acquire)
    }

    fn record_failure(&self, failure: LoadFailure) {
        if !self.stopped() {
            self.store.record_failure(failure);
        }
    }

    /// One request and its outcome recorded in the store; whether it was good.
    async fn poll_once(&self, validators: &mut Validators) -> bool {
        let fetched = tokio::time::timeout(self.request_timeout, self.fetch(validators))
            .await
            .unwrap_or_else(|_| Err(self.timed_out()));
        let (body, etag, last_modified) = match fetched {
            Err(failure) => {
                self.record_failure(failure);
                return false;
            }
            Ok(Fetched::NotModified) => {
                if !self.stopped() {
                    self.store.record_unchanged();
                }
                return true;
            }
            Ok(Fetched::Document { body, etag, last_modified }) => (body, etag, last_modified),
        };
        let origin = Origin::http(self.shown_url.clone(), etag.clone(), last_modified.clone());
        let (store, control, limits) = (self.store.clone(), Arc::clone(&self.control), self.limits);
        // Parsing a large document is CPU work: off the runtime's workers.
        let offered = tokio::task::spawn_blocking(move || {
            (!control.stopped.load(Ordering::Acquire))
                .then(|| store.offer_bytes_within(&body, origin, limits))
        })
        .await;
        match offered {
            Ok(Some(Ok(_))) => {
                // Accepted (new, or the bytes already served): its validators from now on.
                *validators = Validators { etag, last_modified };
                true
            }
            // Refused: recorded by the store; the accepted document's validators stay, so
            // the next poll fetches the document again instead of being told "unchanged".
            Ok(Some(Err(_))) | Ok(None) => false,
            Err(e) => {
                self.record_failure(LoadFailure::new(
                    FailureKind::Other,
                    format!("{}: loading the document failed: {e}", self.shown_url),
                ));
                false
            }
        }
    }

    fn timed_out(&self) -> LoadFailure {
        LoadFailure::new(
            FailureKind::Timeout,
            format!(
                "{}: no complete answer within {:?} (request_timeout)",
                self.shown_url, self.request_timeout
            ),
        )
    }

    fn network(&self, error: reqwest::Error) -> LoadFailure {
        match (error.is_timeout(), error.is_connect()) {
            (true, true) => LoadFailure::new(
                FailureKind::Timeout,
                format!(
                    "{}: no connection within {:?} (connect_timeout)",
                    self.shown_url, self.connect_timeout
                ),
            ),
            (true, false) => self.timed_out(),
            (false, _) => LoadFailure::new(
                FailureKind::Network,
                format!("{}: {}", self.shown_url, describe(error)),
            ),
        }
    }

    fn too_large(&self, what: String) -> LoadFailure {
        LoadFailure::new(
            FailureKind::TooLarge,
            format!(
                "{}: the document is {what}, over the limit of {} bytes",
                self.shown_url, self.limits.max_size
            ),
        )
    }

    async fn fetch(&self, validators: &Validators) -> Result<Fetched, LoadFailure> {
        let mut request = self
            .client
            .get(self.url.clone())
            .header(ACCEPT, HeaderValue::from_static("application/json"));
        let conditional =
            [(IF_NONE_MATCH, &validators.etag), (IF_MODIFIED_SINCE, &validators.last_modified)];
        for (name, value) in conditional {
            if let Some(value) = value.as_deref().and_then(|v| HeaderValue::from_str(v).ok()) {
                request = request.header(name, value);
            }
        }
        let mut response = request.send().await.map_err(|e| self.network(e))?;
        let status = response.status();
        if status == StatusCode::NOT_MODIFIED {
            if validators.any() {
                return Ok(Fetched::NotModified);
            }
            return Err(LoadFailure::new(
                FailureKind::Status(status.as_u16()),
                format!("{}: HTTP {status} to a request that was not conditional", self.shown_url),
            ));
        }
        if status != StatusCode::OK {
            return Err(LoadFailure::new(
                FailureKind::Status(status.as_u16()),
                format!("{}: HTTP {status}", self.shown_url),
            ));
        }
        let limit = self.limits.max_size;
        let announced = response.content_length();
        if let Some(len) = announced.filter(|&len| len > limit) {
            return Err(self.too_large(format!("{len} bytes (Content-Length)")));
        }
        let etag = validator(response.headers(), &ETAG);
        let last_modified = validator(response.headers(), &LAST_MODIFIED);
        let initial = announced.unwrap_or(0).min(limit).min(MAX_INITIAL_BUFFER);
        let mut body = Vec::with_capacity(usize::try_from(initial).unwrap_or(0));
        while let Some(chunk) = response.chunk().await.map_err(|e| self.network(e))? {
            let len = u64::try_from(body.len().saturating_add(chunk.len())).unwrap_or(u64::MAX);
            if len > limit {
                return Err(self.too_large(format!("more than {limit} bytes")));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Fetched::Document { body, etag, last_modified })
    }
}

/// A validator header's text, when it is visible ASCII of a sane length.
fn validator(headers: &HeaderMap, name: &HeaderName) -> Option<String> {
    let text = headers.get(name)?.to_str().ok()?;
    (!text.is_empty() && text.len() <= MAX_VALIDATOR_LEN).then(|| text.to_owned())
}

/// The delay before the next request after `failures` consecutive failures: `poll` when
/// healthy; then a ceiling doubling from `poll` (1 failure: `poll`, 2: `2 × poll`...) capped
/// at `max`, and a delay drawn uniformly between half the ceiling (never under `poll`) and
/// the ceiling, so clients that failed together do not retry together.
fn backoff(poll: Duration, max: Duration, failures: u32, jitter: &mut Jitter) -> Duration {
    if failures == 0 {
        return poll;
    }
    let doublings = failures.saturating_sub(1).min(31);
    let ceiling = poll.saturating_mul(1u32 << doublings).min(max.max(poll));
    let floor = (ceiling / 2).max(poll).min(ceiling);
    let span = u64::try_from((ceiling - floor).as_nanos()).unwrap_or(u64::MAX);
    let extra = if span == 0 { 0 } else { jitter.next() % span.saturating_add(1) };
    floor.saturating_add(Duration::from_nanos(extra))
}

/// xorshift64* seeded from the process's random hash keys and the clock: enough to spread
/// retries, no dependency.
struct Jitter(u64);

impl Jitter {
    fn new() -> Jitter {
        let seed = std::collections::hash_map::RandomState::new().hash_one(SystemTime::now());
        Jitter(seed | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_their_secrets_only() {
        for (url, shown) in [
            ("https://h/config.json", "https://h/config.json"),
            ("http://user:pw@h/x", "http://<redacted>@h/x"),
            ("https://token@h:8443/", "https://<redacted>@h:8443/"),
            ("http://u:p@ss@h/", "http://<redacted>@h/"),
            ("https://h/x?token=abc&b=2", "https://h/x?<redacted>"),
            ("https://h/x?", "https://h/x"),
            ("https://h/x#frag?x", "https://h/x"),
            ("http://h/a@b", "http://h/a@b"),
            ("http://u:p@h?q=a@b", "http://<redacted>@h?<redacted>"),
            ("", ""),
            ("://", "://"),
            ("http://é@ü/ö?ä", "http://<redacted>@ü/ö?<redacted>"),
        ] {
            assert_eq!(redact_url(url), shown, "{url}");
        }
    }

    #[test]
    fn backoff_doubles_with_jitter_up_to_the_maximum() {
        let poll = Duration::from_millis(100);
        let max = Duration::from_secs(2);
        let mut jitter = Jitter::new();
        assert_eq!(backoff(poll, max, 0, &mut jitter), poll);
        assert_eq!(backoff(poll, max, 1, &mut jitter), poll);
        let mut seen_below_ceiling = false;
        for _ in 0..200 {
            let d = backoff(poll, max, 3, &mut jitter);
            assert!(d >= Duration::from_millis(200) && d <= Duration::from_millis(400), "{d:?}");
            seen_below_ceiling |= d < Duration::from_millis(390);
            let d = backoff(poll, max, u32::MAX, &mut jitter);
            assert!(d >= Duration::from_secs(1) && d <= max, "{d:?}");
        }
        assert!(seen_below_ceiling, "jitter spreads the delays");
        // Extreme settings do not overflow.
        let d = backoff(MAX_WAIT, MAX_WAIT, u32::MAX, &mut jitter);
        assert!(d <= MAX_WAIT);
        assert_eq!(backoff(poll, Duration::ZERO, 5, &mut jitter), poll);
    }

    #[test]
    fn validators_are_visible_ascii_of_sane_length() {
        let mut h = HeaderMap::new();
        h.insert(ETAG, HeaderValue::from_static("\"v1\""));
        assert_eq!(validator(&h, &ETAG).as_deref(), Some("\"v1\""));
        h.insert(ETAG, HeaderValue::from_bytes(b"\"caf\xc3\xa9\"").unwrap());
        assert_eq!(validator(&h, &ETAG), None);
        h.insert(ETAG, HeaderValue::from_str(&"a".repeat(MAX_VALIDATOR_LEN + 1)).unwrap());
        assert_eq!(validator(&h, &ETAG), None);
        assert_eq!(validator(&h, &LAST_MODIFIED), None);
    }
}
