//! # experiments-kafka
//!
//! An [`EventSink`] that produces every event of a batch to a Kafka topic with `rdkafka`
//! (librdkafka). The shared pipeline of `experiments-events` does intake, batching, retries
//! and accounting; this sink only exports: a batch completes when every delivery report is
//! in, and each event's outcome maps onto the pipeline — delivered, retryable (queue full,
//! timeouts, transport failures, leader changes, too few replicas) or permanent (message too
//! large, unknown topic or partition, authorization failures), with counts per reason in
//! [`KafkaSink::errors`].
//!
//! Messages are keyed by the bucketing value (one user's events stay ordered in one
//! partition) and carry the headers `event_type`, `encoding` and `schema_version`.
//!
//! Safe defaults: `acks=all`, `enable.idempotence=true`, `compression.type=lz4`,
//! `message.timeout.ms=20000`, `linger.ms=5`; any librdkafka property can be overridden
//! through [`KafkaSettings::properties`].
//!
//! Secrets never show. `Debug` of the settings and of the sink redacts every property
//! librdkafka marks sensitive and anything that looks like a credential (see
//! [`is_secret_property`]). Errors never quote a property value: when librdkafka refuses a
//! property (unknown, misspelled, upper-case, Java-only, not in this build, an invalid
//! value), [`KafkaSinkError::Config`] names the property and the kind of problem only —
//! librdkafka's and rdkafka's own messages quote the value — and every other message from
//! librdkafka has the values of secret properties cut out ([`KafkaSinkError::Client`]).
//! Deserializing settings with a property of the wrong type names the property, not the
//! value.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

use experiments_events::{
    Batch, Encoding, EventFate, EventSink, ExportOutcome, SinkProfile, async_trait,
};
use futures_util::future::join_all;
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::types::RDKafkaConfRes;
use serde::de::IgnoredAny;
use serde::{Deserialize, Deserializer};

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

/// Settings of a [`KafkaSink`].
///
/// ```
/// let s: experiments_kafka::KafkaSettings = serde_json::from_str(r#"{
///     "brokers": "127.0.0.1:9092", "topic": "experiments",
///     "properties": {"sasl.password": "hunter2", "linger.ms": "20"}}"#).unwrap();
/// assert!(!format!("{s:?}").contains("hunter2"));
/// ```
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
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
    /// `enable.idempotence`, `security.protocol`, SASL, SSL, ...). Values are strings; a
    /// value of another type is refused with an error that names the property only.
    #[serde(default, deserialize_with = "deserialize_properties")]
    pub properties: BTreeMap<String, String>,
}

/// The properties librdkafka itself marks sensitive (`_RK_SENSITIVE` in `rdkafka_conf.c`,
/// redacted in its own configuration dumps; librdkafka 2.12), their aliases, and the Java
/// client's secret properties people paste into librdkafka configurations.
const SENSITIVE_PROPERTIES: &[&str] = &[
    "ssl.key.location",
    "ssl.key.password",
    "ssl.key.pem",
    "ssl_key",
    "ssl.ca.pem",
    "ssl.keystore.password",
    "sasl.username",
    "sasl.password",
    "sasl.oauthbearer.config",
    "sasl.oauthbearer.client.secret",
    "sasl.oauthbearer.client.credentials.client.secret",
    "sasl.oauthbearer.assertion.private.key.file",
    "sasl.oauthbearer.assertion.private.key.passphrase",
    "sasl.oauthbearer.assertion.private.key.pem",
    "sasl.jaas.config",
    "ssl.truststore.password",
];

/// Pieces of a property name that make it secret, matched case-insensitively anywhere in
/// the name, so misspelled and look-alike names are caught too (`ssl.key.pasword`,
/// `sasl.passwd`, `sasl.oauthbearer.confg`, `my.api.token`). Broad on purpose: hiding a
/// harmless value (`sasl.oauthbearer.scope`, `ssl.certificate.pem`) costs a little
/// readability, showing a secret costs the secret.
const SECRET_NAME_PARTS: &[&str] = &[
    "pass", // password, passwd, passphrase, misspellings
    "pwd",
    "secret",
    "key", // ssl.key.*, ssl_key, keystore, keytab, private.key.*
    "jaas",
    "token",
    "credential",
    "cred",
    "auth", // oauthbearer.*, authentication
    "assertion",
    "pem",
    "user", // sasl.username
];

/// Whether the value of the librdkafka property `key` must never be shown: a property
/// librdkafka marks sensitive, or a name containing one of a list of credential-like
/// pieces (password, secret, key, jaas, token, passphrase, credential, auth, pem, user, ...),
/// in any case.
pub fn is_secret_property(key: &str) -> bool {
    let k = key.trim().to_ascii_lowercase();
    SENSITIVE_PROPERTIES.contains(&k.as_str()) || SECRET_NAME_PARTS.iter().any(|p| k.contains(p))
}

/// A property value as written in the settings document: a string, or anything else
/// (refused without being quoted). `untagged` buffers the value and reports no detail when
/// nothing matches, and `IgnoredAny` matches everything, so no serde message quotes it.
#[derive(Deserialize)]
#[serde(untagged)]
enum PropertyValue {
    Text(String),
    Other(IgnoredAny),
}

/// The `properties` map as written: a map, or anything else (refused without quoting).
#[derive(Deserialize)]
#[serde(untagged)]
enum PropertiesDocument {
    Map(BTreeMap<String, PropertyValue>),
    Other(IgnoredAny),
}

/// Reads `properties`: string values only, and errors that name the offending property but
/// never quote a value (serde's default ``invalid type: integer `123` `` would print a
/// mistyped password).
fn deserialize_properties<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, String>, D::Error> {
    use serde::de::Error as _;
    match PropertiesDocument::deserialize(d)? {
        PropertiesDocument::Other(_) => Err(D::Error::custom(
            "properties: expected a map of librdkafka property names to string values",
        )),
        PropertiesDocument::Map(map) => map
            .into_iter()
            .map(|(key, value)| match value {
                PropertyValue::Text(text) => Ok((key, text)),
                PropertyValue::Other(_) => Err(D::Error::custom(format_args!(
                    "property {key:?}: expected a string value; a value of another type was \
                     given (not shown)"
                ))),
            })
            .collect(),
    }
}

impl fmt::Debug for KafkaSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let props: BTreeMap<&str, &str> = self
            .properties
            .iter()
            .map(|(k, v)| (k.as_str(), if is_secret_property(k) { REDACTED } else { v.as_str() }))
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
    ///
    /// Careful: rdkafka's `Debug` of a `ClientConfig` hides only five property names
    /// (`sasl.password`, `ssl.key.password`, ...) and would print `sasl.oauthbearer.config`,
    /// `ssl.key.pem` and the like; print the [`KafkaSettings`] instead.
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

    /// How long librdkafka keeps trying to deliver a message (`message.timeout.ms`, or its
    /// alias `delivery.timeout.ms`; 20 s by default here).
    pub fn message_timeout(&self) -> Duration {
        let ms = self
            .properties
            .get("message.timeout.ms")
            .or(self.properties.get("delivery.timeout.ms"))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(20_000);
        Duration::from_millis(ms)
    }
}

/// What printed values of secrets are replaced with.
const REDACTED: &str = "<redacted>";

/// The sink could not be built. No variant carries a property value.
#[derive(Debug, thiserror::Error)]
pub enum KafkaSinkError {
    /// librdkafka refused a property. Only its name is kept: the value may be a secret,
    /// and librdkafka's and rdkafka's own messages quote it.
    #[error("kafka client: property {property:?}: {problem} (the value is not shown)")]
    Config {
        /// The property, as configured.
        property: String,
        /// What is wrong with it.
        problem: ConfigProblem,
    },
    /// librdkafka could not create the client; its message, with the value of every
    /// secret property (see [`is_secret_property`]) cut out.
    #[error("kafka client: {reason}")]
    Client {
        /// librdkafka's message, scrubbed.
        reason: String,
    },
    /// The topic could not be created.
    #[error("creating topic {topic}: {reason}")]
    CreateTopic {
        /// The topic.
        topic: String,
        /// Why (scrubbed like [`KafkaSinkError::Client`]).
        reason: String,
    },
}

/// Why librdkafka refused a property ([`KafkaSinkError::Config`]), told from librdkafka's
/// result code and message without repeating the message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigProblem {
    /// No such property. Names are case-sensitive and lower-case; Java-client-only names
    /// (`ssl.truststore.location`, ...) do not exist in librdkafka either.
    #[error("no such librdkafka property (check the spelling and case)")]
    Unknown,
    /// A Java JAAS configuration (`sasl.jaas.config`), which librdkafka does not support.
    #[error(
        "Java JAAS configuration is not supported by librdkafka; use sasl.username, sasl.password and sasl.mechanisms"
    )]
    JavaOnly,
    /// The property or value needs a feature this build of librdkafka lacks (OpenSSL for
    /// `ssl.*`, libcurl for OIDC, a compression codec).
    #[error("not supported by this build of librdkafka")]
    NotInThisBuild,
    /// The value is not valid for the property (a number out of range, a word that is
    /// not one of the allowed ones).
    #[error("invalid value")]
    InvalidValue,
    /// The name or the value contains a NUL byte, which librdkafka cannot take.
    #[error("the name or the value contains a NUL byte")]
    Nul,
}

impl ConfigProblem {
    /// Classifies librdkafka's answer to setting one property. `message` is only inspected,
    /// never kept: it quotes the value.
    fn of(code: RDKafkaConfRes, message: &str) -> Self {
        if message.contains("not available at build time")
            || message.contains("not supported in this build")
        {
            ConfigProblem::NotInThisBuild
        } else if message.contains("JAAS") {
            ConfigProblem::JavaOnly
        } else if code == RDKafkaConfRes::RD_KAFKA_CONF_UNKNOWN {
            ConfigProblem::Unknown
        } else {
            ConfigProblem::InvalidValue
        }
    }
}

/// The values of the secret properties of `settings`, longest first (so a value containing
/// another is cut out whole).
fn secret_values(settings: &KafkaSettings) -> Vec<&str> {
    let mut values: Vec<&str> = settings
        .properties
        .iter()
        .filter(|(k, v)| is_secret_property(k) && !v.is_empty())
        .map(|(_, v)| v.as_str())
        .collect();
    values.sort_by_key(|v| std::cmp::Reverse(v.len()));
    values
}

/// `text` (a message from librdkafka) with every secret property value replaced by
/// `<redacted>`. A message that still quotes a piece of one (12 bytes or more of it, e.g.
/// "unrecognized config beginning at: <the rest of the value>") is withheld whole. (Shorter
/// pieces are not looked for: they would match ordinary words, such as the `password` of
/// a property name inside a password.)
fn scrub(text: &str, settings: &KafkaSettings) -> String {
    const PIECE: usize = 12;
    let secrets = secret_values(settings);
    let mut out = text.to_owned();
    for value in &secrets {
        out = out.replace(value, REDACTED);
    }
    let pieces: HashSet<&[u8]> = out.as_bytes().windows(PIECE).collect();
    let quotes_a_piece =
        secrets.iter().any(|v| v.as_bytes().windows(PIECE).any(|w| pieces.contains(w)));
    if quotes_a_piece {
        return "librdkafka's message quotes part of a secret property; withheld".to_owned();
    }
    out
}

/// An rdkafka error from building a client, without any property value: configuration
/// errors rebuilt from the property name, everything else scrubbed.
fn client_error(error: KafkaError, settings: &KafkaSettings) -> KafkaSinkError {
    match error {
        KafkaError::ClientConfig(code, message, property, _value) => {
            KafkaSinkError::Config { property, problem: ConfigProblem::of(code, &message) }
        }
        KafkaError::ClientCreation(message) => {
            KafkaSinkError::Client { reason: scrub(&message, settings) }
        }
        other => KafkaSinkError::Client { reason: scrub(&other.to_string(), settings) },
    }
}

/// Refuses a NUL byte in the brokers or any property name or value, naming the property:
/// rdkafka's own error for it ("FFI nul error") does not say which one.
fn check_nul(settings: &KafkaSettings) -> Result<(), KafkaSinkError> {
    let brokers = ("bootstrap.servers", settings.brokers.as_str());
    let properties = settings.properties.iter().map(|(k, v)| (k.as_str(), v.as_str()));
    match std::iter::once(brokers)
        .chain(properties)
        .find(|(k, v)| k.contains('\0') || v.contains('\0'))
    {
        Some((property, _)) => Err(KafkaSinkError::Config {
            property: property.replace('\0', "\\0"),
            problem: ConfigProblem::Nul,
        }),
        None => Ok(()),
    }
}

/// Most batches the sink wants in librdkafka at once.
const MAX_BATCHES_IN_FLIGHT: usize = 4;

/// Classifies a librdkafka error: permanent errors cannot succeed by retrying.
fn classify(code: RDKafkaErrorCode) -> EventFate {
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
        | C::UnsupportedCompressionType => EventFate::Rejected,
        _ => EventFate::Retry,
    }
}

fn error_code(e: &KafkaError) -> RDKafkaErrorCode {
    e.rdkafka_error_code().unwrap_or(RDKafkaErrorCode::Fail)
}

/// Produces batches of events to a Kafka topic.
pub struct KafkaSink {
    producer: FutureProducer<DefaultClientContext>,
    settings: KafkaSettings,
    errors: Mutex<BTreeMap<String, u64>>,
}

impl fmt::Debug for KafkaSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KafkaSink").field("settings", &self.settings).finish_non_exhaustive()
    }
}

impl KafkaSink {
    /// Creates the producer (and the topic when `create_topic` is set and it is missing).
    /// Must run inside a tokio runtime.
    pub async fn new(settings: KafkaSettings) -> Result<Self, KafkaSinkError> {
        let config = settings.client_config();
        check_nul(&settings)?;
        if let Some(spec) = &settings.create_topic {
            create_topic(&config, &settings, spec).await?;
        }
        let producer: FutureProducer<DefaultClientContext> =
            config.create().map_err(|e| client_error(e, &settings))?;
        Ok(KafkaSink { producer, settings, errors: Mutex::new(BTreeMap::new()) })
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
    settings: &KafkaSettings,
    spec: &CreateTopic,
) -> Result<(), KafkaSinkError> {
    let topic = settings.topic.as_str();
    let err = |reason: String| KafkaSinkError::CreateTopic { topic: topic.to_owned(), reason };
    let admin: AdminClient<DefaultClientContext> =
        config.create().map_err(|e| client_error(e, settings))?;
    let new = NewTopic::new(topic, spec.partitions, TopicReplication::Fixed(spec.replication));
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let results = admin
        .create_topics([&new], &opts)
        .await
        .map_err(|e| err(scrub(&e.to_string(), settings)))?;
    for r in results {
        match r {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((_, code)) => return Err(err(format!("{code:?}"))),
        }
    }
    Ok(())
}

#[async_trait]
impl EventSink for KafkaSink {
    /// The `encoding` of the settings; an export timeout longer than librdkafka's own
    /// delivery timeout (`message.timeout.ms` + 5 s); four batches in flight (each batch is
    /// enqueued into librdkafka in one go, so per-partition order is kept while the next
    /// batch no longer waits for the previous one's delivery reports).
    fn profile(&self) -> SinkProfile {
        SinkProfile::new(self.settings.encoding)
            .min_export_timeout(self.settings.message_timeout() + Duration::from_secs(5))
            .max_concurrent_exports(MAX_BATCHES_IN_FLIGHT)
    }

    async fn export(&self, batch: &Batch) -> ExportOutcome {
        let encoding = batch.encoding.as_str();
        let mut fates = batch.fates(EventFate::Retry);
        let mut pending = Vec::with_capacity(batch.len());
        for (i, e) in batch.events.iter().enumerate() {
            let headers = OwnedHeaders::new_with_capacity(3)
                .insert(Header { key: "event_type", value: Some(e.kind) })
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
                    fates.set(i, classify(code));
                }
            }
        }
        let (indices, futures): (Vec<usize>, Vec<_>) = pending.into_iter().unzip();
        let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
        for (i, report) in indices.into_iter().zip(join_all(futures).await) {
            let fate = match report {
                Ok(Ok(_)) => EventFate::Delivered,
                Ok(Err((err, _))) => {
                    let code = error_code(&err);
                    self.count(code);
                    *reasons.entry(format!("{code:?}")).or_default() += 1;
                    classify(code)
                }
                // The producer went away before reporting: the event may not be stored.
                Err(_) => EventFate::Retry,
            };
            fates.set(i, fate);
        }
        for (code, n) in reasons {
            fates.add_reason(format_args!("{code} x{n}"));
        }
        fates.into()
    }

    async fn shutdown(&self) {
        let _ = self.flush(self.settings.message_timeout()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(props: &[(&str, &str)]) -> KafkaSettings {
        let mut s = KafkaSettings::new("b:9092", "t");
        s.properties = props.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        s
    }

    #[test]
    fn secret_properties_and_ordinary_ones() {
        for k in SENSITIVE_PROPERTIES {
            assert!(is_secret_property(k), "{k}");
            assert!(is_secret_property(&k.to_ascii_uppercase()), "{k}");
        }
        for k in [
            "bootstrap.servers",
            "acks",
            "linger.ms",
            "security.protocol",
            "sasl.mechanisms",
            "client.id",
            "compression.type",
            "message.timeout.ms",
            "enable.idempotence",
            "message.max.bytes",
        ] {
            assert!(!is_secret_property(k), "{k}");
        }
    }

    #[test]
    fn librdkafka_messages_lose_secret_values() {
        let s = with(&[
            ("sasl.password", "hunter2-long-password"),
            ("sasl.oauthbearer.config", "principal=admin scope=x"),
            ("client.id", "svc-a"),
        ]);
        // Whole values are cut out; other values stay.
        assert_eq!(
            scrub("bad sasl.password hunter2-long-password for svc-a", &s),
            "bad sasl.password <redacted> for svc-a"
        );
        // A message quoting a piece of a value is withheld whole.
        let partial = "Unrecognized sasl.oauthbearer.config beginning at: admin scope=x";
        let scrubbed = scrub(partial, &s);
        assert!(!scrubbed.contains("scope=x") && scrubbed.contains("withheld"), "{scrubbed}");
        // Nothing to hide: unchanged.
        assert_eq!(scrub("broker down", &s), "broker down");
    }

    #[test]
    fn config_problems_from_librdkafka_answers() {
        use RDKafkaConfRes::{RD_KAFKA_CONF_INVALID as INVALID, RD_KAFKA_CONF_UNKNOWN as UNKNOWN};
        for (code, message, problem) in [
            (
                UNKNOWN,
                r#"No such configuration property: "SSL.KEY.PASSWORD""#,
                ConfigProblem::Unknown,
            ),
            (
                INVALID,
                r#"Configuration property "ssl.key.pem" not supported in this build: OpenSSL not available at build time"#,
                ConfigProblem::NotInThisBuild,
            ),
            (
                INVALID,
                r#"Unsupported value "ssl" for configuration property "security.protocol": OpenSSL not available at build time"#,
                ConfigProblem::NotInThisBuild,
            ),
            (INVALID, "Java JAAS configuration is not supported, see ...", ConfigProblem::JavaOnly),
            (
                INVALID,
                r#"Invalid value for configuration property "queue.buffering.max.ms""#,
                ConfigProblem::InvalidValue,
            ),
        ] {
            assert_eq!(ConfigProblem::of(code, message), problem, "{message}");
        }
    }

    #[test]
    fn client_errors_never_carry_the_value() {
        let s = with(&[("sasl.password", "hunter2")]);
        let e = client_error(
            KafkaError::ClientConfig(
                RDKafkaConfRes::RD_KAFKA_CONF_INVALID,
                "Invalid value \"hunter2\"".into(),
                "sasl.password".into(),
                "hunter2".into(),
            ),
            &s,
        );
        assert!(!format!("{e} {e:?}").contains("hunter2"), "{e:?}");
        let e = client_error(KafkaError::ClientCreation("bad hunter2".into()), &s);
        assert_eq!(e.to_string(), "kafka client: bad <redacted>");
    }
}
