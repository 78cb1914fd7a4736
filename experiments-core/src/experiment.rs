//! One experiment of a config: parsing (`parse_experiment`) and the time-dependent
//! resolution into what baseplate would have built at that instant.

use std::sync::Arc;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::error::{Deviation, EvalError, Problem, PyType, ValidationError};
use crate::event::OwnedExperimentRef;
use crate::explain::{DisabledReason, ForcedReason, Observer, Step};
use crate::inputs::{Inputs, Key};
use crate::py::{self, PyNum};
use crate::r2::R2;
use crate::simple::Simple;

/// The Python class baseplate would use for an experiment; reported in events
/// ([`ExperimentClass::as_str`] is the name they carry). Non-exhaustive: a new experiment
/// kind may bring a new class.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[non_exhaustive]
pub enum ExperimentClass {
    /// `r2` experiments.
    R2Experiment,
    /// `feature_flag` experiments.
    FeatureFlag,
    /// `single_variant`, `multi_variant`, `feature_rollout`, `range_variant` experiments.
    SimpleExperiment,
    /// Disabled r2/feature_flag, `global_override` and unknown types.
    ForcedVariantExperiment,
}

impl ExperimentClass {
    /// The class name as baseplate spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            ExperimentClass::R2Experiment => "R2Experiment",
            ExperimentClass::FeatureFlag => "FeatureFlag",
            ExperimentClass::SimpleExperiment => "SimpleExperiment",
            ExperimentClass::ForcedVariantExperiment => "ForcedVariantExperiment",
        }
    }
}

/// The configured `bucket_val`.
#[derive(Debug, Clone)]
pub(crate) enum BucketVal {
    /// A string key. `matchable` is false when it is not lower-case: baseplate compares it
    /// with lower-cased keys, so it never matches.
    Str { raw: Key, matchable: bool },
    /// A hashable non-string (`null`, a number): never found among string keys.
    Other(Box<str>),
    /// A list or object: every lookup raises `TypeError: unhashable type`.
    Unhashable(PyType),
}

impl BucketVal {
    pub(crate) fn new(config: Option<&Value>) -> BucketVal {
        match config {
            None => BucketVal::Str { raw: Key::new("user_id"), matchable: true },
            Some(Value::String(s)) => {
                BucketVal::Str { raw: Key::new(s), matchable: py::is_lowercase_fixed_point(s) }
            }
            Some(v @ (Value::Array(_) | Value::Object(_))) => BucketVal::Unhashable(py::py_type(v)),
            Some(other) => BucketVal::Other(py::to_py_str(other).into()),
        }
    }

    /// The text shown for the field.
    pub(crate) fn field(&self) -> &str {
        match self {
            BucketVal::Str { raw, .. } => raw,
            BucketVal::Other(text) => text,
            BucketVal::Unhashable(ty) => ty.name(),
        }
    }

    /// The bucketing value among the lower-cased inputs; `None` when missing or null.
    pub(crate) fn lookup<'i, O: Observer>(
        &self,
        inputs: &'i Inputs,
        obs: &mut O,
    ) -> Result<Option<&'i Value>, EvalError> {
        let found = match self {
            BucketVal::Unhashable(ty) => return Err(EvalError::Unhashable(*ty)),
            BucketVal::Other(_) | BucketVal::Str { matchable: false, .. } => None,
            BucketVal::Str { raw, .. } => inputs.get_lowered(raw),
        };
        obs.step(Step::BucketingValue { field: self.field(), value: found });
        Ok(found.filter(|v| !v.is_null()))
    }

    /// `get_unique_id`'s value: `kwargs.get(bucket_val)` on the original-case inputs, if
    /// truthy. The dedupe key is `f"{name}:{bucket_val}:{str(value)}"`.
    pub(crate) fn unique_value<'i>(
        &self,
        inputs: &'i Inputs,
    ) -> Result<Option<&'i Value>, EvalError> {
        match self {
            BucketVal::Unhashable(ty) => Err(EvalError::Unhashable(*ty)),
            BucketVal::Other(_) => Ok(None),
            BucketVal::Str { raw, .. } => Ok(inputs.get_key(raw).filter(|v| py::truthy(v))),
        }
    }
}

/// A `start_ts` / `stop_ts` bound.
#[derive(Debug, Clone)]
enum Bound {
    /// A float, or an int that converts to a float exactly: compared as floats.
    Exact(f64),
    /// An int beyond 2^53: compared exactly with the float `now`.
    Num(PyNum),
    /// From `expires`: the start is "the moment of parsing", i.e. `now` itself.
    Now,
    /// A value Python cannot compare with a float; the comparison raises.
    Incomparable(ValidationError),
}

impl Bound {
    fn cmp_now(&self, now: f64) -> Result<std::cmp::Ordering, &ValidationError> {
        match self {
            Bound::Exact(b) => Ok(now.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal)),
            Bound::Num(n) => Ok(PyNum::Float(now).cmp(*n).unwrap_or(std::cmp::Ordering::Equal)),
            Bound::Now => Ok(std::cmp::Ordering::Equal),
            Bound::Incomparable(e) => Err(e),
        }
    }
}

/// What a parsed experiment is when enabled.
#[derive(Debug, Clone)]
pub(crate) enum Body {
    Forced { variant: Option<Box<str>>, reason: ForcedReason },
    R2(R2),
    Simple(Simple),
}

/// One experiment of a config, parsed once; `Experiment::resolve` gives what baseplate
/// would have built at a given instant.
#[derive(Debug, Clone)]
pub struct Experiment {
    key: Box<str>,
    id: i64,
    name: Box<str>,
    owner: Value,
    version: Value,
    /// The lower-cased `type`, when it is a string (read by the lint).
    pub(crate) type_name: Option<String>,
    start: Bound,
    stop: Bound,
    enabled: bool,
    legacy: bool,
    /// What the experiment is when enabled, or the error that makes it invalid at every
    /// instant (read by the lint and the share computation).
    pub(crate) body: Result<Body, ValidationError>,
    /// `f"{name}:{bucket_val}:"` for experiments that can log bucketing events.
    dedupe_prefix: Box<str>,
    /// `start_ts` / `stop_ts` as numbers, when numeric.
    window: (Option<f64>, Option<f64>),
    /// The event attributes of the experiment when it buckets (R2, feature flag, simple),
    /// shared by every event kept from it.
    event_meta: Option<Arc<OwnedExperimentRef>>,
}

/// An experiment as baseplate would have built it at one instant.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Active<'a> {
    Forced { variant: Option<&'a str>, reason: ForcedReason },
    R2(&'a R2),
    Simple { simple: &'a Simple, disabled: Option<DisabledReason> },
}

/// A reference to an experiment as it appears in events: its class and the attributes that
/// class has (a `ForcedVariantExperiment` has only its class).
///
/// Built by the engine ([`crate::Evaluation::experiment`]); the fields are public to read.
/// Non-exhaustive: attributes may be added.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[non_exhaustive]
pub struct ExperimentRef<'a> {
    /// The baseplate class.
    pub class: ExperimentClass,
    /// The experiment id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<i64>,
    /// The experiment name (the `name` field, not necessarily the config key).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<&'a str>,
    /// The `owner` field (`null` when absent).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<&'a Value>,
    /// `version` for r2/feature_flag, `experiment.experiment_version` for simple experiments.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<&'a Value>,
    /// `start_ts` (not part of baseplate's event; for sinks' schemas).
    #[serde(skip)]
    pub start_ts: Option<f64>,
    /// `stop_ts` (not part of baseplate's event; for sinks' schemas).
    #[serde(skip)]
    pub stop_ts: Option<f64>,
    /// The same attributes, owned and shared, for [`crate::Event::to_owned_event`].
    #[serde(skip)]
    pub(crate) shared: Shared<'a>,
}

/// A link from an [`ExperimentRef`] to its experiment's shared [`OwnedExperimentRef`]: not part of the
/// reference's value (equality and `Debug` ignore it).
#[derive(Clone, Copy, Default)]
pub(crate) struct Shared<'a>(pub(crate) Option<&'a Arc<OwnedExperimentRef>>);

impl PartialEq for Shared<'_> {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl std::fmt::Debug for Shared<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("..")
    }
}

fn name_problem(message: String) -> Problem {
    Problem::new("name", message).deviation(Deviation::ExperimentName)
}

fn bound(value: &Value, which: &str, key: &str) -> Bound {
    match py::as_num(value) {
        Some(PyNum::Float(f)) => Bound::Exact(f),
        Some(PyNum::Int(i)) if i.unsigned_abs() <= 1 << 53 => Bound::Exact(i as i64 as f64),
        Some(n) => Bound::Num(n),
        None => Bound::Incomparable(ValidationError {
            experiment: key.to_owned(),
            path: which.to_owned(),
            message: format!("TypeError: {which} must be a number, found {}", py::type_name(value)),
            deviation: None,
        }),
    }
}

/// Days from 1970-01-01 to the given civil date (proleptic Gregorian).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The value of a Unicode decimal digit (`\d` in a Python `str` regex).
fn decimal_digit(c: char) -> Option<u32> {
    if let Some(d) = c.to_digit(10) {
        return Some(d);
    }
    use unicode_general_category::{GeneralCategory, get_general_category};
    if get_general_category(c) != GeneralCategory::DecimalNumber {
        return None;
    }
    // Decimal digits come in contiguous runs of ten starting at zero.
    let mut run = 0u32;
    let mut cp = c as u32;
    while cp > 0 {
        match char::from_u32(cp - 1) {
            Some(p) if get_general_category(p) == GeneralCategory::DecimalNumber => {
                run += 1;
                cp -= 1;
            }
            _ => break,
        }
    }
    Some(run % 10)
}

/// `datetime.strptime(s, "%Y-%m-%d")` as seconds since the epoch (UTC midnight).
fn parse_expires(s: &str) -> Option<f64> {
    let chars: Vec<char> = s.chars().collect();
    let digit = |i: usize| chars.get(i).copied().and_then(decimal_digit);
    let ascii_in =
        |i: usize, lo: char, hi: char| chars.get(i).is_some_and(|c| (lo..=hi).contains(c));
    let val = |c: char| c.to_digit(10).unwrap_or(0) as i64;
    // %Y: exactly four digits.
    let mut year = 0i64;
    for i in 0..4 {
        year = year * 10 + i64::from(digit(i)?);
    }
    if chars.get(4) != Some(&'-') {
        return None;
    }
    // %m alternatives in regex order: 1[0-2] | 0[1-9] | [1-9]; then '-' must follow.
    let month_options: [(usize, Option<i64>); 3] = [
        (2, (chars.get(5) == Some(&'1') && ascii_in(6, '0', '2')).then(|| 10 + val(chars[6]))),
        (2, (chars.get(5) == Some(&'0') && ascii_in(6, '1', '9')).then(|| val(chars[6]))),
        (1, ascii_in(5, '1', '9').then(|| val(chars[5]))),
    ];
    for (len, month) in month_options {
        let Some(month) = month else { continue };
        let dash = 5 + len;
        if chars.get(dash) != Some(&'-') {
            continue;
        }
        let d0 = dash + 1;
        // %d alternatives in order: 3[01] | [12]\d | 0[1-9] | [1-9] | ' '[1-9]
        let day_options: [(usize, Option<i64>); 5] = [
            (
                2,
                (chars.get(d0) == Some(&'3') && ascii_in(d0 + 1, '0', '1'))
                    .then(|| 30 + val(chars[d0 + 1])),
            ),
            (
                2,
                (ascii_in(d0, '1', '2'))
                    .then(|| digit(d0 + 1).map(|d| val(chars[d0]) * 10 + i64::from(d)))
                    .flatten(),
            ),
            (
                2,
                (chars.get(d0) == Some(&'0') && ascii_in(d0 + 1, '1', '9'))
                    .then(|| val(chars[d0 + 1])),
            ),
            (1, ascii_in(d0, '1', '9').then(|| val(chars[d0]))),
            (
                2,
                (chars.get(d0) == Some(&' ') && ascii_in(d0 + 1, '1', '9'))
                    .then(|| val(chars[d0 + 1])),
            ),
        ];
        // re.match takes the first alternative that matches; the whole string must be used.
        let Some((dlen, day)) = day_options.iter().find_map(|(l, d)| d.map(|d| (*l, d))) else {
            // No day here: the regex backtracks into the next month alternative.
            continue;
        };
        if d0 + dlen != chars.len() {
            return None;
        }
        let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
        let month_days = [31, if leap { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
        if year < 1 || day > month_days[(month - 1) as usize] {
            return None;
        }
        return Some(days_from_civil(year, month, day) as f64 * 86_400.0);
    }
    None
}

impl Experiment {
    /// Parses the config entry `key` (baseplate's `parse_experiment`, minus the clock: the
    /// time window is checked at evaluation).
    pub(crate) fn parse(key: &str, config: &Value) -> Result<Experiment, ValidationError> {
        Self::parse_inner(key, config).map_err(|p| p.into_validation(key))
    }

    fn parse_inner(key: &str, config: &Value) -> Result<Experiment, Problem> {
        let Value::Object(cfg) = config else {
            return Err(Problem::new(
                "",
                format!("an experiment must be an object, found {}", py::type_name(config)),
            ));
        };
        let type_name = match cfg.get("type") {
            Some(Value::String(t)) => Some(py::lower(t)),
            Some(v @ (Value::Array(_) | Value::Object(_))) => {
                return Err(Problem::new(
                    "type",
                    format!("type must be a string, found {}", py::type_name(v)),
                ));
            }
            Some(v) if py::truthy(v) => {
                return Err(Problem::new(
                    "type",
                    format!("type must be a string, found {}", py::type_name(v)),
                ));
            }
            _ => None,
        };
        let id = match cfg.get("id") {
            Some(Value::Number(n)) if !n.is_f64() => n.as_i64().ok_or_else(|| {
                Problem::new("id", format!("id {n} is out of the signed 64-bit integer range"))
            })?,
            Some(Value::Bool(_)) => {
                return Err(Problem::new(
                    "id",
                    "Integer id must be provided for experiment (found a boolean)",
                )
                .deviation(Deviation::IdBoolean));
            }
            // Integer literals beyond the u64 range reach us as floats (serde_json reads them
            // so); an integral float that large can only have been such an id.
            Some(Value::Number(n))
                if n.as_f64()
                    .is_some_and(|f| f.fract() == 0.0 && f.abs() >= (1u64 << 63) as f64) =>
            {
                return Err(Problem::new(
                    "id",
                    format!(
                        "id {:.0} is out of the signed 64-bit integer range",
                        n.as_f64().unwrap_or_default()
                    ),
                ));
            }
            Some(other) => {
                return Err(Problem::new(
                    "id",
                    format!(
                        "Integer id must be provided for experiment (found {})",
                        py::type_name(other)
                    ),
                ));
            }
            None => {
                return Err(Problem::new("id", "Integer id must be provided for experiment."));
            }
        };
        let start_ts = cfg.get("start_ts").filter(|v| !v.is_null());
        let stop_ts = cfg.get("stop_ts").filter(|v| !v.is_null());
        let (start, stop) = match (start_ts, stop_ts) {
            (Some(a), Some(b)) => (bound(a, "start_ts", key), bound(b, "stop_ts", key)),
            _ => match cfg.get("expires") {
                None => {
                    return Err(Problem::new(
                        "start_ts",
                        "missing start_ts and/or stop_ts (and no expires)",
                    ));
                }
                Some(Value::String(s)) => match parse_expires(s) {
                    Some(stop) => (Bound::Now, Bound::Exact(stop)),
                    None => {
                        return Err(Problem::new(
                            "expires",
                            format!("time data {s:?} does not match format '%Y-%m-%d'"),
                        ));
                    }
                },
                Some(other) => {
                    return Err(Problem::new(
                        "expires",
                        format!("strptime() argument 1 must be str, not {}", py::type_name(other)),
                    ));
                }
            },
        };
        let version = cfg.get("version").cloned().unwrap_or(Value::Null);
        let enabled = cfg.get("enabled").is_none_or(py::truthy);
        let legacy = matches!(type_name.as_deref(), Some("r2" | "feature_flag"));
        let name: Box<str> = match cfg.get("name") {
            Some(Value::String(s)) if !s.is_empty() => s.as_str().into(),
            Some(Value::String(_)) => return Err(name_problem("name must not be empty".into())),
            Some(other) => {
                return Err(name_problem(format!(
                    "name must be a string, found {}",
                    py::type_name(other)
                )));
            }
            None => return Err(name_problem("name is missing".into())),
        };
        let body = Self::parse_body(cfg, id, &name, type_name.as_deref())
            .map_err(|p| p.into_validation(key));
        // Baseplate accepts these, so the rejection is checked last (it is a deviation).
        if let Some(go) = cfg.get("global_override")
            && !matches!(go, Value::Null | Value::String(_))
            && cfg.contains_key("experiment")
        {
            return Err(Problem::new(
                "global_override",
                format!("global_override must be a string or null, found {}", py::type_name(go)),
            )
            .deviation(Deviation::GlobalOverrideType));
        }
        let dedupe_prefix = match &body {
            Ok(Body::R2(R2 { bucket_val, .. }) | Body::Simple(Simple { bucket_val, .. })) => {
                format!("{name}:{}:", bucket_val.field()).into()
            }
            _ => Box::default(),
        };
        let window = Self::numeric_window(&start, &stop);
        let owner = cfg.get("owner").cloned().unwrap_or(Value::Null);
        let event_meta = match &body {
            Ok(Body::R2(r2)) => Some((r2.flag, &version, r2.bucket_val.field())),
            Ok(Body::Simple(simple)) => Some((false, &simple.version, simple.bucket_val.field())),
            _ => None,
        }
        .map(|(flag, version, field)| {
            let class = match &body {
                Ok(Body::R2(_)) if flag => ExperimentClass::FeatureFlag,
                Ok(Body::R2(_)) => ExperimentClass::R2Experiment,
                _ => ExperimentClass::SimpleExperiment,
            };
            Arc::new(OwnedExperimentRef {
                class,
                id: Some(id),
                name: Some(name.to_string()),
                owner: Some(owner.clone()),
                version: Some(version.clone()),
                start_ts: window.0,
                stop_ts: window.1,
                bucketing_field: Some(field.to_owned()),
            })
        });
        Ok(Experiment {
            window,
            event_meta,
            key: key.into(),
            id,
            name,
            owner,
            version,
            type_name,
            start,
            stop,
            enabled,
            legacy,
            body,
            dedupe_prefix,
        })
    }

    fn parse_body(
        cfg: &Map<String, Value>,
        id: i64,
        name: &str,
        type_name: Option<&str>,
    ) -> Result<Body, Problem> {
        let Some(block) = cfg.get("experiment") else {
            return Err(Problem::new("experiment", "KeyError: 'experiment' (required)"));
        };
        if let Some(go) = cfg.get("global_override") {
            return Ok(Body::Forced {
                variant: go.as_str().map(Into::into),
                reason: ForcedReason::GlobalOverride,
            });
        }
        let kind = type_name.unwrap_or("");
        let as_map = || {
            block.as_object().ok_or_else(|| {
                Problem::new(
                    "experiment",
                    format!(
                        "the experiment block must be an object, found {}",
                        py::type_name(block)
                    ),
                )
            })
        };
        match kind {
            "r2" | "feature_flag" => {
                Ok(Body::R2(R2::parse(as_map()?, name, kind == "feature_flag")?))
            }
            "single_variant" | "multi_variant" | "feature_rollout" | "range_variant" => {
                Ok(Body::Simple(Simple::parse(as_map()?, id, name, kind)?))
            }
            _ => Ok(Body::Forced { variant: None, reason: ForcedReason::UnknownType }),
        }
    }

    /// The key of the experiment in the config document: what `variant` calls look it up
    /// by. Usually equal to [`Experiment::name`], but nothing requires it.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The `name` field (never empty): the name events report, part of the default bucketing
    /// seed (`{id}.{name}.{shuffle_version}`) and of the dedupe keys.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The `id` field (a signed 64-bit integer): reported in events, part of the default
    /// bucketing seed.
    pub fn id(&self) -> i64 {
        self.id
    }

    /// The `owner` field as configured, any JSON value (`null` when absent); events echo it.
    pub fn owner(&self) -> &Value {
        &self.owner
    }

    /// The lower-cased `type` (`None` when missing or not a string).
    pub fn experiment_type(&self) -> Option<&str> {
        self.type_name.as_deref()
    }

    /// The error that makes the experiment invalid at every instant, if any.
    pub fn static_error(&self) -> Option<&ValidationError> {
        self.body.as_ref().err()
    }

    /// Variant names of the experiment (empty for forced and invalid experiments).
    pub fn variant_names(&self) -> Vec<&str> {
        match &self.body {
            Ok(Body::R2(r2)) => r2.variant_names(),
            Ok(Body::Simple(s)) => s.variants.names(),
            Ok(Body::Forced { variant, .. }) => variant.as_deref().into_iter().collect(),
            Err(_) => Vec::new(),
        }
    }

    /// Targeting trees that could not be built, so match nobody: `(where, why)`.
    pub fn targeting_errors(&self) -> Vec<(String, &str)> {
        let Ok(Body::Simple(s)) = &self.body else {
            return Vec::new();
        };
        let main = s.targeting.error.as_deref().map(|e| ("experiment.targeting".to_owned(), e));
        let overrides = s.overrides.iter().enumerate().filter_map(|(i, (variant, tree))| {
            tree.error.as_deref().map(|e| (format!("experiment.overrides[{i}] ({variant})"), e))
        });
        main.into_iter().chain(overrides).collect()
    }

    /// Variants named by overrides (simple `overrides` treatments, r2 override values).
    pub fn override_variants(&self) -> Vec<&str> {
        match &self.body {
            Ok(Body::Simple(s)) => s.overrides.iter().map(|(v, _)| &**v).collect(),
            Ok(Body::R2(r2)) => r2.override_variants(),
            _ => Vec::new(),
        }
    }

    /// `(start_ts, stop_ts)` in epoch seconds, each `None` when not a number. With
    /// `expires` instead, the start is `None` (it is the instant of evaluation) and the stop
    /// is the `expires` date at UTC midnight.
    pub fn window(&self) -> (Option<f64>, Option<f64>) {
        self.window
    }

    fn numeric_window(start: &Bound, stop: &Bound) -> (Option<f64>, Option<f64>) {
        let f = |b: &Bound| match b {
            Bound::Exact(x) => Some(*x),
            Bound::Num(PyNum::Int(i)) => Some(*i as f64),
            Bound::Num(PyNum::Float(x)) => Some(*x),
            _ => None,
        };
        (f(start), f(stop))
    }

    /// The prefix of this experiment's dedupe keys.
    pub(crate) fn dedupe_prefix(&self) -> &str {
        &self.dedupe_prefix
    }

    /// What baseplate would have built at `now`.
    pub(crate) fn resolve(&self, now: f64) -> Result<Active<'_>, &ValidationError> {
        use std::cmp::Ordering::{Greater, Less};
        // `now < start_ts or now > stop_ts`, short-circuiting like Python.
        let outside = if self.start.cmp_now(now)? == Less {
            Some(DisabledReason::NotStarted)
        } else if self.stop.cmp_now(now)? == Greater {
            Some(DisabledReason::Expired)
        } else {
            None
        };
        let disabled = if !self.enabled { Some(DisabledReason::EnabledFlag) } else { outside };
        if disabled.is_some() && self.legacy {
            return Ok(Active::Forced { variant: None, reason: ForcedReason::Disabled });
        }
        match self.body.as_ref()? {
            Body::Forced { variant, reason } => {
                Ok(Active::Forced { variant: variant.as_deref(), reason: *reason })
            }
            Body::R2(r2) => Ok(Active::R2(r2)),
            Body::Simple(simple) => {
                // `start_ts <= now < stop_ts` is checked again at call time.
                let disabled = disabled.or_else(|| {
                    (self.stop.cmp_now(now).ok()? != Less).then_some(DisabledReason::Expired)
                });
                Ok(Active::Simple { simple, disabled })
            }
        }
    }

    /// The event view of the experiment as resolved.
    pub(crate) fn event_ref<'a>(&'a self, active: Active<'a>) -> ExperimentRef<'a> {
        let (start_ts, stop_ts) = self.window();
        let full = |class, version| ExperimentRef {
            class,
            id: Some(self.id),
            name: Some(&self.name),
            owner: Some(&self.owner),
            version: Some(version),
            start_ts,
            stop_ts,
            shared: Shared(self.event_meta.as_ref()),
        };
        match active {
            Active::Forced { .. } => ExperimentRef {
                class: ExperimentClass::ForcedVariantExperiment,
                id: None,
                name: None,
                owner: None,
                version: None,
                start_ts: None,
                stop_ts: None,
                shared: Shared(None),
            },
            Active::R2(r2) if r2.flag => full(ExperimentClass::FeatureFlag, &self.version),
            Active::R2(_) => full(ExperimentClass::R2Experiment, &self.version),
            Active::Simple { simple, .. } => {
                full(ExperimentClass::SimpleExperiment, &simple.version)
            }
        }
    }
}

impl<'a> Active<'a> {
    /// `experiment.variant(**inputs)`, and whether an override (or `global_override`) chose
    /// the variant.
    pub(crate) fn variant<O: Observer>(
        self,
        inputs: &Inputs,
        obs: &mut O,
    ) -> Result<(Option<&'a str>, bool), EvalError> {
        match self {
            Active::Forced { variant, reason } => {
                obs.step(Step::Forced { variant, reason });
                Ok((variant, reason == ForcedReason::GlobalOverride))
            }
            Active::R2(r2) => r2.variant(inputs, obs),
            Active::Simple { disabled: Some(reason), .. } => {
                obs.step(Step::Disabled { reason });
                Ok((None, false))
            }
            Active::Simple { simple, disabled: None } => simple.variant(inputs, obs),
        }
    }

    /// `experiment.get_unique_id(**inputs)`'s bucketing value.
    pub(crate) fn unique_value<'i>(
        &self,
        inputs: &'i Inputs,
    ) -> Result<Option<&'i Value>, EvalError> {
        match self {
            Active::Forced { .. } => Ok(None),
            Active::R2(r2) => r2.bucket_val.unique_value(inputs),
            Active::Simple { simple, .. } => simple.bucket_val.unique_value(inputs),
        }
    }

    /// The configured bucketing field, for experiments that bucket.
    pub(crate) fn bucketing_field(self) -> Option<&'a str> {
        match self {
            Active::Forced { .. } => None,
            Active::R2(r2) => Some(r2.bucket_val.field()),
            Active::Simple { simple, .. } => Some(simple.bucket_val.field()),
        }
    }

    /// `experiment.should_log_bucketing()`.
    pub(crate) fn should_log_bucketing(&self) -> bool {
        match self {
            Active::Forced { .. } => false,
            Active::R2(r2) => !r2.flag,
            Active::Simple { simple, .. } => simple.log_bucketing,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expires_follows_strptime() {
        assert_eq!(parse_expires("1970-01-01"), Some(0.0));
        assert_eq!(parse_expires("2030-6-5"), Some(days_from_civil(2030, 6, 5) as f64 * 86_400.0));
        assert_eq!(parse_expires("2099-12-31"), Some(4_102_358_400.0));
        assert_eq!(parse_expires("12/31/2099"), None);
        assert_eq!(parse_expires("31/12/2099"), None);
        assert_eq!(parse_expires("2041-02-29"), None);
        assert_eq!(
            parse_expires("2040-02-29"),
            Some(days_from_civil(2040, 2, 29) as f64 * 86_400.0)
        );
        assert_eq!(parse_expires("2099-12-311"), None);
        assert_eq!(parse_expires("0000-01-01"), None);
        assert_eq!(
            parse_expires("2030-01- 5"),
            Some(days_from_civil(2030, 1, 5) as f64 * 86_400.0)
        );
    }
}
