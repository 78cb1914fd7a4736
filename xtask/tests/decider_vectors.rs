//! `cargo test` replays the public reddit-decider vectors and checks that the runner catches
//! tampered expectations.

use std::path::PathBuf;

use xtask::conformance::{collect_files, run_document, run_files};

fn vectors_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/decider/vectors")
}

#[test]
fn public_decider_vectors_pass() {
    let files = collect_files(&[vectors_dir()]).expect("the shared decider vectors are present");
    assert_eq!(files.len(), 30, "expected the 30 public decider files");
    let summary = run_files(&files).expect("every vector file is readable");
    for f in summary.failures.iter().take(20) {
        eprintln!("{f}");
    }
    assert_eq!(summary.failed, 0, "{}", summary.closing_line());
    // Every unit: 9,230 core calls, 5,600 wrapper calls, 1,563 load-case calls, 30 file loads
    // and 285 load cases.
    assert_eq!(summary.passed + summary.deviated_total(), 16_708);
    assert_eq!(summary.not_replayed, 0);
    let wrapper: usize = summary
        .ops
        .iter()
        .filter(|(op, _)| op.starts_with("decider wrapper "))
        .map(|(_, n)| n)
        .sum();
    assert_eq!(wrapper, 5_600);
    // Deviations only where the reference crashes (README: at most 9 in the public files).
    assert_eq!(
        summary.deviated.keys().copied().collect::<Vec<_>>(),
        ["array_dynamic_config_value"]
    );
    assert!(summary.deviated_total() <= 9);
}

#[test]
fn runner_detects_wrong_expectations() {
    let feature = serde_json::json!({"id": 1, "name": "f", "enabled": true, "version": "1",
        "type": "range_variant", "emit_event": false,
        "experiment": {"experiment_version": 3, "bucket_val": "user_id",
            "variants": [{"name": "a", "range_start": 0, "range_end": 1}]}});
    // The same feature under another name, with exposure events (for the wrapper calls).
    let mut emitting = feature.clone();
    emitting["name"] = "g".into();
    emitting["id"] = 2.into();
    emitting["emit_event"] = true.into();
    let decision = |variant: &str| {
        serde_json::json!({"variant": variant, "value": null, "feature_id": 1, "feature_name": "f",
            "feature_version": 3, "events": [], "full_events": []})
    };
    let doc = serde_json::json!({
        "format": 1, "packages": {"reddit-decider": "1.18.2"},
        "config": {"f": feature, "g": emitting}, "load": {"status": "ok"},
        "load_cases": [{"config": {"f": feature}, "load": {"status": "partial", "errors": {"f": "x"}}}],
        "core_calls": [
            {"op": "choose", "feature": "f", "context": {"user_id": "t2_1"},
             "expect": {"decision": decision("a"), "exposed": []}},
            {"op": "choose", "feature": "f", "context": {"user_id": "t2_1"},
             "expect": {"decision": decision("b"), "exposed": []}},
            {"op": "choose", "feature": "f", "context": {},
             "expect": {"error": {"type": "FeatureNotFoundException", "message": ""}}},
            {"op": "get_feature", "feature": "f", "expect": {"feature": {"id": 1, "name": "f",
             "version": 3, "bucket_val": "user_id", "start_ts": 0, "stop_ts": 0,
             "emit_event": false, "measured": false}}}
        ],
        "requests": [{"decider_context": {"user_id": "t2_1"}, "calls": wrapper_calls()}]
    });
    let summary = run_document("tampered", &doc).expect("well-formed");
    // Passed: the file load, the first choose, get_feature, the first wrapper call. Failed: the
    // load case (the entry loads), the second choose (another variant), the third (another
    // error class), and the four tampered wrapper calls.
    assert_eq!(summary.passed, 4, "{:?}", summary.failures);
    assert_eq!(summary.failed, 7, "{:?}", summary.failures);
}

/// A `get_variant` of `g` as recorded, then the same call with a tampered variant, an event's inputs
/// in another key order, a missing event, and a swallowed default that is not the method's.
fn wrapper_calls() -> serde_json::Value {
    let inputs = serde_json::json!({"user_id": "t2_1", "country_code": null, "locale": null,
        "user_is_employee": null, "logged_in": null, "device_id": null, "origin_service": null,
        "cookie_created_timestamp": null,
        "user": {"id": "t2_1", "logged_in": null, "cookie_created_timestamp": null,
            "is_employee": null},
        "app": {}, "geo": {}, "request": {}, "platform": {}});
    let event = |inputs: &serde_json::Value| {
        serde_json::json!({"event_type": "expose", "variant": "a",
            "experiment": {"id": 2, "version": "3", "name": "g", "bucket_val": "user_id",
                "start_ts": 0, "stop_ts": 0, "owner": null, "emit_event": null, "measured": null},
            "inputs": inputs})
    };
    let mut reordered = serde_json::Map::new();
    reordered.insert("country_code".into(), serde_json::Value::Null);
    for (k, v) in inputs.as_object().into_iter().flatten().filter(|(k, _)| *k != "country_code") {
        reordered.insert(k.clone(), v.clone());
    }
    let call = |variant: &str, events: serde_json::Value| {
        serde_json::json!({"op": "get_variant", "experiment": "g", "exposure_kwargs": {},
            "expect": {"variant": variant, "events": events}})
    };
    serde_json::json!([
        call("a", serde_json::json!([event(&inputs)])),
        call("b", serde_json::json!([event(&inputs)])),
        call("a", serde_json::json!([event(&serde_json::Value::Object(reordered))])),
        call("a", serde_json::json!([])),
        {"op": "get_int", "feature": "f", "default": 3, "expect": {"value": 0, "events": []}},
    ])
}
