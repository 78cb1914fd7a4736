//! Loading (SPEC §2): a document into an immutable [`Manifest`], each entry independently.
//!
//! Order of work: JSON → `$override_groups` (fatal when malformed) → `$properties` (an entry
//! error) → each entry parsed on its own (errors keyed by config key) → parents resolved by
//! config key in dependency order (errors keyed by `name`; cycles found in linear time) →
//! features registered by `name`.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use experiments_core::{BucketSeed, Modulus};
use rustc_hash::FxHashMap;
use serde::de::{IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::context::Field;
use crate::error::{EntryError, InitError};
use crate::numbers;
use crate::properties;
use crate::raw::{
    self, OrderedMap, OverrideGroupFeature, RawConfig, RawEntry, RawKind, RawValueType,
};
use crate::targeting::{Groups, Node, Operand};

/// The most entries the parents of one feature may expand to (the feature itself included,
/// every holdout and group counted each time it is reached). Real documents use one to three;
/// the bound keeps each decision's work and event count small whatever the document says.
pub const MAX_PARENT_TREE: usize = 64;

/// Buckets of the decider dialect (fixed).
pub const TOTAL_BUCKETS: u16 = 1000;

/// Index of a feature in its manifest.
pub(crate) type FeatureId = u32;

/// The `type` of an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum FeatureKind {
    /// `range_variant`.
    RangeVariant,
    /// `feature_rollout` (the same semantics as `range_variant`).
    FeatureRollout,
    /// `dynamic_config`.
    DynamicConfig,
}

/// One variant of a range feature: its configured range and the integer buckets it covers.
#[derive(Debug, Clone, PartialEq)]
pub struct Variant {
    pub(crate) name: Box<str>,
    pub(crate) range: (f32, f32),
    pub(crate) buckets: (u16, u16),
    pub(crate) emit_event_override: bool,
}

impl Variant {
    /// The variant name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `range_start` and `range_end` as read (`f32`).
    pub fn range(&self) -> (f32, f32) {
        self.range
    }

    /// The buckets `[start, end)` the variant covers: each end is `round(f32(x) * 1000)`
    /// (half away from zero, in `f32`, saturating to `u16`). Empty or reversed never matches.
    pub fn buckets(&self) -> (u16, u16) {
        self.buckets
    }

    /// Whether its bucketing decisions emit an event even when the feature does not.
    pub fn emit_event_override(&self) -> bool {
        self.emit_event_override
    }
}

/// What an override tree forces when it matches.
#[derive(Debug, Clone)]
pub(crate) enum OverrideTarget {
    /// `$none`: no variant, no events.
    NoVariant,
    /// A variant of the feature (index of the first with that name).
    Variant(u32),
    /// A name that is not a variant: the overrides step ends without effect.
    Unknown(Box<str>),
}

#[derive(Debug, Clone)]
pub(crate) struct Override {
    pub(crate) target: OverrideTarget,
    pub(crate) tree: Node,
}

/// The evaluation data of a range feature.
#[derive(Debug, Clone)]
pub(crate) struct Range {
    pub(crate) bucket_val: Box<str>,
    pub(crate) field: Field,
    pub(crate) seed: BucketSeed,
    pub(crate) variants: Box<[Variant]>,
    pub(crate) targeting: Option<Node>,
    pub(crate) overrides: Box<[Override]>,
    pub(crate) holdout: Option<FeatureId>,
    pub(crate) meg: Option<FeatureId>,
    pub(crate) shuffle_version: u32,
}

// Stored once per feature; boxing the range would add an indirection to every decision.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub(crate) enum Body {
    Range(Range),
    /// A dynamic config's value (`Null` when null).
    Dynamic(Value),
}

/// One loaded feature (a range feature or a dynamic config).
#[derive(Debug, Clone)]
pub struct Feature {
    pub(crate) key: Box<str>,
    pub(crate) name: Box<str>,
    pub(crate) id: u32,
    pub(crate) version: u32,
    pub(crate) kind: FeatureKind,
    pub(crate) enabled: bool,
    pub(crate) emit_event: bool,
    pub(crate) measured: bool,
    pub(crate) start_ts: u64,
    pub(crate) stop_ts: u64,
    pub(crate) owner: Option<Box<str>>,
    /// Both timestamps fit an `i64` (else events are malformed).
    pub(crate) ts_fit: bool,
    pub(crate) body: Body,
}

impl Feature {
    /// The config key of the entry (parents name features by it).
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The `name` (what decisions look features up by).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `id`.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// `experiment.experiment_version`: the feature version of decisions and events.
    pub fn version(&self) -> u32 {
        self.version
    }

    /// The entry's `type`.
    pub fn kind(&self) -> FeatureKind {
        self.kind
    }

    /// `enabled`.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// `emit_event` (always `false` for dynamic configs, as the reference reports it).
    pub fn emit_event(&self) -> bool {
        self.emit_event
    }

    /// `measured` (always `false` for dynamic configs).
    pub fn measured(&self) -> bool {
        self.measured
    }

    /// `start_ts` (0 for dynamic configs). Never gates decisions.
    pub fn start_ts(&self) -> u64 {
        self.start_ts
    }

    /// `stop_ts` (0 for dynamic configs). Never gates decisions.
    pub fn stop_ts(&self) -> u64 {
        self.stop_ts
    }

    /// `owner`, when the entry names one as a string (ignored by decisions).
    pub fn owner(&self) -> Option<&str> {
        self.owner.as_deref()
    }

    /// `experiment.bucket_val` (`""` for dynamic configs).
    pub fn bucket_val(&self) -> &str {
        match &self.body {
            Body::Range(r) => &r.bucket_val,
            Body::Dynamic(_) => "",
        }
    }

    /// `experiment.shuffle_version` (0 for dynamic configs).
    pub fn shuffle_version(&self) -> u32 {
        match &self.body {
            Body::Range(r) => r.shuffle_version,
            Body::Dynamic(_) => 0,
        }
    }

    /// The variants of a range feature, in document order (empty for dynamic configs).
    pub fn variants(&self) -> &[Variant] {
        match &self.body {
            Body::Range(r) => &r.variants,
            Body::Dynamic(_) => &[],
        }
    }

    /// A dynamic config's value (`None` for range features).
    pub fn dynamic_value(&self) -> Option<&Value> {
        match &self.body {
            Body::Dynamic(v) => Some(v),
            Body::Range(_) => None,
        }
    }

    /// Whether this is a range feature (`range_variant` or `feature_rollout`).
    pub fn is_range(&self) -> bool {
        matches!(self.body, Body::Range(_))
    }

    pub(crate) fn range(&self) -> Option<&Range> {
        match &self.body {
            Body::Range(r) => Some(r),
            Body::Dynamic(_) => None,
        }
    }
}

/// Something loading noticed that does not reject an entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "warning")]
#[non_exhaustive]
pub enum LoadWarning {
    /// Two entries have the same `name`: the first in document order is the one decisions
    /// use (the reference picks one at random per load).
    DuplicateName {
        /// The shared name.
        name: String,
        /// The config key of the entry that is used.
        kept: String,
        /// The config key of the entry that is shadowed.
        shadowed: String,
    },
    /// `parent_hg_name` / `parent_meg_name` names no entry that parsed: the child behaves as if
    /// it had no such parent, as in the reference.
    UnknownParent {
        /// The child's config key.
        key: String,
        /// `parent_hg_name` or `parent_meg_name`.
        link: &'static str,
        /// The named parent.
        parent: String,
    },
}

/// A loaded decider document: immutable, `Send + Sync`, cheap to share behind an `Arc`.
#[derive(Debug, Clone)]
pub struct Manifest {
    pub(crate) features: Vec<Feature>,
    /// `name` → the feature decisions use.
    pub(crate) by_name: FxHashMap<Box<str>, FeatureId>,
    /// Config key → feature (every loaded entry).
    by_key: FxHashMap<Box<str>, FeatureId>,
    /// The named features in document order (what `choose_all` and `all_values` walk).
    pub(crate) named: Vec<FeatureId>,
    errors: BTreeMap<String, EntryError>,
    warnings: Vec<LoadWarning>,
    /// `% 1000` precomputed.
    pub(crate) modulus: Modulus,
}

impl Manifest {
    /// Loads a document from text. See [`Manifest::from_slice`].
    #[allow(clippy::should_implement_trait)]
    pub fn from_str(text: &str) -> Result<Manifest, InitError> {
        Self::from_slice(text.as_bytes())
    }

    /// Loads a document. Fails only when nothing can load (not a JSON object, malformed
    /// `$override_groups`); a broken entry is left out and reported by [`Manifest::errors`]
    /// under the key the reference uses, and the rest loads.
    ///
    /// Entries are deserialized straight from the text; only an entry that fails is parsed
    /// again through a JSON tree, which gives exactly the reference's semantics (duplicate
    /// keys: the last wins) and messages. Float literals are read as the reference's
    /// `serde_json` build reads them (twice rounded: 16–17-digit literals can land 1–2 ULPs
    /// off the exact value, and a literal just below `f64::MAX` is out of range).
    pub fn from_slice(bytes: &[u8]) -> Result<Manifest, InitError> {
        let json_err = |e: serde_json::Error| InitError::Json(e.to_string());
        // Numbers read as the reference reads them (see `numbers`).
        let bytes = &*numbers::reference_floats(bytes).map_err(|at| {
            InitError::Json(format!("number out of range at line {} column {}", at.line, at.column))
        })?;
        // Syntax, nesting depth and number range, as a full parse of the document reports them.
        serde_json::from_slice::<Scan>(bytes).map_err(json_err)?;
        match serde_json::from_slice::<OrderedMap<&RawValue>>(bytes) {
            Ok(OrderedMap(members)) => {
                Self::load(members.into_iter().map(|(k, v)| (k, Member::Raw(v))).collect())
            }
            Err(_) => {
                let doc: Value = serde_json::from_slice(bytes).map_err(json_err)?;
                let e = serde_json::from_value::<RawConfig>(doc).err();
                Err(InitError::Json(e.map_or_else(String::new, |e| e.to_string())))
            }
        }
    }

    /// Loads an already parsed document (an object's members). Numbers are taken as they are
    /// in the tree; [`Manifest::from_slice`] reads them from text the way the reference does
    /// (see its documentation), which can differ in the last bits of long float literals.
    pub fn from_map(doc: Map<String, Value>) -> Result<Manifest, InitError> {
        Self::load(doc.into_iter().map(|(k, v)| (k, Member::Tree(v))).collect())
    }

    fn groups(v: Value) -> Result<Groups, InitError> {
        if v.is_null() {
            return Ok(Groups::new());
        }
        serde_json::from_value::<OverrideGroupFeature>(v)
            .map(compile_groups)
            .map_err(|e| InitError::OverrideGroups(e.to_string()))
    }

    fn load(members: Vec<(String, Member<'_>)>) -> Result<Manifest, InitError> {
        let groups = match members.iter().find(|(k, _)| k == "$override_groups") {
            Some((_, v)) => Self::groups(v.to_value())?,
            None => Groups::new(),
        };
        let mut loader = Loader::default();
        for (key, member) in members {
            match key.as_str() {
                "$override_groups" => {}
                "$properties" => {
                    if let Err(e) = properties::validate(&member.to_value()) {
                        loader.errors.insert(key, EntryError::Properties(e));
                    }
                }
                _ => loader.parse_member(key, member),
            }
        }
        Ok(loader.finish(&groups))
    }

    /// The entries left out, keyed as the reference keys them (config key for shape errors,
    /// `name` for conversion errors, `$properties`).
    pub fn errors(&self) -> &BTreeMap<String, EntryError> {
        &self.errors
    }

    /// What loading noticed without rejecting anything.
    pub fn warnings(&self) -> &[LoadWarning] {
        &self.warnings
    }

    /// The feature decisions use for `name`.
    pub fn feature(&self, name: &str) -> Option<&Feature> {
        self.by_name.get(name).map(|&i| &self.features[i as usize])
    }

    /// Every feature reachable by name, in document order.
    pub fn features(&self) -> impl ExactSizeIterator<Item = &Feature> {
        self.named.iter().map(|&i| &self.features[i as usize])
    }

    /// The feature with a given config key (any loaded entry, shadowed ones included).
    pub fn feature_by_key(&self, key: &str) -> Option<&Feature> {
        self.by_key.get(key).map(|&i| &self.features[i as usize])
    }

    /// The holdout parent of a feature, if it has one that loaded.
    pub fn holdout_parent(&self, feature: &Feature) -> Option<&Feature> {
        feature.range()?.holdout.map(|i| &self.features[i as usize])
    }

    /// The mutually exclusive group parent of a feature, if it has one that loaded.
    pub fn meg_parent(&self, feature: &Feature) -> Option<&Feature> {
        feature.range()?.meg.map(|i| &self.features[i as usize])
    }

    pub(crate) fn get(&self, id: FeatureId) -> &Feature {
        &self.features[id as usize]
    }
}

/// A copy of `v` with every object's keys in byte order, at every depth: the reference keeps
/// dynamic-config values in `serde_json` maps without `preserve_order` (B-trees), so that is
/// the order its values (and the Python dicts made from them) have.
fn sorted_keys(v: &Value) -> Value {
    match v {
        Value::Object(members) => {
            let mut sorted: Vec<(&String, &Value)> = members.iter().collect();
            sorted.sort_unstable_by(|a, b| a.0.cmp(b.0));
            Value::Object(sorted.into_iter().map(|(k, v)| (k.clone(), sorted_keys(v))).collect())
        }
        Value::Array(items) => Value::Array(items.iter().map(sorted_keys).collect()),
        other => other.clone(),
    }
}

fn compile_groups(raw: OverrideGroupFeature) -> Groups {
    raw.value
        .into_iter()
        .map(|(name, g)| {
            let values: Arc<[Operand]> = g.values.iter().map(Operand::new).collect();
            (name, (g.field, values))
        })
        .collect()
}

/// An entry that parsed, waiting for its parents.
struct Parsed {
    key: String,
    entry: RawEntry,
}

/// A full scan of a JSON value that builds nothing: like parsing into a tree, it checks the
/// syntax, the nesting depth and that every number fits an `f64` (`1e400` is an error), with
/// the same messages.
struct Scan;

impl<'de> Deserialize<'de> for Scan {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Scan;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_bool<E>(self, _: bool) -> Result<Scan, E> {
                Ok(Scan)
            }
            fn visit_i64<E>(self, _: i64) -> Result<Scan, E> {
                Ok(Scan)
            }
            fn visit_u64<E>(self, _: u64) -> Result<Scan, E> {
                Ok(Scan)
            }
            fn visit_f64<E>(self, _: f64) -> Result<Scan, E> {
                Ok(Scan)
            }
            fn visit_str<E>(self, _: &str) -> Result<Scan, E> {
                Ok(Scan)
            }
            fn visit_unit<E>(self) -> Result<Scan, E> {
                Ok(Scan)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Scan, A::Error> {
                while seq.next_element::<Scan>()?.is_some() {}
                Ok(Scan)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Scan, A::Error> {
                while map.next_entry::<IgnoredAny, Scan>()?.is_some() {}
                Ok(Scan)
            }
        }
        deserializer.deserialize_any(V)
    }
}

/// A top-level member: raw text borrowed from the document, or an already parsed tree.
enum Member<'a> {
    Raw(&'a RawValue),
    Tree(Value),
}

impl Member<'_> {
    fn to_value(&self) -> Value {
        match self {
            // The text was validated by the full scan, so this parse succeeds.
            Member::Raw(raw) => serde_json::from_str(raw.get()).unwrap_or(Value::Null),
            Member::Tree(v) => v.clone(),
        }
    }
}

#[derive(Default)]
struct Loader {
    parsed: Vec<Parsed>,
    errors: BTreeMap<String, EntryError>,
    warnings: Vec<LoadWarning>,
}

/// Result of resolving one parsed entry.
#[derive(Clone)]
enum Resolved {
    Pending,
    Loaded(FeatureId),
    Failed(EntryError),
}

impl Loader {
    fn parse_member(&mut self, key: String, member: Member<'_>) {
        match member {
            Member::Raw(raw) => match serde_json::from_str::<RawEntry>(raw.get()) {
                Ok(entry) => self.accept(key, entry),
                // Any failure: redo it through a tree for the reference's exact behaviour.
                Err(_) => self.parse_entry(key, member.to_value()),
            },
            Member::Tree(v) => self.parse_entry(key, v),
        }
    }

    fn parse_entry(&mut self, key: String, value: Value) {
        if !raw::version_ok(value.get("version")) {
            self.errors.insert(key, EntryError::Parse(raw::VERSION_ERROR.into()));
            return;
        }
        match serde_json::from_value::<RawEntry>(value) {
            Ok(entry) => self.accept(key, entry),
            Err(e) => {
                self.errors.insert(key, EntryError::Parse(e.to_string()));
            }
        }
    }

    fn accept(&mut self, key: String, entry: RawEntry) {
        if entry.kind == RawKind::DynamicConfig
            && let Some(v @ Value::Array(_)) = &entry.value
        {
            self.errors.insert(key, EntryError::ArrayValue(v.to_string()));
            return;
        }
        self.parsed.push(Parsed { key, entry });
    }

    /// Parents (by index into `parsed`) of entry `i`: holdout, then group. Dynamic configs
    /// have none (the reference ignores their parent fields).
    fn parents(&self, i: usize, by_key: &HashMap<&str, usize>) -> [Option<usize>; 2] {
        let e = &self.parsed[i].entry;
        if e.kind == RawKind::DynamicConfig {
            return [None, None];
        }
        let look = |p: &Option<String>| p.as_deref().and_then(|k| by_key.get(k).copied());
        [look(&e.parent_hg_name), look(&e.parent_meg_name)]
    }

    fn finish(mut self, groups: &Groups) -> Manifest {
        let by_key: HashMap<&str, usize> =
            self.parsed.iter().enumerate().map(|(i, p)| (p.key.as_str(), i)).collect();
        let n = self.parsed.len();
        let parents: Vec<[Option<usize>; 2]> = (0..n).map(|i| self.parents(i, &by_key)).collect();
        for p in &self.parsed {
            let e = &p.entry;
            if e.kind == RawKind::DynamicConfig {
                continue;
            }
            for (link, name) in
                [("parent_hg_name", &e.parent_hg_name), ("parent_meg_name", &e.parent_meg_name)]
            {
                if let Some(parent) = name.as_deref().filter(|k| !by_key.contains_key(k)) {
                    self.warnings.push(LoadWarning::UnknownParent {
                        key: p.key.clone(),
                        link,
                        parent: parent.to_owned(),
                    });
                }
            }
        }
        drop(by_key);

        let mut resolved = vec![Resolved::Pending; n];
        let mut tree_size = vec![0usize; n];
        let mut features: Vec<Feature> = Vec::with_capacity(n);
        for scc in strongly_connected(&parents) {
            let cyclic = scc.len() > 1 || parents[scc[0]].contains(&Some(scc[0]));
            if cyclic {
                let members: Vec<String> =
                    scc.iter().rev().take(8).map(|&i| self.parsed[i].key.clone()).collect();
                for &i in &scc {
                    let error = EntryError::Cycle { members: members.clone(), size: scc.len() };
                    resolved[i] = Resolved::Failed(error);
                }
                continue;
            }
            let i = scc[0];
            let mut links: [Option<FeatureId>; 2] = [None, None];
            let mut failure = None;
            let mut size = 1usize;
            for (slot, parent) in links.iter_mut().zip(parents[i]) {
                let Some(p) = parent else { continue };
                match &resolved[p] {
                    Resolved::Loaded(id) => {
                        *slot = Some(*id);
                        size = size.saturating_add(tree_size[p]);
                    }
                    Resolved::Failed(e) if failure.is_none() => {
                        // Name the parent and keep the root cause (never a chain of
                        // `Parent`s, whose depth would follow the document).
                        let cause = match e {
                            EntryError::Parent { error, .. } => error.clone(),
                            other => Box::new(other.clone()),
                        };
                        failure = Some(EntryError::Parent {
                            parent: self.parsed[p].key.clone(),
                            error: cause,
                        });
                    }
                    _ => {}
                }
            }
            tree_size[i] = size;
            if failure.is_none() && size > MAX_PARENT_TREE {
                failure = Some(EntryError::ParentTreeTooLarge(MAX_PARENT_TREE));
            }
            let result = match failure {
                Some(e) => Err(e),
                None => compile(&self.parsed[i], links, groups),
            };
            resolved[i] = match result {
                Ok(f) => {
                    features.push(f);
                    Resolved::Loaded((features.len() - 1) as FeatureId)
                }
                Err(e) => Resolved::Failed(e),
            };
        }

        // Errors keyed by name; registration by name in document order.
        let mut by_name: FxHashMap<Box<str>, FeatureId> = FxHashMap::default();
        let mut named = Vec::new();
        for (i, r) in resolved.into_iter().enumerate() {
            let p = &self.parsed[i];
            match r {
                Resolved::Loaded(id) => {
                    let name: &str = &p.entry.name;
                    match by_name.get(name) {
                        None => {
                            by_name.insert(name.into(), id);
                            named.push(id);
                        }
                        Some(&kept) => self.warnings.push(LoadWarning::DuplicateName {
                            name: name.to_owned(),
                            kept: features[kept as usize].key.to_string(),
                            shadowed: p.key.clone(),
                        }),
                    }
                }
                Resolved::Failed(e) => {
                    self.errors.insert(p.entry.name.clone(), e);
                }
                Resolved::Pending => {}
            }
        }
        let by_key =
            features.iter().enumerate().map(|(i, f)| (f.key.clone(), i as FeatureId)).collect();
        Manifest {
            features,
            by_name,
            by_key,
            named,
            errors: self.errors,
            warnings: self.warnings,
            modulus: Modulus::new(u64::from(TOTAL_BUCKETS)),
        }
    }
}

/// Compiles one entry whose parents are resolved.
fn compile(
    p: &Parsed,
    links: [Option<FeatureId>; 2],
    groups: &Groups,
) -> Result<Feature, EntryError> {
    let e = &p.entry;
    let kind = match e.kind {
        RawKind::RangeVariant => FeatureKind::RangeVariant,
        RawKind::FeatureRollout => FeatureKind::FeatureRollout,
        RawKind::DynamicConfig => FeatureKind::DynamicConfig,
    };
    let mut feature = Feature {
        key: p.key.as_str().into(),
        name: e.name.as_str().into(),
        id: e.id,
        version: e.experiment.experiment_version,
        kind,
        enabled: e.enabled,
        emit_event: e.emit_event,
        measured: e.measured,
        start_ts: e.start_ts,
        stop_ts: e.stop_ts,
        owner: e.owner.as_deref().map(Box::from),
        ts_fit: i64::try_from(e.start_ts).is_ok() && i64::try_from(e.stop_ts).is_ok(),
        body: Body::Dynamic(Value::Null),
    };
    if kind == FeatureKind::DynamicConfig {
        feature.emit_event = false;
        feature.measured = false;
        feature.start_ts = 0;
        feature.stop_ts = 0;
        feature.ts_fit = true;
        feature.body = Body::Dynamic(match &e.value {
            Some(v) => sorted_keys(v),
            None => match e.value_type {
                Some(RawValueType::Boolean) => Value::Bool(false),
                Some(RawValueType::Integer) => Value::from(0),
                Some(RawValueType::Float) => Value::from(0.0),
                Some(RawValueType::String) => Value::from(""),
                Some(RawValueType::Map) => Value::Object(Map::new()),
                Some(RawValueType::Null) | None => Value::Null,
            },
        });
        return Ok(feature);
    }
    let x = &e.experiment;
    let bucket_val = x.bucket_val.as_deref().ok_or(EntryError::MissingBucketingField)?;
    let variants: Box<[Variant]> = x
        .variants
        .iter()
        .map(|v| Variant {
            name: v.name.as_str().into(),
            range: (v.range.range_start, v.range.range_end),
            buckets: (to_bucket(v.range.range_start), to_bucket(v.range.range_end)),
            emit_event_override: v.emit_event_override,
        })
        .collect();
    let overrides = x
        .overrides
        .iter()
        .flatten()
        .flat_map(|map| map.0.iter())
        .map(|(name, tree)| Override {
            target: if name == "$none" {
                OverrideTarget::NoVariant
            } else {
                match variants.iter().position(|v| &*v.name == name) {
                    Some(i) => OverrideTarget::Variant(u32::try_from(i).unwrap_or(u32::MAX)),
                    None => OverrideTarget::Unknown(name.as_str().into()),
                }
            },
            tree: Node::compile(tree, Some(groups)),
        })
        .collect();
    feature.body = Body::Range(Range {
        bucket_val: bucket_val.into(),
        field: Field::resolve(bucket_val),
        seed: BucketSeed::new(format!("{}.{}.{}", e.id, e.name, x.shuffle_version)),
        variants,
        targeting: x.targeting.as_ref().map(|t| Node::compile(t, None)),
        overrides,
        holdout: links[0],
        meg: links[1],
        shuffle_version: x.shuffle_version,
    });
    Ok(feature)
}

/// `round(x * 1000)` in `f32`, half away from zero, saturating to `u16` (NaN → 0).
fn to_bucket(x: f32) -> u16 {
    (x * f32::from(TOTAL_BUCKETS)).round() as u16
}

/// The strongly connected components of the parent graph (Tarjan's algorithm, iterative),
/// each emitted after every component it depends on: parents before children.
fn strongly_connected(parents: &[[Option<usize>; 2]]) -> Vec<Vec<usize>> {
    const UNSEEN: usize = usize::MAX;
    let n = parents.len();
    let mut index = vec![UNSEEN; n];
    let mut low = vec![0usize; n];
    let mut on_stack = vec![false; n];
    let mut stack: Vec<usize> = Vec::new();
    let mut out = Vec::new();
    let mut next = 0usize;
    // (node, next edge to look at)
    let mut calls: Vec<(usize, usize)> = Vec::new();
    for root in 0..n {
        if index[root] != UNSEEN {
            continue;
        }
        calls.push((root, 0));
        while let Some(top) = calls.last_mut() {
            let (v, e) = *top;
            if e == 0 && index[v] == UNSEEN {
                index[v] = next;
                low[v] = next;
                next += 1;
                stack.push(v);
                on_stack[v] = true;
            }
            if e < 2 {
                top.1 += 1;
                if let Some(w) = parents[v][e] {
                    if index[w] == UNSEEN {
                        calls.push((w, 0));
                    } else if on_stack[w] {
                        low[v] = low[v].min(index[w]);
                    }
                }
                continue;
            }
            calls.pop();
            if let Some(&(u, _)) = calls.last() {
                low[u] = low[u].min(low[v]);
            }
            if low[v] == index[v] {
                let mut scc = Vec::new();
                while let Some(w) = stack.pop() {
                    on_stack[w] = false;
                    scc.push(w);
                    if w == v {
                        break;
                    }
                }
                out.push(scc);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f32_range_rounding() {
        assert_eq!(to_bucket(0.1255), 125);
        assert_eq!(to_bucket(0.5005), 501);
        assert_eq!(to_bucket(0.0005), 1);
        assert_eq!(to_bucket(-0.1), 0);
        assert_eq!(to_bucket(100.0), 65535);
        assert_eq!(to_bucket(f32::NAN), 0);
    }

    #[test]
    fn components_in_dependency_order() {
        // 0 -> 1 -> 2 (parents), 3 <-> 4 cycle, 5 -> 3, 6 self-loop.
        let p = [
            [Some(1), None],
            [Some(2), None],
            [None, None],
            [Some(4), None],
            [None, Some(3)],
            [Some(3), None],
            [Some(6), None],
        ];
        let sccs = strongly_connected(&p);
        let pos = |x: usize| sccs.iter().position(|s| s.contains(&x)).unwrap_or(usize::MAX);
        assert!(pos(2) < pos(1) && pos(1) < pos(0));
        assert_eq!(pos(3), pos(4));
        assert!(pos(3) < pos(5));
        assert_eq!(sccs.iter().map(Vec::len).sum::<usize>(), 7);
        // A long chain does not recurse.
        let chain: Vec<[Option<usize>; 2]> = (0..200_000)
            .map(|i| [if i + 1 < 200_000 { Some(i + 1) } else { None }, None])
            .collect();
        assert_eq!(strongly_connected(&chain).len(), 200_000);
    }
}
