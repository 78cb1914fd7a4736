//! The conformance runner for reddit-decider vector files (`../shared/decider/README.md`):
//! file loads, load cases, core calls, load-case core calls and the wrapper `requests`,
//! replayed through the public API of `experiments-decider` (the wrapper calls through
//! `WrapperRequest`).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use experiments_decider::{
    Context, DecideError, Decision, Deviation, ErrorKind, EventStamp, InitError, Manifest, Uuid,
    WrapperContext, WrapperEvent, WrapperRequest,
};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};

use crate::conformance::Summary;

/// A vector file is a decider file when it names the `reddit-decider` package.
pub fn is_decider_file(doc: &Value) -> bool {
    doc.get("packages").and_then(|p| p.get("reddit-decider")).is_some()
}

enum Verdict {
    Pass,
    Deviated(&'static str),
    Fail(String),
}

fn label(d: Deviation) -> &'static str {
    match d {
        Deviation::ArrayValue => "array_dynamic_config_value",
        Deviation::Cycle => "parent_cycle",
        _ => "other",
    }
}

/// The configs of a vector file as the recorder wrote them: the reference read exactly these
/// number literals (its float parsing depends on how a number is spelled), so they are
/// replayed from the text, not re-serialized.
#[derive(Deserialize)]
struct RawConfigs<'a> {
    #[serde(borrow)]
    config: &'a RawValue,
    #[serde(default, borrow)]
    load_cases: Vec<RawLoadCase<'a>>,
    #[serde(default, borrow)]
    requests: Vec<RawRequest<'a>>,
}

/// The recorded wrapper events as text, to compare the records byte for byte.
#[derive(Deserialize)]
struct RawRequest<'a> {
    #[serde(default, borrow)]
    calls: Vec<RawCall<'a>>,
}

#[derive(Deserialize)]
struct RawCall<'a> {
    #[serde(borrow)]
    expect: RawExpect<'a>,
}

#[derive(Deserialize)]
struct RawExpect<'a> {
    #[serde(default, borrow)]
    events: Option<Vec<&'a RawValue>>,
}

#[derive(Deserialize)]
struct RawLoadCase<'a> {
    #[serde(default, borrow)]
    config: Option<&'a RawValue>,
}

/// Replays one decider vector file from its text (configs replayed byte for byte).
pub fn run_text(name: &str, text: &str, doc: &Value) -> Result<Summary, String> {
    let raw: RawConfigs<'_> = serde_json::from_str(text).map_err(|e| format!("{name}: {e}"))?;
    let cases: Vec<Option<&str>> =
        raw.load_cases.iter().map(|c| c.config.map(RawValue::get)).collect();
    replay(name, doc, Some(raw.config.get()), &cases, Some(&raw.requests))
}

/// Replays one parsed decider vector document (configs re-serialized from the tree).
pub fn run_document(name: &str, doc: &Value) -> Result<Summary, String> {
    replay(name, doc, None, &[], None)
}

fn replay(
    name: &str,
    doc: &Value,
    raw_config: Option<&str>,
    raw_cases: &[Option<&str>],
    raw_requests: Option<&[RawRequest<'_>]>,
) -> Result<Summary, String> {
    let mut s = Summary { files: 1, ..Summary::default() };
    let config = doc.get("config").ok_or_else(|| format!("{name}: missing `config`"))?;
    let text = match raw_config {
        Some(t) => t.to_owned(),
        None => serde_json::to_string(config).map_err(|e| format!("{name}: {e}"))?,
    };
    let load = doc.get("load").ok_or_else(|| format!("{name}: missing `load`"))?;
    let manifest = replay_load(&mut s, name, "file load", text.as_bytes(), load);
    if let Some(m) = &manifest {
        replay_calls(&mut s, name, "core_calls", m, doc.get("core_calls"))?;
    }
    replay_requests(&mut s, name, manifest.as_ref(), doc.get("requests"), raw_requests)?;
    for (i, case) in
        doc.get("load_cases").and_then(Value::as_array).into_iter().flatten().enumerate()
    {
        let text = match (case.get("config_text"), case.get("config")) {
            (Some(Value::String(t)), _) => t.clone(),
            (_, Some(_)) if raw_cases.get(i).copied().flatten().is_some() => {
                raw_cases[i].unwrap_or_default().to_owned()
            }
            (_, Some(c)) => serde_json::to_string(c).map_err(|e| format!("{name}: {e}"))?,
            _ => return Err(format!("{name}: load case {i} has no config")),
        };
        let load = case.get("load").ok_or_else(|| format!("{name}: load case {i}: no `load`"))?;
        let what = format!("load case {i}");
        let manifest = replay_load(&mut s, name, &what, text.as_bytes(), load);
        if let Some(m) = &manifest {
            replay_calls(&mut s, name, &format!("{what} core_calls"), m, case.get("core_calls"))?;
        }
    }
    Ok(s)
}

fn record(s: &mut Summary, name: &str, what: &str, op: &str, verdict: Verdict) {
    *s.ops.entry(format!("decider {op}")).or_default() += 1;
    match verdict {
        Verdict::Pass => s.passed += 1,
        Verdict::Deviated(d) => *s.deviated.entry(d).or_default() += 1,
        Verdict::Fail(diff) => {
            s.failed += 1;
            s.failures.push(format!("FAIL {name} {what}:\n{diff}"));
        }
    }
}

/// Loads and compares with the recorded LOAD; returns the manifest when calls should follow.
fn replay_load(
    s: &mut Summary,
    name: &str,
    what: &str,
    bytes: &[u8],
    expect: &Value,
) -> Option<Manifest> {
    let got = Manifest::from_slice(bytes);
    let status = expect.get("status").and_then(Value::as_str).unwrap_or("?");
    let describe = |got: &Result<Manifest, InitError>| match got {
        Ok(m) if m.errors().is_empty() => "ok".to_owned(),
        Ok(m) => format!(
            "partial {:?}",
            m.errors().iter().map(|(k, v)| format!("{k}: {v}")).collect::<Vec<_>>()
        ),
        Err(e) => format!("init_error {e}"),
    };
    let verdict = match (status, &got) {
        ("ok", Ok(m)) if m.errors().is_empty() => Verdict::Pass,
        ("partial", Ok(m)) => {
            let want: BTreeSet<&str> = expect
                .get("errors")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
                .map(|(k, _)| k.as_str())
                .collect();
            let have: BTreeSet<&str> = m.errors().keys().map(String::as_str).collect();
            if want == have {
                Verdict::Pass
            } else {
                Verdict::Fail(format!("  expected: {expect}\n  got:      {}", describe(&got)))
            }
        }
        ("init_error", Err(_))
            if expect.get("exception").and_then(Value::as_str) == Some("DeciderInitException") =>
        {
            Verdict::Pass
        }
        // The reference panics on an array dynamic-config value; the port rejects the entry.
        ("init_error", Ok(m))
            if expect.get("exception").and_then(Value::as_str) == Some("PanicException")
                && m.errors().values().any(|e| e.deviation() == Some(Deviation::ArrayValue)) =>
        {
            Verdict::Deviated(label(Deviation::ArrayValue))
        }
        _ => Verdict::Fail(format!("  expected: {expect}\n  got:      {}", describe(&got))),
    };
    record(s, name, what, "load", verdict);
    match (status, got) {
        ("ok" | "partial", Ok(m)) => Some(m),
        _ => None,
    }
}

fn replay_calls(
    s: &mut Summary,
    name: &str,
    what: &str,
    m: &Manifest,
    calls: Option<&Value>,
) -> Result<(), String> {
    for (i, call) in calls.and_then(Value::as_array).into_iter().flatten().enumerate() {
        let op = call.get("op").and_then(Value::as_str).unwrap_or("?");
        let expect = call.get("expect").ok_or_else(|| format!("{name} {what} {i}: no expect"))?;
        let verdict = match run_call(m, call) {
            Ok(got) => compare(expect, &got),
            Err(e) => return Err(format!("{name} {what} {i}: {e}")),
        };
        let verdict = match verdict {
            Verdict::Fail(diff) => Verdict::Fail(format!("  call: {call}\n{diff}")),
            v => v,
        };
        record(s, name, &format!("{what} {i} ({op})"), op, verdict);
    }
    Ok(())
}

/// The reference's exception class name.
fn exception(e: &DecideError) -> &'static str {
    match e.kind() {
        ErrorKind::FeatureNotFound => "FeatureNotFoundException",
        ErrorKind::TypeMismatch => "ValueTypeMismatchException",
        _ => "DeciderException",
    }
}

fn error_value(e: &DecideError) -> Value {
    json!({"error": {"type": exception(e), "message": e.to_string()}})
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// A decision as the vectors record it: each event is serialized with a real stamp (wall
/// clock, fresh v4 UUID, a fresh fallback correlation id per decision), which is then turned
/// back into the recording's placeholders, so everything else compares byte for byte.
fn decision_json(d: &Decision<'_>) -> Value {
    let fallback = Uuid::new_v4();
    let ts = now_ms();
    let mut full = Vec::new();
    for e in d.events() {
        let stamp =
            EventStamp { client_ts_ms: ts, uuid: Uuid::new_v4(), correlation_fallback: fallback };
        let mut json = e.to_v2_json(&stamp);
        // Turn our stamp back into the recording's placeholders.
        json =
            json.replacen(&format!("\"5\":{{\"i64\":{ts}}}"), "\"5\":{\"i64\":<CLIENT_TS_MS>}", 1);
        json = json.replacen(
            &format!("\"6\":{{\"str\":\"{}\"}}", stamp.uuid),
            "\"6\":{\"str\":\"<UUID>\"}",
            1,
        );
        if e.correlation_id(fallback) == fallback {
            json = json.replacen(
                &format!("\"8\":{{\"str\":\"{fallback}\"}}"),
                "\"8\":{\"str\":\"<CORRELATION_ID>\"}",
                1,
            );
        }
        full.push(json!({"decision_kind": e.kind().as_str(), "exposure_key": e.exposure_key(), "json": json}));
    }
    json!({
        "variant": d.variant(),
        "value": d.value(),
        "feature_id": d.feature_id(),
        "feature_name": d.feature_name(),
        "feature_version": d.feature_version(),
        "events": d.events().map(|e| e.legacy()).collect::<Vec<_>>(),
        "full_events": full,
    })
}

fn context_of(call: &Value) -> Result<Context, DecideError> {
    match call.get("context") {
        Some(Value::Object(o)) => Ok(Context::from_json(o)?),
        // `make_ctx(None)` and non-dicts fail as decision errors.
        _ => Err(DecideError::Context(experiments_decider::ContextError::new(Vec::new()))),
    }
}

fn run_call(m: &Manifest, call: &Value) -> Result<Value, String> {
    let op = call.get("op").and_then(Value::as_str).ok_or("call without op")?;
    let feature = call.get("feature").and_then(Value::as_str);
    if op == "get_feature" {
        let name = feature.ok_or("get_feature without a feature")?;
        let value = match m.get_feature(name) {
            Ok(f) => json!({"feature": {"id": f.id(), "name": f.name(), "version": f.version(),
                "bucket_val": f.bucket_val(), "start_ts": f.start_ts(), "stop_ts": f.stop_ts(),
                "emit_event": f.emit_event(), "measured": f.measured()}}),
            Err(e) => error_value(&e),
        };
        return Ok(value);
    }
    let ctx = match context_of(call) {
        Ok(c) => c,
        Err(e) => return Ok(error_value(&e)),
    };
    let name = || feature.ok_or_else(|| format!("{op} without a feature"));
    let value = match op {
        "choose" => match m.choose(name()?, &ctx) {
            Ok(d) => {
                let expose = call.get("expose").and_then(Value::as_bool).unwrap_or(false);
                let holdout = call.get("expose_holdout").and_then(Value::as_bool).unwrap_or(false);
                let exposed: Vec<usize> = d
                    .events()
                    .enumerate()
                    .filter(|(_, e)| {
                        expose
                            || (holdout && e.kind() == experiments_decider::DecisionKind::Holdout)
                    })
                    .map(|(i, _)| i)
                    .collect();
                json!({"decision": decision_json(&d), "exposed": exposed})
            }
            Err(e) => error_value(&e),
        },
        "choose_all" => {
            let filter = call.get("bucketing_field_filter").and_then(Value::as_str);
            let decisions: BTreeMap<String, Value> = m
                .choose_all(&ctx, filter)
                .map(|d| (d.feature_name().to_owned(), decision_json(&d)))
                .collect();
            json!({"decisions": decisions})
        }
        "all_values" => {
            let values: BTreeMap<&str, &Value> = m.all_values(&ctx).collect();
            json!({"values": values})
        }
        "get_bool" => {
            m.get_bool(name()?, &ctx).map_or_else(|e| error_value(&e), |v| json!({"value": v}))
        }
        "get_int" => {
            m.get_int(name()?, &ctx).map_or_else(|e| error_value(&e), |v| json!({"value": v}))
        }
        "get_float" => {
            m.get_float(name()?, &ctx).map_or_else(|e| error_value(&e), |v| json!({"value": v}))
        }
        "get_string" => {
            m.get_string(name()?, &ctx).map_or_else(|e| error_value(&e), |v| json!({"value": v}))
        }
        "get_map" => m.get_map(name()?, &ctx).map_or_else(
            |e| error_value(&e),
            |v| json!({"value": experiments_decider::python_floats(&Value::Object(v.clone()))}),
        ),
        other => return Err(format!("unknown op {other:?}")),
    };
    Ok(value)
}

/// Compares a result with the recording: errors by exception class, everything else exactly
/// (unordered maps as maps).
fn compare(expect: &Value, got: &Value) -> Verdict {
    if let Some(e) = expect.get("error") {
        let want = e.get("type");
        return match got.get("error") {
            Some(g) if g.get("type") == want => Verdict::Pass,
            _ => Verdict::Fail(format!("  expected: {expect}\n  got:      {got}")),
        };
    }
    let mut want = expect.clone();
    if let Some(o) = want.as_object_mut() {
        // `exposed` is only recorded for `choose`.
        if got.get("exposed").is_none() {
            o.remove("exposed");
        }
    }
    if values_eq(&want, got) {
        Verdict::Pass
    } else {
        let mut diff = String::new();
        let _ = write!(diff, "  expected: {want}\n  got:      {got}");
        Verdict::Fail(diff)
    }
}

/// JSON equality where objects compare as maps and numbers keep the int/float distinction.
fn values_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| values_eq(v, w)))
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| values_eq(p, q))
        }
        (Value::Number(x), Value::Number(y)) => match (x.is_f64(), y.is_f64()) {
            (true, true) => x.as_f64() == y.as_f64(),
            (false, false) => x == y,
            _ => false,
        },
        _ => a == b,
    }
}

/// Replays the wrapper `requests`: a fresh `WrapperRequest` per request (on the file's manifest,
/// or none when the recording says `internal=None` or the reference could not load the file),
/// each call in order, its return value and logged records compared exactly (key order and
/// number types included; sorted where the README says the order is unspecified), and each
/// record's JSON byte for byte when the file's text is at hand.
fn replay_requests(
    s: &mut Summary,
    name: &str,
    manifest: Option<&Manifest>,
    requests: Option<&Value>,
    raw: Option<&[RawRequest<'_>]>,
) -> Result<(), String> {
    for (i, request) in requests.and_then(Value::as_array).into_iter().flatten().enumerate() {
        let calls = request.get("calls").and_then(Value::as_array).map_or(&[][..], Vec::as_slice);
        let internal = match request.get("internal") {
            Some(Value::Null) => None,
            _ => manifest,
        };
        let kwargs = request.get("decider_context").and_then(Value::as_object).cloned();
        let ctx = kwargs
            .ok_or_else(|| "no decider_context object".to_owned())
            .and_then(|k| WrapperContext::from_kwargs(k).map_err(|e| e.to_string()));
        let mut req = ctx.map(|c| WrapperRequest::new(internal, c, Vec::<WrapperEvent>::new()));
        for (j, call) in calls.iter().enumerate() {
            let op = call.get("op").and_then(Value::as_str).unwrap_or("?");
            let what = format!("request {i} call {j} ({op})");
            let expect = call.get("expect").ok_or_else(|| format!("{name} {what}: no expect"))?;
            let raw_events = raw
                .and_then(|r| r.get(i))
                .and_then(|r| r.calls.get(j))
                .and_then(|c| c.expect.events.as_deref());
            let verdict = match &mut req {
                Err(e) => Verdict::Fail(format!(
                    "  call: {call}
  DeciderContext(...): {e}"
                )),
                Ok(req) => {
                    let got =
                        run_wrapper_call(req, call).map_err(|e| format!("{name} {what}: {e}"))?;
                    let events = std::mem::take(req.handler_mut());
                    compare_wrapper(call, expect, got, &events, raw_events)
                }
            };
            record(s, name, &what, &format!("wrapper {op}"), verdict);
        }
    }
    Ok(())
}

/// What a wrapper call returned, shaped as its `expect` (without `events`), and whether the
/// order of its lists and events is unspecified.
struct WrapperResult {
    members: Map<String, Value>,
    unordered: bool,
}

fn run_wrapper_call(
    req: &mut WrapperRequest<'_, Vec<WrapperEvent>>,
    call: &Value,
) -> Result<WrapperResult, String> {
    let op = call.get("op").and_then(Value::as_str).ok_or("call without op")?;
    let str_of = |key: &str| {
        call.get(key).and_then(Value::as_str).ok_or_else(|| format!("{op} without a string {key}"))
    };
    let empty = Map::new();
    let kwargs = match call.get("exposure_kwargs") {
        None => &empty,
        Some(v) => v.as_object().ok_or("exposure_kwargs is not an object")?,
    };
    let default = call.get("default");
    let mut members = Map::new();
    let mut unordered = false;
    match op {
        "get_variant" => {
            members.insert("variant".into(), json!(req.get_variant(str_of("experiment")?, kwargs)));
        }
        "get_variant_without_expose" => {
            let v = req.get_variant_without_expose(str_of("experiment")?);
            members.insert("variant".into(), json!(v));
        }
        "expose" => {
            let variant = match call.get("variant") {
                None | Some(Value::Null) => None,
                Some(Value::String(v)) => Some(v.as_str()),
                Some(other) => return Err(format!("expose of a non-string variant {other}")),
            };
            req.expose(str_of("experiment")?, variant, kwargs);
        }
        "get_variant_for_identifier" => {
            let v = req.get_variant_for_identifier(
                str_of("experiment")?,
                str_of("identifier")?,
                str_of("identifier_type")?,
                kwargs,
            );
            members.insert("variant".into(), json!(v));
        }
        "get_variant_for_identifier_without_expose" => {
            let v = req.get_variant_for_identifier_without_expose(
                str_of("experiment")?,
                str_of("identifier")?,
                str_of("identifier_type")?,
            );
            members.insert("variant".into(), json!(v));
        }
        "get_all_variants_without_expose" | "get_all_variants_for_identifier_without_expose" => {
            let variants = if op == "get_all_variants_without_expose" {
                req.get_all_variants_without_expose()
            } else {
                req.get_all_variants_for_identifier_without_expose(
                    str_of("identifier")?,
                    str_of("identifier_type")?,
                )
            };
            let list = variants.iter().map(|v| v.to_record()).collect();
            members.insert("variants".into(), Value::Array(list));
            unordered = true;
        }
        "get_bool" => {
            let name = str_of("feature")?;
            let v = match default {
                None => json!(req.get_bool(name, false)),
                Some(Value::Bool(d)) => json!(req.get_bool(name, *d)),
                Some(d) => req.try_get_bool(name).map_or_else(|_| d.clone(), Value::from),
            };
            members.insert("value".into(), v);
        }
        "get_int" => {
            let name = str_of("feature")?;
            let v = match default.map(|d| (d, d.as_i64())) {
                None => json!(req.get_int(name, 0)),
                Some((_, Some(d))) => json!(req.get_int(name, d)),
                Some((d, None)) => req.try_get_int(name).map_or_else(|_| d.clone(), Value::from),
            };
            members.insert("value".into(), v);
        }
        "get_float" => {
            let name = str_of("feature")?;
            let v = match default {
                None => json!(req.get_float(name, 0.0)),
                Some(Value::Number(d)) if d.is_f64() => {
                    json!(req.get_float(name, d.as_f64().unwrap_or_default()))
                }
                Some(d) => req.try_get_float(name).map_or_else(|_| d.clone(), Value::from),
            };
            members.insert("value".into(), v);
        }
        "get_string" => {
            let name = str_of("feature")?;
            let v = match default {
                None => json!(req.get_string(name, "")),
                Some(Value::String(d)) => json!(req.get_string(name, d)),
                Some(d) => req.try_get_string(name).map_or_else(|_| d.clone(), Value::from),
            };
            members.insert("value".into(), v);
        }
        "get_map" => {
            let name = str_of("feature")?;
            let v = match default {
                None | Some(Value::Null) => json!(req.get_map(name, None)),
                Some(Value::Object(d)) => json!(req.get_map(name, Some(d.clone()))),
                Some(d) => req.try_get_map(name).map_or_else(|_| d.clone(), Value::Object),
            };
            members.insert("value".into(), v);
        }
        "get_all_dynamic_configs" => {
            let list = req.get_all_dynamic_configs().iter().map(|c| c.to_record()).collect();
            members.insert("configs".into(), Value::Array(list));
            unordered = true;
        }
        "get_experiment" => {
            let e = req.get_experiment(str_of("experiment")?);
            members.insert("experiment".into(), e.map_or(Value::Null, |e| e.to_record()));
        }
        other => return Err(format!("unknown wrapper op {other:?}")),
    }
    Ok(WrapperResult { members, unordered })
}

/// Sorts what the README says comes in an unspecified order: `variants` by `experimentName`,
/// `configs` by `name`, `events` by their JSON.
fn sort_unordered(v: &mut Value) {
    let key = |v: &Value, field: &str| v.get(field).map(Value::to_string).unwrap_or_default();
    if let Some(list) = v.get_mut("variants").and_then(Value::as_array_mut) {
        list.sort_by_cached_key(|e| (key(e, "experimentName"), e.to_string()));
    }
    if let Some(list) = v.get_mut("configs").and_then(Value::as_array_mut) {
        list.sort_by_cached_key(|e| (key(e, "name"), e.to_string()));
    }
    if let Some(list) = v.get_mut("events").and_then(Value::as_array_mut) {
        list.sort_by_cached_key(Value::to_string);
    }
}

fn compare_wrapper(
    call: &Value,
    expect: &Value,
    got: WrapperResult,
    events: &[WrapperEvent],
    raw_events: Option<&[&RawValue]>,
) -> Verdict {
    let mut members = got.members;
    members.insert("events".into(), events.iter().map(WrapperEvent::to_record).collect());
    let mut got_value = Value::Object(members);
    let mut want = expect.clone();
    if got.unordered {
        sort_unordered(&mut want);
        sort_unordered(&mut got_value);
    }
    if !strict_eq(&want, &got_value) {
        return Verdict::Fail(format!(
            "  call: {call}\n  expected: {want}\n  got:      {got_value}"
        ));
    }
    // The records as the reference's logger received them, byte for byte.
    if let Some(raw) = raw_events {
        let mut want: Vec<&str> = raw.iter().map(|r| r.get()).collect();
        let mut have: Vec<String> = events
            .iter()
            .map(|e| {
                let mut out = Vec::new();
                e.write_json(&mut out);
                String::from_utf8_lossy(&out).into_owned()
            })
            .collect();
        if got.unordered {
            want.sort_unstable();
            have.sort_unstable();
        }
        if want != have {
            return Verdict::Fail(format!(
                "  call: {call}\n  expected records: {want:?}\n  written records:  {have:?}"
            ));
        }
    }
    Verdict::Pass
}

/// JSON equality with key order (the wrapper's dicts keep insertion order) and the int/float
/// distinction.
fn strict_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|((k, v), (l, w))| k == l && strict_eq(v, w))
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| strict_eq(p, q))
        }
        (Value::Number(_), Value::Number(_)) => values_eq(a, b),
        _ => a == b,
    }
}
