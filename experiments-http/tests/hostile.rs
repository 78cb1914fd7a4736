//! The HTTP sink against a collector that misbehaves on purpose: redirects, absurd
//! `Retry-After` values, endless response bodies, and URLs carrying credentials. Each test
//! pins down what the sink does instead of losing events, panicking, hanging or leaking.

use std::time::{Duration, Instant};

use experiments_core::{Config, Experiments, Inputs};
use experiments_events::{
    Batch, Counters, EncodedEvent, Encoding, EnrichedEvent, EventFate, EventSink, Pipeline,
    PipelineSettings,
};
use experiments_http::collector::{Behavior, Collector};
use experiments_http::{HttpSettings, HttpSink, MAX_RETRY_AFTER, Secret};

const KEY: &str = "exp-test";
const SECRET: &[u8] = b"correct horse battery staple";

fn events(n: usize) -> Vec<EnrichedEvent> {
    let config = Config::parse(
        r#"{"e": {"id": 7, "name": "e", "owner": "team", "type": "feature_rollout", "version": "1",
            "start_ts": 0, "stop_ts": 4102444800,
            "experiment": {"experiment_version": 1, "variants": [{"name": "on", "size": 1.0}]}}}"#,
    )
    .unwrap();
    let mut out = Vec::new();
    for i in 0..n {
        let inputs = Inputs::new().with("user_id", format!("t2_{i}"));
        let sink = experiments_core::FnHandler(|e: &experiments_core::Event<'_>| {
            out.push(EnrichedEvent::new(e, None))
        });
        Experiments::new(&config, 1.7e9, sink).expose("e", Some("on"), &inputs);
    }
    out
}

/// A batch as the pipeline would hand it to the sink.
fn batch(n: usize) -> Batch {
    let events = events(n)
        .into_iter()
        .map(|e| {
            EncodedEvent::new(
                e.encode(Encoding::V2).unwrap(),
                e.event_type().as_str(),
                e.bucketing_value(),
                e.uuid,
            )
        })
        .collect();
    Batch::new(Encoding::V2, events)
}

fn settings(url: String, timeout: Duration) -> HttpSettings {
    {
        let mut ps = HttpSettings::new(url, KEY, Secret::new(SECRET));
        ps.timeout = timeout;
        ps
    }
}

fn assert_invariant(c: &Counters) {
    assert_eq!(c.accepted, c.delivered + c.dropped.after_accept() + c.in_flight, "{c:?}");
}

async fn through_pipeline(settings: HttpSettings, n: usize, budget: Duration) -> Counters {
    let sink = HttpSink::new(settings).unwrap();
    let base = {
        let mut ps = PipelineSettings::default();
        ps.max_batch_age = Duration::from_millis(20);
        ps.retry_base = Duration::from_millis(20);
        ps.retry_max_delay = Duration::from_millis(200);
        ps.retry_budget = budget;
        ps
    };
    let p = Pipeline::start(base, sink).unwrap();
    for e in events(n) {
        assert!(p.log(e));
    }
    let c = p.shutdown(Duration::from_secs(10)).await.counters;
    assert_invariant(&c);
    c
}

/// Every 3xx is a rejection, not a delivery: the POST is never re-sent elsewhere (as a
/// bodiless GET for 301/302/303, or as a POST for 307/308), the batch is counted
/// `rejected_by_sink` once, and the reason says the URL redirects and to where.
#[tokio::test]
async fn redirects_are_not_followed_and_not_delivered() {
    for status in [300, 301, 302, 303, 304, 307, 308] {
        let collector = Collector::start(KEY, SECRET).await.unwrap();
        collector.script([Behavior::Redirect(status)]);
        let sink = HttpSink::new(settings(collector.url(), Duration::from_secs(2))).unwrap();
        let (fates, _) = sink.export(&batch(10)).await.resolve(10);
        assert_eq!(fates.count(EventFate::Rejected), 10, "{status}: not a delivery: {fates:?}");
        let reason = fates.reason();
        assert!(reason.contains(&format!("HTTP {status}")), "{status}: {reason}");
        assert!(reason.contains("redirect"), "{status}: {reason}");
        if status != 304 {
            assert!(reason.contains("/moved"), "{status}: the target is named: {reason}");
        }
        assert_eq!(collector.followed_redirects(), 0, "{status}: not followed");
        assert_eq!(collector.requests(), 1, "{status}");
        assert_eq!(collector.distinct(), 0, "{status}");

        // Through the pipeline: counted as rejected, never retried, never delivered.
        collector.script([Behavior::Redirect(status)]);
        let url = collector.url();
        let c = through_pipeline(settings(url, Duration::from_secs(2)), 10, Duration::from_secs(5))
            .await;
        assert_eq!(
            (c.delivered, c.dropped.rejected_by_sink, c.retries),
            (0, 10, 0),
            "{status}: {c:?}"
        );
        assert_eq!(collector.followed_redirects(), 0, "{status}: not followed");
    }
}

/// `Retry-After: 18446744073709551615` (and anything longer than [`MAX_RETRY_AFTER`]) is
/// capped before it leaves the sink, so no caller adds an unbounded duration to a clock.
#[tokio::test]
async fn absurd_retry_after_is_capped() {
    let collector = Collector::start(KEY, SECRET).await.unwrap();
    collector.script([Behavior::RetryAfter(429, u64::MAX), Behavior::RetryAfter(503, 86_400)]);
    let sink = HttpSink::new(settings(collector.url(), Duration::from_secs(2))).unwrap();
    for _ in 0..2 {
        let (fates, _) = sink.export(&batch(3)).await.resolve(3);
        assert_eq!(fates.count(EventFate::Retry), 3, "{fates:?}");
        assert_eq!(fates.requested_wait(), Some(MAX_RETRY_AFTER));
    }
    // Through the pipeline, a wait beyond the budget ends the retries at once, counted.
    collector.set_default(Behavior::RetryAfter(429, u64::MAX));
    let started = Instant::now();
    let c = through_pipeline(
        settings(collector.url(), Duration::from_secs(2)),
        5,
        Duration::from_secs(2),
    )
    .await;
    assert_eq!(c.dropped.retry_budget_exhausted, 5, "{c:?}");
    assert!(started.elapsed() < Duration::from_secs(8), "{:?}", started.elapsed());
}

/// A collector that answers with a body that never ends costs a bounded read: the export
/// finishes long before the request timeout, having read at most a few MiB (the bytes the
/// collector managed to hand to the socket), whatever the status.
#[tokio::test]
async fn endless_response_bodies_are_not_read_whole() {
    for (status, delivered) in [(200, true), (500, false), (400, false)] {
        let collector = Collector::start(KEY, SECRET).await.unwrap();
        collector.script([Behavior::EndlessBody(status)]);
        let timeout = Duration::from_secs(4);
        let sink = HttpSink::new(settings(collector.url(), timeout)).unwrap();
        let started = Instant::now();
        let outcome = sink.export(&batch(5)).await;
        let took = started.elapsed();
        assert!(took < timeout / 2, "{status}: took {took:?}");
        let (fates, _) = outcome.resolve(5);
        let expected = match (status, delivered) {
            (200, true) => EventFate::Delivered,
            (500, false) => EventFate::Retry,
            _ => EventFate::Rejected,
        };
        assert_eq!(fates.count(expected), 5, "{status}: {fates:?}");
        assert!(fates.reason().len() < 4096, "{status}: a bounded excerpt");
        // Give the collector a moment to notice the client went away, then check how much
        // it could push: socket buffers at most, not seconds of loopback throughput.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let sent = collector.response_bytes();
        assert!(sent < 32 << 20, "{status}: the collector pushed {sent} bytes");
        // The sink keeps working afterwards.
        let (fates, _) = sink.export(&batch(2)).await.resolve(2);
        assert_eq!(fates.count(EventFate::Delivered), 2, "{status}");
    }
}

/// A password in the collector URL never reaches an export reason (reqwest's errors quote
/// the URL).
#[tokio::test]
async fn credentials_in_the_url_stay_out_of_reasons() {
    // Nothing listens on port 1: the request fails and the reason describes it.
    let sink = HttpSink::new(settings(
        "http://user:hunter2@127.0.0.1:1/v2".into(),
        Duration::from_secs(1),
    ))
    .unwrap();
    let (fates, _) = sink.export(&batch(1)).await.resolve(1);
    assert_eq!(fates.as_slice(), [EventFate::Retry]);
    let reason = fates.reason();
    assert!(!reason.contains("hunter2"), "{reason}");
    assert!(reason.contains("127.0.0.1:1"), "the endpoint is still named: {reason}");
    assert!(!format!("{sink:?}").contains("hunter2"));
}
