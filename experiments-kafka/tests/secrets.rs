//! Secret librdkafka properties never show: not in `Debug` of the settings or the logger,
//! not in the errors of `KafkaSink::new` (librdkafka's messages and rdkafka's errors quote
//! values), not in settings deserialization errors. No broker is needed: every case fails
//! or succeeds while the client is being built.

use experiments_kafka::{KafkaSettings, KafkaSink, KafkaSinkError};

/// A value that must never be printed.
const V: &str = "HUNTER2-s3cr3t-value";

fn settings(props: &[(&str, &str)]) -> KafkaSettings {
    let mut s = KafkaSettings::new("127.0.0.1:1", "experiments");
    s.properties = props.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    s
}

fn assert_hidden(text: &str, value: &str) {
    assert!(!text.contains(value), "the value shows: {text}");
    // Not even a recognizable piece of it.
    assert!(
        !text.contains("HUNTER2") && !text.contains("s3cr3t"),
        "part of the value shows: {text}"
    );
}

/// Properties librdkafka refuses (not in this build, Java-only, misspelled, upper-case, an
/// invalid value) give errors naming the property, never its value, in `Display` and
/// `Debug`.
#[tokio::test]
async fn config_errors_name_the_property_but_never_its_value() {
    let pem = format!("-----BEGIN PRIVATE KEY-----\n{V}\n-----END PRIVATE KEY-----\n");
    let jaas = format!(
        r#"org.apache.kafka.common.security.plain.PlainLoginModule required username="u" password="{V}";"#
    );
    let cases: Vec<(&str, String, bool)> = vec![
        // (key, value, whether librdkafka must refuse it whatever the build)
        ("ssl.key.password", V.into(), false),
        ("ssl.key.pem", pem.clone(), false),
        ("ssl.keystore.password", V.into(), false),
        ("sasl.jaas.config", jaas, true),
        ("sasl.oauthbearer.client.secret", V.into(), false),
        ("sasl.oauthbearer.assertion.private.key.passphrase", V.into(), false),
        ("sasl.oauthbearer.assertion.private.key.pem", pem, false),
        ("SSL.KEY.PASSWORD", V.into(), true),
        ("Sasl.Password", V.into(), true),
        ("ssl.key.pasword", V.into(), true),
        ("sasl.passwd", V.into(), true),
        ("sasl_password", V.into(), true),
        ("linger.ms", V.into(), true),
        ("security.protocol", V.into(), true),
    ];
    for (key, value, must_fail) in cases {
        match KafkaSink::new(settings(&[(key, &value)])).await {
            Err(e) => {
                for text in [e.to_string(), format!("{e:?}")] {
                    assert_hidden(&text, &value);
                    assert!(text.contains(key), "{key}: the property is named: {text}");
                }
                assert!(matches!(e, KafkaSinkError::Config { .. }), "{key}: {e:?}");
            }
            Ok(logger) => {
                assert!(!must_fail, "{key}: librdkafka accepted it");
                assert_hidden(&format!("{logger:?}"), &value);
            }
        }
    }
}

/// A NUL byte in a value is reported against its property, without the value (rdkafka's
/// own error does not say which property, and its `Debug` form carries the bytes).
#[tokio::test]
async fn a_nul_byte_names_the_property() {
    let value = format!("{V}\0tail");
    let e = KafkaSink::new(settings(&[("sasl.password", &value)])).await.unwrap_err();
    for text in [e.to_string(), format!("{e:?}")] {
        assert_hidden(&text, V);
        assert!(text.contains("sasl.password"), "{text}");
        assert!(text.to_ascii_lowercase().contains("nul"), "the problem is named: {text}");
    }
}

/// `Debug` redacts every property librdkafka marks sensitive, their upper-case and
/// misspelled forms, and anything that looks like a credential; ordinary properties stay
/// readable.
#[test]
fn debug_hides_every_sensitive_property() {
    let keys = [
        // librdkafka's _RK_SENSITIVE properties (rdkafka_conf.c) and their aliases.
        "ssl.key.location",
        "ssl.key.password",
        "ssl.key.pem",
        "ssl_key",
        "ssl.ca.pem",
        "ssl.keystore.password",
        "sasl.username",
        "sasl.password",
        "sasl.oauthbearer.config",
        "sasl.oauthbearer.client.secret",
        "sasl.oauthbearer.client.credentials.client.secret",
        "sasl.oauthbearer.assertion.private.key.file",
        "sasl.oauthbearer.assertion.private.key.passphrase",
        "sasl.oauthbearer.assertion.private.key.pem",
        // Java-only and look-alikes.
        "sasl.jaas.config",
        "ssl.truststore.password",
        "sasl.oauthbearer.extensions",
        "sasl.oauthbearer.assertion.file",
        // Case and spelling.
        "SASL.OAUTHBEARER.CONFIG",
        "Sasl.Username",
        "SSL.KEY.PASSWORD",
        "ssl.key.pasword",
        "sasl.passwd",
        "sasl_password",
        "sasl.oauthbearer.confg",
        "my.api.token",
        "cloud.credentials",
    ];
    let mut s = settings(&[("linger.ms", "17"), ("client.id", "svc-a")]);
    for (i, k) in keys.iter().enumerate() {
        s.properties.insert(k.to_string(), format!("{V}-{i}"));
    }
    let debug = format!("{s:?}");
    assert_hidden(&debug, V);
    for k in keys {
        assert!(debug.contains(k), "the property is listed: {k}");
    }
    assert!(debug.contains(r#""linger.ms": "17""#), "{debug}");
    assert!(debug.contains(r#""client.id": "svc-a""#), "{debug}");
}

/// A property given with the wrong JSON type gives an error naming it without quoting the
/// value (serde's default message quotes numbers and booleans).
#[test]
fn wrongly_typed_properties_are_not_quoted() {
    for value in [
        "987654321",
        "-987654321",
        "9.87654321e8",
        "true",
        r#"{"x": "HUNTER2"}"#,
        r#"["HUNTER2"]"#,
        "null",
    ] {
        let text = format!(
            r#"{{"brokers": "b", "topic": "t", "properties": {{"sasl.password": {value}}}}}"#
        );
        let err = serde_json::from_str::<KafkaSettings>(&text).unwrap_err().to_string();
        assert!(
            !err.contains("987654321") && !err.contains("HUNTER2") && !err.contains("true"),
            "{value}: {err}"
        );
        assert!(err.contains("sasl.password"), "{value}: {err}");
    }
    let s: KafkaSettings = serde_json::from_str(
        r#"{"brokers": "b", "topic": "t", "properties": {"sasl.password": "x", "linger.ms": "5"}}"#,
    )
    .unwrap();
    assert_eq!(s.properties["linger.ms"], "5");
}
