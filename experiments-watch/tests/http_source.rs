//! The HTTP source against a real HTTP server on loopback (hyper), scripted per request.
//! Timing assertions are loose on purpose: the machine is slow and shared.
#![cfg(feature = "http")]

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use experiments_watch::{
    ConfigSource, ConfigStore, Health, HttpSource, HttpSourceSettings, Origin, SourceError,
    SourceGuard,
};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Bytes, Frame, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

const WAIT: Duration = Duration::from_secs(10);

fn doc(n: usize) -> String {
    let entries: Vec<String> = (0..n)
        .map(|i| {
            format!(
                r#""e{i}": {{"id": {i}, "name": "e{i}", "type": "feature_flag", "start_ts": 0,
                "stop_ts": 4102444800, "experiment": {{"variants": {{"active": 100}}}}}}"#
            )
        })
        .collect();
    format!("{{{}}}", entries.join(","))
}

/// How the server answers one request.
#[derive(Clone, Debug)]
enum Reply {
    /// A document (with `Content-Length`); answered `304` when the request's
    /// `If-None-Match` equals `etag`, or (without an etag) its `If-Modified-Since` equals
    /// `last_modified`.
    Doc { body: String, etag: Option<&'static str>, last_modified: Option<&'static str> },
    /// This status, with a short body.
    Status(u16),
    /// Accept the request and never answer (well, after a minute).
    Hang,
    /// `200` with a chunked body (no `Content-Length`) of endless 16 KiB chunks.
    Endless,
    /// `302` to this path.
    Redirect(&'static str),
}

fn tagged(body: String, etag: &'static str) -> Reply {
    Reply::Doc { body, etag: Some(etag), last_modified: None }
}

/// What the server saw of one request.
#[derive(Clone, Debug)]
struct Seen {
    at: Instant,
    path: String,
    if_none_match: Option<String>,
    if_modified_since: Option<String>,
    authorization: Option<String>,
    status: u16,
}

struct State {
    default: Mutex<Reply>,
    script: Mutex<VecDeque<Reply>>,
    seen: Mutex<Vec<Seen>>,
    streamed: AtomicU64,
}

/// A running server; stops accepting when dropped.
struct Server {
    addr: SocketAddr,
    state: Arc<State>,
    task: JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

const CHUNK: [u8; 16 * 1024] = [b' '; 16 * 1024];

/// An endless body that counts what it hands out.
struct Endless(Arc<State>);

impl Body for Endless {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0.streamed.fetch_add(CHUNK.len() as u64, Ordering::SeqCst);
        Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(&CHUNK)))))
    }
}

type Answer = Response<BoxBody<Bytes, Infallible>>;

fn status_reply(status: u16) -> Answer {
    let mut r = Response::new(Full::new(Bytes::from_static(b"scripted")).boxed());
    *r.status_mut() = StatusCode::from_u16(status).unwrap();
    r
}

fn header(req: &Request<Incoming>, name: &str) -> Option<String> {
    req.headers().get(name).map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
}

async fn handle(state: Arc<State>, req: Request<Incoming>) -> Result<Answer, Infallible> {
    let reply = {
        let next = state.script.lock().unwrap().pop_front();
        next.unwrap_or_else(|| state.default.lock().unwrap().clone())
    };
    let if_none_match = header(&req, "if-none-match");
    let if_modified_since = header(&req, "if-modified-since");
    let answer = match &reply {
        Reply::Doc { body, etag, last_modified } => {
            let fresh = match etag {
                Some(tag) => if_none_match.as_deref() == Some(*tag),
                None => last_modified.is_some() && if_modified_since.as_deref() == *last_modified,
            };
            let mut r = if fresh {
                status_reply(304)
            } else {
                Response::new(Full::new(Bytes::from(body.clone())).boxed())
            };
            if let Some(tag) = etag {
                r.headers_mut().insert("etag", tag.parse().unwrap());
            }
            if let Some(lm) = last_modified {
                r.headers_mut().insert("last-modified", lm.parse().unwrap());
            }
            r
        }
        Reply::Status(s) => status_reply(*s),
        Reply::Hang => {
            tokio::time::sleep(Duration::from_secs(60)).await;
            status_reply(200)
        }
        Reply::Endless => Response::new(Endless(Arc::clone(&state)).boxed()),
        Reply::Redirect(to) => {
            let mut r = status_reply(302);
            r.headers_mut().insert("location", to.parse().unwrap());
            r
        }
    };
    state.seen.lock().unwrap().push(Seen {
        at: Instant::now(),
        path: req.uri().path().to_owned(),
        if_none_match,
        if_modified_since,
        authorization: header(&req, "authorization"),
        status: answer.status().as_u16(),
    });
    Ok(answer)
}

impl Server {
    async fn start(default: Reply) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(State {
            default: Mutex::new(default),
            script: Mutex::new(VecDeque::new()),
            seen: Mutex::new(Vec::new()),
            streamed: AtomicU64::new(0),
        });
        let task = {
            let state = Arc::clone(&state);
            tokio::spawn(async move {
                while let Ok((stream, _)) = listener.accept().await {
                    let state = Arc::clone(&state);
                    tokio::spawn(async move {
                        let service = service_fn(move |req| handle(Arc::clone(&state), req));
                        let _ = http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                }
            })
        };
        Server { addr, state, task }
    }

    fn url(&self) -> String {
        format!("http://{}/experiments.json", self.addr)
    }

    /// Answers every request from now on with `reply` (after the scripted ones).
    fn set(&self, reply: Reply) {
        *self.state.default.lock().unwrap() = reply;
    }

    /// Answers the next unscripted request with `reply`.
    fn push(&self, reply: Reply) {
        self.state.script.lock().unwrap().push_back(reply);
    }

    /// Requests answered so far (a hanging one counts once answered).
    fn seen(&self) -> Vec<Seen> {
        self.state.seen.lock().unwrap().clone()
    }

    fn count(&self) -> usize {
        self.state.seen.lock().unwrap().len()
    }

    fn streamed(&self) -> u64 {
        self.state.streamed.load(Ordering::SeqCst)
    }
}

fn settings(server: &Server) -> HttpSourceSettings {
    let mut s = HttpSourceSettings::new(server.url());
    s.poll_interval = Duration::from_millis(100);
    s.max_backoff = Duration::from_millis(400);
    s.request_timeout = Duration::from_secs(5);
    s
}

fn start(s: HttpSourceSettings) -> (ConfigStore, SourceGuard) {
    ConfigStore::start(HttpSource(s)).expect("the source starts")
}

/// Polls `cond` every 20 ms until it holds, failing after `WAIT`.
async fn eventually(what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !cond() {
        assert!(Instant::now() < deadline, "not within {WAIT:?}: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_load_resolves_ready_and_records_the_origin() {
    let server = Server::start(tagged(doc(2), "\"v1\"")).await;
    let mut s = settings(&server);
    s.headers.insert("Authorization".into(), "Bearer sesame".into());
    let (store, _guard) = start(s);
    let snap = store.ready(WAIT).await.expect("the first document loads");
    assert_eq!((snap.version, snap.config.len(), snap.file_size), (1, 2, doc(2).len() as u64));
    assert_eq!(snap.digest.len(), 64);
    match &snap.origin {
        Origin::Http { url, etag, last_modified, .. } => {
            assert_eq!(url, &server.url());
            assert_eq!(etag.as_deref(), Some("\"v1\""));
            assert_eq!(last_modified, &None);
        }
        other => panic!("unexpected origin {other:?}"),
    }
    assert_eq!(store.first_check(WAIT).await.unwrap().version, 1);
    let status = store.status();
    assert_eq!(status.source, server.url());
    assert_eq!(status.health, Health::Ready);
    assert_eq!(status.consecutive_failures, 0);
    assert!(status.checks >= 1 && status.last_check.is_some());
    let first = &server.seen()[0];
    assert_eq!(first.authorization.as_deref(), Some("Bearer sesame"));
    assert_eq!(first.if_none_match, None, "nothing accepted yet: not conditional");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_body_and_etag_make_a_new_version() {
    let server = Server::start(tagged(doc(1), "\"v1\"")).await;
    let (store, _guard) = start(settings(&server));
    store.ready(WAIT).await.unwrap();
    let mut changes = store.subscribe();
    server.set(tagged(doc(3), "\"v2\""));
    let deadline = Instant::now() + WAIT;
    while changes.borrow_and_update().version != Some(2) {
        tokio::time::timeout_at(deadline.into(), changes.changed())
            .await
            .expect("version 2 within the wait")
            .unwrap();
    }
    let snap = store.snapshot().unwrap();
    assert_eq!((snap.version, snap.config.len()), (2, 3));
    // The next requests are conditional on the new document.
    eventually("a request with If-None-Match \"v2\"", || {
        server.seen().iter().any(|r| r.if_none_match.as_deref() == Some("\"v2\""))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_matching_if_none_match_gets_304_and_keeps_the_version() {
    let server = Server::start(tagged(doc(2), "\"v1\"")).await;
    let (store, _guard) = start(settings(&server));
    store.ready(WAIT).await.unwrap();
    let checks = store.status().checks;
    eventually("three more requests", || server.count() >= 4).await;
    let seen = server.seen();
    for r in &seen[1..] {
        assert_eq!(r.if_none_match.as_deref(), Some("\"v1\""), "{r:?}");
        assert_eq!(r.status, 304, "{r:?}");
    }
    eventually("the 304s recorded as checks", || store.status().checks >= checks + 2).await;
    let status = store.status();
    assert_eq!(status.version, Some(1));
    assert_eq!(status.consecutive_failures, 0);
    assert_eq!(status.health, Health::Ready);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn if_modified_since_is_sent_when_the_server_gave_last_modified() {
    let lm = "Wed, 21 Oct 2015 07:28:00 GMT";
    let server =
        Server::start(Reply::Doc { body: doc(1), etag: None, last_modified: Some(lm) }).await;
    let (store, _guard) = start(settings(&server));
    let snap = store.ready(WAIT).await.unwrap();
    assert!(matches!(&snap.origin, Origin::Http { last_modified: Some(l), .. } if l == lm));
    eventually("a second request", || server.count() >= 2).await;
    let second = &server.seen()[1];
    assert_eq!(second.if_modified_since.as_deref(), Some(lm));
    assert_eq!(second.if_none_match, None);
    assert_eq!(second.status, 304);
    assert_eq!(store.status().version, Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_keep_the_last_good_snapshot_then_recover() {
    let server = Server::start(tagged(doc(2), "\"v1\"")).await;
    let (store, _guard) = start(settings(&server));
    store.ready(WAIT).await.unwrap();
    server.set(Reply::Status(500));
    eventually("two failures in a row", || store.status().consecutive_failures >= 2).await;
    let status = store.status();
    assert_eq!(status.health, Health::Stale);
    let error = status.last_error.unwrap();
    assert!(error.contains("HTTP 500") && error.contains(&server.url()), "{error}");
    assert!(status.last_error_at.is_some());
    let snap = store.snapshot().unwrap();
    assert_eq!((snap.version, snap.config.len()), (1, 2));
    // The server comes back with the same document: a 304, healthy again, same version.
    server.set(tagged(doc(2), "\"v1\""));
    eventually("recovery", || store.status().health == Health::Ready).await;
    let status = store.status();
    assert_eq!((status.version, status.consecutive_failures), (Some(1), 0));
    assert!(status.last_error.is_some(), "kept as history");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_bodies_keep_the_last_good_snapshot() {
    let server = Server::start(tagged(doc(2), "\"v1\"")).await;
    let (store, _guard) = start(settings(&server));
    store.ready(WAIT).await.unwrap();
    for (body, etag, expect) in [
        ("<html>oops</html>", "\"bad1\"", "not valid JSON"),
        ("[1, 2, 3]", "\"bad2\"", "JSON object"),
        ("", "\"bad3\"", "empty"),
    ] {
        let failures = store.status().consecutive_failures;
        server.set(tagged(body.to_owned(), etag));
        eventually("the garbage refused", || {
            let s = store.status();
            s.consecutive_failures > failures
                && s.last_error.as_deref().is_some_and(|e| e.contains(expect))
        })
        .await;
        assert_eq!(store.snapshot().unwrap().version, 1);
        assert_eq!(store.status().health, Health::Stale);
    }
    // Refused documents never become the validators: requests stay conditional on "v1".
    eventually("another request", || server.count() >= 6).await;
    assert!(
        server.seen().iter().skip(1).all(|r| r.if_none_match.as_deref() == Some("\"v1\"")),
        "{:?}",
        server.seen()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_bodies_are_refused_with_bounded_memory() {
    let server = Server::start(tagged(doc(1), "\"v1\"")).await;
    let mut s = settings(&server);
    s.max_file_size = 20_000;
    let (store, _guard) = start(s);
    store.ready(WAIT).await.unwrap();
    // Announced by Content-Length: refused before reading.
    let big = doc(200);
    assert!(big.len() > 20_000);
    server.set(tagged(big, "\"big\""));
    eventually("the announced size refused", || {
        store.status().last_error.is_some_and(|e| e.contains("(Content-Length), over the limit"))
    })
    .await;
    assert_eq!(store.snapshot().unwrap().version, 1);
    // Chunked, endless: abandoned past the limit.
    server.set(Reply::Endless);
    eventually("the endless body refused", || {
        store.status().last_error.is_some_and(|e| e.contains("more than 20000 bytes"))
    })
    .await;
    eventually("a few more endless answers", || {
        server.seen().iter().filter(|r| r.status == 200).count() >= 4
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let answers = server.seen().iter().filter(|r| r.status == 200).count().max(1) as u64;
    let streamed = server.streamed();
    // Each abandoned body costs the limit plus what the socket buffers, never more.
    assert!(streamed / answers < 8 << 20, "{streamed} bytes streamed for {answers} answers");
    let status = store.status();
    assert_eq!((status.version, status.health), (Some(1), Health::Stale));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_server_times_out_then_recovers() {
    let server = Server::start(Reply::Hang).await;
    let mut s = settings(&server);
    s.request_timeout = Duration::from_millis(300);
    let started = Instant::now();
    let (store, _guard) = start(s);
    let err = store.first_check(WAIT).await.unwrap_err();
    assert!(started.elapsed() >= Duration::from_millis(300), "{:?}", started.elapsed());
    let error = err.last_error.unwrap();
    assert!(error.contains("no complete answer within 300ms"), "{error}");
    eventually("a second timed-out request", || store.status().consecutive_failures >= 2).await;
    assert_eq!(store.status().health, Health::Empty);
    // The server answers again: recovered.
    server.set(tagged(doc(1), "\"v1\""));
    let snap = store.ready(WAIT).await.expect("recovers once the server answers");
    assert_eq!(snap.version, 1);
    assert_eq!(store.status().consecutive_failures, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consecutive_failures_back_off_and_success_resets() {
    let server = Server::start(Reply::Status(503)).await;
    let mut s = settings(&server);
    s.poll_interval = Duration::from_millis(50);
    s.max_backoff = Duration::from_millis(800);
    let (store, _guard) = start(s);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let seen = server.seen();
    // Without back-off: about 60 requests in 3 s; with it about 9.
    assert!(seen.len() >= 3 && seen.len() <= 20, "{} requests in 3 s", seen.len());
    let gaps: Vec<Duration> = seen.windows(2).map(|w| w[1].at - w[0].at).collect();
    let last = *gaps.last().unwrap();
    assert!(last >= Duration::from_millis(300), "gaps grow: {gaps:?}");
    assert!(last > gaps[0] * 2, "gaps grow: {gaps:?}");
    assert!(store.status().consecutive_failures >= 3);
    // Success resets the delay to poll_interval.
    server.set(tagged(doc(1), "\"v1\""));
    store.ready(WAIT).await.unwrap();
    let before = server.count();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = server.count() - before;
    assert!(after >= 5, "only {after} requests in 1 s after recovery");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_check_fails_fast_on_404_and_500() {
    for status in [404, 500] {
        let server = Server::start(Reply::Status(status)).await;
        let (store, _guard) = start(settings(&server));
        let started = Instant::now();
        let err = store.first_check(WAIT).await.unwrap_err();
        assert!(started.elapsed() < WAIT / 2, "fails fast");
        assert_eq!(err.waited, None);
        let error = err.last_error.clone().unwrap();
        assert!(error.contains(&format!("HTTP {status}")), "{error}");
        assert!(err.to_string().contains(&server.url()), "{err}");
        // A later success still makes the store ready.
        server.set(tagged(doc(1), "\"v1\""));
        assert_eq!(store.ready(WAIT).await.unwrap().version, 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_most_three_redirects_are_followed() {
    let server = Server::start(tagged(doc(1), "\"v1\"")).await;
    for to in ["/r1", "/r2", "/r3"] {
        server.push(Reply::Redirect(to));
    }
    let (store, _guard) = start(settings(&server));
    let snap = store.first_check(WAIT).await.expect("three redirects are followed");
    assert_eq!(snap.version, 1);
    let paths: Vec<String> = server.seen().iter().map(|r| r.path.clone()).collect();
    assert_eq!(paths[..4], ["/experiments.json", "/r1", "/r2", "/r3"]);
    // Four in a row fail the check.
    let failures = store.status().consecutive_failures;
    server.set(Reply::Redirect("/loop"));
    eventually("the redirect loop recorded", || store.status().consecutive_failures > failures)
        .await;
    let status = store.status();
    assert_eq!((status.version, status.health), (Some(1), Health::Stale));
    assert!(status.last_error.unwrap().contains("redirect"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_guard_stops_polling() {
    let server = Server::start(tagged(doc(1), "\"v1\"")).await;
    let mut s = settings(&server);
    s.poll_interval = Duration::from_millis(50);
    let (store, guard) = start(s);
    store.ready(WAIT).await.unwrap();
    eventually("a few polls", || server.count() >= 3).await;
    assert!(guard.reload_now());
    drop(guard);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let count = server.count();
    let checks = store.status().checks;
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(server.count(), count, "no request after the guard was dropped");
    assert_eq!(store.status().checks, checks);
    // The store keeps its last snapshot.
    assert_eq!(store.snapshot().unwrap().version, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_now_polls_at_once() {
    let server = Server::start(tagged(doc(1), "\"v1\"")).await;
    let mut s = settings(&server);
    s.poll_interval = Duration::from_secs(3600);
    s.max_backoff = Duration::from_secs(3600);
    let (store, guard) = start(s);
    store.ready(WAIT).await.unwrap();
    assert_eq!(server.count(), 1);
    server.set(tagged(doc(2), "\"v2\""));
    assert!(guard.reload_now());
    eventually("version 2 after reload_now", || store.status().version == Some(2)).await;
}

#[test]
fn starting_outside_a_runtime_is_an_error() {
    let source = HttpSource(HttpSourceSettings::new("http://127.0.0.1:9/x.json"));
    let store = ConfigStore::for_source(&source);
    match Box::new(source).start(store.clone()) {
        Err(SourceError::NoRuntime) => {}
        other => panic!("expected NoRuntime, got {other:?}"),
    }
    assert_eq!(store.status().checks, 0);
}

#[test]
fn settings_are_validated_by_field_without_quoting_values() {
    let ok = HttpSourceSettings::new("https://config.example/x.json");
    assert_eq!(ok.validate(), Ok(()));
    let field = |f: &dyn Fn(&mut HttpSourceSettings)| {
        let mut s = ok.clone();
        f(&mut s);
        let err = s.validate().unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
        err.field
    };
    assert_eq!(field(&|s| s.url = "ftp://hunter2@h/x".into()), "url");
    assert_eq!(field(&|s| s.url = "hunter2".into()), "url");
    assert_eq!(field(&|s| s.url = "file:///etc/hunter2".into()), "url");
    assert_eq!(field(&|s| s.poll_interval = Duration::ZERO), "poll_interval");
    assert_eq!(field(&|s| s.request_timeout = Duration::ZERO), "request_timeout");
    assert_eq!(field(&|s| s.connect_timeout = Duration::ZERO), "connect_timeout");
    assert_eq!(field(&|s| s.max_backoff = Duration::from_millis(1)), "max_backoff");
    assert_eq!(field(&|s| s.max_file_size = 0), "max_file_size");
    assert_eq!(field(&|s| s.max_json_values = 0), "max_json_values");
    assert_eq!(
        field(&|s| {
            s.headers.insert("Bad Name".into(), "v".into());
        }),
        "headers"
    );
    assert_eq!(
        field(&|s| {
            s.headers.insert("Authorization".into(), "hunter2\n".into());
        }),
        "headers"
    );
    assert_eq!(
        field(&|s| {
            s.headers.insert("If-None-Match".into(), "x".into());
        }),
        "headers"
    );
    // Starting refuses invalid settings the same way, runtime or not.
    let mut bad = ok.clone();
    bad.url = "gopher://h/".into();
    match ConfigStore::start(HttpSource(bad)) {
        Err(SourceError::Settings(e)) => assert_eq!(e.field, "url"),
        other => panic!("expected a settings error, got {other:?}"),
    }
}

#[test]
fn secrets_stay_out_of_debug_status_and_descriptions() {
    let mut s = HttpSourceSettings::new("https://user:hunter2@config.example/x.json?token=sesame");
    s.headers.insert("Authorization".into(), "Bearer opensesame".into());
    let shown = format!("{s:?}");
    for secret in ["hunter2", "sesame"] {
        assert!(!shown.contains(secret), "{shown}");
    }
    assert!(shown.contains("Authorization"), "{shown}");
    let source = HttpSource(s);
    let described = source.describe();
    assert_eq!(described, "https://<redacted>@config.example/x.json?<redacted>");
    assert!(!format!("{source:?}").contains("hunter2"));
    assert_eq!(ConfigStore::for_source(&source).status().source, described);
}

#[test]
fn settings_deserialize_with_human_durations_and_defaults() {
    let s: HttpSourceSettings = serde_json::from_str(
        r#"{"url": "https://h/x.json", "poll_interval": "30s", "request_timeout": "2s",
            "connect_timeout": "500ms", "max_backoff": "10m", "max_file_size": 1000,
            "max_json_values": 50, "headers": {"Authorization": "Bearer t"},
            "ca_file": "/etc/ca.pem"}"#,
    )
    .unwrap();
    assert_eq!(s.poll_interval, Duration::from_secs(30));
    assert_eq!(s.request_timeout, Duration::from_secs(2));
    assert_eq!(s.connect_timeout, Duration::from_millis(500));
    assert_eq!(s.max_backoff, Duration::from_secs(600));
    assert_eq!((s.max_file_size, s.max_json_values), (1000, 50));
    assert_eq!(s.headers["Authorization"], "Bearer t");
    let d: HttpSourceSettings = serde_json::from_str(r#"{"url": "https://h/x.json"}"#).unwrap();
    assert_eq!(d, HttpSourceSettings::new("https://h/x.json"));
    assert_eq!(d.poll_interval, Duration::from_secs(10));
    assert_eq!(d.request_timeout, Duration::from_secs(10));
    assert_eq!(d.connect_timeout, Duration::from_secs(5));
    assert_eq!(d.max_backoff, Duration::from_secs(300));
    assert_eq!(d.max_file_size, experiments_watch::DEFAULT_MAX_FILE_SIZE);
    assert_eq!(d.max_json_values, experiments_watch::DEFAULT_MAX_JSON_VALUES);
    assert!(serde_json::from_str::<HttpSourceSettings>(r#"{"url": "x", "unknown": 1}"#).is_err());
    assert!(serde_json::from_str::<HttpSourceSettings>("{}").is_err(), "url is required");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_ca_file_fails_the_start() {
    let mut s = HttpSourceSettings::new("https://h/x.json");
    s.ca_file = Some("/nonexistent/ca.pem".into());
    match ConfigStore::start(HttpSource(s)) {
        Err(SourceError::CaFile { path, .. }) => {
            assert_eq!(path.to_str(), Some("/nonexistent/ca.pem"))
        }
        other => panic!("expected a CA file error, got {other:?}"),
    }
    let dir = tempfile::tempdir().unwrap();
    let not_pem = dir.path().join("ca.pem");
    std::fs::write(&not_pem, "not a certificate").unwrap();
    let mut s = HttpSourceSettings::new("https://h/x.json");
    s.ca_file = Some(not_pem);
    assert!(matches!(ConfigStore::start(HttpSource(s)), Err(SourceError::CaFile { .. })));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_refused_is_a_network_failure() {
    // A port nothing listens on (bound, then closed).
    let addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let mut s = HttpSourceSettings::new(format!("http://{addr}/x.json"));
    s.poll_interval = Duration::from_millis(100);
    s.max_backoff = Duration::from_millis(200);
    let (store, _guard) = start(s);
    let err = store.first_check(WAIT).await.unwrap_err();
    let error = err.last_error.unwrap();
    assert!(error.contains(&addr.to_string()), "{error}");
    assert_eq!(store.status().health, Health::Empty);
    assert!(error.to_lowercase().contains("connect"), "{error}");
}
