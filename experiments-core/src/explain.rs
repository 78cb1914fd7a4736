//! Decision tracing: every evaluation reports its steps to an [`Observer`]. The request path
//! uses [`NoTrace`], which compiles to nothing; `--explain` uses [`Explanation`].

use std::fmt;

use serde::Serialize;
use serde_json::Value;

use crate::targeting::NodeRef;

/// Why an experiment gives no variant because it is switched off. Non-exhaustive: a new way
/// of switching experiments off may be added.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "reason")]
#[non_exhaustive]
pub enum DisabledReason {
    /// `enabled` is falsy in the config.
    EnabledFlag,
    /// `now` is before `start_ts`.
    NotStarted,
    /// `now` is after `stop_ts` (or, for simple experiments, at or after it).
    Expired,
}

/// Why an experiment always returns one fixed variant (baseplate's `ForcedVariantExperiment`).
/// Non-exhaustive: a new cause may be added.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ForcedReason {
    /// A disabled `r2` / `feature_flag` experiment.
    Disabled,
    /// `global_override` is set.
    GlobalOverride,
    /// The `type` is unknown, empty or missing.
    UnknownType,
}

/// One step of an evaluation, reported to an [`Observer`] in the order the engine takes it.
/// `Display` is the line `--explain` prints; the serialized form is tagged by `step`.
///
/// Non-exhaustive: a new decision step (holdouts, mutually exclusive groups, ...) adds a
/// variant, so observers that match on steps need a wildcard arm. Observers still build
/// steps freely (e.g. in tests).
#[derive(Clone, Copy, Debug, Serialize)]
#[serde(rename_all = "snake_case", tag = "step")]
#[non_exhaustive]
pub enum Step<'a> {
    /// No experiment has this name in the config.
    NotFound,
    /// The experiment is invalid (at this instant).
    Invalid {
        /// The error that makes it invalid: config path and message.
        error: &'a crate::ValidationError,
    },
    /// The experiment is switched off: no variant, no bucketing.
    Disabled {
        /// What switched it off (`enabled`, or `now` outside the time window).
        #[serde(flatten)]
        reason: DisabledReason,
    },
    /// The experiment returns a fixed variant.
    Forced {
        /// The fixed variant (`None`: no variant at all).
        variant: Option<&'a str>,
        /// Why it is fixed.
        reason: ForcedReason,
    },
    /// The bucketing attribute was looked up (`value` is `None` when it is missing).
    BucketingValue {
        /// The configured `bucket_val`.
        field: &'a str,
        /// Its value in the inputs.
        value: Option<&'a Value>,
    },
    /// An `overrides` entry of a simple experiment was evaluated.
    Override {
        /// The variant the override forces.
        variant: &'a str,
        /// Whether its targeting tree matched.
        matched: bool,
    },
    /// An r2 override value was found for an input.
    R2Override {
        /// The override parameter.
        param: &'a str,
        /// The variant it names.
        variant: &'a Value,
        /// Whether that variant is one of the experiment's variants (only then it wins).
        accepted: bool,
    },
    /// A node of a targeting tree was evaluated.
    TargetingNode {
        /// Depth in the tree (0 is the root).
        depth: usize,
        /// The node.
        node: NodeRef<'a>,
        /// Its result.
        result: bool,
    },
    /// The r2 targeting parameter that admitted the call (`None`: no parameter did).
    R2Targeting {
        /// The matching parameter.
        param: Option<&'a str>,
    },
    /// Targeting was decided.
    Targeted {
        /// Whether the call is targeted.
        result: bool,
    },
    /// The bucket was computed.
    Bucket {
        /// The seed prefixed to the bucketing value before hashing.
        seed: &'a str,
        /// The bucket, in `0..num_buckets`.
        bucket: u64,
        /// The number of buckets (`num_buckets`, 1000 for r2).
        num_buckets: u64,
    },
    /// The variant whose range holds the bucket (`None`: no variant does).
    Variant {
        /// The chosen variant, if any.
        variant: Option<&'a str>,
        /// The buckets that give it, when known.
        range: Option<BucketRange>,
    },
}

impl fmt::Display for Step<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::NotFound => write!(f, "no experiment of that name in the config"),
            Step::Invalid { error } => write!(f, "invalid: {}: {}", error.path, error.message),
            Step::Disabled { reason } => match reason {
                DisabledReason::EnabledFlag => write!(f, "disabled: `enabled` is false"),
                DisabledReason::NotStarted => {
                    write!(f, "disabled: not started yet (now < start_ts)")
                }
                DisabledReason::Expired => write!(f, "disabled: expired (now past stop_ts)"),
            },
            Step::Forced { variant, reason } => {
                let why = match reason {
                    ForcedReason::Disabled => "disabled r2/feature_flag experiment",
                    ForcedReason::GlobalOverride => "global_override",
                    ForcedReason::UnknownType => "unknown experiment type",
                };
                write!(f, "forced variant {} ({why})", variant.unwrap_or("none"))
            }
            Step::BucketingValue { field, value: Some(v) } => {
                write!(f, "bucketing value {field} = {}", crate::py::to_py_str(v))
            }
            Step::BucketingValue { field, value: None } => {
                write!(f, "bucketing value {field} is missing")
            }
            Step::Override { variant, matched } => {
                write!(f, "override {variant}: {}", if *matched { "matched" } else { "no match" })
            }
            Step::R2Override { param, variant, accepted } => write!(
                f,
                "r2 override via {param} -> {} ({})",
                crate::py::to_py_str(variant),
                if *accepted { "accepted" } else { "not a variant, ignored" }
            ),
            Step::TargetingNode { depth, node, result } => {
                write!(f, "{:indent$}targeting {node} -> {result}", "", indent = depth * 2)
            }
            Step::R2Targeting { param: Some(p) } => write!(f, "r2 targeting matched on {p}"),
            Step::R2Targeting { param: None } => write!(f, "r2 targeting matched no parameter"),
            Step::Targeted { result } => write!(f, "targeted: {result}"),
            Step::Bucket { seed, bucket, num_buckets } => {
                write!(f, "bucket {bucket} of {num_buckets} (seed {seed:?})")
            }
            Step::Variant { variant: Some(v), range: Some(r) } => match r.end {
                Some(end) => write!(f, "variant {v} holds buckets [{}, {end})", r.start),
                None => write!(f, "variant {v} holds buckets [{}, end)", r.start),
            },
            Step::Variant { variant, .. } => {
                write!(f, "variant {}", variant.unwrap_or("none (bucket outside every variant)"))
            }
        }
    }
}

/// The buckets `[start, end)` of a variant (`end: None`: up to the last bucket).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct BucketRange {
    /// First bucket.
    pub start: i64,
    /// One past the last bucket, when bounded.
    pub end: Option<i64>,
}

impl BucketRange {
    /// From Python-int bounds (saturated; `i128::MAX` means unbounded).
    pub(crate) fn new(start: i128, end: i128) -> Self {
        let clamp = |v: i128| i64::try_from(v).unwrap_or(if v < 0 { i64::MIN } else { i64::MAX });
        BucketRange { start: clamp(start), end: (end != i128::MAX).then(|| clamp(end)) }
    }
}

/// Receives the steps of an evaluation.
pub trait Observer {
    /// Called once per step, in order.
    fn step(&mut self, step: Step<'_>);
}

/// The observer of the request path: ignores everything, costs nothing.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoTrace;

impl Observer for NoTrace {
    #[inline(always)]
    fn step(&mut self, _step: Step<'_>) {}
}

/// One recorded step: its text and its structured form.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ExplainStep {
    /// Human-readable line.
    pub text: String,
    /// Structured form (`{"step": "bucket", "bucket": 17, ...}`).
    pub data: Value,
}

/// Records every step, for `--explain`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Explanation {
    /// The steps in order.
    pub steps: Vec<ExplainStep>,
}

impl Observer for Explanation {
    /// Records the step. A bucketing value nested deeper than [`crate::MAX_DEPTH`] is shown
    /// cut (`[[...]]`) in the text and as that text in `data`, instead of being copied.
    fn step(&mut self, step: Step<'_>) {
        let text = step.to_string();
        let data = match step {
            Step::BucketingValue { field, value: Some(v) }
                if crate::py::check_depth(v).is_err() =>
            {
                let shown = Value::String(crate::py::to_py_str(v));
                serde_json::to_value(Step::BucketingValue { field, value: Some(&shown) })
            }
            other => serde_json::to_value(other),
        };
        self.steps.push(ExplainStep { text, data: data.unwrap_or(Value::Null) });
    }
}
