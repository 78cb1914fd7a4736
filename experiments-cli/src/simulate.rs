//! `experiments simulate`.

use std::fmt::Write as _;
use std::io::{self, Write};
use std::process::ExitCode;

use experiments_sdk::core::{Experiments, NoopHandler};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::Value;

use crate::stats::chi_square;
use crate::{ConfigFile, Out, complain, config_and_inputs, emit};

/// Buckets `ids` synthetic ids (`prefix` followed by a counter) through the real client and
/// compares each variant's share with its configured size (chi-square fit). Exit status 1
/// when the experiment is unknown or invalid, 2 when the file or inputs are unusable.
/// Beyond evaluating each id, the work per id is one binary search among the variant names;
/// the configured shares are computed once, in O(v log v) for v variants.
pub fn run(
    file: &ConfigFile<'_>,
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
            complain("simulate", format_args!("{experiment} is invalid: {e}"));
            return ExitCode::from(1);
        }
        None => {
            complain(
                "simulate",
                format_args!("no experiment {experiment:?} in {}", file.path.display()),
            );
            return ExitCode::from(1);
        }
    };
    let field = config.bucketing_field(experiment, now).unwrap_or("user_id").to_owned();
    inputs.insert(field.clone(), "");
    let names: Vec<String> = exp.variant_names().into_iter().map(str::to_owned).collect();
    let slots = Slots::new(&names);
    let mut counts = vec![0u64; names.len() + 1];
    let mut errors = 0u64;
    let bar = progress(ids);
    let mut id = String::new();
    for i in 0..ids {
        id.clear();
        // Writing into a String cannot fail.
        let _ = write!(id, "{prefix}{i}");
        if let Some(Value::String(slot)) = inputs.get_mut(&field) {
            slot.clone_from(&id);
        }
        let mut client = Experiments::new(&config, now, NoopHandler);
        match client.variant(experiment, &inputs, Some(false)) {
            Ok(Some(v)) => counts[slots.get(v).unwrap_or(names.len())] += 1,
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
    let shares = exp.expected_shares();
    let report = Report { experiment, ids, prefix, field: &field, names: &names };
    emit("simulate", ExitCode::SUCCESS, |out| report.write(out, &counts, errors, shares.as_deref()))
}

/// A progress bar on standard error for long runs (200,000 ids or more), else none.
pub(crate) fn progress(ids: u64) -> Option<ProgressBar> {
    (ids >= 200_000).then(|| {
        let b = ProgressBar::new(ids);
        if let Ok(style) =
            ProgressStyle::with_template("{bar:40} {pos}/{len} ids {per_sec} eta {eta}")
        {
            b.set_style(style);
        }
        b
    })
}

/// Each variant name's first position, sorted by name: a chosen variant's row is found by
/// binary search, whatever the number of variants.
pub(crate) struct Slots<'a>(Vec<(&'a str, usize)>);

impl<'a> Slots<'a> {
    pub(crate) fn new(names: &'a [String]) -> Self {
        let mut slots: Vec<(&str, usize)> = names.iter().map(String::as_str).zip(0..).collect();
        // Sorted by (name, position): a name's first position comes first and is kept.
        slots.sort_unstable();
        slots.dedup_by(|later, first| later.0 == first.0);
        Slots(slots)
    }

    /// The first row of `name`, if it is one of the variants.
    pub(crate) fn get(&self, name: &str) -> Option<usize> {
        self.0.binary_search_by(|(n, _)| (*n).cmp(name)).ok().map(|i| self.0[i].1)
    }
}

/// What the table describes.
struct Report<'a> {
    experiment: &'a str,
    ids: u64,
    prefix: &'a str,
    field: &'a str,
    names: &'a [String],
}

impl Report<'_> {
    /// The table (one row per variant, then "none": count, observed share, configured
    /// share), the error count, and the chi-square fit when the shares are known.
    fn write(
        &self,
        out: &mut Out,
        counts: &[u64],
        errors: u64,
        shares: Option<&[(String, f64)]>,
    ) -> io::Result<()> {
        let (names, ids, prefix) = (self.names, self.ids, self.prefix);
        let n = ids.max(1) as f64;
        writeln!(
            out,
            "{}: {ids} ids ({prefix}0 .. {prefix}{}), bucketed on {}",
            self.experiment,
            ids.saturating_sub(1),
            self.field
        )?;
        writeln!(out, "{:<24} {:>10} {:>9} {:>10}", "variant", "count", "share", "configured")?;
        // What no variant gets, computed once (never below zero: the variants' buckets are
        // disjoint, only rounding could make their shares sum past 1).
        let unassigned = shares.map(|s| (1.0 - s.iter().map(|(_, f)| f).sum::<f64>()).max(0.0));
        let mut expected = Vec::with_capacity(counts.len());
        let rows = names.iter().map(String::as_str).chain(["none"]);
        for (i, (name, count)) in rows.zip(counts).enumerate() {
            let configured = match shares {
                Some(s) if i < names.len() => s.get(i).map(|(_, f)| *f),
                _ => unassigned,
            };
            expected.push(configured.unwrap_or(0.0) * n);
            write!(out, "{name:<24} {count:>10} {:>8.4}% ", *count as f64 / n * 100.0)?;
            match configured {
                Some(c) => writeln!(out, "{:>10}", format!("{:.4}%", c * 100.0))?,
                None => writeln!(out, "{:>10}", "-")?,
            }
        }
        if errors > 0 {
            writeln!(out, "errors: {errors} calls raised")?;
        }
        if shares.is_some() {
            let observed: Vec<f64> = counts.iter().map(|c| *c as f64).collect();
            let (stat, df, p) = chi_square(&observed, &expected);
            writeln!(out, "chi-square {stat:.3} with {df} degrees of freedom: p = {p:.4}")?;
            if p < 0.001 {
                writeln!(
                    out,
                    "note: shares differ from the configured sizes (targeting, overrides, or a time window?)"
                )?;
            }
        }
        Ok(())
    }
}
