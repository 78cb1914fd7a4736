//! The Kafka sink against a real Kafka-protocol broker (`cargo xtask services up` starts one
//! on 127.0.0.1:9092; `EXPERIMENTS_KAFKA_BROKERS` overrides). Events are produced through
//! the pipeline and read back with an rdkafka consumer. In CI (`CI` set) an unreachable
//! broker fails the tests; elsewhere they say so and pass.

use std::collections::{HashMap, HashSet};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use experiments_core::{Config, Experiments, Inputs};
use experiments_events::{Encoding, EnrichedEvent, Pipeline, PipelineSettings};
use experiments_kafka::{CreateTopic, KafkaSettings, KafkaSink};
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};

fn brokers() -> Option<String> {
    let brokers =
        std::env::var("EXPERIMENTS_KAFKA_BROKERS").unwrap_or_else(|_| "127.0.0.1:9092".into());
    let up = brokers
        .split(',')
        .filter_map(|b| b.to_socket_addrs().ok()?.next())
        .any(|a: SocketAddr| TcpStream::connect_timeout(&a, Duration::from_millis(500)).is_ok());
    if up {
        return Some(brokers);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "no Kafka broker on {brokers}: run `cargo xtask services up`"
    );
    eprintln!("skipping: no Kafka broker on {brokers} (run `cargo xtask services up`)");
    None
}

fn events(n: usize) -> Vec<EnrichedEvent> {
    let config = Config::parse(
        r#"{"e": {"id": 7, "name": "e", "owner": "team", "type": "single_variant", "version": "1",
            "start_ts": 0, "stop_ts": 4102444800,
            "experiment": {"experiment_version": 1,
              "variants": [{"name": "a", "size": 0.5}, {"name": "b", "size": 0.5}]}}}"#,
    )
    .unwrap();
    let mut out = Vec::new();
    for i in 0..n {
        let inputs = Inputs::new().with("user_id", format!("t2_{i}")).with("logged_in", true);
        let sink = experiments_core::FnHandler(|e: &experiments_core::Event<'_>| {
            out.push(EnrichedEvent::new(e, None))
        });
        let mut request = Experiments::new(&config, 1.7e9, sink);
        let v = request.variant("e", &inputs, None).unwrap();
        if v.is_none() {
            request.expose("e", None, &inputs);
        }
    }
    out
}

fn unique_topic(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

/// Reads `expected` messages from the start of `topic`.
fn read_back(
    brokers: &str,
    topic: &str,
    expected: usize,
) -> Vec<(Option<String>, HashMap<String, String>, serde_json::Value)> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", unique_topic("reader"))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .set("session.timeout.ms", "6000")
        .create()
        .unwrap();
    consumer.subscribe(&[topic]).unwrap();
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(90);
    while out.len() < expected && Instant::now() < deadline {
        let Some(result) = consumer.poll(Duration::from_millis(500)) else { continue };
        let m = result.expect("consumer error");
        let key = m.key().map(|k| String::from_utf8_lossy(k).into_owned());
        let headers = m
            .headers()
            .map(|h| {
                h.iter()
                    .map(|x| {
                        (
                            x.key.to_owned(),
                            String::from_utf8_lossy(x.value.unwrap_or_default()).into_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let payload: serde_json::Value =
            serde_json::from_slice(m.payload().unwrap_or_default()).unwrap();
        out.push((key, headers, payload));
    }
    out
}

async fn produce(brokers: &str, topic: &str, encoding: Encoding, n: usize) -> Vec<EnrichedEvent> {
    let mut s = KafkaSettings::new(brokers, topic);
    s.encoding = encoding;
    s.create_topic = Some(CreateTopic { partitions: 3, replication: 1 });
    let sink = KafkaSink::new(s).await.expect("producer and topic");
    let p = Pipeline::start(
        {
            let mut ps = PipelineSettings::default();
            ps.max_batch_events = 1_000;
            ps
        },
        sink,
    )
    .unwrap();
    let sent = events(n);
    for e in sent.clone() {
        assert!(p.log(e));
    }
    let report = p.shutdown(Duration::from_secs(60)).await;
    assert_eq!(report.counters.delivered, n as u64, "{report:?}");
    sent
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_json_events_read_back_exactly_once() {
    let Some(brokers) = brokers() else { return };
    let topic = unique_topic("exp-json");
    let sent = produce(&brokers, &topic, Encoding::Json, 10_000).await;
    let got = read_back(&brokers, &topic, 10_000);
    assert_eq!(got.len(), 10_000);
    let uuids: HashSet<&str> = got.iter().map(|(_, _, p)| p["uuid"].as_str().unwrap()).collect();
    assert_eq!(uuids.len(), 10_000, "each event exactly once");
    let sent_uuids: HashSet<String> = sent.iter().map(|e| e.uuid.to_string()).collect();
    assert!(uuids.iter().all(|u| sent_uuids.contains(*u)));
    for (key, headers, payload) in &got {
        assert_eq!(key.as_deref(), payload["user_id"].as_str(), "keyed by the bucketing value");
        assert_eq!(headers["encoding"], "json");
        assert_eq!(headers["schema_version"], "1");
        assert_eq!(headers["event_type"], payload["event_type"].as_str().unwrap());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v2_events_read_back() {
    let Some(brokers) = brokers() else { return };
    let topic = unique_topic("exp-v2");
    produce(&brokers, &topic, Encoding::V2, 1_000).await;
    let got = read_back(&brokers, &topic, 1_000);
    assert_eq!(got.len(), 1_000);
    let uuids: HashSet<&str> =
        got.iter().map(|(_, _, p)| p["6"]["str"].as_str().unwrap()).collect();
    assert_eq!(uuids.len(), 1_000);
    for (key, headers, payload) in &got {
        assert_eq!(headers["encoding"], "v2");
        assert_eq!(payload["1"]["str"], "experiment");
        assert_eq!(key.as_deref(), payload["112"]["rec"]["1"]["str"].as_str());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_topic_is_idempotent() {
    let Some(brokers) = brokers() else { return };
    let topic = unique_topic("exp-create");
    for _ in 0..2 {
        let mut s = KafkaSettings::new(&brokers, &topic);
        s.create_topic = Some(CreateTopic { partitions: 2, replication: 1 });
        KafkaSink::new(s).await.expect("created, then already there");
    }
    let consumer: BaseConsumer =
        ClientConfig::new().set("bootstrap.servers", &brokers).create().unwrap();
    let meta = consumer.fetch_metadata(Some(&topic), Duration::from_secs(10)).unwrap();
    assert_eq!(meta.topics()[0].partitions().len(), 2);
}
