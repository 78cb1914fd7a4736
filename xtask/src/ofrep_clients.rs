//! `cargo xtask ofrep-python --python PATH`, `cargo xtask ofrep-js --node-dir DIR`,
//! `cargo xtask ofrep-rust` and `cargo xtask ofrep-web --node-dir DIR --chromium PATH`:
//! interop of `experiments serve` with OFREP clients nobody here wrote, each run driving one:
//!
//! - the OpenFeature Python SDK (`openfeature-sdk==0.10.0`) and its OFREP provider from PyPI
//!   (`openfeature-provider-ofrep==0.3.0`), installed in the interpreter `PATH` names, through
//!   `experiments-serve/tests/ofrep_python/check.py`;
//! - the OpenFeature JavaScript server SDK (`@openfeature/server-sdk@1.23.0`) and its OFREP
//!   provider from npm (`@openfeature/ofrep-provider@0.1.3`, `@openfeature/ofrep-core@0.1.4`),
//!   installed in `DIR/node_modules`, through `experiments-serve/tests/ofrep_js/check.mjs`
//!   run by `node`;
//! - the OpenFeature Rust OFREP provider from crates.io (`open-feature-ofrep` 0.1.2 over
//!   `open-feature` 0.3.0, dependencies of this crate), evaluated in-process by
//!   [`rust_client`] (its own answers stated in [`rust_case`]);
//! - the OpenFeature web SDK (`@openfeature/web-sdk@1.10.0`) and its OFREP web provider
//!   (`@openfeature/ofrep-web-provider@0.4.3`), installed in `DIR/node_modules` with esbuild,
//!   in headless Chromium (`PATH`) through `experiments-serve/tests/ofrep_web/check.mjs`
//!   ([`web_client`], `ofrep_web.rs`): it evaluates from bulk answers, across origins, so the
//!   servers allow the page's origin (CORS) and a second origin must be refused.
//!
//! The runs share everything but the client. The task builds the CLI, writes configs (a
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
//! `ofrep-python: N agreed, M disagreed, K skipped` (`ofrep-js: ...`, `ofrep-rust: ...`,
//! `ofrep-web: ...`; a browser's preflights are counted from each server's `/metrics`);
//! exits 1 on any disagreement, 2 when the run itself fails.
//!
//! The cases file the scripts read (`plan.json` in the work directory):
//!
//! ```text
//! PLAN: {"groups": [{"name", "url", "headers": {..}|null, "keys": [every flag of the config],
//!         "cases": [CASE...]}], "raw": [RAW...]}
//! CASE: {"id", "flag", "type": "string"|"boolean"|"integer"|"float"|"object",
//!        "targeting_key": str|null (or another JSON value: a context the server refuses),
//!        "attributes": {..}, "expect": EXPECT,
//!        "needs_number_types": bool (a number a client whose integers and floats are one
//!        type cannot carry unchanged: see `lossy_number`),
//!        "expect_one_number_type"?: EXPECT (the answer such a client gets where it sends
//!        other inputs, integral floats as integers, or asks a float of an integer),
//!        "expect_as_integer"?: EXPECT (a float asked of an integer config: the integer
//!        getter's own answer, for a client whose float getter reads integers),
//!        "unauthorized"?: true (the server refuses the group's credentials: a 401)}
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

use crate::ofrep_web::{self, PageServer};
use experiments_core::{
    Config, Experiments, ForcedReason, Inputs, NoopHandler, Observer, Step, Value,
};
use experiments_decider::{
    DecideError, DynamicConfigType, Manifest, WrapperContext, WrapperError, WrapperRequest,
};
use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use open_feature::provider::{FeatureProvider, ResolutionDetails};
use open_feature::{
    EvaluationContext, EvaluationContextFieldValue, EvaluationErrorCode, EvaluationReason,
    StructValue,
};
use open_feature_ofrep::{OfrepOptions, OfrepProvider};
use serde_json::{Map, json};
use xtask::conformance::collect_files;
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
    /// The crates.io provider, linked into this task: [`rust_client`].
    Rust,
    /// The npm prefix whose `node_modules` holds the web SDK, the web provider and esbuild,
    /// and the Chromium that runs the page: [`web_client`].
    Web { node_dir: PathBuf, chromium: PathBuf },
}

impl Client {
    /// The task's name, the prefix of its messages.
    fn task(&self) -> &'static str {
        match self {
            Client::Python(_) => "ofrep-python",
            Client::Js(_) => "ofrep-js",
            Client::Rust => "ofrep-rust",
            Client::Web { .. } => "ofrep-web",
        }
    }

    /// Whether the plan gets the raw bulk / `304` / `401` checks (only the Python script
    /// makes them: they test the server, once is enough).
    fn raw_checks(&self) -> bool {
        matches!(self, Client::Python(_))
    }

    /// The command that runs the client's script over the plan into the result file (`None`:
    /// the task drives the client itself).
    fn command(&self, root: &Path, plan: &Path, result: &Path) -> Option<Command> {
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
            Client::Rust | Client::Web { .. } => return None,
        };
        command.arg(plan).arg(result);
        Some(command)
    }
}

/// Runs `cargo xtask TASK` (`ofrep-python`, `ofrep-js` or `ofrep-rust`): 0 when everything
/// agreed, 1 on a disagreement, 2 when it could not run.
pub fn run(task: &str, args: &[String]) -> ExitCode {
    let usage = format!(
        "usage: cargo xtask {task} {}[--vectors DIR] [--decider-vectors DIR]",
        match task {
            "ofrep-js" => "--node-dir DIR ",
            "ofrep-python" => "--python PATH ",
            "ofrep-web" => "--node-dir DIR --chromium PATH ",
            _ => "",
        }
    );
    let mut client = (task == "ofrep-rust").then_some(Client::Rust);
    let (mut web_dir, mut chromium) = (None, None);
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
            ("--node-dir", Some(d)) if task == "ofrep-web" => web_dir = Some(PathBuf::from(d)),
            ("--chromium", Some(p)) if task == "ofrep-web" => chromium = Some(PathBuf::from(p)),
            ("--vectors", Some(d)) => vectors = PathBuf::from(d),
            ("--decider-vectors", Some(d)) => decider_vectors = PathBuf::from(d),
            _ => {
                eprintln!("{usage}");
                return ExitCode::from(2);
            }
        }
    }
    if let (Some(node_dir), Some(chromium)) = (web_dir, chromium) {
        client = Some(Client::Web { node_dir, chromium });
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
/// logs warnings only and, given a page's origin, lets browsers there call it.
fn start(
    bin: &Path,
    work: &Path,
    spec: &ServerSpec,
    origin: Option<&str>,
) -> Result<Server, String> {
    let mut serve = json!({});
    if spec.auth {
        serve["auth"] = json!({"api_keys": [API_KEY], "bearer_tokens": [BEARER]});
    }
    if let Some(origin) = origin {
        serve["cors"] = json!({"allowed_origins": [origin]});
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
        put_input(&mut key, &mut attributes, k, v);
    }
    context_of(key, attributes)
}

/// Puts one input into a context: a non-empty `user_id` string as the targeting key, any
/// other input as an attribute.
fn put_input(key: &mut Value, attributes: &mut Map<String, Value>, name: &str, value: &Value) {
    match value {
        Value::String(s) if name == "user_id" && !s.is_empty() => *key = Value::from(s.as_str()),
        _ => {
            attributes.insert(name.to_owned(), value.clone());
        }
    }
}

/// The context of `key` and `attributes`, or why a client cannot carry the attributes.
fn context_of(key: Value, attributes: Map<String, Value>) -> Result<(Value, Value), &'static str> {
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
        if !v.is_null() {
            put_input(&mut key, &mut attributes, k, v);
        }
    }
    context_of(key, attributes)
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
    /// Every flag of the server's config (what its bulk answer holds).
    keys: Vec<String>,
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
    let files = collect_files(&[vectors.to_path_buf()])?;
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
        let keys = baseplate_keys(&config);
        if plan.raw.is_empty()
            && let Some(first) = cases.first()
        {
            let context = (first["targeting_key"].clone(), first["attributes"].clone());
            let inputs = first["attributes"].as_object().cloned().unwrap_or_default();
            let mut inputs = Inputs::from(inputs);
            if let Value::String(k) = &context.0 {
                inputs.insert("user_id", k.as_str());
            }
            let expect: Map<String, Value> = keys
                .iter()
                .map(|k| {
                    (k.clone(), expect_baseplate(&config, at, k, &inputs, context.0.is_string()))
                })
                .collect();
            plan.raw.push(bulk_check(server, &name, Value::Null, &context, &keys, expect));
        }
        plan.groups.push(Group { name: name.clone(), server, headers: Value::Null, keys, cases });
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
    for file in collect_files(&[vectors.to_path_buf()])? {
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
        let keys = decider_keys(&manifest);
        let mut flags = keys.clone();
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
                    let mut float = case(
                        format!("#{ci}"),
                        flag,
                        "float",
                        context.clone(),
                        error("TYPE_MISMATCH"),
                    );
                    float["expect_as_integer"] = expect.clone();
                    cases.push(with_one_number_type(float, Some(one.unwrap_or(expect))));
                }
            }
            if first && ci == 0 {
                let expect: Map<String, Value> = keys
                    .iter()
                    .map(|k| (k.clone(), expect_decider(&manifest, kwargs, k, key).1))
                    .collect();
                plan.raw.push(bulk_check(server, &name, Value::Null, &context, &keys, expect));
            }
        }
        first = false;
        plan.groups.push(Group { name, server, headers: Value::Null, keys, cases });
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
            c["unauthorized"] = Value::Bool(true);
            c
        })
        .collect();
    let keys = baseplate_keys(&config);
    plan.groups.push(Group {
        name: "example without credentials".into(),
        server,
        headers: Value::Null,
        keys: keys.clone(),
        cases: unauthorized.clone(),
    });
    plan.groups.push(Group {
        name: "example with a wrong key".into(),
        server,
        headers: json!({"X-API-Key": "k-wrong"}),
        keys: keys.clone(),
        cases: unauthorized,
    });
    plan.groups.push(Group {
        name: "example with the bearer token".into(),
        server,
        headers: json!({"Authorization": format!("Bearer {BEARER}")}),
        keys: keys.clone(),
        cases: cases.iter().step_by(3).cloned().collect(),
    });
    plan.groups.push(Group {
        name: "example with the API key".into(),
        server,
        headers: json!({"X-API-Key": API_KEY}),
        keys,
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
    plan.raw.push(Raw {
        server,
        check: json!({"kind": "unauthorized", "context": ofrep_context(&context)}),
    });
    let headers = json!({"X-API-Key": API_KEY});
    plan.raw.push(bulk_check(server, "example", headers, &context, &keys, expect));
    Ok(())
}

/// A raw bulk check of `server`: every flag of `keys` for `context` as `expect` says, its
/// `ETag` and `304`, and another targeting key's new tag.
fn bulk_check(
    server: usize,
    name: &str,
    headers: Value,
    context: &(Value, Value),
    keys: &[String],
    expect: Map<String, Value>,
) -> Raw {
    let mut other = ofrep_context(context);
    other["targetingKey"] = Value::from("t2_another_user");
    Raw {
        server,
        check: json!({"kind": "bulk", "name": name, "headers": headers,
                      "context": ofrep_context(context), "other_context": other,
                      "keys": keys, "expect": expect}),
    }
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
    if let Client::Web { node_dir, .. } = client {
        ofrep_web::check_node_dir(node_dir)?;
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

    // The web page's origins come first: the servers allow the one it is served from.
    let page = match client {
        Client::Web { node_dir, .. } => {
            ofrep_web::build_page(root, node_dir, &work)?;
            Some(ofrep_web::PageServer::start(&work)?)
        }
        _ => None,
    };
    let mut servers = Vec::new();
    for spec in &plan.servers {
        servers.push(start(&bin, &work, spec, page.as_ref().map(|p| p.origin.as_str()))?);
    }
    let groups: Vec<Value> = plan
        .groups
        .iter()
        .map(|g| {
            json!({"name": g.name, "url": servers[g.server].process.url(), "headers": g.headers,
                        "keys": g.keys, "cases": g.cases})
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
    let (result, ran) = match client.command(root, &plan_path, &result_path) {
        Some(mut command) => {
            let status = command
                .status()
                .map_err(|e| format!("cannot run {:?}: {e}", command.get_program()))?;
            let result = read_json(&result_path)
                .map_err(|e| format!("{command:?} ended with {status} and no result: {e}"))?;
            (result, status.success())
        }
        None => {
            let result = match (client, &page) {
                (Client::Web { node_dir, chromium }, Some(page)) => {
                    web_client(page, node_dir, chromium, &work, &servers)?
                }
                _ => rust_client(&groups)?,
            };
            write_json(&result_path, &result)?;
            (result, true)
        }
    };
    let mut agreed = result["agreed"].as_u64().unwrap_or(0);
    let mut disagreed = result["disagreed"].as_u64().unwrap_or(u64::MAX);
    if let Some(what) = result["client"].as_str() {
        eprintln!("{task}: {what}");
    }
    eprintln!("{task}: outcomes {}", result["by_kind"]);

    // Every server's accounting: each request the script made, nothing lost.
    for (i, server) in servers.into_iter().enumerate() {
        let Server { name, process } = server;
        let mut made = result["requests"][&process.url()].as_u64().unwrap_or(0);
        if page.is_some() {
            // The browser's preflights, and the scrape that counts them.
            made += ofrep_web::preflights(process.addr())? + 1;
        }
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
    Ok(disagreed == 0 && ran)
}

// ---------------------------------------------------------------------------------------
// The web client, in a browser
// ---------------------------------------------------------------------------------------

/// Runs the page over the plan (`plan.json` beside it) from the origin the servers allow,
/// then from another origin against the first server: the browser must keep the answers
/// from the provider there (one more check, `refused from another origin`).
fn web_client(
    page: &PageServer,
    node_dir: &Path,
    chromium: &Path,
    work: &Path,
    servers: &[Server],
) -> Result<Value, String> {
    let url = format!("{}/index.html", page.origin);
    let mut result = page.run_page(chromium, &work.join("chromium"), &url, "/result")?;
    if let Some(error) = result.get("error") {
        return Err(format!("the page failed: {}", error.as_str().unwrap_or_default()));
    }
    let first = servers.first().ok_or("no server")?.process.url();
    let url = format!("{}/index.html?refused={first}", page.other_origin);
    let refused = page.run_page(chromium, &work.join("chromium-refused"), &url, "/refused")?;
    if refused["refused"] == true {
        result["agreed"] = Value::from(result["agreed"].as_u64().unwrap_or(0) + 1);
        result["by_kind"]["refused from another origin"] = Value::from(1);
    } else {
        let failure = format!("another origin was not refused: {refused}");
        eprintln!("DISAGREE {failure}");
        result["disagreed"] = Value::from(result["disagreed"].as_u64().unwrap_or(0) + 1);
        if let Some(failures) = result["failures"].as_array_mut() {
            failures.push(Value::from(failure));
        }
    }
    let browser = result["client"].as_str().unwrap_or("a browser").to_owned();
    result["client"] = Value::from(format!("{browser}; {}", ofrep_web::versions(node_dir)));
    for line in result["failures"].as_array().into_iter().flatten().take(30) {
        eprintln!("DISAGREE {}", line.as_str().unwrap_or_default());
    }
    Ok(result)
}

// ---------------------------------------------------------------------------------------
// The Rust client, in-process
// ---------------------------------------------------------------------------------------

/// What `cargo xtask ofrep-rust` drives (this crate's dependencies, pinned in its
/// `Cargo.toml`).
const RUST_CLIENT: &str = "open-feature-ofrep 0.1.2 over open-feature 0.3.0, in-process";

/// An answer of the Rust provider: a value of its getter's type, or its error code.
#[derive(Debug, PartialEq)]
enum Answer {
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Struct(StructValue),
    Error(EvaluationErrorCode),
}

/// What the Rust provider should do with a case: its context, its answer (with a value: the
/// variant too; the reason is always `STATIC` and there is no metadata) and the outcome's
/// name for the tally.
struct RustCase {
    context: EvaluationContext,
    answer: Answer,
    variant: Option<String>,
    kind: String,
}

/// The Rust provider's case for a plan case, or why it cannot be asked (`Err(Ok(why))`: a
/// skip) or has no stated answer (`Err(Err(problem))`: a disagreement). Where the plan's
/// `expect` (what the protocol means, and what the Python client gives) is not this client's
/// answer, the difference is the provider's own (`open-feature-ofrep` 0.1.2, `resolver.rs`)
/// and stated here, nowhere else.
fn rust_case(c: &Value) -> Result<RustCase, Result<&'static str, String>> {
    let flag = c["flag"].as_str().unwrap_or_default();
    if flag.ends_with(|ch: char| ch <= ' ') {
        // It formats `{base}/ofrep/v1/evaluate/flags/{flag}` with the key unescaped and
        // reqwest's URL parser (WHATWG) trims spaces from the end: the server would get
        // another key. (The rest of what a URL cannot carry the plan skips: `url_safe`.)
        return Err(Ok("a flag key with spaces at the end, which the URL parser trims"));
    }
    // Its context holds a string targeting key and scalar custom fields: `null`, lists and
    // objects it cannot send (a structure goes out as its `Debug` text), nor an integer
    // beyond `i64`. Integers and floats stay apart (`1.0` is sent as `1.0`), so the plan's
    // `expect` holds, not `expect_one_number_type`.
    let mut context = EvaluationContext::default();
    match &c["targeting_key"] {
        Value::Null => {}
        Value::String(k) => context.targeting_key = Some(k.clone()),
        _ => return Err(Ok("a targeting key that is not a string, which its context cannot hold")),
    }
    for (name, v) in c["attributes"].as_object().into_iter().flatten() {
        let field = match v {
            Value::Bool(b) => EvaluationContextFieldValue::Bool(*b),
            Value::String(s) => EvaluationContextFieldValue::String(s.clone()),
            Value::Number(n) => match (n.is_f64(), n.as_i64(), n.as_f64()) {
                (false, Some(i), _) => EvaluationContextFieldValue::Int(i),
                (true, _, Some(x)) => EvaluationContextFieldValue::Float(x),
                _ => return Err(Ok("an integer input beyond i64, which its context cannot hold")),
            },
            Value::Null => return Err(Ok("a null input, which its context cannot hold")),
            _ => return Err(Ok("a list or object input, which it sends as Debug text")),
        };
        context.custom_fields.insert(name.clone(), field);
    }
    let kind = c["type"].as_str().unwrap_or_default();
    let mut exp = &c["expect"];
    let mut plan_kind = exp["error"].as_str().unwrap_or("value").to_owned();
    if kind == "float" && exp["error"] == "TYPE_MISMATCH" {
        // Its float getter reads the answer with `as_f64`, which takes an integer: where the
        // Python provider answers TYPE_MISMATCH, it gets the integer config's answer.
        exp = &c["expect_as_integer"];
        plan_kind = "float of an integer".into();
    }
    if exp["error"].is_null() && exp.get("value").is_none() {
        plan_kind = "no value".into();
    }
    let error = |code| (Answer::Error(code), None);
    let (answer, variant) = if c["unauthorized"] == true {
        // A 401 (or 403): a General error of its own text.
        error(EvaluationErrorCode::General("authentication/authorization error".into()))
    } else {
        match (exp["error"].as_str(), exp.get("value")) {
            // A 404.
            (Some("FLAG_NOT_FOUND"), _) => error(EvaluationErrorCode::FlagNotFound),
            // The server answers these codes with a 400, and it reads every 400 as
            // InvalidContext whatever the body's `errorCode`.
            (Some("INVALID_CONTEXT" | "PARSE_ERROR" | "TARGETING_KEY_MISSING" | "GENERAL"), _) => {
                error(EvaluationErrorCode::InvalidContext)
            }
            (Some(code), _) => return Err(Err(format!("no answer stated for {code}"))),
            // The protocol's code-default answer (200, no `value`): its getters read the
            // missing `value` as `null`, which none converts: ParseError. The caller's default
            // applies either way, as the server means it to.
            (None, None) => error(EvaluationErrorCode::ParseError),
            // A value, read by the getter's converter (`as_bool`, `as_i64`, `as_f64`, `as_str`,
            // a structure through `into_feature_value`); one it does not convert (an integer
            // beyond `i64` for the integer getter) is a ParseError.
            (None, Some(v)) => {
                let answer = match kind {
                    "boolean" => v.as_bool().map(Answer::Bool),
                    "integer" => v.as_i64().map(Answer::Int),
                    "float" => v.as_f64().map(Answer::Float),
                    "string" => v.as_str().map(|s| Answer::Str(s.to_owned())),
                    "object" => v.as_object().map(|m| Answer::Struct(struct_value(m))),
                    _ => return Err(Err(format!("no getter for type {kind:?}"))),
                };
                match answer {
                    Some(a) => (a, exp["variant"].as_str().map(str::to_owned)),
                    None => error(EvaluationErrorCode::ParseError),
                }
            }
        }
    };
    let label = match &answer {
        Answer::Error(code) => format!("{code:?}"),
        _ => "value".into(),
    };
    Ok(RustCase { context, answer, variant, kind: format!("{plan_kind} -> {label}") })
}

/// A JSON object as the provider reads a structure (`into_feature_value`): integers that fit
/// `i64` as integers, other numbers as floats, `null` as an empty string.
fn struct_value(m: &Map<String, Value>) -> StructValue {
    fn feature_value(v: &Value) -> open_feature::Value {
        use open_feature::Value as V;
        match v {
            Value::Null => V::String(String::new()),
            Value::Bool(b) => V::Bool(*b),
            Value::Number(n) => match n.as_i64() {
                Some(i) => V::Int(i),
                None => V::Float(n.as_f64().unwrap_or_default()),
            },
            Value::String(s) => V::String(s.clone()),
            Value::Array(items) => V::Array(items.iter().map(feature_value).collect()),
            Value::Object(m) => V::Struct(struct_value(m)),
        }
    }
    let mut s = StructValue::default();
    for (k, v) in m {
        s.add_field(k, feature_value(v));
    }
    s
}

/// With a value: the answer's variant, reason and whether it had metadata.
type ValueDetails = (Option<String>, Option<EvaluationReason>, bool);

/// One evaluation through the provider's getter for `kind`: the answer and, with a value,
/// the variant, reason and metadata.
async fn rust_evaluate(
    provider: &OfrepProvider,
    kind: &str,
    flag: &str,
    context: &EvaluationContext,
) -> (Answer, Option<ValueDetails>) {
    fn split<T>(
        r: open_feature::EvaluationResult<ResolutionDetails<T>>,
        f: fn(T) -> Answer,
    ) -> (Answer, Option<ValueDetails>) {
        match r {
            Ok(d) => (f(d.value), Some((d.variant, d.reason, d.flag_metadata.is_some()))),
            Err(e) => (Answer::Error(e.code), None),
        }
    }
    match kind {
        "boolean" => split(provider.resolve_bool_value(flag, context).await, Answer::Bool),
        "integer" => split(provider.resolve_int_value(flag, context).await, Answer::Int),
        "float" => split(provider.resolve_float_value(flag, context).await, Answer::Float),
        "object" => split(provider.resolve_struct_value(flag, context).await, Answer::Struct),
        _ => split(provider.resolve_string_value(flag, context).await, Answer::Str),
    }
}

/// Evaluates the plan's groups (with their servers' URLs) through the crates.io provider, one
/// per group with its headers, and compares each answer with [`rust_case`]'s: the answer,
/// and with a value the variant, reason `STATIC` and no metadata. Returns the scripts'
/// RESULT.
fn rust_client(groups: &[Value]) -> Result<Value, String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("tokio runtime: {e}"))?;
    runtime.block_on(async {
        let (mut agreed, mut failures) = (0u64, Vec::new());
        let mut by_kind: BTreeMap<String, u64> = BTreeMap::new();
        let mut skipped: BTreeMap<&str, u64> = BTreeMap::new();
        let mut requests: BTreeMap<String, u64> = BTreeMap::new();
        for group in groups {
            let url = group["url"].as_str().unwrap_or_default();
            let mut headers = HeaderMap::new();
            for (name, value) in group["headers"].as_object().into_iter().flatten() {
                let name = HeaderName::from_bytes(name.as_bytes()).map_err(|e| e.to_string())?;
                let value = HeaderValue::from_str(value.as_str().unwrap_or_default())
                    .map_err(|e| e.to_string())?;
                headers.insert(name, value);
            }
            let options = OfrepOptions { base_url: url.to_owned(), headers, ..Default::default() };
            let provider = OfrepProvider::new(options).await.map_err(|e| format!("{url}: {e}"))?;
            for c in group["cases"].as_array().into_iter().flatten() {
                let what = format!("{} {} {} ({})", group["name"], c["id"], c["flag"], c["type"]);
                let case = match rust_case(c) {
                    Ok(case) => case,
                    Err(Ok(why)) => {
                        *skipped.entry(why).or_default() += 1;
                        continue;
                    }
                    Err(Err(problem)) => {
                        failures.push(format!("{what}: {problem}"));
                        continue;
                    }
                };
                let flag = c["flag"].as_str().unwrap_or_default();
                let kind = c["type"].as_str().unwrap_or_default();
                let (answer, details) = rust_evaluate(&provider, kind, flag, &case.context).await;
                *requests.entry(url.to_owned()).or_default() += 1;
                let mut problems = Vec::new();
                if answer != case.answer {
                    problems.push(format!("{answer:?}, expected {:?}", case.answer));
                } else if let Some((variant, reason, metadata)) = details {
                    if variant != case.variant {
                        problems.push(format!("variant {variant:?}, expected {:?}", case.variant));
                    }
                    if reason != Some(EvaluationReason::Static) {
                        problems.push(format!("reason {reason:?}, expected STATIC"));
                    }
                    if metadata {
                        problems.push("metadata, where it drops it".into());
                    }
                }
                if problems.is_empty() {
                    agreed += 1;
                    *by_kind.entry(case.kind).or_default() += 1;
                } else {
                    failures.push(format!("{what}: {}", problems.join("; ")));
                }
            }
        }
        for line in failures.iter().take(30) {
            eprintln!("DISAGREE {line}");
        }
        Ok(json!({"agreed": agreed, "disagreed": failures.len(), "by_kind": by_kind,
                  "requests": requests, "failures": failures, "skipped": skipped,
                  "client": RUST_CLIENT}))
    })
}
