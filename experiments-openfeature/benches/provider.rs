//! The cost of OpenFeature: a string evaluation through `open_feature::Client` and the
//! provider, against `RequestExperiments::variant` on the same experiment and user. Events
//! are discarded (sink `none`), so both sides measure evaluation only.
//!
//! ```text
//! cargo bench -p experiments-openfeature --bench provider
//! ```
//!
//! - `openfeature/fresh_request`: outside a request scope, so each evaluation builds a request
//!   (as `client.request()` does) besides the context conversion and the SDK's hook pipeline;
//! - `openfeature/provider_only`: the provider's `resolve_string_value` called directly (the
//!   part of `fresh_request` that is not the SDK's);
//! - `openfeature/in_scope`: inside `RequestExperiments::scope` (entering the scope is part of
//!   each iteration);
//! - `direct/fresh_request`: `client.request().variant(...)` per call;
//! - `direct/same_request`: `variant` on one request object.

use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use criterion::{Criterion, criterion_main};
use experiments_openfeature::ExperimentsProvider;
use experiments_sdk::{Config, ExperimentsClient, Inputs, SinkSettings};
use open_feature::provider::FeatureProvider;
use open_feature::{EvaluationContext, OpenFeature};

const EXPERIMENTS: &str = r#"{
  "checkout_redesign": {"id": 101, "name": "checkout_redesign", "owner": "payments",
    "type": "single_variant", "version": "3", "start_ts": 0, "stop_ts": 4102444800,
    "experiment": {"experiment_version": 3, "bucket_val": "user_id",
      "variants": [{"name": "control", "size": 0.5}, {"name": "one_page", "size": 0.5}],
      "targeting": {"EQ": {"field": "logged_in", "values": [true]}}}}
}"#;

/// Runs a future that never waits (no contention on the SDK's locks) to completion on the
/// current thread, without a runtime's overhead.
fn run<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
        std::hint::spin_loop();
    }
}

fn provider(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let client = rt.block_on(async {
        ExperimentsClient::builder()
            .config(Config::parse(EXPERIMENTS).unwrap())
            .sink_settings(SinkSettings::None)
            .build()
            .await
            .unwrap()
    });
    let flags = rt.block_on(async {
        let mut api = OpenFeature::default();
        api.set_provider(ExperimentsProvider::new(client.clone())).await;
        api.create_client()
    });
    let ctx = EvaluationContext::default()
        .with_targeting_key("t2_abc")
        .with_custom_field("logged_in", true);
    let inputs = Inputs::new().with("logged_in", true).with("user_id", "t2_abc");
    let expected =
        client.request().variant("checkout_redesign", &inputs).unwrap().map(str::to_owned);
    assert_eq!(
        run(flags.get_string_value("checkout_redesign", Some(&ctx), None)).ok(),
        expected,
        "both sides evaluate the same"
    );

    let mut g = c.benchmark_group("openfeature");
    g.bench_function("fresh_request", |b| {
        b.iter(|| run(flags.get_string_value(black_box("checkout_redesign"), Some(&ctx), None)))
    });
    // The provider alone, without the SDK's client (context merge, hooks, details copies).
    let provider = ExperimentsProvider::new(client.clone());
    g.bench_function("provider_only", |b| {
        b.iter(|| run(provider.resolve_string_value(black_box("checkout_redesign"), &ctx)))
    });
    let request = Arc::new(client.request());
    g.bench_function("in_scope", |b| {
        b.iter(|| {
            let eval = flags.get_string_value(black_box("checkout_redesign"), Some(&ctx), None);
            run(Arc::clone(&request).scope(eval))
        })
    });
    g.finish();

    let mut g = c.benchmark_group("direct");
    g.bench_function("fresh_request", |b| {
        b.iter(|| {
            let exp = client.request();
            exp.variant(black_box("checkout_redesign"), &inputs).unwrap().map(str::to_owned)
        })
    });
    let exp = client.request();
    g.bench_function("same_request", |b| {
        b.iter(|| exp.variant(black_box("checkout_redesign"), &inputs).unwrap().map(str::to_owned))
    });
    g.finish();
}

mod group {
    #![allow(missing_docs)]
    use super::*;
    criterion::criterion_group! {
        name = benches;
        config = Criterion::default()
            .warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(3));
        targets = provider
    }
}

criterion_main!(group::benches);
