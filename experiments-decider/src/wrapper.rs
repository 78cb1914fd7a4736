//! The service layer (SPEC §13): what `reddit_decider.Decider` (reddit-experiments 1.12.0)
//! does over a per-request `DeciderContext` — the context dictionaries, error swallowing,
//! defaults, and the exposure records it hands to a baseplate event logger.
//!
//! A [`WrapperRequest`] is the per-request `Decider`: built from the (optional) [`Manifest`],
//! a [`WrapperContext`] and a [`WrapperHandler`] that receives the logged [`WrapperEvent`]s
//! and the errors the wrapper swallows. Each method has the wrapper's return value (`None`,
//! the default, `[]` where the reference swallows an error) and a `try_` twin that returns the
//! error instead. Like the rest of the crate it does no IO: events are values, and what their
//! v2 form needs from the world comes in as an [`EventStamp`].
//!
//! ```
//! use experiments_decider::{Manifest, WrapperContext, WrapperEvent, WrapperRequest};
//!
//! let manifest = Manifest::from_str(r#"{"feed": {"id": 7, "name": "feed", "enabled": true,
//!   "version": "1", "type": "range_variant", "emit_event": true,
//!   "experiment": {"experiment_version": 2, "bucket_val": "user_id",
//!     "variants": [{"name": "on", "range_start": 0.0, "range_end": 1.0}]}}}"#)?;
//! let ctx = WrapperContext::builder().user_id("t2_abc").logged_in(true).build();
//! let mut request = WrapperRequest::new(Some(&manifest), ctx, Vec::<WrapperEvent>::new());
//! let kwargs = serde_json::Map::new();
//! assert_eq!(request.get_variant("feed", &kwargs), Some("on"));
//! assert_eq!(request.get_variant("unknown", &kwargs), None); // swallowed
//! let events = request.into_handler();
//! assert_eq!(events.len(), 1);
//! assert_eq!(events[0].inputs["user_id"], "t2_abc");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::borrow::{Borrow, BorrowMut};
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde_json::{Map, Value};
use uuid::Uuid;

use crate::context::{Context, ContextError, StringField};
use crate::decide::{Decision, NoTrace, Observer};
use crate::error::DecideError;
use crate::event::{DecisionKind, EventStamp, Exposure, OwnedExposure};
use crate::format::push_py_json;
use crate::manifest::{Feature, Manifest};

/// The keyword arguments of `DeciderContext(...)`, in its signature's order.
const KEYWORDS: [&str; 12] = [
    "user_id",
    "device_id",
    "country_code",
    "locale",
    "user_is_employee",
    "logged_in",
    "oauth_client_id",
    "origin_service",
    "cookie_created_timestamp",
    "loid_created_timestamp",
    "extracted_fields",
    "conversion_pixel_id",
];

/// The keywords `event_logger.log(...)` is called with besides the event fields: an event
/// field of one of these names makes the call raise `TypeError` in the reference.
const LOG_KEYWORDS: [&str; 5] = ["experiment", "variant", "span", "event_type", "inputs"];

/// Python truthiness of a JSON value (`None`, `False`, `0`, `0.0`, `""`, `[]`, `{}` are false).
fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

/// `DeciderContext(**kwargs)` could not be built: the reference raises `TypeError`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KwargsError {
    /// A keyword `DeciderContext.__init__` does not take.
    #[error("DeciderContext() got an unexpected keyword argument '{0}'")]
    UnexpectedKeyword(String),
    /// `extracted_fields` is truthy but not a dict: every call of the reference would raise
    /// `TypeError` when it spreads it, so the context is refused up front. (A falsy value —
    /// `None`, `[]`, `""`, `0` — stands for no extracted fields, as `extracted_fields or {}`
    /// makes it.)
    #[error("extracted_fields must be a dict, not {0}")]
    ExtractedFieldsNotADict(&'static str),
}

/// The per-request `DeciderContext`: the twelve keyword arguments as given.
///
/// Python is dynamically typed, and so is this context: each field keeps the JSON value it was
/// given (`Null` = `None`), and only the core decides whether it has the right type when a
/// decision builds its [`Context`] ([`WrapperContext::context`]). A float
/// `cookie_created_timestamp` (the reference's documented type!) is accepted here and makes
/// every decision fail later (SPEC \[W03\]), exactly as in the reference; events still echo it.
///
/// Build it from recorded kwargs ([`WrapperContext::from_kwargs`]) or field by field
/// ([`WrapperContext::builder`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WrapperContext {
    user_id: Value,
    device_id: Value,
    country_code: Value,
    locale: Value,
    user_is_employee: Value,
    logged_in: Value,
    oauth_client_id: Value,
    origin_service: Value,
    cookie_created_timestamp: Value,
    loid_created_timestamp: Value,
    extracted_fields: Map<String, Value>,
    conversion_pixel_id: Value,
}

impl WrapperContext {
    /// The keyword arguments of `DeciderContext(...)` ([`WrapperContext::from_kwargs`]), in
    /// the reference's signature order.
    pub const KEYWORDS: [&'static str; 12] = KEYWORDS;

    /// A builder with every field `None`.
    pub fn builder() -> WrapperContextBuilder {
        WrapperContextBuilder(WrapperContext::default())
    }

    /// `DeciderContext(**kwargs)`: any JSON value is accepted for any of the twelve keywords
    /// (`null` is `None`). Fails where the reference raises `TypeError`: an unknown keyword,
    /// or a truthy `extracted_fields` that is not an object.
    pub fn from_kwargs(kwargs: Map<String, Value>) -> Result<WrapperContext, KwargsError> {
        let mut c = WrapperContext::default();
        for (key, value) in kwargs {
            let slot = match key.as_str() {
                "user_id" => &mut c.user_id,
                "device_id" => &mut c.device_id,
                "country_code" => &mut c.country_code,
                "locale" => &mut c.locale,
                "user_is_employee" => &mut c.user_is_employee,
                "logged_in" => &mut c.logged_in,
                "oauth_client_id" => &mut c.oauth_client_id,
                "origin_service" => &mut c.origin_service,
                "cookie_created_timestamp" => &mut c.cookie_created_timestamp,
                "loid_created_timestamp" => &mut c.loid_created_timestamp,
                "conversion_pixel_id" => &mut c.conversion_pixel_id,
                "extracted_fields" => {
                    c.extracted_fields = match value {
                        Value::Object(fields) => fields,
                        v if !truthy(&v) => Map::new(),
                        Value::Array(_) => {
                            return Err(KwargsError::ExtractedFieldsNotADict("list"));
                        }
                        Value::String(_) => {
                            return Err(KwargsError::ExtractedFieldsNotADict("str"));
                        }
                        Value::Bool(_) => return Err(KwargsError::ExtractedFieldsNotADict("bool")),
                        Value::Number(n) if n.is_f64() => {
                            return Err(KwargsError::ExtractedFieldsNotADict("float"));
                        }
                        _ => return Err(KwargsError::ExtractedFieldsNotADict("int")),
                    };
                    continue;
                }
                _ => return Err(KwargsError::UnexpectedKeyword(key)),
            };
            *slot = value;
        }
        Ok(c)
    }

    /// `extracted_fields` (empty when none were given).
    pub fn extracted_fields(&self) -> &Map<String, Value> {
        &self.extracted_fields
    }

    /// The value of one of the twelve keywords as given (`None` when absent or `null`;
    /// `extracted_fields` is [`WrapperContext::extracted_fields`]).
    pub fn get(&self, keyword: &str) -> Option<&Value> {
        let v = match keyword {
            "user_id" => &self.user_id,
            "device_id" => &self.device_id,
            "country_code" => &self.country_code,
            "locale" => &self.locale,
            "user_is_employee" => &self.user_is_employee,
            "logged_in" => &self.logged_in,
            "oauth_client_id" => &self.oauth_client_id,
            "origin_service" => &self.origin_service,
            "cookie_created_timestamp" => &self.cookie_created_timestamp,
            "loid_created_timestamp" => &self.loid_created_timestamp,
            "conversion_pixel_id" => &self.conversion_pixel_id,
            _ => return None,
        };
        (!v.is_null()).then_some(v)
    }

    /// `deepcopy(extracted_fields)` plus `conversion_pixel_id` when it is not `None` (set
    /// after the extracted fields, so it wins and keeps an existing key's position).
    fn extracted_with_pixel(&self) -> Map<String, Value> {
        let mut ef = self.extracted_fields.clone();
        if !self.conversion_pixel_id.is_null() {
            ef.insert("conversion_pixel_id".to_owned(), self.conversion_pixel_id.clone());
        }
        ef
    }

    /// Whether `to_dict()["other_fields"]` is a dict (the extracted fields, unless they have an
    /// `other_fields` member of their own, which the spread puts in its place).
    fn other_fields_is_dict(&self) -> bool {
        self.extracted_fields.get("other_fields").is_none_or(Value::is_object)
    }

    /// `to_dict()` (SPEC \[W01\]): the dict the wrapper hands to the core. The ten typed keywords
    /// (`loid_created_timestamp` included, which the core ignores), `other_fields` = the
    /// extracted fields plus `conversion_pixel_id`, and those fields again spread at the top
    /// level, after the typed keys: `extracted_fields={"user_id": ...}` replaces `user_id`, and
    /// `app_name`/`build_number` reach the core's typed slots this way.
    pub fn to_dict(&self) -> Map<String, Value> {
        let ef = self.extracted_with_pixel();
        let mut d = Map::with_capacity(11 + ef.len());
        for (k, v) in [
            ("user_id", &self.user_id),
            ("device_id", &self.device_id),
            ("country_code", &self.country_code),
            ("locale", &self.locale),
            ("user_is_employee", &self.user_is_employee),
            ("logged_in", &self.logged_in),
            ("oauth_client_id", &self.oauth_client_id),
            ("origin_service", &self.origin_service),
            ("cookie_created_timestamp", &self.cookie_created_timestamp),
            ("loid_created_timestamp", &self.loid_created_timestamp),
        ] {
            d.insert(k.to_owned(), v.clone());
        }
        d.insert("other_fields".to_owned(), Value::Object(ef.clone()));
        for (k, v) in ef {
            d.insert(k, v);
        }
        d
    }

    /// The core [`Context`] of `to_dict()` ([`Context::from_json`]'s type rules): what every
    /// decision of the wrapper uses. An error here makes every decision, getter and
    /// `get_all_*` call of the request fail (and return `None`/the default/`[]`).
    pub fn context(&self) -> Result<Context, ContextError> {
        Context::from_json(&self.to_dict())
    }

    /// `to_event_dict()` (SPEC \[W02\]): the event fields `F` every logged record starts from,
    /// keys in the reference's order: `user_id, country_code, locale, user_is_employee,
    /// logged_in, device_id, origin_service, cookie_created_timestamp`, then `user` (`id,
    /// logged_in, cookie_created_timestamp, is_employee`), `app` (`name`, `version`,
    /// `build_number` from the extracted `app_name`/`app_version`/`build_number`,
    /// `relevant_locale` from `locale`, each only when truthy), `geo` (`country_code` when
    /// truthy), `request` (the extracted `canonical_url` when truthy), `platform` (`device_id`
    /// when truthy), then the extracted fields (plus `conversion_pixel_id`) spread, which
    /// replace earlier keys of the same name in place.
    pub fn to_event_dict(&self) -> Map<String, Value> {
        let ef = self.extracted_with_pixel();
        let obj = |pairs: &[(&str, Option<&Value>)]| {
            Value::Object(
                pairs.iter().filter_map(|(k, v)| v.map(|v| ((*k).to_owned(), v.clone()))).collect(),
            )
        };
        fn if_truthy(v: Option<&Value>) -> Option<&Value> {
            v.filter(|v| truthy(v))
        }
        let user = obj(&[
            ("id", Some(&self.user_id)),
            ("logged_in", Some(&self.logged_in)),
            ("cookie_created_timestamp", Some(&self.cookie_created_timestamp)),
            ("is_employee", Some(&self.user_is_employee)),
        ]);
        let app = obj(&[
            ("name", if_truthy(ef.get("app_name"))),
            ("version", if_truthy(ef.get("app_version"))),
            ("build_number", if_truthy(ef.get("build_number"))),
            ("relevant_locale", if_truthy(Some(&self.locale))),
        ]);
        let geo = obj(&[("country_code", if_truthy(Some(&self.country_code)))]);
        let request = obj(&[("canonical_url", if_truthy(ef.get("canonical_url")))]);
        let platform = obj(&[("device_id", if_truthy(Some(&self.device_id)))]);
        let mut d = Map::with_capacity(13 + ef.len());
        for (k, v) in [
            ("user_id", self.user_id.clone()),
            ("country_code", self.country_code.clone()),
            ("locale", self.locale.clone()),
            ("user_is_employee", self.user_is_employee.clone()),
            ("logged_in", self.logged_in.clone()),
            ("device_id", self.device_id.clone()),
            ("origin_service", self.origin_service.clone()),
            ("cookie_created_timestamp", self.cookie_created_timestamp.clone()),
            ("user", user),
            ("app", app),
            ("geo", geo),
            ("request", request),
            ("platform", platform),
        ] {
            d.insert(k.to_owned(), v);
        }
        for (k, v) in ef {
            d.insert(k, v);
        }
        d
    }
}

/// Builds a [`WrapperContext`] with typed values (what a Rust service knows about a request).
#[derive(Debug, Clone, Default)]
pub struct WrapperContextBuilder(WrapperContext);

macro_rules! wrapper_setters {
    ($($method:ident: $ty:ty),* $(,)?) => {
        $(
            #[doc = concat!("Sets the `", stringify!($method), "` keyword (`", stringify!($ty),
                "`; stored as the JSON value Python would pass).")]
            pub fn $method(mut self, value: $ty) -> Self {
                self.0.$method = Value::from(value);
                self
            }
        )*
    };
}

impl WrapperContextBuilder {
    wrapper_setters! {
        user_id: &str,
        device_id: &str,
        country_code: &str,
        locale: &str,
        user_is_employee: bool,
        logged_in: bool,
        oauth_client_id: &str,
        origin_service: &str,
        cookie_created_timestamp: i64,
        loid_created_timestamp: i64,
        conversion_pixel_id: &str,
    }

    /// Sets `extracted_fields` (for example `app_name`, `build_number`, `canonical_url`,
    /// `subreddit_id`: the extracted fields are spread over the typed keys, see
    /// [`WrapperContext::to_dict`]).
    pub fn extracted_fields(mut self, fields: Map<String, Value>) -> Self {
        self.0.extracted_fields = fields;
        self
    }

    /// Adds one extracted field (replacing a field of the same name in place).
    pub fn extracted_field(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.0.extracted_fields.insert(key.to_owned(), value.into());
        self
    }

    /// The context (fields never set are `None`).
    pub fn build(self) -> WrapperContext {
        self.0
    }
}

/// The identifier types of `get_variant_for_identifier` and
/// `get_all_variants_for_identifier_without_expose` (SPEC \[W05\]), case-sensitive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum IdentifierType {
    /// `user_id`.
    UserId,
    /// `device_id`.
    DeviceId,
    /// `canonical_url`.
    CanonicalUrl,
    /// `subreddit_id`.
    SubredditId,
    /// `ad_account_id`.
    AdAccountId,
    /// `business_id`.
    BusinessId,
    /// `conversion_pixel_id` (not a typed slot of the core: it is set in `other_fields`).
    ConversionPixelId,
}

impl IdentifierType {
    /// Every identifier type, in the reference's order.
    pub const ALL: [IdentifierType; 7] = [
        IdentifierType::UserId,
        IdentifierType::DeviceId,
        IdentifierType::CanonicalUrl,
        IdentifierType::SubredditId,
        IdentifierType::AdAccountId,
        IdentifierType::BusinessId,
        IdentifierType::ConversionPixelId,
    ];

    /// The context key (`user_id`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            IdentifierType::UserId => "user_id",
            IdentifierType::DeviceId => "device_id",
            IdentifierType::CanonicalUrl => "canonical_url",
            IdentifierType::SubredditId => "subreddit_id",
            IdentifierType::AdAccountId => "ad_account_id",
            IdentifierType::BusinessId => "business_id",
            IdentifierType::ConversionPixelId => "conversion_pixel_id",
        }
    }

    /// The core's typed slot, `None` for `conversion_pixel_id`.
    fn slot(self) -> Option<StringField> {
        Some(match self {
            IdentifierType::UserId => StringField::UserId,
            IdentifierType::DeviceId => StringField::DeviceId,
            IdentifierType::CanonicalUrl => StringField::CanonicalUrl,
            IdentifierType::SubredditId => StringField::SubredditId,
            IdentifierType::AdAccountId => StringField::AdAccountId,
            IdentifierType::BusinessId => StringField::BusinessId,
            IdentifierType::ConversionPixelId => return None,
        })
    }
}

impl FromStr for IdentifierType {
    type Err = WrapperError;

    /// Exactly one of the seven names (`"User_Id"` is not one).
    fn from_str(s: &str) -> Result<Self, WrapperError> {
        IdentifierType::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| WrapperError::InvalidIdentifierType(s.to_owned()))
    }
}

impl AsRef<str> for IdentifierType {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Display for IdentifierType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a wrapper call gave its fallback value (`None`, the default, `[]`) or dropped an event.
/// The plain methods report these to [`WrapperHandler::error`]; the `try_` methods return
/// them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WrapperError {
    /// The request has no manifest (`internal=None`, SPEC \[W10\]).
    #[error("RustDecider is None--did not initialize.")]
    NoDecider,
    /// The core raised (unknown feature, context type error, decision error, value type
    /// mismatch); [`DecideError::kind`] is the reference's exception class.
    #[error(transparent)]
    Decide(#[from] DecideError),
    /// `identifier_type` is not one of the seven [`IdentifierType`]s.
    #[error("\"{0}\" is not one of supported \"identifier_type\"")]
    InvalidIdentifierType(String),
    /// A keyword the reference's call cannot take: an `exposure_kwargs` key naming one of the
    /// method's parameters, or an event field named like one of `event_logger.log`'s keywords
    /// (`experiment`, `variant`, `span`, `event_type`, `inputs`; the `bucket_val` entry
    /// included). The reference raises `TypeError` (uncaught); events logged before it by the
    /// same call stay logged.
    #[error("got multiple values for keyword argument '{0}'")]
    KeywordConflict(String),
    /// `conversion_pixel_id` as identifier type while `to_dict()["other_fields"]` is not a dict
    /// (the extracted fields have an `other_fields` member that is not an object): the
    /// reference raises `TypeError` (uncaught).
    #[error("'other_fields' does not support item assignment")]
    OtherFieldsNotADict,
    /// A decision event whose legacy string does not split into exactly 9 parts on `::::`
    /// (a name, variant or value containing `::::`): the wrapper does not log it (SPEC \[W09\]);
    /// the call itself succeeds. Reported by both forms of the methods.
    #[error("Encountered error in event.split(\"::::\") for event: {0}. Exposure not emitted.")]
    UnsplittableEvent(String),
}

impl WrapperError {
    /// The core's error, when the core raised.
    pub fn decide_error(&self) -> Option<&DecideError> {
        match self {
            WrapperError::Decide(e) => Some(e),
            _ => None,
        }
    }
}

impl From<ContextError> for WrapperError {
    fn from(e: ContextError) -> Self {
        WrapperError::Decide(DecideError::Context(e))
    }
}

/// The `event_type` of a logged record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EventType {
    /// `EventType.EXPOSE` (`"expose"`), the only one the wrapper logs.
    Expose,
}

impl EventType {
    /// `"expose"`.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Expose => "expose",
        }
    }
}

/// The wrapper's `ExperimentConfig` dataclass: what a logged record says about the experiment,
/// and what [`WrapperRequest::get_experiment`] returns. `owner` is always `None` in the
/// reference and is written as `null` by the records.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExperimentConfig {
    /// `id` (for decision events: `int()` of the legacy string's part, 1 when that fails).
    pub id: u64,
    /// `version`: `str(experiment_version)` (for decision events: the legacy string's part).
    pub version: String,
    /// `name`.
    pub name: String,
    /// `bucket_val` (`""` for dynamic configs).
    pub bucket_val: String,
    /// `start_ts` (for decision events: `int()` of the legacy part, 1 when that fails).
    pub start_ts: u64,
    /// `stop_ts` (same rule).
    pub stop_ts: u64,
    /// `emit_event`: `None` in logged records, the feature's flag from `get_experiment`.
    pub emit_event: Option<bool>,
    /// `measured`: `None` in logged records, the feature's flag from `get_experiment`.
    pub measured: Option<bool>,
}

impl ExperimentConfig {
    fn of_feature(f: &Feature, flags: bool) -> Self {
        ExperimentConfig {
            id: u64::from(f.id()),
            version: f.version().to_string(),
            name: f.name().to_owned(),
            bucket_val: f.bucket_val().to_owned(),
            start_ts: f.start_ts(),
            stop_ts: f.stop_ts(),
            emit_event: flags.then_some(f.emit_event()),
            measured: flags.then_some(f.measured()),
        }
    }

    /// The dataclass as a JSON object, fields in its order: `id, version, name, bucket_val,
    /// start_ts, stop_ts, owner, emit_event, measured`.
    pub fn to_record(&self) -> Value {
        let mut m = Map::with_capacity(9);
        m.insert("id".into(), self.id.into());
        m.insert("version".into(), self.version.clone().into());
        m.insert("name".into(), self.name.clone().into());
        m.insert("bucket_val".into(), self.bucket_val.clone().into());
        m.insert("start_ts".into(), self.start_ts.into());
        m.insert("stop_ts".into(), self.stop_ts.into());
        m.insert("owner".into(), Value::Null);
        m.insert("emit_event".into(), self.emit_event.into());
        m.insert("measured".into(), self.measured.into());
        Value::Object(m)
    }
}

/// One `event_logger.log(**kw)` call of the wrapper, owned (it outlives the call and the
/// manifest: queue it). The record ([`WrapperEvent::to_record`], [`WrapperEvent::write_json`])
/// is what the reference hands its logger; the v2 Thrift-JSON of the same exposure
/// ([`WrapperEvent::to_v2_json`]) is the engine's, byte for byte.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct WrapperEvent {
    /// Always [`EventType::Expose`].
    pub event_type: EventType,
    /// The event's variant (a holdout event's is its parent's, `"holdout"` or `"control_1"`).
    pub variant: String,
    /// The experiment (for a holdout event, the parent's).
    pub experiment: ExperimentConfig,
    /// The event fields `F` (also passed as the log call's keyword arguments, in this order).
    pub inputs: Map<String, Value>,
    exposure: OwnedExposure,
}

impl WrapperEvent {
    /// Why the exposure happened: the decision event's kind, [`DecisionKind::FracAvail`] for
    /// a manual `expose`.
    pub fn kind(&self) -> DecisionKind {
        self.exposure.kind()
    }

    /// `"{feature_name}:{version}:{variant}:{bucketing_value}"` of the exposure.
    pub fn exposure_key(&self) -> String {
        self.exposure.exposure_key()
    }

    /// The correlation id the v2 event carries (see [`Exposure::correlation_id`]).
    pub fn correlation_id(&self, fallback: Uuid) -> Uuid {
        self.exposure.correlation_id(fallback)
    }

    /// The v2 event in Thrift-JSON, as [`Exposure::to_v2_json`] writes it for the same
    /// exposure: for decision events, exactly the decision's event; for `expose`, the event of
    /// [`Exposure::from_parts`] with [`DecisionKind::FracAvail`]. Use one
    /// `correlation_fallback` for the events of one call.
    pub fn to_v2_json(&self, stamp: &EventStamp) -> String {
        let mut out = String::with_capacity(640);
        self.write_v2_json(stamp, &mut out);
        out
    }

    /// Appends [`WrapperEvent::to_v2_json`] to `out`.
    pub fn write_v2_json(&self, stamp: &EventStamp, out: &mut String) {
        self.exposure.write_v2_json(stamp, out);
    }

    /// The record as JSON: `{"event_type", "variant", "experiment": {...}, "inputs": {...}}`.
    pub fn to_record(&self) -> Value {
        let mut m = Map::with_capacity(4);
        m.insert("event_type".into(), self.event_type.as_str().into());
        m.insert("variant".into(), self.variant.clone().into());
        m.insert("experiment".into(), self.experiment.to_record());
        m.insert("inputs".into(), Value::Object(self.inputs.clone()));
        Value::Object(m)
    }

    /// Appends the record as Python's `json.dumps(..., ensure_ascii=False, separators=(",",
    /// ":"))` writes it (the form of the conformance vectors): compact, keys in order, floats
    /// in Python's `repr` (`1e+16`, `1.0`).
    pub fn write_json(&self, out: &mut Vec<u8>) {
        let mut s = String::with_capacity(512);
        push_py_json(&mut s, &self.to_record());
        out.extend_from_slice(s.as_bytes());
    }
}

/// One entry of `get_all_variants_without_expose()`: `{"name", "id", "version",
/// "experimentName"}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct VariantInfo<'m> {
    /// The variant (`"name"`).
    pub name: &'m str,
    /// The feature id.
    pub id: u32,
    /// The feature version (`experiment_version`; a string in the record).
    pub version: u32,
    /// The feature name (`"experimentName"`).
    pub experiment_name: &'m str,
}

impl VariantInfo<'_> {
    /// `{"name", "id", "version": str, "experimentName"}`.
    pub fn to_record(&self) -> Value {
        let mut m = Map::with_capacity(4);
        m.insert("name".into(), self.name.into());
        m.insert("id".into(), self.id.into());
        m.insert("version".into(), self.version.to_string().into());
        m.insert("experimentName".into(), self.experiment_name.into());
        Value::Object(m)
    }
}

/// The Python type of a dynamic config's value, as `get_all_dynamic_configs` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DynamicConfigType {
    /// `bool`: `"boolean"`.
    Boolean,
    /// `int`: `"integer"`.
    Integer,
    /// `float`: `"float"`.
    Float,
    /// `str`: `"string"`.
    String,
    /// `dict`: `"map"`.
    Map,
    /// `None` (a disabled or null config): `""`.
    Null,
}

impl DynamicConfigType {
    /// The type of a value (arrays cannot be dynamic-config values: the manifest rejects
    /// them; they would count as `Null`).
    pub fn of(value: &Value) -> Self {
        match value {
            Value::Bool(_) => DynamicConfigType::Boolean,
            Value::Number(n) if n.is_f64() => DynamicConfigType::Float,
            Value::Number(_) => DynamicConfigType::Integer,
            Value::String(_) => DynamicConfigType::String,
            Value::Object(_) => DynamicConfigType::Map,
            Value::Null | Value::Array(_) => DynamicConfigType::Null,
        }
    }

    /// `"boolean"`, `"integer"`, `"float"`, `"string"`, `"map"` or `""`.
    pub fn as_str(self) -> &'static str {
        match self {
            DynamicConfigType::Boolean => "boolean",
            DynamicConfigType::Integer => "integer",
            DynamicConfigType::Float => "float",
            DynamicConfigType::String => "string",
            DynamicConfigType::Map => "map",
            DynamicConfigType::Null => "",
        }
    }
}

/// One entry of `get_all_dynamic_configs()`: `{"name", "value", "type"}`. The value is the
/// core's (integers stay integers, maps keep their numbers).
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct DynamicConfigInfo<'m> {
    /// The config's name.
    pub name: &'m str,
    /// Its value (`null` when disabled).
    pub value: &'m Value,
    /// The value's type (`"type"`).
    pub value_type: DynamicConfigType,
}

impl DynamicConfigInfo<'_> {
    /// `{"name", "value", "type"}`.
    pub fn to_record(&self) -> Value {
        let mut m = Map::with_capacity(3);
        m.insert("name".into(), self.name.into());
        m.insert("value".into(), self.value.clone());
        m.insert("type".into(), self.value_type.as_str().into());
        Value::Object(m)
    }
}

/// Python's conversion of a `get_map` result: every number becomes a float, recursively
/// (`{"a": 1}` → `{"a": 1.0}`), as the wrapper's `dict()` of the core's value gives it.
pub fn python_floats(v: &Value) -> Value {
    match v {
        Value::Number(n) => n.as_f64().map_or(Value::Null, Value::from),
        Value::Array(a) => Value::Array(a.iter().map(python_floats).collect()),
        Value::Object(o) => {
            Value::Object(o.iter().map(|(k, v)| (k.clone(), python_floats(v))).collect())
        }
        other => other.clone(),
    }
}

/// Python's `int(s)` for the legacy string's numeric parts, with the wrapper's fallback to 1
/// when it raises: surrounding whitespace, an optional `+`, decimal digits with single
/// underscores between them. (The parts are this engine's own decimal numbers, at most
/// preceded by colons a misaligned split moved there; negative or larger-than-`u64` values
/// cannot occur and also give 1.)
fn cast_to_int(s: &str) -> u64 {
    let t = s.trim();
    let t = t.strip_prefix('+').unwrap_or(t);
    let well_formed = !t.is_empty()
        && !t.starts_with('_')
        && !t.ends_with('_')
        && !t.contains("__")
        && t.bytes().all(|b| b.is_ascii_digit() || b == b'_');
    if !well_formed {
        return 1;
    }
    t.bytes()
        .filter(u8::is_ascii_digit)
        .try_fold(0u64, |n, d| n.checked_mul(10).and_then(|n| n.checked_add(u64::from(d - b'0'))))
        .unwrap_or(1)
}

/// Receives what a [`WrapperRequest`] logs: the baseplate `EventLogger` of the reference, and
/// (unlike it) the errors the wrapper swallows, so that a service can count and log them.
pub trait WrapperHandler {
    /// One `event_logger.log(...)` call.
    fn log(&mut self, event: WrapperEvent);

    /// An error the wrapper swallowed: `op` is the method (`"get_variant"`, ...). Called by the
    /// plain methods for the error that made them return their fallback value, and by both
    /// forms for each event dropped by [`WrapperError::UnsplittableEvent`]. Does nothing by
    /// default.
    fn error(&mut self, op: &'static str, error: &WrapperError) {
        let _ = (op, error);
    }
}

/// Collects the events (errors are ignored).
impl WrapperHandler for Vec<WrapperEvent> {
    fn log(&mut self, event: WrapperEvent) {
        self.push(event);
    }
}

/// Drops everything.
impl WrapperHandler for () {
    fn log(&mut self, _event: WrapperEvent) {}
}

impl<H: WrapperHandler + ?Sized> WrapperHandler for &mut H {
    fn log(&mut self, event: WrapperEvent) {
        (**self).log(event);
    }

    fn error(&mut self, op: &'static str, error: &WrapperError) {
        (**self).error(op, error);
    }
}

/// A [`WrapperHandler`] from two closures: one per event, one per swallowed error.
pub struct HandlerFn<L, E> {
    log: L,
    error: E,
}

impl<L: FnMut(WrapperEvent)> HandlerFn<L, fn(&'static str, &WrapperError)> {
    /// Events go to `log`; errors are ignored.
    pub fn new(log: L) -> Self {
        HandlerFn { log, error: |_, _| {} }
    }
}

impl<L, E> HandlerFn<L, E> {
    /// Errors go to `error` too.
    pub fn with_errors<E2: FnMut(&'static str, &WrapperError)>(
        self,
        error: E2,
    ) -> HandlerFn<L, E2> {
        HandlerFn { log: self.log, error }
    }
}

impl<L, E> fmt::Debug for HandlerFn<L, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HandlerFn")
    }
}

impl<L: FnMut(WrapperEvent), E: FnMut(&'static str, &WrapperError)> WrapperHandler
    for HandlerFn<L, E>
{
    fn log(&mut self, event: WrapperEvent) {
        (self.log)(event);
    }

    fn error(&mut self, op: &'static str, error: &WrapperError) {
        (self.error)(op, error);
    }
}

/// Which decision events a call logs.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Expose {
    /// `get_variant*`: every event.
    All,
    /// `*_without_expose`, `get_all_variants*`: only Holdout-kind ones (legacy type `"2"`).
    HoldoutOnly,
}

/// The per-request `reddit_decider.Decider(decider_context, internal, ...)`.
///
/// Every method follows the reference (SPEC §13): errors are swallowed into `None`, the
/// default or `[]` without events, and reported to the handler's
/// [`WrapperHandler::error`]; each has a `try_` twin that returns the [`WrapperError`]
/// instead. The context's dict is parsed into the core [`Context`] once, at the first call
/// that needs it. There is no per-request dedupe: every `get_variant` logs again.
pub struct WrapperRequest<'m, H, S = WrapperState> {
    manifest: Option<&'m Manifest>,
    state: S,
    handler: H,
}

/// What a request keeps between calls: its context and what is derived from it once (the
/// parsed core [`Context`], the event dict). Owned by a [`WrapperRequest`] made with
/// [`WrapperRequest::new`], or kept by the caller and lent to short-lived request objects
/// ([`WrapperRequest::with_state`]) when the manifest is borrowed per call (a service whose
/// request outlives no particular config snapshot borrow).
#[derive(Clone, Debug)]
pub struct WrapperState {
    ctx: WrapperContext,
    parsed: Option<Result<Arc<Context>, ContextError>>,
    event_dict: Option<Map<String, Value>>,
}

impl WrapperState {
    /// The state of a request with context `ctx`; nothing derived yet.
    pub fn new(ctx: WrapperContext) -> Self {
        WrapperState { ctx, parsed: None, event_dict: None }
    }

    /// The request's context.
    pub fn context(&self) -> &WrapperContext {
        &self.ctx
    }
}

impl<H, S: Borrow<WrapperState>> fmt::Debug for WrapperRequest<'_, H, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WrapperRequest")
            .field("has_manifest", &self.manifest.is_some())
            .field("context", &self.state.borrow().ctx)
            .finish_non_exhaustive()
    }
}

impl<'m, H: WrapperHandler> WrapperRequest<'m, H> {
    /// The request object: `manifest` is the core decider (`None` = `internal=None`: every
    /// call returns its fallback value, SPEC \[W10\]), `ctx` the request's context, `handler`
    /// the event logger.
    pub fn new(manifest: Option<&'m Manifest>, ctx: WrapperContext, handler: H) -> Self {
        WrapperRequest { manifest, state: WrapperState::new(ctx), handler }
    }
}

impl<'m, H: WrapperHandler, S: BorrowMut<WrapperState>> WrapperRequest<'m, H, S> {
    /// A request object over a state the caller keeps between calls (`S` is typically
    /// `&mut WrapperState`): what [`WrapperRequest::new`] builds, with the derived context
    /// reused across short-lived request objects.
    pub fn with_state(manifest: Option<&'m Manifest>, state: S, handler: H) -> Self {
        WrapperRequest { manifest, state, handler }
    }

    /// `internal_decider()`: the manifest decisions run on (`None` for `internal=None`).
    pub fn manifest(&self) -> Option<&'m Manifest> {
        self.manifest
    }

    /// The request's `DeciderContext`, as given (its dicts are built from it on demand).
    pub fn decider_context(&self) -> &WrapperContext {
        &self.state.borrow().ctx
    }

    /// The handler, to inspect what was logged so far (a `Vec<WrapperEvent>` holds the
    /// records in logging order).
    pub fn handler(&self) -> &H {
        &self.handler
    }

    /// The handler, mutably (to drain queued events between calls).
    pub fn handler_mut(&mut self) -> &mut H {
        &mut self.handler
    }

    /// Ends the request, giving the handler back.
    pub fn into_handler(self) -> H {
        self.handler
    }

    fn internal(&self) -> Result<&'m Manifest, WrapperError> {
        self.manifest.ok_or(WrapperError::NoDecider)
    }

    /// The core context of `to_dict()`, parsed once per request.
    fn base_context(&mut self) -> &Result<Arc<Context>, ContextError> {
        let st = self.state.borrow_mut();
        let ctx = &st.ctx;
        st.parsed.get_or_insert_with(|| ctx.context().map(Arc::new))
    }

    fn context(&mut self) -> Result<Arc<Context>, WrapperError> {
        self.base_context().clone().map_err(WrapperError::from)
    }

    /// `to_event_dict()`, built once per request.
    fn event_dict(&mut self) -> &Map<String, Value> {
        let st = self.state.borrow_mut();
        let ctx = &st.ctx;
        st.event_dict.get_or_insert_with(|| ctx.to_event_dict())
    }

    /// `to_event_dict()` updated with `exposure_kwargs`.
    fn event_fields(&mut self, exposure_kwargs: &Map<String, Value>) -> Map<String, Value> {
        let mut fields = self.event_dict().clone();
        for (k, v) in exposure_kwargs {
            fields.insert(k.clone(), v.clone());
        }
        fields
    }

    /// The context of `to_dict()` with `ctx[identifier_type] = identifier` (and
    /// `ctx["other_fields"][identifier_type] = identifier` for `conversion_pixel_id`).
    fn identifier_context(
        &mut self,
        identifier: &str,
        t: IdentifierType,
    ) -> Result<Arc<Context>, WrapperError> {
        if t == IdentifierType::ConversionPixelId && !self.state.borrow().ctx.other_fields_is_dict()
        {
            return Err(WrapperError::OtherFieldsNotADict);
        }
        self.internal()?;
        if let Ok(base) = self.base_context() {
            let mut c = Context::clone(base);
            match t.slot() {
                Some(slot) => c.set_string(slot, identifier),
                None => c.set_other_str(t.as_str(), identifier),
            }
            return Ok(Arc::new(c));
        }
        // The base context failed: the identifier may be what fixes it (a mistyped
        // `user_id` replaced), so build this one from its own dict.
        let mut d = self.state.borrow().ctx.to_dict();
        d.insert(t.as_str().to_owned(), Value::from(identifier));
        if let (None, Some(Value::Object(other))) = (t.slot(), d.get_mut("other_fields")) {
            other.insert(t.as_str().to_owned(), Value::from(identifier));
        }
        Ok(Arc::new(Context::from_json(&d)?))
    }

    /// Logs the events of a decision (SPEC \[W02\], \[W03\], \[W09\]).
    fn log_events(
        &mut self,
        op: &'static str,
        decision: &Decision<'_>,
        ctx: &Arc<Context>,
        fields: &Map<String, Value>,
        which: Expose,
    ) -> Result<(), WrapperError> {
        for exposure in decision.events() {
            let legacy = exposure.legacy();
            let mut parts = [""; 9];
            let mut n = 0;
            for part in legacy.split("::::") {
                if let Some(slot) = parts.get_mut(n) {
                    *slot = part;
                }
                n += 1;
            }
            if n != 9 {
                self.handler.error(op, &WrapperError::UnsplittableEvent(legacy.clone()));
                continue;
            }
            let [kind, id, name, version, variant, bucketing_value, bucket_val, start, stop] =
                parts;
            if which == Expose::HoldoutOnly && kind != "2" {
                continue;
            }
            let mut inputs = fields.clone();
            inputs.insert(bucket_val.to_owned(), Value::from(bucketing_value));
            if let Some(k) = LOG_KEYWORDS.iter().find(|k| inputs.contains_key(**k)) {
                return Err(WrapperError::KeywordConflict((*k).to_owned()));
            }
            self.handler.log(WrapperEvent {
                event_type: EventType::Expose,
                variant: variant.to_owned(),
                experiment: ExperimentConfig {
                    id: cast_to_int(id),
                    version: version.to_owned(),
                    name: name.to_owned(),
                    bucket_val: bucket_val.to_owned(),
                    start_ts: cast_to_int(start),
                    stop_ts: cast_to_int(stop),
                    emit_event: None,
                    measured: None,
                },
                inputs,
                exposure: OwnedExposure::new(&exposure, Arc::clone(ctx)),
            });
        }
        Ok(())
    }

    /// A decision of one feature on `ctx`, its events logged; the variant borrows the manifest.
    fn decide_and_log(
        &mut self,
        op: &'static str,
        name: &str,
        ctx: Arc<Context>,
        exposure_kwargs: Option<&Map<String, Value>>,
        observer: &mut impl Observer,
    ) -> Result<Option<&'m str>, WrapperError> {
        let m = self.internal()?;
        let feature = m.get_feature(name)?;
        let decision = m.decide(feature, &ctx, observer)?;
        let variant = decision
            .variant()
            .and_then(|v| feature.variants().iter().map(|x| x.name()).find(|name| *name == v));
        if decision.event(0).is_some() {
            let (fields, which) = match exposure_kwargs {
                Some(kw) => (self.event_fields(kw), Expose::All),
                None => (self.event_dict().clone(), Expose::HoldoutOnly),
            };
            self.log_events(op, &decision, &ctx, &fields, which)?;
        }
        Ok(variant)
    }

    /// `get_variant(experiment_name, **exposure_kwargs)` (SPEC \[W02\]): the variant, with one
    /// record per decision event (parents first). `F = to_event_dict()` updated with
    /// `exposure_kwargs`, then `F[bucket_val] = bucketing value` (a string) of the event's
    /// feature. `None` on any error, without events.
    pub fn get_variant(
        &mut self,
        experiment_name: &str,
        exposure_kwargs: &Map<String, Value>,
    ) -> Option<&'m str> {
        let r = self.try_get_variant(experiment_name, exposure_kwargs);
        self.fallback("get_variant", r, None)
    }

    /// [`WrapperRequest::get_variant`], returning the error it swallows.
    pub fn try_get_variant(
        &mut self,
        experiment_name: &str,
        exposure_kwargs: &Map<String, Value>,
    ) -> Result<Option<&'m str>, WrapperError> {
        self.try_get_variant_traced(experiment_name, exposure_kwargs, &mut NoTrace)
    }

    /// [`WrapperRequest::try_get_variant`] with every step of the decision reported to
    /// `observer` (an [`Explanation`](crate::Explanation) records them): why the variant is
    /// what it is, from the one decision that also logs its events.
    pub fn try_get_variant_traced(
        &mut self,
        experiment_name: &str,
        exposure_kwargs: &Map<String, Value>,
        observer: &mut impl Observer,
    ) -> Result<Option<&'m str>, WrapperError> {
        check_params(exposure_kwargs, &["self", "experiment_name"])?;
        self.internal()?;
        let ctx = self.context()?;
        self.decide_and_log("get_variant", experiment_name, ctx, Some(exposure_kwargs), observer)
    }

    /// `get_variant_without_expose(experiment_name)` (SPEC \[W03\]): the variant; only the
    /// Holdout-kind events are logged, with `F = to_event_dict()` plus the bucketing value.
    pub fn get_variant_without_expose(&mut self, experiment_name: &str) -> Option<&'m str> {
        let r = self.try_get_variant_without_expose(experiment_name);
        self.fallback("get_variant_without_expose", r, None)
    }

    /// [`WrapperRequest::get_variant_without_expose`], returning the error it swallows.
    pub fn try_get_variant_without_expose(
        &mut self,
        experiment_name: &str,
    ) -> Result<Option<&'m str>, WrapperError> {
        self.try_get_variant_without_expose_traced(experiment_name, &mut NoTrace)
    }

    /// [`WrapperRequest::try_get_variant_without_expose`] with every step of the decision
    /// reported to `observer`.
    pub fn try_get_variant_without_expose_traced(
        &mut self,
        experiment_name: &str,
        observer: &mut impl Observer,
    ) -> Result<Option<&'m str>, WrapperError> {
        self.internal()?;
        let ctx = self.context()?;
        self.decide_and_log("get_variant_without_expose", experiment_name, ctx, None, observer)
    }

    /// `expose(experiment_name, variant_name, **exposure_kwargs)` (SPEC \[W04\]): one record
    /// with `version = str(experiment_version)` and `inputs = to_event_dict()` updated with
    /// `exposure_kwargs` (no bucketing-value entry; the variant is not validated). Nothing is
    /// logged when `variant` is `None` or `""`, the feature is unknown, or its `emit_event`
    /// is false (always for dynamic configs). The record's v2 event is
    /// [`Exposure::from_parts`] with [`DecisionKind::FracAvail`] on the request's context
    /// (an empty context when that context does not parse).
    pub fn expose(
        &mut self,
        experiment_name: &str,
        variant: Option<&str>,
        exposure_kwargs: &Map<String, Value>,
    ) {
        let r = self.try_expose(experiment_name, variant, exposure_kwargs);
        self.fallback("expose", r, ());
    }

    /// [`WrapperRequest::expose`], returning the error it swallows (the unknown feature
    /// included, which the reference swallows silently). The no-op cases are `Ok(())`.
    pub fn try_expose(
        &mut self,
        experiment_name: &str,
        variant: Option<&str>,
        exposure_kwargs: &Map<String, Value>,
    ) -> Result<(), WrapperError> {
        check_params(exposure_kwargs, &["self", "experiment_name", "variant_name"])?;
        let Some(variant) = variant.filter(|v| !v.is_empty()) else {
            return Ok(());
        };
        let m = self.internal()?;
        let feature = m.get_feature(experiment_name)?;
        if !feature.emit_event() {
            return Ok(());
        }
        let inputs = self.event_fields(exposure_kwargs);
        if let Some(k) = LOG_KEYWORDS.iter().find(|k| inputs.contains_key(**k)) {
            return Err(WrapperError::KeywordConflict((*k).to_owned()));
        }
        let ctx = self.base_context().clone().unwrap_or_default();
        let exposure = Exposure::from_parts(DecisionKind::FracAvail, feature, variant, &ctx);
        let exposure = OwnedExposure::new(&exposure, Arc::clone(&ctx));
        self.handler.log(WrapperEvent {
            event_type: EventType::Expose,
            variant: variant.to_owned(),
            experiment: ExperimentConfig::of_feature(feature, false),
            inputs,
            exposure,
        });
        Ok(())
    }

    /// `get_variant_for_identifier(experiment_name, identifier, identifier_type,
    /// **exposure_kwargs)` (SPEC \[W05\]): [`WrapperRequest::get_variant`] on the context with
    /// `identifier_type` set to `identifier` (for `conversion_pixel_id`, in `other_fields`).
    /// The feature still buckets on its own `bucket_val`: a mismatch is not an error. The
    /// events' `F` is the request's (the identifier appears only as a matching bucketing
    /// value). An identifier type that is not an [`IdentifierType`] gives `None`.
    pub fn get_variant_for_identifier(
        &mut self,
        experiment_name: &str,
        identifier: &str,
        identifier_type: impl AsRef<str>,
        exposure_kwargs: &Map<String, Value>,
    ) -> Option<&'m str> {
        let r = self.try_get_variant_for_identifier(
            experiment_name,
            identifier,
            identifier_type,
            exposure_kwargs,
        );
        self.fallback("get_variant_for_identifier", r, None)
    }

    /// [`WrapperRequest::get_variant_for_identifier`], returning the error it swallows.
    pub fn try_get_variant_for_identifier(
        &mut self,
        experiment_name: &str,
        identifier: &str,
        identifier_type: impl AsRef<str>,
        exposure_kwargs: &Map<String, Value>,
    ) -> Result<Option<&'m str>, WrapperError> {
        check_params(
            exposure_kwargs,
            &["self", "experiment_name", "identifier", "identifier_type"],
        )?;
        let t: IdentifierType = identifier_type.as_ref().parse()?;
        let ctx = self.identifier_context(identifier, t)?;
        self.decide_and_log(
            "get_variant_for_identifier",
            experiment_name,
            ctx,
            Some(exposure_kwargs),
            &mut NoTrace,
        )
    }

    /// `get_variant_for_identifier_without_expose(experiment_name, identifier,
    /// identifier_type)` (SPEC \[W05\], \[W03\]): only Holdout-kind events are logged.
    pub fn get_variant_for_identifier_without_expose(
        &mut self,
        experiment_name: &str,
        identifier: &str,
        identifier_type: impl AsRef<str>,
    ) -> Option<&'m str> {
        let r = self.try_get_variant_for_identifier_without_expose(
            experiment_name,
            identifier,
            identifier_type,
        );
        self.fallback("get_variant_for_identifier_without_expose", r, None)
    }

    /// [`WrapperRequest::get_variant_for_identifier_without_expose`], returning the error it
    /// swallows.
    pub fn try_get_variant_for_identifier_without_expose(
        &mut self,
        experiment_name: &str,
        identifier: &str,
        identifier_type: impl AsRef<str>,
    ) -> Result<Option<&'m str>, WrapperError> {
        let t: IdentifierType = identifier_type.as_ref().parse()?;
        let ctx = self.identifier_context(identifier, t)?;
        let op = "get_variant_for_identifier_without_expose";
        self.decide_and_log(op, experiment_name, ctx, None, &mut NoTrace)
    }

    /// Every range feature's decision on `ctx` (`choose_all`; failing decisions left out):
    /// the entries with a truthy variant, Holdout-kind events logged.
    fn all_variants(
        &mut self,
        op: &'static str,
        ctx: Arc<Context>,
        filter: Option<&str>,
    ) -> Result<Vec<VariantInfo<'m>>, WrapperError> {
        let m = self.internal()?;
        let mut out = Vec::new();
        let mut fields = None;
        for decision in m.choose_all(&ctx, filter) {
            // The manifest's own feature, so that the entry borrows only the manifest.
            let Some(feature) = m.feature(decision.feature_name()) else { continue };
            if let Some(v) = decision.variant().filter(|v| !v.is_empty()) {
                let name = feature.variants().iter().map(|x| x.name()).find(|n| *n == v);
                out.push(VariantInfo {
                    name: name.unwrap_or_default(),
                    id: feature.id(),
                    version: feature.version(),
                    experiment_name: feature.name(),
                });
            }
            if decision.event(0).is_some() {
                if fields.is_none() {
                    fields = Some(self.event_dict().clone());
                }
                if let Some(fields) = &fields {
                    self.log_events(op, &decision, &ctx, fields, Expose::HoldoutOnly)?;
                }
            }
        }
        Ok(out)
    }

    /// `get_all_variants_without_expose()` (SPEC \[W06\]): `{name, id, version,
    /// experimentName}` of every range feature with a truthy variant (document order; the
    /// reference's order is unspecified). Holdout-kind events of every decision are logged.
    /// `[]` on a context error.
    pub fn get_all_variants_without_expose(&mut self) -> Vec<VariantInfo<'m>> {
        let r = self.try_get_all_variants_without_expose();
        self.fallback("get_all_variants_without_expose", r, Vec::new())
    }

    /// [`WrapperRequest::get_all_variants_without_expose`], returning the error it swallows.
    pub fn try_get_all_variants_without_expose(
        &mut self,
    ) -> Result<Vec<VariantInfo<'m>>, WrapperError> {
        self.internal()?;
        let ctx = self.context()?;
        self.all_variants("get_all_variants_without_expose", ctx, None)
    }

    /// `get_all_variants_for_identifier_without_expose(identifier, identifier_type)` (SPEC
    /// \[W06\]): [`WrapperRequest::get_all_variants_without_expose`] on the context with the
    /// identifier set, over the features whose `bucket_val` is `identifier_type` only.
    pub fn get_all_variants_for_identifier_without_expose(
        &mut self,
        identifier: &str,
        identifier_type: impl AsRef<str>,
    ) -> Vec<VariantInfo<'m>> {
        let r =
            self.try_get_all_variants_for_identifier_without_expose(identifier, identifier_type);
        self.fallback("get_all_variants_for_identifier_without_expose", r, Vec::new())
    }

    /// [`WrapperRequest::get_all_variants_for_identifier_without_expose`], returning the
    /// error it swallows.
    pub fn try_get_all_variants_for_identifier_without_expose(
        &mut self,
        identifier: &str,
        identifier_type: impl AsRef<str>,
    ) -> Result<Vec<VariantInfo<'m>>, WrapperError> {
        let t: IdentifierType = identifier_type.as_ref().parse()?;
        let ctx = self.identifier_context(identifier, t)?;
        self.all_variants("get_all_variants_for_identifier_without_expose", ctx, Some(t.as_str()))
    }

    /// `get_bool(name, default=False)` (SPEC \[W07\]): a boolean dynamic config, `default` on
    /// any error (unknown, disabled, another type, a context error).
    pub fn get_bool(&mut self, name: &str, default: bool) -> bool {
        let r = self.try_get_bool(name);
        self.fallback("get_bool", r, default)
    }

    /// [`WrapperRequest::get_bool`], returning the error it swallows.
    pub fn try_get_bool(&mut self, name: &str) -> Result<bool, WrapperError> {
        let m = self.internal()?;
        Ok(m.get_bool(name, &*self.context()?)?)
    }

    /// `get_int(name, default=0)`: an integer dynamic config that fits `i64`, else `default`.
    pub fn get_int(&mut self, name: &str, default: i64) -> i64 {
        let r = self.try_get_int(name);
        self.fallback("get_int", r, default)
    }

    /// [`WrapperRequest::get_int`], returning the error it swallows.
    pub fn try_get_int(&mut self, name: &str) -> Result<i64, WrapperError> {
        let m = self.internal()?;
        Ok(m.get_int(name, &*self.context()?)?)
    }

    /// `get_float(name, default=0.0)`: any numeric dynamic config as a float (an integer
    /// config `7` gives `7.0`), else `default`.
    pub fn get_float(&mut self, name: &str, default: f64) -> f64 {
        let r = self.try_get_float(name);
        self.fallback("get_float", r, default)
    }

    /// [`WrapperRequest::get_float`], returning the error it swallows.
    pub fn try_get_float(&mut self, name: &str) -> Result<f64, WrapperError> {
        let m = self.internal()?;
        Ok(m.get_float(name, &*self.context()?)?)
    }

    /// `get_string(name, default="")`: a string dynamic config, else `default`.
    pub fn get_string<'a>(&mut self, name: &str, default: &'a str) -> &'a str
    where
        'm: 'a,
    {
        let r = self.try_get_string(name);
        self.fallback("get_string", r, default)
    }

    /// [`WrapperRequest::get_string`], returning the error it swallows.
    pub fn try_get_string(&mut self, name: &str) -> Result<&'m str, WrapperError> {
        let m = self.internal()?;
        Ok(m.get_string(name, &*self.context()?)?)
    }

    /// `get_map(name, default=None)`: a map dynamic config with **every number converted to
    /// a float**, recursively (`{"a": 1}` → `{"a": 1.0}`), as the Python binding returns it;
    /// else `default`.
    pub fn get_map(
        &mut self,
        name: &str,
        default: Option<Map<String, Value>>,
    ) -> Option<Map<String, Value>> {
        let r = self.try_get_map(name).map(Some);
        self.fallback("get_map", r, default)
    }

    /// [`WrapperRequest::get_map`], returning the error it swallows.
    pub fn try_get_map(&mut self, name: &str) -> Result<Map<String, Value>, WrapperError> {
        let m = self.internal()?;
        let map = m.get_map(name, &*self.context()?)?;
        Ok(map.iter().map(|(k, v)| (k.clone(), python_floats(v))).collect())
    }

    /// `get_all_dynamic_configs()` (SPEC \[W08\]): `{name, value, type}` of every dynamic config
    /// (disabled: `null`, type `""`; document order, the reference's is unspecified). `[]` on
    /// a context error.
    pub fn get_all_dynamic_configs(&mut self) -> Vec<DynamicConfigInfo<'m>> {
        let r = self.try_get_all_dynamic_configs();
        self.fallback("get_all_dynamic_configs", r, Vec::new())
    }

    /// [`WrapperRequest::get_all_dynamic_configs`], returning the error it swallows.
    pub fn try_get_all_dynamic_configs(
        &mut self,
    ) -> Result<Vec<DynamicConfigInfo<'m>>, WrapperError> {
        let m = self.internal()?;
        let ctx = self.context()?;
        Ok(m.all_values(&ctx)
            .map(|(name, value)| DynamicConfigInfo {
                name,
                value,
                value_type: DynamicConfigType::of(value),
            })
            .collect())
    }

    /// `get_experiment(experiment_name)`: the feature as an [`ExperimentConfig`]
    /// (`version = str(experiment_version)`, `emit_event` and `measured` set), `None` when
    /// unknown. Needs no context.
    pub fn get_experiment(&mut self, experiment_name: &str) -> Option<ExperimentConfig> {
        let r = self.try_get_experiment(experiment_name).map(Some);
        self.fallback("get_experiment", r, None)
    }

    /// [`WrapperRequest::get_experiment`], returning the error it swallows.
    pub fn try_get_experiment(
        &mut self,
        experiment_name: &str,
    ) -> Result<ExperimentConfig, WrapperError> {
        let m = self.internal()?;
        Ok(ExperimentConfig::of_feature(m.get_feature(experiment_name)?, true))
    }

    /// The plain form of a method: the value, or the fallback with the error reported.
    fn fallback<T>(&mut self, op: &'static str, r: Result<T, WrapperError>, fallback: T) -> T {
        r.unwrap_or_else(|e| {
            self.handler.error(op, &e);
            fallback
        })
    }
}

/// A keyword of `exposure_kwargs` that is one of the method's own parameters: Python raises
/// `TypeError` before the call starts.
fn check_params(kwargs: &Map<String, Value>, params: &[&str]) -> Result<(), WrapperError> {
    match params.iter().find(|p| kwargs.contains_key(**p)) {
        Some(p) => Err(WrapperError::KeywordConflict((*p).to_owned())),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn int_of_legacy_parts_as_python() {
        assert_eq!(cast_to_int("0"), 0);
        assert_eq!(cast_to_int("4102444800"), 4_102_444_800);
        assert_eq!(cast_to_int(" 7 "), 7);
        assert_eq!(cast_to_int("+7"), 7);
        assert_eq!(cast_to_int("1_000"), 1000);
        assert_eq!(cast_to_int("007"), 7);
        for bad in [":0", "", "_1", "1_", "1__0", "-3", "0x10", "1.0", "99999999999999999999999"] {
            assert_eq!(cast_to_int(bad), 1, "{bad:?}");
        }
    }

    #[test]
    fn truthiness_as_python() {
        for (v, t) in [
            (Value::Null, false),
            (Value::from(0), false),
            (Value::from(0.0), false),
            (Value::from(-0.0), false),
            (Value::from(""), false),
            (Value::Array(vec![]), false),
            (Value::Object(Map::new()), false),
            (Value::from(false), false),
            (Value::from(2), true),
            (Value::from("0"), true),
            (Value::from(true), true),
        ] {
            assert_eq!(truthy(&v), t, "{v}");
        }
    }

    #[test]
    fn kwargs_keywords_are_the_reference_signature() {
        for k in WrapperContext::KEYWORDS {
            let mut m = Map::new();
            m.insert(k.to_owned(), Value::Null);
            assert!(WrapperContext::from_kwargs(m).is_ok(), "{k}");
        }
    }
}
