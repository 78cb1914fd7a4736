//! The everyday entry point: a client built from settings that hands out per-request
//! objects bound to the current config snapshot and the event pipeline (baseplate's
//! `ExperimentsContextFactory.make_object_for_context`).

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use experiments_core::{
    BucketingEvent, Config, EvalError, Event, EventHandler, Inputs, Observer, RequestScope,
};
#[cfg(feature = "watch")]
use experiments_events::EventSink;
use experiments_events::{FlushReport, Pipeline, PipelineError, PipelineHandle, PipelineSettings};
use serde::Deserialize;

/// Settings of an [`ExperimentsClient`]: where the config is and how events are delivered.
///
/// ```
/// let s: experiments_sdk::ClientSettings = serde_json::from_str(
///     r#"{"config": {"path": "/var/local/experiments.json", "timeout": "5s"},
///         "events": {"max_batch_age": "500ms"}}"#).unwrap();
/// # let _ = s;
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClientSettings {
    /// The watched config file (baseplate's `experiments.path`, `timeout`, `backoff`).
    #[cfg(feature = "watch")]
    pub config: experiments_watch::WatchSettings,
    /// The event pipeline.
    pub events: PipelineSettings,
}

/// The client could not start.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The config watcher could not start (startup timeout, thread).
    #[cfg(feature = "watch")]
    #[error(transparent)]
    Watch(#[from] experiments_watch::StartError),
    /// The event pipeline could not start (no tokio runtime).
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
}

enum Source {
    /// A watched file; `empty` stands in while no version is available.
    #[cfg(feature = "watch")]
    Watcher {
        watcher: experiments_watch::ConfigWatcher,
        empty: Arc<Config>,
    },
    Static(Arc<Config>),
}

/// A config snapshot held by a request: either a watched version or a fixed config.
#[derive(Clone)]
enum Snapshot {
    #[cfg(feature = "watch")]
    Watched(Arc<experiments_watch::Snapshot>),
    Static(Arc<Config>),
}

impl Snapshot {
    fn config(&self) -> &Config {
        match self {
            #[cfg(feature = "watch")]
            Snapshot::Watched(s) => &s.config,
            Snapshot::Static(c) => c,
        }
    }
}

/// Where a request's events go.
#[derive(Clone, Debug)]
enum Sink {
    Pipeline(PipelineHandle),
    Discard,
}

impl EventHandler for Sink {
    fn log(&mut self, event: &Event<'_>) {
        if let Sink::Pipeline(p) = self {
            p.log(event);
        }
    }
}

/// The experiments client of a service: one per process, shared by every request.
pub struct ExperimentsClient {
    source: Source,
    pipeline: Option<Pipeline>,
}

impl std::fmt::Debug for ExperimentsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExperimentsClient")
            .field("pipeline", &self.pipeline)
            .finish_non_exhaustive()
    }
}

impl ExperimentsClient {
    /// Watches `settings.config` and delivers events to `logger` through a pipeline.
    /// Must run inside a tokio runtime.
    #[cfg(feature = "watch")]
    pub fn start(settings: ClientSettings, logger: impl EventSink) -> Result<Self, ClientError> {
        let pipeline = Pipeline::start(settings.events, logger)?;
        let watcher = experiments_watch::ConfigWatcher::start(settings.config)?;
        Ok(Self::from_watcher(watcher, Some(pipeline)))
    }

    /// A client over a fixed config, with an optional pipeline (`None`: events are dropped).
    pub fn from_config(config: Config, pipeline: Option<Pipeline>) -> Self {
        ExperimentsClient { source: Source::Static(Arc::new(config)), pipeline }
    }

    /// A client following an already started watcher.
    #[cfg(feature = "watch")]
    pub fn from_watcher(
        watcher: experiments_watch::ConfigWatcher,
        pipeline: Option<Pipeline>,
    ) -> Self {
        let empty = Arc::new(Config::default());
        ExperimentsClient { source: Source::Watcher { watcher, empty }, pipeline }
    }

    fn snapshot(&self) -> Snapshot {
        match &self.source {
            #[cfg(feature = "watch")]
            // Like baseplate, an unavailable config behaves as an empty one.
            Source::Watcher { watcher, empty } => watcher
                .snapshot()
                .map_or_else(|_| Snapshot::Static(Arc::clone(empty)), Snapshot::Watched),
            Source::Static(c) => Snapshot::Static(Arc::clone(c)),
        }
    }

    /// The per-request object for a request starting now.
    pub fn request(&self) -> RequestExperiments {
        self.request_with(None, epoch_now())
    }

    /// The per-request object at `now`, with a correlation id shared by its events.
    pub fn request_with(&self, correlation_id: Option<Arc<str>>, now: f64) -> RequestExperiments {
        let sink = match &self.pipeline {
            Some(p) => Sink::Pipeline(p.sink(correlation_id)),
            None => Sink::Discard,
        };
        RequestExperiments { snapshot: self.snapshot(), scope: RequestScope::new(now), sink }
    }

    /// The event pipeline, if any.
    pub fn pipeline(&self) -> Option<&Pipeline> {
        self.pipeline.as_ref()
    }

    /// The config watcher, when the client follows a file.
    #[cfg(feature = "watch")]
    pub fn watcher(&self) -> Option<&experiments_watch::ConfigWatcher> {
        match &self.source {
            Source::Watcher { watcher, .. } => Some(watcher),
            Source::Static(_) => None,
        }
    }

    /// Delivers pending events (until `timeout`) and stops the pipeline.
    pub async fn shutdown(&self, timeout: Duration) -> Option<FlushReport> {
        match &self.pipeline {
            Some(p) => Some(p.shutdown(timeout).await),
            None => None,
        }
    }
}

fn epoch_now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

/// Experiments for one request: bound to the config snapshot current when the request
/// started, with its own bucketing-event dedupe (baseplate's per-request `Experiments`).
pub struct RequestExperiments {
    snapshot: Snapshot,
    scope: RequestScope,
    sink: Sink,
}

impl std::fmt::Debug for RequestExperiments {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestExperiments").field("now", &self.scope.now()).finish_non_exhaustive()
    }
}

impl RequestExperiments {
    /// The config snapshot of this request.
    pub fn config(&self) -> &Config {
        self.snapshot.config()
    }

    /// Which variant of `experiment` the inputs get; logs a `choose` event the first time
    /// the request is bucketed (see [`experiments_core::Experiments::variant`]).
    pub fn variant(
        &mut self,
        experiment: &str,
        inputs: &Inputs,
        bucketing_event_override: Option<bool>,
    ) -> Result<Option<&str>, EvalError> {
        self.variant_traced(
            experiment,
            inputs,
            bucketing_event_override,
            &mut experiments_core::NoTrace,
        )
        .map(|(v, _)| v)
    }

    /// [`RequestExperiments::variant`] with every decision step reported to `obs`.
    pub fn variant_traced<O: Observer>(
        &mut self,
        experiment: &str,
        inputs: &Inputs,
        bucketing_event_override: Option<bool>,
        obs: &mut O,
    ) -> Result<(Option<&str>, Option<BucketingEvent>), EvalError> {
        let config = self.snapshot.config();
        self.scope.variant_traced(
            config,
            &mut self.sink,
            experiment,
            inputs,
            bucketing_event_override,
            obs,
        )
    }

    /// Logs an `expose` event; returns whether the experiment exists (and so logged).
    pub fn expose(&mut self, experiment: &str, variant: Option<&str>, inputs: &Inputs) -> bool {
        let config = self.snapshot.config();
        self.scope.expose(config, &mut self.sink, experiment, variant, inputs)
    }

    /// Every experiment name of the snapshot, in file order.
    pub fn names(&self) -> Vec<&str> {
        self.snapshot.config().names().collect()
    }

    /// Whether `experiment` is valid now.
    pub fn is_valid(&self, experiment: &str) -> bool {
        self.snapshot.config().is_valid(experiment, self.scope.now())
    }
}
