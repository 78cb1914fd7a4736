//! `experiments serve`: the OFREP evaluation sidecar ([`experiments_serve::Server`]) from a
//! settings document, until SIGTERM or SIGINT.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use experiments_sdk::ExperimentsClient;
use experiments_serve::{Server, read_settings_file};

/// `experiments serve` arguments.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The settings document: `config`, `events` and `sink` as for every client, plus the
    /// server's own `serve` section.
    #[arg(long)]
    settings: PathBuf,
    /// The address to listen on (default: `serve.listen`, else 127.0.0.1:8016). Port 0
    /// picks a free port; the line on standard output names it.
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Log lines on standard error as text or as JSON objects (level from `RUST_LOG`,
    /// `info` by default).
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

fn init_logs(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    // A subscriber set already (never in this binary) keeps that one.
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// Resolves when the process is asked to stop (SIGTERM, or SIGINT / Ctrl-C).
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Runs the server. Prints `experiments serve: listening on http://ADDR` on standard
/// output once it accepts connections, and the accounting line on standard error when it
/// stops. Exit status 0 after a clean stop (every request finished, every event delivered),
/// 1 when the stop lost something, 2 when it could not start.
pub fn run(args: ServeArgs) -> ExitCode {
    init_logs(args.log_format);
    let (settings, mut serve) = match read_settings_file(&args.settings) {
        Ok(read) => read,
        Err(e) => {
            crate::complain("serve", format_args!("{}: {e}", args.settings.display()));
            return ExitCode::from(2);
        }
    };
    if let Some(listen) = args.listen {
        serve.listen = listen;
    }
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            crate::complain("serve", e);
            return ExitCode::from(2);
        }
    };
    let outcome = rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(serve.listen)
            .await
            .map_err(|e| format!("cannot listen on {}: {e}", serve.listen))?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        let client = ExperimentsClient::from_settings(settings).await.map_err(|e| e.to_string())?;
        let server = Server::new(client, serve).map_err(|e| e.to_string())?;
        {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "experiments serve: listening on http://{addr}");
            let _ = out.flush();
        }
        tracing::info!(%addr, "listening");
        server.run(listener, stop_signal()).await.map_err(|e| e.to_string())
    });
    match outcome {
        Ok(report) => {
            let (events, delivered, dropped, remaining) = match &report.flush {
                Some(f) => (
                    f.counters.accepted,
                    f.counters.delivered,
                    f.counters.dropped.total(),
                    f.remaining,
                ),
                None => (0, 0, 0, 0),
            };
            let _ = writeln!(
                std::io::stderr().lock(),
                "requests={} events={events} delivered={delivered} dropped={dropped} \
                 remaining={remaining} drained={}",
                report.requests,
                report.drained
            );
            if report.drained && dropped == 0 && remaining == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => {
            crate::complain("serve", e);
            ExitCode::from(2)
        }
    }
}
