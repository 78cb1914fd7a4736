//! `cargo xtask ofrep-python --python PATH` and `cargo xtask ofrep-js --node-dir DIR`:
//! interop of `experiments serve` with OFREP clients nobody here wrote, each run driving one:
//!
//! - the OpenFeature Python SDK (`openfeature-sdk==0.10.0`) and its OFREP provider from PyPI
//!   (`openfeature-provider-ofrep==0.3.0`), installed in the interpreter `PATH` names, through
//!   `experiments-serve/tests/ofrep_python/check.py`;
//! - the OpenFeature JavaScript server SDK (`@openfeature/server-sdk@1.23.0`) and its OFREP
//!   provider from npm (`@openfeature/ofrep-provider@0.1.3`, `@openfeature/ofrep-core@0.1.4`),
//!   installed in `DIR/node_modules`, through `experiments-serve/tests/ofrep_js/check.mjs`
//!   run by `node`.
//!
//! Both runs share everything but the script. The task builds the CLI, writes configs (a
//! sample of the baseplate conformance vector files, their timestamps moved so that their
//! experiments are live now; decider documents with dynamic configs of every type; the
//! CLI's example with a broken experiment) and starts one `experiments serve` per config on
//! port 0 (one with credentials, one logging events on standard output). For every case it
//! computes the expected answer by evaluating the engines directly (`experiments-core`, the
//! `experiments-decider` wrapper) and hands the cases to the script, which evaluates them
//! through its SDK and compares value, variant, reason, error code and metadata. The Python
//! script also checks bulk evaluation, its `ETag` and `304`, and a `401`, with raw requests
//! (the JavaScript run gets no raw checks: they test the server, not the client). Last,
//! every server gets SIGTERM and its accounting line must show each request the script
//! made, nothing dropped and, for the server with a sink, every event delivered. Prints
//! `ofrep-python: N agreed, M disagreed, K skipped` (`ofrep-js: ...`); exits 1 on any
//! disagreement, 2 when the run itself fails.
//!
//! The cases file the scripts read (`plan.json` in the work directory):
//!
//! ```text
//! PLAN: {"groups": [{"name", "url", "headers": {..}|null, "cases": [CASE...]}], "raw": [RAW...]}
//! CASE: {"id", "flag", "type": "string"|"boolean"|"integer"|"float"|"object",
//!        "targeting_key": str|null (or another JSON value: a context the server refuses),
//!        "attributes": {..}, "expect": EXPECT,
//!        "needs_number_types": bool (a number a client whose integers and floats are one
//!        type cannot carry unchanged: see `lossy_number`),
//!        "expect_one_number_type"?: EXPECT (the answer such a client gets where it sends
//!        other inputs, integral floats as integers, or asks a float of an integer)}
//! EXPECT: {"error": null|"FLAG_NOT_FOUND"|..., "value"?: V (absent: no value, the caller's
//!          default applies), "variant": str|null, "reasons": [REASON...]}
//! RAW: {"kind": "bulk", "url", "headers", "context", "other_context", "keys": [..],
//!       "expect": {flag: EXPECT}} | {"kind": "unauthorized", "url", "context"}
//! RESULT: {"agreed", "disagreed", "by_kind": {..}, "requests": {url: HTTP requests made},
//!          "failures": [..], "skipped"?: {why: count}, "client"?: "what ran"}
//! ```

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{SystemTime, UNIX_EPOCH};

use experiments_core::{
    Config, Experiments, ForcedReason, Inputs, NoopHandler, Observer, Step, Value,
};
use experiments_decider::{
    DecideError, DynamicConfigType, Manifest, WrapperContext, WrapperError, WrapperRequest,
};
use serde_json::{Map, json};
use xtask::serve_process::{
    Accounting, Profile, ServeProcess, StartError, build_cli, repo_root, target_dir,
};

/// The API key and bearer token of the server with credentials.
const API_KEY: &str = "k-ofrep-interop";
const BEARER: &str = "t-ofrep-interop";

/// Every `CALL_STRIDE`-th `variant` call of the baseplate vector files whose index is 1
/// modulo 3 (one file of each of the 13 themes, not the ones the Rust client's test samples).
const CALL_STRIDE: usize = 2;
/// Contexts per decider vector file: every `CONTEXT_STRIDE`-th request's, at most
/// `MAX_CONTEXTS`.
const CONTEXT_STRIDE: usize = 3;
const MAX_CONTEXTS: usize = 6;

/// The OFREP client a run drives, and where it is installed.
enum Client {
    /// The Python interpreter whose environment holds the SDK and the provider.
    Python(PathBuf),
    /// The npm prefix whose `node_modules` holds the SDK and the provider.
    Js(PathBuf),
}

impl Client {
    /// The task's name, the prefix of its messages.
    fn task(&self) -> &'static str {
        match self {
            Client::Python(_) => "ofrep-python",
            Client::Js(_) => "ofrep-js",
        }
    }

    /// Whether the plan gets the raw bulk / `304` / `401` checks (only the Python script
    /// makes them: they test the server, once is enough).
    fn raw_checks(&self) -> bool {
        matches!(self, Client::Python(_))
    }

    /// The command that runs the client's script over the plan into the result file.
    fn command(&self, root: &Path, plan: &Path, result: &Path) -> Command {
        let mut command = match self {
            Client::Python(python) => {
                let mut c = Command::new(python);
                c.arg(root.join("experiments-serve/tests/ofrep_python/check.py"));
                c
            }
            Client::Js(dir) => {
                let mut c = Command::new("node");
                c.arg(root.join("experiments-serve/tests/ofrep_js/check.mjs")).arg(dir);
                c
            }
        };
        command.arg(plan).arg(result);
        command
    }
}

/// Runs `cargo xtask TASK` (`ofrep-python` or `ofrep-js`): 0 when everything agreed, 1 on a
/// disagreement, 2 when it could not run.
pub fn run(task: &str, args: &[String]) -> ExitCode {
    let usage = format!(
        "usage: cargo xtask {task} {} [--vectors DIR] [--decider-vectors DIR]",
        if task == "ofrep-js" { "--node-dir DIR" } else { "--python PATH" }
    );
    let mut client = None;
    let root = repo_root();
    let mut vectors = root.join("../shared/conformance/vectors");
    let mut decider_vectors = root.join("../shared/decider/vectors");
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match (a.as_str(), it.next()) {
            ("--python", Some(p)) if task == "ofrep-python" => {
                client = Some(Client::Python(PathBuf::from(p)));
            }
            ("--node-dir", Some(d)) if task == "ofrep-js" => {
                client = Some(Client::Js(PathBuf::from(d)));
            }
            ("--vectors", Some(d)) => vectors = PathBuf::from(d),
            ("--decider-vectors", Some(d)) => decider_vectors = PathBuf::from(d),
            _ => {
                eprintln!("{usage}");
                return ExitCode::from(2);
            }
        }
    }
    let Some(client) = client else {
        eprintln!("{usage}");
        return ExitCode::from(2);
    };
    match run_checks(&root, &client, &vectors, &decider_vectors) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("{}: {e}", client.task());
            ExitCode::from(2)
        }
    }
}

// ---------------------------------------------------------------------------------------
// Servers
// ---------------------------------------------------------------------------------------

/// One `experiments serve` to start.
struct ServerSpec {
    name: String,
    config: PathBuf,
    dialect: &'static str,
    /// `"none"`, or `"stdout"`: events on its standard output, counted.
    sink: &'static str,
    auth: bool,
}

/// A running `experiments serve` and the name of its spec (for messages).
struct Server {
    name: String,
    process: ServeProcess,
}

/// Writes the spec's settings next to the other work files and starts its server, which
/// logs warnings only.
fn start(bin: &Path, work: &Path, spec: &ServerSpec) -> Result<Server, String> {
    let mut serve = json!({});
    if spec.auth {
        serve["auth"] = json!({"api_keys": [API_KEY], "bearer_tokens": [BEARER]});
    }
    let settings = json!({
        "config": {"path": spec.config, "dialect": spec.dialect},
        "sink": spec.sink,
        "serve": serve,
    });
    let settings_path = work.join(format!("{}.settings.json", spec.name));
    write_json(&settings_path, &settings)?;
    let process =
        ServeProcess::start(bin, &settings_path, &[("RUST_LOG", "warn")]).map_err(|e| match e {
            StartError::Spawn(e) => e,
            StartError::NotListening { first_line, stderr } => format!(
                "{}: did not start: {:?} {}",
                spec.name,
                first_line.unwrap_or_default(),
                stderr.tail_text()
            ),
        })?;
    Ok(Server { name: spec.name.clone(), process })
}

// ---------------------------------------------------------------------------------------
// What a client can send
// ---------------------------------------------------------------------------------------

/// Whether a provider's URL reaches the server with `flag` unchanged: Python's
/// `urljoin(base, f"evaluate/flags/{flag}")` and JavaScript's
/// `` `${baseUrl}/ofrep/v1/evaluate/flags/${flag}` `` through fetch's URL parser both escape
/// spaces and non-ASCII, but `?` and `#` cut the path, `/` (and `\`, for fetch) splits it,
/// `%XX` is left for the server to decode, dot segments are resolved. (Fetch also trims
/// spaces at the end of the URL: the JavaScript script skips such keys.)
fn url_safe(flag: &str) -> bool {
    !flag.is_empty()
        && flag != "."
        && flag != ".."
        && !flag.chars().any(|c| matches!(c, '/' | '\\' | '?' | '#' | '%') || c.is_control())
}

/// Nesting depth of a JSON value.
fn depth(v: &Value) -> usize {
    match v {
        Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        Value::Object(m) => 1 + m.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// Refuses values a request body cannot carry to the engines unchanged: nested beyond the
/// server's JSON parser (128 levels, with the body's own two), or too large for its default
/// body limit (64 KiB).
fn carryable(v: &Value) -> Result<(), &'static str> {
    if depth(v) > 120 {
        return Err("an input nested deeper than a request body may be");
    }
    if v.to_string().len() > 60_000 {
        return Err("inputs larger than a request body may be");
    }
    Ok(())
}

/// The OpenFeature evaluation context of baseplate inputs: a non-empty `user_id` string as the
/// targeting key (the provider drops an empty one), every other input as an attribute of
/// its JSON type. The server sorts attributes by name and adds the targeting key last, so
/// inputs whose order matters (two names equal but for case) cannot be carried.
fn baseplate_context(inputs: &Map<String, Value>) -> Result<(Value, Value), &'static str> {
    let mut key = Value::Null;
    let mut attributes = Map::new();
    let mut seen = HashSet::new();
    for (k, v) in inputs {
        if k == "targetingKey" {
            return Err("an input named targetingKey");
        }
        if !seen.insert(k.to_lowercase()) {
            return Err("two inputs whose names differ only in case");
        }
        match v {
            Value::String(s) if k == "user_id" && !s.is_empty() => key = Value::from(s.as_str()),
            _ => {
                attributes.insert(k.clone(), v.clone());
            }
        }
    }
    let attributes = Value::Object(attributes);
    carryable(&attributes)?;
    Ok((key, attributes))
}

/// The OpenFeature evaluation context of `DeciderContext` kwargs: a non-empty `user_id` string
/// as the targeting key, the other keywords (not `None`) and the extracted fields as
/// attributes (the server sends keyword names to those keywords and every other name to the
/// extracted fields).
fn decider_context(kwargs: &Map<String, Value>) -> Result<(Value, Value), &'static str> {
    let keywords = WrapperContext::KEYWORDS;
    let mut key = Value::Null;
    let mut attributes = Map::new();
    for (k, v) in kwargs {
        if k == "extracted_fields" {
            let fields = match v {
                Value::Object(fields) => fields,
                Value::Null | Value::Bool(false) => continue,
                Value::String(s) if s.is_empty() => continue,
                Value::Array(a) if a.is_empty() => continue,
                Value::Number(n) if n.as_f64() == Some(0.0) => continue,
                _ => return Err("extracted_fields that are not an object"),
            };
            for (name, value) in fields {
                if keywords.contains(&name.as_str()) || name == "targetingKey" {
                    return Err("an extracted field named like a keyword");
                }
                attributes.insert(name.clone(), value.clone());
            }
            continue;
        }
        match v {
            Value::Null => {}
            Value::String(s) if k == "user_id" && !s.is_empty() => key = Value::from(s.as_str()),
            v => {
                attributes.insert(k.clone(), v.clone());
            }
        }
    }
    let attributes = Value::Object(attributes);
    carryable(&attributes)?;
    Ok((key, attributes))
}

// ---------------------------------------------------------------------------------------
// Expected answers, from the engines
// ---------------------------------------------------------------------------------------

fn error(code: &str) -> Value {
    json!({"error": code, "variant": null, "reasons": ["ERROR"]})
}

fn value(v: Value, variant: Option<&str>, reasons: &[&str]) -> Value {
    json!({"error": null, "value": v, "variant": variant, "reasons": reasons})
}

fn no_value(reasons: &[&str]) -> Value {
    json!({"error": null, "variant": null, "reasons": reasons})
}

/// What a baseplate evaluation did, from its steps (the server's reason table).
#[derive(Default)]
struct Trace {
    invalid: bool,
    missing_bucketing: bool,
    disabled: bool,
    forced: Option<ForcedReason>,
    override_chose: bool,
    bucketed: bool,
}

impl Observer for Trace {
    fn step(&mut self, step: Step<'_>) {
        match step {
            Step::Invalid { .. } => self.invalid = true,
            Step::Disabled { .. } => self.disabled = true,
            Step::Forced { reason, .. } => self.forced = Some(reason),
            Step::Override { matched: true, variant } if !variant.is_empty() => {
                self.override_chose = true;
            }
            Step::R2Override { accepted: true, .. } => self.override_chose = true,
            Step::BucketingValue { value, .. } if value.is_none_or(Value::is_null) => {
                self.missing_bucketing = true;
            }
            Step::Variant { variant: Some(_), .. } => self.bucketed = true,
            _ => {}
        }
    }
}

impl Trace {
    fn reason(&self, has_variant: bool) -> &'static str {
        if has_variant {
            if self.override_chose {
                "TARGETING_MATCH"
            } else if self.forced.is_some() {
                "STATIC"
            } else if self.bucketed {
                "SPLIT"
            } else {
                "UNKNOWN"
            }
        } else if self.disabled || matches!(self.forced, Some(ForcedReason::Disabled)) {
            "DISABLED"
        } else {
            "DEFAULT"
        }
    }
}

/// The expected OFREP answer for a baseplate flag: the engine's variant now (`now`), with
/// the server's error codes and reasons.
fn expect_baseplate(config: &Config, now: f64, flag: &str, inputs: &Inputs, key: bool) -> Value {
    if config.get(flag).is_none() {
        return error("FLAG_NOT_FOUND");
    }
    let mut request = Experiments::new(config, now, NoopHandler);
    let mut trace = Trace::default();
    match request.variant_traced(flag, inputs, None, &mut trace) {
        Err(_) => error("GENERAL"),
        Ok((Some(v), _)) => value(Value::from(v), Some(v), &[trace.reason(true)]),
        Ok((None, _)) if trace.invalid => error("PARSE_ERROR"),
        Ok((None, _)) if trace.missing_bucketing && !key => error("TARGETING_KEY_MISSING"),
        Ok((None, _)) => no_value(&[trace.reason(false)]),
    }
}

/// The OFREP error code of an engine error (`key`: a targeting key was given).
fn decide_code(e: &WrapperError, key: bool) -> Value {
    match e {
        WrapperError::Decide(DecideError::FeatureNotFound(_)) => error("FLAG_NOT_FOUND"),
        WrapperError::Decide(DecideError::Context(_)) => error("INVALID_CONTEXT"),
        WrapperError::Decide(
            DecideError::MissingBucketingField(_) | DecideError::MissingBucketVal,
        ) if !key => error("TARGETING_KEY_MISSING"),
        _ => error("GENERAL"),
    }
}

/// The getter for a decider flag and its expected answer: the wrapper's
/// (`reddit_decider.Decider`) own getters over the same manifest; a dynamic config in the
/// type of its value.
fn expect_decider(
    manifest: &Manifest,
    kwargs: &Map<String, Value>,
    flag: &str,
    key: bool,
) -> (&'static str, Value) {
    let Ok(wctx) = WrapperContext::from_kwargs(kwargs.clone()) else {
        return ("string", error("INVALID_CONTEXT"));
    };
    if wctx.context().is_err() {
        return ("string", error("INVALID_CONTEXT"));
    }
    let Some(feature) = manifest.feature(flag) else {
        let code =
            if manifest.errors().contains_key(flag) { "PARSE_ERROR" } else { "FLAG_NOT_FOUND" };
        return ("string", error(code));
    };
    let mut direct = WrapperRequest::new(Some(manifest), wctx, ());
    if feature.is_range() {
        let expected = match direct.try_get_variant_without_expose(flag) {
            Ok(Some(v)) => value(Value::from(v), Some(v), &["SPLIT", "TARGETING_MATCH"]),
            Ok(None) if !feature.enabled() => no_value(&["DISABLED"]),
            Ok(None) => no_value(&["DEFAULT", "TARGETING_MATCH"]),
            Err(WrapperError::Decide(
                DecideError::MissingBucketingField(_) | DecideError::MissingBucketVal,
            )) if key => no_value(&["DEFAULT"]),
            Err(e) => decide_code(&e, key),
        };
        return ("string", expected);
    }
    if !feature.enabled() {
        return ("string", no_value(&["DISABLED"]));
    }
    let dc = |r: Result<Value, WrapperError>| match r {
        Ok(v) => value(v, None, &["STATIC"]),
        Err(e) => decide_code(&e, key),
    };
    match DynamicConfigType::of(feature.dynamic_value().unwrap_or(&Value::Null)) {
        DynamicConfigType::Boolean => ("boolean", dc(direct.try_get_bool(flag).map(Value::Bool))),
        DynamicConfigType::Integer => ("integer", dc(direct.try_get_int(flag).map(Value::from))),
        DynamicConfigType::Float => (
            "float",
            dc(direct
                .try_get_float(flag)
                .map(|x| serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number))),
        ),
        DynamicConfigType::String => ("string", dc(direct.try_get_string(flag).map(Value::from))),
        DynamicConfigType::Map => ("object", dc(direct.try_get_map(flag).map(Value::Object))),
        _ => ("string", no_value(&["STATIC"])),
    }
}

// ---------------------------------------------------------------------------------------
// The plan
// ---------------------------------------------------------------------------------------

/// Cases for one server, evaluated through one provider.
struct Group {
    name: String,
    server: usize,
    headers: Value,
    cases: Vec<Value>,
}

/// A raw check of one server (`url` is added once it runs).
struct Raw {
    server: usize,
    check: Value,
}

#[derive(Default)]
struct Plan {
    servers: Vec<ServerSpec>,
    groups: Vec<Group>,
    raw: Vec<Raw>,
    skipped: BTreeMap<&'static str, usize>,
}

impl Plan {
    fn skip(&mut self, why: &'static str) {
        *self.skipped.entry(why).or_default() += 1;
    }

    fn server(&mut self, spec: ServerSpec) -> usize {
        self.servers.push(spec);
        self.servers.len() - 1
    }
}

fn case(id: String, flag: &str, kind: &str, context: (Value, Value), expect: Value) -> Value {
    let needs_number_types = lossy_number(&context.0, true)
        || lossy_number(&context.1, true)
        || expect.get("value").is_some_and(|v| lossy_number(v, false));
    json!({"id": id, "flag": flag, "type": kind, "targeting_key": context.0,
           "attributes": context.1, "expect": expect, "needs_number_types": needs_number_types})
}

/// The largest integer a client whose integers and floats are one type (JavaScript's
/// `number`, an IEEE double) carries exactly, and its negation the smallest.
const SAFE_INTEGER: u64 = (1 << 53) - 1;

/// Whether `v` holds a number a client with one number type cannot carry unchanged: an
/// integer beyond ±[`SAFE_INTEGER`] (rounded) and, in what it sends (`sent`), a float with an
/// integral value beyond it (which [`as_one_number_type`] does not model).
fn lossy_number(v: &Value, sent: bool) -> bool {
    match v {
        Value::Number(n) => match (n.as_u64(), n.as_i64(), n.as_f64()) {
            (Some(u), _, _) => u > SAFE_INTEGER,
            (None, Some(i), _) => i.unsigned_abs() > SAFE_INTEGER,
            (None, None, Some(x)) => sent && x.fract() == 0.0 && x.abs() > SAFE_INTEGER as f64,
            _ => true,
        },
        Value::Array(items) => items.iter().any(|v| lossy_number(v, sent)),
        Value::Object(m) => m.values().any(|v| lossy_number(v, sent)),
        _ => false,
    }
}

/// Inputs as a client with one number type sends them (`JSON.stringify`): a float with an
/// integral value within ±[`SAFE_INTEGER`] becomes an integer (`-0.0` is `0`); `None` when
/// nothing changes, so that the answer it gets is the case's own.
fn as_one_number_type(inputs: &Map<String, Value>) -> Option<Map<String, Value>> {
    fn convert(v: &Value) -> Value {
        match v {
            Value::Number(n) if n.is_f64() => match n.as_f64() {
                Some(x) if x.fract() == 0.0 && x.abs() <= SAFE_INTEGER as f64 => {
                    Value::from(x as i64)
                }
                _ => v.clone(),
            },
            Value::Array(items) => Value::Array(items.iter().map(convert).collect()),
            Value::Object(m) => {
                Value::Object(m.iter().map(|(k, v)| (k.clone(), convert(v))).collect())
            }
            _ => v.clone(),
        }
    }
    let converted: Map<String, Value> =
        inputs.iter().map(|(k, v)| (k.clone(), convert(v))).collect();
    (converted != *inputs).then_some(converted)
}

/// The case with the answer a client with one number type gets where it differs (`expect`:
/// computed from [`as_one_number_type`]'s inputs, or a float asked of an integer); a value
/// that client cannot read exactly makes the case one it cannot carry.
fn with_one_number_type(mut case: Value, expect: Option<Value>) -> Value {
    if let Some(expect) = expect {
        if expect.get("value").is_some_and(|v| lossy_number(v, false)) {
            case["needs_number_types"] = Value::Bool(true);
        }
        case["expect_one_number_type"] = expect;
    }
    case
}

fn read_json(path: &Path) -> Result<Value, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

fn write_json(path: &Path, v: &Value) -> Result<(), String> {
    std::fs::write(path, v.to_string()).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

fn vector_files(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("cannot read {}: {e}", dir.display()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(format!("no vector files in {}", dir.display()));
    }
    Ok(files)
}

fn now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

/// The config with every experiment's numeric `start_ts` and `stop_ts` moved by `delta`
/// seconds (an integer stays an integer).
fn shifted(config: &Value, delta: i64) -> Value {
    let mut config = config.clone();
    for entry in config.as_object_mut().into_iter().flat_map(|m| m.values_mut()) {
        for field in ["start_ts", "stop_ts"] {
            let Some(Value::Number(n)) = entry.get(field) else { continue };
            let moved = if n.is_f64() {
                n.as_f64()
                    .and_then(|x| serde_json::Number::from_f64(x + delta as f64))
                    .map(Value::Number)
            } else {
                n.as_i64().and_then(|i| i.checked_add(delta)).map(Value::from)
            };
            if let Some(moved) = moved {
                entry[field] = moved;
            }
        }
    }
    config
}

/// The sorted flag keys of a bulk answer.
fn baseplate_keys(config: &Config) -> Vec<String> {
    let mut keys: Vec<String> = config.names().map(str::to_owned).collect();
    keys.sort_unstable();
    keys.dedup();
    keys
}

fn decider_keys(manifest: &Manifest) -> Vec<String> {
    let mut keys: Vec<String> = manifest
        .features()
        .map(|f| f.name().to_owned())
        .chain(manifest.errors().keys().cloned())
        .collect();
    keys.sort_unstable();
    keys.dedup();
    keys
}

/// The OFREP context object of an OpenFeature context.
fn ofrep_context((key, attributes): &(Value, Value)) -> Value {
    let mut m = attributes.as_object().cloned().unwrap_or_default();
    if let Value::String(k) = key {
        m.insert("targetingKey".into(), Value::from(k.as_str()));
    }
    Value::Object(m)
}

/// Baseplate groups: sampled `variant` calls of the vector files, one server each; a bulk
/// check on the first.
fn add_baseplate(plan: &mut Plan, work: &Path, vectors: &Path) -> Result<(), String> {
    let files = vector_files(vectors)?;
    for (i, file) in files.iter().enumerate().filter(|(i, _)| i % 3 == 1) {
        let doc = read_json(file)?;
        let name = file.file_name().unwrap_or_default().to_string_lossy().into_owned();
        let recorded = doc["now"].as_f64().ok_or_else(|| format!("{name}: no `now`"))?;
        // Live now what was live when recorded, half an hour past that instant, so that no
        // boundary recorded next to it falls within the run.
        let delta = (now() - recorded) as i64 - 1800;
        let document = shifted(&doc["config"], delta);
        let config = Config::from_value(document.clone()).map_err(|e| format!("{name}: {e}"))?;
        let config_path = work.join(format!("baseplate-{i:02}.json"));
        write_json(&config_path, &document)?;
        let server = plan.server(ServerSpec {
            name: format!("baseplate-{i:02}"),
            config: config_path,
            dialect: "baseplate",
            sink: "none",
            auth: false,
        });
        let calls = doc["requests"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|r| r["calls"].as_array().into_iter().flatten())
            .filter(|c| c["op"] == "variant")
            .step_by(CALL_STRIDE);
        let at = now();
        let mut cases = Vec::new();
        for (ci, call) in calls.enumerate() {
            let flag = call["experiment"].as_str().unwrap_or_default();
            if !url_safe(flag) {
                plan.skip("a flag key the provider cannot put in a URL");
                continue;
            }
            let inputs = call["inputs"].as_object().cloned().unwrap_or_default();
            let context = match baseplate_context(&inputs) {
                Ok(c) => c,
                Err(why) => {
                    plan.skip(why);
                    continue;
                }
            };
            let key = context.0.is_string();
            let one = as_one_number_type(&inputs)
                .map(|i| expect_baseplate(&config, at, flag, &Inputs::from(i), key));
            let expect = expect_baseplate(&config, at, flag, &Inputs::from(inputs), key);
            cases.push(with_one_number_type(
                case(format!("#{ci}"), flag, "string", context, expect),
                one,
            ));
        }
        if plan.raw.is_empty()
            && let Some(first) = cases.first()
        {
            let context = (first["targeting_key"].clone(), first["attributes"].clone());
            let inputs = first["attributes"].as_object().cloned().unwrap_or_default();
            let mut inputs = Inputs::from(inputs);
            if let Value::String(k) = &context.0 {
                inputs.insert("user_id", k.as_str());
            }
            let keys = baseplate_keys(&config);
            let expect: Map<String, Value> = keys
                .iter()
                .map(|k| {
                    (k.clone(), expect_baseplate(&config, at, k, &inputs, context.0.is_string()))
                })
                .collect();
            let mut other = ofrep_context(&context);
            other["targetingKey"] = Value::from("t2_another_user");
            plan.raw.push(Raw {
                server,
                check: json!({"kind": "bulk", "name": name, "headers": null,
                              "context": ofrep_context(&context), "other_context": other,
                              "keys": keys, "expect": expect}),
            });
        }
        plan.groups.push(Group { name: name.clone(), server, headers: Value::Null, cases });
    }
    Ok(())
}

/// Contexts for the decider document of this repository's tests.
fn inline_contexts() -> Vec<Map<String, Value>> {
    let mut contexts = vec![
        json!({"user_id": "t2_a", "country_code": "US", "device_id": "d-1", "logged_in": true}),
        json!({"user_id": "t2_b", "country_code": "CA", "device_id": "d-2",
               "extracted_fields": {"app_name": "ios"}}),
        json!({"user_id": "t2_c", "extracted_fields": {"app_name": "android", "karma": 12}}),
        json!({"device_id": "d-3", "country_code": "US"}),
        json!({"user_id": "t2_d", "logged_in": "yes"}),
        json!({"user_id": 12345, "country_code": "US", "device_id": "d-4"}),
    ];
    for i in 0..30 {
        contexts.push(json!({"user_id": format!("t2_{i:x}"), "device_id": format!("dev-{i}"),
            "country_code": if i % 2 == 0 { "US" } else { "DE" },
            "extracted_fields": {"app_name": if i % 3 == 0 { "ios" } else { "web" }}}));
    }
    contexts.into_iter().filter_map(|c| c.as_object().cloned()).collect()
}

/// Decider groups: the tests' document with dynamic configs of every type, the CLI's
/// example, and the recorded documents with dynamic configs; a bulk check on the first.
fn add_decider(plan: &mut Plan, work: &Path, root: &Path, vectors: &Path) -> Result<(), String> {
    let mut documents = vec![
        (
            "decider-tests".to_owned(),
            read_json(&root.join("experiments-serve/tests/ofrep_python/decider.json"))?,
            inline_contexts(),
        ),
        (
            "decider-example".to_owned(),
            read_json(&root.join("experiments-cli/src/example-decider.json"))?,
            inline_contexts(),
        ),
    ];
    for file in vector_files(vectors)? {
        let name = file.file_name().unwrap_or_default().to_string_lossy().into_owned();
        if !["dynamic_config", "context", "mixed", "edge"].iter().any(|t| name.contains(t)) {
            continue;
        }
        let doc = read_json(&file)?;
        let contexts = doc["requests"]
            .as_array()
            .into_iter()
            .flatten()
            .step_by(CONTEXT_STRIDE)
            .take(MAX_CONTEXTS)
            .filter_map(|r| r["decider_context"].as_object().cloned())
            .collect();
        documents.push((name, doc["config"].clone(), contexts));
    }
    let mut first = true;
    for (d, (name, document, contexts)) in documents.into_iter().enumerate() {
        let manifest = Manifest::from_slice(document.to_string().as_bytes())
            .map_err(|e| format!("{name}: {e}"))?;
        let config_path = work.join(format!("decider-{d:02}.json"));
        write_json(&config_path, &document)?;
        // The first server logs its events on standard output, to account for them.
        let server = plan.server(ServerSpec {
            name: format!("decider-{d:02}"),
            config: config_path,
            dialect: "decider",
            sink: if first { "stdout" } else { "none" },
            auth: false,
        });
        let mut flags = decider_keys(&manifest);
        flags.push("no_such_feature".into());
        let mut cases = Vec::new();
        for (ci, kwargs) in contexts.iter().enumerate() {
            let context = match decider_context(kwargs) {
                Ok(c) => c,
                Err(why) => {
                    plan.skip(why);
                    continue;
                }
            };
            let key = context.0.is_string();
            let one_kwargs = as_one_number_type(kwargs);
            for flag in &flags {
                if !url_safe(flag) {
                    plan.skip("a flag key the provider cannot put in a URL");
                    continue;
                }
                let (kind, expect) = expect_decider(&manifest, kwargs, flag, key);
                let one = one_kwargs.as_ref().map(|k| expect_decider(&manifest, k, flag, key).1);
                cases.push(with_one_number_type(
                    case(format!("#{ci}"), flag, kind, context.clone(), expect.clone()),
                    one.clone(),
                ));
                // A float asked of an integer config: the Python provider's own type check
                // refuses the server's integer (the wrapper's get_float would convert it); a
                // client with one number type gets the integer's answer.
                if kind == "integer" && expect.get("value").is_some() && ci == 0 {
                    let float = case(
                        format!("#{ci}"),
                        flag,
                        "float",
                        context.clone(),
                        error("TYPE_MISMATCH"),
                    );
                    cases.push(with_one_number_type(float, Some(one.unwrap_or(expect))));
                }
            }
            if first && ci == 0 {
                let expect: Map<String, Value> = decider_keys(&manifest)
                    .into_iter()
                    .map(|k| {
                        let e = expect_decider(&manifest, kwargs, &k, key).1;
                        (k, e)
                    })
                    .collect();
                let mut other = ofrep_context(&context);
                other["targetingKey"] = Value::from("t2_another_user");
                plan.raw.push(Raw {
                    server,
                    check: json!({"kind": "bulk", "name": name, "headers": null,
                                  "context": ofrep_context(&context), "other_context": other,
                                  "keys": decider_keys(&manifest), "expect": expect}),
                });
            }
        }
        first = false;
        plan.groups.push(Group { name, server, headers: Value::Null, cases });
    }
    Ok(())
}

/// The CLI's baseplate example (with its broken experiment) on a server with credentials:
/// evaluations without credentials, with a wrong key, with the API key, with the bearer
/// token; the error codes; a raw 401 and a bulk check with the key.
fn add_example(plan: &mut Plan, root: &Path) -> Result<(), String> {
    let path = root.join("experiments-cli/src/example-experiments.json");
    let document = read_json(&path)?;
    let config = Config::from_value(document).map_err(|e| format!("{}: {e}", path.display()))?;
    let server = plan.server(ServerSpec {
        name: "example-auth".into(),
        config: path,
        dialect: "baseplate",
        sink: "none",
        auth: true,
    });
    let mut flags = baseplate_keys(&config);
    flags.push("no_such_flag".into());
    let mut contexts: Vec<(Value, Value)> = (0..40)
        .map(|i| {
            let attributes = json!({
                "app_name": (["ios", "android", "web", "tv"][i % 4]),
                "is_employee": i % 5 == 0,
                "account_age_days": i * 3,
                "device_id": format!("dev-{i}"),
                "logged_in": i % 2 == 0,
                "user_name": if i % 7 == 0 { "spez" } else { "someone" },
            });
            (Value::from(format!("t2_{i:x}")), attributes)
        })
        .collect();
    // Without a targeting key: TARGETING_KEY_MISSING where the bucketing field is missing.
    contexts.push((Value::Null, json!({"device_id": "dev-x", "logged_in": true})));
    contexts.push((Value::Null, json!({"user_id": "t2_as_an_attribute", "app_name": "ios"})));
    let at = now();
    let mut cases = Vec::new();
    for (ci, context) in contexts.iter().enumerate() {
        let mut inputs = Inputs::from(context.1.as_object().cloned().unwrap_or_default());
        if let Value::String(k) = &context.0 {
            inputs.insert("user_id", k.as_str());
        }
        for flag in &flags {
            let expect = expect_baseplate(&config, at, flag, &inputs, context.0.is_string());
            cases.push(case(format!("#{ci}"), flag, "string", context.clone(), expect));
        }
    }
    // A targeting key that is not a string: 400 INVALID_CONTEXT.
    cases.push(case(
        "bad key".into(),
        "feed_ranking",
        "string",
        (json!(12345), json!({})),
        error("INVALID_CONTEXT"),
    ));
    let unauthorized: Vec<Value> = cases
        .iter()
        .step_by(7)
        .map(|c| {
            let mut c = c.clone();
            c["expect"] = error("GENERAL");
            c
        })
        .collect();
    plan.groups.push(Group {
        name: "example without credentials".into(),
        server,
        headers: Value::Null,
        cases: unauthorized.clone(),
    });
    plan.groups.push(Group {
        name: "example with a wrong key".into(),
        server,
        headers: json!({"X-API-Key": "k-wrong"}),
        cases: unauthorized,
    });
    plan.groups.push(Group {
        name: "example with the bearer token".into(),
        server,
        headers: json!({"Authorization": format!("Bearer {BEARER}")}),
        cases: cases.iter().step_by(3).cloned().collect(),
    });
    plan.groups.push(Group {
        name: "example with the API key".into(),
        server,
        headers: json!({"X-API-Key": API_KEY}),
        cases,
    });
    let context = contexts[1].clone();
    let keys = baseplate_keys(&config);
    let mut inputs = Inputs::from(context.1.as_object().cloned().unwrap_or_default());
    if let Value::String(k) = &context.0 {
        inputs.insert("user_id", k.as_str());
    }
    let expect: Map<String, Value> =
        keys.iter().map(|k| (k.clone(), expect_baseplate(&config, at, k, &inputs, true))).collect();
    let mut other = ofrep_context(&context);
    other["targetingKey"] = Value::from("t2_another_user");
    plan.raw.push(Raw {
        server,
        check: json!({"kind": "unauthorized", "context": ofrep_context(&context)}),
    });
    plan.raw.push(Raw {
        server,
        check: json!({"kind": "bulk", "name": "example", "headers": {"X-API-Key": API_KEY},
                      "context": ofrep_context(&context), "other_context": other,
                      "keys": keys, "expect": expect}),
    });
    Ok(())
}

// ---------------------------------------------------------------------------------------
// The run
// ---------------------------------------------------------------------------------------

fn run_checks(
    root: &Path,
    client: &Client,
    vectors: &Path,
    decider_vectors: &Path,
) -> Result<bool, String> {
    let task = client.task();
    if let Client::Js(dir) = client
        && !dir.join("node_modules/@openfeature/ofrep-provider/package.json").is_file()
    {
        return Err(format!("no @openfeature/ofrep-provider in {}/node_modules", dir.display()));
    }
    let bin = build_cli(root, Profile::Debug, task)?;
    let work = target_dir(root).join(format!("{task}-run"));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).map_err(|e| format!("{}: {e}", work.display()))?;
    let work = work.canonicalize().map_err(|e| format!("{}: {e}", work.display()))?;

    let mut plan = Plan::default();
    add_baseplate(&mut plan, &work, vectors)?;
    add_decider(&mut plan, &work, root, decider_vectors)?;
    add_example(&mut plan, root)?;
    if !client.raw_checks() {
        plan.raw.clear();
    }

    let mut servers = Vec::new();
    for spec in &plan.servers {
        servers.push(start(&bin, &work, spec)?);
    }
    let groups: Vec<Value> = plan
        .groups
        .iter()
        .map(|g| {
            json!({"name": g.name, "url": servers[g.server].process.url(), "headers": g.headers,
                        "cases": g.cases})
        })
        .collect();
    let raw: Vec<Value> = plan
        .raw
        .iter()
        .map(|r| {
            let mut check = r.check.clone();
            check["url"] = Value::from(servers[r.server].process.url());
            check
        })
        .collect();
    let cases: usize = plan.groups.iter().map(|g| g.cases.len()).sum();
    eprintln!(
        "{task}: {cases} cases in {} groups on {} servers, {} raw checks",
        groups.len(),
        servers.len(),
        raw.len()
    );
    let plan_path = work.join("plan.json");
    let result_path = work.join("result.json");
    write_json(&plan_path, &json!({"groups": groups, "raw": raw}))?;
    let mut command = client.command(root, &plan_path, &result_path);
    let status =
        command.status().map_err(|e| format!("cannot run {:?}: {e}", command.get_program()))?;
    let result = read_json(&result_path)
        .map_err(|e| format!("{command:?} ended with {status} and no result: {e}"))?;
    let mut agreed = result["agreed"].as_u64().unwrap_or(0);
    let mut disagreed = result["disagreed"].as_u64().unwrap_or(u64::MAX);
    if let Some(what) = result["client"].as_str() {
        eprintln!("{task}: {what}");
    }
    eprintln!("{task}: outcomes {}", result["by_kind"]);

    // Every server's accounting: each request the script made, nothing lost.
    for (i, server) in servers.into_iter().enumerate() {
        let Server { name, process } = server;
        let made = result["requests"][&process.url()].as_u64().unwrap_or(0);
        let stopped = process.stop();
        let exit = stopped.exit.map_err(|e| format!("{name}: {e}"))?.code();
        let accounting_line = stopped.stderr.accounting.unwrap_or_default();
        let a = Accounting::parse(&accounting_line).ok();
        let mut problems = Vec::new();
        if exit != Some(0) {
            problems.push(format!("exit status {exit:?}"));
        }
        if a.map(|a| a.requests) != Some(made) {
            problems.push(format!("{made} requests made"));
        }
        if !a.is_some_and(|a| a.drained && a.dropped == 0 && a.remaining == 0) {
            problems.push("not drained, or events lost".into());
        }
        if plan.servers[i].sink == "stdout" {
            let events = a.map_or(0, |a| a.events);
            if events == 0
                || a.map(|a| a.delivered) != Some(events)
                || stopped.stdout_lines as u64 != events
            {
                problems.push(format!("{} event lines on stdout", stopped.stdout_lines));
            }
        }
        if problems.is_empty() {
            agreed += 1;
        } else {
            disagreed = disagreed.saturating_add(1);
            eprintln!("DISAGREE {name}: accounting {accounting_line:?}: {}", problems.join("; "));
        }
    }
    // What the plan could not carry, then what the client's script could not.
    let mut skipped: BTreeMap<String, usize> =
        plan.skipped.iter().map(|(why, n)| ((*why).to_owned(), *n)).collect();
    for (why, n) in result["skipped"].as_object().into_iter().flatten() {
        *skipped.entry(why.clone()).or_default() += n.as_u64().unwrap_or(0) as usize;
    }
    let total: usize = skipped.values().sum();
    if total > 0 {
        eprintln!("{task}: skipped {skipped:?}");
    }
    println!("{task}: {agreed} agreed, {disagreed} disagreed, {total} skipped");
    Ok(disagreed == 0 && status.success())
}
