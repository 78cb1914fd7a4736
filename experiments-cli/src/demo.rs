//! `experiments demo`: synthetic traffic through the real client.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};
use experiments_sdk::events::{Encoding, EventSink, Pipeline, PipelineSettings, StdoutSink};
use experiments_sdk::http::{HttpSettings, HttpSink, Secret};
use experiments_sdk::kafka::{CreateTopic, KafkaSettings, KafkaSink};
use experiments_sdk::watch::{ConfigWatcher, WatchSettings};
use experiments_sdk::{Config, ExperimentsClient, Inputs};

/// The example config embedded in the binary (`experiments-core/examples/experiments.json`).
pub const EXAMPLE_CONFIG: &str = include_str!("../../experiments-core/examples/experiments.json");

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
    /// Where events go.
    #[arg(long, value_enum, default_value_t)]
    sink: SinkKind,
    /// Event encoding.
    #[arg(long, value_enum, default_value_t)]
    format: EncodingArg,
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

async fn pipeline(args: &DemoArgs) -> Result<Pipeline, String> {
    let encoding = match args.format {
        EncodingArg::Json => Encoding::Json,
        EncodingArg::V2 => Encoding::V2,
    };
    let base = PipelineSettings { encoding, ..PipelineSettings::default() };
    fn start(settings: PipelineSettings, logger: impl EventSink) -> Result<Pipeline, String> {
        Pipeline::start(settings, logger).map_err(|e| e.to_string())
    }
    match args.sink {
        SinkKind::Stdout => start(base, StdoutSink::stdout()),
        SinkKind::Kafka => {
            let mut s = KafkaSettings::new(&args.kafka_brokers, &args.kafka_topic);
            s.encoding = encoding;
            s.create_topic = Some(CreateTopic { partitions: 3, replication: 1 });
            let logger = KafkaSink::new(s).await.map_err(|e| e.to_string())?;
            start(logger.pipeline_settings(base), logger)
        }
        SinkKind::Http => {
            let url = args.http_url.clone().ok_or("--sink http needs --http-url")?;
            let secret = args
                .http_key_secret
                .as_deref()
                .ok_or("--sink http needs --http-key-secret (base64)")?;
            let secret = Secret::from_base64(secret)
                .map_err(|e| format!("--http-key-secret is not base64: {e}"))?;
            let mut s = HttpSettings::new(url, &args.http_key_name, secret);
            s.format = encoding;
            let logger = HttpSink::new(s).map_err(|e| e.to_string())?;
            start(logger.pipeline_settings(base), logger)
        }
    }
}

async fn client(args: &DemoArgs, pipeline: Pipeline) -> Result<ExperimentsClient, String> {
    match (&args.config, args.watch) {
        (None, true) => Err("--watch needs --config FILE".into()),
        (None, false) => {
            let config = Config::parse(EXAMPLE_CONFIG).map_err(|e| e.to_string())?;
            Ok(ExperimentsClient::from_config(config, Some(pipeline)))
        }
        (Some(path), true) => {
            let settings = WatchSettings {
                timeout: Some(Duration::from_secs(5)),
                ..WatchSettings::for_path(path)
            };
            let watcher = ConfigWatcher::start(settings).map_err(|e| e.to_string())?;
            Ok(ExperimentsClient::from_watcher(watcher, Some(pipeline)))
        }
        (Some(path), false) => {
            let config = crate::load_config(path)?;
            Ok(ExperimentsClient::from_config(config, Some(pipeline)))
        }
    }
}

async fn traffic(
    args: &DemoArgs,
) -> Result<(u64, u64, experiments_sdk::events::FlushReport), String> {
    let pipeline = pipeline(args).await?;
    let client = client(args, pipeline).await?;
    let started = Instant::now();
    let mut failed = 0u64;
    for i in 0..args.requests {
        let inputs = synthetic_inputs(i);
        let mut request = client.request_with(Some(format!("demo-{i}").into()), crate::epoch_now());
        let names: Vec<String> = request.names().into_iter().map(str::to_owned).collect();
        for name in names {
            match request.variant(&name, &inputs, None) {
                Ok(Some(v)) => {
                    let v = v.to_owned();
                    request.expose(&name, Some(&v), &inputs);
                }
                Ok(None) => {}
                Err(_) => failed += 1,
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
    let report = client.shutdown(Duration::from_secs(30)).await.ok_or("no pipeline")?;
    Ok((args.requests, failed, report))
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
