//! An [`HttpSink`] sending signed, gzipped v2 batches through the shared pipeline to the
//! loopback [`Collector`] (feature `collector`), which verifies each signature and counts
//! the events it decodes. No external server is needed. `N` simulated requests (default
//! 100) each log a `choose` and an `expose` event.
//!
//! ```text
//! cargo run -p experiments-http --features collector --example http_sink [N]
//! ```

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use experiments_core::{Config, Experiments, Inputs};
use experiments_events::{Encoding, Pipeline, PipelineSettings};
use experiments_http::collector::Collector;
use experiments_http::{HttpSettings, HttpSink, Secret};

const CONFIG: &str = r#"{
  "new_feed": {"id": 7, "name": "new_feed", "owner": "feeds", "type": "single_variant",
    "version": "1", "start_ts": 0, "stop_ts": 4102444800,
    "experiment": {"experiment_version": 1, "bucket_val": "user_id",
      "variants": [{"name": "control", "size": 0.5}, {"name": "treatment", "size": 0.5}]}}
}"#;
const KEY_NAME: &str = "example-key";
const SECRET: &[u8] = b"example-secret";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: usize = std::env::args().nth(1).map_or(Ok(100), |a| a.parse())?;

    let collector = Collector::start(KEY_NAME, SECRET).await?;
    collector.accept_only(Encoding::V2); // a body in any other format is answered 400
    let mut settings = HttpSettings::new(collector.url(), KEY_NAME, Secret::new(SECRET));
    settings.format = Encoding::V2; // the default, spelled out: the pipeline follows it
    let pipeline = Pipeline::start(PipelineSettings::default(), HttpSink::new(settings)?)?;
    println!("sending to {} in {:?}", collector.url(), pipeline.settings().encoding);

    let config = Config::parse(CONFIG)?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs_f64();
    for i in 0..n {
        let mut request = Experiments::new(&config, now, pipeline.sink(None));
        let inputs = Inputs::new().with("user_id", format!("t2_{i}")).with("logged_in", true);
        let variant = request.variant("new_feed", &inputs, None)?;
        request.expose("new_feed", variant, &inputs);
    }

    let report = pipeline.shutdown(Duration::from_secs(10)).await;
    let c = report.counters;
    println!(
        "collector: requests={} distinct events={} duplicates={} bad signatures={}",
        collector.requests(),
        collector.distinct(),
        collector.duplicates(),
        collector.bad_signatures()
    );
    println!(
        "pipeline: accepted={} delivered={} dropped={} remaining={}",
        c.accepted,
        c.delivered,
        c.dropped.total(),
        report.remaining
    );
    if c.delivered != c.accepted || collector.distinct() as u64 != c.delivered {
        return Err("not every event reached the collector".into());
    }
    Ok(())
}
