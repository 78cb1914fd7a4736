//! Hot reload through the sidecar: the config is polled over HTTP from a test server whose
//! document the test changes; evaluations, `/readyz` and `/metrics` follow it, and a broken
//! document keeps the last good config served (stale, with the error shown).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use experiments_sdk::{ExperimentsClient, Settings};
use experiments_serve::{ServeSettings, Server};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// Every wait: generous, so a loaded machine does not fail the test.
const PATIENCE: Duration = Duration::from_secs(10);

/// The document the config server answers with (status, body), and how often it was asked.
#[derive(Clone, Default)]
struct Document {
    answer: Arc<Mutex<(u16, String)>>,
    requests: Arc<AtomicU64>,
}

impl Document {
    fn set(&self, status: u16, body: impl Into<String>) {
        *self.answer.lock().unwrap() = (status, body.into());
    }
}

/// A config server on a loopback port serving `doc` at `/experiments.json`.
async fn config_server(doc: Document) -> SocketAddr {
    let app = axum::Router::new()
        .route(
            "/experiments.json",
            get(|State(doc): State<Document>| async move {
                doc.requests.fetch_add(1, Ordering::Relaxed);
                let (status, body) = doc.answer.lock().unwrap().clone();
                (StatusCode::from_u16(status).unwrap(), body)
            }),
        )
        .with_state(doc);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

fn baseplate(variant: &str, extra: Option<&str>) -> String {
    let experiment = |id: u64, name: &str, variant: &str| {
        json!({"id": id, "name": name, "owner": "growth", "type": "feature_rollout",
               "version": "1", "start_ts": 0, "stop_ts": 4102444800_u64,
               "experiment": {"experiment_version": 1,
                              "variants": [{"name": variant, "size": 1.0}]}})
    };
    let mut doc = json!({"rollout": experiment(1, "rollout", variant)});
    if let Some(name) = extra {
        doc[name] = experiment(2, name, "on");
    }
    doc.to_string()
}

const DECIDER: &str = r#"{
 "page_size": {"id": 30, "name": "page_size", "enabled": true, "version": "1", "owner": "feeds",
   "type": "dynamic_config", "experiment": {"experiment_version": 3}, "value": 40}
}"#;

struct Sidecar {
    base: String,
    http: reqwest::Client,
}

impl Sidecar {
    async fn get(&self, path: &str) -> (u16, String) {
        let r = self.http.get(format!("{}{path}", self.base)).send().await.unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }

    async fn readyz(&self) -> (u16, Value) {
        let (status, text) = self.get("/readyz").await;
        (status, serde_json::from_str(&text).unwrap())
    }

    async fn flag(&self, key: &str) -> (u16, Value) {
        let r = self
            .http
            .post(format!("{}/ofrep/v1/evaluate/flags/{key}", self.base))
            .body(r#"{"context": {"targetingKey": "t2_1"}}"#)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap())
    }

    async fn bulk(&self, if_none_match: Option<&str>) -> (u16, Option<String>) {
        let mut r = self
            .http
            .post(format!("{}/ofrep/v1/evaluate/flags", self.base))
            .body(r#"{"context": {"targetingKey": "t2_1"}}"#);
        if let Some(tag) = if_none_match {
            r = r.header("if-none-match", tag);
        }
        let r = r.send().await.unwrap();
        let tag = r.headers().get("etag").map(|t| t.to_str().unwrap().to_owned());
        (r.status().as_u16(), tag)
    }

    /// Polls `/readyz` until `done` says so; the last answer. Panics after [`PATIENCE`].
    async fn wait_readyz(&self, what: &str, done: impl Fn(u16, &Value) -> bool) -> Value {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let (status, body) = self.readyz().await;
            if done(status, &body) {
                return body;
            }
            assert!(Instant::now() < deadline, "{what}: still {status} {body}");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

/// The value of the one sample of `/metrics` text named `name` (with exactly `labels`
/// written as in the text, `""` for none).
fn sample<'t>(text: &'t str, name: &str, labels: &str) -> Option<&'t str> {
    let prefix = format!("{name}{labels} ");
    text.lines().find_map(|l| l.strip_prefix(prefix.as_str()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_changes_over_http_are_served_and_broken_documents_keep_the_last_good_one() {
    let doc = Document::default();
    doc.set(200, baseplate("on", None));
    let config = config_server(doc.clone()).await;
    let url = format!("http://{config}/experiments.json");
    let settings = Settings::from_value(json!({
        "config": {"url": url, "poll_interval": "200ms", "max_backoff": "400ms",
                   "request_timeout": "5s"},
        "sink": "none"
    }))
    .unwrap();
    let client = ExperimentsClient::from_settings(settings).await.unwrap();

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let server = Server::new(client, ServeSettings::from_value(json!({})).unwrap()).unwrap();
    let task = tokio::spawn(server.run(listener, async move {
        let _ = stopped.await;
    }));
    let sidecar = Sidecar {
        base: format!("http://{addr}"),
        http: reqwest::Client::builder().no_proxy().timeout(PATIENCE).build().unwrap(),
    };

    // Version 1.
    let (status, ready) = sidecar.readyz().await;
    assert_eq!(status, 200, "{ready}");
    assert_eq!((&ready["status"], &ready["config_version"]), (&json!("ready"), &json!(1)));
    assert!(ready["source"].as_str().is_some_and(|s| s.contains(&config.to_string())), "{ready}");
    let (status, body) = sidecar.flag("rollout").await;
    assert_eq!((status, &body["value"]), (200, &json!("on")), "{body}");
    assert_eq!(body["metadata"]["config_version"], 1);
    assert_eq!(sidecar.flag("fresh").await.0, 404);
    let (status, tag_v1) = sidecar.bulk(None).await;
    let tag_v1 = tag_v1.expect("an ETag");
    assert_eq!(status, 200);
    assert_eq!(sidecar.bulk(Some(&tag_v1)).await.0, 304);

    // Polls that find the same document change nothing.
    let asked = doc.requests.load(Ordering::Relaxed);
    let deadline = Instant::now() + PATIENCE;
    while doc.requests.load(Ordering::Relaxed) < asked + 2 {
        assert!(Instant::now() < deadline, "the source stopped polling");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(sidecar.readyz().await.1["config_version"], 1);

    // Version 2: a changed variant and a new flag, served within a few poll intervals.
    doc.set(200, baseplate("enabled", Some("fresh")));
    let changed = Instant::now();
    loop {
        let (_, body) = sidecar.flag("rollout").await;
        if body["value"] == "enabled" {
            assert_eq!(body["metadata"]["config_version"], 2, "{body}");
            break;
        }
        assert_eq!(body["value"], "on", "the old answer until the new one: {body}");
        assert!(changed.elapsed() < PATIENCE, "the change was never served");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let ready = sidecar.readyz().await.1;
    assert_eq!((&ready["status"], &ready["config_version"]), (&json!("ready"), &json!(2)));
    let (status, body) = sidecar.flag("fresh").await;
    assert_eq!((status, &body["value"]), (200, &json!("on")), "{body}");
    // The old tag names the old config: evaluated again, another tag.
    let (status, tag_v2) = sidecar.bulk(Some(&tag_v1)).await;
    assert_eq!(status, 200);
    assert_ne!(tag_v2.as_deref(), Some(tag_v1.as_str()));

    // A broken document: the last good config stays served, marked stale with the error.
    doc.set(200, "this is { not json");
    let stale =
        sidecar.wait_readyz("stale after a broken document", |_, b| b["status"] == "stale").await;
    let (status, _) = sidecar.readyz().await;
    assert_eq!(status, 200, "a stale config is still served");
    assert_eq!(stale["config_version"], 2, "{stale}");
    let error = stale["last_error"].as_str().expect("the last error");
    assert!(!error.is_empty(), "{stale}");
    for _ in 0..3 {
        let (status, body) = sidecar.flag("rollout").await;
        assert_eq!((status, &body["value"]), (200, &json!("enabled")), "{body}");
        assert_eq!(body["metadata"]["config_version"], 2);
    }
    let (status, text) = sidecar.get("/metrics").await;
    assert_eq!(status, 200);
    assert_eq!(sample(&text, "experiments_config_version", ""), Some("2"), "{text}");
    assert_eq!(sample(&text, "experiments_config_health", r#"{health="stale"}"#), Some("1"));
    assert_eq!(sample(&text, "experiments_config_health", r#"{health="ready"}"#), Some("0"));
    let last_error = text
        .lines()
        .find(|l| l.starts_with("experiments_config_last_error{error=\""))
        .unwrap_or_else(|| panic!("no last error in\n{text}"));
    assert!(last_error.ends_with("\"} 1") && last_error.len() > 40, "{last_error}");
    let failures = sample(&text, "experiments_config_consecutive_failures", "").unwrap();
    assert!(failures.parse::<u64>().unwrap() >= 1, "{failures}");

    // An HTTP error is a failure too; the config stays.
    doc.set(500, "oops");
    let checks = |t: &str| -> u64 {
        sample(t, "experiments_config_checks_total", "").unwrap().parse().unwrap()
    };
    let before = checks(&text);
    let deadline = Instant::now() + PATIENCE;
    while checks(&sidecar.get("/metrics").await.1) < before + 2 {
        assert!(Instant::now() < deadline, "no more checks");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let ready = sidecar.readyz().await.1;
    assert_eq!(
        (&ready["status"], &ready["config_version"]),
        (&json!("stale"), &json!(2)),
        "{ready}"
    );
    assert_eq!(sidecar.flag("rollout").await.1["value"], "enabled");

    // Recovery, in the other dialect: ready again, version 3, values typed.
    doc.set(200, DECIDER);
    let ready = sidecar
        .wait_readyz("ready after recovery", |s, b| s == 200 && b["status"] == "ready")
        .await;
    assert_eq!(
        (&ready["config_version"], &ready["dialect"]),
        (&json!(3), &json!("decider")),
        "{ready}"
    );
    let (status, body) = sidecar.flag("page_size").await;
    assert_eq!(
        (status, &body["value"], &body["reason"]),
        (200, &json!(40), &json!("STATIC")),
        "{body}"
    );
    assert_eq!(sidecar.flag("rollout").await.0, 404, "the new config has no `rollout`");
    let text = sidecar.get("/metrics").await.1;
    assert_eq!(sample(&text, "experiments_config_version", ""), Some("3"));
    assert_eq!(sample(&text, "experiments_config_health", r#"{health="ready"}"#), Some("1"));

    let _ = stop.send(());
    let report = tokio::time::timeout(PATIENCE, task).await.unwrap().unwrap().unwrap();
    assert!(report.drained);
}
