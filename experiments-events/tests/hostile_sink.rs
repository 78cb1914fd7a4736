//! Property test: a hostile sink — random outcomes, per-event fates built for the wrong number
//! of events, absurd `Retry-After`s, panics, hangs past the export timeout — never
//! breaks the pipeline's accounting, never leaves an event in flight after a flush, and never
//! gets an event twice unless it asked for that event to be retried.
//!
//! Runs on a paused tokio clock, so budgets, timeouts and hangs cost no real time.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, Once};
use std::time::Duration;

use experiments_core::{Config, Experiments, Inputs};
use experiments_events::{
    Batch, EnrichedEvent, EventFate, EventSink, ExportOutcome, Fates, Pipeline, PipelineSettings,
    async_trait,
};
use proptest::prelude::*;
use uuid::Uuid;

/// The payload of the sink's deliberate panics (kept out of the test output).
const PANIC_MARKER: &str = "hostile sink panics on purpose";

/// One answer of the hostile sink.
#[derive(Clone, Debug)]
enum Action {
    Delivered,
    Retryable(Option<Duration>),
    Rejected,
    /// Per-event fates of this length (often not the batch's).
    Fates(Vec<EventFate>),
    Panic,
    /// Never answers (the pipeline's export timeout must fire).
    Hang,
}

/// What the sink saw and said about one event.
#[derive(Default, Debug)]
struct History {
    /// Export calls that contained it.
    sends: u32,
    /// Times the sink asked for it again (retry index, `Retryable`, or a hang).
    retry_requests: u32,
    /// Times the sink said it was delivered.
    delivered: u32,
    /// Times the sink rejected it.
    rejected: u32,
    /// Times the sink panicked on a batch holding it.
    panicked: u32,
    /// Sent after the sink had settled it (delivered, rejected or panicked).
    sent_after_settled: bool,
    /// The sink's last word was "retry" (so it ends `retry_budget_exhausted`).
    last_was_retry: bool,
}

#[derive(Default)]
struct Log {
    events: HashMap<Uuid, History>,
    /// Fates the sink's own model finds mismatched (past the end or missing).
    mismatched: u64,
}

struct Hostile {
    script: Mutex<Vec<Action>>,
    log: Mutex<Log>,
}

#[async_trait]
impl EventSink for Hostile {
    async fn export(&self, batch: &Batch) -> ExportOutcome {
        // After the script, everything succeeds.
        let action = self.script.lock().unwrap().pop().unwrap_or(Action::Delivered);
        let n = batch.len();
        // This sink's own reading of its answer, on sets (independent of the library's).
        let (retry, rejected): (HashSet<usize>, HashSet<usize>) = match &action {
            Action::Delivered => (HashSet::new(), HashSet::new()),
            Action::Retryable(_) | Action::Hang => ((0..n).collect(), HashSet::new()),
            Action::Rejected => (HashSet::new(), (0..n).collect()),
            Action::Panic => (HashSet::new(), HashSet::new()),
            Action::Fates(list) => {
                // Events without a fate are retried; fates past the end mean nothing.
                let fate = |i: usize| list.get(i).copied().unwrap_or(EventFate::Retry);
                let with = |f| (0..n).filter(|&i| fate(i) == f).collect::<HashSet<usize>>();
                self.log.lock().unwrap().mismatched += list.len().abs_diff(n) as u64;
                (with(EventFate::Retry), with(EventFate::Rejected))
            }
        };
        {
            let mut log = self.log.lock().unwrap();
            for (i, event) in batch.events.iter().enumerate() {
                let h = log.events.entry(event.uuid).or_default();
                h.sent_after_settled |= h.delivered + h.rejected + h.panicked > 0;
                h.sends += 1;
                h.last_was_retry = false;
                if matches!(action, Action::Panic) {
                    h.panicked += 1;
                } else if rejected.contains(&i) {
                    h.rejected += 1;
                } else if retry.contains(&i) {
                    h.retry_requests += 1;
                    h.last_was_retry = true;
                } else {
                    h.delivered += 1;
                }
            }
        }
        let reason = "hostile".to_owned();
        match action {
            Action::Delivered => ExportOutcome::Delivered,
            Action::Retryable(retry_after) => ExportOutcome::Retryable { reason, retry_after },
            Action::Rejected => ExportOutcome::Rejected { reason },
            Action::Fates(list) => {
                let mut fates = Fates::new(list.len(), EventFate::Delivered);
                for (i, fate) in list.into_iter().enumerate() {
                    fates.set(i, fate);
                }
                fates.add_reason(reason);
                fates.into()
            }
            Action::Panic => std::panic::panic_any(PANIC_MARKER),
            Action::Hang => std::future::pending().await,
        }
    }
}

fn fate() -> impl Strategy<Value = EventFate> {
    prop_oneof![Just(EventFate::Delivered), Just(EventFate::Retry), Just(EventFate::Rejected)]
}

fn retry_after() -> impl Strategy<Value = Option<Duration>> {
    prop_oneof![
        Just(None),
        (0u64..500).prop_map(|ms| Some(Duration::from_millis(ms))),
        (0u64..10).prop_map(|s| Some(Duration::from_secs(s))),
        Just(Some(Duration::MAX)),
        Just(Some(Duration::from_secs(u64::MAX))),
        any::<u64>().prop_map(|s| Some(Duration::from_secs(s))),
    ]
}

fn action() -> impl Strategy<Value = Action> {
    let list = || proptest::collection::vec(fate(), 0..24);
    prop_oneof![
        3 => Just(Action::Delivered),
        3 => retry_after().prop_map(Action::Retryable),
        1 => Just(Action::Rejected),
        5 => list().prop_map(Action::Fates),
        1 => Just(Action::Panic),
        1 => Just(Action::Hang),
    ]
}

fn events(n: usize) -> Vec<EnrichedEvent> {
    let config = Config::parse(
        r#"{"e": {"id": 1, "name": "e", "type": "r2", "enabled": false, "start_ts": 0, "stop_ts": 1}}"#,
    )
    .unwrap();
    (0..n)
        .map(|i| {
            let mut out = Vec::new();
            let inputs = Inputs::new().with("user_id", format!("t2_{i}"));
            Experiments::new(&config, 1.0, &mut out).expose("e", Some("v"), &inputs);
            EnrichedEvent {
                event: out.remove(0),
                uuid: Uuid::new_v4(),
                client_timestamp_ms: 0,
                correlation_id: None,
            }
        })
        .collect()
}

/// Keeps the deliberate panics out of the test output; any other panic is reported as usual.
fn quiet_deliberate_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if info.payload().downcast_ref::<&str>() != Some(&PANIC_MARKER) {
                previous(info);
            }
        }));
    });
}

proptest! {
    #[test]
    fn a_hostile_sink_never_breaks_the_accounting(
        script in proptest::collection::vec(action(), 0..24),
        n in 1usize..60,
        max_batch_events in 1usize..12,
        max_concurrent_exports in 1usize..4,
    ) {
        quiet_deliberate_panics();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap();
        let sink = Arc::new(Hostile {
            script: Mutex::new(script.into_iter().rev().collect()),
            log: Mutex::new(Log::default()),
        });
        let settings = { let mut ps = PipelineSettings::default(); ps.max_batch_events = max_batch_events; ps.max_concurrent_exports = Some(max_concurrent_exports); ps.max_batch_age = Duration::from_millis(100); ps.retry_base = Duration::from_millis(10); ps.retry_max_delay = Duration::from_millis(100); ps.retry_budget = Duration::from_secs(2); ps.export_timeout = Some(Duration::from_millis(50)); ps };
        let (flushed, shut) = runtime.block_on(async {
            let p = Pipeline::start(settings, Arc::clone(&sink)).unwrap();
            for e in events(n) {
                assert!(p.log(e));
            }
            // Far more (virtual) time than the retry budget needs: nothing may be left.
            let flushed = p.flush(Duration::from_secs(3_600)).await;
            let shut = p.shutdown(Duration::from_secs(1)).await;
            (flushed, shut)
        });
        prop_assert_eq!(flushed.remaining, 0, "{:?}", flushed);
        let c = shut.counters;
        prop_assert_eq!(c.accepted, n as u64);
        prop_assert_eq!(c.in_flight, 0);
        prop_assert_eq!(c.accepted, c.delivered + c.dropped.after_accept(), "{:?}", c);
        prop_assert_eq!(c.dropped.shutdown_timeout, 0);

        let log = sink.log.lock().unwrap();
        prop_assert_eq!(log.events.len(), n, "every event reached the sink");
        let sum = |f: fn(&History) -> u32| log.events.values().map(|h| u64::from(f(h))).sum::<u64>();
        for (id, h) in &log.events {
            prop_assert!(!h.sent_after_settled, "{} sent again after it was settled: {:?}", id, h);
            prop_assert!(h.sends <= 1 + h.retry_requests, "{} sent unasked: {:?}", id, h);
            prop_assert!(h.delivered + h.rejected + h.panicked <= 1, "{}: {:?}", id, h);
        }
        // The pipeline's counters agree with what the sink said, event by event.
        prop_assert_eq!(c.delivered, sum(|h| h.delivered));
        prop_assert_eq!(c.dropped.rejected_by_sink, sum(|h| h.rejected));
        prop_assert_eq!(c.dropped.sink_panicked, sum(|h| h.panicked));
        prop_assert_eq!(c.dropped.retry_budget_exhausted, sum(|h| u32::from(h.last_was_retry)));
        prop_assert_eq!(c.mismatched_fates, log.mismatched);
    }
}
