//! The per-request overhead of `ExperimentsLayer`: one `tower::Service` call (readiness,
//! call, the response future polled to completion) on a prebuilt `http::Request<()>` that
//! carries a `traceparent` and an `x-user-id`, every variant evaluating one experiment:
//!
//! - `inner/shared_request`: the inner service alone, evaluating on one `RequestExperiments`
//!   built once (the evaluation and the call, no per-request object);
//! - `inner/own_request`: the inner service alone, starting its own `RequestExperiments` and
//!   inputs per request (the glue a service writes without the layer, minus the
//!   correlation id);
//! - `layer`: the same inner service through the layer (correlation id from `traceparent`,
//!   inputs from `x-user-id`, the context in the extensions, the task-local scope).
//!
//! No event pipeline (`sink: none`), so events cost nothing here. mimalloc, as the xtask
//! benches and services that care about the request path use.
//! `cargo bench -p experiments-tower --bench layer`.

use std::convert::Infallible;
use std::future::{Future, Ready, ready};
use std::hint::black_box;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use criterion::{BatchSize, Criterion, criterion_main};
use experiments_sdk::{Config, ExperimentsClient, Inputs, RequestExperiments, SinkSettings};
use experiments_tower::{ExperimentsContext, ExperimentsLayer};
use http::Request;
use http::request::Parts;
use tower::{Layer, Service};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const CONFIG: &str = r#"{"split": {"id": 4, "name": "split", "owner": "bench",
  "type": "single_variant", "version": "1", "start_ts": 0, "stop_ts": 4102444800,
  "experiment": {"experiment_version": 1, "bucket_val": "user_id",
   "variants": [{"name": "a", "size": 0.5}, {"name": "b", "size": 0.5}]}}}"#;

/// How the inner service gets its experiments object when no layer gave it one.
#[derive(Clone)]
enum Fallback {
    /// One object for every request.
    Shared(Arc<RequestExperiments>, Inputs),
    /// A fresh object and inputs per request.
    PerRequest(ExperimentsClient),
}

/// The inner service: evaluates `split` with the layer's context when there is one, else
/// as its fallback says.
#[derive(Clone)]
struct Inner(Fallback);

impl Service<Request<()>> for Inner {
    type Response = bool;
    type Error = Infallible;
    type Future = Ready<Result<bool, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<()>) -> Self::Future {
        let bucketed = match (req.extensions().get::<ExperimentsContext>(), &self.0) {
            (Some(ctx), _) => ctx.variant("split").ok().flatten().is_some(),
            (None, Fallback::Shared(exp, inputs)) => {
                exp.variant("split", inputs).ok().flatten().is_some()
            }
            (None, Fallback::PerRequest(client)) => {
                let exp = client.request();
                let inputs = user_inputs(req.headers());
                exp.variant("split", &inputs).ok().flatten().is_some()
            }
        };
        ready(Ok(bucketed))
    }
}

fn user_inputs(headers: &http::HeaderMap) -> Inputs {
    match headers.get("x-user-id").and_then(|v| v.to_str().ok()) {
        Some(user) => Inputs::new().with("user_id", user),
        None => Inputs::new(),
    }
}

fn request() -> Request<()> {
    Request::builder()
        .uri("/checkout")
        .header("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
        .header("x-user-id", "t2_abc")
        .header("accept", "text/html")
        .body(())
        .expect("request")
}

/// One call as a server makes it: readiness, call, the future polled until it completes
/// (every future here completes on its first poll).
fn call_once<S: Service<Request<()>>>(svc: &mut S, req: Request<()>) -> S::Response
where
    S::Error: std::fmt::Debug,
{
    let mut cx = Context::from_waker(Waker::noop());
    match svc.poll_ready(&mut cx) {
        Poll::Ready(r) => r.expect("ready"),
        Poll::Pending => panic!("not ready"),
    }
    let mut fut = pin!(svc.call(req));
    match fut.as_mut().poll(&mut cx) {
        Poll::Ready(r) => r.expect("response"),
        Poll::Pending => panic!("pending"),
    }
}

fn layer(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let client = rt.block_on(async {
        ExperimentsClient::builder()
            .config(Config::parse(CONFIG).expect("config"))
            .sink_settings(SinkSettings::None)
            .build()
            .await
            .expect("client")
    });
    let shared = Fallback::Shared(Arc::new(client.request()), user_inputs(request().headers()));
    let mut g = c.benchmark_group("layer");

    let mut svc = Inner(shared);
    assert!(call_once(&mut svc, request()));
    g.bench_function("inner/shared_request", |b| {
        b.iter_batched(request, |req| black_box(call_once(&mut svc, req)), BatchSize::SmallInput)
    });

    let mut svc = Inner(Fallback::PerRequest(client.clone()));
    assert!(call_once(&mut svc, request()));
    g.bench_function("inner/own_request", |b| {
        b.iter_batched(request, |req| black_box(call_once(&mut svc, req)), BatchSize::SmallInput)
    });

    let layer =
        ExperimentsLayer::new(client.clone()).inputs(|parts: &Parts| user_inputs(&parts.headers));
    // The fallback is never used behind the layer.
    let mut svc = layer.layer(Inner(Fallback::PerRequest(client)));
    assert!(call_once(&mut svc, request()));
    g.bench_function("layer", |b| {
        b.iter_batched(request, |req| black_box(call_once(&mut svc, req)), BatchSize::SmallInput)
    });
    g.finish();
}

mod group {
    #![allow(missing_docs)]
    criterion::criterion_group!(benches, super::layer);
}
criterion_main!(group::benches);
