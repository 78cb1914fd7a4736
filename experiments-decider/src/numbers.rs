//! Numbers as the reference reads them.
//!
//! reddit-decider parses its document with `serde_json` built without `float_roundtrip`: a
//! decimal literal becomes its first 19–20 significant digits as a `u64`, converted to `f64`
//! and then multiplied or divided once by a power of ten. That rounds twice, so about one in
//! seven 16–17-digit literals lands 1–2 ULPs away from the correctly rounded value (and a
//! literal just below `f64::MAX` can overflow). Dynamic-config values, targeting numbers and
//! variant ranges all see those values, so this port reads them the same way.
//!
//! [`reference_floats`] finds every number literal outside strings, computes the value the
//! reference gets, and rewrites the literals whose value differs into a form that any correct
//! parser reads as exactly that value. The document is only copied when a literal changes.

use std::borrow::Cow;

/// `10^0 ..= 10^308`, each the correctly rounded literal: the table the reference multiplies
/// or divides by.
#[rustfmt::skip]
static POW10: [f64; 309] = [
    1e000, 1e001, 1e002, 1e003, 1e004, 1e005, 1e006, 1e007, 1e008, 1e009,
    1e010, 1e011, 1e012, 1e013, 1e014, 1e015, 1e016, 1e017, 1e018, 1e019,
    1e020, 1e021, 1e022, 1e023, 1e024, 1e025, 1e026, 1e027, 1e028, 1e029,
    1e030, 1e031, 1e032, 1e033, 1e034, 1e035, 1e036, 1e037, 1e038, 1e039,
    1e040, 1e041, 1e042, 1e043, 1e044, 1e045, 1e046, 1e047, 1e048, 1e049,
    1e050, 1e051, 1e052, 1e053, 1e054, 1e055, 1e056, 1e057, 1e058, 1e059,
    1e060, 1e061, 1e062, 1e063, 1e064, 1e065, 1e066, 1e067, 1e068, 1e069,
    1e070, 1e071, 1e072, 1e073, 1e074, 1e075, 1e076, 1e077, 1e078, 1e079,
    1e080, 1e081, 1e082, 1e083, 1e084, 1e085, 1e086, 1e087, 1e088, 1e089,
    1e090, 1e091, 1e092, 1e093, 1e094, 1e095, 1e096, 1e097, 1e098, 1e099,
    1e100, 1e101, 1e102, 1e103, 1e104, 1e105, 1e106, 1e107, 1e108, 1e109,
    1e110, 1e111, 1e112, 1e113, 1e114, 1e115, 1e116, 1e117, 1e118, 1e119,
    1e120, 1e121, 1e122, 1e123, 1e124, 1e125, 1e126, 1e127, 1e128, 1e129,
    1e130, 1e131, 1e132, 1e133, 1e134, 1e135, 1e136, 1e137, 1e138, 1e139,
    1e140, 1e141, 1e142, 1e143, 1e144, 1e145, 1e146, 1e147, 1e148, 1e149,
    1e150, 1e151, 1e152, 1e153, 1e154, 1e155, 1e156, 1e157, 1e158, 1e159,
    1e160, 1e161, 1e162, 1e163, 1e164, 1e165, 1e166, 1e167, 1e168, 1e169,
    1e170, 1e171, 1e172, 1e173, 1e174, 1e175, 1e176, 1e177, 1e178, 1e179,
    1e180, 1e181, 1e182, 1e183, 1e184, 1e185, 1e186, 1e187, 1e188, 1e189,
    1e190, 1e191, 1e192, 1e193, 1e194, 1e195, 1e196, 1e197, 1e198, 1e199,
    1e200, 1e201, 1e202, 1e203, 1e204, 1e205, 1e206, 1e207, 1e208, 1e209,
    1e210, 1e211, 1e212, 1e213, 1e214, 1e215, 1e216, 1e217, 1e218, 1e219,
    1e220, 1e221, 1e222, 1e223, 1e224, 1e225, 1e226, 1e227, 1e228, 1e229,
    1e230, 1e231, 1e232, 1e233, 1e234, 1e235, 1e236, 1e237, 1e238, 1e239,
    1e240, 1e241, 1e242, 1e243, 1e244, 1e245, 1e246, 1e247, 1e248, 1e249,
    1e250, 1e251, 1e252, 1e253, 1e254, 1e255, 1e256, 1e257, 1e258, 1e259,
    1e260, 1e261, 1e262, 1e263, 1e264, 1e265, 1e266, 1e267, 1e268, 1e269,
    1e270, 1e271, 1e272, 1e273, 1e274, 1e275, 1e276, 1e277, 1e278, 1e279,
    1e280, 1e281, 1e282, 1e283, 1e284, 1e285, 1e286, 1e287, 1e288, 1e289,
    1e290, 1e291, 1e292, 1e293, 1e294, 1e295, 1e296, 1e297, 1e298, 1e299,
    1e300, 1e301, 1e302, 1e303, 1e304, 1e305, 1e306, 1e307, 1e308,
];

/// A literal the reference rejects: its value overflows `f64` in the reference's arithmetic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OutOfRange {
    /// 1-based line of the literal.
    pub(crate) line: usize,
    /// 1-based column of its last byte.
    pub(crate) column: usize,
}

/// Rewrites the number literals of `text` whose value the reference reads differently.
pub(crate) fn reference_floats(text: &[u8]) -> Result<Cow<'_, [u8]>, OutOfRange> {
    let mut out: Option<Vec<u8>> = None;
    let mut copied = 0;
    let mut i = 0;
    let (mut line, mut line_start) = (1usize, 0usize);
    while i < text.len() {
        match text[i] {
            b'"' => {
                // Skip the string, escapes included (an unterminated one runs to the end).
                i += 1;
                while i < text.len() && text[i] != b'"' {
                    i += if text[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
            }
            b'\n' => {
                line += 1;
                i += 1;
                line_start = i;
            }
            b'-' | b'0'..=b'9' => {
                let end = text[i..]
                    .iter()
                    .position(|b| !matches!(b, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'))
                    .map_or(text.len(), |n| i + n);
                let token = &text[i..end];
                if let Some(lossy) = lossy_value(token)
                    .map_err(|()| OutOfRange { line, column: end - line_start })?
                {
                    let exact = std::str::from_utf8(token).ok().and_then(|t| t.parse::<f64>().ok());
                    if exact.map(f64::to_bits) != Some(lossy.to_bits()) {
                        let buf = out.get_or_insert_with(|| Vec::with_capacity(text.len() + 16));
                        buf.extend_from_slice(&text[copied..i]);
                        // `{:?}` is the shortest form that reads back exactly, and always
                        // looks like a float (`1e16`, `100.0`), so the value stays a float.
                        buf.extend_from_slice(format!("{lossy:?}").as_bytes());
                        copied = end;
                    }
                }
                i = end;
            }
            _ => i += 1,
        }
    }
    Ok(match out {
        None => Cow::Borrowed(text),
        Some(mut buf) => {
            buf.extend_from_slice(&text[copied..]);
            Cow::Owned(buf)
        }
    })
}

/// The value the reference gives a number literal when it parses it as a float: `Ok(None)`
/// for literals it keeps as integers (or that are not valid JSON numbers, left for the parser
/// to report), `Err(())` when its arithmetic overflows.
fn lossy_value(token: &[u8]) -> Result<Option<f64>, ()> {
    if !is_json_number(token) {
        return Ok(None);
    }
    let (positive, digits) = match token.split_first() {
        Some((b'-', rest)) => (false, rest),
        _ => (true, token),
    };
    let mut i = 0;
    let mut significand: u64 = 0;
    let mut exponent: i32 = 0;
    let mut is_float = false;
    // Integer part; past u64, digits only raise the exponent.
    let mut overflowed = false;
    while let Some(&c) = digits.get(i).filter(|c| c.is_ascii_digit()) {
        let d = u64::from(c - b'0');
        if overflowed || overflows(significand, d) {
            overflowed = true;
            is_float = true;
            exponent += 1;
        } else {
            significand = significand * 10 + d;
        }
        i += 1;
    }
    if digits.get(i) == Some(&b'.') {
        is_float = true;
        i += 1;
        let mut dropped = false;
        while let Some(&c) = digits.get(i).filter(|c| c.is_ascii_digit()) {
            let d = u64::from(c - b'0');
            if dropped || overflows(significand, d) {
                // The rest of the fraction is ignored.
                dropped = true;
            } else {
                significand = significand * 10 + d;
                exponent -= 1;
            }
            i += 1;
        }
    }
    if matches!(digits.get(i), Some(b'e' | b'E')) {
        is_float = true;
        i += 1;
        let positive_exp = match digits.get(i) {
            Some(b'+') => {
                i += 1;
                true
            }
            Some(b'-') => {
                i += 1;
                false
            }
            _ => true,
        };
        let mut exp: i32 = 0;
        while let Some(&c) = digits.get(i).filter(|c| c.is_ascii_digit()) {
            let d = i32::from(c - b'0');
            if exp > i32::MAX / 10 || (exp == i32::MAX / 10 && d > i32::MAX % 10) {
                // Exponent overflow: zero, or out of range for a positive exponent.
                if significand != 0 && positive_exp {
                    return Err(());
                }
                return Ok(Some(if positive { 0.0 } else { -0.0 }));
            }
            exp = exp * 10 + d;
            i += 1;
        }
        exponent =
            if positive_exp { exponent.saturating_add(exp) } else { exponent.saturating_sub(exp) };
    }
    if !is_float {
        // An integer that fits u64 (or i64 when negative) stays an integer.
        return Ok(None);
    }
    from_parts(positive, significand, exponent).map(Some)
}

/// `significand * 10 + d` overflows `u64`.
fn overflows(significand: u64, d: u64) -> bool {
    significand >= u64::MAX / 10 && (significand > u64::MAX / 10 || d > u64::MAX % 10)
}

/// The reference's `f64_from_parts`: one multiplication or division by a power of ten.
fn from_parts(positive: bool, significand: u64, mut exponent: i32) -> Result<f64, ()> {
    let mut f = significand as f64;
    loop {
        match POW10.get(exponent.unsigned_abs() as usize) {
            Some(&pow) => {
                if exponent >= 0 {
                    f *= pow;
                    if f.is_infinite() {
                        return Err(());
                    }
                } else {
                    f /= pow;
                }
                break;
            }
            None => {
                if f == 0.0 {
                    break;
                }
                if exponent >= 0 {
                    return Err(());
                }
                f /= 1e308;
                exponent += 308;
            }
        }
    }
    Ok(if positive { f } else { -f })
}

/// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`
fn is_json_number(t: &[u8]) -> bool {
    let mut i = usize::from(t.first() == Some(&b'-'));
    match t.get(i) {
        Some(b'0') => i += 1,
        Some(b'1'..=b'9') => {
            while t.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
        }
        _ => return false,
    }
    let digits = |i: &mut usize| {
        let start = *i;
        while t.get(*i).is_some_and(u8::is_ascii_digit) {
            *i += 1;
        }
        *i > start
    };
    if t.get(i) == Some(&b'.') {
        i += 1;
        if !digits(&mut i) {
            return false;
        }
    }
    if matches!(t.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(t.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if !digits(&mut i) {
            return false;
        }
    }
    i == t.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lossy(s: &str) -> Option<f64> {
        lossy_value(s.as_bytes()).ok().flatten()
    }

    #[test]
    fn double_rounding_as_the_reference() {
        // Probed on reddit-decider 1.18.2 (differential sweeps).
        // (The pairs come from an emulation of the reference that agreed with it on 613 of
        // 613 probed literals.)
        for (literal, reads) in [
            ("100.00000000000007", 100.00000000000009),
            ("-940.4765712784031", -940.4765712784032),
            ("0.9999999999999997", 0.9999999999999996),
            ("12345.678000000009", 12345.678000000007),
            ("0.022499999962747094", 0.022499999962747097),
            ("3607.9994636357187", 3607.9994636357183),
            ("123456789012345680000.0", 1.2345678901234567e20),
        ] {
            assert_eq!(lossy(literal), Some(reads), "{literal}");
        }
        // The same value written in exponent form is read exactly.
        assert_eq!(lossy("1.2345678901234568e+20"), Some(1.2345678901234568e20));
        // Short literals are exact.
        for s in ["0.3", "1e16", "0.1255", "1.5e300", "5e-324", "-0.0", "1E3", "2.5e-5"] {
            assert_eq!(lossy(s), s.parse::<f64>().ok(), "{s}");
        }
        // Integers stay integers; beyond u64 they are floats.
        assert_eq!(lossy("12"), None);
        assert_eq!(lossy("-12"), None);
        assert_eq!(lossy("18446744073709551616"), Some(18446744073709551616.0));
        // Out of range in the reference's arithmetic.
        assert_eq!(lossy_value(b"1e400"), Err(()));
        assert_eq!(lossy_value(b"1.7976931348623158e308"), Err(()));
        assert_eq!(lossy("1.7976931348623157e308"), Some(f64::MAX));
        assert_eq!(lossy_value(b"0e99999999999"), Ok(Some(0.0)));
        assert_eq!(lossy_value(b"1e-99999999999"), Ok(Some(0.0)));
        // Not JSON numbers: left to the parser.
        for s in ["01", "1.", ".5", "1e", "--1", "1.5.5", "-"] {
            assert_eq!(lossy_value(s.as_bytes()), Ok(None), "{s}");
        }
    }

    #[test]
    fn rewrites_only_what_differs_and_never_inside_strings() {
        let text =
            br#"{"a": 100.00000000000007, "b": "100.00000000000007", "c": [0.5, 7], "d\"": 1e2}"#;
        let out = reference_floats(text).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(
            std::str::from_utf8(&out).unwrap_or_default(),
            r#"{"a": 100.00000000000009, "b": "100.00000000000007", "c": [0.5, 7], "d\"": 1e2}"#
        );
        assert!(matches!(reference_floats(br#"{"a": 0.5}"#), Ok(Cow::Borrowed(_))));
        // Below f64::MAX for a correct parser, out of range for the reference.
        let err = reference_floats(b"{\n \"a\": 1.7976931348623158e308}").err();
        assert_eq!(err, Some(OutOfRange { line: 2, column: 28 }));
    }
}
