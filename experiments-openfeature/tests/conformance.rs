//! The provider agrees with the engines on the recorded conformance vectors
//! (`../shared/conformance/vectors`, `../shared/decider/vectors`): OpenFeature string
//! evaluations of baseplate `variant` calls whose inputs carry the targeting key, and typed
//! evaluations of decider dynamic configs (`get_int`, `get_float`, `get_string`, `get_bool`,
//! `get_map` core calls).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use experiments_openfeature::{ExperimentsProvider, no_variant_reason};
use experiments_sdk::watch::{
    ConfigSource, ConfigStore, Dialect, Origin, SourceError, SourceGuard,
};
use experiments_sdk::{Config, ExperimentsClient, Inputs, SinkSettings};
use open_feature::{
    Client, EvaluationContext, EvaluationContextFieldValue, EvaluationError, EvaluationErrorCode,
    EvaluationReason, OpenFeature, StructValue,
};
use serde_json::{Map, Value};

fn shared(dir: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared").join(dir)
}

fn vector_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no vectors in {}", dir.display());
    files
}

/// An OpenFeature context for inputs: the `user_id` string as the targeting key, every other
/// input as a custom field of its JSON type (scalars typed, anything else as a
/// `serde_json::Value` structure).
fn context_of(inputs: &Map<String, Value>) -> EvaluationContext {
    let mut ctx = EvaluationContext::default();
    for (k, v) in inputs {
        if let (true, Value::String(s)) = (k == "user_id", v) {
            ctx.targeting_key = Some(s.clone());
            continue;
        }
        let field = match v {
            Value::Bool(b) => EvaluationContextFieldValue::Bool(*b),
            Value::String(s) => EvaluationContextFieldValue::String(s.clone()),
            Value::Number(n) if n.is_i64() => EvaluationContextFieldValue::Int(n.as_i64().unwrap()),
            Value::Number(n) if n.is_f64() => {
                EvaluationContextFieldValue::Float(n.as_f64().unwrap())
            }
            other => EvaluationContextFieldValue::new_struct(other.clone()),
        };
        ctx.add_custom_field(k.clone(), field);
    }
    ctx
}

async fn of_client(client: &ExperimentsClient) -> Client {
    let mut api = OpenFeature::default();
    api.set_provider(ExperimentsProvider::new(client.clone())).await;
    api.create_client()
}

#[derive(Debug, Default)]
struct Tally {
    compared: usize,
    with_variant: usize,
    no_variant: usize,
    python_errors: usize,
    skipped: usize,
    failures: Vec<String>,
}

#[tokio::test]
async fn baseplate_variants_agree_with_the_recordings() {
    let mut t = Tally::default();
    for file in vector_files(&shared("conformance/vectors")) {
        let doc: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        let now = doc["now"].as_f64().unwrap();
        let config = Config::from_value(doc["config"].clone()).unwrap();
        let client = ExperimentsClient::builder()
            .config(config.clone())
            .sink_settings(SinkSettings::None)
            .build()
            .await
            .unwrap();
        let flags = Arc::new(of_client(&client).await);
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        for (ri, request) in doc["requests"].as_array().unwrap().iter().enumerate() {
            // One vector request = one request object, evaluated at the recording's instant;
            // the provider finds it through the task's scope.
            let scoped = Arc::new(client.request_builder().now(now).start());
            let direct = client.request_builder().now(now).start();
            let calls: Vec<Value> = request["calls"].as_array().unwrap().clone();
            let flags = Arc::clone(&flags);
            let config = config.clone();
            let name = name.clone();
            let part = scoped
                .scope(async move {
                    let mut t = Tally::default();
                    for (ci, call) in calls.iter().enumerate() {
                        check_variant_call(&flags, &config, now, &direct, call, &mut t)
                            .await
                            .unwrap_or_else(|e| t.failures.push(format!("{name} {ri}/{ci}: {e}")));
                    }
                    t
                })
                .await;
            t.compared += part.compared;
            t.with_variant += part.with_variant;
            t.no_variant += part.no_variant;
            t.python_errors += part.python_errors;
            t.skipped += part.skipped;
            t.failures.extend(part.failures);
        }
    }
    println!("{t:?}");
    assert!(
        t.failures.is_empty(),
        "{} failures, first: {:#?}",
        t.failures.len(),
        &t.failures[..t.failures.len().min(5)]
    );
    assert!(t.compared > 5_000 && t.with_variant > 1_000 && t.no_variant > 1_000, "{t:?}");
}

async fn check_variant_call(
    flags: &Client,
    config: &Config,
    now: f64,
    direct: &experiments_sdk::RequestExperiments,
    call: &Value,
    t: &mut Tally,
) -> Result<(), String> {
    if call["op"] != "variant" {
        return Ok(());
    }
    let experiment = call["experiment"].as_str().ok_or("no experiment name")?;
    let Some(inputs) = call["inputs"].as_object() else {
        t.skipped += 1;
        return Ok(());
    };
    let lowered: std::collections::HashSet<String> =
        inputs.keys().map(|k| k.to_lowercase()).collect();
    let deviation = config.validation_error(experiment, now).and_then(|e| e.deviation);
    if !inputs.get("user_id").is_some_and(Value::is_string)
        || lowered.len() != inputs.len() // keys equal but for case: order decides, a map has none
        || deviation.is_some()
    {
        t.skipped += 1;
        return Ok(());
    }
    t.compared += 1;
    let ctx = context_of(inputs);
    let got = flags.get_string_details(experiment, Some(&ctx), None).await;
    let expect = &call["expect"];
    if expect.get("python_error").is_some() {
        t.python_errors += 1;
        return match got {
            Err(_) => Ok(()),
            Ok(d) => Err(format!("Python raised {expect}, got {:?}", d.value)),
        };
    }
    let recorded = &expect["variant"];
    // The engine, called directly on the same inputs, agrees with the recording.
    let direct =
        direct.variant(experiment, &Inputs::from(inputs.clone())).map_err(|e| e.to_string())?;
    if direct.map_or(Value::Null, Value::from) != *recorded {
        return Err(format!("direct evaluation {direct:?} != recorded {recorded}"));
    }
    match (recorded, got) {
        (Value::String(v), Ok(d)) if d.value == *v && d.variant.as_deref() == Some(v) => {
            t.with_variant += 1;
            Ok(())
        }
        (Value::Null, Err(e)) if expected_no_variant(config, experiment, now, &e) => {
            t.no_variant += 1;
            Ok(())
        }
        (recorded, got) => Err(format!("recorded {recorded}, OpenFeature {got:?}")),
    }
}

/// The error OpenFeature gives where the engine gives no variant: `FLAG_NOT_FOUND` for an
/// unknown name, `PARSE_ERROR` for an invalid experiment, else the `NO_VARIANT` error whose
/// message says why.
fn expected_no_variant(config: &Config, experiment: &str, now: f64, e: &EvaluationError) -> bool {
    match config.get(experiment) {
        None => e.code == EvaluationErrorCode::FlagNotFound,
        Some(_) if config.validation_error(experiment, now).is_some() => {
            e.code == EvaluationErrorCode::ParseError
        }
        Some(_) => no_variant_reason(e).is_some(),
    }
}

/// Serves one decider document as bytes.
struct Bytes(Vec<u8>);

impl ConfigSource for Bytes {
    fn describe(&self) -> String {
        "vector".into()
    }

    fn start(self: Box<Self>, store: ConfigStore) -> Result<SourceGuard, SourceError> {
        store.offer_bytes(&self.0, Origin::Other("vector".into())).expect("the vector loads");
        Ok(SourceGuard::new(()))
    }
}

/// `null` removed from objects and arrays, at every depth (a `StructValue` has no null).
fn without_nulls(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), without_nulls(v)))
                .collect(),
        ),
        Value::Array(a) => {
            Value::Array(a.iter().filter(|v| !v.is_null()).map(without_nulls).collect())
        }
        other => other.clone(),
    }
}

fn struct_to_json(s: &StructValue) -> Value {
    Value::Object(s.fields.iter().map(|(k, v)| (k.clone(), value_to_json(v))).collect())
}

fn value_to_json(v: &open_feature::Value) -> Value {
    match v {
        open_feature::Value::Bool(b) => Value::Bool(*b),
        open_feature::Value::Int(i) => Value::from(*i),
        open_feature::Value::Float(x) => Value::from(*x),
        open_feature::Value::String(s) => Value::from(s.as_str()),
        open_feature::Value::Array(a) => Value::Array(a.iter().map(value_to_json).collect()),
        open_feature::Value::Struct(s) => struct_to_json(s),
    }
}

/// Order-insensitive equality of objects that still tells integers from floats.
fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| json_eq(p, q))
        }
        (Value::Number(x), Value::Number(y)) => {
            x.is_f64() == y.is_f64() && x.as_f64() == y.as_f64()
        }
        _ => a == b,
    }
}

#[tokio::test]
async fn decider_dynamic_configs_agree_with_the_recordings() {
    let mut t = Tally::default();
    let mut by_outcome = std::collections::BTreeMap::<String, usize>::new();
    for file in vector_files(&shared("decider/vectors")) {
        let doc: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        let bytes = serde_json::to_vec(&doc["config"]).unwrap();
        let client = ExperimentsClient::builder()
            .config_source(Bytes(bytes))
            .dialect(Some(Dialect::Decider))
            .sink_settings(SinkSettings::None)
            .build()
            .await
            .unwrap();
        let snapshot = client.snapshot().unwrap();
        let manifest = snapshot.decider.as_ref().unwrap();
        let flags = of_client(&client).await;
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        for (ci, call) in doc["core_calls"].as_array().unwrap().iter().enumerate() {
            let op = call["op"].as_str().unwrap();
            if !matches!(op, "get_int" | "get_float" | "get_string" | "get_bool" | "get_map") {
                continue;
            }
            let feature = call["feature"].as_str().unwrap();
            let known = manifest.feature(feature);
            // Range features are variants for OpenFeature (strings and booleans by a rule).
            if known.is_some_and(|f| f.is_range()) {
                t.skipped += 1;
                continue;
            }
            let Some(ctx) = call["context"].as_object() else {
                t.skipped += 1;
                continue;
            };
            t.compared += 1;
            let ctx = context_of(ctx);
            let got: Result<Value, EvaluationError> = match op {
                "get_int" => flags.get_int_value(feature, Some(&ctx), None).await.map(Value::from),
                "get_float" => {
                    flags.get_float_value(feature, Some(&ctx), None).await.map(Value::from)
                }
                "get_string" => {
                    flags.get_string_value(feature, Some(&ctx), None).await.map(Value::from)
                }
                "get_bool" => {
                    flags.get_bool_value(feature, Some(&ctx), None).await.map(Value::from)
                }
                _ => flags
                    .get_struct_value::<StructValue>(feature, Some(&ctx), None)
                    .await
                    .map(|s| struct_to_json(&s)),
            };
            let expect = &call["expect"];
            let outcome = match expect.get("error") {
                None => {
                    let want = without_nulls(&expect["value"]);
                    match &got {
                        Ok(v) if json_eq(v, &want) => "value",
                        _ => "",
                    }
                }
                Some(err) => {
                    let class = err["type"].as_str().unwrap_or_default();
                    let message = err["message"].as_str().unwrap_or_default();
                    let code = got.as_ref().err().map(|e| &e.code);
                    let disabled = got.as_ref().err().and_then(no_variant_reason)
                        == Some(EvaluationReason::Disabled);
                    match class {
                        "FeatureNotFoundException"
                            if code == Some(&EvaluationErrorCode::FlagNotFound)
                                || (code == Some(&EvaluationErrorCode::ParseError)
                                    && manifest.errors().contains_key(feature)) =>
                        {
                            "not found"
                        }
                        "ValueTypeMismatchException"
                            if code == Some(&EvaluationErrorCode::TypeMismatch) =>
                        {
                            "type mismatch"
                        }
                        // A disabled config has no value (the reference: a null of no type).
                        "ValueTypeMismatchException"
                            if disabled && known.is_some_and(|f| !f.enabled()) =>
                        {
                            "disabled"
                        }
                        "DeciderException"
                            if message.contains("make_ctx")
                                && code == Some(&EvaluationErrorCode::InvalidContext) =>
                        {
                            "invalid context"
                        }
                        "DeciderException"
                            if message.contains("Number deserialization")
                                && code == Some(&EvaluationErrorCode::TypeMismatch) =>
                        {
                            "number out of type"
                        }
                        _ => "",
                    }
                }
            };
            if outcome.is_empty() {
                t.failures.push(format!(
                    "{name} core call {ci} ({op} {feature}): expected {expect}, got {got:?}"
                ));
            } else {
                *by_outcome.entry(outcome.to_owned()).or_default() += 1;
            }
        }
    }
    println!("{t:?} {by_outcome:?}");
    assert!(
        t.failures.is_empty(),
        "{} failures, first: {:#?}",
        t.failures.len(),
        &t.failures[..t.failures.len().min(5)]
    );
    for outcome in ["value", "not found", "type mismatch", "disabled", "invalid context"] {
        assert!(by_outcome.get(outcome).is_some_and(|n| *n > 5), "{outcome}: {by_outcome:?}");
    }
}
