//! `experiments`: see what a config does before it ships, debug why a user got a variant,
//! and run the whole pipeline on synthetic traffic.

mod check;
mod demo;
mod eval;
mod simulate;
mod stats;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use clap::{Parser, Subcommand, ValueEnum};
use experiments::{Config, Inputs, Value};

/// Server-side A/B experiments, compatible with baseplate.lib.experiments.
#[derive(Debug, Parser)]
#[command(name = "experiments", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Output format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// For people.
    #[default]
    Text,
    /// For programs.
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Validate a config: every experiment valid or invalid with the reason, plus warnings.
    /// Exit status 0: all valid, 1: some invalid, 2: unreadable or not a JSON object.
    Check {
        /// The experiments.json file.
        file: PathBuf,
        /// Evaluate time windows at this instant (epoch seconds; default: now).
        #[arg(long)]
        now: Option<f64>,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Which variant the inputs get, the event that would be logged, and why.
    Eval {
        /// The experiments.json file.
        file: PathBuf,
        /// The experiment.
        experiment: String,
        /// Inputs as KEY=VALUE; VALUE is JSON when it parses as JSON, else a string.
        inputs: Vec<String>,
        /// Evaluate at this instant (epoch seconds; default: now).
        #[arg(long)]
        now: Option<f64>,
        /// Print the decision path.
        #[arg(long)]
        explain: bool,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Bucket synthetic ids and compare each variant's share with its configured size.
    Simulate {
        /// The experiments.json file.
        file: PathBuf,
        /// The experiment.
        experiment: String,
        /// Extra inputs as KEY=VALUE (VALUE is JSON when it parses as JSON).
        inputs: Vec<String>,
        /// How many ids.
        #[arg(long, default_value_t = 100_000)]
        ids: u64,
        /// Ids are this prefix followed by a counter.
        #[arg(long, default_value = "t2_")]
        id_prefix: String,
        /// Evaluate at this instant (epoch seconds; default: now).
        #[arg(long)]
        now: Option<f64>,
    },
    /// Synthetic traffic through the real client: watcher, per-request objects, pipeline, sink.
    Demo(demo::DemoArgs),
}

/// Seconds since the epoch.
pub fn epoch_now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

/// Reads and parses a config file; the error says why (exit status 2).
pub fn load_config(path: &Path) -> Result<Config, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    Config::from_slice(&bytes).map_err(|e| format!("{}: {e}", path.display()))
}

/// `KEY=VALUE` arguments as inputs, in order.
pub fn parse_inputs(args: &[String]) -> Result<Inputs, String> {
    let mut inputs = Inputs::new();
    for a in args {
        let Some((k, v)) = a.split_once('=') else {
            return Err(format!("input {a:?} is not KEY=VALUE"));
        };
        let value =
            serde_json::from_str::<Value>(v).unwrap_or_else(|_| Value::String(v.to_owned()));
        inputs.insert(k, value);
    }
    Ok(inputs)
}

/// The config and the `KEY=VALUE` inputs of a subcommand; on failure the message is printed
/// and the exit status (2) returned.
pub fn config_and_inputs(
    command: &str,
    file: &Path,
    args: &[String],
) -> Result<(Config, Inputs), ExitCode> {
    load_config(file).and_then(|c| Ok((c, parse_inputs(args)?))).map_err(|e| {
        eprintln!("experiments {command}: {e}");
        ExitCode::from(2)
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check { file, now, format } => {
            check::run(&file, now.unwrap_or_else(epoch_now), format)
        }
        Command::Eval { file, experiment, inputs, now, explain, format } => {
            eval::run(&file, &experiment, &inputs, now.unwrap_or_else(epoch_now), explain, format)
        }
        Command::Simulate { file, experiment, inputs, ids, id_prefix, now } => simulate::run(
            &file,
            &experiment,
            &inputs,
            ids,
            &id_prefix,
            now.unwrap_or_else(epoch_now),
        ),
        Command::Demo(args) => demo::run(args),
    }
}
