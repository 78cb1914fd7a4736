//! The reddit-decider dialect in a service: the per-request object of `reddit_decider.Decider`
//! ([`DeciderRequest`]) over the client's config snapshot, its exposures delivered through the
//! event pipeline ([`DeciderExposure`]), and its swallowed errors made observable.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use experiments_decider::{
    DynamicConfigInfo, EventStamp, ExperimentConfig, IdentifierType, Manifest, Observer,
    VariantInfo, WrapperContext, WrapperError, WrapperEvent, WrapperHandler, WrapperRequest,
    WrapperState,
};
use experiments_events::{EncodeError, Encoding, Pipeline, SinkEvent};
use experiments_watch::Snapshot;
use serde_json::{Map, Value};
use uuid::Uuid;

/// A decider exposure on its way to a sink: the wrapper's logger record, stamped when it was
/// logged. Its `json` encoding is the record (`{"event_type", "variant", "experiment",
/// "inputs"}`, as `event_logger.log(**kw)` receives it); its `v2` encoding is the engine's
/// Thrift-JSON, byte for byte, with this stamp's clock, UUID and correlation id.
#[derive(Clone, Debug)]
pub struct DeciderExposure {
    event: WrapperEvent,
    stamp: EventStamp,
}

impl DeciderExposure {
    /// `event`, stamped with `stamp`.
    pub fn new(event: WrapperEvent, stamp: EventStamp) -> Self {
        DeciderExposure { event, stamp }
    }

    /// The logger record.
    pub fn event(&self) -> &WrapperEvent {
        &self.event
    }

    /// The clock, UUID and correlation fallback of the event.
    pub fn stamp(&self) -> &EventStamp {
        &self.stamp
    }
}

impl SinkEvent for DeciderExposure {
    fn encode(&self, encoding: Encoding, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        match encoding {
            Encoding::V2 => {
                let mut text = String::with_capacity(768);
                self.event.write_v2_json(&self.stamp, &mut text);
                out.extend_from_slice(text.as_bytes());
            }
            _ => self.event.write_json(out),
        }
        Ok(())
    }

    fn kind(&self) -> &'static str {
        "expose"
    }

    fn key(&self) -> Option<String> {
        let value = self.event.inputs.get(&self.event.experiment.bucket_val)?;
        Some(match value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
    }

    fn uuid(&self) -> Uuid {
        self.stamp.uuid
    }
}

/// Counts the errors decider requests swallow and logs them, at most one `warn` per second
/// per client (the count is exact; the log is a sample).
#[derive(Debug, Default)]
pub(crate) struct SwallowedErrors {
    count: AtomicU64,
    /// Seconds since the epoch of the last logged error.
    last_logged: AtomicU64,
}

impl SwallowedErrors {
    fn record(&self, op: &'static str, error: &WrapperError) {
        self.count.fetch_add(1, Ordering::Relaxed);
        let now = epoch_ms() / 1000;
        let last = self.last_logged.load(Ordering::Relaxed);
        if now > last
            && self
                .last_logged
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(
                op,
                %error,
                swallowed = self.count.load(Ordering::Relaxed),
                "decider call failed; the wrapper's fallback value was returned"
            );
        }
    }

    pub(crate) fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }
}

fn epoch_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// Where one call's events and errors go: stamped into the pipeline, counted.
struct Handler<'a> {
    pipeline: Option<&'a Pipeline>,
    correlation: Uuid,
    errors: &'a SwallowedErrors,
}

impl WrapperHandler for Handler<'_> {
    fn log(&mut self, event: WrapperEvent) {
        if let Some(pipeline) = self.pipeline {
            let stamp = EventStamp {
                client_ts_ms: epoch_ms() as i64,
                uuid: Uuid::new_v4(),
                correlation_fallback: self.correlation,
            };
            pipeline.log(DeciderExposure::new(event, stamp));
        }
    }

    fn error(&mut self, op: &'static str, error: &WrapperError) {
        self.errors.record(op, error);
    }
}

/// One request's `reddit_decider.Decider`: bound to the config snapshot current when the
/// request began (empty when it is not a decider document), its exposures sent through the
/// client's pipeline. Every method takes `&self` and returns what the wrapper returns —
/// `None`, the default or `[]` where the wrapper swallows an error, which is counted
/// ([`crate::ClientStatus::decider_errors`]) and logged at `warn` (rate-limited); each has a
/// `try_` twin returning the error. Built by
/// [`ExperimentsClient::decider_request`](crate::ExperimentsClient::decider_request).
pub struct DeciderRequest {
    snapshot: Option<Arc<Snapshot>>,
    state: Mutex<WrapperState>,
    pipeline: Option<Pipeline>,
    correlation: Uuid,
    errors: Arc<SwallowedErrors>,
}

impl std::fmt::Debug for DeciderRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeciderRequest")
            .field("version", &self.snapshot.as_ref().map(|s| s.version))
            .field("correlation", &self.correlation)
            .finish_non_exhaustive()
    }
}

impl DeciderRequest {
    pub(crate) fn new(
        snapshot: Option<Arc<Snapshot>>,
        ctx: WrapperContext,
        pipeline: Option<Pipeline>,
        correlation: Option<&str>,
        errors: Arc<SwallowedErrors>,
    ) -> Self {
        // The v2 correlation id when the context has none that parses as a UUID: the
        // request's own when it is one, else one random id for the whole request.
        let correlation =
            correlation.and_then(|c| Uuid::parse_str(c).ok()).unwrap_or_else(Uuid::new_v4);
        DeciderRequest {
            snapshot,
            state: Mutex::new(WrapperState::new(ctx)),
            pipeline,
            correlation,
            errors,
        }
    }

    /// The manifest of the request's snapshot (`None`: no decider document is loaded; every
    /// call returns its fallback, like the wrapper with `internal=None`).
    pub fn manifest(&self) -> Option<&Manifest> {
        self.snapshot.as_ref()?.decider.as_ref()
    }

    /// The config version of the request (`None`: nothing loaded).
    pub fn version(&self) -> Option<u64> {
        self.snapshot.as_ref().map(|s| s.version)
    }

    /// Runs `f` on a wrapper request over this request's state.
    fn run<'s, R>(
        &'s self,
        f: impl FnOnce(&mut WrapperRequest<'s, Handler<'s>, &mut WrapperState>) -> R,
    ) -> R {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let handler = Handler {
            pipeline: self.pipeline.as_ref(),
            correlation: self.correlation,
            errors: &self.errors,
        };
        f(&mut WrapperRequest::with_state(self.manifest(), &mut *state, handler))
    }

    /// `get_variant`: the variant, exposing every event of the decision (parents first).
    pub fn get_variant(
        &self,
        experiment: &str,
        exposure_kwargs: &Map<String, Value>,
    ) -> Option<&str> {
        self.run(|r| r.get_variant(experiment, exposure_kwargs))
    }

    /// [`DeciderRequest::get_variant`], returning the error the wrapper swallows.
    pub fn try_get_variant(
        &self,
        experiment: &str,
        exposure_kwargs: &Map<String, Value>,
    ) -> Result<Option<&str>, WrapperError> {
        self.run(|r| r.try_get_variant(experiment, exposure_kwargs))
    }

    /// [`DeciderRequest::try_get_variant`] with every step of the decision reported to
    /// `observer` (an [`Explanation`](experiments_decider::Explanation) records them): the
    /// variant, its exposures and why, from one decision.
    pub fn try_get_variant_traced(
        &self,
        experiment: &str,
        exposure_kwargs: &Map<String, Value>,
        observer: &mut impl Observer,
    ) -> Result<Option<&str>, WrapperError> {
        self.run(|r| r.try_get_variant_traced(experiment, exposure_kwargs, observer))
    }

    /// [`DeciderRequest::try_get_variant_without_expose`] with every step of the decision
    /// reported to `observer`.
    pub fn try_get_variant_without_expose_traced(
        &self,
        experiment: &str,
        observer: &mut impl Observer,
    ) -> Result<Option<&str>, WrapperError> {
        self.run(|r| r.try_get_variant_without_expose_traced(experiment, observer))
    }

    /// `get_variant_without_expose`: logs only holdout events.
    pub fn get_variant_without_expose(&self, experiment: &str) -> Option<&str> {
        self.run(|r| r.get_variant_without_expose(experiment))
    }

    /// [`DeciderRequest::get_variant_without_expose`], returning the error.
    pub fn try_get_variant_without_expose(
        &self,
        experiment: &str,
    ) -> Result<Option<&str>, WrapperError> {
        self.run(|r| r.try_get_variant_without_expose(experiment))
    }

    /// `expose`: logs one exposure of `variant` (a no-op for no variant, an unknown feature
    /// or a feature that does not emit events).
    pub fn expose(
        &self,
        experiment: &str,
        variant: Option<&str>,
        exposure_kwargs: &Map<String, Value>,
    ) {
        self.run(|r| r.expose(experiment, variant, exposure_kwargs));
    }

    /// [`DeciderRequest::expose`], returning the error.
    pub fn try_expose(
        &self,
        experiment: &str,
        variant: Option<&str>,
        exposure_kwargs: &Map<String, Value>,
    ) -> Result<(), WrapperError> {
        self.run(|r| r.try_expose(experiment, variant, exposure_kwargs))
    }

    /// `get_variant_for_identifier`: buckets with `identifier` as `identifier_type`
    /// (`user_id`, `device_id`, `canonical_url`, `subreddit_id`, `ad_account_id`,
    /// `business_id`, `conversion_pixel_id`), exposing.
    pub fn get_variant_for_identifier(
        &self,
        experiment: &str,
        identifier: &str,
        identifier_type: IdentifierType,
        exposure_kwargs: &Map<String, Value>,
    ) -> Option<&str> {
        self.run(|r| {
            r.get_variant_for_identifier(experiment, identifier, identifier_type, exposure_kwargs)
        })
    }

    /// `get_variant_for_identifier_without_expose`.
    pub fn get_variant_for_identifier_without_expose(
        &self,
        experiment: &str,
        identifier: &str,
        identifier_type: IdentifierType,
    ) -> Option<&str> {
        self.run(|r| {
            r.get_variant_for_identifier_without_expose(experiment, identifier, identifier_type)
        })
    }

    /// `get_all_variants_without_expose`: every range feature the context gets a variant of.
    pub fn get_all_variants_without_expose(&self) -> Vec<VariantInfo<'_>> {
        self.run(|r| r.get_all_variants_without_expose())
    }

    /// `get_all_variants_for_identifier_without_expose`: the same, for the features that
    /// bucket on `identifier_type`.
    pub fn get_all_variants_for_identifier_without_expose(
        &self,
        identifier: &str,
        identifier_type: IdentifierType,
    ) -> Vec<VariantInfo<'_>> {
        self.run(|r| r.get_all_variants_for_identifier_without_expose(identifier, identifier_type))
    }

    /// `get_bool(name, default)`.
    pub fn get_bool(&self, name: &str, default: bool) -> bool {
        self.run(|r| r.get_bool(name, default))
    }

    /// `get_int(name, default)`.
    pub fn get_int(&self, name: &str, default: i64) -> i64 {
        self.run(|r| r.get_int(name, default))
    }

    /// `get_float(name, default)` (an integer value reads as a float).
    pub fn get_float(&self, name: &str, default: f64) -> f64 {
        self.run(|r| r.get_float(name, default))
    }

    /// `get_string(name, default)`.
    pub fn get_string(&self, name: &str, default: &str) -> String {
        self.run(|r| r.get_string(name, default).to_owned())
    }

    /// `get_map(name, default)` (every number as a float, as the wrapper's `dict()` does).
    pub fn get_map(
        &self,
        name: &str,
        default: Option<Map<String, Value>>,
    ) -> Option<Map<String, Value>> {
        self.run(|r| r.get_map(name, default))
    }

    /// `get_all_dynamic_configs`: every dynamic config's value for the context.
    pub fn get_all_dynamic_configs(&self) -> Vec<DynamicConfigInfo<'_>> {
        self.run(|r| r.get_all_dynamic_configs())
    }

    /// `get_experiment`: the experiment's metadata.
    pub fn get_experiment(&self, experiment: &str) -> Option<ExperimentConfig> {
        self.run(|r| r.get_experiment(experiment))
    }
}
