//! The delivered event: the core's event plus delivery metadata, and its two encodings.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use experiments_core::{Event, EventType, OwnedEvent, Value, py_str};
use serde::{Deserialize, Serialize};
use serde_json::{Map, json};
use uuid::Uuid;

/// Serialized events larger than this are rejected (counted as `too_large`, never sent).
pub const MAX_EVENT_BYTES: usize = 100 * 1024;

/// How events are serialized on the wire.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
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
        self.event.bucketing_value.as_ref().map(py_str)
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
        let e = &self.event;
        let mut experiment = Map::new();
        experiment.insert("class".into(), json!(e.experiment.class));
        let optional = [
            ("id", e.experiment.id.map(Value::from)),
            ("name", e.experiment.name.clone().map(Value::from)),
            ("owner", e.experiment.owner.clone()),
            ("version", e.experiment.version.clone()),
            ("start_ts", e.experiment.start_ts.map(Value::from)),
            ("stop_ts", e.experiment.stop_ts.map(Value::from)),
        ];
        for (k, v) in optional {
            if let Some(v) = v {
                experiment.insert(k.into(), v);
            }
        }
        let bucketing = match (&e.bucketing_field, &e.bucketing_value) {
            (Some(f), Some(v)) => json!({"field": f, "value": v}),
            _ => Value::Null,
        };
        json!({
            "uuid": self.uuid.to_string(),
            "client_timestamp": self.client_timestamp_ms,
            "correlation_id": self.correlation_id.as_deref(),
            "event_type": e.event_type,
            "variant": e.variant,
            "user_id": e.user_id,
            "logged_in": e.logged_in,
            "cookie_created_timestamp": e.cookie_created_timestamp,
            "app_name": e.app_name,
            "experiment": experiment,
            "bucketing": bucketing,
            "is_override": e.is_override,
            "inputs": e.inputs,
        })
    }

    /// Reddit's v2 event as Thrift-JSON: keys are field ids; `{"str": v}`, `{"i32": v}`,
    /// `{"i64": v}`, `{"tf": 1|0}`, `{"rec": {...}}`. Fields: 1 source (`"experiment"`),
    /// 2 action (event type), 3 noun (bucketing field), 5 client_timestamp, 6 uuid,
    /// 8 correlation_id, 107 app {2 name}, 112 user {1 user_id, 3 logged_in,
    /// 4 cookie_created_timestamp}, 129 experiment {1 id, 2 name, 3 owner, 4 variant,
    /// 5 start_ts, 6 stop_ts, 7 bucketing_key, 8 version, 9 bucketing_value, 10 is_override}.
    /// Absent values are omitted (the whole app / user record when there is no app name /
    /// user id).
    pub fn to_v2(&self) -> Value {
        let e = &self.event;
        let s = |v: &str| json!({"str": v});
        let mut top = Map::new();
        top.insert("1".into(), s("experiment"));
        top.insert("2".into(), s(e.event_type.as_str()));
        if let Some(f) = &e.bucketing_field {
            top.insert("3".into(), s(f));
        }
        top.insert("5".into(), json!({"i64": self.client_timestamp_ms}));
        top.insert("6".into(), s(&self.uuid.to_string()));
        if let Some(c) = &self.correlation_id {
            top.insert("8".into(), s(c));
        }
        if let Some(app) = text(&e.app_name) {
            top.insert("107".into(), json!({"rec": {"2": {"str": app}}}));
        }
        if let Some(user_id) = text(&e.user_id) {
            let mut user = Map::new();
            user.insert("1".into(), s(&user_id));
            if let Value::Bool(b) = e.logged_in {
                user.insert("3".into(), json!({"tf": u8::from(b)}));
            }
            if let Some(ts) = integer(&e.cookie_created_timestamp) {
                user.insert("4".into(), json!({"i64": ts}));
            }
            top.insert("112".into(), json!({"rec": user}));
        }
        let x = &e.experiment;
        let mut exp = Map::new();
        if let Some(id) = x.id {
            exp.insert("1".into(), json!({"i64": id}));
        }
        if let Some(name) = &x.name {
            exp.insert("2".into(), s(name));
        }
        if let Some(owner) = x.owner.as_ref().and_then(text) {
            exp.insert("3".into(), s(&owner));
        }
        if let Some(v) = &e.variant {
            exp.insert("4".into(), s(v));
        }
        if let Some(ts) = x.start_ts {
            exp.insert("5".into(), json!({"i64": ts as i64}));
        }
        if let Some(ts) = x.stop_ts {
            exp.insert("6".into(), json!({"i64": ts as i64}));
        }
        if let Some(f) = &e.bucketing_field {
            exp.insert("7".into(), s(f));
        }
        if let Some(version) = x.version.as_ref().and_then(text) {
            exp.insert("8".into(), s(&version));
        }
        if let Some(value) = self.bucketing_value() {
            exp.insert("9".into(), s(&value));
        }
        exp.insert("10".into(), json!({"tf": u8::from(e.is_override)}));
        top.insert("129".into(), json!({"rec": exp}));
        Value::Object(top)
    }

    /// Serializes in `encoding`.
    pub fn encode(&self, encoding: Encoding) -> Result<Vec<u8>, serde_json::Error> {
        match encoding {
            Encoding::Json => serde_json::to_vec(&self.to_json()),
            Encoding::V2 => serde_json::to_vec(&self.to_v2()),
        }
    }

    /// The event type.
    pub fn event_type(&self) -> EventType {
        self.event.event_type
    }
}

/// A value as a thrift string: strings as they are, numbers and booleans as Python `str()`,
/// null (absent) as nothing.
fn text(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(py_str(other)),
    }
}

/// An integer value (floats truncated), for i64 fields.
fn integer(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        _ => None,
    }
}
