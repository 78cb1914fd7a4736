//! The provider through OpenFeature's client API, as a service uses it: flags, types, reasons,
//! metadata, errors, exposure through the client's pipeline, decider documents, status and
//! events.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use experiments_openfeature::{
    Evaluation, ExperimentsProvider, NO_VARIANT, NoVariant, PROVIDER_NAME, ProviderEvent,
    no_variant_reason,
};
use experiments_sdk::events::{
    Batch, Encoding, EventSink, ExportOutcome, PipelineSettings, SinkProfile, async_trait,
};
use experiments_sdk::watch::{
    ConfigSource, ConfigStore, Dialect, FailureKind, LoadFailure, Origin, SourceError, SourceGuard,
};
use experiments_sdk::{Config, CorrelationId, ExperimentsClient, Inputs, Startup};
use open_feature::provider::{FeatureProvider, ProviderStatus};
use open_feature::{
    Client, EvaluationContext, EvaluationContextFieldValue, EvaluationError, EvaluationErrorCode,
    EvaluationReason, FlagMetadataValue, OpenFeature, StructValue, Value,
};

const BASEPLATE: &str = r#"{
 "split": {"id": 1, "name": "split", "owner": "growth", "type": "single_variant", "version": "3",
   "start_ts": 0, "stop_ts": 4102444800,
   "experiment": {"experiment_version": 5,
     "variants": [{"name": "control_1", "size": 0.5}, {"name": "treatment", "size": 0.5}]}},
 "overridden": {"id": 2, "name": "overridden", "owner": "growth", "type": "single_variant",
   "version": "1", "start_ts": 0, "stop_ts": 4102444800,
   "experiment": {"experiment_version": 1,
     "variants": [{"name": "control_1", "size": 0.5}, {"name": "vip", "size": 0.5}],
     "overrides": [{"vip": {"EQ": {"field": "user_id", "values": ["t2_vip"]}}}]}},
 "r2_override": {"id": 3, "name": "r2_override", "owner": "growth", "type": "r2", "version": "2",
   "start_ts": 0, "stop_ts": 4102444800, "enabled": true,
   "experiment": {"id": 3, "name": "r2_override", "variants": {"treatment": 0, "other": 0},
     "overrides": {"user_id": {"t2_vip": "other"}}}},
 "disabled": {"id": 4, "name": "disabled", "owner": "growth", "type": "feature_rollout",
   "version": "1", "start_ts": 0, "stop_ts": 4102444800, "enabled": false,
   "experiment": {"experiment_version": 1, "variants": [{"name": "on", "size": 1.0}]}},
 "expired": {"id": 5, "name": "expired", "owner": "growth", "type": "feature_rollout",
   "version": "1", "start_ts": 0, "stop_ts": 1000,
   "experiment": {"experiment_version": 1, "variants": [{"name": "on", "size": 1.0}]}},
 "r2_off": {"id": 6, "name": "r2_off", "owner": "growth", "type": "r2", "version": "1",
   "start_ts": 0, "stop_ts": 4102444800, "enabled": false,
   "experiment": {"id": 6, "name": "r2_off", "variants": {"treatment": 100}}},
 "forced": {"id": 7, "name": "forced", "owner": "growth", "type": "single_variant", "version": "1",
   "start_ts": 0, "stop_ts": 4102444800, "global_override": "treatment",
   "experiment": {"experiment_version": 1,
     "variants": [{"name": "control_1", "size": 0.5}, {"name": "treatment", "size": 0.5}]}},
 "targeted": {"id": 8, "name": "targeted", "owner": "growth", "type": "feature_rollout",
   "version": "1", "start_ts": 0, "stop_ts": 4102444800,
   "experiment": {"experiment_version": 1, "variants": [{"name": "on", "size": 1.0}],
     "targeting": {"EQ": {"field": "country", "values": ["US"]}}}},
 "rollout": {"id": 9, "name": "rollout", "owner": "growth", "type": "feature_rollout",
   "version": "4", "start_ts": 0, "stop_ts": 4102444800,
   "experiment": {"experiment_version": 6, "variants": [{"name": "on", "size": 1.0}]}},
 "by_device": {"id": 10, "name": "by_device", "owner": "growth", "type": "feature_rollout",
   "version": "1", "start_ts": 0, "stop_ts": 4102444800,
   "experiment": {"experiment_version": 1, "bucket_val": "device_id",
     "variants": [{"name": "on", "size": 1.0}]}},
 "broken": {"id": 11, "name": "broken", "owner": "growth", "type": "single_variant", "version": "1",
   "start_ts": 0, "stop_ts": 4102444800,
   "experiment": {"experiment_version": 1, "num_buckets": -1,
     "variants": [{"name": "a", "size": 0.5}]}},
 "karma_gate": {"id": 12, "name": "karma_gate", "owner": "growth", "type": "feature_rollout",
   "version": "1", "start_ts": 0, "stop_ts": 4102444800,
   "experiment": {"experiment_version": 1, "variants": [{"name": "on", "size": 1.0}],
     "targeting": {"GT": {"field": "karma", "value": 5}}}}
}"#;

const DECIDER: &str = r#"{
 "new_feed": {"id": 20, "name": "new_feed", "enabled": true, "version": "1", "owner": "feeds",
   "type": "range_variant", "emit_event": true,
   "experiment": {"experiment_version": 2, "bucket_val": "user_id",
     "variants": [{"name": "control_1", "range_start": 0.0, "range_end": 0.5},
                  {"name": "treatment_1", "range_start": 0.5, "range_end": 1.0}],
     "overrides": [{"treatment_1": {"EQ": {"field": "user_id", "values": ["t2_vip"]}}},
                   {"$none": {"EQ": {"field": "user_id", "values": ["t2_none"]}}}]}},
 "dark": {"id": 21, "name": "dark", "enabled": false, "version": "1", "owner": "feeds",
   "type": "range_variant", "emit_event": true,
   "experiment": {"experiment_version": 1, "bucket_val": "user_id",
     "variants": [{"name": "treatment_1", "range_start": 0.0, "range_end": 1.0}]}},
 "by_device": {"id": 22, "name": "by_device", "enabled": true, "version": "1", "owner": "feeds",
   "type": "range_variant", "emit_event": true,
   "experiment": {"experiment_version": 1, "bucket_val": "device_id",
     "variants": [{"name": "treatment_1", "range_start": 0.0, "range_end": 1.0}]}},
 "page_size": {"id": 30, "name": "page_size", "enabled": true, "version": "1", "owner": "feeds",
   "type": "dynamic_config", "experiment": {"experiment_version": 3}, "value": 25},
 "ratio": {"id": 31, "name": "ratio", "enabled": true, "version": "1",
   "type": "dynamic_config", "experiment": {"experiment_version": 1}, "value": 0.25},
 "greeting": {"id": 32, "name": "greeting", "enabled": true, "version": "1",
   "type": "dynamic_config", "experiment": {"experiment_version": 1}, "value": "hello"},
 "beta": {"id": 33, "name": "beta", "enabled": true, "version": "1",
   "type": "dynamic_config", "experiment": {"experiment_version": 1}, "value": true},
 "layout": {"id": 34, "name": "layout", "enabled": true, "version": "1",
   "type": "dynamic_config", "experiment": {"experiment_version": 1},
   "value": {"columns": 3, "name": "grid", "tags": ["a", 1], "nothing": null, "inner": {"x": 1.5}}},
 "off_config": {"id": 35, "name": "off_config", "enabled": false, "version": "1",
   "type": "dynamic_config", "experiment": {"experiment_version": 1}, "value": 1},
 "broken": {"id": "not a number", "name": "broken", "enabled": true, "version": "1",
   "type": "dynamic_config", "experiment": {"experiment_version": 1}, "value": 1}
}"#;

/// A sink that keeps every event, in its encoding, as JSON.
struct Collect {
    encoding: Encoding,
    events: Mutex<Vec<serde_json::Value>>,
}

impl Collect {
    fn new(encoding: Encoding) -> Arc<Self> {
        Arc::new(Collect { encoding, events: Mutex::default() })
    }

    fn take(&self) -> Vec<serde_json::Value> {
        std::mem::take(&mut *self.events.lock().unwrap())
    }
}

#[async_trait]
impl EventSink for Collect {
    fn profile(&self) -> SinkProfile {
        SinkProfile::new(self.encoding)
    }

    async fn export(&self, batch: &Batch) -> ExportOutcome {
        let mut out = self.events.lock().unwrap();
        for e in &batch.events {
            out.push(serde_json::from_slice(&e.payload).unwrap());
        }
        ExportOutcome::Delivered
    }
}

/// A source that serves one document as bytes (detected or read in the client's dialect),
/// or nothing: the test then feeds the store itself.
struct Document(Option<&'static str>);

impl ConfigSource for Document {
    fn describe(&self) -> String {
        "test-document".into()
    }

    fn start(self: Box<Self>, store: ConfigStore) -> Result<SourceGuard, SourceError> {
        if let Some(text) = self.0
            && let Err(e) = store.offer_bytes(text.as_bytes(), Origin::Other("test".into()))
        {
            store.record_failure(e);
        }
        Ok(SourceGuard::new(()))
    }
}

fn fast_events() -> PipelineSettings {
    let mut ps = PipelineSettings::default();
    ps.max_batch_age = Duration::from_millis(10);
    ps
}

async fn baseplate_client(sink: Arc<Collect>) -> ExperimentsClient {
    ExperimentsClient::builder()
        .config(Config::parse(BASEPLATE).unwrap())
        .events(fast_events())
        .sink(sink)
        .build()
        .await
        .unwrap()
}

async fn decider_client(sink: Arc<Collect>) -> ExperimentsClient {
    ExperimentsClient::builder()
        .config_source(Document(Some(DECIDER)))
        .dialect(Some(Dialect::Decider))
        .events(fast_events())
        .sink(sink)
        .build()
        .await
        .unwrap()
}

/// An OpenFeature API instance of its own (tests run in parallel) with `provider` set.
async fn flags(provider: ExperimentsProvider) -> Client {
    let mut api = OpenFeature::default();
    api.set_provider(provider).await;
    api.create_client()
}

fn user(id: &str) -> EvaluationContext {
    EvaluationContext::default().with_targeting_key(id)
}

async fn flush(client: &ExperimentsClient) {
    client.pipeline().unwrap().flush(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn missing_flags_are_flag_not_found() {
    for client in [
        baseplate_client(Collect::new(Encoding::Json)).await,
        decider_client(Collect::new(Encoding::Json)).await,
    ] {
        let flags = flags(ExperimentsProvider::new(client)).await;
        let ctx = user("t2_1");
        let e = flags.get_string_details("no_such_flag", Some(&ctx), None).await.unwrap_err();
        assert_eq!(e.code, EvaluationErrorCode::FlagNotFound);
        let e = flags.get_bool_details("no_such_flag", Some(&ctx), None).await.unwrap_err();
        assert_eq!(e.code, EvaluationErrorCode::FlagNotFound);
        let e = flags.get_int_details("no_such_flag", Some(&ctx), None).await.unwrap_err();
        assert_eq!(e.code, EvaluationErrorCode::FlagNotFound);
        let e = flags.get_struct_details::<StructValue>("nope", Some(&ctx), None).await;
        assert_eq!(e.unwrap_err().code, EvaluationErrorCode::FlagNotFound);
    }
}

#[tokio::test]
async fn experiments_are_strings_and_booleans_only() {
    let flags =
        flags(ExperimentsProvider::new(baseplate_client(Collect::new(Encoding::Json)).await)).await;
    let ctx = user("t2_1");
    let int = flags.get_int_details("rollout", Some(&ctx), None).await.unwrap_err();
    let float = flags.get_float_details("rollout", Some(&ctx), None).await.unwrap_err();
    let st = flags.get_struct_details::<StructValue>("rollout", Some(&ctx), None).await;
    for code in [int.code, float.code, st.unwrap_err().code] {
        assert_eq!(code, EvaluationErrorCode::TypeMismatch);
    }
    assert!(int.message.unwrap().contains("not an integer flag"));
}

#[tokio::test]
async fn variants_agree_with_direct_evaluation_and_booleans_follow_the_control_rule() {
    let client = baseplate_client(Collect::new(Encoding::Json)).await;
    let flags = flags(ExperimentsProvider::new(client.clone())).await;
    let direct = client.request();
    let mut seen = std::collections::BTreeSet::new();
    for i in 0..40 {
        let id = format!("t2_{i}");
        let expected =
            direct.variant("split", &Inputs::new().with("user_id", id.as_str())).unwrap();
        let s = flags.get_string_details("split", Some(&user(&id)), None).await.unwrap();
        assert_eq!(Some(s.value.as_str()), expected);
        assert_eq!(s.variant.as_deref(), expected);
        assert_eq!(s.reason, Some(EvaluationReason::Split));
        let b = flags.get_bool_details("split", Some(&user(&id)), None).await.unwrap();
        assert_eq!(b.value, expected == Some("treatment"), "control_1 is a control name");
        assert_eq!(b.variant.as_deref(), expected);
        seen.insert(s.value);
    }
    assert_eq!(seen.into_iter().collect::<Vec<_>>(), ["control_1", "treatment"]);

    // Other control names: `treatment` is now off, `control_1` on.
    let flags = flags_with(&client, |b| b.control_names(["treatment"])).await;
    for i in 0..10 {
        let id = format!("t2_{i}");
        let expected =
            direct.variant("split", &Inputs::new().with("user_id", id.as_str())).unwrap();
        let b = flags.get_bool_value("split", Some(&user(&id)), None).await.unwrap();
        assert_eq!(b, expected == Some("control_1"));
    }
}

async fn flags_with(
    client: &ExperimentsClient,
    f: impl FnOnce(experiments_openfeature::ProviderBuilder) -> experiments_openfeature::ProviderBuilder,
) -> Client {
    flags(f(ExperimentsProvider::builder(client.clone())).build()).await
}

#[tokio::test]
async fn reasons_come_from_the_engines_steps() {
    let flags =
        flags(ExperimentsProvider::new(baseplate_client(Collect::new(Encoding::Json)).await)).await;
    let vip = user("t2_vip");
    // An override chose: TARGETING_MATCH (a simple experiment's tree, an r2 parameter).
    for (flag, variant) in [("overridden", "vip"), ("r2_override", "other")] {
        let d = flags.get_string_details(flag, Some(&vip), None).await.unwrap();
        assert_eq!((d.value.as_str(), d.reason), (variant, Some(EvaluationReason::TargetingMatch)));
    }
    // Bucketing chose: SPLIT.
    let d = flags.get_bool_details("rollout", Some(&vip), None).await.unwrap();
    assert_eq!(
        (d.value, d.variant.as_deref(), d.reason),
        (true, Some("on"), Some(EvaluationReason::Split))
    );
    // global_override: STATIC.
    let d = flags.get_string_details("forced", Some(&vip), None).await.unwrap();
    assert_eq!((d.value.as_str(), d.reason), ("treatment", Some(EvaluationReason::Static)));
    // Disabled, expired, forced off: DISABLED (booleans are false, strings have no variant).
    for flag in ["disabled", "expired", "r2_off"] {
        let d = flags.get_bool_details(flag, Some(&vip), None).await.unwrap();
        assert_eq!((d.value, d.variant, d.reason), (false, None, Some(EvaluationReason::Disabled)));
        let e = flags.get_string_details(flag, Some(&vip), None).await.unwrap_err();
        assert_eq!(e.code, EvaluationErrorCode::General(NO_VARIANT.into()), "{flag}");
        assert_eq!(no_variant_reason(&e), Some(EvaluationReason::Disabled), "{e:?}");
    }
    // Not targeted: DEFAULT; targeted with a custom field: SPLIT.
    let d = flags.get_bool_details("targeted", Some(&vip), None).await.unwrap();
    assert_eq!((d.value, d.reason), (false, Some(EvaluationReason::Default)));
    let us = user("t2_vip").with_custom_field("country", "US");
    let d = flags.get_bool_details("targeted", Some(&us), None).await.unwrap();
    assert_eq!((d.value, d.reason), (true, Some(EvaluationReason::Split)));
    let e = flags.get_string_details("targeted", Some(&vip), None).await.unwrap_err();
    assert_eq!(no_variant_reason(&e), Some(EvaluationReason::Default));
}

/// No variant is an error for strings, so `get_string_value(..).unwrap_or(default)` gives the
/// caller's default; `NoVariant::Value` trades that for `Ok` with the reason in the details.
#[tokio::test]
async fn no_variant_lets_the_caller_fall_back_to_its_default() {
    let client = baseplate_client(Collect::new(Encoding::Json)).await;
    let flags = flags(ExperimentsProvider::new(client.clone())).await;
    let ctx = user("t2_1");
    let v = flags.get_string_value("disabled", Some(&ctx), None).await;
    assert_eq!(v.clone().unwrap_or_else(|_| "my default".into()), "my default");
    assert!(v.unwrap_err().message.unwrap().starts_with("DISABLED: "));
    // A variant is returned as is.
    let v = flags.get_string_value("rollout", Some(&ctx), None).await;
    assert_eq!(v.unwrap_or_else(|_| "my default".into()), "on");

    let flags = flags_with(&client, |b| b.no_variant(NoVariant::Value(String::new()))).await;
    let d = flags.get_string_details("disabled", Some(&ctx), None).await.unwrap();
    assert_eq!(
        (d.value.as_str(), d.variant, d.reason),
        ("", None, Some(EvaluationReason::Disabled))
    );
    let d = flags.get_string_details("targeted", Some(&ctx), None).await.unwrap();
    assert_eq!((d.value.as_str(), d.reason), ("", Some(EvaluationReason::Default)));
}

#[tokio::test]
async fn flag_metadata_names_the_experiment() {
    let flags =
        flags(ExperimentsProvider::new(baseplate_client(Collect::new(Encoding::Json)).await)).await;
    let d = flags.get_string_details("rollout", Some(&user("t2_1")), None).await.unwrap();
    let m = &d.flag_metadata.values;
    assert_eq!(m["id"], FlagMetadataValue::Int(9));
    assert_eq!(
        m["version"],
        FlagMetadataValue::Int(6),
        "experiment_version of a simple experiment"
    );
    assert_eq!(m["owner"], FlagMetadataValue::String("growth".into()));
    assert_eq!(m["config_version"], FlagMetadataValue::Int(1));
    let d = flags.get_string_details("r2_override", Some(&user("t2_vip")), None).await.unwrap();
    assert_eq!(d.flag_metadata.values["version"], FlagMetadataValue::String("2".into()), "r2");
    let d = flags.get_bool_details("disabled", Some(&user("t2_1")), None).await.unwrap();
    assert_eq!(d.flag_metadata.values["id"], FlagMetadataValue::Int(4), "with no variant too");
}

#[tokio::test]
async fn a_missing_targeting_key_is_an_error_only_when_bucketing_needs_it() {
    let flags =
        flags(ExperimentsProvider::new(baseplate_client(Collect::new(Encoding::Json)).await)).await;
    let anonymous = EvaluationContext::default().with_custom_field("logged_in", false);
    for flag in ["rollout", "split"] {
        let e = flags.get_bool_details(flag, Some(&anonymous), None).await.unwrap_err();
        assert_eq!(e.code, EvaluationErrorCode::TargetingKeyMissing, "{flag}");
        let e = flags.get_string_details(flag, Some(&anonymous), None).await.unwrap_err();
        assert_eq!(e.code, EvaluationErrorCode::TargetingKeyMissing, "{flag}");
    }
    // The bucketing field given as a custom field instead.
    let by_field = EvaluationContext::default().with_custom_field("user_id", "t2_1");
    assert!(flags.get_bool_value("rollout", Some(&by_field), None).await.unwrap());
    let device = EvaluationContext::default().with_custom_field("device_id", "d-1");
    assert!(flags.get_bool_value("by_device", Some(&device), None).await.unwrap());
    // Not needed: a global override and a disabled experiment decide without bucketing.
    assert_eq!(
        flags.get_string_value("forced", Some(&anonymous), None).await.unwrap(),
        "treatment"
    );
    assert!(!flags.get_bool_value("disabled", Some(&anonymous), None).await.unwrap());
    // A targeting key, but the experiment buckets on another field that is missing: no variant.
    let d = flags.get_bool_details("by_device", Some(&user("t2_1")), None).await.unwrap();
    assert_eq!((d.value, d.reason), (false, Some(EvaluationReason::Default)));
    let e = flags.get_bool_details("by_device", Some(&anonymous), None).await.unwrap_err();
    assert_eq!(e.code, EvaluationErrorCode::TargetingKeyMissing);
}

#[tokio::test]
async fn invalid_experiments_contexts_and_engine_errors() {
    let flags =
        flags(ExperimentsProvider::new(baseplate_client(Collect::new(Encoding::Json)).await)).await;
    let ctx = user("t2_1");
    let e = flags.get_string_details("broken", Some(&ctx), None).await.unwrap_err();
    assert_eq!(e.code, EvaluationErrorCode::ParseError);
    assert!(e.message.unwrap().contains("num_buckets"));
    // A structure the provider cannot read.
    let odd = user("t2_1").with_custom_field("odd", EvaluationContextFieldValue::new_struct(1_u8));
    let e = flags.get_string_details("rollout", Some(&odd), None).await.unwrap_err();
    assert_eq!(e.code, EvaluationErrorCode::InvalidContext);
    // Structures it can: targeting reads them as JSON.
    let tags = user("t2_1").with_custom_field(
        "tags",
        EvaluationContextFieldValue::new_struct(StructValue::default().with_field("a", 1)),
    );
    assert_eq!(flags.get_string_value("rollout", Some(&tags), None).await.unwrap(), "on");
    // Python raised (`'>' not supported between 'str' and 'int'`): GENERAL.
    let karma = user("t2_1").with_custom_field("karma", "lots");
    let e = flags.get_string_details("karma_gate", Some(&karma), None).await.unwrap_err();
    assert_eq!(e.code, EvaluationErrorCode::General("GENERAL".into()));
    assert!(e.message.unwrap().starts_with("TypeError"));
    let karma = user("t2_1").with_custom_field("karma", 10);
    assert_eq!(flags.get_string_value("karma_gate", Some(&karma), None).await.unwrap(), "on");
}

/// Outside a request scope every evaluation is a request of its own (one `choose` each);
/// inside `RequestExperiments::scope` they share its dedupe and correlation id.
#[tokio::test]
async fn exposure_goes_through_the_clients_pipeline() {
    let sink = Collect::new(Encoding::Json);
    let client = baseplate_client(Arc::clone(&sink)).await;
    let flags = Arc::new(flags(ExperimentsProvider::new(client.clone())).await);
    let ctx = user("t2_1");
    for _ in 0..3 {
        assert_eq!(flags.get_string_value("rollout", Some(&ctx), None).await.unwrap(), "on");
    }
    flush(&client).await;
    let events = sink.take();
    assert_eq!(events.len(), 3, "{events:?}");
    assert!(events.iter().all(|e| e["event_type"] == "choose"
        && e["experiment"]["name"] == "rollout"
        && e["correlation_id"].is_null()));

    // The same evaluations in one request: one event, with the request's correlation id.
    let id = CorrelationId::from_request_id("req-42").unwrap();
    let request = Arc::new(client.request_builder().correlation_id(id).start());
    let inner = Arc::clone(&flags);
    Arc::clone(&request)
        .scope(async move {
            for _ in 0..3 {
                let v = inner.get_bool_value("rollout", Some(&user("t2_1")), None).await;
                assert!(v.unwrap());
                let v = inner.get_string_value("split", Some(&user("t2_1")), None).await;
                assert!(v.is_ok());
            }
        })
        .await;
    // The request's own calls share the dedupe too: nothing more for `rollout`.
    request.variant("rollout", &Inputs::new().with("user_id", "t2_1")).unwrap();
    flush(&client).await;
    let events = sink.take();
    assert_eq!(events.len(), 2, "one choose per experiment: {events:?}");
    assert!(events.iter().all(|e| e["correlation_id"] == "req-42"));
    let names: Vec<&str> =
        events.iter().map(|e| e["experiment"]["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["rollout", "split"]);
    // The event is the one the client logs for the same call.
    let direct = client.request();
    direct.variant("rollout", &Inputs::new().with("user_id", "t2_1")).unwrap();
    flush(&client).await;
    let mine = &sink.take()[0];
    for field in
        ["event_type", "experiment", "variant", "user_id", "bucketing", "is_override", "inputs"]
    {
        assert!(mine.get(field).is_some(), "{field}");
        assert_eq!(mine.get(field), events[0].get(field), "{field}");
    }
}

#[tokio::test]
async fn decider_dynamic_configs_are_typed() {
    let flags =
        flags(ExperimentsProvider::new(decider_client(Collect::new(Encoding::Json)).await)).await;
    let ctx = user("t2_1");
    let d = flags.get_int_details("page_size", Some(&ctx), None).await.unwrap();
    assert_eq!((d.value, d.reason.clone()), (25, Some(EvaluationReason::Static)));
    assert_eq!(d.flag_metadata.values["id"], FlagMetadataValue::Int(30));
    assert_eq!(d.flag_metadata.values["version"], FlagMetadataValue::Int(3));
    assert_eq!(d.flag_metadata.values["owner"], FlagMetadataValue::String("feeds".into()));
    // An integer reads as a float too (the wrapper's `get_float`), not the other way round.
    assert_eq!(flags.get_float_value("page_size", Some(&ctx), None).await.unwrap(), 25.0);
    assert_eq!(flags.get_float_value("ratio", Some(&ctx), None).await.unwrap(), 0.25);
    let e = flags.get_int_details("ratio", Some(&ctx), None).await.unwrap_err();
    assert_eq!(e.code, EvaluationErrorCode::TypeMismatch);
    assert_eq!(flags.get_string_value("greeting", Some(&ctx), None).await.unwrap(), "hello");
    assert!(flags.get_bool_value("beta", Some(&ctx), None).await.unwrap());
    let layout: StructValue = flags.get_struct_value("layout", Some(&ctx), None).await.unwrap();
    assert_eq!(
        layout,
        StructValue::default()
            .with_field("columns", 3.0) // numbers as floats, as the wrapper's `get_map`
            .with_field("name", "grid")
            .with_field("tags", vec![Value::from("a"), Value::from(1.0)])
            .with_field("inner", StructValue::default().with_field("x", 1.5)),
        "null members left out"
    );
    // The wrong type: TYPE_MISMATCH, whichever way.
    for (flag, code) in [
        (flags.get_string_details("page_size", Some(&ctx), None).await.map(|_| ()), "string"),
        (flags.get_bool_details("greeting", Some(&ctx), None).await.map(|_| ()), "bool"),
        (flags.get_int_details("beta", Some(&ctx), None).await.map(|_| ()), "int"),
        (
            flags.get_struct_details::<StructValue>("greeting", Some(&ctx), None).await.map(|_| ()),
            "struct",
        ),
        (flags.get_int_details("new_feed", Some(&ctx), None).await.map(|_| ()), "experiment"),
    ] {
        assert_eq!(flag.unwrap_err().code, EvaluationErrorCode::TypeMismatch, "{code}");
    }
    // Disabled: no value, the caller's default (NO_VARIANT, DISABLED).
    let e = flags.get_int_details("off_config", Some(&ctx), None).await.unwrap_err();
    assert_eq!(no_variant_reason(&e), Some(EvaluationReason::Disabled));
    // A broken entry: PARSE_ERROR.
    let e = flags.get_int_details("broken", Some(&ctx), None).await.unwrap_err();
    assert_eq!(e.code, EvaluationErrorCode::ParseError);
    // A mistyped keyword makes every decider call fail, as in the wrapper: INVALID_CONTEXT.
    let bad = user("t2_1").with_custom_field("logged_in", "yes");
    let e = flags.get_int_details("page_size", Some(&bad), None).await.unwrap_err();
    assert_eq!(e.code, EvaluationErrorCode::InvalidContext);
}

#[tokio::test]
async fn decider_range_features_expose_through_the_wrapper() {
    let sink = Collect::new(Encoding::V2);
    let client = decider_client(Arc::clone(&sink)).await;
    let flags = Arc::new(flags(ExperimentsProvider::new(client.clone())).await);
    let mut seen = std::collections::BTreeSet::new();
    let mut exposed = 0;
    for i in 0..30 {
        let id = format!("t2_{i}");
        let direct = client
            .decider_request(experiments_sdk::DeciderContext::builder().user_id(&id).build(), None);
        let expected = direct.get_variant_without_expose("new_feed").map(str::to_owned);
        let d = flags.get_string_details("new_feed", Some(&user(&id)), None).await.unwrap();
        assert_eq!(Some(&d.value), expected.as_ref());
        assert_eq!(d.reason, Some(EvaluationReason::Split));
        let b = flags.get_bool_details("new_feed", Some(&user(&id)), None).await.unwrap();
        assert_eq!(b.value, expected.as_deref() == Some("treatment_1"));
        exposed += 2;
        seen.insert(d.value);
    }
    assert_eq!(seen.len(), 2);
    let d = flags.get_string_details("new_feed", Some(&user("t2_vip")), None).await.unwrap();
    assert_eq!(
        (d.value.as_str(), d.reason),
        ("treatment_1", Some(EvaluationReason::TargetingMatch))
    );
    exposed += 1;
    let d = flags.get_bool_details("new_feed", Some(&user("t2_none")), None).await.unwrap();
    assert_eq!((d.value, d.reason), (false, Some(EvaluationReason::TargetingMatch)), "$none");
    let d = flags.get_bool_details("dark", Some(&user("t2_1")), None).await.unwrap();
    assert_eq!((d.value, d.reason), (false, Some(EvaluationReason::Disabled)));
    let e = flags.get_string_details("dark", Some(&user("t2_1")), None).await.unwrap_err();
    assert_eq!(no_variant_reason(&e), Some(EvaluationReason::Disabled));
    // The bucketing field: missing without a targeting key is an error, with one no variant.
    let anonymous = EvaluationContext::default().with_custom_field("country_code", "US");
    let e = flags.get_bool_details("new_feed", Some(&anonymous), None).await.unwrap_err();
    assert_eq!(e.code, EvaluationErrorCode::TargetingKeyMissing);
    let d = flags.get_bool_details("by_device", Some(&user("t2_1")), None).await.unwrap();
    assert_eq!((d.value, d.reason), (false, Some(EvaluationReason::Default)));
    let with_device = user("t2_1").with_custom_field("device_id", "d-1");
    assert!(flags.get_bool_value("by_device", Some(&with_device), None).await.unwrap());
    exposed += 1;
    flush(&client).await;
    let events = sink.take();
    assert_eq!(events.len(), exposed, "one exposure per evaluation with a variant");
    assert!(events.iter().all(|e| e["2"]["str"] == "expose"));

    // In a request scope: the request's correlation id (a UUID) on every exposure.
    let uuid = "5b6e7c1a-7b0e-4c4e-9f0a-2d6c2f1e9a11";
    let request = Arc::new(
        client
            .request_builder()
            .correlation_id(CorrelationId::from_request_id(uuid).unwrap())
            .start(),
    );
    let inner = Arc::clone(&flags);
    request
        .scope(async move {
            for _ in 0..2 {
                inner.get_string_value("new_feed", Some(&user("t2_vip")), None).await.unwrap();
            }
        })
        .await;
    flush(&client).await;
    let events = sink.take();
    assert_eq!(events.len(), 2, "the wrapper's get_variant does not dedupe");
    assert!(events.iter().all(|e| e["8"]["str"] == uuid), "{events:?}");
}

#[tokio::test]
async fn status_and_events_follow_the_config_store() {
    let client = ExperimentsClient::builder()
        .config_source(Document(None))
        .startup(Startup::Empty, Duration::from_secs(1))
        .sink_settings(experiments_sdk::SinkSettings::None)
        .build()
        .await
        .unwrap();
    let provider = ExperimentsProvider::new(client.clone());
    let mut events = provider.events();
    assert_eq!(provider.status(), ProviderStatus::NotReady);
    assert_eq!(provider.metadata().name, PROVIDER_NAME);
    let flags = flags(provider.clone()).await;
    let e = flags.get_string_details("rollout", Some(&user("t2_1")), None).await.unwrap_err();
    assert_eq!(e.code, EvaluationErrorCode::ProviderNotReady);
    assert_eq!(events.try_recv(), None);

    let store = client.store();
    store.record_failure(LoadFailure::new(FailureKind::Missing, "no such file"));
    assert_eq!(provider.status(), ProviderStatus::Error);
    assert_eq!(events.recv().await, ProviderEvent::Error { message: "no such file".into() });

    store.offer_bytes(BASEPLATE.as_bytes(), Origin::Other("test".into())).unwrap();
    assert_eq!(provider.status(), ProviderStatus::Ready);
    assert_eq!(events.recv().await, ProviderEvent::ConfigurationChanged { version: 1 });
    assert_eq!(events.recv().await, ProviderEvent::Ready);
    assert_eq!(flags.get_string_value("rollout", Some(&user("t2_1")), None).await.unwrap(), "on");

    store.record_failure(LoadFailure::new(FailureKind::InvalidJson, "truncated"));
    assert_eq!(provider.status(), ProviderStatus::STALE);
    assert_eq!(events.recv().await, ProviderEvent::Stale);
    // Stale still evaluates with the last good config.
    assert_eq!(flags.get_string_value("rollout", Some(&user("t2_1")), None).await.unwrap(), "on");

    store.offer_bytes(b"{}", Origin::Other("test".into())).unwrap();
    assert_eq!(events.recv().await, ProviderEvent::ConfigurationChanged { version: 2 });
    assert_eq!(events.recv().await, ProviderEvent::Ready);
    assert_eq!(events.try_recv(), None);
    let e = flags.get_string_details("rollout", Some(&user("t2_1")), None).await.unwrap_err();
    assert_eq!(e.code, EvaluationErrorCode::FlagNotFound, "the new config has no experiments");

    // Waiting: an event arrives when the store changes later.
    let waiter = tokio::spawn(async move { events.recv().await });
    tokio::time::sleep(Duration::from_millis(20)).await;
    store.offer_bytes(BASEPLATE.as_bytes(), Origin::Other("test".into())).unwrap();
    let got = tokio::time::timeout(Duration::from_secs(5), waiter).await.unwrap().unwrap();
    assert_eq!(got, ProviderEvent::ConfigurationChanged { version: 3 });
}

/// The global singleton, as services set it up (the only test of this binary that uses it).
#[tokio::test]
async fn the_global_api_uses_the_provider() {
    let client = baseplate_client(Collect::new(Encoding::Json)).await;
    OpenFeature::singleton_mut().await.set_provider(ExperimentsProvider::new(client)).await;
    assert_eq!(OpenFeature::singleton().await.provider_metadata().await.name, PROVIDER_NAME);
    let flags = OpenFeature::singleton().await.create_client();
    let ctx = user("t2_1");
    assert_eq!(flags.get_string_value("rollout", Some(&ctx), None).await.unwrap(), "on");
    assert!(flags.get_bool_value("rollout", Some(&ctx), None).await.unwrap());
    // No variant: the caller's default.
    let v = flags.get_string_value("disabled", Some(&ctx), None).await;
    assert_eq!(v.unwrap_or_else(|_| "fallback".into()), "fallback");
    OpenFeature::singleton_mut().await.shutdown().await;
}

/// A scoped request that began before a config change keeps its snapshot for baseplate flags.
#[tokio::test]
async fn a_scoped_request_keeps_its_snapshot() {
    let client = ExperimentsClient::builder()
        .config_source(Document(Some(BASEPLATE)))
        .dialect(Some(Dialect::Baseplate))
        .sink_settings(experiments_sdk::SinkSettings::None)
        .build()
        .await
        .unwrap();
    let flags = Arc::new(flags(ExperimentsProvider::new(client.clone())).await);
    let request = Arc::new(client.request());
    client.store().offer_bytes(b"{\"x\": {\"type\": \"r2\"}}", Origin::Other("t".into())).unwrap();
    let inner = Arc::clone(&flags);
    let (old, meta) = request
        .scope(async move {
            let d = inner.get_string_details("rollout", Some(&user("t2_1")), None).await.unwrap();
            (d.value, d.flag_metadata.values["config_version"].clone())
        })
        .await;
    assert_eq!((old.as_str(), meta), ("on", FlagMetadataValue::Int(1)));
    let e = flags.get_string_details("rollout", Some(&user("t2_1")), None).await.unwrap_err();
    assert_eq!(e.code, EvaluationErrorCode::FlagNotFound, "outside: the new config");
}

/// `evaluate_all_without_exposure` answers what `evaluate_all` answers, flag by flag, and
/// logs no exposure, in both dialects; `evaluate_all` logs what the client's own calls for
/// every flag log.
#[tokio::test]
async fn evaluating_every_flag_without_exposure_logs_nothing() {
    type Outcome = Result<(Option<serde_json::Value>, Option<String>, EvaluationReason), String>;
    fn outcomes(all: Vec<(String, Result<Evaluation, EvaluationError>)>) -> Vec<(String, Outcome)> {
        let outcome = |r: Result<Evaluation, EvaluationError>| {
            r.map(|e| (e.value, e.variant, e.reason)).map_err(|e| format!("{:?}", e.code))
        };
        all.into_iter().map(|(key, r)| (key, outcome(r))).collect()
    }
    for decider in [false, true] {
        let sink = Collect::new(if decider { Encoding::V2 } else { Encoding::Json });
        let client = if decider {
            decider_client(Arc::clone(&sink)).await
        } else {
            baseplate_client(Arc::clone(&sink)).await
        };
        let provider = ExperimentsProvider::new(client.clone());
        let mut exposures = 0;
        for i in 0..20 {
            let id = format!("t2_{i}");
            let quiet = outcomes(provider.evaluate_all_without_exposure(&user(&id)));
            flush(&client).await;
            assert_eq!(sink.take().len(), 0, "decider={decider}: no exposure");
            let logged = outcomes(provider.evaluate_all(&user(&id)));
            assert_eq!(quiet, logged, "decider={decider}");
            assert!(quiet.len() > 3, "{quiet:?}");
            flush(&client).await;
            let by_provider = sink.take().len();
            // The same flags through the client's own calls.
            if decider {
                let ctx = experiments_sdk::DeciderContext::builder().user_id(&id).build();
                let request = client.decider_request(ctx, None);
                for (key, _) in &logged {
                    request.get_variant(key, &serde_json::Map::new());
                }
            } else {
                let inputs = Inputs::new().with("user_id", id.as_str());
                for (key, _) in &logged {
                    let _ = client.request().variant(key, &inputs);
                }
            }
            flush(&client).await;
            assert_eq!(by_provider, sink.take().len(), "decider={decider}: {id}");
            exposures += by_provider;
        }
        assert!(exposures >= 20, "decider={decider}: {exposures}");
    }
}
