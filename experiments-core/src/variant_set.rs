//! Variant sets of simple experiments: `single_variant`, `multi_variant`, `feature_rollout`,
//! `range_variant`. Validation follows baseplate's constructors; every bucket limit is
//! computed once at parse time (Python's `int()` truncation included), so choosing a variant
//! is a few integer comparisons.

use num_bigint::BigInt;
use serde_json::{Map, Value};

use crate::error::{Deviation, EvalError, Problem};
use crate::py::{self, PyNum};

/// A bucket bound: a Python int, or the error computing it raises when it is used.
pub(crate) type Bound = Result<i128, EvalError>;

/// The parsed variants of a simple experiment.
#[derive(Debug, Clone)]
pub(crate) enum VariantSet {
    /// Two variants: `bucket < t0` gives the first, `bucket >= t1` the second.
    Single { names: [Box<str>; 2], t0: Result<i128, EvalError>, t1: Result<i128, EvalError> },
    /// Cumulative offsets: the first variant whose end offset exceeds the bucket.
    Multi { entries: Vec<(Box<str>, i128, i128)> },
    /// One variant below `limit`.
    Rollout { name: Box<str>, limit: i128 },
    /// Explicit ranges, the first containing the bucket wins.
    Range { entries: Vec<RangeEntry> },
}

/// A range variant: its name and `[int(start * n), int(end * n))`.
pub(crate) type RangeEntry = (Box<str>, Result<(i128, i128), EvalError>);

/// What a variant set chose for a bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Choice<'a> {
    pub variant: Option<&'a str>,
    /// The bucket range `[lo, hi)` of the chosen variant.
    pub range: Option<(i128, i128)>,
}

impl VariantSet {
    /// Builds the set of `variant_type` from `experiment.variants` with `num_buckets`.
    pub(crate) fn parse(
        variant_type: &str,
        variants: Option<&Value>,
        num_buckets: i64,
    ) -> Result<VariantSet, Problem> {
        let path = "experiment.variants";
        // `config.get("variants", [])`: a missing key is an empty list.
        let empty = Value::Array(Vec::new());
        let variants = variants.unwrap_or(&empty);
        if variants.is_null() {
            return Err(Problem::new(path, "No variants provided"));
        }
        match variant_type {
            "single_variant" => parse_single(variants, num_buckets),
            "multi_variant" => parse_multi(variants, num_buckets),
            "feature_rollout" => parse_rollout(variants, num_buckets),
            _ => parse_range(variants, num_buckets),
        }
    }

    /// Chooses the variant of `bucket`.
    pub(crate) fn choose(&self, bucket: u64) -> Result<Choice<'_>, EvalError> {
        let b = i128::from(bucket);
        let none = Choice { variant: None, range: None };
        match self {
            VariantSet::Single { names, t0, t1 } => {
                let t0 = (*t0)?;
                if b < t0 {
                    return Ok(Choice { variant: Some(&names[0]), range: Some((0, t0)) });
                }
                let t1 = (*t1)?;
                if b >= t1 {
                    return Ok(Choice { variant: Some(&names[1]), range: Some((t1, i128::MAX)) });
                }
                Ok(none)
            }
            VariantSet::Multi { entries } => Ok(entries
                .iter()
                .find(|(_, _, end)| b < *end)
                .map_or(none, |(name, start, end)| Choice {
                    variant: Some(name),
                    range: Some((*start, *end)),
                })),
            VariantSet::Rollout { name, limit } => Ok(if b < *limit {
                Choice { variant: Some(name), range: Some((0, *limit)) }
            } else {
                none
            }),
            VariantSet::Range { entries } => {
                for (name, bounds) in entries {
                    let (lo, hi) = (*bounds)?;
                    if lo <= b && b < hi {
                        return Ok(Choice { variant: Some(name), range: Some((lo, hi)) });
                    }
                }
                Ok(none)
            }
        }
    }

    /// The variant names in config order.
    pub(crate) fn names(&self) -> Vec<&str> {
        match self {
            VariantSet::Single { names, .. } => names.iter().map(|n| &**n).collect(),
            VariantSet::Multi { entries } => entries.iter().map(|(n, ..)| &**n).collect(),
            VariantSet::Rollout { name, .. } => vec![name],
            VariantSet::Range { entries } => entries.iter().map(|(n, _)| &**n).collect(),
        }
    }
}

/// The `i`-th entry of a list of variant objects (`variants[i].get(...)` must work).
fn entry_objects<'a>(
    variants: &'a [Value],
    path: &str,
) -> Result<Vec<&'a Map<String, Value>>, Problem> {
    variants
        .iter()
        .enumerate()
        .map(|(i, v)| {
            v.as_object().ok_or_else(|| {
                Problem::new(
                    format!("{path}[{i}]"),
                    format!("'{}' object has no attribute 'get'", py::type_name(v)),
                )
            })
        })
        .collect()
}

/// Python `len()` of the variants, or the TypeError baseplate hits.
fn variants_len(variants: &Value, path: &str) -> Result<usize, Problem> {
    py::py_len(variants).ok_or_else(|| {
        Problem::new(path, format!("object of type '{}' has no len()", py::type_name(variants)))
    })
}

/// The list baseplate indexes (`variants[0]`): only a list can be indexed by position.
fn as_indexable<'a>(variants: &'a Value, path: &str) -> Result<&'a [Value], Problem> {
    match variants {
        Value::Array(items) => Ok(items),
        Value::Object(_) => Err(Problem::new(path, "KeyError: 0 (variants must be a list)")),
        other => Err(Problem::new(
            format!("{path}[0]"),
            format!("'{}' object has no attribute 'get'", py::type_name(other)),
        )),
    }
}

/// A size that must be present: `variant.get("size") is None` is an error.
fn size_of<'a>(
    entry: &'a Map<String, Value>,
    path: &str,
    all: &Value,
) -> Result<&'a Value, Problem> {
    match entry.get("size") {
        None | Some(Value::Null) => Err(Problem::new(
            format!("{path}.size"),
            format!("Variant size not provided: {}", py::to_py_str(all)),
        )),
        Some(v) => Ok(v),
    }
}

/// A numeric size (`bool` counts as `int`), or the TypeError baseplate hits.
fn numeric(v: &Value, path: &str, what: &str) -> Result<PyNum, Problem> {
    py::as_num(v).ok_or_else(|| {
        Problem::new(path, format!("{what} must be a number, found {}", py::type_name(v)))
    })
}

/// The variant's name, which this port requires to be a string (a deliberate deviation:
/// baseplate accepts the entry and raises `KeyError: 'name'` when it is chosen).
fn name_of(entry: &Map<String, Value>, path: &str) -> Result<Box<str>, Problem> {
    match entry.get("name") {
        Some(Value::String(s)) => Ok(s.as_str().into()),
        None => Err(Problem::new(format!("{path}.name"), "variant has no name")
            .deviation(Deviation::VariantName)),
        Some(other) => Err(Problem::new(
            format!("{path}.name"),
            format!("variant name must be a string, found {}", py::type_name(other)),
        )
        .deviation(Deviation::VariantName)),
    }
}

fn add(a: PyNum, b: PyNum) -> PyNum {
    match (a, b) {
        (PyNum::Int(x), PyNum::Int(y)) => PyNum::Int(x + y),
        _ => PyNum::Float(to_f64(a) + to_f64(b)),
    }
}

fn sub(a: PyNum, b: PyNum) -> PyNum {
    match (a, b) {
        (PyNum::Int(x), PyNum::Int(y)) => PyNum::Int(x - y),
        _ => PyNum::Float(to_f64(a) - to_f64(b)),
    }
}

fn to_f64(n: PyNum) -> f64 {
    match n {
        PyNum::Int(i) => i as f64,
        PyNum::Float(f) => f,
    }
}

fn outside_unit(n: PyNum) -> bool {
    n.cmp(PyNum::Float(0.0)) == Some(std::cmp::Ordering::Less)
        || n.cmp(PyNum::Float(1.0)) == Some(std::cmp::Ordering::Greater)
}

fn int_problem(e: EvalError, path: String) -> Problem {
    Problem::new(path, format!("{}: {e}", e.python_exception()))
}

fn parse_single(variants: &Value, n: i64) -> Result<VariantSet, Problem> {
    let path = "experiment.variants";
    let len = variants_len(variants, path)?;
    if len != 2 {
        return Err(Problem::new(
            path,
            "Single Variant experiments expect only one variant and one control.",
        ));
    }
    let items = as_indexable(variants, path)?;
    let entries = entry_objects(items, path)?;
    let s0 = size_of(entries[0], &format!("{path}[0]"), variants)?;
    let s1 = size_of(entries[1], &format!("{path}[1]"), variants)?;
    let n0 = numeric(s0, &format!("{path}[0].size"), "variant size")?;
    let n1 = numeric(s1, &format!("{path}[1].size"), "variant size")?;
    if outside_unit(add(n0, n1)) {
        return Err(Problem::new(path, "Sum of all variants must be between 0 and 1."));
    }
    let names =
        [name_of(entries[0], &format!("{path}[0]"))?, name_of(entries[1], &format!("{path}[1]"))?];
    let t0 = n0.int_of_mul(n).map(|v| py::clamp_i128(&v));
    let t1 = n1.int_of_mul(n).map(|v| py::clamp_i128(&(BigInt::from(n) - v)));
    Ok(VariantSet::Single { names, t0, t1 })
}

fn parse_multi(variants: &Value, n: i64) -> Result<VariantSet, Problem> {
    let path = "experiment.variants";
    let len = variants_len(variants, path)?;
    if len < 3 {
        return Err(Problem::new(path, "MultiVariant experiments expect three or more variants."));
    }
    let items = match variants {
        Value::Array(items) => items,
        other => {
            return Err(Problem::new(
                format!("{path}[0]"),
                format!("iterating a {} gives no variant objects", py::type_name(other)),
            ));
        }
    };
    let entries = entry_objects(items, path)?;
    let mut total = BigInt::from(0);
    let mut sizes = Vec::with_capacity(entries.len());
    for (i, entry) in entries.iter().enumerate() {
        let p = format!("{path}[{i}]");
        let size = size_of(entry, &p, variants)?;
        let size = match size {
            Value::String(_) => {
                return Err(Problem::new(
                    format!("{p}.size"),
                    "variant size must be a number (string sizes are not supported)",
                ));
            }
            other => numeric(other, &format!("{p}.size"), "variant size")?,
        };
        let buckets = size.int_of_mul(n).map_err(|e| int_problem(e, format!("{p}.size")))?;
        total += &buckets;
        sizes.push(buckets);
    }
    if total > BigInt::from(n) {
        return Err(Problem::new(path, "Sum of all variants is greater than 100%"));
    }
    let mut out = Vec::with_capacity(entries.len());
    let mut offset = BigInt::from(0);
    for (i, (entry, buckets)) in entries.iter().zip(sizes).enumerate() {
        let start = py::clamp_i128(&offset);
        offset += buckets;
        out.push((name_of(entry, &format!("{path}[{i}]"))?, start, py::clamp_i128(&offset)));
    }
    Ok(VariantSet::Multi { entries: out })
}

fn parse_rollout(variants: &Value, n: i64) -> Result<VariantSet, Problem> {
    let path = "experiment.variants";
    let len = variants_len(variants, path)?;
    if len != 1 {
        return Err(Problem::new(path, "Rollout variant only supports one variant."));
    }
    let items = as_indexable(variants, path)?;
    let entry = entry_objects(items, path)?[0];
    let p = format!("{path}[0]");
    let size = match entry.get("size") {
        None | Some(Value::Null) => None,
        Some(v) => Some(numeric(v, &format!("{p}.size"), "variant size")?),
    };
    let size = match size {
        Some(s) if !outside_unit(s) => s,
        _ => {
            return Err(Problem::new(format!("{p}.size"), "Variant size must be between 0 and 1"));
        }
    };
    let limit = size.int_of_mul(n).map_err(|e| int_problem(e, format!("{p}.size")))?;
    Ok(VariantSet::Rollout { name: name_of(entry, &p)?, limit: py::clamp_i128(&limit) })
}

fn parse_range(variants: &Value, n: i64) -> Result<VariantSet, Problem> {
    let path = "experiment.variants";
    if !py::truthy(variants) {
        return Err(Problem::new(path, "No variants provided"));
    }
    let items = match variants {
        Value::Array(items) => items,
        other => {
            return Err(Problem::new(
                path,
                format!("iterating a {} gives no variant objects", py::type_name(other)),
            ));
        }
    };
    let entries = entry_objects(items, path)?;
    let mut total = BigInt::from(0);
    let mut bounds = Vec::with_capacity(entries.len());
    for (i, entry) in entries.iter().enumerate() {
        let p = format!("{path}[{i}]");
        let (Some(end), Some(start)) = (entry.get("range_end"), entry.get("range_start")) else {
            return Err(Problem::new(
                p,
                format!("Variant range invalid: {}", py::to_py_str(variants)),
            ));
        };
        let end_n = numeric(end, &format!("{p}.range_end"), "range_end")?;
        let start_n = numeric(start, &format!("{p}.range_start"), "range_start")?;
        let size = sub(end_n, start_n).int_of_mul(n).map_err(|e| int_problem(e, p.clone()))?;
        total += size;
        let lo = start_n.int_of_mul(n).map(|v| py::clamp_i128(&v));
        let hi = end_n.int_of_mul(n).map(|v| py::clamp_i128(&v));
        bounds.push(lo.and_then(|lo| hi.map(|hi| (lo, hi))));
    }
    if total > BigInt::from(n) {
        return Err(Problem::new(path, "Sum of all variants is greater than 100%"));
    }
    let mut out = Vec::with_capacity(entries.len());
    for (i, (entry, b)) in entries.iter().zip(bounds).enumerate() {
        out.push((name_of(entry, &format!("{path}[{i}]"))?, b));
    }
    Ok(VariantSet::Range { entries: out })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn set(kind: &str, v: Value) -> Result<VariantSet, Problem> {
        VariantSet::parse(kind, Some(&v), 1000)
    }

    #[test]
    fn truncation_follows_python_int() {
        // int(0.57 * 100) == 56
        let s =
            VariantSet::parse("feature_rollout", Some(&json!([{"name": "a", "size": 0.57}])), 100)
                .unwrap();
        assert_eq!(s.choose(55).unwrap().variant, Some("a"));
        assert_eq!(s.choose(56).unwrap().variant, None);
    }

    #[test]
    fn single_variant_rules() {
        let s =
            set("single_variant", json!([{"name": "c", "size": 0.1}, {"name": "t", "size": 0.1}]))
                .unwrap();
        assert_eq!(s.choose(99).unwrap().variant, Some("c"));
        assert_eq!(s.choose(100).unwrap().variant, None);
        assert_eq!(s.choose(900).unwrap().variant, Some("t"));
        assert!(
            set("single_variant", json!([{"name": "c", "size": 0.6}, {"name": "t", "size": 0.5}]))
                .is_err()
        );
        // Negative individual sizes are allowed when the sum is in [0, 1].
        assert!(
            set("single_variant", json!([{"name": "c", "size": -0.1}, {"name": "t", "size": 1.0}]))
                .is_ok()
        );
        // Booleans act as 1 / 0.
        let b = set(
            "single_variant",
            json!([{"name": "c", "size": true}, {"name": "t", "size": false}]),
        )
        .unwrap();
        assert_eq!(b.choose(999).unwrap().variant, Some("c"));
        let e =
            set("single_variant", json!([{"size": 0.6}, {"name": "t", "size": 0.3}])).unwrap_err();
        assert_eq!(e.deviation, Some(Deviation::VariantName));
    }

    #[test]
    fn multi_and_range_sums() {
        assert!(
            set("multi_variant", json!([{"name": "a", "size": 0.5}, {"name": "b", "size": 0.5}]))
                .is_err()
        );
        assert!(set("multi_variant", json!([{"name": "a", "size": 0.5}, {"name": "b", "size": 0.4}, {"name": "c", "size": 0.2}])).is_err());
        let m = set("multi_variant", json!([{"name": "a", "size": 0.1}, {"name": "b", "size": 0.1}, {"name": "c", "size": 0.1}])).unwrap();
        assert_eq!(m.choose(150).unwrap().variant, Some("b"));
        assert_eq!(m.choose(300).unwrap().variant, None);
        let r = set("range_variant", json!([{"name": "x", "range_start": 0.9, "range_end": 0.1}, {"name": "y", "range_start": 0.0, "range_end": 0.5}])).unwrap();
        assert_eq!(r.choose(10).unwrap().variant, Some("y"));
        assert!(set("range_variant", json!([])).is_err());
    }

    #[test]
    fn overflowing_limits_fail_at_choose_time() {
        let s = set(
            "single_variant",
            json!([{"name": "c", "size": 1e308}, {"name": "t", "size": -1e308}]),
        )
        .unwrap();
        assert_eq!(s.choose(5), Err(EvalError::InfinityToInt));
    }
}
