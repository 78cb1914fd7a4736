//! A real HTTP collector on loopback, for tests and benchmarks (feature `collector`): it
//! verifies the signature, un-gzips, decodes and counts events (by uuid, so duplicates show),
//! and can be told to misbehave: answer an error status, ask to retry later, hang, drop
//! the connection, redirect elsewhere, or answer with a body that never ends.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::io::Read;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Bytes, Frame, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::signature;
use experiments_events::Encoding;

/// How the collector answers one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Behavior {
    /// Store the events, answer 200.
    Accept,
    /// Answer this status without storing.
    Status(u16),
    /// Answer this status with `Retry-After: <seconds>`.
    RetryAfter(u16, u64),
    /// Wait this long, then answer 200 without storing (the client has given up by then).
    Hang(Duration),
    /// Close the connection without answering.
    Drop,
    /// Answer this (3xx) status with `Location: /moved`, without storing. Requests to
    /// `/moved` are answered 200 whatever they carry and never stored: a landing page that
    /// would swallow a batch if the client followed the redirect
    /// ([`Collector::followed_redirects`] counts them).
    Redirect(u16),
    /// Answer this status with a body that never ends (64 KiB chunks for as long as the
    /// client reads; [`Collector::response_bytes`] counts them), without storing.
    EndlessBody(u16),
}

/// The path [`Behavior::Redirect`] points to.
const MOVED_PATH: &str = "/moved";

/// One chunk of an endless body: shared, so the collector allocates nothing per chunk.
static ENDLESS_CHUNK: [u8; 64 * 1024] = [b'x'; 64 * 1024];

/// A response body that yields [`ENDLESS_CHUNK`] forever and counts what it handed out.
struct Endless(Arc<State>);

impl Body for Endless {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0.response_bytes.fetch_add(ENDLESS_CHUNK.len() as u64, Ordering::SeqCst);
        Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(&ENDLESS_CHUNK)))))
    }
}

/// What the collector answers with.
type Reply = Response<BoxBody<Bytes, Infallible>>;

#[derive(Default)]
struct State {
    key_name: String,
    secret: Vec<u8>,
    script: Mutex<VecDeque<Behavior>>,
    default: Mutex<Option<Behavior>>,
    seen: Mutex<HashMap<String, usize>>,
    events: Mutex<Vec<Value>>,
    /// Whether decoded events are kept for [`Collector::events`] (on by default).
    drop_events: std::sync::atomic::AtomicBool,
    requests: AtomicU64,
    bad_signatures: AtomicU64,
    wire_bytes: AtomicU64,
    body_bytes: AtomicU64,
    followed_redirects: AtomicU64,
    response_bytes: AtomicU64,
    /// When set, bodies of any other shape are refused with 400 (see
    /// [`Collector::accept_only`]).
    accept_only: Mutex<Option<Encoding>>,
    wrong_format: AtomicU64,
}

/// A running collector. Stops when dropped.
pub struct Collector {
    addr: SocketAddr,
    state: Arc<State>,
    server: JoinHandle<()>,
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl Collector {
    /// Starts a collector on `127.0.0.1` (any free port) expecting signatures by
    /// `key_name` with `secret`.
    pub async fn start(key_name: &str, secret: &[u8]) -> std::io::Result<Collector> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State {
            key_name: key_name.to_owned(),
            secret: secret.to_owned(),
            ..State::default()
        });
        let server = {
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
        Ok(Collector { addr, state, server })
    }

    /// The endpoint to configure in the sink.
    pub fn url(&self) -> String {
        format!("http://{}/v2", self.addr)
    }

    /// Answers the next requests with `behaviors`, in order, then with the default.
    pub fn script(&self, behaviors: impl IntoIterator<Item = Behavior>) {
        self.state.script.lock().unwrap_or_else(|p| p.into_inner()).extend(behaviors);
    }

    /// How requests are answered once the script is done (`Accept` unless set).
    pub fn set_default(&self, behavior: Behavior) {
        *self.state.default.lock().unwrap_or_else(|p| p.into_inner()) = Some(behavior);
    }

    /// Keep decoded events for [`Collector::events`] (default) or only count them (for
    /// benchmarks, so the collector's own bookkeeping stays cheap).
    pub fn keep_events(&self, keep: bool) {
        self.state.drop_events.store(!keep, Ordering::SeqCst);
    }

    /// The stored events, decoded, in arrival order (duplicates included).
    pub fn events(&self) -> Vec<Value> {
        self.state.events.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Distinct events stored.
    pub fn distinct(&self) -> usize {
        self.state.seen.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Events stored more than once (at-least-once delivery shows here).
    pub fn duplicates(&self) -> usize {
        self.state.seen.lock().unwrap_or_else(|p| p.into_inner()).values().map(|n| n - 1).sum()
    }

    /// Requests received.
    pub fn requests(&self) -> u64 {
        self.state.requests.load(Ordering::SeqCst)
    }

    /// Requests whose signature did not match (answered 403).
    pub fn bad_signatures(&self) -> u64 {
        self.state.bad_signatures.load(Ordering::SeqCst)
    }

    /// Body bytes received on the wire (compressed when gzip is on).
    pub fn wire_bytes(&self) -> u64 {
        self.state.wire_bytes.load(Ordering::SeqCst)
    }

    /// Uncompressed body bytes received.
    pub fn body_bytes(&self) -> u64 {
        self.state.body_bytes.load(Ordering::SeqCst)
    }

    /// Refuses (HTTP 400, counted by [`Collector::wrong_format`]) every body that is not in
    /// `encoding`: a JSON array of events for `json`, a v2 Thrift-JSON batch for `v2` — what
    /// a real v2 collector does with a body it cannot read.
    pub fn accept_only(&self, encoding: Encoding) {
        *self.state.accept_only.lock().unwrap_or_else(|p| p.into_inner()) = Some(encoding);
    }

    /// Bodies refused by [`Collector::accept_only`].
    pub fn wrong_format(&self) -> u64 {
        self.state.wrong_format.load(Ordering::SeqCst)
    }

    /// Requests that arrived at the target of a [`Behavior::Redirect`] (a client that
    /// follows redirects shows here; they also count in [`Collector::requests`]).
    pub fn followed_redirects(&self) -> u64 {
        self.state.followed_redirects.load(Ordering::SeqCst)
    }

    /// Bytes of [`Behavior::EndlessBody`] bodies handed to connections so far: what a client
    /// read, plus at most what the socket and hyper buffer.
    pub fn response_bytes(&self) -> u64 {
        self.state.response_bytes.load(Ordering::SeqCst)
    }
}

fn status_code(status: u16) -> StatusCode {
    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

fn reply(status: u16, text: &str) -> Reply {
    let mut r = Response::new(Full::new(Bytes::from(text.to_owned())).boxed());
    *r.status_mut() = status_code(status);
    r
}

/// Where an event of one encoding keeps its uuid.
type UuidOf = fn(&Value) -> Option<&str>;

/// The events of a body and their uuids, if the body is in `only` (when given).
fn decode(body: &[u8], only: Option<Encoding>) -> Result<Vec<(String, Value)>, Refusal> {
    let doc: Value =
        serde_json::from_slice(body).map_err(|e| Refusal::Invalid(format!("not JSON: {e}")))?;
    let shape = match doc {
        Value::Array(_) => Encoding::Json,
        _ => Encoding::V2,
    };
    if only.is_some_and(|only| only != shape) {
        return Err(Refusal::WrongFormat(shape));
    }
    decode_doc(doc).map_err(Refusal::Invalid)
}

/// Why a body was not accepted.
enum Refusal {
    /// A body of another encoding than [`Collector::accept_only`] names.
    WrongFormat(Encoding),
    /// Not a batch of events.
    Invalid(String),
}

fn decode_doc(doc: Value) -> Result<Vec<(String, Value)>, String> {
    let (events, uuid_of): (Vec<Value>, UuidOf) = match doc {
        Value::Array(items) => (items, |e| e["uuid"].as_str()),
        Value::Object(mut m) => {
            let lst = match m.remove("1") {
                Some(Value::Object(mut one)) => match one.remove("lst") {
                    Some(Value::Array(lst)) => lst,
                    _ => return Err("no 1.lst".into()),
                },
                _ => return Err("no 1.lst".into()),
            };
            let n = lst.get(1).and_then(Value::as_u64).ok_or("no element count")? as usize;
            if lst.first().and_then(Value::as_str) != Some("rec") || lst.len() != n + 2 {
                return Err(format!(
                    "bad list header for {} elements",
                    lst.len().saturating_sub(2)
                ));
            }
            (lst.into_iter().skip(2).collect(), |e| e["6"]["str"].as_str())
        }
        _ => return Err("neither a list nor a v2 batch".into()),
    };
    events
        .into_iter()
        .map(|e| match uuid_of(&e).map(str::to_owned) {
            Some(u) => Ok((u, e)),
            None => Err("event without uuid".to_owned()),
        })
        .collect()
}

/// `Err` makes hyper close the connection without answering (`Behavior::Drop`).
async fn handle(state: Arc<State>, req: Request<Incoming>) -> Result<Reply, std::io::Error> {
    state.requests.fetch_add(1, Ordering::SeqCst);
    if req.uri().path() == MOVED_PATH {
        state.followed_redirects.fetch_add(1, Ordering::SeqCst);
        return Ok(reply(200, "landing page"));
    }
    let behavior = {
        let next = state.script.lock().unwrap_or_else(|p| p.into_inner()).pop_front();
        next.or(*state.default.lock().unwrap_or_else(|p| p.into_inner()))
            .unwrap_or(Behavior::Accept)
    };
    if behavior == Behavior::Drop {
        return Err(std::io::Error::new(std::io::ErrorKind::ConnectionAborted, "scripted drop"));
    }
    let gzip = req.headers().get("content-encoding").is_some_and(|v| v == "gzip");
    let sig = req.headers().get("x-signature").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let wire = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return Ok(reply(400, "unreadable body")),
    };
    state.wire_bytes.fetch_add(wire.len() as u64, Ordering::SeqCst);
    let body = if gzip {
        let mut out = Vec::new();
        if flate2::read::GzDecoder::new(&wire[..]).read_to_end(&mut out).is_err() {
            return Ok(reply(400, "bad gzip"));
        }
        out
    } else {
        wire.to_vec()
    };
    state.body_bytes.fetch_add(body.len() as u64, Ordering::SeqCst);
    if sig.as_deref() != Some(signature(&state.key_name, &state.secret, &body).as_str()) {
        state.bad_signatures.fetch_add(1, Ordering::SeqCst);
        return Ok(reply(403, "bad signature"));
    }
    match behavior {
        Behavior::Accept => {}
        Behavior::Status(s) => return Ok(reply(s, "scripted failure")),
        Behavior::RetryAfter(s, secs) => {
            let mut r = reply(s, "slow down");
            if let Ok(v) = secs.to_string().parse() {
                r.headers_mut().insert("retry-after", v);
            }
            return Ok(r);
        }
        Behavior::Hang(d) => {
            tokio::time::sleep(d).await;
            return Ok(reply(200, "too late"));
        }
        Behavior::Drop => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionAborted,
                "scripted drop",
            ));
        }
        Behavior::Redirect(s) => {
            let mut r = reply(s, "moved");
            r.headers_mut().insert("location", hyper::header::HeaderValue::from_static(MOVED_PATH));
            return Ok(r);
        }
        Behavior::EndlessBody(s) => {
            let mut r = Response::new(Endless(Arc::clone(&state)).boxed());
            *r.status_mut() = status_code(s);
            return Ok(r);
        }
    }
    let only = *state.accept_only.lock().unwrap_or_else(|p| p.into_inner());
    match decode(&body, only) {
        Ok(events) => {
            let mut seen = state.seen.lock().unwrap_or_else(|p| p.into_inner());
            let mut stored = state.events.lock().unwrap_or_else(|p| p.into_inner());
            let keep = !state.drop_events.load(Ordering::SeqCst);
            for (uuid, e) in events {
                *seen.entry(uuid).or_default() += 1;
                if keep {
                    stored.push(e);
                }
            }
            Ok(reply(200, "ok"))
        }
        Err(Refusal::WrongFormat(shape)) => {
            state.wrong_format.fetch_add(1, Ordering::SeqCst);
            Ok(reply(400, &format!("this collector reads only {only:?} bodies, got {shape:?}")))
        }
        Err(Refusal::Invalid(e)) => Ok(reply(422, &e)),
    }
}
