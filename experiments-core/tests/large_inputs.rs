//! Size-dependent costs are linear: each test here feeds an input that took minutes (or
//! hours) while a step was quadratic, and finishes in about a second in a debug build.

use experiments_core::{Config, Experiments, Inputs, NoopHandler, Value};
use serde_json::Map;

const NOW: f64 = 1_700_000_000.0;

/// An r2 experiment whose `targeting` and `overrides` objects hold `n` parameters each, with
/// case-variant duplicates (`P7` after `p7`: one parameter, the later value wins) and a
/// `__case_sensitive__` list naming half of them.
#[test]
fn r2_with_200k_parameters_parses_in_linear_time() {
    let n = 100_000;
    let mut targeting = String::new();
    let mut overrides = String::new();
    let mut case_sensitive = String::new();
    for i in 0..n {
        targeting.push_str(&format!(r#""p{i}": ["v{i}"], "#));
        overrides.push_str(&format!(r#""o{i}": {{"t2_{i}": "a"}}, "#));
        if i % 2 == 0 {
            case_sensitive.push_str(&format!(r#""p{i}", "#));
        }
    }
    // `P7` lower-cases onto `p7`: its values replace `p7`'s (not case-sensitive: lowered).
    targeting.push_str(r#""P7": ["SEVEN"], "#);
    overrides.push_str(r#""O7": {"T2_X": "b"}, "#);
    let doc = format!(
        r#"{{"big": {{"id": 1, "name": "big", "type": "r2", "start_ts": 0, "stop_ts": 4102444800,
        "experiment": {{"variants": {{"a": 50, "b": 50}},
        "targeting": {{{targeting}"__case_sensitive__": [{case_sensitive}"x"]}},
        "overrides": {{{overrides}"o1": {{}}}}}}}}}}"#
    );
    assert!(doc.len() > 3_000_000);
    let config = Config::parse(&doc).unwrap();
    assert!(config.is_valid("big", NOW), "{:?}", config.validation_error("big", NOW));
    let mut client = Experiments::new(&config, NOW, NoopHandler);
    let call = |client: &mut Experiments<'_, NoopHandler>, k: &str, v: &str| {
        client
            .variant("big", &Inputs::new().with("user_id", "t2_q").with(k, v), None)
            .unwrap()
            .map(str::to_owned)
    };
    // Targeted through the last parameter, not through p7's replaced value.
    assert!(call(&mut client, "p99999", "v99999").is_some());
    assert!(call(&mut client, "p7", "seven").is_some());
    assert!(call(&mut client, "p7", "v7").is_none());
    assert!(call(&mut client, "p8", "V8").is_none(), "p8 is case-sensitive");
    assert!(call(&mut client, "p9", "V9").is_some(), "p9 is not case-sensitive");
    // Overrides: `O7` replaced `o7`; the last `o1` is empty.
    let over = |client: &mut Experiments<'_, NoopHandler>, k: &str, v: &str| {
        client.variant("big", &Inputs::new().with(k, v), None).unwrap().map(str::to_owned)
    };
    assert_eq!(over(&mut client, "o7", "t2_x").as_deref(), Some("b"));
    assert_eq!(over(&mut client, "o7", "t2_7"), None);
    assert_eq!(over(&mut client, "o99999", "T2_99999").as_deref(), Some("a"));
    assert_eq!(over(&mut client, "o1", "t2_1"), None);
}

/// `dict()` of a list of pairs, the other form baseplate accepts, with 200k pairs whose keys
/// repeat as equal Python values (`1`, `1.0`, `true` are one key).
#[test]
fn r2_pairs_list_with_200k_entries_parses_in_linear_time() {
    let n = 200_000;
    let pairs: Vec<Value> = (0..n)
        .map(|i| {
            Value::Array(vec![Value::from(format!("p{i}")), Value::from(vec![format!("v{i}")])])
        })
        .chain([serde_json::json!(["p5", ["five"]])])
        .collect();
    let r2 = |targeting: Vec<Value>| {
        serde_json::json!({"big": {"id": 1, "name": "big", "type": "r2", "start_ts": 0,
            "stop_ts": 4102444800u64, "experiment": {"variants": {"a": 100}, "targeting": targeting}}})
    };
    let config = Config::from_value(r2(pairs.clone())).unwrap();
    assert!(config.is_valid("big", NOW));
    let mut client = Experiments::new(&config, NOW, NoopHandler);
    let call = |client: &mut Experiments<'_, NoopHandler>, v: &str| {
        client
            .variant("big", &Inputs::new().with("user_id", "t2_q").with("p5", v), None)
            .unwrap()
            .map(str::to_owned)
    };
    assert_eq!(call(&mut client, "five").as_deref(), Some("a"));
    assert_eq!(call(&mut client, "v5"), None);
    // `True` replaces `1`'s values but keeps its key, `1`: not a string, so the experiment is
    // invalid, as in baseplate (which calls `.lower()` on it).
    let mut pairs = pairs;
    pairs.extend([serde_json::json!([1, ["one"]]), serde_json::json!([true, ["true"]])]);
    let config = Config::from_value(r2(pairs)).unwrap();
    let e = config.validation_error("big", NOW).unwrap();
    assert!(e.message.contains("int"), "{}", e.message);
}

#[test]
fn inputs_with_200k_keys_build_in_linear_time() {
    let n = 200_000;
    let map: Map<String, Value> = (0..n).map(|i| (format!("Key_{i}"), Value::from(i))).collect();
    let inputs = Inputs::from(map);
    assert_eq!(inputs.len(), n);
    assert_eq!(inputs.get("Key_199999"), Some(&Value::from(199_999)));
    assert_eq!(inputs.get("key_199999"), None);

    // Repeated inserts with duplicates keep dict semantics.
    let mut inputs: Inputs = (0..n).map(|i| (format!("k{}", i % (n / 2)), i)).collect();
    assert_eq!(inputs.len(), n / 2);
    assert_eq!(inputs.get("k0"), Some(&Value::from(n / 2)));
    assert_eq!(inputs.iter().next().map(|(k, _)| k), Some("k0"));
    for i in 0..n / 2 {
        inputs.insert(format!("K{i}"), "upper");
    }
    assert_eq!(inputs.len(), n);

    // Lower-cased lookups (r2, bucket_val) among many mixed-case keys: the last key wins.
    let config = Config::from_value(serde_json::json!({"r": {"id": 1, "name": "r", "type": "r2",
        "start_ts": 0, "stop_ts": 4102444800u64, "bucket_val": "user_id",
        "experiment": {"variants": {"a": 100}, "targeting": {"k7": ["upper"]}}}}))
    .unwrap();
    let mut client = Experiments::new(&config, NOW, NoopHandler);
    inputs.insert("User_Id", "t2_1");
    for _ in 0..1000 {
        assert_eq!(client.variant("r", &inputs, None), Ok(Some("a")));
    }
    inputs.insert("K7", "other");
    assert_eq!(client.variant("r", &inputs, None), Ok(None));
    assert_eq!(inputs.remove("K7"), Some(Value::from("other")));
    assert_eq!(
        client.variant("r", &inputs, None),
        Ok(None),
        "k7's own value is 100007, not 'upper'"
    );
}
