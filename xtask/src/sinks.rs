//! Sink benchmarks against real loopback servers: `cargo xtask bench-http`.

use std::time::{Duration, Instant};

use experiments_core::{Config, Experiments, Inputs};
use experiments_events::{Pipeline, PipelineSettings};
use experiments_http::collector::Collector;
use experiments_http::{HttpLogger, HttpSettings, Secret};

/// Figures of one sink run.
#[derive(Debug, Clone)]
pub struct SinkFigures {
    /// Events sent.
    pub events: u64,
    /// Events the sink confirmed.
    pub delivered: u64,
    /// Wall time from the first `log` to the end of the final flush.
    pub elapsed: Duration,
    /// Compressed bytes on the wire per event.
    pub wire_bytes_per_event: f64,
    /// Uncompressed body bytes per event.
    pub body_bytes_per_event: f64,
    /// Requests made.
    pub requests: u64,
}

const CONFIG: &str = r#"{"checkout": {"id": 101, "name": "checkout", "owner": "payments", "type": "single_variant",
  "version": "3", "start_ts": 0, "stop_ts": 4102444800,
  "experiment": {"experiment_version": 3, "variants": [{"name": "control", "size": 0.5}, {"name": "one_page", "size": 0.5}]}}}"#;

/// Sends `n` realistic events (choose + expose pairs from distinct users) through the
/// pipeline into a loopback collector, gzip on, and measures sustained throughput.
pub fn bench_http(n: u64) -> Result<SinkFigures, String> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async {
        let secret = b"bench-secret";
        let collector = Collector::start("bench", secret).await.map_err(|e| e.to_string())?;
        collector.keep_events(false);
        let logger = HttpLogger::new(HttpSettings::new(
            collector.url(),
            "bench",
            Secret::new(secret.to_vec()),
        ))
        .map_err(|e| e.to_string())?;
        let settings = logger.pipeline_settings(PipelineSettings {
            queue_capacity: 100_000,
            max_batch_events: 2_000,
            max_batch_age: Duration::from_millis(100),
            ..PipelineSettings::default()
        });
        let pipeline = Pipeline::start(settings, logger).map_err(|e| e.to_string())?;
        let config = Config::parse(CONFIG).map_err(|e| e.to_string())?;
        let start = Instant::now();
        let mut sent = 0u64;
        let mut user = 0u64;
        while sent < n {
            let inputs = Inputs::new()
                .with("user_id", format!("t2_{user:x}"))
                .with("logged_in", true)
                .with("app_name", "ios")
                .with("country", "US");
            user += 1;
            let mut request = Experiments::new(&config, 1.7e9, pipeline.sink(None));
            let variant = request.variant("checkout", &inputs, None).ok().flatten();
            request.expose("checkout", variant, &inputs);
            sent = pipeline.counters().accepted + pipeline.counters().dropped.queue_full;
            if pipeline.counters().accepted - pipeline.counters().delivered > 80_000 {
                // Stay below the queue bound: this measures sustained delivery, not drops.
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
        let report = pipeline.shutdown(Duration::from_secs(120)).await;
        let elapsed = start.elapsed();
        let c = report.counters;
        let delivered = c.delivered.max(1);
        Ok(SinkFigures {
            events: c.accepted + c.dropped.queue_full,
            delivered: c.delivered,
            elapsed,
            wire_bytes_per_event: collector.wire_bytes() as f64 / delivered as f64,
            body_bytes_per_event: collector.body_bytes() as f64 / delivered as f64,
            requests: collector.requests(),
        })
    })
}
