//! The document as reddit-decider's serde model reads it.
//!
//! These types mirror the reference's field names, types, defaults and field order, so that
//! serde accepts and rejects exactly the entries the reference does (SPEC §2.2–§2.3) and its
//! messages read the same. They live only during loading: `manifest.rs` compiles them into
//! the evaluation structures.

use std::collections::HashMap;
use std::fmt;

use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// The message of every rejected `version` (SPEC §2.2).
pub(crate) const VERSION_ERROR: &str = "version field missing or unrecognized";

/// The `version` rule: a JSON string; no `.` → accepted; `a.b.c[...]` with u8 parts → accepted
/// iff `a == 1`; anything else rejected.
pub(crate) fn version_ok(value: Option<&Value>) -> bool {
    let Some(text) = value.and_then(Value::as_str) else {
        return false;
    };
    let mut parts = text.split('.');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(_), None, None) => true,
        (Some(major), Some(minor), Some(patch)) => {
            matches!(
                (major.parse::<u8>(), minor.parse::<u8>(), patch.parse::<u8>()),
                (Ok(1), Ok(_), Ok(_))
            )
        }
        _ => false,
    }
}

/// `version`: validated by [`version_ok`] before the entry is deserialized; kept as a field so
/// that the field order (and so serde's first reported error) matches the reference.
pub(crate) struct RawVersion;

impl<'de> Deserialize<'de> for RawVersion {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        if version_ok(Some(&value)) {
            Ok(RawVersion)
        } else {
            Err(de::Error::custom(VERSION_ERROR))
        }
    }
}

/// `type`.
#[derive(Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub(crate) enum RawKind {
    DynamicConfig,
    RangeVariant,
    FeatureRollout,
}

/// `value_type` (`Text` is an alias of `String`).
#[derive(Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RawValueType {
    Boolean,
    Integer,
    Float,
    #[serde(alias = "Text")]
    String,
    Map,
    Null,
}

/// One feature entry (SPEC §2.2). Unknown members are ignored.
#[derive(Deserialize)]
pub(crate) struct RawEntry {
    pub(crate) id: u32,
    pub(crate) name: String,
    pub(crate) enabled: bool,
    #[allow(dead_code)]
    pub(crate) version: RawVersion,
    #[serde(rename = "type")]
    pub(crate) kind: RawKind,
    #[serde(default)]
    pub(crate) emit_event: bool,
    #[serde(default)]
    pub(crate) measured: bool,
    #[serde(default)]
    pub(crate) start_ts: u64,
    #[serde(default)]
    pub(crate) stop_ts: u64,
    pub(crate) value: Option<Value>,
    pub(crate) value_type: Option<RawValueType>,
    pub(crate) parent_meg_name: Option<String>,
    pub(crate) parent_hg_name: Option<String>,
    pub(crate) experiment: InnerExperiment,
    #[serde(default)]
    #[allow(dead_code)]
    pub(crate) namespaces: Vec<String>,
    /// Not read by the reference: kept when it is a string, never an error.
    #[serde(default, deserialize_with = "lenient_string")]
    pub(crate) owner: Option<String>,
}

/// Any JSON value; a string is kept, anything else is `None`.
fn lenient_string<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    Ok(match Value::deserialize(deserializer)? {
        Value::String(s) => Some(s),
        _ => None,
    })
}

/// The `experiment` block (SPEC §2.3); also accepted as an array of its six fields in order.
#[derive(Deserialize)]

pub(crate) struct InnerExperiment {
    pub(crate) experiment_version: u32,
    #[serde(default)]
    pub(crate) variants: Vec<RawVariant>,
    #[serde(default)]
    pub(crate) shuffle_version: u32,
    pub(crate) bucket_val: Option<String>,
    pub(crate) overrides: Option<Vec<OverrideMap>>,
    pub(crate) targeting: Option<RawTree>,
}

/// A variant: the range is read as two `f32`.
#[derive(Deserialize)]
pub(crate) struct RawVariant {
    pub(crate) name: String,
    #[serde(flatten)]
    pub(crate) range: RawRange,
    #[serde(default)]
    pub(crate) emit_event_override: bool,
}

/// `range_start` / `range_end`, as `f32` like the reference.
#[derive(Deserialize)]
pub(crate) struct RawRange {
    pub(crate) range_start: f32,
    pub(crate) range_end: f32,
}

/// A JSON object's members in document order, as a parsed JSON object keeps them: a repeated
/// key keeps its first position and its last value. Used for the document's top level and for
/// each map of the `overrides` list (the reference uses a `HashMap` there, whose order is
/// unspecified; document order is the deterministic choice). Linear in the number of members.
pub(crate) struct OrderedMap<V>(pub(crate) Vec<(String, V)>);

/// One map of the `overrides` list.
pub(crate) type OverrideMap = OrderedMap<RawTree>;

impl<'de, V: Deserialize<'de>> Deserialize<'de> for OrderedMap<V> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MapVisitor<V>(std::marker::PhantomData<V>);
        impl<'de, V: Deserialize<'de>> Visitor<'de> for MapVisitor<V> {
            type Value = OrderedMap<V>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<OrderedMap<V>, A::Error> {
                let mut entries: Vec<(String, V)> = Vec::new();
                let mut seen: HashMap<String, usize> = HashMap::new();
                while let Some((k, v)) = map.next_entry::<String, V>()? {
                    match seen.get(&k) {
                        Some(&i) => entries[i].1 = v,
                        None => {
                            seen.insert(k.clone(), entries.len());
                            entries.push((k, v));
                        }
                    }
                }
                Ok(OrderedMap(entries))
            }
        }
        deserializer.deserialize_map(MapVisitor(std::marker::PhantomData))
    }
}

/// A targeting tree node: exactly one case-sensitive operator key (SPEC §7).
#[derive(Deserialize)]
#[allow(clippy::upper_case_acronyms)]
pub(crate) enum RawTree {
    ALL(Vec<RawTree>),
    ANY(Vec<RawTree>),
    NOT(Box<RawTree>),
    EQ(EqEnum),
    NE { field: String, value: Value },
    PREQ { field: String, values: Vec<String> },
    GT { field: String, value: f64 },
    LT { field: String, value: f64 },
    GE { field: String, value: f64 },
    LE { field: String, value: f64 },
}

/// `EQ`'s operand: `value` wins when both `value` and `values` are present.
#[derive(Deserialize)]
#[serde(untagged)]
pub(crate) enum EqEnum {
    One { field: String, value: Value },
    Many { field: String, values: Vec<Value> },
}

/// `$override_groups`: `{"value": {"<group>": {"name", "values", "field"}}}`.
#[derive(Deserialize)]

pub(crate) struct OverrideGroupFeature {
    pub(crate) value: HashMap<String, OverrideGroup>,
}

/// One override group.
#[derive(Deserialize)]

pub(crate) struct OverrideGroup {
    #[allow(dead_code)]
    pub(crate) name: String,
    pub(crate) values: Vec<Value>,
    pub(crate) field: String,
}

/// The document's top level must be an object; this empty shape only produces serde's
/// message for anything else (`invalid type: sequence, expected struct RawConfig`).
#[derive(Deserialize)]
#[allow(dead_code)]
pub(crate) struct RawConfig {}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn version_rule() {
        for ok in ["", "2", "abc", "1.0.0", "1.255.0", "01.0.0", "1.0.0.0", "1.2.3.x"] {
            assert!(version_ok(Some(&json!(ok))), "{ok:?}");
        }
        for bad in ["1.0", "2.0.0", "1.256.0", " 1.0.0", "1..0", "1.0.x"] {
            assert!(!version_ok(Some(&json!(bad))), "{bad:?}");
        }
        assert!(!version_ok(Some(&json!(1))));
        assert!(!version_ok(Some(&Value::Null)));
        assert!(!version_ok(None));
    }

    #[test]
    fn experiment_as_array_fills_defaults() {
        let e: InnerExperiment = serde_json::from_value(json!([3, [], 1, "user_id", null, null]))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((e.experiment_version, e.shuffle_version), (3, 1));
        let err = serde_json::from_value::<InnerExperiment>(json!([])).err().map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("invalid length 0, expected struct InnerExperiment with 6 elements")
        );
    }
}
