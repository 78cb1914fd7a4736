//! Experiment events from `experiments_core::Experiments` delivered through the shared
//! [`Pipeline`] to standard output in Reddit's v2 (Thrift-JSON) encoding. The sink names
//! its encoding (`StdoutSink::stdout().encoding(Encoding::V2)`) and the pipeline learns it
//! from the sink; each simulated request tags its events with its correlation id. Events
//! go to stdout, one document per line; everything else goes to stderr.
//!
//! ```text
//! cargo run -p experiments-events --example stdout_sink
//! ```

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use experiments_core::{Config, Experiments, Inputs};
use experiments_events::{Encoding, Pipeline, PipelineSettings, StdoutSink};

const CONFIG: &str = r#"{
  "new_feed": {"id": 7, "name": "new_feed", "owner": "feeds", "type": "single_variant",
    "version": "1", "start_ts": 0, "stop_ts": 4102444800,
    "experiment": {"experiment_version": 1, "bucket_val": "user_id",
      "variants": [{"name": "control", "size": 0.5}, {"name": "treatment", "size": 0.5}]}}
}"#;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let sink = StdoutSink::stdout().encoding(Encoding::V2);
    let pipeline = Pipeline::start(PipelineSettings::default(), sink)?;
    eprintln!("pipeline encoding (from the sink): {:?}", pipeline.settings().encoding);

    let config = Config::parse(CONFIG)?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs_f64();
    for (i, user_id) in ["t2_alice", "t2_bob", "t2_heidi"].into_iter().enumerate() {
        // One `Experiments` per request; its events carry the request's correlation id.
        let correlation_id: Arc<str> = format!("request-{i}").into();
        let mut request = Experiments::new(&config, now, pipeline.sink(Some(correlation_id)));
        let inputs = Inputs::new().with("user_id", user_id).with("logged_in", true);
        let variant = request.variant("new_feed", &inputs, None)?; // logs `choose`
        request.expose("new_feed", variant, &inputs); // logs `expose`
        eprintln!("{user_id}: new_feed = {}", variant.unwrap_or("-"));
    }

    // Delivers what is queued (waiting at most 5 s), then stops the pipeline.
    let report = pipeline.shutdown(Duration::from_secs(5)).await;
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
