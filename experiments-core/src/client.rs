//! The per-request client, baseplate's `Experiments` object: [`RequestScope`] holds the
//! request's state (instant, bucketing-event dedupe) without borrowing anything, and
//! [`Experiments`] binds one to a config snapshot and a sink.

use crate::config::{Config, Evaluation};
use crate::dedupe::Dedupe;
use crate::error::EvalError;
use crate::event::{Event, EventHandler, EventType};
use crate::explain::{NoTrace, Observer};
use crate::inputs::Inputs;

/// What happened to the bucketing event of a `variant` call. Non-exhaustive: a new reason
/// for not logging may be added.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum BucketingEvent {
    /// A `choose` event was logged.
    Logged,
    /// No variant was chosen.
    NoVariant,
    /// The bucketing value is missing or falsy.
    NoBucketingValue,
    /// `bucketing_event_override` was `false`.
    Suppressed,
    /// The experiment does not log bucketing events (`feature_flag`, forced variants,
    /// `log_bucketing` falsy).
    NotLogged,
    /// This request already logged the same key.
    Duplicate,
}

/// The state of one request: its instant and the set of bucketing events it logged. Owns
/// nothing borrowed, so it can live in a request object next to an `Arc` of the snapshot;
/// every call takes the config and the sink. Creating one does not allocate.
#[derive(Clone, Debug)]
pub struct RequestScope {
    now: f64,
    dedupe: Dedupe,
}

impl RequestScope {
    /// A request at `now` (seconds since the epoch).
    pub fn new(now: f64) -> Self {
        RequestScope { now, dedupe: Dedupe::default() }
    }

    /// Starts a new request at `now`, keeping the storage (a warmed scope never allocates).
    pub fn reset(&mut self, now: f64) {
        self.now = now;
        self.dedupe.clear();
    }

    /// The instant of the request.
    pub fn now(&self) -> f64 {
        self.now
    }

    /// See [`Experiments::variant_traced`].
    pub fn variant_traced<'c, O: Observer>(
        &mut self,
        config: &'c Config,
        sink: &mut impl EventHandler,
        experiment: &str,
        inputs: &Inputs,
        bucketing_event_override: Option<bool>,
        obs: &mut O,
    ) -> Result<(Option<&'c str>, Option<BucketingEvent>), EvalError> {
        if experiment.is_empty() {
            return Err(EvalError::EmptyExperimentName);
        }
        let Some(eval) = config.evaluate(experiment, inputs, self.now, obs)? else {
            return Ok((None, None));
        };
        let outcome = self.bucketing_event(sink, &eval, inputs, bucketing_event_override)?;
        Ok((eval.variant, Some(outcome)))
    }

    /// Logs the `choose` event if baseplate would. `Err(RecursionLimit)` (no event, nothing
    /// recorded) when the event would echo inputs nested deeper than [`crate::MAX_DEPTH`]:
    /// any sink that copies or serializes them would recurse that deep.
    fn bucketing_event(
        &mut self,
        sink: &mut impl EventHandler,
        eval: &Evaluation<'_, '_>,
        inputs: &Inputs,
        over: Option<bool>,
    ) -> Result<BucketingEvent, EvalError> {
        let Some(value) = eval.bucketing_value else {
            return Ok(BucketingEvent::NoBucketingValue);
        };
        if eval.variant.is_none() {
            return Ok(BucketingEvent::NoVariant);
        }
        if over == Some(false) {
            return Ok(BucketingEvent::Suppressed);
        }
        if !eval.log_bucketing {
            return Ok(BucketingEvent::NotLogged);
        }
        inputs.check_depth()?;
        if !self.dedupe.insert(eval.dedupe_prefix(), value)? {
            return Ok(BucketingEvent::Duplicate);
        }
        let mut event = Event::new(EventType::Choose, eval.variant, eval.experiment(), inputs);
        event.bucketing_field = eval.bucketing_field();
        event.bucketing_value = Some(value);
        event.is_override = eval.is_override;
        sink.log(&event);
        Ok(BucketingEvent::Logged)
    }

    /// See [`Experiments::expose`]. Logs nothing for inputs nested deeper than
    /// [`crate::MAX_DEPTH`] (the event would echo them).
    pub fn expose(
        &mut self,
        config: &Config,
        sink: &mut impl EventHandler,
        experiment: &str,
        variant: Option<&str>,
        inputs: &Inputs,
    ) -> bool {
        let Some((exp, active)) = config.active(experiment, self.now) else {
            return false;
        };
        if inputs.check_depth().is_err() {
            return false;
        }
        let mut event = Event::new(EventType::Expose, variant, exp.event_ref(active), inputs);
        event.bucketing_field = active.bucketing_field();
        event.bucketing_value = event.bucketing_field.and_then(|f| inputs.get(f));
        sink.log(&event);
        true
    }
}

/// The per-request experiments client: evaluates experiments of one config snapshot at one
/// instant, logs `choose`/`expose` events to its sink, and dedupes bucketing events within
/// the request. Create one per request (cheap, no heap allocation) or reuse one with
/// [`Experiments::reset`].
///
/// ```
/// use experiments_core::{Config, Experiments, Inputs, OwnedEvent};
/// let config = Config::parse(r#"{"exp": {"id": 1, "name": "exp", "type": "feature_rollout",
///     "start_ts": 0, "stop_ts": 4102444800,
///     "experiment": {"experiment_version": 1, "variants": [{"name": "on", "size": 1.0}]}}}"#)?;
/// let mut events: Vec<OwnedEvent> = Vec::new();
/// let mut client = Experiments::new(&config, 1_700_000_000.0, &mut events);
/// let inputs = Inputs::new().with("user_id", "t2_1").with("logged_in", true);
/// assert_eq!(client.variant("exp", &inputs, None)?, Some("on"));
/// assert_eq!(client.variant("exp", &inputs, None)?, Some("on")); // deduped: no second event
/// drop(client);
/// assert_eq!(events.len(), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Experiments<'c, S> {
    config: &'c Config,
    sink: S,
    scope: RequestScope,
}

impl<'c, S: EventHandler> Experiments<'c, S> {
    /// A client for one request at `now` (seconds since the epoch).
    pub fn new(config: &'c Config, now: f64, sink: S) -> Self {
        Experiments { config, sink, scope: RequestScope::new(now) }
    }

    /// Starts a new request on the same object: new snapshot and instant, empty dedupe set
    /// (its storage is kept, so a warmed client never allocates).
    pub fn reset(&mut self, config: &'c Config, now: f64) {
        self.config = config;
        self.scope.reset(now);
    }

    /// The config snapshot.
    pub fn config(&self) -> &'c Config {
        self.config
    }

    /// The instant of the request.
    pub fn now(&self) -> f64 {
        self.scope.now
    }

    /// The sink.
    pub fn sink(&mut self) -> &mut S {
        &mut self.sink
    }

    /// Consumes the client, returning the sink.
    pub fn into_sink(self) -> S {
        self.sink
    }

    /// Which variant of `experiment` the inputs get (`None`: no variant, unknown or invalid
    /// experiment). Logs a `choose` event the first time this request is bucketed into a
    /// variant, unless `bucketing_event_override` is `Some(false)`.
    ///
    /// `Err` where baseplate raised; also [`EvalError::RecursionLimit`] when the call would
    /// have to walk a value nested deeper than [`crate::MAX_DEPTH`] (the bucketing value's
    /// `str()`, or a `choose` event echoing such inputs).
    pub fn variant(
        &mut self,
        experiment: &str,
        inputs: &Inputs,
        bucketing_event_override: Option<bool>,
    ) -> Result<Option<&'c str>, EvalError> {
        self.variant_traced(experiment, inputs, bucketing_event_override, &mut NoTrace)
            .map(|(v, _)| v)
    }

    /// [`Experiments::variant`] reporting every decision step to `obs`, and what happened to
    /// the bucketing event.
    pub fn variant_traced<O: Observer>(
        &mut self,
        experiment: &str,
        inputs: &Inputs,
        bucketing_event_override: Option<bool>,
        obs: &mut O,
    ) -> Result<(Option<&'c str>, Option<BucketingEvent>), EvalError> {
        let config = self.config;
        self.scope.variant_traced(
            config,
            &mut self.sink,
            experiment,
            inputs,
            bucketing_event_override,
            obs,
        )
    }

    /// Logs an `expose` event for `experiment` (nothing when it is unknown or invalid, or
    /// when an input nests deeper than [`crate::MAX_DEPTH`]). Returns whether an event was
    /// logged.
    pub fn expose(&mut self, experiment: &str, variant: Option<&str>, inputs: &Inputs) -> bool {
        self.scope.expose(self.config, &mut self.sink, experiment, variant, inputs)
    }

    /// Every config key in file order (`get_all_experiment_names`).
    pub fn names(&self) -> impl ExactSizeIterator<Item = &'c str> {
        self.config.names()
    }

    /// Whether `experiment` is a valid experiment now (`is_valid_experiment`).
    pub fn is_valid(&self, experiment: &str) -> bool {
        self.config.is_valid(experiment, self.scope.now)
    }
}
