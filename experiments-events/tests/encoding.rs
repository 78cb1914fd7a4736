//! Both encodings, byte for byte, against hand-written expected documents.

use std::sync::Arc;

use experiments_core::{Config, Experiments, Inputs, OwnedEvent};
use experiments_events::{Encoding, EnrichedEvent};
use uuid::Uuid;

const CONFIG: &str = r#"{
  "exp": {"id": 42, "name": "exp", "owner": "growth", "type": "single_variant", "version": "7",
    "start_ts": 1600000000, "stop_ts": 1900000000.5,
    "experiment": {"experiment_version": 3, "bucket_val": "user_id",
      "variants": [{"name": "control", "size": 0.5}, {"name": "treatment", "size": 0.5}],
      "overrides": [{"treatment": {"EQ": {"field": "user_id", "value": "t2_vip"}}}]}},
  "off": {"id": 5, "name": "off", "type": "r2", "enabled": false, "start_ts": 0, "stop_ts": 1}
}"#;

fn events(inputs: &Inputs, expose: Option<&str>) -> Vec<OwnedEvent> {
    let config = Config::parse(CONFIG).unwrap();
    let mut out = Vec::new();
    let mut client = Experiments::new(&config, 1_700_000_000.0, &mut out);
    match expose {
        Some(name) => {
            client.expose(name, None, inputs);
        }
        None => {
            client.variant("exp", inputs, None).unwrap();
        }
    }
    drop(client);
    out
}

fn enrich(event: OwnedEvent, correlation: Option<&str>) -> EnrichedEvent {
    EnrichedEvent {
        event,
        uuid: Uuid::parse_str("0b7f6f3e-6d0b-4a9c-9c1f-3a2b1c0d9e8f").unwrap(),
        client_timestamp_ms: 1_700_000_000_123,
        correlation_id: correlation.map(Arc::from),
    }
}

fn vip() -> Inputs {
    Inputs::new()
        .with("user_id", "t2_vip")
        .with("logged_in", true)
        .with("cookie_created_timestamp", 1_600_000_000_000i64)
        .with("app_name", "ios")
}

#[test]
fn json_encoding_is_stable() {
    let e = enrich(events(&vip(), None).remove(0), Some("req-1"));
    let got = String::from_utf8(e.encode(Encoding::Json).unwrap()).unwrap();
    let want = concat!(
        r#"{"uuid":"0b7f6f3e-6d0b-4a9c-9c1f-3a2b1c0d9e8f","client_timestamp":1700000000123,"#,
        r#""correlation_id":"req-1","event_type":"choose","variant":"treatment","user_id":"t2_vip","#,
        r#""logged_in":true,"cookie_created_timestamp":1600000000000,"app_name":"ios","#,
        r#""experiment":{"class":"SimpleExperiment","id":42,"name":"exp","owner":"growth","version":3,"#,
        r#""start_ts":1600000000.0,"stop_ts":1900000000.5},"#,
        r#""bucketing":{"field":"user_id","value":"t2_vip"},"is_override":true,"#,
        r#""inputs":{"user_id":"t2_vip","logged_in":true,"cookie_created_timestamp":1600000000000,"app_name":"ios"}}"#
    );
    assert_eq!(got, want);
}

#[test]
fn v2_encoding_follows_the_thrift_json_schema() {
    let e = enrich(events(&vip(), None).remove(0), Some("req-1"));
    let got = String::from_utf8(e.encode(Encoding::V2).unwrap()).unwrap();
    let want = concat!(
        r#"{"1":{"str":"experiment"},"2":{"str":"choose"},"3":{"str":"user_id"},"#,
        r#""5":{"i64":1700000000123},"6":{"str":"0b7f6f3e-6d0b-4a9c-9c1f-3a2b1c0d9e8f"},"8":{"str":"req-1"},"#,
        r#""107":{"rec":{"2":{"str":"ios"}}},"#,
        r#""112":{"rec":{"1":{"str":"t2_vip"},"3":{"tf":1},"4":{"i64":1600000000000}}},"#,
        r#""129":{"rec":{"1":{"i64":42},"2":{"str":"exp"},"3":{"str":"growth"},"4":{"str":"treatment"},"#,
        r#""5":{"i64":1600000000},"6":{"i64":1900000000},"7":{"str":"user_id"},"8":{"str":"3"},"#,
        r#""9":{"str":"t2_vip"},"10":{"tf":1}}}}"#
    );
    assert_eq!(got, want);
}

#[test]
fn v2_omits_absent_records() {
    // An expose of a forced (disabled r2) experiment, no user id, no app name, no correlation.
    let e = enrich(events(&Inputs::new().with("logged_in", false), Some("off")).remove(0), None);
    let got = String::from_utf8(e.encode(Encoding::V2).unwrap()).unwrap();
    let want = concat!(
        r#"{"1":{"str":"experiment"},"2":{"str":"expose"},"5":{"i64":1700000000123},"#,
        r#""6":{"str":"0b7f6f3e-6d0b-4a9c-9c1f-3a2b1c0d9e8f"},"129":{"rec":{"10":{"tf":0}}}}"#
    );
    assert_eq!(got, want);
    let json = String::from_utf8(e.encode(Encoding::Json).unwrap()).unwrap();
    assert!(json.contains(r#""experiment":{"class":"ForcedVariantExperiment"}"#), "{json}");
    assert!(json.contains(r#""bucketing":null"#), "{json}");
}

#[test]
fn enrich_assigns_fresh_ids_and_time() {
    let config = Config::parse(CONFIG).unwrap();
    let mut got = Vec::new();
    let mut sink = experiments_core::FnHandler(|e: &experiments_core::Event<'_>| {
        got.push(EnrichedEvent::new(e, None))
    });
    let mut client = Experiments::new(&config, 1_700_000_000.0, &mut sink);
    client.expose("exp", Some("control"), &vip());
    client.expose("exp", Some("control"), &vip());
    drop(client);
    assert_eq!(got.len(), 2);
    assert_ne!(got[0].uuid, got[1].uuid);
    assert_eq!(got[0].uuid.get_version_num(), 4);
    assert!(got[0].client_timestamp_ms > 1_700_000_000_000);
    assert_eq!(got[0].bucketing_value().as_deref(), Some("t2_vip"));
}
