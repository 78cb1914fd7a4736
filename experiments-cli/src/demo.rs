//! `experiments demo`: synthetic traffic through the real client.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};
use experiments_sdk::events::Encoding;
use experiments_sdk::watch::{
    ConfigSource, ConfigStore, Dialect, Origin, SourceError, SourceGuard, detect_dialect,
};
use experiments_sdk::{
    Config, ConfigSettings, CorrelationId, DeciderContext, ExperimentsClient, Inputs, Settings,
    SinkSettings, Startup,
};
use serde_json::json;

/// The example config embedded in the binary: a copy of
/// `experiments-core/examples/experiments.json` kept inside this crate so it packages on its
/// own (a test checks the two are identical).
pub const EXAMPLE_CONFIG: &str = include_str!("example-experiments.json");

/// The decider example embedded in the binary (`demo --dialect decider`): a holdout, a
/// mutually exclusive group of two experiments, a targeted experiment bucketing on
/// `device_id`, a dynamic config.
pub const EXAMPLE_DECIDER_CONFIG: &str = include_str!("example-decider.json");

/// Where the demo's events go.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum SinkKind {
    /// JSON lines (or v2) on standard output.
    #[default]
    Stdout,
    /// A Kafka topic.
    Kafka,
    /// A v2 event collector over HTTP.
    Http,
}

/// Event encoding.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum EncodingArg {
    /// The documented JSON object.
    #[default]
    Json,
    /// Reddit's v2 Thrift-JSON.
    V2,
}

/// Arguments of `experiments demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// A settings document (config source, start-up policy, pipeline, sink), as a service
    /// reads it; the client is built exactly as a service builds it. Replaces --config,
    /// --watch, --sink and the sink flags.
    #[arg(long, conflicts_with_all = ["config", "watch", "sink", "format", "http_url", "http_key_secret"])]
    settings: Option<PathBuf>,
    /// The experiments.json to use (default: an example embedded in the binary).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Requests to simulate.
    #[arg(long, default_value_t = 10_000)]
    requests: u64,
    /// Requests per second (0: as fast as possible).
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// Follow --config for changes while running.
    #[arg(long)]
    watch: bool,
    /// The dialect of --config (default: detected; with no --config, `decider` runs an
    /// embedded decider example): decider requests get every variant and dynamic config.
    #[arg(long, value_enum, conflicts_with = "settings")]
    dialect: Option<crate::Dialect>,
    /// Where events go.
    #[arg(long, value_enum)]
    sink: Option<SinkKind>,
    /// Event encoding.
    #[arg(long, value_enum)]
    format: Option<EncodingArg>,
    /// Kafka bootstrap servers.
    #[arg(long, default_value = "127.0.0.1:9092")]
    kafka_brokers: String,
    /// Kafka topic (created when missing).
    #[arg(long, default_value = "experiments")]
    kafka_topic: String,
    /// Collector URL, e.g. `https://collector.example/v2`.
    #[arg(long)]
    http_url: Option<String>,
    /// Signing key name.
    #[arg(long, default_value = "experiments")]
    http_key_name: String,
    /// Signing secret, base64.
    #[arg(long)]
    http_key_secret: Option<String>,
}

fn synthetic_inputs(i: u64) -> Inputs {
    // Spread ids like real account ids (a multiplicative hash of the counter).
    let id = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 24;
    Inputs::new()
        .with("user_id", format!("t2_{id:x}"))
        .with("logged_in", !i.is_multiple_of(3))
        .with("app_name", ["ios", "android", "web"][(i % 3) as usize])
        .with("country", ["US", "CA", "DE", "BR"][(i % 4) as usize])
        .with("account_age_days", (i % 400) as i64)
        .with("is_employee", i.is_multiple_of(50))
        .with("device_id", format!("dev-{}", i % 1000))
        .with("user_name", if i.is_multiple_of(97) { "spez" } else { "someone" })
}

/// The sink the flags describe, as a settings document would name it.
fn sink_settings(args: &DemoArgs) -> Result<SinkSettings, String> {
    let encoding = match args.format.unwrap_or_default() {
        EncodingArg::Json => Encoding::Json,
        EncodingArg::V2 => Encoding::V2,
    };
    let document = match args.sink.unwrap_or_default() {
        SinkKind::Stdout => json!({"stdout": {"encoding": encoding}}),
        SinkKind::Kafka => json!({"kafka": {
            "brokers": args.kafka_brokers, "topic": args.kafka_topic, "encoding": encoding,
            "create_topic": {"partitions": 3, "replication": 1}}}),
        SinkKind::Http => {
            let url = args.http_url.clone().ok_or("--sink http needs --http-url")?;
            let secret = args
                .http_key_secret
                .as_deref()
                .ok_or("--sink http needs --http-key-secret (base64)")?;
            json!({"http": {"url": url, "key_name": args.http_key_name, "secret": secret,
                            "format": encoding}})
        }
    };
    // Through the settings parser, so the flags and a settings file mean the same.
    let settings = Settings::from_value(json!({"config": {"path": "-"}, "sink": document}))
        .map_err(|e| e.to_string())?;
    Ok(settings.sink)
}

/// The client: from the settings document when given, else from the flags (the embedded
/// example config when there is no --config).
async fn client(args: &DemoArgs) -> Result<ExperimentsClient, String> {
    if let Some(file) = &args.settings {
        return ExperimentsClient::from_settings_file(file).await.map_err(|e| e.to_string());
    }
    let builder = ExperimentsClient::builder().sink_settings(sink_settings(args)?);
    let flag = args.dialect.map(|d| match d {
        crate::Dialect::Baseplate => Dialect::Baseplate,
        crate::Dialect::Decider => Dialect::Decider,
    });
    let builder = match (&args.config, args.watch) {
        (None, true) => return Err("--watch needs --config FILE".into()),
        // The embedded decider example, through the store a file would feed.
        (None, false) if flag == Some(Dialect::Decider) => {
            builder.config_source(Embedded(EXAMPLE_DECIDER_CONFIG)).dialect(flag)
        }
        (None, false) => builder.config(Config::parse(EXAMPLE_CONFIG).map_err(|e| e.to_string())?),
        (Some(path), true) => builder
            .config_settings(ConfigSettings::file(path))
            .dialect(flag)
            .startup(Startup::Wait, Duration::from_secs(5)),
        (Some(path), false) => {
            let detected = std::fs::read(path).ok().and_then(|b| detect_dialect(&b));
            if flag.or(detected) == Some(Dialect::Decider) {
                builder
                    .config_settings(ConfigSettings::file(path))
                    .dialect(Some(Dialect::Decider))
                    .startup(Startup::FailFast, Duration::from_secs(10))
            } else {
                builder.config(crate::load_config(path)?)
            }
        }
    };
    builder.build().await.map_err(|e| e.to_string())
}

async fn traffic(
    args: &DemoArgs,
) -> Result<(u64, u64, experiments_sdk::events::FlushReport), String> {
    let client = client(args).await?;
    let decider = client.status().dialect == Some(Dialect::Decider);
    let started = Instant::now();
    let mut failed = 0u64;
    for i in 0..args.requests {
        let id = CorrelationId::from_request_id(&format!("demo-{i}")).ok_or("correlation id")?;
        if decider {
            failed += decider_request(&client, i, &id);
        } else {
            let inputs = synthetic_inputs(i);
            let request = client.request_builder().correlation_id(id).start();
            for name in request.names() {
                match request.variant(name, &inputs) {
                    Ok(Some(v)) => {
                        request.expose(name, Some(v), &inputs);
                    }
                    Ok(None) => {}
                    Err(_) => failed += 1,
                }
            }
        }
        if args.rate > 0 {
            let due = started + Duration::from_secs_f64((i + 1) as f64 / args.rate as f64);
            tokio::time::sleep_until(due.into()).await;
        }
        // Unpaced, the demo produces faster than a sink drains: let the pipeline catch up
        // rather than measure drops (a real service's traffic is paced by its requests).
        if let Some(p) = client.pipeline() {
            while p.counters().in_flight as usize > p.settings().queue_capacity / 2 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
    }
    let report = client
        .shutdown(Duration::from_secs(30))
        .await
        .ok_or("the sink is `none`: no events to report")?;
    Ok((args.requests, failed, report))
}

/// One synthetic request of the decider dialect: every range feature's variant (exposed) and
/// every dynamic config. Returns the calls that failed.
fn decider_request(client: &ExperimentsClient, i: u64, id: &CorrelationId) -> u64 {
    let inputs = synthetic_inputs(i);
    let text = |key: &str| inputs.get(key).and_then(|v| v.as_str()).unwrap_or_default().to_owned();
    let ctx = DeciderContext::builder()
        .user_id(&text("user_id"))
        .device_id(&text("device_id"))
        .country_code(&text("country"))
        .logged_in(inputs.get("logged_in").and_then(|v| v.as_bool()).unwrap_or(false))
        .build();
    let request = client.decider_request(ctx, Some(id));
    let Some(manifest) = request.manifest() else { return 0 };
    let kwargs = serde_json::Map::new();
    let mut failed = 0;
    for feature in manifest.features().filter(|f| f.is_range()) {
        failed += u64::from(request.try_get_variant(feature.name(), &kwargs).is_err());
    }
    let _configs = request.get_all_dynamic_configs();
    failed
}

/// A config given as text, fed to the store once (its dialect read like a file's).
struct Embedded(&'static str);

impl ConfigSource for Embedded {
    fn describe(&self) -> String {
        "embedded:example".into()
    }

    fn start(self: Box<Self>, store: ConfigStore) -> Result<SourceGuard, SourceError> {
        // The embedded example is valid; a failure would show in the store's status.
        let _ = store.offer_bytes(self.0.as_bytes(), Origin::Other("embedded example".into()));
        Ok(SourceGuard::new(()))
    }
}

/// Runs the demo and prints the accounting line on stderr.
pub fn run(args: DemoArgs) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            crate::complain("demo", e);
            return ExitCode::from(2);
        }
    };
    match rt.block_on(traffic(&args)) {
        Ok((requests, failed, report)) => {
            let c = report.counters;
            // Never panics: a closed standard error loses the line, not the exit status.
            let _ = writeln!(
                std::io::stderr().lock(),
                "requests={requests} events={} delivered={} dropped={} failed={failed}",
                c.accepted,
                c.delivered,
                c.dropped.total()
            );
            if c.dropped.total() == 0 && report.remaining == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => {
            crate::complain("demo", e);
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_embedded_example_is_the_core_crates_example() {
        let core =
            concat!(env!("CARGO_MANIFEST_DIR"), "/../experiments-core/examples/experiments.json");
        match std::fs::read_to_string(core) {
            Ok(text) => assert_eq!(text, super::EXAMPLE_CONFIG, "copy {core} into src/"),
            // Built from the published package: the workspace is not there.
            Err(e) => eprintln!("skipping: {core}: {e}"),
        }
    }
}
