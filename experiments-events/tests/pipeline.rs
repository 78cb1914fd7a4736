//! The shared pipeline under real tokio: batching, retries, rejections, hangs, bursts,
//! deadlines and the accounting invariant.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use experiments_core::{Config, Experiments, Inputs};
use experiments_events::{
    Batch, Counters, Encoding, EnrichedEvent, EventFate, EventSink, ExportOutcome, Fates, Pipeline,
    PipelineError, PipelineSettings, SinkProfile, StdoutSink, async_trait,
};
use uuid::Uuid;

/// What the scripted sink answers to each export call.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Answer {
    Ok,
    Retry,
    Reject,
    Hang,
    /// First half delivered, second half retryable.
    HalfRetry,
    /// These fates, built for their own length (possibly not the batch's): the sink counts
    /// as delivered the events they call delivered.
    Fates(&'static [EventFate]),
    /// `Retryable` with this `Retry-After`.
    RetryAfter(Duration),
    /// The export future panics.
    Panic,
}

#[derive(Default)]
struct Recorder {
    /// Answers for the first calls; then `Ok`.
    script: Mutex<Vec<Answer>>,
    /// Every batch of every call.
    calls: Mutex<Vec<Batch>>,
    /// Events the sink accepted (delivered).
    delivered: Mutex<Vec<Uuid>>,
    /// Answer forever once the script is done, when set.
    forever: Mutex<Option<Answer>>,
    shutdowns: AtomicUsize,
    /// What the sink asks of the pipeline.
    profile: SinkProfile,
}

impl Recorder {
    fn with_profile(profile: SinkProfile) -> Arc<Self> {
        Arc::new(Recorder { profile, ..Recorder::default() })
    }

    fn scripted(script: &[Answer]) -> Arc<Self> {
        let r = Recorder::default();
        *r.script.lock().unwrap() = script.iter().rev().copied().collect();
        Arc::new(r)
    }

    fn forever(answer: Answer) -> Arc<Self> {
        let r = Recorder::default();
        *r.forever.lock().unwrap() = Some(answer);
        Arc::new(r)
    }

    fn batch_sizes(&self) -> Vec<usize> {
        self.calls.lock().unwrap().iter().map(Batch::len).collect()
    }

    fn delivered(&self) -> Vec<Uuid> {
        self.delivered.lock().unwrap().clone()
    }
}

#[async_trait]
impl EventSink for Recorder {
    fn profile(&self) -> SinkProfile {
        self.profile.clone()
    }

    async fn export(&self, batch: &Batch) -> ExportOutcome {
        self.calls.lock().unwrap().push(batch.clone());
        let answer = self
            .script
            .lock()
            .unwrap()
            .pop()
            .or(*self.forever.lock().unwrap())
            .unwrap_or(Answer::Ok);
        let ids = || batch.events.iter().map(|e| e.uuid);
        match answer {
            Answer::Ok => {
                self.delivered.lock().unwrap().extend(ids());
                ExportOutcome::Delivered
            }
            Answer::Retry => {
                ExportOutcome::Retryable { reason: "unavailable".into(), retry_after: None }
            }
            Answer::Reject => ExportOutcome::Rejected { reason: "bad request".into() },
            Answer::Hang => std::future::pending().await,
            Answer::HalfRetry => {
                let half = batch.len() / 2;
                self.delivered.lock().unwrap().extend(ids().take(half));
                let mut fates = batch.fates(EventFate::Delivered);
                for i in half..batch.len() {
                    assert!(fates.set(i, EventFate::Retry));
                }
                fates.add_reason("partial");
                fates.into()
            }
            Answer::Fates(list) => {
                // Fates built for `list.len()` events, whatever the batch's length.
                let mut fates = Fates::new(list.len(), EventFate::Delivered);
                for (i, &fate) in list.iter().enumerate() {
                    fates.set(i, fate);
                }
                let delivered =
                    ids().enumerate().filter(|&(i, _)| list.get(i) == Some(&EventFate::Delivered));
                self.delivered.lock().unwrap().extend(delivered.map(|(_, id)| id));
                fates.into()
            }
            Answer::RetryAfter(wait) => {
                ExportOutcome::Retryable { reason: "slow down".into(), retry_after: Some(wait) }
            }
            Answer::Panic => panic!("the sink panicked (on purpose)"),
        }
    }

    async fn shutdown(&self) {
        self.shutdowns.fetch_add(1, Ordering::SeqCst);
    }
}

fn event(i: usize) -> EnrichedEvent {
    event_with(i, "")
}

fn event_with(i: usize, padding: &str) -> EnrichedEvent {
    let config = Config::parse(r#"{"e": {"id": 1, "name": "e", "type": "r2", "enabled": false, "start_ts": 0, "stop_ts": 1}}"#).unwrap();
    let mut out = Vec::new();
    let inputs = Inputs::new().with("user_id", format!("t2_{i}")).with("pad", padding);
    Experiments::new(&config, 1.0, &mut out).expose("e", Some("v"), &inputs);
    EnrichedEvent {
        event: out.remove(0),
        uuid: Uuid::new_v4(),
        client_timestamp_ms: 0,
        correlation_id: None,
    }
}

fn settings() -> PipelineSettings {
    {
        let mut ps = PipelineSettings::default();
        ps.max_batch_events = 10;
        ps.max_batch_age = Duration::from_millis(200);
        ps.retry_base = Duration::from_millis(20);
        ps.retry_max_delay = Duration::from_millis(200);
        ps.retry_budget = Duration::from_secs(2);
        ps.export_timeout = Some(Duration::from_millis(300));
        ps
    }
}

fn assert_invariant(c: &Counters) {
    // Raw check first: `in_flight` saturates, so it alone would hide over-counted outcomes.
    assert!(c.delivered + c.dropped.after_accept() <= c.accepted, "{c:?}");
    assert_eq!(c.accepted, c.delivered + c.dropped.after_accept() + c.in_flight, "{c:?}");
}

#[tokio::test]
async fn batches_by_count_then_age() {
    let sink = Recorder::scripted(&[]);
    let p = Pipeline::start(settings(), Arc::clone(&sink)).unwrap();
    for i in 0..25 {
        assert!(p.log(event(i)));
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(sink.batch_sizes(), vec![10, 10], "full batches go at once");
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(sink.batch_sizes(), vec![10, 10, 5], "the rest goes when it is old enough");
    let c = p.counters();
    assert_eq!((c.accepted, c.delivered, c.in_flight), (25, 25, 0));
}

#[tokio::test]
async fn batches_by_bytes() {
    let sink = Recorder::scripted(&[]);
    let s = {
        let mut ps = settings();
        ps.max_batch_events = 1000;
        ps.max_batch_bytes = Some(4 * 1024);
        ps
    };
    let p = Pipeline::start(s, Arc::clone(&sink)).unwrap();
    let pad = "x".repeat(900);
    for i in 0..20 {
        p.log(event_with(i, &pad));
    }
    let report = p.flush(Duration::from_secs(2)).await;
    assert_eq!(report.remaining, 0);
    let calls = sink.calls.lock().unwrap();
    assert!(calls.len() >= 5, "{}", calls.len());
    for b in calls.iter() {
        assert!(b.payload_bytes() <= 4 * 1024, "{}", b.payload_bytes());
    }
    assert_eq!(calls.iter().map(Batch::len).sum::<usize>(), 20);
}

#[tokio::test]
async fn retry_then_success_delivers_once() {
    let sink = Recorder::scripted(&[Answer::Retry, Answer::Retry]);
    let p = Pipeline::start(settings(), Arc::clone(&sink)).unwrap();
    for i in 0..5 {
        p.log(event(i));
    }
    let report = p.flush(Duration::from_secs(2)).await;
    assert_eq!(report.remaining, 0);
    assert_eq!(sink.batch_sizes(), vec![5, 5, 5], "the same batch, three attempts");
    let c = p.counters();
    assert_eq!((c.delivered, c.retries), (5, 2));
    assert_eq!(sink.delivered().len(), 5);
    assert_invariant(&c);
}

#[tokio::test]
async fn partial_failures_retry_only_the_rest() {
    let sink = Recorder::scripted(&[Answer::HalfRetry]);
    let p = Pipeline::start(settings(), Arc::clone(&sink)).unwrap();
    for i in 0..10 {
        p.log(event(i));
    }
    assert_eq!(p.flush(Duration::from_secs(2)).await.remaining, 0);
    assert_eq!(sink.batch_sizes(), vec![10, 5]);
    let delivered: HashSet<Uuid> = sink.delivered().into_iter().collect();
    assert_eq!(delivered.len(), 10, "each event delivered exactly once");
    assert_eq!(p.counters().delivered, 10);
}

#[tokio::test]
async fn permanent_rejection_is_counted_not_retried() {
    let sink = Recorder::scripted(&[Answer::Reject]);
    let p = Pipeline::start(settings(), Arc::clone(&sink)).unwrap();
    for i in 0..4 {
        p.log(event(i));
    }
    assert_eq!(p.flush(Duration::from_secs(2)).await.remaining, 0);
    assert_eq!(sink.batch_sizes(), vec![4]);
    let c = p.counters();
    assert_eq!((c.delivered, c.dropped.rejected_by_sink), (0, 4));
    assert_invariant(&c);
}

#[tokio::test]
async fn retry_budget_is_enforced() {
    let sink = Recorder::forever(Answer::Retry);
    let s = {
        let mut ps = settings();
        ps.retry_budget = Duration::from_millis(300);
        ps
    };
    let p = Pipeline::start(s, Arc::clone(&sink)).unwrap();
    for i in 0..3 {
        p.log(event(i));
    }
    assert_eq!(p.flush(Duration::from_secs(3)).await.remaining, 0);
    let c = p.counters();
    assert_eq!(c.dropped.retry_budget_exhausted, 3);
    assert!(c.retries >= 2, "{c:?}");
    assert!(sink.calls.lock().unwrap().len() >= 3);
}

#[tokio::test]
async fn a_hanging_sink_times_out_and_intake_keeps_flowing_within_bounds() {
    let sink = Recorder::forever(Answer::Hang);
    let s = {
        let mut ps = settings();
        ps.queue_capacity = 100;
        ps.max_pending_batches = 2;
        ps.export_timeout = Some(Duration::from_millis(50));
        ps.retry_budget = Duration::from_secs(60);
        ps
    };
    let p = Pipeline::start(s, Arc::clone(&sink)).unwrap();
    let mut accepted = 0;
    for round in 0..20 {
        for i in 0..50 {
            accepted += usize::from(p.log(event(round * 50 + i)));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let c = p.counters();
    // Memory bound: the queue, the pending batches plus the one waiting to join them, the
    // batch being built and the one being exported.
    let bound = 100 + (2 + 1) * 10 + 10 + 10;
    assert!(c.in_flight as usize <= bound, "{c:?}");
    assert_eq!(c.accepted as usize, accepted);
    assert_eq!(c.accepted + c.dropped.queue_full, 1000);
    assert!(c.dropped.queue_full > 0, "{c:?}");
    assert!(accepted > 100, "intake kept flowing while the sink hung: {accepted}");
    assert!(sink.calls.lock().unwrap().len() >= 2, "the export timed out and was retried");
    assert_invariant(&c);

    // Flush gives up at its deadline and says how much is left.
    let started = tokio::time::Instant::now();
    let report = p.flush(Duration::from_millis(150)).await;
    assert!(started.elapsed() < Duration::from_millis(1000));
    assert!(report.remaining > 0);

    // Shutdown drops what is left, counted, and still shuts the sink down.
    let report = p.shutdown(Duration::from_millis(150)).await;
    let c = report.counters;
    assert_eq!(c.in_flight, 0);
    assert_eq!(c.dropped.shutdown_timeout, report.remaining);
    assert_invariant(&c);
    assert_eq!(sink.shutdowns.load(Ordering::SeqCst), 1);
    assert!(!p.log(event(0)));
    assert_eq!(p.counters().dropped.closed, 1);
}

#[tokio::test]
async fn queue_full_under_a_burst_drops_and_counts() {
    let sink = Recorder::forever(Answer::Hang);
    let s = {
        let mut ps = settings();
        ps.queue_capacity = 50;
        ps.max_pending_batches = 1;
        ps
    };
    let p = Pipeline::start(s, Arc::clone(&sink)).unwrap();
    let events: Vec<EnrichedEvent> = (0..5_000).map(event).collect();
    let accepted = events.into_iter().filter(|_| true).map(|e| p.log(e)).filter(|a| *a).count();
    let c = p.counters();
    assert_eq!(c.accepted as usize, accepted);
    assert_eq!(c.accepted + c.dropped.queue_full, 5_000);
    assert!(c.dropped.queue_full >= 4_000, "{c:?}");
    let _ = p.shutdown(Duration::from_millis(50)).await;
}

#[tokio::test]
async fn too_large_events_are_dropped() {
    let sink = Recorder::scripted(&[]);
    let p = Pipeline::start(settings(), Arc::clone(&sink)).unwrap();
    p.log(event_with(1, &"x".repeat(120 * 1024)));
    p.log(event(2));
    assert_eq!(p.flush(Duration::from_secs(2)).await.remaining, 0);
    let c = p.counters();
    assert_eq!((c.delivered, c.dropped.too_large), (1, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounting_holds_under_concurrent_producers() {
    let sink = Recorder::scripted(&[
        Answer::Retry,
        Answer::Reject,
        Answer::HalfRetry,
        Answer::Ok,
        Answer::Reject,
    ]);
    let s = {
        let mut ps = settings();
        ps.queue_capacity = 2_000;
        ps.max_batch_events = 100;
        ps
    };
    let p = Pipeline::start(s, Arc::clone(&sink)).unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (p, done) = (p.clone(), Arc::clone(&done));
        std::thread::spawn(move || {
            let mut samples = 0;
            while !done.load(Ordering::Relaxed) {
                let c = p.counters();
                // Raw check (no saturation): outcomes never exceed acceptances.
                assert!(c.delivered + c.dropped.after_accept() <= c.accepted, "{c:?}");
                assert_invariant(&c);
                samples += 1;
            }
            samples
        })
    };
    let producers: Vec<_> = (0..4)
        .map(|t| {
            let p = p.clone();
            std::thread::spawn(move || {
                for i in 0..5_000 {
                    p.log(event(t * 10_000 + i));
                    if i % 500 == 0 {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                }
            })
        })
        .collect();
    for h in producers {
        h.join().unwrap();
    }
    let report = p.flush(Duration::from_secs(10)).await;
    done.store(true, Ordering::Relaxed);
    assert!(watcher.join().unwrap() > 10);
    assert_eq!(report.remaining, 0);
    let c = p.counters();
    assert_eq!(c.accepted + c.dropped.queue_full + c.dropped.closed, 20_000);
    assert_eq!(c.in_flight, 0);
    assert_invariant(&c);
    let delivered = sink.delivered();
    let unique: HashSet<Uuid> = delivered.iter().copied().collect();
    assert_eq!(unique.len(), delivered.len(), "no event delivered twice");
    assert_eq!(c.delivered as usize, delivered.len(), "delivered counts what the sink got");
    assert!(c.dropped.rejected_by_sink >= 100, "{c:?}");
}

#[tokio::test]
async fn per_event_fates_retry_and_reject_exactly_those_events() {
    use EventFate::{Delivered as D, Rejected as X, Retry as R};
    let sink = Recorder::scripted(&[Answer::Fates(&[R, X, D, D, D, D, D, D, D, R])]);
    let p = Pipeline::start(settings(), Arc::clone(&sink)).unwrap();
    for i in 0..10 {
        p.log(event(i));
    }
    assert_eq!(p.flush(Duration::from_secs(2)).await.remaining, 0);
    assert_eq!(sink.batch_sizes(), vec![10, 2], "one retry of the two events asked for");
    let calls = sink.calls.lock().unwrap().clone();
    let resent: Vec<Uuid> = calls[1].events.iter().map(|e| e.uuid).collect();
    assert_eq!(resent, [calls[0].events[0].uuid, calls[0].events[9].uuid]);
    let delivered = sink.delivered();
    assert_eq!(delivered.iter().collect::<HashSet<_>>().len(), 9);
    assert_eq!(delivered.len(), 9, "no event delivered twice");
    let c = p.counters();
    assert_eq!((c.accepted, c.delivered, c.dropped.rejected_by_sink, c.retries), (10, 9, 1, 1));
    assert_eq!(c.mismatched_fates, 0);
    assert_invariant(&c);
}

#[tokio::test]
async fn fates_for_fewer_events_retry_the_events_left_without_one() {
    use EventFate::Delivered as D;
    let sink = Recorder::scripted(&[Answer::Fates(&[D; 4])]);
    let p = Pipeline::start(settings(), Arc::clone(&sink)).unwrap();
    for i in 0..10 {
        p.log(event(i));
    }
    assert_eq!(p.flush(Duration::from_secs(2)).await.remaining, 0);
    assert_eq!(sink.batch_sizes(), vec![10, 6], "the six events without a fate are resent");
    let delivered = sink.delivered();
    assert_eq!(delivered.iter().collect::<HashSet<_>>().len(), 10);
    assert_eq!(delivered.len(), 10, "no event delivered twice");
    let c = p.counters();
    assert_eq!((c.delivered, c.mismatched_fates), (10, 6), "the sink bug is counted");
    assert_invariant(&c);
}

#[tokio::test]
async fn fates_for_more_events_are_ignored_and_flush_completes() {
    use EventFate::{Delivered as D, Rejected as X};
    let sink = Recorder::scripted(&[Answer::Fates(&[D, D, D, D, D, D, D, D, D, D, X, X, X])]);
    let p = Pipeline::start(settings(), Arc::clone(&sink)).unwrap();
    for i in 0..10 {
        p.log(event(i));
    }
    let started = tokio::time::Instant::now();
    assert_eq!(p.flush(Duration::from_secs(2)).await.remaining, 0);
    assert!(started.elapsed() < Duration::from_secs(1), "flush did not wait for its deadline");
    assert_eq!(sink.batch_sizes(), vec![10]);
    let c = p.counters();
    assert_eq!((c.delivered, c.dropped.rejected_by_sink, c.in_flight), (10, 0, 0));
    assert_eq!(c.mismatched_fates, 3);
    assert_invariant(&c);
}

#[tokio::test]
async fn a_panicking_sink_loses_only_its_batch_and_flush_completes() {
    let sink = Recorder::scripted(&[Answer::Panic]);
    let p = Pipeline::start(settings(), Arc::clone(&sink)).unwrap();
    for i in 0..5 {
        p.log(event(i));
    }
    let report = p.flush(Duration::from_secs(2)).await;
    assert_eq!(report.remaining, 0, "{report:?}");
    // The pipeline keeps working after the panic.
    for i in 5..8 {
        p.log(event(i));
    }
    assert_eq!(p.flush(Duration::from_secs(2)).await.remaining, 0);
    assert_eq!(sink.batch_sizes(), vec![5, 3], "a panicked batch is not retried");
    let c = p.counters();
    assert_eq!((c.accepted, c.delivered, c.dropped.sink_panicked), (8, 3, 5));
    assert_invariant(&c);
    let report = p.shutdown(Duration::from_secs(1)).await;
    assert_eq!(report.counters.dropped.shutdown_timeout, 0);
}

/// A sink whose `shutdown` panics.
struct PanicsOnShutdown;

#[async_trait]
impl EventSink for PanicsOnShutdown {
    async fn export(&self, _: &Batch) -> ExportOutcome {
        ExportOutcome::Delivered
    }

    async fn shutdown(&self) {
        panic!("the sink's shutdown panicked (on purpose)");
    }
}

#[tokio::test]
async fn a_sink_panicking_in_shutdown_does_not_unwind_into_the_caller() {
    let p = Pipeline::start(settings(), PanicsOnShutdown).unwrap();
    p.log(event(1));
    let report = p.shutdown(Duration::from_secs(1)).await;
    assert_eq!((report.remaining, report.counters.delivered), (0, 1));
}

#[tokio::test]
async fn a_huge_retry_after_drops_within_the_budget_without_panicking() {
    // What `Retry-After: 18446744073709551615` parses to; `Instant + Duration::MAX` panics.
    for wait in [Duration::MAX, Duration::from_secs(u64::MAX), Duration::from_secs(3)] {
        let sink = Recorder::scripted(&[Answer::RetryAfter(wait)]);
        let p = Pipeline::start(settings(), Arc::clone(&sink)).unwrap();
        for i in 0..5 {
            p.log(event(i));
        }
        let started = tokio::time::Instant::now();
        let report = p.flush(Duration::from_secs(2)).await;
        assert_eq!(report.remaining, 0, "{wait:?}: {report:?}");
        assert!(started.elapsed() < Duration::from_secs(1), "not parked until the deadline");
        // Waiting as asked would overrun the 2 s budget: dropped now, not parked.
        let c = report.counters;
        assert_eq!((c.delivered, c.dropped.retry_budget_exhausted), (0, 5), "{wait:?}");
        assert_eq!(sink.batch_sizes(), vec![5]);
        assert_invariant(&c);
    }
}

#[tokio::test]
async fn a_retry_after_within_the_budget_is_honoured() {
    let wait = Duration::from_millis(400); // above `retry_max_delay` (200 ms)
    let sink = Recorder::scripted(&[Answer::RetryAfter(wait)]);
    let p = Pipeline::start(settings(), Arc::clone(&sink)).unwrap();
    p.log(event(1));
    let started = tokio::time::Instant::now();
    assert_eq!(p.flush(Duration::from_secs(2)).await.remaining, 0);
    assert!(started.elapsed() >= wait, "{:?}", started.elapsed());
    assert_eq!(sink.batch_sizes(), vec![1, 1]);
    assert_eq!(p.counters().delivered, 1);
}

#[tokio::test]
async fn huge_durations_in_settings_and_deadlines_do_not_panic() {
    let sink = Recorder::scripted(&[Answer::Retry]);
    let s = {
        let mut ps = settings();
        ps.max_batch_age = Duration::MAX;
        ps.retry_max_delay = Duration::MAX;
        ps.retry_budget = Duration::MAX;
        ps.export_timeout = Some(Duration::MAX);
        ps
    };
    let p = Pipeline::start(s, Arc::clone(&sink)).unwrap();
    for i in 0..3 {
        p.log(event(i));
    }
    let report = tokio::time::timeout(Duration::from_secs(5), p.flush(Duration::MAX))
        .await
        .expect("flush returns once everything is delivered");
    assert_eq!(report.remaining, 0);
    assert_eq!(sink.batch_sizes(), vec![3, 3]);
    p.log(event(4));
    let report = tokio::time::timeout(Duration::from_secs(5), p.shutdown(Duration::MAX))
        .await
        .expect("shutdown returns once everything is delivered");
    assert_eq!((report.remaining, report.counters.delivered), (0, 4));
}

#[tokio::test]
async fn stdout_sink_writes_json_lines_through_the_core_sink() {
    let (reader, writer) = tokio::io::duplex(1 << 20);
    let p = Pipeline::start(settings(), StdoutSink::new(writer)).unwrap();
    let config = Config::parse(r#"{"e": {"id": 9, "name": "e", "type": "feature_rollout", "start_ts": 0,
        "stop_ts": 4102444800, "experiment": {"experiment_version": 1, "variants": [{"name": "on", "size": 1.0}]}}}"#).unwrap();
    let mut request = Experiments::new(&config, 1.7e9, p.sink(Some(Arc::from("req-7"))));
    let inputs = Inputs::new().with("user_id", "t2_1");
    assert_eq!(request.variant("e", &inputs, None).unwrap(), Some("on"));
    request.expose("e", Some("on"), &inputs);
    drop(request);
    let report = p.shutdown(Duration::from_secs(2)).await;
    assert_eq!((report.remaining, report.counters.delivered), (0, 2));
    let mut text = String::new();
    use tokio::io::AsyncReadExt;
    let mut reader = reader;
    let mut buf = vec![0u8; 1 << 16];
    let n = reader.read(&mut buf).await.unwrap();
    text.push_str(std::str::from_utf8(&buf[..n]).unwrap());
    let lines: Vec<serde_json::Value> =
        text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["event_type"], "choose");
    assert_eq!(lines[1]["event_type"], "expose");
    assert_eq!(lines[0]["correlation_id"], "req-7");
    assert_eq!(lines[1]["correlation_id"], "req-7");
}

#[tokio::test]
async fn batches_are_encoded_as_the_sink_asks() {
    let sink = Recorder::with_profile(SinkProfile::new(Encoding::V2));
    // No encoding in the settings: the sink's is used.
    let p = Pipeline::start(settings(), Arc::clone(&sink)).unwrap();
    assert_eq!(p.settings().encoding, Some(Encoding::V2));
    p.log(event(1));
    p.flush(Duration::from_secs(1)).await;
    let calls = sink.calls.lock().unwrap();
    assert_eq!(calls[0].encoding, Encoding::V2);
    let v: serde_json::Value = serde_json::from_slice(&calls[0].events[0].payload).unwrap();
    assert_eq!(v["1"]["str"], "experiment");
}

#[tokio::test]
async fn settings_that_contradict_the_sink_refuse_to_start() {
    let profile = SinkProfile::new(Encoding::V2)
        .max_batch_bytes(64 * 1024)
        .max_concurrent_exports(4)
        .min_export_timeout(Duration::from_secs(40));
    let start = |edit: fn(&mut PipelineSettings)| {
        let mut s = PipelineSettings::default();
        edit(&mut s);
        Pipeline::start(s, Recorder::with_profile(profile.clone()))
    };
    let field = |r: Result<Pipeline, PipelineError>| match r {
        Err(PipelineError::Contradiction { field, .. }) => field,
        other => panic!("expected a contradiction, got {other:?}"),
    };
    assert_eq!(field(start(|s| s.encoding = Some(Encoding::Json))), "encoding");
    assert_eq!(field(start(|s| s.max_batch_bytes = Some(64 * 1024 + 1))), "max_batch_bytes");
    assert_eq!(field(start(|s| s.max_concurrent_exports = Some(5))), "max_concurrent_exports");
    assert_eq!(
        field(start(|s| s.export_timeout = Some(Duration::from_secs(39)))),
        "export_timeout"
    );
    let message = start(|s| s.encoding = Some(Encoding::Json)).unwrap_err().to_string();
    assert_eq!(message, "pipeline setting `encoding` is json but the sink needs v2");
    // The sink's own limits fill what the settings leave open; lower values are kept.
    let p = start(|_| {}).unwrap();
    let r = p.settings();
    assert_eq!(
        (r.encoding, r.max_batch_bytes, r.max_concurrent_exports, r.export_timeout),
        (Some(Encoding::V2), Some(64 * 1024), Some(4), Some(Duration::from_secs(40)))
    );
    let p = start(|s| {
        s.max_batch_bytes = Some(1024);
        s.max_concurrent_exports = Some(2);
    })
    .unwrap();
    assert_eq!(
        (p.settings().max_batch_bytes, p.settings().max_concurrent_exports),
        (Some(1024), Some(2))
    );
}

#[tokio::test]
async fn settings_out_of_range_are_errors_naming_the_field_not_clamps() {
    let check = |edit: fn(&mut PipelineSettings), expected: &str| {
        let mut s = PipelineSettings::default();
        edit(&mut s);
        match Pipeline::start(s, Recorder::scripted(&[])) {
            Err(PipelineError::Settings { field, message }) => {
                assert_eq!(field, expected, "{message}");
            }
            other => panic!("{expected}: expected a settings error, got {other:?}"),
        }
    };
    check(|s| s.queue_capacity = 0, "queue_capacity");
    check(|s| s.max_batch_events = 0, "max_batch_events");
    check(|s| s.max_batch_events = s.queue_capacity + 1, "max_batch_events");
    check(|s| s.max_pending_batches = 0, "max_pending_batches");
    check(|s| s.max_concurrent_exports = Some(0), "max_concurrent_exports");
    check(|s| s.max_batch_bytes = Some(0), "max_batch_bytes");
    check(|s| s.max_batch_age = Duration::ZERO, "max_batch_age");
    check(|s| s.export_timeout = Some(Duration::ZERO), "export_timeout");
    check(|s| s.retry_max_delay = Duration::from_millis(1), "retry_max_delay");
    let mut s = PipelineSettings::default();
    s.max_batch_events = s.queue_capacity + 1;
    let message = s.validate().unwrap_err().to_string();
    assert_eq!(
        message,
        "pipeline setting `max_batch_events`: 10001 is larger than queue_capacity (10000): a batch could never fill"
    );
}

#[test]
fn start_needs_a_runtime() {
    assert!(Pipeline::start(PipelineSettings::default(), Recorder::scripted(&[])).is_err());
}

#[test]
fn settings_deserialize_with_human_durations() {
    let s: PipelineSettings = serde_json::from_str(
        r#"{"max_batch_age": "250ms", "retry_budget": "5m", "encoding": "v2", "export_timeout": "45s"}"#,
    )
    .unwrap();
    assert_eq!(s.max_batch_age, Duration::from_millis(250));
    assert_eq!(s.retry_budget, Duration::from_secs(300));
    assert_eq!(s.encoding, Some(Encoding::V2));
    assert_eq!(s.export_timeout, Some(Duration::from_secs(45)));
    assert_eq!(s.queue_capacity, 10_000);
    assert_eq!(s.max_batch_bytes, None, "the sink's limit, or 500 KiB");
    assert_eq!(s.retry_base, Duration::from_secs(2));
    let err = serde_json::from_str::<PipelineSettings>(r#"{"max_batch_event": 5}"#).unwrap_err();
    assert!(err.to_string().contains("unknown field `max_batch_event`"), "{err}");
}

/// An event type the pipeline was not written for (another dialect's exposure, a service's
/// own event) goes through the same pipeline and sinks, in the sink's encoding.
#[tokio::test]
async fn any_event_that_encodes_itself_goes_through_the_pipeline() {
    struct Exposure {
        n: u32,
        uuid: Uuid,
    }
    impl experiments_events::SinkEvent for Exposure {
        fn encode(
            &self,
            encoding: Encoding,
            out: &mut Vec<u8>,
        ) -> Result<(), experiments_events::EncodeError> {
            if self.n == 3 {
                return Err(experiments_events::EncodeError::new("cannot encode 3"));
            }
            let doc = match encoding {
                Encoding::V2 => serde_json::json!({"2": {"str": "expose"}, "9": {"i64": self.n}}),
                _ => serde_json::json!({"event_type": "expose", "n": self.n}),
            };
            Ok(serde_json::to_writer(out, &doc)?)
        }
        fn kind(&self) -> &'static str {
            "expose"
        }
        fn key(&self) -> Option<String> {
            Some(format!("user-{}", self.n))
        }
        fn uuid(&self) -> Uuid {
            self.uuid
        }
    }
    let sink = Recorder::with_profile(SinkProfile::new(Encoding::V2));
    let p = Pipeline::start(settings(), Arc::clone(&sink)).unwrap();
    for n in 0..5 {
        assert!(p.log(Exposure { n, uuid: Uuid::new_v4() }));
    }
    p.log(event(9)); // baseplate's events share the batch
    let report = p.flush(Duration::from_secs(2)).await;
    assert_eq!(report.remaining, 0);
    assert_eq!((report.counters.delivered, report.counters.dropped.encode_error), (5, 1));
    let calls = sink.calls.lock().unwrap();
    let events: Vec<_> = calls.iter().flat_map(|b| b.events.iter()).collect();
    assert_eq!(events[0].kind, "expose");
    assert_eq!(events[0].key.as_deref(), Some("user-0"));
    let first: serde_json::Value = serde_json::from_slice(&events[0].payload).unwrap();
    assert_eq!(first, serde_json::json!({"2": {"str": "expose"}, "9": {"i64": 0}}));
    let last: serde_json::Value = serde_json::from_slice(&events[4].payload).unwrap();
    assert_eq!(last["1"]["str"], "experiment", "the baseplate event in v2 too");
}
