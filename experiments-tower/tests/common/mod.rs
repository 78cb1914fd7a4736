//! What the integration tests share: a config, a collecting sink, a client built the way a
//! service builds it (a settings file next to its `experiments.json`).

#![allow(dead_code)] // each test binary uses a part

use std::sync::{Arc, Mutex};
use std::time::Duration;

use experiments_sdk::events::{Batch, EventSink, ExportOutcome, PipelineSettings, async_trait};
use experiments_sdk::{ExperimentsClient, Settings};

/// `split`: 50/50 on `user_id`; `rollout`: everyone with a `user_id` gets `on`.
pub const CONFIG: &str = r#"{
 "split": {"id": 4, "name": "split", "owner": "team", "type": "single_variant",
  "version": "1", "start_ts": 0, "stop_ts": 4102444800,
  "experiment": {"experiment_version": 1, "bucket_val": "user_id",
   "variants": [{"name": "a", "size": 0.5}, {"name": "b", "size": 0.5}]}},
 "rollout": {"id": 3, "name": "rollout", "owner": "team", "type": "feature_rollout",
  "version": "1", "start_ts": 0, "stop_ts": 4102444800,
  "experiment": {"experiment_version": 2, "variants": [{"name": "on", "size": 1.0}]}}
}"#;

/// Every event the pipeline delivered, decoded from the `json` encoding.
#[derive(Default)]
pub struct Collect(pub Mutex<Vec<serde_json::Value>>);

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

impl Collect {
    /// The events so far.
    pub fn events(&self) -> Vec<serde_json::Value> {
        self.0.lock().unwrap().clone()
    }
}

/// A client from a settings file (its relative `config.path` next to it) with `sink`.
/// Returns the directory too: it must outlive the client.
pub async fn client(sink: Arc<Collect>) -> (ExperimentsClient, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("experiments.json"), CONFIG).unwrap();
    let file = dir.path().join("settings.json");
    std::fs::write(&file, r#"{"config": {"path": "experiments.json"}, "sink": "stdout"}"#).unwrap();
    let settings = Settings::from_file(&file).unwrap();
    let mut events = PipelineSettings::default();
    events.max_batch_age = Duration::from_millis(20);
    let client = ExperimentsClient::builder()
        .settings(settings)
        .events(events)
        .sink(sink)
        .build()
        .await
        .unwrap();
    (client, dir)
}

/// Events of `kind` (`choose`/`expose`) for `experiment`.
pub fn of<'a>(
    events: &'a [serde_json::Value],
    kind: &'a str,
    experiment: &'a str,
) -> impl Iterator<Item = &'a serde_json::Value> + 'a {
    events.iter().filter(move |e| e["event_type"] == kind && e["experiment"]["name"] == experiment)
}
