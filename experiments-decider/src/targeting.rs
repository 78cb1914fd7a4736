//! Targeting trees compiled once (SPEC §7): three-valued logic, numeric coercion of strings,
//! approximate float equality, `PREQ`; and the `$override_groups` expansion (SPEC §8).

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;

use crate::context::{Context, Field, FieldValue};
use crate::raw::{EqEnum, RawTree};

/// A configured comparison value, with a string's `f64` parse precomputed.
#[derive(Debug, Clone)]
pub(crate) enum Operand {
    Null,
    Bool(bool),
    Num(f64),
    Str(Box<str>, Option<f64>),
    /// Lists and objects: comparable with nothing.
    Other,
}

impl Operand {
    pub(crate) fn new(v: &Value) -> Operand {
        match v {
            Value::Null => Operand::Null,
            Value::Bool(b) => Operand::Bool(*b),
            Value::Number(n) => Operand::Num(n.as_f64().unwrap_or(f64::NAN)),
            Value::String(s) => Operand::Str(s.as_str().into(), s.parse::<f64>().ok()),
            Value::Array(_) | Value::Object(_) => Operand::Other,
        }
    }

    /// Equality inside `EQ values` (reddit-decider 1.18): when both sides read as numbers
    /// (numbers, or strings that `f64::from_str` parses) they compare approximately as
    /// numbers (`"10.0"` equals `"10"`); otherwise strings compare exactly and booleans as
    /// booleans; anything else is not equal.
    fn eq_in_list(&self, ctx: FieldValue<'_>) -> bool {
        let config = match self {
            Operand::Num(n) => Some(*n),
            Operand::Str(_, parsed) => *parsed,
            _ => None,
        };
        let ctx_num = match ctx {
            FieldValue::Int(i) => Some(i as f64),
            FieldValue::Float(f) => Some(f),
            FieldValue::Str(s) => s.parse::<f64>().ok(),
            _ => None,
        };
        if let (Some(a), Some(b)) = (config, ctx_num) {
            return approx_eq(a, b);
        }
        match (self, ctx) {
            (Operand::Str(a, _), FieldValue::Str(b)) => **a == *b,
            (Operand::Bool(a), FieldValue::Bool(b)) => *a == b,
            (Operand::Null, FieldValue::Null) => true,
            _ => false,
        }
    }

    /// The reference's `value_eq(config, ctx)`: `None` is "unknown" (incomparable types).
    fn eq(&self, ctx: FieldValue<'_>) -> Option<bool> {
        let ctx_num = |ctx: FieldValue<'_>| match ctx {
            FieldValue::Int(i) => Some(i as f64),
            FieldValue::Float(f) => Some(f),
            _ => None,
        };
        match (self, ctx) {
            // A null config value equals only a null (absent fields never get here).
            (Operand::Null, FieldValue::Null) => Some(true),
            (Operand::Null, _) => Some(false),
            (Operand::Bool(a), FieldValue::Bool(b)) => Some(*a == b),
            (Operand::Str(a, _), FieldValue::Str(b)) => Some(&**a == b),
            (Operand::Str(_, parsed), c @ (FieldValue::Int(_) | FieldValue::Float(_))) => {
                Some(match (parsed, ctx_num(c)) {
                    (Some(a), Some(b)) => approx_eq(*a, b),
                    _ => false,
                })
            }
            (Operand::Num(a), c @ (FieldValue::Int(_) | FieldValue::Float(_))) => {
                Some(ctx_num(c).is_some_and(|b| approx_eq(*a, b)))
            }
            (Operand::Num(a), FieldValue::Str(s)) => {
                Some(s.parse::<f64>().is_ok_and(|b| approx_eq(*a, b)))
            }
            _ => None,
        }
    }
}

/// `float_cmp::approx_eq!(f64, a, b)` with its default margin: equal, or within
/// `f64::EPSILON` absolutely, or within 4 ULPs.
pub(crate) fn approx_eq(a: f64, b: f64) -> bool {
    if a == b || (a - b).abs() <= f64::EPSILON {
        return true;
    }
    let diff = (b.to_bits() as i64).wrapping_sub(a.to_bits() as i64);
    let diff = if diff == i64::MIN { i64::MAX } else { diff.abs() };
    diff <= 4
}

/// `GT`, `LT`, `GE`, `LE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub(crate) enum CmpOp {
    Gt,
    Lt,
    Ge,
    Le,
}

impl CmpOp {
    fn holds(self, a: f64, b: f64) -> bool {
        match self {
            CmpOp::Gt => a > b,
            CmpOp::Lt => a < b,
            CmpOp::Ge => a > b || approx_eq(a, b),
            CmpOp::Le => a < b || approx_eq(a, b),
        }
    }
}

/// A run of `EQ values`: literal values, or an override group's values shared by reference
/// (so a large group named by many nodes is stored once).
#[derive(Debug, Clone)]
pub(crate) enum Values {
    Own(Box<[Operand]>),
    Group(Arc<[Operand]>),
}

impl Values {
    fn as_slice(&self) -> &[Operand] {
        match self {
            Values::Own(v) => v,
            Values::Group(v) => v,
        }
    }
}

/// A compiled targeting tree.
#[derive(Debug, Clone)]
pub(crate) enum Node {
    All(Box<[Node]>),
    Any(Box<[Node]>),
    Not(Box<Node>),
    Eq {
        field: Field,
        value: Operand,
    },
    EqMany {
        field: Field,
        runs: Box<[Values]>,
    },
    Ne {
        field: Field,
        value: Operand,
    },
    /// `ALL[NE v for v in group]` from a group expansion of `NE`.
    NeAll {
        field: Field,
        values: Arc<[Operand]>,
    },
    Cmp {
        op: CmpOp,
        field: Field,
        value: f64,
    },
    Prefix {
        field: Field,
        prefixes: Box<[Box<str>]>,
    },
}

/// Override groups compiled once: `name → (field, values)`.
pub(crate) type Groups = HashMap<String, (String, Arc<[Operand]>)>;

impl Node {
    /// Compiles a tree; with `groups`, expands override-group references (override trees only).
    pub(crate) fn compile(tree: &RawTree, groups: Option<&Groups>) -> Node {
        let group_of = |v: &Value| {
            // The reference looks up `value.as_str()` or "" for non-strings.
            groups.and_then(|g| g.get(v.as_str().unwrap_or_default()))
        };
        let all = |xs: &[RawTree]| xs.iter().map(|x| Node::compile(x, groups)).collect();
        match tree {
            RawTree::ALL(xs) => Node::All(all(xs)),
            RawTree::ANY(xs) => Node::Any(all(xs)),
            RawTree::NOT(x) => Node::Not(Box::new(Node::compile(x, groups))),
            RawTree::EQ(EqEnum::One { field, value }) => match group_of(value) {
                Some((gfield, values)) if gfield == field => Node::EqMany {
                    field: Field::resolve(field),
                    runs: Box::new([Values::Group(values.clone())]),
                },
                _ => Node::Eq { field: Field::resolve(field), value: Operand::new(value) },
            },
            RawTree::EQ(EqEnum::Many { field, values }) => {
                let mut runs: Vec<Values> = Vec::new();
                let mut own: Vec<Operand> = Vec::new();
                for v in values {
                    match group_of(v) {
                        Some((_, group)) => {
                            if !own.is_empty() {
                                runs.push(Values::Own(std::mem::take(&mut own).into()));
                            }
                            runs.push(Values::Group(group.clone()));
                        }
                        None => own.push(Operand::new(v)),
                    }
                }
                if !own.is_empty() {
                    runs.push(Values::Own(own.into()));
                }
                Node::EqMany { field: Field::resolve(field), runs: runs.into() }
            }
            RawTree::NE { field, value } => match group_of(value) {
                Some((gfield, values)) if gfield == field => {
                    Node::NeAll { field: Field::resolve(field), values: values.clone() }
                }
                _ => Node::Ne { field: Field::resolve(field), value: Operand::new(value) },
            },
            // In override trees, a prefix naming a group on the same field stands for the
            // group's (string) values, as `EQ value` does (probed on 1.18.2; SPEC §8 omits it).
            RawTree::PREQ { field, values } => Node::Prefix {
                field: Field::resolve(field),
                prefixes: values
                    .iter()
                    .flat_map(|p| match groups.and_then(|g| g.get(p.as_str())) {
                        Some((gfield, group)) if gfield == field => group
                            .iter()
                            .filter_map(|v| match v {
                                Operand::Str(s, _) => Some(s.clone()),
                                _ => None,
                            })
                            .collect::<Vec<_>>(),
                        _ => vec![p.as_str().into()],
                    })
                    .collect(),
            },
            RawTree::GT { field, value } => Node::cmp(CmpOp::Gt, field, *value),
            RawTree::LT { field, value } => Node::cmp(CmpOp::Lt, field, *value),
            RawTree::GE { field, value } => Node::cmp(CmpOp::Ge, field, *value),
            RawTree::LE { field, value } => Node::cmp(CmpOp::Le, field, *value),
        }
    }

    fn cmp(op: CmpOp, field: &str, value: f64) -> Node {
        Node::Cmp { op, field: Field::resolve(field), value }
    }

    /// Three-valued evaluation: `Some(true)`, `Some(false)` or `None` (unknown).
    pub(crate) fn eval(&self, ctx: &Context) -> Option<bool> {
        match self {
            // Unknown counts as false in ALL and is ignored in ANY.
            Node::All(xs) => Some(xs.iter().all(|x| x.eval(ctx) == Some(true))),
            Node::Any(xs) => Some(xs.iter().any(|x| x.eval(ctx) == Some(true))),
            Node::Not(x) => x.eval(ctx).map(|b| !b),
            Node::Eq { field, value } => ctx.field(field).and_then(|c| value.eq(c)),
            Node::EqMany { field, runs } => ctx
                .field(field)
                .map(|c| runs.iter().flat_map(Values::as_slice).any(|v| v.eq_in_list(c))),
            Node::Ne { field, value } => ctx.field(field).and_then(|c| value.eq(c)).map(|b| !b),
            Node::NeAll { field, values } => {
                if values.is_empty() {
                    return Some(true);
                }
                let c = ctx.field(field);
                Some(c.is_some_and(|c| values.iter().all(|v| v.eq(c) == Some(false))))
            }
            Node::Cmp { op, field, value } => {
                let x = match ctx.field(field)? {
                    FieldValue::Int(i) => i as f64,
                    FieldValue::Float(f) => f,
                    FieldValue::Str(s) => s.parse::<f64>().ok()?,
                    FieldValue::Bool(_) | FieldValue::Null => return None,
                };
                Some(op.holds(x, *value))
            }
            Node::Prefix { field, prefixes } => match ctx.field(field)? {
                FieldValue::Str(s) => Some(prefixes.iter().any(|p| s.starts_with(&**p))),
                _ => Some(false),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::Context;
    use serde_json::json;

    fn node(v: Value, groups: Option<&Groups>) -> Node {
        let raw: RawTree = serde_json::from_value(v).unwrap_or_else(|e| panic!("{e}"));
        Node::compile(&raw, groups)
    }

    fn ctx(v: Value) -> Context {
        Context::from_json(v.as_object().unwrap_or(&serde_json::Map::new()))
            .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn equality_rules() {
        let c = ctx(json!({"other_fields": {"s": "0.3", "n": 0.30000000000000004, "b": true,
            "z": 0, "big": 1e16}}));
        let eq = |field: &str, value: Value| {
            node(json!({"EQ": {"field": field, "value": value}}), None).eval(&c)
        };
        assert_eq!(eq("n", json!(0.3)), Some(true));
        assert_eq!(eq("s", json!(0.30000000000000004)), Some(true));
        assert_eq!(eq("n", json!(0.3000000000000003)), Some(false));
        assert_eq!(eq("z", json!(1e-300)), Some(true));
        assert_eq!(eq("big", json!(10000000000000008.0)), Some(true));
        assert_eq!(eq("s", json!("0.30")), Some(false));
        assert_eq!(eq("b", json!("true")), None);
        assert_eq!(eq("b", json!(1)), None);
        assert_eq!(eq("b", Value::Null), Some(false));
        assert_eq!(eq("missing", json!(1)), None);
        let many = node(json!({"EQ": {"field": "b", "values": ["x", true]}}), None);
        assert_eq!(many.eval(&c), Some(true));
        // Inside `values`, numeric strings compare as numbers (probed on 1.18.2); `value`
        // compares strings exactly.
        let c =
            ctx(json!({"other_fields": {"x": "10.0", "n": "nan", "sp": " 5", "i": 1, "b": true}}));
        let in_list = |field: &str, values: Value| {
            node(json!({"EQ": {"field": field, "values": values}}), None).eval(&c)
        };
        assert_eq!(in_list("x", json!(["10"])), Some(true));
        assert_eq!(in_list("x", json!(["1e1"])), Some(true));
        assert_eq!(in_list("x", json!(["0x10", "ten"])), Some(false));
        assert_eq!(in_list("n", json!(["NaN"])), Some(true));
        assert_eq!(in_list("sp", json!(["5"])), Some(false));
        assert_eq!(in_list("i", json!(["1.0"])), Some(true));
        assert_eq!(in_list("i", json!([true])), Some(false));
        assert_eq!(in_list("b", json!(["true", 1])), Some(false));
        assert_eq!(node(json!({"EQ": {"field": "x", "value": "10"}}), None).eval(&c), Some(false));
    }

    #[test]
    fn three_valued_logic() {
        let c = ctx(json!({"user_id": "t2_a"}));
        let t = |v: Value| node(v, None).eval(&c);
        let unknown = json!({"EQ": {"field": "nope", "value": 1}});
        assert_eq!(t(json!({"NOT": unknown})), None);
        assert_eq!(t(json!({"ALL": [unknown]})), Some(false));
        assert_eq!(
            t(json!({"ANY": [unknown, {"EQ": {"field": "user_id", "value": "t2_a"}}]})),
            Some(true)
        );
        assert_eq!(t(json!({"ALL": []})), Some(true));
        assert_eq!(t(json!({"ANY": []})), Some(false));
        assert_eq!(t(json!({"PREQ": {"field": "user_id", "values": ["t2"]}})), Some(true));
        assert_eq!(t(json!({"PREQ": {"field": "user_id", "values": []}})), Some(false));
        assert_eq!(t(json!({"PREQ": {"field": "nope", "values": [""]}})), None);
        assert_eq!(t(json!({"GE": {"field": "user_id", "value": 1}})), None);
    }

    #[test]
    fn group_expansion() {
        let mut groups = Groups::new();
        groups.insert("vips".into(), ("user_id".into(), vec![Operand::new(&json!("t2_a"))].into()));
        let c = ctx(json!({"user_id": "t2_a"}));
        let eq = node(json!({"EQ": {"field": "user_id", "value": "vips"}}), Some(&groups));
        assert_eq!(eq.eval(&c), Some(true));
        let other_field =
            node(json!({"EQ": {"field": "device_id", "value": "vips"}}), Some(&groups));
        assert!(matches!(other_field, Node::Eq { .. }));
        let ne = node(json!({"NE": {"field": "user_id", "value": "vips"}}), Some(&groups));
        assert_eq!(ne.eval(&c), Some(false));
        let many =
            node(json!({"EQ": {"field": "device_id", "values": ["vips", "x"]}}), Some(&groups));
        assert_eq!(many.eval(&ctx(json!({"device_id": "t2_a"}))), Some(true));
        // PREQ: a group on the same field expands to its string values; on another field the
        // name stays a literal prefix; targeting trees never expand.
        groups
            .insert("g2".into(), ("country_code".into(), vec![Operand::new(&json!("t2_"))].into()));
        groups.insert(
            "p".into(),
            ("user_id".into(), vec![Operand::new(&json!("t2_")), Operand::new(&json!(5))].into()),
        );
        let prefix =
            |values: Value, g| node(json!({"PREQ": {"field": "user_id", "values": values}}), g);
        assert_eq!(prefix(json!(["p"]), Some(&groups)).eval(&c), Some(true));
        assert_eq!(prefix(json!(["g2"]), Some(&groups)).eval(&c), Some(false));
        assert_eq!(
            prefix(json!(["g2"]), Some(&groups)).eval(&ctx(json!({"user_id": "g2x"}))),
            Some(true)
        );
        assert_eq!(prefix(json!(["p"]), None).eval(&c), Some(false));
        let unexpanded = node(json!({"EQ": {"field": "user_id", "value": "vips"}}), None);
        assert_eq!(unexpanded.eval(&c), Some(false));
    }
}
