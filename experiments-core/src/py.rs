//! Python value semantics over JSON values: truthiness, `==`, ordering, `in`, `str()`/`repr()`,
//! `str.lower()` key matching and `int()` truncation, exactly as baseplate's Python code sees
//! the values of a JSON document.
//!
//! Everything here is allocation-free except the rare paths that say so.

use std::cmp::Ordering;
use std::fmt::{self, Write};

use num_bigint::BigInt;
use num_traits::{FromPrimitive, ToPrimitive};
use serde_json::{Number, Value};
use unicode_general_category::{GeneralCategory, get_general_category};

use crate::error::{EvalError, PyOp, PyType};

/// A Python number: `bool` and `int` are integers, `float` is a double.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum PyNum {
    Int(i128),
    Float(f64),
}

impl PyNum {
    pub(crate) fn from_number(n: &Number) -> PyNum {
        if let Some(i) = n.as_i64() {
            PyNum::Int(i128::from(i))
        } else if let Some(u) = n.as_u64() {
            PyNum::Int(i128::from(u))
        } else {
            PyNum::Float(n.as_f64().unwrap_or(f64::NAN))
        }
    }

    /// Exact comparison, like Python's int/float comparisons (no rounding of the int).
    pub(crate) fn cmp(self, other: PyNum) -> Option<Ordering> {
        match (self, other) {
            (PyNum::Int(a), PyNum::Int(b)) => Some(a.cmp(&b)),
            (PyNum::Float(a), PyNum::Float(b)) => a.partial_cmp(&b),
            (PyNum::Float(a), PyNum::Int(b)) => cmp_float_int(a, b),
            (PyNum::Int(a), PyNum::Float(b)) => cmp_float_int(b, a).map(Ordering::reverse),
        }
    }

    /// Python `int(self * n)` for a positive integer `n`.
    pub(crate) fn int_of_mul(self, n: i64) -> Result<BigInt, EvalError> {
        match self {
            PyNum::Int(i) => Ok(BigInt::from(i) * BigInt::from(n)),
            PyNum::Float(f) => float_to_int(f * n as f64),
        }
    }
}

/// Python `int(f)`: truncation toward zero, with Python's errors for inf and NaN.
pub(crate) fn float_to_int(f: f64) -> Result<BigInt, EvalError> {
    if f.is_nan() {
        return Err(EvalError::NanToInt);
    }
    if f.is_infinite() {
        return Err(EvalError::InfinityToInt);
    }
    Ok(BigInt::from_f64(f.trunc()).unwrap_or_default())
}

/// Clamp a Python int to `i128` (exact for every value a bucket can be compared with).
pub(crate) fn clamp_i128(v: &BigInt) -> i128 {
    v.to_i128().unwrap_or(if v.sign() == num_bigint::Sign::Minus { i128::MIN } else { i128::MAX })
}

/// Exact comparison of a float with an integer.
pub(crate) fn cmp_float_int(f: f64, i: i128) -> Option<Ordering> {
    // Integers up to 2^53 convert to f64 exactly.
    const EXACT: i128 = 1 << 53;
    if (-EXACT..=EXACT).contains(&i) {
        return f.partial_cmp(&(i as i64 as f64));
    }
    if f.is_nan() {
        return None;
    }
    // 2^127 as f64 is exact; everything at or above it exceeds every i128.
    const LIMIT: f64 = 170_141_183_460_469_231_731_687_303_715_884_105_728.0;
    if f >= LIMIT {
        return Some(Ordering::Greater);
    }
    if f < -LIMIT {
        return Some(Ordering::Less);
    }
    let t = f.trunc();
    let ti = t as i128;
    match ti.cmp(&i) {
        Ordering::Equal => (f - t).partial_cmp(&0.0),
        other => Some(other),
    }
}

/// The number inside a value, with booleans as 0/1 (Python `bool` is an `int`).
pub(crate) fn as_num(v: &Value) -> Option<PyNum> {
    match v {
        Value::Bool(b) => Some(PyNum::Int(i128::from(*b))),
        Value::Number(n) => Some(PyNum::from_number(n)),
        _ => None,
    }
}

/// Byte-string equality, inlined for the short keys and values of the request path (a
/// libc `memcmp` call costs more than the comparison itself).
#[inline]
pub(crate) fn bytes_eq(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    let word = |s: &[u8], i: usize| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&s[i..i + 8]);
        u64::from_ne_bytes(w)
    };
    let half = |s: &[u8], i: usize| {
        let mut w = [0u8; 4];
        w.copy_from_slice(&s[i..i + 4]);
        u32::from_ne_bytes(w)
    };
    match n {
        0 => true,
        1..=3 => a.iter().zip(b).all(|(x, y)| x == y),
        4..=8 => half(a, 0) == half(b, 0) && half(a, n - 4) == half(b, n - 4),
        9..=16 => word(a, 0) == word(b, 0) && word(a, n - 8) == word(b, n - 8),
        _ => a == b,
    }
}

/// [`bytes_eq`] for strings.
#[inline]
pub(crate) fn str_eq(a: &str, b: &str) -> bool {
    bytes_eq(a.as_bytes(), b.as_bytes())
}

/// The Python type of a JSON value.
pub(crate) fn py_type(v: &Value) -> PyType {
    match v {
        Value::Null => PyType::NoneType,
        Value::Bool(_) => PyType::Bool,
        Value::Number(n) if n.is_f64() => PyType::Float,
        Value::Number(_) => PyType::Int,
        Value::String(_) => PyType::Str,
        Value::Array(_) => PyType::List,
        Value::Object(_) => PyType::Dict,
    }
}

/// Python type name of a JSON value.
pub(crate) fn type_name(v: &Value) -> &'static str {
    py_type(v).name()
}

/// Python truthiness.
pub(crate) fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => match PyNum::from_number(n) {
            PyNum::Int(i) => i != 0,
            PyNum::Float(f) => f != 0.0,
        },
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

/// The deepest nesting of lists and objects this port walks. A config entry nesting deeper
/// is invalid ([`crate::Deviation::Nesting`]); a call that would have to walk a deeper input
/// (its `str()`, a comparison, an event echoing it) returns [`EvalError::RecursionLimit`].
/// Python's own limit is its recursion limit, about 1000 levels: between the two this port
/// rejects what Python accepts, on purpose, for pathological values only.
///
/// A scalar has depth 0, `[]` and `{}` depth 1, `[[1]]` depth 2. Every recursive walk of a
/// value in this crate is bounded by this depth, so no value of any depth, parsed or built
/// in code, can overflow the stack: 256 levels of the deepest recursion left
/// (`serde_json::Value`'s `clone`) take about half a MiB of stack even in a debug build.
pub const MAX_DEPTH: usize = 256;

/// Whether `v` nests more than `limit` levels of lists and objects. Recurses at most `limit`
/// levels and allocates nothing; stops at the first branch found too deep.
pub(crate) fn nests_deeper_than(v: &Value, limit: usize) -> bool {
    match v {
        Value::Array(items) => limit == 0 || items.iter().any(|x| nests_deeper_than(x, limit - 1)),
        Value::Object(map) => limit == 0 || map.values().any(|x| nests_deeper_than(x, limit - 1)),
        _ => false,
    }
}

/// `Err(RecursionLimit)` when `v` nests deeper than [`MAX_DEPTH`] (Python's `str()` or `==`
/// of it would exhaust the recursion limit). Free for scalars.
pub(crate) fn check_depth(v: &Value) -> Result<(), EvalError> {
    if nests_deeper_than(v, MAX_DEPTH) { Err(EvalError::RecursionLimit) } else { Ok(()) }
}

/// Python `a == b` (`True == 1 == 1.0`, lists element-wise, dicts ignore key order).
/// `Err(RecursionLimit)` when both sides nest deeper than [`MAX_DEPTH`] along the same path
/// (Python: `RecursionError in comparison`); a deep value compared with a shallow one stops
/// where the shallow one does.
pub(crate) fn py_eq(a: &Value, b: &Value) -> Result<bool, EvalError> {
    eq_at(a, b, 0)
}

fn eq_at(a: &Value, b: &Value, depth: usize) -> Result<bool, EvalError> {
    match (a, b) {
        (Value::String(x), Value::String(y)) => return Ok(str_eq(x, y)),
        (Value::Bool(x), Value::Bool(y)) => return Ok(x == y),
        (Value::Number(x), Value::Number(y)) => {
            if let (Some(i), Some(j)) = (x.as_i64(), y.as_i64()) {
                return Ok(i == j);
            }
        }
        _ => {}
    }
    if let (Some(x), Some(y)) = (as_num(a), as_num(b)) {
        return Ok(x.cmp(y) == Some(Ordering::Equal));
    }
    let inner = depth + 1;
    match (a, b) {
        (Value::Null, Value::Null) => Ok(true),
        (Value::Array(x), Value::Array(y)) => {
            if x.len() != y.len() {
                return Ok(false);
            }
            if inner > MAX_DEPTH {
                return Err(EvalError::RecursionLimit);
            }
            for (p, q) in x.iter().zip(y) {
                if !eq_at(p, q, inner)? {
                    return Ok(false);
                }
            }
            Ok(true)
        }
        (Value::Object(x), Value::Object(y)) => {
            if x.len() != y.len() {
                return Ok(false);
            }
            if inner > MAX_DEPTH {
                return Err(EvalError::RecursionLimit);
            }
            for (k, v) in x {
                match y.get(k) {
                    Some(w) if eq_at(v, w, inner)? => {}
                    _ => return Ok(false),
                }
            }
            Ok(true)
        }
        _ => Ok(false),
    }
}

/// An ordering operator of Python.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OrdOp {
    Lt,
    Le,
    Gt,
    Ge,
}

impl OrdOp {
    pub(crate) fn symbol(self) -> PyOp {
        match self {
            OrdOp::Lt => PyOp::Lt,
            OrdOp::Le => PyOp::Le,
            OrdOp::Gt => PyOp::Gt,
            OrdOp::Ge => PyOp::Ge,
        }
    }

    fn holds(self, ord: Ordering) -> bool {
        match self {
            OrdOp::Lt => ord == Ordering::Less,
            OrdOp::Le => ord != Ordering::Greater,
            OrdOp::Gt => ord == Ordering::Greater,
            OrdOp::Ge => ord != Ordering::Less,
        }
    }
}

/// Python `a <op> b`: numbers exactly, strings by code point, lists lexicographically;
/// every other pairing raises `TypeError`. Lists nested deeper than [`MAX_DEPTH`] on both
/// sides raise `RecursionError`.
pub(crate) fn py_order(a: &Value, op: OrdOp, b: &Value) -> Result<bool, EvalError> {
    order_at(a, op, b, 0)
}

fn order_at(a: &Value, op: OrdOp, b: &Value, depth: usize) -> Result<bool, EvalError> {
    if let (Value::Number(x), Value::Number(y)) = (a, b)
        && let (Some(i), Some(j)) = (x.as_i64(), y.as_i64())
    {
        return Ok(op.holds(i.cmp(&j)));
    }
    if let (Some(x), Some(y)) = (as_num(a), as_num(b)) {
        return Ok(x.cmp(y).is_some_and(|o| op.holds(o)));
    }
    match (a, b) {
        // UTF-8 byte order is code point order.
        (Value::String(x), Value::String(y)) => Ok(op.holds(x.as_str().cmp(y.as_str()))),
        (Value::Array(x), Value::Array(y)) => {
            let inner = depth + 1;
            if inner > MAX_DEPTH && !x.is_empty() && !y.is_empty() {
                return Err(EvalError::RecursionLimit);
            }
            for (p, q) in x.iter().zip(y) {
                if !eq_at(p, q, inner)? {
                    return order_at(p, op, q, inner);
                }
            }
            Ok(op.holds(x.len().cmp(&y.len())))
        }
        _ => Err(EvalError::Unorderable { op: op.symbol(), left: py_type(a), right: py_type(b) }),
    }
}

/// Whether Python can hash the value (lists and dicts cannot).
pub(crate) fn check_hashable(v: &Value) -> Result<(), EvalError> {
    match v {
        Value::Array(_) | Value::Object(_) => Err(EvalError::Unhashable(py_type(v))),
        _ => Ok(()),
    }
}

/// Python `item in container`.
pub(crate) fn py_contains(container: &Value, item: &Value) -> Result<bool, EvalError> {
    match container {
        Value::Array(items) => {
            for x in items {
                if py_eq(item, x)? {
                    return Ok(true);
                }
            }
            Ok(false)
        }
        Value::String(s) => match item {
            Value::String(needle) => Ok(s.contains(needle.as_str())),
            _ => Err(EvalError::InRequiresString(py_type(item))),
        },
        Value::Object(map) => {
            check_hashable(item)?;
            Ok(matches!(item, Value::String(k) if map.contains_key(k)))
        }
        _ => Err(EvalError::NotIterable(py_type(container))),
    }
}

/// Python `len(v)` for the types that have one.
pub(crate) fn py_len(v: &Value) -> Option<usize> {
    match v {
        Value::String(s) => Some(s.chars().count()),
        Value::Array(a) => Some(a.len()),
        Value::Object(o) => Some(o.len()),
        _ => None,
    }
}

/// Why writing a Python string form stopped.
enum ReprError {
    /// The writer failed.
    Fmt,
    /// The value nests deeper than [`MAX_DEPTH`] and the caller asked to fail.
    TooDeep,
}

impl From<fmt::Error> for ReprError {
    fn from(_: fmt::Error) -> Self {
        ReprError::Fmt
    }
}

/// Writes Python `str(v)`, as the bucketing hash and the dedupe keys need it.
/// `Err(RecursionLimit)` when `v` nests deeper than [`MAX_DEPTH`] (Python's `str()` raises
/// `RecursionError`); the writer then holds a partial text. Errors of the writer itself are
/// ignored: every writer used with it (strings, hashers, arenas) is infallible.
pub(crate) fn write_str<W: Write + ?Sized>(w: &mut W, v: &Value) -> Result<(), EvalError> {
    let result = match v {
        Value::String(s) => w.write_str(s).map_err(ReprError::from),
        other => repr_at(w, other, 0, false),
    };
    match result {
        Err(ReprError::TooDeep) => Err(EvalError::RecursionLimit),
        Ok(()) | Err(ReprError::Fmt) => Ok(()),
    }
}

/// Writes Python `repr(v)`; containers nested deeper than [`MAX_DEPTH`] are written `...`
/// (like Python's `reprlib`), so the text stays bounded and nothing recurses further.
pub(crate) fn write_repr<W: Write + ?Sized>(w: &mut W, v: &Value) -> fmt::Result {
    repr_at(w, v, 0, true).map_err(|_| fmt::Error)
}

/// `repr(v)` for a value at nesting `depth`: containers past [`MAX_DEPTH`] become `...`
/// when `cut`, else an error.
fn repr_at<W: Write + ?Sized>(
    w: &mut W,
    v: &Value,
    depth: usize,
    cut: bool,
) -> Result<(), ReprError> {
    let inner = depth + 1;
    if inner > MAX_DEPTH && matches!(v, Value::Array(_) | Value::Object(_)) {
        return if cut { Ok(w.write_str("...")?) } else { Err(ReprError::TooDeep) };
    }
    match v {
        Value::Null => w.write_str("None")?,
        Value::Bool(true) => w.write_str("True")?,
        Value::Bool(false) => w.write_str("False")?,
        Value::Number(n) => match PyNum::from_number(n) {
            PyNum::Int(i) => write!(w, "{i}")?,
            PyNum::Float(f) => write_float_repr(w, f)?,
        },
        Value::String(s) => write_str_repr(w, s)?,
        Value::Array(items) => {
            w.write_char('[')?;
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    w.write_str(", ")?;
                }
                repr_at(w, item, inner, cut)?;
            }
            w.write_char(']')?;
        }
        Value::Object(map) => {
            w.write_char('{')?;
            for (i, (k, item)) in map.iter().enumerate() {
                if i > 0 {
                    w.write_str(", ")?;
                }
                write_str_repr(w, k)?;
                w.write_str(": ")?;
                repr_at(w, item, inner, cut)?;
            }
            w.write_char('}')?;
        }
    }
    Ok(())
}

/// A small stack buffer for formatting without allocation.
struct StackBuf {
    buf: [u8; 40],
    len: usize,
}

impl Write for StackBuf {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len + s.len();
        if end > self.buf.len() {
            return Err(fmt::Error);
        }
        self.buf[self.len..end].copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// Writes Python `repr(f)`: the shortest round-trip digits, positional notation for
/// decimal exponents in `[-5, 16)`, scientific (`1e+16`, `1.5e-07`) otherwise, `.0` for
/// integral values.
pub(crate) fn write_float_repr<W: Write + ?Sized>(w: &mut W, f: f64) -> fmt::Result {
    if f.is_nan() {
        return w.write_str("nan");
    }
    if f.is_infinite() {
        return w.write_str(if f > 0.0 { "inf" } else { "-inf" });
    }
    if f == 0.0 {
        return w.write_str(if f.is_sign_negative() { "-0.0" } else { "0.0" });
    }
    // `{:e}` prints the shortest round-trip digits as `d.ddde<exp>`.
    let mut sb = StackBuf { buf: [0; 40], len: 0 };
    write!(sb, "{:e}", f.abs())?;
    let text = std::str::from_utf8(&sb.buf[..sb.len]).map_err(|_| fmt::Error)?;
    let (mantissa, exp) = text.split_once('e').ok_or(fmt::Error)?;
    let exp: i32 = exp.parse().map_err(|_| fmt::Error)?;
    let mut digits = [0u8; 20];
    let mut n = 0;
    for b in mantissa.bytes().filter(u8::is_ascii_digit) {
        if n < digits.len() {
            digits[n] = b;
            n += 1;
        }
    }
    let digits = &digits[..n];
    fn as_str(d: &[u8]) -> &str {
        std::str::from_utf8(d).unwrap_or("")
    }
    if f < 0.0 {
        w.write_char('-')?;
    }
    if (-4..16).contains(&exp) {
        if exp >= 0 {
            let int_len = exp as usize + 1;
            if digits.len() <= int_len {
                w.write_str(as_str(digits))?;
                for _ in digits.len()..int_len {
                    w.write_char('0')?;
                }
                w.write_str(".0")
            } else {
                w.write_str(as_str(&digits[..int_len]))?;
                w.write_char('.')?;
                w.write_str(as_str(&digits[int_len..]))
            }
        } else {
            w.write_str("0.")?;
            for _ in 0..(-exp - 1) {
                w.write_char('0')?;
            }
            w.write_str(as_str(digits))
        }
    } else {
        w.write_str(as_str(&digits[..1]))?;
        if digits.len() > 1 {
            w.write_char('.')?;
            w.write_str(as_str(&digits[1..]))?;
        }
        let sign = if exp < 0 { '-' } else { '+' };
        write!(w, "e{sign}{:02}", exp.unsigned_abs())
    }
}

/// Python's `str.isprintable()` for one character.
fn is_printable(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    !matches!(
        get_general_category(c),
        GeneralCategory::Control
            | GeneralCategory::Format
            | GeneralCategory::Surrogate
            | GeneralCategory::PrivateUse
            | GeneralCategory::Unassigned
            | GeneralCategory::LineSeparator
            | GeneralCategory::ParagraphSeparator
            | GeneralCategory::SpaceSeparator
    )
}

/// Writes Python `repr(s)` of a string.
pub(crate) fn write_str_repr<W: Write + ?Sized>(w: &mut W, s: &str) -> fmt::Result {
    let quote = if s.contains('\'') && !s.contains('"') { '"' } else { '\'' };
    w.write_char(quote)?;
    for c in s.chars() {
        match c {
            '\\' => w.write_str("\\\\")?,
            '\t' => w.write_str("\\t")?,
            '\n' => w.write_str("\\n")?,
            '\r' => w.write_str("\\r")?,
            c if c == quote => {
                w.write_char('\\')?;
                w.write_char(c)?;
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => write!(w, "\\x{:02x}", c as u32)?,
            c if c.is_ascii() || is_printable(c) => w.write_char(c)?,
            c if (c as u32) <= 0xff => write!(w, "\\x{:02x}", c as u32)?,
            c if (c as u32) <= 0xffff => write!(w, "\\u{:04x}", c as u32)?,
            c => write!(w, "\\U{:08x}", c as u32)?,
        }
    }
    w.write_char(quote)
}

/// Python `str(v)` as an owned string (cold paths: explanations, messages). Containers nested
/// deeper than [`MAX_DEPTH`] are written `...` instead of raising.
pub(crate) fn to_py_str(v: &Value) -> String {
    let mut s = String::new();
    let _ = match v {
        Value::String(text) => s.write_str(text),
        other => write_repr(&mut s, other),
    };
    s
}

/// Python `s.lower()` (full Unicode lower-casing, final sigma included).
pub(crate) fn lower(s: &str) -> String {
    s.to_lowercase()
}

/// Whether `key.lower() == target`, without allocating for the usual keys.
pub(crate) fn lower_eq(key: &str, target: &str) -> bool {
    if key.is_ascii() {
        key.len() == target.len()
            && key.bytes().zip(target.bytes()).all(|(a, b)| a.to_ascii_lowercase() == b)
    } else if key.contains('\u{03A3}') {
        // Final-sigma rules depend on context: use the library routine.
        key.to_lowercase() == target
    } else {
        key.chars().flat_map(char::to_lowercase).eq(target.chars())
    }
}

/// Whether `s.lower() == s`.
pub(crate) fn is_lowercase_fixed_point(s: &str) -> bool {
    lower_eq(s, s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn repr_f(f: f64) -> String {
        let mut s = String::new();
        write_float_repr(&mut s, f).unwrap();
        s
    }

    #[test]
    fn float_repr_matches_python() {
        let cases = [
            (1.0, "1.0"),
            (-0.0, "-0.0"),
            (1e16, "1e+16"),
            (1e-5, "1e-05"),
            (0.0001, "0.0001"),
            (5e-324, "5e-324"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (9007199254740992.0, "9007199254740992.0"),
            (1e15, "1000000000000000.0"),
            (123456789012345680.0, "1.2345678901234568e+17"),
            (0.57 * 100.0, "56.99999999999999"),
            (1.5, "1.5"),
            (-2.5e-7, "-2.5e-07"),
            (1603017021.144623, "1603017021.144623"),
            (0.1, "0.1"),
            (1e22, "1e+22"),
        ];
        for (f, want) in cases {
            assert_eq!(repr_f(f), want, "repr({f:?})");
        }
    }

    #[test]
    fn str_of_containers_matches_python() {
        let v = json!([1.5, true, null, "a", ["x"], {"k": "v", "n": null}, "it's", "\u{a0}\n"]);
        assert_eq!(
            to_py_str(&v),
            "[1.5, True, None, 'a', ['x'], {'k': 'v', 'n': None}, \"it's\", '\\xa0\\n']"
        );
        assert_eq!(to_py_str(&json!("plain")), "plain");
        assert_eq!(to_py_str(&json!(1e16)), "1e+16");
        assert_eq!(to_py_str(&json!(7)), "7");
    }

    #[test]
    fn comparisons_follow_python() {
        assert_eq!(py_eq(&json!(true), &json!(1)), Ok(true));
        assert_eq!(py_eq(&json!(1), &json!(1.0)), Ok(true));
        assert_eq!(py_eq(&json!(9007199254740993i64), &json!(9007199254740992.0)), Ok(false));
        assert_eq!(py_eq(&json!({"a": 1, "b": 2}), &json!({"b": 2, "a": 1.0})), Ok(true));
        assert!(py_order(&json!([1, 2]), OrdOp::Lt, &json!([1, 3])).unwrap());
        assert!(py_order(&json!("a"), OrdOp::Lt, &json!("b")).unwrap());
        assert_eq!(
            py_order(&json!(null), OrdOp::Gt, &json!(1)).unwrap_err().to_string(),
            "'>' not supported between instances of 'NoneType' and 'int'"
        );
        assert!(py_contains(&json!("abc"), &json!("b")).unwrap());
        assert!(py_contains(&json!("abc"), &json!(1)).is_err());
        assert!(py_contains(&json!({"a": 1}), &json!([1])).is_err());
        assert!(py_contains(&json!(5), &json!(5)).is_err());
    }

    #[test]
    fn short_string_equality() {
        let words = [
            "",
            "a",
            "ab",
            "abc",
            "abcd",
            "abcde",
            "abcdefgh",
            "abcdefghi",
            "abcdefghijklmnop",
            "abcdefghijklmnopq",
        ];
        for a in words {
            for b in words {
                assert_eq!(str_eq(a, b), a == b, "{a:?} {b:?}");
            }
            let mut c = a.to_owned().into_bytes();
            if let Some(last) = c.last_mut() {
                *last = b'z';
                assert!(!bytes_eq(a.as_bytes(), &c));
            }
            if let Some(first) = c.first_mut() {
                *first = b'Z';
                assert!(!bytes_eq(a.as_bytes(), &c));
            }
        }
    }

    #[test]
    fn lowercase_matching() {
        assert!(lower_eq("User_ID", "user_id"));
        assert!(!lower_eq("user_id", "User_ID"));
        assert!(lower_eq("\u{130}", "i\u{307}"));
        assert!(lower_eq("ΑΣ", "ας"));
        assert!(is_lowercase_fixed_point("user_id"));
        assert!(!is_lowercase_fixed_point("Device_ID"));
    }

    #[test]
    fn float_int_comparison_is_exact() {
        assert_eq!(cmp_float_int(1603017021.144623, 1603017021), Some(Ordering::Greater));
        assert_eq!(cmp_float_int(9007199254740992.0, 9007199254740993), Some(Ordering::Less));
        assert_eq!(cmp_float_int(-0.5, 0), Some(Ordering::Less));
        assert_eq!(cmp_float_int(1e300, i128::MAX), Some(Ordering::Greater));
    }

    /// `[[...[leaf]...]]`, built without recursion.
    fn nested(depth: usize, leaf: Value) -> Value {
        (0..depth).fold(leaf, |v, _| Value::Array(vec![v]))
    }

    #[test]
    fn depth_is_bounded_at_max_depth() {
        let ok = nested(MAX_DEPTH, json!(1));
        let deep = nested(MAX_DEPTH + 1, json!(1));
        assert_eq!(check_depth(&ok), Ok(()));
        assert_eq!(check_depth(&deep), Err(EvalError::RecursionLimit));
        assert!(!nests_deeper_than(&json!([[1]]), 2) && nests_deeper_than(&json!([[1]]), 1));
        assert!(!nests_deeper_than(&json!(5), 0) && nests_deeper_than(&json!({}), 0));
        // Equal values at the limit compare; beyond it, Python's RecursionError.
        assert_eq!(py_eq(&ok, &ok.clone()), Ok(true));
        assert_eq!(py_eq(&deep, &deep.clone()), Err(EvalError::RecursionLimit));
        assert_eq!(py_order(&deep, OrdOp::Lt, &deep.clone()), Err(EvalError::RecursionLimit));
        assert_eq!(py_order(&ok, OrdOp::Le, &ok.clone()), Ok(true));
        // A deep value against a shallow one stops where the shallow one does.
        assert_eq!(py_eq(&deep, &json!([[2]])), Ok(false));
        assert_eq!(py_order(&deep, OrdOp::Gt, &json!([[]])), Ok(true));
        // str() fails past the limit, repr for messages cuts it.
        let mut s = String::new();
        assert_eq!(write_str(&mut s, &ok), Ok(()));
        assert_eq!(s.len(), 2 * MAX_DEPTH + 1);
        assert_eq!(write_str(&mut String::new(), &deep), Err(EvalError::RecursionLimit));
        let cut = to_py_str(&deep);
        assert_eq!(cut, format!("{}...{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH)));
    }
}
