//! `experiments check`.

use std::path::Path;
use std::process::ExitCode;

use serde_json::json;

use crate::{Format, load_config};

/// Validates `file` at `now` and prints the report.
pub fn run(file: &Path, now: f64, format: Format) -> ExitCode {
    let config = match load_config(file) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("experiments check: {e}");
            return ExitCode::from(2);
        }
    };
    let report = config.report(now);
    let mut warnings: Vec<(String, String)> = Vec::new();
    for exp in config.entries().flatten() {
        for w in exp.warnings(now) {
            warnings.push((exp.key().to_owned(), w));
        }
    }
    match format {
        Format::Json => {
            let doc = json!({
                "experiments": report.experiments,
                "valid": report.valid,
                "invalid": report.invalid.iter().map(|e| json!({"name": e.experiment, "error": format!("{}: {}", e.path, e.message)})).collect::<Vec<_>>(),
                "warnings": warnings.iter().map(|(n, w)| json!({"name": n, "warning": w})).collect::<Vec<_>>(),
            });
            println!("{doc}");
        }
        Format::Text => {
            for name in config.names() {
                match report.invalid.iter().find(|e| e.experiment == name) {
                    Some(e) => {
                        let deviation = e
                            .deviation
                            .map(|d| format!(" [deliberate deviation: {}]", d.label()))
                            .unwrap_or_default();
                        println!("{name}: INVALID: {}: {}{deviation}", e.path, e.message);
                    }
                    None => println!("{name}: valid"),
                }
                for (_, w) in warnings.iter().filter(|(n, _)| n == name) {
                    println!("  warning: {w}");
                }
            }
            println!(
                "{} experiments: {} valid, {} invalid, {} warnings",
                report.experiments,
                report.valid,
                report.invalid.len(),
                warnings.len()
            );
        }
    }
    if report.invalid.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(1) }
}
