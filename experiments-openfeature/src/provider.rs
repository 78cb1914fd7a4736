//! [`ExperimentsProvider`]: the OpenFeature `FeatureProvider` over an [`ExperimentsClient`].

use std::sync::Arc;

use std::cell::OnceCell;

use experiments_sdk::decider::{
    Context as DeciderCoreContext, DecideError, DynamicConfigType, Feature, Manifest,
    WrapperContext, WrapperError, python_floats,
};
use experiments_sdk::watch::Dialect;
use experiments_sdk::{DeciderRequest, ExperimentsClient, Inputs, RequestExperiments, Value};
use open_feature::provider::{
    FeatureProvider, ProviderMetadata, ProviderStatus, ResolutionDetails,
};
use open_feature::{
    EvaluationContext, EvaluationError, EvaluationErrorCode, EvaluationReason, EvaluationResult,
    FlagMetadata, StructValue, async_trait,
};
use serde_json::{Map, Number};

use crate::context;
use crate::events::{ProviderEvents, status_of};
use crate::reason::{BaseplateTrace, DeciderTrace, ENGINE_ERROR, error, no_variant_error};

/// The variant names [`ExperimentsProvider`] treats as "off" for boolean evaluations by
/// default: `control`, `control_1`, `control_2`.
pub const DEFAULT_CONTROL_NAMES: [&str; 3] = ["control", "control_1", "control_2"];

/// The provider's name in OpenFeature's provider metadata.
pub const PROVIDER_NAME: &str = "experiments";

/// What a string evaluation returns when the user gets no variant (baseplate and decider
/// experiments) or no value (a disabled dynamic config).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum NoVariant {
    /// An error with code `General("NO_VARIANT")` ([`NO_VARIANT`](crate::NO_VARIANT)),
    /// whose message starts with the reason (`DEFAULT: ...`, `DISABLED: ...`). The default:
    /// `client.get_string_value(..).await.unwrap_or(default)` then gives the caller's own
    /// default, which the provider does not know (OpenFeature's Rust SDK 0.3 does not pass it
    /// to providers). The details of the reason are read with
    /// [`no_variant_reason`](crate::no_variant_reason).
    #[default]
    Error,
    /// `Ok` with this value, no variant, and the reason (`DEFAULT`, `DISABLED`) in the
    /// details. The caller can no longer tell it from a variant of that name except by the
    /// details' `variant` (`None`).
    Value(String),
}

/// Options of an [`ExperimentsProvider`].
#[derive(Clone, Debug)]
struct Options {
    control_names: Vec<String>,
    targeting_key_field: String,
    no_variant: NoVariant,
}

/// Builds an [`ExperimentsProvider`] with options: [`ExperimentsProvider::builder`].
#[derive(Debug)]
#[must_use = "call `build()` to get the provider"]
pub struct ProviderBuilder {
    client: ExperimentsClient,
    options: Options,
}

impl ProviderBuilder {
    /// The variant names a boolean evaluation treats as `false` (replacing
    /// [`DEFAULT_CONTROL_NAMES`]); every other variant is `true`, no variant is `false`.
    pub fn control_names<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.options.control_names = names.into_iter().map(Into::into).collect();
        self
    }

    /// The input the evaluation context's targeting key becomes (`user_id` by default): the
    /// bucketing identifier of most experiments. For decider documents, a `DeciderContext`
    /// keyword (`user_id`, `device_id`, ...) or else an extracted field.
    pub fn targeting_key_field(mut self, field: impl Into<String>) -> Self {
        self.options.targeting_key_field = field.into();
        self
    }

    /// What string evaluations give when there is no variant ([`NoVariant::Error`] by
    /// default).
    pub fn no_variant(mut self, policy: NoVariant) -> Self {
        self.options.no_variant = policy;
        self
    }

    /// The provider.
    pub fn build(self) -> ExperimentsProvider {
        ExperimentsProvider {
            client: self.client,
            options: Arc::new(self.options),
            metadata: ProviderMetadata::new(PROVIDER_NAME),
        }
    }
}

/// An OpenFeature provider over an [`ExperimentsClient`]: every experiment of the client's
/// config is a flag, evaluated by the client's engine with its exposure events, for the
/// OpenFeature evaluation context.
///
/// # Flags
///
/// | config | string | boolean | integer, float, structure |
/// |---|---|---|---|
/// | baseplate experiment | the variant name | `true` for a variant that is not a control name | `TYPE_MISMATCH` |
/// | decider range feature | the variant name | the same rule | `TYPE_MISMATCH` |
/// | decider dynamic config | a string value | a boolean value | an integer value; any number as a float; an object as a `StructValue` (numbers as floats, as the wrapper's `get_map`; `null` members left out) |
///
/// A dynamic config asked for another type is `TYPE_MISMATCH`. Control names are
/// [`DEFAULT_CONTROL_NAMES`] unless [`ProviderBuilder::control_names`] says otherwise.
///
/// # Evaluation context
///
/// The targeting key becomes the input `user_id` ([`ProviderBuilder::targeting_key_field`])
/// and wins over a custom field of that name. Custom fields become inputs with their JSON
/// types: booleans, integers, floats (finite), strings; datetimes as RFC 3339 strings;
/// structures given as `open_feature::StructValue` or `open_feature::Value` (converted
/// recursively, keys sorted) or as a `serde_json::Value` / `serde_json::Map` (any JSON, `null`
/// included). Anything else is `INVALID_CONTEXT`. For decider documents the context is a
/// `DeciderContext`: the targeting key as its `user_id`, custom fields named like its keywords
/// as those keywords, every other field as an extracted field.
///
/// # Results
///
/// The details carry the variant, the reason and flag metadata (`id`, `version`, `owner` of
/// the experiment, `config_version` of the client's config) — see the crate documentation for
/// the reason and error table. When the user gets no variant, a string evaluation fails with
/// the [`NO_VARIANT`](crate::NO_VARIANT) error so that the caller's default applies
/// ([`NoVariant`]); a boolean evaluation gives `false`.
///
/// # Exposure
///
/// Evaluations log what the client logs: baseplate `choose` events through the request of
/// the task's [`RequestExperiments::scope`] when there is one (sharing its dedupe, snapshot
/// and correlation id: OpenFeature's transaction context), else through a fresh request per
/// evaluation; decider range features through `get_variant` of a decider request (with the
/// scoped request's correlation id when there is one). Dynamic configs log nothing.
#[derive(Clone, Debug)]
pub struct ExperimentsProvider {
    client: ExperimentsClient,
    options: Arc<Options>,
    metadata: ProviderMetadata,
}

impl ExperimentsProvider {
    /// A provider over `client` with the default options.
    pub fn new(client: ExperimentsClient) -> Self {
        ExperimentsProvider::builder(client).build()
    }

    /// A builder for a provider over `client` with options.
    pub fn builder(client: ExperimentsClient) -> ProviderBuilder {
        ProviderBuilder {
            client,
            options: Options {
                control_names: DEFAULT_CONTROL_NAMES.iter().map(|s| (*s).to_owned()).collect(),
                targeting_key_field: "user_id".to_owned(),
                no_variant: NoVariant::Error,
            },
        }
    }

    /// The client the provider evaluates with.
    pub fn client(&self) -> &ExperimentsClient {
        &self.client
    }

    /// The provider's events from now on ([`ProviderEvents`]): OpenFeature's provider events,
    /// which the Rust SDK 0.3 cannot deliver itself. Keep a clone of the provider (it is
    /// cheap) to call this after handing the provider to OpenFeature.
    pub fn events(&self) -> ProviderEvents {
        ProviderEvents::new(self.client.store())
    }

    /// Evaluates `flag` without an asked type, as remote evaluation (OFREP) does: an
    /// experiment's variant name as a string, a dynamic config's value in its own type.
    ///
    /// Errors, reasons, metadata and exposure events are those of the typed evaluations
    /// (see the crate documentation); there is no `TYPE_MISMATCH` and no
    /// [`NO_VARIANT`](crate::NO_VARIANT) error: no variant (or a disabled dynamic config) is
    /// an [`Evaluation`] without a value, for the caller's default.
    pub fn evaluate(
        &self,
        flag: &str,
        ctx: &EvaluationContext,
    ) -> Result<Evaluation, EvaluationError> {
        self.evaluate_prepared(flag, &Prepared::new(ctx))
    }

    /// Evaluates every flag of the config (of the task's request scope, else the one
    /// served now) for one context, as [`ExperimentsProvider::evaluate`] does each: the
    /// flags sorted by name, baseplate experiments valid or not, decider features and the
    /// entries that failed to load. The context is converted once, so the cost is the
    /// context's size plus the flags', not their product.
    pub fn evaluate_all(
        &self,
        ctx: &EvaluationContext,
    ) -> Vec<(String, Result<Evaluation, EvaluationError>)> {
        self.evaluate_every_flag(Prepared::new(ctx))
    }

    /// [`ExperimentsProvider::evaluate_all`] without exposure events, for callers that
    /// fetch every flag ahead of use (OFREP's bulk evaluation, a client-side cache), where
    /// logging would count users who never see a variant as exposed to it: baseplate
    /// experiments log no bucketing event (`bucketing_event_override=False`), decider
    /// features are decided as `get_variant_without_expose`, which still logs holdout
    /// events, as reddit-decider does.
    pub fn evaluate_all_without_exposure(
        &self,
        ctx: &EvaluationContext,
    ) -> Vec<(String, Result<Evaluation, EvaluationError>)> {
        let mut prepared = Prepared::new(ctx);
        prepared.expose = false;
        self.evaluate_every_flag(prepared)
    }

    fn evaluate_every_flag(
        &self,
        prepared: Prepared<'_>,
    ) -> Vec<(String, Result<Evaluation, EvaluationError>)> {
        let snapshot = match &prepared.current {
            Some(r) => r.snapshot().cloned(),
            None => self.client.snapshot(),
        };
        let mut keys: Vec<String> = match snapshot.as_deref() {
            Some(s) => match &s.decider {
                Some(manifest) if s.dialect == Dialect::Decider => manifest
                    .features()
                    .map(|f| f.name().to_owned())
                    .chain(manifest.errors().keys().cloned())
                    .collect(),
                _ => s.config.names().map(str::to_owned).collect(),
            },
            None => Vec::new(),
        };
        keys.sort_unstable();
        keys.dedup();
        keys.into_iter()
            .map(|key| {
                let evaluation = self.evaluate_prepared(&key, &prepared);
                (key, evaluation)
            })
            .collect()
    }

    fn evaluate_prepared(
        &self,
        flag: &str,
        prepared: &Prepared<'_>,
    ) -> Result<Evaluation, EvaluationError> {
        let r = self.resolve(flag, prepared, Kind::Any)?;
        let (value, variant) = match r.answer {
            Answer::Variant(Some(v)) => (Some(Value::String(v.clone())), Some(v)),
            Answer::Variant(None) | Answer::Nothing => (None, None),
            Answer::Json(v) => (Some(v), None),
            Answer::Bool(b) => (Some(Value::Bool(b)), None),
            Answer::Int(i) => (Some(Value::from(i)), None),
            Answer::Float(x) => (Number::from_f64(x).map(Value::Number), None),
            Answer::Str(s) => (Some(Value::String(s)), None),
            Answer::Struct(s) => (context::of_struct_to_json(&s, 1).ok(), None),
        };
        Ok(Evaluation { value, variant, reason: r.reason, why: r.why, metadata: r.metadata })
    }

    fn is_control(&self, variant: &str) -> bool {
        self.options.control_names.iter().any(|c| c == variant)
    }

    /// Resolves `flag` for the asked kind of value.
    fn resolve(
        &self,
        flag: &str,
        prepared: &Prepared<'_>,
        kind: Kind,
    ) -> Result<Resolution, EvaluationError> {
        // Inside a request's scope, its snapshot (the config of the moment it arrived).
        let snapshot = match &prepared.current {
            Some(r) => r.snapshot().cloned(),
            None => self.client.snapshot(),
        };
        match snapshot.as_deref() {
            Some(s) if s.dialect == Dialect::Decider => match &s.decider {
                Some(manifest) => self.resolve_decider(manifest, s.version, flag, prepared, kind),
                None => Err(not_ready()),
            },
            _ => self.resolve_baseplate(flag, prepared, kind),
        }
    }

    fn resolve_baseplate(
        &self,
        flag: &str,
        prepared: &Prepared<'_>,
        kind: Kind,
    ) -> Result<Resolution, EvaluationError> {
        let ctx = prepared.ctx;
        let fresh;
        let request: &RequestExperiments = match &prepared.current {
            Some(r) => r,
            None => {
                fresh = self.client.request();
                &fresh
            }
        };
        let Some(config_version) = request.version() else {
            return Err(not_ready());
        };
        let config = request.config();
        let Some(entry) = config.get(flag) else {
            return Err(not_found(flag));
        };
        if !matches!(kind, Kind::Bool | Kind::String | Kind::Any) {
            return Err(mismatch(flag, kind, "a baseplate experiment (string or boolean)"));
        }
        let inputs = prepared
            .inputs
            .get_or_init(|| {
                context::inputs(ctx, &self.options.targeting_key_field).map_err(|e| e.to_string())
            })
            .as_ref()
            .map_err(|e| error(EvaluationErrorCode::InvalidContext, e.clone()))?;
        let mut trace = BaseplateTrace::default();
        let variant = request
            .variant_traced(flag, inputs, (!prepared.expose).then_some(false), &mut trace)
            .map_err(|e| engine_error(format!("{}: {e}", e.python_exception())))?
            .0
            .map(str::to_owned);
        if let Some(why) = trace.invalid {
            return Err(error(
                EvaluationErrorCode::ParseError,
                format!("experiment `{flag}` is invalid: {why}"),
            ));
        }
        if variant.is_none()
            && ctx.targeting_key.is_none()
            && let Some(field) = &trace.missing_bucketing
        {
            return Err(error(
                EvaluationErrorCode::TargetingKeyMissing,
                format!(
                    "experiment `{flag}` buckets on `{field}`: give a targeting key or that field"
                ),
            ));
        }
        let (reason, why) = trace.reason(variant.is_some());
        let mut metadata = FlagMetadata::default();
        if let Ok(exp) = entry {
            metadata.add_value("id", exp.id());
            if let Some(owner) = json_metadata(exp.owner()) {
                metadata.add_value("owner", owner);
            }
        }
        if let Some(version) = config
            .experiment_ref(flag, request.now())
            .and_then(|r| r.version)
            .and_then(json_metadata)
        {
            metadata.add_value("version", version);
        }
        metadata.add_value("config_version", clamp(config_version));
        Ok(Resolution { answer: Answer::Variant(variant), reason, why, metadata })
    }

    fn resolve_decider(
        &self,
        manifest: &Manifest,
        config_version: u64,
        flag: &str,
        prepared: &Prepared<'_>,
        kind: Kind,
    ) -> Result<Resolution, EvaluationError> {
        let no_key = prepared.ctx.targeting_key.is_none();
        // What every decision of the wrapper uses; where it fails, every call fails.
        let (wctx, core_ctx) = prepared
            .decider
            .get_or_init(|| {
                let wctx =
                    context::decider_context(prepared.ctx, &self.options.targeting_key_field)
                        .map_err(|e| e.to_string())?;
                let core = wctx.context().map_err(|e| format!("DeciderContext: {e}"))?;
                Ok((wctx, core))
            })
            .as_ref()
            .map_err(|e| error(EvaluationErrorCode::InvalidContext, e.clone()))?;
        let Some(feature) = manifest.feature(flag) else {
            return Err(if manifest.errors().contains_key(flag) {
                error(
                    EvaluationErrorCode::ParseError,
                    format!("feature `{flag}` is invalid: {}", manifest.errors()[flag]),
                )
            } else {
                not_found(flag)
            });
        };
        let metadata = decider_metadata(feature, config_version);
        if feature.is_range() {
            if !matches!(kind, Kind::Bool | Kind::String | Kind::Any) {
                return Err(mismatch(flag, kind, "a decider experiment (string or boolean)"));
            }
            // One decider request per prepared context: its exposures share the request's
            // correlation id (inside a scope) and its parsed context. The one decision that
            // logs the exposures also gives the steps the reason comes from.
            let request = prepared.decider_request.get_or_init(|| match &prepared.current {
                Some(current) => self.client.decider_request_in(current, wctx.clone()),
                None => self.client.decider_request(wctx.clone(), None),
            });
            let mut trace = DeciderTrace::new(feature.name());
            let variant = if prepared.expose {
                request.try_get_variant_traced(flag, &Map::new(), &mut trace)
            } else {
                request.try_get_variant_without_expose_traced(flag, &mut trace)
            };
            let variant = match variant {
                Ok(variant) => variant.map(str::to_owned),
                Err(WrapperError::Decide(
                    DecideError::MissingBucketingField(_) | DecideError::MissingBucketVal,
                )) if !no_key => {
                    // The wrapper's `get_variant` gives `None` here, as baseplate does for a
                    // missing bucketing field.
                    return Ok(Resolution {
                        answer: Answer::Variant(None),
                        reason: EvaluationReason::Default,
                        why: "the bucketing field is missing from the context",
                        metadata,
                    });
                }
                Err(e) => return Err(wrapper_error(&e, no_key)),
            };
            let (reason, why) = trace.reason(variant.is_some());
            return Ok(Resolution { answer: Answer::Variant(variant), reason, why, metadata });
        }
        if !feature.enabled() {
            return Ok(Resolution {
                answer: Answer::Nothing,
                reason: EvaluationReason::Disabled,
                why: "the dynamic config is disabled",
                metadata,
            });
        }
        // The wrapper's typed getters (`get_bool`, ..., `get_map` with its numbers as
        // floats), on the context parsed once.
        let kind = match kind {
            // The type the config's own value has.
            Kind::Any => {
                match DynamicConfigType::of(feature.dynamic_value().unwrap_or(&Value::Null)) {
                    DynamicConfigType::Boolean => Kind::Bool,
                    DynamicConfigType::Integer => Kind::Int,
                    DynamicConfigType::Float => Kind::Float,
                    DynamicConfigType::String => Kind::String,
                    DynamicConfigType::Map => Kind::Any,
                    _ => {
                        return Ok(Resolution {
                            answer: Answer::Nothing,
                            reason: EvaluationReason::Static,
                            why: "the dynamic config has no value",
                            metadata,
                        });
                    }
                }
            }
            other => other,
        };
        let answer = match kind {
            Kind::Bool => manifest.get_bool(flag, core_ctx).map(Answer::Bool),
            Kind::Int => manifest.get_int(flag, core_ctx).map(Answer::Int),
            Kind::Float => manifest.get_float(flag, core_ctx).map(Answer::Float),
            Kind::String => manifest.get_string(flag, core_ctx).map(|s| Answer::Str(s.to_owned())),
            Kind::Struct => manifest
                .get_map(flag, core_ctx)
                .map(|m| Answer::Struct(map_to_struct(&python_float_map(m)))),
            Kind::Any => manifest
                .get_map(flag, core_ctx)
                .map(|m| Answer::Json(Value::Object(python_float_map(m)))),
        }
        .map_err(|e| decide_error(&e, no_key))?;
        Ok(Resolution { answer, reason: EvaluationReason::Static, why: "", metadata })
    }

    /// The details of a value of a dynamic config, or of a variant.
    fn details<T>(&self, value: T, variant: Option<String>, r: Resolution) -> ResolutionDetails<T> {
        ResolutionDetails {
            value,
            variant,
            reason: Some(r.reason),
            flag_metadata: Some(r.metadata),
        }
    }
}

/// An evaluation context converted at most once, however many flags are evaluated with it:
/// the baseplate inputs, the decider contexts and the decider request are built on first
/// use.
struct Prepared<'c> {
    ctx: &'c EvaluationContext,
    /// The task's request scope, looked up once.
    current: Option<Arc<RequestExperiments>>,
    inputs: OnceCell<Result<Inputs, String>>,
    decider: OnceCell<Result<(WrapperContext, DeciderCoreContext), String>>,
    decider_request: OnceCell<DeciderRequest>,
    /// Whether evaluations log their exposure events (all but
    /// [`ExperimentsProvider::evaluate_all_without_exposure`]).
    expose: bool,
}

impl<'c> Prepared<'c> {
    fn new(ctx: &'c EvaluationContext) -> Self {
        Prepared {
            ctx,
            current: RequestExperiments::current(),
            inputs: OnceCell::new(),
            decider: OnceCell::new(),
            decider_request: OnceCell::new(),
            expose: true,
        }
    }
}

/// A map dynamic config as the wrapper's `get_map` returns it: every number a float.
fn python_float_map(m: &Map<String, Value>) -> Map<String, Value> {
    m.iter().map(|(k, v)| (k.clone(), python_floats(v))).collect()
}

/// What [`ExperimentsProvider::evaluate`] gives: a flag evaluated without an asked type.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Evaluation {
    /// The variant name (experiments) or the value (dynamic configs); `None` when the user
    /// gets no variant or the dynamic config is disabled: the caller's default applies.
    pub value: Option<Value>,
    /// The variant, for experiments that gave one.
    pub variant: Option<String>,
    /// Why this value (see the crate documentation's table).
    pub reason: EvaluationReason,
    /// Why there is no value (empty when there is one).
    pub why: &'static str,
    /// `id`, `version`, `owner` of the experiment and `config_version`.
    pub metadata: FlagMetadata,
}

/// The kind of value asked for.
#[derive(Clone, Copy, Debug)]
enum Kind {
    Bool,
    Int,
    Float,
    String,
    Struct,
    /// No type asked (OFREP): the variant name, or the dynamic config's own type.
    Any,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Bool => "boolean",
            Kind::Int => "integer",
            Kind::Float => "float",
            Kind::String => "string",
            Kind::Struct => "structure",
            Kind::Any => "untyped",
        }
    }
}

/// What a flag resolved to, before it is typed.
#[derive(Debug)]
enum Answer {
    /// An experiment's variant (`None`: no variant).
    Variant(Option<String>),
    /// A disabled dynamic config: no value.
    Nothing,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Struct(StructValue),
    /// A dynamic config's value in its own type ([`Kind::Any`]).
    Json(Value),
}

#[derive(Debug)]
struct Resolution {
    answer: Answer,
    reason: EvaluationReason,
    /// Why there is no variant, for the [`crate::NO_VARIANT`] error.
    why: &'static str,
    metadata: FlagMetadata,
}

fn not_ready() -> EvaluationError {
    error(EvaluationErrorCode::ProviderNotReady, "no experiments config is loaded yet")
}

fn not_found(flag: &str) -> EvaluationError {
    error(EvaluationErrorCode::FlagNotFound, format!("no experiment or feature `{flag}`"))
}

fn mismatch(flag: &str, kind: Kind, what: &str) -> EvaluationError {
    error(
        EvaluationErrorCode::TypeMismatch,
        format!("`{flag}` is {what}, not {} {} flag", article(kind), kind.name()),
    )
}

fn article(kind: Kind) -> &'static str {
    if matches!(kind, Kind::Int) { "an" } else { "a" }
}

fn engine_error(message: String) -> EvaluationError {
    error(EvaluationErrorCode::General(ENGINE_ERROR.to_owned()), message)
}

fn decide_error(e: &DecideError, no_key: bool) -> EvaluationError {
    let code = match e {
        DecideError::FeatureNotFound(_) => EvaluationErrorCode::FlagNotFound,
        DecideError::TypeMismatch { .. } | DecideError::NumberDeserialization => {
            EvaluationErrorCode::TypeMismatch
        }
        DecideError::Context(_) => EvaluationErrorCode::InvalidContext,
        DecideError::MissingBucketingField(_) | DecideError::MissingBucketVal if no_key => {
            EvaluationErrorCode::TargetingKeyMissing
        }
        _ => EvaluationErrorCode::General(ENGINE_ERROR.to_owned()),
    };
    error(code, e.to_string())
}

fn wrapper_error(e: &WrapperError, no_key: bool) -> EvaluationError {
    match e {
        WrapperError::Decide(d) => decide_error(d, no_key),
        WrapperError::NoDecider => not_ready(),
        other => engine_error(other.to_string()),
    }
}

/// A metadata value of a JSON value (`None` for `null`; lists and objects as JSON text).
fn json_metadata(v: &Value) -> Option<open_feature::FlagMetadataValue> {
    use open_feature::FlagMetadataValue as M;
    Some(match v {
        Value::Null => return None,
        Value::Bool(b) => M::Bool(*b),
        Value::String(s) => M::String(s.clone()),
        Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => M::Int(i),
            (None, Some(f)) if n.is_f64() => M::Float(f),
            _ => M::String(n.to_string()),
        },
        other => M::String(other.to_string()),
    })
}

fn clamp(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn decider_metadata(feature: &Feature, config_version: u64) -> FlagMetadata {
    let mut m = FlagMetadata::default()
        .with_value("id", feature.id())
        .with_value("version", feature.version())
        .with_value("config_version", clamp(config_version));
    if let Some(owner) = feature.owner() {
        m.add_value("owner", owner);
    }
    m
}

/// A JSON object as a `StructValue` (`null` members, which it cannot hold, left out).
fn map_to_struct(m: &Map<String, Value>) -> StructValue {
    let mut s = StructValue::default();
    for (k, v) in m {
        if let Some(v) = json_to_value(v) {
            s.add_field(k, v);
        }
    }
    s
}

fn json_to_value(v: &Value) -> Option<open_feature::Value> {
    use open_feature::Value as V;
    Some(match v {
        Value::Null => return None,
        Value::Bool(b) => V::Bool(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) if !n.is_f64() => V::Int(i),
            _ => V::Float(n.as_f64()?),
        },
        Value::String(s) => V::String(s.clone()),
        Value::Array(items) => V::Array(items.iter().filter_map(json_to_value).collect()),
        Value::Object(m) => V::Struct(map_to_struct(m)),
    })
}

#[async_trait]
impl FeatureProvider for ExperimentsProvider {
    fn metadata(&self) -> &ProviderMetadata {
        &self.metadata
    }

    /// From the client's config store: nothing loaded → `NotReady` (`Error` when the
    /// source's latest check failed), a config served → `Ready`, served but the latest check
    /// failed → `STALE`.
    fn status(&self) -> ProviderStatus {
        status_of(&self.client.store().status())
    }

    async fn resolve_bool_value(
        &self,
        flag_key: &str,
        evaluation_context: &EvaluationContext,
    ) -> EvaluationResult<ResolutionDetails<bool>> {
        let r = self.resolve(flag_key, &Prepared::new(evaluation_context), Kind::Bool)?;
        match &r.answer {
            Answer::Variant(v) => {
                let value = v.as_deref().is_some_and(|v| !self.is_control(v));
                let variant = v.clone();
                Ok(self.details(value, variant, r))
            }
            Answer::Bool(b) => Ok(self.details(*b, None, r)),
            Answer::Nothing => Err(no_variant_error(&r.reason, r.why)),
            _ => Err(mismatch(flag_key, Kind::Bool, "of another type")),
        }
    }

    async fn resolve_int_value(
        &self,
        flag_key: &str,
        evaluation_context: &EvaluationContext,
    ) -> EvaluationResult<ResolutionDetails<i64>> {
        let r = self.resolve(flag_key, &Prepared::new(evaluation_context), Kind::Int)?;
        match r.answer {
            Answer::Int(i) => Ok(self.details(i, None, r)),
            Answer::Nothing => Err(no_variant_error(&r.reason, r.why)),
            _ => Err(mismatch(flag_key, Kind::Int, "of another type")),
        }
    }

    async fn resolve_float_value(
        &self,
        flag_key: &str,
        evaluation_context: &EvaluationContext,
    ) -> EvaluationResult<ResolutionDetails<f64>> {
        let r = self.resolve(flag_key, &Prepared::new(evaluation_context), Kind::Float)?;
        match r.answer {
            Answer::Float(x) => Ok(self.details(x, None, r)),
            Answer::Nothing => Err(no_variant_error(&r.reason, r.why)),
            _ => Err(mismatch(flag_key, Kind::Float, "of another type")),
        }
    }

    async fn resolve_string_value(
        &self,
        flag_key: &str,
        evaluation_context: &EvaluationContext,
    ) -> EvaluationResult<ResolutionDetails<String>> {
        let r = self.resolve(flag_key, &Prepared::new(evaluation_context), Kind::String)?;
        let (value, variant) = match &r.answer {
            Answer::Variant(Some(v)) => (v.clone(), Some(v.clone())),
            Answer::Str(s) => (s.clone(), None),
            Answer::Variant(None) | Answer::Nothing => match &self.options.no_variant {
                NoVariant::Error => return Err(no_variant_error(&r.reason, r.why)),
                NoVariant::Value(v) => (v.clone(), None),
            },
            _ => return Err(mismatch(flag_key, Kind::String, "of another type")),
        };
        Ok(self.details(value, variant, r))
    }

    async fn resolve_struct_value(
        &self,
        flag_key: &str,
        evaluation_context: &EvaluationContext,
    ) -> EvaluationResult<ResolutionDetails<StructValue>> {
        let r = self.resolve(flag_key, &Prepared::new(evaluation_context), Kind::Struct)?;
        let Resolution { answer, reason, why, metadata } = r;
        match answer {
            Answer::Struct(s) => Ok(ResolutionDetails {
                value: s,
                variant: None,
                reason: Some(reason),
                flag_metadata: Some(metadata),
            }),
            Answer::Nothing => Err(no_variant_error(&reason, why)),
            _ => Err(mismatch(flag_key, Kind::Struct, "of another type")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_provider_is_shareable() {
        fn assert_send_sync<T: Send + Sync + 'static>() {}
        assert_send_sync::<ExperimentsProvider>();
    }

    #[test]
    fn maps_become_structures_without_nulls() {
        let m =
            serde_json::json!({"a": 1, "b": 1.5, "c": null, "d": [1, null, "x"], "e": {"f": true}});
        let Value::Object(m) = m else { unreachable!() };
        let s = map_to_struct(&m);
        assert_eq!(s.fields.len(), 4);
        assert_eq!(s.fields["a"], open_feature::Value::Int(1));
        assert_eq!(s.fields["b"], open_feature::Value::Float(1.5));
        assert_eq!(
            s.fields["d"],
            open_feature::Value::Array(vec![open_feature::Value::Int(1), "x".into()])
        );
        assert_eq!(
            s.fields["e"],
            open_feature::Value::Struct(StructValue::default().with_field("f", true))
        );
    }

    #[test]
    fn metadata_values_follow_json_types() {
        use open_feature::FlagMetadataValue as M;
        assert_eq!(json_metadata(&Value::from("1")), Some(M::String("1".into())));
        assert_eq!(json_metadata(&Value::from(3)), Some(M::Int(3)));
        assert_eq!(json_metadata(&Value::from(1.5)), Some(M::Float(1.5)));
        assert_eq!(json_metadata(&Value::Null), None);
        assert_eq!(json_metadata(&serde_json::json!(["a"])), Some(M::String("[\"a\"]".into())));
    }
}
