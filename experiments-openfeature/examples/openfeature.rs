//! OpenFeature over the experiments client: a client over an inline config (`choose` events
//! as JSON lines on stdout), the provider set on an OpenFeature API, and a few evaluations
//! printed with their details on stderr — inside one request scope, so the request's dedupe
//! and correlation id apply, and outside one.
//!
//! ```text
//! cargo run -p experiments-openfeature --example openfeature
//! ```

use std::sync::Arc;
use std::time::Duration;

use experiments_openfeature::{ExperimentsProvider, no_variant_reason};
use experiments_sdk::events::Encoding;
use experiments_sdk::{Config, CorrelationId, ExperimentsClient, SinkSettings};
use open_feature::{EvaluationContext, OpenFeature};

const EXPERIMENTS: &str = r#"{
  "checkout_redesign": {"id": 101, "name": "checkout_redesign", "owner": "payments",
    "type": "single_variant", "version": "3", "start_ts": 0, "stop_ts": 4102444800,
    "experiment": {"experiment_version": 3, "bucket_val": "user_id",
      "variants": [{"name": "control", "size": 0.5}, {"name": "one_page", "size": 0.5}],
      "overrides": [{"one_page": {"EQ": {"field": "is_employee", "values": [true]}}}]}},
  "dark_mode": {"id": 102, "name": "dark_mode", "owner": "web", "type": "feature_rollout",
    "version": "1", "start_ts": 0, "stop_ts": 4102444800, "enabled": false,
    "experiment": {"experiment_version": 1, "variants": [{"name": "on", "size": 1.0}]}}
}"#;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let client = ExperimentsClient::builder()
        .config(Config::parse(EXPERIMENTS)?)
        .sink_settings(SinkSettings::Stdout { encoding: Encoding::Json })
        .build()
        .await?;
    let mut api = OpenFeature::default(); // or `OpenFeature::singleton_mut().await`
    api.set_provider(ExperimentsProvider::new(client.clone())).await;
    let flags = Arc::new(api.create_client());

    // One request: evaluations share its dedupe (one `choose` per experiment and user) and
    // its correlation id.
    let id = CorrelationId::from_request_id("req-0001").ok_or("unusable request id")?;
    let request = Arc::new(client.request_builder().correlation_id(id).start());
    let in_request = Arc::clone(&flags);
    request
        .scope(async move {
            for user in ["t2_alice", "t2_bob", "t2_alice"] {
                let ctx = EvaluationContext::default().with_targeting_key(user);
                let d = in_request.get_string_details("checkout_redesign", Some(&ctx), None).await;
                match d {
                    Ok(d) => eprintln!(
                        "{user}: checkout_redesign = {:?} (reason {:?}, metadata {:?})",
                        d.value, d.reason, d.flag_metadata.values
                    ),
                    Err(e) => eprintln!("{user}: checkout_redesign failed: {e:?}"),
                }
            }
        })
        .await;

    // Outside a request: each evaluation is a request of its own.
    let employee = EvaluationContext::default()
        .with_targeting_key("t2_carol")
        .with_custom_field("is_employee", true);
    let d = flags
        .get_bool_details("checkout_redesign", Some(&employee), None)
        .await
        .map_err(|e| format!("{e:?}"))?;
    eprintln!(
        "t2_carol (employee): on = {} (variant {:?}, reason {:?})",
        d.value, d.variant, d.reason
    );

    // No variant: an error, so the caller's default applies; its reason is in the message.
    let e = flags.get_string_details("dark_mode", Some(&employee), None).await.unwrap_err();
    let value = flags
        .get_string_value("dark_mode", Some(&employee), None)
        .await
        .unwrap_or_else(|_| "off".to_owned());
    eprintln!(
        "dark_mode = {value:?} (the caller's default; {:?}: {:?})",
        no_variant_reason(&e),
        e.message
    );
    let typed = flags.get_int_value("checkout_redesign", Some(&employee), None).await;
    eprintln!("checkout_redesign as an integer: {:?}", typed.map_err(|e| e.code.to_string()));

    client.shutdown(Duration::from_secs(5)).await;
    Ok(())
}
