//! The stdout sink: one serialized event per line, to stdout or any `AsyncWrite`.

use async_trait::async_trait;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::Mutex;

use crate::model::Encoding;
use crate::sink::{Batch, EventSink, ExportOutcome, SinkProfile};

/// Writes each event of a batch as one line: JSON lines in the `json` encoding (the
/// default), one Thrift-JSON document per line in `v2`.
pub struct StdoutSink<W = tokio::io::Stdout> {
    out: Mutex<W>,
    encoding: Encoding,
}

impl StdoutSink<tokio::io::Stdout> {
    /// A sink writing `json` lines to the process's standard output.
    pub fn stdout() -> Self {
        StdoutSink::new(tokio::io::stdout())
    }
}

impl<W: AsyncWrite + Unpin + Send + 'static> StdoutSink<W> {
    /// A sink writing `json` lines to `out`.
    pub fn new(out: W) -> Self {
        StdoutSink { out: Mutex::new(out), encoding: Encoding::Json }
    }

    /// The same sink writing events in `encoding`.
    #[must_use]
    pub fn encoding(mut self, encoding: Encoding) -> Self {
        self.encoding = encoding;
        self
    }

    /// Returns the writer.
    pub fn into_inner(self) -> W {
        self.out.into_inner()
    }
}

#[async_trait]
impl<W: AsyncWrite + Unpin + Send + 'static> EventSink for StdoutSink<W> {
    fn profile(&self) -> SinkProfile {
        SinkProfile::new(self.encoding)
    }

    async fn export(&self, batch: &Batch) -> ExportOutcome {
        let mut buf = Vec::with_capacity(batch.payload_bytes() + batch.len());
        for e in &batch.events {
            buf.extend_from_slice(&e.payload);
            buf.push(b'\n');
        }
        let mut out = self.out.lock().await;
        match async {
            out.write_all(&buf).await?;
            out.flush().await
        }
        .await
        {
            Ok(()) => ExportOutcome::Delivered,
            // A closed pipe will not come back.
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                ExportOutcome::Rejected { reason: e.to_string() }
            }
            Err(e) => ExportOutcome::Retryable { reason: e.to_string(), retry_after: None },
        }
    }

    async fn shutdown(&self) {
        let _ = self.out.lock().await.flush().await;
    }
}
