//! # experiments-tower
//!
//! The glue every service writing [`experiments_sdk`] into a tower or axum stack would
//! otherwise write itself: one shared [`ExperimentsClient`](experiments_sdk::ExperimentsClient),
//! a per-request object, the user and a correlation id taken from the request.
//!
//! - [`ExperimentsLayer`] (a [`tower::Layer`]) gives each request an [`ExperimentsContext`]
//!   in its extensions: the request's
//!   [`RequestExperiments`](experiments_sdk::RequestExperiments) (config snapshot of the
//!   moment the request arrived, its own `choose` dedupe, a correlation id from
//!   `traceparent` or `x-request-id`) and its base [`Inputs`](experiments_sdk::Inputs) from
//!   an [`InputsExtractor`]. The inner service runs inside
//!   [`RequestExperiments::scope`](experiments_sdk::RequestExperiments::scope), so code
//!   without a handle on the request (an OpenFeature provider) finds it with
//!   [`RequestExperiments::current`](experiments_sdk::RequestExperiments::current).
//! - With the `axum` feature (default), [`ExperimentsContext`] is a handler argument; a
//!   route outside the layer answers 500 (`MissingExperimentsLayer`).
//!
//! Works with any `tower::Service<http::Request<B>>`: axum 0.8 routers, hyper services
//! through `hyper-util`'s tower adapter, `tower::service_fn`.
//!
//! ```
//! use experiments_sdk::Inputs;
//! use experiments_tower::{ExperimentsContext, ExperimentsLayer};
//! use http::{Request, Response};
//! use tower::{ServiceBuilder, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let config = experiments_sdk::Config::parse(r#"{"rollout": {"id": 1, "name": "rollout",
//! #   "owner": "o", "type": "feature_rollout", "version": "1", "start_ts": 0,
//! #   "stop_ts": 4102444800, "experiment": {"experiment_version": 1,
//! #   "variants": [{"name": "on", "size": 1.0}]}}}"#)?;
//! # let client = experiments_sdk::ExperimentsClient::builder().config(config)
//! #     .sink_settings(experiments_sdk::SinkSettings::None).build().await?;
//! // Once, when the service is built:
//! let service = ServiceBuilder::new()
//!     .layer(ExperimentsLayer::new(client.clone()).inputs(|parts: &http::request::Parts| {
//!         let user = parts.headers.get("x-user-id").and_then(|v| v.to_str().ok());
//!         Inputs::new().with("user_id", user.unwrap_or_default())
//!     }))
//!     .service_fn(|req: Request<()>| async move {
//!         let exp = req.extensions().get::<ExperimentsContext>().expect("behind the layer");
//!         let variant = exp.variant("rollout")?.unwrap_or("off").to_owned();
//!         Ok::<_, experiments_sdk::EvalError>(Response::new(variant))
//!     });
//! // Per request (hyper, axum or a test calls it):
//! let req = Request::builder().header("x-user-id", "t2_abc").header("x-request-id", "req-1").body(())?;
//! assert_eq!(service.oneshot(req).await?.into_body(), "on");
//! // At exit:
//! client.shutdown(std::time::Duration::from_secs(5)).await;
//! # Ok(()) }
//! ```
//!
//! # axum
//!
//! ```
//! # #[cfg(feature = "axum")] mod demo {
//! use axum::{Router, routing::get};
//! use experiments_sdk::{ExperimentsClient, Inputs};
//! use experiments_tower::{ExperimentsContext, ExperimentsLayer};
//! use http::request::Parts;
//!
//! async fn checkout(exp: ExperimentsContext) -> String {
//!     let variant = exp.variant("checkout_redesign").ok().flatten();
//!     exp.expose("checkout_redesign", variant);
//!     format!("checkout: {}", variant.unwrap_or("default"))
//! }
//!
//! fn app(client: ExperimentsClient) -> Router {
//!     Router::new().route("/checkout", get(checkout)).layer(
//!         // After the routes: the layer wraps every route above it.
//!         ExperimentsLayer::new(client).inputs(|parts: &Parts| {
//!             match parts.headers.get("x-user-id").and_then(|v| v.to_str().ok()) {
//!                 Some(user) => Inputs::new().with("user_id", user),
//!                 None => Inputs::new(),
//!             }
//!         }),
//!     )
//! }
//! # }
//! # fn main() {}
//! ```
//!
//! `Option<ExperimentsContext>` is an extractor too: `None` where the layer is missing.
//!
//! # Features
//!
//! - `axum` (default): the [`ExperimentsContext`] extractor and its rejection.

mod context;
mod correlation;
mod inputs;
mod layer;

#[cfg(feature = "axum")]
mod axum;

#[cfg(feature = "axum")]
pub use crate::axum::MissingExperimentsLayer;
pub use context::ExperimentsContext;
pub use correlation::{CorrelationHeader, CorrelationSource, MAX_CORRELATION_HEADER_LEN};
pub use inputs::{InputsExtractor, NoInputs};
pub use layer::{ExperimentsLayer, ExperimentsService, ResponseFuture};
