//! # experiments-openfeature
//!
//! An [OpenFeature](https://openfeature.dev) provider (`open-feature` 0.3) over the
//! experiments client ([`experiments_sdk::ExperimentsClient`]): services that program against
//! the standard flags API evaluate baseplate experiments and reddit-decider features and
//! dynamic configs with the client's engine, its config store and its event pipeline.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use experiments_openfeature::ExperimentsProvider;
//! use experiments_sdk::ExperimentsClient;
//! use open_feature::{EvaluationContext, OpenFeature};
//!
//! let client = ExperimentsClient::from_settings_file("/etc/my-service/experiments.json").await?;
//! OpenFeature::singleton_mut().await.set_provider(ExperimentsProvider::new(client)).await;
//!
//! // In a request handler:
//! let flags = OpenFeature::singleton().await.create_client();
//! let ctx = EvaluationContext::default()
//!     .with_targeting_key("t2_abc")
//!     .with_custom_field("logged_in", true);
//! // No variant is an error (see `NoVariant`), so the caller's default applies.
//! let checkout = flags
//!     .get_string_value("checkout_redesign", Some(&ctx), None)
//!     .await
//!     .unwrap_or_else(|_| "classic".to_owned());
//! let new_feed = flags.get_bool_value("new_feed", Some(&ctx), None).await.unwrap_or(false);
//! # let _ = (checkout, new_feed); Ok(()) }
//! ```
//!
//! Evaluations log the client's exposure events. Inside a request's
//! [`RequestExperiments::scope`](experiments_sdk::RequestExperiments::scope) (the role of
//! OpenFeature's transaction context) they share that request's dedupe, config snapshot and
//! correlation id; elsewhere each evaluation is a request of its own.
//!
//! # Reasons and errors
//!
//! The reason is read from the engine's own decision steps.
//!
//! | outcome | reason / error code |
//! |---|---|
//! | an override chose the variant (a simple experiment's `overrides` tree, an r2 override parameter, a decider override tree) | `TARGETING_MATCH` |
//! | bucketing chose the variant (after targeting, holdout and group admitted the user) | `SPLIT` |
//! | `global_override` (a forced variant) | `STATIC` |
//! | a decider dynamic config's value | `STATIC` |
//! | no variant: the experiment is disabled, not started, expired or forced off (a disabled r2 / feature flag); a disabled decider feature or dynamic config | `DISABLED` |
//! | no variant otherwise: not targeted, bucket outside every variant, bucketing field missing while a targeting key was given, held out, another member of the group chosen | `DEFAULT` |
//! | a decider override naming no variant (`$none`) | `TARGETING_MATCH` (no variant) |
//! | unknown experiment or feature | error `FLAG_NOT_FOUND` |
//! | integer, float or structure asked of an experiment; a dynamic config asked for another type | error `TYPE_MISMATCH` |
//! | no targeting key, and the experiment's bucketing field is absent from the context | error `TARGETING_KEY_MISSING` |
//! | an invalid experiment, a decider entry that failed to load | error `PARSE_ERROR` |
//! | nothing loaded yet | error `PROVIDER_NOT_READY` |
//! | a custom field the provider cannot read; a `DeciderContext` the engine refuses (a mistyped keyword) | error `INVALID_CONTEXT` |
//! | the engine raised (where baseplate / reddit-decider raise) | error `General("GENERAL")` ([`ENGINE_ERROR`]) |
//! | no variant, for a string (and no value, for a disabled dynamic config) | error `General("NO_VARIANT")` ([`NO_VARIANT`]) with the reason above first in its message ([`no_variant_reason`]), unless [`NoVariant::Value`] is set |
//!
//! Boolean evaluations of experiments have a value for every outcome without an error: `true`
//! for a variant that is not a control name ([`DEFAULT_CONTROL_NAMES`]), `false` for a control
//! or no variant, with the reason above.
//!
//! # Status and events
//!
//! [`FeatureProvider::status`](open_feature::provider::FeatureProvider::status) follows the
//! client's config store; the SDK 0.3 has no provider-event API, so
//! [`ExperimentsProvider::events`] returns a [`ProviderEvents`] receiver of
//! [`ProviderEvent`]s (`Ready`, `Stale`, `Error`, `ConfigurationChanged`).

mod context;
mod events;
mod provider;
mod reason;

pub use events::{ProviderEvent, ProviderEvents};
pub use provider::{
    DEFAULT_CONTROL_NAMES, Evaluation, ExperimentsProvider, NoVariant, PROVIDER_NAME,
    ProviderBuilder,
};
pub use reason::{ENGINE_ERROR, NO_VARIANT, no_variant_reason};
