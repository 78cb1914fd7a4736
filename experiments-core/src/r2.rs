//! Legacy `r2` and `feature_flag` experiments (baseplate's `R2Experiment` / `FeatureFlag`).

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};

use rustc_hash::FxHashMap;
use serde_json::{Map, Value};

use crate::bucketing::{Modulus, Seed};
use crate::error::{EvalError, Problem, PyOp, PyType};
use crate::experiment::BucketVal;
use crate::explain::{BucketRange, Observer, Step};
use crate::inputs::{Inputs, Key};
use crate::py::{self, OrdOp, PyNum};
use crate::variant_set::Bound;

/// R2 always uses 1000 buckets.
pub(crate) const R2_BUCKETS: u64 = 1000;

/// One targeting parameter: lower-cased name, case sensitivity, allowed values.
#[derive(Debug, Clone)]
struct TargetParam {
    name: Key,
    case_sensitive: bool,
    allowed: Vec<Value>,
}

/// One override parameter: lower-cased name, case sensitivity, value -> variant.
#[derive(Debug, Clone)]
struct OverrideParam {
    name: Key,
    case_sensitive: bool,
    map: FxHashMap<Box<str>, Value>,
}

/// A parsed r2 / feature_flag experiment.
#[derive(Debug, Clone)]
pub(crate) struct R2 {
    pub flag: bool,
    pub seed: Seed,
    modulus: Modulus,
    pub bucket_val: BucketVal,
    targeting: Vec<TargetParam>,
    overrides: Vec<OverrideParam>,
    newer_than: Option<Value>,
    /// The `user_created` attribute `newer_than` compares.
    user_created: Key,
    variants: Value,
    /// Sorted variant names with their bucket limits, or the error every bucketing raises.
    choice: Result<Vec<(Box<str>, Bound)>, EvalError>,
}

/// A hashable JSON value as a Python `dict` key: equal exactly when Python's `==` says so
/// (`1`, `1.0` and `True` are one key; `-0.0` and `0` too), so that hashing it gives dict
/// semantics without comparing every pair.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum DictKey {
    Null,
    /// An integer, a boolean, or a float with an integral value in the `i128` range.
    Int(i128),
    /// Any other (finite) float, by its bits.
    Float(u64),
    Str(String),
}

impl DictKey {
    /// The key of a hashable value (`None` for lists and objects).
    fn of(v: &Value) -> Option<DictKey> {
        Some(match v {
            Value::Null => DictKey::Null,
            Value::String(s) => DictKey::Str(s.clone()),
            Value::Array(_) | Value::Object(_) => return None,
            other => match py::as_num(other)? {
                PyNum::Int(i) => DictKey::Int(i),
                PyNum::Float(f) => {
                    // Integral floats equal the int of the same value; every i128 is exact
                    // below 2^127, and larger floats equal no int this port holds.
                    const LIMIT: f64 = 170_141_183_460_469_231_731_687_303_715_884_105_728.0;
                    if f.fract() == 0.0 && f.abs() < LIMIT {
                        DictKey::Int(f as i128)
                    } else {
                        DictKey::Float(f.to_bits())
                    }
                }
            },
        })
    }
}

/// Python `dict(value or {})` as an ordered list of (key, value) pairs with unique keys: a
/// repeated key keeps its first position and takes the last value. O(n): keys are found by
/// hash.
fn dict_pairs(value: Option<&Value>, path: &str) -> Result<Vec<(Value, Value)>, Problem> {
    let Some(value) = value.filter(|v| py::truthy(v)) else {
        return Ok(Vec::new());
    };
    if let Value::Object(m) = value {
        // An object's keys are unique strings already.
        return Ok(m.iter().map(|(k, v)| (Value::String(k.clone()), v.clone())).collect());
    }
    let mut pairs: Vec<(Value, Value)> = Vec::new();
    let mut seen: HashMap<DictKey, usize> = HashMap::new();
    let mut push = |k: Value, v: Value| -> Result<(), Problem> {
        let Some(key) = DictKey::of(&k) else {
            let e = py::check_hashable(&k).err().unwrap_or(EvalError::Unhashable(py::py_type(&k)));
            return Err(Problem::new(path, format!("TypeError: {e}")));
        };
        match seen.entry(key) {
            Entry::Occupied(slot) => pairs[*slot.get()].1 = v,
            Entry::Vacant(slot) => {
                slot.insert(pairs.len());
                pairs.push((k, v));
            }
        }
        Ok(())
    };
    match value {
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let pair: Option<(Value, Value)> = match item {
                    Value::Array(a) if a.len() == 2 => Some((a[0].clone(), a[1].clone())),
                    Value::String(s) if s.chars().count() == 2 => {
                        let mut c = s.chars();
                        let (a, b) = (c.next().unwrap_or_default(), c.next().unwrap_or_default());
                        Some((Value::String(a.into()), Value::String(b.into())))
                    }
                    Value::Object(m) if m.len() == 2 => {
                        let mut k = m.keys();
                        Some((
                            Value::String(k.next().cloned().unwrap_or_default()),
                            Value::String(k.next().cloned().unwrap_or_default()),
                        ))
                    }
                    _ => None,
                };
                let Some((k, v)) = pair else {
                    return Err(Problem::new(
                        format!("{path}[{i}]"),
                        "dictionary update sequence element must have length 2",
                    ));
                };
                push(k, v)?;
            }
        }
        other => {
            return Err(Problem::new(
                path,
                format!("cannot convert {} to a dict", py::type_name(other)),
            ));
        }
    }
    Ok(pairs)
}

/// Pops `__case_sensitive__` and lower-cases the names it lists (a set: looked up once per
/// parameter).
fn case_sensitive(pairs: &mut Vec<(Value, Value)>, path: &str) -> Result<HashSet<String>, Problem> {
    let Some(pos) = pairs.iter().position(|(k, _)| k.as_str() == Some("__case_sensitive__")) else {
        return Ok(HashSet::new());
    };
    let (_, listed) = pairs.remove(pos);
    let p = format!("{path}.__case_sensitive__");
    let names: HashSet<String> = match &listed {
        Value::Array(items) => items
            .iter()
            .map(|v| match v {
                Value::String(s) => Ok(py::lower(s)),
                other => Err(Problem::new(
                    p.clone(),
                    format!("'{}' object has no attribute 'lower'", py::type_name(other)),
                )),
            })
            .collect::<Result<_, _>>()?,
        Value::String(s) => s.chars().map(|c| py::lower(c.encode_utf8(&mut [0; 4]))).collect(),
        Value::Object(m) => m.keys().map(|k| py::lower(k)).collect(),
        other => {
            return Err(Problem::new(
                p,
                format!("'{}' object is not iterable", py::type_name(other)),
            ));
        }
    };
    Ok(names)
}

fn string_key(k: &Value, path: &str) -> Result<String, Problem> {
    match k {
        Value::String(s) => Ok(s.clone()),
        other => Err(Problem::new(
            path,
            format!("parameter name must be a string, found {}", py::type_name(other)),
        )),
    }
}

impl R2 {
    /// Parses the `experiment` block of an r2 (`flag == false`) or feature_flag experiment.
    pub(crate) fn parse(cfg: &Map<String, Value>, name: &str, flag: bool) -> Result<R2, Problem> {
        if flag {
            match cfg.get("variants") {
                None => {}
                Some(Value::Object(m)) if m.keys().any(|k| k != "active") => {
                    return Err(Problem::new(
                        "experiment.variants",
                        "a feature_flag only allows the variant \"active\"",
                    ));
                }
                Some(Value::Object(_)) => {}
                Some(other) => {
                    return Err(Problem::new(
                        "experiment.variants",
                        format!("'{}' object has no attribute 'keys'", py::type_name(other)),
                    ));
                }
            }
        }
        let Some(variants) = cfg.get("variants") else {
            return Err(Problem::new("experiment.variants", "KeyError: 'variants' (required)"));
        };
        let mut targeting_pairs = dict_pairs(cfg.get("targeting"), "experiment.targeting")?;
        let mut override_pairs = dict_pairs(cfg.get("overrides"), "experiment.overrides")?;
        let cs_overrides = case_sensitive(&mut override_pairs, "experiment.overrides")?;
        let cs_targeting = case_sensitive(&mut targeting_pairs, "experiment.targeting")?;

        let mut targeting: Vec<TargetParam> = Vec::new();
        let mut positions: HashMap<String, usize> = HashMap::new();
        for (param, value) in targeting_pairs {
            let param = string_key(&param, "experiment.targeting")?;
            let path = format!("experiment.targeting.{param}");
            let Value::Array(values) = value else {
                return Err(Problem::new(
                    path,
                    format!("targeting values must be a list, found {}", py::type_name(&value)),
                ));
            };
            let key = py::lower(&param);
            let cs = cs_targeting.contains(&key);
            let allowed: Vec<Value> = values
                .into_iter()
                .map(|v| match v {
                    Value::String(s) if !cs => Value::String(py::lower(&s)),
                    other => other,
                })
                .collect();
            let entry = TargetParam { name: Key::new(&key), case_sensitive: cs, allowed };
            dict_set(&mut targeting, &mut positions, key, entry);
        }

        let mut overrides: Vec<OverrideParam> = Vec::new();
        positions.clear();
        for (param, value) in override_pairs {
            let param = string_key(&param, "experiment.overrides")?;
            let path = format!("experiment.overrides.{param}");
            let Value::Object(values) = value else {
                return Err(Problem::new(
                    path,
                    format!("override values must be an object, found {}", py::type_name(&value)),
                ));
            };
            let key = py::lower(&param);
            let cs = cs_overrides.contains(&key);
            let mut map = FxHashMap::default();
            for (k, v) in values {
                let k = if cs { k } else { py::lower(&k) };
                map.insert(k.into_boxed_str(), v);
            }
            let entry = OverrideParam { name: Key::new(&key), case_sensitive: cs, map };
            dict_set(&mut overrides, &mut positions, key, entry);
        }

        let seed = match cfg.get("seed") {
            Some(s) if py::truthy(s) => py::to_py_str(s),
            _ => name.to_owned(),
        };
        let bucket_val = BucketVal::new(cfg.get("bucket_val"));
        let newer_than = cfg.get("newer_than").filter(|v| py::truthy(v)).cloned();
        let choice = Self::precompute_choice(variants);
        Ok(R2 {
            flag,
            seed: Seed::new(seed),
            modulus: Modulus::new(R2_BUCKETS),
            bucket_val,
            targeting,
            overrides,
            newer_than,
            user_created: Key::new("user_created"),
            variants: variants.clone(),
            choice,
        })
    }

    fn precompute_choice(variants: &Value) -> Result<Vec<(Box<str>, Bound)>, EvalError> {
        let map = match variants {
            Value::Object(m) => m,
            Value::Array(_) | Value::String(_) => {
                return Err(EvalError::NoKeys(py::py_type(variants)));
            }
            other => return Err(EvalError::NoLen(py::py_type(other))),
        };
        if map.is_empty() {
            return Err(EvalError::ZeroDivision);
        }
        let n = map.len() as i128;
        let mut names: Vec<(&String, &Value)> = map.iter().collect();
        names.sort_by(|a, b| a.0.cmp(b.0));
        Ok(names
            .into_iter()
            .map(|(name, size)| {
                let limit = match py::as_num(size) {
                    None => Err(EvalError::BadOperand {
                        op: PyOp::Div,
                        left: py::py_type(size),
                        right: PyType::Float,
                    }),
                    // (size * num_variants) * (1000 / 100), left to right.
                    Some(PyNum::Int(i)) => py::float_to_int((i * n) as f64 * 10.0),
                    Some(PyNum::Float(f)) => py::float_to_int(f * n as f64 * 10.0),
                };
                (name.as_str().into(), limit.map(|l| py::clamp_i128(&l)))
            })
            .collect())
    }

    /// Whether `variant in self.variants`.
    pub(crate) fn has_variant(&self, variant: &Value) -> Result<bool, EvalError> {
        py::py_contains(&self.variants, variant)
    }

    /// The first non-null override for the inputs (baseplate's `_check_overrides`).
    fn check_overrides(&self, inputs: &Inputs) -> Result<Option<(&str, &Value)>, EvalError> {
        for param in &self.overrides {
            let Some(given) = inputs.get_lowered(&param.name) else {
                continue;
            };
            for value in as_items(given) {
                let found = match value {
                    Value::String(s) if param.case_sensitive || py::is_lowercase_fixed_point(s) => {
                        param.map.get(s.as_str())
                    }
                    Value::String(s) => param.map.get(py::lower(s).as_str()),
                    other => {
                        py::check_hashable(other)?;
                        None
                    }
                };
                if let Some(v) = found.filter(|v| !v.is_null()) {
                    return Ok(Some((&param.name, v)));
                }
            }
        }
        Ok(None)
    }

    /// Baseplate's `_is_enabled`: an OR across the targeting parameters present.
    fn is_targeted<O: Observer>(&self, inputs: &Inputs, obs: &mut O) -> Result<bool, EvalError> {
        for param in &self.targeting {
            let Some(given) = inputs.get_lowered(&param.name) else {
                continue;
            };
            for value in as_items(given) {
                let matched = match value {
                    Value::String(s) if !param.case_sensitive => param
                        .allowed
                        .iter()
                        .any(|a| matches!(a, Value::String(t) if py::lower_eq(s, t))),
                    other => {
                        let mut any = false;
                        for a in &param.allowed {
                            if py::py_eq(other, a)? {
                                any = true;
                                break;
                            }
                        }
                        any
                    }
                };
                if !matched {
                    continue;
                }
                match &self.newer_than {
                    Some(newer_than) if param.name.as_str() == "logged_in" => {
                        if let Some(created) = inputs.get_lowered(&self.user_created)
                            && py::truthy(created)
                            && py::py_order(created, OrdOp::Gt, newer_than)?
                        {
                            obs.step(Step::R2Targeting { param: Some(&param.name) });
                            return Ok(true);
                        }
                    }
                    _ => {
                        obs.step(Step::R2Targeting { param: Some(&param.name) });
                        return Ok(true);
                    }
                }
            }
        }
        obs.step(Step::R2Targeting { param: None });
        Ok(false)
    }

    /// Baseplate's `R2Experiment.variant`.
    /// The variant, and whether an override chose it.
    pub(crate) fn variant<O: Observer>(
        &self,
        inputs: &Inputs,
        obs: &mut O,
    ) -> Result<(Option<&str>, bool), EvalError> {
        if let Some((param, forced)) = self.check_overrides(inputs)? {
            let accepted = self.has_variant(forced)?;
            obs.step(Step::R2Override { param, variant: forced, accepted });
            if accepted {
                return match forced {
                    Value::String(s) => Ok((Some(s), true)),
                    other => Err(EvalError::NonStringVariant(py::py_type(other))),
                };
            }
        }
        let Some(value) = self.bucket_val.lookup(inputs, obs)? else {
            return Ok((None, false));
        };
        let targeted = self.is_targeted(inputs, obs)?;
        obs.step(Step::Targeted { result: targeted });
        if !targeted {
            return Ok((None, false));
        }
        let bucket = self.seed.bucket(value, &self.modulus)?;
        obs.step(Step::Bucket { seed: self.seed.as_str(), bucket, num_buckets: R2_BUCKETS });
        let choice = self.choice.as_ref().map_err(|e| *e)?;
        let (name, limit) = &choice[(bucket % choice.len() as u64) as usize];
        let limit = (*limit)?;
        let variant = (i128::from(bucket) < limit).then_some(&**name);
        obs.step(Step::Variant { variant, range: Some(BucketRange::new(0, limit)) });
        Ok((variant, false))
    }

    /// Whether `targeting` is empty (the experiment is then never enabled).
    pub(crate) fn targeting_is_empty(&self) -> bool {
        self.targeting.is_empty()
    }

    /// The configured `variants` value (an object of sizes in percent, when well-formed).
    pub(crate) fn variants(&self) -> &Value {
        &self.variants
    }

    /// The variant bucket `b` gets when targeted (for expected shares).
    pub(crate) fn variant_of_bucket(&self, bucket: u64) -> Option<&str> {
        let choice = self.choice.as_ref().ok()?;
        let (name, limit) = &choice[(bucket % choice.len() as u64) as usize];
        (i128::from(bucket) < (*limit).ok()?).then_some(&**name)
    }

    /// The string variants named by override values.
    pub(crate) fn override_variants(&self) -> Vec<&str> {
        self.overrides.iter().flat_map(|o| o.map.values()).filter_map(Value::as_str).collect()
    }

    /// The variant names, sorted as r2 sorts them (empty when `variants` is not an object).
    pub(crate) fn variant_names(&self) -> Vec<&str> {
        self.choice.as_ref().map(|c| c.iter().map(|(n, _)| &**n).collect()).unwrap_or_default()
    }
}

/// Python `d[name] = entry` on an ordered list: replaces in place, else appends. `positions`
/// maps each name already in `items` to its index.
fn dict_set<T>(items: &mut Vec<T>, positions: &mut HashMap<String, usize>, name: String, entry: T) {
    match positions.entry(name) {
        Entry::Occupied(slot) => items[*slot.get()] = entry,
        Entry::Vacant(slot) => {
            slot.insert(items.len());
            items.push(entry);
        }
    }
}

/// A list/tuple input is iterated, anything else is a one-element sequence.
fn as_items(v: &Value) -> &[Value] {
    match v {
        Value::Array(items) => items,
        other => std::slice::from_ref(other),
    }
}
