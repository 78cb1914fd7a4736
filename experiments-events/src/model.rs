//! The delivered event: the core's event plus delivery metadata, and its two encodings.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use experiments_core::{
    EVENT_FIELDS, Event, EventType, OwnedEvent, OwnedExperimentRef, Value, py_str,
};
use std::borrow::Cow;
use std::fmt;

use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize, Serializer};
use uuid::Uuid;

/// Serialized events larger than this are rejected (counted as `too_large`, never sent).
pub const MAX_EVENT_BYTES: usize = 100 * 1024;

/// How events are serialized on the wire. A sink names the one it needs in its
/// [`crate::SinkProfile`]; every [`SinkEvent`] can be written in each of them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Encoding {
    /// The documented JSON object of [`EnrichedEvent::to_json`] (one object per event).
    #[default]
    Json,
    /// Reddit's v2 event as Thrift-JSON (what the v2 event collector accepts).
    V2,
}

impl Encoding {
    /// `"json"` or `"v2"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Encoding::Json => "json",
            Encoding::V2 => "v2",
        }
    }
}

/// An event could not be serialized (counted as `encode_error`, never sent).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct EncodeError(String);

impl EncodeError {
    /// An error with this explanation.
    pub fn new(message: impl fmt::Display) -> Self {
        EncodeError(message.to_string())
    }
}

impl From<serde_json::Error> for EncodeError {
    fn from(e: serde_json::Error) -> Self {
        EncodeError(e.to_string())
    }
}

/// An event the [`crate::Pipeline`] can carry to any sink: it knows its identity and writes
/// itself in each [`Encoding`]. Baseplate's `choose`/`expose` events ([`EnrichedEvent`]) are
/// one kind; another dialect's exposures, or a service's own events, implement this trait
/// and share the same pipeline and sinks.
pub trait SinkEvent: Send + 'static {
    /// Appends the event, serialized in `encoding`, to `out` (which may hold other bytes:
    /// append only).
    fn encode(&self, encoding: Encoding, out: &mut Vec<u8>) -> Result<(), EncodeError>;

    /// What kind of event it is (`"choose"`, `"expose"`, ...): sinks may put it in a
    /// header.
    fn kind(&self) -> &'static str;

    /// The partitioning key, when the event has one (Kafka's message key).
    fn key(&self) -> Option<String>;

    /// The event's unique id, stable across retries.
    fn uuid(&self) -> Uuid;
}

/// An event with its delivery metadata: what the pipeline queues, encodes and delivers.
#[derive(Clone, Debug, PartialEq)]
pub struct EnrichedEvent {
    /// The event as the engine produced it.
    pub event: OwnedEvent,
    /// Unique id of this event (UUID v4), stable across retries.
    pub uuid: Uuid,
    /// When the event was logged, in milliseconds since the epoch.
    pub client_timestamp_ms: i64,
    /// Shared by all events of one request or decision, when the caller sets one.
    pub correlation_id: Option<Arc<str>>,
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

impl EnrichedEvent {
    /// Enriches a core event logged now.
    pub fn new(event: &Event<'_>, correlation_id: Option<Arc<str>>) -> Self {
        EnrichedEvent {
            event: event.to_owned_event(),
            uuid: Uuid::new_v4(),
            client_timestamp_ms: now_ms(),
            correlation_id,
        }
    }

    /// The bucketing value as Python `str()` (the Kafka message key, v2 `bucketing_value`).
    pub fn bucketing_value(&self) -> Option<String> {
        self.event.bucketing_value().map(py_str)
    }

    /// The `json` encoding, as a value. The schema is stable:
    ///
    /// ```text
    /// {"uuid": str, "client_timestamp": int (ms), "correlation_id": str|null,
    ///  "event_type": "choose"|"expose", "variant": str|null,
    ///  "user_id": any, "logged_in": any, "cookie_created_timestamp": any, "app_name": any,
    ///  "experiment": {"class": str, "id"?: int, "name"?: str, "owner"?: any,
    ///                 "version"?: any, "start_ts"?: number, "stop_ts"?: number},
    ///  "bucketing": {"field": str, "value": any} | null, "is_override": bool,
    ///  "inputs": {...}}
    /// ```
    pub fn to_json(&self) -> Value {
        serde_json::to_value(JsonView(self)).unwrap_or(Value::Null)
    }

    /// Reddit's v2 event as Thrift-JSON: keys are field ids; `{"str": v}`, `{"i64": v}`,
    /// `{"tf": 1|0}`, `{"rec": {...}}`. Fields: 1 source (`"experiment"`), 2 action (event
    /// type), 3 noun (bucketing field), 5 client_timestamp, 6 uuid, 8 correlation_id,
    /// 107 app {2 name}, 112 user {1 user_id, 3 logged_in, 4 cookie_created_timestamp},
    /// 129 experiment {1 id, 2 name, 3 owner, 4 variant, 5 start_ts, 6 stop_ts,
    /// 7 bucketing_key, 8 version, 9 bucketing_value, 10 is_override}. Absent values are
    /// omitted (the whole app / user record when there is no app name / user id).
    pub fn to_v2(&self) -> Value {
        serde_json::to_value(V2View(self)).unwrap_or(Value::Null)
    }

    /// Serializes in `encoding`, straight into bytes.
    pub fn encode(&self, encoding: Encoding) -> Result<Vec<u8>, serde_json::Error> {
        let mut out = Vec::with_capacity(512);
        self.write(encoding, &mut out)?;
        Ok(out)
    }

    fn write(&self, encoding: Encoding, out: &mut Vec<u8>) -> Result<(), serde_json::Error> {
        match encoding {
            Encoding::Json => serde_json::to_writer(out, &JsonView(self)),
            Encoding::V2 => serde_json::to_writer(out, &V2View(self)),
        }
    }

    /// The event type.
    pub fn event_type(&self) -> EventType {
        self.event.event_type
    }
}

impl SinkEvent for EnrichedEvent {
    fn encode(&self, encoding: Encoding, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        Ok(self.write(encoding, out)?)
    }

    fn kind(&self) -> &'static str {
        self.event.event_type.as_str()
    }

    fn key(&self) -> Option<String> {
        self.bucketing_value()
    }

    fn uuid(&self) -> Uuid {
        self.uuid
    }
}

/// The `json` encoding of an event.
struct JsonView<'a>(&'a EnrichedEvent);

/// The `experiment` object of the `json` encoding.
struct JsonExperiment<'a>(&'a OwnedExperimentRef);

impl Serialize for JsonExperiment<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let x = self.0;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("class", &x.class)?;
        if let Some(id) = x.id {
            m.serialize_entry("id", &id)?;
        }
        if let Some(name) = &x.name {
            m.serialize_entry("name", name)?;
        }
        if let Some(owner) = &x.owner {
            m.serialize_entry("owner", owner)?;
        }
        if let Some(version) = &x.version {
            m.serialize_entry("version", version)?;
        }
        if let Some(ts) = x.start_ts {
            m.serialize_entry("start_ts", &ts)?;
        }
        if let Some(ts) = x.stop_ts {
            m.serialize_entry("stop_ts", &ts)?;
        }
        m.end()
    }
}

impl Serialize for JsonView<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let (ev, e) = (self.0, &self.0.event);
        let mut m = s.serialize_map(Some(14))?;
        m.serialize_entry("uuid", &ev.uuid)?;
        m.serialize_entry("client_timestamp", &ev.client_timestamp_ms)?;
        m.serialize_entry("correlation_id", &ev.correlation_id.as_deref())?;
        m.serialize_entry("event_type", &e.event_type)?;
        m.serialize_entry("variant", &e.variant)?;
        for key in EVENT_FIELDS {
            m.serialize_entry(key, e.inputs.get_or_null(key))?;
        }
        m.serialize_entry("experiment", &JsonExperiment(&e.experiment))?;
        match (e.bucketing_field(), e.bucketing_value()) {
            (Some(field), Some(value)) => {
                m.serialize_entry("bucketing", &Bucketing { field, value })?;
            }
            _ => m.serialize_entry("bucketing", &())?,
        }
        m.serialize_entry("is_override", &e.is_override)?;
        m.serialize_entry("inputs", &e.inputs)?;
        m.end()
    }
}

#[derive(Serialize)]
struct Bucketing<'a> {
    field: &'a str,
    value: &'a Value,
}

/// Thrift-JSON typed values.
enum Thrift<'a> {
    Str(Cow<'a, str>),
    I64(i64),
    Tf(bool),
    Rec(Vec<(&'static str, Thrift<'a>)>),
}

impl Serialize for Thrift<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(1))?;
        match self {
            Thrift::Str(v) => m.serialize_entry("str", v)?,
            Thrift::I64(v) => m.serialize_entry("i64", v)?,
            Thrift::Tf(v) => m.serialize_entry("tf", &u8::from(*v))?,
            Thrift::Rec(fields) => m.serialize_entry("rec", &Fields(fields))?,
        }
        m.end()
    }
}

/// A thrift struct: field id -> typed value.
struct Fields<'f, 'a>(&'f [(&'static str, Thrift<'a>)]);

impl Serialize for Fields<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (id, v) in self.0 {
            m.serialize_entry(id, v)?;
        }
        m.end()
    }
}

/// The `v2` encoding of an event.
struct V2View<'a>(&'a EnrichedEvent);

impl Serialize for V2View<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use Thrift::{I64, Rec, Str, Tf};
        let (ev, e) = (self.0, &self.0.event);
        let x = &e.experiment;
        let mut top: Vec<(&'static str, Thrift<'_>)> = Vec::with_capacity(10);
        top.push(("1", Str(Cow::Borrowed("experiment"))));
        top.push(("2", Str(Cow::Borrowed(e.event_type.as_str()))));
        if let Some(f) = e.bucketing_field() {
            top.push(("3", Str(Cow::Borrowed(f))));
        }
        top.push(("5", I64(ev.client_timestamp_ms)));
        top.push(("6", Str(Cow::Owned(ev.uuid.to_string()))));
        if let Some(c) = &ev.correlation_id {
            top.push(("8", Str(Cow::Borrowed(c))));
        }
        if let Some(app) = text(e.inputs.get_or_null("app_name")) {
            top.push(("107", Rec(vec![("2", Str(app))])));
        }
        if let Some(user_id) = text(e.inputs.get_or_null("user_id")) {
            let mut user = vec![("1", Str(user_id))];
            if let Value::Bool(b) = *e.inputs.get_or_null("logged_in") {
                user.push(("3", Tf(b)));
            }
            if let Some(ts) = integer(e.inputs.get_or_null("cookie_created_timestamp")) {
                user.push(("4", I64(ts)));
            }
            top.push(("112", Rec(user)));
        }
        let mut exp = Vec::with_capacity(10);
        if let Some(id) = x.id {
            exp.push(("1", I64(id)));
        }
        if let Some(name) = &x.name {
            exp.push(("2", Str(Cow::Borrowed(name))));
        }
        if let Some(owner) = x.owner.as_ref().and_then(text) {
            exp.push(("3", Str(owner)));
        }
        if let Some(v) = &e.variant {
            exp.push(("4", Str(Cow::Borrowed(v))));
        }
        if let Some(ts) = x.start_ts {
            exp.push(("5", I64(ts as i64)));
        }
        if let Some(ts) = x.stop_ts {
            exp.push(("6", I64(ts as i64)));
        }
        if let Some(f) = e.bucketing_field() {
            exp.push(("7", Str(Cow::Borrowed(f))));
        }
        if let Some(version) = x.version.as_ref().and_then(text) {
            exp.push(("8", Str(version)));
        }
        if let Some(value) = e.bucketing_value().and_then(text) {
            exp.push(("9", Str(value)));
        }
        exp.push(("10", Tf(e.is_override)));
        top.push(("129", Rec(exp)));
        Fields(&top).serialize(s)
    }
}

/// A value as a thrift string: strings as they are, numbers and booleans as Python `str()`,
/// null (absent) as nothing.
fn text(v: &Value) -> Option<Cow<'_, str>> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(Cow::Borrowed(s)),
        other => Some(Cow::Owned(py_str(other))),
    }
}
/// An integer value (floats truncated), for i64 fields.
fn integer(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        _ => None,
    }
}
