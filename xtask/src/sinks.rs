//! Sink benchmarks against real loopback servers: `cargo xtask bench-http`.

use std::time::{Duration, Instant};

use experiments_core::{Config, Experiments, Inputs};
use experiments_events::{Pipeline, PipelineSettings};
use experiments_http::collector::Collector;
use experiments_http::{HttpSettings, HttpSink, Secret};

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
        let sink = HttpSink::new(HttpSettings::new(
            collector.url(),
            "bench",
            Secret::new(secret.to_vec()),
        ))
        .map_err(|e| e.to_string())?;
        let settings = {
            let mut ps = PipelineSettings::default();
            ps.queue_capacity = 100_000;
            ps.max_batch_events = 2_000;
            ps.max_batch_age = Duration::from_millis(100);
            ps
        };
        let pipeline = Pipeline::start(settings, sink).map_err(|e| e.to_string())?;
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

/// Figures of a Kafka run.
#[derive(Debug, Clone)]
pub struct KafkaFigures {
    /// Throughput run: events delivered and wall time.
    pub throughput: SinkFigures,
    /// End-to-end latency (log to consumer receipt) at a moderate rate: p50, p99, in ms.
    pub latency_p50_ms: i64,
    /// 99th percentile.
    pub latency_p99_ms: i64,
    /// Events in the latency run.
    pub latency_events: usize,
    /// The rate of the latency run.
    pub latency_rate: u64,
}

fn kafka_sink_settings(brokers: &str, topic: &str) -> experiments_kafka::KafkaSettings {
    let mut s = experiments_kafka::KafkaSettings::new(brokers, topic);
    s.create_topic = Some(experiments_kafka::CreateTopic { partitions: 3, replication: 1 });
    s
}

/// Sustained throughput of `n` json events into the broker at `brokers`, then end-to-end
/// latency at `rate` events/s for a few seconds.
pub fn bench_kafka(brokers: &str, n: u64, rate: u64) -> Result<KafkaFigures, String> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::message::Message;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async {
        let config = Config::parse(CONFIG).map_err(|e| e.to_string())?;
        let unique = format!("{}", std::process::id());
        // Throughput.
        let topic = format!("bench-throughput-{unique}");
        let sink = experiments_kafka::KafkaSink::new(kafka_sink_settings(brokers, &topic))
            .await
            .map_err(|e| e.to_string())?;
        let settings = {
            let mut ps = PipelineSettings::default();
            ps.queue_capacity = 200_000;
            ps.max_batch_events = 5_000;
            ps.max_batch_age = Duration::from_millis(50);
            ps
        };
        let pipeline = Pipeline::start(settings, sink).map_err(|e| e.to_string())?;
        let start = Instant::now();
        let mut user = 0u64;
        while pipeline.counters().accepted < n {
            let inputs = Inputs::new()
                .with("user_id", format!("t2_{user:x}"))
                .with("logged_in", true)
                .with("app_name", "ios");
            user += 1;
            let mut request = Experiments::new(&config, 1.7e9, pipeline.sink(None));
            let variant = request.variant("checkout", &inputs, None).ok().flatten();
            request.expose("checkout", variant, &inputs);
            let c = pipeline.counters();
            if c.accepted - c.delivered > 150_000 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
        let report = pipeline.shutdown(Duration::from_secs(120)).await;
        let elapsed = start.elapsed();
        let c = report.counters;
        let throughput = SinkFigures {
            events: c.accepted,
            delivered: c.delivered,
            elapsed,
            wire_bytes_per_event: 0.0,
            body_bytes_per_event: 0.0,
            requests: 0,
        };
        // Latency at a moderate rate, read back by a consumer.
        let topic = format!("bench-latency-{unique}");
        let sink = experiments_kafka::KafkaSink::new(kafka_sink_settings(brokers, &topic))
            .await
            .map_err(|e| e.to_string())?;
        let settings = {
            let mut ps = PipelineSettings::default();
            ps.max_batch_age = Duration::from_millis(20);
            ps
        };
        let pipeline = Pipeline::start(settings, sink).map_err(|e| e.to_string())?;
        let consumer: BaseConsumer = rdkafka::ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("group.id", format!("bench-{unique}"))
            .set("auto.offset.reset", "earliest")
            .set("session.timeout.ms", "6000")
            .set("fetch.wait.max.ms", "10")
            .create()
            .map_err(|e| e.to_string())?;
        consumer.subscribe(&[&topic]).map_err(|e| e.to_string())?;
        let total = (rate * 4) as usize;
        let reader = std::thread::spawn(move || {
            let mut latencies = Vec::with_capacity(total);
            let deadline = Instant::now() + Duration::from_secs(60);
            while latencies.len() < total && Instant::now() < deadline {
                if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
                    let now_ms = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| d.as_millis() as i64);
                    if let Ok(v) =
                        serde_json::from_slice::<serde_json::Value>(m.payload().unwrap_or_default())
                    {
                        latencies.push(now_ms - v["client_timestamp"].as_i64().unwrap_or(now_ms));
                    }
                }
            }
            latencies
        });
        // Give the consumer time to join before producing.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let period = Duration::from_secs_f64(1.0 / rate as f64);
        let begin = Instant::now();
        for i in 0..total {
            let inputs =
                Inputs::new().with("user_id", format!("t2_lat_{i}")).with("logged_in", true);
            Experiments::new(&config, 1.7e9, pipeline.sink(None)).expose(
                "checkout",
                Some("control"),
                &inputs,
            );
            let due = begin + period * (i as u32 + 1);
            tokio::time::sleep_until(due.into()).await;
        }
        pipeline.shutdown(Duration::from_secs(30)).await;
        let mut latencies = reader.join().map_err(|_| "reader panicked".to_owned())?;
        if latencies.is_empty() {
            return Err("no events read back".into());
        }
        latencies.sort_unstable();
        let pct = |p: f64| latencies[((latencies.len() - 1) as f64 * p) as usize];
        Ok(KafkaFigures {
            throughput,
            latency_p50_ms: pct(0.50),
            latency_p99_ms: pct(0.99),
            latency_events: latencies.len(),
            latency_rate: rate,
        })
    })
}
