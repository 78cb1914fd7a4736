//! The axum integration over real HTTP on loopback: a service built only from the example's
//! pattern (settings file, layer with an `x-user-id` inputs extractor, a handler taking
//! `ExperimentsContext`, `axum::serve` with a graceful shutdown, then `client.shutdown`).

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use common::{CONFIG, Collect, of};
use experiments_sdk::core::{Experiments, NoopHandler};
use experiments_sdk::{Config, ExperimentsClient, Inputs, RequestExperiments};
use experiments_tower::{ExperimentsContext, ExperimentsLayer, MissingExperimentsLayer};
use http::request::Parts;
use http::{HeaderValue, Request, StatusCode};
use tower::ServiceExt;

/// The example's inputs extractor.
fn user_inputs(parts: &Parts) -> Inputs {
    match parts.headers.get("x-user-id").and_then(|v| v.to_str().ok()) {
        Some(user) => Inputs::new().with("user_id", user).with("logged_in", true),
        None => Inputs::new().with("logged_in", false),
    }
}

/// The example's handler, plus a second experiment and what the task-local current request
/// is: `split` (asked twice), `rollout`, an expose of `split`, the correlation id.
async fn handler(exp: ExperimentsContext) -> String {
    let split = exp.variant("split").unwrap();
    let again = exp.variant("split").unwrap();
    assert_eq!(split, again);
    let rollout = exp.variant("rollout").unwrap();
    if split.is_some() {
        exp.expose("split", split);
    }
    let current = RequestExperiments::current().is_some_and(|c| Arc::ptr_eq(&c, exp.request()));
    format!(
        "{} {} {} {}",
        split.unwrap_or("-"),
        rollout.unwrap_or("-"),
        exp.correlation_id().unwrap_or("-"),
        current
    )
}

fn app(client: ExperimentsClient) -> Router {
    Router::new().route("/", get(handler)).layer(ExperimentsLayer::new(client).inputs(user_inputs))
}

/// A served app on 127.0.0.1:0: its base URL, the shutdown trigger, the server task.
async fn serve(
    app: Router,
) -> (String, tokio::sync::oneshot::Sender<()>, tokio::task::JoinHandle<std::io::Result<()>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = rx.await;
            })
            .await
    });
    (url, tx, server)
}

/// How request `r` of user `u` carries its correlation id, and the id expected in events.
fn correlation(u: usize, r: usize) -> (Vec<(&'static str, String)>, Option<String>) {
    let trace = format!("{:016x}{:016x}", u + 1, r + 1);
    let tp = format!("00-{trace}-00f067aa0ba902b7-01");
    let rid = format!("req-{u}-{r}");
    match (u + r) % 4 {
        0 => (vec![("traceparent", tp)], Some(trace)),
        1 => (vec![("x-request-id", rid.clone())], Some(rid)),
        2 => (vec![("x-request-id", rid), ("traceparent", tp)], Some(trace)),
        _ => (vec![], None),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_http_requests_match_direct_evaluation_and_every_event_is_delivered() {
    const USERS: usize = 40;
    const REQUESTS_PER_USER: usize = 2;
    let sink = Arc::new(Collect::default());
    let (client, _dir) = common::client(Arc::clone(&sink)).await;
    let (url, shutdown, server) = serve(app(client.clone())).await;

    // Direct evaluation, same config, same inputs, no events.
    let config = Config::parse(CONFIG).unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    let mut direct = Experiments::new(&config, now.as_secs_f64(), NoopHandler);
    let mut expected = HashMap::new();
    for u in 0..USERS {
        let inputs = Inputs::new().with("user_id", format!("t2_{u}")).with("logged_in", true);
        let split = direct.variant("split", &inputs, None).unwrap().unwrap().to_owned();
        let rollout = direct.variant("rollout", &inputs, None).unwrap().unwrap().to_owned();
        expected.insert(u, (split, rollout));
    }
    assert!(
        expected.values().any(|(s, _)| s == "a") && expected.values().any(|(s, _)| s == "b"),
        "both variants occur"
    );

    let http = reqwest::Client::new();
    let mut tasks = tokio::task::JoinSet::new();
    for u in 0..USERS {
        for r in 0..REQUESTS_PER_USER {
            let (http, url) = (http.clone(), url.clone());
            tasks.spawn(async move {
                let (headers, id) = correlation(u, r);
                let mut req = http.get(&url).header("x-user-id", format!("t2_{u}"));
                for (name, value) in headers {
                    req = req.header(name, value);
                }
                let resp = req.send().await.unwrap();
                assert_eq!(resp.status(), StatusCode::OK);
                (u, id, resp.text().await.unwrap())
            });
        }
    }
    let mut requests = 0;
    while let Some(done) = tasks.join_next().await {
        let (u, id, body) = done.unwrap();
        let (split, rollout) = &expected[&u];
        let id = id.as_deref().unwrap_or("-");
        assert_eq!(body, format!("{split} {rollout} {id} true"), "user {u}");
        requests += 1;
    }
    assert_eq!(requests, USERS * REQUESTS_PER_USER);

    // Graceful shutdown of the server, then of the client: every event delivered.
    shutdown.send(()).unwrap();
    server.await.unwrap().unwrap();
    let report = client.shutdown(Duration::from_secs(10)).await.unwrap();
    let c = &report.counters;
    assert_eq!(report.remaining, 0);
    assert_eq!((c.accepted, c.delivered, c.dropped.total()), (c.delivered, c.accepted, 0));
    let events = sink.events();
    // Per request: one choose per experiment (`split` was asked twice), one expose.
    assert_eq!(c.accepted, (requests * 3) as u64);
    assert_eq!(events.len() as u64, c.delivered);

    for u in 0..USERS {
        let user = format!("t2_{u}");
        let (split, _) = &expected[&u];
        for experiment in ["split", "rollout"] {
            let chooses: Vec<_> =
                of(&events, "choose", experiment).filter(|e| e["user_id"] == *user).collect();
            assert_eq!(chooses.len(), REQUESTS_PER_USER, "{user} {experiment}: one per request");
        }
        for e in of(&events, "choose", "split").filter(|e| e["user_id"] == *user) {
            assert_eq!(e["variant"], **split);
        }
        for r in 0..REQUESTS_PER_USER {
            let Some(id) = correlation(u, r).1 else { continue };
            let of_request: Vec<_> = events.iter().filter(|e| e["correlation_id"] == *id).collect();
            assert_eq!(of_request.len(), 3, "{id}: choose split, choose rollout, expose split");
            assert!(of_request.iter().all(|e| e["user_id"] == *user), "{id}");
            for experiment in ["split", "rollout"] {
                let n = of(&events, "choose", experiment)
                    .filter(|e| e["correlation_id"] == *id)
                    .count();
                assert_eq!(n, 1, "{id} {experiment}");
            }
        }
    }
    let uncorrelated = (0..USERS)
        .flat_map(|u| (0..REQUESTS_PER_USER).map(move |r| correlation(u, r).1))
        .filter(Option::is_none)
        .count();
    assert!(uncorrelated > 0);
    assert_eq!(events.iter().filter(|e| e["correlation_id"].is_null()).count(), uncorrelated * 3);
}

#[tokio::test]
async fn bad_header_values_over_http_are_skipped_without_failing_the_request() {
    let sink = Arc::new(Collect::default());
    let (client, _dir) = common::client(Arc::clone(&sink)).await;
    let (url, shutdown, server) = serve(app(client.clone())).await;
    let http = reqwest::Client::new();
    let non_utf8 = || HeaderValue::from_bytes(b"\xff\xfe\x80 not utf-8").unwrap();
    let latin = || HeaderValue::from_bytes("caf\u{e9}".as_bytes()).unwrap();
    let huge = || HeaderValue::from_str(&"a".repeat(16 * 1024)).unwrap();
    let short_tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7";
    // (x-user-id, traceparent, x-request-id, expected correlation id)
    let cases: Vec<(HeaderValue, HeaderValue, HeaderValue, &str)> = vec![
        (non_utf8(), non_utf8(), non_utf8(), "-"),
        (latin(), latin(), latin(), "-"),
        (huge(), huge(), huge(), "-"),
        (non_utf8(), HeaderValue::from_static(short_tp), huge(), "-"),
        (non_utf8(), HeaderValue::from_static(short_tp), HeaderValue::from_static("r-1"), "r-1"),
        (
            HeaderValue::from_static(""),
            HeaderValue::from_static(""),
            HeaderValue::from_static(""),
            "-",
        ),
    ];
    for (user, tp, rid, id) in cases {
        let resp = http
            .get(&url)
            .header("x-user-id", user.clone())
            .header("traceparent", tp)
            .header("x-request-id", rid)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "{user:?}");
        let body = resp.text().await.unwrap();
        assert!(body.ends_with(&format!(" {id} true")), "{user:?}: {body}");
        if user.to_str().is_err() {
            // An unreadable user is no user: not bucketed anywhere.
            assert_eq!(body, format!("- - {id} true"));
        } else {
            assert!(!body.starts_with("- "), "a text user id is bucketed: {body}");
        }
    }
    shutdown.send(()).unwrap();
    server.await.unwrap().unwrap();
    let report = client.shutdown(Duration::from_secs(10)).await.unwrap();
    assert_eq!(report.remaining, 0);
    let events = sink.events();
    assert!(events.iter().all(|e| e["correlation_id"].is_null() || e["correlation_id"] == "r-1"));
    assert!(events.iter().all(|e| e["user_id"] != "caf\u{e9}"));
}

#[tokio::test]
async fn a_route_outside_the_layer_answers_500_saying_why() {
    async fn optional(exp: Option<ExperimentsContext>) -> &'static str {
        if exp.is_some() { "some" } else { "none" }
    }
    let app = Router::new().route("/", get(handler)).route("/optional", get(optional));
    let resp = app.clone().oneshot(Request::get("/").body(Body::empty()).unwrap()).await.unwrap();
    assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let body = axum::body::to_bytes(resp.into_body(), 1 << 16).await.unwrap();
    assert_eq!(body, MissingExperimentsLayer::MESSAGE.as_bytes());
    assert!(MissingExperimentsLayer::MESSAGE.contains("ExperimentsLayer"));

    let resp = app.oneshot(Request::get("/optional").body(Body::empty()).unwrap()).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(axum::body::to_bytes(resp.into_body(), 1 << 16).await.unwrap(), "none");

    // Behind the layer, the optional form finds the context.
    let sink = Arc::new(Collect::default());
    let (client, _dir) = common::client(sink).await;
    let app = Router::new()
        .route("/optional", get(optional))
        .layer(ExperimentsLayer::new(client.clone()));
    let resp = app.oneshot(Request::get("/optional").body(Body::empty()).unwrap()).await.unwrap();
    assert_eq!(axum::body::to_bytes(resp.into_body(), 1 << 16).await.unwrap(), "some");
    client.shutdown(Duration::from_secs(5)).await;
}
