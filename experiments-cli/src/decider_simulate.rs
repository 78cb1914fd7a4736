//! `experiments simulate` on a reddit-decider document.

use std::fmt::Write as _;
use std::io::{self, Write};
use std::process::ExitCode;

use experiments_decider::{Context, Feature, Manifest, StringField};
use serde_json::{Map, Value};

use crate::decider_doc::{DeciderDoc, context_object};
use crate::simulate::{Slots, progress};
use crate::stats::chi_square;
use crate::{ConfigFile, Out, complain, emit};

/// Decides `ids` synthetic ids (`prefix` followed by a counter) through `Manifest::choose` and
/// compares each variant's share with what its range gives, holdouts and mutually exclusive
/// groups included: an id held out, or whose group chose another feature, gets no variant.
/// Every bucketing field of the feature and its parents gets the id; the other `KEY=VALUE`
/// arguments are fixed context. Expected shares are the buckets each variant wins (first
/// match) times the share of ids the parents let through, when the parents' effect is
/// computable from their ranges (no targeting or overrides, no parent reached twice); when it
/// is not, only the distribution among ids that got a variant is compared, and the output says
/// so. Exit status 1 when the feature is unknown or has no variants to simulate, 2 when the
/// file or the arguments are unusable. The work per id is one decision and one binary search
/// among the variant names.
pub fn run(
    file: &ConfigFile<'_>,
    feature: &str,
    args: &[String],
    ids: u64,
    prefix: &str,
) -> ExitCode {
    let doc = match DeciderDoc::load_or_exit("simulate", file) {
        Ok(d) => d,
        Err(code) => return code,
    };
    let mut ctx = match context_object(args)
        .and_then(|o| Context::from_json(&o).map_err(|e| e.to_string()))
    {
        Ok(c) => c,
        Err(e) => {
            complain("simulate", e);
            return ExitCode::from(2);
        }
    };
    let manifest = &doc.manifest;
    let Some(f) = manifest.feature(feature) else {
        complain("simulate", format_args!("no feature {feature:?} in {}", file.path.display()));
        return ExitCode::from(1);
    };
    if !f.is_range() {
        complain("simulate", format_args!("{feature} is a dynamic config: it has no variants"));
        return ExitCode::from(1);
    }
    let mut fields: Vec<Slot> = Vec::new();
    for name in bucketing_fields(manifest, f) {
        match Slot::of(&name) {
            Some(slot) => fields.push(slot),
            None => {
                complain(
                    "simulate",
                    format_args!("cannot simulate bucketing on the boolean field {name}"),
                );
                return ExitCode::from(1);
            }
        }
    }
    let names: Vec<String> = f.variants().iter().map(|v| v.name().to_owned()).collect();
    let slots = Slots::new(&names);
    let mut counts = vec![0u64; names.len() + 1];
    let (mut errors, mut first_error) = (0u64, None);
    let bar = progress(ids);
    let mut id = String::new();
    for i in 0..ids {
        id.clear();
        // Writing into a String cannot fail.
        let _ = write!(id, "{prefix}{i}");
        for slot in &fields {
            slot.set(&mut ctx, &id, i);
        }
        match manifest.choose(feature, &ctx) {
            Ok(d) => match d.variant() {
                Some(v) => counts[slots.get(v).unwrap_or(names.len())] += 1,
                None => counts[names.len()] += 1,
            },
            Err(e) => {
                errors += 1;
                first_error.get_or_insert_with(|| e.to_string());
            }
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
    // Each row's expected share of the buckets, a name's duplicates counted in its first row.
    let mut buckets = vec![0.0f64; names.len()];
    for (v, c) in f.bucket_counts().into_iter().enumerate() {
        buckets[slots.get(&names[v]).unwrap_or(v)] += f64::from(c) / 1000.0;
    }
    let through = if f.enabled() {
        pass_rate(manifest, &doc.document, f, &mut Vec::new())
    } else {
        Some(0.0)
    };
    let report = Report {
        feature: f,
        ids,
        prefix,
        fields: fields.iter().map(Slot::name).collect(),
        names: &names,
        buckets,
        through,
    };
    let errors = (errors, first_error);
    emit("simulate", ExitCode::SUCCESS, |out| report.write(out, &counts, &errors))
}

/// The bucketing fields of a feature and of every parent it reaches (each once, the
/// feature's first): the synthetic id goes into each.
fn bucketing_fields(manifest: &Manifest, f: &Feature) -> Vec<String> {
    let mut fields: Vec<String> = Vec::new();
    let mut todo = vec![f];
    // The parent tree is bounded (`MAX_PARENT_TREE`), so this walk is short.
    while let Some(f) = todo.pop() {
        if f.is_range() && !fields.iter().any(|b| b == f.bucket_val()) {
            fields.push(f.bucket_val().to_owned());
        }
        todo.extend(manifest.meg_parent(f));
        todo.extend(manifest.holdout_parent(f));
    }
    fields
}

/// Where a synthetic id goes in the context.
enum Slot {
    /// A typed string field.
    Str(StringField),
    /// `build_number` (the counter, while it fits an `i32`).
    BuildNumber,
    /// `cookie_created_timestamp` (the counter).
    CookieCreatedTimestamp,
    /// `other_fields[name]` (the id as a string).
    Other(String),
}

impl Slot {
    /// The slot of a field name; `None` for the two boolean fields, which cannot hold ids.
    fn of(name: &str) -> Option<Slot> {
        Some(match name {
            "user_is_employee" | "logged_in" => return None,
            "build_number" => Slot::BuildNumber,
            "cookie_created_timestamp" => Slot::CookieCreatedTimestamp,
            _ => match StringField::ALL.iter().find(|f| f.name() == name) {
                Some(f) => Slot::Str(*f),
                None => Slot::Other(name.to_owned()),
            },
        })
    }

    fn name(&self) -> &str {
        match self {
            Slot::Str(f) => f.name(),
            Slot::BuildNumber => "build_number",
            Slot::CookieCreatedTimestamp => "cookie_created_timestamp",
            Slot::Other(name) => name,
        }
    }

    /// Puts id number `i` (`id` as text) into the slot, reusing its allocation.
    fn set(&self, ctx: &mut Context, id: &str, i: u64) {
        match self {
            Slot::Str(f) => ctx.set_string(*f, id),
            Slot::BuildNumber => ctx.set_build_number(i32::try_from(i).ok()),
            Slot::CookieCreatedTimestamp => ctx.set_cookie_created_timestamp(i64::try_from(i).ok()),
            Slot::Other(name) => ctx.set_other_str(name, id),
        }
    }
}

/// The share of ids a feature's parents let reach its bucketing, when it follows from the
/// ranges alone: each holdout lets through all but its `holdout` variant's buckets, each
/// group only its variant named like the feature, both times what their own parents let
/// through (decisions of different features hash different seeds, so they are independent).
/// `None` when a parent has targeting or overrides (what they do depends on the context), or
/// when one feature is reached twice (its two uses are not independent). `path` holds the
/// config keys already reached.
fn pass_rate<'m>(
    manifest: &'m Manifest,
    document: &Map<String, Value>,
    f: &'m Feature,
    path: &mut Vec<&'m str>,
) -> Option<f64> {
    let mut rate = 1.0;
    if let Some(h) = manifest.holdout_parent(f) {
        rate *= 1.0 - share_of(manifest, document, h, "holdout", path)?;
    }
    if let Some(m) = manifest.meg_parent(f) {
        rate *= share_of(manifest, document, m, f.name(), path)?;
    }
    Some(rate)
}

/// The share of ids whose decision of `parent` is `variant` (see [`pass_rate`]).
fn share_of<'m>(
    manifest: &'m Manifest,
    document: &Map<String, Value>,
    parent: &'m Feature,
    variant: &str,
    path: &mut Vec<&'m str>,
) -> Option<f64> {
    // A disabled parent or a dynamic config never has a variant, whatever the context.
    if !parent.enabled() || !parent.is_range() {
        return Some(0.0);
    }
    if path.contains(&parent.key()) || conditional(document, parent) {
        return None;
    }
    path.push(parent.key());
    let through = pass_rate(manifest, document, parent, path)?;
    let won: u32 = parent
        .variants()
        .iter()
        .zip(parent.bucket_counts())
        .filter(|(v, _)| v.name() == variant)
        .map(|(_, c)| u32::from(c))
        .sum();
    Some(through * f64::from(won) / 1000.0)
}

/// Whether an entry's decision depends on the context beyond its bucketing field: it has a
/// targeting tree or an override.
fn conditional(document: &Map<String, Value>, f: &Feature) -> bool {
    let Some(x) = document.get(f.key()).and_then(|e| e.get("experiment")) else {
        return false;
    };
    let targeting = x.get("targeting").is_some_and(|t| !t.is_null());
    let overrides = x
        .get("overrides")
        .and_then(Value::as_array)
        .is_some_and(|o| o.iter().any(|m| m.as_object().is_some_and(|m| !m.is_empty())));
    targeting || overrides
}

/// What the table describes.
struct Report<'a> {
    feature: &'a Feature,
    ids: u64,
    prefix: &'a str,
    fields: Vec<&'a str>,
    names: &'a [String],
    /// Each row's share of the buckets (first match; duplicates in the name's first row).
    buckets: Vec<f64>,
    /// The share of ids the parents let reach bucketing, when computable.
    through: Option<f64>,
}

impl Report<'_> {
    /// The table (one row per variant, then "no variant": count, observed share, configured
    /// range, expected share), the errors, and the chi-square fit.
    fn write(
        &self,
        out: &mut Out,
        counts: &[u64],
        errors: &(u64, Option<String>),
    ) -> io::Result<()> {
        let (names, ids, prefix) = (self.names, self.ids, self.prefix);
        let n = ids.max(1) as f64;
        writeln!(
            out,
            "{}: {ids} ids ({prefix}0 .. {prefix}{}), bucketed on {}",
            self.feature.name(),
            ids.saturating_sub(1),
            self.fields.join(", ")
        )?;
        let with_variant: u64 = counts[..names.len()].iter().sum();
        let total_buckets: f64 = self.buckets.iter().sum();
        // Expected counts: of all ids when the parents' effect is known, else of the ids that
        // got a variant, spread as the buckets are.
        let (expected, none_expected): (Vec<f64>, Option<f64>) = match self.through {
            Some(t) => (
                self.buckets.iter().map(|b| b * t * n).collect(),
                Some((1.0 - total_buckets * t).max(0.0) * n),
            ),
            None if total_buckets > 0.0 => (
                self.buckets.iter().map(|b| b / total_buckets * with_variant as f64).collect(),
                None,
            ),
            None => (vec![0.0; names.len()], None),
        };
        match self.through {
            Some(t) if t < 1.0 => writeln!(
                out,
                "parents let {:.4}% of ids through: expected shares include them",
                t * 100.0
            )?,
            Some(_) => {}
            None => writeln!(
                out,
                "note: what the parents let through depends on their targeting or overrides (or \
                 a parent is reached twice): comparing only the distribution among the \
                 {with_variant} ids that got a variant (expected: the share among them)"
            )?,
        }
        writeln!(
            out,
            "{:<24} {:>10} {:>9} {:>16} {:>10}",
            "variant", "count", "share", "range", "expected"
        )?;
        let ranges = self.feature.variants().iter().map(|v| {
            let (start, end) = v.range();
            format!("[{start}, {end})")
        });
        let rows =
            names.iter().map(String::as_str).zip(ranges.map(Some)).chain([("no variant", None)]);
        for (i, ((name, range), count)) in rows.zip(counts).enumerate() {
            let expect = if i < names.len() { Some(expected[i]) } else { none_expected };
            let expect = match (expect, self.through) {
                (Some(e), Some(_)) => format!("{:.4}%", e / n * 100.0),
                (Some(_), None) if total_buckets > 0.0 => {
                    format!("{:.4}%", self.buckets[i] / total_buckets * 100.0)
                }
                _ => "-".to_owned(),
            };
            writeln!(
                out,
                "{name:<24} {count:>10} {:>8.4}% {:>16} {expect:>10}",
                *count as f64 / n * 100.0,
                range.as_deref().unwrap_or("-"),
            )?;
        }
        if errors.0 > 0 {
            write!(out, "errors: {} calls raised", errors.0)?;
            if let Some(first) = &errors.1 {
                write!(out, " (the first: {first})")?;
            }
            writeln!(out)?;
        }
        let mut observed: Vec<f64> = counts[..names.len()].iter().map(|c| *c as f64).collect();
        let mut expected = expected;
        if let Some(e) = none_expected {
            observed.push(counts[names.len()] as f64);
            expected.push(e);
        }
        let (stat, df, p) = chi_square(&observed, &expected);
        writeln!(out, "chi-square {stat:.3} with {df} degrees of freedom: p = {p:.4}")?;
        if p < 0.001 {
            writeln!(
                out,
                "note: shares differ from the configured ranges (targeting, overrides, or the \
                 context's fields?)"
            )?;
        }
        Ok(())
    }
}
