//! `Inputs` built from an arbitrary JSON object (`From<Map>`, baseplate's `**kwargs`), then
//! evaluated against a small fixed config (`fixtures/inputs_config.json`: every baseplate
//! experiment type, with and without targeting and overrides, all active at `NOW`) with
//! `Experiments::variant`, traced, deduped, exposed, events serialized. Oracle: nothing
//! panics, a repeated call gives the same variant, `Deserialize` agrees with `From<Map>`.

#![no_main]

use std::sync::LazyLock;

use experiments_core::{
    Config, Event, Experiments, Explanation, FnHandler, Inputs, NoTrace, User, Value,
};
use libfuzzer_sys::fuzz_target;
use serde_json::Map;

const NOW: f64 = 1_700_000_000.0;

static CONFIG: LazyLock<Config> = LazyLock::new(|| {
    Config::parse(include_str!("../fixtures/inputs_config.json"))
        .unwrap_or_else(|e| panic!("fixtures/inputs_config.json: {e}"))
});

/// Every experiment of `config` for `inputs`: the first call traced when `trace`, a second
/// call (deduped), a third with the bucketing event forced, then exposed.
fn evaluate(config: &Config, inputs: &Inputs, trace: bool) {
    let mut sink = FnHandler(|event: &Event<'_>| {
        let _ = serde_json::to_string(event).map(|s| assert!(!s.is_empty()));
        let _ = event.to_owned_event().bucketing_value();
    });
    let mut request = Experiments::new(config, NOW, &mut sink);
    for name in config.names() {
        let traced = if trace {
            request.variant_traced(name, inputs, None, &mut Explanation::default())
        } else {
            request.variant_traced(name, inputs, None, &mut NoTrace)
        };
        let again = request.variant(name, inputs, None);
        match (&traced, &again) {
            (Ok((a, _)), Ok(b)) => assert_eq!(a, b, "{name}: a second call gave another variant"),
            (Err(a), Err(b)) => {
                assert_eq!(a, b, "{name}: a second call raised another error");
                let _ = (a.to_string(), a.python_exception());
            }
            _ => panic!("{name}: {traced:?} then {again:?}"),
        }
        let _ = request.variant(name, inputs, Some(true));
        if let Ok(v) = again {
            request.expose(name, v, inputs);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(map) = serde_json::from_slice::<Map<String, Value>>(data) else { return };
    let mut inputs = Inputs::from(map);
    if let Ok(same) = serde_json::from_slice::<Inputs>(data) {
        assert_eq!(inputs, same, "Deserialize and From<Map> disagree");
    }
    // Lookups of every key, exact and missing.
    let keys: Vec<String> = inputs.iter().map(|(k, _)| k.to_owned()).collect();
    for k in &keys {
        assert!(inputs.get(k).is_some(), "{k:?} inserted but not found");
        let _ = inputs.get_or_null(&k.to_lowercase());
    }
    let config = &*CONFIG;
    evaluate(config, &inputs, true);

    // The same inputs with the user's fields merged in (baseplate's `inputs.update(...)`),
    // without the first key.
    let user = User {
        user_id: Some("t2_abc".into()),
        logged_in: true,
        cookie_created_timestamp: Some(1_700_000_000_123),
    };
    inputs.merge_user(&user);
    if let Some(k) = keys.first() {
        let removed = inputs.remove(k);
        assert_eq!(removed.is_some(), inputs.get(k).is_none(), "{k:?} removed but still found");
    }
    evaluate(config, &inputs, false);
});
