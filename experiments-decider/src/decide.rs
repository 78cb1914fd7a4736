//! Decisions (SPEC §5–§9, §11, §12): the pipeline in its exact order — enabled, overrides,
//! targeting, holdout, mutually exclusive group, bucketing — with parent events, and the
//! calls built on it (`choose_all`, typed getters, `all_values`, `get_feature`).
//!
//! A decision borrows the manifest and the context and allocates nothing unless it has more
//! than [`INLINE_EVENTS`] events; events become bytes only when serialized
//! ([`crate::Exposure`]).

use serde::Serialize;
use serde_json::{Map, Value};
use smallvec::SmallVec;

use crate::context::{Context, FieldValue};
use crate::error::{DecideError, ValueKind};
use crate::event::{DecisionKind, Exposure, RawEvent};
use crate::manifest::{Body, Feature, FeatureId, Manifest, OverrideTarget, Range};

/// Events a decision holds without allocating (a feature, its holdout and its group, with one
/// level of parents each, fit).
pub const INLINE_EVENTS: usize = 4;

type Events<'a> = SmallVec<[RawEvent<'a>; INLINE_EVENTS]>;

static NULL: Value = Value::Null;

/// What a parent did to its child.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ParentEffect {
    /// The child gets no variant (holdout `"holdout"`, or a group that chose another child).
    Excluded,
    /// The child continues, with the parent's events first.
    Continue,
    /// The parent has no effect and its events are dropped.
    NoEffect,
}

/// One step of a decision, as the pipeline takes it.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "snake_case", tag = "step")]
#[non_exhaustive]
pub enum Step<'a> {
    /// `enabled` is false: no variant, no events, nothing else runs.
    Disabled {
        /// The feature.
        feature: &'a str,
    },
    /// A dynamic config gives its value.
    DynamicValue {
        /// The feature.
        feature: &'a str,
        /// Its value.
        value: &'a Value,
    },
    /// An override tree matched (`variant` is `None` for `$none`).
    Override {
        /// The feature.
        feature: &'a str,
        /// The forced variant.
        variant: Option<&'a str>,
    },
    /// An override tree matched but names no variant of the feature: overrides end here.
    OverrideIgnored {
        /// The feature.
        feature: &'a str,
        /// The name the override gives.
        name: &'a str,
    },
    /// An override tree evaluated to unknown: overrides end here.
    OverrideUnknown {
        /// The feature.
        feature: &'a str,
        /// Index of the override in the flattened list.
        index: usize,
    },
    /// The targeting tree was evaluated (`None`: unknown, which does not target).
    Targeting {
        /// The feature.
        feature: &'a str,
        /// Its value.
        result: Option<bool>,
    },
    /// The holdout parent was decided.
    Holdout {
        /// The feature.
        feature: &'a str,
        /// The parent's name.
        parent: &'a str,
        /// The parent's variant.
        variant: Option<&'a str>,
        /// What it does to the feature.
        effect: ParentEffect,
    },
    /// The mutually exclusive group parent was decided.
    MutexGroup {
        /// The feature.
        feature: &'a str,
        /// The parent's name.
        parent: &'a str,
        /// The parent's variant (the feature continues only if it is the feature's name).
        variant: Option<&'a str>,
        /// What it does to the feature.
        effect: ParentEffect,
    },
    /// The bucket was computed and looked up in the variants.
    Bucket {
        /// The feature.
        feature: &'a str,
        /// The bucketing value as hashed.
        value: FieldValue<'a>,
        /// The bucket, `0..1000`.
        bucket: u16,
        /// The first variant whose range holds it.
        variant: Option<&'a str>,
    },
}

/// Receives every step of a decision. [`NoTrace`] compiles to nothing; [`Explanation`] records.
pub trait Observer {
    /// One step.
    fn step(&mut self, step: Step<'_>);
}

/// The observer of the request path: does nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoTrace;

impl Observer for NoTrace {
    #[inline(always)]
    fn step(&mut self, _step: Step<'_>) {}
}

/// Records the steps as text lines (for `eval --explain`) and as JSON values.
#[derive(Debug, Clone, Default)]
pub struct Explanation {
    /// One JSON object per step, in order.
    pub steps: Vec<Value>,
}

impl Observer for Explanation {
    fn step(&mut self, step: Step<'_>) {
        self.steps.push(serde_json::to_value(step).unwrap_or(Value::Null));
    }
}

/// The result of one decision.
#[derive(Debug, Clone)]
pub struct Decision<'a> {
    feature: &'a Feature,
    variant: Option<&'a str>,
    value: &'a Value,
    ctx: &'a Context,
    events: Events<'a>,
}

impl<'a> Decision<'a> {
    /// The feature decided.
    pub fn feature(&self) -> &'a Feature {
        self.feature
    }

    /// The variant (`None` for dynamic configs and when no variant applies).
    pub fn variant(&self) -> Option<&'a str> {
        self.variant
    }

    /// The value: a dynamic config's (when enabled), else `null`.
    pub fn value(&self) -> &'a Value {
        self.value
    }

    /// `feature_id`.
    pub fn feature_id(&self) -> u32 {
        self.feature.id
    }

    /// `feature_name`.
    pub fn feature_name(&self) -> &'a str {
        &self.feature.name
    }

    /// `feature_version` (`experiment_version`).
    pub fn feature_version(&self) -> u32 {
        self.feature.version
    }

    /// The context decided on.
    pub fn context(&self) -> &'a Context {
        self.ctx
    }

    /// The exposure events, parents first.
    pub fn events(
        &self,
    ) -> impl ExactSizeIterator<Item = Exposure<'a>> + DoubleEndedIterator + Clone + '_ {
        self.events.iter().map(|e| Exposure::new(e, self.ctx))
    }

    /// The `i`-th exposure event.
    pub fn event(&self, i: usize) -> Option<Exposure<'a>> {
        self.events.get(i).map(|e| Exposure::new(e, self.ctx))
    }
}

impl Manifest {
    fn lookup(&self, name: &str) -> Result<&Feature, DecideError> {
        self.feature(name).ok_or_else(|| DecideError::FeatureNotFound(name.to_owned()))
    }

    /// `get_feature`: the feature decisions use for `name`.
    pub fn get_feature(&self, name: &str) -> Result<&Feature, DecideError> {
        self.lookup(name)
    }

    /// `choose`: decides one feature for a context.
    pub fn choose<'a>(&'a self, name: &str, ctx: &'a Context) -> Result<Decision<'a>, DecideError> {
        self.choose_traced(name, ctx, &mut NoTrace)
    }

    /// [`Manifest::choose`], reporting every step to `observer`.
    pub fn choose_traced<'a, O: Observer>(
        &'a self,
        name: &str,
        ctx: &'a Context,
        observer: &mut O,
    ) -> Result<Decision<'a>, DecideError> {
        let feature = self.lookup(name)?;
        self.decide(feature, ctx, observer)
    }

    /// Decides a feature already looked up.
    pub fn decide<'a, O: Observer>(
        &'a self,
        feature: &'a Feature,
        ctx: &'a Context,
        observer: &mut O,
    ) -> Result<Decision<'a>, DecideError> {
        let mut events = Events::new();
        let variant = self.decide_into(feature, ctx, &mut events, observer)?;
        if events.iter().any(|e| !e.feature.ts_fit) {
            return Err(DecideError::MalformedEvent);
        }
        let value = match &feature.body {
            Body::Dynamic(v) if feature.enabled => {
                observer.step(Step::DynamicValue { feature: &feature.name, value: v });
                v
            }
            _ => &NULL,
        };
        Ok(Decision { feature, variant, value, ctx, events })
    }

    /// `choose_all`: the decisions of every range feature (only those whose `bucket_val` is
    /// `bucketing_field`, when given). Features whose decision fails are left out, as in the
    /// reference. Document order.
    pub fn choose_all<'a>(
        &'a self,
        ctx: &'a Context,
        bucketing_field: Option<&'a str>,
    ) -> impl Iterator<Item = Decision<'a>> + 'a {
        self.features()
            .filter(move |f| {
                f.range().is_some_and(|r| bucketing_field.is_none_or(|b| *r.bucket_val == *b))
            })
            .filter_map(move |f| self.decide(f, ctx, &mut NoTrace).ok())
    }

    /// `all_values`: every dynamic config's value (`null` when disabled), document order.
    /// Dynamic configs do not depend on the context; it is taken for parity with the
    /// reference's signature.
    pub fn all_values<'a>(
        &'a self,
        _ctx: &Context,
    ) -> impl Iterator<Item = (&'a str, &'a Value)> + 'a {
        self.features().filter_map(|f| match &f.body {
            Body::Dynamic(v) => Some((&*f.name, if f.enabled { v } else { &NULL })),
            Body::Range(_) => None,
        })
    }

    /// The value `choose` gives (`null` for range features and disabled configs), borrowing
    /// only the manifest: a range feature is decided for its errors (a missing bucketing
    /// field, ...), a dynamic config's value never depends on the context.
    fn value_of<'a>(&'a self, name: &str, ctx: &Context) -> Result<&'a Value, DecideError> {
        let feature = self.lookup(name)?;
        match &feature.body {
            Body::Dynamic(v) if feature.enabled => Ok(v),
            Body::Dynamic(_) => Ok(&NULL),
            Body::Range(_) => self.decide(feature, ctx, &mut NoTrace).map(|_| &NULL),
        }
    }

    /// `get_bool`: a boolean dynamic config.
    pub fn get_bool(&self, name: &str, ctx: &Context) -> Result<bool, DecideError> {
        match self.value_of(name, ctx)? {
            Value::Bool(b) => Ok(*b),
            _ => Err(mismatch(name, ValueKind::Boolean)),
        }
    }

    /// `get_int`: an integer dynamic config that fits `i64` (a float or a larger integer is
    /// [`DecideError::NumberDeserialization`]).
    pub fn get_int(&self, name: &str, ctx: &Context) -> Result<i64, DecideError> {
        match self.value_of(name, ctx)? {
            Value::Number(n) => n.as_i64().ok_or(DecideError::NumberDeserialization),
            _ => Err(mismatch(name, ValueKind::Integer)),
        }
    }

    /// `get_float`: any numeric dynamic config, as `f64`.
    pub fn get_float(&self, name: &str, ctx: &Context) -> Result<f64, DecideError> {
        match self.value_of(name, ctx)? {
            Value::Number(n) => n.as_f64().ok_or(DecideError::NumberDeserialization),
            _ => Err(mismatch(name, ValueKind::Float)),
        }
    }

    /// `get_string`: a string dynamic config.
    pub fn get_string<'a>(&'a self, name: &str, ctx: &Context) -> Result<&'a str, DecideError> {
        match self.value_of(name, ctx)? {
            Value::String(s) => Ok(s),
            _ => Err(mismatch(name, ValueKind::String)),
        }
    }

    /// `get_map`: an object dynamic config, numbers as configured (the Python binding turns
    /// every number into a float when it converts the map).
    pub fn get_map<'a>(
        &'a self,
        name: &str,
        ctx: &Context,
    ) -> Result<&'a Map<String, Value>, DecideError> {
        match self.value_of(name, ctx)? {
            Value::Object(m) => Ok(m),
            _ => Err(mismatch(name, ValueKind::Map)),
        }
    }

    /// The pipeline. Events of this decision are appended to `out`; the variant is returned.
    fn decide_into<'a, O: Observer>(
        &'a self,
        f: &'a Feature,
        ctx: &'a Context,
        out: &mut Events<'a>,
        obs: &mut O,
    ) -> Result<Option<&'a str>, DecideError> {
        let feature = &*f.name;
        if !f.enabled {
            obs.step(Step::Disabled { feature });
            return Ok(None);
        }
        let Body::Range(r) = &f.body else {
            return Ok(None);
        };
        // 2. overrides: the first tree that is true decides; unknown or an unknown variant
        // name ends the step.
        for (index, o) in r.overrides.iter().enumerate() {
            match o.tree.eval(ctx) {
                Some(false) => continue,
                None => {
                    obs.step(Step::OverrideUnknown { feature, index });
                    break;
                }
                Some(true) => match &o.target {
                    OverrideTarget::NoVariant => {
                        obs.step(Step::Override { feature, variant: None });
                        return Ok(None);
                    }
                    OverrideTarget::Unknown(name) => {
                        obs.step(Step::OverrideIgnored { feature, name });
                        break;
                    }
                    OverrideTarget::Variant(i) => {
                        let variant = &*r.variants[*i as usize].name;
                        if f.emit_event {
                            if ctx.field(&r.field).is_none() {
                                return Err(DecideError::MissingBucketVal);
                            }
                            out.push(RawEvent {
                                feature: f,
                                variant: *i,
                                kind: DecisionKind::Override,
                            });
                        }
                        obs.step(Step::Override { feature, variant: Some(variant) });
                        return Ok(Some(variant));
                    }
                },
            }
        }
        // 3. targeting: false or unknown stops with no events.
        if let Some(t) = &r.targeting {
            let result = t.eval(ctx);
            obs.step(Step::Targeting { feature, result });
            if result != Some(true) {
                return Ok(None);
            }
        }
        // 4. holdout.
        if let Some(h) = r.holdout {
            let (parent, start, variant) = self.parent(h, ctx, out, obs)?;
            let effect = match variant {
                Some("holdout") => ParentEffect::Excluded,
                Some("control_1") => ParentEffect::Continue,
                _ => ParentEffect::NoEffect,
            };
            obs.step(Step::Holdout { feature, parent, variant, effect });
            match effect {
                ParentEffect::Excluded => {
                    recast(out, start, DecisionKind::Holdout);
                    return Ok(None);
                }
                ParentEffect::Continue => recast(out, start, DecisionKind::Holdout),
                ParentEffect::NoEffect => out.truncate(start),
            }
        }
        // 5. mutually exclusive group: continue only if it chose this feature; otherwise its
        // events are dropped (holdout events stay).
        if let Some(m) = r.meg {
            let (parent, start, variant) = self.parent(m, ctx, out, obs)?;
            let admitted = variant == Some(feature);
            let effect = if admitted { ParentEffect::Continue } else { ParentEffect::Excluded };
            obs.step(Step::MutexGroup { feature, parent, variant, effect });
            if !admitted {
                out.truncate(start);
                return Ok(None);
            }
            recast(out, start, DecisionKind::MutexGroup);
        }
        // 6. fractional availability.
        let value = ctx
            .field(&r.field)
            .ok_or_else(|| DecideError::MissingBucketingField(r.bucket_val.to_string()))?;
        let bucket = self.bucket(r, value);
        let hit = r
            .variants
            .iter()
            .enumerate()
            .find(|(_, v)| v.buckets.0 <= bucket && bucket < v.buckets.1);
        obs.step(Step::Bucket { feature, value, bucket, variant: hit.map(|(_, v)| &*v.name) });
        Ok(hit.map(|(i, v)| {
            if f.emit_event || v.emit_event_override {
                out.push(RawEvent { feature: f, variant: i as u32, kind: DecisionKind::FracAvail });
            }
            &*v.name
        }))
    }

    /// Decides a parent into `out`: its name, where its events start, its variant.
    fn parent<'a, O: Observer>(
        &'a self,
        id: FeatureId,
        ctx: &'a Context,
        out: &mut Events<'a>,
        obs: &mut O,
    ) -> Result<(&'a str, usize, Option<&'a str>), DecideError> {
        let parent = self.get(id);
        let start = out.len();
        let variant = self.decide_into(parent, ctx, out, obs)?;
        Ok((&parent.name, start, variant))
    }

    /// `int(sha1(f"{id}.{name}.{shuffle_version}{identifier}")) % 1000`.
    fn bucket(&self, r: &Range, value: FieldValue<'_>) -> u16 {
        let m = &self.modulus;
        let b = match value {
            FieldValue::Str(s) => r.seed.bucket_str(s, m),
            other => r.seed.bucket_with(m, |h| other.write_identifier(h)),
        };
        // Below 1000.
        b as u16
    }
}

/// Recasts the first event of a parent's decision (the parent's events start at `start`).
fn recast(out: &mut Events<'_>, start: usize, kind: DecisionKind) {
    if let Some(e) = out.get_mut(start) {
        e.kind = kind;
    }
}

fn mismatch(name: &str, expected: ValueKind) -> DecideError {
    DecideError::TypeMismatch { feature: name.to_owned(), expected }
}
