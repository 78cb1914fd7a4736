//! The `experiments` binary on real files: every subcommand, the exit codes, and `eval`
//! agreeing with the library on a sample of the conformance vectors.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use experiments_sdk::Config;
use serde_json::{Value, json};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_experiments"))
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("the binary runs")
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

const VALID: &str = r#"{
  "rollout": {"id": 1, "name": "rollout", "owner": "a", "type": "feature_rollout", "version": "1",
    "start_ts": 0, "stop_ts": 4102444800,
    "experiment": {"experiment_version": 1, "variants": [{"name": "on", "size": 0.5}]}},
  "split": {"id": 2, "name": "split", "owner": "b", "type": "single_variant", "version": "1",
    "start_ts": 0, "stop_ts": 4102444800,
    "experiment": {"experiment_version": 2, "bucket_val": "user_id",
      "variants": [{"name": "control", "size": 0.1}, {"name": "treatment", "size": 0.1}],
      "targeting": {"GE": {"field": "num_votes", "value": 5}}}}
}"#;

const SUSPICIOUS: &str = r#"{
  "unknown": {"id": 1, "name": "unknown", "type": "dynamic_config", "start_ts": 0, "stop_ts": 4102444800, "experiment": {}},
  "expired": {"id": 2, "name": "expired", "type": "feature_rollout", "start_ts": 0, "stop_ts": 1000,
    "experiment": {"experiment_version": 1, "variants": [{"name": "on", "size": 0.5}]}},
  "future": {"id": 3, "name": "future", "type": "feature_rollout", "start_ts": 4000000000, "stop_ts": 4102444800,
    "experiment": {"experiment_version": 1, "variants": [{"name": "on", "size": 0.5}]}},
  "mixed_case": {"id": 4, "name": "mixed_case", "type": "feature_rollout", "start_ts": 0, "stop_ts": 4102444800,
    "experiment": {"experiment_version": 1, "bucket_val": "Device_ID", "variants": [{"name": "on", "size": 0.5}]}},
  "never": {"id": 5, "name": "never", "type": "feature_rollout", "start_ts": 0, "stop_ts": 4102444800,
    "experiment": {"experiment_version": 1, "variants": [{"name": "on", "size": 0.5}], "targeting": {"BOGUS": 1}}},
  "bad_override": {"id": 6, "name": "bad_override", "type": "feature_rollout", "start_ts": 0, "stop_ts": 4102444800,
    "experiment": {"experiment_version": 1, "variants": [{"name": "on", "size": 0.5}],
      "overrides": [{"typo": {"OVERRIDE": true}}]}},
  "capped": {"id": 7, "name": "capped", "type": "r2", "start_ts": 0, "stop_ts": 4102444800,
    "experiment": {"variants": {"a": 60, "b": 50}, "targeting": {"logged_in": [true]}}},
  "overlap": {"id": 8, "name": "overlap", "type": "range_variant", "start_ts": 0, "stop_ts": 4102444800,
    "experiment": {"experiment_version": 1, "variants": [
      {"name": "x", "range_start": 0.0, "range_end": 0.4}, {"name": "y", "range_start": 0.3, "range_end": 0.5}]}}
}"#;

#[test]
fn check_exit_codes_and_reports() {
    let dir = tempfile::tempdir().unwrap();
    let valid = write(dir.path(), "valid.json", VALID);
    let o = run(&["check", valid.to_str().unwrap(), "--now", "1700000000"]);
    assert_eq!(code(&o), 0, "{}", stdout(&o));
    assert!(stdout(&o).contains("2 experiments: 2 valid, 0 invalid"));

    let mixed = write(dir.path(), "mixed.json", &VALID.replace(r#""id": 2,"#, r#""id": "2","#));
    let o = run(&["check", mixed.to_str().unwrap(), "--format", "json", "--now", "1700000000"]);
    assert_eq!(code(&o), 1);
    let doc: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(doc["experiments"], 2);
    assert_eq!(doc["valid"], 1);
    assert_eq!(doc["invalid"][0]["name"], "split");
    assert!(doc["invalid"][0]["error"].as_str().unwrap().contains("id"));
    assert_eq!(doc["warnings"], json!([]));

    let invalid = write(dir.path(), "invalid.json", r#"{"a": {"id": true}, "b": []}"#);
    assert_eq!(code(&run(&["check", invalid.to_str().unwrap()])), 1);

    for (name, text) in [("empty.json", ""), ("garbage.json", "{not json"), ("list.json", "[1, 2]")]
    {
        let p = write(dir.path(), name, text);
        let o = run(&["check", p.to_str().unwrap()]);
        assert_eq!(code(&o), 2, "{name}");
        assert!(String::from_utf8_lossy(&o.stderr).contains(name), "the error names the file");
    }
    assert_eq!(code(&run(&["check", "/nonexistent/experiments.json"])), 2);
    let empty_object = write(dir.path(), "none.json", "{}");
    assert_eq!(code(&run(&["check", empty_object.to_str().unwrap()])), 0);
}

#[test]
fn check_warns_about_likely_mistakes() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "suspicious.json", SUSPICIOUS);
    let o = run(&["check", p.to_str().unwrap(), "--format", "json", "--now", "1700000000"]);
    assert_eq!(code(&o), 0, "all valid: {}", stdout(&o));
    let doc: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let warnings: Vec<(String, String)> = doc["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| {
            (w["name"].as_str().unwrap().to_owned(), w["warning"].as_str().unwrap().to_owned())
        })
        .collect();
    let has = |name: &str, text: &str| warnings.iter().any(|(n, w)| n == name && w.contains(text));
    assert!(has("unknown", "unknown experiment type"), "{warnings:?}");
    assert!(has("expired", "expired"), "{warnings:?}");
    assert!(has("future", "not started"), "{warnings:?}");
    assert!(has("mixed_case", "never matches"), "{warnings:?}");
    assert!(has("never", "can never match"), "{warnings:?}");
    assert!(has("bad_override", "not one of the variants"), "{warnings:?}");
    assert!(has("capped", "1/n cap"), "{warnings:?}");
    assert!(has("capped", "over 100%"), "{warnings:?}");
    assert!(has("overlap", "overlap"), "{warnings:?}");
    let text = stdout(&run(&["check", p.to_str().unwrap(), "--now", "1700000000"]));
    assert!(text.contains("  warning: expired"), "{text}");
}

/// Each JSON warning carries the lint's stable `code` after its text, in file order.
#[test]
fn check_json_warnings_carry_a_stable_code() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "suspicious.json", SUSPICIOUS);
    let o = run(&["check", p.to_str().unwrap(), "--format", "json", "--now", "1700000000"]);
    let doc: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let codes: Vec<(&str, &str)> = doc["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| (w["name"].as_str().unwrap(), w["code"].as_str().unwrap()))
        .collect();
    assert_eq!(
        codes,
        [
            ("unknown", "unknown_type"),
            ("expired", "expired"),
            ("future", "not_started"),
            ("mixed_case", "bucket_val_not_lowercase"),
            ("never", "targeting_never_matches"),
            ("bad_override", "override_unknown_variant"),
            ("capped", "r2_size_over_cap"),
            ("capped", "r2_sizes_over_100"),
            ("overlap", "range_overlap"),
        ]
    );
    let first = doc["warnings"][0].as_object().unwrap();
    assert_eq!(first.keys().collect::<Vec<_>>(), ["name", "warning", "code"]);
}

#[test]
fn eval_prints_variant_event_and_path() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "valid.json", VALID);
    let f = p.to_str().unwrap();
    let o = run(&[
        "eval",
        f,
        "split",
        "user_id=t2_1",
        "num_votes=7",
        "--now",
        "1700000000",
        "--explain",
        "--format",
        "json",
    ]);
    assert_eq!(code(&o), 0);
    let doc: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let steps = doc["explain"].as_array().unwrap();
    assert!(steps.iter().any(|s| s["step"]["step"] == "bucket"), "{doc}");
    // KEY=VALUE values are JSON when they parse: num_votes is the number 7.
    assert_eq!(
        steps.iter().find(|s| s["step"]["step"] == "targeting_node").unwrap()["step"]["result"],
        true
    );
    match &doc["variant"] {
        Value::Null => assert_eq!(doc["event"], Value::Null),
        v => {
            assert_eq!(doc["event"]["variant"], *v);
            assert_eq!(doc["event"]["inputs"]["num_votes"], 7);
        }
    }

    let o = run(&[
        "eval",
        f,
        "split",
        "user_id=t2_1",
        "num_votes=2",
        "--now",
        "1700000000",
        "--explain",
    ]);
    let text = stdout(&o);
    assert!(text.starts_with("variant: none"), "{text}");
    assert!(text.contains("targeted: false"), "{text}");

    // Where baseplate raises, eval reports the error and exits 1.
    let o =
        run(&["eval", f, "split", "user_id=t2_1", r#"num_votes="many""#, "--now", "1700000000"]);
    assert_eq!(code(&o), 1);
    assert!(stdout(&o).contains("not supported between instances of 'str' and 'int'"));

    let o = run(&["eval", f, "missing", "user_id=t2_1", "--explain"]);
    assert_eq!(code(&o), 0);
    assert!(stdout(&o).contains("variant: none"));
    assert!(stdout(&o).contains("no experiment of that name"));
    assert_eq!(code(&run(&["eval", f, "split", "novalue"])), 2);
}

#[test]
fn simulate_reports_shares_and_fit() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "valid.json", VALID);
    let o =
        run(&["simulate", p.to_str().unwrap(), "rollout", "--ids", "20000", "--now", "1700000000"]);
    assert_eq!(code(&o), 0);
    let text = stdout(&o);
    assert!(text.contains("on "), "{text}");
    assert!(text.contains("50.0000%"), "configured share: {text}");
    let p_line = text.lines().find(|l| l.starts_with("chi-square")).expect("a chi-square line");
    let p: f64 = p_line.rsplit("p = ").next().unwrap().trim().parse().unwrap();
    assert!(p > 0.001, "SHA-1 buckets are uniform: {p_line}");
    // With targeting that excludes the ids, the fit fails loudly.
    let o = run(&[
        "simulate",
        p_str(&dir, "valid.json"),
        "split",
        "num_votes=1",
        "--ids",
        "5000",
        "--now",
        "1700000000",
    ]);
    assert!(stdout(&o).contains("note: shares differ"), "{}", stdout(&o));
}

fn p_str(dir: &tempfile::TempDir, name: &str) -> &'static str {
    Box::leak(dir.path().join(name).to_string_lossy().into_owned().into_boxed_str())
}

/// A successful demo's accounting line (`requests=.. events=.. delivered=..`) and its
/// `delivered` count.
fn demo_accounting(o: &std::process::Output) -> (String, usize) {
    assert_eq!(code(o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    let stderr = String::from_utf8_lossy(&o.stderr);
    let accounting = stderr.lines().find(|l| l.starts_with("requests=")).expect("accounting line");
    let delivered =
        accounting.split("delivered=").nth(1).unwrap().split(' ').next().unwrap().parse().unwrap();
    (accounting.to_owned(), delivered)
}

#[test]
fn demo_runs_on_the_embedded_config() {
    let o = run(&["demo", "--requests", "200"]);
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    let lines: Vec<Value> = stdout(&o).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let stderr = String::from_utf8_lossy(&o.stderr);
    let accounting = stderr.lines().find(|l| l.starts_with("requests=")).expect("accounting line");
    assert!(accounting.starts_with("requests=200 "), "{accounting}");
    assert!(
        accounting.contains(&format!(
            "events={} delivered={} dropped=0 failed=0",
            lines.len(),
            lines.len()
        )),
        "{accounting}"
    );
    assert!(lines.iter().any(|l| l["event_type"] == "choose"));
    assert!(lines.iter().any(|l| l["event_type"] == "expose"));
    let o = run(&["demo", "--requests", "20", "--format", "v2"]);
    let first: Value = serde_json::from_str(stdout(&o).lines().next().unwrap()).unwrap();
    assert_eq!(first["1"]["str"], "experiment");
    assert_eq!(code(&run(&["demo", "--watch"])), 2, "--watch needs --config");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_ships_to_an_http_collector() {
    let collector = experiments_http::collector::Collector::start("demo", b"secret").await.unwrap();
    let url = collector.url();
    let o = tokio::task::spawn_blocking(move || {
        run(&[
            "demo",
            "--requests",
            "100",
            "--sink",
            "http",
            "--http-url",
            &url,
            "--http-key-name",
            "demo",
            "--http-key-secret",
            "c2VjcmV0",
        ])
    })
    .await
    .unwrap();
    let (_, delivered) = demo_accounting(&o);
    assert_eq!(collector.distinct(), delivered);
    assert_eq!(collector.bad_signatures(), 0);
}

/// `demo --settings FILE` builds its client the way a service does, from the issue's minimal
/// document: a strict v2 collector receives only v2 bodies, and the settings' relative
/// config path is resolved against the settings file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_with_a_settings_document_sends_what_the_sink_names() {
    let collector = experiments_http::collector::Collector::start("k", b"secret").await.unwrap();
    collector.accept_only(experiments_sdk::events::Encoding::V2);
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../experiments-core/examples/experiments.json"),
        dir.path().join("experiments.json"),
    )
    .unwrap();
    let settings = dir.path().join("settings.json");
    let document = r#"{"config": {"path": "experiments.json"},
 "sink": {"http": {"url": "URL", "key_name": "k", "secret": "c2VjcmV0", "format": "v2"}}}"#;
    std::fs::write(&settings, document.replace("URL", &collector.url())).unwrap();
    let path = settings.to_string_lossy().into_owned();
    let o = tokio::task::spawn_blocking(move || {
        run(&["demo", "--requests", "100", "--settings", &path])
    })
    .await
    .unwrap();
    let (accounting, delivered) = demo_accounting(&o);
    assert!(delivered > 100, "{accounting}");
    assert_eq!((collector.distinct(), collector.wrong_format()), (delivered, 0));
    // A bad settings document: exit 2 with the field named.
    std::fs::write(
        &settings,
        r#"{"config": {"path": "experiments.json"}, "sink": {"http": {"url": "x"}}}"#,
    )
    .unwrap();
    let o = run(&["demo", "--settings", &settings.to_string_lossy()]);
    assert_eq!(code(&o), 2);
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("sink.http"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // --settings replaces the sink flags.
    assert_eq!(code(&run(&["demo", "--settings", "x.json", "--sink", "kafka"])), 2);
}

/// `demo --dialect decider --sink http`: decider exposures (the engine's v2, signed) reach a
/// collector that reads only v2 bodies, none lost; a decider settings document does the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_delivers_decider_exposures_to_a_v2_collector() {
    let collector = experiments_http::collector::Collector::start("demo", b"secret").await.unwrap();
    collector.accept_only(experiments_sdk::events::Encoding::V2);
    let url = collector.url();
    let args = [
        "demo",
        "--dialect",
        "decider",
        "--requests",
        "200",
        "--sink",
        "http",
        "--format",
        "v2",
        "--http-key-name",
        "demo",
        "--http-key-secret",
        "c2VjcmV0",
        "--http-url",
    ];
    let o = tokio::task::spawn_blocking(move || {
        let mut all: Vec<&str> = args.to_vec();
        all.push(&url);
        run(&all)
    })
    .await
    .unwrap();
    let (accounting, delivered) = demo_accounting(&o);
    assert!(delivered >= 200, "{accounting}");
    assert!(accounting.contains("dropped=0 failed=0"), "{accounting}");
    assert_eq!(
        (collector.distinct(), collector.wrong_format(), collector.bad_signatures()),
        (delivered, 0, 0)
    );
    let names: std::collections::HashSet<String> = collector
        .events()
        .iter()
        .map(|e| e["129"]["rec"]["2"]["str"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert!(names.contains("global_holdout") && names.contains("checkout_group"), "{names:?}");
}

#[test]
fn demo_ships_to_kafka_when_a_broker_runs() {
    let up = std::net::TcpStream::connect_timeout(
        &"127.0.0.1:9092".parse().unwrap(),
        std::time::Duration::from_millis(300),
    )
    .is_ok();
    if !up {
        assert!(std::env::var_os("CI").is_none(), "no Kafka broker: run `cargo xtask services up`");
        eprintln!("skipping: no Kafka broker on 127.0.0.1:9092");
        return;
    }
    let topic = format!("cli-demo-{}", std::process::id());
    let o = run(&["demo", "--requests", "100", "--sink", "kafka", "--kafka-topic", &topic]);
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("dropped=0"));
}

#[test]
fn eval_agrees_with_the_library_on_conformance_vectors() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/conformance/vectors");
    let tmp = tempfile::tempdir().unwrap();
    let mut compared = 0;
    for file in [
        "public_00_r2.json",
        "public_06_targeting.json",
        "public_12_edge.json",
        "public_22_dedupe.json",
    ] {
        let doc: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join(file)).unwrap()).unwrap();
        let config_path = tmp.path().join(file);
        std::fs::write(&config_path, doc["config"].to_string()).unwrap();
        let config = Config::from_value(doc["config"].clone()).unwrap();
        let now = doc["now"].as_f64().unwrap();
        // The first call of each request runs on a fresh object, as one `eval` does.
        for request in doc["requests"].as_array().unwrap().iter().take(25) {
            let call = &request["calls"][0];
            if call["op"] != "variant" || call["bucketing_event_override"] != Value::Null {
                continue;
            }
            let name = call["experiment"].as_str().unwrap();
            if name.is_empty()
                || name.starts_with('-')
                || config.validation_error(name, now).is_some_and(|e| e.deviation.is_some())
            {
                continue;
            }
            let mut args = vec![
                "eval".to_owned(),
                config_path.to_string_lossy().into_owned(),
                name.to_owned(),
            ];
            let mut ok = true;
            for (k, v) in call["inputs"].as_object().unwrap() {
                ok &= !k.contains('=') && !k.is_empty();
                args.push(format!("{k}={v}"));
            }
            if !ok {
                continue;
            }
            args.extend([
                "--now".to_owned(),
                format!("{now}"),
                "--format".to_owned(),
                "json".to_owned(),
            ]);
            let o = bin().args(&args).output().unwrap();
            let got: Value = serde_json::from_str(&stdout(&o)).unwrap();
            let expect = &call["expect"];
            if expect.get("python_error").is_some() {
                assert_eq!(code(&o), 1, "{file} {name}: expected an error, got {got}");
            } else {
                assert_eq!(got["variant"], expect["variant"], "{file} {name} {args:?}");
                let events = expect["events"].as_array().unwrap();
                assert_eq!(
                    got["event"],
                    events.first().cloned().unwrap_or(Value::Null),
                    "{file} {name}"
                );
            }
            compared += 1;
        }
    }
    assert!(compared >= 40, "compared {compared} calls");
}

/// `n` experiments alternating invalid (a string id) and valid but expired (a warning).
fn many_experiments(n: usize) -> String {
    let entries: Vec<String> = (0..n)
        .map(|i| {
            if i % 2 == 1 {
                format!(r#""e{i}": {{"id": "x"}}"#)
            } else {
                format!(
                    r#""e{i}": {{"id": {i}, "name": "e{i}", "type": "feature_rollout",
                    "start_ts": 0, "stop_ts": 1000, "experiment": {{"experiment_version": 1,
                    "variants": [{{"name": "on", "size": 0.5}}]}}}}"#
                )
            }
        })
        .collect();
    format!("{{{}}}", entries.join(","))
}

#[test]
fn check_output_is_linear_in_the_number_of_experiments() {
    // 80,000 experiments: matching each with its error by a scan of all errors took over a
    // minute here; each report now costs a sort at most.
    let n = 80_000;
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "many.json", &many_experiments(n));
    let started = std::time::Instant::now();
    let o = run(&["check", p.to_str().unwrap(), "--now", "1700000000"]);
    // About a second in a debug build; quadratic it was over a minute.
    assert!(started.elapsed().as_secs() < 30, "check took {:?}", started.elapsed());
    assert_eq!(code(&o), 1);
    let text = stdout(&o);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), n + n / 2 + 1, "a line per experiment and per warning, and totals");
    assert_eq!(lines[0], "e0: valid");
    assert!(lines[1].starts_with("  warning: expired"), "{}", lines[1]);
    assert!(lines[2].starts_with("e1: INVALID: id: "), "{}", lines[2]);
    assert!(lines[lines.len() - 2].starts_with(&format!("e{}: INVALID", n - 1)));
    assert_eq!(
        lines[lines.len() - 1],
        format!("{n} experiments: {} valid, {} invalid, {} warnings", n / 2, n / 2, n / 2)
    );
}

#[test]
fn check_json_report_of_many_experiments() {
    let n = 80_000;
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "many.json", &many_experiments(n));
    let o = run(&["check", p.to_str().unwrap(), "--now", "1700000000", "--format", "json"]);
    assert_eq!(code(&o), 1);
    let doc: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(doc["experiments"], n);
    assert_eq!(doc["invalid"].as_array().unwrap().len(), n / 2);
    assert_eq!(doc["invalid"][0]["name"], "e1");
    assert_eq!(doc["warnings"].as_array().unwrap().len(), n / 2);
    assert_eq!(doc["warnings"][n / 2 - 1]["name"], format!("e{}", n - 2));
}

#[test]
fn check_into_a_closed_pipe_does_not_panic() {
    // `experiments check big.json | head`: the reader goes away while the report is written.
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "many.json", &many_experiments(20_000));
    for format in ["text", "json"] {
        let mut child = bin()
            .args(["check", p.to_str().unwrap(), "--now", "1700000000", "--format", format])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let o = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert!(!stderr.contains("panicked"), "{format}: {stderr}");
        assert_eq!(code(&o), 1, "{format}: the status of the report (some invalid): {stderr}");
    }
}

#[test]
fn simulate_cost_does_not_grow_with_the_variants_squared() {
    // 40,000 range variants over a million buckets: the configured shares were counted
    // bucket by bucket with a scan of the variants per bucket (over a minute here).
    let k = 40_000;
    let variants: Vec<Value> = (0..k)
        .map(|i| {
            json!({"name": format!("v{i}"), "range_start": i as f64 / k as f64,
                "range_end": (i + 1) as f64 / k as f64})
        })
        .collect();
    let doc = json!({"r": {"id": 1, "name": "r", "type": "range_variant", "start_ts": 0,
        "stop_ts": 4_102_444_800u64, "experiment": {"experiment_version": 1,
        "num_buckets": 1_000_000, "variants": variants}}});
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "ranges.json", &doc.to_string());
    let started = std::time::Instant::now();
    let o = run(&["simulate", p.to_str().unwrap(), "r", "--ids", "1000", "--now", "1700000000"]);
    // Under a second in a debug build; quadratic it was over a minute.
    assert!(started.elapsed().as_secs() < 30, "simulate took {:?}", started.elapsed());
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    let text = stdout(&o);
    let rows: Vec<&str> = text.lines().skip(2).take(k + 1).collect();
    assert!(rows[0].starts_with("v0 ") && rows[0].ends_with(" 0.0025%"), "{}", rows[0]);
    assert!(rows[k].starts_with("none ") && rows[k].ends_with(" 0.0000%"), "{}", rows[k]);
    let counted: u64 =
        rows.iter().map(|r| r.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap()).sum();
    assert_eq!(counted, 1000, "every id lands in exactly one row");
    assert!(text.contains("chi-square "), "{text}");
}

#[test]
fn now_must_be_a_finite_instant() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "valid.json", VALID);
    let f = p.to_str().unwrap();
    let commands: [&[&str]; 3] = [
        &["check", f],
        &["eval", f, "split", "user_id=t2_1", "num_votes=7"],
        &["simulate", f, "rollout", "--ids", "10"],
    ];
    for args in commands {
        for bad in ["NaN", "nan", "-NaN", "inf", "-inf", "infinity", "-Infinity", "1e400", "-1e999"]
        {
            for form in [vec!["--now".to_owned(), bad.to_owned()], vec![format!("--now={bad}")]] {
                let o = bin().args(args).args(&form).output().unwrap();
                let stderr = String::from_utf8_lossy(&o.stderr);
                assert_eq!(code(&o), 2, "{args:?} {form:?}: {}{stderr}", stdout(&o));
                assert!(stderr.contains("--now") && stderr.contains("finite"), "{stderr}");
                assert!(stdout(&o).is_empty(), "nothing evaluated: {}", stdout(&o));
            }
        }
        let o = bin().args(args).args(["--now", "yesterday"]).output().unwrap();
        assert_eq!(code(&o), 2);
        assert!(String::from_utf8_lossy(&o.stderr).contains("not a number"));
        // Finite instants, negative and fractional included, are accepted.
        for good in ["-5", "-1.5e3", "1700000000.25", "0"] {
            let o = bin().args(args).args(["--now", good]).output().unwrap();
            assert_ne!(
                code(&o),
                2,
                "{args:?} --now {good}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        }
    }
    // An instant before every window: check sees the experiments as not started yet.
    let text = stdout(&run(&["check", f, "--now", "-5"]));
    assert!(text.contains("not started yet"), "{text}");
}

// ---- reddit-decider documents --------------------------------------------------------------

/// One decider range entry: config key `key`, `name`, extra top-level members (`extra`, each
/// followed by a comma) and the variants as `(name, start, end)`.
fn decider_entry(key: &str, name: &str, extra: &str, variants: &[(&str, f64, f64)]) -> String {
    let variants: Vec<String> = variants
        .iter()
        .map(|(n, s, e)| format!(r#"{{"name": "{n}", "range_start": {s}, "range_end": {e}}}"#))
        .collect();
    format!(
        r#""{key}": {{"id": {}, "name": "{name}", "enabled": true, "version": "1",
            "type": "range_variant", "emit_event": true, {extra}
            "experiment": {{"experiment_version": 3, "bucket_val": "user_id",
              "variants": [{}]}}}}"#,
        key.len() * 7 + name.len(),
        variants.join(", ")
    )
}

/// A decider document with one entry per kind of warning and per kind of invalid key: shape
/// errors keyed by config key, conversion errors keyed by `name`, a cycle.
fn decider_mistakes() -> String {
    let entries = [
        decider_entry("lonely_hg", "lonely_hg", "", &[("control_1", 0.0, 1.0)]),
        decider_entry("meg", "meg", "", &[("feed", 0.0, 0.5), ("nobody", 0.5, 1.0)]),
        decider_entry(
            "feed",
            "feed",
            r#""parent_meg_name": "meg", "parent_hg_name": "lonely_hg","#,
            &[("a", 0.0, 0.6), ("b", 0.5, 1.0)],
        ),
        decider_entry("stray", "stray", r#""parent_meg_name": "meg","#, &[("on", 0.0, 1.0)]),
        decider_entry("wide", "wide", "", &[("x", -0.1, 0.5), ("y", 0.9, 0.8)]),
        decider_entry("orphan", "orphan", r#""parent_hg_name": "gone","#, &[("on", 0.0, 1.0)]),
        decider_entry("half", "half", r#""parent_hg_name": "bad_shape","#, &[("on", 0.0, 1.0)]),
        r#""bad_shape": {"id": "nope", "name": "bad_shape", "enabled": true, "version": "1",
            "type": "range_variant", "experiment": {"experiment_version": 1}}"#
            .to_owned(),
        decider_entry("key_a", "dup", "", &[("on", 0.0, 1.0)]),
        decider_entry("key_b", "dup", "", &[("on", 0.0, 1.0)]),
        r#""dc": {"id": 40, "name": "dc", "enabled": true, "version": "1", "type": "dynamic_config",
            "value": "7", "value_type": "Integer", "experiment": {"experiment_version": 1}}"#
            .to_owned(),
        r#""conv_key": {"id": 41, "name": "conv_name", "enabled": true, "version": "1",
            "type": "range_variant", "experiment": {"experiment_version": 1, "variants": []}}"#
            .to_owned(),
        decider_entry("loop_a", "loop_a", r#""parent_hg_name": "loop_b","#, &[("on", 0.0, 1.0)]),
        decider_entry("loop_b", "loop_b", r#""parent_meg_name": "loop_a","#, &[("on", 0.0, 1.0)]),
    ];
    format!("{{{}}}", entries.join(",\n"))
}

#[test]
fn decider_check_reports_invalid_keys_and_each_warning_kind() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "decider.json", &decider_mistakes());
    let f = p.to_str().unwrap();
    let o = run(&["check", f, "--dialect", "decider", "--format", "json"]);
    assert_eq!(code(&o), 1, "{}", stdout(&o));
    let doc: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(
        doc.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["dialect", "entries", "valid", "invalid", "warnings"]
    );
    assert_eq!(doc["dialect"], "decider");
    assert_eq!(doc["entries"], 14);
    assert_eq!(
        doc["valid"],
        json!([
            "lonely_hg",
            "meg",
            "feed",
            "stray",
            "wide",
            "orphan",
            "half",
            "key_a",
            "key_b",
            "dc"
        ])
    );
    // Shape errors under the config key, conversion errors and cycles under the name.
    let invalid: Vec<(&str, &str)> = doc["invalid"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["key"].as_str().unwrap(), e["error"].as_str().unwrap()))
        .collect();
    let keys: Vec<&str> = invalid.iter().map(|(k, _)| *k).collect();
    assert_eq!(keys, ["bad_shape", "conv_name", "loop_a", "loop_b"]);
    assert!(invalid[0].1.contains("invalid type"), "{invalid:?}");
    assert_eq!(invalid[1].1, "Missing bucketing_field for range_variant");
    assert!(invalid[2].1.contains("cycle"), "{invalid:?}");
    let warnings: Vec<(&str, &str)> = doc["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| (w["key"].as_str().unwrap(), w["code"].as_str().unwrap()))
        .collect();
    assert_eq!(
        warnings,
        [
            ("lonely_hg", "holdout_without_holdout_variant"),
            ("meg", "meg_variant_without_child"),
            ("feed", "range_overlap"),
            ("stray", "meg_child_not_a_variant"),
            ("wide", "range_out_of_bounds"),
            ("wide", "range_reversed"),
            ("orphan", "unknown_parent"),
            ("half", "ignored_parent"),
            ("key_b", "duplicate_name"),
            ("dc", "value_type_mismatch"),
        ]
    );
    let first = doc["warnings"][0].as_object().unwrap();
    assert_eq!(first.keys().collect::<Vec<_>>(), ["key", "warning", "code"]);
    let text_of = |code: &str| {
        doc["warnings"].as_array().unwrap().iter().find(|w| w["code"] == code).unwrap()["warning"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert!(text_of("meg_variant_without_child").contains("\"nobody\""));
    assert!(text_of("range_overlap").contains("100 of its 500 buckets"));
    assert!(text_of("value_type_mismatch").contains("get_int"));

    // The same report as text, in the layout of baseplate's.
    let o = run(&["check", f, "--dialect", "decider"]);
    assert_eq!(code(&o), 1);
    let text = stdout(&o);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "lonely_hg: valid");
    assert!(lines[1].starts_with("  warning: holdout group of 1 entries"), "{text}");
    assert!(text.contains("\nconv_name: INVALID: Missing bucketing_field for range_variant\n"));
    assert!(text.contains("loop_a: INVALID: on a holdout/mutually exclusive group cycle"));
    assert!(text.contains("[deliberate deviation: the reference overflows its stack]"), "{text}");
    assert!(text.contains("\nkey_b: valid\n  warning: name \"dup\""), "{text}");
    assert_eq!(lines[lines.len() - 1], "14 entries: 10 valid, 4 invalid, 10 warnings");
}

#[test]
fn decider_check_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let valid = format!(
        "{{{}, {}}}",
        decider_entry("hg", "hg", "", &[("holdout", 0.0, 0.1), ("control_1", 0.1, 0.2)]),
        decider_entry("exp", "exp", r#""parent_hg_name": "hg","#, &[("on", 0.0, 1.0)])
    );
    let p = write(dir.path(), "valid.json", &valid);
    let o = run(&["check", p.to_str().unwrap()]);
    assert_eq!(code(&o), 0, "{}", stdout(&o));
    assert_eq!(stdout(&o), "hg: valid\nexp: valid\n2 entries: 2 valid, 0 invalid, 0 warnings\n");
    let o = run(&["check", p.to_str().unwrap(), "--format", "json"]);
    assert_eq!(
        serde_json::from_str::<Value>(&stdout(&o)).unwrap(),
        json!({"dialect": "decider", "entries": 2, "valid": ["hg", "exp"], "invalid": [],
               "warnings": []})
    );
    // Nothing loads: not an object, a malformed `$override_groups`, unreadable.
    for (name, text) in [
        ("list.json", "[1, 2]"),
        ("garbage.json", "{not json"),
        ("groups.json", r#"{"$override_groups": {"value": {"g": {"name": "g"}}}}"#),
    ] {
        let p = write(dir.path(), name, text);
        let o = run(&["check", p.to_str().unwrap(), "--dialect", "decider"]);
        assert_eq!(code(&o), 2, "{name}: {}", stdout(&o));
        assert!(String::from_utf8_lossy(&o.stderr).contains(name), "the error names the file");
    }
    assert_eq!(code(&run(&["check", "/nonexistent/experiments.json", "--dialect", "decider"])), 2);
    let empty = write(dir.path(), "empty.json", "{}");
    let o = run(&["check", empty.to_str().unwrap(), "--dialect", "decider", "--format", "json"]);
    assert_eq!(code(&o), 0);
    assert_eq!(serde_json::from_str::<Value>(&stdout(&o)).unwrap()["valid"], json!([]));
}

#[test]
fn decider_dialect_is_detected_without_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "decider.json", &decider_mistakes());
    let f = p.to_str().unwrap();
    // Fields only the decider dialect has: detected.
    let o = run(&["check", f, "--format", "json"]);
    let doc: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(doc["dialect"], "decider");
    let o = run(&["eval", f, "feed", "user_id=t2_1", "--format", "json"]);
    assert_eq!(serde_json::from_str::<Value>(&stdout(&o)).unwrap()["dialect"], "decider");
    // The flag wins over detection.
    let o = run(&["check", f, "--format", "json", "--dialect", "baseplate"]);
    let doc: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert!(doc.get("dialect").is_none() && doc.get("experiments").is_some(), "{doc}");
    // A baseplate document, and one that says neither, stay baseplate.
    let b = write(dir.path(), "valid.json", VALID);
    let o = run(&["check", b.to_str().unwrap(), "--format", "json", "--now", "1700000000"]);
    assert_eq!(serde_json::from_str::<Value>(&stdout(&o)).unwrap()["experiments"], 2);
    let neither = write(dir.path(), "neither.json", r#"{"a": {"id": 1}}"#);
    let o = run(&["check", neither.to_str().unwrap(), "--format", "json"]);
    assert!(serde_json::from_str::<Value>(&stdout(&o)).unwrap().get("experiments").is_some());
    let o = run(&["check", f, "--dialect", "klingon"]);
    assert_eq!(code(&o), 2);
}

/// Holdouts and groups whose ranges cover every bucket, so each outcome is certain.
fn decider_parents() -> String {
    let entries = [
        decider_entry("all_out", "all_out", "", &[("holdout", 0.0, 1.0)]),
        decider_entry("all_in", "all_in", "", &[("control_1", 0.0, 1.0)]),
        decider_entry("group", "group", "", &[("admitted", 0.0, 1.0)]),
        decider_entry("held", "held", r#""parent_hg_name": "all_out","#, &[("on", 0.0, 1.0)]),
        decider_entry(
            "admitted",
            "admitted",
            r#""parent_hg_name": "all_in", "parent_meg_name": "group","#,
            &[("on", 0.0, 1.0)],
        ),
        decider_entry(
            "shut_out",
            "shut_out",
            r#""parent_meg_name": "group","#,
            &[("on", 0.0, 1.0)],
        ),
        r#""page_size": {"id": 50, "name": "page_size", "enabled": true, "version": "1",
            "type": "dynamic_config", "value": 25, "experiment": {"experiment_version": 1}}"#
            .to_owned(),
    ];
    format!("{{{}}}", entries.join(",\n"))
}

#[test]
fn decider_eval_explains_holdouts_and_groups() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "parents.json", &decider_parents());
    let f = p.to_str().unwrap();
    let eval = |feature: &str, extra: &[&str]| {
        let mut args = vec!["eval", f, feature, "user_id=t2_1", "--explain", "--format", "json"];
        args.extend(extra);
        let o = run(&args);
        (code(&o), serde_json::from_str::<Value>(&stdout(&o)).unwrap())
    };
    let started = std::time::SystemTime::now();
    let (status, doc) = eval("admitted", &[]);
    let ended = std::time::SystemTime::now();
    assert_eq!(status, 0);
    assert_eq!(
        doc.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["dialect", "feature", "variant", "value", "events", "explanation"]
    );
    assert_eq!((&doc["dialect"], &doc["feature"]), (&json!("decider"), &json!("admitted")));
    assert_eq!(doc["variant"], "on");
    assert_eq!(doc["value"], Value::Null);
    let events = doc["events"].as_array().unwrap();
    let kinds: Vec<&str> = events.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["Holdout", "MutexGroup", "FracAvail"], "parents' events first");
    assert_eq!(events[0]["exposure_key"], "all_in:3:control_1:t2_1");
    assert_eq!(events[2]["legacy"], "0::::64::::admitted::::3::::on::::t2_1::::user_id::::0::::0");
    // The v2 event: stamped by the clock, a fresh v4 UUID each, one correlation id shared.
    let v2: Vec<Value> =
        events.iter().map(|e| serde_json::from_str(e["json"].as_str().unwrap()).unwrap()).collect();
    let ms = |t: std::time::SystemTime| {
        t.duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
    };
    let ts = v2[0]["5"]["i64"].as_i64().unwrap();
    assert!(ms(started) <= ts && ts <= ms(ended), "{ts}");
    let uuid = |v: &Value, f: &str| v[f]["str"].as_str().unwrap().to_owned();
    assert_ne!(uuid(&v2[0], "6"), uuid(&v2[1], "6"));
    assert_eq!(uuid(&v2[0], "6").as_bytes()[14], b'4', "a v4 UUID");
    assert_eq!(uuid(&v2[0], "8"), uuid(&v2[2], "8"));
    assert_eq!(v2[2]["129"]["rec"]["4"]["str"], "on");
    let steps: Vec<&str> = doc["explanation"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["step"]["step"].as_str().unwrap())
        .collect();
    assert_eq!(steps, ["bucket", "holdout", "bucket", "mutex_group", "bucket"]);
    let texts: Vec<&str> = doc["explanation"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["text"].as_str().unwrap())
        .collect();
    assert!(texts[1].contains("holdout all_in chose \"control_1\": continue"), "{texts:?}");
    assert!(texts[3].contains("mutually exclusive group group chose \"admitted\""), "{texts:?}");

    // Held out: no variant, the holdout's event kept.
    let (status, doc) = eval("held", &[]);
    assert_eq!(status, 0);
    assert_eq!(doc["variant"], Value::Null);
    assert_eq!(doc["events"][0]["kind"], "Holdout");
    let holdout = &doc["explanation"].as_array().unwrap()[1];
    assert_eq!(holdout["step"]["effect"], "excluded");
    assert!(holdout["text"].as_str().unwrap().contains("held out"), "{holdout}");
    // The group chose another feature: no variant, its event dropped.
    let (_, doc) = eval("shut_out", &[]);
    assert_eq!(doc["variant"], Value::Null);
    assert_eq!(doc["events"], json!([]));
    assert_eq!(doc["explanation"][1]["step"]["step"], "mutex_group");
    assert_eq!(doc["explanation"][1]["step"]["effect"], "excluded");

    // A dynamic config: its value, no events.
    let (_, doc) = eval("page_size", &[]);
    assert_eq!((&doc["variant"], &doc["value"]), (&Value::Null, &json!(25)));
    let o = run(&["eval", f, "page_size"]);
    assert_eq!(stdout(&o), "variant: none\nvalue: 25\nevent: none\n");

    // Text: the variant, each event, the path.
    let o = run(&["eval", f, "held", "user_id=t2_1", "--explain"]);
    let text = stdout(&o);
    assert!(text.starts_with("variant: none\nevent: Holdout all_out:3:holdout:t2_1\n"), "{text}");
    assert!(text.contains("  legacy: 2::::"), "{text}");
    assert!(text.contains("  v2: {\"1\":{\"str\":\"experiment\"}"), "{text}");
    assert!(text.contains("explain:\n  all_out: bucket "), "{text}");
    assert!(text.contains("held: holdout all_out chose \"holdout\": held out"), "{text}");

    // Where the reference raises: exit 1 with its exception class.
    for (args, exception) in [
        (vec!["eval", f, "missing", "user_id=t2_1"], "FeatureNotFoundException"),
        (vec!["eval", f, "admitted", "user_id=5"], "DeciderException"),
        (vec!["eval", f, "admitted", "logged_in=1"], "DeciderException"),
        (vec!["eval", f, "admitted", "device_id=d"], "DeciderException"),
    ] {
        let mut json_args = args.clone();
        json_args.extend(["--format", "json"]);
        let o = run(&json_args);
        assert_eq!(code(&o), 1, "{args:?}");
        let doc: Value = serde_json::from_str(&stdout(&o)).unwrap();
        assert_eq!(doc["exception"], exception, "{args:?}: {doc}");
        assert_eq!(doc["dialect"], "decider");
        let o = run(&args);
        assert_eq!(code(&o), 1);
        assert!(stdout(&o).contains(&format!("(reddit-decider raises {exception})")), "{args:?}");
    }
    assert!(
        stdout(&run(&["eval", f, "admitted", "user_id=5", "--format", "json"])).contains("user_id")
    );
    assert_eq!(code(&run(&["eval", f, "admitted", "novalue"])), 2);
}

#[test]
fn decider_simulate_applies_holdouts_and_groups() {
    let dir = tempfile::tempdir().unwrap();
    let entries = [
        decider_entry("hg", "hg", "", &[("holdout", 0.0, 0.2), ("control_1", 0.2, 0.3)]),
        decider_entry("meg", "meg", "", &[("feed", 0.0, 0.5), ("other", 0.5, 1.0)]),
        decider_entry(
            "feed",
            "feed",
            r#""parent_hg_name": "hg", "parent_meg_name": "meg","#,
            &[("control", 0.0, 0.25), ("treatment", 0.25, 0.75)],
        ),
        r#""picky": {"id": 77, "name": "picky", "enabled": true, "version": "1",
            "type": "range_variant", "experiment": {"experiment_version": 1,
            "bucket_val": "user_id", "targeting": {"EQ": {"field": "country_code", "value": "US"}},
            "variants": [{"name": "child", "range_start": 0.0, "range_end": 0.5}]}}"#
            .to_owned(),
        decider_entry(
            "child",
            "child",
            r#""parent_meg_name": "picky","#,
            &[("a", 0.0, 0.3), ("b", 0.3, 0.6)],
        ),
    ];
    let p = write(dir.path(), "sim.json", &format!("{{{}}}", entries.join(",\n")));
    let f = p.to_str().unwrap();
    let o = run(&["simulate", f, "feed", "--ids", "20000"]);
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    let text = stdout(&o);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "feed: 20000 ids (t2_0 .. t2_19999), bucketed on user_id");
    // 80 % pass the holdout, 50 % of those are the group's "feed".
    assert!(lines[1].contains("parents let 40.0000% of ids through"), "{text}");
    let row = |name: &str| lines.iter().find(|l| l.starts_with(name)).copied().unwrap();
    assert!(row("control ").ends_with(" 10.0000%"), "{text}");
    assert!(row("control ").contains("[0, 0.25)"), "{text}");
    assert!(row("treatment ").ends_with(" 20.0000%"), "{text}");
    assert!(row("no variant ").ends_with(" 70.0000%"), "{text}");
    // The name column is 24 wide; every id lands in exactly one row.
    let count =
        |name: &str| row(name)[24..].split_whitespace().next().unwrap().parse::<u64>().unwrap();
    assert_eq!(count("control ") + count("treatment ") + count("no variant "), 20000, "{text}");
    let p_line = row("chi-square");
    let pv: f64 = p_line.rsplit("p = ").next().unwrap().trim().parse().unwrap();
    assert!(pv > 0.001, "SHA-1 buckets are uniform: {text}");

    // A group with targeting: its effect depends on the context, so only the distribution
    // among ids that got a variant is compared.
    let o = run(&["simulate", f, "child", "--ids", "5000", "country_code=US"]);
    let text = stdout(&o);
    assert!(text.contains("comparing only the distribution among"), "{text}");
    let a = text.lines().find(|l| l.starts_with("a ")).unwrap();
    assert!(a.ends_with(" 50.0000%"), "{text}");
    let pv: f64 = text
        .lines()
        .find(|l| l.starts_with("chi-square"))
        .unwrap()
        .rsplit("p = ")
        .next()
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(pv > 0.001, "{text}");
    // Unknown features and dynamic configs cannot be simulated.
    assert_eq!(code(&run(&["simulate", f, "nope", "--ids", "10"])), 1);
    assert_eq!(code(&run(&["simulate", f, "feed", "--ids", "10", "logged_in=1"])), 2);
}

/// The configs of a decider vector file exactly as recorded (the reference read these number
/// literals), and the parsed file.
fn decider_vector(name: &str) -> (String, Vec<Option<String>>, Value) {
    use serde_json::value::RawValue;
    use std::collections::BTreeMap;
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/decider/vectors");
    let text = std::fs::read_to_string(dir.join(name)).unwrap();
    let raw: BTreeMap<String, Box<RawValue>> = serde_json::from_str(&text).unwrap();
    let cases: Vec<BTreeMap<String, Box<RawValue>>> =
        serde_json::from_str(raw["load_cases"].get()).unwrap();
    let cases = cases
        .iter()
        .map(|c| match (c.get("config_text"), c.get("config")) {
            (Some(t), _) => Some(serde_json::from_str::<String>(t.get()).unwrap()),
            (None, Some(c)) => Some(c.get().to_owned()),
            _ => None,
        })
        .collect();
    (raw["config"].get().to_owned(), cases, serde_json::from_str(&text).unwrap())
}

/// `check --format json --dialect decider` on `config`: the exit status and the invalid keys.
fn decider_check(dir: &Path, config: &str) -> (i32, Vec<String>, Value) {
    let p = write(dir, "config.json", config);
    let o = run(&["check", p.to_str().unwrap(), "--dialect", "decider", "--format", "json"]);
    let doc: Value = serde_json::from_str(&stdout(&o)).unwrap_or(Value::Null);
    let mut keys: Vec<String> = doc["invalid"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| e["key"].as_str().unwrap().to_owned())
        .collect();
    keys.sort();
    (code(&o), keys, doc)
}

#[test]
fn decider_check_agrees_with_the_vectors_load_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut loads, mut deviations) = (0, 0);
    let files: Vec<String> = (0..30)
        .map(|i| {
            let dir =
                PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/decider/vectors");
            std::fs::read_dir(dir)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .find(|n| n.starts_with(&format!("{i:02}_")))
                .unwrap()
        })
        .collect();
    for file in &files {
        let (config, cases, doc) = decider_vector(file);
        // Every file's own config; every load case of one broken and one edge file.
        let mut all = vec![(config, doc["load"].clone())];
        if file.starts_with("22_") || file.starts_with("27_") {
            for (c, case) in cases.into_iter().zip(doc["load_cases"].as_array().unwrap()) {
                all.push((c.unwrap(), case["load"].clone()));
            }
        }
        for (config, load) in all {
            let (status, keys, report) = decider_check(tmp.path(), &config);
            let what = format!("{file}: {config:.200} {load}");
            match load["status"].as_str().unwrap() {
                "ok" => assert_eq!((status, keys.len()), (0, 0), "{what}: {report}"),
                "partial" => {
                    let mut want: Vec<String> =
                        load["errors"].as_object().unwrap().keys().cloned().collect();
                    want.sort();
                    assert_eq!(keys, want, "{what}");
                    assert_eq!(status, 1, "{what}");
                }
                // The reference panics on an array dynamic-config value; the port rejects
                // only that entry (the allowed deviation).
                "init_error" if load["exception"] == "PanicException" => {
                    assert_eq!(status, 1, "{what}: {report}");
                    assert!(report["invalid"].to_string().contains("array"), "{what}: {report}");
                    deviations += 1;
                }
                "init_error" => assert_eq!(status, 2, "{what}: {report}"),
                other => panic!("{what}: unknown status {other}"),
            }
            loads += 1;
        }
    }
    assert!(loads >= 30 + 66 + 51, "{loads} loads");
    assert_eq!(deviations, 3);
}

#[test]
fn decider_eval_agrees_with_the_vectors_choose_calls() {
    let tmp = tempfile::tempdir().unwrap();
    let mut compared = 0;
    for file in [
        "00_basic.json",
        "04_targeting.json",
        "07_overrides.json",
        "09_holdout.json",
        "12_meg.json",
        "15_dynamic_config.json",
        "18_context.json",
        "20_identifiers.json",
        "22_broken.json",
        "25_mixed.json",
        "28_edge.json",
    ] {
        let (config, _, doc) = decider_vector(file);
        let path = write(tmp.path(), file, &config);
        let calls: Vec<&Value> =
            doc["core_calls"].as_array().unwrap().iter().filter(|c| c["op"] == "choose").collect();
        for call in calls.iter().step_by(calls.len() / 12 + 1) {
            let feature = call["feature"].as_str().unwrap();
            if feature.starts_with('-') {
                continue;
            }
            let mut args =
                vec!["eval".to_owned(), path.to_string_lossy().into_owned(), feature.to_owned()];
            let context = call["context"].as_object().unwrap();
            args.extend(context.iter().map(|(k, v)| format!("{k}={v}")));
            args.extend(["--format".to_owned(), "json".to_owned()]);
            let started = std::time::SystemTime::now();
            let o = bin().args(&args).output().unwrap();
            let ended = std::time::SystemTime::now();
            let got: Value = serde_json::from_str(&stdout(&o)).unwrap();
            let expect = &call["expect"];
            let what = format!("{file} {args:?}");
            if let Some(error) = expect.get("error") {
                assert_eq!(code(&o), 1, "{what}: {got}");
                assert_eq!(got["exception"], error["type"], "{what}: {got}");
                compared += 1;
                continue;
            }
            assert_eq!(code(&o), 0, "{what}: {got}");
            let decision = &expect["decision"];
            assert_eq!(got["variant"], decision["variant"], "{what}");
            assert_eq!(got["value"], decision["value"], "{what}");
            let legacy: Vec<&Value> =
                got["events"].as_array().unwrap().iter().map(|e| &e["legacy"]).collect();
            assert_eq!(
                legacy,
                decision["events"].as_array().unwrap().iter().collect::<Vec<_>>(),
                "{what}"
            );
            // Each v2 event byte for byte, the placeholders filled with what this run used.
            for (e, want) in got["events"]
                .as_array()
                .unwrap()
                .iter()
                .zip(decision["full_events"].as_array().unwrap())
            {
                assert_eq!(e["kind"], want["decision_kind"], "{what}");
                assert_eq!(e["exposure_key"], want["exposure_key"], "{what}");
                let json = e["json"].as_str().unwrap();
                let v2: Value = serde_json::from_str(json).unwrap();
                let ts = v2["5"]["i64"].as_i64().unwrap();
                let ms = |t: std::time::SystemTime| {
                    t.duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
                };
                assert!(ms(started) <= ts && ts <= ms(ended), "{what}: {ts}");
                let filled = want["json"]
                    .as_str()
                    .unwrap()
                    .replace("<CLIENT_TS_MS>", &ts.to_string())
                    .replace("<UUID>", v2["6"]["str"].as_str().unwrap())
                    .replace("<CORRELATION_ID>", v2["8"]["str"].as_str().unwrap());
                assert_eq!(json, filled, "{what}");
            }
            compared += 1;
        }
    }
    assert!(compared >= 100, "compared {compared} calls");
}
