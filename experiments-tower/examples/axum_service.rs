//! An axum service with experiments: one [`ExperimentsClient`] from a settings document, the
//! [`ExperimentsLayer`] giving every request its [`ExperimentsContext`] (the user from the
//! `x-user-id` header, the correlation id from `traceparent` or `x-request-id`), a handler
//! that evaluates and exposes, a graceful shutdown on Ctrl-C, then the client's shutdown
//! delivering the queued events.
//!
//! ```text
//! cargo run -p experiments-tower --example axum_service [SETTINGS.json] [ADDR]
//! curl -H 'x-user-id: t2_alice' -H 'x-request-id: req-1' http://127.0.0.1:3000/
//! ```
//!
//! Without a settings path, a temporary directory gets an inline `experiments.json` and a
//! `settings.json` naming it with the stdout sink. Events go to stdout, the rest to stderr.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use experiments_sdk::{ExperimentsClient, Inputs};
use experiments_tower::{ExperimentsContext, ExperimentsLayer};
use http::request::Parts;

const EXPERIMENTS: &str = r#"{
  "checkout_redesign": {"id": 101, "name": "checkout_redesign", "owner": "payments",
    "type": "single_variant", "version": "3", "start_ts": 0, "stop_ts": 4102444800,
    "experiment": {"experiment_version": 3, "bucket_val": "user_id",
      "variants": [{"name": "control", "size": 0.5}, {"name": "one_page", "size": 0.5}]}}
}"#;
const SETTINGS: &str = r#"{"config": {"path": "experiments.json"}, "sink": "stdout"}"#;

/// The experiment the handler evaluates.
const EXPERIMENT: &str = "checkout_redesign";

/// Base inputs of a request: its `x-user-id` header (when it is text) as `user_id`.
fn user_inputs(parts: &Parts) -> Inputs {
    match parts.headers.get("x-user-id").and_then(|v| v.to_str().ok()) {
        Some(user) => Inputs::new().with("user_id", user).with("logged_in", true),
        None => Inputs::new().with("logged_in", false),
    }
}

/// Evaluates the experiment for the request's user, exposes the variant the user sees,
/// answers with it.
async fn checkout(exp: ExperimentsContext) -> String {
    let variant = match exp.variant(EXPERIMENT) {
        Ok(variant) => variant,
        Err(e) => return format!("{EXPERIMENT}: error: {e}\n"),
    };
    // Asking again in the same request logs no second `choose` event.
    let again = exp.variant(EXPERIMENT).ok().flatten();
    debug_assert_eq!(variant, again);
    if variant.is_some() {
        exp.expose(EXPERIMENT, variant);
    }
    format!("{EXPERIMENT}={}\n", variant.unwrap_or("-"))
}

/// The application: routes, then the experiments layer over all of them.
fn app(client: ExperimentsClient) -> Router {
    Router::new().route("/", get(checkout)).layer(ExperimentsLayer::new(client).inputs(user_inputs))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let settings = args.next().filter(|a| !a.is_empty());
    let addr: SocketAddr = args.next().as_deref().unwrap_or("127.0.0.1:3000").parse()?;

    // Kept alive until exit: the watcher follows the file in it.
    let _dir;
    let settings = match settings {
        Some(path) => std::path::PathBuf::from(path),
        None => {
            let dir = tempfile::tempdir()?;
            std::fs::write(dir.path().join("experiments.json"), EXPERIMENTS)?;
            std::fs::write(dir.path().join("settings.json"), SETTINGS)?;
            let path = dir.path().join("settings.json");
            _dir = dir;
            path
        }
    };
    let client = ExperimentsClient::from_settings_file(&settings).await?;

    let listener = tokio::net::TcpListener::bind(addr).await?;
    eprintln!("listening on http://{} (Ctrl-C to stop)", listener.local_addr()?);
    axum::serve(listener, app(client.clone()))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;

    let report = client.shutdown(Duration::from_secs(5)).await.ok_or("no event pipeline")?;
    let c = report.counters;
    eprintln!(
        "events: accepted={} delivered={} dropped={} remaining={}",
        c.accepted,
        c.delivered,
        c.dropped.total(),
        report.remaining
    );
    if c.delivered != c.accepted {
        return Err(
            format!("{} of {} events not delivered", c.accepted - c.delivered, c.accepted).into()
        );
    }
    Ok(())
}
