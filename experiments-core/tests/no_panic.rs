//! Property tests: arbitrary documents and arbitrary inputs never panic the parser or the
//! evaluator, and evaluation is deterministic.

use experiments_core::{Config, Experiments, Explanation, Inputs, OwnedEvent, Value};
use proptest::prelude::*;
use serde_json::Map;

/// The experiment types, plus an unknown one.
const TYPES: &[&str] = &[
    "r2",
    "feature_flag",
    "single_variant",
    "multi_variant",
    "feature_rollout",
    "range_variant",
    "x",
];

/// Keys that steer parsing into every branch (with [`TYPES`]), plus random ones.
const KEYS: &[&str] = &[
    "id",
    "name",
    "owner",
    "type",
    "version",
    "start_ts",
    "stop_ts",
    "expires",
    "enabled",
    "global_override",
    "experiment",
    "variants",
    "targeting",
    "overrides",
    "bucket_val",
    "seed",
    "bucket_seed",
    "num_buckets",
    "experiment_version",
    "shuffle_version",
    "log_bucketing",
    "newer_than",
    "size",
    "range_start",
    "range_end",
    "field",
    "value",
    "values",
    "ALL",
    "any",
    "NOT",
    "EQ",
    "ne",
    "GT",
    "ge",
    "LT",
    "le",
    "OVERRIDE",
    "__case_sensitive__",
    "user_id",
    "logged_in",
    "active",
];

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => proptest::sample::select(KEYS).prop_map(str::to_owned),
        1 => proptest::sample::select(TYPES).prop_map(str::to_owned),
        1 => "\\PC{0,6}",
    ]
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        prop_oneof![Just(0i64), Just(1), Just(1000), Just(-1)].prop_map(Value::from),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Value::from),
        prop_oneof![Just(0.1f64), Just(0.5), Just(1.0), Just(1e308), Just(-0.0)]
            .prop_map(Value::from),
        key().prop_map(Value::String),
        "\\PC{0,8}".prop_map(Value::String),
    ]
}

fn json() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(5, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// An experiment-shaped object: mostly the real fields with arbitrary values.
fn experiment() -> impl Strategy<Value = Value> {
    let block = prop::collection::vec((key(), json()), 0..8)
        .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>()));
    (
        prop::sample::select(TYPES),
        prop_oneof![Just(Value::from(0)), json()],
        prop_oneof![Just(Value::from(4_102_444_800u64)), json()],
        block,
        prop::collection::vec((key(), json()), 0..3),
    )
        .prop_map(|(ty, start, stop, block, extra)| {
            let mut m = Map::new();
            m.insert("id".into(), Value::from(1));
            m.insert("name".into(), Value::from("e"));
            m.insert("type".into(), Value::from(ty));
            m.insert("start_ts".into(), start);
            m.insert("stop_ts".into(), stop);
            m.insert("experiment".into(), block);
            for (k, v) in extra {
                m.insert(k, v);
            }
            Value::Object(m)
        })
}

fn inputs() -> impl Strategy<Value = Inputs> {
    prop::collection::vec((key(), json()), 0..6).prop_map(|kv| kv.into_iter().collect())
}

fn exercise(config: &Config, inputs: &Inputs, now: f64) {
    let names: Vec<String> = config.names().map(str::to_owned).collect();
    let mut client = Experiments::new(config, now, Vec::<OwnedEvent>::new());
    for name in names.iter().map(String::as_str).chain(["", "missing"]) {
        let first = client.variant(name, inputs, None);
        let mut trace = Explanation::default();
        let again = client.variant_traced(name, inputs, Some(false), &mut trace).map(|(v, _)| v);
        assert_eq!(first, again, "evaluation must be deterministic");
        client.expose(name, first.ok().flatten(), inputs);
        let _ = client.is_valid(name);
        let _ = config.report(now);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_documents_never_panic(doc in json(), inputs in inputs(), now in any::<f64>()) {
        if let Ok(config) = Config::from_value(doc) {
            exercise(&config, &inputs, now);
        }
    }

    #[test]
    fn experiment_shaped_documents_never_panic(
        exps in prop::collection::vec(experiment(), 1..4),
        inputs in inputs(),
        now in prop_oneof![Just(1.7e9), any::<f64>()],
    ) {
        let doc: Map<String, Value> = exps.into_iter().enumerate().map(|(i, e)| (format!("e{i}"), e)).collect();
        let config = Config::from_value(Value::Object(doc)).expect("an object is a valid document");
        exercise(&config, &inputs, now);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = Config::from_slice(&bytes);
    }

    /// Texts made of JSON and Python-only tokens (`NaN`, `-Infinity`, lone surrogates, huge
    /// numbers, deep brackets, stray characters) exercise the tolerant reader's every path.
    #[test]
    fn python_json_texts_never_panic(tokens in prop::collection::vec(python_token(), 0..40)) {
        let text: String = tokens.concat();
        let _ = Config::parse(&text);
        let _ = Config::from_slice(text.as_bytes());
    }
}

proptest! {
    // Each case builds and parses two documents: fewer cases keep it near a second.
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    /// A member only Python reads, added to a document, changes nothing for the others: the
    /// tolerant path loads each of them exactly as `serde_json` does.
    #[test]
    fn python_only_members_leave_the_others_unchanged(
        exps in prop::collection::vec(experiment(), 1..4),
        bad in python_only_value(),
        first in any::<bool>(),
    ) {
        let doc: Map<String, Value> = exps.into_iter().enumerate().map(|(i, e)| (format!("e{i}"), e)).collect();
        let clean = serde_json::to_string(&Value::Object(doc)).expect("serializable");
        let with_bad = if first {
            clean.replacen('{', &format!(r#"{{"bad": {bad}, "#), 1)
        } else {
            format!(r#"{}, "bad": {bad}}}"#, &clean[..clean.len() - 1])
        };
        let fast = Config::parse(&clean).expect("plain JSON");
        let slow = Config::parse(&with_bad).expect("Python reads it");
        prop_assert_eq!(slow.len(), fast.len() + 1);
        for key in fast.names() {
            prop_assert_eq!(format!("{:?}", fast.get(key)), format!("{:?}", slow.get(key)));
        }
        prop_assert!(!slow.is_valid("bad", 1.7e9));
    }
}

/// A piece of a Python-`json`-like text.
fn python_token() -> impl Strategy<Value = String> {
    prop_oneof![
        proptest::sample::select(vec![
            "{",
            "}",
            "[",
            "]",
            ",",
            ":",
            " ",
            "\n",
            "\"k\"",
            "\"\\ud800\"",
            "\"\\udc00\\ud800\"",
            "\"\\ud83d\\ude00\"",
            "\"\\u12\"",
            "\"\\x\"",
            "\"",
            "\\",
            "NaN",
            "Infinity",
            "-Infinity",
            "-",
            "1e400",
            "-1e999",
            "0",
            "-0",
            "1.5",
            "1.",
            "01",
            "true",
            "null",
            "nan",
            "\u{feff}",
            "\t",
            "\u{1}",
            "é",
        ])
        .prop_map(str::to_owned),
        (1usize..200).prop_map(|n| "[".repeat(n)),
        (1usize..200).prop_map(|n| "]".repeat(n)),
        (1usize..400).prop_map(|n| format!("1{}", "0".repeat(n))),
    ]
}

/// A value Python's `json` reads and `serde_json` does not.
fn python_only_value() -> impl Strategy<Value = String> {
    prop_oneof![
        proptest::sample::select(vec![
            "NaN",
            "Infinity",
            "-Infinity",
            "1e400",
            "[-1e999]",
            "\"\\ud800\"",
            "{\"\\udfff\": 1}",
            "{\"a\": [NaN, 1]}",
            "{\"a\": NaN, \"a\": 1}",
        ])
        .prop_map(str::to_owned),
        (126usize..300).prop_map(|n| format!("{}{}", "[".repeat(n), "]".repeat(n))),
        (126usize..300).prop_map(|n| format!("{}NaN{}", "[".repeat(n), "]".repeat(n))),
    ]
}
