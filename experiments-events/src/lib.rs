//! # experiments-events
//!
//! The event side of the experiments client: the delivered event model ([`EnrichedEvent`],
//! with `json` and Reddit v2 Thrift-JSON encodings), the [`EventSink`] trait a sink
//! implements, and the one [`Pipeline`] every sink shares — the split the OpenTelemetry SDK
//! makes between its batch processor and its exporters.
//!
//! `Pipeline::log` is synchronous and never blocks the request path: a bounded queue, and
//! when it is full the event is dropped and counted. A background task batches by count,
//! bytes and age; exporters retry retryable failures with exponential backoff within a
//! budget while intake keeps flowing; every event is accounted for
//! (`accepted == delivered + dropped + in_flight`); `flush` and `shutdown` take deadlines.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use experiments_core::{Config, Experiments, Inputs};
//! use experiments_events::{Pipeline, PipelineSettings, StdoutSink};
//!
//! let pipeline = Pipeline::start(PipelineSettings::default(), StdoutSink::stdout())?;
//! let config = Config::parse("{}")?;
//! let mut request = Experiments::new(&config, 1.7e9, pipeline.sink(None));
//! request.expose("some_experiment", Some("treatment"), &Inputs::new());
//! let report = pipeline.shutdown(Duration::from_secs(5)).await;
//! assert_eq!(report.remaining, 0);
//! # Ok(()) }
//! ```

mod model;
mod pipeline;
mod sink;
#[cfg(feature = "stdout")]
mod stdout;

/// Re-exported for sinks: `#[async_trait] impl EventSink for MySink`.
pub use async_trait::async_trait;
pub use model::{EncodeError, Encoding, EnrichedEvent, MAX_EVENT_BYTES, SinkEvent};
pub use pipeline::{
    Counters, DEFAULT_EXPORT_TIMEOUT, DEFAULT_MAX_BATCH_BYTES, Dropped, FlushReport, Pipeline,
    PipelineError, PipelineHandle, PipelineSettings,
};
pub use sink::{
    Batch, EncodedEvent, EventFate, EventSink, ExportOutcome, Fates, MAX_REASON_BYTES, SinkProfile,
};
#[cfg(feature = "stdout")]
pub use stdout::StdoutSink;
