//! `Manifest::from_slice` on arbitrary bytes. The input is `MANIFEST [\0 CONTEXT]`: the bytes
//! before the first NUL (never valid inside JSON text) are the document, the bytes after it a
//! JSON object for `Context::from_json` (an empty context when absent or not an object). For
//! a manifest that loads, every feature is chosen (plain and traced), its events serialized
//! with a fixed `EventStamp`, the typed getters called, and `choose_all` / `all_values`
//! walked. Oracle: nothing panics; choosing twice gives the same decision.

#![no_main]

use experiments_decider::{Context, EventStamp, Explanation, Manifest, Uuid, Value};
use libfuzzer_sys::fuzz_target;
use serde_json::Map;

const STAMP: EventStamp = EventStamp {
    client_ts_ms: 1_735_689_600_000,
    uuid: Uuid::from_u128(0x0123_4567_89ab_4def_8123_4567_89ab_cdef),
    correlation_fallback: Uuid::nil(),
};

fn context(bytes: &[u8]) -> Context {
    match serde_json::from_slice::<Map<String, Value>>(bytes) {
        Ok(object) => Context::from_json(&object).unwrap_or_else(|e| {
            assert!(!e.mismatches.is_empty());
            let _ = e.to_string();
            Context::new()
        }),
        Err(_) => Context::new(),
    }
}

fuzz_target!(|data: &[u8]| {
    let (doc, ctx) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let manifest = match Manifest::from_slice(doc) {
        Ok(m) => m,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    for (key, error) in manifest.errors() {
        let _ = (key, error.to_string());
    }
    let _ = format!("{:?}", manifest.warnings());
    let ctx = context(ctx);

    let mut out = String::new();
    for feature in manifest.features() {
        let name = feature.name();
        let _ = (manifest.feature_by_key(feature.key()), manifest.get_feature(name));
        let _ = (manifest.holdout_parent(feature), manifest.meg_parent(feature));
        for v in feature.variants() {
            let _ = (v.name(), v.range(), v.buckets(), v.emit_event_override());
        }
        let _ = feature.dynamic_value();
        let mut trace = Explanation::default();
        let traced = manifest.choose_traced(name, &ctx, &mut trace);
        match manifest.choose(name, &ctx) {
            Ok(decision) => {
                let Ok(first) = traced else { panic!("{name}: traced failed, plain decided") };
                assert_eq!(first.variant(), decision.variant(), "{name}: two variants");
                assert_eq!(
                    first.events().len(),
                    decision.events().len(),
                    "{name}: two event lists"
                );
                let _ = (decision.value(), decision.feature_id(), decision.feature_version());
                for event in decision.events() {
                    out.clear();
                    event.write_v2_json(&STAMP, &mut out);
                    assert_eq!(out, event.to_v2_json(&STAMP));
                    let _ = (event.legacy(), event.exposure_key(), event.bucketing_value());
                    let _ =
                        (event.kind().as_str(), event.variant(), event.correlation_id(Uuid::nil()));
                }
            }
            Err(e) => {
                assert!(traced.is_err(), "{name}: plain failed, traced decided");
                let _ = (e.to_string(), e.kind());
            }
        }
        let _ = manifest.get_bool(name, &ctx).map_err(|e| e.to_string());
        let _ = manifest.get_int(name, &ctx).map_err(|e| e.to_string());
        let _ = manifest.get_float(name, &ctx).map_err(|e| e.to_string());
        let _ = manifest.get_string(name, &ctx).map_err(|e| e.to_string());
        let _ = manifest.get_map(name, &ctx).map_err(|e| e.to_string());
    }
    for d in manifest.choose_all(&ctx, None) {
        for event in d.events() {
            let _ = event.to_v2_json(&STAMP);
        }
    }
    let _ = manifest.choose_all(&ctx, Some("user_id")).count();
    let _ = manifest.all_values(&ctx).count();
});
