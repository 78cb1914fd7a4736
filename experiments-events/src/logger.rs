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

/// A batch of serialized events handed to [`EventLogger::export`].
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

    /// The events at `indices` (for retrying part of a batch).
    pub fn subset(&self, indices: &[usize]) -> Batch {
        Batch {
            encoding: self.encoding,
            events: indices.iter().filter_map(|&i| self.events.get(i).cloned()).collect(),
        }
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
    /// Some events were delivered; the others are listed by index.
    Partial {
        /// Indices to retry.
        retry: Vec<usize>,
        /// Indices refused for good.
        rejected: Vec<usize>,
        /// Why, for logs.
        reason: String,
    },
}

/// A destination for batches of events. The pipeline does intake, batching, retries,
/// accounting and shutdown; a sink only exports.
///
/// A custom sink is one small impl:
///
/// ```
/// use async_trait::async_trait;
/// use experiments_events::{Batch, EventLogger, ExportOutcome};
///
/// struct Stderr;
///
/// #[async_trait]
/// impl EventLogger for Stderr {
///     async fn export(&self, batch: &Batch) -> ExportOutcome {
///         for event in &batch.events {
///             eprintln!("{}", String::from_utf8_lossy(&event.payload));
///         }
///         ExportOutcome::Delivered
///     }
/// }
/// ```
#[async_trait]
pub trait EventLogger: Send + Sync + 'static {
    /// Delivers one batch (called again with the same batch for retries).
    async fn export(&self, batch: &Batch) -> ExportOutcome;

    /// Releases resources once the pipeline has delivered what it could.
    async fn shutdown(&self) {}
}

#[async_trait]
impl<L: EventLogger + ?Sized> EventLogger for std::sync::Arc<L> {
    async fn export(&self, batch: &Batch) -> ExportOutcome {
        (**self).export(batch).await
    }

    async fn shutdown(&self) {
        (**self).shutdown().await;
    }
}
