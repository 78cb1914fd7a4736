//! Reading `experiments.json` the way baseplate does: `json.load` on the file's text.
//!
//! Python's `json` module accepts more than strict JSON parsers do: the tokens `NaN`,
//! `Infinity` and `-Infinity`; numbers of any size (`1e400` is `float('inf')`, integers are
//! `int`s of up to 4300 digits); lone UTF-16 surrogates in strings (`"\ud800"`); nesting down
//! to its recursion limit (about 1000 levels, where `serde_json` stops at 128). A document
//! using any of these runs every experiment in a Python service, so here too the document
//! loads and only the experiments that *hold* such a value (after duplicate keys are
//! resolved: a `NaN` replaced by a later key is gone) are invalid, with a
//! [`Deviation::UnrepresentableValue`] error naming the value and its path; experiments
//! nested deeper than [`MAX_DEPTH`] are invalid with [`Deviation::Nesting`]. What Python
//! rejects is still a [`ConfigError`].
//!
//! `Config::parse` hands the whole text to `serde_json` first; plain JSON (every real
//! document) never gets here. Only when that fails:
//! 1. [`scan`] checks the whole text against Python's grammar in one iterative pass (no
//!    recursion, nothing built) and splits the top-level object into members: key and value
//!    text, with duplicate keys resolved like a `dict` (first position, last value).
//! 2. [`member_value`] gives each member's text to `serde_json` alone; only a member that
//!    `serde_json` rejects is read by [`build`], token by token and iteratively, with each
//!    scalar still converted by `serde_json` where it can be.
//!
//! Both passes are linear in the text.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use serde_json::{Map, Value};

use crate::error::{ConfigError, Deviation, Problem};
use crate::py::MAX_DEPTH;

/// Nesting at which Python's `json` raises `RecursionError` even with an empty call stack
/// (its default recursion limit); deeper documents are rejected as a whole.
pub(crate) const PY_MAX_NESTING: usize = 1000;

/// Python's `sys.get_int_max_str_digits()` default: `int()` of a longer digit string (and so
/// `json.load` of a longer integer literal) raises `ValueError`.
const PY_INT_MAX_STR_DIGITS: usize = 4300;

/// Document nesting at which `serde_json` gives up (its recursion limit is 128).
const SERDE_MAX_NESTING: usize = 128;

/// A document Python's `json` loads.
#[derive(Debug)]
pub(crate) enum Document<'a> {
    /// A top-level object: its members in first-occurrence order, each with its last value.
    Object(Vec<Member<'a>>),
    /// Any other top-level value, by its Python type name.
    Other(&'static str),
}

/// One member of the top-level object.
#[derive(Debug)]
pub(crate) struct Member<'a> {
    /// The decoded key (a lone surrogate in it shown as U+FFFD).
    pub key: String,
    /// The first lone surrogate of the key, if any.
    key_surrogate: Option<u16>,
    /// The value's text.
    value: &'a str,
    /// Byte offset of the value in the document.
    offset: usize,
    /// How many levels of lists and objects the value nests.
    depth: usize,
    /// Byte offset (in the document) of the first container nested deeper than
    /// [`MAX_DEPTH`], if any.
    too_deep_at: Option<usize>,
}

/// Where and why the text is not a document Python loads.
struct ScanError {
    pos: usize,
    message: String,
    /// Python-specific (a recursion or digit limit): always reported as is, never as
    /// `serde_json`'s error.
    own: bool,
}

/// What a string token holds.
#[derive(Clone, Copy, Default)]
struct StrInfo {
    /// It has a backslash escape.
    escaped: bool,
    /// Its first lone surrogate.
    lone: Option<u16>,
}

/// A cursor over the text, checking Python's JSON grammar (the C scanner of `json`).
struct Scanner<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
    /// Something `serde_json` rejects but Python reads has been seen: a syntax error past it
    /// is not the one `serde_json` reported.
    python_only: bool,
    /// The open containers of the value being scanned (`{` or `[`).
    stack: Vec<u8>,
}

fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

fn hex_digit(b: u8) -> Option<u16> {
    (b as char).to_digit(16).map(|d| d as u16)
}

impl<'a> Scanner<'a> {
    fn new(text: &'a str) -> Self {
        Scanner { text, bytes: text.as_bytes(), pos: 0, python_only: false, stack: Vec::new() }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn rest(&self) -> &'a [u8] {
        self.bytes.get(self.pos..).unwrap_or_default()
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(is_ws) {
            self.pos += 1;
        }
    }

    fn error(&self, pos: usize, message: impl Into<String>) -> ScanError {
        ScanError { pos, message: message.into(), own: false }
    }

    fn expect_colon(&mut self) -> Result<(), ScanError> {
        self.skip_ws();
        if self.peek() != Some(b':') {
            return Err(self.error(self.pos, "Expecting ':' delimiter"));
        }
        self.pos += 1;
        Ok(())
    }

    /// The four hex digits at `at`, if they are.
    fn hex4(&self, at: usize) -> Option<u16> {
        let digits = self.bytes.get(at..at + 4)?;
        digits.iter().try_fold(0u16, |acc, &b| Some(acc << 4 | hex_digit(b)?))
    }

    /// Scans the string token at the cursor (on its opening quote).
    fn scan_string(&mut self) -> Result<StrInfo, ScanError> {
        let start = self.pos;
        self.pos += 1;
        let mut info = StrInfo::default();
        loop {
            while self.peek().is_some_and(|b| b != b'"' && b != b'\\' && b >= 0x20) {
                self.pos += 1;
            }
            match self.peek() {
                None => return Err(self.error(start, "Unterminated string starting")),
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(info);
                }
                Some(b'\\') => {
                    info.escaped = true;
                    match self.bytes.get(self.pos + 1) {
                        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => {
                            self.pos += 2
                        }
                        Some(b'u') => {
                            let Some(unit) = self.hex4(self.pos + 2) else {
                                return Err(self.error(self.pos + 1, "Invalid \\uXXXX escape"));
                            };
                            self.pos += 6;
                            if (0xD800..0xDC00).contains(&unit) {
                                // A high surrogate pairs with a low surrogate escape right after
                                // it; anything else leaves it alone (and is read on its own).
                                if self.rest().starts_with(b"\\u")
                                    && self
                                        .hex4(self.pos + 2)
                                        .is_some_and(|low| (0xDC00..0xE000).contains(&low))
                                {
                                    self.pos += 6;
                                    continue;
                                }
                                info.lone.get_or_insert(unit);
                                self.python_only = true;
                            } else if (0xDC00..0xE000).contains(&unit) {
                                info.lone.get_or_insert(unit);
                                self.python_only = true;
                            }
                        }
                        Some(_) => return Err(self.error(self.pos, "Invalid \\escape")),
                        None => return Err(self.error(start, "Unterminated string starting")),
                    }
                }
                Some(_) => return Err(self.error(self.pos, "Invalid control character")),
            }
        }
    }

    /// Scans the number (or `-Infinity`) at the cursor, as Python's number pattern
    /// `-?(0|[1-9]\d*)(\.\d+)?([eE][-+]?\d+)?` does (greedy; what it leaves is an error of the
    /// surrounding grammar).
    fn scan_number(&mut self) -> Result<(), ScanError> {
        let start = self.pos;
        if self.rest().starts_with(b"-Infinity") {
            self.pos += 9;
            self.python_only = true;
            return Ok(());
        }
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        let int_start = self.pos;
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => {
                while self.peek().is_some_and(|b| b.is_ascii_digit()) {
                    self.pos += 1;
                }
            }
            _ => return Err(self.error(start, "Expecting value")),
        }
        let int_digits = self.pos - int_start;
        let mut float = false;
        if self.peek() == Some(b'.') && self.bytes.get(self.pos + 1).is_some_and(u8::is_ascii_digit)
        {
            self.pos += 1;
            while self.peek().is_some_and(|b| b.is_ascii_digit()) {
                self.pos += 1;
            }
            float = true;
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            let save = self.pos;
            self.pos += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            if self.peek().is_some_and(|b| b.is_ascii_digit()) {
                while self.peek().is_some_and(|b| b.is_ascii_digit()) {
                    self.pos += 1;
                }
                float = true;
            } else {
                self.pos = save;
            }
        }
        if !float && int_digits > PY_INT_MAX_STR_DIGITS {
            return Err(ScanError {
                pos: start,
                message: format!(
                    "an integer of {int_digits} digits exceeds the limit of \
                     {PY_INT_MAX_STR_DIGITS} digits of Python's int() (ValueError)"
                ),
                own: true,
            });
        }
        let token = &self.text[start..self.pos];
        // serde_json rejects what overflows an f64 (Python: inf, or a big int).
        if (token.len() > 300 || float && token.contains(['e', 'E']))
            && token.parse::<f64>().map_or(true, f64::is_infinite)
        {
            self.python_only = true;
        }
        Ok(())
    }

    /// Scans the value at the cursor, which sits at document nesting `base`. Returns how
    /// many levels of containers the value nests and where it first nests deeper than
    /// [`MAX_DEPTH`]. Iterative: its only memory is one byte per open container.
    fn scan_value(&mut self, base: usize) -> Result<(usize, Option<usize>), ScanError> {
        self.stack.clear();
        let mut depth = 0;
        let mut too_deep_at = None;
        'value: loop {
            self.skip_ws();
            let start = self.pos;
            match self.peek() {
                Some(open @ (b'{' | b'[')) => {
                    let level = self.stack.len() + 1;
                    if base + level > PY_MAX_NESTING {
                        return Err(ScanError {
                            pos: start,
                            message: format!(
                                "nesting deeper than {PY_MAX_NESTING} levels (Python's json \
                                 raises RecursionError)"
                            ),
                            own: true,
                        });
                    }
                    if base + level >= SERDE_MAX_NESTING {
                        self.python_only = true;
                    }
                    if level > MAX_DEPTH && too_deep_at.is_none() {
                        too_deep_at = Some(start);
                    }
                    depth = depth.max(level);
                    self.stack.push(open);
                    self.pos += 1;
                    self.skip_ws();
                    match (open, self.peek()) {
                        (b'{', Some(b'}')) | (b'[', Some(b']')) => {
                            self.pos += 1;
                            self.stack.pop();
                        }
                        (b'{', Some(b'"')) => {
                            self.scan_string()?;
                            self.expect_colon()?;
                            continue 'value;
                        }
                        (b'{', _) => {
                            return Err(self.error(
                                self.pos,
                                "Expecting property name enclosed in double quotes",
                            ));
                        }
                        _ => continue 'value,
                    }
                }
                Some(b'"') => {
                    self.scan_string()?;
                }
                Some(b'-' | b'0'..=b'9') => self.scan_number()?,
                Some(b'N') if self.rest().starts_with(b"NaN") => {
                    self.pos += 3;
                    self.python_only = true;
                }
                Some(b'I') if self.rest().starts_with(b"Infinity") => {
                    self.pos += 8;
                    self.python_only = true;
                }
                Some(b't') if self.rest().starts_with(b"true") => self.pos += 4,
                Some(b'f') if self.rest().starts_with(b"false") => self.pos += 5,
                Some(b'n') if self.rest().starts_with(b"null") => self.pos += 4,
                _ => return Err(self.error(start, "Expecting value")),
            }
            // After a value: close containers until one expects another element.
            loop {
                let Some(&open) = self.stack.last() else {
                    return Ok((depth, too_deep_at));
                };
                self.skip_ws();
                match (open, self.peek()) {
                    (_, Some(b',')) => {
                        self.pos += 1;
                        if open == b'{' {
                            self.skip_ws();
                            if self.peek() != Some(b'"') {
                                return Err(self.error(
                                    self.pos,
                                    "Expecting property name enclosed in double quotes",
                                ));
                            }
                            self.scan_string()?;
                            self.expect_colon()?;
                        }
                        continue 'value;
                    }
                    (b'{', Some(b'}')) | (b'[', Some(b']')) => {
                        self.pos += 1;
                        self.stack.pop();
                    }
                    _ => return Err(self.error(self.pos, "Expecting ',' delimiter")),
                }
            }
        }
    }

    /// Scans the whole document.
    fn scan_document(&mut self) -> Result<Document<'a>, ScanError> {
        self.skip_ws();
        if self.peek() != Some(b'{') {
            let start = self.pos;
            self.scan_value(0)?;
            let token = &self.text[start..self.pos];
            self.expect_end()?;
            let found = match token.as_bytes().first() {
                Some(b'[') => "list",
                Some(b'"') => "str",
                Some(b't' | b'f') => "bool",
                Some(b'n') => "NoneType",
                _ if token.contains(['.', 'e', 'E', 'N', 'I']) => "float",
                _ => "int",
            };
            return Ok(Document::Other(found));
        }
        self.pos += 1;
        let mut members: Vec<Member<'a>> = Vec::new();
        // Decoded key (WTF-8: lone surrogates encoded as themselves) -> index in `members`.
        let mut seen: HashMap<Vec<u8>, usize> = HashMap::new();
        self.skip_ws();
        if self.peek() == Some(b'}') {
            self.pos += 1;
        } else {
            loop {
                if self.peek() != Some(b'"') {
                    return Err(
                        self.error(self.pos, "Expecting property name enclosed in double quotes")
                    );
                }
                let key_start = self.pos;
                let info = self.scan_string()?;
                let key_token = &self.text[key_start..self.pos];
                self.expect_colon()?;
                self.skip_ws();
                let value_start = self.pos;
                let (depth, too_deep_at) = self.scan_value(1)?;
                let value = &self.text[value_start..self.pos];
                let (identity, key) = decode_string(key_token, info);
                let member = Member {
                    key,
                    key_surrogate: info.lone,
                    value,
                    offset: value_start,
                    depth,
                    too_deep_at,
                };
                match seen.entry(identity) {
                    // `d[k] = v` on an existing key: same position, the new value.
                    Entry::Occupied(slot) => members[*slot.get()] = member,
                    Entry::Vacant(slot) => {
                        slot.insert(members.len());
                        members.push(member);
                    }
                }
                self.skip_ws();
                match self.peek() {
                    Some(b',') => {
                        self.pos += 1;
                        self.skip_ws();
                    }
                    Some(b'}') => {
                        self.pos += 1;
                        break;
                    }
                    _ => return Err(self.error(self.pos, "Expecting ',' delimiter")),
                }
            }
        }
        self.expect_end()?;
        Ok(Document::Object(members))
    }

    fn expect_end(&mut self) -> Result<(), ScanError> {
        self.skip_ws();
        if self.pos == self.bytes.len() { Ok(()) } else { Err(self.error(self.pos, "Extra data")) }
    }
}

/// 1-based line and column (in characters) of byte `pos`, as Python's `json` reports them.
fn line_col(text: &str, pos: usize) -> (usize, usize) {
    let before = text.get(..pos).unwrap_or(text);
    let line = before.bytes().filter(|&b| b == b'\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

/// Checks a text that `serde_json` rejected against Python's `json`, and splits it into
/// members when Python loads it. `serde_error` is reported when the text fails where
/// `serde_json` failed (a plain syntax error).
pub(crate) fn scan(
    text: &str,
    serde_error: serde_json::Error,
) -> Result<Document<'_>, ConfigError> {
    if text.starts_with('\u{feff}') {
        return Err(ConfigError::ByteOrderMark);
    }
    let mut scanner = Scanner::new(text);
    match scanner.scan_document() {
        Ok(document) => Ok(document),
        Err(e) if e.own || scanner.python_only => {
            let (line, column) = line_col(text, e.pos);
            Err(ConfigError::Syntax { message: e.message, line, column })
        }
        Err(_) => Err(ConfigError::Json(serde_error)),
    }
}

/// The value of a member of a document from [`scan`] (`text`), or why the experiment is
/// invalid: its key or a value in it cannot be represented, or it nests deeper than
/// [`MAX_DEPTH`].
pub(crate) fn member_value(text: &str, member: &Member<'_>) -> Result<Value, Problem> {
    if let Some(unit) = member.key_surrogate {
        return Err(Problem::new(
            "",
            format!(
                "the config key holds a lone surrogate \\u{unit:04x}: Python's json reads it, \
                 a Rust string cannot hold it"
            ),
        )
        .deviation(Deviation::UnrepresentableValue));
    }
    if let Some(at) = member.too_deep_at {
        let (line, column) = line_col(text, member.offset + at);
        return Err(too_deep(Some((member.depth, line, column))));
    }
    match serde_json::from_str(member.value) {
        Ok(value) => Ok(value),
        Err(_) => build(member.value),
    }
}

/// The error of an experiment nesting lists and objects deeper than [`MAX_DEPTH`] levels:
/// how deep and where it crosses the limit (line, column), when known.
pub(crate) fn too_deep(found: Option<(usize, usize, usize)>) -> Problem {
    let how = match found {
        Some((depth, line, column)) => {
            format!("{depth} levels deep (past {MAX_DEPTH} at line {line} column {column})")
        }
        None => format!("more than {MAX_DEPTH} levels deep"),
    };
    Problem::new(
        "",
        format!(
            "lists and objects nest {how}, more than the {MAX_DEPTH} levels this port \
             supports (Python's json reads up to about {PY_MAX_NESTING})"
        ),
    )
    .deviation(Deviation::Nesting)
}

/// Decodes a string token: its identity as Python compares it (the text in WTF-8: UTF-8
/// with lone surrogates encoded as if they were characters) and its text with each lone
/// surrogate shown as U+FFFD. The token was checked by [`Scanner::scan_string`].
fn decode_string(token: &str, info: StrInfo) -> (Vec<u8>, String) {
    let inner = token.get(1..token.len().saturating_sub(1)).unwrap_or_default();
    if !info.escaped {
        return (inner.as_bytes().to_vec(), inner.to_owned());
    }
    if info.lone.is_none()
        && let Ok(s) = serde_json::from_str::<String>(token)
    {
        return (s.as_bytes().to_vec(), s);
    }
    let bytes = inner.as_bytes();
    let mut wtf8 = Vec::with_capacity(bytes.len());
    let mut shown = String::with_capacity(bytes.len());
    let unit_at = |i: usize| {
        bytes
            .get(i..i + 4)
            .and_then(|d| d.iter().try_fold(0u32, |acc, &b| Some(acc << 4 | hex_digit(b)? as u32)))
    };
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'\\' {
            let run_end =
                bytes[i..].iter().position(|&b| b == b'\\').map_or(bytes.len(), |n| i + n);
            let run = inner.get(i..run_end).unwrap_or_default();
            wtf8.extend_from_slice(run.as_bytes());
            shown.push_str(run);
            i = run_end;
            continue;
        }
        let simple = match bytes.get(i + 1) {
            Some(b'"') => Some('"'),
            Some(b'\\') => Some('\\'),
            Some(b'/') => Some('/'),
            Some(b'b') => Some('\u{8}'),
            Some(b'f') => Some('\u{c}'),
            Some(b'n') => Some('\n'),
            Some(b'r') => Some('\r'),
            Some(b't') => Some('\t'),
            _ => None,
        };
        if let Some(c) = simple {
            wtf8.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
            shown.push(c);
            i += 2;
            continue;
        }
        let Some(unit) = unit_at(i + 2) else { break };
        i += 6;
        let low = (bytes.get(i..i + 2) == Some(b"\\u".as_slice()))
            .then(|| unit_at(i + 2))
            .flatten()
            .filter(|low| (0xDC00..0xE000).contains(low));
        let code = match low {
            Some(low) if (0xD800..0xDC00).contains(&unit) => {
                i += 6;
                0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00)
            }
            _ => unit,
        };
        match char::from_u32(code) {
            Some(c) => {
                wtf8.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
                shown.push(c);
            }
            None => {
                // A lone surrogate: its three-byte encoding, which no character has.
                wtf8.extend_from_slice(&[
                    0xE0 | (code >> 12) as u8,
                    0x80 | ((code >> 6) & 0x3F) as u8,
                    0x80 | (code & 0x3F) as u8,
                ]);
                shown.push('\u{fffd}');
            }
        }
    }
    (wtf8, shown)
}

/// A value Python reads that a `Value` cannot hold, found while building a member.
#[derive(Debug)]
struct Unrepresentable {
    /// Byte offset of the value in the member's text (document order decides which of
    /// several is reported).
    offset: usize,
    /// The path from the value up to the member (innermost segment first).
    path: Vec<Segment>,
    message: String,
}

#[derive(Debug)]
enum Segment {
    Key(String),
    Index(usize),
}

/// A container being built.
enum Frame {
    Array {
        items: Vec<Value>,
        bad: Option<Unrepresentable>,
    },
    Object {
        map: Map<String, Value>,
        /// The key whose value comes next: (decoded, identity, lone surrogate, offset).
        key: Option<(String, Vec<u8>, Option<u16>, usize)>,
        /// The values (by key identity) that hold something unrepresentable. A later
        /// duplicate key replaces its entry, as the value it held is gone.
        bad: HashMap<Vec<u8>, Unrepresentable>,
    },
}

impl Frame {
    /// Adds the next element, `value` (with what it holds that cannot be represented).
    fn add(&mut self, value: Value, bad: Option<Unrepresentable>) {
        match self {
            Frame::Array { items, bad: first } => {
                if let Some(mut b) = bad
                    && first.is_none()
                {
                    b.path.push(Segment::Index(items.len()));
                    *first = Some(b);
                }
                items.push(value);
            }
            Frame::Object { map, key, bad: bad_values } => {
                let Some((name, identity, lone, offset)) = key.take() else { return };
                if let Some(unit) = lone {
                    // The key itself cannot be represented, whatever its value.
                    let message = format!(
                        "a key with a lone surrogate \\u{unit:04x}: Python's json reads it, a \
                         Rust string cannot hold it"
                    );
                    let path = vec![Segment::Key(name)];
                    bad_values.insert(identity, Unrepresentable { offset, path, message });
                    return;
                }
                if !bad_values.is_empty() {
                    bad_values.remove(&identity);
                }
                if let Some(mut b) = bad {
                    b.path.push(Segment::Key(name.clone()));
                    bad_values.insert(identity, b);
                }
                map.insert(name, value);
            }
        }
    }

    /// The finished container and the first (in document order) unrepresentable value it
    /// still holds.
    fn close(self) -> (Value, Option<Unrepresentable>) {
        match self {
            Frame::Array { items, bad } => (Value::Array(items), bad),
            Frame::Object { map, bad, .. } => {
                (Value::Object(map), bad.into_values().min_by_key(|b| b.offset))
            }
        }
    }
}

/// Shows a long number token by its first digits.
fn shorten(token: &str) -> String {
    if token.len() <= 24 {
        return token.to_owned();
    }
    format!("{}... ({} characters)", &token[..20], token.len())
}

/// Reads a member's value text (checked by [`scan`], nested at most [`MAX_DEPTH`] levels)
/// that `serde_json` rejected: iteratively, token by token, converting each scalar with
/// `serde_json` where it can. Duplicate keys are resolved as in a `dict` before deciding
/// whether an unrepresentable value remains; the first one that does is the error.
fn build(text: &str) -> Result<Value, Problem> {
    let internal = |pos: usize| {
        Problem::new("", format!("unreadable JSON at byte {pos} of the experiment"))
            .deviation(Deviation::UnrepresentableValue)
    };
    let mut sc = Scanner::new(text);
    let mut frames: Vec<Frame> = Vec::new();
    // Reads `"key":` at the cursor.
    let read_key =
        |sc: &mut Scanner<'_>| -> Result<(String, Vec<u8>, Option<u16>, usize), Problem> {
            sc.skip_ws();
            let start = sc.pos;
            let info = sc.scan_string().map_err(|e| internal(e.pos))?;
            let (identity, name) = decode_string(&text[start..sc.pos], info);
            sc.expect_colon().map_err(|e| internal(e.pos))?;
            Ok((name, identity, info.lone, start))
        };
    loop {
        sc.skip_ws();
        let start = sc.pos;
        let bad =
            |message: String| Some(Unrepresentable { offset: start, path: Vec::new(), message });
        let (mut value, mut unrepresentable) = match sc.peek() {
            Some(b'{') => {
                sc.pos += 1;
                sc.skip_ws();
                if sc.peek() == Some(b'}') {
                    sc.pos += 1;
                    (Value::Object(Map::new()), None)
                } else {
                    let key = read_key(&mut sc)?;
                    frames.push(Frame::Object {
                        map: Map::new(),
                        key: Some(key),
                        bad: HashMap::new(),
                    });
                    continue;
                }
            }
            Some(b'[') => {
                sc.pos += 1;
                sc.skip_ws();
                if sc.peek() == Some(b']') {
                    sc.pos += 1;
                    (Value::Array(Vec::new()), None)
                } else {
                    frames.push(Frame::Array { items: Vec::new(), bad: None });
                    continue;
                }
            }
            Some(b'"') => {
                let info = sc.scan_string().map_err(|e| internal(e.pos))?;
                let token = &text[start..sc.pos];
                match (info.lone, serde_json::from_str::<String>(token)) {
                    (None, Ok(s)) => (Value::String(s), None),
                    (lone, _) => {
                        let unit = lone.unwrap_or(0xFFFD);
                        let message = format!(
                            "a string with a lone surrogate \\u{unit:04x}: Python's json reads \
                             it, a Rust string cannot hold it"
                        );
                        (Value::Null, bad(message))
                    }
                }
            }
            Some(b'N') if sc.rest().starts_with(b"NaN") => {
                sc.pos += 3;
                let message = "NaN: Python's json reads it as float('nan'), which a JSON value \
                               here cannot hold";
                (Value::Null, bad(message.into()))
            }
            Some(b'I' | b'-')
                if sc.rest().starts_with(b"Infinity") || sc.rest().starts_with(b"-Infinity") =>
            {
                let (token, float) = if sc.peek() == Some(b'-') {
                    ("-Infinity", "-inf")
                } else {
                    ("Infinity", "inf")
                };
                sc.pos += token.len();
                let message = format!(
                    "{token}: Python's json reads it as float('{float}'), which a JSON value \
                     here cannot hold"
                );
                (Value::Null, bad(message))
            }
            Some(b'-' | b'0'..=b'9') => {
                sc.scan_number().map_err(|e| internal(e.pos))?;
                let token = &text[start..sc.pos];
                match serde_json::from_str::<Value>(token) {
                    Ok(v) => (v, None),
                    Err(_) => {
                        let integer = !token.contains(['.', 'e', 'E']);
                        let reads = if integer {
                            "an int".to_owned()
                        } else if token.starts_with('-') {
                            "float('-inf')".to_owned()
                        } else {
                            "float('inf')".to_owned()
                        };
                        let message = format!(
                            "the number {} is beyond the range of a 64-bit float: Python's \
                             json reads it as {reads}, which a JSON value here cannot hold",
                            shorten(token)
                        );
                        (Value::Null, bad(message))
                    }
                }
            }
            Some(b't') if sc.rest().starts_with(b"true") => {
                sc.pos += 4;
                (Value::Bool(true), None)
            }
            Some(b'f') if sc.rest().starts_with(b"false") => {
                sc.pos += 5;
                (Value::Bool(false), None)
            }
            Some(b'n') if sc.rest().starts_with(b"null") => {
                sc.pos += 4;
                (Value::Null, None)
            }
            _ => return Err(internal(start)),
        };
        // Attach the value, closing every container that ends after it.
        loop {
            let Some(frame) = frames.last_mut() else {
                return match unrepresentable {
                    None => Ok(value),
                    Some(b) => Err(Problem::new(path_text(&b.path), b.message)
                        .deviation(Deviation::UnrepresentableValue)),
                };
            };
            frame.add(value, unrepresentable);
            sc.skip_ws();
            match sc.peek() {
                Some(b',') => {
                    sc.pos += 1;
                    if let Frame::Object { key, .. } = frame {
                        *key = Some(read_key(&mut sc)?);
                    }
                    break;
                }
                Some(b'}' | b']') => {
                    sc.pos += 1;
                    let Some(done) = frames.pop() else { return Err(internal(sc.pos)) };
                    (value, unrepresentable) = done.close();
                }
                _ => return Err(internal(sc.pos)),
            }
        }
    }
}

/// `experiment.variants[1].size` from segments listed innermost first.
fn path_text(path: &[Segment]) -> String {
    let mut out = String::new();
    for segment in path.iter().rev() {
        match segment {
            Segment::Key(k) if out.is_empty() => out.push_str(k),
            Segment::Key(k) => {
                out.push('.');
                out.push_str(k);
            }
            Segment::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// Drops a value of any depth without recursion (`Value`'s own `Drop` recurses once per
/// level, so a value built in code 100,000 levels deep would overflow the stack).
pub(crate) fn drop_deep(value: Value) {
    let mut stack = vec![value];
    while let Some(v) = stack.pop() {
        match v {
            Value::Array(items) => stack.extend(items),
            Value::Object(map) => stack.extend(map.into_iter().map(|(_, v)| v)),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(text: &str) -> Vec<(String, Result<Value, Problem>)> {
        let e = serde_json::from_str::<Value>("x").unwrap_err();
        match scan(text, e).unwrap() {
            Document::Object(ms) => {
                ms.iter().map(|m| (m.key.clone(), member_value(text, m))).collect()
            }
            Document::Other(t) => panic!("{t}"),
        }
    }

    #[test]
    fn keys_decode_like_python() {
        let (id1, shown) =
            decode_string(r#""a\ud800b""#, StrInfo { escaped: true, lone: Some(0xd800) });
        let (id2, _) =
            decode_string(r#""a\uD800b""#, StrInfo { escaped: true, lone: Some(0xd800) });
        assert_eq!(id1, id2);
        assert_eq!(id1, b"a\xed\xa0\x80b");
        assert_eq!(shown, "a\u{fffd}b");
        let (id, shown) = decode_string(
            r#""\ud83d\ude00\n\u00e9\udc00""#,
            StrInfo { escaped: true, lone: Some(0xdc00) },
        );
        assert_eq!(shown, "😀\né\u{fffd}");
        assert_eq!(&id[..id.len() - 3], "😀\né".as_bytes());
    }

    #[test]
    fn members_are_built_with_paths_and_dict_semantics() {
        let got = members(
            r#"{"a": {"x": [1, {"y": NaN}], "z": 1}, "b": {"k": NaN, "k": 2, "j": [Infinity]},
                "c": [1e400], "d": {"\udc00": 1}, "e": -0, "f": {"\ud800": 1, "\uD800": [2]}}"#,
        );
        let path = |i: usize| got[i].1.as_ref().unwrap_err().path.clone();
        assert_eq!(path(0), "x[1].y");
        assert_eq!(path(1), "j[0]");
        assert_eq!(path(2), "[0]");
        assert!(got[2].1.as_ref().unwrap_err().message.contains("1e400"));
        assert_eq!(path(3), "\u{fffd}");
        // Same as serde_json: `-0` is -0.0.
        assert_eq!(got[4].1.as_ref().unwrap(), &serde_json::json!(-0.0));
        assert_eq!(path(5), "\u{fffd}");
    }

    #[test]
    fn deep_members_build_iteratively() {
        let deep = format!(
            "{{\"a\": {}NaN{}, \"b\": {}1{}}}",
            "[".repeat(200),
            "]".repeat(200),
            "[".repeat(250),
            "]".repeat(250)
        );
        let got = members(&deep);
        assert_eq!(got[0].1.as_ref().unwrap_err().path, format!("{}", "[0]".repeat(200)));
        let b = got.into_iter().nth(1).unwrap().1.unwrap();
        assert!(!crate::py::nests_deeper_than(&b, 250) && crate::py::nests_deeper_than(&b, 249));
    }
}
