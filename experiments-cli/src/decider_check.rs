//! `experiments check` on a reddit-decider document.

use std::collections::{HashMap, HashSet};
use std::io::{self, Write};
use std::process::ExitCode;

use experiments_decider::{DeciderWarning, Deviation, EntryError};
use serde_json::json;

use crate::decider_doc::DeciderDoc;
use crate::{ConfigFile, Format, Out, emit};

/// Validates a decider document and prints the report: one line per entry in file order
/// (valid, or INVALID under the key `Manifest::errors` uses, which is the reference's: the
/// config key for shape errors, the `name` for conversion errors) with its warnings
/// (`Manifest::lint`, load warnings included) under it (text), or one JSON document. Exit
/// status 0 when every entry loads, 1 when some do not, 2 when nothing can load (unreadable,
/// not a JSON object, a malformed `$override_groups`). Linear in the size of the document.
pub fn run(file: &ConfigFile<'_>, format: Format) -> ExitCode {
    let doc = match DeciderDoc::load_or_exit("check", file) {
        Ok(d) => d,
        Err(code) => return code,
    };
    let lint = doc.manifest.lint(&doc.document);
    let report = Report::new(&doc, &lint);
    let status = if report.invalid == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) };
    emit("check", status, |out| match format {
        Format::Json => report.write_json(out),
        Format::Text => report.write_text(out),
    })
}

/// One line of the report.
struct Row<'a> {
    /// The key it is reported under: the config key, or the `name` a conversion error is
    /// keyed by.
    label: &'a str,
    /// Why the entry did not load (`None`: it loaded).
    error: Option<&'a EntryError>,
    /// The warnings about the entry (with the config key they are about), in the lint's
    /// order.
    warnings: Vec<&'a (String, DeciderWarning)>,
}

/// Every entry's status and warnings, in file order.
struct Report<'a> {
    rows: Vec<Row<'a>>,
    /// Warnings about config keys no row stands for (none for a well-formed document).
    stray: Vec<(&'a str, &'a DeciderWarning)>,
    valid: usize,
    invalid: usize,
    warnings: usize,
}

impl<'a> Report<'a> {
    /// Walks the document once: an entry that loaded is valid; one whose config key has an
    /// error is invalid under that key; one whose `name` has an error (conversion errors,
    /// failed parents, cycles) is invalid under its name. Errors no entry matched come last.
    fn new(doc: &'a DeciderDoc, lint: &'a [(String, DeciderWarning)]) -> Report<'a> {
        let errors = doc.manifest.errors();
        let mut by_key: HashMap<&str, Vec<&(String, DeciderWarning)>> = HashMap::new();
        for w in lint {
            by_key.entry(w.0.as_str()).or_default().push(w);
        }
        let mut rows = Vec::new();
        let mut reported: HashSet<&str> = HashSet::new();
        let mut row = |label: &'a str, error, key: &str| {
            let warnings = by_key.remove(key).unwrap_or_default();
            Row { label, error, warnings }
        };
        for (key, entry) in &doc.document {
            if key == "$override_groups" {
                continue;
            }
            if let Some((label, e)) = errors.get_key_value(key) {
                reported.insert(label);
                rows.push(row(label, Some(e), key));
            } else if doc.manifest.feature_by_key(key).is_some() {
                rows.push(row(key, None, key));
            } else if let Some((label, e)) = entry
                .get("name")
                .and_then(|n| n.as_str())
                .and_then(|n| errors.get_key_value(n))
                .filter(|(label, _)| !reported.contains(label.as_str()))
            {
                reported.insert(label);
                rows.push(row(label, Some(e), key));
            }
        }
        for (label, e) in errors {
            if !reported.contains(label.as_str()) {
                rows.push(row(label, Some(e), ""));
            }
        }
        // What no row took, in the lint's (document) order.
        let stray = lint
            .iter()
            .filter(|(key, _)| by_key.contains_key(key.as_str()))
            .map(|(key, w)| (key.as_str(), w))
            .collect();
        let invalid = errors.len();
        let valid = rows.iter().filter(|r| r.error.is_none()).count();
        Report { rows, stray, valid, invalid, warnings: lint.len() }
    }

    /// `KEY: valid` or `KEY: INVALID: ERROR [deliberate deviation: ...]`, the warnings
    /// indented under it, then the totals: the layout of baseplate's report.
    fn write_text(&self, out: &mut Out) -> io::Result<()> {
        for row in &self.rows {
            match row.error {
                Some(e) => {
                    write!(out, "{}: INVALID: {e}", row.label)?;
                    if let Some(d) = e.deviation() {
                        write!(out, " [deliberate deviation: {}]", deviation_label(d))?;
                    }
                    writeln!(out)?;
                }
                None => writeln!(out, "{}: valid", row.label)?,
            }
            for (_, w) in &row.warnings {
                writeln!(out, "  warning: {w}")?;
            }
        }
        for (key, w) in &self.stray {
            writeln!(out, "{key}: warning: {w}")?;
        }
        writeln!(
            out,
            "{} entries: {} valid, {} invalid, {} warnings",
            self.valid + self.invalid,
            self.valid,
            self.invalid,
            self.warnings
        )
    }

    /// `{"dialect": "decider", "entries", "valid": [keys], "invalid": [{"key", "error"}],
    /// "warnings": [{"key", "warning", "code"}]}` on one line, in file order (`code` is the
    /// warning's stable `DeciderWarning::code`). Streamed item by item.
    fn write_json(&self, out: &mut Out) -> io::Result<()> {
        write!(out, r#"{{"dialect":"decider","entries":{},"valid":["#, self.valid + self.invalid)?;
        let mut first = true;
        for row in self.rows.iter().filter(|r| r.error.is_none()) {
            if !std::mem::take(&mut first) {
                out.write_all(b",")?;
            }
            serde_json::to_writer(&mut *out, row.label)?;
        }
        out.write_all(br#"],"invalid":["#)?;
        let mut first = true;
        for row in &self.rows {
            let Some(e) = row.error else { continue };
            if !std::mem::take(&mut first) {
                out.write_all(b",")?;
            }
            serde_json::to_writer(&mut *out, &json!({"key": row.label, "error": e.to_string()}))?;
        }
        out.write_all(br#"],"warnings":["#)?;
        let all = self.rows.iter().flat_map(|r| r.warnings.iter().map(|(k, w)| (k.as_str(), w)));
        for (i, (key, w)) in all.chain(self.stray.iter().copied()).enumerate() {
            if i > 0 {
                out.write_all(b",")?;
            }
            let warning = json!({"key": key, "warning": w.to_string(), "code": w.code()});
            serde_json::to_writer(&mut *out, &warning)?;
        }
        out.write_all(b"]}\n")
    }
}

/// What the reference does instead of rejecting the entry (the two deliberate deviations).
fn deviation_label(d: Deviation) -> &'static str {
    match d {
        Deviation::ArrayValue => "the reference panics and loads nothing",
        Deviation::Cycle => "the reference overflows its stack",
        _ => "the reference crashes",
    }
}
