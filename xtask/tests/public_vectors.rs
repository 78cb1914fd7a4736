//! `cargo test` replays the public conformance vectors recorded from baseplate 1.5.5.

use std::path::PathBuf;

use xtask::conformance::{collect_files, run_document, run_files};

fn vectors_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/conformance/vectors")
}

#[test]
fn public_vectors_pass() {
    let files = collect_files(&[vectors_dir()]).expect("the shared vectors are present");
    assert_eq!(files.len(), 39, "expected the 39 public vector files");
    let summary = run_files(&files).expect("every vector file is readable");
    for f in summary.failures.iter().take(20) {
        eprintln!("{f}");
    }
    assert_eq!(summary.failed, 0, "{}", summary.closing_line());
    assert_eq!(summary.ops.get("variant").copied(), Some(18_954));
    assert_eq!(summary.passed + summary.failed + summary.deviated_total(), 24_844);
    // Every deviation is in a closed category and stays rare.
    assert!(summary.deviated_total() < 500, "{:?}", summary.deviated);
}

#[test]
fn runner_detects_a_wrong_expectation() {
    // A tampered vector must fail: the runner compares, it does not just run.
    let doc = serde_json::json!({
        "format": 1, "now": 1700000000.0,
        "config": {"ff": {"id": 1, "name": "ff", "type": "feature_flag", "version": "1",
            "start_ts": 0, "stop_ts": 4102444800u64,
            "experiment": {"variants": {"active": 100}, "targeting": {"logged_in": [true]}}}},
        "requests": [{"calls": [
            {"op": "variant", "experiment": "ff", "inputs": {"user_id": "t2_1", "logged_in": true},
             "bucketing_event_override": null, "expect": {"variant": "active", "events": []}},
            {"op": "variant", "experiment": "ff", "inputs": {"user_id": "t2_1", "logged_in": true},
             "bucketing_event_override": null, "expect": {"variant": null, "events": []}},
            {"op": "names", "expect": ["ff", "other"]},
            {"op": "is_valid", "experiment": "ff", "expect": true}
        ]}]
    });
    let summary = run_document("tampered", &doc).expect("well-formed");
    assert_eq!(summary.passed, 2);
    assert_eq!(summary.failed, 2, "{:?}", summary.failures);
}
