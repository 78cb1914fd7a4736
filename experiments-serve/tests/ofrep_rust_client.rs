//! Interop with an OFREP client nobody here wrote: the OpenFeature project's Rust provider
//! (`open-feature-ofrep` 0.1.2 from crates.io), through an `open_feature` client, against the
//! server running in-process on `127.0.0.1:0`. Every value it returns is compared with a
//! direct evaluation by the engines over the same config at the same time.
//!
//! What that client does with answers (its `resolver.rs`): every `400` becomes
//! `InvalidContext`, `404` `FlagNotFound`, `401`/`403` a `General` authentication error, a
//! `200` without `value` (the protocol's code-default answer) `ParseError`; the reason is
//! always `STATIC` and metadata is dropped. It sends custom fields as JSON scalars only
//! (structures become their `Debug` text, and it has no `null`), and it puts the flag key into
//! the URL without escaping it: calls that need anything else are skipped and counted.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;

use experiments_sdk::core::{Observer, Step};
use experiments_sdk::decider::{
    DynamicConfigType, Manifest, WrapperContext, WrapperError, WrapperRequest,
};
use experiments_sdk::watch::{
    ConfigSource, ConfigStore, Dialect, Origin, SourceError, SourceGuard,
};
use experiments_sdk::{Config, ExperimentsClient, Inputs, SinkSettings};
use experiments_serve::{ServeReport, ServeSettings, Server};
use http::{HeaderMap, HeaderValue};
use open_feature::provider::FeatureProvider;
use open_feature::{
    EvaluationContext, EvaluationContextFieldValue, EvaluationErrorCode, OpenFeature, StructValue,
};
use open_feature_ofrep::{OfrepOptions, OfrepProvider};
use serde_json::{Map, Value, json};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

// ---------------------------------------------------------------------------------------
// The server and the client
// ---------------------------------------------------------------------------------------

/// A server running in a task of the test's runtime.
struct Running {
    url: String,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<ServeReport, experiments_serve::ServeError>>,
}

async fn serve(client: ExperimentsClient, settings: ServeSettings) -> Running {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let server = Server::new(client, settings).unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(server.run(listener, async move {
        let _ = stopped.await;
    }));
    Running { url, stop, task }
}

impl Running {
    /// Stops the server; every request it answered finished.
    async fn stop(self) -> ServeReport {
        let _ = self.stop.send(());
        let report = self.task.await.unwrap().unwrap();
        assert!(report.drained, "{report:?}");
        report
    }
}

/// The crates.io OFREP provider for `url`, with extra headers.
async fn ofrep_provider(url: &str, headers: HeaderMap) -> OfrepProvider {
    OfrepProvider::new(OfrepOptions { base_url: url.to_owned(), headers, ..Default::default() })
        .await
        .unwrap()
}

/// An OpenFeature client (an API instance of its own: tests run in parallel) over the OFREP
/// provider for `url`.
async fn ofrep_client(url: &str, headers: HeaderMap) -> open_feature::Client {
    let mut api = OpenFeature::default();
    api.set_provider(ofrep_provider(url, headers).await).await;
    api.create_client()
}

/// A config document offered as bytes (the dialect detected or set by the builder).
struct Document(String);

impl ConfigSource for Document {
    fn describe(&self) -> String {
        "interop-test-document".into()
    }

    fn start(self: Box<Self>, store: ConfigStore) -> Result<SourceGuard, SourceError> {
        if let Err(e) = store.offer_bytes(self.0.as_bytes(), Origin::Other("test".into())) {
            store.record_failure(e);
        }
        Ok(SourceGuard::new(()))
    }
}

async fn baseplate_client(config: Config) -> ExperimentsClient {
    ExperimentsClient::builder()
        .config(config)
        .sink_settings(SinkSettings::None)
        .build()
        .await
        .unwrap()
}

async fn decider_client(document: String) -> ExperimentsClient {
    ExperimentsClient::builder()
        .config_source(Document(document))
        .dialect(Some(Dialect::Decider))
        .sink_settings(SinkSettings::None)
        .build()
        .await
        .unwrap()
}

/// `CARGO_MANIFEST_DIR/../../shared/<dir>`, or `None` (with a message) where the sibling
/// `shared` checkout is absent, as in the published package.
fn shared(dir: &str) -> Option<PathBuf> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared").join(dir);
    if path.is_dir() {
        return Some(path);
    }
    assert!(std::env::var_os("CI").is_none(), "{} is missing", path.display());
    eprintln!("skipping: {} is missing", path.display());
    None
}

fn vector_files(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no vectors in {}", dir.display());
    files
}

fn read_json(path: &std::path::Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

// ---------------------------------------------------------------------------------------
// What the client can carry
// ---------------------------------------------------------------------------------------

/// Whether the client puts `flag` into the URL so that the server reads it back unchanged:
/// it formats `{base}/ofrep/v1/evaluate/flags/{flag}` and parses that as a URL, which cuts at
/// `?` and `#`, splits at `/` (and `\`), decodes `%XX` sequences, resolves dot segments and
/// trims or drops spaces and control characters.
fn url_safe(flag: &str) -> bool {
    !flag.is_empty()
        && flag != "."
        && flag != ".."
        && !flag.chars().any(|c| matches!(c, '/' | '\\' | '?' | '#' | '%') || c.is_control())
        && !flag.starts_with(|c: char| c <= ' ')
        && !flag.ends_with(|c: char| c <= ' ')
}

/// A JSON scalar as a custom field of the client (`None`: it has no such field: `null`,
/// lists, objects, integers beyond `i64`).
fn scalar_field(v: &Value) -> Option<EvaluationContextFieldValue> {
    Some(match v {
        Value::Bool(b) => EvaluationContextFieldValue::Bool(*b),
        Value::String(s) => EvaluationContextFieldValue::String(s.clone()),
        Value::Number(n) if n.is_f64() => EvaluationContextFieldValue::Float(n.as_f64()?),
        Value::Number(n) => EvaluationContextFieldValue::Int(n.as_i64()?),
        _ => return None,
    })
}

/// The OFREP context of baseplate inputs: a `user_id` string as the targeting key, every
/// other input as a custom field. The server sorts custom fields by name and adds the
/// targeting key last, so inputs whose order matters (two names equal but for case) are not
/// expressible either.
fn baseplate_context(inputs: &Map<String, Value>) -> Result<EvaluationContext, &'static str> {
    let mut ctx = EvaluationContext::default();
    let mut seen = HashSet::new();
    for (k, v) in inputs {
        if k == "targetingKey" {
            return Err("an input named targetingKey");
        }
        if !seen.insert(k.to_lowercase()) {
            return Err("two inputs whose names differ only in case");
        }
        if let (true, Value::String(s)) = (k == "user_id", v) {
            ctx.targeting_key = Some(s.clone());
            continue;
        }
        let field = scalar_field(v).ok_or(match v {
            Value::Null => "a null input",
            Value::Number(_) => "an integer input beyond i64",
            _ => "a list or dict input",
        })?;
        ctx.custom_fields.insert(k.clone(), field);
    }
    Ok(ctx)
}

/// The OFREP context of `DeciderContext` kwargs: a `user_id` string as the targeting key,
/// the other keywords and the extracted fields as custom fields (the server sends names that
/// are `DeciderContext` keywords to those keywords and every other name to the extracted
/// fields).
fn decider_context(kwargs: &Map<String, Value>) -> Result<EvaluationContext, &'static str> {
    let keywords = WrapperContext::KEYWORDS;
    let mut ctx = EvaluationContext::default();
    for (k, v) in kwargs {
        if k == "extracted_fields" {
            let fields = match v {
                Value::Object(fields) => fields,
                Value::Null | Value::Bool(false) => continue,
                Value::String(s) if s.is_empty() => continue,
                Value::Array(a) if a.is_empty() => continue,
                _ => return Err("extracted_fields that are not an object"),
            };
            for (name, value) in fields {
                if keywords.contains(&name.as_str()) || name == "targetingKey" {
                    return Err("an extracted field named like a keyword");
                }
                let field = scalar_field(value).ok_or("an extracted field that is not a scalar")?;
                ctx.custom_fields.insert(name.clone(), field);
            }
            continue;
        }
        match v {
            Value::Null => {}
            Value::String(s) if k == "user_id" => ctx.targeting_key = Some(s.clone()),
            v => {
                let field = scalar_field(v).ok_or("a keyword that is not a scalar")?;
                ctx.custom_fields.insert(k.clone(), field);
            }
        }
    }
    Ok(ctx)
}

// ---------------------------------------------------------------------------------------
// Outcomes
// ---------------------------------------------------------------------------------------

/// What one evaluation gave, on either side.
#[derive(Clone, Debug, PartialEq)]
enum Got {
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Struct(StructValue),
    Error(EvaluationErrorCode),
}

impl Got {
    fn label(&self) -> String {
        match self {
            Got::Error(code) => format!("error {code}"),
            Got::Bool(_) => "bool".into(),
            Got::Int(_) => "int".into(),
            Got::Float(_) => "float".into(),
            Got::Str(_) => "string".into(),
            Got::Struct(_) => "struct".into(),
        }
    }
}

#[derive(Debug, Default)]
struct Tally {
    agreed: BTreeMap<String, usize>,
    skipped: BTreeMap<&'static str, usize>,
    failures: Vec<String>,
}

impl Tally {
    fn compare(&mut self, what: impl FnOnce() -> String, got: &Got, expected: &[Got]) {
        if expected.contains(got) {
            *self.agreed.entry(got.label()).or_default() += 1;
        } else {
            self.failures.push(format!("{}: OFREP gave {got:?}, expected {expected:?}", what()));
        }
    }

    fn agreed(&self) -> usize {
        self.agreed.values().sum()
    }

    fn skip(&mut self, why: &'static str) {
        *self.skipped.entry(why).or_default() += 1;
    }

    fn assert_clean(&self, name: &str) {
        println!("{name}: {} agreed {:?}, skipped {:?}", self.agreed(), self.agreed, self.skipped);
        assert!(
            self.failures.is_empty(),
            "{name}: {} disagreements, first: {:#?}",
            self.failures.len(),
            &self.failures[..self.failures.len().min(10)]
        );
    }
}

/// A JSON value as the client reads one into a structure (`into_feature_value`: integers
/// that fit `i64` as integers, other numbers as floats, `null` as an empty string).
fn client_value(v: &Value) -> open_feature::Value {
    use open_feature::Value as V;
    match v {
        Value::Null => V::String(String::new()),
        Value::Bool(b) => V::Bool(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => V::Int(i),
            None => V::Float(n.as_f64().unwrap_or_default()),
        },
        Value::String(s) => V::String(s.clone()),
        Value::Array(items) => V::Array(items.iter().map(client_value).collect()),
        Value::Object(m) => V::Struct(client_struct(m)),
    }
}

fn client_struct(m: &Map<String, Value>) -> StructValue {
    let mut s = StructValue::default();
    for (k, v) in m {
        s.add_field(k, client_value(v));
    }
    s
}

// ---------------------------------------------------------------------------------------
// (a) baseplate: sampled conformance calls
// ---------------------------------------------------------------------------------------

/// What a direct evaluation showed besides its result.
#[derive(Default)]
struct Trace {
    invalid: bool,
    missing_bucketing: bool,
}

impl Observer for Trace {
    fn step(&mut self, step: Step<'_>) {
        match step {
            Step::Invalid { .. } => self.invalid = true,
            Step::BucketingValue { value, .. } if value.is_none_or(Value::is_null) => {
                self.missing_bucketing = true;
            }
            _ => {}
        }
    }
}

/// Whole seconds from the recording's `now` to half an hour before the current time: the
/// experiments live when the vectors were recorded are live now, and no boundary recorded
/// next to that instant falls within the test's run.
fn seconds_since(doc: &Value) -> i64 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    now.as_secs() as i64 - doc["now"].as_f64().unwrap() as i64 - 1800
}

/// The config with every experiment's numeric `start_ts` and `stop_ts` moved by `delta`
/// seconds (an integer stays an integer), so that the experiments that were live when the
/// vectors were recorded are live now: the comparison is with the engine now, over this
/// same config, but most calls then have a variant to compare.
fn shifted(config: &Value, delta: i64) -> Value {
    let mut config = config.clone();
    for entry in config.as_object_mut().into_iter().flat_map(|m| m.values_mut()) {
        for field in ["start_ts", "stop_ts"] {
            let Some(Value::Number(n)) = entry.get(field) else { continue };
            let moved = match (n.as_i64(), n.as_f64()) {
                (Some(i), _) if !n.is_f64() => i.checked_add(delta).map(Value::from),
                (_, Some(x)) if n.is_f64() => {
                    serde_json::Number::from_f64(x + delta as f64).map(Value::Number)
                }
                _ => None,
            };
            if let Some(moved) = moved {
                entry[field] = moved;
            }
        }
    }
    config
}

/// Every `STRIDE`-th `variant` call of every `FILE_STRIDE`-th vector file (one file of each
/// of the 13 themes).
const STRIDE: usize = 3;
const FILE_STRIDE: usize = 3;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baseplate_string_values_agree_with_the_engine() {
    let Some(dir) = shared("conformance/vectors") else { return };
    let mut t = Tally::default();
    let (mut with_variant, mut files) = (0, 0);
    for file in vector_files(&dir).iter().step_by(FILE_STRIDE) {
        let doc = read_json(file);
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let config = Config::from_value(shifted(&doc["config"], seconds_since(&doc))).unwrap();
        let client = baseplate_client(config).await;
        let server = serve(client.clone(), ServeSettings::default()).await;
        let flags = ofrep_client(&server.url, HeaderMap::new()).await;
        let calls = doc["requests"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|r| r["calls"].as_array().unwrap())
            .filter(|c| c["op"] == "variant")
            .step_by(STRIDE);
        for (i, call) in calls.enumerate() {
            let experiment = call["experiment"].as_str().unwrap_or_default();
            if !url_safe(experiment) {
                t.skip("a flag key the client cannot put in a URL");
                continue;
            }
            let inputs = call["inputs"].as_object().cloned().unwrap_or_default();
            let ctx = match baseplate_context(&inputs) {
                Ok(ctx) => ctx,
                Err(why) => {
                    t.skip(why);
                    continue;
                }
            };
            let got = match flags.get_string_details(experiment, Some(&ctx), None).await {
                Ok(details) => {
                    if details.variant.as_deref() != Some(details.value.as_str()) {
                        t.failures.push(format!(
                            "{name} #{i} {experiment}: variant {:?} is not the value {:?}",
                            details.variant, details.value
                        ));
                    }
                    Got::Str(details.value)
                }
                Err(e) => Got::Error(e.code),
            };
            // Directly, as the server's request would (a request of its own, now).
            let direct = client.request();
            let mut trace = Trace::default();
            let known = direct.config().get(experiment).is_some();
            let result = direct
                .variant_traced(experiment, &Inputs::from(inputs.clone()), None, &mut trace)
                .map(|(v, _)| v.map(str::to_owned));
            let expected = match result {
                _ if !known => Got::Error(EvaluationErrorCode::FlagNotFound),
                // The engine raised: 400 GENERAL.
                Err(_) => Got::Error(EvaluationErrorCode::InvalidContext),
                Ok(Some(v)) => {
                    with_variant += 1;
                    Got::Str(v)
                }
                // 400 PARSE_ERROR, 400 TARGETING_KEY_MISSING.
                Ok(None) if trace.invalid => Got::Error(EvaluationErrorCode::InvalidContext),
                Ok(None) if trace.missing_bucketing && ctx.targeting_key.is_none() => {
                    Got::Error(EvaluationErrorCode::InvalidContext)
                }
                // 200 without a value: the client's ParseError, the caller's default.
                Ok(None) => Got::Error(EvaluationErrorCode::ParseError),
            };
            let what = || format!("{name} #{i} {experiment} {}", Value::Object(inputs.clone()));
            t.compare(what, &got, std::slice::from_ref(&expected));
            if expected == Got::Error(EvaluationErrorCode::ParseError) {
                // The caller's default applies.
                let v = flags.get_string_value(experiment, Some(&ctx), None).await;
                assert_eq!(v.unwrap_or_else(|_| "dflt".into()), "dflt");
            }
        }
        let report = server.stop().await;
        assert!(report.requests > 0);
        files += 1;
    }
    t.assert_clean("baseplate");
    assert!(files >= 13, "{files} files");
    assert!(t.agreed() >= 150 && with_variant >= 100, "{t:?}, {with_variant} with a variant");
    for kind in ["string", "error PARSE_ERROR", "error FLAG_NOT_FOUND", "error INVALID_CONTEXT"] {
        assert!(t.agreed.get(kind).copied().unwrap_or(0) > 0, "no {kind} outcome: {t:?}");
    }
}

// ---------------------------------------------------------------------------------------
// (b) decider: typed dynamic configs and range features
// ---------------------------------------------------------------------------------------

/// Dynamic configs of every type (a disabled one, a null one, a targeted one, numbers in
/// maps, an integer beyond `f64` precision), range features with a holdout and a mutually
/// exclusive group (from `experiments-cli`'s example), and a broken entry; shared with the
/// Python client's check (`cargo xtask ofrep-python`).
const DECIDER: &str = include_str!("ofrep_python/decider.json");

/// Every flag of `manifest` evaluated for `kwargs` through the client, compared with the
/// wrapper's own getters (`reddit_decider.Decider` over the same manifest).
async fn check_decider_context(
    flags: &open_feature::Client,
    manifest: &Manifest,
    kwargs: &Map<String, Value>,
    what: &str,
    t: &mut Tally,
) {
    let ctx = match decider_context(kwargs) {
        Ok(ctx) => ctx,
        Err(why) => {
            t.skip(why);
            return;
        }
    };
    let wctx = WrapperContext::from_kwargs(kwargs.clone()).unwrap();
    // A context the engine refuses fails every flag first (400 INVALID_CONTEXT).
    let context_ok = wctx.context().is_ok();
    let mut direct = WrapperRequest::new(Some(manifest), wctx, ());
    let invalid = EvaluationErrorCode::InvalidContext;
    let no_value = if context_ok {
        EvaluationErrorCode::ParseError
    } else {
        EvaluationErrorCode::InvalidContext
    };
    let err = |code: &EvaluationErrorCode| Got::Error(code.clone());
    let c = Some(&ctx);
    for feature in manifest.features() {
        let flag = feature.name();
        if !url_safe(flag) {
            t.skip("a flag key the client cannot put in a URL");
            continue;
        }
        let label = || format!("{what} {flag} {}", Value::Object(kwargs.clone()));
        let string =
            |r: open_feature::EvaluationResult<open_feature::EvaluationDetails<String>>| match r {
                Ok(d) => Got::Str(d.value),
                Err(e) => Got::Error(e.code),
            };
        if feature.is_range() {
            let got = string(flags.get_string_details(flag, c, None).await);
            let expected = match direct.try_get_variant_without_expose(flag) {
                Ok(Some(v)) => vec![Got::Str(v.to_owned())],
                // No variant (200 without a value) or the engine refused (400).
                Ok(None) | Err(_) => vec![err(&no_value), err(&invalid)],
            };
            t.compare(label, &got, &expected);
            continue;
        }
        if !feature.enabled() {
            let got = string(flags.get_string_details(flag, c, None).await);
            t.compare(label, &got, &[err(&no_value)]);
            continue;
        }
        let value = feature.dynamic_value().unwrap_or(&Value::Null);
        // A getter the engine refuses is a 400 (GENERAL or INVALID_CONTEXT).
        let or_invalid = |r: Result<Got, WrapperError>| r.unwrap_or_else(|_| err(&invalid));
        match DynamicConfigType::of(value) {
            DynamicConfigType::Boolean => {
                let got = match flags.get_bool_details(flag, c, None).await {
                    Ok(d) => Got::Bool(d.value),
                    Err(e) => Got::Error(e.code),
                };
                t.compare(label, &got, &[or_invalid(direct.try_get_bool(flag).map(Got::Bool))]);
            }
            DynamicConfigType::Integer => {
                let got = match flags.get_int_details(flag, c, None).await {
                    Ok(d) => Got::Int(d.value),
                    Err(e) => Got::Error(e.code),
                };
                t.compare(label, &got, &[or_invalid(direct.try_get_int(flag).map(Got::Int))]);
                // The client reads an integer as a float too, as the wrapper's get_float.
                let got = match flags.get_float_details(flag, c, None).await {
                    Ok(d) => Got::Float(d.value),
                    Err(e) => Got::Error(e.code),
                };
                let expected = match direct.try_get_int(flag) {
                    Ok(_) => or_invalid(direct.try_get_float(flag).map(Got::Float)),
                    Err(_) => err(&invalid),
                };
                t.compare(label, &got, &[expected]);
            }
            DynamicConfigType::Float => {
                let got = match flags.get_float_details(flag, c, None).await {
                    Ok(d) => Got::Float(d.value),
                    Err(e) => Got::Error(e.code),
                };
                t.compare(label, &got, &[or_invalid(direct.try_get_float(flag).map(Got::Float))]);
            }
            DynamicConfigType::String => {
                let got = string(flags.get_string_details(flag, c, None).await);
                let expected = direct.try_get_string(flag).map(|s| Got::Str(s.to_owned()));
                t.compare(label, &got, &[or_invalid(expected)]);
            }
            DynamicConfigType::Map => {
                let got = match flags.get_struct_details::<StructValue>(flag, c, None).await {
                    Ok(d) => Got::Struct(d.value),
                    Err(e) => Got::Error(e.code),
                };
                let expected = direct.try_get_map(flag).map(|m| Got::Struct(client_struct(&m)));
                t.compare(label, &got, &[or_invalid(expected)]);
            }
            // No value: the code-default answer.
            _ => {
                let got = string(flags.get_string_details(flag, c, None).await);
                t.compare(label, &got, &[err(&no_value)]);
            }
        }
    }
    for key in manifest.errors().keys() {
        if manifest.feature(key).is_some() || !url_safe(key) {
            t.skip("a broken entry named like a feature, or not URL-safe");
            continue;
        }
        // 400 PARSE_ERROR (or INVALID_CONTEXT for a context the engine refuses).
        let got = match flags.get_string_details(key, c, None).await {
            Ok(d) => Got::Str(d.value),
            Err(e) => Got::Error(e.code),
        };
        t.compare(|| format!("{what} broken {key}"), &got, &[err(&invalid)]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decider_typed_values_agree_with_the_wrapper() {
    let mut t = Tally::default();
    let mut documents = vec![("inline".to_owned(), DECIDER.to_owned(), Vec::new())];
    let mut contexts = vec![
        json!({"user_id": "t2_a", "country_code": "US", "device_id": "d-1", "logged_in": true}),
        json!({"user_id": "t2_b", "country_code": "CA", "device_id": "d-2",
               "extracted_fields": {"app_name": "ios"}}),
        json!({"user_id": "t2_c", "extracted_fields": {"app_name": "android", "karma": 12}}),
        json!({"device_id": "d-3", "country_code": "US"}),
        json!({"user_id": "t2_d", "logged_in": "yes"}),
    ];
    for i in 0..40 {
        contexts.push(json!({"user_id": format!("t2_{i:x}"), "device_id": format!("dev-{i}"),
            "country_code": if i % 2 == 0 { "US" } else { "DE" },
            "extracted_fields": {"app_name": if i % 3 == 0 { "ios" } else { "web" }}}));
    }
    let contexts: Vec<Map<String, Value>> =
        contexts.into_iter().map(|c| c.as_object().unwrap().clone()).collect();
    documents[0].2 = contexts;
    // The recorded decider documents with dynamic configs, each with contexts of its own
    // requests (every third).
    if let Some(dir) = shared("decider/vectors") {
        for file in vector_files(&dir) {
            let name = file.file_name().unwrap().to_string_lossy().into_owned();
            if !["dynamic_config", "mixed", "edge"].iter().any(|theme| name.contains(theme)) {
                continue;
            }
            let doc = read_json(&file);
            let contexts = doc["requests"]
                .as_array()
                .unwrap()
                .iter()
                .step_by(3)
                .map(|r| r["decider_context"].as_object().unwrap().clone())
                .collect();
            documents.push((name, doc["config"].to_string(), contexts));
        }
        assert!(documents.len() >= 10, "{} decider documents", documents.len());
    }
    for (name, document, contexts) in documents {
        let manifest = Manifest::from_slice(document.as_bytes()).unwrap();
        let server = serve(decider_client(document).await, ServeSettings::default()).await;
        let flags = ofrep_client(&server.url, HeaderMap::new()).await;
        for (i, kwargs) in contexts.iter().enumerate() {
            check_decider_context(&flags, &manifest, kwargs, &format!("{name} #{i}"), &mut t).await;
        }
        server.stop().await;
    }
    t.assert_clean("decider");
    for kind in ["bool", "int", "float", "string", "struct", "error PARSE_ERROR"] {
        assert!(t.agreed.get(kind).copied().unwrap_or(0) > 0, "no {kind} outcome: {t:?}");
    }
    assert!(t.agreed() >= 500, "{t:?}");
}

// ---------------------------------------------------------------------------------------
// (c) errors and authentication
// ---------------------------------------------------------------------------------------

const BASEPLATE: &str = r#"{
  "rollout": {"id": 1, "name": "rollout", "owner": "t", "type": "feature_rollout",
    "version": "1", "start_ts": 1577836800, "stop_ts": 4102444800,
    "experiment": {"experiment_version": 1, "bucket_val": "user_id",
      "variants": [{"name": "on", "size": 1.0}]}},
  "by_device": {"id": 2, "name": "by_device", "owner": "t", "type": "feature_rollout",
    "version": "1", "start_ts": 1577836800, "stop_ts": 4102444800,
    "experiment": {"experiment_version": 1, "bucket_val": "device_id",
      "variants": [{"name": "on", "size": 1.0}]}},
  "broken_example": {"id": "105", "name": "broken_example", "owner": "t",
    "type": "single_variant", "version": "1", "start_ts": 1577836800, "stop_ts": 4102444800,
    "experiment": {"experiment_version": 1, "bucket_val": "user_id",
      "variants": [{"name": "a", "size": 0.5}, {"name": "b", "size": 0.5}]}}
}"#;

fn user(id: &str) -> EvaluationContext {
    EvaluationContext::default().with_targeting_key(id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_map_to_the_clients_codes() {
    let client = baseplate_client(Config::parse(BASEPLATE).unwrap()).await;
    let server = serve(client, ServeSettings::default()).await;
    let provider = ofrep_provider(&server.url, HeaderMap::new()).await;
    let flags = ofrep_client(&server.url, HeaderMap::new()).await;

    // The provider itself and through an OpenFeature client.
    let d = provider.resolve_string_value("rollout", &user("t2_a")).await.unwrap();
    assert_eq!((d.value.as_str(), d.variant.as_deref()), ("on", Some("on")));
    let d = flags.get_string_details("rollout", Some(&user("t2_a")), None).await.unwrap();
    assert_eq!((d.value.as_str(), d.variant.as_deref()), ("on", Some("on")));
    // A variant is not a boolean.
    let e = flags.get_bool_value("rollout", Some(&user("t2_a")), None).await.unwrap_err();
    assert_eq!(e.code, EvaluationErrorCode::ParseError);

    // 404 FLAG_NOT_FOUND.
    let e = provider.resolve_string_value("no_such_flag", &user("t2_a")).await.unwrap_err();
    assert_eq!(e.code, EvaluationErrorCode::FlagNotFound);
    let e = flags.get_int_details("no_such_flag", Some(&user("t2_a")), None).await.unwrap_err();
    assert_eq!(e.code, EvaluationErrorCode::FlagNotFound);

    // 400 TARGETING_KEY_MISSING, 400 PARSE_ERROR: every 400 is the client's InvalidContext.
    let e = flags.get_string_details("rollout", None, None).await.unwrap_err();
    assert_eq!(e.code, EvaluationErrorCode::InvalidContext);
    let e = flags.get_string_details("broken_example", Some(&user("t2_a")), None).await;
    assert_eq!(e.unwrap_err().code, EvaluationErrorCode::InvalidContext);
    // The bucketing field missing while a targeting key is given: 200 without a value.
    let e = flags.get_string_details("by_device", Some(&user("t2_a")), None).await.unwrap_err();
    assert_eq!(e.code, EvaluationErrorCode::ParseError);
    let ctx = user("t2_a").with_custom_field("device_id", "d-1");
    let d = flags.get_string_details("by_device", Some(&ctx), None).await.unwrap();
    assert_eq!(d.value, "on");
    server.stop().await;

    // A context the decider engine refuses (a mistyped keyword): 400 INVALID_CONTEXT.
    let server = serve(decider_client(DECIDER.to_owned()).await, ServeSettings::default()).await;
    let flags = ofrep_client(&server.url, HeaderMap::new()).await;
    let bad = user("t2_a").with_custom_field("logged_in", "yes");
    for flag in ["dc_int", "checkout_redesign"] {
        let e = flags.get_int_details(flag, Some(&bad), None).await.unwrap_err();
        assert_eq!(e.code, EvaluationErrorCode::InvalidContext, "{flag}");
    }
    assert_eq!(flags.get_int_value("dc_int", Some(&user("t2_a")), None).await.unwrap(), 25);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_come_from_the_clients_headers() {
    let client = baseplate_client(Config::parse(BASEPLATE).unwrap()).await;
    let settings = ServeSettings::from_value(
        json!({"auth": {"api_keys": ["k-interop"], "bearer_tokens": ["t-interop"]}}),
    )
    .unwrap();
    let server = serve(client, settings).await;
    let auth_error = EvaluationErrorCode::General("authentication/authorization error".into());

    let flags = ofrep_client(&server.url, HeaderMap::new()).await;
    let e = flags.get_string_details("rollout", Some(&user("t2_a")), None).await.unwrap_err();
    assert_eq!(e.code, auth_error);
    // Even for a flag that does not exist: authentication comes first.
    let e = flags.get_string_details("no_such_flag", Some(&user("t2_a")), None).await;
    assert_eq!(e.unwrap_err().code, auth_error);

    for (header, value, ok) in [
        ("x-api-key", "k-interop", true),
        ("authorization", "Bearer t-interop", true),
        ("x-api-key", "k-wrong", false),
        ("authorization", "Bearer k-interop", false),
    ] {
        let mut headers = HeaderMap::new();
        headers.insert(header, HeaderValue::from_static(value));
        let flags = ofrep_client(&server.url, headers).await;
        let r = flags.get_string_details("rollout", Some(&user("t2_a")), None).await;
        match r {
            Ok(d) if ok => assert_eq!(d.value, "on"),
            Err(e) if !ok => assert_eq!(e.code, auth_error, "{header}: {value}"),
            other => panic!("{header}: {value}: {other:?}"),
        }
    }
    server.stop().await;
}
