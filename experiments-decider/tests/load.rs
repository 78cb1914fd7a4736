//! Loading: each entry independently, errors keyed as the reference keys them, the two
//! reference crashes handled, duplicate names, parent bounds, and the text fast path agreeing
//! with the tree path.

use experiments_decider::{
    Deviation, EntryError, InitError, LoadWarning, MAX_PARENT_TREE, Manifest,
};
use serde_json::{Value, json};

fn range(id: u64, name: &str) -> Value {
    json!({"id": id, "name": name, "enabled": true, "version": "1", "type": "range_variant",
           "emit_event": true,
           "experiment": {"experiment_version": 1, "bucket_val": "user_id",
             "variants": [{"name": "control_1", "range_start": 0.0, "range_end": 0.5},
                          {"name": "holdout", "range_start": 0.5, "range_end": 1.0}]}})
}

fn load(doc: &Value) -> Manifest {
    Manifest::from_str(&doc.to_string()).unwrap_or_else(|e| panic!("{e}"))
}

fn keys(m: &Manifest) -> Vec<&str> {
    m.errors().keys().map(String::as_str).collect()
}

#[test]
fn broken_entries_are_left_out_under_their_key_or_name() {
    let mut no_bucket = range(3, "named_c");
    no_bucket["experiment"].as_object_mut().map(|e| e.remove("bucket_val"));
    let doc = json!({
        "good": range(1, "good"),
        "bad_version": {"id": 2, "name": "x", "enabled": true, "version": "2.0.0",
                        "type": "range_variant", "experiment": {"experiment_version": 1}},
        "key_c": no_bucket,
        "bad_type": {"id": 4, "name": "y", "enabled": true, "version": "1", "type": "r2",
                     "experiment": {"experiment_version": 1}},
    });
    let m = load(&doc);
    // Shape errors by config key, conversion errors by name.
    assert_eq!(keys(&m), ["bad_type", "bad_version", "named_c"]);
    assert_eq!(m.errors()["named_c"], EntryError::MissingBucketingField);
    assert!(m.feature("good").is_some());
    assert!(m.feature("named_c").is_none());
}

#[test]
fn a_document_that_is_not_an_object_loads_nothing() {
    for text in ["[]", "5", "null", "", "{", "\u{feff}{}", "{} x", r#"{"a": 1e400}"#] {
        assert!(matches!(Manifest::from_str(text), Err(InitError::Json(_))), "{text:?}");
    }
    let bad_groups = json!({"$override_groups": {"value": {"g": {"name": "g", "values": []}}}});
    assert!(matches!(
        Manifest::from_str(&bad_groups.to_string()),
        Err(InitError::OverrideGroups(_))
    ));
    let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
    assert!(Manifest::from_str(&format!(r#"{{"a": {deep}}}"#)).is_err());
}

#[test]
fn an_array_dynamic_config_value_rejects_only_that_entry() {
    let doc = json!({
        "dc": {"id": 1, "name": "dc", "enabled": true, "version": "1", "type": "dynamic_config",
               "value": [1, 2], "experiment": {"experiment_version": 1}},
        "nested_ok": {"id": 2, "name": "nested_ok", "enabled": true, "version": "1",
               "type": "dynamic_config", "value": {"a": [1]}, "experiment": {"experiment_version": 1}},
        "good": range(3, "good"),
    });
    let m = load(&doc);
    assert_eq!(keys(&m), ["dc"]);
    assert_eq!(m.errors()["dc"].deviation(), Some(Deviation::ArrayValue));
    assert!(m.feature("good").is_some() && m.feature("nested_ok").is_some());
}

#[test]
fn parent_cycles_reject_the_entries_on_the_cycle() {
    let mut a = range(1, "a");
    a["parent_hg_name"] = json!("b");
    let mut b = range(2, "b");
    b["parent_meg_name"] = json!("a");
    let mut selfish = range(3, "selfish");
    selfish["parent_hg_name"] = json!("selfish");
    let mut child = range(4, "child");
    child["parent_hg_name"] = json!("a");
    let doc = json!({"a": a, "b": b, "selfish": selfish, "child": child, "free": range(5, "free")});
    let m = load(&doc);
    assert_eq!(keys(&m), ["a", "b", "child", "selfish"]);
    for k in ["a", "b", "selfish"] {
        assert!(matches!(m.errors()[k], EntryError::Cycle { .. }), "{k}: {:?}", m.errors()[k]);
        assert_eq!(m.errors()[k].deviation(), Some(Deviation::Cycle));
    }
    // A child of a rejected parent fails too, as the reference fails children of parents
    // that do not convert.
    assert!(matches!(m.errors()["child"], EntryError::Parent { .. }));
    assert!(m.feature("free").is_some());
}

#[test]
fn long_parent_chains_load_without_recursion_and_the_parent_tree_is_bounded() {
    let n = 20_000;
    let mut doc = serde_json::Map::new();
    for i in 0..n {
        let mut e = range(i, &format!("f{i}"));
        if i > 0 {
            e["parent_hg_name"] = json!(format!("f{}", i - 1));
        }
        doc.insert(format!("f{i}"), e);
    }
    let m = load(&Value::Object(doc));
    // A chain of k parents expands to k + 1 entries.
    assert_eq!(m.features().len(), MAX_PARENT_TREE);
    assert_eq!(
        m.errors()[&format!("f{MAX_PARENT_TREE}")],
        EntryError::ParentTreeTooLarge(MAX_PARENT_TREE)
    );
    // Diamonds count every path: a balanced tree of holdout+group links doubles per level.
    let mut doc = serde_json::Map::new();
    doc.insert("l0".into(), range(0, "l0"));
    for level in 1..8 {
        let mut e = range(level, &format!("l{level}"));
        e["parent_hg_name"] = json!(format!("l{}", level - 1));
        e["parent_meg_name"] = json!(format!("l{}", level - 1));
        doc.insert(format!("l{level}"), e);
    }
    let m = load(&Value::Object(doc));
    // Sizes 1, 3, 7, 15, 31, 63 load; 127 does not.
    assert!(m.feature("l5").is_some());
    assert!(matches!(m.errors()["l6"], EntryError::ParentTreeTooLarge(_)));
    assert!(matches!(m.errors()["l7"], EntryError::Parent { .. }));
}

#[test]
fn unknown_parents_are_ignored_with_a_warning_and_duplicate_names_keep_the_first() {
    let mut child = range(1, "child");
    child["parent_hg_name"] = json!("nobody");
    let doc = json!({"child": child, "first": range(2, "same"), "second": range(3, "same")});
    let m = load(&doc);
    assert!(m.errors().is_empty());
    assert_eq!(m.feature("same").map(|f| f.id()), Some(2));
    assert!(m.warnings().contains(&LoadWarning::UnknownParent {
        key: "child".into(),
        link: "parent_hg_name",
        parent: "nobody".into()
    }));
    assert!(m.warnings().contains(&LoadWarning::DuplicateName {
        name: "same".into(),
        kept: "first".into(),
        shadowed: "second".into()
    }));
    // Shadowed entries remain parents by config key.
    assert!(m.feature_by_key("second").is_some());
}

#[test]
fn duplicate_keys_in_the_text_the_last_wins_as_in_a_parsed_tree() {
    // Inside an entry the reference reads a JSON tree, where the last duplicate wins; the
    // text fast path must agree.
    let text = r#"{
      "a": {"id": 1, "id": 2, "name": "a", "enabled": false, "enabled": true, "version": "1",
            "type": "range_variant", "experiment": {"experiment_version": 1, "bucket_val": "user_id",
            "targeting": {"EQ": {"field": "x", "field": "user_id", "value": "t2_1"}}}},
      "b": {"id": 9, "name": "b", "enabled": true, "version": "1", "type": "range_variant",
            "experiment": {"experiment_version": 1}},
      "b": {"id": 3, "name": "b", "enabled": true, "version": "1", "type": "dynamic_config",
            "value": 4, "experiment": {"experiment_version": 1}}
    }"#;
    let m = Manifest::from_str(text).unwrap_or_else(|e| panic!("{e}"));
    assert!(m.errors().is_empty(), "{:?}", m.errors());
    let a = m.feature("a").map(|f| (f.id(), f.enabled()));
    assert_eq!(a, Some((2, true)));
    assert_eq!(m.feature("b").map(|f| f.id()), Some(3));
}

#[test]
fn text_and_tree_loads_agree() {
    let shared =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/decider/vectors");
    let Ok(dir) = std::fs::read_dir(&shared) else {
        panic!("{} is missing", shared.display());
    };
    let mut files = 0;
    for entry in dir.flatten() {
        let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
        let Ok(doc) = serde_json::from_str::<Value>(&text) else { continue };
        let Some(Value::Object(config)) = doc.get("config").cloned() else { continue };
        let from_text = Manifest::from_str(&Value::Object(config.clone()).to_string())
            .unwrap_or_else(|e| panic!("{e}"));
        let from_tree = Manifest::from_map(config).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(from_text.errors(), from_tree.errors());
        let names = |m: &Manifest| m.features().map(|f| f.key().to_owned()).collect::<Vec<_>>();
        assert_eq!(names(&from_text), names(&from_tree));
        files += 1;
    }
    assert!(files >= 30, "only {files} vector files read");
}

#[test]
fn properties_are_validated_and_inert() {
    let doc = json!({"$properties": {"p": {"type": "Boolean", "fallback_value": false,
        "targeted_values": [{"value": true, "targeting_rule": {"EQ": {"field": "user_id", "value": "a"}}}]}},
        "good": range(1, "good")});
    let m = load(&doc);
    assert!(m.errors().is_empty());
    assert!(m.feature("$properties").is_none());
    let doc = json!({"$properties": {"p": {"type": "Map"}}, "good": range(1, "good")});
    let m = load(&doc);
    assert_eq!(keys(&m), ["$properties"]);
    assert!(m.feature("good").is_some());
}

#[test]
fn large_inputs_cost_linear_time() {
    // Each of these is quadratic if done naively: 100,000 override entries in one map, a
    // 100,000-value EQ list, 50,000 override groups referenced 50,000 times, and a context
    // with 100,000 other fields.
    let n = 100_000;
    let mut ov = serde_json::Map::new();
    for i in 0..n {
        ov.insert(format!("v{i}"), json!({"EQ": {"field": "user_id", "value": format!("u{i}")}}));
    }
    let values: Vec<String> = (0..n).map(|i| format!("t2_{i}")).collect();
    let mut groups = serde_json::Map::new();
    let mut refs = Vec::new();
    for i in 0..50_000 {
        groups.insert(
            format!("g{i}"),
            json!({"name": "g", "field": "user_id", "values": ["x", "y"]}),
        );
        refs.push(json!(format!("g{i}")));
    }
    let mut f = range(1, "f");
    f["experiment"]["overrides"] =
        json!([ov, {"control_1": {"EQ": {"field": "user_id", "values": refs}}}]);
    f["experiment"]["targeting"] = json!({"EQ": {"field": "user_id", "values": values}});
    let doc = json!({"f": f, "$override_groups": {"value": groups}});
    let m = load(&doc);
    assert!(m.errors().is_empty());
    let mut other = serde_json::Map::new();
    for i in 0..n {
        other.insert(format!("k{i}"), json!(i));
    }
    let ctx = experiments_decider::Context::from_json(
        json!({"user_id": format!("t2_{}", n - 1), "other_fields": other})
            .as_object()
            .unwrap_or(&Default::default()),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(m.choose("f", &ctx).is_ok());
}
