//! Manifest lint: what loads (so the reference accepts it and decides with it) but is almost
//! surely a mistake — a parent that is silently ignored, ranges that never match or shadow
//! each other, a mutually exclusive group whose buckets lead nowhere, a dynamic config whose
//! value contradicts its `value_type`. [`Manifest::lint`] reports each finding as a typed
//! [`DeciderWarning`] under the config key of the entry it is about; `experiments check`
//! prints their `Display` text.
//!
//! Nothing here changes how a document loads or decides: the lint only reads the loaded
//! [`Manifest`] and, for what loading does not keep (the parent names that matched nothing,
//! `value_type`), the document it was loaded from.

use std::collections::{HashMap, HashSet};
use std::fmt;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::manifest::{Feature, FeatureKind, LoadWarning, Manifest, TOTAL_BUCKETS, Variant};

/// Something in a document that loads but is almost surely a mistake. It never changes a
/// decision; it explains a surprising one in advance.
///
/// `Display` gives the sentence `experiments check` prints; [`DeciderWarning::code`] a stable
/// snake_case identifier for machines (also the `code` tag of the serialized form). Ranges are
/// the configured `f32` values; bucket counts are out of [`TOTAL_BUCKETS`]. New kinds of
/// warnings may be added in minor releases.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "code", rename_all = "snake_case")]
#[non_exhaustive]
pub enum DeciderWarning {
    /// Another entry listed before this one has the same `name`: decisions by that name use
    /// the first ([`LoadWarning::DuplicateName`]; the reference picks one at random per
    /// load). This entry can still be a parent, by its config key.
    DuplicateName {
        /// The shared name.
        name: String,
        /// The config key of the entry decisions use.
        kept: String,
    },
    /// `parent_hg_name` / `parent_meg_name` names a config key that is not an entry of the
    /// document: the parent is ignored and the entry is decided as if it had none.
    UnknownParent {
        /// `parent_hg_name` or `parent_meg_name`.
        link: &'static str,
        /// The named parent.
        parent: String,
    },
    /// `parent_hg_name` / `parent_meg_name` names an entry that failed to parse: like the
    /// reference, the parent is silently ignored and the entry is decided as if it had none
    /// (a parent that parses but fails later makes its children fail instead).
    IgnoredParent {
        /// `parent_hg_name` or `parent_meg_name`.
        link: &'static str,
        /// The named parent.
        parent: String,
    },
    /// A variant's range leaves `[0, 1]`: buckets only go from 0 to 999, so the part outside
    /// never matches (and the sizes were probably meant as fractions).
    RangeOutOfBounds {
        /// The variant.
        variant: String,
        /// `range_start`.
        start: f32,
        /// `range_end`.
        end: f32,
    },
    /// A variant's `range_start` is above its `range_end`: a reversed range never matches.
    RangeReversed {
        /// The variant.
        variant: String,
        /// `range_start`.
        start: f32,
        /// `range_end`.
        end: f32,
    },
    /// A variant shares buckets with variants listed before it, which win them (the first
    /// range holding a bucket is chosen). Compared on the buckets the ranges round to, so
    /// ranges that only touch (`[0, 0.5]`, `[0.5, 1]`) do not overlap.
    RangeOverlap {
        /// The variant listed later, which loses the shared buckets.
        variant: String,
        /// The first variant listed before it whose buckets intersect its own.
        first: String,
        /// How many of its buckets go to earlier variants.
        shadowed: u16,
        /// How many buckets its range holds (within `0..1000`).
        buckets: u16,
    },
    /// This entry is the mutually exclusive group (`parent_meg_name`) of other entries, and
    /// one of its variants is not the `name` of any of them: ids bucketed into that variant
    /// get no variant from any child.
    MegVariantWithoutChild {
        /// The group's variant.
        variant: String,
    },
    /// The entry's mutually exclusive group has no variant named like the entry: the group
    /// never admits it, so it only gets a variant through its overrides.
    MegChildNotAVariant {
        /// The group's config key.
        group: String,
    },
    /// This entry is the holdout group (`parent_hg_name`) of other entries but has no variant
    /// named `holdout`: it never holds anybody out.
    HoldoutWithoutHoldoutVariant {
        /// How many entries name it as their holdout.
        children: usize,
    },
    /// A dynamic config's `value` has another JSON type than its `value_type` says. The value
    /// decides (`value_type` only supplies a default when `value` is absent or null), so the
    /// typed getter of the declared type raises.
    ValueTypeMismatch {
        /// The declared `value_type`.
        value_type: String,
        /// The value's type: `boolean`, `integer`, `float`, `string` or `map`.
        actual: &'static str,
    },
}

impl DeciderWarning {
    /// A stable snake_case identifier of the kind of warning (`range_overlap`,
    /// `unknown_parent`, ...), for machines: unlike the `Display` text it never changes
    /// wording.
    pub fn code(&self) -> &'static str {
        match self {
            DeciderWarning::DuplicateName { .. } => "duplicate_name",
            DeciderWarning::UnknownParent { .. } => "unknown_parent",
            DeciderWarning::IgnoredParent { .. } => "ignored_parent",
            DeciderWarning::RangeOutOfBounds { .. } => "range_out_of_bounds",
            DeciderWarning::RangeReversed { .. } => "range_reversed",
            DeciderWarning::RangeOverlap { .. } => "range_overlap",
            DeciderWarning::MegVariantWithoutChild { .. } => "meg_variant_without_child",
            DeciderWarning::MegChildNotAVariant { .. } => "meg_child_not_a_variant",
            DeciderWarning::HoldoutWithoutHoldoutVariant { .. } => {
                "holdout_without_holdout_variant"
            }
            DeciderWarning::ValueTypeMismatch { .. } => "value_type_mismatch",
        }
    }
}

impl fmt::Display for DeciderWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeciderWarning::DuplicateName { name, kept } => write!(
                f,
                "name {name:?} is also the name of {kept:?}, listed before it, which decisions \
                 use: this entry is only reachable as a parent"
            ),
            DeciderWarning::UnknownParent { link, parent } => write!(
                f,
                "{link} {parent:?} is not an entry of the document: the parent is ignored"
            ),
            DeciderWarning::IgnoredParent { link, parent } => write!(
                f,
                "{link} {parent:?} failed to load: the parent is silently ignored, as the \
                 reference does"
            ),
            DeciderWarning::RangeOutOfBounds { variant, start, end } => write!(
                f,
                "variant {variant:?} range [{start}, {end}] leaves [0, 1]: buckets outside \
                 never match"
            ),
            DeciderWarning::RangeReversed { variant, start, end } => write!(
                f,
                "variant {variant:?} range_start {start} is above range_end {end}: it never \
                 matches"
            ),
            DeciderWarning::RangeOverlap { variant, first, shadowed, buckets }
                if shadowed == buckets =>
            {
                write!(
                    f,
                    "variant {variant:?} is covered by variants listed before it (the first is \
                     {first:?}): it is never chosen by bucketing"
                )
            }
            DeciderWarning::RangeOverlap { variant, first, shadowed, buckets } => write!(
                f,
                "variant {variant:?} overlaps {first:?}, listed before it: {shadowed} of its \
                 {buckets} buckets go to earlier variants"
            ),
            DeciderWarning::MegVariantWithoutChild { variant } => write!(
                f,
                "mutually exclusive group variant {variant:?} is the name of none of its \
                 children: ids bucketed there get no variant from any child"
            ),
            DeciderWarning::MegChildNotAVariant { group } => write!(
                f,
                "its mutually exclusive group {group:?} has no variant named like this entry: \
                 it never gets a variant except through overrides"
            ),
            DeciderWarning::HoldoutWithoutHoldoutVariant { children } => write!(
                f,
                "holdout group of {children} entries without a variant named \"holdout\": it \
                 holds nobody out"
            ),
            DeciderWarning::ValueTypeMismatch { value_type, actual } => {
                let article =
                    if actual.starts_with(['a', 'e', 'i', 'o', 'u']) { "an" } else { "a" };
                let getter = match value_type.as_str() {
                    "Boolean" => "get_bool",
                    "Integer" => "get_int",
                    "Float" => "get_float",
                    "String" | "Text" => "get_string",
                    "Map" => "get_map",
                    _ => {
                        return write!(
                            f,
                            "value is {article} {actual} but value_type is {value_type:?}: the \
                             value decides"
                        );
                    }
                };
                write!(
                    f,
                    "value is {article} {actual} but value_type is {value_type:?}: the value's \
                     type decides, so {getter} raises"
                )
            }
        }
    }
}

impl Manifest {
    /// Lints the manifest: every [`DeciderWarning`] that applies, each with the config key of
    /// the entry it is about, in document order (and, for one entry, in a fixed order:
    /// duplicate name, parents, each variant's range, holdout and group checks, value type).
    /// The load warnings ([`Manifest::warnings`]) are included, as `DuplicateName`,
    /// `UnknownParent` or `IgnoredParent`. Entries that failed to load
    /// ([`Manifest::errors`]) are not linted.
    ///
    /// `document` must be the object this manifest was loaded from: it tells a parent that is
    /// not in the document from one that failed to parse, and gives each dynamic config's
    /// `value_type`, which loading does not keep.
    ///
    /// Linear in the size of the manifest, plus O(B log B) per range feature with two or more
    /// variants (B = [`TOTAL_BUCKETS`]); one warning per overlapped variant, never one per
    /// overlapping pair.
    pub fn lint(&self, document: &Map<String, Value>) -> Vec<(String, DeciderWarning)> {
        let mut out: Vec<(String, DeciderWarning)> = Vec::new();
        for w in self.warnings() {
            match w {
                LoadWarning::DuplicateName { name, kept, shadowed } => out.push((
                    shadowed.clone(),
                    DeciderWarning::DuplicateName { name: name.clone(), kept: kept.clone() },
                )),
                LoadWarning::UnknownParent { key, link, parent } => {
                    let in_document = !parent.starts_with('$') && document.contains_key(parent);
                    let (link, parent) = (*link, parent.clone());
                    let warning = if in_document {
                        DeciderWarning::IgnoredParent { link, parent }
                    } else {
                        DeciderWarning::UnknownParent { link, parent }
                    };
                    out.push((key.clone(), warning));
                }
            }
        }
        for f in &self.features {
            lint_ranges(f, &mut out);
        }
        self.lint_parents(&mut out);
        for f in self.features.iter().filter(|f| f.kind == FeatureKind::DynamicConfig) {
            if let Some(w) = value_type_mismatch(f, document) {
                out.push((f.key.to_string(), w));
            }
        }
        // Document order; a stable sort keeps each entry's warnings in the order above.
        let position: HashMap<&str, usize> =
            document.keys().enumerate().map(|(i, k)| (k.as_str(), i)).collect();
        out.sort_by_key(|(key, _)| position.get(key.as_str()).copied().unwrap_or(usize::MAX));
        out
    }

    /// Holdout groups that hold nobody out, group variants that lead to no child, and
    /// children their group never admits.
    fn lint_parents(&self, out: &mut Vec<(String, DeciderWarning)>) {
        // Parent index → how many entries name it as their holdout; → the entries naming it
        // as their group, in manifest order.
        let mut holdouts: HashMap<u32, usize> = HashMap::new();
        let mut groups: HashMap<u32, Vec<&Feature>> = HashMap::new();
        for f in &self.features {
            let Some(r) = f.range() else { continue };
            if let Some(h) = r.holdout {
                *holdouts.entry(h).or_default() += 1;
            }
            if let Some(m) = r.meg {
                groups.entry(m).or_default().push(f);
            }
        }
        for (id, parent) in self.features.iter().enumerate() {
            let id = id as u32;
            if let Some(&children) = holdouts.get(&id)
                && !parent.variants().iter().any(|v| v.name() == "holdout")
            {
                out.push((
                    parent.key.to_string(),
                    DeciderWarning::HoldoutWithoutHoldoutVariant { children },
                ));
            }
            let Some(children) = groups.get(&id) else { continue };
            let mut child_names: Vec<&str> = children.iter().map(|c| c.name()).collect();
            child_names.sort_unstable();
            let mut variant_names: Vec<&str> =
                parent.variants().iter().map(Variant::name).collect();
            let mut seen: HashSet<&str> = HashSet::new();
            for v in &variant_names {
                if child_names.binary_search(v).is_err() && seen.insert(v) {
                    out.push((
                        parent.key.to_string(),
                        DeciderWarning::MegVariantWithoutChild { variant: (*v).to_owned() },
                    ));
                }
            }
            variant_names.sort_unstable();
            for c in children {
                if variant_names.binary_search(&c.name()).is_err() {
                    out.push((
                        c.key.to_string(),
                        DeciderWarning::MegChildNotAVariant { group: parent.key.to_string() },
                    ));
                }
            }
        }
    }
}

impl Feature {
    /// How many of the [`TOTAL_BUCKETS`] buckets each variant wins when bucketing, in variant
    /// order: the buckets of its range that no variant listed before it holds (the first range
    /// holding a bucket is chosen). Their sum is at most 1000; `expected share = count /
    /// 1000` of the ids that reach bucketing. Empty for dynamic configs. O(B + v).
    pub fn bucket_counts(&self) -> Vec<u16> {
        let owners = Owners::new(self.variants());
        let mut counts = vec![0u16; self.variants().len()];
        for &o in &owners.0 {
            if let Some(c) = counts.get_mut(o as usize) {
                *c += 1;
            }
        }
        counts
    }
}

/// The buckets a variant's range holds, clamped to `0..1000` (`lo >= hi`: none).
fn clamped(v: &Variant) -> (usize, usize) {
    let n = usize::from(TOTAL_BUCKETS);
    let (lo, hi) = v.buckets();
    (usize::from(lo).min(n), usize::from(hi).min(n))
}

/// The winning variant of each bucket (`u32::MAX`: none): each variant in list order claims
/// the still unclaimed buckets of its range, skipping claimed runs through a "next unclaimed"
/// forest, so every bucket is claimed once. O(B + v).
struct Owners(Vec<u32>);

impl Owners {
    fn new(variants: &[Variant]) -> Owners {
        let n = usize::from(TOTAL_BUCKETS);
        let mut owner = vec![u32::MAX; n];
        // next[b]: a pointer towards the first unclaimed bucket at or after b (n: none).
        let mut next: Vec<usize> = (0..=n).collect();
        for (i, v) in variants.iter().enumerate() {
            let (lo, hi) = clamped(v);
            let mut b = find(&mut next, lo);
            while b < hi {
                owner[b] = u32::try_from(i).unwrap_or(u32::MAX - 1);
                next[b] = b + 1;
                b = find(&mut next, b + 1);
            }
        }
        Owners(owner)
    }
}

/// The root of `b` in the "next unclaimed" forest, compressing the path (iteratively).
fn find(next: &mut [usize], b: usize) -> usize {
    let mut root = b;
    while next[root] != root {
        root = next[root];
    }
    let mut x = b;
    while next[x] != root {
        let up = next[x];
        next[x] = root;
        x = up;
    }
    root
}

/// Range-minimum queries over the bucket owners (a sparse table): O(B log B) to build, O(1)
/// per query.
struct MinTable(Vec<Vec<u32>>);

impl MinTable {
    fn new(values: Vec<u32>) -> MinTable {
        let mut levels = vec![values];
        let mut width = 1usize;
        while width * 2 <= levels[0].len() {
            let prev = &levels[levels.len() - 1];
            let next: Vec<u32> =
                (0..prev.len() - width).map(|i| prev[i].min(prev[i + width])).collect();
            levels.push(next);
            width *= 2;
        }
        MinTable(levels)
    }

    /// The minimum over `lo..hi` (`lo < hi`).
    fn min(&self, lo: usize, hi: usize) -> u32 {
        let k = (usize::BITS - 1 - (hi - lo).leading_zeros()) as usize;
        let level = &self.0[k];
        level[lo].min(level[hi - (1 << k)])
    }
}

/// The range checks of one range feature: bounds, reversed ranges, then overlaps.
fn lint_ranges(f: &Feature, out: &mut Vec<(String, DeciderWarning)>) {
    let variants = f.variants();
    for v in variants {
        let (start, end) = v.range();
        if start < 0.0 || end > 1.0 {
            out.push((
                f.key.to_string(),
                DeciderWarning::RangeOutOfBounds { variant: v.name().to_owned(), start, end },
            ));
        }
        if start > end {
            out.push((
                f.key.to_string(),
                DeciderWarning::RangeReversed { variant: v.name().to_owned(), start, end },
            ));
        }
    }
    if variants.iter().filter(|v| clamped(v).0 < clamped(v).1).count() < 2 {
        return;
    }
    let owners = Owners::new(variants);
    let mut won = vec![0u16; variants.len()];
    for &o in &owners.0 {
        if let Some(c) = won.get_mut(o as usize) {
            *c += 1;
        }
    }
    let table = MinTable::new(owners.0);
    for (i, v) in variants.iter().enumerate() {
        let (lo, hi) = clamped(v);
        if lo >= hi {
            continue;
        }
        // The first-listed earlier variant intersecting this range owns the shared buckets
        // (any earlier owner would intersect too), so it is the minimum owner of the range.
        let first = table.min(lo, hi) as usize;
        if first < i {
            let buckets = (hi - lo) as u16;
            out.push((
                f.key.to_string(),
                DeciderWarning::RangeOverlap {
                    variant: v.name().to_owned(),
                    first: variants[first].name().to_owned(),
                    shadowed: buckets - won[i],
                    buckets,
                },
            ));
        }
    }
}

/// A dynamic config whose `value` is present and has another type than its `value_type`
/// says. `Float` accepts integers (`get_float` reads any number); `Text` is `String`; an
/// unknown `value_type` cannot have loaded.
fn value_type_mismatch(f: &Feature, document: &Map<String, Value>) -> Option<DeciderWarning> {
    let entry = document.get(f.key())?.as_object()?;
    let value_type = entry.get("value_type")?.as_str()?;
    let actual = match entry.get("value")? {
        Value::Null => return None,
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "float",
        Value::String(_) => "string",
        Value::Object(_) => "map",
        Value::Array(_) => "array",
    };
    let agrees = match value_type {
        "Boolean" => actual == "boolean",
        "Integer" => actual == "integer",
        "Float" => actual == "float" || actual == "integer",
        "String" | "Text" => actual == "string",
        "Map" => actual == "map",
        "Null" => false,
        _ => true,
    };
    (!agrees)
        .then(|| DeciderWarning::ValueTypeMismatch { value_type: value_type.to_owned(), actual })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lint(text: &str) -> Vec<(String, DeciderWarning)> {
        let manifest = Manifest::from_str(text).unwrap();
        let document: Map<String, Value> = serde_json::from_str(text).unwrap();
        manifest.lint(&document)
    }

    fn codes(text: &str) -> Vec<(String, &'static str)> {
        lint(text).into_iter().map(|(k, w)| (k, w.code())).collect()
    }

    fn range(key: &str, extra: &str, variants: &str) -> String {
        format!(
            r#""{key}": {{"id": 1, "name": "{key}", "enabled": true, "version": "1",
                "type": "range_variant", {extra}
                "experiment": {{"experiment_version": 1, "bucket_val": "user_id",
                  "variants": [{variants}]}}}}"#
        )
    }

    fn v(name: &str, start: f64, end: f64) -> String {
        format!(r#"{{"name": "{name}", "range_start": {start}, "range_end": {end}}}"#)
    }

    #[test]
    fn a_clean_document_has_no_warnings() {
        let doc = format!(
            "{{{}, {}, {}}}",
            range("hg", "", &[v("holdout", 0.0, 0.1), v("control_1", 0.1, 0.2)].join(",")),
            range("meg", r#""parent_hg_name": "hg","#, &v("child", 0.0, 1.0)),
            range(
                "child",
                r#""parent_meg_name": "meg","#,
                &[v("a", 0.0, 0.5), v("b", 0.5, 1.0)].join(",")
            )
        );
        assert_eq!(lint(&doc), []);
    }

    #[test]
    fn ranges_out_of_bounds_reversed_and_overlapping() {
        let variants = [
            v("a", 0.0, 0.5),
            v("b", 0.4, 0.6),
            v("c", 0.1, 0.3),
            v("d", 0.8, 0.7),
            v("e", 0.9, 1.5),
            v("f", -0.2, 0.0),
        ]
        .join(",");
        let found = lint(&format!("{{{}}}", range("x", "", &variants)));
        let w = |name: &str| {
            found.iter().filter(|(_, w)| w.to_string().contains(&format!("{name:?}"))).count()
        };
        assert!(found.iter().all(|(k, _)| k == "x"));
        assert_eq!(
            found.iter().map(|(_, w)| w.code()).collect::<Vec<_>>(),
            [
                "range_reversed",
                "range_out_of_bounds",
                "range_out_of_bounds",
                "range_overlap",
                "range_overlap"
            ]
        );
        assert!(found.contains(&(
            "x".into(),
            DeciderWarning::RangeOverlap {
                variant: "b".into(),
                first: "a".into(),
                shadowed: 100,
                buckets: 200
            }
        )));
        assert!(found.contains(&(
            "x".into(),
            DeciderWarning::RangeOverlap {
                variant: "c".into(),
                first: "a".into(),
                shadowed: 200,
                buckets: 200
            }
        )));
        assert!(found.iter().any(|(_, w)| w.to_string().contains("never chosen")));
        assert_eq!(w("d"), 1);
        // Touching ranges do not overlap.
        let touching = [v("a", 0.0, 0.5), v("b", 0.5, 1.0)].join(",");
        assert_eq!(lint(&format!("{{{}}}", range("x", "", &touching))), []);
    }

    #[test]
    fn first_overlapped_variant_is_the_earliest_listed() {
        let variants = [v("a", 0.5, 0.6), v("b", 0.0, 0.2), v("c", 0.1, 0.55)].join(",");
        let found = lint(&format!("{{{}}}", range("x", "", &variants)));
        assert_eq!(
            found,
            [(
                "x".to_owned(),
                DeciderWarning::RangeOverlap {
                    variant: "c".into(),
                    first: "a".into(),
                    shadowed: 150,
                    buckets: 450
                }
            )]
        );
    }

    #[test]
    fn bucket_counts_follow_first_match() {
        let variants =
            [v("a", 0.0, 0.5), v("b", 0.4, 0.6), v("c", 0.1, 0.3), v("d", 0.9, 2.0)].join(",");
        let m = Manifest::from_str(&format!("{{{}}}", range("x", "", &variants))).unwrap();
        assert_eq!(m.feature("x").unwrap().bucket_counts(), [500, 100, 0, 100]);
    }

    #[test]
    fn parents_unknown_ignored_and_groups() {
        let doc = format!(
            "{{{}, {}, {}, {}, {}, {}}}",
            range("a", r#""parent_hg_name": "nowhere","#, &v("on", 0.0, 1.0)),
            r#""broken": {"id": "x"}"#,
            range("b", r#""parent_meg_name": "broken","#, &v("on", 0.0, 1.0)),
            range("meg", "", &[v("c1", 0.0, 0.5), v("lost", 0.5, 1.0)].join(",")),
            range("c1", r#""parent_meg_name": "meg","#, &v("on", 0.0, 1.0)),
            range("c2", r#""parent_meg_name": "meg", "parent_hg_name": "a","#, &v("on", 0.0, 1.0))
        );
        assert_eq!(
            codes(&doc),
            [
                ("a".to_owned(), "unknown_parent"),
                ("a".to_owned(), "holdout_without_holdout_variant"),
                ("b".to_owned(), "ignored_parent"),
                ("meg".to_owned(), "meg_variant_without_child"),
                ("c2".to_owned(), "meg_child_not_a_variant"),
            ]
        );
        let text = lint(&doc).iter().map(|(_, w)| w.to_string()).collect::<Vec<_>>().join("\n");
        assert!(text.contains("\"lost\""), "{text}");
        assert!(text.contains("parent_meg_name \"broken\" failed to load"), "{text}");
    }

    #[test]
    fn duplicate_names_and_value_types() {
        let dc = |key: &str, value: &str, ty: &str| {
            format!(
                r#""{key}": {{"id": 9, "name": "{key}", "enabled": true, "version": "1",
                   "type": "dynamic_config", "value": {value}, "value_type": "{ty}",
                   "experiment": {{"experiment_version": 1}}}}"#
            )
        };
        let dup = r#""dup": {"id": 3, "name": "a", "enabled": true, "version": "1",
            "type": "range_variant", "experiment": {"experiment_version": 1,
            "bucket_val": "user_id", "variants": []}}"#;
        let doc = format!(
            "{{{}, {dup}, {}, {}, {}, {}, {}, {}, {}}}",
            range("a", "", &v("on", 0.0, 1.0)),
            dc("ok_int", "3", "Integer"),
            dc("ok_float", "3", "Float"),
            dc("ok_text", "\"s\"", "Text"),
            dc("ok_null", "null", "Boolean"),
            dc("bad_int", "3.5", "Integer"),
            dc("bad_bool", "\"true\"", "Boolean"),
            dc("bad_null", "{}", "Null")
        );
        assert_eq!(
            codes(&doc),
            [
                ("dup".to_owned(), "duplicate_name"),
                ("bad_int".to_owned(), "value_type_mismatch"),
                ("bad_bool".to_owned(), "value_type_mismatch"),
                ("bad_null".to_owned(), "value_type_mismatch"),
            ]
        );
        let found = lint(&doc);
        assert_eq!(
            found[1].1,
            DeciderWarning::ValueTypeMismatch { value_type: "Integer".into(), actual: "float" }
        );
        assert!(found[3].1.to_string().starts_with("value is a map"), "{}", found[3].1);
        let json = serde_json::to_value(&found[0].1).unwrap();
        assert_eq!(json["code"], "duplicate_name");
        assert_eq!(json["kept"], "a");
    }
}
