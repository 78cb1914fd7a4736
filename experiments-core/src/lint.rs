//! Config lint: what parses (so baseplate accepts it and the experiment is valid) but is
//! almost surely a mistake — an experiment nobody can get, a variant that is capped or never
//! chosen, ranges that shadow each other. [`Experiment::lint`] reports each finding as a
//! typed [`LintWarning`]; `experiments check` prints their `Display` text.

use std::fmt;

use serde::Serialize;
use serde_json::Value;

use crate::experiment::{Body, BucketVal, Experiment};
use crate::explain::ForcedReason;
use crate::py::{self, PyNum};
use crate::r2::R2;
use crate::simple::Simple;
use crate::targeting::Node;
use crate::variant_set::{RangeEntry, VariantSet};

/// Where in an experiment a targeting tree sits.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "tree")]
#[non_exhaustive]
pub enum TargetingSite {
    /// `experiment.targeting`: the tree that decides who is in the experiment.
    Targeting,
    /// `experiment.overrides[index]`: the tree of one override.
    Override {
        /// Position of the override in `experiment.overrides` (0-based).
        index: usize,
        /// The variant the override forces.
        variant: String,
    },
}

impl fmt::Display for TargetingSite {
    /// The config path: `experiment.targeting` or `experiment.overrides[2] (variant)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TargetingSite::Targeting => f.write_str("experiment.targeting"),
            TargetingSite::Override { index, variant } => {
                write!(f, "experiment.overrides[{index}] ({variant})")
            }
        }
    }
}

/// Something in a valid experiment that is almost surely a mistake. It never changes how the
/// experiment evaluates; it explains a surprising result in advance.
///
/// `Display` gives the sentence `experiments check` prints; [`LintWarning::code`] a stable
/// snake_case identifier for machines (also the `code` tag of the serialized form). Sizes and
/// caps are percentages (`60.0` is 60 %), instants are epoch seconds. New kinds of warnings
/// may be added in minor releases.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "code", rename_all = "snake_case")]
#[non_exhaustive]
pub enum LintWarning {
    /// The `type` is not one baseplate knows (`dynamic_config`, a typo), or is empty or
    /// missing: the experiment is a `ForcedVariantExperiment` that gives nobody a variant.
    UnknownType {
        /// The lower-cased `type`; `None` when it is missing or not a string.
        type_name: Option<String>,
    },
    /// `now` is before `start_ts`: nobody gets a variant yet.
    NotStarted {
        /// The configured `start_ts` (epoch seconds).
        start_ts: f64,
    },
    /// `now` is at or past `stop_ts` (or the `expires` date): nobody gets a variant any more.
    Expired {
        /// The configured `stop_ts`, or the instant `expires` stands for (epoch seconds).
        stop_ts: f64,
    },
    /// `bucket_val` has upper-case letters: inputs are looked up lower-cased, so the
    /// bucketing value is never found and nobody gets a variant.
    BucketValNotLowercase {
        /// The configured `bucket_val`.
        bucket_val: String,
    },
    /// `bucket_val` is not a string (a number, `null`): it is never found among the inputs'
    /// names, so nobody gets a variant.
    BucketValNotString {
        /// Python's `str()` of the configured value (`12`, `None`).
        bucket_val: String,
    },
    /// A targeting tree could not be built: it matches nobody (as in baseplate).
    TargetingNeverMatches {
        /// Which tree.
        site: TargetingSite,
        /// Why it could not be built.
        reason: String,
    },
    /// The experiment's targeting is the constant `{"OVERRIDE": false}`: nobody is targeted
    /// (only overrides can still give a variant).
    NobodyTargeted,
    /// A simple experiment's override forces a name that is not one of its variants: the
    /// override returns that name although no bucket ever gets it.
    OverrideUnknownVariant {
        /// The name the override forces.
        variant: String,
    },
    /// A range variant shares buckets with variants listed before it, which win those
    /// buckets (the first range containing a bucket is chosen).
    RangeOverlap {
        /// The range variant listed later, which loses the shared buckets.
        variant: String,
        /// The first variant listed before it whose range intersects its own.
        first: String,
        /// How many variants listed before it intersect its range (at least 1).
        earlier: usize,
    },
    /// An r2 experiment has empty `targeting`: it is never enabled for anyone.
    R2TargetingEmpty,
    /// An r2 variant's size is above `100 / n` percent (n variants): r2 caps it there.
    R2SizeOverCap {
        /// The variant.
        variant: String,
        /// Its configured size, in percent.
        size: f64,
        /// The cap, `100 / n` percent.
        cap: f64,
    },
    /// The numeric sizes of an r2 experiment's variants add up to more than 100 %.
    #[serde(rename = "r2_sizes_over_100")]
    R2SizesOver100 {
        /// Their sum, in percent.
        total: f64,
    },
    /// An r2 override value names something that is not a variant: r2 ignores that override
    /// and buckets the call as usual.
    R2OverrideUnknownVariant {
        /// The name the override gives.
        variant: String,
    },
}

impl LintWarning {
    /// A stable snake_case identifier of the kind of warning (`expired`, `range_overlap`,
    /// ...), for machines: unlike the `Display` text it never changes wording.
    pub fn code(&self) -> &'static str {
        match self {
            LintWarning::UnknownType { .. } => "unknown_type",
            LintWarning::NotStarted { .. } => "not_started",
            LintWarning::Expired { .. } => "expired",
            LintWarning::BucketValNotLowercase { .. } => "bucket_val_not_lowercase",
            LintWarning::BucketValNotString { .. } => "bucket_val_not_string",
            LintWarning::TargetingNeverMatches { .. } => "targeting_never_matches",
            LintWarning::NobodyTargeted => "nobody_targeted",
            LintWarning::OverrideUnknownVariant { .. } => "override_unknown_variant",
            LintWarning::RangeOverlap { .. } => "range_overlap",
            LintWarning::R2TargetingEmpty => "r2_targeting_empty",
            LintWarning::R2SizeOverCap { .. } => "r2_size_over_cap",
            LintWarning::R2SizesOver100 { .. } => "r2_sizes_over_100",
            LintWarning::R2OverrideUnknownVariant { .. } => "r2_override_unknown_variant",
        }
    }
}

impl fmt::Display for LintWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LintWarning::UnknownType { type_name } => write!(
                f,
                "unknown experiment type {:?}: it never returns a variant",
                type_name.as_deref().unwrap_or("")
            ),
            LintWarning::NotStarted { start_ts } => {
                write!(f, "not started yet (start_ts {start_ts} is in the future)")
            }
            LintWarning::Expired { stop_ts } => write!(f, "expired (stop_ts {stop_ts} is past)"),
            LintWarning::BucketValNotLowercase { bucket_val } => write!(
                f,
                "bucket_val {bucket_val:?} is not lower-case: inputs are matched lower-cased, \
                 so it never matches"
            ),
            LintWarning::BucketValNotString { bucket_val } => {
                write!(f, "bucket_val {bucket_val} is not a string: it never matches")
            }
            LintWarning::TargetingNeverMatches { site, reason } => {
                write!(f, "{site} can never match: {reason}")
            }
            LintWarning::NobodyTargeted => {
                f.write_str("targeting is OVERRIDE false: nobody is targeted")
            }
            LintWarning::OverrideUnknownVariant { variant } => {
                write!(f, "an override forces {variant:?}, which is not one of the variants")
            }
            LintWarning::RangeOverlap { variant, first, earlier: 1 } => {
                write!(f, "range variants {first:?} and {variant:?} overlap: {first:?} wins")
            }
            LintWarning::RangeOverlap { variant, first, earlier } => write!(
                f,
                "range variant {variant:?} overlaps {earlier} variants listed before it \
                 (the first is {first:?}): they win the shared buckets"
            ),
            LintWarning::R2TargetingEmpty => {
                f.write_str("r2 targeting is empty: the experiment is never enabled")
            }
            LintWarning::R2SizeOverCap { variant, size, cap } => write!(
                f,
                "variant {variant:?} size {size}% is above the 1/n cap of {cap:.2}%: it is capped"
            ),
            LintWarning::R2SizesOver100 { total } => {
                write!(f, "variant sizes sum to {total}%, over 100%")
            }
            LintWarning::R2OverrideUnknownVariant { variant } => {
                write!(f, "an override names {variant:?}, which is not a variant: it is ignored")
            }
        }
    }
}

impl Experiment {
    /// Lints the experiment at `now` (epoch seconds; only the time window depends on it):
    /// every [`LintWarning`] that applies, in a fixed order — type, time window,
    /// `bucket_val`, unbuildable targeting trees, then the checks of the experiment's kind
    /// (r2: empty targeting, sizes, overrides; simple: constant-false targeting, overrides,
    /// overlapping ranges). An experiment whose `experiment` block is invalid gets only the
    /// time-window warnings.
    ///
    /// O(n log n) in the number of variants and overrides, and linear output: one warning
    /// per overlapped range, never one per overlapping pair.
    pub fn lint(&self, now: f64) -> Vec<LintWarning> {
        let mut out = Vec::new();
        if matches!(&self.body, Ok(Body::Forced { reason: ForcedReason::UnknownType, .. })) {
            out.push(LintWarning::UnknownType { type_name: self.type_name.clone() });
        }
        match self.window() {
            (Some(start_ts), _) if now < start_ts => out.push(LintWarning::NotStarted { start_ts }),
            (_, Some(stop_ts)) if now >= stop_ts => out.push(LintWarning::Expired { stop_ts }),
            _ => {}
        }
        let bucket_val = match &self.body {
            Ok(Body::R2(r2)) => Some(&r2.bucket_val),
            Ok(Body::Simple(s)) => Some(&s.bucket_val),
            _ => None,
        };
        match bucket_val {
            Some(BucketVal::Str { raw, matchable: false }) => {
                out.push(LintWarning::BucketValNotLowercase { bucket_val: raw.as_str().to_owned() })
            }
            Some(BucketVal::Other(text)) => {
                out.push(LintWarning::BucketValNotString { bucket_val: text.to_string() })
            }
            _ => {}
        }
        match &self.body {
            Ok(Body::R2(r2)) => lint_r2(r2, &mut out),
            Ok(Body::Simple(s)) => lint_simple(s, &mut out),
            _ => {}
        }
        out
    }
}

/// The r2 checks: empty targeting, sizes over the 1/n cap or over 100 % in total, override
/// values that are not variants.
fn lint_r2(r2: &R2, out: &mut Vec<LintWarning>) {
    if r2.targeting_is_empty() {
        out.push(LintWarning::R2TargetingEmpty);
    }
    if let Value::Object(sizes) = r2.variants() {
        let n = sizes.len().max(1) as f64;
        let cap = 100.0 / n;
        let mut total = 0.0;
        for (name, size) in sizes {
            let Some(size) = py::as_num(size).map(|s| match s {
                PyNum::Int(i) => i as f64,
                PyNum::Float(f) => f,
            }) else {
                continue;
            };
            total += size;
            if size > cap {
                out.push(LintWarning::R2SizeOverCap { variant: name.clone(), size, cap });
            }
        }
        if total > 100.0 {
            out.push(LintWarning::R2SizesOver100 { total });
        }
    }
    for v in r2.override_variants() {
        if !r2.has_variant(&Value::String(v.to_owned())).unwrap_or(false) {
            out.push(LintWarning::R2OverrideUnknownVariant { variant: v.to_owned() });
        }
    }
}

/// The simple-experiment checks: trees that cannot be built, constant-false targeting,
/// overrides forcing unknown names, overlapping ranges.
fn lint_simple(s: &Simple, out: &mut Vec<LintWarning>) {
    if let Some(reason) = &s.targeting.error {
        out.push(LintWarning::TargetingNeverMatches {
            site: TargetingSite::Targeting,
            reason: reason.clone(),
        });
    }
    for (index, (variant, tree)) in s.overrides.iter().enumerate() {
        if let Some(reason) = &tree.error {
            out.push(LintWarning::TargetingNeverMatches {
                site: TargetingSite::Override { index, variant: variant.to_string() },
                reason: reason.clone(),
            });
        }
    }
    if matches!(s.targeting.root, Node::Const(false)) && s.targeting.error.is_none() {
        out.push(LintWarning::NobodyTargeted);
    }
    // Sorted once, so each override costs a binary search, not a scan.
    let mut names = s.variants.names();
    names.sort_unstable();
    for (v, _) in &s.overrides {
        if !v.is_empty() && names.binary_search(&&**v).is_err() {
            out.push(LintWarning::OverrideUnknownVariant { variant: v.to_string() });
        }
    }
    if let VariantSet::Range { entries } = &s.variants {
        out.extend(range_overlaps(entries).into_iter().map(|o| LintWarning::RangeOverlap {
            variant: o.later.to_owned(),
            first: o.winner.to_owned(),
            earlier: o.earlier,
        }));
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
fn range_overlaps(entries: &[RangeEntry]) -> Vec<RangeOverlap<'_>> {
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
    use serde_json::{Value, json};

    use super::*;
    use crate::error::EvalError;
    use crate::shares::tests::{Rng, range_experiment};

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
        let warnings = range_experiment(1000, variants).lint(0.0);
        assert!(warnings.iter().all(|w| w.code() == "range_overlap"), "{:?}", &warnings[..1]);
        assert_eq!(
            warnings[1],
            LintWarning::RangeOverlap {
                variant: "full2".into(),
                first: "full0".into(),
                earlier: 2
            }
        );
        let warnings: Vec<String> = warnings.iter().map(ToString::to_string).collect();
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
        let warnings = Experiment::parse("m", &cfg).unwrap().lint(0.0);
        assert_eq!(warnings, [LintWarning::OverrideUnknownVariant { variant: "typo".into() }]);
        let warnings: Vec<String> = warnings.iter().map(ToString::to_string).collect();
        let unknown: Vec<&String> =
            warnings.iter().filter(|w| w.contains("not one of the variants")).collect();
        assert_eq!(unknown, [r#"an override forces "typo", which is not one of the variants"#]);
    }

    fn lint(config: Value, now: f64) -> Vec<LintWarning> {
        Experiment::parse("e", &config).unwrap().lint(now)
    }

    /// One experiment per kind of warning: the typed value, the text `experiments check`
    /// printed before warnings were typed, and a `code` that is also the serialized tag.
    #[test]
    fn every_kind_keeps_its_text_and_has_a_stable_code() {
        let window = |mut v: Value| {
            v["id"] = json!(1);
            v["name"] = json!("e");
            v["start_ts"] = json!(0);
            v["stop_ts"] = json!(4_102_444_800u64);
            v
        };
        let rollout = |experiment: Value| {
            let mut e = json!({"experiment_version": 1, "variants": [{"name": "on", "size": 0.5}]});
            for (k, v) in experiment.as_object().unwrap() {
                e[k] = v.clone();
            }
            window(json!({"type": "feature_rollout", "experiment": e}))
        };
        let mut expired = rollout(json!({}));
        expired["stop_ts"] = json!(1000);
        let mut future = rollout(json!({}));
        future["start_ts"] = json!(4_000_000_000u64);
        let mut r2_floats = window(json!({"type": "r2",
            "experiment": {"variants": {"a": 33.3, "b": 33.3, "c": 40.5}, "targeting": {"x": [1]}}}));
        r2_floats["stop_ts"] = json!(1.25);
        let cases: Vec<(Value, Vec<(&str, &str)>)> = vec![
            (
                window(json!({"type": "dynamic_config", "experiment": {}})),
                vec![(
                    "unknown_type",
                    r#"unknown experiment type "dynamic_config": it never returns a variant"#,
                )],
            ),
            (
                window(json!({"experiment": {}})),
                vec![("unknown_type", r#"unknown experiment type "": it never returns a variant"#)],
            ),
            (expired, vec![("expired", "expired (stop_ts 1000 is past)")]),
            (
                future,
                vec![("not_started", "not started yet (start_ts 4000000000 is in the future)")],
            ),
            (
                rollout(json!({"bucket_val": "Device_ID"})),
                vec![(
                    "bucket_val_not_lowercase",
                    r#"bucket_val "Device_ID" is not lower-case: inputs are matched lower-cased, so it never matches"#,
                )],
            ),
            (
                rollout(json!({"bucket_val": 12})),
                vec![("bucket_val_not_string", "bucket_val 12 is not a string: it never matches")],
            ),
            (
                rollout(json!({"targeting": {"BOGUS": 1},
                    "overrides": [{"on": {"OVERRIDE": true}}, {"on": {"NOPE": 2}}]})),
                vec![
                    (
                        "targeting_never_matches",
                        r#"experiment.targeting can never match: unrecognized targeting operator "BOGUS""#,
                    ),
                    (
                        "targeting_never_matches",
                        r#"experiment.overrides[1] (on) can never match: unrecognized targeting operator "NOPE""#,
                    ),
                ],
            ),
            (
                rollout(json!({"targeting": {"OVERRIDE": false},
                    "overrides": [{"typo": {"OVERRIDE": true}}]})),
                vec![
                    ("nobody_targeted", "targeting is OVERRIDE false: nobody is targeted"),
                    (
                        "override_unknown_variant",
                        r#"an override forces "typo", which is not one of the variants"#,
                    ),
                ],
            ),
            (
                window(json!({"type": "range_variant", "experiment": {"experiment_version": 1,
                    "variants": [{"name": "x", "range_start": 0.0, "range_end": 0.4},
                        {"name": "y", "range_start": 0.3, "range_end": 0.5},
                        {"name": "z", "range_start": 0.1, "range_end": 0.45}]}})),
                vec![
                    ("range_overlap", r#"range variants "x" and "y" overlap: "x" wins"#),
                    (
                        "range_overlap",
                        r#"range variant "z" overlaps 2 variants listed before it (the first is "x"): they win the shared buckets"#,
                    ),
                ],
            ),
            (
                window(json!({"type": "r2", "experiment": {"variants": {"a": 60, "b": 50},
                    "targeting": {}, "overrides": {"user_id": {"t2_x": "zzz", "t2_y": "a"}}}})),
                vec![
                    (
                        "r2_targeting_empty",
                        "r2 targeting is empty: the experiment is never enabled",
                    ),
                    (
                        "r2_size_over_cap",
                        r#"variant "a" size 60% is above the 1/n cap of 50.00%: it is capped"#,
                    ),
                    ("r2_sizes_over_100", "variant sizes sum to 110%, over 100%"),
                    (
                        "r2_override_unknown_variant",
                        r#"an override names "zzz", which is not a variant: it is ignored"#,
                    ),
                ],
            ),
            (
                r2_floats,
                vec![
                    ("expired", "expired (stop_ts 1.25 is past)"),
                    (
                        "r2_size_over_cap",
                        r#"variant "c" size 40.5% is above the 1/n cap of 33.33%: it is capped"#,
                    ),
                    ("r2_sizes_over_100", "variant sizes sum to 107.1%, over 100%"),
                ],
            ),
        ];
        let mut codes = std::collections::BTreeSet::new();
        for (config, expected) in cases {
            let warnings = lint(config.clone(), 1_700_000_000.0);
            let got: Vec<(&str, String)> =
                warnings.iter().map(|w| (w.code(), w.to_string())).collect();
            let expected: Vec<(&str, String)> =
                expected.into_iter().map(|(c, t)| (c, t.to_owned())).collect();
            assert_eq!(got, expected, "{config}");
            for w in &warnings {
                assert_eq!(serde_json::to_value(w).unwrap()["code"], w.code(), "{w:?}");
                codes.insert(w.code());
            }
        }
        assert_eq!(codes.len(), 13, "every kind is covered: {codes:?}");
        assert!(lint(rollout(json!({})), 1_700_000_000.0).is_empty());
    }
}
