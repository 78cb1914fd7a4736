//! The layer without axum: a `tower::ServiceBuilder` over a `service_fn` of
//! `http::Request<String>`.

mod common;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use common::{Collect, of};
use experiments_sdk::{Inputs, RequestExperiments};
use experiments_tower::{
    CorrelationHeader, CorrelationSource, ExperimentsContext, ExperimentsLayer, ExperimentsService,
    InputsExtractor, NoInputs, ResponseFuture,
};
use http::request::Parts;
use http::{HeaderName, Request, Response};
use tower::{Service, ServiceBuilder, ServiceExt};

/// What the inner service saw of its request.
#[derive(Debug, PartialEq)]
struct Seen {
    split: Option<String>,
    correlation_id: Option<String>,
    /// `RequestExperiments::current()` was the context's request, inside the future.
    current_is_context: bool,
    user_id: Option<serde_json::Value>,
}

async fn inner(req: Request<String>) -> Result<Response<Seen>, Infallible> {
    let ctx = req.extensions().get::<ExperimentsContext>().expect("the layer inserted it");
    let split = ctx.variant("split").unwrap().map(str::to_owned);
    assert_eq!(ctx.variant("split").unwrap().map(str::to_owned), split, "same answer");
    tokio::task::yield_now().await; // across an await point too
    let current = RequestExperiments::current().is_some_and(|c| Arc::ptr_eq(&c, ctx.request()));
    Ok(Response::new(Seen {
        split,
        correlation_id: ctx.correlation_id().map(str::to_owned),
        current_is_context: current,
        user_id: ctx.inputs().get("user_id").cloned(),
    }))
}

/// A user from `x-user-id`, as a named type rather than a closure.
#[derive(Clone)]
struct FromHeader(HeaderName);

impl InputsExtractor for FromHeader {
    fn inputs(&self, parts: &Parts) -> Inputs {
        match parts.headers.get(&self.0).and_then(|v| v.to_str().ok()) {
            Some(user) => Inputs::new().with("user_id", user),
            None => Inputs::new(),
        }
    }
}

fn request(headers: &[(&str, &str)]) -> Request<String> {
    let mut b = Request::builder().uri("/");
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(String::new()).unwrap()
}

fn assert_send_sync_clone<T: Send + Sync + Clone>() {}
fn assert_send<T: Send>() {}

#[test]
fn handles_are_shareable() {
    assert_send_sync_clone::<ExperimentsContext>();
    assert_send_sync_clone::<ExperimentsLayer>();
    assert_send_sync_clone::<
        ExperimentsService<tower::util::BoxCloneSyncService<(), (), ()>, NoInputs>,
    >();
    assert_send::<ResponseFuture<(), ()>>();
}

#[tokio::test]
async fn the_context_is_in_the_extensions_and_the_current_request_inside_the_future() {
    let sink = Arc::new(Collect::default());
    let (client, _dir) = common::client(Arc::clone(&sink)).await;
    let service = ServiceBuilder::new()
        .layer(
            ExperimentsLayer::new(client.clone())
                .inputs(FromHeader(HeaderName::from_static("x-user-id"))),
        )
        .service_fn(inner);
    assert!(RequestExperiments::current().is_none(), "no request outside the layer");

    let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let seen = service
        .clone()
        .oneshot(request(&[("x-user-id", "t2_1"), ("traceparent", tp), ("x-request-id", "r1")]))
        .await
        .unwrap()
        .into_body();
    let direct = client
        .request()
        .variant("split", &Inputs::new().with("user_id", "t2_1"))
        .unwrap()
        .map(str::to_owned);
    assert_eq!(
        seen,
        Seen {
            split: direct,
            correlation_id: Some("4bf92f3577b34da6a3ce929d0e0e4736".into()),
            current_is_context: true,
            user_id: Some("t2_1".into()),
        }
    );
    let seen =
        service.clone().oneshot(request(&[("x-request-id", "r2")])).await.unwrap().into_body();
    assert_eq!(
        (seen.correlation_id.as_deref(), seen.user_id, seen.split),
        (Some("r2"), None, None)
    );
    assert!(seen.current_is_context);
    let seen = service.oneshot(request(&[])).await.unwrap().into_body();
    assert_eq!(seen.correlation_id, None);
    assert!(RequestExperiments::current().is_none(), "scoped to the request's future");

    let report = client.shutdown(Duration::from_secs(5)).await.unwrap();
    assert_eq!(report.remaining, 0);
    let events = sink.events();
    // The direct request logged one choose without an id; the layer's first request one
    // (asked twice), the others none (no user_id, not bucketed).
    let chooses: Vec<_> = of(&events, "choose", "split").collect();
    assert_eq!(chooses.len(), 2, "{events:#?}");
    assert_eq!(
        chooses
            .iter()
            .filter(|e| e["correlation_id"] == "4bf92f3577b34da6a3ce929d0e0e4736")
            .count(),
        1
    );
}

#[tokio::test]
async fn variant_with_and_expose_share_the_request_dedupe_and_id() {
    let sink = Arc::new(Collect::default());
    let (client, _dir) = common::client(Arc::clone(&sink)).await;
    let service = ServiceBuilder::new()
        .layer(
            ExperimentsLayer::new(client.clone())
                .correlation(CorrelationSource::none().random_fallback(true))
                .inputs(|_: &Parts| Inputs::new().with("user_id", "t2_base")),
        )
        .service_fn(|req: Request<String>| async move {
            let mut ctx = req.extensions().get::<ExperimentsContext>().unwrap().clone();
            let other = Inputs::new().with("user_id", "t2_other");
            for _ in 0..3 {
                ctx.variant("rollout").unwrap();
                ctx.variant_with("rollout", &other).unwrap();
            }
            assert!(ctx.expose_with("rollout", Some("on"), &other));
            assert!(!ctx.expose("missing", None));
            // A clone with more inputs still shares the request's dedupe.
            ctx.inputs_mut().insert("app_name", "ios");
            ctx.variant("rollout").unwrap();
            assert_eq!(ctx.inputs().get("app_name"), Some(&"ios".into()));
            let base = req.extensions().get::<ExperimentsContext>().unwrap();
            assert_eq!(base.inputs().get("app_name"), None, "copy on write");
            Ok::<_, Infallible>(ctx.correlation_id().unwrap().to_owned())
        });
    let first = service.clone().oneshot(request(&[("x-request-id", "ignored")])).await.unwrap();
    let second = service.oneshot(request(&[])).await.unwrap();
    assert_eq!(first.len(), 36, "a random UUID, the header is not read");
    assert_ne!(first, second);
    let report = client.shutdown(Duration::from_secs(5)).await.unwrap();
    assert_eq!((report.remaining, report.counters.accepted, report.counters.delivered), (0, 6, 6));
    let events = sink.events();
    for id in [&first, &second] {
        let of_request: Vec<_> = events.iter().filter(|e| e["correlation_id"] == **id).collect();
        let users: Vec<_> = of_request
            .iter()
            .filter(|e| e["event_type"] == "choose")
            .map(|e| e["user_id"].as_str().unwrap())
            .collect();
        assert_eq!(users, ["t2_base", "t2_other"], "one choose per user per request");
        assert_eq!(of_request.len(), 3);
    }
}

#[tokio::test]
async fn readiness_is_the_inner_services_and_the_ready_one_is_called() {
    let (client, _dir) = common::client(Arc::new(Collect::default())).await;
    // ConcurrencyLimit panics when called without a permit, i.e. if the layer called a
    // service it did not poll ready.
    let (release, wait) = tokio::sync::watch::channel(false);
    let mut service = ServiceBuilder::new()
        .layer(ExperimentsLayer::new(client.clone()))
        .concurrency_limit(1)
        .service_fn(move |_req: Request<String>| {
            let mut wait = wait.clone();
            async move {
                let _ = wait.wait_for(|go| *go).await;
                Ok::<_, Infallible>(RequestExperiments::current().is_some())
            }
        });
    let first = service.ready().await.unwrap().call(request(&[]));
    let first = tokio::spawn(first);
    // The permit went with the first call: the service is not ready until it completes.
    let blocked = tokio::time::timeout(Duration::from_millis(100), service.ready()).await;
    assert!(blocked.is_err(), "ready while the only permit is in use");
    release.send(true).unwrap();
    assert!(first.await.unwrap().unwrap());
    for _ in 0..3 {
        assert!(service.ready().await.unwrap().call(request(&[])).await.unwrap());
    }
    client.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn custom_correlation_headers_in_order() {
    let (client, _dir) = common::client(Arc::new(Collect::default())).await;
    let layer = ExperimentsLayer::new(client.clone()).correlation_headers([
        CorrelationHeader::RequestId(HeaderName::from_static("x-correlation-id")),
        CorrelationHeader::traceparent(),
    ]);
    assert_eq!(layer.correlation_source().headers().len(), 2);
    let service =
        ServiceBuilder::new().layer(layer).service_fn(|req: Request<String>| async move {
            let ctx = req.extensions().get::<ExperimentsContext>().unwrap();
            Ok::<_, Infallible>(ctx.correlation_id().map(str::to_owned))
        });
    let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let id = |headers: &[(&str, &str)]| service.clone().oneshot(request(headers));
    assert_eq!(
        id(&[("x-correlation-id", "c-1"), ("traceparent", tp)]).await.unwrap().as_deref(),
        Some("c-1")
    );
    assert_eq!(
        id(&[("x-correlation-id", "bad id"), ("traceparent", tp)]).await.unwrap().as_deref(),
        Some("4bf92f3577b34da6a3ce929d0e0e4736")
    );
    assert_eq!(id(&[("x-request-id", "not-listed")]).await.unwrap(), None);
    client.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn each_request_binds_the_snapshot_current_when_it_arrived() {
    let (client, dir) = common::client(Arc::new(Collect::default())).await;
    let (release, wait) = tokio::sync::watch::channel(false);
    let (started, mut has_started) = tokio::sync::mpsc::unbounded_channel();
    let service = ServiceBuilder::new().layer(ExperimentsLayer::new(client.clone())).service_fn(
        move |req: Request<String>| {
            let (mut wait, started) = (wait.clone(), started.clone());
            async move {
                let _ = started.send(());
                let _ = wait.wait_for(|go| *go).await;
                let ctx = req.extensions().get::<ExperimentsContext>().unwrap();
                Ok::<_, Infallible>(ctx.request().version())
            }
        },
    );
    let early = tokio::spawn(service.clone().oneshot(request(&[])));
    has_started.recv().await.unwrap();
    // A new document version while the early request is in flight.
    let path = dir.path().join("experiments.json");
    std::fs::write(path.with_extension("tmp"), "{}").unwrap();
    std::fs::rename(path.with_extension("tmp"), &path).unwrap();
    client.reload_now();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while client.status().config.version != Some(2) && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    release.send(true).unwrap();
    let late = service.oneshot(request(&[])).await.unwrap();
    assert_eq!((early.await.unwrap().unwrap(), late), (Some(1), Some(2)));
    client.shutdown(Duration::from_secs(5)).await;
}
