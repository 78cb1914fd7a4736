//! `experiments`: see what a config does before it ships, debug why a user got a variant,
//! and run the whole pipeline on synthetic traffic.

mod check;
mod decider_check;
mod decider_doc;
mod decider_eval;
mod decider_simulate;
mod demo;
mod eval;
mod serve;
mod simulate;
mod stats;

use std::fmt::Display;
use std::io::{self, BufWriter, StdoutLock, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use clap::{Args, Parser, Subcommand, ValueEnum};
use experiments_sdk::watch::detect_dialect;
use experiments_sdk::{Config, Inputs, Value};

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

/// The dialect of an `experiments.json`: the same file name is read by two engines with
/// different semantics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Dialect {
    /// `baseplate.lib.experiments`.
    Baseplate,
    /// reddit-decider (range variants, holdouts, mutually exclusive groups, dynamic configs).
    Decider,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Validate a config: every experiment valid or invalid with the reason, plus warnings.
    /// Exit status 0: all valid, 1: some invalid, 2: unreadable or not a JSON object.
    Check {
        /// The experiments.json file.
        file: PathBuf,
        #[command(flatten)]
        now: Now,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        format: Format,
        #[command(flatten)]
        dialect: DialectFlag,
    },
    /// Which variant the inputs get, the event that would be logged, and why.
    Eval {
        /// The experiments.json file.
        file: PathBuf,
        /// The experiment.
        experiment: String,
        /// Inputs as KEY=VALUE; VALUE is JSON when it parses as JSON, else a string.
        inputs: Vec<String>,
        #[command(flatten)]
        now: Now,
        /// Print the decision path.
        #[arg(long)]
        explain: bool,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        format: Format,
        #[command(flatten)]
        dialect: DialectFlag,
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
        #[command(flatten)]
        now: Now,
        #[command(flatten)]
        dialect: DialectFlag,
    },
    /// Synthetic traffic through the real client: watcher, per-request objects, pipeline, sink.
    Demo(demo::DemoArgs),
    /// Serve evaluations over OFREP (OpenFeature Remote Evaluation Protocol) to services in
    /// any language, with the settings document's config source, pipeline and sink, until
    /// SIGTERM or SIGINT.
    Serve(serve::ServeArgs),
}

/// `--dialect`, shared by the subcommands that read a config file.
#[derive(Clone, Copy, Debug, Args)]
pub struct DialectFlag {
    /// The config's dialect (default: detected from the document, baseplate when the document
    /// does not say).
    #[arg(long = "dialect", value_enum)]
    dialect: Option<Dialect>,
}

/// `--now`, shared by every subcommand that evaluates at an instant, so the instant is
/// validated in one place: a finite number of seconds since the epoch. NaN and the
/// infinities are rejected while the arguments are parsed (exit status 2, like every
/// unusable input), because time windows compared with them would be neither open nor
/// closed.
#[derive(Clone, Copy, Debug, Args)]
pub struct Now {
    /// Evaluate at this instant: seconds since the epoch, finite, may be negative or
    /// fractional (default: the clock).
    #[arg(long = "now", value_name = "SECONDS", value_parser = parse_instant, allow_hyphen_values = true)]
    now: Option<f64>,
}

impl Now {
    /// The given instant, else the clock's.
    pub fn resolve(self) -> f64 {
        self.now.unwrap_or_else(epoch_now)
    }
}

/// Parses `--now`: a decimal number (Rust's `f64` syntax, which also spells `NaN`, `inf`
/// and overflows like `1e400` to infinity), accepted only when finite.
pub fn parse_instant(text: &str) -> Result<f64, String> {
    let seconds: f64 =
        text.parse().map_err(|_| "not a number of seconds since the epoch".to_owned())?;
    if seconds.is_finite() {
        Ok(seconds)
    } else {
        Err("the instant must be a finite number of seconds since the epoch".to_owned())
    }
}

/// Seconds since the epoch, by the clock (0 before 1970).
pub fn epoch_now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

/// Where a subcommand writes its report: standard output, locked once and buffered, so a
/// large report costs one write per buffer rather than one per line.
pub type Out = BufWriter<StdoutLock<'static>>;

/// Runs `write` on the buffered standard output and returns `status`, turning write
/// failures into an exit status instead of a panic: a reader that stopped early (`| head`,
/// a closed pipe) ends the command quietly with `status`; any other failure is reported on
/// standard error with exit status 2.
pub fn emit(
    command: &str,
    status: ExitCode,
    write: impl FnOnce(&mut Out) -> io::Result<()>,
) -> ExitCode {
    let mut out = BufWriter::with_capacity(1 << 16, io::stdout().lock());
    match write(&mut out).and_then(|()| out.flush()) {
        Ok(()) => status,
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => status,
        Err(e) => {
            complain(command, format_args!("cannot write the output: {e}"));
            ExitCode::from(2)
        }
    }
}

/// Prints `experiments COMMAND: MESSAGE` on standard error; never panics (a closed standard
/// error loses the message).
pub fn complain(command: &str, message: impl Display) {
    let _ = writeln!(io::stderr().lock(), "experiments {command}: {message}");
}

/// A config file read once (so a pipe or a FIFO works too): its path, for messages, and its
/// bytes, or why they could not be read.
pub struct ConfigFile<'p> {
    /// Where the bytes come from.
    pub path: &'p Path,
    /// The content, or `cannot read PATH: REASON`.
    pub bytes: Result<Vec<u8>, String>,
}

impl<'p> ConfigFile<'p> {
    /// Reads `path` whole.
    pub fn read(path: &'p Path) -> Self {
        let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()));
        ConfigFile { path, bytes }
    }

    /// The dialect to read it in: `flag` when given, else what
    /// [`detect_dialect`] finds; baseplate when the document does not say (or is unreadable,
    /// so the baseplate report of the problem is unchanged).
    pub fn dialect(&self, flag: DialectFlag) -> Dialect {
        flag.dialect.unwrap_or_else(|| match &self.bytes {
            Ok(bytes)
                if detect_dialect(bytes) == Some(experiments_sdk::watch::Dialect::Decider) =>
            {
                Dialect::Decider
            }
            _ => Dialect::Baseplate,
        })
    }

    /// The bytes parsed as a baseplate config; the error says why (exit status 2).
    pub fn config(&self) -> Result<Config, String> {
        let bytes = self.bytes.as_ref().map_err(String::clone)?;
        Config::from_slice(bytes).map_err(|e| format!("{}: {e}", self.path.display()))
    }
}

/// Reads and parses a config file; the error says why (exit status 2).
pub fn load_config(path: &Path) -> Result<Config, String> {
    ConfigFile::read(path).config()
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
    file: &ConfigFile<'_>,
    args: &[String],
) -> Result<(Config, Inputs), ExitCode> {
    file.config().and_then(|c| Ok((c, parse_inputs(args)?))).map_err(|e| {
        complain(command, e);
        ExitCode::from(2)
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check { file, now, format, dialect } => {
            let file = ConfigFile::read(&file);
            match file.dialect(dialect) {
                Dialect::Decider => decider_check::run(&file, format),
                Dialect::Baseplate => check::run(&file, now.resolve(), format),
            }
        }
        Command::Eval { file, experiment, inputs, now, explain, format, dialect } => {
            let file = ConfigFile::read(&file);
            match file.dialect(dialect) {
                Dialect::Decider => {
                    decider_eval::run(&file, &experiment, &inputs, now.resolve(), explain, format)
                }
                Dialect::Baseplate => {
                    eval::run(&file, &experiment, &inputs, now.resolve(), explain, format)
                }
            }
        }
        Command::Simulate { file, experiment, inputs, ids, id_prefix, now, dialect } => {
            let file = ConfigFile::read(&file);
            match file.dialect(dialect) {
                Dialect::Decider => {
                    decider_simulate::run(&file, &experiment, &inputs, ids, &id_prefix)
                }
                Dialect::Baseplate => {
                    simulate::run(&file, &experiment, &inputs, ids, &id_prefix, now.resolve())
                }
            }
        }
        Command::Demo(args) => demo::run(args),
        Command::Serve(args) => serve::run(args),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_must_be_finite() {
        for good in ["0", "-5", "1700000000.25", "1e9", "-1.5e3", "1.7976931348623157e308"] {
            assert_eq!(parse_instant(good), Ok(good.parse().unwrap()), "{good}");
        }
        for bad in ["NaN", "nan", "-NaN", "inf", "+inf", "-inf", "Infinity", "1e309", "-1e400"] {
            assert!(parse_instant(bad).unwrap_err().contains("finite"), "{bad}");
        }
        for junk in ["", " 1", "yesterday", "1,5", "0x10"] {
            assert!(parse_instant(junk).unwrap_err().contains("not a number"), "{junk:?}");
        }
    }

    #[test]
    fn every_subcommand_with_an_instant_validates_it() {
        for args in [
            &["experiments", "check", "f.json"][..],
            &["experiments", "eval", "f.json", "e"],
            &["experiments", "simulate", "f.json", "e"],
        ] {
            let err = Cli::try_parse_from(args.iter().chain(&["--now", "NaN"])).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{args:?}");
            assert!(err.to_string().contains("finite"), "{args:?}: {err}");
            assert!(Cli::try_parse_from(args.iter().chain(&["--now", "-5"])).is_ok(), "{args:?}");
        }
    }
}
