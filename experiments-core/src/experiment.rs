//! One experiment of a config: parsing (`parse_experiment`) and the time-dependent
//! resolution into what baseplate would have built at that instant.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::error::{Deviation, EvalError, Problem, PyType, ValidationError};
use crate::explain::{DisabledReason, ForcedReason, Observer, Step};
use crate::inputs::{Inputs, Key};
use crate::py::{self, PyNum};
use crate::r2::R2;
use crate::simple::Simple;

/// The Python class baseplate would use for an experiment; reported in events.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
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
    type_name: Option<String>,
    start: Bound,
    stop: Bound,
    enabled: bool,
    legacy: bool,
    body: Result<Body, ValidationError>,
    /// `f"{name}:{bucket_val}:"` for experiments that can log bucketing events.
    dedupe_prefix: Box<str>,
    /// `start_ts` / `stop_ts` as numbers, when numeric.
    window: (Option<f64>, Option<f64>),
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
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
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
        Ok(Experiment {
            window: Self::numeric_window(&start, &stop),
            key: key.into(),
            id,
            name,
            owner: cfg.get("owner").cloned().unwrap_or(Value::Null),
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

    /// The config key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The `name` field.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The `id` field.
    pub fn id(&self) -> i64 {
        self.id
    }

    /// The `owner` field (`null` when absent).
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

    /// Things that parse but are almost surely mistakes, at `now`: unknown types, expired or
    /// not started, a `bucket_val` that can never match, targeting that can never match,
    /// overrides naming unknown variants, r2 sizes over the 1/n cap or over 100 %,
    /// overlapping ranges.
    pub fn warnings(&self, now: f64) -> Vec<String> {
        let mut out = Vec::new();
        if matches!(&self.body, Ok(Body::Forced { reason: ForcedReason::UnknownType, .. })) {
            let t = self.type_name.as_deref().unwrap_or("");
            out.push(format!("unknown experiment type {t:?}: it never returns a variant"));
        }
        match self.window {
            (Some(start), _) if now < start => {
                out.push(format!("not started yet (start_ts {start} is in the future)"))
            }
            (_, Some(stop)) if now >= stop => out.push(format!("expired (stop_ts {stop} is past)")),
            _ => {}
        }
        let bucket_val = match &self.body {
            Ok(Body::R2(r2)) => Some(&r2.bucket_val),
            Ok(Body::Simple(s)) => Some(&s.bucket_val),
            _ => None,
        };
        match bucket_val {
            Some(BucketVal::Str { raw, matchable: false }) => out.push(format!(
                "bucket_val {:?} is not lower-case: inputs are matched lower-cased, so it never matches",
                raw.as_str()
            )),
            Some(BucketVal::Other(text)) => {
                out.push(format!("bucket_val {text} is not a string: it never matches"))
            }
            _ => {}
        }
        for (place, why) in self.targeting_errors() {
            out.push(format!("{place} can never match: {why}"));
        }
        match &self.body {
            Ok(Body::R2(r2)) => out.extend(r2.lint()),
            Ok(Body::Simple(s)) => {
                if matches!(s.targeting.root, crate::targeting::Node::Const(false))
                    && s.targeting.error.is_none()
                {
                    out.push("targeting is OVERRIDE false: nobody is targeted".to_owned());
                }
                // Sorted once, so each override costs a binary search, not a scan.
                let mut names = s.variants.names();
                names.sort_unstable();
                for (v, _) in &s.overrides {
                    if !v.is_empty() && names.binary_search(&&**v).is_err() {
                        out.push(format!(
                            "an override forces {v:?}, which is not one of the variants"
                        ));
                    }
                }
                if let crate::variant_set::VariantSet::Range { entries } = &s.variants {
                    for o in range_overlaps(entries) {
                        let (a, b) = (o.winner, o.later);
                        out.push(if o.earlier == 1 {
                            format!("range variants {a:?} and {b:?} overlap: {a:?} wins")
                        } else {
                            format!(
                                "range variant {b:?} overlaps {} variants listed before it \
                                 (the first is {a:?}): they win the shared buckets",
                                o.earlier
                            )
                        });
                    }
                }
            }
            _ => {}
        }
        out
    }

    /// The share of buckets each variant gets when every call is targeted and no override
    /// applies, in config order (`None` when the experiment is not bucketed). A variant name
    /// listed twice gets all its buckets in its first slot, as a lookup by name does; buckets
    /// whose choice raises count for no variant. Computed from the bucket limits, not bucket
    /// by bucket: O(v log v) for v variants, whatever `num_buckets` is.
    pub fn expected_shares(&self) -> Option<Vec<(String, f64)>> {
        let names = self.variant_names();
        let (n, counts): (u64, Vec<u64>) = match &self.body {
            Ok(Body::R2(r2)) => {
                // 1000 buckets, each mapped to its variant's first slot by binary search.
                let index = first_slots(&names);
                let mut counts = vec![0u64; names.len()];
                for b in 0..crate::r2::R2_BUCKETS {
                    if let Some(slot) = r2.variant_of_bucket(b).and_then(|v| slot_of(&index, v)) {
                        counts[slot] += 1;
                    }
                }
                (crate::r2::R2_BUCKETS, counts)
            }
            Ok(Body::Simple(s)) => {
                let n = s.num_buckets.get();
                let per_entry = bucket_counts(&s.variants, n);
                // `names()` lists the entries in order: fold duplicates into the first slot.
                let index = first_slots(&names);
                let mut counts = vec![0u64; names.len()];
                for (name, c) in names.iter().zip(per_entry) {
                    if let Some(slot) = slot_of(&index, name) {
                        counts[slot] += c;
                    }
                }
                (n, counts)
            }
            _ => return None,
        };
        Some(
            names
                .into_iter()
                .zip(counts)
                .map(|(v, c)| (v.to_owned(), c as f64 / n.max(1) as f64))
                .collect(),
        )
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

    /// The `[start_ts, stop_ts]` window as numbers, when numeric.
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

/// `(name, first position)` for each distinct name, sorted by name: a name's slot is found
/// by binary search (see [`slot_of`]). O(v log v).
fn first_slots<'a>(names: &[&'a str]) -> Vec<(&'a str, usize)> {
    let mut index: Vec<(&str, usize)> = names.iter().copied().zip(0..).collect();
    // Sorting by (name, position) puts each name's first position first; dedup keeps it.
    index.sort_unstable();
    index.dedup_by(|later, first| later.0 == first.0);
    index
}

/// The first position of `name` in the table of [`first_slots`].
fn slot_of(index: &[(&str, usize)], name: &str) -> Option<usize> {
    index.binary_search_by(|(n, _)| (*n).cmp(name)).ok().map(|i| index[i].1)
}

/// How many of the buckets `0..n` each entry of a variant set wins (in `names()` order), as
/// [`choose`](crate::variant_set::VariantSet::choose) would pick them bucket by bucket;
/// buckets whose choice raises count for nobody. O(v log v) for v entries, independent of n.
fn bucket_counts(set: &crate::variant_set::VariantSet, n: u64) -> Vec<u64> {
    use crate::variant_set::VariantSet;
    let n = i128::from(n);
    // The number of buckets in `[lo, hi)` within `0..n`.
    let span = |lo: i128, hi: i128| (hi.min(n) - lo.max(0)).max(0) as u64;
    match set {
        // `b < t0` gives the first; otherwise `b >= t1` gives the second. An unusable limit
        // raises for every bucket that reaches it.
        VariantSet::Single { t0, t1, .. } => {
            let Ok(t0) = *t0 else { return vec![0, 0] };
            let first = span(0, t0);
            let second = match *t1 {
                Ok(t1) => span(t1.max(t0), n),
                Err(_) => 0,
            };
            vec![first, second]
        }
        // The first entry whose end exceeds the bucket: entry i gets `[max(0, earlier ends),
        // end_i)`.
        VariantSet::Multi { entries } => {
            let mut covered = 0i128;
            entries
                .iter()
                .map(|(_, _, end)| {
                    let c = span(covered, *end);
                    covered = covered.max((*end).min(n));
                    c
                })
                .collect()
        }
        VariantSet::Rollout { limit, .. } => vec![span(0, *limit)],
        // The first range containing the bucket wins: each range gets the part of
        // `[lo, hi) ∩ [0, n)` no earlier range took. `taken` holds disjoint intervals
        // (start -> end); each is inserted once and removed at most once.
        VariantSet::Range { entries } => {
            let mut taken: std::collections::BTreeMap<i128, i128> =
                std::collections::BTreeMap::new();
            let mut counts = vec![0u64; entries.len()];
            for ((_, bounds), count) in entries.iter().zip(&mut counts) {
                // Buckets no earlier range took raise here, so no later range gets them.
                let Ok((lo, hi)) = *bounds else { break };
                let (a, b) = (lo.max(0), hi.min(n));
                if a >= b {
                    continue;
                }
                let (mut start, mut end, mut already) = (a, b, 0i128);
                if let Some((&s, &e)) = taken.range(..a).next_back()
                    && e > a
                {
                    already += e.min(b) - a;
                    start = s;
                    end = end.max(e);
                    taken.remove(&s);
                }
                while let Some((&s, &e)) = taken.range(a..b).next() {
                    already += e.min(b) - s;
                    end = end.max(e);
                    taken.remove(&s);
                }
                taken.insert(start, end);
                *count = (b - a - already) as u64;
            }
            counts
        }
    }
}

/// A range variant that shares buckets with variants listed before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct RangeOverlap<'a> {
    /// The variant listed later, which loses the shared buckets.
    later: &'a str,
    /// The first-listed variant it overlaps.
    winner: &'a str,
    /// How many variants listed before it it overlaps (at least 1).
    earlier: usize,
}

/// For each range variant (in config order) whose `[lo, hi)` intersects the range of a
/// variant listed before it: that variant, the first such earlier variant and how many there
/// are. Empty ranges and ranges whose bounds raise overlap nothing. One entry per overlapped
/// variant rather than one per pair, so the result (and the warnings) stay linear even when
/// every range overlaps every other one. O(v log v) for v ranges.
fn range_overlaps(entries: &[crate::variant_set::RangeEntry]) -> Vec<RangeOverlap<'_>> {
    // The usable ranges, in config order.
    let ranges: Vec<(&str, i128, i128)> = entries
        .iter()
        .filter_map(|(name, b)| match b {
            Ok((lo, hi)) if lo < hi => Some((&**name, *lo, *hi)),
            _ => None,
        })
        .collect();
    let m = ranges.len();
    if m < 2 {
        return Vec::new();
    }
    // How many earlier ranges intersect range j: those starting before its end, minus those
    // ending at or before its start (a subset of the former, ranges being non-empty).
    let mut coords: Vec<i128> = ranges.iter().flat_map(|&(_, lo, hi)| [lo, hi]).collect();
    coords.sort_unstable();
    coords.dedup();
    let rank = |x: i128| coords.partition_point(|&c| c < x);
    let (mut starts, mut ends) = (Fenwick::new(coords.len()), Fenwick::new(coords.len()));
    let mut earlier = vec![0usize; m];
    for (j, &(_, lo, hi)) in ranges.iter().enumerate() {
        earlier[j] = starts.count_below(rank(hi)) - ends.count_below(rank(lo) + 1);
        starts.add(rank(lo));
        ends.add(rank(hi));
    }
    // The first earlier range of each: walk the ranges in config order; range i claims every
    // later, still unclaimed range it intersects. Unclaimed later ranges sit in a max-tree of
    // their ends ordered by start, so "starts before hi_i and ends after lo_i" is a prefix
    // query for an end above lo_i; each claimed range leaves the tree.
    let mut by_start: Vec<usize> = (0..m).collect();
    by_start.sort_unstable_by_key(|&i| ranges[i].1);
    let mut position = vec![0usize; m];
    for (p, &i) in by_start.iter().enumerate() {
        position[i] = p;
    }
    let sorted_starts: Vec<i128> = by_start.iter().map(|&i| ranges[i].1).collect();
    let mut pending = MaxTree::new(by_start.iter().map(|&i| ranges[i].2).collect());
    let mut winner: Vec<Option<usize>> = vec![None; m];
    for (i, &(_, lo, hi)) in ranges.iter().enumerate() {
        pending.remove(position[i]);
        let prefix = sorted_starts.partition_point(|&s| s < hi);
        while let Some(p) = pending.first_above(prefix, lo) {
            pending.remove(p);
            winner[by_start[p]] = Some(i);
        }
    }
    ranges
        .iter()
        .zip(winner)
        .zip(earlier)
        .filter_map(|((&(later, ..), w), earlier)| {
            w.map(|w| RangeOverlap { later, winner: ranges[w].0, earlier })
        })
        .collect()
}

/// A Fenwick tree of counts over positions `0..n`.
struct Fenwick(Vec<usize>);

impl Fenwick {
    fn new(n: usize) -> Self {
        Fenwick(vec![0; n + 1])
    }

    /// Counts one more at `pos` (positions past the end are ignored).
    fn add(&mut self, pos: usize) {
        let mut i = pos + 1;
        while i < self.0.len() {
            self.0[i] += 1;
            i += i & i.wrapping_neg();
        }
    }

    /// The count at positions `0..pos`.
    fn count_below(&self, pos: usize) -> usize {
        let mut i = pos.min(self.0.len() - 1);
        let mut total = 0;
        while i > 0 {
            total += self.0[i];
            i -= i & i.wrapping_neg();
        }
        total
    }
}

/// A segment tree of maxima over fixed positions, with removal: finds a position in a prefix
/// whose value exceeds a threshold in O(log n).
struct MaxTree {
    /// Leaves start at `size`; node k covers its children 2k and 2k + 1.
    nodes: Vec<i128>,
    size: usize,
}

impl MaxTree {
    fn new(values: Vec<i128>) -> Self {
        let size = values.len().next_power_of_two();
        let mut nodes = vec![i128::MIN; 2 * size];
        nodes[size..size + values.len()].copy_from_slice(&values);
        for k in (1..size).rev() {
            nodes[k] = nodes[2 * k].max(nodes[2 * k + 1]);
        }
        MaxTree { nodes, size }
    }

    /// Removes position `p` (its value becomes `i128::MIN`).
    fn remove(&mut self, p: usize) {
        let mut k = self.size + p;
        self.nodes[k] = i128::MIN;
        while k > 1 {
            k /= 2;
            self.nodes[k] = self.nodes[2 * k].max(self.nodes[2 * k + 1]);
        }
    }

    /// The first position in `0..end` whose value is above `threshold`.
    fn first_above(&self, end: usize, threshold: i128) -> Option<usize> {
        self.descend(1, 0, self.size, end, threshold)
    }

    /// [`MaxTree::first_above`] within node `k`, which covers `lo..hi`. Recursion depth is
    /// the tree's height (log2 of the positions).
    fn descend(
        &self,
        k: usize,
        lo: usize,
        hi: usize,
        end: usize,
        threshold: i128,
    ) -> Option<usize> {
        if lo >= end || self.nodes[k] <= threshold {
            return None;
        }
        if hi - lo == 1 {
            return Some(lo);
        }
        let mid = lo + (hi - lo) / 2;
        self.descend(2 * k, lo, mid, end, threshold)
            .or_else(|| self.descend(2 * k + 1, mid, hi, end, threshold))
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

    use crate::variant_set::{Choice, RangeEntry, VariantSet};
    use serde_json::json;

    /// A deterministic xorshift generator for the brute-force comparisons.
    struct Rng(u64);

    impl Rng {
        fn below(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % n
        }

        /// A bucket bound around `0..n`, sometimes outside it.
        fn bound(&mut self, n: i128) -> i128 {
            self.below(n as u64 + 8) as i128 - 4
        }

        /// A bound, or (one time in eight) the error an unusable bound raises.
        fn maybe_bound(&mut self, n: i128) -> Result<i128, EvalError> {
            if self.below(8) == 0 { Err(EvalError::InfinityToInt) } else { Ok(self.bound(n)) }
        }
    }

    /// The pairwise definition: range j overlaps every earlier usable range whose bucket
    /// range intersects its own.
    fn overlaps_pairwise(entries: &[RangeEntry]) -> Vec<RangeOverlap<'_>> {
        let usable: Vec<(&str, i128, i128)> = entries
            .iter()
            .filter_map(|(n, b)| {
                b.as_ref().ok().filter(|(lo, hi)| lo < hi).map(|&(lo, hi)| (&**n, lo, hi))
            })
            .collect();
        let mut out = Vec::new();
        for (j, &(later, lo, hi)) in usable.iter().enumerate() {
            let hits: Vec<&str> = usable[..j]
                .iter()
                .filter(|&&(_, a, b)| a.max(lo) < b.min(hi))
                .map(|&(n, ..)| n)
                .collect();
            if let Some(&winner) = hits.first() {
                out.push(RangeOverlap { later, winner, earlier: hits.len() });
            }
        }
        out
    }

    #[test]
    fn range_overlaps_agree_with_the_pairwise_definition() {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        for round in 0..2000 {
            let len = rng.below(12) as usize;
            let entries: Vec<RangeEntry> = (0..len)
                .map(|i| {
                    let b = match rng.below(8) {
                        0 => Err(EvalError::InfinityToInt),
                        _ => Ok((rng.bound(20), rng.bound(20))),
                    };
                    (format!("v{i}").into(), b)
                })
                .collect();
            assert_eq!(
                range_overlaps(&entries),
                overlaps_pairwise(&entries),
                "round {round}: {entries:?}"
            );
        }
    }

    /// Bucket by bucket, each chosen variant counted in its name's first slot.
    fn counts_bucket_by_bucket(set: &VariantSet, n: u64) -> Vec<u64> {
        let names = set.names();
        let mut counts = vec![0; names.len()];
        for b in 0..n {
            if let Ok(Choice { variant: Some(v), .. }) = set.choose(b) {
                counts[names.iter().position(|x| *x == v).unwrap()] += 1;
            }
        }
        counts
    }

    /// [`bucket_counts`] folded into the first slot of each name, as `expected_shares` does.
    fn counts_from_limits(set: &VariantSet, n: u64) -> Vec<u64> {
        let names = set.names();
        let index = first_slots(&names);
        let mut counts = vec![0; names.len()];
        for (name, c) in names.iter().zip(bucket_counts(set, n)) {
            counts[slot_of(&index, name).unwrap()] += c;
        }
        counts
    }

    #[test]
    fn bucket_counts_agree_with_choosing_bucket_by_bucket() {
        let mut rng = Rng(0xD1B5_4A32_D192_ED03);
        let pool = ["a", "b", "c", "d"];
        for round in 0..4000 {
            let n = 1 + rng.below(24);
            let m = n as i128;
            let len = 1 + rng.below(7) as usize;
            let mut name = || -> Box<str> { pool[rng.below(4) as usize].into() };
            let names: Vec<Box<str>> = (0..len).map(|_| name()).collect();
            let set = match round % 4 {
                0 => VariantSet::Single {
                    names: [names[0].clone(), names[len - 1].clone()],
                    t0: rng.maybe_bound(m),
                    t1: rng.maybe_bound(m),
                },
                1 => VariantSet::Multi {
                    entries: names.into_iter().map(|v| (v, rng.bound(m), rng.bound(m))).collect(),
                },
                2 => VariantSet::Rollout { name: names[0].clone(), limit: rng.bound(m) },
                _ => VariantSet::Range {
                    entries: names
                        .into_iter()
                        .map(|v| {
                            let b = match rng.below(8) {
                                0 => Err(EvalError::InfinityToInt),
                                _ => Ok((rng.bound(m), rng.bound(m))),
                            };
                            (v, b)
                        })
                        .collect(),
                },
            };
            assert_eq!(
                counts_from_limits(&set, n),
                counts_bucket_by_bucket(&set, n),
                "round {round}, {n} buckets: {set:?}"
            );
        }
    }

    fn range_experiment(num_buckets: u64, variants: Vec<Value>) -> Experiment {
        let cfg = json!({"id": 1, "name": "r", "type": "range_variant", "start_ts": 0,
            "stop_ts": 4_102_444_800u64, "experiment": {"experiment_version": 1,
            "num_buckets": num_buckets, "variants": variants}});
        Experiment::parse("r", &cfg).unwrap()
    }

    /// `k` contiguous ranges covering `[0, 1)`.
    fn tiling(k: usize) -> Vec<Value> {
        (0..k)
            .map(|i| {
                json!({"name": format!("v{i}"), "range_start": i as f64 / k as f64,
                    "range_end": (i + 1) as f64 / k as f64})
            })
            .collect()
    }

    #[test]
    fn expected_shares_of_many_ranges_come_from_the_limits() {
        // 40,000 ranges over a million buckets: bucket by bucket with a scan of the ranges
        // per bucket this was 4·10^10 steps (minutes); from the limits it is a sort.
        let k = 40_000;
        let shares = range_experiment(1_000_000, tiling(k)).expected_shares().unwrap();
        assert_eq!(shares.len(), k);
        assert_eq!(shares[0], ("v0".to_owned(), 25.0 / 1_000_000.0));
        assert!((shares.iter().map(|(_, s)| s).sum::<f64>() - 1.0).abs() < 1e-9);
        // Past a million buckets the shares used to be unknown; they are exact now.
        let shares = range_experiment(1 << 40, tiling(4)).expected_shares().unwrap();
        assert_eq!(shares.iter().map(|(_, s)| *s).collect::<Vec<_>>(), [0.25; 4]);
    }

    #[test]
    fn overlap_warnings_stay_linear_when_every_range_overlaps() {
        // 20,000 full ranges, kept under 100 % by 20,000 inverted (negative-size) ones: every
        // pair of full ranges overlaps, 2·10^8 pairs that each used to be a warning.
        let k = 20_000;
        let variants: Vec<Value> = (0..k)
            .flat_map(|i| {
                [
                    json!({"name": format!("full{i}"), "range_start": 0.0, "range_end": 1.0}),
                    json!({"name": format!("inv{i}"), "range_start": 1.0, "range_end": 0.0}),
                ]
            })
            .collect();
        let warnings = range_experiment(1000, variants).warnings(0.0);
        let overlaps: Vec<&String> = warnings.iter().filter(|w| w.contains("overlap")).collect();
        assert_eq!(overlaps.len(), k - 1, "one warning per overlapped range");
        assert_eq!(overlaps[0], r#"range variants "full0" and "full1" overlap: "full0" wins"#);
        assert_eq!(
            overlaps[1],
            r#"range variant "full2" overlaps 2 variants listed before it (the first is "full0"): they win the shared buckets"#
        );
        assert!(overlaps[k - 2].contains(&format!("overlaps {} variants", k - 1)));
    }

    #[test]
    fn override_warnings_find_variants_by_search() {
        // 50,000 variants and as many overrides: a scan of the variants per override was
        // 10^9 comparisons.
        let k = 50_000;
        let variants: Vec<Value> = (0..k)
            .map(|i| json!({"name": format!("variant_with_a_long_name_{i}"), "size": 0.00001}))
            .collect();
        let overrides: Vec<Value> = (0..k)
            .map(|i| {
                let v = if i == 7 {
                    "typo".to_owned()
                } else {
                    format!("variant_with_a_long_name_{i}")
                };
                json!({ v: {"OVERRIDE": false} })
            })
            .collect();
        let cfg = json!({"id": 1, "name": "m", "type": "multi_variant", "start_ts": 0,
            "stop_ts": 4_102_444_800u64, "experiment": {"experiment_version": 1,
            "variants": variants, "overrides": overrides}});
        let warnings = Experiment::parse("m", &cfg).unwrap().warnings(0.0);
        let unknown: Vec<&String> =
            warnings.iter().filter(|w| w.contains("not one of the variants")).collect();
        assert_eq!(unknown, [r#"an override forces "typo", which is not one of the variants"#]);
    }
}
