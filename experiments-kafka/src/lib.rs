//! # experiments-kafka
//!
//! An [`EventLogger`] that produces every event of a batch to a Kafka topic with `rdkafka`
//! (librdkafka). The shared pipeline of `experiments-events` does intake, batching, retries
//! and accounting; this sink only exports: a batch completes when every delivery report is
//! in, and each event's outcome maps onto the pipeline — delivered, retryable (queue full,
//! timeouts, transport failures, leader changes, too few replicas) or permanent (message too
//! large, unknown topic or partition, authorization failures), with counts per reason in
//! [`KafkaLogger::errors`].
//!
//! Messages are keyed by the bucketing value (one user's events stay ordered in one
//! partition) and carry the headers `event_type`, `encoding` and `schema_version`.
//!
//! Safe defaults: `acks=all`, `enable.idempotence=true`, `compression.type=lz4`,
//! `message.timeout.ms=20000`, `linger.ms=5`; any librdkafka property can be overridden
//! through [`KafkaSettings::properties`]. Values of secret properties (passwords, keys,
//! tokens) never appear in `Debug` output or logs.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

use experiments_events::{
    Batch, Encoding, EventLogger, ExportOutcome, PipelineSettings, async_trait,
};
use futures_util::future::join_all;
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use serde::Deserialize;

/// Version of the event schemas, sent in the `schema_version` header.
pub const SCHEMA_VERSION: &str = "1";

/// A topic to create at start when it is missing.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateTopic {
    /// Partitions.
    pub partitions: i32,
    /// Replication factor.
    pub replication: i32,
}

/// Settings of a [`KafkaLogger`].
///
/// ```
/// let s: experiments_kafka::KafkaSettings = serde_json::from_str(r#"{
///     "brokers": "127.0.0.1:9092", "topic": "experiments",
///     "properties": {"sasl.password": "hunter2", "linger.ms": "20"}}"#).unwrap();
/// assert!(!format!("{s:?}").contains("hunter2"));
/// ```
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaSettings {
    /// `bootstrap.servers`.
    pub brokers: String,
    /// The topic events go to.
    pub topic: String,
    /// Event encoding (`json`).
    #[serde(default)]
    pub encoding: Encoding,
    /// Create the topic at start when missing (off by default).
    #[serde(default)]
    pub create_topic: Option<CreateTopic>,
    /// librdkafka properties, applied over the defaults (acks, compression, linger,
    /// `enable.idempotence`, `security.protocol`, SASL, SSL, ...).
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
}

/// Whether a librdkafka property holds a secret.
fn is_secret(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    ["password", "secret", "token", "key.pem", "ssl.key", "keystore", "sasl.jaas", "credentials"]
        .iter()
        .any(|s| k.contains(s))
}

impl fmt::Debug for KafkaSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let props: BTreeMap<&str, &str> = self
            .properties
            .iter()
            .map(|(k, v)| (k.as_str(), if is_secret(k) { "<redacted>" } else { v.as_str() }))
            .collect();
        f.debug_struct("KafkaSettings")
            .field("brokers", &self.brokers)
            .field("topic", &self.topic)
            .field("encoding", &self.encoding)
            .field("create_topic", &self.create_topic)
            .field("properties", &props)
            .finish()
    }
}

impl KafkaSettings {
    /// Settings for `brokers` and `topic` with the defaults.
    pub fn new(brokers: impl Into<String>, topic: impl Into<String>) -> Self {
        KafkaSettings {
            brokers: brokers.into(),
            topic: topic.into(),
            encoding: Encoding::Json,
            create_topic: None,
            properties: BTreeMap::new(),
        }
    }

    /// The librdkafka configuration: safe defaults, then the configured properties.
    pub fn client_config(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.brokers)
            .set("acks", "all")
            .set("enable.idempotence", "true")
            .set("compression.type", "lz4")
            .set("message.timeout.ms", "20000")
            .set("linger.ms", "5");
        for (k, v) in &self.properties {
            c.set(k, v);
        }
        c
    }

    fn message_timeout(&self) -> Duration {
        let ms = self
            .properties
            .get("message.timeout.ms")
            .or(self.properties.get("delivery.timeout.ms"))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(20_000);
        Duration::from_millis(ms)
    }
}

/// The sink could not be built.
#[derive(Debug, thiserror::Error)]
pub enum KafkaSinkError {
    /// librdkafka refused the configuration or could not create the client.
    #[error("kafka client: {0}")]
    Client(#[from] KafkaError),
    /// The topic could not be created.
    #[error("creating topic {topic}: {reason}")]
    CreateTopic {
        /// The topic.
        topic: String,
        /// Why.
        reason: String,
    },
}

/// How one event's delivery ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fate {
    Delivered,
    Retry,
    Reject,
}

/// Classifies a librdkafka error: permanent errors cannot succeed by retrying.
fn classify(code: RDKafkaErrorCode) -> Fate {
    use RDKafkaErrorCode as C;
    match code {
        C::MessageSizeTooLarge
        | C::InvalidMessageSize
        | C::UnknownTopicOrPartition
        | C::UnknownTopic
        | C::UnknownPartition
        | C::TopicAuthorizationFailed
        | C::ClusterAuthorizationFailed
        | C::GroupAuthorizationFailed
        | C::TransactionalIdAuthorizationFailed
        | C::SaslAuthenticationFailed
        | C::Authentication
        | C::InvalidRecord
        | C::InvalidMessage
        | C::InvalidTopic
        | C::UnsupportedForMessageFormat
        | C::UnsupportedCompressionType => Fate::Reject,
        _ => Fate::Retry,
    }
}

fn error_code(e: &KafkaError) -> RDKafkaErrorCode {
    e.rdkafka_error_code().unwrap_or(RDKafkaErrorCode::Fail)
}

/// Produces batches of events to a Kafka topic.
pub struct KafkaLogger {
    producer: FutureProducer<DefaultClientContext>,
    settings: KafkaSettings,
    errors: Mutex<BTreeMap<String, u64>>,
}

impl fmt::Debug for KafkaLogger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KafkaLogger").field("settings", &self.settings).finish_non_exhaustive()
    }
}

impl KafkaLogger {
    /// Creates the producer (and the topic when `create_topic` is set and it is missing).
    /// Must run inside a tokio runtime.
    pub async fn new(settings: KafkaSettings) -> Result<Self, KafkaSinkError> {
        let config = settings.client_config();
        if let Some(spec) = &settings.create_topic {
            create_topic(&config, &settings.topic, spec).await?;
        }
        let producer: FutureProducer<DefaultClientContext> = config.create()?;
        Ok(KafkaLogger { producer, settings, errors: Mutex::new(BTreeMap::new()) })
    }

    /// Pipeline settings that match this sink: its encoding, an export timeout longer than
    /// librdkafka's own delivery timeout, and several batches in flight (each batch is
    /// enqueued into librdkafka in one go, so per-partition order is kept while the next
    /// batch no longer waits for the previous one's delivery reports).
    pub fn pipeline_settings(&self, base: PipelineSettings) -> PipelineSettings {
        PipelineSettings {
            encoding: self.settings.encoding,
            export_timeout: self.settings.message_timeout() + Duration::from_secs(5),
            max_concurrent_exports: base.max_concurrent_exports.max(4),
            ..base
        }
    }

    /// Failed deliveries so far, by librdkafka error (`MessageTimedOut`, ...).
    pub fn errors(&self) -> BTreeMap<String, u64> {
        self.errors.lock().map(|e| e.clone()).unwrap_or_default()
    }

    /// The settings.
    pub fn settings(&self) -> &KafkaSettings {
        &self.settings
    }

    fn count(&self, code: RDKafkaErrorCode) {
        if let Ok(mut e) = self.errors.lock() {
            *e.entry(format!("{code:?}")).or_default() += 1;
        }
    }

    /// Waits up to `timeout` for outstanding delivery reports.
    pub async fn flush(&self, timeout: Duration) -> Result<(), KafkaError> {
        let producer = self.producer.clone();
        tokio::task::spawn_blocking(move || producer.flush(timeout))
            .await
            .unwrap_or(Err(KafkaError::Canceled))
    }
}

async fn create_topic(
    config: &ClientConfig,
    topic: &str,
    spec: &CreateTopic,
) -> Result<(), KafkaSinkError> {
    let err = |reason: String| KafkaSinkError::CreateTopic { topic: topic.to_owned(), reason };
    let admin: AdminClient<DefaultClientContext> = config.create()?;
    let new = NewTopic::new(topic, spec.partitions, TopicReplication::Fixed(spec.replication));
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let results = admin.create_topics([&new], &opts).await.map_err(|e| err(e.to_string()))?;
    for r in results {
        match r {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((_, code)) => return Err(err(format!("{code:?}"))),
        }
    }
    Ok(())
}

#[async_trait]
impl EventLogger for KafkaLogger {
    async fn export(&self, batch: &Batch) -> ExportOutcome {
        let encoding = batch.encoding.as_str();
        let mut fates = vec![Fate::Retry; batch.len()];
        let mut pending = Vec::with_capacity(batch.len());
        for (i, e) in batch.events.iter().enumerate() {
            let headers = OwnedHeaders::new_with_capacity(3)
                .insert(Header { key: "event_type", value: Some(e.event_type.as_str()) })
                .insert(Header { key: "encoding", value: Some(encoding) })
                .insert(Header { key: "schema_version", value: Some(SCHEMA_VERSION) });
            let mut record =
                FutureRecord::to(&self.settings.topic).payload(&e.payload).headers(headers);
            if let Some(key) = &e.key {
                record = record.key(key.as_str());
            }
            match self.producer.send_result(record) {
                Ok(delivery) => pending.push((i, delivery)),
                Err((err, _)) => {
                    let code = error_code(&err);
                    self.count(code);
                    fates[i] = classify(code);
                }
            }
        }
        let (indices, futures): (Vec<usize>, Vec<_>) = pending.into_iter().unzip();
        let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
        for (i, report) in indices.into_iter().zip(join_all(futures).await) {
            fates[i] = match report {
                Ok(Ok(_)) => Fate::Delivered,
                Ok(Err((err, _))) => {
                    let code = error_code(&err);
                    self.count(code);
                    *reasons.entry(format!("{code:?}")).or_default() += 1;
                    classify(code)
                }
                // The producer went away before reporting: the event may not be stored.
                Err(_) => Fate::Retry,
            };
        }
        let retry: Vec<usize> = (0..fates.len()).filter(|&i| fates[i] == Fate::Retry).collect();
        let rejected: Vec<usize> = (0..fates.len()).filter(|&i| fates[i] == Fate::Reject).collect();
        let reason =
            reasons.iter().map(|(k, n)| format!("{k} x{n}")).collect::<Vec<_>>().join(", ");
        match (retry.len(), rejected.len()) {
            (0, 0) => ExportOutcome::Delivered,
            (r, 0) if r == batch.len() => ExportOutcome::Retryable { reason, retry_after: None },
            (0, j) if j == batch.len() => ExportOutcome::Rejected { reason },
            _ => ExportOutcome::Partial { retry, rejected, reason },
        }
    }

    async fn shutdown(&self) {
        let _ = self.flush(self.settings.message_timeout()).await;
    }
}
