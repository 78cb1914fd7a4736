//! Values nested 100,000 levels deep, built in code (no parser limits them), never overflow the
//! stack: where Python would raise `RecursionError` the call returns an `EvalError`, a config
//! entry holding one is invalid, and formatting cuts the text.
//!
//! The values are built and taken apart iteratively here: `serde_json::Value`'s own `Drop` is
//! recursive, so the test itself must never drop one whole.

use experiments_core::{
    Config, Experiments, Explanation, Inputs, NoopHandler, OwnedEvent, Value, py_str,
};
use serde_json::{Map, json};

const DEPTH: usize = 100_000;
const NOW: f64 = 1_700_000_000.0;

/// `[[[...[leaf]...]]]`, `depth` lists deep.
fn deep_list(depth: usize, leaf: Value) -> Value {
    let mut v = leaf;
    for _ in 0..depth {
        v = Value::Array(vec![v]);
    }
    v
}

/// Takes a value apart without recursion.
fn dismantle(v: Value) {
    let mut stack = vec![v];
    while let Some(v) = stack.pop() {
        match v {
            Value::Array(items) => stack.extend(items),
            Value::Object(map) => stack.extend(map.into_iter().map(|(_, v)| v)),
            _ => {}
        }
    }
}

fn config() -> Config {
    Config::from_value(json!({
        "simple": {"id": 1, "name": "simple", "type": "feature_rollout", "start_ts": 0,
            "stop_ts": 4102444800u64, "experiment": {"experiment_version": 1,
            "variants": [{"name": "on", "size": 1.0}],
            "targeting": {"ANY": [{"EQ": {"field": "tags", "values": [[[1]]]}}, {"GT": {"field": "tags", "value": [[]]}}]}}},
        "r2": {"id": 2, "name": "r2", "type": "r2", "start_ts": 0, "stop_ts": 4102444800u64,
            "experiment": {"variants": {"a": 100}, "targeting": {"tags": [[[1]]], "logged_in": [true]}}},
        "plain": {"id": 3, "name": "plain", "type": "feature_rollout", "start_ts": 0,
            "stop_ts": 4102444800u64, "experiment": {"experiment_version": 1,
            "variants": [{"name": "on", "size": 1.0}]}}
    }))
    .unwrap()
}

/// Runs `f` on a thread with the default 2 MiB stack, like any service thread.
fn on_small_stack(f: impl FnOnce() + Send + 'static) {
    std::thread::Builder::new().stack_size(2 << 20).spawn(f).unwrap().join().unwrap();
}

#[test]
fn deep_inputs_raise_recursion_error_instead_of_overflowing() {
    on_small_stack(|| {
        let config = config();
        // A deep bucketing value: str() of it raises RecursionError in Python.
        let mut inputs = Inputs::new().with("user_id", deep_list(DEPTH, json!("t2_1")));
        inputs.insert("logged_in", true);
        inputs.insert("tags", json!([[1]]));
        let mut events: Vec<OwnedEvent> = Vec::new();
        let mut client = Experiments::new(&config, NOW, &mut events);
        for name in ["simple", "r2", "plain"] {
            let err = client.variant(name, &inputs, None).unwrap_err();
            assert_eq!(err.python_exception(), "RecursionError", "{name}");
            let mut trace = Explanation::default();
            assert!(client.variant_traced(name, &inputs, None, &mut trace).is_err());
            assert!(!trace.steps.is_empty());
        }
        // Deep inputs never reach an event sink (a sink would copy or serialize them).
        assert!(!client.expose("plain", Some("on"), &inputs));
        drop(client);
        assert!(events.is_empty());
        let deep = inputs.remove("user_id").unwrap();
        // str() of it is cut instead of recursing.
        let text = py_str(&deep);
        assert!(text.starts_with("[[[") && text.contains("..."), "{}", &text[..40]);
        assert!(text.len() < 2_000);
        dismantle(deep);

        // A deep targeting input: compared with shallow config values only as deep as they
        // go (EQ does not match, `deep > [[]]` holds), as in Python.
        let mut inputs = Inputs::new().with("user_id", "t2_1").with("logged_in", true);
        inputs.insert("tags", deep_list(DEPTH, json!(1)));
        let mut client = Experiments::new(&config, NOW, NoopHandler);
        assert_eq!(client.variant("simple", &inputs, Some(false)), Ok(Some("on")));
        assert_eq!(client.variant("r2", &inputs, Some(false)), Ok(Some("a")));
        // The event would echo the deep input: refused, with Python's exception.
        let err = client.variant("plain", &inputs, None).unwrap_err();
        assert_eq!(err.python_exception(), "RecursionError");
        assert!(!client.expose("plain", None, &inputs));
        dismantle(inputs.remove("tags").unwrap());
    });
}

#[test]
fn deep_config_entries_are_invalid_and_dropped_without_recursion() {
    on_small_stack(|| {
        // A targeting tree of 100,000 NOTs, built in code.
        let mut tree = json!({"OVERRIDE": true});
        for _ in 0..DEPTH {
            let mut m = Map::new();
            m.insert("NOT".into(), tree);
            tree = Value::Object(m);
        }
        let mut doc = config_map();
        let mut deep = doc["plain"].clone();
        deep["experiment"]["targeting"] = tree;
        doc.insert("deep".into(), deep);
        doc.insert("deep_owner".into(), {
            let mut e = doc["plain"].clone();
            e["owner"] = deep_list(DEPTH, Value::Null);
            e
        });
        let config = Config::from_value(Value::Object(doc)).unwrap();
        assert_eq!(config.len(), 5);
        for key in ["deep", "deep_owner"] {
            let e = config.validation_error(key, NOW).expect("too deep: invalid");
            assert_eq!(e.deviation.map(|d| d.label()), Some("nesting"), "{key}");
        }
        let mut client = Experiments::new(&config, NOW, NoopHandler);
        let inputs = Inputs::new().with("user_id", "t2_1").with("logged_in", true);
        assert_eq!(client.variant("plain", &inputs, None), Ok(Some("on")));
        assert_eq!(client.variant("deep", &inputs, None), Ok(None));

        // A deep document that is not an object at all.
        let err = Config::from_value(deep_list(DEPTH, Value::Null)).unwrap_err();
        assert!(err.to_string().contains("list"));
    });
}

fn config_map() -> Map<String, Value> {
    json!({
        "plain": {"id": 3, "name": "plain", "type": "feature_rollout", "start_ts": 0,
            "stop_ts": 4102444800u64, "experiment": {"experiment_version": 1,
            "variants": [{"name": "on", "size": 1.0}]}},
        "r2": {"id": 2, "name": "r2", "type": "r2", "start_ts": 0, "stop_ts": 4102444800u64,
            "experiment": {"variants": {"a": 100}, "targeting": {"logged_in": [true]}}},
        "n": {"id": 4, "name": "n", "type": "single_variant", "start_ts": 0, "stop_ts": 4102444800u64,
            "experiment": {"experiment_version": 1, "variants": [{"name": "a", "size": 0.5}, {"name": "b", "size": 0.5}]}}
    })
    .as_object()
    .cloned()
    .unwrap_or_default()
}
