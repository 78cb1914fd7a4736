//! Behaviour of the service layer (`WrapperRequest`, SPEC §13) on small hand-written
//! manifests: each [Wnn] rule, the records' exact shape, swallowed errors and their `try_`
//! forms, `internal=None`, and v2 events equal to the engine's.

use experiments_decider::{
    Context, DecideError, DecisionKind, DynamicConfigType, ErrorKind, EventStamp, Exposure,
    HandlerFn, IdentifierType, KwargsError, Manifest, Uuid, WrapperContext, WrapperError,
    WrapperEvent, WrapperRequest,
};
use serde_json::{Map, Value, json};

fn range(
    id: u32,
    name: &str,
    bucket_val: &str,
    variants: &[(&str, f64, f64)],
    extra: Value,
) -> Value {
    let variants: Vec<Value> = variants
        .iter()
        .map(|(n, s, e)| json!({"name": n, "range_start": s, "range_end": e}))
        .collect();
    let mut e = json!({"id": id, "name": name, "enabled": true, "version": "1",
        "type": "range_variant", "emit_event": true, "start_ts": 10, "stop_ts": 20,
        "experiment": {"experiment_version": 4, "bucket_val": bucket_val, "variants": variants}});
    if let (Some(e), Value::Object(extra)) = (e.as_object_mut(), extra) {
        e.extend(extra);
    }
    e
}

fn dc(id: u32, name: &str, value: Value) -> Value {
    json!({"id": id, "name": name, "enabled": true, "version": "1", "type": "dynamic_config",
        "value": value, "experiment": {"experiment_version": 1}})
}

fn manifest() -> Manifest {
    let doc = json!({
        "hg": range(1, "hg", "user_id", &[("control_1", 0.0, 1.0)], json!({})),
        "hg_all": range(2, "hg_all", "user_id", &[("holdout", 0.0, 1.0)], json!({})),
        "meg": range(3, "meg", "user_id", &[("child", 0.0, 1.0)], json!({})),
        "child": range(4, "child", "user_id", &[("on", 0.0, 1.0)],
            json!({"parent_hg_name": "hg", "parent_meg_name": "meg"})),
        "held": range(5, "held", "user_id", &[("on", 0.0, 1.0)], json!({"parent_hg_name": "hg_all"})),
        "plain": range(6, "plain", "user_id", &[("a", 0.0, 1.0)], json!({})),
        "quiet": range(7, "quiet", "user_id", &[("a", 0.0, 1.0)], json!({"emit_event": false})),
        "by_device": range(8, "by_device", "device_id", &[("d", 0.0, 1.0)], json!({})),
        "by_pixel": range(9, "by_pixel", "conversion_pixel_id", &[("p", 0.0, 1.0)], json!({})),
        "by_num": range(10, "by_num", "num_votes", &[("n", 0.0, 1.0)], json!({})),
        "colons": range(11, "colons", "user_id", &[("a::::b", 0.0, 1.0)], json!({})),
        "empty_variant": range(12, "empty_variant", "user_id", &[("", 0.0, 1.0)], json!({})),
        "none": range(13, "none", "user_id", &[], json!({})),
        "forced": range(14, "forced", "user_id", &[("a", 0.0, 0.0), ("b", 0.0, 1.0)],
            json!({"experiment": {"experiment_version": 4, "bucket_val": "user_id",
                "variants": [{"name": "a", "range_start": 0.0, "range_end": 0.0},
                             {"name": "b", "range_start": 0.0, "range_end": 1.0}],
                "overrides": [{"a": {"EQ": {"field": "user_id", "value": "t2_forced"}}}]}})),
        "reserved": range(15, "reserved", "variant", &[("r", 0.0, 1.0)], json!({})),
        "dc_bool": dc(20, "dc_bool", json!(true)),
        "dc_int": dc(21, "dc_int", json!(7)),
        "dc_float": dc(22, "dc_float", json!(2.5)),
        "dc_str": dc(23, "dc_str", json!("s")),
        "dc_map": dc(24, "dc_map", json!({"b": 1, "a": {"d": [1, 2.5], "c": 2}})),
        "dc_big": dc(25, "dc_big", json!(18446744073709551615u64)),
        "dc_off": {"id": 26, "name": "dc_off", "enabled": false, "version": "1",
            "type": "dynamic_config", "value": 3, "experiment": {"experiment_version": 1}},
    });
    Manifest::from_str(&doc.to_string()).unwrap_or_else(|e| panic!("{e}"))
}

fn user() -> WrapperContext {
    WrapperContext::builder()
        .user_id("t2_abc")
        .logged_in(true)
        .country_code("US")
        .device_id("4f7c7b2e-6a40-4d4f-8a3e-2f1e0d9c8b7a")
        .extracted_field("app_name", "ios")
        .extracted_field("num_votes", 150)
        .build()
}

fn kw(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap_or_default()
}

/// A handler that keeps events and `(op, error)` pairs.
#[derive(Default)]
struct Recorder {
    events: Vec<WrapperEvent>,
    errors: Vec<(&'static str, WrapperError)>,
}

impl experiments_decider::WrapperHandler for Recorder {
    fn log(&mut self, event: WrapperEvent) {
        self.events.push(event);
    }

    fn error(&mut self, op: &'static str, error: &WrapperError) {
        self.errors.push((op, error.clone()));
    }
}

fn summary(events: &[WrapperEvent]) -> Vec<(String, String, DecisionKind)> {
    events.iter().map(|e| (e.experiment.name.clone(), e.variant.clone(), e.kind())).collect()
}

fn stamp() -> EventStamp {
    EventStamp {
        client_ts_ms: 1_700_000_000_000,
        uuid: Uuid::from_u128(0x1234),
        correlation_fallback: Uuid::from_u128(0x5678),
    }
}

#[test]
fn get_variant_logs_one_record_per_decision_event_parents_first() {
    let m = manifest();
    let mut r = WrapperRequest::new(Some(&m), user(), Vec::new());
    assert_eq!(r.get_variant("child", &Map::new()), Some("on"));
    let events = r.into_handler();
    assert_eq!(
        summary(&events),
        [
            ("hg".into(), "control_1".into(), DecisionKind::Holdout),
            ("meg".into(), "child".into(), DecisionKind::MutexGroup),
            ("child".into(), "on".into(), DecisionKind::FracAvail),
        ]
    );
    let hg = &events[0].experiment;
    assert_eq!((hg.id, hg.version.as_str(), hg.bucket_val.as_str()), (1, "4", "user_id"));
    assert_eq!((hg.start_ts, hg.stop_ts, hg.emit_event, hg.measured), (10, 20, None, None));
    // A holdout that holds out: no variant, the parent's event only.
    let mut r = WrapperRequest::new(Some(&m), user(), Vec::new());
    assert_eq!(r.get_variant("held", &Map::new()), None);
    assert_eq!(summary(r.handler()), [("hg_all".into(), "holdout".into(), DecisionKind::Holdout)]);
    // No dedupe: every call logs again. No events without emit_event.
    assert_eq!(r.get_variant("plain", &Map::new()), Some("a"));
    assert_eq!(r.get_variant("plain", &Map::new()), Some("a"));
    assert_eq!(r.get_variant("quiet", &Map::new()), Some("a"));
    assert_eq!(r.handler().len(), 3);
}

#[test]
fn records_are_the_event_dict_updated_with_kwargs_then_the_bucketing_value() {
    let m = manifest();
    let mut r = WrapperRequest::new(Some(&m), user(), Vec::new());
    let kwargs = kw(json!({"page_type": "home", "country_code": "GB", "num_votes": 3}));
    assert_eq!(r.get_variant("by_num", &kwargs), Some("n"));
    let events = r.into_handler();
    let record = events[0].to_record();
    assert_eq!(
        record,
        json!({"event_type": "expose", "variant": "n",
            "experiment": {"id": 10, "version": "4", "name": "by_num", "bucket_val": "num_votes",
                "start_ts": 10, "stop_ts": 20, "owner": null, "emit_event": null, "measured": null},
            "inputs": {"user_id": "t2_abc", "country_code": "GB", "locale": null,
                "user_is_employee": null, "logged_in": true,
                "device_id": "4f7c7b2e-6a40-4d4f-8a3e-2f1e0d9c8b7a", "origin_service": null,
                "cookie_created_timestamp": null,
                "user": {"id": "t2_abc", "logged_in": true, "cookie_created_timestamp": null,
                    "is_employee": null},
                "app": {"name": "ios"}, "geo": {"country_code": "US"}, "request": {},
                "platform": {"device_id": "4f7c7b2e-6a40-4d4f-8a3e-2f1e0d9c8b7a"},
                "app_name": "ios", "num_votes": "150", "page_type": "home"}})
    );
    // Key order is the reference's: keys that exist keep their place when replaced.
    let keys: Vec<&str> = events[0].inputs.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "user_id",
            "country_code",
            "locale",
            "user_is_employee",
            "logged_in",
            "device_id",
            "origin_service",
            "cookie_created_timestamp",
            "user",
            "app",
            "geo",
            "request",
            "platform",
            "app_name",
            "num_votes",
            "page_type"
        ]
    );
    // The record as Python's json.dumps writes it (compact, same order).
    let mut out = Vec::new();
    events[0].write_json(&mut out);
    let text = String::from_utf8(out).unwrap_or_default();
    assert!(text.starts_with(
        r#"{"event_type":"expose","variant":"n","experiment":{"id":10,"version":"4""#
    ));
    assert!(text.ends_with(r#""app_name":"ios","num_votes":"150","page_type":"home"}}"#), "{text}");
}

#[test]
fn records_write_floats_as_python() {
    let m = manifest();
    let ctx = WrapperContext::from_kwargs(kw(json!({"user_id": "t2_abc",
        "extracted_fields": {"score": 1e16, "tiny": 0.00001, "whole": 3.0}})))
    .unwrap_or_else(|e| panic!("{e}"));
    let mut r = WrapperRequest::new(Some(&m), ctx, Vec::new());
    r.expose("plain", Some("a"), &kw(json!({"x": -0.0})));
    let mut out = Vec::new();
    r.handler()[0].write_json(&mut out);
    let text = String::from_utf8(out).unwrap_or_default();
    assert!(text.ends_with(r#""score":1e+16,"tiny":1e-05,"whole":3.0,"x":-0.0}}"#), "{text}");
}

#[test]
fn without_expose_and_get_all_variants_log_only_holdout_events() {
    let m = manifest();
    let mut r = WrapperRequest::new(Some(&m), user(), Vec::new());
    assert_eq!(r.get_variant_without_expose("child"), Some("on"));
    assert_eq!(summary(r.handler()), [("hg".into(), "control_1".into(), DecisionKind::Holdout)]);
    // The holdout record has F = to_event_dict() + the bucketing value (no kwargs).
    assert_eq!(r.handler()[0].inputs.get("page_type"), None);
    r.handler_mut().clear();
    assert_eq!(r.get_variant_without_expose("plain"), Some("a"));
    assert!(r.handler().is_empty());

    let mut all = r.get_all_variants_without_expose();
    all.sort_by_key(|v| v.experiment_name);
    let names: Vec<(&str, &str)> = all.iter().map(|v| (v.experiment_name, v.name)).collect();
    // Truthy variants of range features only: not `held` (None), `empty_variant` (""),
    // `none`, nor dynamic configs; `by_pixel` has no bucketing value and is left out.
    assert_eq!(
        names,
        [
            ("by_device", "d"),
            ("by_num", "n"),
            ("child", "on"),
            ("colons", "a::::b"),
            ("forced", "b"),
            ("hg", "control_1"),
            ("hg_all", "holdout"),
            ("meg", "child"),
            ("plain", "a"),
            ("quiet", "a"),
        ]
    );
    assert_eq!(
        all.iter().find(|v| v.experiment_name == "child").map(|v| v.to_record()),
        Some(json!({"name": "on", "id": 4, "version": "4", "experimentName": "child"}))
    );
    // Holdout events of every decision: `child` (control_1) and `held` (holdout).
    let mut logged = summary(r.handler());
    logged.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    assert_eq!(
        logged,
        [
            ("hg".into(), "control_1".into(), DecisionKind::Holdout),
            ("hg_all".into(), "holdout".into(), DecisionKind::Holdout),
        ]
    );
}

#[test]
fn expose_logs_one_record_without_bucketing_value_or_nothing() {
    let m = manifest();
    let mut r = WrapperRequest::new(Some(&m), user(), Recorder::default());
    // No-ops: no variant, an empty one, emit_event false, a dynamic config.
    r.expose("plain", None, &Map::new());
    r.expose("plain", Some(""), &Map::new());
    r.expose("quiet", Some("a"), &Map::new());
    r.expose("dc_int", Some("a"), &Map::new());
    assert!(r.handler().events.is_empty() && r.handler().errors.is_empty());
    // Unknown: nothing logged, the error reported; the try form returns it.
    r.expose("nope", Some("a"), &Map::new());
    assert!(r.handler().events.is_empty());
    assert!(matches!(
        r.handler().errors.as_slice(),
        [("expose", WrapperError::Decide(DecideError::FeatureNotFound(_)))]
    ));
    assert!(matches!(r.try_expose("nope", Some("a"), &Map::new()), Err(WrapperError::Decide(_))));
    assert_eq!(r.try_expose("quiet", Some("a"), &Map::new()), Ok(()));
    // One record; the variant is not validated; kwargs merged; no bucket_val entry.
    r.expose("by_num", Some("not_a_variant"), &kw(json!({"num_votes": 1, "extra": {"n": 1}})));
    let e = &r.handler().events[0];
    assert_eq!(e.variant, "not_a_variant");
    assert_eq!((e.experiment.id, e.experiment.version.as_str()), (10, "4"));
    assert_eq!(e.inputs["num_votes"], json!(1));
    assert_eq!(e.inputs["extra"], json!({"n": 1}));
    assert_eq!(e.inputs.keys().next_back().map(String::as_str), Some("extra"));
    assert_eq!(e.kind(), DecisionKind::FracAvail);
}

#[test]
fn identifiers_set_the_field_and_bucket_on_the_features_own_bucket_val() {
    let m = manifest();
    let anonymous = WrapperContext::builder().logged_in(false).build();
    let mut r = WrapperRequest::new(Some(&m), anonymous, Recorder::default());
    assert_eq!(r.get_variant("by_device", &Map::new()), None);
    assert_eq!(
        r.get_variant_for_identifier("by_device", "dev1", IdentifierType::DeviceId, &Map::new()),
        Some("d")
    );
    let e = &r.handler().events[0];
    // The identifier reaches F only as the bucketing value; the event dict is the request's.
    assert_eq!(e.inputs["device_id"], json!("dev1"));
    assert_eq!(e.inputs["platform"], json!({}));
    assert_eq!(e.exposure_key(), "by_device:4:d:dev1");
    // A mismatch is no error, just no bucketing value for the feature's own field.
    assert_eq!(r.get_variant_for_identifier("by_device", "t2_x", "user_id", &Map::new()), None);
    assert!(matches!(
        r.handler().errors.last(),
        Some((
            "get_variant_for_identifier",
            WrapperError::Decide(DecideError::MissingBucketingField(_))
        ))
    ));
    // conversion_pixel_id goes to other_fields.
    assert_eq!(
        r.get_variant_for_identifier_without_expose("by_pixel", "px_1", "conversion_pixel_id"),
        Some("p")
    );
    // Case-sensitive names; an invalid one gives None (and []).
    for bad in ["User_Id", "loid", "bogus_type"] {
        assert_eq!(r.get_variant_for_identifier("plain", "t2_x", bad, &Map::new()), None);
        assert_eq!(
            r.try_get_variant_for_identifier_without_expose("plain", "t2_x", bad),
            Err(WrapperError::InvalidIdentifierType(bad.to_owned()))
        );
        assert!(r.get_all_variants_for_identifier_without_expose("t2_x", bad).is_empty());
        assert!(bad.parse::<IdentifierType>().is_err());
    }
    for t in IdentifierType::ALL {
        assert_eq!(t.as_str().parse::<IdentifierType>(), Ok(t));
    }
    // The filtered form only decides features bucketed on the identifier type.
    let all = r.get_all_variants_for_identifier_without_expose("dev2", "device_id");
    let names: Vec<&str> = all.iter().map(|v| v.experiment_name).collect();
    assert_eq!(names, ["by_device"]);
}

#[test]
fn an_identifier_can_repair_the_field_that_broke_the_context() {
    let m = manifest();
    let ctx = WrapperContext::from_kwargs(kw(json!({"extracted_fields": {"user_id": 5}})))
        .unwrap_or_else(|e| panic!("{e}"));
    let mut r = WrapperRequest::new(Some(&m), ctx, Vec::new());
    assert_eq!(r.get_variant("plain", &Map::new()), None);
    assert_eq!(r.get_variant_for_identifier("plain", "t2_x", "user_id", &Map::new()), Some("a"));
    // The record's event fields still echo the dynamic value.
    assert_eq!(r.handler()[0].inputs["user_id"], json!("t2_x"));
    assert_eq!(r.handler()[0].inputs["user"]["id"], Value::Null);
}

#[test]
fn swallowed_errors_are_reported_and_try_forms_return_them() {
    let m = manifest();
    // A float cookie timestamp (as the reference documents it) fails every decision.
    let ctx = WrapperContext::from_kwargs(kw(json!({"user_id": "t2_abc",
        "cookie_created_timestamp": 1700000000.5})))
    .unwrap_or_else(|e| panic!("{e}"));
    let mut errors = Vec::new();
    let mut events = Vec::new();
    let handler = HandlerFn::new(|e| events.push(e)).with_errors(|op, e: &WrapperError| {
        errors.push((op, e.decide_error().map(DecideError::kind)))
    });
    let mut r = WrapperRequest::new(Some(&m), ctx, handler);
    assert_eq!(r.get_variant("plain", &Map::new()), None);
    assert_eq!(r.get_variant_without_expose("plain"), None);
    assert!(r.get_all_variants_without_expose().is_empty());
    assert!(r.get_all_dynamic_configs().is_empty());
    assert!(!r.get_bool("dc_bool", false));
    assert_eq!(r.get_int("dc_int", -1), -1);
    assert!(matches!(
        r.try_get_variant("plain", &Map::new()),
        Err(WrapperError::Decide(DecideError::Context(_)))
    ));
    // Calls that need no context still work: get_experiment, expose (which logs).
    assert_eq!(r.get_experiment("plain").map(|e| e.id), Some(6));
    r.expose("plain", Some("a"), &Map::new());
    drop(r);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].inputs["cookie_created_timestamp"], json!(1700000000.5));
    let ops: Vec<&str> = errors.iter().map(|(op, _)| *op).collect();
    assert_eq!(
        ops,
        [
            "get_variant",
            "get_variant_without_expose",
            "get_all_variants_without_expose",
            "get_all_dynamic_configs",
            "get_bool",
            "get_int"
        ]
    );
    assert!(errors.iter().all(|(_, kind)| *kind == Some(ErrorKind::Decision)));

    // Unknown features and value type mismatches.
    let mut r = WrapperRequest::new(Some(&m), user(), Recorder::default());
    assert_eq!(r.get_variant("nope", &Map::new()), None);
    assert_eq!(r.get_string("dc_int", "dflt"), "dflt");
    assert_eq!(r.get_experiment("nope"), None);
    let kinds: Vec<Option<ErrorKind>> =
        r.handler().errors.iter().map(|(_, e)| e.decide_error().map(DecideError::kind)).collect();
    assert_eq!(
        kinds,
        [
            Some(ErrorKind::FeatureNotFound),
            Some(ErrorKind::TypeMismatch),
            Some(ErrorKind::FeatureNotFound)
        ]
    );
    assert!(r.handler().events.is_empty());
    assert!(matches!(
        r.try_get_int("dc_big"),
        Err(WrapperError::Decide(DecideError::NumberDeserialization))
    ));
    assert!(matches!(
        r.try_get_map("dc_off"),
        Err(WrapperError::Decide(DecideError::TypeMismatch { .. }))
    ));
}

#[test]
fn without_a_manifest_everything_falls_back() {
    let mut r = WrapperRequest::new(None, user(), Recorder::default());
    assert_eq!(r.get_variant("plain", &Map::new()), None);
    assert_eq!(r.get_variant_without_expose("plain"), None);
    assert_eq!(r.get_variant_for_identifier("plain", "x", "user_id", &Map::new()), None);
    assert_eq!(r.get_variant_for_identifier_without_expose("plain", "x", "user_id"), None);
    assert!(r.get_all_variants_without_expose().is_empty());
    assert!(r.get_all_variants_for_identifier_without_expose("x", "user_id").is_empty());
    assert!(r.get_bool("dc_bool", true));
    assert_eq!(r.get_int("dc_int", 3), 3);
    assert_eq!(r.get_float("dc_float", 0.5), 0.5);
    assert_eq!(r.get_string("dc_str", "d"), "d");
    assert_eq!(r.get_map("dc_map", None), None);
    assert!(r.get_all_dynamic_configs().is_empty());
    assert_eq!(r.get_experiment("plain"), None);
    r.expose("plain", Some("a"), &Map::new());
    // A missing variant is checked before the decider.
    assert_eq!(r.try_expose("plain", None, &Map::new()), Ok(()));
    assert_eq!(r.try_get_experiment("plain"), Err(WrapperError::NoDecider));
    // An invalid identifier type is checked before the decider too.
    assert!(matches!(
        r.try_get_variant_for_identifier("plain", "x", "nope", &Map::new()),
        Err(WrapperError::InvalidIdentifierType(_))
    ));
    let h = r.into_handler();
    assert!(h.events.is_empty());
    assert_eq!(h.errors.len(), 14);
    assert!(h.errors.iter().all(|(_, e)| *e == WrapperError::NoDecider));
}

#[test]
fn getters_convert_like_python() {
    let m = manifest();
    let mut r = WrapperRequest::new(Some(&m), user(), ());
    assert!(r.get_bool("dc_bool", false));
    assert_eq!(r.get_int("dc_int", 0), 7);
    assert_eq!(r.get_float("dc_int", 0.0), 7.0);
    assert_eq!(r.get_float("dc_float", 0.0), 2.5);
    assert_eq!(r.get_string("dc_str", ""), "s");
    assert_eq!(r.get_int("dc_big", 5), 5);
    assert!(r.get_bool("plain", true));
    assert!(r.get_bool("dc_off", true));
    // Every number a float, keys in the reference's (sorted) order.
    let map = r.get_map("dc_map", None).map(Value::Object);
    assert_eq!(map, Some(json!({"a": {"c": 2.0, "d": [1.0, 2.5]}, "b": 1.0})));
    assert_eq!(
        map.map(|m| m.to_string()),
        Some(r#"{"a":{"c":2.0,"d":[1.0,2.5]},"b":1.0}"#.to_owned())
    );
    let mut configs: Vec<(String, Value, &str)> = r
        .get_all_dynamic_configs()
        .iter()
        .map(|c| (c.name.to_owned(), c.value.clone(), c.value_type.as_str()))
        .collect();
    configs.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        configs,
        [
            ("dc_big".into(), json!(18446744073709551615u64), "integer"),
            ("dc_bool".into(), json!(true), "boolean"),
            ("dc_float".into(), json!(2.5), "float"),
            ("dc_int".into(), json!(7), "integer"),
            ("dc_map".into(), json!({"a": {"c": 2, "d": [1, 2.5]}, "b": 1}), "map"),
            ("dc_off".into(), Value::Null, ""),
            ("dc_str".into(), json!("s"), "string"),
        ]
    );
    assert_eq!(DynamicConfigType::of(&json!(1.0)), DynamicConfigType::Float);
    let exp = r.get_experiment("quiet").map(|e| e.to_record());
    assert_eq!(
        exp,
        Some(json!({"id": 7, "version": "4", "name": "quiet", "bucket_val": "user_id",
            "start_ts": 10, "stop_ts": 20, "owner": null, "emit_event": false, "measured": false}))
    );
    let dc = r.get_experiment("dc_int").map(|e| (e.bucket_val, e.start_ts, e.emit_event));
    assert_eq!(dc, Some((String::new(), 0, Some(false))));
}

#[test]
fn events_whose_legacy_string_does_not_split_in_nine_are_dropped() {
    let m = manifest();
    let mut r = WrapperRequest::new(Some(&m), user(), Recorder::default());
    assert_eq!(r.get_variant("colons", &Map::new()), Some("a::::b"));
    assert!(r.handler().events.is_empty());
    assert!(matches!(
        r.handler().errors.as_slice(),
        [("get_variant", WrapperError::UnsplittableEvent(_))]
    ));
    // The try form succeeds too (the call itself did not fail), still reporting the drop.
    assert_eq!(r.try_get_variant("colons", &Map::new()), Ok(Some("a::::b")));
    assert_eq!(r.handler().errors.len(), 2);
}

#[test]
fn keywords_the_reference_cannot_take_are_type_errors() {
    let m = manifest();
    let mut r = WrapperRequest::new(Some(&m), user(), Recorder::default());
    for (k, op) in
        [("experiment_name", "get_variant"), ("variant", "get_variant"), ("inputs", "get_variant")]
    {
        let kwargs = Map::from_iter([(k.to_owned(), json!(1))]);
        assert_eq!(r.get_variant("plain", &kwargs), None);
        assert_eq!(r.handler().errors.last(), Some(&(op, WrapperError::KeywordConflict(k.into()))));
    }
    assert_eq!(
        r.try_expose("plain", Some("a"), &kw(json!({"variant_name": 1}))),
        Err(WrapperError::KeywordConflict("variant_name".into()))
    );
    assert_eq!(
        r.try_get_variant_for_identifier("plain", "x", "user_id", &kw(json!({"identifier": 1}))),
        Err(WrapperError::KeywordConflict("identifier".into()))
    );
    // A feature bucketed on a field named `variant`: its bucketing entry collides.
    let ctx = WrapperContext::builder().extracted_field("variant", "v1").build();
    let mut r = WrapperRequest::new(Some(&m), ctx, Vec::new());
    assert_eq!(
        r.try_get_variant("reserved", &Map::new()),
        Err(WrapperError::KeywordConflict("variant".into()))
    );
    // Without exposure nothing is logged, so nothing collides.
    assert_eq!(r.try_get_variant_without_expose("reserved"), Ok(Some("r")));
    assert!(r.handler().is_empty());
}

#[test]
fn contexts_build_the_reference_dicts() {
    let ctx = WrapperContext::from_kwargs(kw(json!({
        "user_id": "t2_a", "locale": "", "device_id": "dev", "country_code": "US",
        "cookie_created_timestamp": 5, "loid_created_timestamp": 6,
        "extracted_fields": {"user_id": "t2_b", "app_version": "1.2", "build_number": 0,
            "canonical_url": "https://x", "conversion_pixel_id": "old", "plan": "free"},
        "conversion_pixel_id": "px"})))
    .unwrap_or_else(|e| panic!("{e}"));
    let d = ctx.to_dict();
    let keys: Vec<&str> = d.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "user_id",
            "device_id",
            "country_code",
            "locale",
            "user_is_employee",
            "logged_in",
            "oauth_client_id",
            "origin_service",
            "cookie_created_timestamp",
            "loid_created_timestamp",
            "other_fields",
            "app_version",
            "build_number",
            "canonical_url",
            "conversion_pixel_id",
            "plan"
        ]
    );
    // The spread replaces user_id in place; conversion_pixel_id wins over the extracted one.
    assert_eq!(d["user_id"], json!("t2_b"));
    assert_eq!(d["other_fields"]["conversion_pixel_id"], json!("px"));
    let core = ctx.context().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(Ok(&core), Context::from_json(&d).as_ref());
    assert_eq!(core.get("user_id"), Some(experiments_decider::FieldValue::Str("t2_b")));
    assert_eq!(core.get("canonical_url"), Some(experiments_decider::FieldValue::Str("https://x")));
    let e = ctx.to_event_dict();
    assert_eq!(e["user_id"], json!("t2_b"));
    assert_eq!(e["user"]["id"], json!("t2_a"));
    // Only truthy members: build_number 0 and locale "" are left out.
    assert_eq!(e["app"], json!({"version": "1.2"}));
    assert_eq!(e["request"], json!({"canonical_url": "https://x"}));
    assert_eq!(e["geo"], json!({"country_code": "US"}));
    assert_eq!(e["platform"], json!({"device_id": "dev"}));
    assert_eq!(e["conversion_pixel_id"], json!("px"));
    assert_eq!(e.get("loid_created_timestamp"), None);

    // Python's TypeErrors at construction.
    assert_eq!(
        WrapperContext::from_kwargs(kw(json!({"auth_client_id": "x"}))),
        Err(KwargsError::UnexpectedKeyword("auth_client_id".into()))
    );
    assert!(WrapperContext::from_kwargs(kw(json!({"extracted_fields": [1]}))).is_err());
    // A falsy value is no extracted fields (`extracted_fields or {}`).
    let empty = WrapperContext::from_kwargs(kw(json!({"extracted_fields": []})));
    assert_eq!(empty.map(|c| c.extracted_fields().len()), Ok(0));
    // Typed builder and kwargs agree.
    let built = WrapperContext::builder()
        .user_id("t2_a")
        .cookie_created_timestamp(5)
        .conversion_pixel_id("px")
        .build();
    let parsed = WrapperContext::from_kwargs(kw(json!({"user_id": "t2_a",
        "cookie_created_timestamp": 5, "conversion_pixel_id": "px"})));
    assert_eq!(parsed, Ok(built));
}

#[test]
fn v2_of_wrapper_events_equals_the_engines() {
    let m = manifest();
    let wctx = WrapperContext::builder()
        .user_id("t2_abc")
        .logged_in(true)
        .country_code("US")
        .extracted_field("app_name", "android")
        .extracted_field("build_number", 42)
        .extracted_field("correlation_id", "9e107d9d-372b-4c59-8b1a-8e4f1e6a3a10")
        .build();
    let core = wctx.context().unwrap_or_else(|e| panic!("{e}"));
    let mut r = WrapperRequest::new(Some(&m), wctx, Vec::new());
    // Decision events: exactly the engine's, parents included.
    assert_eq!(r.get_variant("child", &kw(json!({"page": 1}))), Some("on"));
    let decision = m.choose("child", &core).unwrap_or_else(|e| panic!("{e}"));
    let engine: Vec<String> = decision.events().map(|e| e.to_v2_json(&stamp())).collect();
    let wrapper: Vec<String> = r.handler().iter().map(|e| e.to_v2_json(&stamp())).collect();
    assert_eq!(engine.len(), 3);
    assert_eq!(wrapper, engine);
    assert!(engine[0].contains(r#""8":{"str":"9e107d9d-372b-4c59-8b1a-8e4f1e6a3a10"}"#));
    let keys: Vec<String> = r.handler().iter().map(WrapperEvent::exposure_key).collect();
    assert_eq!(keys, decision.events().map(|e| e.exposure_key()).collect::<Vec<_>>());
    // An override event keeps its kind ("10": true).
    r.handler_mut().clear();
    let forced = WrapperContext::builder().user_id("t2_forced").build();
    let forced_core = forced.context().unwrap_or_default();
    let mut f = WrapperRequest::new(Some(&m), forced, Vec::new());
    assert_eq!(f.get_variant("forced", &Map::new()), Some("a"));
    let d = m.choose("forced", &forced_core).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(f.handler()[0].kind(), DecisionKind::Override);
    assert_eq!(
        f.handler()[0].to_v2_json(&stamp()),
        d.events().map(|e| e.to_v2_json(&stamp())).collect::<String>()
    );

    // expose(): the event a decision with that variant writes for the same context.
    r.expose("plain", Some("a"), &Map::new());
    let chosen = m.choose("plain", &core).unwrap_or_else(|e| panic!("{e}"));
    let engine_event = chosen.event(0).map(|e| e.to_v2_json(&stamp()));
    assert_eq!(r.handler().last().map(|e| e.to_v2_json(&stamp())), engine_event);
    // ...and what legitimately differs: a variant the engine would not choose, and the
    // override flag of an override exposure.
    let feature = m.feature("forced").unwrap_or_else(|| panic!("forced"));
    let manual = Exposure::from_parts(DecisionKind::FracAvail, feature, "a", &forced_core);
    let overridden = d.event(0).map(|e| e.to_v2_json(&stamp())).unwrap_or_default();
    assert_eq!(
        manual.to_v2_json(&stamp()),
        overridden.replace(r#""10":{"tf":1}"#, r#""10":{"tf":0}"#)
    );
    assert_eq!(manual.exposure_key(), "forced:4:a:t2_forced");
    // The fallback correlation id is the caller's when the context has none.
    assert_eq!(f.handler()[0].correlation_id(Uuid::from_u128(7)), Uuid::from_u128(7));
}

/// The traced forms decide once: the variant and the records of the untraced forms, and
/// the steps `Manifest::choose_traced` reports for the same context.
#[test]
fn traced_forms_report_the_steps_of_the_decision_they_log() {
    let m = manifest();
    let ctx = user().context().unwrap_or_else(|e| panic!("{e}"));
    for name in ["child", "held", "plain", "forced", "by_device", "none"] {
        let mut direct = experiments_decider::Explanation::default();
        let chosen = m.choose_traced(name, &ctx, &mut direct).map(|d| d.variant().is_some());
        for expose in [true, false] {
            let mut plain = WrapperRequest::new(Some(&m), user(), Vec::new());
            let mut traced = WrapperRequest::new(Some(&m), user(), Vec::new());
            let mut why = experiments_decider::Explanation::default();
            let (a, b) = if expose {
                (
                    plain.try_get_variant(name, &Map::new()),
                    traced.try_get_variant_traced(name, &Map::new(), &mut why),
                )
            } else {
                (
                    plain.try_get_variant_without_expose(name),
                    traced.try_get_variant_without_expose_traced(name, &mut why),
                )
            };
            assert_eq!(a, b, "{name} expose={expose}");
            assert_eq!(summary(plain.handler()), summary(traced.handler()), "{name}");
            assert_eq!(why.steps, direct.steps, "{name} expose={expose}");
            assert!(!why.steps.is_empty() || chosen.is_err(), "{name}: {chosen:?}");
        }
    }
}
