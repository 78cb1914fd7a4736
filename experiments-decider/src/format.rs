//! Value formatting shared by bucketing and events: what `serde_json` prints, and (for the
//! wrapper's event records) what Python's `json.dumps` prints.

use std::fmt;

use serde_json::Value;

/// Writes a float as `serde_json` displays it (`1.0`, `-0.0`, `1e+16`, `5e-324`); a
/// non-finite float is `null`, as `serde_json::Value::from(f64)` makes it.
pub(crate) fn write_f64<W: fmt::Write + ?Sized>(out: &mut W, f: f64) -> fmt::Result {
    match serde_json::Number::from_f64(f) {
        Some(n) => write!(out, "{n}"),
        None => out.write_str("null"),
    }
}

/// Appends `s` as a JSON string literal, escaped exactly as `serde_json` does (raw UTF-8;
/// `\"`, `\\`, `\n`, `\t`, `\b`, `\f`, `\r`; other controls as lowercase `\u00xx`).
pub(crate) fn push_json_str(out: &mut String, s: &str) {
    out.push('"');
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        let esc: &str = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\t' => "\\t",
            b'\r' => "\\r",
            0x08 => "\\b",
            0x0c => "\\f",
            0x00..=0x1f => "",
            _ => continue,
        };
        out.push_str(&s[start..i]);
        if esc.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.push_str("\\u00");
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
        } else {
            out.push_str(esc);
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

/// Writes a float as Python's `repr` (and so `json.dumps`) does: the shortest digits that read
/// back exactly, in positional form when the decimal exponent is in `-4..16` (`0.0001`,
/// `1e+16`, `1e-05`, `-0.0`, `5e-324`); non-finite floats as `json.dumps` writes them
/// (`NaN`, `Infinity`, `-Infinity`).
pub(crate) fn push_py_float(out: &mut String, f: f64) {
    if !f.is_finite() {
        out.push_str(if f.is_nan() {
            "NaN"
        } else if f > 0.0 {
            "Infinity"
        } else {
            "-Infinity"
        });
        return;
    }
    // Rust's `{:e}` gives the shortest round-trip digits, as Python's repr does.
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (negative, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => (true, m),
        None => (false, mantissa),
    };
    if negative {
        out.push('-');
    }
    if (-4..16).contains(&exp) {
        let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
        if exp >= 0 {
            let point = exp as usize + 1;
            if digits.len() <= point {
                out.push_str(&digits);
                out.extend(std::iter::repeat_n('0', point - digits.len()));
                out.push_str(".0");
            } else {
                out.push_str(&digits[..point]);
                out.push('.');
                out.push_str(&digits[point..]);
            }
        } else {
            out.push_str("0.");
            out.extend(std::iter::repeat_n('0', (-exp - 1) as usize));
            out.push_str(&digits);
        }
    } else {
        out.push_str(mantissa);
        out.push('e');
        out.push(if exp < 0 { '-' } else { '+' });
        let abs = exp.unsigned_abs();
        if abs < 10 {
            out.push('0');
        }
        let _ = fmt::Write::write_fmt(out, format_args!("{abs}"));
    }
}

/// Appends `v` as Python's `json.dumps(v, ensure_ascii=False, separators=(",", ":"))` writes
/// it: compact, keys in the map's order, strings escaped as [`push_json_str`], integers in
/// decimal, floats as [`push_py_float`].
pub(crate) fn push_py_json(out: &mut String, v: &Value) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => match (n.as_u64(), n.as_i64(), n.as_f64()) {
            (Some(u), _, _) => {
                let _ = fmt::Write::write_fmt(out, format_args!("{u}"));
            }
            (None, Some(i), _) => {
                let _ = fmt::Write::write_fmt(out, format_args!("{i}"));
            }
            (None, None, Some(f)) => push_py_float(out, f),
            (None, None, None) => out.push_str("null"),
        },
        Value::String(s) => push_json_str(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                push_py_json(out, item);
            }
            out.push(']');
        }
        Value::Object(members) => {
            out.push('{');
            for (i, (k, item)) in members.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                push_json_str(out, k);
                out.push(':');
                push_py_json(out, item);
            }
            out.push('}');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(x: f64) -> String {
        let mut s = String::new();
        let _ = write_f64(&mut s, x);
        s
    }

    #[test]
    fn floats_as_serde_json() {
        assert_eq!(f(1.0), "1.0");
        assert_eq!(f(-0.0), "-0.0");
        assert_eq!(f(9007199254740992.0), "9007199254740992.0");
        assert_eq!(f(1e16), "1e+16");
        assert_eq!(f(1e-7), "1e-7");
        assert_eq!(f(5e-324), "5e-324");
        assert_eq!(f(18446744073709551616.0), "1.8446744073709552e+19");
        assert_eq!(f(1.5e300), "1.5e+300");
        assert_eq!(f(f64::NAN), "null");
    }

    #[test]
    fn strings_as_serde_json() {
        for s in ["plain", "q\"b\\", "\n\t\r\u{8}\u{c}\u{1}\u{1f}", "é\u{2028}\u{7f}", ""] {
            let mut out = String::new();
            push_json_str(&mut out, s);
            assert_eq!(out, serde_json::to_string(s).unwrap_or_default(), "{s:?}");
        }
    }

    #[test]
    fn floats_as_python_repr() {
        let repr = |x: f64| {
            let mut s = String::new();
            push_py_float(&mut s, x);
            s
        };
        for (x, want) in [
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (1.0, "1.0"),
            (0.3, "0.3"),
            (0.30000000000000004, "0.30000000000000004"),
            (123.456, "123.456"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1.5e-7, "1.5e-07"),
            (1e15, "1000000000000000.0"),
            (1e16, "1e+16"),
            (1.2345e16, "1.2345e+16"),
            (-2.5e100, "-2.5e+100"),
            (1.5e300, "1.5e+300"),
            (5e-324, "5e-324"),
            (1700000000.5, "1700000000.5"),
            (9007199254740993.0, "9007199254740992.0"),
            (f64::NAN, "NaN"),
            (f64::NEG_INFINITY, "-Infinity"),
        ] {
            assert_eq!(repr(x), want, "{x:?}");
        }
    }

    #[test]
    fn json_as_python_dumps() {
        let v: Value = serde_json::from_str(
            r#"{"b":1,"a":[1.0,-3,18446744073709551615,{"x":null,"y":true}],"\u00e9\n":"q\"","f":1e16}"#,
        )
        .unwrap_or_default();
        let mut s = String::new();
        push_py_json(&mut s, &v);
        assert_eq!(
            s,
            "{\"b\":1,\"a\":[1.0,-3,18446744073709551615,{\"x\":null,\"y\":true}],\"\u{e9}\\n\":\"q\\\"\",\"f\":1e+16}"
        );
    }
}
