//! Targeting trees of simple experiments (`ALL`/`ANY`/`NOT`/`EQ`/`NE`/`GT`/`GE`/`LT`/`LE`/
//! `OVERRIDE`), built like baseplate's `create_targeting_tree` and evaluated with Python
//! semantics against the original-case inputs.

use std::fmt;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::error::{Deviation, EvalError, Problem};
use crate::explain::{Observer, Step};
use crate::inputs::{Inputs, Key};
use crate::py::{self, MAX_DEPTH, OrdOp};

/// A compiled targeting node.
#[derive(Debug, Clone)]
pub(crate) enum Node {
    All(Vec<Node>),
    Any(Vec<Node>),
    Not(Box<Node>),
    Const(bool),
    Eq { field: Key, values: EqValues },
    Cmp { field: Key, op: CmpOp, value: Value },
}

/// What `candidate in values` means for the configured `values`.
#[derive(Debug, Clone)]
pub(crate) enum EqValues {
    /// A list: element-wise `==`.
    Items(Vec<Value>),
    /// A string: substring test (a non-string candidate never matches).
    Substring(Box<str>),
    /// An object: key test.
    Keys(Map<String, Value>),
    /// A number or `true`: Python raises, baseplate catches it, the node is false.
    NotIterable(Value),
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CmpOp {
    Ord(OrdOp),
    Ne,
}

/// A targeting tree: the compiled root, or the reason the config could not be built (then the
/// tree matches nobody, as in baseplate).
#[derive(Debug, Clone)]
pub(crate) struct Tree {
    pub root: Node,
    pub error: Option<String>,
}

impl Tree {
    /// Baseplate's `_generate_targeting`: absent/null targets everyone, a broken tree nobody.
    ///
    /// `Err` only for a tree nested deeper than [`MAX_DEPTH`] operators: building it in
    /// Python recurses until `RecursionError`, which baseplate does not catch, so the whole
    /// experiment is invalid (Python reaches its limit at roughly 480 nested `NOT`s; this
    /// port stops at [`MAX_DEPTH`], which also bounds evaluation's recursion). `path` names
    /// the tree in the error (computed only then).
    pub(crate) fn build(
        config: Option<&Value>,
        path: impl FnOnce() -> String,
    ) -> Result<Tree, Problem> {
        Ok(match config {
            None | Some(Value::Null) => Tree { root: Node::Const(true), error: None },
            Some(cfg) => match build_node(cfg, 0) {
                Ok(root) => Tree { root, error: None },
                Err(BuildError::Invalid(e)) => Tree { root: Node::Const(false), error: Some(e) },
                Err(BuildError::TooDeep) => {
                    return Err(Problem::new(
                        path(),
                        format!(
                            "RecursionError: the targeting tree nests more than {MAX_DEPTH} \
                             operators, more than this port supports"
                        ),
                    )
                    .deviation(Deviation::Nesting));
                }
            },
        })
    }

    /// Evaluates the tree against the inputs.
    pub(crate) fn eval<O: Observer>(
        &self,
        inputs: &Inputs,
        obs: &mut O,
    ) -> Result<bool, EvalError> {
        self.root.eval(inputs, 0, obs)
    }
}

/// Why a targeting node could not be built.
enum BuildError {
    /// A `TargetingNodeError`/`ValueError`/`TypeError` in baseplate: caught, the tree
    /// matches nobody.
    Invalid(String),
    /// Nested deeper than [`MAX_DEPTH`]: Python's uncaught `RecursionError`.
    TooDeep,
}

impl From<String> for BuildError {
    fn from(e: String) -> Self {
        BuildError::Invalid(e)
    }
}

/// Builds the node `cfg` at `depth` operators below the root.
fn build_node(cfg: &Value, depth: usize) -> Result<Node, BuildError> {
    if depth >= MAX_DEPTH {
        return Err(BuildError::TooDeep);
    }
    let Some((op, arg)) = cfg.as_object().filter(|m| m.len() == 1).and_then(|m| m.iter().next())
    else {
        return Err(BuildError::Invalid(format!(
            "a targeting node must be an object with a single operator key, found {}",
            py::to_py_str(cfg)
        )));
    };
    let op_l = py::lower(op);
    match op_l.as_str() {
        "all" | "any" => {
            let Value::Array(items) = arg else {
                return Err(format!("{op} expects a list, found {}", py::type_name(arg)).into());
            };
            let children =
                items.iter().map(|c| build_node(c, depth + 1)).collect::<Result<Vec<_>, _>>()?;
            Ok(if op_l == "all" { Node::All(children) } else { Node::Any(children) })
        }
        "not" => match arg {
            Value::Object(m) if m.len() == 1 => {
                Ok(Node::Not(Box::new(build_node(arg, depth + 1)?)))
            }
            _ => Err(format!("{op} expects an object with exactly one operator").into()),
        },
        "override" => Ok(Node::Const(*arg == Value::Bool(true))),
        "eq" => {
            let m = two_keys(op, arg)?;
            let field = field_of(op, m)?;
            let values = match m.get("values").filter(|v| py::truthy(v)) {
                Some(Value::Array(items)) => EqValues::Items(items.clone()),
                Some(Value::String(s)) => EqValues::Substring(s.as_str().into()),
                Some(Value::Object(keys)) => EqValues::Keys(keys.clone()),
                Some(other) => EqValues::NotIterable(other.clone()),
                None => match m.get("value") {
                    Some(v) => EqValues::Items(vec![v.clone()]),
                    None => return Err(format!("{op} has an empty `values` and no `value`").into()),
                },
            };
            if !m.contains_key("value") && !m.contains_key("values") {
                return Err(format!("{op} expects input key 'value' or 'values'").into());
            }
            Ok(Node::Eq { field, values })
        }
        "gt" | "ge" | "lt" | "le" | "ne" => {
            let m = two_keys(op, arg)?;
            let field = field_of(op, m)?;
            let Some(value) = m.get("value") else {
                return Err(format!("{op} expects input key 'value'").into());
            };
            let op = match op_l.as_str() {
                "gt" => CmpOp::Ord(OrdOp::Gt),
                "ge" => CmpOp::Ord(OrdOp::Ge),
                "lt" => CmpOp::Ord(OrdOp::Lt),
                "le" => CmpOp::Ord(OrdOp::Le),
                _ => CmpOp::Ne,
            };
            Ok(Node::Cmp { field, op, value: value.clone() })
        }
        _ => Err(format!("unrecognized targeting operator {op:?}").into()),
    }
}

fn two_keys<'a>(op: &str, arg: &'a Value) -> Result<&'a Map<String, Value>, String> {
    match arg {
        Value::Object(m) if m.len() == 2 => Ok(m),
        _ => Err(format!("{op} expects an object with exactly two fields")),
    }
}

fn field_of(op: &str, m: &Map<String, Value>) -> Result<Key, String> {
    match m.get("field") {
        Some(Value::String(f)) => Ok(Key::new(&py::lower(f))),
        Some(other) => Err(format!("{op} field must be a string, found {}", py::type_name(other))),
        None => Err(format!("{op} expects input key 'field'")),
    }
}

const NULL: Value = Value::Null;

impl Node {
    fn eval<O: Observer>(
        &self,
        inputs: &Inputs,
        depth: usize,
        obs: &mut O,
    ) -> Result<bool, EvalError> {
        let result = match self {
            Node::All(children) => {
                let mut all = true;
                for c in children {
                    if !c.eval(inputs, depth + 1, obs)? {
                        all = false;
                        break;
                    }
                }
                all
            }
            Node::Any(children) => {
                let mut any = false;
                for c in children {
                    if c.eval(inputs, depth + 1, obs)? {
                        any = true;
                        break;
                    }
                }
                any
            }
            Node::Not(child) => !child.eval(inputs, depth + 1, obs)?,
            Node::Const(b) => *b,
            Node::Eq { field, values } => {
                let candidate = inputs.get_key(field).unwrap_or(&NULL);
                match values {
                    EqValues::Items(items) => {
                        let mut any = false;
                        for v in items {
                            if py::py_eq(candidate, v)? {
                                any = true;
                                break;
                            }
                        }
                        any
                    }
                    EqValues::Substring(s) => {
                        matches!(candidate, Value::String(c) if s.contains(c.as_str()))
                    }
                    EqValues::Keys(keys) => {
                        matches!(candidate, Value::String(c) if keys.contains_key(c.as_str()))
                    }
                    EqValues::NotIterable(_) => false,
                }
            }
            Node::Cmp { field, op, value } => {
                let candidate = inputs.get_key(field).unwrap_or(&NULL);
                if candidate.is_null() && value.is_null() {
                    false
                } else {
                    match op {
                        CmpOp::Ne => !py::py_eq(candidate, value)?,
                        CmpOp::Ord(o) => py::py_order(candidate, *o, value)?,
                    }
                }
            }
        };
        obs.step(Step::TargetingNode { depth, node: NodeRef(self), result });
        Ok(result)
    }
}

/// A reference to a targeting node, shown in explanations (`EQ(app_name in ['ios'])`).
#[derive(Clone, Copy, Debug)]
pub struct NodeRef<'a>(pub(crate) &'a Node);

impl fmt::Display for NodeRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Node::All(c) => write!(f, "ALL({} children)", c.len()),
            Node::Any(c) => write!(f, "ANY({} children)", c.len()),
            Node::Not(_) => write!(f, "NOT"),
            Node::Const(b) => write!(f, "OVERRIDE({b})"),
            Node::Eq { field, values } => {
                let shown = match values {
                    EqValues::Items(items) => py::to_py_str(&Value::Array(items.clone())),
                    EqValues::Substring(s) => format!("{s:?} (substring)"),
                    EqValues::Keys(k) => py::to_py_str(&Value::Object(k.clone())),
                    EqValues::NotIterable(v) => format!("{} (not iterable)", py::to_py_str(v)),
                };
                write!(f, "EQ({field} in {shown})")
            }
            Node::Cmp { field, op, value } => {
                let (name, sym) = match op {
                    CmpOp::Ne => ("NE", "!="),
                    CmpOp::Ord(OrdOp::Gt) => ("GT", ">"),
                    CmpOp::Ord(OrdOp::Ge) => ("GE", ">="),
                    CmpOp::Ord(OrdOp::Lt) => ("LT", "<"),
                    CmpOp::Ord(OrdOp::Le) => ("LE", "<="),
                };
                write!(f, "{name}({field} {sym} {})", py::to_py_str(value))
            }
        }
    }
}

impl Serialize for NodeRef<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::explain::NoTrace;
    use serde_json::json;

    fn eval(tree: Value, inputs: Inputs) -> Result<bool, EvalError> {
        Tree::build(Some(&tree), String::new).unwrap().eval(&inputs, &mut NoTrace)
    }

    #[test]
    fn operators_any_case_and_short_circuit() {
        let t = json!({"all": [{"Eq": {"field": "A", "value": 1}}, {"GT": {"field": "b", "value": 1}}]});
        // Field names are lower-cased when built; inputs keep their case.
        assert!(!eval(t.clone(), Inputs::new().with("A", 1).with("b", 2)).unwrap());
        // ALL short-circuits: the comparison that would raise is never evaluated.
        assert!(!eval(t.clone(), Inputs::new()).unwrap());
        assert!(eval(t.clone(), Inputs::new().with("a", 1).with("b", 2)).unwrap());
        assert!(eval(t, Inputs::new().with("a", 1)).is_err());
        assert!(eval(json!({"ALL": []}), Inputs::new()).unwrap());
        assert!(!eval(json!({"ANY": []}), Inputs::new()).unwrap());
    }

    #[test]
    fn eq_follows_python_in() {
        assert!(eval(json!({"EQ": {"field": "x", "value": null}}), Inputs::new()).unwrap());
        assert!(
            eval(json!({"EQ": {"field": "x", "values": "abc"}}), Inputs::new().with("x", "b"))
                .unwrap()
        );
        assert!(
            !eval(json!({"EQ": {"field": "x", "values": 5}}), Inputs::new().with("x", 5)).unwrap()
        );
        assert!(
            eval(json!({"EQ": {"field": "x", "values": [1]}}), Inputs::new().with("x", true))
                .unwrap()
        );
        // `values: []` falls back to `[value]`, which is missing: the tree is invalid.
        let t =
            Tree::build(Some(&json!({"EQ": {"field": "x", "values": []}})), String::new).unwrap();
        assert!(t.error.is_some());
    }

    #[test]
    fn broken_trees_match_nobody() {
        for cfg in [json!({}), json!({"BOGUS": 1}), json!({"OVERRIDE": "true"}), json!(false)] {
            assert!(!eval(cfg.clone(), Inputs::new()).unwrap(), "{cfg}");
        }
        assert!(
            Tree::build(None, String::new).unwrap().eval(&Inputs::new(), &mut NoTrace).unwrap()
        );
    }

    #[test]
    fn none_vs_none_is_false_and_ne_never_raises() {
        assert!(!eval(json!({"LE": {"field": "missing", "value": null}}), Inputs::new()).unwrap());
        assert!(
            eval(json!({"NE": {"field": "x", "value": 1}}), Inputs::new().with("x", "s")).unwrap()
        );
    }

    /// `NOT` nested `n` times around `OVERRIDE true`, built without recursion.
    fn nots(n: usize) -> Value {
        (0..n).fold(json!({"OVERRIDE": true}), |t, _| json!({"NOT": t}))
    }

    #[test]
    fn depth_is_bounded() {
        // MAX_DEPTH - 1 NOTs and the OVERRIDE: MAX_DEPTH operators, built and evaluated.
        let t = Tree::build(Some(&nots(MAX_DEPTH - 1)), String::new).unwrap();
        assert_eq!(t.eval(&Inputs::new(), &mut NoTrace), Ok(MAX_DEPTH % 2 == 1));
        let e = Tree::build(Some(&nots(MAX_DEPTH)), || "experiment.targeting".into()).unwrap_err();
        assert_eq!(e.path, "experiment.targeting");
        assert_eq!(e.deviation, Some(Deviation::Nesting));
        // The same depth under ANY lists.
        let any = (0..MAX_DEPTH).fold(json!({"OVERRIDE": true}), |t, _| json!({"ANY": [t]}));
        assert!(Tree::build(Some(&any), String::new).is_err());
    }
}
