//! The sidecar over real HTTP: an in-process [`Server`] on a loopback port, called with
//! reqwest (and raw TCP where a client must misbehave: slow bodies, partial headers).
//!
//! Protocol (OFREP single and bulk evaluation, errors, hostile bodies), per-request scopes
//! and their events, authentication, limits, operations endpoints and graceful shutdown.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use experiments_sdk::events::{
    Batch, Encoding, EventSink, ExportOutcome, PipelineSettings, SinkProfile, async_trait,
};
use experiments_sdk::watch::{
    ConfigSource, ConfigStore, Dialect, FileSource, Origin, SourceError, SourceGuard, WatchSettings,
};
use experiments_sdk::{Config, DeciderContext, ExperimentsClient, Inputs, SinkSettings, Startup};
use experiments_serve::{ServeError, ServeReport, ServeSettings, Server};
use prom_text_format_parser::Type;
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

#[path = "support/prometheus.rs"]
mod prometheus;

const EXAMPLE_EXPERIMENTS: &str =
    include_str!("../../experiments-cli/src/example-experiments.json");
const EXAMPLE_DECIDER: &str = include_str!("../../experiments-cli/src/example-decider.json");

/// Every wait in these tests: generous, so a loaded machine does not fail them.
const PATIENCE: Duration = Duration::from_secs(10);

/// The reasons OFREP defines.
const REASONS: [&str; 8] =
    ["STATIC", "TARGETING_MATCH", "SPLIT", "DISABLED", "DEFAULT", "UNKNOWN", "ERROR", "CACHED"];

// ---------------------------------------------------------------------------------------
// Configs
// ---------------------------------------------------------------------------------------

/// The CLI's example baseplate config (with its invalid `broken_example`) and one disabled
/// experiment, `paused`.
fn baseplate_doc() -> String {
    let mut doc: Value = serde_json::from_str(EXAMPLE_EXPERIMENTS).unwrap();
    doc.as_object_mut().unwrap().insert(
        "paused".into(),
        json!({"id": 106, "name": "paused", "owner": "growth", "type": "feature_rollout",
               "version": "1", "start_ts": 0, "stop_ts": 4102444800_u64, "enabled": false,
               "experiment": {"experiment_version": 1,
                              "variants": [{"name": "on", "size": 1.0}]}}),
    );
    doc.to_string()
}

/// The CLI's example decider config (range features, `feed_page_size`) and dynamic configs
/// of every type, a disabled one and a broken one.
fn decider_doc() -> String {
    let mut doc: Value = serde_json::from_str(EXAMPLE_DECIDER).unwrap();
    let extra = json!({
        "ratio": {"id": 31, "name": "ratio", "enabled": true, "version": "1", "owner": "feeds",
          "type": "dynamic_config", "experiment": {"experiment_version": 1}, "value": 0.25},
        "scale": {"id": 32, "name": "scale", "enabled": true, "version": "1",
          "type": "dynamic_config", "experiment": {"experiment_version": 1}, "value": 2.0},
        "greeting": {"id": 33, "name": "greeting", "enabled": true, "version": "1",
          "type": "dynamic_config", "experiment": {"experiment_version": 1}, "value": "hello"},
        "beta": {"id": 34, "name": "beta", "enabled": true, "version": "1",
          "type": "dynamic_config", "experiment": {"experiment_version": 1}, "value": true},
        "layout": {"id": 35, "name": "layout", "enabled": true, "version": "1",
          "type": "dynamic_config", "experiment": {"experiment_version": 1},
          "value": {"columns": 3, "name": "grid", "tags": ["a", 1], "nothing": null,
                    "inner": {"x": 1.5}}},
        "off_config": {"id": 36, "name": "off_config", "enabled": false, "version": "1",
          "type": "dynamic_config", "experiment": {"experiment_version": 1}, "value": 1},
        "broken": {"id": "not a number", "name": "broken", "enabled": true, "version": "1",
          "type": "dynamic_config", "experiment": {"experiment_version": 1}, "value": 1}
    });
    for (k, v) in extra.as_object().unwrap() {
        doc.as_object_mut().unwrap().insert(k.clone(), v.clone());
    }
    doc.to_string()
}

/// A source offering one document (its dialect detected or set by the client).
struct Document(String);

impl ConfigSource for Document {
    fn describe(&self) -> String {
        "test-document".into()
    }

    fn start(self: Box<Self>, store: ConfigStore) -> Result<SourceGuard, SourceError> {
        if let Err(e) = store.offer_bytes(self.0.as_bytes(), Origin::Other("test".into())) {
            store.record_failure(e);
        }
        Ok(SourceGuard::new(()))
    }
}

// ---------------------------------------------------------------------------------------
// Events
// ---------------------------------------------------------------------------------------

/// A sink counting (and keeping, as JSON) every event it is given.
#[derive(Default)]
struct Counting {
    events: Mutex<Vec<Value>>,
}

impl Counting {
    fn new() -> Arc<Self> {
        Arc::new(Counting::default())
    }

    fn take(&self) -> Vec<Value> {
        std::mem::take(&mut *self.events.lock().unwrap())
    }
}

#[async_trait]
impl EventSink for Counting {
    fn profile(&self) -> SinkProfile {
        SinkProfile::new(Encoding::Json)
    }

    async fn export(&self, batch: &Batch) -> ExportOutcome {
        let mut out = self.events.lock().unwrap();
        for e in &batch.events {
            out.push(serde_json::from_slice(&e.payload).unwrap());
        }
        ExportOutcome::Delivered
    }
}

fn fast_events() -> PipelineSettings {
    let mut ps = PipelineSettings::default();
    ps.max_batch_age = Duration::from_millis(10);
    ps
}

/// Waits until every event logged so far reached the sink.
async fn flush(client: &ExperimentsClient) {
    let report = client.pipeline().expect("a pipeline").flush(PATIENCE).await;
    assert_eq!(report.remaining, 0, "{report:?}");
}

// ---------------------------------------------------------------------------------------
// Clients and servers
// ---------------------------------------------------------------------------------------

async fn baseplate_client(sink: Option<Arc<Counting>>) -> ExperimentsClient {
    let builder = ExperimentsClient::builder().config(Config::parse(&baseplate_doc()).unwrap());
    match sink {
        Some(sink) => builder.events(fast_events()).sink(sink),
        None => builder.sink_settings(SinkSettings::None),
    }
    .build()
    .await
    .unwrap()
}

async fn decider_client() -> ExperimentsClient {
    ExperimentsClient::builder()
        .config_source(Document(decider_doc()))
        .dialect(Some(Dialect::Decider))
        .sink_settings(SinkSettings::None)
        .build()
        .await
        .unwrap()
}

/// A server running in a task on a loopback port.
struct Running {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<ServeReport, ServeError>>,
    http: reqwest::Client,
}

async fn serve(client: ExperimentsClient, settings: Value) -> Running {
    let settings = ServeSettings::from_value(settings).unwrap();
    let server = Server::new(client, settings).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(server.run(listener, async move {
        let _ = stopped.await;
    }));
    let http = reqwest::Client::builder().no_proxy().timeout(PATIENCE).build().unwrap();
    Running { addr, stop: Some(stop), task, http }
}

/// An HTTP answer, read whole.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Vec<u8>,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!("{} not JSON ({e}): {:?}", self.status, String::from_utf8_lossy(&self.body))
        })
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn assert_json_content_type(&self) {
        assert_eq!(self.header("content-type"), Some("application/json"), "{self:?}");
    }
}

impl Running {
    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Answer {
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.bytes().await.unwrap().to_vec();
        Answer { status, headers, body }
    }

    async fn get(&self, path: &str) -> Answer {
        self.send(self.http.get(self.url(path))).await
    }

    async fn post(&self, path: &str, body: impl Into<reqwest::Body>) -> Answer {
        self.send(
            self.http.post(self.url(path)).header("content-type", "application/json").body(body),
        )
        .await
    }

    /// `POST /ofrep/v1/evaluate/flags/{key}` with `body`.
    async fn flag(&self, key: &str, body: Value) -> Answer {
        self.post(&format!("/ofrep/v1/evaluate/flags/{key}"), body.to_string()).await
    }

    /// A single evaluation for the targeting key `user`.
    async fn flag_for(&self, key: &str, user: &str) -> Answer {
        self.flag(key, json!({"context": {"targetingKey": user}})).await
    }

    /// Stops accepting, drains and flushes; the report.
    async fn shutdown(mut self) -> ServeReport {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(PATIENCE, self.task).await.unwrap().unwrap().unwrap()
    }
}

// ---------------------------------------------------------------------------------------
// Raw HTTP/1.1, for clients that misbehave
// ---------------------------------------------------------------------------------------

/// A request head for `path` with a body of `len` bytes, closing the connection after.
fn head(path: &str, len: usize) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n\
         Content-Length: {len}\r\nConnection: close\r\n\r\n"
    )
}

#[derive(Debug)]
struct RawResponse {
    status: u16,
    headers: BTreeMap<String, String>,
    body: Vec<u8>,
}

impl RawResponse {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!("{} not JSON ({e}): {:?}", self.status, String::from_utf8_lossy(&self.body))
        })
    }
}

/// Reads one response (head, then `Content-Length` bytes of body) from `stream`.
async fn read_response<R: AsyncRead + Unpin>(stream: &mut R) -> RawResponse {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(
            n > 0,
            "connection closed before a response head: {:?}",
            String::from_utf8_lossy(&buf)
        );
        buf.extend_from_slice(&chunk[..n]);
    };
    let text = String::from_utf8(buf[..head_end].to_vec()).unwrap();
    let mut lines = text.split("\r\n");
    let status: u16 = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
    let headers: BTreeMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let len: usize = headers.get("content-length").map_or(0, |l| l.parse().unwrap());
    while buf.len() < head_end + len {
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(n > 0, "connection closed in the body");
        buf.extend_from_slice(&chunk[..n]);
    }
    RawResponse { status, headers, body: buf[head_end..head_end + len].to_vec() }
}

/// Posts `body` to `path` while reading the answer at the same time, so that an answer
/// sent before the whole body is read (a `413`) is seen even if the server then stops
/// reading.
async fn post_while_reading(addr: SocketAddr, path: &str, body: Vec<u8>) -> RawResponse {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut read, mut write) = stream.into_split();
    let head = head(path, body.len());
    let writer = tokio::spawn(async move {
        // The server may close before the body is all sent: that is its right.
        if write.write_all(head.as_bytes()).await.is_ok() {
            let _ = write.write_all(&body).await;
        }
        write
    });
    let response = tokio::time::timeout(PATIENCE, read_response(&mut read)).await.unwrap();
    writer.abort();
    response
}

/// Reads until the peer closes the connection (or resets it); what was read.
async fn read_to_close(stream: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return out,
            Ok(n) => out.extend_from_slice(&chunk[..n]),
        }
    }
}

/// A user the baseplate config buckets into `experiment`, and the variant, decided without
/// logging anything.
async fn bucketed_user(experiment: &str) -> (String, String) {
    let client = baseplate_client(None).await;
    let request = client.request();
    (0..1000)
        .map(|i| format!("t2_{i}"))
        .find_map(|id| {
            let inputs = Inputs::new().with("user_id", id.as_str());
            let v = request.variant_with_bucketing_event(experiment, &inputs, false).unwrap();
            v.map(|v| (id.clone(), v.to_owned()))
        })
        .unwrap()
}

// ---------------------------------------------------------------------------------------
// 1. Single evaluation
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_evaluations_answer_in_the_protocols_shape() {
    let client = baseplate_client(None).await;
    let direct = client.clone();
    let server = serve(client, json!({})).await;

    let mut with_variant = 0;
    let mut without = 0;
    for i in 0..60 {
        let id = format!("t2_{i}");
        let inputs = Inputs::new().with("user_id", id.as_str());
        let expected =
            direct.request().variant("feed_ranking", &inputs).unwrap().map(str::to_owned);
        let a = server.flag_for("feed_ranking", &id).await;
        assert_eq!(a.status, 200, "{}", a.text());
        a.assert_json_content_type();
        let body = a.json();
        let reason = body["reason"].as_str().unwrap();
        assert!(REASONS.contains(&reason), "{body}");
        assert_eq!(body["key"], "feed_ranking");
        assert_eq!(
            body["metadata"],
            json!({"id": 102, "version": 7, "owner": "feeds", "config_version": 1}),
            "{body}"
        );
        let members: BTreeSet<&str> =
            body.as_object().unwrap().keys().map(String::as_str).collect();
        match expected {
            Some(v) => {
                with_variant += 1;
                assert_eq!(body["value"], v.as_str(), "{id}: {body}");
                assert_eq!(body["variant"], v.as_str(), "{id}: {body}");
                assert_eq!(reason, "SPLIT");
                assert_eq!(
                    members,
                    BTreeSet::from(["key", "value", "reason", "variant", "metadata"])
                );
            }
            None => {
                without += 1;
                assert!(body.get("value").is_none(), "no variant, no value: {body}");
                assert_eq!(body["variant"], Value::Null, "{body}");
                assert_eq!(reason, "DEFAULT", "{body}");
                assert_eq!(members, BTreeSet::from(["key", "reason", "variant", "metadata"]));
            }
        }
    }
    assert!(with_variant > 0 && without > 0, "{with_variant} / {without}");

    // With targeting inputs: the same answer as direct evaluation with the same inputs.
    for i in 0..20 {
        let id = format!("t2_{i}");
        let inputs = Inputs::new()
            .with("account_age_days", 30)
            .with("app_name", "ios")
            .with("is_employee", false)
            .with("user_id", id.as_str());
        let request = direct.request();
        let expected = request.variant("checkout_redesign", &inputs).unwrap();
        let a = server
            .flag(
                "checkout_redesign",
                json!({"context": {"targetingKey": id, "app_name": "ios", "is_employee": false,
                                    "account_age_days": 30}}),
            )
            .await;
        assert_eq!(a.status, 200, "{}", a.text());
        assert_eq!(a.json()["variant"].as_str(), expected, "{id}");
    }

    // An override: TARGETING_MATCH.
    let body = server.flag_for("checkout_redesign", "t2_qa1").await.json();
    assert_eq!((&body["value"], &body["reason"]), (&json!("one_page"), &json!("TARGETING_MATCH")));
    assert_eq!(body["metadata"]["owner"], "payments");
    // Not targeted (r2 `logged_in`): DEFAULT, no value; an r2 version is a string.
    let a = server.flag_for("legacy_search", "t2_1").await;
    let body = a.json();
    assert_eq!(a.status, 200);
    assert_eq!(
        (body.get("value"), &body["variant"], &body["reason"]),
        (None, &Value::Null, &json!("DEFAULT"))
    );
    assert_eq!(body["metadata"]["version"], "12");
    // Disabled: DISABLED, no value, the metadata still names it.
    let a = server.flag_for("paused", "t2_1").await;
    let body = a.json();
    assert_eq!(a.status, 200);
    assert_eq!(
        (body.get("value"), &body["variant"], &body["reason"]),
        (None, &Value::Null, &json!("DISABLED"))
    );
    assert_eq!(body["metadata"]["id"], 106);
    // A targeting key but the experiment buckets on another, missing field: no variant.
    let body = server.flag_for("dark_mode", "t2_1").await.json();
    assert_eq!((&body["variant"], &body["reason"]), (&Value::Null, &json!("DEFAULT")), "{body}");
    let body = server
        .flag("dark_mode", json!({"context": {"targetingKey": "t2_1", "device_id": "d-9"}}))
        .await
        .json();
    assert!(REASONS.contains(&body["reason"].as_str().unwrap()), "{body}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decider_features_and_dynamic_configs_come_back_typed() {
    let client = decider_client().await;
    let direct = client.clone();
    let server = serve(client, json!({})).await;
    let ctx = json!({"context": {"targetingKey": "t2_1"}});

    let a = server.flag("feed_page_size", ctx.clone()).await;
    assert_eq!(a.status, 200, "{}", a.text());
    let body = a.json();
    assert!(body["value"].is_i64(), "an integer: {body}");
    assert_eq!(body["value"], 25);
    assert_eq!((&body["reason"], &body["variant"]), (&json!("STATIC"), &Value::Null));
    assert_eq!(body["metadata"]["id"], 6);
    assert_eq!(body["metadata"]["config_version"], 1);

    let body = server.flag("ratio", ctx.clone()).await.json();
    assert_eq!(body["value"].as_f64(), Some(0.25), "{body}");
    let a = server.flag("scale", ctx.clone()).await;
    assert!(a.text().contains(r#""value":2.0"#), "a float keeps its `.0`: {}", a.text());
    assert!(a.json()["value"].is_f64());
    let body = server.flag("greeting", ctx.clone()).await.json();
    assert_eq!(body["value"], "hello");
    let body = server.flag("beta", ctx.clone()).await.json();
    assert_eq!(body["value"], true);
    let a = server.flag("layout", ctx.clone()).await;
    assert_eq!(
        a.json()["value"],
        json!({"columns": 3.0, "name": "grid", "tags": ["a", 1.0], "nothing": null,
               "inner": {"x": 1.5}}),
        "numbers as floats, as the wrapper's `get_map`: {}",
        a.text()
    );
    assert!(a.text().contains(r#""columns":3.0"#), "{}", a.text());

    // Disabled: no value.
    let a = server.flag("off_config", ctx.clone()).await;
    let body = a.json();
    assert_eq!(a.status, 200);
    assert_eq!((body.get("value"), &body["reason"]), (None, &json!("DISABLED")), "{body}");
    // Broken: PARSE_ERROR.
    let a = server.flag("broken", ctx.clone()).await;
    assert_eq!((a.status, &a.json()["errorCode"]), (400, &json!("PARSE_ERROR")), "{}", a.text());
    // A mistyped keyword: INVALID_CONTEXT.
    let a = server
        .flag("feed_page_size", json!({"context": {"targetingKey": "t2_1", "logged_in": "yes"}}))
        .await;
    assert_eq!(
        (a.status, &a.json()["errorCode"]),
        (400, &json!("INVALID_CONTEXT")),
        "{}",
        a.text()
    );

    // Bulk: every feature and broken entry, sorted, each typed as alone.
    let a = server.post("/ofrep/v1/evaluate/flags", ctx.to_string()).await;
    assert_eq!(a.status, 200, "{}", a.text());
    assert!(a.header("etag").is_some());
    let body = a.json();
    let flags: BTreeMap<&str, &Value> =
        body["flags"].as_array().unwrap().iter().map(|f| (f["key"].as_str().unwrap(), f)).collect();
    let keys: Vec<&str> =
        body["flags"].as_array().unwrap().iter().map(|f| f["key"].as_str().unwrap()).collect();
    let mut sorted = keys.clone();
    sorted.sort_unstable();
    assert_eq!(keys, sorted);
    let mut expected: Vec<String> =
        serde_json::from_str::<serde_json::Map<String, Value>>(&decider_doc())
            .unwrap()
            .into_iter()
            .map(|(k, _)| k)
            .collect();
    expected.sort_unstable();
    assert_eq!(keys, expected.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(flags["feed_page_size"]["value"], 25);
    assert_eq!(flags["scale"]["value"].as_f64(), Some(2.0));
    assert!(flags["scale"]["value"].is_f64());
    assert_eq!(flags["broken"]["errorCode"], "PARSE_ERROR");
    assert_eq!(flags["off_config"]["reason"], "DISABLED");
    assert!(flags["off_config"].get("value").is_none());

    // Range features: the variant of direct evaluation.
    for i in 0..30 {
        let id = format!("t2_{i}");
        let request = direct.decider_request(DeciderContext::builder().user_id(&id).build(), None);
        let expected = request.get_variant_without_expose("checkout_redesign").map(str::to_owned);
        let a = server.flag_for("checkout_redesign", &id).await;
        assert_eq!(a.status, 200, "{}", a.text());
        let body = a.json();
        assert_eq!(body["variant"].as_str(), expected.as_deref(), "{id}: {body}");
        assert!(REASONS.contains(&body["reason"].as_str().unwrap()), "{body}");
        if let Some(v) = &expected {
            assert_eq!(body["value"], v.as_str());
        } else {
            assert!(body.get("value").is_none(), "{body}");
        }
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_carry_the_protocols_codes() {
    let server = serve(baseplate_client(None).await, json!({})).await;

    let a = server.flag_for("no_such_flag", "t2_1").await;
    assert_eq!(a.status, 404);
    a.assert_json_content_type();
    let body = a.json();
    assert_eq!(
        (&body["key"], &body["errorCode"]),
        (&json!("no_such_flag"), &json!("FLAG_NOT_FOUND"))
    );
    assert!(body["errorDetails"].as_str().is_some_and(|d| !d.is_empty()), "{body}");
    assert!(body.get("value").is_none());

    let path = "/ofrep/v1/evaluate/flags/feed_ranking";
    for (body, code) in [
        ("this is not json", "PARSE_ERROR"),
        ("{\"context\": ", "PARSE_ERROR"),
        ("[{\"context\": {}}]", "PARSE_ERROR"),
        ("\"context\"", "PARSE_ERROR"),
        ("{\"context\": 5}", "INVALID_CONTEXT"),
        ("{\"context\": \"t2_1\"}", "INVALID_CONTEXT"),
        ("{\"context\": [1]}", "INVALID_CONTEXT"),
        ("{\"context\": {\"targetingKey\": 7}}", "INVALID_CONTEXT"),
        ("{\"context\": {\"targetingKey\": {\"id\": \"t2_1\"}}}", "INVALID_CONTEXT"),
        // No targeting key and the experiment buckets on user_id.
        ("{\"context\": {\"logged_in\": true}}", "TARGETING_KEY_MISSING"),
        ("{\"context\": {\"targetingKey\": null}}", "TARGETING_KEY_MISSING"),
    ] {
        let a = server.post(path, body).await;
        assert_eq!(a.status, 400, "{body}: {}", a.text());
        a.assert_json_content_type();
        let answer = a.json();
        assert_eq!(answer["errorCode"], code, "{body}: {answer}");
        assert_eq!(answer["key"], "feed_ranking", "{body}: {answer}");
        assert!(answer["errorDetails"].as_str().is_some_and(|d| !d.is_empty()), "{answer}");
    }

    // The invalid experiment of the example config.
    let a = server.flag_for("broken_example", "t2_1").await;
    assert_eq!(a.status, 400, "{}", a.text());
    let body = a.json();
    assert_eq!(
        (&body["key"], &body["errorCode"]),
        (&json!("broken_example"), &json!("PARSE_ERROR"))
    );

    // No body, `{}` and a null context are no context: accepted (a disabled experiment
    // needs none, a bucketing one then misses its key).
    for body in ["", "  \n", "{}", "{\"context\": null}", "{\"context\": {}}", "{\"other\": 1}"] {
        let a = server.post("/ofrep/v1/evaluate/flags/paused", body).await;
        assert_eq!(a.status, 200, "{body:?}: {}", a.text());
        assert_eq!(a.json()["reason"], "DISABLED");
        let a = server.post(path, body).await;
        assert_eq!(a.status, 400, "{body:?}: {}", a.text());
        assert_eq!(a.json()["errorCode"], "TARGETING_KEY_MISSING", "{body:?}");
    }
    let a = server.send(server.http.post(server.url("/ofrep/v1/evaluate/flags/paused"))).await;
    assert_eq!(a.status, 200, "no body, no content type: {}", a.text());

    // Other endpoints and methods.
    let a = server.get("/nowhere").await;
    assert_eq!((a.status, &a.json()["errorCode"]), (404, &json!("GENERAL")));
    let a = server.get(path).await;
    assert_eq!(a.status, 405, "{}", a.text());
    let a = server.get("/ofrep/v1/configuration").await;
    assert_eq!(a.status, 200);
    let etag = a.header("etag").expect("an ETag").to_owned();
    assert!(a.json()["capabilities"]["flagEvaluation"].is_object(), "{}", a.text());
    let again = server
        .send(server.http.get(server.url("/ofrep/v1/configuration")).header("if-none-match", &etag))
        .await;
    assert_eq!((again.status, again.body.len()), (304, 0));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_bodies_never_get_a_5xx() {
    let server = serve(baseplate_client(None).await, json!({})).await;
    let nested = |depth: usize| {
        format!(
            "{{\"context\": {{\"targetingKey\": \"t2_1\", \"deep\": {}1{}}}}}",
            "[".repeat(depth),
            "]".repeat(depth)
        )
    };
    let nested_objects = |depth: usize| {
        format!(
            "{{\"context\": {{\"targetingKey\": \"t2_1\", \"deep\": {}1{}}}}}",
            "{\"a\": ".repeat(depth),
            "}".repeat(depth)
        )
    };
    let ten_mb = format!(
        "{{\"context\": {{\"targetingKey\": \"t2_1\", \"x\": \"{}\"}}}}",
        "a".repeat(10 << 20)
    );
    let cases: Vec<(&str, Vec<u8>, Option<u16>)> = vec![
        ("nested arrays 200", nested(200).into_bytes(), Some(400)),
        ("nested objects 200", nested_objects(200).into_bytes(), Some(400)),
        ("nested arrays 100", nested(100).into_bytes(), None),
        ("nested body 200", format!("{}{}", "[".repeat(200), "]".repeat(200)).into_bytes(), Some(400)),
        ("1e400", br#"{"context": {"targetingKey": "t2_1", "n": 1e400}}"#.to_vec(), None),
        ("-1e400", br#"{"context": {"targetingKey": "t2_1", "n": -1e400}}"#.to_vec(), None),
        ("2^64", br#"{"context": {"targetingKey": "t2_1", "n": 18446744073709551616}}"#.to_vec(), Some(200)),
        ("u64::MAX", br#"{"context": {"targetingKey": "t2_1", "n": 18446744073709551615}}"#.to_vec(), Some(200)),
        ("long digits", format!("{{\"context\": {{\"targetingKey\": \"t2_1\", \"n\": {}}}}}", "9".repeat(5000)).into_bytes(), None),
        ("tiny float", br#"{"context": {"targetingKey": "t2_1", "n": 1e-400}}"#.to_vec(), None),
        ("unicode keys", r#"{"context": {"targetingKey": "t2_ü", "ключ": "значение", "🔑": "✓", "": 1, "\u0000": 2}}"#.as_bytes().to_vec(), Some(200)),
        ("duplicate keys", br#"{"context": {"targetingKey": "t2_1", "targetingKey": "t2_2", "a": 1, "a": [2]}, "context": {"targetingKey": "t2_3"}}"#.to_vec(), Some(200)),
        ("NaN", br#"{"context": {"targetingKey": "t2_1", "n": NaN}}"#.to_vec(), Some(400)),
        ("Infinity", br#"{"context": {"targetingKey": "t2_1", "n": Infinity}}"#.to_vec(), Some(400)),
        ("lone surrogate", br#"{"context": {"targetingKey": "\ud800"}}"#.to_vec(), None),
        ("invalid UTF-8", b"{\"context\": {\"targetingKey\": \"t2_\xff\xfe\"}}".to_vec(), Some(400)),
        ("BOM", b"\xef\xbb\xbf{\"context\": {\"targetingKey\": \"t2_1\"}}".to_vec(), None),
        ("NUL bytes", b"\0\0\0\0".to_vec(), Some(400)),
        ("trailing garbage", br#"{"context": {"targetingKey": "t2_1"}} {"#.to_vec(), Some(400)),
        ("control chars in strings", b"{\"context\": {\"targetingKey\": \"t2\n\t1\"}}".to_vec(), Some(400)),
        ("10 MB", ten_mb.into_bytes(), Some(413)),
    ];
    for (name, body, want) in cases {
        for path in ["/ofrep/v1/evaluate/flags/feed_ranking", "/ofrep/v1/evaluate/flags"] {
            let a = post_while_reading(server.addr, path, body.clone()).await;
            assert!(a.status < 500, "{name} on {path}: {a:?}");
            // Every answer of these endpoints is JSON, whatever the body.
            let answer = a.json();
            if a.status >= 400 {
                assert!(answer["errorCode"].is_string(), "{name} on {path}: {answer}");
            }
            if let Some(want) = want {
                assert_eq!(a.status, want, "{name} on {path}: {answer}");
            }
            if want == Some(413) {
                assert_eq!(answer["errorCode"], "PARSE_ERROR", "{answer}");
            }
        }
    }
    // Hostile keys.
    let long = "k".repeat(10_000);
    for key in ["%FF", "%00", "a%2Fb", "%F0%9F%94%91", "..%2F..%2Fetc", long.as_str(), "%25"] {
        let a = server.post(&format!("/ofrep/v1/evaluate/flags/{key}"), "{}").await;
        assert!(a.status < 500, "{key}: {} {}", a.status, a.text());
    }
    // Still up.
    assert_eq!(server.get("/healthz").await.status, 200);
    server.shutdown().await;
}

// ---------------------------------------------------------------------------------------
// 2. Bulk evaluation
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_evaluation_has_etags_and_304_evaluates_nothing() {
    let sink = Counting::new();
    let client = baseplate_client(Some(Arc::clone(&sink))).await;
    let server = serve(client.clone(), json!({})).await;
    let bulk = "/ofrep/v1/evaluate/flags";
    let post = |body: &str, tag: Option<&str>| {
        let mut r = server
            .http
            .post(server.url(bulk))
            .header("content-type", "application/json")
            .body(body.to_owned());
        if let Some(tag) = tag {
            r = r.header("if-none-match", tag);
        }
        server.send(r)
    };

    let (user, _) = bucketed_user("feed_ranking").await;
    let ctx = format!(
        r#"{{"context": {{"targetingKey": "{user}", "app_name": "ios", "n": {{"b": 2, "a": [1, 2]}}}}}}"#
    );
    let a = post(&ctx, None).await;
    assert_eq!(a.status, 200, "{}", a.text());
    a.assert_json_content_type();
    let etag = a.header("etag").expect("an ETag").to_owned();
    assert!(etag.starts_with('"') && etag.ends_with('"') && etag.len() > 2, "{etag}");
    let body = a.json();
    let flags = body["flags"].as_array().unwrap();
    let keys: Vec<&str> = flags.iter().map(|f| f["key"].as_str().unwrap()).collect();
    let config = Config::parse(&baseplate_doc()).unwrap();
    let mut every: Vec<&str> = config.names().collect();
    every.sort_unstable();
    assert_eq!(keys, every, "every flag, sorted");
    let by_key: BTreeMap<&str, &Value> = keys.iter().copied().zip(flags).collect();
    assert!(by_key["feed_ranking"]["variant"].is_string(), "{}", by_key["feed_ranking"]);
    assert_eq!(by_key["paused"]["reason"], "DISABLED");
    assert_eq!(by_key["broken_example"]["errorCode"], "PARSE_ERROR");
    for f in flags {
        assert!(
            f.get("errorCode").is_some() || REASONS.contains(&f["reason"].as_str().unwrap()),
            "{f}"
        );
    }
    flush(&client).await;
    let logged = sink.take();
    assert!(!logged.is_empty(), "a bulk evaluation logs its flags' exposures");
    // As many events as one request of the client evaluating every flag with these inputs.
    let direct_sink = Counting::new();
    let direct = baseplate_client(Some(Arc::clone(&direct_sink))).await;
    let request = direct.request();
    let inputs = Inputs::new()
        .with("app_name", "ios")
        .with("n", json!({"a": [1, 2], "b": 2}))
        .with("user_id", user.as_str());
    for key in &every {
        let _ = request.variant(key, &inputs);
    }
    flush(&direct).await;
    assert_eq!(logged.len(), direct_sink.take().len(), "{logged:?}");

    // Same config, same context: 304, no body, nothing evaluated or logged.
    let a = post(&ctx, Some(&etag)).await;
    assert_eq!(a.status, 304, "{}", a.text());
    assert!(a.body.is_empty(), "{}", a.text());
    assert_eq!(a.header("etag"), Some(etag.as_str()));
    flush(&client).await;
    assert_eq!(sink.take().len(), 0, "a 304 logs nothing");

    // The same members in another order (and other whitespace): the same tag.
    let reordered = format!(
        r#"{{"context":{{"n":{{"a":[1,2],"b":2}},"app_name":"ios","targetingKey":"{user}"}}}}"#
    );
    let a = post(&reordered, Some(&etag)).await;
    assert_eq!(a.status, 304, "{}", a.text());
    let a = post(&reordered, None).await;
    assert_eq!(a.header("etag"), Some(etag.as_str()));
    // Weak, listed, star.
    for tag in [
        format!("W/{etag}"),
        format!("\"nope\", {etag}"),
        format!("\"x\",W/{etag}"),
        "*".to_owned(),
    ] {
        let a = post(&ctx, Some(&tag)).await;
        assert_eq!(a.status, 304, "If-None-Match: {tag}");
    }
    // Another tag: 200.
    let a = post(&ctx, Some("\"0123456789abcdef\"")).await;
    assert_eq!((a.status, a.header("etag")), (200, Some(etag.as_str())));

    // A changed context: evaluated again, another tag.
    for changed in [
        format!(r#"{{"context": {{"targetingKey": "{user}", "app_name": "android", "n": {{"b": 2, "a": [1, 2]}}}}}}"#),
        format!(r#"{{"context": {{"targetingKey": "{user}", "app_name": "ios", "n": {{"b": 2, "a": [2, 1]}}}}}}"#),
        format!(r#"{{"context": {{"targetingKey": "{user}", "app_name": "ios", "n": {{"b": 2.0, "a": [1, 2]}}}}}}"#),
        format!(r#"{{"context": {{"targetingKey": "{user}", "app_name": "ios"}}}}"#),
        r#"{"context": {"targetingKey": "t2_other", "app_name": "ios", "n": {"b": 2, "a": [1, 2]}}}"#.to_owned(),
    ] {
        let a = post(&changed, Some(&etag)).await;
        assert_eq!(a.status, 200, "{changed}: {}", a.text());
        let new_tag = a.header("etag").unwrap();
        assert_ne!(new_tag, etag, "{changed}");
        assert!(a.json()["flags"].as_array().is_some_and(|f| f.len() == every.len()));
    }
    // Errors of the bulk request itself.
    let a = post("[1]", None).await;
    assert_eq!((a.status, &a.json()["errorCode"]), (400, &json!("PARSE_ERROR")));
    let a = post(r#"{"context": 5}"#, None).await;
    assert_eq!((a.status, &a.json()["errorCode"]), (400, &json!("INVALID_CONTEXT")));
    let a = post(r#"{"context": {"targetingKey": 7}}"#, None).await;
    assert_eq!(
        (a.status, &a.json()["errorCode"]),
        (400, &json!("INVALID_CONTEXT")),
        "{}",
        a.text()
    );
    // No body: no context, every flag still answered.
    let a = post("", None).await;
    assert_eq!(a.status, 200, "{}", a.text());
    server.shutdown().await;
}

/// `bulk_exposures: false`: the same answers as with exposures, and nothing logged; single
/// evaluations still log theirs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_evaluation_can_leave_exposures_to_the_caller() {
    let sink = Counting::new();
    let client = baseplate_client(Some(Arc::clone(&sink))).await;
    let quiet = serve(client.clone(), json!({"bulk_exposures": false})).await;
    let logging = serve(client.clone(), json!({})).await;
    let (user, variant) = bucketed_user("feed_ranking").await;
    let body = json!({"context": {"targetingKey": user, "app_name": "ios"}}).to_string();
    let a = quiet.post("/ofrep/v1/evaluate/flags", body.clone()).await;
    assert_eq!(a.status, 200, "{}", a.text());
    flush(&client).await;
    assert_eq!(sink.take().len(), 0, "bulk_exposures: false logs nothing");
    let b = logging.post("/ofrep/v1/evaluate/flags", body.clone()).await;
    assert_eq!(a.json(), b.json(), "the same answers either way");
    assert_eq!(a.header("etag"), b.header("etag"));
    flush(&client).await;
    assert!(!sink.take().is_empty(), "the default logs the bulk exposures");
    let a = quiet.post("/ofrep/v1/evaluate/flags/feed_ranking", body).await;
    assert_eq!(a.json()["variant"], variant.as_str());
    flush(&client).await;
    assert_eq!(sink.take().len(), 1, "single evaluations log their exposure");
    quiet.shutdown().await;
    logging.shutdown().await;
}

// ---------------------------------------------------------------------------------------
// 3. Per-request scope
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_request_is_one_scope_with_its_correlation_id() {
    let sink = Counting::new();
    let client = baseplate_client(Some(Arc::clone(&sink))).await;
    let server = serve(client.clone(), json!({})).await;
    let (user, variant) = bucketed_user("feed_ranking").await;
    let path = "/ofrep/v1/evaluate/flags/feed_ranking";
    let body = json!({"context": {"targetingKey": user}}).to_string();

    // One evaluation: exactly one event, without a correlation id.
    let a = server.post(path, body.clone()).await;
    assert_eq!(a.json()["variant"], variant.as_str());
    flush(&client).await;
    let events = sink.take();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["event_type"], "choose");
    assert_eq!(events[0]["experiment"]["name"], "feed_ranking");
    assert_eq!(events[0]["variant"], variant.as_str());
    assert!(events[0]["correlation_id"].is_null(), "{}", events[0]);

    // Each request is its own scope: three requests, three events.
    for _ in 0..3 {
        server.post(path, body.clone()).await;
    }
    flush(&client).await;
    assert_eq!(sink.take().len(), 3);

    // The correlation id from the request's headers.
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    for (header, value, want) in [
        ("x-request-id", "req-42".to_owned(), "req-42"),
        ("traceparent", format!("00-{trace}-00f067aa0ba902b7-01"), trace),
    ] {
        let r = server.http.post(server.url(path)).header(header, &value).body(body.clone());
        assert_eq!(server.send(r).await.status, 200);
        flush(&client).await;
        let events = sink.take();
        assert_eq!(events.len(), 1, "{header}: {events:?}");
        assert_eq!(events[0]["correlation_id"], want, "{header}: {}", events[0]);
    }
    // Both: traceparent wins; an unusable value is no id.
    let r = server
        .http
        .post(server.url(path))
        .header("x-request-id", "req-7")
        .header("traceparent", format!("00-{trace}-00f067aa0ba902b7-01"))
        .body(body.clone());
    server.send(r).await;
    let r =
        server.http.post(server.url(path)).header("x-request-id", "has space").body(body.clone());
    server.send(r).await;
    flush(&client).await;
    let ids: Vec<Value> = sink.take().into_iter().map(|e| e["correlation_id"].clone()).collect();
    assert_eq!(ids, [json!(trace), Value::Null]);
    server.shutdown().await;
}

// ---------------------------------------------------------------------------------------
// 4. Authentication
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_guard_the_ofrep_routes_only() {
    let server = serve(
        baseplate_client(None).await,
        json!({"auth": {"api_keys": ["k"], "bearer_tokens": ["t"]}}),
    )
    .await;
    let path = "/ofrep/v1/evaluate/flags/paused";
    let with = |headers: &[(&str, &str)]| {
        let mut r = server.http.post(server.url(path)).body("{}");
        for (k, v) in headers {
            r = r.header(*k, *v);
        }
        server.send(r)
    };
    for headers in [
        &[][..],
        &[("x-api-key", "wrong")][..],
        &[("x-api-key", "")][..],
        &[("x-api-key", "k2")][..],
        &[("x-api-key", "K")][..],
        &[("authorization", "Bearer wrong")][..],
        &[("authorization", "Bearer k")][..], // an API key is not a token
        &[("x-api-key", "t")][..],            // nor the other way round
        &[("authorization", "Basic dDp0")][..],
        &[("authorization", "t")][..],
        &[("authorization", "Bearer")][..],
        &[("authorization", "Bearer ")][..],
    ] {
        let a = with(headers).await;
        assert_eq!(a.status, 401, "{headers:?}: {}", a.text());
        a.assert_json_content_type();
        assert_eq!(a.header("www-authenticate"), Some("Bearer"), "{headers:?}");
        assert_eq!(a.json()["errorCode"], "GENERAL");
    }
    for headers in [
        &[("x-api-key", "k")][..],
        &[("authorization", "Bearer t")][..],
        &[("authorization", "bearer t")][..],
        &[("authorization", "BEARER t")][..],
        &[("x-api-key", "wrong"), ("authorization", "Bearer t")][..],
    ] {
        let a = with(headers).await;
        assert_eq!(a.status, 200, "{headers:?}: {}", a.text());
        assert_eq!(a.json()["reason"], "DISABLED");
    }
    // Bulk and configuration too.
    let a = server.post("/ofrep/v1/evaluate/flags", "{}").await;
    assert_eq!(a.status, 401);
    let a = server.get("/ofrep/v1/configuration").await;
    assert_eq!(a.status, 401);
    let a = server
        .send(server.http.post(server.url("/ofrep/v1/evaluate/flags")).header("x-api-key", "k"))
        .await;
    assert_eq!(a.status, 200);
    // Operations need none.
    for ops in ["/healthz", "/readyz", "/metrics"] {
        assert_eq!(server.get(ops).await.status, 200, "{ops}");
    }
    server.shutdown().await;
}

/// With `cors`, a browser's preflight is answered before authentication, an allowed
/// origin's answers (refusals included) let it read the body and the `ETag`; another
/// origin gets no CORS header. Without `cors`, no CORS header at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_lets_the_allowed_web_origins_call() {
    let app = "https://app.example.com";
    let server = serve(
        baseplate_client(None).await,
        json!({"auth": {"api_keys": ["k"]}, "cors": {"allowed_origins": [app], "max_age": "10m"}}),
    )
    .await;
    let bulk = server.url("/ofrep/v1/evaluate/flags");
    let preflight = |origin: &'static str| {
        server.send(
            server
                .http
                .request(reqwest::Method::OPTIONS, &bulk)
                .header("origin", origin)
                .header("access-control-request-method", "POST")
                .header("access-control-request-headers", "content-type,if-none-match,x-api-key"),
        )
    };
    let a = preflight(app).await;
    assert_eq!(a.status, 200, "no credentials needed: {a:?}");
    assert_eq!(a.header("access-control-allow-origin"), Some(app));
    assert_eq!(a.header("access-control-max-age"), Some("600"));
    let methods = a.header("access-control-allow-methods").unwrap_or_default().to_owned();
    assert!(methods.contains("POST") && methods.contains("GET"), "{methods}");
    let allowed = a.header("access-control-allow-headers").unwrap_or_default().to_lowercase();
    for h in ["content-type", "if-none-match", "x-api-key", "authorization"] {
        assert!(allowed.contains(h), "{h} in {allowed}");
    }
    let a = preflight("https://evil.example").await;
    assert_eq!(a.header("access-control-allow-origin"), None, "{a:?}");

    let post = |origin: &'static str, key: Option<&'static str>| {
        let mut r = server.http.post(&bulk).header("origin", origin).body("{}");
        if let Some(key) = key {
            r = r.header("x-api-key", key);
        }
        server.send(r)
    };
    let a = post(app, Some("k")).await;
    assert_eq!(a.status, 200, "{}", a.text());
    assert_eq!(a.header("access-control-allow-origin"), Some(app));
    let exposed = a.header("access-control-expose-headers").unwrap_or_default().to_lowercase();
    assert!(exposed.contains("etag") && exposed.contains("retry-after"), "{exposed}");
    let a = post(app, None).await;
    assert_eq!(a.status, 401);
    assert_eq!(a.header("access-control-allow-origin"), Some(app), "a refusal is readable");
    let a = post("https://evil.example", Some("k")).await;
    assert_eq!(a.header("access-control-allow-origin"), None);
    // The same rules on every endpoint (a status page may read `/readyz`).
    let a = server.send(server.http.get(server.url("/readyz")).header("origin", app)).await;
    assert_eq!((a.status, a.header("access-control-allow-origin")), (200, Some(app)));
    // Preflights are counted apart from the evaluations.
    let samples = prometheus::parse(&server.get("/metrics").await.text());
    let requests = "experiments_serve_requests_total";
    let count = |route| prometheus::value(&samples, requests, &[("route", route), ("code", "200")]);
    assert_eq!((count("preflight"), count("bulk")), (Some(2.0), Some(2.0)));
    server.shutdown().await;

    let server = serve(baseplate_client(None).await, json!({})).await;
    let a = server
        .send(
            server
                .http
                .request(reqwest::Method::OPTIONS, server.url("/ofrep/v1/evaluate/flags"))
                .header("origin", app)
                .header("access-control-request-method", "POST"),
        )
        .await;
    assert_eq!(a.status, 405, "no CORS without settings: {a:?}");
    assert_eq!(a.header("access-control-allow-origin"), None);
    let a = server
        .send(
            server
                .http
                .post(server.url("/ofrep/v1/evaluate/flags"))
                .header("origin", app)
                .body("{}"),
        )
        .await;
    assert_eq!((a.status, a.header("access-control-allow-origin")), (200, None));
    server.shutdown().await;

    let any =
        serve(baseplate_client(None).await, json!({"cors": {"allowed_origins": ["*"]}})).await;
    let a = any
        .send(any.http.post(any.url("/ofrep/v1/evaluate/flags")).header("origin", app).body("{}"))
        .await;
    assert_eq!(a.header("access-control-allow-origin"), Some("*"));
    any.shutdown().await;
}

// ---------------------------------------------------------------------------------------
// 5. Limits
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_over_the_limit_get_413() {
    let server = serve(baseplate_client(None).await, json!({"max_body_bytes": 1000})).await;
    let fits =
        format!(r#"{{"context": {{"targetingKey": "t2_1", "pad": "{}"}}}}"#, "x".repeat(900));
    let over =
        format!(r#"{{"context": {{"targetingKey": "t2_1", "pad": "{}"}}}}"#, "x".repeat(1000));
    for path in ["/ofrep/v1/evaluate/flags/feed_ranking", "/ofrep/v1/evaluate/flags"] {
        let a = server.post(path, fits.clone()).await;
        assert_eq!(a.status, 200, "{path}: {}", a.text());
        let a = server.post(path, over.clone()).await;
        assert_eq!(a.status, 413, "{path}: {}", a.text());
        a.assert_json_content_type();
        assert_eq!(a.json()["errorCode"], "PARSE_ERROR");
    }
    // Without a Content-Length (chunked): the limit holds as well.
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let mut request = "POST /ofrep/v1/evaluate/flags/feed_ranking HTTP/1.1\r\nHost: test\r\n\
                       Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        .to_owned();
    for part in [&over[..600], &over[600..]] {
        request.push_str(&format!("{:x}\r\n{part}\r\n", part.len()));
    }
    request.push_str("0\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let response = tokio::time::timeout(PATIENCE, read_response(&mut stream)).await.unwrap();
    assert_eq!(response.status, 413, "{response:?}");
    assert_eq!(response.json()["errorCode"], "PARSE_ERROR");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_beyond_the_concurrency_limit_get_429() {
    let server = serve(baseplate_client(None).await, json!({"max_concurrent_requests": 1})).await;
    let (user, variant) = bucketed_user("feed_ranking").await;
    let body = json!({"context": {"targetingKey": user}}).to_string();
    let (first, rest) = body.split_at(10);

    // A request whose body arrives slowly holds the only slot.
    let mut slow = TcpStream::connect(server.addr).await.unwrap();
    slow.write_all(head("/ofrep/v1/evaluate/flags/feed_ranking", body.len()).as_bytes())
        .await
        .unwrap();
    slow.write_all(first.as_bytes()).await.unwrap();
    let deadline = Instant::now() + PATIENCE;
    let refused = loop {
        let a = server.post("/ofrep/v1/evaluate/flags/paused", "{}").await;
        if a.status == 429 {
            break a;
        }
        assert_eq!(a.status, 200, "{}", a.text());
        assert!(Instant::now() < deadline, "never 429");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(refused.header("retry-after"), Some("1"));
    refused.assert_json_content_type();
    assert!(refused.json()["errorCode"].is_string());

    // The slow one completes normally, and frees the slot.
    slow.write_all(rest.as_bytes()).await.unwrap();
    let response = tokio::time::timeout(PATIENCE, read_response(&mut slow)).await.unwrap();
    assert_eq!(response.status, 200, "{response:?}");
    assert_eq!(response.json()["variant"], variant.as_str());
    let deadline = Instant::now() + PATIENCE;
    loop {
        let a = server.post("/ofrep/v1/evaluate/flags/paused", "{}").await;
        if a.status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "the slot was never freed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_never_completes_gets_408() {
    let server = serve(baseplate_client(None).await, json!({"request_timeout": "200ms"})).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let started = Instant::now();
    stream.write_all(head("/ofrep/v1/evaluate/flags/feed_ranking", 100).as_bytes()).await.unwrap();
    stream.write_all(b"{\"context\": ").await.unwrap();
    let response =
        tokio::time::timeout(PATIENCE, read_response(&mut stream)).await.expect("an answer");
    let elapsed = started.elapsed();
    assert_eq!(response.status, 408, "{response:?}");
    assert_eq!(response.headers.get("content-type").map(String::as_str), Some("application/json"));
    assert_eq!(response.json()["errorCode"], "GENERAL");
    assert!(elapsed >= Duration::from_millis(150), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(3), "within about the timeout: {elapsed:?}");
    // Fast requests are not affected.
    assert_eq!(server.flag_for("feed_ranking", "t2_1").await.status, 200);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_with_partial_headers_are_closed() {
    let server = serve(baseplate_client(None).await, json!({"idle_timeout": "300ms"})).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let started = Instant::now();
    stream
        .write_all(b"POST /ofrep/v1/evaluate/flags/paused HTTP/1.1\r\nHost: test\r\n")
        .await
        .unwrap();
    let read = tokio::time::timeout(PATIENCE, read_to_close(&mut stream)).await.expect("closed");
    let elapsed = started.elapsed();
    assert!(
        read.is_empty() || read.starts_with(b"HTTP/1.1 408"),
        "{:?}",
        String::from_utf8_lossy(&read)
    );
    assert!(elapsed >= Duration::from_millis(250), "not before the timeout: {elapsed:?}");
    // A connection that sends nothing at all is closed too.
    let mut silent = TcpStream::connect(server.addr).await.unwrap();
    let started = Instant::now();
    let read = tokio::time::timeout(PATIENCE, read_to_close(&mut silent)).await.expect("closed");
    assert!(
        read.is_empty() || read.starts_with(b"HTTP/1.1 408"),
        "{:?}",
        String::from_utf8_lossy(&read)
    );
    assert!(started.elapsed() >= Duration::from_millis(250), "{:?}", started.elapsed());
    // A connection that completes its headers in time is served.
    assert_eq!(server.get("/healthz").await.status, 200);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_keep_alive_connections_are_closed() {
    let server = serve(baseplate_client(None).await, json!({"idle_timeout": "300ms"})).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    // One complete request on a keep-alive connection, then silence.
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n").await.unwrap();
    let response = tokio::time::timeout(PATIENCE, read_response(&mut stream)).await.unwrap();
    assert_eq!(response.status, 200);
    let started = Instant::now();
    let read = tokio::time::timeout(PATIENCE, read_to_close(&mut stream))
        .await
        .expect("an idle keep-alive connection is closed after idle_timeout");
    assert!(
        read.is_empty() || read.starts_with(b"HTTP/1.1 408"),
        "{:?}",
        String::from_utf8_lossy(&read)
    );
    assert!(started.elapsed() >= Duration::from_millis(250), "{:?}", started.elapsed());
    server.shutdown().await;
}

// ---------------------------------------------------------------------------------------
// 6. Operations
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_readiness_and_metrics() {
    let sink = Counting::new();
    let client = baseplate_client(Some(Arc::clone(&sink))).await;
    let server = serve(client.clone(), json!({})).await;

    let a = server.get("/healthz").await;
    assert_eq!((a.status, &a.json()["status"]), (200, &json!("alive")));
    let a = server.get("/readyz").await;
    assert_eq!(a.status, 200, "{}", a.text());
    let ready = a.json();
    assert_eq!(ready["status"], "ready");
    assert_eq!(ready["config_version"], 1);
    assert_eq!(ready["dialect"], "baseplate");
    assert!(ready["last_error"].is_null(), "{ready}");
    assert!(ready["config_age_seconds"].as_f64().is_some_and(|a| a >= 0.0), "{ready}");

    // Some evaluations, their outcomes counted here.
    let mut outcomes: BTreeMap<String, u64> = BTreeMap::new();
    let mut bucketed = 0;
    for i in 0..25 {
        let a = server.flag_for("feed_ranking", &format!("t2_{i}")).await;
        let body = a.json();
        *outcomes.entry(body["reason"].as_str().unwrap().to_owned()).or_default() += 1;
        bucketed += u64::from(body["variant"].is_string());
    }
    for _ in 0..3 {
        assert_eq!(server.flag_for("no_such_flag", "t2_1").await.status, 404);
    }
    assert_eq!(server.post("/ofrep/v1/evaluate/flags/feed_ranking", "{}").await.status, 400);
    flush(&client).await;
    assert_eq!(sink.take().len() as u64, bucketed, "one event per bucketed evaluation");

    let a = server.get("/metrics").await;
    assert_eq!(a.status, 200);
    let content_type = a.header("content-type").unwrap();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    let text = a.text();
    let samples = prometheus::parse(&text);
    assert_eq!(prometheus::value(&samples, "experiments_config_version", &[]), Some(1.0), "{text}");
    assert_eq!(
        prometheus::value(&samples, "experiments_config_health", &[("health", "ready")]),
        Some(1.0)
    );
    let evals = "experiments_serve_evaluations_total";
    for (outcome, count) in &outcomes {
        let got =
            prometheus::value(&samples, evals, &[("flag", "feed_ranking"), ("outcome", outcome)]);
        assert_eq!(got, Some(*count as f64), "{outcome}: {text}");
    }
    assert_eq!(
        prometheus::value(
            &samples,
            evals,
            &[("flag", "feed_ranking"), ("outcome", "TARGETING_KEY_MISSING")]
        ),
        Some(1.0)
    );
    assert_eq!(
        prometheus::value(&samples, evals, &[("flag", ""), ("outcome", "FLAG_NOT_FOUND")]),
        Some(3.0)
    );
    assert!(samples.iter().filter(|s| s.name == evals).all(|s| s.kind == Type::Counter));
    let requests = "experiments_serve_requests_total";
    assert_eq!(
        prometheus::value(&samples, requests, &[("route", "evaluate"), ("code", "200")]),
        Some(25.0)
    );
    assert_eq!(
        prometheus::value(&samples, requests, &[("route", "evaluate"), ("code", "404")]),
        Some(3.0)
    );
    assert_eq!(
        prometheus::value(&samples, requests, &[("route", "evaluate"), ("code", "400")]),
        Some(1.0)
    );
    assert_eq!(
        prometheus::value(&samples, requests, &[("route", "healthz"), ("code", "200")]),
        Some(1.0)
    );
    // The latency histogram: cumulative buckets ending at +Inf = count.
    let route = [("route", "evaluate")];
    let count =
        prometheus::value(&samples, "experiments_serve_request_duration_seconds_count", &route);
    assert_eq!(count, Some(29.0), "{text}");
    let buckets: Vec<(f64, f64)> = samples
        .iter()
        .filter(|s| s.name == "experiments_serve_request_duration_seconds_bucket")
        .filter(|s| s.labels["route"] == "evaluate")
        .map(|s| (s.labels["le"].parse::<f64>().unwrap(), s.value))
        .collect();
    assert!(buckets.len() > 5, "{buckets:?}");
    assert!(buckets.windows(2).all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1), "{buckets:?}");
    assert_eq!(buckets.last(), Some(&(f64::INFINITY, 29.0)));
    assert!(
        samples
            .iter()
            .any(|s| s.name == "experiments_serve_request_duration_seconds_sum" && s.value > 0.0)
    );
    // The pipeline's counters.
    let accepted = prometheus::value(&samples, "experiments_events_accepted_total", &[]);
    assert_eq!(accepted, Some(bucketed as f64), "{text}");
    assert_eq!(
        prometheus::value(&samples, "experiments_events_delivered_total", &[]),
        Some(bucketed as f64)
    );
    assert_eq!(prometheus::value(&samples, "experiments_events_in_flight", &[]), Some(0.0));
    assert_eq!(
        prometheus::value(
            &samples,
            "experiments_events_dropped_total",
            &[("reason", "queue_full")]
        ),
        Some(0.0)
    );
    assert!(!text.contains("experiments_config_last_error"), "{text}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_is_503_until_a_config_loads() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("experiments.json");
    let mut watch = WatchSettings::for_path(&path);
    watch.poll_interval = Duration::from_millis(50);
    let client = ExperimentsClient::builder()
        .config_source(FileSource(watch))
        .startup(Startup::Empty, Duration::from_secs(1))
        .sink_settings(SinkSettings::None)
        .build()
        .await
        .unwrap();
    let server = serve(client, json!({})).await;

    assert_eq!(server.get("/healthz").await.status, 200, "alive without a config");
    // Not ready, before and after the source's first check fails.
    let deadline = Instant::now() + PATIENCE;
    let body = loop {
        let a = server.get("/readyz").await;
        assert_eq!(a.status, 503, "{}", a.text());
        let body = a.json();
        assert_eq!(body["status"], "empty", "{body}");
        assert!(body["config_version"].is_null(), "{body}");
        if !body["last_error"].is_null() {
            break body;
        }
        assert!(Instant::now() < deadline, "the missing file was never reported: {body}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let error = body["last_error"].as_str().unwrap_or_default();
    assert!(error.contains("experiments.json"), "the missing file is the last error: {body}");
    let a = server.flag_for("feed_ranking", "t2_1").await;
    assert_eq!(a.status, 503, "{}", a.text());
    assert_eq!(a.json()["errorCode"], "PROVIDER_NOT_READY");
    assert_eq!(a.header("retry-after"), Some("1"));
    let a = server.post("/ofrep/v1/evaluate/flags", "{}").await;
    assert_eq!((a.status, &a.json()["errorCode"]), (503, &json!("PROVIDER_NOT_READY")));
    let text = server.get("/metrics").await.text();
    let samples = prometheus::parse(&text);
    assert_eq!(
        prometheus::value(&samples, "experiments_config_health", &[("health", "empty")]),
        Some(1.0)
    );
    assert_eq!(prometheus::value(&samples, "experiments_config_version", &[]), None, "{text}");

    // The file appears: ready.
    std::fs::write(&path, baseplate_doc()).unwrap();
    let deadline = Instant::now() + PATIENCE;
    let ready = loop {
        let a = server.get("/readyz").await;
        if a.status == 200 {
            break a.json();
        }
        assert!(Instant::now() < deadline, "never ready: {}", a.text());
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!((&ready["status"], &ready["config_version"]), (&json!("ready"), &json!(1)));
    assert_eq!(server.flag_for("paused", "t2_1").await.status, 200);
    server.shutdown().await;
}

// ---------------------------------------------------------------------------------------
// 7. Graceful shutdown
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_finishes_in_flight_requests_and_flushes_events() {
    let sink = Counting::new();
    let client = baseplate_client(Some(Arc::clone(&sink))).await;
    let mut server =
        serve(client, json!({"max_concurrent_requests": 1, "shutdown_timeout": "5s"})).await;
    let addr = server.addr;
    let (user, variant) = bucketed_user("feed_ranking").await;
    let body = json!({"context": {"targetingKey": user}}).to_string();
    let (first, rest) = body.split_at(10);

    let mut slow = TcpStream::connect(addr).await.unwrap();
    slow.write_all(head("/ofrep/v1/evaluate/flags/feed_ranking", body.len()).as_bytes())
        .await
        .unwrap();
    slow.write_all(first.as_bytes()).await.unwrap();
    // In flight once it holds the only slot (others get 429).
    let deadline = Instant::now() + PATIENCE;
    let mut probes = 1;
    while server.post("/ofrep/v1/evaluate/flags/paused", "{}").await.status != 429 {
        assert!(Instant::now() < deadline, "the slow request never got in flight");
        tokio::time::sleep(Duration::from_millis(20)).await;
        probes += 1;
    }

    let _ = server.stop.take().unwrap().send(());
    // New connections are refused once the listener is closed.
    let deadline = Instant::now() + PATIENCE;
    loop {
        match TcpStream::connect(addr).await {
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => break,
            // Accepted into the backlog (or reset as the listener closed): not yet closed.
            Ok(_) | Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("still no refusal after shutdown: {e}"),
            Ok(_) => panic!("still accepting after shutdown"),
        }
    }
    assert!(!server.task.is_finished(), "the in-flight request holds the shutdown");

    // The in-flight request completes with its answer.
    slow.write_all(rest.as_bytes()).await.unwrap();
    let response = tokio::time::timeout(PATIENCE, read_response(&mut slow)).await.unwrap();
    assert_eq!(response.status, 200, "{response:?}");
    assert_eq!(response.json()["variant"], variant.as_str());

    let report = tokio::time::timeout(PATIENCE, server.task).await.unwrap().unwrap().unwrap();
    assert!(report.drained, "{report:?}");
    assert_eq!(report.requests, probes + 1, "the probes and the slow request: {report:?}");
    let flush = report.flush.expect("a pipeline");
    assert_eq!(flush.remaining, 0, "{flush:?}");
    assert_eq!((flush.counters.accepted, flush.counters.delivered), (1, 1), "{flush:?}");
    let events = sink.take();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["variant"], variant.as_str());
}

// ---------------------------------------------------------------------------------------
// Slow clients at shutdown; error answers the router itself gives
// ---------------------------------------------------------------------------------------

/// A connection that sent part of a request head (a slow client, a slowloris) is not an
/// in-flight request: shutdown should close it at once and report the drain as complete.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_does_not_wait_for_connections_that_never_sent_a_request() {
    let server = serve(baseplate_client(None).await, json!({"shutdown_timeout": "5s"})).await;
    let mut partial = TcpStream::connect(server.addr).await.unwrap();
    partial.write_all(b"POST /ofrep/v1/evaluate/flags/paused HTTP/1.1\r\nHost: te").await.unwrap();
    // An idle keep-alive connection and a silent one, which do not hold it.
    assert_eq!(server.get("/healthz").await.status, 200);
    let _silent = TcpStream::connect(server.addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    let report = server.shutdown().await;
    assert!(report.drained, "no request was in flight: {report:?}");
    assert!(started.elapsed() < Duration::from_millis(2500), "{:?}", started.elapsed());
}

/// OFREP error answers are JSON (`errorCode`, `errorDetails`): also for a key that is not
/// UTF-8 once percent-decoded (axum's rejection would be plain text) and for a method an
/// endpoint does not take (axum's `405` would be empty), as for the `404` fallback.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_error_answer_is_json() {
    let server = serve(baseplate_client(None).await, json!({})).await;
    let a = server.post("/ofrep/v1/evaluate/flags/%FF", "{}").await;
    assert!(matches!(a.status, 400 | 404), "{a:?}");
    a.assert_json_content_type();
    assert!(a.json()["errorCode"].is_string(), "{}", a.text());
    for (method, path) in [
        (reqwest::Method::GET, "/ofrep/v1/evaluate/flags/paused"),
        (reqwest::Method::GET, "/ofrep/v1/evaluate/flags"),
        (reqwest::Method::DELETE, "/ofrep/v1/configuration"),
        (reqwest::Method::POST, "/healthz"),
    ] {
        let a = server.send(server.http.request(method.clone(), server.url(path))).await;
        assert_eq!(a.status, 405, "{method} {path}");
        assert!(a.header("allow").is_some(), "{method} {path}: {a:?}");
        a.assert_json_content_type();
        assert_eq!(a.json()["errorCode"], "GENERAL", "{method} {path}");
    }
    server.shutdown().await;
}
