//! Value formatting shared by bucketing and events: what `serde_json` prints.

use std::fmt;

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
}
