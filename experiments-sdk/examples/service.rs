//! The service pattern: one [`ExperimentsClient`] built from a settings document at start
//! (here a temporary directory holding `settings.json` and the `experiments.json` it names),
//! one request object per incoming request, tagged with the request's id, the client's
//! status for a health endpoint, and a shutdown that delivers queued events. Events go to
//! stdout (the `stdout` sink), everything else to stderr.
//!
//! ```text
//! cargo run -p experiments-sdk --example service
//! ```

use std::time::Duration;

use experiments_sdk::{CorrelationId, ExperimentsClient, Inputs};

const EXPERIMENTS: &str = r#"{
  "checkout_redesign": {"id": 101, "name": "checkout_redesign", "owner": "payments",
    "type": "single_variant", "version": "3", "start_ts": 0, "stop_ts": 4102444800,
    "experiment": {"experiment_version": 3, "bucket_val": "user_id",
      "variants": [{"name": "control", "size": 0.5}, {"name": "one_page", "size": 0.5}]}}
}"#;
const SETTINGS: &str = r#"{"config": {"path": "experiments.json"}, "sink": "stdout"}"#;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    std::fs::write(dir.path().join("experiments.json"), EXPERIMENTS)?;
    std::fs::write(dir.path().join("settings.json"), SETTINGS)?;
    // `config.path` is relative: it is resolved against the settings file's directory.
    let client = ExperimentsClient::from_settings_file(dir.path().join("settings.json")).await?;

    // Simulated requests, each with its `x-request-id`.
    for (i, user_id) in ["t2_alice", "t2_bob", "t2_carol", "t2_dave"].into_iter().enumerate() {
        let request_id = format!("req-{i:04}");
        let id = CorrelationId::from_request_id(&request_id).ok_or("unusable request id")?;
        let exp = client.request_builder().correlation_id(id).start();
        let inputs = Inputs::new().with("user_id", user_id).with("logged_in", true);
        let variant = exp.variant("checkout_redesign", &inputs)?;
        if variant == Some("one_page") {
            exp.expose("checkout_redesign", variant, &inputs); // the user saw it
        }
        eprintln!("{request_id} {user_id}: checkout_redesign = {}", variant.unwrap_or("-"));
    }

    eprintln!("status: {}", serde_json::to_string_pretty(&client.status())?);

    let report = client.shutdown(Duration::from_secs(5)).await.ok_or("no event pipeline")?;
    let c = report.counters;
    eprintln!(
        "accepted={} delivered={} dropped={} remaining={}",
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
