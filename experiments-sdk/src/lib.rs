//! # experiments
//!
//! The one dependency a service needs to run experiments compatible with Reddit's
//! `baseplate.lib.experiments`: the evaluation engine, the config file watcher (feature
//! `watch`), the event pipeline with its stdout sink (feature `stdout`), the Kafka and HTTP
//! sinks (features `kafka`, `http`), and the [`ExperimentsClient`] that ties them together.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use experiments_sdk::{ClientSettings, ExperimentsClient, Inputs, events::StdoutSink};
//!
//! let client = ExperimentsClient::start(ClientSettings::default(), StdoutSink::stdout())?;
//! // In a request handler:
//! let mut exp = client.request();
//! let inputs = Inputs::new().with("user_id", "t2_abc").with("logged_in", true);
//! if exp.variant("checkout_redesign", &inputs, None)? == Some("one_page") {
//!     exp.expose("checkout_redesign", Some("one_page"), &inputs);
//! }
//! // At exit:
//! client.shutdown(Duration::from_secs(5)).await;
//! # Ok(()) }
//! ```
//!
//! Custom sinks implement [`events::EventSink`] (one async method).

mod client;

pub use client::{ClientError, ClientSettings, ExperimentsClient, RequestExperiments};
pub use experiments_core::*;

/// The event model, the `EventSink` trait, the pipeline and the stdout sink.
pub mod events {
    pub use experiments_events::*;
}

/// The config file watcher.
#[cfg(feature = "watch")]
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
