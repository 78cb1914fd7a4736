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
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    let stderr = String::from_utf8_lossy(&o.stderr);
    let accounting = stderr.lines().find(|l| l.starts_with("requests=")).unwrap();
    let delivered: usize =
        accounting.split("delivered=").nth(1).unwrap().split(' ').next().unwrap().parse().unwrap();
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
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    let stderr = String::from_utf8_lossy(&o.stderr);
    let accounting = stderr.lines().find(|l| l.starts_with("requests=")).unwrap();
    let delivered: usize =
        accounting.split("delivered=").nth(1).unwrap().split(' ').next().unwrap().parse().unwrap();
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
