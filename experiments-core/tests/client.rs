//! Behaviour of the per-request client: events, dedupe, errors, time windows, explanations.

use experiments_core::{
    BucketingEvent, Config, EvalError, EventType, ExperimentClass, Experiments, Explanation,
    Inputs, OwnedEvent, Step, User,
};
use serde_json::json;

const NOW: f64 = 1_700_000_000.0;

fn config() -> Config {
    Config::from_value(json!({
        "simple": {"id": 1, "name": "simple", "owner": "team", "type": "single_variant", "version": "9",
            "start_ts": 0, "stop_ts": NOW,
            "experiment": {"experiment_version": 3, "shuffle_version": 0, "bucket_val": "user_id",
                "variants": [{"name": "control", "size": 0.5}, {"name": "treatment", "size": 0.5}],
                "targeting": {"GT": {"field": "num_votes", "value": 10}},
                "overrides": [{"forced": {"EQ": {"field": "user_id", "value": "t2_vip"}}}]}},
        "r2": {"id": 2, "name": "r2", "owner": "team", "type": "r2", "version": "1",
            "start_ts": 0, "stop_ts": NOW,
            "experiment": {"variants": {"a": 50, "b": 50}, "targeting": {"logged_in": [true]}}},
        "flag": {"id": 3, "name": "flag", "type": "feature_flag", "version": "1",
            "start_ts": 0, "stop_ts": 4102444800u64,
            "experiment": {"variants": {"active": 100}, "targeting": {"logged_in": [true]}}},
        "off": {"id": 4, "name": "off", "type": "r2", "enabled": false, "start_ts": 0, "stop_ts": 4102444800u64}
    }))
    .expect("valid document")
}

fn user(id: &str) -> Inputs {
    Inputs::new().with("user_id", id).with("logged_in", true).with("num_votes", 50)
}

#[test]
fn choose_events_are_deduped_per_request() {
    let config = config();
    let mut events: Vec<OwnedEvent> = Vec::new();
    let mut client = Experiments::new(&config, NOW - 1.0, &mut events);
    let first = client.variant("simple", &user("t2_1"), None).unwrap();
    assert!(first.is_some());
    assert_eq!(client.variant("simple", &user("t2_1"), None).unwrap(), first);
    client.variant("simple", &user("t2_2"), None).unwrap();
    drop(client);
    assert_eq!(events.len(), 2);
    assert_eq!(events[0].event_type, EventType::Choose);
    assert_eq!(events[0].experiment.class, ExperimentClass::SimpleExperiment);
    assert_eq!(events[0].experiment.version, Some(json!(3)));
    // A new request logs again.
    let mut again: Vec<OwnedEvent> = Vec::new();
    Experiments::new(&config, NOW - 1.0, &mut again)
        .variant("simple", &user("t2_1"), None)
        .unwrap();
    assert_eq!(again.len(), 1);
}

#[test]
fn override_false_suppresses_without_recording() {
    let config = config();
    let mut events: Vec<OwnedEvent> = Vec::new();
    let mut client = Experiments::new(&config, NOW - 1.0, &mut events);
    let mut trace = Explanation::default();
    let (v, outcome) = client.variant_traced("r2", &user("t2_1"), Some(false), &mut trace).unwrap();
    assert!(v.is_some());
    assert_eq!(outcome, Some(BucketingEvent::Suppressed));
    // The suppressed call did not record the key: the next call logs.
    client.variant("r2", &user("t2_1"), None).unwrap();
    drop(client);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].experiment.class, ExperimentClass::R2Experiment);
}

#[test]
fn feature_flags_never_log_choose_but_expose_always_logs() {
    let config = config();
    let mut events: Vec<OwnedEvent> = Vec::new();
    let mut client = Experiments::new(&config, NOW, &mut events);
    assert_eq!(client.variant("flag", &user("t2_1"), None).unwrap(), Some("active"));
    assert!(client.expose("off", None, &user("t2_1")));
    assert!(!client.expose("missing", Some("x"), &user("t2_1")));
    drop(client);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].event_type, EventType::Expose);
    assert_eq!(events[0].experiment.class, ExperimentClass::ForcedVariantExperiment);
    assert_eq!(events[0].experiment.id, None);
}

#[test]
fn time_windows_follow_baseplate() {
    let config = config();
    let mut client = Experiments::new(&config, NOW, Vec::<OwnedEvent>::new());
    // At stop_ts a simple experiment is over, an r2 experiment is still active.
    assert_eq!(client.variant("simple", &user("t2_1"), None).unwrap(), None);
    assert!(client.variant("r2", &user("t2_1"), None).unwrap().is_some());
    client.reset(&config, NOW + 1.0);
    assert_eq!(client.variant("r2", &user("t2_1"), None).unwrap(), None);
    assert!(client.is_valid("r2"));
}

#[test]
fn python_exceptions_become_typed_errors() {
    let config = config();
    let mut events: Vec<OwnedEvent> = Vec::new();
    let mut client = Experiments::new(&config, NOW - 1.0, &mut events);
    assert_eq!(client.variant("", &user("t2_1"), None), Err(EvalError::EmptyExperimentName));
    let bad = Inputs::new().with("user_id", "t2_1").with("num_votes", "many");
    let err = client.variant("simple", &bad, None).unwrap_err();
    assert_eq!(err.to_string(), "'>' not supported between instances of 'str' and 'int'");
    assert_eq!(err.python_exception(), "TypeError");
    drop(client);
    assert!(events.is_empty());
}

#[test]
fn explanation_says_why() {
    let config = config();
    let mut client = Experiments::new(&config, NOW - 1.0, Vec::<OwnedEvent>::new());
    let mut trace = Explanation::default();
    let (v, _) = client.variant_traced("simple", &user("t2_vip"), None, &mut trace).unwrap();
    assert_eq!(v, Some("forced"));
    let text: Vec<&str> = trace.steps.iter().map(|s| s.text.as_str()).collect();
    assert!(text.iter().any(|t| t.contains("override forced: matched")), "{text:?}");

    let mut trace = Explanation::default();
    let (v, _) = client.variant_traced("simple", &user("t2_1"), None, &mut trace).unwrap();
    let bucket = trace.steps.iter().find(|s| s.data["step"] == "bucket").expect("a bucket step");
    assert_eq!(bucket.data["num_buckets"], 1000);
    assert_eq!(bucket.data["seed"], "1.simple.0");
    let last = trace.steps.last().unwrap();
    assert_eq!(last.data["variant"], json!(v));

    let mut trace = Explanation::default();
    client.variant_traced("r2", &Inputs::new().with("user_id", "t2_1"), None, &mut trace).unwrap();
    assert!(trace.steps.iter().any(|s| matches!(s.data["step"].as_str(), Some("r2_targeting"))));
    let _ = Step::Targeted { result: true }.to_string();

    let mut trace = Explanation::default();
    client.variant_traced("missing", &user("t2_1"), None, &mut trace).unwrap();
    assert_eq!(trace.steps[0].data["step"], "not_found");
    let bad = Config::parse(
        r#"{"bad": {"id": 1, "name": "bad", "type": "r2", "start_ts": "x", "stop_ts": 1}}"#,
    )
    .unwrap();
    let mut trace = Explanation::default();
    Experiments::new(&bad, NOW, Vec::<OwnedEvent>::new())
        .variant_traced("bad", &user("t2_1"), None, &mut trace)
        .unwrap();
    assert_eq!(trace.steps[0].data["step"], "invalid");
    assert!(trace.steps[0].text.contains("start_ts"), "{}", trace.steps[0].text);
}

#[test]
fn events_serialize_like_the_reference() {
    let config = config();
    let mut events: Vec<OwnedEvent> = Vec::new();
    let mut inputs = Inputs::new().with("num_votes", 50).with("app_name", "ios");
    inputs.merge_user(&User {
        user_id: Some("t2_1".into()),
        logged_in: true,
        cookie_created_timestamp: Some(5),
    });
    let mut client = Experiments::new(&config, NOW - 1.0, &mut events);
    let v = client.variant("simple", &inputs, None).unwrap();
    drop(client);
    let got = serde_json::to_string(&events[0]).unwrap();
    let want = json!({
        "event_type": "choose", "variant": v, "user_id": "t2_1", "logged_in": true,
        "cookie_created_timestamp": 5, "app_name": "ios",
        "experiment": {"class": "SimpleExperiment", "id": 1, "name": "simple", "owner": "team", "version": 3},
        "inputs": {"num_votes": 50, "app_name": "ios", "user_id": "t2_1", "logged_in": true,
                   "cookie_created_timestamp": 5}
    });
    assert_eq!(got, want.to_string());
}

/// Keeping an event copies neither the experiment's attributes nor the inputs: every event
/// of one experiment shares them with the config, and the inputs with the caller's map.
#[test]
fn owned_events_share_experiment_attributes_and_inputs() {
    let config = Config::parse(
        r#"{"e": {"id": 1, "name": "e", "owner": "team", "type": "feature_rollout", "version": "1",
            "start_ts": 0, "stop_ts": 4102444800,
            "experiment": {"experiment_version": 2, "variants": [{"name": "on", "size": 1.0}]}}}"#,
    )
    .unwrap();
    let inputs = Inputs::new().with("user_id", "t2_1");
    let mut events: Vec<OwnedEvent> = Vec::new();
    let mut request = Experiments::new(&config, 1.7e9, &mut events);
    assert_eq!(request.variant("e", &inputs, None).unwrap(), Some("on"));
    request.expose("e", Some("on"), &inputs);
    request.expose("e", Some("on"), &Inputs::new().with("user_id", "t2_2"));
    assert_eq!(events.len(), 3);
    assert!(std::sync::Arc::ptr_eq(&events[0].experiment, &events[2].experiment));
    assert!(std::sync::Arc::ptr_eq(&events[0].experiment, &events[1].experiment));
    assert_eq!(events[0].bucketing_field(), Some("user_id"));
    assert!(events[0].inputs.shares_with(&inputs) && events[1].inputs.shares_with(&inputs));
    assert_eq!(events[0].experiment.version, Some(json!(2)));
    assert_eq!(events[0].experiment.name.as_deref(), Some("e"));
    assert_eq!(events[0].bucketing_value(), Some(&json!("t2_1")));
}
