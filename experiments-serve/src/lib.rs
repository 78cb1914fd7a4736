//! # experiments-serve
//!
//! An evaluation sidecar speaking the [OpenFeature Remote Evaluation Protocol][ofrep]
//! (OFREP): services in any language evaluate this workspace's baseplate experiments and
//! reddit-decider features and dynamic configs with a generic OFREP provider, and the
//! sidecar logs their exposure events through the client's pipeline.
//!
//! [ofrep]: https://github.com/open-feature/protocol
//!
//! Most users run it as `experiments serve --settings FILE`; this crate is that server as
//! a library ([`Server`]).
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use experiments_sdk::ExperimentsClient;
//! use experiments_serve::{Server, read_settings_file};
//!
//! let (settings, serve) = read_settings_file("/etc/experiments/serve.json")?;
//! let listener = tokio::net::TcpListener::bind(serve.listen).await?;
//! let client = ExperimentsClient::from_settings(settings).await?;
//! let report = Server::new(client, serve)?
//!     .run(listener, async { let _ = tokio::signal::ctrl_c().await; })
//!     .await?;
//! println!("answered {} requests", report.requests);
//! # Ok(()) }
//! ```
//!
//! # Endpoints
//!
//! | endpoint | answer |
//! |---|---|
//! | `POST /ofrep/v1/evaluate/flags/{key}` | `{key, value, reason, variant, metadata}`; no `value` and `variant: null` when the user gets no variant (the protocol's code-default answer); `404 FLAG_NOT_FOUND`; `400` `PARSE_ERROR` / `INVALID_CONTEXT` / `TARGETING_KEY_MISSING` / `GENERAL`; `413` for a body over the limit; `503 PROVIDER_NOT_READY` before a config is loaded |
//! | `POST /ofrep/v1/evaluate/flags` | `{flags: [...]}` of every flag with an `ETag`; `304` for an `If-None-Match` naming it (same config, same context) |
//! | `GET /ofrep/v1/configuration` | name and capabilities (OFREP's configuration extension) |
//! | `GET /healthz` | `200` while the process runs |
//! | `GET /readyz` | `200` with the config version and age once one is loaded, else `503` |
//! | `GET /metrics` | Prometheus text: evaluations by flag and outcome, request latency, config version and last error, pipeline counters |
//!
//! Every answer is JSON, errors included (`{"errorCode", "errorDetails"}`): `401` with
//! `WWW-Authenticate: Bearer` on OFREP routes without accepted credentials, `429` with
//! `Retry-After: 1` over `max_concurrent_requests` (OFREP routes only: probes are never
//! refused for load), `408` over `request_timeout`, `404`/`405` for other paths and methods.
//!
//! Values: an experiment's variant name (a string); a decider dynamic config's value in its
//! own type (boolean, integer, float, string, object — numbers in objects as floats, as the
//! Python wrapper's `get_map`). Reasons and metadata are those of
//! [`experiments_openfeature`]. Each request is one experiments scope (its own bucketing
//! event dedupe, its correlation id from `traceparent` or `x-request-id`); bulk evaluations
//! log the exposures of every flag they answer unless `bulk_exposures` is false (a `304`
//! evaluates nothing and logs none). With `cors` ([`CorsSettings`]), browsers on the allowed
//! origins may call too.

mod metrics;
mod ofrep;
mod server;
mod settings;

/// The strict `/metrics` reader the unit tests share with `tests/http.rs`.
#[cfg(test)]
#[path = "../tests/support/prometheus.rs"]
mod prometheus;

pub use server::{ServeError, ServeReport, Server};
pub use settings::{AuthSettings, CorsSettings, DEFAULT_LISTEN, ServeSettings, read_settings_file};
