//! # experiments-core
//!
//! The pure evaluation engine of the experiments client: a faithful, allocation-free port of
//! Reddit's `baseplate.lib.experiments` (baseplate 1.5.5). It parses an `experiments.json`
//! document into an immutable [`Config`] snapshot, evaluates variants with the same SHA-1
//! bucketing, targeting trees and overrides, and decides which `choose`/`expose` events a
//! request logs, deduping bucketing events per request.
//!
//! The crate does no IO: no files, sockets, threads, clocks or logging. The caller passes the
//! instant (`now`, epoch seconds) and the inputs; events go to an [`EventHandler`] the caller
//! provides.
//!
//! ```
//! use experiments_core::{Config, Experiments, Inputs, NoopHandler};
//!
//! let config = Config::parse(r#"{
//!   "new_feed": {"id": 7, "name": "new_feed", "owner": "feeds", "type": "single_variant",
//!     "version": "1", "start_ts": 0, "stop_ts": 4102444800,
//!     "experiment": {"experiment_version": 1, "bucket_val": "user_id",
//!       "variants": [{"name": "control", "size": 0.5}, {"name": "treatment", "size": 0.5}]}}
//! }"#)?;
//! let mut request = Experiments::new(&config, 1_700_000_000.0, NoopHandler);
//! let inputs = Inputs::new().with("user_id", "t2_abc").with("logged_in", true);
//! let variant = request.variant("new_feed", &inputs, None)?;
//! assert!(matches!(variant, Some("control" | "treatment")));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Where baseplate raised an exception, [`Experiments::variant`] returns an [`EvalError`];
//! nothing here panics on any input.

mod bucketing;
mod client;
mod config;
mod dedupe;
mod document;
mod error;
mod event;
mod experiment;
mod explain;
mod inputs;
mod lint;
mod py;
mod r2;
mod shares;
mod simple;
mod targeting;
mod variant_set;

pub use bucketing::{Modulus, Seed as BucketSeed};
pub use client::{BucketingEvent, Experiments, RequestScope};
pub use config::{Config, Evaluation, ValidationReport};
pub use dedupe::{INLINE_BYTES, INLINE_KEYS};
pub use error::{ConfigError, Deviation, EvalError, PyOp, PyType, ValidationError};
pub use event::{
    EVENT_FIELDS, Event, EventHandler, EventType, FnHandler, NoopHandler, OwnedEvent,
    OwnedExperimentRef,
};
pub use experiment::{Experiment, ExperimentClass, ExperimentRef};
pub use explain::{
    BucketRange, DisabledReason, ExplainStep, Explanation, ForcedReason, NoTrace, Observer, Step,
};
pub use inputs::{Inputs, User};
pub use lint::{LintWarning, TargetingSite};
pub use py::MAX_DEPTH;
pub use serde_json::Value;

/// Python `str(value)` of a JSON value (`True`, `None`, `1.0`, `['a', 1]`), as baseplate
/// writes bucketing values into hashes and dedupe keys. Lists and objects nested deeper than
/// [`MAX_DEPTH`] are written `...` (`[[...]]`) instead of recursing further.
pub fn py_str(value: &Value) -> String {
    py::to_py_str(value)
}
pub use targeting::NodeRef;
