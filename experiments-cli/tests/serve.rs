//! `experiments serve` as a process: the listening line, evaluations over HTTP, SIGTERM
//! with every event delivered and the accounting line, and the exit status of a settings
//! document or an address it cannot use.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

fn serve(settings: &Path, listen: &str) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_experiments"));
    c.args(["serve", "--settings"]).arg(settings).args(["--listen", listen]);
    c.env("RUST_LOG", "warn").env("NO_COLOR", "1");
    c
}

/// Starts the server and reads its address from the `listening on` line.
fn start(settings: &Path) -> (Child, String) {
    start_command(serve(settings, "127.0.0.1:0"))
}

/// Starts `command` (an [`serve`] command) and reads the address it listens on.
fn start_command(mut command: Command) -> (Child, String) {
    let mut child = command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap()).read_line(&mut line).unwrap();
    let addr = line
        .trim()
        .strip_prefix("experiments serve: listening on http://")
        .unwrap_or_else(|| panic!("not the listening line: {line:?}"))
        .to_owned();
    (child, addr)
}

/// One HTTP/1.1 POST, the connection closed after it: (status, JSON body).
fn post(addr: &str, path: &str, body: &str) -> (u16, Value) {
    post_with(addr, path, "", body)
}

/// [`post`] with extra header lines (each ending in `\r\n`).
fn post_with(addr: &str, path: &str, headers: &str, body: &str) -> (u16, Value) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n{headers}\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    s.read_to_string(&mut response).unwrap();
    let status = response[9..12].parse().unwrap();
    let body = response.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

fn example_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/example-experiments.json"),
        dir.path().join("experiments.json"),
    )
    .unwrap();
    dir
}

fn sigterm(child: &Child) {
    let ok = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(ok.success());
}

/// Variants over OFREP, then SIGTERM: the accounting line counts every request and every
/// event, all delivered to the collector the settings name; exit 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_answers_then_stops_with_every_event_delivered() {
    let collector = experiments_http::collector::Collector::start("k", b"secret").await.unwrap();
    let dir = example_dir();
    let settings = dir.path().join("serve.json");
    let document = r#"{"config": {"path": "experiments.json"},
 "sink": {"http": {"url": "URL", "key_name": "k", "secret": "c2VjcmV0", "format": "v2"}},
 "serve": {"shutdown_timeout": "5s"}}"#;
    std::fs::write(&settings, document.replace("URL", &collector.url())).unwrap();
    let (mut child, addr) = start(&settings);
    let outcome = tokio::task::spawn_blocking(move || {
        let mut variants = 0;
        for i in 0..200 {
            let body = format!(r#"{{"context": {{"targetingKey": "t2_{i}", "logged_in": true}}}}"#);
            let (status, answer) = post(&addr, "/ofrep/v1/evaluate/flags/legacy_search", &body);
            assert_eq!(status, 200, "{answer}");
            if answer["variant"].is_string() {
                assert_eq!(answer["value"], answer["variant"]);
                variants += 1;
            } else {
                assert!(answer.get("value").is_none(), "{answer}");
            }
        }
        let (status, answer) = post(&addr, "/ofrep/v1/evaluate/flags/nope", "{}");
        assert_eq!((status, answer["errorCode"].as_str()), (404, Some("FLAG_NOT_FOUND")));
        sigterm(&child);
        let status = child.wait().unwrap();
        let mut stderr = String::new();
        child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
        (variants, status, stderr)
    })
    .await
    .unwrap();
    let (variants, status, stderr) = outcome;
    assert!(variants > 20, "legacy_search gives most logged-in users a variant: {variants}");
    let last = stderr.lines().last().unwrap_or_default();
    assert_eq!(
        last,
        format!(
            "requests=201 events={variants} delivered={variants} dropped=0 remaining=0 \
             drained=true"
        ),
        "{stderr}"
    );
    assert!(status.success(), "{status:?}: {stderr}");
    assert_eq!(collector.distinct(), variants);
    assert_eq!(collector.bad_signatures(), 0);
}

/// Credentials named by `{"env"}` and `{"file"}` (relative to the settings file) are read at
/// start and accepted; anything else is refused; an unset variable keeps it from starting.
#[test]
fn serve_takes_credentials_from_the_environment_and_files() {
    let dir = example_dir();
    let settings = dir.path().join("serve.json");
    std::fs::write(dir.path().join("token.txt"), "t-from-file\n").unwrap();
    std::fs::write(
        &settings,
        r#"{"config": {"path": "experiments.json"}, "sink": "none",
            "serve": {"auth": {"api_keys": [{"env": "EXPERIMENTS_TEST_KEY"}],
                               "bearer_tokens": [{"file": "token.txt"}]}}}"#,
    )
    .unwrap();
    let mut command = serve(&settings, "127.0.0.1:0");
    command.env("EXPERIMENTS_TEST_KEY", "k-from-env");
    let (mut child, addr) = start_command(command);
    let path = "/ofrep/v1/evaluate/flags/legacy_search";
    let body = r#"{"context": {"targetingKey": "t2_1"}}"#;
    for (headers, expected) in [
        ("X-API-Key: k-from-env\r\n", 200),
        ("Authorization: Bearer t-from-file\r\n", 200),
        ("", 401),
        ("X-API-Key: EXPERIMENTS_TEST_KEY\r\n", 401),
        ("Authorization: Bearer token.txt\r\n", 401),
    ] {
        let (status, answer) = post_with(&addr, path, headers, body);
        assert_eq!(status, expected, "{headers:?}: {answer}");
    }
    sigterm(&child);
    assert!(child.wait().unwrap().success());

    let o = serve(&settings, "127.0.0.1:0").env_remove("EXPERIMENTS_TEST_KEY").output().unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("serve.auth.api_keys: entry 0: environment variable"), "{stderr}");
}

/// A settings document it cannot use, or an address in use: exit 2, saying why.
#[test]
fn serve_refuses_what_it_cannot_run_with() {
    let dir = example_dir();
    let settings = dir.path().join("serve.json");
    std::fs::write(
        &settings,
        r#"{"config": {"path": "experiments.json"}, "sink": "none", "serve": {"max_body_bytes": 0}}"#,
    )
    .unwrap();
    let o = serve(&settings, "127.0.0.1:0").output().unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("serve.max_body_bytes"), "{stderr}");

    std::fs::write(&settings, r#"{"config": {"path": "experiments.json"}, "sink": "none"}"#)
        .unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let o = serve(&settings, &addr).output().unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(&format!("cannot listen on {addr}")), "{stderr}");

    std::fs::write(
        &settings,
        r#"{"config": {"path": "missing.json", "timeout": "200ms"}, "sink": "none"}"#,
    )
    .unwrap();
    let o = serve(&settings, "127.0.0.1:0").output().unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("missing.json"), "{stderr}");
}
