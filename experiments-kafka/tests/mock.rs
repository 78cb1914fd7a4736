//! The Kafka sink on librdkafka's mock cluster: outages, injected request errors, permanent
//! failures, shutdown with a dead broker. The accounting invariant holds in every case.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use experiments_core::{Config, Experiments, Inputs};
use experiments_events::{
    Counters, Encoding, EnrichedEvent, Pipeline, PipelineError, PipelineSettings,
};
use experiments_kafka::{KafkaSettings, KafkaSink};
use rdkafka::mocking::MockCluster;
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};

const TOPIC: &str = "experiments";

fn events(n: usize, pad: usize) -> Vec<EnrichedEvent> {
    let config = Config::parse(
        r#"{"e": {"id": 7, "name": "e", "type": "feature_rollout", "start_ts": 0, "stop_ts": 4102444800,
            "experiment": {"experiment_version": 1, "variants": [{"name": "on", "size": 1.0}]}}}"#,
    )
    .unwrap();
    let mut out = Vec::new();
    for i in 0..n {
        let inputs = Inputs::new().with("user_id", format!("t2_{i}")).with("pad", "x".repeat(pad));
        let sink = experiments_core::FnHandler(|e: &experiments_core::Event<'_>| {
            out.push(EnrichedEvent::new(e, None))
        });
        Experiments::new(&config, 1.7e9, sink).expose("e", Some("on"), &inputs);
    }
    out
}

fn cluster() -> MockCluster<'static, rdkafka::producer::DefaultProducerContext> {
    let c = MockCluster::new(1).unwrap();
    c.create_topic(TOPIC, 3, 1).unwrap();
    c
}

fn settings(
    cluster: &MockCluster<'static, rdkafka::producer::DefaultProducerContext>,
    extra: &[(&str, &str)],
) -> KafkaSettings {
    let mut s = KafkaSettings::new(cluster.bootstrap_servers(), TOPIC);
    let mut props: BTreeMap<String, String> = [
        ("reconnect.backoff.ms", "100"),
        ("reconnect.backoff.max.ms", "500"),
        ("message.timeout.ms", "5000"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    props.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    s.properties = props;
    s
}

fn base() -> PipelineSettings {
    {
        let mut ps = PipelineSettings::default();
        ps.max_batch_events = 500;
        ps.max_batch_age = Duration::from_millis(50);
        ps.retry_base = Duration::from_millis(200);
        ps.retry_max_delay = Duration::from_secs(1);
        ps.retry_budget = Duration::from_secs(120);
        ps
    }
}

fn assert_invariant(c: &Counters) {
    assert_eq!(c.accepted, c.delivered + c.dropped.after_accept() + c.in_flight, "{c:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_of_30_seconds_loses_nothing_within_bounds() {
    let cluster = cluster();
    let sink = KafkaSink::new(settings(&cluster, &[])).await.unwrap();
    let p = Pipeline::start(
        {
            let mut ps = base();
            ps.queue_capacity = 2_000;
            ps.max_pending_batches = 2;
            ps
        },
        sink,
    )
    .unwrap();
    cluster.broker_down(1).unwrap();
    let mut accepted = 0u64;
    for e in events(6_000, 0) {
        accepted += u64::from(p.log(e));
    }
    let during = p.counters();
    assert!(during.dropped.queue_full > 0, "beyond the bounds, drops are counted: {during:?}");
    assert_eq!(during.accepted + during.dropped.queue_full, 6_000);
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert_eq!(p.counters().delivered, 0, "nothing can be delivered while the broker is down");
    cluster.broker_up(1).unwrap();
    let report = p.flush(Duration::from_secs(60)).await;
    assert_eq!(report.remaining, 0, "{report:?}");
    let c = p.counters();
    assert_eq!(c.delivered, accepted, "every accepted event delivered after the outage: {c:?}");
    assert!(c.retries > 0);
    assert_invariant(&c);
    p.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produce_request_errors_are_retried() {
    let cluster = cluster();
    cluster.request_errors(
        RDKafkaApiKey::Produce,
        &[
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS,
        ],
    );
    let sink = KafkaSink::new(settings(&cluster, &[])).await.unwrap();
    let p = Pipeline::start(base(), sink).unwrap();
    for e in events(1_000, 0) {
        p.log(e);
    }
    let report = p.shutdown(Duration::from_secs(30)).await;
    let c = report.counters;
    assert_eq!(c.delivered, 1_000, "{c:?}");
    assert_invariant(&c);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorization_failures_are_permanent() {
    let cluster = cluster();
    cluster.request_errors(
        RDKafkaApiKey::Produce,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED; 50],
    );
    // Without idempotence an authorization failure fails the messages instead of the producer.
    let sink =
        KafkaSink::new(settings(&cluster, &[("enable.idempotence", "false")])).await.unwrap();
    let p = Pipeline::start(base(), sink).unwrap();
    for e in events(20, 0) {
        p.log(e);
    }
    let report = p.shutdown(Duration::from_secs(30)).await;
    let c = report.counters;
    assert_eq!(c.dropped.rejected_by_sink, 20, "{c:?}");
    assert_eq!(c.retries, 0, "permanent failures are not retried: {c:?}");
    assert_invariant(&c);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_events_are_permanent() {
    let cluster = cluster();
    let sink = KafkaSink::new(settings(&cluster, &[("message.max.bytes", "2000")])).await.unwrap();
    let p = Pipeline::start(base(), sink).unwrap();
    let mut all = events(5, 0);
    all.extend(events(3, 5_000));
    for e in all {
        p.log(e);
    }
    let report = p.shutdown(Duration::from_secs(30)).await;
    let c = report.counters;
    assert_eq!((c.delivered, c.dropped.rejected_by_sink), (5, 3), "{c:?}");
    assert_invariant(&c);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_with_a_dead_broker_keeps_its_deadline() {
    let cluster = cluster();
    let sink =
        KafkaSink::new(settings(&cluster, &[("message.timeout.ms", "60000")])).await.unwrap();
    let p = Pipeline::start(base(), sink).unwrap();
    cluster.broker_down(1).unwrap();
    for e in events(300, 0) {
        p.log(e);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    let report = p.shutdown(Duration::from_secs(2)).await;
    let took = started.elapsed();
    assert!(took < Duration::from_secs(4), "shutdown took {took:?}");
    let c = report.counters;
    assert_eq!(c.dropped.shutdown_timeout, 300, "{c:?}");
    assert_eq!(c.in_flight, 0);
    assert_invariant(&c);
}

/// The pipeline takes the encoding from the sink's settings; pipeline settings that name
/// another one, or an export timeout shorter than librdkafka's delivery timeout, refuse to
/// start instead of sending the topic a format its consumers do not expect.
#[tokio::test]
async fn pipeline_settings_contradicting_the_sink_refuse_to_start() {
    let cluster = cluster();
    let mut s = settings(&cluster, &[]);
    s.encoding = Encoding::V2;
    let sink = KafkaSink::new(s.clone()).await.unwrap();
    let p = Pipeline::start(base(), sink).unwrap();
    assert_eq!(p.settings().encoding, Some(Encoding::V2), "the sink's encoding is used");
    assert!(p.settings().export_timeout.unwrap() > s.message_timeout());
    let mut json = base();
    json.encoding = Some(Encoding::Json);
    let err = Pipeline::start(json, KafkaSink::new(s.clone()).await.unwrap()).unwrap_err();
    assert_eq!(err.to_string(), "pipeline setting `encoding` is json but the sink needs v2");
    let mut short = base();
    short.export_timeout = Some(Duration::from_secs(1));
    let err = Pipeline::start(short, KafkaSink::new(s).await.unwrap()).unwrap_err();
    assert!(matches!(err, PipelineError::Contradiction { field: "export_timeout", .. }), "{err}");
}
