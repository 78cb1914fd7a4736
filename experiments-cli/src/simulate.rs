//! `experiments simulate`.

use std::path::Path;
use std::process::ExitCode;

use experiments::{Experiments, NoopSink, Value};
use indicatif::{ProgressBar, ProgressStyle};

use crate::config_and_inputs;
use crate::stats::chi_square;

/// Buckets `ids` synthetic ids and compares the shares with the configured sizes.
pub fn run(
    file: &Path,
    experiment: &str,
    args: &[String],
    ids: u64,
    prefix: &str,
    now: f64,
) -> ExitCode {
    let (config, mut inputs) = match config_and_inputs("simulate", file, args) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let exp = match config.get(experiment) {
        Some(Ok(e)) => e,
        Some(Err(e)) => {
            eprintln!("experiments simulate: {experiment} is invalid: {e}");
            return ExitCode::from(1);
        }
        None => {
            eprintln!("experiments simulate: no experiment {experiment:?} in {}", file.display());
            return ExitCode::from(1);
        }
    };
    let field = config.bucketing_field(experiment, now).unwrap_or("user_id").to_owned();
    inputs.insert(field.clone(), "");
    let names: Vec<String> = exp.variant_names().into_iter().map(str::to_owned).collect();
    let mut counts = vec![0u64; names.len() + 1];
    let mut errors = 0u64;
    let bar = (ids >= 200_000).then(|| {
        let b = ProgressBar::new(ids);
        if let Ok(style) =
            ProgressStyle::with_template("{bar:40} {pos}/{len} ids {per_sec} eta {eta}")
        {
            b.set_style(style);
        }
        b
    });
    let mut id = String::new();
    for i in 0..ids {
        id.clear();
        id.push_str(prefix);
        id.push_str(&i.to_string());
        if let Some(Value::String(slot)) = inputs.get_mut(&field) {
            slot.clone_from(&id);
        }
        let mut client = Experiments::new(&config, now, NoopSink);
        match client.variant(experiment, &inputs, Some(false)) {
            Ok(Some(v)) => match names.iter().position(|n| n == v) {
                Some(p) => counts[p] += 1,
                None => counts[names.len()] += 1,
            },
            Ok(None) => counts[names.len()] += 1,
            Err(_) => errors += 1,
        }
        if let Some(b) = &bar
            && i % 10_000 == 0
        {
            b.set_position(i);
        }
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let n = ids.max(1) as f64;
    let shares = exp.expected_shares();
    println!(
        "{experiment}: {ids} ids ({prefix}0 .. {prefix}{}), bucketed on {field}",
        ids.saturating_sub(1)
    );
    println!("{:<24} {:>10} {:>9} {:>10}", "variant", "count", "share", "configured");
    let mut expected = Vec::new();
    for (i, name) in names.iter().enumerate().chain([(names.len(), &"none".to_owned())]) {
        let configured = match (&shares, i < names.len()) {
            (Some(s), true) => s.get(i).map(|(_, f)| *f),
            (Some(s), false) => Some(1.0 - s.iter().map(|(_, f)| f).sum::<f64>()),
            (None, _) => None,
        };
        expected.push(configured.unwrap_or(0.0) * n);
        let shown = configured.map_or_else(|| "-".to_owned(), |c| format!("{:.4}%", c * 100.0));
        println!(
            "{name:<24} {:>10} {:>8.4}% {:>10}",
            counts[i],
            counts[i] as f64 / n * 100.0,
            shown
        );
    }
    if errors > 0 {
        println!("errors: {errors} calls raised");
    }
    if shares.is_some() {
        let observed: Vec<f64> = counts.iter().map(|c| *c as f64).collect();
        let (stat, df, p) = chi_square(&observed, &expected);
        println!("chi-square {stat:.3} with {df} degrees of freedom: p = {p:.4}");
        if p < 0.001 {
            println!(
                "note: shares differ from the configured sizes (targeting, overrides, or a time window?)"
            );
        }
    }
    ExitCode::SUCCESS
}
