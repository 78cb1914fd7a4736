//! Documents that Python's `json.load` (what baseplate uses) accepts but strict JSON parsers
//! reject: `NaN`/`Infinity`, numbers beyond `f64`, lone surrogates, nesting deeper than
//! `serde_json`'s 128 levels, duplicate keys. The document loads; only the experiments holding
//! a value this port cannot represent become invalid, and every other experiment loads exactly
//! as it would without them. Documents Python rejects stay a `ConfigError`.

use experiments_core::{Config, Experiments, Inputs, NoopHandler, ValidationError};

const NOW: f64 = 1_700_000_000.0;

/// A valid feature rollout (everyone gets `on`), `extra` spliced into its top level and
/// `targeting` into its `experiment` block.
fn rollout(id: u32, extra: &str, targeting: &str) -> String {
    let targeting = if targeting.is_empty() { String::new() } else { format!(", {targeting}") };
    let extra = if extra.is_empty() { String::new() } else { format!(", {extra}") };
    format!(
        r#"{{"id": {id}, "name": "exp_{id}", "type": "feature_rollout", "start_ts": 0,
            "stop_ts": 4102444800{extra}, "experiment": {{"experiment_version": 1,
            "variants": [{{"name": "on", "size": 1.0}}]{targeting}}}}}"#
    )
}

fn variant(config: &Config, name: &str, user: &str) -> Option<String> {
    let mut client = Experiments::new(config, NOW, NoopHandler);
    let inputs = Inputs::new().with("user_id", user);
    client.variant(name, &inputs, None).unwrap().map(str::to_owned)
}

fn error<'c>(config: &'c Config, key: &str) -> &'c ValidationError {
    config.validation_error(key, NOW).unwrap_or_else(|| panic!("{key} should be invalid"))
}

fn label(e: &ValidationError) -> Option<&'static str> {
    e.deviation.map(|d| d.label())
}

#[test]
fn non_finite_numbers_invalidate_only_their_experiment() {
    let tokens =
        ["NaN", "Infinity", "-Infinity", "1e400", "-1.5e999", &format!("1{}", "0".repeat(400))];
    for token in tokens {
        let doc = format!(
            r#"{{"good": {}, "bad": {}, "also_good": {}}}"#,
            rollout(1, "", ""),
            rollout(2, "", "").replace("\"size\": 1.0", &format!("\"size\": {token}")),
            rollout(3, r#""owner": 1e-400"#, ""),
        );
        let config = Config::parse(&doc).unwrap_or_else(|e| panic!("{token}: {e}"));
        assert_eq!(config.names().collect::<Vec<_>>(), ["good", "bad", "also_good"]);
        assert_eq!(variant(&config, "good", "t2_1").as_deref(), Some("on"), "{token}");
        // 1e-400 is 0.0 in Python too: representable.
        assert_eq!(variant(&config, "also_good", "t2_1").as_deref(), Some("on"), "{token}");
        assert!(!config.is_valid("bad", NOW));
        let e = error(&config, "bad");
        assert_eq!(e.path, "experiment.variants[0].size", "{token}");
        assert_eq!(label(e), Some("unrepresentable_value"), "{token}");
        let expected = if token.contains('N') && !token.contains('I') { "NaN" } else { token };
        let shown: String = expected.chars().take(12).collect();
        assert!(e.message.contains(&shown), "{token}: {}", e.message);
    }
}

#[test]
fn lone_surrogates_invalidate_only_their_experiment() {
    for (text, shown) in
        [(r#""\ud800""#, "\\ud800"), (r#""a\uDC00b""#, "\\udc00"), (r#""\ud83d\u0041""#, "\\ud83d")]
    {
        let doc = format!(
            r#"{{"good": {}, "bad": {}}}"#,
            rollout(1, "", ""),
            rollout(2, &format!(r#""owner": {text}"#), "")
        );
        let config = Config::parse(&doc).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(variant(&config, "good", "t2_1").as_deref(), Some("on"));
        let e = error(&config, "bad");
        assert_eq!(e.path, "owner");
        assert!(e.message.contains("surrogate") && e.message.contains(shown), "{}", e.message);
        assert_eq!(label(e), Some("unrepresentable_value"));
    }
    // A surrogate pair is one character, in keys and values alike.
    let doc = format!(r#"{{"\ud83d\ude00": {}}}"#, rollout(1, r#""owner": "\ud83d\ude00""#, ""));
    let config = Config::parse(&doc).unwrap();
    assert_eq!(config.names().collect::<Vec<_>>(), ["😀"]);
    assert!(config.is_valid("😀", NOW));
    // A config key with a lone surrogate is listed (lossily) and invalid.
    let doc = format!(r#"{{"k\udfff": {}, "good": {}}}"#, rollout(1, "", ""), rollout(2, "", ""));
    let config = Config::parse(&doc).unwrap();
    assert_eq!(config.names().collect::<Vec<_>>(), ["k\u{fffd}", "good"]);
    assert!(error(&config, "k\u{fffd}").message.contains("\\udfff"));
    assert!(config.is_valid("good", NOW));
}

/// `NOT` nested `n` times around `EQ(user_id in ['t2_1'])`.
fn nots(n: usize) -> String {
    let eq = r#"{"EQ": {"field": "user_id", "values": ["t2_1"]}}"#;
    format!("\"targeting\": {}{eq}{}", "{\"NOT\": ".repeat(n), "}".repeat(n))
}

#[test]
fn deep_targeting_loads_like_python() {
    // 130 NOTs nest the document 136 levels deep: beyond serde_json's limit of 128, well
    // within Python's. Even NOTs cancel out: only t2_1 is targeted.
    let doc = format!(
        r#"{{"good": {}, "deep": {}, "odd": {}}}"#,
        rollout(1, "", ""),
        rollout(2, "", &nots(130)),
        rollout(3, "", &nots(131))
    );
    let config = Config::parse(&doc).unwrap();
    assert_eq!(variant(&config, "good", "t2_2").as_deref(), Some("on"));
    assert_eq!(variant(&config, "deep", "t2_1").as_deref(), Some("on"));
    assert_eq!(variant(&config, "deep", "t2_2"), None);
    assert_eq!(variant(&config, "odd", "t2_1"), None);
    assert_eq!(variant(&config, "odd", "t2_2").as_deref(), Some("on"));

    // Deeper than this port supports: that experiment is invalid, the others load.
    let doc = format!(
        r#"{{"good": {}, "too_deep": {}}}"#,
        rollout(1, "", ""),
        rollout(2, "", &nots(400))
    );
    let config = Config::parse(&doc).unwrap();
    assert_eq!(variant(&config, "good", "t2_2").as_deref(), Some("on"));
    let e = error(&config, "too_deep");
    assert_eq!(label(e), Some("nesting"));
    assert!(e.message.contains("256"), "{}", e.message);

    // Deeper than Python's recursion limit: Python rejects the whole document too.
    let doc = format!(
        r#"{{"good": {}, "too_deep": {}}}"#,
        rollout(1, "", ""),
        rollout(2, "", &nots(1200))
    );
    let err = Config::parse(&doc).unwrap_err().to_string();
    assert!(err.contains("not valid JSON") && err.contains("1000"), "{err}");
}

#[test]
fn duplicate_keys_last_wins_first_position() {
    let bad = rollout(9, "", "").replace("\"size\": 1.0", "\"size\": NaN");
    // The broken first occurrence is replaced by the good last one.
    let doc =
        format!(r#"{{"a": {bad}, "b": {}, "a": {}}}"#, rollout(2, "", ""), rollout(1, "", ""));
    let config = Config::parse(&doc).unwrap();
    assert_eq!(config.names().collect::<Vec<_>>(), ["a", "b"]);
    assert!(config.is_valid("a", NOW));
    assert_eq!(config.get("a").unwrap().as_ref().unwrap().id(), 1);
    // The good first occurrence is replaced by the broken last one.
    let doc =
        format!(r#"{{"a": {}, "b": {}, "a": {bad}}}"#, rollout(1, "", ""), rollout(2, "", ""));
    let config = Config::parse(&doc).unwrap();
    assert_eq!(config.names().collect::<Vec<_>>(), ["a", "b"]);
    assert!(!config.is_valid("a", NOW));
    // Inside an experiment: an overwritten NaN or lone surrogate is gone, as in Python.
    let doc = format!(
        r#"{{"a": {}, "b": {}}}"#,
        rollout(1, r#""owner": NaN, "owner": "x""#, ""),
        rollout(2, r#""notes": {"\ud800": 1, "\uD800": 2}, "notes": 3"#, "")
    );
    let config = Config::parse(&doc).unwrap();
    assert!(config.is_valid("a", NOW), "{:?}", config.validation_error("a", NOW));
    assert_eq!(config.get("a").unwrap().as_ref().unwrap().owner(), "x");
    assert!(config.is_valid("b", NOW), "{:?}", config.validation_error("b", NOW));
}

#[test]
fn fallback_loads_every_other_experiment_exactly_as_before() {
    let kinds = [
        r#"{"id": 1, "name": "r", "type": "r2", "version": "3", "start_ts": 0, "stop_ts": 4102444800,
            "experiment": {"variants": {"a": 10, "b": 20}, "targeting": {"logged_in": [true]},
            "overrides": {"user_id": {"t2_vip": "b"}}, "seed": 7}}"#,
        r#"{"id": 2, "name": "s", "type": "single_variant", "start_ts": 0, "stop_ts": 4102444800,
            "owner": [1, 2.5, -0, "x"], "experiment": {"experiment_version": 2, "shuffle_version": 1.0,
            "variants": [{"name": "c", "size": 0.5}, {"name": "t", "size": 0.5}],
            "targeting": {"ALL": [{"EQ": {"field": "app", "values": ["ios"]}}, {"GE": {"field": "n", "value": 5}}]},
            "overrides": [{"t": {"EQ": {"field": "user_id", "value": "t2_x"}}}]}}"#,
        r#"{"id": 3, "name": "m", "type": "multi_variant", "start_ts": 0, "stop_ts": 4102444800,
            "experiment": {"experiment_version": 1, "num_buckets": 10,
            "variants": [{"name": "a", "size": 0.3}, {"name": "b", "size": 0.3}]}}"#,
        r#"{"id": 4, "name": "broken", "type": "range_variant", "start_ts": 0, "stop_ts": 1,
            "experiment": {"experiment_version": 1, "variants": [{"name": "x", "range_start": 0.5, "range_end": 0.1}]}}"#,
        r#"[1, {"not": "an experiment"}]"#,
    ];
    let clean = format!(
        "{{{}}}",
        kinds
            .iter()
            .enumerate()
            .map(|(i, k)| format!("\"k{i}\": {k}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let with_nan = clean.replacen('{', r#"{"nan": {"id": NaN}, "#, 1);
    let fast = Config::parse(&clean).unwrap();
    let slow = Config::parse(&with_nan).unwrap();
    assert_eq!(slow.len(), fast.len() + 1);
    for key in fast.names() {
        assert_eq!(
            format!("{:?}", fast.get(key)),
            format!("{:?}", slow.get(key)),
            "{key} loads differently on the tolerant path"
        );
    }
    assert_eq!(error(&slow, "nan").path, "id");
}

#[test]
fn documents_python_rejects_stay_config_errors() {
    let good = rollout(1, "", "");
    let cases = [
        (format!("\u{feff}{{\"a\": {good}}}"), "byte order mark"),
        (format!(r#"{{"a": NaN, "b": {good},}}"#), "not valid JSON"),
        (format!(r#"{{"a": NaN, "b": {good}}} x"#), "not valid JSON"),
        (r#"{"a": -NaN}"#.to_owned(), "not valid JSON"),
        (r#"{"a": nan}"#.to_owned(), "not valid JSON"),
        (r#"{"a": "\ud800", "b": "\x"}"#.to_owned(), "not valid JSON"),
        (format!(r#"{{"a": "\ud800", "b": 1{}}}"#, "0".repeat(4300)), "4300"),
        ("{\"a\": \"\\ud800\", \"b\": \"tab\there\"}".to_owned(), "not valid JSON"),
        ("{\"a\": 1,".to_owned(), "not valid JSON"),
    ];
    for (doc, needle) in cases {
        let err = Config::parse(&doc).expect_err(&doc[..doc.len().min(60)]).to_string();
        assert!(err.contains(needle), "{err}");
    }
    // Python reads a 4300-digit integer (its limit) and a top-level NaN.
    let doc = format!(
        r#"{{"a": {}, "b": {good}}}"#,
        rollout(2, &format!(r#""owner": 1{}"#, "0".repeat(4299)), "")
    );
    let config = Config::parse(&doc).unwrap();
    assert!(config.is_valid("b", NOW));
    assert!(Config::parse("NaN").unwrap_err().to_string().contains("float"));
    assert!(Config::parse(r#"["\ud800"]"#).unwrap_err().to_string().contains("list"));
    // Bytes: invalid UTF-8 is rejected (Python decodes the file first), a BOM is named.
    let mut bytes = format!(r#"{{"a": NaN, "b": {good}}}"#).into_bytes();
    assert!(Config::from_slice(&bytes).unwrap().is_valid("b", NOW));
    bytes.insert(3, 0xff);
    assert!(Config::from_slice(&bytes).unwrap_err().to_string().contains("UTF-8"));
    let bom = [b"\xef\xbb\xbf".as_slice(), b"{}"].concat();
    assert!(Config::from_slice(&bom).unwrap_err().to_string().contains("byte order mark"));
}

#[test]
fn ids_beyond_64_bits_say_so() {
    for id in ["100000000000000000000", "-9223372036854775809", "18446744073709551616"] {
        let doc = format!(
            r#"{{"a": {}}}"#,
            rollout(1, "", "").replacen("\"id\": 1", &format!("\"id\": {id}"), 1)
        );
        let config = Config::parse(&doc).unwrap();
        let e = error(&config, "a");
        assert_eq!(e.path, "id");
        assert!(e.message.contains("64-bit"), "{id}: {}", e.message);
    }
}
