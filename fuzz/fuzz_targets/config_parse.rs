//! `Config::from_slice` / `Config::parse` on arbitrary bytes; every config that loads is then
//! validated (what `experiments check` reports) and evaluated for a few fixed inputs, with
//! traces and serialized events. Oracle: nothing panics, and the byte and text entry points
//! agree.

#![no_main]

use experiments_core::{Config, Event, Experiments, Explanation, FnHandler, Inputs, Value};
use libfuzzer_sys::fuzz_target;
use serde_json::json;

/// Before, inside and after the usual windows.
const NOWS: [f64; 3] = [0.0, 1_700_000_000.0, 4_102_444_800.5];

fn inputs() -> [Inputs; 3] {
    [
        Inputs::new(),
        Inputs::new()
            .with("user_id", "t2_abc")
            .with("logged_in", true)
            .with("device_id", "dev-7")
            .with("app_name", "ios")
            .with("num_votes", 7)
            .with("is_employee", true)
            .with("subreddit_id", "t5_x"),
        Inputs::new()
            .with("User_ID", 12.5)
            .with("user_id", json!(["t2_abc", null]))
            .with("logged_in", Value::Null)
            .with("loid", json!({"a": 1}))
            .with("content_id", -0.0)
            .with("user_name", "KN0THING"),
    ]
}

fuzz_target!(|data: &[u8]| {
    let from_bytes = Config::from_slice(data);
    if let Ok(text) = std::str::from_utf8(data) {
        let from_text = Config::parse(text);
        assert_eq!(from_bytes.is_ok(), from_text.is_ok(), "from_slice and parse disagree");
    }
    let config = match from_bytes {
        Ok(config) => config,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };

    // What `experiments check` does.
    for now in NOWS {
        let report = config.report(now);
        for e in &report.invalid {
            let _ = (e.to_string(), e.deviation.map(|d| d.label()));
        }
    }
    for entry in config.entries() {
        match entry {
            Ok(exp) => {
                let _ = (exp.key(), exp.name(), exp.id(), exp.owner(), exp.experiment_type());
                let _ = (exp.variant_names(), exp.expected_shares(), exp.targeting_errors());
                let _ = (exp.override_variants(), exp.window(), exp.static_error());
                for now in NOWS {
                    let _ = exp.lint(now);
                }
            }
            Err(e) => {
                let _ = e.to_string();
            }
        }
    }

    // Every experiment for each fixed input, at each instant, twice (dedupe) and exposed.
    let inputs = inputs();
    let mut sink = FnHandler(|event: &Event<'_>| {
        let _ = serde_json::to_string(event).map(|s| assert!(!s.is_empty()));
    });
    for now in NOWS {
        let mut request = Experiments::new(&config, now, &mut sink);
        let names: Vec<&str> = request.names().collect();
        for name in names {
            let _ = (request.is_valid(name), config.bucketing_field(name, now));
            for i in &inputs {
                let mut trace = Explanation::default();
                let traced = request.variant_traced(name, i, None, &mut trace);
                let plain = request.variant(name, i, Some(true));
                if let (Ok((a, _)), Ok(b)) = (&traced, &plain) {
                    assert_eq!(a, b, "{name}: a second call gave another variant");
                }
                match plain {
                    Ok(v) => {
                        request.expose(name, v, i);
                    }
                    Err(e) => {
                        let _ = (e.to_string(), e.python_exception());
                    }
                }
            }
        }
        // Unknown names are a lookup miss, not an error.
        if config.get("\u{0}missing").is_none() {
            assert_eq!(request.variant("\u{0}missing", &inputs[1], None), Ok(None));
        }
    }
});
