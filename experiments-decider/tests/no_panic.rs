//! Property tests: arbitrary documents (decider-shaped and not, deeply nested, with parent
//! cycles and huge numbers) and arbitrary contexts never panic or overflow the stack, and
//! decisions are deterministic.

use experiments_decider::{Context, EventStamp, Manifest, Uuid};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

/// Field names that steer deserialization into every branch, plus noise.
const KEYS: &[&str] = &[
    "id",
    "name",
    "enabled",
    "version",
    "type",
    "emit_event",
    "measured",
    "start_ts",
    "stop_ts",
    "value",
    "value_type",
    "parent_hg_name",
    "parent_meg_name",
    "experiment",
    "namespaces",
    "experiment_version",
    "shuffle_version",
    "bucket_val",
    "variants",
    "targeting",
    "overrides",
    "range_start",
    "range_end",
    "emit_event_override",
    "field",
    "values",
    "ALL",
    "ANY",
    "NOT",
    "EQ",
    "NE",
    "PREQ",
    "GT",
    "LT",
    "GE",
    "LE",
    "$none",
    "user_id",
    "device_id",
    "x",
];

const STRINGS: &[&str] = &[
    "1",
    "1.0.0",
    "2.0.0",
    "range_variant",
    "feature_rollout",
    "dynamic_config",
    "Boolean",
    "Integer",
    "Float",
    "String",
    "Text",
    "Map",
    "Null",
    "user_id",
    "device_id",
    "app_name",
    "holdout",
    "control_1",
    "a",
    "b",
    "k0",
    "k1",
    "k2",
    "k3",
    "",
    "NaN",
    "inf",
    "1e3",
    "t2_x",
];

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-1e300f64..1e300).prop_map(Value::from),
        prop::sample::select(vec![0.0, 0.1255, 0.5005, 1.0, -0.1, 1e16, 5e-324, 4294967296.0])
            .prop_map(Value::from),
        prop::sample::select(STRINGS).prop_map(Value::from),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(6, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(KEYS), inner), 0..6).prop_map(|kv| {
                Value::Object(kv.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
            }),
        ]
    })
}

/// A mostly well-formed entry with random damage, parents among `k0..k3`.
fn entry() -> impl Strategy<Value = Value> {
    (
        any::<u32>(),
        prop::sample::select(vec!["a", "b", "k0", "k1"]),
        prop::sample::select(vec!["range_variant", "feature_rollout", "dynamic_config"]),
        prop::collection::vec((0.0f32..1.2, 0.0f32..1.2, prop::sample::select(vec!["holdout", "control_1", "a", "b", "k2"])), 0..4),
        prop::option::of(prop::sample::select(vec!["k0", "k1", "k2", "k3"])),
        prop::option::of(prop::sample::select(vec!["k0", "k1", "k2", "k3"])),
        prop::option::of(json_value()),
        prop::option::of((prop::sample::select(KEYS), json_value())),
    )
        .prop_map(|(id, name, kind, variants, hg, meg, targeting, damage)| {
            let variants: Vec<Value> = variants
                .into_iter()
                .map(|(s, e, n)| json!({"name": n, "range_start": s, "range_end": e}))
                .collect();
            let mut e = json!({"id": id, "name": name, "enabled": true, "version": "1", "type": kind,
                "emit_event": true, "value": 3,
                "experiment": {"experiment_version": 1, "bucket_val": "user_id", "variants": variants,
                               "overrides": [{"a": {"EQ": {"field": "user_id", "value": "g"}}}]}});
            if let Some(h) = hg {
                e["parent_hg_name"] = json!(h);
            }
            if let Some(m) = meg {
                e["parent_meg_name"] = json!(m);
            }
            if let Some(t) = targeting {
                e["experiment"]["targeting"] = t;
            }
            if let Some((k, v)) = damage {
                e[k] = v;
            }
            e
        })
}

fn document() -> impl Strategy<Value = Value> {
    (prop::collection::vec(entry(), 0..5), prop::option::of(json_value())).prop_map(|(entries, groups)| {
        let mut doc: Map<String, Value> =
            entries.into_iter().enumerate().map(|(i, e)| (format!("k{i}"), e)).collect();
        doc.insert(
            "$override_groups".into(),
            groups.unwrap_or_else(|| json!({"value": {"g": {"name": "g", "field": "user_id", "values": ["t2_x", 1]}}})),
        );
        Value::Object(doc)
    })
}

fn context() -> impl Strategy<Value = Value> {
    prop::collection::vec(
        (
            prop::sample::select(vec![
                "user_id",
                "device_id",
                "country_code",
                "logged_in",
                "user_is_employee",
                "build_number",
                "cookie_created_timestamp",
                "correlation_id",
                "app_name",
                "other_fields",
            ]),
            json_value(),
        ),
        0..6,
    )
    .prop_map(|kv| Value::Object(kv.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()))
}

fn decide_everything(m: &Manifest, ctx: &Context) -> Vec<String> {
    let stamp =
        EventStamp { client_ts_ms: 1, uuid: Uuid::nil(), correlation_fallback: Uuid::nil() };
    let mut out = Vec::new();
    for f in m.features() {
        match m.choose(f.name(), ctx) {
            Ok(d) => {
                out.push(format!("{:?} {}", d.variant(), d.value()));
                for e in d.events() {
                    out.push(e.to_v2_json(&stamp));
                    out.push(e.legacy());
                }
            }
            Err(e) => out.push(e.to_string()),
        }
        out.push(format!("{:?}", m.get_map(f.name(), ctx).map(|_| ())));
    }
    out.extend(m.choose_all(ctx, None).map(|d| d.feature_name().to_owned()));
    out.extend(m.all_values(ctx).map(|(k, v)| format!("{k}={v}")));
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_documents_and_contexts_never_panic_and_decide_deterministically(
        doc in document(),
        ctx in context(),
    ) {
        let text = doc.to_string();
        if let Ok(m) = Manifest::from_str(&text) {
            let ctx = Context::from_json(ctx.as_object().unwrap_or(&Map::new())).unwrap_or_default();
            let first = decide_everything(&m, &ctx);
            prop_assert_eq!(&first, &decide_everything(&m, &ctx));
            // Loading again gives the same manifest.
            let again = Manifest::from_str(&text).map(|m2| decide_everything(&m2, &ctx));
            prop_assert_eq!(Some(first), again.ok());
        }
    }

    #[test]
    fn arbitrary_json_and_bytes_never_panic(v in json_value(), bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = Manifest::from_str(&v.to_string());
        let _ = Manifest::from_str(&json!({"k": v}).to_string());
        let _ = Manifest::from_slice(&bytes);
    }
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    for depth in [100, 127, 128, 129, 10_000, 200_000] {
        let tree = format!("{}{}{}", "{\"NOT\":".repeat(depth), "{\"ALL\":[]}", "}".repeat(depth));
        let doc = format!(
            r#"{{"f": {{"id": 1, "name": "f", "enabled": true, "version": "1", "type": "range_variant",
                "experiment": {{"experiment_version": 1, "bucket_val": "user_id", "targeting": {tree}}}}}}}"#
        );
        match Manifest::from_str(&doc) {
            Ok(m) => {
                // Within serde_json's nesting limit: it loads and decides.
                let ctx = Context::builder().user_id("t2_x").build();
                let _ = m.choose("f", &ctx);
            }
            Err(e) => assert!(e.to_string().contains("recursion limit"), "{depth}: {e}"),
        }
    }
}

#[test]
fn huge_numbers_are_entry_errors_or_loaded() {
    let doc = json!({
        "a": {"id": 4294967296u64, "name": "a", "enabled": true, "version": "1", "type": "range_variant",
              "experiment": {"experiment_version": 1, "bucket_val": "user_id"}},
        "b": {"id": 1, "name": "b", "enabled": true, "version": "1", "type": "range_variant",
              "start_ts": u64::MAX, "emit_event": true, "experiment": {"experiment_version": 1, "bucket_val": "user_id",
              "variants": [{"name": "v", "range_start": -1e300, "range_end": 1e300}]}},
        "c": {"id": 2, "name": "c", "enabled": true, "version": "1", "type": "dynamic_config",
              "value": 1.7e308, "experiment": {"experiment_version": 1}},
    });
    let m = Manifest::from_str(&doc.to_string()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(m.errors().keys().collect::<Vec<_>>(), ["a"]);
    assert_eq!(m.feature("b").map(|f| f.variants()[0].buckets()), Some((0, u16::MAX)));
    let ctx = Context::builder().user_id("t2_x").build();
    assert!(m.choose("b", &ctx).is_err()); // malformed event: start_ts beyond i64
    assert_eq!(m.get_float("c", &ctx), Ok(1.7e308));
}

/// The service layer on the same arbitrary documents, with arbitrary (dynamically typed)
/// `DeciderContext` kwargs: no call panics and a request replays identically.
mod wrapper {
    use super::*;
    use experiments_decider::{WrapperContext, WrapperEvent, WrapperRequest};

    const FIELDS: &[&str] = &[
        "user_id",
        "app_name",
        "build_number",
        "other_fields",
        "variant",
        "num",
        "canonical_url",
        "conversion_pixel_id",
        "correlation_id",
    ];

    fn kwargs() -> impl Strategy<Value = Value> {
        (
            prop::collection::vec(
                (prop::sample::select(WrapperContext::KEYWORDS.to_vec()), json_value()),
                0..6,
            ),
            prop::collection::vec((prop::sample::select(FIELDS), json_value()), 0..5),
        )
            .prop_map(|(typed, extracted)| {
                let mut m: Map<String, Value> =
                    typed.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
                if !extracted.is_empty() {
                    m.insert(
                        "extracted_fields".into(),
                        Value::Object(
                            extracted.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
                        ),
                    );
                }
                Value::Object(m)
            })
    }

    fn replay(m: &Manifest, ctx: &WrapperContext, exposure: &Map<String, Value>) -> Vec<String> {
        let stamp =
            EventStamp { client_ts_ms: 1, uuid: Uuid::nil(), correlation_fallback: Uuid::nil() };
        let mut r = WrapperRequest::new(Some(m), ctx.clone(), Vec::<WrapperEvent>::new());
        let mut out = Vec::new();
        let names: Vec<String> =
            m.features().map(|f| f.name().to_owned()).chain(["missing".to_owned()]).collect();
        for name in &names {
            out.push(format!("{:?}", r.get_variant(name, exposure)));
            out.push(format!("{:?}", r.get_variant_without_expose(name)));
            r.expose(name, Some("a"), exposure);
            for t in ["user_id", "conversion_pixel_id", "User_Id"] {
                out.push(format!("{:?}", r.get_variant_for_identifier(name, "t2_x", t, exposure)));
            }
            out.push(format!("{:?}", r.get_map(name, None)));
            out.push(format!("{} {}", r.get_int(name, 0), r.get_float(name, 0.5)));
            out.push(format!("{:?}", r.get_experiment(name)));
        }
        out.push(format!("{:?}", r.get_all_variants_without_expose()));
        out.push(format!(
            "{:?}",
            r.get_all_variants_for_identifier_without_expose("t2_x", "user_id")
        ));
        out.push(format!("{:?}", r.get_all_dynamic_configs()));
        for e in r.into_handler() {
            let mut json = Vec::new();
            e.write_json(&mut json);
            out.push(String::from_utf8_lossy(&json).into_owned());
            out.push(e.to_v2_json(&stamp));
        }
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        #[test]
        fn wrapper_requests_never_panic_and_replay_identically(
            doc in document(),
            kwargs in kwargs(),
            exposure in prop::collection::vec((prop::sample::select(KEYS), json_value()), 0..3),
        ) {
            let Ok(m) = Manifest::from_str(&doc.to_string()) else { return Ok(()) };
            let Some(kwargs) = kwargs.as_object().cloned() else { return Ok(()) };
            let Ok(ctx) = WrapperContext::from_kwargs(kwargs) else { return Ok(()) };
            let exposure: Map<String, Value> =
                exposure.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
            let first = replay(&m, &ctx, &exposure);
            prop_assert_eq!(first, replay(&m, &ctx, &exposure));
        }
    }
}
