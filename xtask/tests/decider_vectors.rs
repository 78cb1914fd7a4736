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
    // Every unit but the wrapper calls: 9,230 core calls, 1,563 load-case calls, 30 file
    // loads and 285 load cases.
    assert_eq!(summary.passed + summary.deviated_total(), 11_108);
    assert_eq!(summary.not_replayed, 5_600);
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
    let decision = |variant: &str| {
        serde_json::json!({"variant": variant, "value": null, "feature_id": 1, "feature_name": "f",
            "feature_version": 3, "events": [], "full_events": []})
    };
    let doc = serde_json::json!({
        "format": 1, "packages": {"reddit-decider": "1.18.2"},
        "config": {"f": feature}, "load": {"status": "ok"},
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
        "requests": []
    });
    let summary = run_document("tampered", &doc).expect("well-formed");
    // Passed: the file load, the first choose, get_feature. Failed: the load case (the entry
    // loads), the second choose (another variant), the third (another error class).
    assert_eq!(summary.passed, 3, "{:?}", summary.failures);
    assert_eq!(summary.failed, 3, "{:?}", summary.failures);
}
