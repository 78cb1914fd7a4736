//! Exposure events as values (SPEC §10): the decision kind, the exposure key, the legacy
//! `::::` string, and the v2 Thrift-JSON event byte for byte like the reference.
//!
//! What an event needs from the outside world (the wall clock, a fresh UUID, a correlation id
//! when the context has none) comes in as an [`EventStamp`].

use std::borrow::Cow;
use std::fmt::Write as _;
use std::sync::Arc;

use serde::Serialize;
use uuid::Uuid;

use crate::context::{Context, StringField};
use crate::format::push_json_str;
use crate::manifest::Feature;

/// Why a decision produced an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[non_exhaustive]
pub enum DecisionKind {
    /// Bucketing (fractional availability): 0.
    FracAvail = 0,
    /// An override: 1.
    Override = 1,
    /// The first event of a holdout parent: 2.
    Holdout = 2,
    /// The first event of a mutually exclusive group parent: 3.
    MutexGroup = 3,
}

impl DecisionKind {
    /// The reference's name (`FracAvail`, `Override`, `Holdout`, `MutexGroup`).
    pub fn as_str(self) -> &'static str {
        match self {
            DecisionKind::FracAvail => "FracAvail",
            DecisionKind::Override => "Override",
            DecisionKind::Holdout => "Holdout",
            DecisionKind::MutexGroup => "MutexGroup",
        }
    }
}

/// What an event takes from outside the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventStamp {
    /// Wall-clock milliseconds since the Unix epoch (`"5"`).
    pub client_ts_ms: i64,
    /// A fresh random UUID for this event (`"6"`).
    pub uuid: Uuid,
    /// The correlation id to use when the context's `correlation_id` is absent or is not a
    /// UUID. Use one per decision: every event of a decision shares it (`"8"`).
    pub correlation_fallback: Uuid,
}

/// An event as a decision stores it: 16 bytes, so that a decision with a few events stays
/// small enough to return cheaply.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RawEvent<'a> {
    pub(crate) feature: &'a Feature,
    /// Index into the feature's variants.
    pub(crate) variant: u32,
    pub(crate) kind: DecisionKind,
}

/// One exposure event of a decision: which feature, which variant, why.
#[derive(Debug, Clone, Copy)]
pub struct Exposure<'a> {
    kind: DecisionKind,
    feature: &'a Feature,
    variant: &'a str,
    ctx: &'a Context,
}

impl<'a> Exposure<'a> {
    pub(crate) fn new(raw: &RawEvent<'a>, ctx: &'a Context) -> Self {
        let variant = raw.feature.variants().get(raw.variant as usize).map_or("", |v| &*v.name);
        Exposure { kind: raw.kind, feature: raw.feature, variant, ctx }
    }

    /// An exposure of `feature` to `variant` for `ctx` that no decision produced: what a
    /// manual `expose(feature, variant)` reports (the wrapper's [`crate::WrapperRequest::expose`]
    /// builds its v2 event this way). The variant is not checked against the feature's
    /// variants, as the reference does not check it either.
    ///
    /// Its v2 event is the one a decision of `kind` with that variant writes for `ctx`: the
    /// bucketing value (`"9"`, and the exposure key) is read from the context's `bucket_val`
    /// field whether or not bucketing would have reached it (`""` when the context has none),
    /// and `"10"` is true only for [`DecisionKind::Override`]. Use
    /// [`DecisionKind::FracAvail`] for a plain exposure.
    pub fn from_parts(
        kind: DecisionKind,
        feature: &'a Feature,
        variant: &'a str,
        ctx: &'a Context,
    ) -> Self {
        Exposure { kind, feature, variant, ctx }
    }

    /// The decision kind.
    pub fn kind(&self) -> DecisionKind {
        self.kind
    }

    /// The feature the event is about (a parent's for holdout and group events).
    pub fn feature(&self) -> &'a Feature {
        self.feature
    }

    /// The variant of that feature.
    pub fn variant(&self) -> &'a str {
        self.variant
    }

    /// The context of the decision.
    pub fn context(&self) -> &'a Context {
        self.ctx
    }

    /// The bucketing value as events print it (strings as-is; otherwise `serde_json` form).
    pub fn bucketing_value(&self) -> Cow<'a, str> {
        let field = match self.feature.range() {
            Some(r) => self.ctx.field(&r.field),
            None => None,
        };
        match field {
            Some(crate::FieldValue::Str(s)) => Cow::Borrowed(s),
            Some(other) => {
                let mut s = String::new();
                let _ = other.write_identifier(&mut s);
                Cow::Owned(s)
            }
            // Events are only made when the value exists.
            None => Cow::Borrowed(""),
        }
    }

    /// `"{feature_name}:{version}:{variant}:{bucketing_value}"`: equal for equivalent exposures.
    pub fn exposure_key(&self) -> String {
        let f = self.feature;
        format!("{}:{}:{}:{}", f.name, f.version, self.variant, self.bucketing_value())
    }

    /// The legacy string
    /// `"{kind}::::{id}::::{name}::::{version}::::{variant}::::{value}::::{bucket_val}::::{start_ts}::::{stop_ts}"`.
    pub fn legacy(&self) -> String {
        let f = self.feature;
        format!(
            "{}::::{}::::{}::::{}::::{}::::{}::::{}::::{}::::{}",
            self.kind as u8,
            f.id,
            f.name,
            f.version,
            self.variant,
            self.bucketing_value(),
            f.bucket_val(),
            f.start_ts,
            f.stop_ts
        )
    }

    /// The correlation id the event carries: the context's `correlation_id` when it parses as
    /// a UUID (hyphenated, simple, braced or URN, any case), else the fallback.
    pub fn correlation_id(&self, fallback: Uuid) -> Uuid {
        correlation_id(self.ctx, fallback)
    }

    /// The v2 event in Thrift-JSON, compact, byte for byte as the reference writes it.
    pub fn to_v2_json(&self, stamp: &EventStamp) -> String {
        let mut out = String::with_capacity(640);
        self.write_v2_json(stamp, &mut out);
        out
    }

    /// Appends [`Exposure::to_v2_json`] to `out`.
    pub fn write_v2_json(&self, stamp: &EventStamp, out: &mut String) {
        let f = self.feature;
        V2Fields {
            kind: self.kind,
            id: f.id,
            name: &f.name,
            version: f.version,
            start_ts: f.start_ts,
            stop_ts: f.stop_ts,
            bucket_val: f.bucket_val(),
            variant: self.variant,
            bucketing_value: &self.bucketing_value(),
            ctx: self.ctx,
        }
        .write(stamp, out);
    }
}

/// An [`Exposure`] that owns what its v2 event needs (the feature's attributes, the variant,
/// the bucketing value as printed, and a shared handle on the context), so that it can be
/// queued after the decision and the manifest are gone.
#[derive(Debug, Clone)]
pub(crate) struct OwnedExposure {
    kind: DecisionKind,
    id: u32,
    name: Box<str>,
    version: u32,
    start_ts: u64,
    stop_ts: u64,
    bucket_val: Box<str>,
    variant: Box<str>,
    bucketing_value: Box<str>,
    ctx: Arc<Context>,
}

impl OwnedExposure {
    /// Copies `exposure`; `ctx` must be (a handle on) the context it was decided on.
    pub(crate) fn new(exposure: &Exposure<'_>, ctx: Arc<Context>) -> Self {
        debug_assert!(std::ptr::eq(exposure.ctx, &*ctx) || *exposure.ctx == *ctx);
        let f = exposure.feature;
        OwnedExposure {
            kind: exposure.kind,
            id: f.id,
            name: f.name.clone(),
            version: f.version,
            start_ts: f.start_ts,
            stop_ts: f.stop_ts,
            bucket_val: f.bucket_val().into(),
            variant: exposure.variant.into(),
            bucketing_value: exposure.bucketing_value().into(),
            ctx,
        }
    }

    pub(crate) fn kind(&self) -> DecisionKind {
        self.kind
    }

    pub(crate) fn exposure_key(&self) -> String {
        format!("{}:{}:{}:{}", self.name, self.version, self.variant, self.bucketing_value)
    }

    pub(crate) fn correlation_id(&self, fallback: Uuid) -> Uuid {
        correlation_id(&self.ctx, fallback)
    }

    pub(crate) fn write_v2_json(&self, stamp: &EventStamp, out: &mut String) {
        V2Fields {
            kind: self.kind,
            id: self.id,
            name: &self.name,
            version: self.version,
            start_ts: self.start_ts,
            stop_ts: self.stop_ts,
            bucket_val: &self.bucket_val,
            variant: &self.variant,
            bucketing_value: &self.bucketing_value,
            ctx: &self.ctx,
        }
        .write(stamp, out);
    }
}

fn correlation_id(ctx: &Context, fallback: Uuid) -> Uuid {
    ctx.string(StringField::CorrelationId).and_then(|s| Uuid::try_parse(s).ok()).unwrap_or(fallback)
}

/// Everything a v2 event is written from.
struct V2Fields<'a> {
    kind: DecisionKind,
    id: u32,
    name: &'a str,
    version: u32,
    start_ts: u64,
    stop_ts: u64,
    bucket_val: &'a str,
    variant: &'a str,
    bucketing_value: &'a str,
    ctx: &'a Context,
}

impl V2Fields<'_> {
    fn write(&self, stamp: &EventStamp, out: &mut String) {
        let ctx = self.ctx;
        let s = |field| ctx.string(field);
        let mut w = Writer(out);
        w.raw("{\"1\":{\"str\":\"experiment\"},\"2\":{\"str\":\"expose\"},\"3\":");
        w.str(self.bucket_val);
        w.raw(",\"5\":");
        w.i64(stamp.client_ts_ms);
        w.raw(",\"6\":");
        w.str(&stamp.uuid.hyphenated().to_string());
        w.raw(",\"8\":");
        w.str(&correlation_id(ctx, stamp.correlation_fallback).hyphenated().to_string());
        if let Some(app) = s(StringField::AppName) {
            w.raw(",\"107\":{\"rec\":{\"2\":");
            w.str(app);
            if let Some(b) = ctx.build_number() {
                w.raw(",\"4\":{\"i32\":");
                let _ = write!(w.0, "{b}");
                w.raw("}");
            }
            if let Some(locale) = s(StringField::Locale) {
                w.raw(",\"6\":");
                w.str(locale);
            }
            w.raw("}}");
        }
        if let Some(device) = s(StringField::DeviceId).and_then(|d| Uuid::try_parse(d).ok()) {
            w.raw(",\"108\":{\"rec\":{\"2\":");
            w.str(&device.hyphenated().to_string());
            w.raw("}}");
        }
        let request = [
            ("17", s(StringField::CanonicalUrl)),
            ("3", s(StringField::BaseUrl)),
            ("1", s(StringField::UserAgent)),
        ];
        if request.iter().any(|(_, v)| v.is_some()) {
            w.raw(",\"109\":{\"rec\":{");
            w.fields(request.iter().filter_map(|(k, v)| v.map(|v| (*k, v))));
            w.raw("}}");
        }
        if let Some(referrer) = s(StringField::ReferrerUrl) {
            w.raw(",\"110\":{\"rec\":{\"2\":");
            w.str(referrer);
            w.raw("}}");
        }
        if let Some(user) = s(StringField::UserId) {
            w.raw(",\"112\":{\"rec\":{\"1\":");
            w.str(user);
            if let Some(l) = ctx.logged_in() {
                w.raw(",\"3\":");
                w.tf(l);
            }
            if let Some(c) = ctx.cookie_created_timestamp() {
                w.raw(",\"4\":");
                w.i64(c);
            }
            if let Some(e) = ctx.user_is_employee() {
                w.raw(",\"16\":");
                w.tf(e);
            }
            w.raw("}}");
        }
        if let Some(sr) = s(StringField::SubredditId) {
            w.raw(",\"114\":{\"rec\":{\"1\":");
            w.str(sr);
            w.raw("}}");
        }
        w.raw(",\"129\":{\"rec\":{\"1\":");
        w.i64(i64::from(self.id));
        w.raw(",\"2\":");
        w.str(self.name);
        w.raw(",\"4\":");
        w.str(self.variant);
        w.raw(",\"5\":");
        w.i64(i64::try_from(self.start_ts).unwrap_or(i64::MAX));
        w.raw(",\"6\":");
        w.i64(i64::try_from(self.stop_ts).unwrap_or(i64::MAX));
        w.raw(",\"7\":");
        w.str(self.bucket_val);
        w.raw(",\"8\":");
        w.str(&self.version.to_string());
        w.raw(",\"9\":");
        w.str(self.bucketing_value);
        w.raw(",\"10\":");
        w.tf(self.kind == DecisionKind::Override);
        w.raw("}}");
        if let Some(cc) = s(StringField::CountryCode) {
            w.raw(",\"500\":{\"rec\":{\"1\":");
            w.str(cc);
            w.raw("}}");
        }
        w.raw("}");
    }
}

/// Thrift-JSON pieces.
struct Writer<'o>(&'o mut String);

impl Writer<'_> {
    fn raw(&mut self, s: &str) {
        self.0.push_str(s);
    }

    fn str(&mut self, s: &str) {
        self.0.push_str("{\"str\":");
        push_json_str(self.0, s);
        self.0.push('}');
    }

    fn i64(&mut self, n: i64) {
        let _ = write!(self.0, "{{\"i64\":{n}}}");
    }

    fn tf(&mut self, b: bool) {
        self.0.push_str(if b { "{\"tf\":1}" } else { "{\"tf\":0}" });
    }

    fn fields<'s>(&mut self, fields: impl Iterator<Item = (&'s str, &'s str)>) {
        for (i, (k, v)) in fields.enumerate() {
            if i > 0 {
                self.0.push(',');
            }
            self.0.push('"');
            self.0.push_str(k);
            self.0.push_str("\":");
            self.str(v);
        }
    }
}
