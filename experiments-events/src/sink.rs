//! What a sink implements: export one batch, report its outcome, shut down.

use std::time::Duration;

use async_trait::async_trait;
use experiments_core::EventType;
use uuid::Uuid;

use crate::model::Encoding;

/// One serialized event in a batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncodedEvent {
    /// The serialized event (in the batch's encoding).
    pub payload: Vec<u8>,
    /// `choose` or `expose`.
    pub event_type: EventType,
    /// The bucketing value (Python `str()`), e.g. a partitioning key.
    pub key: Option<String>,
    /// The event's uuid.
    pub uuid: Uuid,
}

/// A batch of serialized events handed to [`EventSink::export`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Batch {
    /// How every event of the batch is encoded.
    pub encoding: Encoding,
    /// The events, in the order they were logged.
    pub events: Vec<EncodedEvent>,
}

impl Batch {
    /// Number of events.
    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// Whether the batch is empty.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// Total payload bytes.
    pub fn payload_bytes(&self) -> usize {
        self.events.iter().map(|e| e.payload.len()).sum()
    }

    /// A copy of the events at `indices`, in the order `indices` lists them (for retrying
    /// part of a batch). Indices past the end and repeated indices are ignored, so each event
    /// appears at most once and the result is never longer than `self`.
    pub fn subset(&self, indices: &[usize]) -> Batch {
        let mut taken = vec![false; self.events.len()];
        let events = indices
            .iter()
            .filter_map(|&i| {
                let slot = taken.get_mut(i)?;
                if std::mem::replace(slot, true) { None } else { self.events.get(i).cloned() }
            })
            .collect();
        Batch { encoding: self.encoding, events }
    }
}

/// What happened to one event of an exported batch, as [`ExportOutcome::fates`] decides it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventFate {
    /// The destination has it; it is never sent again.
    Delivered,
    /// Not delivered; the pipeline sends it again (within its retry budget).
    Retry,
    /// Refused for good; dropped as `rejected_by_sink` and never sent again.
    Rejected,
}

/// An [`ExportOutcome`] resolved against the batch it answers: exactly one [`EventFate`] per
/// event, whatever the sink returned, plus a count of the malformed indices that were
/// ignored. Built by [`ExportOutcome::fates`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fates {
    fates: Vec<EventFate>,
    retry_after: Option<Duration>,
    invalid_indices: usize,
}

impl Fates {
    /// The fate of each event, indexed like the batch (the length is the batch's).
    pub fn as_slice(&self) -> &[EventFate] {
        &self.fates
    }

    /// How many events have `fate`.
    pub fn count(&self, fate: EventFate) -> usize {
        self.fates.iter().filter(|&&f| f == fate).count()
    }

    /// The indices of the events with `fate`, ascending and without repeats.
    pub fn indices(&self, fate: EventFate) -> impl Iterator<Item = usize> + '_ {
        self.fates.iter().enumerate().filter(move |(_, f)| **f == fate).map(|(i, _)| i)
    }

    /// The wait the destination asked for before the retry, exactly as the sink reported it
    /// (only [`ExportOutcome::Retryable`] carries one). Untrusted: the pipeline caps it.
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }

    /// Index-list entries of a [`ExportOutcome::Partial`] that were ignored because they
    /// were past the end of the batch, repeated within a list, or listed in `retry` for an
    /// event also in `rejected`. Non-zero means the sink has a bug.
    pub fn invalid_indices(&self) -> usize {
        self.invalid_indices
    }
}

/// The outcome of exporting one batch.
#[derive(Clone, Debug, PartialEq, Eq)]
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
    /// Some events were delivered; the others are listed by index. How malformed lists
    /// (indices past the end, repeats, an index in both lists) are read is decided by
    /// [`ExportOutcome::fates`]: ignored, and an index in both lists is rejected.
    Partial {
        /// Indices to retry.
        retry: Vec<usize>,
        /// Indices refused for good (wins over `retry`).
        rejected: Vec<usize>,
        /// Why, for logs.
        reason: String,
    },
}

impl ExportOutcome {
    /// Resolves this outcome against a batch of `len` events into exactly one fate per event,
    /// so the accounting holds whatever a sink returns. The one place outcomes are
    /// interpreted: the pipeline uses it, and so can a sink that inspects outcomes.
    ///
    /// - `Delivered`, `Retryable` and `Rejected` give every event that fate.
    /// - `Partial`: events listed in `rejected` are rejected, those listed in `retry` (and not
    ///   in `rejected`) are retried, every other event is delivered. An index in both lists
    ///   is **rejected** (a refusal for good outranks a transient failure, and retrying it
    ///   could only fail again). Indices `>= len` and repeats are ignored; each ignored entry,
    ///   like the `retry` entry of an index that is also rejected, counts once in
    ///   [`Fates::invalid_indices`].
    ///
    /// ```
    /// use experiments_events::{EventFate, ExportOutcome};
    ///
    /// let outcome = ExportOutcome::Partial {
    ///     retry: vec![0, 0, 2, 7],
    ///     rejected: vec![2],
    ///     reason: "mixed".into(),
    /// };
    /// let fates = outcome.fates(3);
    /// assert_eq!(fates.as_slice(), [EventFate::Retry, EventFate::Delivered, EventFate::Rejected]);
    /// assert_eq!(fates.invalid_indices(), 3); // the second 0, 2 (rejected wins), 7
    /// ```
    pub fn fates(&self, len: usize) -> Fates {
        let all = |fate| vec![fate; len];
        let (fates, retry_after, invalid_indices) = match self {
            ExportOutcome::Delivered => (all(EventFate::Delivered), None, 0),
            ExportOutcome::Retryable { retry_after, .. } => {
                (all(EventFate::Retry), *retry_after, 0)
            }
            ExportOutcome::Rejected { .. } => (all(EventFate::Rejected), None, 0),
            ExportOutcome::Partial { retry, rejected, .. } => {
                let mut fates = all(EventFate::Delivered);
                let mut invalid = 0;
                // Rejections first, so the result does not depend on the order of the lists.
                for (list, fate) in [(rejected, EventFate::Rejected), (retry, EventFate::Retry)] {
                    for &i in list {
                        match fates.get_mut(i) {
                            Some(f @ EventFate::Delivered) => *f = fate,
                            // Past the end, repeated, or retried but already rejected.
                            _ => invalid += 1,
                        }
                    }
                }
                (fates, None, invalid)
            }
        };
        Fates { fates, retry_after, invalid_indices }
    }

    /// The sink's explanation, for logs (empty for `Delivered`).
    pub(crate) fn reason(&self) -> &str {
        match self {
            ExportOutcome::Delivered => "",
            ExportOutcome::Retryable { reason, .. }
            | ExportOutcome::Rejected { reason }
            | ExportOutcome::Partial { reason, .. } => reason,
        }
    }

    /// The outcome that reports `fates` (one per event of the batch, by index) — the inverse
    /// of [`ExportOutcome::fates`], so a sink that tracks events one by one need not choose
    /// the variant itself. `retry_after` is kept only when every event is to be retried
    /// (`Partial` has no room for it); `reason` is kept unless everything was delivered.
    pub fn from_fates(
        fates: &[EventFate],
        reason: impl Into<String>,
        retry_after: Option<Duration>,
    ) -> ExportOutcome {
        let pick = |want| -> Vec<usize> {
            fates.iter().enumerate().filter(|&(_, &f)| f == want).map(|(i, _)| i).collect()
        };
        let (retry, rejected) = (pick(EventFate::Retry), pick(EventFate::Rejected));
        match (retry.len(), rejected.len()) {
            (0, 0) => ExportOutcome::Delivered,
            (r, 0) if r == fates.len() => {
                ExportOutcome::Retryable { reason: reason.into(), retry_after }
            }
            (0, j) if j == fates.len() => ExportOutcome::Rejected { reason: reason.into() },
            _ => ExportOutcome::Partial { retry, rejected, reason: reason.into() },
        }
    }
}

/// A destination for batches of events. The pipeline does intake, batching, retries,
/// accounting and shutdown; a sink only exports.
///
/// The pipeline does not trust the answer: malformed `Partial` index lists are normalised by
/// [`ExportOutcome::fates`], a `retry_after` that does not fit in the retry budget drops the
/// batch (`retry_budget_exhausted`) instead of parking it, an export that outlives
/// `export_timeout` is retried, and an export that panics loses its batch (`sink_panicked`)
/// without stopping the pipeline.
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
    /// Delivers one batch (called again with the same batch for retries).
    async fn export(&self, batch: &Batch) -> ExportOutcome;

    /// Releases resources once the pipeline has delivered what it could. Bounded by the
    /// shutdown deadline (at least 100 ms); a panic here is caught and logged.
    async fn shutdown(&self) {}
}

#[async_trait]
impl<L: EventSink + ?Sized> EventSink for std::sync::Arc<L> {
    async fn export(&self, batch: &Batch) -> ExportOutcome {
        (**self).export(batch).await
    }

    async fn shutdown(&self) {
        (**self).shutdown().await;
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use proptest::prelude::*;

    use super::*;
    use crate::model::Encoding;

    fn batch(n: usize) -> Batch {
        let event = |i: usize| EncodedEvent {
            payload: vec![i as u8],
            event_type: EventType::Expose,
            key: None,
            uuid: Uuid::from_u128(i as u128),
        };
        Batch { encoding: Encoding::Json, events: (0..n).map(event).collect() }
    }

    fn partial(retry: &[usize], rejected: &[usize]) -> ExportOutcome {
        ExportOutcome::Partial {
            retry: retry.to_vec(),
            rejected: rejected.to_vec(),
            reason: "p".into(),
        }
    }

    #[test]
    fn whole_batch_outcomes_give_every_event_one_fate() {
        use EventFate::*;
        let wait = Some(Duration::from_secs(3));
        let retryable = ExportOutcome::Retryable { reason: "r".into(), retry_after: wait };
        assert_eq!(ExportOutcome::Delivered.fates(3).as_slice(), [Delivered; 3]);
        assert_eq!(retryable.fates(2).as_slice(), [Retry; 2]);
        assert_eq!(retryable.fates(2).retry_after(), wait);
        let rejected = ExportOutcome::Rejected { reason: "x".into() };
        assert_eq!(rejected.fates(4).as_slice(), [Rejected; 4]);
        assert_eq!(rejected.fates(0).as_slice(), []);
        assert_eq!(partial(&[1], &[]).fates(2).retry_after(), None);
    }

    #[test]
    fn malformed_partial_lists_are_ignored_and_counted() {
        use EventFate::*;
        let fates = partial(&[0; 15], &[]).fates(10);
        assert_eq!(
            (fates.count(Retry), fates.count(Delivered), fates.invalid_indices()),
            (1, 9, 14)
        );
        let fates = partial(&[10, usize::MAX], &[99]).fates(10);
        assert_eq!((fates.count(Delivered), fates.invalid_indices()), (10, 3));
        // Rejected wins whichever list names the index first; each bad entry counts once.
        for (retry, rejected) in [(&[1, 2, 1][..], &[2, 3, 3][..]), (&[2, 1, 1], &[3, 2, 3])] {
            let fates = partial(retry, rejected).fates(5);
            assert_eq!(fates.as_slice(), [Delivered, Retry, Rejected, Rejected, Delivered]);
            assert_eq!(fates.invalid_indices(), 3);
            assert_eq!(fates.indices(Rejected).collect::<Vec<_>>(), [2, 3]);
        }
        assert_eq!(partial(&[], &[]).fates(0).invalid_indices(), 0);
        assert_eq!(partial(&[0], &[0]).fates(0).invalid_indices(), 2);
    }

    #[test]
    fn from_fates_picks_the_variant_and_round_trips() {
        use EventFate::*;
        let wait = Some(Duration::from_secs(1));
        assert_eq!(ExportOutcome::from_fates(&[Delivered; 2], "x", wait), ExportOutcome::Delivered);
        assert_eq!(ExportOutcome::from_fates(&[], "x", wait), ExportOutcome::Delivered);
        assert_eq!(
            ExportOutcome::from_fates(&[Retry; 2], "down", wait),
            ExportOutcome::Retryable { reason: "down".into(), retry_after: wait }
        );
        assert_eq!(
            ExportOutcome::from_fates(&[Rejected], "bad", wait),
            ExportOutcome::Rejected { reason: "bad".into() }
        );
        let mixed = [Retry, Delivered, Rejected, Retry];
        let outcome = ExportOutcome::from_fates(&mixed, "mixed", wait);
        assert_eq!(
            outcome,
            ExportOutcome::Partial { retry: vec![0, 3], rejected: vec![2], reason: "mixed".into() }
        );
        assert_eq!(outcome.fates(4).as_slice(), mixed);
        assert_eq!(outcome.fates(4).invalid_indices(), 0);
    }

    #[test]
    fn subset_ignores_out_of_range_and_repeated_indices() {
        let b = batch(4);
        let s = b.subset(&[2, 2, 9, 0, 2, usize::MAX]);
        let ids: Vec<u128> = s.events.iter().map(|e| e.uuid.as_u128()).collect();
        assert_eq!(ids, [2, 0], "in the order asked, each once");
        assert_eq!(s.encoding, b.encoding);
        assert!(b.subset(&[7]).is_empty());
    }

    proptest! {
        /// Against a model built on sets: one fate per event, rejected wins, and every list
        /// entry is either applied or counted as invalid.
        #[test]
        fn partial_fates_match_a_set_model(
            n in 0usize..40,
            retry in proptest::collection::vec(prop_oneof![0usize..50, Just(usize::MAX)], 0..60),
            rejected in proptest::collection::vec(prop_oneof![0usize..50, Just(usize::MAX)], 0..60),
        ) {
            let fates = partial(&retry, &rejected).fates(n);
            let rejected_set: HashSet<usize> = rejected.iter().copied().filter(|&i| i < n).collect();
            let retry_set: HashSet<usize> = retry
                .iter()
                .copied()
                .filter(|&i| i < n && !rejected_set.contains(&i))
                .collect();
            prop_assert_eq!(fates.as_slice().len(), n);
            for (i, &fate) in fates.as_slice().iter().enumerate() {
                let expected = if rejected_set.contains(&i) {
                    EventFate::Rejected
                } else if retry_set.contains(&i) {
                    EventFate::Retry
                } else {
                    EventFate::Delivered
                };
                prop_assert_eq!(fate, expected, "index {}", i);
            }
            let applied = rejected_set.len() + retry_set.len();
            prop_assert_eq!(fates.invalid_indices(), retry.len() + rejected.len() - applied);
            let counts = [EventFate::Delivered, EventFate::Retry, EventFate::Rejected]
                .map(|f| fates.count(f));
            prop_assert_eq!(counts.iter().sum::<usize>(), n);
            let back = ExportOutcome::from_fates(fates.as_slice(), "r", None).fates(n);
            prop_assert_eq!(back.as_slice(), fates.as_slice());
            prop_assert_eq!(back.invalid_indices(), 0);
            prop_assert_eq!(batch(n).subset(&retry).len(), retry.iter().filter(|&&i| i < n).collect::<HashSet<_>>().len());
        }
    }
}
