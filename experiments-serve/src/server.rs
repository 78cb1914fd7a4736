//! The server: the router, its limits and authentication, the operations endpoints, and
//! the accept loop with graceful shutdown.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::header::{
    ACCESS_CONTROL_REQUEST_METHOD, AUTHORIZATION, CONTENT_TYPE, ETAG, HeaderName, IF_NONE_MATCH,
    RETRY_AFTER, WWW_AUTHENTICATE,
};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use experiments_openfeature::ExperimentsProvider;
use experiments_sdk::ExperimentsClient;
use experiments_sdk::events::FlushReport;
use experiments_sdk::watch::Health;
use experiments_tower::ExperimentsLayer;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use serde_json::json;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::metrics::Metrics;
use crate::ofrep::{self, json_response};
use crate::settings::{CorsSettings, ServeSettings};

/// OFREP's API key header.
const X_API_KEY: HeaderName = HeaderName::from_static("x-api-key");

/// The CORS layer for `settings` (validated: every origin is a valid header value).
fn cors_layer(settings: &CorsSettings) -> CorsLayer {
    let origins = if settings.allowed_origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(
            settings.allowed_origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()),
        )
    };
    CorsLayer::new()
        .allow_origin(origins)
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([CONTENT_TYPE, IF_NONE_MATCH, AUTHORIZATION, X_API_KEY])
        .expose_headers([ETAG, RETRY_AFTER])
        .max_age(settings.max_age)
}

/// What every handler shares.
pub(crate) struct Shared {
    pub(crate) client: ExperimentsClient,
    pub(crate) provider: ExperimentsProvider,
    pub(crate) settings: ServeSettings,
    pub(crate) metrics: Metrics,
    /// SHA-256 digests of the accepted API keys and bearer tokens.
    api_keys: Vec<[u8; 32]>,
    bearer_tokens: Vec<[u8; 32]>,
    /// Requests evaluated at once.
    in_flight: Arc<Semaphore>,
    /// Requests answered.
    requests: AtomicU64,
    /// Requests inside the router now (headers read, answer not yet built).
    active: AtomicUsize,
}

/// An OFREP evaluation server over an [`ExperimentsClient`]: build it with
/// [`Server::new`], then [`Server::run`] it on a listener, or mount [`Server::router`] in
/// an application of your own.
#[derive(Clone)]
pub struct Server {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server").field("settings", &self.shared.settings).finish_non_exhaustive()
    }
}

/// What [`Server::run`] did, for the exit status and the last log line.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ServeReport {
    /// HTTP requests answered.
    pub requests: u64,
    /// Whether every in-flight request finished within the shutdown deadline.
    pub drained: bool,
    /// The event pipeline's flush (`None`: events were discarded).
    pub flush: Option<FlushReport>,
}

/// The server could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The settings are invalid.
    #[error(transparent)]
    Settings(#[from] experiments_sdk::SettingsError),
    /// The listener failed.
    #[error("listener: {0}")]
    Io(#[from] std::io::Error),
}

fn digest(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// Whether `candidate` is one of `accepted`, in time independent of which (or whether)
/// one matches: every digest is compared in constant time and none is skipped.
fn one_of(candidate: &str, accepted: &[[u8; 32]]) -> bool {
    let candidate = digest(candidate);
    let mut found = subtle::Choice::from(0);
    for a in accepted {
        found |= a.ct_eq(&candidate);
    }
    found.into()
}

impl Server {
    /// A server for `client` with `settings` (validated here).
    pub fn new(client: ExperimentsClient, settings: ServeSettings) -> Result<Server, ServeError> {
        settings.validate()?;
        let provider = ExperimentsProvider::builder(client.clone())
            .targeting_key_field(settings.targeting_key_field.clone())
            .build();
        let (api_keys, bearer_tokens) = match &settings.auth {
            Some(auth) => (
                auth.api_keys.iter().map(|k| digest(k)).collect(),
                auth.bearer_tokens.iter().map(|t| digest(t)).collect(),
            ),
            None => (Vec::new(), Vec::new()),
        };
        Ok(Server {
            shared: Arc::new(Shared {
                metrics: Metrics::new(settings.metrics_max_flags),
                in_flight: Arc::new(Semaphore::new(settings.max_concurrent_requests)),
                client,
                provider,
                settings,
                api_keys,
                bearer_tokens,
                requests: AtomicU64::new(0),
                active: AtomicUsize::new(0),
            }),
        })
    }

    /// The settings the server runs with.
    pub fn settings(&self) -> &ServeSettings {
        &self.shared.settings
    }

    /// The routes: OFREP (`/ofrep/v1/...`, under the concurrency limit, authenticated when
    /// credentials are set, each request in its own experiments scope) and operations
    /// (`/healthz`, `/readyz`, `/metrics`: never refused for load, so probes keep working),
    /// all under the timeout and the metrics; every answer, errors included, is JSON.
    pub fn router(&self) -> Router {
        let shared = Arc::clone(&self.shared);
        let ofrep = Router::new()
            .route("/ofrep/v1/evaluate/flags/{key}", post(ofrep::evaluate_flag))
            .route("/ofrep/v1/evaluate/flags", post(ofrep::evaluate_bulk))
            .route("/ofrep/v1/configuration", get(ofrep::configuration))
            .layer(ExperimentsLayer::new(shared.client.clone()))
            .route_layer(middleware::from_fn_with_state(Arc::clone(&shared), authenticate))
            .route_layer(middleware::from_fn_with_state(Arc::clone(&shared), limit));
        let app = Router::new()
            .route("/healthz", get(healthz))
            .route("/readyz", get(readyz))
            .route("/metrics", get(metrics))
            .merge(ofrep)
            .fallback(not_found)
            .method_not_allowed_fallback(method_not_allowed);
        // Around the routing (`OPTIONS` is no route's method): preflights are answered before
        // authentication and limits, and refusals carry the headers a browser needs to read
        // them. Inside `observe`, so preflights are counted.
        let app = match &shared.settings.cors {
            Some(cors) => app.layer(cors_layer(cors)),
            None => app,
        };
        app.layer(middleware::from_fn_with_state(Arc::clone(&shared), observe)).with_state(shared)
    }

    /// Serves on `listener` until `shutdown` completes; then stops accepting, lets
    /// in-flight requests finish (closing idle keep-alive connections) within
    /// `shutdown_timeout`, and flushes the client's events within it again.
    pub async fn run(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<ServeReport, ServeError> {
        let settings = &self.shared.settings;
        let app = self.router();
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        let connections = Arc::new(Semaphore::new(settings.max_connections));
        let mut http = hyper::server::conn::http1::Builder::new();
        http.timer(TokioTimer::new()).header_read_timeout(settings.idle_timeout);
        let config_log = tokio::spawn(log_config_changes(self.shared.client.clone()));
        let drops_log = tokio::spawn(log_event_drops(self.shared.client.clone()));
        tokio::pin!(shutdown);
        let mut tasks = tokio::task::JoinSet::new();
        loop {
            // Finished connections are reaped as new ones come, so the set stays bounded by
            // `max_connections`.
            while tasks.try_join_next().is_some() {}
            let permit = tokio::select! {
                permit = Arc::clone(&connections).acquire_owned() => match permit {
                    Ok(permit) => permit,
                    Err(_) => break,
                },
                () = &mut shutdown => break,
            };
            let (stream, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        // Out of file descriptors and the like: wait instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                () = &mut shutdown => break,
            };
            let _ = stream.set_nodelay(true);
            let service = TowerToHyperService::new(app.clone());
            let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
            tasks.spawn(async move {
                if let Err(e) = connection.await {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
                drop(permit);
            });
        }
        drop(listener);
        config_log.abort();
        drops_log.abort();
        tracing::info!("shutting down: finishing in-flight requests");
        // Every connection is told to close after its current request. Done when all have;
        // connections that are only part-way through a request's headers (or silent) hold no
        // request, so once no request has been active for a moment they are closed.
        let drained = tokio::time::timeout(settings.shutdown_timeout, async {
            tokio::select! {
                () = graceful.shutdown() => {}
                () = idle(&self.shared.active) => {}
            }
        })
        .await
        .is_ok();
        tasks.abort_all();
        if !drained {
            tracing::warn!("requests still in flight after {:?}", settings.shutdown_timeout);
        }
        let flush = self.shared.client.shutdown(settings.shutdown_timeout).await;
        Ok(ServeReport { requests: self.shared.requests.load(Ordering::Relaxed), drained, flush })
    }
}

/// Logs every config change the store records: a new version at `info`, a refused document
/// (the last good one kept) at `warn`, each failure once.
async fn log_config_changes(client: ExperimentsClient) {
    let store = client.store().clone();
    let mut changes = store.subscribe();
    let mut served = store.status().version;
    let mut failures = store.status().consecutive_failures;
    while changes.changed().await.is_ok() {
        let status = store.status();
        if status.version != served {
            served = status.version;
            tracing::info!(
                version = status.version,
                digest = status.digest.as_deref().unwrap_or(""),
                source = %status.source,
                "config loaded"
            );
        }
        if status.consecutive_failures > failures {
            tracing::warn!(
                version = status.version,
                error = status.last_error.as_deref().unwrap_or(""),
                source = %status.source,
                "config refused; serving the last good one"
            );
        }
        failures = status.consecutive_failures;
    }
}

/// Every 10 s, logs at `warn` the events the pipeline dropped since the last look, by reason
/// (the counters are also in `/metrics`).
async fn log_event_drops(client: ExperimentsClient) {
    let mut seen = client.status().events.map(|c| c.dropped).unwrap_or_default();
    let mut ticks = tokio::time::interval(Duration::from_secs(10));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        ticks.tick().await;
        let Some(counters) = client.status().events else { return };
        let now = counters.dropped;
        if now.total() > seen.total() {
            tracing::warn!(
                dropped = now.total().saturating_sub(seen.total()),
                queue_full = now.queue_full.saturating_sub(seen.queue_full),
                rejected_by_sink = now.rejected_by_sink.saturating_sub(seen.rejected_by_sink),
                retry_budget_exhausted =
                    now.retry_budget_exhausted.saturating_sub(seen.retry_budget_exhausted),
                too_large = now.too_large.saturating_sub(seen.too_large),
                encode_error = now.encode_error.saturating_sub(seen.encode_error),
                "events dropped in the last interval"
            );
        }
        seen = now;
    }
}

/// Resolves once no request has been active for 100 ms in a row (answers are written
/// within microseconds of leaving the router; a request whose headers are complete enters
/// it at once).
async fn idle(active: &AtomicUsize) {
    let mut quiet = 0;
    while quiet < 5 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        quiet = if active.load(Ordering::SeqCst) == 0 { quiet + 1 } else { 0 };
    }
}

/// The metrics label of a request's route: CORS preflights (`OPTIONS` with
/// `Access-Control-Request-Method`) apart, whatever their path.
fn route_of(request: &Request) -> &'static str {
    if request.method() == Method::OPTIONS
        && request.headers().contains_key(ACCESS_CONTROL_REQUEST_METHOD)
    {
        return "preflight";
    }
    match request.uri().path() {
        "/ofrep/v1/evaluate/flags" => "bulk",
        "/ofrep/v1/configuration" => "configuration",
        "/healthz" => "healthz",
        "/readyz" => "readyz",
        "/metrics" => "metrics",
        p if p.starts_with("/ofrep/v1/evaluate/flags/") => "evaluate",
        _ => "other",
    }
}

/// Counts a request as active while it lives.
struct Active<'a>(&'a AtomicUsize);

impl<'a> Active<'a> {
    fn enter(count: &'a AtomicUsize) -> Self {
        count.fetch_add(1, Ordering::SeqCst);
        Active(count)
    }
}

impl Drop for Active<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Around every request: the request timeout (`408`), the count of active requests (what
/// shutdown waits for), the request metrics and a debug log line.
async fn observe(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = route_of(&request);
    let active = Active::enter(&shared.active);
    let response =
        match tokio::time::timeout(shared.settings.request_timeout, next.run(request)).await {
            Ok(response) => response,
            Err(_) => json_response(
                StatusCode::REQUEST_TIMEOUT,
                &json!({"errorCode": "GENERAL", "errorDetails": "the request took too long"}),
            ),
        };
    drop(active);
    let status = response.status().as_u16();
    shared.requests.fetch_add(1, Ordering::Relaxed);
    shared.metrics.request(route, status, started.elapsed());
    tracing::debug!(route, status, elapsed_us = started.elapsed().as_micros() as u64, "request");
    response
}

/// OFREP routes: at most `max_concurrent_requests` at once, `429` with `Retry-After: 1`
/// beyond (OFREP providers pause on it).
async fn limit(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    match Arc::clone(&shared.in_flight).try_acquire_owned() {
        Ok(_permit) => next.run(request).await,
        Err(_) => {
            let mut response = json_response(
                StatusCode::TOO_MANY_REQUESTS,
                &json!({"errorCode": "GENERAL", "errorDetails": "too many requests in flight"}),
            );
            response.headers_mut().insert("retry-after", HeaderValue::from_static("1"));
            response
        }
    }
}

/// OFREP routes with credentials set: an accepted `X-API-Key` or `Authorization: Bearer`
/// token, else `401`.
async fn authenticate(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    if shared.settings.auth.is_none() {
        return next.run(request).await;
    }
    let headers = request.headers();
    let api_key = headers.get(X_API_KEY).and_then(|v| v.to_str().ok());
    let bearer = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim());
    let ok = api_key.is_some_and(|k| one_of(k, &shared.api_keys))
        | bearer.is_some_and(|t| one_of(t, &shared.bearer_tokens));
    if ok {
        return next.run(request).await;
    }
    tracing::debug!(path = request.uri().path(), "refused: missing or invalid credentials");
    let mut response = json_response(
        StatusCode::UNAUTHORIZED,
        &json!({"errorCode": "GENERAL", "errorDetails": "missing or invalid credentials"}),
    );
    response.headers_mut().insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}

/// `GET /healthz`: the process is up.
async fn healthz() -> Response {
    json_response(StatusCode::OK, &json!({"status": "alive"}))
}

/// `GET /readyz`: `200` while a config snapshot is served (`ready`, or `stale` when the
/// latest check failed and the last good one is kept), `503` before one is loaded; with
/// the version, its age, the dialect and the last error.
async fn readyz(State(shared): State<Arc<Shared>>) -> Response {
    let status = shared.client.status();
    let config = &status.config;
    let (code, health) = match config.health {
        Health::Ready => (StatusCode::OK, "ready"),
        Health::Stale => (StatusCode::OK, "stale"),
        _ => (StatusCode::SERVICE_UNAVAILABLE, "empty"),
    };
    json_response(
        code,
        &json!({
            "status": health,
            "config_version": config.version,
            "config_age_seconds": config.age.map(|a| a.as_secs_f64()),
            "config_digest": config.digest,
            "dialect": status.dialect.map(|d| format!("{d:?}").to_lowercase()),
            "source": config.source,
            "last_error": config.last_error,
        }),
    )
}

/// `GET /metrics`: Prometheus text.
async fn metrics(State(shared): State<Arc<Shared>>) -> Response {
    let text = shared.metrics.render(&shared.client.status());
    let mut response = (StatusCode::OK, text).into_response();
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"));
    response
}

/// A known path with another method: `405` with a JSON body.
async fn method_not_allowed() -> Response {
    json_response(
        StatusCode::METHOD_NOT_ALLOWED,
        &json!({"errorCode": "GENERAL", "errorDetails": "method not allowed on this endpoint"}),
    )
}

/// Anything else: `404` with a JSON body.
async fn not_found() -> Response {
    json_response(
        StatusCode::NOT_FOUND,
        &json!({"errorCode": "GENERAL", "errorDetails": "no such endpoint"}),
    )
}
