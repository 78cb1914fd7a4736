//! What a sink implements: say what it needs ([`SinkProfile`]), export one batch, report
//! the fate of each event ([`Fates`]), shut down.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use uuid::Uuid;

use crate::model::Encoding;

/// One serialized event in a batch.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct EncodedEvent {
    /// The serialized event, in the batch's [`Batch::encoding`].
    pub payload: Vec<u8>,
    /// What kind of event it is (`"choose"`, `"expose"`; see [`crate::SinkEvent::kind`]),
    /// e.g. for a Kafka header.
    pub kind: &'static str,
    /// The event's partitioning key (for experiment events, the bucketing value as Python
    /// `str()`), when it has one.
    pub key: Option<String>,
    /// The event's uuid, stable across retries: destinations can deduplicate on it.
    pub uuid: Uuid,
}

impl EncodedEvent {
    /// An encoded event (for sinks' tests and custom pipelines).
    pub fn new(payload: Vec<u8>, kind: &'static str, key: Option<String>, uuid: Uuid) -> Self {
        EncodedEvent { payload, kind, key, uuid }
    }
}

/// A batch of serialized events handed to [`EventSink::export`]. Every event is encoded in
/// the encoding the sink asked for in its [`SinkProfile`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Batch {
    /// How every event of the batch is encoded (the sink's [`SinkProfile::encoding`]).
    pub encoding: Encoding,
    /// The events, in the order they were logged.
    pub events: Vec<EncodedEvent>,
}

impl Batch {
    /// A batch of `events` encoded in `encoding`.
    pub fn new(encoding: Encoding, events: Vec<EncodedEvent>) -> Self {
        Batch { encoding, events }
    }

    /// Number of events.
    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// Whether the batch has no event.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// Total payload bytes (what the pipeline's byte limit counts).
    pub fn payload_bytes(&self) -> usize {
        self.events.iter().map(|e| e.payload.len()).sum()
    }

    /// A [`Fates`] for this batch with every event at `initial`: the way a sink that settles
    /// events one by one reports its answer.
    pub fn fates(&self, initial: EventFate) -> Fates {
        Fates::new(self.len(), initial)
    }
}

/// What a sink needs from the pipeline that feeds it: the pipeline builds batches in this
/// encoding and within these limits, and refuses to start when its settings contradict them
/// (see [`crate::Pipeline::start`]). A sink's settings decide its profile, so a sink cannot
/// be wired to send another format than the one its settings name.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SinkProfile {
    /// The encoding every event must have.
    pub encoding: Encoding,
    /// The most payload bytes the sink accepts in one batch, if it has a limit.
    pub max_batch_bytes: Option<usize>,
    /// The number of batches the sink wants exported at the same time (also the most it
    /// allows), if it cares; otherwise the pipeline exports one at a time.
    pub max_concurrent_exports: Option<usize>,
    /// The shortest export timeout that lets the sink finish its own retries (Kafka's
    /// delivery timeout), if it has one.
    pub min_export_timeout: Option<Duration>,
}

impl SinkProfile {
    /// A profile asking for `encoding` and nothing else.
    pub fn new(encoding: Encoding) -> Self {
        SinkProfile {
            encoding,
            max_batch_bytes: None,
            max_concurrent_exports: None,
            min_export_timeout: None,
        }
    }

    /// Sets [`SinkProfile::max_batch_bytes`].
    #[must_use]
    pub fn max_batch_bytes(mut self, bytes: usize) -> Self {
        self.max_batch_bytes = Some(bytes);
        self
    }

    /// Sets [`SinkProfile::max_concurrent_exports`].
    #[must_use]
    pub fn max_concurrent_exports(mut self, exports: usize) -> Self {
        self.max_concurrent_exports = Some(exports);
        self
    }

    /// Sets [`SinkProfile::min_export_timeout`].
    #[must_use]
    pub fn min_export_timeout(mut self, timeout: Duration) -> Self {
        self.min_export_timeout = Some(timeout);
        self
    }
}

impl Default for SinkProfile {
    /// The `json` encoding, no limits.
    fn default() -> Self {
        SinkProfile::new(Encoding::Json)
    }
}

/// What happened to one event of an exported batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventFate {
    /// The destination has it; it is never sent again.
    Delivered,
    /// Not delivered; the pipeline sends it again (within its retry budget).
    Retry,
    /// Refused for good; dropped as `rejected_by_sink` and never sent again.
    Rejected,
}

/// Longest [`Fates::reason`] kept, in bytes: a sink that appends a reason per event cannot
/// grow memory with the batch.
pub const MAX_REASON_BYTES: usize = 1024;

/// The fate of every event of a batch, indexed like the batch: exactly one [`EventFate`] per
/// event by construction, so no answer can name an event twice or leave one out. Built from
/// the batch ([`Batch::fates`]); an index outside the batch is refused by [`Fates::set`].
///
/// ```
/// use experiments_events::{Batch, Encoding, EventFate, ExportOutcome};
///
/// let batch = Batch::new(Encoding::Json, Vec::new());
/// let mut fates = batch.fates(EventFate::Delivered);
/// assert!(!fates.set(3, EventFate::Rejected), "outside the batch: refused");
/// fates.add_reason("HTTP 400: bad event");
/// let outcome = ExportOutcome::from(fates);
/// # let _ = outcome;
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fates {
    fates: Vec<EventFate>,
    retry_after: Option<Duration>,
    reason: String,
}

impl Fates {
    /// `len` events, each at `initial`. Prefer [`Batch::fates`], which takes the length from
    /// the batch.
    pub fn new(len: usize, initial: EventFate) -> Self {
        Fates { fates: vec![initial; len], retry_after: None, reason: String::new() }
    }

    /// Sets the fate of the event at `index`; returns `false` (and changes nothing) when
    /// `index` is outside the batch.
    pub fn set(&mut self, index: usize, fate: EventFate) -> bool {
        match self.fates.get_mut(index) {
            Some(slot) => {
                *slot = fate;
                true
            }
            None => false,
        }
    }

    /// Asks the pipeline to wait at least `wait` before retrying (a `Retry-After`); the
    /// longest of several requests is kept. Untrusted: the pipeline caps it by its budget.
    pub fn retry_after(&mut self, wait: Duration) {
        self.retry_after = self.retry_after.max(Some(wait));
    }

    /// Adds an explanation for logs (joined with `"; "`, cut at [`MAX_REASON_BYTES`]).
    pub fn add_reason(&mut self, reason: impl fmt::Display) {
        use fmt::Write as _;
        if self.reason.len() >= MAX_REASON_BYTES {
            return;
        }
        if !self.reason.is_empty() {
            self.reason.push_str("; ");
        }
        let _ = write!(self.reason, "{reason}");
        if self.reason.len() > MAX_REASON_BYTES {
            let mut cut = MAX_REASON_BYTES;
            while !self.reason.is_char_boundary(cut) {
                cut -= 1;
            }
            self.reason.truncate(cut);
        }
    }

    /// The fate of each event, indexed like the batch.
    pub fn as_slice(&self) -> &[EventFate] {
        &self.fates
    }

    /// Number of events (the batch's length).
    pub fn len(&self) -> usize {
        self.fates.len()
    }

    /// Whether there is no event.
    pub fn is_empty(&self) -> bool {
        self.fates.is_empty()
    }

    /// How many events have `fate`.
    pub fn count(&self, fate: EventFate) -> usize {
        self.fates.iter().filter(|&&f| f == fate).count()
    }

    /// The indices of the events with `fate`, ascending.
    pub fn indices(&self, fate: EventFate) -> impl Iterator<Item = usize> + '_ {
        self.fates.iter().enumerate().filter(move |(_, f)| **f == fate).map(|(i, _)| i)
    }

    /// The wait the destination asked for before the retry, as the sink reported it.
    pub fn requested_wait(&self) -> Option<Duration> {
        self.retry_after
    }

    /// The sink's explanation, for logs (empty when none was given).
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

/// The outcome of exporting one batch: one answer for the whole batch, or one fate per
/// event. Whatever a sink returns, [`ExportOutcome::resolve`] turns it into exactly one fate
/// per event of the batch, so the pipeline's accounting holds.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExportOutcome {
    /// Every event was delivered.
    Delivered,
    /// Nothing was delivered; trying again later may succeed (an outage, a timeout, a 5xx).
    Retryable {
        /// Why, for logs.
        reason: String,
        /// How long the destination asked to wait, if it did (`Retry-After`).
        retry_after: Option<Duration>,
    },
    /// The destination refused the batch for good; it is dropped (`rejected_by_sink`).
    Rejected {
        /// Why, for logs.
        reason: String,
    },
    /// Events settled one by one (built with [`Batch::fates`]).
    PerEvent(Fates),
}

impl From<Fates> for ExportOutcome {
    fn from(fates: Fates) -> Self {
        ExportOutcome::PerEvent(fates)
    }
}

impl ExportOutcome {
    /// Resolves this outcome against a batch of `len` events: exactly one fate per event,
    /// plus the number of fates that did not match the batch (non-zero only for a
    /// [`ExportOutcome::PerEvent`] built for another length — a sink bug: fates past the end
    /// are ignored, events without a fate are retried, so none is lost). The one place
    /// outcomes are interpreted.
    ///
    /// ```
    /// use experiments_events::{EventFate, ExportOutcome, Fates};
    ///
    /// let mut fates = Fates::new(2, EventFate::Delivered);
    /// fates.set(1, EventFate::Rejected);
    /// let (resolved, mismatched) = ExportOutcome::from(fates).resolve(3);
    /// assert_eq!(resolved.as_slice(), [EventFate::Delivered, EventFate::Rejected, EventFate::Retry]);
    /// assert_eq!(mismatched, 1);
    /// ```
    pub fn resolve(self, len: usize) -> (Fates, usize) {
        match self {
            ExportOutcome::Delivered => (Fates::new(len, EventFate::Delivered), 0),
            ExportOutcome::Retryable { reason, retry_after } => {
                let mut fates = Fates::new(len, EventFate::Retry);
                fates.retry_after = retry_after;
                fates.reason = reason;
                (fates, 0)
            }
            ExportOutcome::Rejected { reason } => {
                let mut fates = Fates::new(len, EventFate::Rejected);
                fates.reason = reason;
                (fates, 0)
            }
            ExportOutcome::PerEvent(mut fates) => {
                let mismatched = fates.fates.len().abs_diff(len);
                fates.fates.resize(len, EventFate::Retry);
                (fates, mismatched)
            }
        }
    }
}

/// A destination for batches of events. The pipeline does intake, batching, retries,
/// accounting and shutdown; a sink says what it needs ([`EventSink::profile`]) and exports.
///
/// The pipeline does not trust the answer: a [`ExportOutcome::PerEvent`] of the wrong length
/// is normalised by [`ExportOutcome::resolve`], a `retry_after` that does not fit in the
/// retry budget drops the batch (`retry_budget_exhausted`) instead of parking it, an export
/// that outlives `export_timeout` is retried, and an export that panics loses its batch
/// (`sink_panicked`) without stopping the pipeline.
///
/// A custom sink is one small impl:
///
/// ```
/// use async_trait::async_trait;
/// use experiments_events::{Batch, EventSink, ExportOutcome};
///
/// struct Stderr;
///
/// #[async_trait]
/// impl EventSink for Stderr {
///     async fn export(&self, batch: &Batch) -> ExportOutcome {
///         for event in &batch.events {
///             eprintln!("{}", String::from_utf8_lossy(&event.payload));
///         }
///         ExportOutcome::Delivered
///     }
/// }
/// ```
#[async_trait]
pub trait EventSink: Send + Sync + 'static {
    /// The encoding and limits the sink needs; the default asks for `json` and nothing else.
    /// Called once, when the pipeline starts.
    fn profile(&self) -> SinkProfile {
        SinkProfile::default()
    }

    /// Delivers one batch (called again with the events to retry).
    async fn export(&self, batch: &Batch) -> ExportOutcome;

    /// Releases resources once the pipeline has delivered what it could. Bounded by the
    /// shutdown deadline (at least 100 ms); a panic here is caught and logged.
    async fn shutdown(&self) {}
}

#[async_trait]
impl<S: EventSink + ?Sized> EventSink for std::sync::Arc<S> {
    fn profile(&self) -> SinkProfile {
        (**self).profile()
    }

    async fn export(&self, batch: &Batch) -> ExportOutcome {
        (**self).export(batch).await
    }

    async fn shutdown(&self) {
        (**self).shutdown().await;
    }
}

#[async_trait]
impl<S: EventSink + ?Sized> EventSink for Box<S> {
    fn profile(&self) -> SinkProfile {
        (**self).profile()
    }

    async fn export(&self, batch: &Batch) -> ExportOutcome {
        (**self).export(batch).await
    }

    async fn shutdown(&self) {
        (**self).shutdown().await;
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn whole_batch_outcomes_give_every_event_one_fate() {
        use EventFate::*;
        let wait = Some(Duration::from_secs(3));
        let retryable = ExportOutcome::Retryable { reason: "r".into(), retry_after: wait };
        let (fates, bad) = ExportOutcome::Delivered.resolve(3);
        assert_eq!((fates.as_slice(), bad), (&[Delivered; 3][..], 0));
        let (fates, _) = retryable.resolve(2);
        assert_eq!(fates.as_slice(), [Retry; 2]);
        assert_eq!((fates.requested_wait(), fates.reason()), (wait, "r"));
        let (fates, _) = ExportOutcome::Rejected { reason: "no".into() }.resolve(1);
        assert_eq!((fates.as_slice(), fates.reason()), (&[Rejected][..], "no"));
    }

    #[test]
    fn fates_refuse_indices_outside_the_batch_and_keep_one_fate_per_event() {
        use EventFate::*;
        let mut fates = Fates::new(3, Delivered);
        assert!(fates.set(2, Retry));
        assert!(fates.set(2, Rejected), "a second answer replaces the first");
        assert!(!fates.set(3, Retry));
        assert!(!fates.set(usize::MAX, Retry));
        assert_eq!(fates.as_slice(), [Delivered, Delivered, Rejected]);
        assert_eq!(fates.indices(Rejected).collect::<Vec<_>>(), [2]);
        fates.retry_after(Duration::from_secs(1));
        fates.retry_after(Duration::from_secs(5));
        fates.retry_after(Duration::from_secs(2));
        assert_eq!(fates.requested_wait(), Some(Duration::from_secs(5)));
    }

    #[test]
    fn reasons_are_joined_and_bounded() {
        let mut fates = Fates::new(1, EventFate::Delivered);
        fates.add_reason("a");
        fates.add_reason(format_args!("b{}", 1));
        assert_eq!(fates.reason(), "a; b1");
        for _ in 0..10_000 {
            fates.add_reason("é-long reason");
        }
        assert!(fates.reason().len() <= MAX_REASON_BYTES);
    }

    proptest! {
        /// Whatever length a sink's fates have, resolving gives exactly the batch's length,
        /// keeps every fate that matches an event, retries the events left without one, and
        /// counts the difference.
        #[test]
        fn resolve_always_gives_one_fate_per_event(
            fates in proptest::collection::vec(
                prop_oneof![Just(EventFate::Delivered), Just(EventFate::Retry), Just(EventFate::Rejected)],
                0..40,
            ),
            len in 0usize..40,
        ) {
            let mut f = Fates::new(fates.len(), EventFate::Delivered);
            for (i, &fate) in fates.iter().enumerate() {
                prop_assert!(f.set(i, fate));
            }
            let (resolved, mismatched) = ExportOutcome::PerEvent(f).resolve(len);
            prop_assert_eq!(resolved.len(), len);
            prop_assert_eq!(mismatched, fates.len().abs_diff(len));
            for i in 0..len {
                let expected = fates.get(i).copied().unwrap_or(EventFate::Retry);
                prop_assert_eq!(resolved.as_slice()[i], expected);
            }
        }
    }
}
