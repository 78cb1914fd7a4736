//! The decision context (SPEC §3): nineteen typed slots and the free-form `other_fields`.

use std::fmt;

use serde_json::{Map, Value};

/// The typed string slots, in the reference's field order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StringField {
    /// `user_id`.
    UserId,
    /// `locale`.
    Locale,
    /// `device_id`.
    DeviceId,
    /// `canonical_url`.
    CanonicalUrl,
    /// `base_url`.
    BaseUrl,
    /// `user_agent`.
    UserAgent,
    /// `referrer_url`.
    ReferrerUrl,
    /// `subreddit_id`.
    SubredditId,
    /// `ad_account_id`.
    AdAccountId,
    /// `business_id`.
    BusinessId,
    /// `country_code`.
    CountryCode,
    /// `origin_service`.
    OriginService,
    /// `app_name`.
    AppName,
    /// `oauth_client_id`.
    OauthClientId,
    /// `correlation_id`.
    CorrelationId,
}

const STRING_FIELDS: usize = 15;

impl StringField {
    /// Every string slot.
    pub const ALL: [StringField; STRING_FIELDS] = [
        StringField::UserId,
        StringField::Locale,
        StringField::DeviceId,
        StringField::CanonicalUrl,
        StringField::BaseUrl,
        StringField::UserAgent,
        StringField::ReferrerUrl,
        StringField::SubredditId,
        StringField::AdAccountId,
        StringField::BusinessId,
        StringField::CountryCode,
        StringField::OriginService,
        StringField::AppName,
        StringField::OauthClientId,
        StringField::CorrelationId,
    ];

    /// The context key of the slot (`user_id`, ...).
    pub fn name(self) -> &'static str {
        match self {
            StringField::UserId => "user_id",
            StringField::Locale => "locale",
            StringField::DeviceId => "device_id",
            StringField::CanonicalUrl => "canonical_url",
            StringField::BaseUrl => "base_url",
            StringField::UserAgent => "user_agent",
            StringField::ReferrerUrl => "referrer_url",
            StringField::SubredditId => "subreddit_id",
            StringField::AdAccountId => "ad_account_id",
            StringField::BusinessId => "business_id",
            StringField::CountryCode => "country_code",
            StringField::OriginService => "origin_service",
            StringField::AppName => "app_name",
            StringField::OauthClientId => "oauth_client_id",
            StringField::CorrelationId => "correlation_id",
        }
    }
}

/// What a targeting node or a `bucket_val` names: a typed slot, or `other_fields[name]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Field {
    Str(StringField),
    UserIsEmployee,
    LoggedIn,
    BuildNumber,
    CookieCreatedTimestamp,
    Other(Box<str>),
}

impl Field {
    /// Resolves a field name once, at load time. Names are case-sensitive.
    pub(crate) fn resolve(name: &str) -> Field {
        match name {
            "user_is_employee" => Field::UserIsEmployee,
            "logged_in" => Field::LoggedIn,
            "build_number" => Field::BuildNumber,
            "cookie_created_timestamp" => Field::CookieCreatedTimestamp,
            _ => StringField::ALL
                .iter()
                .find(|f| f.name() == name)
                .map_or_else(|| Field::Other(name.into()), |f| Field::Str(*f)),
        }
    }
}

/// A context value as targeting and bucketing see it (borrowed; never allocates).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FieldValue<'a> {
    /// A string.
    Str(&'a str),
    /// A boolean.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A finite float.
    Float(f64),
    /// JSON `null` (a non-finite float becomes `null`, as in `serde_json::Value::from`).
    Null,
}

impl FieldValue<'_> {
    /// Writes the value as the reference formats a bucketing value (SPEC §4): strings as-is,
    /// everything else as `serde_json` displays it (`true`, `1`, `1.0`, `1e+16`, `null`).
    pub fn write_identifier<W: fmt::Write + ?Sized>(&self, out: &mut W) -> fmt::Result {
        match *self {
            FieldValue::Str(s) => out.write_str(s),
            FieldValue::Bool(b) => out.write_str(if b { "true" } else { "false" }),
            FieldValue::Int(i) => write!(out, "{i}"),
            FieldValue::Float(f) => crate::format::write_f64(out, f),
            FieldValue::Null => out.write_str("null"),
        }
    }
}

impl serde::Serialize for FieldValue<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match *self {
            FieldValue::Str(v) => s.serialize_str(v),
            FieldValue::Bool(v) => s.serialize_bool(v),
            FieldValue::Int(v) => s.serialize_i64(v),
            FieldValue::Float(v) => s.serialize_f64(v),
            FieldValue::Null => s.serialize_unit(),
        }
    }
}

/// A value of `other_fields`.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum OtherValue {
    /// A string.
    Str(String),
    /// A boolean.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A float (non-finite floats read as `null`).
    Float(f64),
}

impl OtherValue {
    fn as_field(&self) -> FieldValue<'_> {
        match self {
            OtherValue::Str(s) => FieldValue::Str(s),
            OtherValue::Bool(b) => FieldValue::Bool(*b),
            OtherValue::Int(i) => FieldValue::Int(*i),
            OtherValue::Float(f) if f.is_finite() => FieldValue::Float(*f),
            OtherValue::Float(_) => FieldValue::Null,
        }
    }
}

impl From<&str> for OtherValue {
    fn from(v: &str) -> Self {
        OtherValue::Str(v.to_owned())
    }
}
impl From<String> for OtherValue {
    fn from(v: String) -> Self {
        OtherValue::Str(v)
    }
}
impl From<bool> for OtherValue {
    fn from(v: bool) -> Self {
        OtherValue::Bool(v)
    }
}
impl From<i64> for OtherValue {
    fn from(v: i64) -> Self {
        OtherValue::Int(v)
    }
}
impl From<i32> for OtherValue {
    fn from(v: i32) -> Self {
        OtherValue::Int(v.into())
    }
}
impl From<f64> for OtherValue {
    fn from(v: f64) -> Self {
        OtherValue::Float(v)
    }
}

/// The context of one decision: what `rust_decider.make_ctx` builds from a dict.
///
/// Build it with the setters, [`Context::builder`] or [`Context::from_json`] (the reference's
/// type rules, with typed errors). Setters reuse the slot's allocation, so a service can keep
/// one context per worker and refill it per request without allocating.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Context {
    strings: [Option<String>; STRING_FIELDS],
    user_is_employee: Option<bool>,
    logged_in: Option<bool>,
    build_number: Option<i32>,
    cookie_created_timestamp: Option<i64>,
    /// Sorted by key, unique keys.
    other: Vec<(String, OtherValue)>,
}

impl Context {
    /// An empty context (every field absent).
    pub fn new() -> Self {
        Self::default()
    }

    /// A builder.
    pub fn builder() -> ContextBuilder {
        ContextBuilder(Context::new())
    }

    /// A string slot.
    pub fn string(&self, field: StringField) -> Option<&str> {
        self.strings[field as usize].as_deref()
    }

    /// Sets a string slot, reusing its allocation.
    pub fn set_string(&mut self, field: StringField, value: &str) {
        match &mut self.strings[field as usize] {
            Some(s) => {
                s.clear();
                s.push_str(value);
            }
            slot => *slot = Some(value.to_owned()),
        }
    }

    /// Clears a string slot (keeping nothing).
    pub fn clear_string(&mut self, field: StringField) {
        self.strings[field as usize] = None;
    }

    /// `user_is_employee`.
    pub fn user_is_employee(&self) -> Option<bool> {
        self.user_is_employee
    }

    /// Sets `user_is_employee`.
    pub fn set_user_is_employee(&mut self, value: Option<bool>) {
        self.user_is_employee = value;
    }

    /// `logged_in`.
    pub fn logged_in(&self) -> Option<bool> {
        self.logged_in
    }

    /// Sets `logged_in`.
    pub fn set_logged_in(&mut self, value: Option<bool>) {
        self.logged_in = value;
    }

    /// `build_number` (an `i32`, as in the reference).
    pub fn build_number(&self) -> Option<i32> {
        self.build_number
    }

    /// Sets `build_number`.
    pub fn set_build_number(&mut self, value: Option<i32>) {
        self.build_number = value;
    }

    /// `cookie_created_timestamp` (an `i64`).
    pub fn cookie_created_timestamp(&self) -> Option<i64> {
        self.cookie_created_timestamp
    }

    /// Sets `cookie_created_timestamp`.
    pub fn set_cookie_created_timestamp(&mut self, value: Option<i64>) {
        self.cookie_created_timestamp = value;
    }

    /// `other_fields[key]`.
    pub fn other(&self, key: &str) -> Option<&OtherValue> {
        self.other_index(key).ok().map(|i| &self.other[i].1)
    }

    /// Every `other_fields` entry, sorted by key.
    pub fn others(&self) -> impl ExactSizeIterator<Item = (&str, &OtherValue)> {
        self.other.iter().map(|(k, v)| (k.as_str(), v))
    }

    fn other_index(&self, key: &str) -> Result<usize, usize> {
        self.other.binary_search_by(|(k, _)| k.as_str().cmp(key))
    }

    /// Sets `other_fields[key]`; an existing string entry reuses its allocation.
    pub fn set_other(&mut self, key: &str, value: impl Into<OtherValue>) {
        let value = value.into();
        match self.other_index(key) {
            Ok(i) => match (&mut self.other[i].1, value) {
                (OtherValue::Str(s), OtherValue::Str(new)) => {
                    s.clear();
                    s.push_str(&new);
                }
                (slot, value) => *slot = value,
            },
            Err(i) => self.other.insert(i, (key.to_owned(), value)),
        }
    }

    /// Sets `other_fields[key]` to a string without allocating when the entry already holds one.
    pub fn set_other_str(&mut self, key: &str, value: &str) {
        match self.other_index(key) {
            Ok(i) => match &mut self.other[i].1 {
                OtherValue::Str(s) => {
                    s.clear();
                    s.push_str(value);
                }
                slot => *slot = OtherValue::Str(value.to_owned()),
            },
            Err(i) => self.other.insert(i, (key.to_owned(), OtherValue::Str(value.to_owned()))),
        }
    }

    /// Removes `other_fields[key]`.
    pub fn remove_other(&mut self, key: &str) -> Option<OtherValue> {
        self.other_index(key).ok().map(|i| self.other.remove(i).1)
    }

    /// The value a field name reads (SPEC §3, "Field lookup"), as targeting and `bucket_val`
    /// see it. `None` when absent.
    pub fn get(&self, name: &str) -> Option<FieldValue<'_>> {
        self.field(&Field::resolve(name))
    }

    pub(crate) fn field(&self, field: &Field) -> Option<FieldValue<'_>> {
        match field {
            Field::Str(f) => self.string(*f).map(FieldValue::Str),
            Field::UserIsEmployee => self.user_is_employee.map(FieldValue::Bool),
            Field::LoggedIn => self.logged_in.map(FieldValue::Bool),
            Field::BuildNumber => self.build_number.map(|n| FieldValue::Int(n.into())),
            Field::CookieCreatedTimestamp => self.cookie_created_timestamp.map(FieldValue::Int),
            Field::Other(key) => self.other(key).map(OtherValue::as_field),
        }
    }

    /// Builds a context from a JSON object with the reference's type rules (`make_ctx`):
    /// `null` means absent, unknown top-level keys are ignored, and every mistyped field is
    /// reported (in the reference's fixed order) in one [`ContextError`].
    pub fn from_json(object: &Map<String, Value>) -> Result<Context, ContextError> {
        let mut ctx = Context::new();
        let mut errors = Vec::new();
        let present = |key: &str| object.get(key).filter(|v| !v.is_null());
        for (key, kind) in FIELD_ORDER {
            let Some(value) = present(key) else { continue };
            let ok = match kind {
                Expect::Str(f) => match value {
                    Value::String(s) => {
                        ctx.strings[f as usize] = Some(s.clone());
                        true
                    }
                    _ => false,
                },
                Expect::Bool(slot) => match value {
                    Value::Bool(b) => {
                        match slot {
                            BoolSlot::Employee => ctx.user_is_employee = Some(*b),
                            BoolSlot::LoggedIn => ctx.logged_in = Some(*b),
                        }
                        true
                    }
                    _ => false,
                },
                Expect::I32 => match int_of(value).and_then(|i| i32::try_from(i).ok()) {
                    Some(n) => {
                        ctx.build_number = Some(n);
                        true
                    }
                    None => false,
                },
                Expect::I64 => match int_of(value) {
                    Some(n) => {
                        ctx.cookie_created_timestamp = Some(n);
                        true
                    }
                    None => false,
                },
                Expect::Map => match other_fields(value) {
                    Some(other) => {
                        ctx.other = other;
                        true
                    }
                    None => false,
                },
            };
            if !ok {
                errors.push(TypeMismatch { field: key, expected: kind.type_name() });
            }
        }
        if errors.is_empty() { Ok(ctx) } else { Err(ContextError { mismatches: errors }) }
    }
}

/// An `int` as pyo3 extracts it into an integer slot: a JSON integer that fits `i64`, or a
/// bool (0/1). Floats are rejected.
fn int_of(value: &Value) -> Option<i64> {
    match value {
        Value::Bool(b) => Some(i64::from(*b)),
        Value::Number(n) => n.as_i64(),
        _ => None,
    }
}

/// `other_fields`: an object whose values are `null` (dropped), bool, string, int (beyond i64:
/// a float) or float. A list or object value rejects the whole field.
fn other_fields(value: &Value) -> Option<Vec<(String, OtherValue)>> {
    let object = value.as_object()?;
    let mut out = Vec::with_capacity(object.len());
    for (k, v) in object {
        let v = match v {
            Value::Null => continue,
            Value::Bool(b) => OtherValue::Bool(*b),
            Value::String(s) => OtherValue::Str(s.clone()),
            Value::Number(n) => match n.as_i64() {
                Some(i) => OtherValue::Int(i),
                None => OtherValue::Float(n.as_f64().unwrap_or(f64::NAN)),
            },
            Value::Array(_) | Value::Object(_) => return None,
        };
        out.push((k.clone(), v));
    }
    // Keys of a JSON object are unique; sort once for binary-search lookups.
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Some(out)
}

#[derive(Clone, Copy)]
enum BoolSlot {
    Employee,
    LoggedIn,
}

enum Expect {
    Str(StringField),
    Bool(BoolSlot),
    I32,
    I64,
    Map,
}

impl Expect {
    fn type_name(&self) -> &'static str {
        match self {
            Expect::Str(_) => "string",
            Expect::Bool(_) => "bool",
            Expect::I32 | Expect::I64 => "integer",
            Expect::Map => "hashmap",
        }
    }
}

/// The fields `make_ctx` reads, in the order it reports mismatches.
const FIELD_ORDER: [(&str, Expect); 20] = [
    ("user_id", Expect::Str(StringField::UserId)),
    ("locale", Expect::Str(StringField::Locale)),
    ("device_id", Expect::Str(StringField::DeviceId)),
    ("canonical_url", Expect::Str(StringField::CanonicalUrl)),
    ("base_url", Expect::Str(StringField::BaseUrl)),
    ("user_agent", Expect::Str(StringField::UserAgent)),
    ("referrer_url", Expect::Str(StringField::ReferrerUrl)),
    ("subreddit_id", Expect::Str(StringField::SubredditId)),
    ("ad_account_id", Expect::Str(StringField::AdAccountId)),
    ("business_id", Expect::Str(StringField::BusinessId)),
    ("country_code", Expect::Str(StringField::CountryCode)),
    ("origin_service", Expect::Str(StringField::OriginService)),
    ("user_is_employee", Expect::Bool(BoolSlot::Employee)),
    ("logged_in", Expect::Bool(BoolSlot::LoggedIn)),
    ("app_name", Expect::Str(StringField::AppName)),
    ("build_number", Expect::I32),
    ("oauth_client_id", Expect::Str(StringField::OauthClientId)),
    ("cookie_created_timestamp", Expect::I64),
    ("correlation_id", Expect::Str(StringField::CorrelationId)),
    ("other_fields", Expect::Map),
];

/// One mistyped context field. Non-exhaustive: fields may be added; build one with
/// [`TypeMismatch::new`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TypeMismatch {
    /// The context key whose value has the wrong JSON type (`build_number`).
    pub field: &'static str,
    /// What it must be, as the reference names it: `string`, `bool`, `integer` or `hashmap`.
    pub expected: &'static str,
}

impl TypeMismatch {
    /// The mismatch of `field`, which must be of type `expected`.
    pub fn new(field: &'static str, expected: &'static str) -> Self {
        TypeMismatch { field, expected }
    }
}

/// The context could not be built: every mistyped field, in the reference's order. Displays as
/// the reference's messages (`"build_number" type mismatch (integer).`), one per line.
/// Non-exhaustive: fields may be added; build one with [`ContextError::new`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ContextError {
    /// The mismatches, in the reference's field order; never empty when the error comes from
    /// [`Context::from_json`].
    pub mismatches: Vec<TypeMismatch>,
}

impl ContextError {
    /// An error listing `mismatches`, in the reference's field order. An empty list is
    /// allowed (a caller's stand-in for a context that could not be read at all); it displays
    /// as an empty message.
    pub fn new(mismatches: Vec<TypeMismatch>) -> Self {
        ContextError { mismatches }
    }
}

impl fmt::Display for ContextError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, m) in self.mismatches.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "\"{}\" type mismatch ({}).", m.field, m.expected)?;
        }
        Ok(())
    }
}

impl std::error::Error for ContextError {}

/// Builds a [`Context`] field by field.
#[derive(Debug, Clone, Default)]
pub struct ContextBuilder(Context);

macro_rules! string_setters {
    ($($method:ident => $field:ident),* $(,)?) => {
        $(
            #[doc = concat!("Sets `", stringify!($method), "`.")]
            pub fn $method(mut self, value: impl Into<String>) -> Self {
                self.0.strings[StringField::$field as usize] = Some(value.into());
                self
            }
        )*
    };
}

impl ContextBuilder {
    string_setters! {
        user_id => UserId,
        locale => Locale,
        device_id => DeviceId,
        canonical_url => CanonicalUrl,
        base_url => BaseUrl,
        user_agent => UserAgent,
        referrer_url => ReferrerUrl,
        subreddit_id => SubredditId,
        ad_account_id => AdAccountId,
        business_id => BusinessId,
        country_code => CountryCode,
        origin_service => OriginService,
        app_name => AppName,
        oauth_client_id => OauthClientId,
        correlation_id => CorrelationId,
    }

    /// Sets `user_is_employee`.
    pub fn user_is_employee(mut self, value: bool) -> Self {
        self.0.user_is_employee = Some(value);
        self
    }

    /// Sets `logged_in`.
    pub fn logged_in(mut self, value: bool) -> Self {
        self.0.logged_in = Some(value);
        self
    }

    /// Sets `build_number`.
    pub fn build_number(mut self, value: i32) -> Self {
        self.0.build_number = Some(value);
        self
    }

    /// Sets `cookie_created_timestamp`.
    pub fn cookie_created_timestamp(mut self, value: i64) -> Self {
        self.0.cookie_created_timestamp = Some(value);
        self
    }

    /// Sets `other_fields[key]`.
    pub fn other(mut self, key: &str, value: impl Into<OtherValue>) -> Self {
        self.0.set_other(key, value);
        self
    }

    /// The context.
    pub fn build(self) -> Context {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ctx(v: Value) -> Result<Context, ContextError> {
        Context::from_json(v.as_object().unwrap_or(&Map::new()))
    }

    #[test]
    fn type_rules() {
        let c = ctx(json!({"user_id": "t2_1", "build_number": true, "cookie_created_timestamp": 5,
            "other_fields": {"a": null, "b": 18446744073709551615u64, "c": 1}, "unknown": [1]}))
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.string(StringField::UserId), Some("t2_1"));
        assert_eq!(c.build_number(), Some(1));
        assert_eq!(c.other("a"), None);
        assert_eq!(c.other("b"), Some(&OtherValue::Float(18446744073709551615.0)));
        assert_eq!(c.get("c"), Some(FieldValue::Int(1)));
        assert_eq!(c.get("user_id"), Some(FieldValue::Str("t2_1")));
        let err = ctx(json!({"other_fields": {"x": [1]}, "user_id": 5, "build_number": 1.0,
            "logged_in": 1, "cookie_created_timestamp": 9223372036854775808u64}))
        .err()
        .map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some(
                "\"user_id\" type mismatch (string).\n\"logged_in\" type mismatch (bool).\n\
                 \"build_number\" type mismatch (integer).\n\"cookie_created_timestamp\" type \
                 mismatch (integer).\n\"other_fields\" type mismatch (hashmap)."
            )
        );
        assert!(ctx(json!({"build_number": 2147483648u64})).is_err());
    }

    #[test]
    fn other_fields_never_shadow_typed_slots() {
        let c = Context::builder().other("user_id", "x").build();
        assert_eq!(c.get("user_id"), None);
        assert_eq!(c.get("User_Id"), None);
    }

    #[test]
    fn setters_reuse_and_replace() {
        let mut c = Context::new();
        c.set_other("n", 1);
        c.set_other_str("s", "a");
        c.set_other_str("s", "b");
        c.set_other("n", "x");
        assert_eq!(c.get("s"), Some(FieldValue::Str("b")));
        assert_eq!(c.get("n"), Some(FieldValue::Str("x")));
        c.set_string(StringField::AppName, "ios");
        assert_eq!(c.get("app_name"), Some(FieldValue::Str("ios")));
        assert_eq!(c.remove_other("n"), Some(OtherValue::Str("x".into())));
        c.set_other("f", f64::NAN);
        assert_eq!(c.get("f"), Some(FieldValue::Null));
    }
}
