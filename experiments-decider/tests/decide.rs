//! The decision pipeline, step by step (SPEC §5–§9, §11), events (§10) and the calls built
//! on decisions. The conformance vectors cover the same ground at scale; these tests name
//! each rule.

use experiments_decider::{
    Context, DecideError, DecisionKind, ErrorKind, EventStamp, Explanation, Manifest, Uuid,
    ValueKind,
};
use serde_json::{Value, json};

fn feature(id: u64, name: &str, variants: Value) -> Value {
    json!({"id": id, "name": name, "enabled": true, "version": "1", "type": "range_variant",
           "emit_event": true, "start_ts": 10, "stop_ts": 20,
           "experiment": {"experiment_version": 4, "shuffle_version": 2, "bucket_val": "user_id",
                          "variants": variants}})
}

fn all(name: &str) -> Value {
    json!([{"name": name, "range_start": 0.0, "range_end": 1.0}])
}

fn load(doc: Value) -> Manifest {
    let m = Manifest::from_str(&doc.to_string()).unwrap_or_else(|e| panic!("{e}"));
    assert!(m.errors().is_empty(), "{:?}", m.errors());
    m
}

fn user(id: &str) -> Context {
    Context::builder().user_id(id).build()
}

fn kinds(m: &Manifest, name: &str, ctx: &Context) -> (Option<String>, Vec<(DecisionKind, String)>) {
    let d = m.choose(name, ctx).unwrap_or_else(|e| panic!("{e}"));
    let events = d.events().map(|e| (e.kind(), e.feature().name().to_owned())).collect();
    (d.variant().map(str::to_owned), events)
}

#[test]
fn bucketing_hashes_id_name_shuffle_version_and_the_serde_formatted_value() {
    // python3: int(hashlib.sha1(b"7.f.2true").hexdigest(), 16) % 1000 == 432, and so on.
    for (value, bucket) in
        [(json!(true), 432), (json!(1.0), 806), (json!(1e16), 681), (json!(-5), 573)]
    {
        let mut f = feature(
            7,
            "f",
            json!([{"name": "hit", "range_start": bucket as f64 / 1000.0,
                                            "range_end": (bucket + 1) as f64 / 1000.0}]),
        );
        f["experiment"]["bucket_val"] = json!("v");
        let m = load(json!({"f": f}));
        let ctx = Context::from_json(
            json!({"other_fields": {"v": value}}).as_object().unwrap_or(&Default::default()),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(m.choose("f", &ctx).ok().and_then(|d| d.variant()), Some("hit"), "{value}");
    }
}

#[test]
fn disabled_features_decide_nothing_not_even_overrides() {
    let mut f = feature(1, "f", all("a"));
    f["enabled"] = json!(false);
    f["experiment"]["overrides"] = json!([{"a": {"ALL": []}}]);
    let m = load(json!({"f": f}));
    assert_eq!(kinds(&m, "f", &Context::new()), (None, vec![]));
}

#[test]
fn overrides_first_true_tree_wins_and_stop_at_none_unknown_trees_and_unknown_names() {
    let ov = |overrides: Value| {
        let mut f = feature(
            1,
            "f",
            json!([{"name": "a", "range_start": 0.0, "range_end": 1.0},
                                           {"name": "b", "range_start": 0.0, "range_end": 0.0}]),
        );
        f["experiment"]["overrides"] = overrides;
        f["experiment"]["targeting"] = json!({"EQ": {"field": "user_id", "value": "nobody"}});
        load(json!({"f": f}))
    };
    let yes = json!({"ALL": []});
    let unknown = json!({"EQ": {"field": "missing", "value": 1}});
    let ctx = user("t2_x");
    // Overrides beat targeting; one Override event.
    let m = ov(json!([{"b": yes}]));
    assert_eq!(
        kinds(&m, "f", &ctx),
        (Some("b".into()), vec![(DecisionKind::Override, "f".into())])
    );
    // `$none`: no variant, no events.
    let m = ov(json!([{"$none": yes}, {"b": yes}]));
    assert_eq!(kinds(&m, "f", &ctx), (None, vec![]));
    // A name that is not a variant, or an unknown tree, ends the step: later overrides are not
    // tried and targeting decides (here: not targeted).
    for first in [json!({"nope": yes}), json!({"b": unknown})] {
        let m = ov(json!([first, {"b": yes}]));
        assert_eq!(kinds(&m, "f", &ctx), (None, vec![]));
    }
    // An override event needs the bucketing value; without emit_event it does not.
    let m = ov(json!([{"b": yes}]));
    let err = m.choose("f", &Context::new()).err();
    assert_eq!(err, Some(DecideError::MissingBucketVal));
}

#[test]
fn targeting_that_does_not_match_stops_before_bucketing() {
    let mut f = feature(1, "f", all("a"));
    f["experiment"]["targeting"] = json!({"EQ": {"field": "country_code", "value": "US"}});
    let m = load(json!({"f": f}));
    // No user_id, but bucketing is never reached: no error.
    assert_eq!(kinds(&m, "f", &Context::new()), (None, vec![]));
    let us = Context::builder().country_code("US").build();
    let err = m.choose("f", &us).err();
    assert_eq!(err, Some(DecideError::MissingBucketingField("user_id".into())));
    assert_eq!(err.map(|e| e.kind()), Some(ErrorKind::Decision));
}

#[test]
fn holdout_parents_exclude_continue_or_do_nothing() {
    let with_parent = |parent_variant: &str| {
        let mut child = feature(2, "child", all("treatment"));
        child["parent_hg_name"] = json!("hg_key");
        load(json!({"hg_key": feature(1, "hg", all(parent_variant)), "child": child}))
    };
    let ctx = user("t2_x");
    let m = with_parent("holdout");
    assert_eq!(kinds(&m, "child", &ctx), (None, vec![(DecisionKind::Holdout, "hg".into())]));
    let m = with_parent("control_1");
    assert_eq!(
        kinds(&m, "child", &ctx),
        (
            Some("treatment".into()),
            vec![(DecisionKind::Holdout, "hg".into()), (DecisionKind::FracAvail, "child".into())]
        )
    );
    let m = with_parent("Holdout");
    assert_eq!(
        kinds(&m, "child", &ctx),
        (Some("treatment".into()), vec![(DecisionKind::FracAvail, "child".into())])
    );
}

#[test]
fn groups_admit_only_the_child_they_chose_and_drop_their_event_otherwise() {
    let doc = |chosen: &str| {
        let mut child = feature(3, "child", all("treatment"));
        child["parent_hg_name"] = json!("hg");
        child["parent_meg_name"] = json!("meg");
        json!({"hg": feature(1, "hg", all("control_1")), "meg": feature(2, "meg", all(chosen)), "child": child})
    };
    let ctx = user("t2_x");
    let m = load(doc("child"));
    assert_eq!(
        kinds(&m, "child", &ctx),
        (
            Some("treatment".into()),
            vec![
                (DecisionKind::Holdout, "hg".into()),
                (DecisionKind::MutexGroup, "meg".into()),
                (DecisionKind::FracAvail, "child".into())
            ]
        )
    );
    // Another child chosen: no variant; the group's event is dropped, the holdout's kept.
    let m = load(doc("sibling"));
    assert_eq!(kinds(&m, "child", &ctx), (None, vec![(DecisionKind::Holdout, "hg".into())]));
}

#[test]
fn events_serialize_byte_for_byte() {
    let m = load(json!({"f": feature(7, "f", all("a\"b"))}));
    let ctx = Context::builder()
        .user_id("t2_x")
        .logged_in(true)
        .app_name("ios")
        .build_number(12)
        .device_id("{6873B340-F6F3-40F6-94D6-1F2AACF249D4}")
        .country_code("US")
        .correlation_id("not a uuid")
        .build();
    let d = m.choose("f", &ctx).unwrap_or_else(|e| panic!("{e}"));
    let e = d.event(0).unwrap_or_else(|| panic!("no event"));
    let stamp = EventStamp {
        client_ts_ms: 1_700_000_000_123,
        uuid: Uuid::from_u128(1),
        correlation_fallback: Uuid::from_u128(2),
    };
    assert_eq!(
        e.to_v2_json(&stamp),
        concat!(
            r#"{"1":{"str":"experiment"},"2":{"str":"expose"},"3":{"str":"user_id"},"#,
            r#""5":{"i64":1700000000123},"6":{"str":"00000000-0000-0000-0000-000000000001"},"#,
            r#""8":{"str":"00000000-0000-0000-0000-000000000002"},"#,
            r#""107":{"rec":{"2":{"str":"ios"},"4":{"i32":12}}},"#,
            r#""108":{"rec":{"2":{"str":"6873b340-f6f3-40f6-94d6-1f2aacf249d4"}}},"#,
            r#""112":{"rec":{"1":{"str":"t2_x"},"3":{"tf":1}}},"#,
            r#""129":{"rec":{"1":{"i64":7},"2":{"str":"f"},"4":{"str":"a\"b"},"5":{"i64":10},"#,
            r#""6":{"i64":20},"7":{"str":"user_id"},"8":{"str":"4"},"9":{"str":"t2_x"},"10":{"tf":0}}},"#,
            r#""500":{"rec":{"1":{"str":"US"}}}}"#
        )
    );
    assert_eq!(e.exposure_key(), "f:4:a\"b:t2_x");
    assert_eq!(e.legacy(), "0::::7::::f::::4::::a\"b::::t2_x::::user_id::::10::::20");
    // A correlation id that is a UUID in any accepted form is normalised and used.
    let ctx = Context::builder()
        .user_id("t2_x")
        .correlation_id("urn:uuid:6873B340-F6F3-40F6-94D6-1F2AACF249D4")
        .build();
    let d = m.choose("f", &ctx).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        d.event(0)
            .map(|e| e.to_v2_json(&stamp))
            .unwrap_or_default()
            .contains(r#""8":{"str":"6873b340-f6f3-40f6-94d6-1f2aacf249d4"}"#)
    );
}

#[test]
fn timestamps_beyond_i64_make_events_malformed_but_not_eventless_decisions() {
    let mut f = feature(1, "f", all("a"));
    f["stop_ts"] = json!(u64::MAX);
    let mut quiet = f.clone();
    quiet["name"] = json!("quiet");
    quiet["emit_event"] = json!(false);
    let m = load(json!({"f": f, "quiet": quiet}));
    assert_eq!(m.choose("f", &user("t2_x")).err(), Some(DecideError::MalformedEvent));
    assert_eq!(m.choose("quiet", &user("t2_x")).ok().and_then(|d| d.variant()), Some("a"));
}

#[test]
fn dynamic_configs_and_typed_getters() {
    let dc = |name: &str, value: Value| {
        json!({"id": 1, "name": name, "enabled": true, "version": "1", "type": "dynamic_config",
               "value": value, "experiment": {"experiment_version": 1}})
    };
    let mut off = dc("off", json!(true));
    off["enabled"] = json!(false);
    let mut typed = dc("typed", Value::Null);
    typed.as_object_mut().map(|o| o.remove("value"));
    typed["value_type"] = json!("Text");
    let m =
        load(json!({"b": dc("b", json!(true)), "i": dc("i", json!(7)), "f": dc("f", json!(7.0)),
        "big": dc("big", json!(u64::MAX)), "s": dc("s", json!("x")), "m": dc("m", json!({"a": 1})),
        "off": off, "typed": typed, "r": feature(2, "r", all("a"))}));
    let ctx = user("t2_x");
    assert_eq!(m.get_bool("b", &ctx), Ok(true));
    assert_eq!(m.get_int("i", &ctx), Ok(7));
    assert_eq!(m.get_int("f", &ctx), Err(DecideError::NumberDeserialization));
    assert_eq!(m.get_int("big", &ctx), Err(DecideError::NumberDeserialization));
    assert_eq!(m.get_float("i", &ctx), Ok(7.0));
    assert_eq!(m.get_string("s", &ctx), Ok("x"));
    assert_eq!(m.get_string("typed", &ctx), Ok(""));
    assert_eq!(m.get_map("m", &ctx).map(|o| o.get("a").cloned()), Ok(Some(json!(1))));
    let mismatch = |f: &str, k| Err(DecideError::TypeMismatch { feature: f.into(), expected: k });
    assert_eq!(m.get_bool("off", &ctx), mismatch("off", ValueKind::Boolean));
    assert_eq!(m.get_bool("r", &ctx), mismatch("r", ValueKind::Boolean));
    assert_eq!(m.get_bool("nope", &ctx).map_err(|e| e.kind()), Err(ErrorKind::FeatureNotFound));
    // `choose` of a dynamic config: the value, no variant, no events.
    let d = m.choose("i", &ctx).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((d.variant(), d.value(), d.events().len()), (None, &json!(7), 0));
    // `all_values`: every dynamic config, disabled ones null; `choose_all`: range features.
    let values: Vec<(&str, &Value)> = m.all_values(&ctx).collect();
    assert_eq!(values.len(), 8);
    assert!(values.contains(&("off", &Value::Null)));
    let ranges: Vec<&str> = m.choose_all(&ctx, None).map(|d| d.feature_name()).collect();
    assert_eq!(ranges, ["r"]);
    assert_eq!(m.choose_all(&ctx, Some("device_id")).count(), 0);
    // Features are found by name, not by config key.
    let keyed = load(json!({"key": feature(9, "name", all("a"))}));
    assert!(keyed.choose("key", &ctx).is_err() && keyed.choose("name", &ctx).is_ok());
}

#[test]
fn explanations_report_each_step() {
    let mut child = feature(2, "child", all("treatment"));
    child["parent_hg_name"] = json!("hg");
    child["experiment"]["targeting"] = json!({"EQ": {"field": "user_id", "value": "t2_x"}});
    let m = load(json!({"hg": feature(1, "hg", all("control_1")), "child": child}));
    let mut why = Explanation::default();
    let ctx = user("t2_x");
    let d = m.choose_traced("child", &ctx, &mut why).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(d.variant(), Some("treatment"));
    let steps: Vec<&str> = why.steps.iter().filter_map(|s| s["step"].as_str()).collect();
    assert_eq!(steps, ["targeting", "bucket", "holdout", "bucket"]);
    assert_eq!(why.steps[2]["effect"], json!("continue"));
}
