//! `experiments eval` on a reddit-decider document.

use std::io::{self, Write};
use std::process::ExitCode;

use experiments_decider::{
    Context, DecideError, Decision, EventStamp, FeatureKind, Observer, ParentEffect, Step, Uuid,
};
use serde_json::{Value, json};

use crate::decider_doc::{DeciderDoc, context_object, exception};
use crate::{ConfigFile, Format, Out, complain, emit};

/// Decides one feature for the `KEY=VALUE` context (`Manifest::choose_traced`) and prints the
/// variant, a dynamic config's value, every event (decision kind, exposure key, legacy string
/// and the v2 JSON, stamped at `now` in milliseconds with a fresh UUID per event and one
/// fallback correlation id per decision) and, with `explain`, every step: overrides,
/// targeting, each holdout and group parent with its own steps, the bucket. Exit status 1
/// where the reference raises (unknown feature, context type errors, missing bucketing
/// field), with its exception class; 2 when the file or the arguments are unusable.
pub fn run(
    file: &ConfigFile<'_>,
    feature: &str,
    args: &[String],
    now: f64,
    explain: bool,
    format: Format,
) -> ExitCode {
    let doc = match DeciderDoc::load_or_exit("eval", file) {
        Ok(d) => d,
        Err(code) => return code,
    };
    let object = match context_object(args) {
        Ok(o) => o,
        Err(e) => {
            complain("eval", e);
            return ExitCode::from(2);
        }
    };
    // The context first, as the reference builds it (`make_ctx`) before looking the
    // feature up.
    let ctx = match Context::from_json(&object) {
        Ok(c) => c,
        Err(e) => return error(feature, &DecideError::from(e), format),
    };
    let mut trace = Trace::default();
    let decision = match doc.manifest.choose_traced(feature, &ctx, &mut trace) {
        Ok(d) => d,
        Err(e) => return error(feature, &e, format),
    };
    let events = stamped(&decision, now);
    let is_dc = decision.feature().kind() == FeatureKind::DynamicConfig;
    emit("eval", ExitCode::SUCCESS, |out| match format {
        Format::Json => {
            let steps: &[(String, Value)] = if explain { &trace.steps } else { &[] };
            let explanation: Vec<Value> =
                steps.iter().map(|(text, step)| json!({"text": text, "step": step})).collect();
            let doc = json!({
                "dialect": "decider",
                "feature": feature,
                "variant": decision.variant(),
                "value": decision.value(),
                "events": events,
                "explanation": explanation,
            });
            writeln!(out, "{doc}")
        }
        Format::Text => {
            writeln!(out, "variant: {}", decision.variant().unwrap_or("none"))?;
            if is_dc {
                writeln!(out, "value: {}", decision.value())?;
            }
            write_events(out, &events)?;
            if explain {
                writeln!(out, "explain:")?;
                for (text, _) in &trace.steps {
                    writeln!(out, "  {text}")?;
                }
            }
            Ok(())
        }
    })
}

/// The decision's events as JSON objects (`kind`, `feature`, `variant`, `exposure_key`,
/// `legacy`, `json`), parents first; `json` is the v2 event text the reference would send.
fn stamped(decision: &Decision<'_>, now: f64) -> Vec<Value> {
    let correlation_fallback = Uuid::new_v4();
    let client_ts_ms = (now * 1000.0) as i64;
    decision
        .events()
        .map(|e| {
            let stamp = EventStamp { client_ts_ms, uuid: Uuid::new_v4(), correlation_fallback };
            json!({
                "kind": e.kind().as_str(),
                "feature": e.feature().name(),
                "variant": e.variant(),
                "exposure_key": e.exposure_key(),
                "legacy": e.legacy(),
                "json": e.to_v2_json(&stamp),
            })
        })
        .collect()
}

/// `event: KIND EXPOSURE_KEY` per event with its legacy string and v2 JSON under it, or
/// `event: none`.
fn write_events(out: &mut Out, events: &[Value]) -> io::Result<()> {
    if events.is_empty() {
        return writeln!(out, "event: none");
    }
    let text = |e: &Value, k: &str| e[k].as_str().unwrap_or_default().to_owned();
    for e in events {
        writeln!(out, "event: {} {}", text(e, "kind"), text(e, "exposure_key"))?;
        writeln!(out, "  legacy: {}", text(e, "legacy"))?;
        writeln!(out, "  v2: {}", text(e, "json"))?;
    }
    Ok(())
}

/// Reports a call that fails where the reference raises: exit status 1.
fn error(feature: &str, e: &DecideError, format: Format) -> ExitCode {
    emit("eval", ExitCode::from(1), |out| match format {
        Format::Json => writeln!(
            out,
            "{}",
            json!({"dialect": "decider", "feature": feature, "error": e.to_string(),
                   "exception": exception(e)})
        ),
        Format::Text => writeln!(out, "error: {e} (reddit-decider raises {})", exception(e)),
    })
}

/// Records each step of a decision as a sentence and as its JSON form.
#[derive(Default)]
struct Trace {
    steps: Vec<(String, Value)>,
}

impl Observer for Trace {
    fn step(&mut self, step: Step<'_>) {
        let json = serde_json::to_value(step).unwrap_or(Value::Null);
        self.steps.push((describe(&step, &json), json));
    }
}

/// One step as a sentence, naming the feature it belongs to (parents' steps come before
/// the holdout or group step that uses their result).
fn describe(step: &Step<'_>, json: &Value) -> String {
    let name = |v: Option<&str>| v.map_or_else(|| "no variant".to_owned(), |v| format!("{v:?}"));
    match *step {
        Step::Disabled { feature } => format!("{feature}: disabled: no variant, no events"),
        Step::DynamicValue { feature, value } => {
            format!("{feature}: dynamic config value {value}")
        }
        Step::Override { feature, variant: None } => {
            format!("{feature}: override $none matched: no variant, no events")
        }
        Step::Override { feature, variant: Some(v) } => {
            format!("{feature}: override matched: variant {v:?} (targeting and parents skipped)")
        }
        Step::OverrideIgnored { feature, name } => format!(
            "{feature}: override matched {name:?}, which is not a variant: overrides end here"
        ),
        Step::OverrideUnknown { feature, index } => format!(
            "{feature}: override {index} is unknown (a field is missing or not comparable): \
             overrides end here"
        ),
        Step::Targeting { feature, result } => match result {
            Some(true) => format!("{feature}: targeting: true"),
            Some(false) => format!("{feature}: targeting: false: not targeted"),
            None => format!("{feature}: targeting: unknown: not targeted"),
        },
        Step::Holdout { feature, parent, variant, effect } => format!(
            "{feature}: holdout {parent} chose {}: {}",
            name(variant),
            match effect {
                ParentEffect::Excluded => "held out, no variant (the holdout's events are kept)",
                ParentEffect::Continue => "continue, with the holdout's events first",
                _ => "no effect (its events are dropped)",
            }
        ),
        Step::MutexGroup { feature, parent, variant, effect } => format!(
            "{feature}: mutually exclusive group {parent} chose {}: {}",
            name(variant),
            match effect {
                ParentEffect::Continue => "this feature, continue with the group's events first",
                ParentEffect::Excluded =>
                    "not this feature: no variant (the group's events dropped)",
                _ => "no effect",
            }
        ),
        Step::Bucket { feature, value, bucket, variant } => {
            let mut identifier = String::new();
            let _ = value.write_identifier(&mut identifier);
            format!("{feature}: bucket {bucket} of {identifier:?}: {}", name(variant))
        }
        _ => json.to_string(),
    }
}
