//! The client a service holds: one config store fed by a source, one event pipeline feeding
//! a sink, and the per-request objects handed out from them (baseplate's
//! `ExperimentsContextFactory.make_object_for_context`).

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use experiments_core::{
    BucketingEvent, Config, EvalError, Event, EventHandler, Inputs, NoTrace, Observer, RequestScope,
};
use experiments_events::{
    Counters, EventSink, FlushReport, Pipeline, PipelineError, PipelineHandle, PipelineSettings,
};
use experiments_watch::{
    ConfigSource, ConfigStore, Dialect, FileSource, FixedSource, NotReady, Snapshot, SourceError,
    SourceGuard, StoreStatus,
};
use serde::Serialize;

use crate::correlation::CorrelationId;
use crate::decider_request::{DeciderRequest, SwallowedErrors};
use crate::settings::{
    ConfigSettings, DEFAULT_STARTUP_TIMEOUT, Settings, SettingsError, SinkSettings, SourceSettings,
    Startup,
};

/// The client could not start. Every variant says what to fix.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The settings document is unusable.
    #[error("experiments settings: {0}")]
    Settings(#[from] SettingsError),
    /// No config source was given to the builder.
    #[error("no experiments config source: give settings, a source or a fixed config")]
    NoConfigSource,
    /// The config source could not start.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// No config was loaded as the start-up policy requires (`wait`, `fail_fast`).
    #[error(transparent)]
    NotReady(#[from] NotReady),
    /// The sink could not be built (bad URL, certificate, Kafka properties, ...).
    #[error("experiments event sink `{kind}`: {reason}")]
    Sink {
        /// `http`, `kafka`, ...
        kind: &'static str,
        /// Why.
        reason: String,
    },
    /// The event pipeline could not start (settings out of range or contradicting the
    /// sink, no tokio runtime).
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
}

/// What the client is running on, for health checks, admin pages and metrics.
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct ClientStatus {
    /// The config store: source, version, age, last error, health.
    pub config: StoreStatus,
    /// The dialect of the config served (`None` while none is).
    pub dialect: Option<Dialect>,
    /// The pipeline's accounting (`None`: events are discarded).
    pub events: Option<Counters>,
    /// The start-up policy the client was built with.
    pub startup: Startup,
    /// Errors decider requests swallowed so far (each returned the wrapper's fallback).
    pub decider_errors: u64,
}

/// Where the builder gets events from.
enum SinkChoice {
    Settings(SinkSettings),
    Custom(Box<dyn EventSink>),
}

/// Builds an [`ExperimentsClient`] piece by piece: a settings document, or any config
/// source, sink and pipeline settings — the seams for custom sources and sinks.
///
/// ```no_run
/// # async fn demo() -> Result<(), experiments_sdk::ClientError> {
/// use std::time::Duration;
/// use experiments_sdk::{ExperimentsClient, Startup, events::StdoutSink, watch::FileSource};
/// use experiments_sdk::watch::WatchSettings;
///
/// let client = ExperimentsClient::builder()
///     .config_source(FileSource(WatchSettings::for_path("/var/local/experiments.json")))
///     .startup(Startup::FailFast, Duration::from_secs(5))
///     .sink(StdoutSink::stdout())
///     .build()
///     .await?;
/// # let _ = client; Ok(()) }
/// ```
pub struct ClientBuilder {
    source: Option<Box<dyn ConfigSource>>,
    dialect: Option<Dialect>,
    startup: Startup,
    timeout: Duration,
    events: PipelineSettings,
    sink: Option<SinkChoice>,
}

impl std::fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("source", &self.source.as_ref().map(|s| s.describe()))
            .field("startup", &self.startup)
            .field("timeout", &self.timeout)
            .field("events", &self.events)
            .finish_non_exhaustive()
    }
}

impl Default for ClientBuilder {
    fn default() -> Self {
        ClientBuilder {
            source: None,
            dialect: None,
            startup: Startup::default(),
            timeout: DEFAULT_STARTUP_TIMEOUT,
            events: PipelineSettings::default(),
            sink: None,
        }
    }
}

impl ClientBuilder {
    /// Everything from a settings document: source, start-up policy, pipeline and sink.
    #[must_use]
    pub fn settings(self, settings: Settings) -> Self {
        let Settings { config, events, sink, .. } = settings;
        let mut b = self.config_settings(config);
        b.events = events;
        b.sink = Some(SinkChoice::Settings(sink));
        b
    }

    /// The config source and start-up policy of a settings document's `config`.
    #[must_use]
    pub fn config_settings(mut self, config: ConfigSettings) -> Self {
        self.dialect = config.dialect;
        self.startup = config.startup;
        self.timeout = config.timeout;
        self.source = Some(match config.source {
            SourceSettings::File(watch) => Box::new(FileSource(watch)),
            #[cfg(feature = "http-config")]
            SourceSettings::Http(http) => Box::new(experiments_watch::HttpSource(http)),
        });
        self
    }

    /// Any config source (a custom one is one [`ConfigSource`] impl).
    #[must_use]
    pub fn config_source(mut self, source: impl ConfigSource) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    /// A fixed config (tests, embedded defaults).
    #[must_use]
    pub fn config(self, config: Config) -> Self {
        self.config_source(FixedSource(config))
    }

    /// The config's dialect (`None`, the default: detected from each document).
    #[must_use]
    pub fn dialect(mut self, dialect: Option<Dialect>) -> Self {
        self.dialect = dialect;
        self
    }

    /// What start-up does while no config is loaded, and how long it waits.
    #[must_use]
    pub fn startup(mut self, startup: Startup, timeout: Duration) -> Self {
        self.startup = startup;
        self.timeout = timeout;
        self
    }

    /// The pipeline settings (the encoding and batch limits come from the sink).
    #[must_use]
    pub fn events(mut self, events: PipelineSettings) -> Self {
        self.events = events;
        self
    }

    /// Any sink (a custom one is one [`EventSink`] impl).
    #[must_use]
    pub fn sink(mut self, sink: impl EventSink) -> Self {
        self.sink = Some(SinkChoice::Custom(Box::new(sink)));
        self
    }

    /// A sink described as in a settings document.
    #[must_use]
    pub fn sink_settings(mut self, sink: SinkSettings) -> Self {
        self.sink = Some(SinkChoice::Settings(sink));
        self
    }

    /// Starts the sink, the pipeline and the source, then applies the start-up policy.
    /// Waiting never blocks a thread: await it on the runtime that will run the pipeline.
    pub async fn build(self) -> Result<ExperimentsClient, ClientError> {
        let source = self.source.ok_or(ClientError::NoConfigSource)?;
        let sink = match self.sink.unwrap_or(SinkChoice::Settings(SinkSettings::default())) {
            SinkChoice::Custom(sink) => Some(sink),
            SinkChoice::Settings(settings) => build_sink(settings).await?,
        };
        let pipeline = match sink {
            Some(sink) => Some(Pipeline::start(self.events, sink)?),
            None => None,
        };
        let limits = source.limits().with_dialect(self.dialect);
        let store = ConfigStore::with_limits(source.describe(), limits);
        let guard = source.start(store.clone())?;
        match self.startup {
            Startup::Wait => {
                store.ready(self.timeout).await?;
            }
            Startup::FailFast => {
                store.first_check(self.timeout).await?;
            }
            Startup::Empty => {
                if store.snapshot().is_none() {
                    tracing::warn!(
                        source = store.description(),
                        "experiments client starting without a config (startup = empty): \
                         every variant is None until the source loads one"
                    );
                }
            }
        }
        Ok(ExperimentsClient {
            inner: Arc::new(Inner {
                store,
                source: guard,
                pipeline,
                empty: Arc::new(Config::default()),
                startup: self.startup,
                decider_errors: Arc::default(),
            }),
        })
    }
}

/// Builds the sink a settings document names (`None`: events are discarded).
async fn build_sink(settings: SinkSettings) -> Result<Option<Box<dyn EventSink>>, ClientError> {
    #[cfg(any(feature = "http", feature = "kafka"))]
    let kind = settings.kind();
    #[cfg(any(feature = "http", feature = "kafka"))]
    let failed = |reason: String| ClientError::Sink { kind, reason };
    Ok(match settings {
        SinkSettings::None => None,
        #[cfg(feature = "stdout")]
        SinkSettings::Stdout { encoding } => {
            Some(Box::new(experiments_events::StdoutSink::stdout().encoding(encoding)))
        }
        #[cfg(not(feature = "stdout"))]
        SinkSettings::Stdout { .. } => {
            return Err(ClientError::Sink {
                kind: "stdout",
                reason: "needs the `stdout` feature of experiments-sdk".into(),
            });
        }
        #[cfg(feature = "http")]
        SinkSettings::Http(http) => Some(Box::new(
            experiments_http::HttpSink::new(http).map_err(|e| failed(e.to_string()))?,
        )),
        #[cfg(feature = "kafka")]
        SinkSettings::Kafka(kafka) => Some(Box::new(
            experiments_kafka::KafkaSink::new(kafka).await.map_err(|e| failed(e.to_string()))?,
        )),
    })
}

struct Inner {
    store: ConfigStore,
    /// Stops the source when the last clone of the client goes away.
    source: SourceGuard,
    pipeline: Option<Pipeline>,
    /// Stands in while no config is loaded (`startup = empty`).
    empty: Arc<Config>,
    startup: Startup,
    decider_errors: Arc<SwallowedErrors>,
}

/// The experiments client of a service: one per process, cheap to clone (`Arc` inside) and
/// to share between threads and tasks. Build it from a settings document
/// ([`ExperimentsClient::from_settings_file`]) or piece by piece
/// ([`ExperimentsClient::builder`]); hand each request a [`RequestExperiments`]
/// ([`ExperimentsClient::request`]); call [`ExperimentsClient::shutdown`] at exit so
/// queued events are delivered.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use std::time::Duration;
/// use experiments_sdk::{ExperimentsClient, Inputs};
///
/// let client = ExperimentsClient::from_settings_file("/etc/my-service/experiments.json").await?;
/// // In a request handler:
/// let exp = client.request();
/// let inputs = Inputs::new().with("user_id", "t2_abc").with("logged_in", true);
/// let variant = exp.variant("checkout_redesign", &inputs)?;
/// let other = exp.variant("feed_ranking", &inputs)?; // both borrow `exp` immutably
/// if variant == Some("one_page") {
///     exp.expose("checkout_redesign", variant, &inputs);
/// }
/// # let _ = other;
/// // At exit:
/// client.shutdown(Duration::from_secs(5)).await;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct ExperimentsClient {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for ExperimentsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExperimentsClient")
            .field("source", &self.inner.store.description())
            .field("pipeline", &self.inner.pipeline)
            .finish_non_exhaustive()
    }
}

impl ExperimentsClient {
    /// A builder: pick the source, sink and settings, then `build().await`.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }

    /// The client a settings document describes. Must run inside a tokio runtime.
    pub async fn from_settings(settings: Settings) -> Result<Self, ClientError> {
        ClientBuilder::default().settings(settings).build().await
    }

    /// The client the settings file at `path` describes (relative paths in it are resolved
    /// against its directory; see [`Settings::from_file`]).
    pub async fn from_settings_file(
        path: impl AsRef<std::path::Path>,
    ) -> Result<Self, ClientError> {
        ExperimentsClient::from_settings(Settings::from_file(path)?).await
    }

    /// The per-request object for a request starting now, without a correlation id.
    pub fn request(&self) -> RequestExperiments {
        self.request_builder().start()
    }

    /// A per-request object with options (correlation id, time).
    pub fn request_builder(&self) -> RequestBuilder<'_> {
        RequestBuilder { client: self, correlation_id: None, now: None }
    }

    /// The config snapshot served now (`None` while nothing is loaded).
    pub fn snapshot(&self) -> Option<Arc<Snapshot>> {
        self.inner.store.snapshot()
    }

    /// The config store (status, change notifications, custom feeding).
    pub fn store(&self) -> &ConfigStore {
        &self.inner.store
    }

    /// The event pipeline, when events are sent somewhere.
    pub fn pipeline(&self) -> Option<&Pipeline> {
        self.inner.pipeline.as_ref()
    }

    /// Asks the config source to check now (a file re-read, an HTTP request) instead of at
    /// its next poll; returns whether the request reached the source. Does not wait.
    pub fn reload_now(&self) -> bool {
        self.inner.source.reload_now()
    }

    /// Config health and event accounting now.
    pub fn status(&self) -> ClientStatus {
        ClientStatus {
            config: self.inner.store.status(),
            dialect: self.inner.store.with_snapshot(|s| s.dialect),
            events: self.inner.pipeline.as_ref().map(Pipeline::counters),
            startup: self.inner.startup,
            decider_errors: self.inner.decider_errors.count(),
        }
    }

    /// The `reddit_decider.Decider` of an ongoing request: bound to `request`'s snapshot
    /// (not the one served now) and carrying its correlation id, for code that serves the
    /// same request in the decider dialect (an OpenFeature provider inside the tower layer).
    pub fn decider_request_in(
        &self,
        request: &RequestExperiments,
        ctx: experiments_decider::WrapperContext,
    ) -> DeciderRequest {
        DeciderRequest::new(
            request.snapshot().cloned(),
            ctx,
            self.inner.pipeline.clone(),
            request.correlation_id(),
            Arc::clone(&self.inner.decider_errors),
        )
    }

    /// The per-request `reddit_decider.Decider` for a request starting now, in the
    /// reddit-decider dialect: bound to the snapshot served now, its exposures sent through
    /// the client's pipeline. With a correlation id (from [`CorrelationId`]), its v2 events
    /// carry it when it is a UUID.
    pub fn decider_request(
        &self,
        ctx: experiments_decider::WrapperContext,
        correlation_id: Option<&CorrelationId>,
    ) -> DeciderRequest {
        DeciderRequest::new(
            self.inner.store.snapshot(),
            ctx,
            self.inner.pipeline.clone(),
            correlation_id.map(CorrelationId::as_str),
            Arc::clone(&self.inner.decider_errors),
        )
    }

    /// Delivers pending events (until `timeout`) and stops the pipeline. The client keeps
    /// deciding variants; later events are counted as dropped (`closed`).
    pub async fn shutdown(&self, timeout: Duration) -> Option<FlushReport> {
        match &self.inner.pipeline {
            Some(p) => Some(p.shutdown(timeout).await),
            None => None,
        }
    }
}

/// Options of one request's experiments object: [`ExperimentsClient::request_builder`].
#[derive(Debug)]
#[must_use = "call `start()` to get the per-request object"]
pub struct RequestBuilder<'c> {
    client: &'c ExperimentsClient,
    correlation_id: Option<CorrelationId>,
    now: Option<f64>,
}

impl RequestBuilder<'_> {
    /// The id every event of the request carries (see [`CorrelationId`]).
    pub fn correlation_id(mut self, id: CorrelationId) -> Self {
        self.correlation_id = Some(id);
        self
    }

    /// Evaluate as of `now` (seconds since the epoch) instead of the current time.
    pub fn now(mut self, now: f64) -> Self {
        self.now = Some(now);
        self
    }

    /// The per-request object, bound to the config snapshot served now.
    pub fn start(self) -> RequestExperiments {
        let inner = &self.client.inner;
        let correlation_id = self.correlation_id.map(CorrelationId::into_shared);
        let sink = match &inner.pipeline {
            Some(p) => RequestSink::Pipeline(p.sink(correlation_id.clone())),
            None => RequestSink::Discard,
        };
        let snapshot = match inner.store.snapshot() {
            Some(s) => Held::Snapshot(s),
            // Like baseplate, an unavailable config behaves as an empty one.
            None => Held::Empty(Arc::clone(&inner.empty)),
        };
        RequestExperiments {
            snapshot,
            state: Mutex::new(RequestState {
                scope: RequestScope::new(self.now.unwrap_or_else(epoch_now)),
                sink,
            }),
            correlation_id,
        }
    }
}

fn epoch_now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

/// The config a request holds: a served snapshot, or the empty config while none is.
enum Held {
    Snapshot(Arc<Snapshot>),
    Empty(Arc<Config>),
}

/// Where a request's events go.
enum RequestSink {
    Pipeline(PipelineHandle),
    Discard,
}

impl EventHandler for RequestSink {
    fn log(&mut self, event: &Event<'_>) {
        if let RequestSink::Pipeline(p) = self {
            p.log(event);
        }
    }
}

/// What a request changes as it goes: its bucketing-event dedupe and its event handle.
struct RequestState {
    scope: RequestScope,
    sink: RequestSink,
}

/// Experiments for one request: bound to the config snapshot current when the request
/// started, with its own bucketing-event dedupe (baseplate's per-request `Experiments`).
///
/// Every method takes `&self`: results borrow the request's snapshot, not the object, so
/// several `variant` calls and an `expose` combine freely, and the object can be shared
/// (`Send + Sync`; e.g. in an `Arc` in request extensions). Baseplate's semantics are kept
/// exactly: the first bucketing of each experiment/user/variant in the request logs one
/// `choose` event, `expose` logs with any variant.
pub struct RequestExperiments {
    snapshot: Held,
    state: Mutex<RequestState>,
    correlation_id: Option<Arc<str>>,
}

impl std::fmt::Debug for RequestExperiments {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestExperiments")
            .field("version", &self.version())
            .field("now", &self.now())
            .field("correlation_id", &self.correlation_id)
            .finish_non_exhaustive()
    }
}

tokio::task_local! {
    /// The request a task is serving, set by [`RequestExperiments::scope`].
    static CURRENT: Arc<RequestExperiments>;
}

impl RequestExperiments {
    /// Runs `fut` with this object as the task's current request: code inside it that has no
    /// handle on the request (an OpenFeature provider, a library) finds it with
    /// [`RequestExperiments::current`] and shares its dedupe, snapshot and correlation id —
    /// the role of OpenFeature's transaction context. The tower layer does this for every
    /// request it serves.
    pub async fn scope<F: std::future::Future>(self: Arc<Self>, fut: F) -> F::Output {
        CURRENT.scope(self, fut).await
    }

    /// The request of the running task's [`RequestExperiments::scope`], if any.
    pub fn current() -> Option<Arc<RequestExperiments>> {
        CURRENT.try_with(Arc::clone).ok()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, RequestState> {
        // The state is consistent after any panic (the engine never panics anyway).
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The config of this request.
    pub fn config(&self) -> &Config {
        match &self.snapshot {
            Held::Snapshot(s) => &s.config,
            Held::Empty(c) => c,
        }
    }

    /// The config snapshot of this request (`None`: no config was loaded); with a decider
    /// document, [`Snapshot::decider`] holds its manifest.
    pub fn snapshot(&self) -> Option<&Arc<Snapshot>> {
        match &self.snapshot {
            Held::Snapshot(s) => Some(s),
            Held::Empty(_) => None,
        }
    }

    /// The config version of this request (`None`: no config was loaded).
    pub fn version(&self) -> Option<u64> {
        match &self.snapshot {
            Held::Snapshot(s) => Some(s.version),
            Held::Empty(_) => None,
        }
    }

    /// The instant the request is evaluated at (seconds since the epoch).
    pub fn now(&self) -> f64 {
        self.state().scope.now()
    }

    /// The correlation id its events carry.
    pub fn correlation_id(&self) -> Option<&str> {
        self.correlation_id.as_deref()
    }

    /// Which variant of `experiment` the inputs get (`None`: not bucketed, unknown or
    /// invalid experiment); logs a `choose` event the first time this request buckets this
    /// user into it (see [`experiments_core::Experiments::variant`]).
    pub fn variant(&self, experiment: &str, inputs: &Inputs) -> Result<Option<&str>, EvalError> {
        self.variant_traced(experiment, inputs, None, &mut NoTrace).map(|(v, _)| v)
    }

    /// [`RequestExperiments::variant`] that logs the bucketing event when
    /// `log_bucketing_event` is true and never when false, whatever the experiment says
    /// (baseplate's `bucketing_event_override`).
    pub fn variant_with_bucketing_event(
        &self,
        experiment: &str,
        inputs: &Inputs,
        log_bucketing_event: bool,
    ) -> Result<Option<&str>, EvalError> {
        self.variant_traced(experiment, inputs, Some(log_bucketing_event), &mut NoTrace)
            .map(|(v, _)| v)
    }

    /// The variant with every decision step reported to `obs` (an
    /// [`Explanation`](experiments_core::Explanation) records them), and the bucketing event
    /// decision. `bucketing_event_override` as in
    /// [`RequestExperiments::variant_with_bucketing_event`].
    pub fn variant_traced<O: Observer>(
        &self,
        experiment: &str,
        inputs: &Inputs,
        bucketing_event_override: Option<bool>,
        obs: &mut O,
    ) -> Result<(Option<&str>, Option<BucketingEvent>), EvalError> {
        let config = self.config();
        let mut state = self.state();
        let RequestState { scope, sink } = &mut *state;
        scope.variant_traced(config, sink, experiment, inputs, bucketing_event_override, obs)
    }

    /// Logs an `expose` event for `variant` (any name, or none); returns whether the
    /// experiment exists (and so logged).
    pub fn expose(&self, experiment: &str, variant: Option<&str>, inputs: &Inputs) -> bool {
        let config = self.config();
        let mut state = self.state();
        let RequestState { scope, sink } = &mut *state;
        scope.expose(config, sink, experiment, variant, inputs)
    }

    /// Every experiment name of the snapshot, in file order.
    pub fn names(&self) -> impl ExactSizeIterator<Item = &str> {
        self.config().names()
    }

    /// Whether `experiment` is a valid experiment at the request's instant.
    pub fn is_valid(&self, experiment: &str) -> bool {
        self.config().is_valid(experiment, self.now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn client_and_requests_are_shareable() {
        assert_send_sync::<ExperimentsClient>();
        assert_send_sync::<RequestExperiments>();
    }
}
