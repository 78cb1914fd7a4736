//! # experiments-decider
//!
//! A pure, IO-free, bit-exact engine for the **reddit-decider** dialect of `experiments.json`
//! (`reddit-decider` 1.18.2 / `reddit-experiments` 1.12.0): range variants, holdout groups
//! (`parent_hg_name`), mutually exclusive groups (`parent_meg_name`), dynamic configs,
//! `$override_groups`, `$properties`, identifier-typed bucketing. The specification is
//! `../shared/decider/SPEC.md`; the conformance vectors are the authority.
//!
//! The crate does no IO: no files, sockets, threads, clocks, global state or logging. A
//! [`Manifest`] is loaded once from the document's bytes; each decision takes a [`Context`]
//! and returns a [`Decision`] borrowing both, with its exposure events as values. What an
//! event needs from outside (the wall clock, a fresh UUID, a correlation id) comes in as an
//! [`EventStamp`] when the event is serialized.
//!
//! ```
//! use experiments_decider::{Context, EventStamp, Manifest};
//!
//! let manifest = Manifest::from_str(r#"{
//!   "new_feed": {"id": 7, "name": "new_feed", "enabled": true, "version": "1",
//!     "type": "range_variant", "emit_event": true,
//!     "experiment": {"experiment_version": 2, "bucket_val": "user_id",
//!       "variants": [{"name": "control_1", "range_start": 0.0, "range_end": 0.5},
//!                    {"name": "treatment_1", "range_start": 0.5, "range_end": 1.0}]}},
//!   "feed_size": {"id": 8, "name": "feed_size", "enabled": true, "version": "1",
//!     "type": "dynamic_config", "value": 25, "experiment": {"experiment_version": 1}}
//! }"#)?;
//! assert!(manifest.errors().is_empty());
//!
//! let ctx = Context::builder().user_id("t2_abc").logged_in(true).build();
//! let decision = manifest.choose("new_feed", &ctx)?;
//! assert!(matches!(decision.variant(), Some("control_1" | "treatment_1")));
//! let event = decision.event(0).ok_or("no event")?;
//! let stamp = EventStamp {
//!     client_ts_ms: 1_700_000_000_000,
//!     uuid: uuid::Uuid::nil(),
//!     correlation_fallback: uuid::Uuid::nil(),
//! };
//! assert!(event.to_v2_json(&stamp).starts_with(r#"{"1":{"str":"experiment"}"#));
//! assert_eq!(manifest.get_int("feed_size", &ctx)?, 25);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Reading a file and deciding for a request (the README's example):
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use experiments_decider::{Context, EventStamp, Manifest};
//!
//! let manifest = Manifest::from_slice(&std::fs::read("/var/local/experiments.json")?)?;
//! for (key, error) in manifest.errors() {
//!     eprintln!("left out {key}: {error}"); // one broken entry never disables the others
//! }
//!
//! let ctx = Context::builder().user_id("t2_abc").logged_in(true).country_code("US").build();
//! let decision = manifest.choose("checkout_redesign", &ctx)?; // holdout, group, bucketing
//! if decision.variant() == Some("one_page") { /* treatment */ }
//! for event in decision.events() {
//!     // Parents' events first; the v2 Thrift-JSON is the reference's, byte for byte. A fresh
//!     // UUID per event and a fallback correlation id per decision come from the caller.
//!     let stamp = EventStamp { client_ts_ms: 1_735_689_600_000, uuid: uuid::Uuid::new_v4(),
//!                              correlation_fallback: uuid::Uuid::new_v4() };
//!     let _json: String = event.to_v2_json(&stamp);
//! }
//! let page_size = manifest.get_int("feed_page_size", &ctx)?; // dynamic configs, typed
//! # Ok(())
//! # }
//! ```
//!
//! Loading never fails because of one entry: a broken entry is left out and reported by
//! [`Manifest::errors`] under the key the reference uses; only a document that is not a JSON
//! object (or has a malformed `$override_groups`) is an [`InitError`]. Where the reference
//! raises, calls return a [`DecideError`] whose [`DecideError::kind`] is the reference's
//! exception class. Nothing here panics on any input.
//!
//! Two deliberate differences from the reference, both where it crashes: a dynamic config
//! whose value is an array is rejected alone ([`EntryError::ArrayValue`]) instead of
//! aborting the load, and a cycle of parents is rejected ([`EntryError::Cycle`]) instead of
//! overflowing the stack. Parents are bounded ([`MAX_PARENT_TREE`]).
//!
//! Services that want what Reddit's Python services get from `reddit_decider.Decider` (the
//! `reddit-experiments` wrapper: a per-request `DeciderContext`, errors swallowed into
//! `None`/defaults, exposure records handed to an event logger) use a [`WrapperRequest`] over a
//! [`WrapperContext`], with a [`WrapperHandler`] receiving each [`WrapperEvent`] (its record as
//! the reference logs it, and the engine's v2 event of the same exposure) and each swallowed
//! [`WrapperError`].

mod context;
mod decide;
mod error;
mod event;
mod format;
mod manifest;
mod numbers;
mod properties;
mod raw;
mod targeting;
mod wrapper;

pub use context::{
    Context, ContextBuilder, ContextError, FieldValue, OtherValue, StringField, TypeMismatch,
};
pub use decide::{Decision, Explanation, INLINE_EVENTS, NoTrace, Observer, ParentEffect, Step};
pub use error::{DecideError, Deviation, EntryError, ErrorKind, InitError, ValueKind};
pub use event::{DecisionKind, EventStamp, Exposure};
pub use manifest::{
    Feature, FeatureKind, LoadWarning, MAX_PARENT_TREE, Manifest, TOTAL_BUCKETS, Variant,
};
pub use serde_json::Value;
pub use uuid::Uuid;
pub use wrapper::{
    DynamicConfigInfo, DynamicConfigType, EventType, ExperimentConfig, HandlerFn, IdentifierType,
    KwargsError, VariantInfo, WrapperContext, WrapperContextBuilder, WrapperError, WrapperEvent,
    WrapperHandler, WrapperRequest, WrapperState, python_floats,
};
mod lint;
pub use lint::DeciderWarning;
