//! A real `experiments serve` child process for the tasks that talk to one over loopback
//! (`cargo xtask bench-serve`, `cargo xtask ofrep-python`, `cargo xtask ofrep-js`): building
//! the CLI, starting the server on port 0 and learning its address from the `listening on`
//! line, collecting its stderr on a thread, stopping it with SIGTERM and reading its final
//! accounting line.

use std::collections::VecDeque;
use std::fmt;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The longest a server may take to print its `listening on` line (config load included).
pub const START_TIMEOUT: Duration = Duration::from_secs(60);
/// The longest a server may take to exit after SIGTERM before it is killed (SIGKILL): its
/// `shutdown_timeout` is 10 s for requests, 10 s again for events.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(40);

/// What the server prints first on standard output, before its address.
const LISTENING: &str = "experiments serve: listening on http://";
/// How many of the server's last stderr lines, and of its first warnings, are kept.
const KEPT_LINES: usize = 20;

/// The repository root: xtask's parent directory (xtask's own directory if it had none).
pub fn repo_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// Cargo's target directory: `CARGO_TARGET_DIR` (relative to `root` when relative), else
/// `root/target`.
pub fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map_or_else(|| root.join("target"), |t| root.join(t))
}

/// The cargo profile the CLI is built with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// `cargo build` (`target/debug`): quick to build, for correctness checks.
    Debug,
    /// `cargo build --release` (`target/release`): for figures.
    Release,
}

/// `cargo build [--release] -p experiments-cli` in `root`, announced on stderr as
/// `TASK: cargo build ...`; the path of the built `experiments` binary.
pub fn build_cli(root: &Path, profile: Profile, task: &str) -> Result<PathBuf, String> {
    let (args, dir): (&[&str], _) = match profile {
        Profile::Debug => (&["build", "-p", "experiments-cli"], "debug"),
        Profile::Release => (&["build", "--release", "-p", "experiments-cli"], "release"),
    };
    let shown = format!("cargo {}", args.join(" "));
    eprintln!("{task}: {shown}");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(root)
        .args(args)
        .arg("--quiet")
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !status.success() {
        return Err(format!("{shown} failed ({status})"));
    }
    let bin = target_dir(root).join(dir).join("experiments");
    if bin.is_file() { Ok(bin) } else { Err(format!("{} not found", bin.display())) }
}

/// What the server wrote on stderr, ANSI escapes removed: its last lines, its first
/// warnings and errors, and its last accounting line (the one starting with `requests=`).
#[derive(Debug, Default)]
pub struct StderrSummary {
    /// The last 20 lines.
    pub tail: VecDeque<String>,
    /// The first 20 lines with ` WARN ` or ` ERROR `.
    pub warnings: Vec<String>,
    /// The last line starting with `requests=`, if any.
    pub accounting: Option<String>,
}

impl StderrSummary {
    /// The kept last lines, one per line.
    pub fn tail_text(&self) -> String {
        let lines: Vec<&str> = self.tail.iter().map(String::as_str).collect();
        lines.join("\n")
    }
}

/// Removes ANSI escape sequences (`ESC [ ... letter`).
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Reads `stderr` to its end (or a read error) into a summary.
fn read_stderr(stderr: impl std::io::Read) -> StderrSummary {
    let mut summary = StderrSummary::default();
    for line in BufReader::new(stderr).lines() {
        let Ok(line) = line else { break };
        let line = strip_ansi(&line);
        if line.starts_with("requests=") {
            summary.accounting = Some(line.clone());
        }
        if (line.contains(" WARN ") || line.contains(" ERROR "))
            && summary.warnings.len() < KEPT_LINES
        {
            summary.warnings.push(line.clone());
        }
        if summary.tail.len() == KEPT_LINES {
            summary.tail.pop_front();
        }
        summary.tail.push_back(line);
    }
    summary
}

/// The address of an `experiments serve: listening on http://ADDR` line.
fn listening_addr(line: &str) -> Option<SocketAddr> {
    line.strip_prefix(LISTENING).and_then(|a| a.trim().parse().ok())
}

/// Why a server did not start.
#[derive(Debug)]
pub enum StartError {
    /// The process could not be spawned.
    Spawn(String),
    /// It printed no `listening on` line within [`START_TIMEOUT`] (it has been killed).
    NotListening {
        /// Its first line on stdout when that was something else; `None` when it printed
        /// nothing (timed out, or closed stdout).
        first_line: Option<String>,
        /// What it wrote on stderr.
        stderr: StderrSummary,
    },
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::Spawn(e) => f.write_str(e),
            StartError::NotListening { first_line: Some(line), .. } => {
                write!(f, "unexpected first line on the server's stdout: {line:?}")
            }
            StartError::NotListening { first_line: None, stderr } => {
                write!(f, "the server did not start listening; its stderr:\n{}", stderr.tail_text())
            }
        }
    }
}

/// A running `experiments serve` on loopback; killed (SIGKILL) if dropped while running.
pub struct ServeProcess {
    child: Child,
    addr: SocketAddr,
    /// Counts the stdout lines after the `listening on` one (events, with the stdout sink),
    /// draining the pipe so that the server never blocks on it.
    stdout: Option<JoinHandle<usize>>,
    stderr: Option<JoinHandle<StderrSummary>>,
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// What a stopped server left behind.
#[derive(Debug)]
pub struct Stopped {
    /// Its exit status; an error when SIGTERM could not be sent or it did not exit within
    /// [`STOP_TIMEOUT`] (then it has been killed).
    pub exit: Result<ExitStatus, String>,
    /// What it wrote on stderr.
    pub stderr: StderrSummary,
    /// Its stdout lines after the `listening on` one.
    pub stdout_lines: usize,
}

impl ServeProcess {
    /// Runs `BIN serve --settings SETTINGS --listen 127.0.0.1:0` with `NO_COLOR=1` and the
    /// `env` variables, and waits up to [`START_TIMEOUT`] for its `listening on` line.
    pub fn start(bin: &Path, settings: &Path, env: &[(&str, &str)]) -> Result<Self, StartError> {
        let mut child = Command::new(bin)
            .args(["serve", "--settings"])
            .arg(settings)
            .args(["--listen", "127.0.0.1:0"])
            .env("NO_COLOR", "1")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| StartError::Spawn(format!("cannot start {}: {e}", bin.display())))?;
        let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(StartError::Spawn("no stdout or stderr".into()));
        };
        let stderr = std::thread::spawn(move || read_stderr(stderr));
        let (first, listening) = mpsc::channel();
        let stdout = std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines().map_while(Result::ok);
            let _ = first.send(lines.next());
            lines.count()
        });
        let first_line = listening.recv_timeout(START_TIMEOUT).ok().flatten();
        let Some(addr) = first_line.as_deref().and_then(listening_addr) else {
            let _ = child.kill();
            let _ = child.wait();
            let stderr = stderr.join().unwrap_or_default();
            return Err(StartError::NotListening { first_line, stderr });
        };
        Ok(ServeProcess { child, addr, stdout: Some(stdout), stderr: Some(stderr) })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its base URL, `http://ADDR`, as printed on its `listening on` line.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Sends SIGTERM (`kill -TERM`), waits up to [`STOP_TIMEOUT`] for the exit (SIGKILL
    /// after that), then collects stderr and the stdout line count. Blocks.
    pub fn stop(mut self) -> Stopped {
        let exit = self.terminate();
        if exit.is_err() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        let stdout_lines = self.stdout.take().and_then(|h| h.join().ok()).unwrap_or(0);
        let stderr = self.stderr.take().and_then(|h| h.join().ok()).unwrap_or_default();
        Stopped { exit, stderr, stdout_lines }
    }

    /// SIGTERM, then the exit status polled until [`STOP_TIMEOUT`].
    fn terminate(&mut self) -> Result<ExitStatus, String> {
        let pid = self.child.id().to_string();
        let killed = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .map_err(|e| format!("cannot run kill: {e}"))?;
        if !killed.success() {
            return Err(format!("kill -TERM {pid} failed ({killed})"));
        }
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => return Ok(status),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Ok(None) => {
                    return Err(format!(
                        "the server did not exit within {STOP_TIMEOUT:?} of SIGTERM"
                    ));
                }
                Err(e) => return Err(format!("waiting for the server: {e}")),
            }
        }
    }
}

/// The server's final accounting line
/// (`requests=N events=N delivered=N dropped=N remaining=N drained=true|false`), parsed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Accounting {
    /// Requests answered.
    pub requests: u64,
    /// Exposure events accepted by the sink pipeline.
    pub events: u64,
    /// Events the sink delivered.
    pub delivered: u64,
    /// Events dropped (queue full).
    pub dropped: u64,
    /// Events still queued at exit.
    pub remaining: u64,
    /// Whether in-flight requests were drained before exit.
    pub drained: bool,
}

impl Accounting {
    /// Parses an accounting line; an error names the bad or missing field. Unknown
    /// `name=value` pairs and words without `=` are ignored.
    pub fn parse(line: &str) -> Result<Accounting, String> {
        let mut a = Accounting::default();
        let mut seen = 0;
        for pair in line.split_whitespace() {
            let Some((name, value)) = pair.split_once('=') else { continue };
            let number = || value.parse::<u64>().map_err(|_| format!("bad {name} in {line:?}"));
            match name {
                "requests" => a.requests = number()?,
                "events" => a.events = number()?,
                "delivered" => a.delivered = number()?,
                "dropped" => a.dropped = number()?,
                "remaining" => a.remaining = number()?,
                "drained" => a.drained = value == "true",
                _ => continue,
            }
            seen += 1;
        }
        if seen == 6 { Ok(a) } else { Err(format!("incomplete accounting line {line:?}")) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounting_line() {
        let a = Accounting::parse(
            "requests=10 events=3 delivered=3 dropped=0 remaining=0 drained=true",
        )
        .unwrap();
        assert_eq!((a.requests, a.events, a.delivered, a.dropped, a.remaining), (10, 3, 3, 0, 0));
        assert!(a.drained);
        assert!(Accounting::parse("requests=10 events=3").is_err());
    }

    #[test]
    fn ansi_stripped() {
        assert_eq!(strip_ansi("\u{1b}[2mrequests=1\u{1b}[0m x"), "requests=1 x");
    }

    #[test]
    fn listening_line() {
        let addr = listening_addr("experiments serve: listening on http://127.0.0.1:8016\n");
        assert_eq!(addr, Some(SocketAddr::from(([127, 0, 0, 1], 8016))));
        assert_eq!(listening_addr("experiments serve: starting"), None);
    }

    #[test]
    fn stderr_summarized() {
        let mut text = String::new();
        for i in 0..30 {
            text.push_str(&format!("line {i}\n"));
        }
        text.push_str("2024 \u{1b}[33m WARN \u{1b}[0m slow\nrequests=1 events=0\n");
        text.push_str("requests=2 events=0 delivered=0 dropped=0 remaining=0 drained=true\n");
        let s = read_stderr(text.as_bytes());
        assert_eq!(s.tail.len(), 20);
        assert_eq!(s.tail.front().map(String::as_str), Some("line 13"));
        assert_eq!(s.warnings, ["2024  WARN  slow"]);
        assert_eq!(
            s.accounting.as_deref(),
            Some("requests=2 events=0 delivered=0 dropped=0 remaining=0 drained=true")
        );
    }

    #[test]
    fn not_listening() {
        let settings = Path::new("settings.json");
        let Err(e) = ServeProcess::start(Path::new("echo"), settings, &[]) else {
            panic!("echo is no server")
        };
        assert_eq!(
            e.to_string(),
            "unexpected first line on the server's stdout: \
             \"serve --settings settings.json --listen 127.0.0.1:0\""
        );
        let Err(e) = ServeProcess::start(Path::new("true"), settings, &[]) else {
            panic!("true is no server")
        };
        assert!(matches!(e, StartError::NotListening { first_line: None, .. }), "{e}");
    }
}
