//! A custom [`EventSink`]: it states what it needs in its [`SinkProfile`] (the `json`
//! encoding, at most 16 KiB per batch) and answers each batch event by event with
//! [`Fates`](experiments_events::Fates): events of test accounts (whose payload contains
//! `t2_test_`) are rejected for good, every other one is delivered. The pipeline counts
//! both: `delivered` and `dropped.rejected_by_sink`.
//!
//! ```text
//! cargo run -p experiments-events --example custom_sink
//! ```

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use experiments_core::{Config, Experiments, Inputs};
use experiments_events::{
    Batch, Encoding, EventFate, EventSink, ExportOutcome, Pipeline, PipelineSettings, SinkProfile,
    async_trait,
};

const CONFIG: &str = r#"{
  "new_feed": {"id": 7, "name": "new_feed", "owner": "feeds", "type": "single_variant",
    "version": "1", "start_ts": 0, "stop_ts": 4102444800,
    "experiment": {"experiment_version": 1, "bucket_val": "user_id",
      "variants": [{"name": "control", "size": 0.5}, {"name": "treatment", "size": 0.5}]}}
}"#;
const MARKER: &str = "t2_test_";

/// Keeps delivered events in memory; refuses those of test accounts.
#[derive(Default)]
struct MemorySink(Mutex<Vec<Vec<u8>>>);

#[async_trait]
impl EventSink for MemorySink {
    fn profile(&self) -> SinkProfile {
        SinkProfile::new(Encoding::Json).max_batch_bytes(16 * 1024)
    }

    async fn export(&self, batch: &Batch) -> ExportOutcome {
        let mut fates = batch.fates(EventFate::Delivered);
        let mut stored = self.0.lock().unwrap_or_else(|p| p.into_inner());
        for (i, event) in batch.events.iter().enumerate() {
            if String::from_utf8_lossy(&event.payload).contains(MARKER) {
                fates.set(i, EventFate::Rejected);
                fates.add_reason(format_args!("{} is a test account event", event.uuid));
            } else {
                stored.push(event.payload.clone());
            }
        }
        fates.into()
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let sink = Arc::new(MemorySink::default()); // `Arc<S>` is a sink too: keep a handle
    let pipeline = Pipeline::start(PipelineSettings::default(), Arc::clone(&sink))?;
    let s = pipeline.settings();
    println!("pipeline: encoding={:?} max_batch_bytes={:?}", s.encoding, s.max_batch_bytes);

    let config = Config::parse(CONFIG)?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs_f64();
    for user_id in ["t2_alice", "t2_test_qa1", "t2_bob", "t2_test_qa2", "t2_carol"] {
        let mut request = Experiments::new(&config, now, pipeline.sink(None));
        let inputs = Inputs::new().with("user_id", user_id).with("logged_in", true);
        request.variant("new_feed", &inputs, None)?; // one `choose` event per user
    }

    let report = pipeline.shutdown(Duration::from_secs(5)).await;
    let stored = sink.0.lock().unwrap_or_else(|p| p.into_inner()).len();
    let (c, rejected) = (report.counters, report.counters.dropped.rejected_by_sink);
    println!("sink stored {stored} events");
    println!("accepted={} delivered={} rejected_by_sink={rejected}", c.accepted, c.delivered);
    println!("dropped={} remaining={}", c.dropped.total(), report.remaining);
    if c.delivered != stored as u64 || c.delivered + rejected != c.accepted {
        return Err("the accounting does not match what the sink saw".into());
    }
    Ok(())
}
