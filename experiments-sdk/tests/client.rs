//! The service client end to end, built the way a service builds it: from one settings
//! document, with real files, a real HTTP collector on loopback, and custom sources and sinks.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use experiments_sdk::events::{Batch, EventSink, ExportOutcome, PipelineSettings, async_trait};
use experiments_sdk::http::collector::Collector;
use experiments_sdk::watch::{ConfigSource, ConfigStore, Health, Origin, SourceError, SourceGuard};
use experiments_sdk::{
    ClientError, Config, CorrelationId, ExperimentsClient, Inputs, Settings, Startup,
};

#[derive(Default)]
struct Collect(Mutex<Vec<serde_json::Value>>);

#[async_trait]
impl EventSink for Collect {
    async fn export(&self, batch: &Batch) -> ExportOutcome {
        let mut out = self.0.lock().unwrap();
        for e in &batch.events {
            out.push(serde_json::from_slice(&e.payload).unwrap());
        }
        ExportOutcome::Delivered
    }
}

const CONFIG: &str = r#"{"rollout": {"id": 3, "name": "rollout", "owner": "team", "type": "feature_rollout",
  "version": "1", "start_ts": 0, "stop_ts": 4102444800,
  "experiment": {"experiment_version": 2, "variants": [{"name": "on", "size": 1.0}]}},
 "split": {"id": 4, "name": "split", "owner": "team", "type": "single_variant",
  "version": "1", "start_ts": 0, "stop_ts": 4102444800,
  "experiment": {"experiment_version": 1, "variants": [{"name": "a", "size": 0.5}, {"name": "b", "size": 0.5}]}}}"#;

fn fast_events() -> PipelineSettings {
    let mut ps = PipelineSettings::default();
    ps.max_batch_age = Duration::from_millis(20);
    ps
}

/// A settings file next to its config, with `sink` as given.
fn settings_file(dir: &std::path::Path, config: Option<&str>, rest: &str) -> std::path::PathBuf {
    if let Some(config) = config {
        std::fs::write(dir.join("experiments.json"), config).unwrap();
    }
    let file = dir.join("settings.json");
    std::fs::write(&file, format!(r#"{{"config": {{"path": "experiments.json"{rest}}}}}"#))
        .unwrap();
    file
}

#[tokio::test]
async fn requests_from_a_settings_file_with_a_custom_sink() {
    let dir = tempfile::tempdir().unwrap();
    // Relative path: resolved against the settings file, not the working directory.
    let settings = Settings::from_file(settings_file(dir.path(), Some(CONFIG), "")).unwrap();
    let sink = Arc::new(Collect::default());
    let client = ExperimentsClient::builder()
        .settings(settings)
        .events(fast_events())
        .sink(Arc::clone(&sink))
        .build()
        .await
        .unwrap();
    let inputs = Inputs::new().with("user_id", "t2_1").with("logged_in", true);
    for request in 0..3 {
        let id = CorrelationId::from_request_id(&format!("req-{request}")).unwrap();
        let exp = client.request_builder().correlation_id(id).now(1.7e9).start();
        // Several results and an expose in one scope: nothing borrows `exp` mutably.
        let first = exp.variant("rollout", &inputs).unwrap();
        let again = exp.variant("rollout", &inputs).unwrap();
        let split = exp.variant("split", &inputs).unwrap();
        assert!(exp.expose("rollout", first, &inputs));
        assert_eq!((first, again), (Some("on"), Some("on")));
        assert!(matches!(split, Some("a" | "b")));
        assert_eq!(exp.names().collect::<Vec<_>>(), ["rollout", "split"]);
        assert!(exp.is_valid("rollout"));
        assert_eq!(
            (exp.version(), exp.correlation_id()),
            (Some(1), Some(&*format!("req-{request}")))
        );
    }
    let report = client.shutdown(Duration::from_secs(5)).await.unwrap();
    assert_eq!(report.remaining, 0);
    let events = sink.0.lock().unwrap();
    // Per request: one choose per experiment (deduped), one expose.
    assert_eq!(events.len(), 9);
    assert_eq!(events.iter().filter(|e| e["event_type"] == "choose").count(), 6);
    assert_eq!(events[0]["correlation_id"], "req-0");
    assert_eq!(events[8]["correlation_id"], "req-2");
    assert_eq!(events[0]["experiment"]["version"], 2);
}

#[tokio::test]
async fn a_request_keeps_its_snapshot_while_the_file_changes() {
    let dir = tempfile::tempdir().unwrap();
    let file = settings_file(dir.path(), Some(CONFIG), "");
    let mut settings = Settings::from_file(file).unwrap();
    settings.sink = experiments_sdk::SinkSettings::None;
    let client = ExperimentsClient::from_settings(settings).await.unwrap();
    assert!(client.pipeline().is_none(), "sink none: no pipeline");
    let before = client.request();
    let path = dir.path().join("experiments.json");
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, "{}").unwrap();
    std::fs::rename(&tmp, &path).unwrap();
    assert!(client.reload_now());
    let deadline = Instant::now() + Duration::from_secs(10);
    while client.status().config.version != Some(2) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let inputs = Inputs::new().with("user_id", "t2_1");
    assert_eq!(before.variant("rollout", &inputs).unwrap(), Some("on"), "old snapshot");
    let after = client.request();
    assert_eq!(after.variant("rollout", &inputs).unwrap(), None, "new snapshot");
    assert_eq!((before.version(), after.version()), (Some(1), Some(2)));
}

#[tokio::test]
async fn a_missing_config_fails_start_up_unless_the_settings_say_start_empty() {
    let dir = tempfile::tempdir().unwrap();
    // wait (the default): waits the timeout, then fails naming the source and the cause.
    let file = settings_file(dir.path(), None, r#", "timeout": "300ms""#);
    let started = Instant::now();
    let err = ExperimentsClient::from_settings_file(&file).await.unwrap_err();
    assert!(started.elapsed() >= Duration::from_millis(300), "{:?}", started.elapsed());
    let ClientError::NotReady(not_ready) = &err else { panic!("{err}") };
    assert!(not_ready.description.contains("experiments.json"), "{err}");
    assert!(err.to_string().contains("experiments.json"), "{err}");

    // fail_fast: fails at the first failed check, well before its timeout.
    let file = settings_file(dir.path(), None, r#", "startup": "fail_fast", "timeout": "30s""#);
    let started = Instant::now();
    let err = ExperimentsClient::from_settings_file(&file).await.unwrap_err();
    assert!(matches!(err, ClientError::NotReady(_)), "{err}");
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());

    // empty: starts, says so in its status, and picks the config up when it appears.
    let file = settings_file(dir.path(), None, r#", "startup": "empty""#);
    let client = ExperimentsClient::from_settings_file(&file).await.unwrap();
    let status = client.status();
    assert_eq!((status.config.health, status.startup), (Health::Empty, Startup::Empty));
    let inputs = Inputs::new().with("user_id", "t2_1");
    assert_eq!(client.request().variant("rollout", &inputs).unwrap(), None);
    assert_eq!(client.request().version(), None);
    std::fs::write(dir.path().join("experiments.json"), CONFIG).unwrap();
    client.store().ready(Duration::from_secs(10)).await.unwrap();
    assert_eq!(client.request().variant("rollout", &inputs).unwrap(), Some("on"));
    assert_eq!(client.status().config.health, Health::Ready);
    client.shutdown(Duration::from_secs(2)).await;
}

/// Waiting at start-up must not block the runtime's thread: on a single-threaded runtime,
/// the file is written by another task while `build` waits.
#[tokio::test(flavor = "current_thread")]
async fn waiting_for_the_config_does_not_block_the_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let file = settings_file(dir.path(), None, r#", "timeout": "20s""#);
    let path = dir.path().join("experiments.json");
    let writer = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        std::fs::write(path, CONFIG).unwrap();
    });
    let client = ExperimentsClient::from_settings_file(&file).await.unwrap();
    writer.await.unwrap();
    let inputs = Inputs::new().with("user_id", "t2_1");
    assert_eq!(client.request().variant("rollout", &inputs).unwrap(), Some("on"));
    client.shutdown(Duration::from_secs(2)).await;
}

/// The minimal document of the issue, as written, against a collector that refuses any body
/// that is not a v2 batch: only v2 bodies are sent.
#[tokio::test]
async fn the_http_sink_in_v2_from_a_settings_document_sends_only_v2_bodies() {
    let collector = Collector::start("k", b"secret").await.unwrap();
    collector.accept_only(experiments_sdk::events::Encoding::V2);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("experiments.json"), CONFIG).unwrap();
    let file = dir.path().join("settings.json");
    let document = r#"{"config": {"path": "experiments.json"},
 "sink": {"http": {"url": "URL", "key_name": "k", "secret": "c2VjcmV0", "format": "v2"}}}"#;
    std::fs::write(&file, document.replace("URL", &collector.url())).unwrap();
    let client = ExperimentsClient::from_settings_file(&file).await.unwrap();
    let n = 250;
    for i in 0..n {
        let exp = client.request();
        let inputs = Inputs::new().with("user_id", format!("t2_{i}"));
        exp.variant("rollout", &inputs).unwrap();
    }
    let report = client.shutdown(Duration::from_secs(10)).await.unwrap();
    assert_eq!((report.remaining, report.counters.delivered), (0, n));
    assert_eq!(report.counters.dropped.rejected_by_sink, 0);
    assert_eq!((collector.wrong_format(), collector.distinct()), (0, n as usize));
    let e = &collector.events()[0];
    assert_eq!(e["2"]["str"], "choose");
}

#[tokio::test]
async fn pipeline_settings_contradicting_the_sink_are_a_start_error() {
    let collector = Collector::start("k", b"secret").await.unwrap();
    let document = r#"{"config": {"path": "unused.json"}, "events": {"encoding": "json"},
 "sink": {"http": {"url": "URL", "key_name": "k", "secret": "c2VjcmV0", "format": "v2"}}}"#;
    let settings = Settings::from_json(&document.replace("URL", &collector.url())).unwrap();
    let err = ExperimentsClient::from_settings(settings).await.unwrap_err();
    assert_eq!(err.to_string(), "pipeline setting `encoding` is json but the sink needs v2");
}

/// A custom source is one trait impl: here, a config pushed from a test.
struct Pushed(&'static str);

impl ConfigSource for Pushed {
    fn describe(&self) -> String {
        "pushed:test".into()
    }

    fn start(self: Box<Self>, store: ConfigStore) -> Result<SourceGuard, SourceError> {
        store.offer_bytes(self.0.as_bytes(), Origin::Other("test".into())).unwrap();
        Ok(SourceGuard::new(()))
    }
}

#[tokio::test]
async fn custom_and_fixed_sources() {
    let client = ExperimentsClient::builder()
        .config_source(Pushed(CONFIG))
        .sink(Collect::default())
        .build()
        .await
        .unwrap();
    assert_eq!(client.status().config.source, "pushed:test");
    let inputs = Inputs::new().with("user_id", "t2_1");
    assert_eq!(client.request().variant("rollout", &inputs).unwrap(), Some("on"));

    let fixed = ExperimentsClient::builder()
        .config(Config::parse(CONFIG).unwrap())
        .sink_settings(experiments_sdk::SinkSettings::None)
        .build()
        .await
        .unwrap();
    assert_eq!(fixed.request().variant("rollout", &inputs).unwrap(), Some("on"));
    assert!(fixed.shutdown(Duration::from_secs(1)).await.is_none());
    let clone = fixed.clone();
    assert_eq!(clone.request().version(), Some(1));

    let err = ExperimentsClient::builder().build().await.unwrap_err();
    assert!(matches!(err, ClientError::NoConfigSource), "{err}");
}

const DECIDER: &str = r#"{"new_feed": {"id": 7, "name": "new_feed", "enabled": true, "version": "1",
  "type": "range_variant", "emit_event": true, "start_ts": 0, "stop_ts": 0, "owner": "feeds",
  "experiment": {"experiment_version": 2, "bucket_val": "user_id",
    "variants": [{"name": "control_1", "range_start": 0.0, "range_end": 0.5},
                 {"name": "treatment_1", "range_start": 0.5, "range_end": 1.0}]}}}"#;

/// A decider document is read as one when the settings say so, or when it says so itself;
/// `status()` reports the dialect served.
#[tokio::test]
async fn the_client_follows_a_decider_document() {
    let dir = tempfile::tempdir().unwrap();
    for rest in [r#", "dialect": "decider""#, ""] {
        let file = settings_file(dir.path(), Some(DECIDER), rest);
        let client = ExperimentsClient::from_settings_file(&file).await.unwrap();
        let status = client.status();
        assert_eq!(status.dialect, Some(experiments_sdk::watch::Dialect::Decider), "{rest}");
        let snapshot = client.snapshot().unwrap();
        let manifest = snapshot.decider.as_ref().expect("a manifest");
        assert!(manifest.feature("new_feed").is_some());
        assert!(snapshot.config.is_empty(), "no baseplate config for a decider document");
        client.shutdown(Duration::from_secs(1)).await;
    }
    // Forced to baseplate, the same document is a baseplate config (whose entry is invalid).
    let file = settings_file(dir.path(), Some(DECIDER), r#", "dialect": "baseplate""#);
    let client = ExperimentsClient::from_settings_file(&file).await.unwrap();
    assert_eq!(client.status().dialect, Some(experiments_sdk::watch::Dialect::Baseplate));
    assert_eq!(client.snapshot().unwrap().config.len(), 1);
    client.shutdown(Duration::from_secs(1)).await;
}

/// Decider requests through the client: the wrapper's values, its logger records as the
/// `json` encoding, the engine's v2 as the `v2` encoding, swallowed errors counted.
#[tokio::test]
async fn decider_requests_expose_through_the_pipeline() {
    use experiments_sdk::DeciderContext;
    use experiments_sdk::decider::{Manifest, WrapperRequest};
    let dir = tempfile::tempdir().unwrap();
    let file = settings_file(dir.path(), Some(DECIDER), "");
    let settings = Settings::from_file(file).unwrap();
    let sink = Arc::new(Collect::default());
    let client = ExperimentsClient::builder()
        .settings(settings)
        .events(fast_events())
        .sink(Arc::clone(&sink))
        .build()
        .await
        .unwrap();
    let manifest = Manifest::from_str(DECIDER).unwrap();
    let kwargs = serde_json::Map::new();
    let mut expected_records = Vec::new();
    for i in 0..20 {
        let ctx = || DeciderContext::builder().user_id(&format!("t2_{i}")).logged_in(true).build();
        let request = client.decider_request(ctx(), None);
        let variant = request.get_variant("new_feed", &kwargs).map(str::to_owned);
        let again = request.get_variant_without_expose("new_feed");
        // The same calls on the pure wrapper give the same values and records.
        let mut direct = WrapperRequest::new(Some(&manifest), ctx(), Vec::new());
        assert_eq!(direct.get_variant("new_feed", &kwargs).map(str::to_owned), variant);
        assert_eq!(again, variant.as_deref());
        expected_records.extend(direct.into_handler().iter().map(|e| e.to_record()));
        assert!(matches!(variant.as_deref(), Some("control_1" | "treatment_1")));
        assert_eq!(request.get_variant("no_such_feature", &kwargs), None, "swallowed");
        assert!(request.try_get_variant("no_such_feature", &kwargs).is_err());
        assert_eq!(request.get_int("no_such_config", 7), 7);
    }
    assert_eq!(client.status().decider_errors, 40, "two swallowed errors per request");
    let report = client.shutdown(Duration::from_secs(5)).await.unwrap();
    assert_eq!((report.remaining, report.counters.delivered), (0, 20));
    let records = sink.0.lock().unwrap();
    assert_eq!(*records, expected_records, "the json encoding is the logger record");
}

/// The minimal decider settings document, with the HTTP sink in v2 against a strict collector:
/// the engine's v2 exposures, stamped at the edge, none lost.
#[tokio::test]
async fn decider_exposures_reach_a_v2_collector() {
    use experiments_sdk::DeciderContext;
    let collector = Collector::start("k", b"secret").await.unwrap();
    collector.accept_only(experiments_sdk::events::Encoding::V2);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("experiments.json"), DECIDER).unwrap();
    let file = dir.path().join("settings.json");
    let document = r#"{"config": {"path": "experiments.json", "dialect": "decider"},
 "sink": {"http": {"url": "URL", "key_name": "k", "secret": "c2VjcmV0", "format": "v2"}}}"#;
    std::fs::write(&file, document.replace("URL", &collector.url())).unwrap();
    let client = ExperimentsClient::from_settings_file(&file).await.unwrap();
    let id = CorrelationId::from_request_id("5b6e7c1a-7b0e-4c4e-9f0a-2d6c2f1e9a11").unwrap();
    for i in 0..100 {
        let ctx = DeciderContext::builder().user_id(&format!("t2_{i}")).build();
        let request = client.decider_request(ctx, Some(&id));
        assert!(request.get_variant("new_feed", &serde_json::Map::new()).is_some());
    }
    let report = client.shutdown(Duration::from_secs(10)).await.unwrap();
    assert_eq!((report.remaining, report.counters.delivered), (0, 100));
    assert_eq!((collector.distinct(), collector.wrong_format()), (100, 0));
    let e = &collector.events()[0];
    assert_eq!(e["1"]["str"], "experiment");
    assert_eq!(e["2"]["str"], "expose");
    assert_eq!(
        e["8"]["str"], "5b6e7c1a-7b0e-4c4e-9f0a-2d6c2f1e9a11",
        "the request's correlation id"
    );
    assert!(e["5"]["i64"].as_i64().unwrap() > 1_700_000_000_000, "the wall clock, in ms");
}

/// `scope` makes a request the task's current one; code without a handle finds it.
#[tokio::test]
async fn a_scoped_request_is_the_tasks_current_one() {
    use experiments_sdk::RequestExperiments;
    let client = ExperimentsClient::builder()
        .config(Config::parse(CONFIG).unwrap())
        .sink(Collect::default())
        .build()
        .await
        .unwrap();
    assert!(RequestExperiments::current().is_none());
    let request = Arc::new(client.request());
    let inner = Arc::clone(&request);
    let same = request
        .scope(async move {
            let current = RequestExperiments::current().expect("set in scope");
            Arc::ptr_eq(&current, &inner)
        })
        .await;
    assert!(same);
    assert!(RequestExperiments::current().is_none(), "only inside the scope");
}

/// A decider request made for an ongoing request keeps that request's snapshot and
/// correlation id, whatever the client serves since.
#[tokio::test]
async fn decider_requests_in_a_request_keep_its_snapshot() {
    use experiments_sdk::DeciderContext;
    let dir = tempfile::tempdir().unwrap();
    let file = settings_file(dir.path(), Some(DECIDER), r#", "dialect": "decider""#);
    let mut settings = Settings::from_file(file).unwrap();
    settings.sink = experiments_sdk::SinkSettings::None;
    let client = ExperimentsClient::from_settings(settings).await.unwrap();
    let id = CorrelationId::from_request_id("req-1").unwrap();
    let request = client.request_builder().correlation_id(id).start();
    assert_eq!(request.snapshot().map(|s| s.version), Some(1));
    // The document changes: the feature is gone from what the client serves now.
    std::fs::write(dir.path().join("experiments.json"), "{}").unwrap();
    assert!(client.reload_now());
    let deadline = Instant::now() + Duration::from_secs(10);
    while client.status().config.version != Some(2) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let ctx = || DeciderContext::builder().user_id("t2_1").build();
    let kwargs = serde_json::Map::new();
    let in_request = client.decider_request_in(&request, ctx());
    assert_eq!(in_request.version(), Some(1));
    assert!(in_request.get_variant("new_feed", &kwargs).is_some(), "the request's snapshot");
    let fresh = client.decider_request(ctx(), None);
    assert_eq!(fresh.version(), Some(2));
    assert_eq!(fresh.get_variant("new_feed", &kwargs), None, "the snapshot served now");
}
