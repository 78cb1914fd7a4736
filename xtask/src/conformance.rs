//! The conformance runner: replays vector files recorded from baseplate 1.5.5 through the
//! public API of `experiments-core` and compares every result and event.
//!
//! Format and deviation policy: `../shared/conformance/README.md`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use experiments_core::{Config, Deviation, Experiments, Inputs, OwnedEvent, Value};
use serde_json::Map;

/// Totals of a run.
#[derive(Debug, Default, Clone)]
pub struct Summary {
    /// Calls that matched the recording.
    pub passed: usize,
    /// Calls that did not match and are not an accepted deviation.
    pub failed: usize,
    /// Calls that differ because this port rejects the experiment on purpose, per category.
    pub deviated: BTreeMap<&'static str, usize>,
    /// Calls per operation.
    pub ops: BTreeMap<String, usize>,
    /// Calls where Python raised (and the port returned an error).
    pub python_errors: usize,
    /// One report per failure (file, request, call, diff).
    pub failures: Vec<String>,
    /// Files replayed.
    pub files: usize,
    /// Decider `requests` calls (the service-level wrapper) not replayed by this runner.
    pub not_replayed: usize,
}

impl Summary {
    /// Total deviated calls.
    pub fn deviated_total(&self) -> usize {
        self.deviated.values().sum()
    }

    /// The closing line: `N passed, M failed, K deviated`.
    pub fn closing_line(&self) -> String {
        format!(
            "{} passed, {} failed, {} deviated",
            self.passed,
            self.failed,
            self.deviated_total()
        )
    }

    fn merge(&mut self, other: Summary) {
        self.passed += other.passed;
        self.failed += other.failed;
        for (k, v) in other.deviated {
            *self.deviated.entry(k).or_default() += v;
        }
        for (k, v) in other.ops {
            *self.ops.entry(k).or_default() += v;
        }
        self.python_errors += other.python_errors;
        self.failures.extend(other.failures);
        self.files += other.files;
        self.not_replayed += other.not_replayed;
    }
}

/// The vector files of `dirs` (files are taken as they are; directories give their `*.json`).
pub fn collect_files(dirs: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let mut files = Vec::new();
    for d in dirs {
        if d.is_file() {
            files.push(d.clone());
            continue;
        }
        let entries =
            std::fs::read_dir(d).map_err(|e| format!("cannot read {}: {e}", d.display()))?;
        let mut found: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        found.sort();
        if found.is_empty() {
            return Err(format!("no *.json vector files in {}", d.display()));
        }
        files.extend(found);
    }
    Ok(files)
}

/// Replays every file.
pub fn run_files(files: &[PathBuf]) -> Result<Summary, String> {
    let mut total = Summary::default();
    for f in files {
        total.merge(run_file(f)?);
    }
    Ok(total)
}

/// Replays one file.
pub fn run_file(path: &Path) -> Result<Summary, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let doc: Value = serde_json::from_str(&text)
        .map_err(|e| format!("{}: invalid JSON: {e}", path.display()))?;
    if crate::decider::is_decider_file(&doc) {
        return crate::decider::run_text(&path.display().to_string(), &text, &doc);
    }
    run_document(&path.display().to_string(), &doc)
}

fn field<'a>(v: &'a Value, k: &str, what: &str) -> Result<&'a Value, String> {
    v.get(k).ok_or_else(|| format!("{what}: missing {k:?}"))
}

/// Replays one parsed vector document.
pub fn run_document(name: &str, doc: &Value) -> Result<Summary, String> {
    if doc.get("format") != Some(&Value::from(1)) {
        return Err(format!("{name}: unsupported vector format {:?}", doc.get("format")));
    }
    if crate::decider::is_decider_file(doc) {
        return crate::decider::run_document(name, doc);
    }
    let now = field(doc, "now", name)?
        .as_f64()
        .ok_or_else(|| format!("{name}: `now` is not a number"))?;
    let config = Config::from_value(field(doc, "config", name)?.clone())
        .map_err(|e| format!("{name}: config: {e}"))?;
    let requests = field(doc, "requests", name)?
        .as_array()
        .ok_or_else(|| format!("{name}: `requests` is not a list"))?;
    let mut summary = Summary { files: 1, ..Summary::default() };
    for (ri, request) in requests.iter().enumerate() {
        let calls = field(request, "calls", name)?
            .as_array()
            .ok_or_else(|| format!("{name}: request {ri}: `calls` is not a list"))?;
        let mut client = Experiments::new(&config, now, Vec::<OwnedEvent>::new());
        for (ci, call) in calls.iter().enumerate() {
            let op = call.get("op").and_then(Value::as_str).unwrap_or("?").to_owned();
            *summary.ops.entry(op.clone()).or_default() += 1;
            let verdict = check_call(&config, now, &mut client, call)
                .map_err(|e| format!("{name}: request {ri} call {ci}: {e}"))?;
            match verdict {
                Verdict::Pass { python_error } => {
                    summary.passed += 1;
                    summary.python_errors += usize::from(python_error);
                }
                Verdict::Deviated(d) => *summary.deviated.entry(d.label()).or_default() += 1,
                Verdict::Fail(diff) => {
                    summary.failed += 1;
                    summary.failures.push(format!(
                        "FAIL {name} request {ri} call {ci} ({op} {}):\n{diff}",
                        call.get("experiment").map(Value::to_string).unwrap_or_default()
                    ));
                }
            }
        }
    }
    Ok(summary)
}

enum Verdict {
    Pass { python_error: bool },
    Deviated(Deviation),
    Fail(String),
}

/// Strict JSON equality: object key order and the int/float distinction both count.
fn strict_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter().zip(y).all(|((k1, v1), (k2, v2))| k1 == k2 && strict_eq(v1, v2))
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| strict_eq(p, q))
        }
        _ => a == b,
    }
}

fn inputs_of(call: &Value) -> Result<Inputs, String> {
    match call.get("inputs") {
        None => Ok(Inputs::new()),
        Some(Value::Object(m)) => Ok(Inputs::from(m.clone())),
        Some(other) => Err(format!("inputs must be an object, found {other}")),
    }
}

fn events_json(events: &[OwnedEvent]) -> Value {
    Value::Array(events.iter().map(|e| serde_json::to_value(e).unwrap_or(Value::Null)).collect())
}

fn check_call(
    config: &Config,
    now: f64,
    client: &mut Experiments<'_, Vec<OwnedEvent>>,
    call: &Value,
) -> Result<Verdict, String> {
    let op = field(call, "op", "call")?.as_str().ok_or("op is not a string")?;
    let expect = field(call, "expect", "call")?;
    let experiment = call.get("experiment").and_then(Value::as_str);
    let deviation =
        experiment.and_then(|k| config.validation_error(k, now)).and_then(|e| e.deviation);
    client.sink().clear();
    let (got, invalid_like) = match op {
        "variant" => {
            let name = experiment.ok_or("variant call without an experiment name")?;
            let inputs = inputs_of(call)?;
            let over = match call.get("bucketing_event_override") {
                None | Some(Value::Null) => None,
                Some(Value::Bool(b)) => Some(*b),
                Some(other) => return Err(format!("bad bucketing_event_override {other}")),
            };
            let result = client.variant(name, &inputs, over);
            let events = events_json(client.sink());
            if expect.get("python_error").is_some() {
                return Ok(match result {
                    Err(_) if events.as_array().is_some_and(Vec::is_empty) => {
                        Verdict::Pass { python_error: true }
                    }
                    other => verdict_for(
                        deviation,
                        matches!(other, Ok(None)) && events.as_array().is_some_and(Vec::is_empty),
                        format!("  expected: {expect}\n  got:      {other:?}, events {events}"),
                    ),
                });
            }
            match result {
                Ok(v) => {
                    let mut got = Map::new();
                    got.insert("variant".into(), v.map_or(Value::Null, Value::from));
                    got.insert("events".into(), events.clone());
                    (
                        Value::Object(got),
                        v.is_none() && events.as_array().is_some_and(Vec::is_empty),
                    )
                }
                Err(e) => {
                    return Ok(verdict_for(
                        None,
                        false,
                        format!(
                            "  expected: {expect}\n  got error: {} ({e})",
                            e.python_exception()
                        ),
                    ));
                }
            }
        }
        "expose" => {
            let name = experiment.ok_or("expose call without an experiment name")?;
            let inputs = inputs_of(call)?;
            let variant = match call.get("variant") {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) => Some(s.as_str()),
                Some(other) => {
                    return Ok(Verdict::Fail(format!(
                        "  non-string expose variant {other} is not supported"
                    )));
                }
            };
            client.expose(name, variant, &inputs);
            let events = events_json(client.sink());
            let empty = events.as_array().is_some_and(Vec::is_empty);
            let mut got = Map::new();
            got.insert("events".into(), events);
            (Value::Object(got), empty)
        }
        "names" => (Value::from(client.names().collect::<Vec<_>>()), false),
        "is_valid" => {
            let name = experiment.ok_or("is_valid call without an experiment name")?;
            let valid = client.is_valid(name);
            (Value::Bool(valid), !valid)
        }
        other => return Err(format!("unknown op {other:?}")),
    };
    if strict_eq(&got, expect) {
        return Ok(Verdict::Pass { python_error: false });
    }
    let mut diff = String::new();
    let _ = write!(diff, "  expected: {expect}\n  got:      {got}");
    Ok(verdict_for(deviation, invalid_like, diff))
}

/// A mismatch is a deviation only when the library rejected the experiment for a listed
/// reason (decided from the config) and behaved as for an invalid experiment.
fn verdict_for(deviation: Option<Deviation>, invalid_like: bool, diff: String) -> Verdict {
    match deviation {
        Some(d) if invalid_like => Verdict::Deviated(d),
        _ => Verdict::Fail(diff),
    }
}

/// Prints the report and returns the process exit code.
pub fn report(summary: &Summary, max_failures: usize) -> i32 {
    for f in summary.failures.iter().take(max_failures) {
        println!("{f}");
    }
    if summary.failures.len() > max_failures {
        println!("... and {} more failures", summary.failures.len() - max_failures);
    }
    let ops: Vec<String> = summary.ops.iter().map(|(k, v)| format!("{k}={v}")).collect();
    println!(
        "files={} calls: {} (python raised: {})",
        summary.files,
        ops.join(" "),
        summary.python_errors
    );
    if summary.not_replayed > 0 {
        println!("decider wrapper calls (requests) not replayed: {}", summary.not_replayed);
    }
    for (cat, n) in &summary.deviated {
        println!("deviated {cat}: {n}");
    }
    println!("{}", summary.closing_line());
    i32::from(summary.failed > 0)
}
