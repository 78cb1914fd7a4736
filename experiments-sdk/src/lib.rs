//! # experiments-sdk
//!
//! The one dependency a service needs to run experiments compatible with Reddit's
//! `baseplate.lib.experiments`: the evaluation engine, a config store fed by a file or a URL,
//! the event pipeline and its sinks, and the [`ExperimentsClient`] that ties them together,
//! built from one settings document ([`Settings`]).
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use experiments_sdk::{ExperimentsClient, Inputs, Settings};
//!
//! let settings = Settings::from_json(
//!     r#"{"config": {"path": "/var/local/experiments.json"}, "sink": "stdout"}"#,
//! )?;
//! let client = ExperimentsClient::from_settings(settings).await?;
//! // In a request handler:
//! let exp = client.request();
//! let inputs = Inputs::new().with("user_id", "t2_abc").with("logged_in", true);
//! if exp.variant("checkout_redesign", &inputs)? == Some("one_page") {
//!     exp.expose("checkout_redesign", Some("one_page"), &inputs);
//! }
//! // At exit:
//! client.shutdown(Duration::from_secs(5)).await;
//! # Ok(()) }
//! ```
//!
//! # Features
//!
//! - `stdout` (default): the stdout sink.
//! - `http`: the HTTP sink for v2 event collectors; `kafka`: the Kafka sink (builds
//!   librdkafka).
//! - `http-config`: config documents fetched over HTTP(S).
//! - `metrics`: pipeline counters through the `metrics` facade.
//!
//! Custom sinks implement [`events::EventSink`]; custom config sources implement
//! [`watch::ConfigSource`]. Both plug into [`ExperimentsClient::builder`].

mod client;
mod correlation;
mod decider_request;
mod settings;

pub use client::{
    ClientBuilder, ClientError, ClientStatus, ExperimentsClient, RequestBuilder, RequestExperiments,
};
pub use correlation::{CorrelationId, MAX_REQUEST_ID_LEN};
pub use decider_request::{DeciderExposure, DeciderRequest};
pub use experiments_core::{
    BucketingEvent, Config, ConfigError, EvalError, Explanation, Inputs, NoTrace, Observer, User,
    ValidationError, Value,
};
pub use experiments_decider::{IdentifierType, WrapperContext as DeciderContext};
pub use settings::{
    ConfigSettings, DEFAULT_STARTUP_TIMEOUT, Settings, SettingsError, SinkSettings, SourceSettings,
    Startup,
};

/// The baseplate-dialect engine in full: events, explanations, validation reports.
pub mod core {
    pub use experiments_core::*;
}

/// The reddit-decider engine in full: manifest, decisions, the wrapper layer, events.
pub mod decider {
    pub use experiments_decider::*;
}

/// The event model, the [`EventSink`](experiments_events::EventSink) trait, the pipeline
/// and the stdout sink.
pub mod events {
    pub use experiments_events::*;
}

/// The config store and its sources (file, fixed, HTTP with `http-config`).
pub mod watch {
    pub use experiments_watch::*;
}

/// The Kafka sink.
#[cfg(feature = "kafka")]
pub mod kafka {
    pub use experiments_kafka::*;
}

/// The HTTP sink for v2 event collectors.
#[cfg(feature = "http")]
pub mod http {
    pub use experiments_http::*;
}
