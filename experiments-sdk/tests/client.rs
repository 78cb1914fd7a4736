//! The facade client end to end: a watched file, per-request objects, events delivered
//! through the pipeline to a custom sink.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use experiments_sdk::events::{
    Batch, EventSink, ExportOutcome, Pipeline, PipelineSettings, async_trait,
};
use experiments_sdk::watch::WatchSettings;
use experiments_sdk::{ClientSettings, Config, ExperimentsClient, Inputs};

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
  "experiment": {"experiment_version": 2, "variants": [{"name": "on", "size": 1.0}]}}}"#;

#[tokio::test]
async fn watched_file_requests_and_delivery() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("experiments.json");
    std::fs::write(&path, CONFIG).unwrap();
    let sink = Arc::new(Collect::default());
    let settings = ClientSettings {
        config: WatchSettings::for_path(&path),
        events: PipelineSettings {
            max_batch_age: Duration::from_millis(50),
            ..PipelineSettings::default()
        },
    };
    let client = ExperimentsClient::start(settings, Arc::clone(&sink)).unwrap();
    let inputs = Inputs::new().with("user_id", "t2_1").with("logged_in", true);
    for request in 0..3 {
        let mut exp = client.request_with(Some(Arc::from(format!("req-{request}"))), 1.7e9);
        assert_eq!(exp.variant("rollout", &inputs, None).unwrap(), Some("on"));
        assert_eq!(exp.variant("rollout", &inputs, None).unwrap(), Some("on"));
        assert!(exp.expose("rollout", Some("on"), &inputs));
        assert_eq!(exp.names(), ["rollout"]);
        assert!(exp.is_valid("rollout"));
    }
    let report = client.shutdown(Duration::from_secs(5)).await.unwrap();
    assert_eq!(report.remaining, 0);
    let events = sink.0.lock().unwrap();
    // One choose (deduped within each request) and one expose per request.
    assert_eq!(events.len(), 6);
    assert_eq!(events.iter().filter(|e| e["event_type"] == "choose").count(), 3);
    assert_eq!(events[0]["correlation_id"], "req-0");
    assert_eq!(events[5]["correlation_id"], "req-2");
    assert_eq!(events[0]["experiment"]["version"], 2);
}

#[tokio::test]
async fn a_request_keeps_its_snapshot_while_the_file_changes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("experiments.json");
    std::fs::write(&path, CONFIG).unwrap();
    let client = ExperimentsClient::start(
        ClientSettings { config: WatchSettings::for_path(&path), ..ClientSettings::default() },
        Collect::default(),
    )
    .unwrap();
    let mut before = client.request();
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, "{}").unwrap();
    std::fs::rename(&tmp, &path).unwrap();
    assert!(client.watcher().unwrap().reload_now());
    let inputs = Inputs::new().with("user_id", "t2_1");
    assert_eq!(before.variant("rollout", &inputs, None).unwrap(), Some("on"), "old snapshot");
    assert_eq!(client.request().variant("rollout", &inputs, None).unwrap(), None, "new snapshot");
    client.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn unavailable_config_behaves_as_empty() {
    let dir = tempfile::tempdir().unwrap();
    let settings = ClientSettings {
        config: WatchSettings::for_path(dir.path().join("missing.json")),
        ..ClientSettings::default()
    };
    let client = ExperimentsClient::start(settings, Collect::default()).unwrap();
    let mut exp = client.request();
    assert_eq!(exp.variant("rollout", &Inputs::new().with("user_id", "t2_1"), None).unwrap(), None);
    assert!(exp.names().is_empty());
    client.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn fixed_config_without_pipeline() {
    let client = ExperimentsClient::from_config(Config::parse(CONFIG).unwrap(), None);
    let mut exp = client.request();
    assert_eq!(
        exp.variant("rollout", &Inputs::new().with("user_id", "t2_1"), None).unwrap(),
        Some("on")
    );
    assert!(client.shutdown(Duration::from_secs(1)).await.is_none());
    let with_pipeline = ExperimentsClient::from_config(
        Config::parse(CONFIG).unwrap(),
        Some(Pipeline::start(PipelineSettings::default(), Collect::default()).unwrap()),
    );
    with_pipeline.request().expose("rollout", None, &Inputs::new());
    let report = with_pipeline.shutdown(Duration::from_secs(2)).await.unwrap();
    assert_eq!(report.counters.delivered, 1);
}

#[test]
fn settings_deserialize() {
    let s: ClientSettings = serde_json::from_str(
        r#"{"config": {"path": "/tmp/x.json", "timeout": "2s"}, "events": {"queue_capacity": 5}}"#,
    )
    .unwrap();
    assert_eq!(s.config.timeout, Some(Duration::from_secs(2)));
    assert_eq!(s.events.queue_capacity, 5);
}
