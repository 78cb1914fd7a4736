//! The per-request handle the layer puts in each request's extensions.

use std::sync::Arc;

use experiments_sdk::{EvalError, Inputs, RequestExperiments};

/// One request's experiments, as handlers see them: the request's [`RequestExperiments`]
/// (bound to the config snapshot current when the request arrived, with its own
/// bucketing-event dedupe and its correlation id) and the base [`Inputs`] the layer's
/// [`InputsExtractor`](crate::InputsExtractor) built for it.
///
/// [`ExperimentsLayer`](crate::ExperimentsLayer) inserts one into every request's
/// extensions (`req.extensions().get::<ExperimentsContext>()` from any tower service; a
/// handler argument in axum). Clones are cheap (two `Arc`s) and share the request's dedupe,
/// so a clone moved into a spawned task still logs each `choose` once per request.
///
/// ```
/// use std::sync::Arc;
/// use experiments_sdk::{Config, ExperimentsClient, Inputs, SinkSettings};
/// use experiments_tower::ExperimentsContext;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let config = Config::parse(r#"{"rollout": {"id": 1, "name": "rollout", "owner": "o",
///   "type": "feature_rollout", "version": "1", "start_ts": 0, "stop_ts": 4102444800,
///   "experiment": {"experiment_version": 1, "variants": [{"name": "on", "size": 1.0}]}}}"#)?;
/// let client = ExperimentsClient::builder()
///     .config(config)
///     .sink_settings(SinkSettings::None)
///     .build()
///     .await?;
/// // What the layer does for each request:
/// let ctx = ExperimentsContext::new(
///     Arc::new(client.request()),
///     Inputs::new().with("user_id", "t2_abc"),
/// );
/// let variant = ctx.variant("rollout")?;
/// assert_eq!(variant, Some("on"));
/// assert!(ctx.expose("rollout", variant));
/// assert_eq!(ctx.variant_with("rollout", &Inputs::new())?, None, "no user_id, no bucket");
/// # client.shutdown(std::time::Duration::from_secs(1)).await; Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct ExperimentsContext {
    request: Arc<RequestExperiments>,
    inputs: Inputs,
}

impl ExperimentsContext {
    /// A context over `request` with `inputs` as base inputs (what the layer builds; also
    /// for tests and code paths that run outside the layer).
    pub fn new(request: Arc<RequestExperiments>, inputs: Inputs) -> Self {
        ExperimentsContext { request, inputs }
    }

    /// Which variant of `experiment` the request's base inputs get (`None`: not bucketed,
    /// unknown or invalid experiment). The first bucketing of each experiment, user and
    /// variant in the request logs one `choose` event; asking again logs nothing.
    pub fn variant(&self, experiment: &str) -> Result<Option<&str>, EvalError> {
        self.request.variant(experiment, &self.inputs)
    }

    /// [`ExperimentsContext::variant`] with other inputs (the base inputs plus what the
    /// handler learned: `ctx.inputs().clone().with("subreddit", ...)`), sharing the
    /// request's dedupe and correlation id.
    pub fn variant_with(
        &self,
        experiment: &str,
        inputs: &Inputs,
    ) -> Result<Option<&str>, EvalError> {
        self.request.variant(experiment, inputs)
    }

    /// Logs an `expose` event for `variant` (any name, or none) with the base inputs: the
    /// user saw it. Returns whether the experiment exists (and so logged).
    pub fn expose(&self, experiment: &str, variant: Option<&str>) -> bool {
        self.request.expose(experiment, variant, &self.inputs)
    }

    /// [`ExperimentsContext::expose`] with other inputs.
    pub fn expose_with(&self, experiment: &str, variant: Option<&str>, inputs: &Inputs) -> bool {
        self.request.expose(experiment, variant, inputs)
    }

    /// The request's base inputs.
    pub fn inputs(&self) -> &Inputs {
        &self.inputs
    }

    /// The base inputs, to change for this handle (and its later clones) only: the map is
    /// copied on the first change if other clones share it.
    pub fn inputs_mut(&mut self) -> &mut Inputs {
        &mut self.inputs
    }

    /// The request's experiments object: config version, instant, correlation id,
    /// `variant_traced`, `names`, ... The same `Arc` that
    /// [`RequestExperiments::current`] returns inside the layer.
    pub fn request(&self) -> &Arc<RequestExperiments> {
        &self.request
    }

    /// The correlation id the request's events carry (see
    /// [`CorrelationSource`](crate::CorrelationSource)).
    pub fn correlation_id(&self) -> Option<&str> {
        self.request.correlation_id()
    }
}
