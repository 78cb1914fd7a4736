//! A [`KafkaSink`] behind the shared pipeline: creates the topic when missing (1
//! partition), sends `N` events (default 100) and prints the accounting. Against no broker
//! it fails within about 15 s instead of hanging (bounded topic creation, a 10 s
//! `message.timeout.ms`, a bounded shutdown). A local broker: `cargo xtask services up`.
//!
//! ```text
//! cargo run -p experiments-kafka --example kafka_sink [BROKERS] [TOPIC] [N]
//! cargo run -p experiments-kafka --example kafka_sink 127.0.0.1:9092 experiments-example 100
//! ```

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use experiments_core::{Config, Experiments, Inputs};
use experiments_events::{Pipeline, PipelineSettings};
use experiments_kafka::{CreateTopic, KafkaSettings, KafkaSink};

const CONFIG: &str = r#"{
  "new_feed": {"id": 7, "name": "new_feed", "owner": "feeds", "type": "single_variant",
    "version": "1", "start_ts": 0, "stop_ts": 4102444800,
    "experiment": {"experiment_version": 1, "bucket_val": "user_id",
      "variants": [{"name": "control", "size": 0.5}, {"name": "treatment", "size": 0.5}]}}
}"#;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let brokers = args.next().unwrap_or_else(|| "127.0.0.1:9092".into());
    let topic = args.next().unwrap_or_else(|| "experiments-example".into());
    let n: usize = args.next().map_or(Ok(100), |a| a.parse())?;

    let mut settings = KafkaSettings::new(brokers, topic);
    settings.create_topic = Some(CreateTopic { partitions: 1, replication: 1 });
    // librdkafka gives a message up after 10 s (the export timeout follows: 15 s).
    settings.properties.insert("message.timeout.ms".into(), "10000".into());
    let sink = tokio::time::timeout(Duration::from_secs(12), KafkaSink::new(settings.clone()))
        .await
        .map_err(|_| format!("no Kafka broker answered at {} within 12 s", settings.brokers))??;
    let sink = Arc::new(sink); // keep a handle for its error counts
    let pipeline = Pipeline::start(PipelineSettings::default(), Arc::clone(&sink))?;

    let config = Config::parse(CONFIG)?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs_f64();
    for i in 0..n {
        let mut request = Experiments::new(&config, now, pipeline.sink(None));
        let inputs = Inputs::new().with("user_id", format!("t2_{i}")).with("logged_in", true);
        let variant = request.variant("new_feed", &inputs, None)?;
        request.expose("new_feed", variant, &inputs);
    }

    // Events still undelivered after 15 s are dropped (`shutdown_timeout`).
    let report = pipeline.shutdown(Duration::from_secs(15)).await;
    let c = report.counters;
    println!("topic {} on {}: errors {:?}", settings.topic, settings.brokers, sink.errors());
    println!(
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
