//! `experiments check`.

use std::io::{self, Write};
use std::process::ExitCode;

use experiments_sdk::core::{Config, ValidationError, ValidationReport};
use serde_json::json;

use crate::{ConfigFile, Format, Out, complain, emit};

/// Validates `file` at `now` and prints the report: one line per experiment in file order
/// with its warnings under it (text), or one JSON document. Exit status 0 when every
/// experiment is valid, 1 when some are not, 2 when the file is unusable. Linear in the
/// number of experiments (plus a sort of the invalid ones' names).
pub fn run(file: &ConfigFile<'_>, now: f64, format: Format) -> ExitCode {
    let config = match file.config() {
        Ok(c) => c,
        Err(e) => {
            complain("check", e);
            return ExitCode::from(2);
        }
    };
    let report = config.report(now);
    let status = if report.invalid.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(1) };
    emit("check", status, |out| match format {
        Format::Json => write_json(out, &config, &report, now),
        Format::Text => write_text(out, &config, &report, now),
    })
}

/// The invalid experiments by name: sorted once, each name's first error found by binary
/// search, so matching every experiment with its error is n·log n rather than a scan of
/// the errors per experiment.
struct ErrorsByName<'r>(Vec<(&'r str, &'r ValidationError)>);

impl<'r> ErrorsByName<'r> {
    fn new(invalid: &'r [ValidationError]) -> Self {
        let mut by_name: Vec<(&str, &ValidationError)> =
            invalid.iter().map(|e| (e.experiment.as_str(), e)).collect();
        // Stable: among errors of one name, the first in file order stays first.
        by_name.sort_by(|a, b| a.0.cmp(b.0));
        by_name.dedup_by(|later, first| later.0 == first.0);
        ErrorsByName(by_name)
    }

    fn get(&self, name: &str) -> Option<&'r ValidationError> {
        self.0.binary_search_by(|(n, _)| (*n).cmp(name)).ok().map(|i| self.0[i].1)
    }
}

/// One line per experiment (valid, or INVALID with the path, the message and a deliberate
/// deviation when there is one), its warnings indented under it, then the totals.
fn write_text(
    out: &mut Out,
    config: &Config,
    report: &ValidationReport,
    now: f64,
) -> io::Result<()> {
    let errors = ErrorsByName::new(&report.invalid);
    let mut warnings = 0usize;
    // `names()` and `entries()` are both in file order, one entry per key.
    for (name, entry) in config.names().zip(config.entries()) {
        match errors.get(name) {
            Some(e) => {
                write!(out, "{name}: INVALID: {}: {}", e.path, e.message)?;
                if let Some(d) = e.deviation {
                    write!(out, " [deliberate deviation: {}]", d.label())?;
                }
                writeln!(out)?;
            }
            None => writeln!(out, "{name}: valid")?,
        }
        if let Ok(exp) = entry {
            for w in exp.lint(now) {
                writeln!(out, "  warning: {w}")?;
                warnings += 1;
            }
        }
    }
    writeln!(
        out,
        "{} experiments: {} valid, {} invalid, {warnings} warnings",
        report.experiments,
        report.valid,
        report.invalid.len(),
    )
}

/// `{"experiments", "valid", "invalid": [{"name", "error"}], "warnings": [{"name",
/// "warning", "code"}]}` on one line, invalid and warnings in file order (`code` is the
/// warning's stable [`LintWarning::code`](experiments_sdk::core::LintWarning::code)). Streamed
/// item by item: no document tree of the whole report is built.
fn write_json(
    out: &mut Out,
    config: &Config,
    report: &ValidationReport,
    now: f64,
) -> io::Result<()> {
    write!(out, r#"{{"experiments":{},"valid":{},"invalid":["#, report.experiments, report.valid)?;
    for (i, e) in report.invalid.iter().enumerate() {
        if i > 0 {
            out.write_all(b",")?;
        }
        let error = format!("{}: {}", e.path, e.message);
        serde_json::to_writer(&mut *out, &json!({"name": e.experiment, "error": error}))?;
    }
    out.write_all(br#"],"warnings":["#)?;
    let mut first = true;
    for exp in config.entries().flatten() {
        for w in exp.lint(now) {
            if !std::mem::take(&mut first) {
                out.write_all(b",")?;
            }
            let warning = json!({"name": exp.key(), "warning": w.to_string(), "code": w.code()});
            serde_json::to_writer(&mut *out, &warning)?;
        }
    }
    out.write_all(b"]}\n")
}
