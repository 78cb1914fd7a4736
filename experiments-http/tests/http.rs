//! The HTTP sink against a real collector on 127.0.0.1, through the shared pipeline.

use std::sync::Arc;
use std::time::Duration;

use experiments_core::{Config, Experiments, Inputs};
use experiments_events::{
    Batch, Counters, EncodedEvent, Encoding, EnrichedEvent, EventFate, EventSink, Pipeline,
    PipelineError, PipelineSettings,
};
use experiments_http::collector::{Behavior, Collector};
use experiments_http::{HttpSettings, HttpSink, Secret, signature};

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
        let inputs = Inputs::new()
            .with("user_id", format!("t2_{i}"))
            .with("logged_in", true)
            .with("app_name", "ios");
        let sink = experiments_core::FnHandler(|e: &experiments_core::Event<'_>| {
            out.push(EnrichedEvent::new(e, None))
        });
        Experiments::new(&config, 1.7e9, sink).expose("e", Some("on"), &inputs);
    }
    out
}

fn http_settings(collector: &Collector) -> HttpSettings {
    {
        let mut ps = HttpSettings::new(collector.url(), KEY, Secret::new(SECRET));
        ps.timeout = Duration::from_millis(500);
        ps
    }
}

fn pipeline_for(sink: HttpSink) -> Pipeline {
    let base = {
        let mut ps = PipelineSettings::default();
        ps.max_batch_events = 100;
        ps.max_batch_age = Duration::from_millis(50);
        ps.retry_base = Duration::from_millis(20);
        ps.retry_max_delay = Duration::from_millis(200);
        ps.retry_budget = Duration::from_secs(5);
        ps
    };
    let settings = base;
    Pipeline::start(settings, sink).unwrap()
}

fn assert_invariant(c: &Counters) {
    assert_eq!(c.accepted, c.delivered + c.dropped.after_accept() + c.in_flight, "{c:?}");
}

async fn run(collector: &Collector, settings: HttpSettings, n: usize) -> Counters {
    let p = pipeline_for(HttpSink::new(settings).unwrap());
    for e in events(n) {
        assert!(p.log(e));
    }
    let report = p.shutdown(Duration::from_secs(10)).await;
    let c = report.counters;
    assert_invariant(&c);
    assert!(collector.requests() > 0);
    c
}

#[tokio::test]
async fn ten_thousand_events_arrive_exactly_once() {
    let collector = Collector::start(KEY, SECRET).await.unwrap();
    let c = run(&collector, http_settings(&collector), 10_000).await;
    assert_eq!(c.delivered, 10_000);
    assert_eq!(collector.distinct(), 10_000);
    assert_eq!(collector.duplicates(), 0);
    assert!(collector.requests() >= 100, "many batches: {}", collector.requests());
    assert_eq!(collector.bad_signatures(), 0);
    assert!(collector.wire_bytes() < collector.body_bytes() / 3, "gzip is on");
    // v2 events as the collector decoded them.
    let e = &collector.events()[0];
    assert_eq!(e["1"]["str"], "experiment");
    assert_eq!(e["2"]["str"], "expose");
    assert_eq!(e["129"]["rec"]["1"]["i64"], 7);
}

#[tokio::test]
async fn json_format_without_gzip() {
    let collector = Collector::start(KEY, SECRET).await.unwrap();
    let settings = {
        let mut ps = http_settings(&collector);
        ps.format = Encoding::Json;
        ps.gzip = false;
        ps
    };
    let c = run(&collector, settings, 50).await;
    assert_eq!(c.delivered, 50);
    assert_eq!(collector.wire_bytes(), collector.body_bytes());
    assert_eq!(collector.events()[0]["event_type"], "expose");
}

#[tokio::test]
async fn a_500_storm_within_the_budget_loses_nothing() {
    let collector = Collector::start(KEY, SECRET).await.unwrap();
    collector.script(std::iter::repeat_n(Behavior::Status(500), 6));
    let c = run(&collector, http_settings(&collector), 300).await;
    assert_eq!(c.delivered, 300);
    assert!(c.retries >= 6, "{c:?}");
    assert_eq!(collector.distinct(), 300);
}

#[tokio::test]
async fn retryable_statuses_and_connection_failures() {
    for behavior in [
        Behavior::Status(503),
        Behavior::Status(408),
        Behavior::RetryAfter(429, 1),
        Behavior::Drop,
        Behavior::Hang(Duration::from_secs(2)),
    ] {
        let collector = Collector::start(KEY, SECRET).await.unwrap();
        collector.script([behavior]);
        let started = std::time::Instant::now();
        let c = run(&collector, http_settings(&collector), 10).await;
        assert_eq!(c.delivered, 10, "{behavior:?}: {c:?}");
        assert_eq!(c.retries, 1, "{behavior:?}: {c:?}");
        assert_eq!(collector.distinct(), 10, "{behavior:?}");
        if let Behavior::RetryAfter(_, secs) = behavior {
            assert!(started.elapsed() >= Duration::from_secs(secs), "Retry-After honoured");
        }
    }
}

#[tokio::test]
async fn client_errors_are_permanent_rejections() {
    for status in [400, 422, 404] {
        let collector = Collector::start(KEY, SECRET).await.unwrap();
        collector.script([Behavior::Status(status)]);
        let c = run(&collector, http_settings(&collector), 10).await;
        assert_eq!(
            (c.delivered, c.dropped.rejected_by_sink, c.retries),
            (0, 10, 0),
            "{status}: {c:?}"
        );
        assert_eq!(collector.requests(), 1, "not retried");
    }
}

#[tokio::test]
async fn a_wrong_secret_is_detected_by_the_collector() {
    let collector = Collector::start(KEY, SECRET).await.unwrap();
    let settings = {
        let mut ps = http_settings(&collector);
        ps.secret = Secret::new(b"wrong".to_vec());
        ps
    };
    let c = run(&collector, settings, 5).await;
    assert_eq!(collector.bad_signatures(), 1);
    assert_eq!(c.dropped.rejected_by_sink, 5);
    assert_eq!(collector.distinct(), 0);
}

#[tokio::test]
async fn outage_beyond_the_budget_is_counted() {
    let collector = Collector::start(KEY, SECRET).await.unwrap();
    collector.set_default(Behavior::Status(500));
    let sink = HttpSink::new(http_settings(&collector)).unwrap();
    let base = {
        let mut ps = PipelineSettings::default();
        ps.retry_base = Duration::from_millis(20);
        ps.retry_budget = Duration::from_millis(300);
        ps.max_batch_age = Duration::from_millis(20);
        ps
    };
    let p = Pipeline::start(base, sink).unwrap();
    for e in events(20) {
        p.log(e);
    }
    let c = p.shutdown(Duration::from_secs(5)).await.counters;
    assert_eq!(c.dropped.retry_budget_exhausted, 20, "{c:?}");
    assert_invariant(&c);
}

#[tokio::test]
async fn the_pipeline_keeps_to_the_sinks_body_limit_and_the_sink_splits_larger_batches() {
    let collector = Collector::start(KEY, SECRET).await.unwrap();
    let settings = {
        let mut ps = http_settings(&collector);
        ps.max_batch_bytes = 8 * 1024;
        ps
    };
    let sink = Arc::new(HttpSink::new(settings).unwrap());
    // The pipeline learns the limit from the sink: every request fits.
    let p = Pipeline::start(
        {
            let mut ps = PipelineSettings::default();
            ps.max_batch_age = Duration::from_millis(20);
            ps
        },
        Arc::clone(&sink),
    )
    .unwrap();
    assert_eq!(p.settings().max_batch_bytes, Some(8 * 1024));
    for e in events(200) {
        p.log(e);
    }
    let c = p.shutdown(Duration::from_secs(5)).await.counters;
    assert_eq!(c.delivered, 200);
    assert!(collector.requests() >= 10, "{}", collector.requests());
    assert!(collector.body_bytes() / collector.requests() <= 8 * 1024);
    // A larger batch handed to the sink directly is split over several requests.
    let before = collector.requests();
    let payloads: Vec<_> = events(200)
        .iter()
        .map(|e| EncodedEvent::new(e.encode(Encoding::V2).unwrap(), "expose", None, e.uuid))
        .collect();
    let outcome = sink.export(&Batch::new(Encoding::V2, payloads)).await;
    assert_eq!(outcome.resolve(200).0.count(EventFate::Delivered), 200);
    assert!(collector.requests() - before >= 10, "{}", collector.requests() - before);
}

/// A collector that reads only one body shape, as a real v2 collector does: the sink's
/// `format` decides what the pipeline encodes, whatever the pipeline settings leave open.
#[tokio::test]
async fn the_sink_format_reaches_a_collector_that_rejects_any_other_shape() {
    for format in [Encoding::V2, Encoding::Json] {
        let collector = Collector::start(KEY, SECRET).await.unwrap();
        collector.accept_only(format);
        let settings = {
            let mut ps = http_settings(&collector);
            ps.format = format;
            ps
        };
        let c = run(&collector, settings, 300).await;
        assert_eq!((c.delivered, c.dropped.rejected_by_sink), (300, 0), "{format:?}: {c:?}");
        assert_eq!(collector.wrong_format(), 0);
        assert_eq!(collector.distinct(), 300);
    }
    // The strict collector does refuse the other shape (so the test above can fail).
    let collector = Collector::start(KEY, SECRET).await.unwrap();
    collector.accept_only(Encoding::Json);
    let c = run(&collector, http_settings(&collector), 20).await;
    assert_eq!((c.delivered, c.dropped.rejected_by_sink), (0, 20));
    assert!(collector.wrong_format() > 0);
}

#[tokio::test]
async fn pipeline_settings_naming_another_format_than_the_sink_refuse_to_start() {
    let collector = Collector::start(KEY, SECRET).await.unwrap();
    let sink = HttpSink::new(http_settings(&collector)).unwrap(); // v2
    let mut s = PipelineSettings::default();
    s.encoding = Some(Encoding::Json);
    let err = Pipeline::start(s, sink).unwrap_err();
    assert_eq!(err.to_string(), "pipeline setting `encoding` is json but the sink needs v2");
    let sink = HttpSink::new({
        let mut ps = http_settings(&collector);
        ps.max_in_flight = 2;
        ps
    })
    .unwrap();
    let mut s = PipelineSettings::default();
    s.max_concurrent_exports = Some(3);
    assert!(matches!(
        Pipeline::start(s, sink),
        Err(PipelineError::Contradiction { field: "max_concurrent_exports", .. })
    ));
}

#[tokio::test]
async fn through_the_core_sink_with_correlation() {
    let collector = Collector::start(KEY, SECRET).await.unwrap();
    let p = pipeline_for(HttpSink::new(http_settings(&collector)).unwrap());
    let config = Config::parse(r#"{"e": {"id": 1, "name": "e", "type": "feature_rollout", "start_ts": 0,
        "stop_ts": 4102444800, "experiment": {"experiment_version": 1, "variants": [{"name": "on", "size": 1.0}]}}}"#).unwrap();
    let mut request = Experiments::new(&config, 1.7e9, p.sink(Some(Arc::from("trace-1"))));
    request.variant("e", &Inputs::new().with("user_id", "t2_9"), None).unwrap();
    drop(request);
    p.shutdown(Duration::from_secs(5)).await;
    let e = &collector.events()[0];
    assert_eq!(e["2"]["str"], "choose");
    assert_eq!(e["8"]["str"], "trace-1");
    assert_eq!(e["129"]["rec"]["9"]["str"], "t2_9");
}

#[test]
fn signature_format() {
    // python3: hmac.new(b"k", b"{}", hashlib.sha256).hexdigest()
    let sig = signature("name", b"k", b"{}");
    assert!(sig.starts_with("key=name, mac="));
    assert_eq!(sig.len(), "key=name, mac=".len() + 64);
    assert_eq!(sig, format!("key=name, mac={}", EXPECTED_HMAC));
}

const EXPECTED_HMAC: &str = "add853b103fbcc936a194f9eb15e29c4ff08af6e47d5d1bca4f20218e31e4fff";

#[test]
fn secrets_are_base64_and_redacted() {
    let s: HttpSettings =
        serde_json::from_str(r#"{"url": "http://x", "key_name": "k", "secret": "c2VjcmV0"}"#)
            .unwrap();
    assert_eq!(s.secret.bytes(), b"secret");
    assert!(!format!("{s:?}").contains("secret\""));
    assert!(format!("{s:?}").contains("<redacted>"));
    assert!(
        serde_json::from_str::<HttpSettings>(
            r#"{"url": "http://x", "key_name": "k", "secret": "%%%"}"#
        )
        .is_err()
    );
    assert_eq!(s.timeout, Duration::from_secs(3));
    assert_eq!(s.format, Encoding::V2);
    assert!(s.gzip);
}

/// `Debug` of the settings (and of the sink) hides a password in the URL's userinfo, and
/// a bare user name there (a token, often); the rest of the URL stays readable.
#[test]
fn debug_redacts_credentials_in_the_url() {
    for (url, secret, kept) in [
        (
            "http://user:hunter2@collector.example/v2",
            "hunter2",
            "http://user:<redacted>@collector.example/v2",
        ),
        (
            "https://ghp_T0k3n@collector.example:8443/v2?x=1",
            "ghp_T0k3n",
            "https://<redacted>@collector.example:8443/v2?x=1",
        ),
        ("http://u:p%40ss@w0rd@h/", "w0rd", "http://u:<redacted>@h/"),
        ("HTTP://a:b@c", ":b", "HTTP://a:<redacted>@c"),
    ] {
        let s = HttpSettings::new(url, "k", Secret::new(b"s".to_vec()));
        let debug = format!("{s:?}");
        assert!(!debug.contains(secret), "{debug}");
        assert!(debug.contains(kept), "{debug}");
        let sink = HttpSink::new(s).unwrap();
        assert!(!format!("{sink:?}").contains(secret));
    }
    // Nothing to hide: printed as configured, '@' after the authority included.
    let s = HttpSettings::new("http://h:8080/v2/a@b?c=d@e", "k", Secret::new(b"s".to_vec()));
    assert!(format!("{s:?}").contains(r#"url: "http://h:8080/v2/a@b?c=d@e""#), "{s:?}");
}

/// A secret of the wrong JSON type, or one that is not base64, gives an error that names
/// the field and never quotes the value (serde's default messages do, and so do base64's,
/// byte by byte).
#[test]
fn secret_errors_never_quote_the_value() {
    for (secret, hidden) in [
        ("123456789", "123456789"),
        ("-987654321", "987654321"),
        ("3.25e7", "32500000"),
        ("true", "true"),
        (r#"{"k": "hunter2"}"#, "hunter2"),
        (r#"["hunter2"]"#, "hunter2"),
        (r#""hunter2!""#, "33"),
        (r#""%%%%""#, "37"),
    ] {
        let text = format!(r#"{{"url": "http://x", "key_name": "k", "secret": {secret}}}"#);
        let err = serde_json::from_str::<HttpSettings>(&text).unwrap_err().to_string();
        assert!(!err.contains(hidden), "{secret}: {err}");
        assert!(err.contains("secret"), "{secret}: {err}");
    }
    // Accepted forms still work.
    let s: HttpSettings =
        serde_json::from_str(r#"{"url": "http://x", "key_name": "k", "secret": " c2VjcmV0 "}"#)
            .unwrap();
    assert_eq!(s.secret.bytes(), b"secret");
    let err = Secret::from_base64("hunter2!").unwrap_err().to_string();
    assert!(!err.contains("33") && !err.contains('!'), "{err}");
}
