//! Errors: the document (nothing loads), one entry (left out), one call.

use std::fmt;

use crate::context::ContextError;

/// The document could not be loaded at all (the reference's `DeciderInitException`): it is not
/// JSON, not an object, or `$override_groups` is malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InitError {
    /// Not a JSON object (serde's message: position, or the type found).
    #[error("Decider initialization failed: Json error: {0}")]
    Json(String),
    /// `$override_groups` is malformed (it fails the whole load, as in the reference).
    #[error("Decider initialization failed: Json error: {0}")]
    OverrideGroups(String),
}

/// Why one entry of the document was left out. The rest of the document loads.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EntryError {
    /// The entry does not have the dialect's shape (serde's message), or its `version` is
    /// not accepted. Keyed by config key.
    #[error("Manifest parsing error: {0}")]
    Parse(String),
    /// `$properties` is malformed (keyed `$properties`).
    #[error("Manifest parsing error: {0}")]
    Properties(String),
    /// A range feature without `experiment.bucket_val`. Keyed by the entry's `name`.
    #[error("Missing bucketing_field for range_variant")]
    MissingBucketingField,
    /// A dynamic config whose `value` is a JSON array. The reference panics and loads nothing;
    /// this port rejects only the entry (a documented deviation). Keyed by config key.
    #[error("dynamic config value {0} is an array, which is not supported")]
    ArrayValue(String),
    /// The entry is on a cycle of `parent_hg_name` / `parent_meg_name` links (self-reference
    /// included). The reference overflows its stack; this port rejects the entries on the
    /// cycle (a documented deviation). Keyed by the entry's `name`.
    #[error("on a holdout/mutually exclusive group cycle of {size} entries ({})", .members.join(", "))]
    Cycle {
        /// Config keys of the entries on the cycle (at most eight).
        members: Vec<String>,
        /// How many entries are on it.
        size: usize,
    },
    /// A parent (by config key) parsed but failed to load, so the child fails too, as in the
    /// reference. Keyed by the child's `name`.
    #[error("parent `{parent}` failed to load: {error}")]
    Parent {
        /// The parent's config key.
        parent: String,
        /// The root cause (the first error up the chain of parents; never itself `Parent`).
        error: Box<EntryError>,
    },
    /// The parents of the entry, expanded as a tree (each holdout and group counted every time
    /// it is reached), exceed [`crate::MAX_PARENT_TREE`] entries: a deliberate bound on the
    /// work and the events of one decision. Keyed by the entry's `name`.
    #[error("the holdout/mutually exclusive group parents expand to more than {0} entries")]
    ParentTreeTooLarge(usize),
}

/// What an entry error corresponds to in the reference, for conformance replays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Deviation {
    /// The reference panics on the whole load (an array dynamic-config value).
    ArrayValue,
    /// The reference overflows its stack (a parent cycle).
    Cycle,
}

impl EntryError {
    /// Where the reference crashes instead of reporting this error: the two allowed
    /// deviations of `../shared/decider/README.md`.
    pub fn deviation(&self) -> Option<Deviation> {
        match self {
            EntryError::ArrayValue(_) => Some(Deviation::ArrayValue),
            EntryError::Cycle { .. } => Some(Deviation::Cycle),
            EntryError::Parent { error, .. } => error.deviation(),
            _ => None,
        }
    }
}

/// The type a typed getter wanted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum ValueKind {
    /// `get_bool`.
    Boolean,
    /// `get_int`.
    Integer,
    /// `get_float`.
    Float,
    /// `get_string`.
    String,
    /// `get_map`.
    Map,
}

impl fmt::Display for ValueKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ValueKind::Boolean => "boolean",
            ValueKind::Integer => "integer",
            ValueKind::Float => "float",
            ValueKind::String => "string",
            ValueKind::Map => "map",
        })
    }
}

/// A call failed where the reference raised. [`DecideError::kind`] gives the reference's
/// exception class; the messages are the reference's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecideError {
    /// No loaded feature has this `name`.
    #[error("Feature \"{0}\" not found.")]
    FeatureNotFound(String),
    /// The context has no value for the feature's (or a parent's) `bucket_val`.
    #[error("Missing field \"{0}\" in context for bucket_val = {0}")]
    MissingBucketingField(String),
    /// An override event needs the bucketing value, and the context has none.
    #[error("Missing \"bucket_val\" field in experiment config")]
    MissingBucketVal,
    /// An event's `start_ts` or `stop_ts` does not fit an `i64`.
    #[error("Decider returned malformed event: out of range integral type conversion attempted")]
    MalformedEvent,
    /// A typed getter on a value of another type (or on a null value).
    #[error("Feature \"{feature}\" not of {expected} type.")]
    TypeMismatch {
        /// The feature.
        feature: String,
        /// What the getter wanted.
        expected: ValueKind,
    },
    /// `get_int` on a float or on an integer beyond `i64`.
    #[error("Number deserialization failed")]
    NumberDeserialization,
    /// The context could not be built (only from [`crate::Context::from_json`] inputs).
    #[error("{0}")]
    Context(#[from] ContextError),
}

/// The reference's exception class of a [`DecideError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// `FeatureNotFoundException`.
    FeatureNotFound,
    /// `DeciderException` (decision errors and context errors).
    Decision,
    /// `ValueTypeMismatchException`.
    TypeMismatch,
}

impl DecideError {
    /// The reference's exception class.
    pub fn kind(&self) -> ErrorKind {
        match self {
            DecideError::FeatureNotFound(_) => ErrorKind::FeatureNotFound,
            DecideError::TypeMismatch { .. } => ErrorKind::TypeMismatch,
            _ => ErrorKind::Decision,
        }
    }
}
