//! Events: the values a request hands to its [`EventHandler`].

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::experiment::{ExperimentClass, ExperimentRef};
use crate::inputs::Inputs;

/// The kind of event (baseplate's `EventType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventType {
    /// A bucketing event (`EventType.BUCKET`, value `"choose"`).
    Choose,
    /// An exposure event (`EventType.EXPOSE`, value `"expose"`).
    Expose,
}

impl EventType {
    /// `"choose"` or `"expose"`.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Choose => "choose",
            EventType::Expose => "expose",
        }
    }
}

/// The inputs baseplate passes to `event_logger.log` by name, in this order
/// (`inputs.get(key)`, null when absent).
pub const EVENT_FIELDS: [&str; 4] =
    ["user_id", "logged_in", "cookie_created_timestamp", "app_name"];

/// The event document of baseplate's `event_logger.log(**kw)` arguments, shared by
/// [`Event`] and [`OwnedEvent`].
fn serialize_event<S: serde::Serializer>(
    serializer: S,
    event_type: EventType,
    variant: Option<&str>,
    experiment: &impl Serialize,
    inputs: &Inputs,
) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeStruct;
    let mut st = serializer.serialize_struct("Event", 8)?;
    st.serialize_field("event_type", &event_type)?;
    st.serialize_field("variant", &variant)?;
    for key in EVENT_FIELDS {
        st.serialize_field(key, inputs.get_or_null(key))?;
    }
    st.serialize_field("experiment", experiment)?;
    st.serialize_field("inputs", inputs)?;
    st.end()
}

/// One event, borrowing from the config snapshot and the call's inputs. Building it does not
/// allocate or look anything up ([`EVENT_FIELDS`] are read from the inputs when serialized);
/// serialize it or convert it with [`Event::to_owned_event`] to keep it. Serializes as
/// `{"event_type", "variant", "user_id", "logged_in", "cookie_created_timestamp", "app_name",
/// "experiment", "inputs"}` like baseplate's `event_logger.log(**kw)` arguments.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Event<'a> {
    /// `choose` or `expose`.
    pub event_type: EventType,
    /// The variant (`None` only for `expose` called with no variant).
    pub variant: Option<&'a str>,
    /// The experiment.
    pub experiment: ExperimentRef<'a>,
    /// The call's inputs, in order.
    pub inputs: &'a Inputs,
    /// The bucketing field (`bucket_val`) of the experiment, when it has one.
    pub bucketing_field: Option<&'a str>,
    /// The bucketing value of the call (for `choose`: the truthy value that was bucketed).
    pub bucketing_value: Option<&'a Value>,
    /// Whether an override (or `global_override`) chose the variant (`choose` only).
    pub is_override: bool,
}

impl<'a> Event<'a> {
    pub(crate) fn new(
        event_type: EventType,
        variant: Option<&'a str>,
        experiment: ExperimentRef<'a>,
        inputs: &'a Inputs,
    ) -> Self {
        Event {
            event_type,
            variant,
            experiment,
            inputs,
            bucketing_field: None,
            bucketing_value: None,
            is_override: false,
        }
    }

    /// An owned copy of the event. Copies no experiment attribute and no input: the
    /// experiment's event attributes are shared with the config (built once when it was
    /// parsed) and the inputs with the caller's [`Inputs`] (copy-on-write); only the
    /// variant name is copied.
    pub fn to_owned_event(&self) -> OwnedEvent {
        let experiment = match self.experiment.shared.0 {
            Some(meta) if meta.bucketing_field.as_deref() == self.bucketing_field => {
                Arc::clone(meta)
            }
            _ => Arc::new(OwnedExperimentRef::new(&self.experiment, self.bucketing_field)),
        };
        OwnedEvent {
            event_type: self.event_type,
            variant: self.variant.map(str::to_owned),
            experiment,
            inputs: self.inputs.clone(),
            is_override: self.is_override,
        }
    }
}

impl Serialize for Event<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serialize_event(serializer, self.event_type, self.variant, &self.experiment, self.inputs)
    }
}

impl OwnedExperimentRef {
    /// An owned copy of `x`, with the bucketing field of its events.
    pub(crate) fn new(x: &ExperimentRef<'_>, bucketing_field: Option<&str>) -> Self {
        OwnedExperimentRef {
            class: x.class,
            id: x.id,
            name: x.name.map(str::to_owned),
            owner: x.owner.cloned(),
            version: x.version.cloned(),
            start_ts: x.start_ts,
            stop_ts: x.stop_ts,
            bucketing_field: bucketing_field.map(str::to_owned),
        }
    }
}

/// An owned [`ExperimentRef`], plus the bucketing field of the experiment's events. Built
/// once per experiment when the config is parsed and shared by every event kept from it.
///
/// Aligned to 128 bytes so that, inside the `Arc` events share, the reference counts (touched
/// on the request path for every event) never share a cache line with the attributes (read by
/// the event pipeline on another core).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
#[repr(align(128))]
pub struct OwnedExperimentRef {
    /// The baseplate class.
    pub class: ExperimentClass,
    /// The experiment id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<i64>,
    /// The experiment name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The owner.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<Value>,
    /// The version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<Value>,
    /// `start_ts`.
    #[serde(skip)]
    pub start_ts: Option<f64>,
    /// `stop_ts`.
    #[serde(skip)]
    pub stop_ts: Option<f64>,
    /// The bucketing field (`bucket_val`) of the experiment's events, when it buckets.
    #[serde(skip)]
    pub bucketing_field: Option<String>,
}

/// An owned [`Event`], for buffering and for tests. Serializes like [`Event`]. Values that
/// are lookups into the inputs ([`EVENT_FIELDS`], the bucketing value) are not copied.
#[derive(Clone, Debug, PartialEq)]
pub struct OwnedEvent {
    /// `choose` or `expose`.
    pub event_type: EventType,
    /// The variant.
    pub variant: Option<String>,
    /// The experiment, shared by every event of the experiment in one config version.
    pub experiment: Arc<OwnedExperimentRef>,
    /// The call's inputs (shared with the caller's map until either changes).
    pub inputs: Inputs,
    /// Whether an override chose the variant.
    pub is_override: bool,
}

impl OwnedEvent {
    /// The bucketing field, when the experiment has one.
    pub fn bucketing_field(&self) -> Option<&str> {
        self.experiment.bucketing_field.as_deref()
    }

    /// The bucketing value: the input named by the bucketing field.
    pub fn bucketing_value(&self) -> Option<&Value> {
        self.inputs.get(self.bucketing_field()?)
    }
}

impl Serialize for OwnedEvent {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let variant = self.variant.as_deref();
        serialize_event(serializer, self.event_type, variant, &*self.experiment, &self.inputs)
    }
}

/// What an event document holds; the looked-up fields are ignored on reading.
#[derive(Deserialize)]
struct OwnedEventDocument {
    event_type: EventType,
    variant: Option<String>,
    experiment: OwnedExperimentRef,
    inputs: Inputs,
}

impl<'de> Deserialize<'de> for OwnedEvent {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let d = OwnedEventDocument::deserialize(deserializer)?;
        Ok(OwnedEvent {
            event_type: d.event_type,
            variant: d.variant,
            experiment: Arc::new(d.experiment),
            inputs: d.inputs,
            is_override: false,
        })
    }
}

/// Where a request's events go. Implemented for `&mut S`, for `Vec<OwnedEvent>` and, through
/// [`FnHandler`], for closures.
///
/// ```
/// use experiments_core::{Event, EventHandler};
/// struct Counter(usize);
/// impl EventHandler for Counter {
///     fn log(&mut self, _event: &Event<'_>) {
///         self.0 += 1;
///     }
/// }
/// ```
pub trait EventHandler {
    /// Receives one event. Must not block for long: it runs on the request path.
    fn log(&mut self, event: &Event<'_>);
}

impl<S: EventHandler + ?Sized> EventHandler for &mut S {
    fn log(&mut self, event: &Event<'_>) {
        (**self).log(event);
    }
}

/// A closure used as a sink: `FnHandler(|event: &Event<'_>| println!("{event:?}"))`.
#[derive(Clone, Copy, Debug, Default)]
pub struct FnHandler<F>(pub F);

impl<F: FnMut(&Event<'_>)> EventHandler for FnHandler<F> {
    fn log(&mut self, event: &Event<'_>) {
        (self.0)(event);
    }
}

impl EventHandler for Vec<OwnedEvent> {
    fn log(&mut self, event: &Event<'_>) {
        self.push(event.to_owned_event());
    }
}

/// A sink that drops every event.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoopHandler;

impl EventHandler for NoopHandler {
    fn log(&mut self, _event: &Event<'_>) {}
}
