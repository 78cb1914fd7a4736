//! The one delivery pipeline every sink shares: a bounded, non-blocking intake; a batcher
//! (count, bytes, age); exporters with retry and backoff within a budget, running while
//! intake keeps flowing; accounting of every event; flush and shutdown with deadlines.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use crossbeam_queue::ArrayQueue;
use crossbeam_utils::CachePadded;
use experiments_core::{Event, EventHandler};
use futures_util::FutureExt;
use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, Semaphore, mpsc};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

use crate::model::{EncodeError, Encoding, EnrichedEvent, MAX_EVENT_BYTES, SinkEvent};
use crate::sink::{Batch, EncodedEvent, EventFate, EventSink, ExportOutcome, SinkProfile};

/// Pipeline settings. Durations deserialize from human forms (`"1s"`, `"500ms"`).
///
/// The fields left `None` are taken from the sink's [`SinkProfile`] when the pipeline starts
/// (`encoding`, `max_batch_bytes`, `max_concurrent_exports`, `export_timeout`); a value set
/// here that contradicts the sink makes [`Pipeline::start`] fail with
/// [`PipelineError::Contradiction`] instead of sending what the destination cannot read.
/// [`Pipeline::settings`] shows the resolved values (every option `Some`).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct PipelineSettings {
    /// Events buffered between `log` and the batcher (10,000); when full, new events are
    /// dropped (`queue_full`).
    pub queue_capacity: usize,
    /// Encoding of the events: the sink's when `None` (the default); when set, it must be
    /// the sink's.
    pub encoding: Option<Encoding>,
    /// Most events in one batch (1,000; at most `queue_capacity`).
    pub max_batch_events: usize,
    /// Most payload bytes in one batch: the sink's limit when `None`, else 500 KiB; when
    /// set, at most the sink's limit.
    pub max_batch_bytes: Option<usize>,
    /// Longest time an event waits for its batch to fill (1 s).
    #[serde(with = "humantime_serde")]
    pub max_batch_age: Duration,
    /// Serialized events above this, or above the batch byte limit, are dropped
    /// (`too_large`; 100 KiB).
    pub max_event_bytes: usize,
    /// Complete batches waiting for an exporter (8). Memory is bounded: at most
    /// `queue_capacity + (max_pending_batches + 2 + max_concurrent_exports) *
    /// max_batch_events + 256` events are held at once (the 256: encoded events the batcher
    /// drops together); beyond that `log` drops (`queue_full`).
    pub max_pending_batches: usize,
    /// Batches exported at the same time: the sink's wish when `None`, else 1 (batches
    /// delivered in order); when set, at most the sink's.
    pub max_concurrent_exports: Option<usize>,
    /// First retry delay, doubled on each attempt (2 s).
    #[serde(with = "humantime_serde")]
    pub retry_base: Duration,
    /// Longest single retry delay (60 s; at least `retry_base`).
    #[serde(with = "humantime_serde")]
    pub retry_max_delay: Duration,
    /// Total time a batch may spend being retried before it is dropped
    /// (`retry_budget_exhausted`; 300 s).
    #[serde(with = "humantime_serde")]
    pub retry_budget: Duration,
    /// An export call taking longer than this counts as a retryable failure: 30 s, or the
    /// sink's minimum when longer, when `None`; when set, at least the sink's minimum.
    #[serde(with = "humantime_serde")]
    pub export_timeout: Option<Duration>,
}

/// Default [`PipelineSettings::max_batch_bytes`] when neither the settings nor the sink
/// name one.
pub const DEFAULT_MAX_BATCH_BYTES: usize = 500 * 1024;
/// Default [`PipelineSettings::export_timeout`] when neither the settings nor the sink name
/// one.
pub const DEFAULT_EXPORT_TIMEOUT: Duration = Duration::from_secs(30);

impl Default for PipelineSettings {
    fn default() -> Self {
        PipelineSettings {
            queue_capacity: 10_000,
            encoding: None,
            max_batch_events: 1_000,
            max_batch_bytes: None,
            max_batch_age: Duration::from_secs(1),
            max_event_bytes: MAX_EVENT_BYTES,
            max_pending_batches: 8,
            max_concurrent_exports: None,
            retry_base: Duration::from_secs(2),
            retry_max_delay: Duration::from_secs(60),
            retry_budget: Duration::from_secs(300),
            export_timeout: None,
        }
    }
}

impl PipelineSettings {
    /// Checks the settings on their own (the sink is checked by [`PipelineSettings::resolve`]):
    /// zero sizes, a batch larger than the queue, a retry delay cap below the base, zero
    /// durations. Never clamps silently.
    pub fn validate(&self) -> Result<(), PipelineError> {
        let bad =
            |field: &'static str, message: String| Err(PipelineError::Settings { field, message });
        let positive = [
            ("queue_capacity", self.queue_capacity),
            ("max_batch_events", self.max_batch_events),
            ("max_event_bytes", self.max_event_bytes),
            ("max_pending_batches", self.max_pending_batches),
            ("max_batch_bytes", self.max_batch_bytes.unwrap_or(1)),
            ("max_concurrent_exports", self.max_concurrent_exports.unwrap_or(1)),
        ];
        for (field, value) in positive {
            if value == 0 {
                return bad(field, "must be at least 1".into());
            }
        }
        if self.max_batch_events > self.queue_capacity {
            return bad(
                "max_batch_events",
                format!(
                    "{} is larger than queue_capacity ({}): a batch could never fill",
                    self.max_batch_events, self.queue_capacity
                ),
            );
        }
        let durations = [
            ("max_batch_age", self.max_batch_age),
            ("retry_budget", self.retry_budget),
            ("export_timeout", self.export_timeout.unwrap_or(DEFAULT_EXPORT_TIMEOUT)),
        ];
        for (field, value) in durations {
            if value.is_zero() {
                return bad(field, "must be longer than zero".into());
            }
        }
        if self.retry_max_delay < self.retry_base {
            return bad(
                "retry_max_delay",
                format!(
                    "{:?} is shorter than retry_base ({:?})",
                    self.retry_max_delay, self.retry_base
                ),
            );
        }
        Ok(())
    }

    /// These settings completed from a sink's `profile`: every option filled in, or
    /// [`PipelineError::Contradiction`] naming the field the settings and the sink disagree
    /// on, or [`PipelineError::Settings`] from [`PipelineSettings::validate`].
    pub fn resolve(&self, profile: &SinkProfile) -> Result<PipelineSettings, PipelineError> {
        self.validate()?;
        let contradiction = |field: &'static str, settings: String, sink: String| {
            Err(PipelineError::Contradiction { field, settings, sink })
        };
        if let Some(e) = self.encoding
            && e != profile.encoding
        {
            return contradiction("encoding", e.as_str().into(), profile.encoding.as_str().into());
        }
        let max_batch_bytes = match (self.max_batch_bytes, profile.max_batch_bytes) {
            (Some(mine), Some(limit)) if mine > limit => {
                return contradiction(
                    "max_batch_bytes",
                    mine.to_string(),
                    format!("at most {limit}"),
                );
            }
            (Some(mine), _) => mine,
            (None, Some(limit)) => limit,
            (None, None) => DEFAULT_MAX_BATCH_BYTES,
        };
        let max_concurrent_exports =
            match (self.max_concurrent_exports, profile.max_concurrent_exports) {
                (Some(mine), Some(most)) if mine > most => {
                    return contradiction(
                        "max_concurrent_exports",
                        mine.to_string(),
                        format!("at most {most}"),
                    );
                }
                (Some(mine), _) => mine,
                (None, Some(wish)) => wish.max(1),
                (None, None) => 1,
            };
        let export_timeout = match (self.export_timeout, profile.min_export_timeout) {
            (Some(mine), Some(least)) if mine < least => {
                return contradiction(
                    "export_timeout",
                    format!("{mine:?}"),
                    format!("at least {least:?}"),
                );
            }
            (Some(mine), _) => mine,
            (None, Some(least)) => least.max(DEFAULT_EXPORT_TIMEOUT),
            (None, None) => DEFAULT_EXPORT_TIMEOUT,
        };
        let resolved = PipelineSettings {
            encoding: Some(profile.encoding),
            max_batch_bytes: Some(max_batch_bytes),
            max_concurrent_exports: Some(max_concurrent_exports),
            export_timeout: Some(export_timeout),
            ..self.clone()
        };
        Ok(resolved)
    }
}

/// The resolved values the pipeline's tasks use (copied out of the resolved settings once).
#[derive(Clone, Copy, Debug)]
struct Limits {
    encoding: Encoding,
    max_batch_events: usize,
    max_batch_bytes: usize,
    max_event_bytes: usize,
    max_batch_age: Duration,
    max_concurrent_exports: usize,
    retry_base: Duration,
    retry_max_delay: Duration,
    retry_budget: Duration,
    export_timeout: Duration,
}

impl Limits {
    fn of(s: &PipelineSettings) -> Limits {
        Limits {
            encoding: s.encoding.unwrap_or_default(),
            max_batch_events: s.max_batch_events,
            max_batch_bytes: s.max_batch_bytes.unwrap_or(DEFAULT_MAX_BATCH_BYTES),
            // An event that cannot fit in a batch is too large, whatever the settings say.
            max_event_bytes: s
                .max_event_bytes
                .min(s.max_batch_bytes.unwrap_or(DEFAULT_MAX_BATCH_BYTES)),
            max_batch_age: s.max_batch_age,
            max_concurrent_exports: s.max_concurrent_exports.unwrap_or(1),
            retry_base: s.retry_base,
            retry_max_delay: s.retry_max_delay,
            retry_budget: s.retry_budget,
            export_timeout: s.export_timeout.unwrap_or(DEFAULT_EXPORT_TIMEOUT),
        }
    }
}

/// Events dropped, by reason.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Dropped {
    /// The intake queue was full (never accepted).
    pub queue_full: u64,
    /// `log` after shutdown began (never accepted).
    pub closed: u64,
    /// Serialized size above the limit.
    pub too_large: u64,
    /// Could not be serialized.
    pub encode_error: u64,
    /// The sink refused them for good.
    pub rejected_by_sink: u64,
    /// The sink's export panicked on their batch. The batch is not retried: a panic is a
    /// bug in the sink that the same batch would most likely hit again, and whether part of
    /// it was sent before the panic is unknown.
    pub sink_panicked: u64,
    /// Still failing when the retry budget ran out.
    pub retry_budget_exhausted: u64,
    /// Still pending when the shutdown deadline passed.
    pub shutdown_timeout: u64,
}

impl Dropped {
    /// Drops of accepted events (all reasons but `queue_full` and `closed`).
    pub fn after_accept(&self) -> u64 {
        self.too_large
            + self.encode_error
            + self.rejected_by_sink
            + self.sink_panicked
            + self.retry_budget_exhausted
            + self.shutdown_timeout
    }

    /// Every drop.
    pub fn total(&self) -> u64 {
        self.after_accept() + self.queue_full + self.closed
    }
}

/// A snapshot of the pipeline's accounting. Invariant:
/// `accepted == delivered + dropped.after_accept() + in_flight`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Counters {
    /// Events taken into the queue.
    pub accepted: u64,
    /// Events the sink confirmed.
    pub delivered: u64,
    /// Events dropped, by reason.
    pub dropped: Dropped,
    /// Accepted events neither delivered nor dropped yet.
    pub in_flight: u64,
    /// Export attempts that failed and were retried.
    pub retries: u64,
    /// Fates a sink reported that did not match its batch (see [`ExportOutcome::resolve`]:
    /// fates past the end are ignored, events without one are retried). Non-zero means the
    /// sink has a bug; the accounting stays exact regardless.
    pub mismatched_fates: u64,
}

/// The counters, split by who writes them so producers and the delivery tasks do not
/// contend for one cache line.
#[derive(Default)]
struct Atomics {
    /// Written by `log` (the request path).
    intake: CachePadded<[AtomicU64; 3]>,
    /// Written by the batcher and the exporters.
    outcomes: CachePadded<[AtomicU64; 9]>,
}

/// What a counter counts, for the `metrics` facade.
#[derive(Clone, Copy)]
enum Kind {
    Accepted,
    Delivered,
    QueueFull,
    Closed,
    TooLarge,
    EncodeError,
    Rejected,
    SinkPanicked,
    BudgetExhausted,
    ShutdownTimeout,
    Retry,
    MismatchedFate,
}

impl Atomics {
    fn cell(&self, kind: Kind) -> &AtomicU64 {
        match kind {
            Kind::Accepted => &self.intake[0],
            Kind::QueueFull => &self.intake[1],
            Kind::Closed => &self.intake[2],
            Kind::Delivered => &self.outcomes[0],
            Kind::TooLarge => &self.outcomes[1],
            Kind::EncodeError => &self.outcomes[2],
            Kind::Rejected => &self.outcomes[3],
            Kind::BudgetExhausted => &self.outcomes[4],
            Kind::ShutdownTimeout => &self.outcomes[5],
            Kind::Retry => &self.outcomes[6],
            Kind::SinkPanicked => &self.outcomes[7],
            Kind::MismatchedFate => &self.outcomes[8],
        }
    }

    /// Adds `n` to a counter; returns its new value.
    fn add(&self, kind: Kind, n: u64) -> u64 {
        if n == 0 {
            return self.cell(kind).load(Ordering::SeqCst);
        }
        let now = self.cell(kind).fetch_add(n, Ordering::SeqCst).wrapping_add(n);
        #[cfg(feature = "metrics")]
        {
            let label = match kind {
                Kind::Accepted => "accepted",
                Kind::Delivered => "delivered",
                Kind::QueueFull => "queue_full",
                Kind::Closed => "closed",
                Kind::TooLarge => "too_large",
                Kind::EncodeError => "encode_error",
                Kind::Rejected => "rejected_by_sink",
                Kind::BudgetExhausted => "retry_budget_exhausted",
                Kind::ShutdownTimeout => "shutdown_timeout",
                Kind::Retry => "retry",
                Kind::SinkPanicked => "sink_panicked",
                Kind::MismatchedFate => "mismatched_fate",
            };
            metrics::counter!("experiments_events_total", "outcome" => label).increment(n);
        }
        now
    }

    fn snapshot(&self) -> Counters {
        let get = |k: Kind| self.cell(k).load(Ordering::SeqCst);
        // Outcomes first, then `accepted`: an event is accepted before any outcome, so this
        // order never shows more outcomes than acceptances.
        let delivered = get(Kind::Delivered);
        let dropped = Dropped {
            too_large: get(Kind::TooLarge),
            encode_error: get(Kind::EncodeError),
            rejected_by_sink: get(Kind::Rejected),
            sink_panicked: get(Kind::SinkPanicked),
            retry_budget_exhausted: get(Kind::BudgetExhausted),
            shutdown_timeout: get(Kind::ShutdownTimeout),
            queue_full: get(Kind::QueueFull),
            closed: get(Kind::Closed),
        };
        let accepted = get(Kind::Accepted);
        Counters {
            accepted,
            delivered,
            dropped,
            in_flight: accepted.saturating_sub(delivered + dropped.after_accept()),
            retries: get(Kind::Retry),
            mismatched_fates: get(Kind::MismatchedFate),
        }
    }
}

struct Inner {
    /// The intake: lock-free and bounded; `log` never waits and never wakes anyone for a
    /// single event.
    queue: ArrayQueue<Queued>,
    /// Wakes the batcher when a full batch is queued or a flush is requested.
    wake: Notify,
    /// Set when a wake-up is pending, so producers wake the batcher once, not per event.
    wake_pending: AtomicBool,
    flush_requested: AtomicBool,
    counters: Atomics,
    progress: Notify,
    closed: AtomicBool,
    /// The resolved settings, as given to the caller.
    settings: PipelineSettings,
    limits: Limits,
}

impl Inner {
    fn in_flight(&self) -> u64 {
        self.counters.snapshot().in_flight
    }

    fn outcome(&self, kind: Kind, n: u64) {
        self.counters.add(kind, n);
        self.progress.notify_waiters();
    }
}

/// An event in the intake queue: baseplate's in place (no allocation of its own), any other
/// kind boxed.
enum Queued {
    Enriched(EnrichedEvent),
    Other(Box<dyn SinkEvent>),
}

impl Queued {
    fn as_event(&self) -> &dyn SinkEvent {
        match self {
            Queued::Enriched(e) => e,
            Queued::Other(e) => e.as_ref(),
        }
    }
}

/// The result of a flush or a shutdown.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct FlushReport {
    /// Accepted events still neither delivered nor dropped when it returned (0: complete).
    pub remaining: u64,
    /// The counters at that moment.
    pub counters: Counters,
}

/// The pipeline could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PipelineError {
    /// `start` was called outside a tokio runtime.
    #[error("the event pipeline needs a tokio runtime: {0}")]
    NoRuntime(#[from] tokio::runtime::TryCurrentError),
    /// A setting is out of range on its own.
    #[error("pipeline setting `{field}`: {message}")]
    Settings {
        /// The field, as spelled in the settings document.
        field: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// A setting contradicts what the sink needs (its [`SinkProfile`]).
    #[error("pipeline setting `{field}` is {settings} but the sink needs {sink}")]
    Contradiction {
        /// The field, as spelled in the settings document.
        field: &'static str,
        /// The value in the settings.
        settings: String,
        /// What the sink needs.
        sink: String,
    },
}

/// The event pipeline. Cheap to clone; every clone feeds the same queue. When the last
/// clone is dropped without [`Pipeline::shutdown`], the background tasks are aborted.
#[derive(Clone)]
pub struct Pipeline {
    inner: Arc<Inner>,
    tasks: Arc<std::sync::Mutex<Option<Tasks>>>,
}

struct Tasks {
    batcher: JoinHandle<()>,
    exporter: JoinHandle<()>,
    sink: Arc<dyn EventSink>,
}

impl Drop for Tasks {
    fn drop(&mut self) {
        self.batcher.abort();
        self.exporter.abort();
    }
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline").field("counters", &self.counters()).finish()
    }
}

impl Pipeline {
    /// Starts the pipeline's tasks on the current tokio runtime, batching in the encoding
    /// and within the limits of the sink's [`EventSink::profile`]. Fails on settings out of
    /// range ([`PipelineSettings::validate`]) or contradicting the sink
    /// ([`PipelineSettings::resolve`]), and outside a runtime.
    pub fn start(
        settings: PipelineSettings,
        sink: impl EventSink,
    ) -> Result<Pipeline, PipelineError> {
        let settings = settings.resolve(&sink.profile())?;
        let runtime = tokio::runtime::Handle::try_current()?;
        let limits = Limits::of(&settings);
        let (ready_tx, ready_rx) = mpsc::channel(settings.max_pending_batches);
        let inner = Arc::new(Inner {
            queue: ArrayQueue::new(settings.queue_capacity),
            wake: Notify::new(),
            wake_pending: AtomicBool::new(false),
            flush_requested: AtomicBool::new(false),
            counters: Atomics::default(),
            progress: Notify::new(),
            closed: AtomicBool::new(false),
            settings,
            limits,
        });
        let sink: Arc<dyn EventSink> = Arc::new(sink);
        let batcher = runtime.spawn(batcher(Arc::clone(&inner), ready_tx));
        let exporter = runtime.spawn(exporter(Arc::clone(&inner), Arc::clone(&sink), ready_rx));
        Ok(Pipeline {
            inner,
            tasks: Arc::new(std::sync::Mutex::new(Some(Tasks { batcher, exporter, sink }))),
        })
    }

    /// Queues an event of any kind ([`EnrichedEvent`] or any [`SinkEvent`]). Synchronous
    /// and non-blocking: when the queue is full (or the pipeline is shutting down) the event
    /// is dropped and counted. Returns whether it was accepted. Baseplate's events are
    /// stored in the queue's slots; other kinds are boxed.
    pub fn log<E: SinkEvent>(&self, event: E) -> bool {
        let mut slot = Some(event);
        let queued =
            match (&mut slot as &mut dyn std::any::Any).downcast_mut::<Option<EnrichedEvent>>() {
                Some(enriched) => enriched.take().map(Queued::Enriched),
                None => slot.take().map(|e| Queued::Other(Box::new(e))),
            };
        match queued {
            Some(queued) => self.enqueue(queued),
            None => false,
        }
    }

    /// [`Pipeline::log`] of an already boxed event.
    pub fn log_boxed(&self, event: Box<dyn SinkEvent>) -> bool {
        self.enqueue(Queued::Other(event))
    }

    fn enqueue(&self, event: Queued) -> bool {
        let c = &self.inner.counters;
        if self.inner.closed.load(Ordering::Relaxed) {
            c.add(Kind::Closed, 1);
            return false;
        }
        // Count before queueing, so no outcome is ever seen before its acceptance.
        let accepted = c.add(Kind::Accepted, 1);
        match self.inner.queue.push(event) {
            Ok(()) => {
                // Wake the batcher once per batch worth of events. Counted from our own
                // counter: reading the queue's length would touch the consumer's cache
                // line on every event.
                if accepted.is_multiple_of(self.inner.limits.max_batch_events as u64)
                    && !self.inner.wake_pending.swap(true, Ordering::AcqRel)
                {
                    self.inner.wake.notify_one();
                }
                true
            }
            Err(_) => {
                c.cell(Kind::Accepted).fetch_sub(1, Ordering::SeqCst);
                c.add(Kind::QueueFull, 1);
                false
            }
        }
    }

    /// A core [`EventHandler`] feeding this pipeline, tagging every event with
    /// `correlation_id` (e.g. the request's trace id).
    pub fn sink(&self, correlation_id: Option<Arc<str>>) -> PipelineHandle {
        PipelineHandle { pipeline: self.clone(), correlation_id }
    }

    /// The accounting now.
    pub fn counters(&self) -> Counters {
        self.inner.counters.snapshot()
    }

    /// The settings in use, resolved against the sink (every option `Some`).
    pub fn settings(&self) -> &PipelineSettings {
        &self.inner.settings
    }

    /// Sends the partial batch now and waits until every accepted event is delivered or
    /// dropped, or until `timeout`.
    pub async fn flush(&self, timeout: Duration) -> FlushReport {
        let deadline = deadline_after(timeout);
        self.request_flush();
        self.wait_idle(deadline).await
    }

    fn request_flush(&self) {
        self.inner.flush_requested.store(true, Ordering::SeqCst);
        self.inner.wake.notify_one();
    }

    async fn wait_idle(&self, deadline: Instant) -> FlushReport {
        loop {
            let notified = self.inner.progress.notified();
            if self.inner.in_flight() == 0 || Instant::now() >= deadline {
                break;
            }
            // Progress wakes us; the short period also covers a wake-up that raced.
            let wake = (Instant::now() + Duration::from_millis(10)).min(deadline);
            let _ = tokio::time::timeout_at(wake, notified).await;
        }
        let counters = self.counters();
        FlushReport { remaining: counters.in_flight, counters }
    }

    /// Stops intake, delivers what it can until `timeout`, then drops the rest (counted as
    /// `shutdown_timeout`) and shuts the sink down. Later calls return at once.
    pub async fn shutdown(&self, timeout: Duration) -> FlushReport {
        let deadline = deadline_after(timeout);
        let Some(tasks) = self.tasks.lock().ok().and_then(|mut t| t.take()) else {
            return self.wait_idle(Instant::now()).await;
        };
        self.inner.closed.store(true, Ordering::SeqCst);
        self.request_flush();
        let report = self.wait_idle(deadline).await;
        let mut tasks = tasks;
        tasks.batcher.abort();
        tasks.exporter.abort();
        let _ = (&mut tasks.batcher).await;
        let _ = (&mut tasks.exporter).await;
        // Nothing runs any more: whatever is still in flight is lost.
        let left = self.inner.in_flight();
        self.inner.outcome(Kind::ShutdownTimeout, left);
        if left > 0 {
            tracing::warn!(events = left, "experiments events dropped at shutdown deadline");
        }
        // Called inside the guarded future, so even a panic before its first await is caught.
        let stop = AssertUnwindSafe(async { tasks.sink.shutdown().await }).catch_unwind();
        let grace = deadline.max(Instant::now() + Duration::from_millis(100));
        if let Ok(Err(panic)) = tokio::time::timeout_at(grace, stop).await {
            tracing::error!(
                panic = panic_message(&*panic),
                "experiments event sink panicked in shutdown"
            );
        }
        let counters = self.counters();
        FlushReport { remaining: report.remaining, counters }
    }
}

/// A core [`EventHandler`] that enriches events and queues them in a [`Pipeline`].
#[derive(Clone, Debug)]
pub struct PipelineHandle {
    pipeline: Pipeline,
    correlation_id: Option<Arc<str>>,
}

impl EventHandler for PipelineHandle {
    fn log(&mut self, event: &Event<'_>) {
        self.pipeline.log(EnrichedEvent::new(event, self.correlation_id.clone()));
    }
}

/// Collects events into batches and hands complete ones to the exporter. It wakes when a
/// full batch is queued or a flush is requested, and on a short tick for the age limit.
async fn batcher(inner: Arc<Inner>, ready: mpsc::Sender<Batch>) {
    let s = inner.limits;
    let tick = (s.max_batch_age / 10).clamp(Duration::from_millis(1), Duration::from_millis(50));
    let new_batch = || Batch::new(s.encoding, Vec::new());
    let mut batch = new_batch();
    let mut bytes = 0usize;
    let mut deadline: Option<Instant> = None;
    let mut spent: Vec<Queued> = Vec::with_capacity(SPENT_BURST);
    loop {
        tokio::select! {
            () = inner.wake.notified() => {}
            () = tokio::time::sleep(tick) => {}
        }
        inner.wake_pending.store(false, Ordering::Release);
        while let Some(queued) = inner.queue.pop() {
            // Encoded before any await: the event itself never crosses one.
            let encoded = encode(queued.as_event(), s.encoding);
            // Dropped in bursts rather than one by one: the reference counts an event shares
            // with the request path (its experiment's attributes, the caller's inputs) then
            // move between cores once per burst instead of once per event.
            spent.push(queued);
            if spent.len() >= SPENT_BURST {
                spent.clear();
            }
            let encoded = match encoded {
                Ok(encoded) => encoded,
                Err(e) => {
                    tracing::warn!(error = %e, "experiments event could not be encoded");
                    inner.outcome(Kind::EncodeError, 1);
                    continue;
                }
            };
            let payload = &encoded.payload;
            if payload.len() > s.max_event_bytes {
                inner.outcome(Kind::TooLarge, 1);
                continue;
            }
            if !batch.is_empty() && bytes + payload.len() > s.max_batch_bytes {
                cut(&ready, &mut batch, &mut bytes, &mut deadline, new_batch()).await;
            }
            bytes += payload.len();
            batch.events.push(encoded);
            deadline.get_or_insert_with(|| deadline_after(s.max_batch_age));
            if batch.len() >= s.max_batch_events || bytes >= s.max_batch_bytes {
                cut(&ready, &mut batch, &mut bytes, &mut deadline, new_batch()).await;
            }
        }
        spent.clear();
        let flush = inner.flush_requested.swap(false, Ordering::SeqCst);
        if flush || deadline.is_some_and(|d| Instant::now() >= d) {
            cut(&ready, &mut batch, &mut bytes, &mut deadline, new_batch()).await;
        }
    }
}

/// One event in the batch's encoding, with its identity.
fn encode(event: &dyn SinkEvent, encoding: Encoding) -> Result<EncodedEvent, EncodeError> {
    let mut payload = Vec::with_capacity(512);
    event.encode(encoding, &mut payload)?;
    Ok(EncodedEvent::new(payload, event.kind(), event.key(), event.uuid()))
}

/// Most encoded events the batcher keeps before dropping them together.
const SPENT_BURST: usize = 256;

/// Hands the current batch over (waiting for room: this is the memory bound).
async fn cut(
    ready: &mpsc::Sender<Batch>,
    batch: &mut Batch,
    bytes: &mut usize,
    deadline: &mut Option<Instant>,
    fresh: Batch,
) {
    *deadline = None;
    *bytes = 0;
    let full = std::mem::replace(batch, fresh);
    if !full.is_empty() {
        // The exporter only stops at shutdown, when the batch is accounted for there.
        let _ = ready.send(full).await;
    }
}

/// Runs exports, at most `max_concurrent_exports` at a time.
async fn exporter(inner: Arc<Inner>, sink: Arc<dyn EventSink>, mut ready: mpsc::Receiver<Batch>) {
    let permits = Arc::new(Semaphore::new(inner.limits.max_concurrent_exports));
    let mut running = JoinSet::new();
    while let Some(batch) = ready.recv().await {
        let Ok(permit) = Arc::clone(&permits).acquire_owned().await else { return };
        let (inner, sink) = (Arc::clone(&inner), Arc::clone(&sink));
        running.spawn(async move {
            deliver(&inner, sink.as_ref(), batch).await;
            drop(permit);
        });
        while running.try_join_next().is_some() {}
    }
    while running.join_next().await.is_some() {}
}

/// Roughly thirty years: stands in for deadlines too far away to represent.
const FAR_FUTURE: Duration = Duration::from_secs(30 * 365 * 24 * 3600);

/// `now + d`, saturating at [`FAR_FUTURE`] from now: `Instant + Duration` panics on
/// overflow, and durations come from settings, callers and sinks (`Duration::MAX` included).
fn deadline_after(d: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(d.min(FAR_FUTURE)).unwrap_or(now)
}

/// The message of a caught panic, for logs.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("non-string panic payload")
}

/// Exports one batch, retrying with exponential backoff within the budget. Every event of
/// the batch ends with exactly one outcome counted (delivered, dropped with a reason) unless
/// the pipeline is shut down meanwhile, whatever the sink does:
///
/// - its answer is turned into one fate per event by [`ExportOutcome::resolve`] (fates that
///   do not match the batch are counted in `mismatched_fates`);
/// - an export slower than `export_timeout` is retried like a `Retryable` answer;
/// - an export that panics drops the batch (`sink_panicked`) and the pipeline carries on;
/// - a `retry_after` is honoured when it is longer than the backoff, but a wait (requested
///   or not) that would end after the retry budget drops the batch at once
///   (`retry_budget_exhausted`) instead of parking it; no value can overflow a deadline.
async fn deliver(inner: &Inner, sink: &dyn EventSink, mut batch: Batch) {
    let s = &inner.limits;
    let give_up = deadline_after(s.retry_budget);
    let mut delay = s.retry_base;
    loop {
        // `export` is called inside the guarded future, so a panic while building the future
        // is caught too.
        let attempt = AssertUnwindSafe(async { sink.export(&batch).await }).catch_unwind();
        let outcome = match tokio::time::timeout(s.export_timeout, attempt).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(panic)) => {
                let events = batch.len();
                tracing::error!(
                    events,
                    panic = panic_message(&*panic),
                    "experiments events dropped: the sink panicked"
                );
                inner.outcome(Kind::SinkPanicked, events as u64);
                return;
            }
            Err(_) => ExportOutcome::Retryable {
                reason: format!("export timed out after {:?}", s.export_timeout),
                retry_after: None,
            },
        };
        let (fates, mismatched) = outcome.resolve(batch.len());
        let reason = fates.reason();
        if mismatched > 0 {
            tracing::warn!(
                mismatched,
                events = batch.len(),
                %reason,
                "experiments event sink bug: fates for another number of events (extra ignored, missing retried)"
            );
            inner.counters.add(Kind::MismatchedFate, mismatched as u64);
        }
        let rejected = fates.count(EventFate::Rejected);
        if rejected > 0 {
            tracing::warn!(events = rejected, %reason, "experiments events rejected by the sink");
        }
        inner.counters.add(Kind::Delivered, fates.count(EventFate::Delivered) as u64);
        inner.outcome(Kind::Rejected, rejected as u64);
        let retry = fates.count(EventFate::Retry);
        if retry == 0 {
            return;
        }
        if retry < batch.len() {
            let mut fate = fates.as_slice().iter();
            batch.events.retain(|_| fate.next() == Some(&EventFate::Retry));
        }
        // Honour the destination's Retry-After when it asks for longer than our backoff, but
        // never past the budget: a longer wait could only end in a drop, so drop now.
        let backoff = delay.min(s.retry_max_delay);
        let requested = fates.requested_wait().map_or(backoff, |r| r.max(backoff));
        // Checked against the budget before it meets an `Instant`: no value can overflow.
        let until = Some(requested)
            .filter(|&wait| wait <= s.retry_budget)
            .and_then(|wait| Instant::now().checked_add(wait))
            .filter(|&until| until <= give_up);
        let Some(until) = until else {
            tracing::warn!(events = batch.len(), %reason, ?requested, "experiments events dropped: retry budget exhausted");
            inner.outcome(Kind::BudgetExhausted, batch.len() as u64);
            return;
        };
        tracing::debug!(events = batch.len(), %reason, wait = ?requested, "retrying experiments events");
        inner.counters.add(Kind::Retry, 1);
        tokio::time::sleep_until(until).await;
        delay = delay.saturating_mul(2).min(s.retry_max_delay);
    }
}
