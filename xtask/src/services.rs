//! `cargo xtask services up|down`: the real services the tests need, started the same way
//! by CI, tests, benchmarks and people. Today: a Kafka-protocol broker (`tansu`, in-memory
//! storage) on 127.0.0.1:9092.

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Where the broker listens.
pub const KAFKA_ADDR: &str = "127.0.0.1:9092";
const TANSU_VERSION: &str = "0.6.0";

fn state_dir() -> PathBuf {
    PathBuf::from("target/services")
}

/// Whether something accepts connections on `addr`.
pub fn reachable(addr: &str) -> bool {
    addr.parse::<SocketAddr>()
        .ok()
        .is_some_and(|a| TcpStream::connect_timeout(&a, Duration::from_millis(300)).is_ok())
}

/// The `tansu` binary: on `PATH` or in cargo's bin directory.
fn find_tansu() -> Option<PathBuf> {
    let mut candidates: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).map(|d| d.join("tansu")).collect())
        .unwrap_or_default();
    if let Some(home) = std::env::var_os("CARGO_HOME")
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cargo").into_os_string()))
    {
        candidates.push(Path::new(&home).join("bin").join("tansu"));
    }
    candidates.into_iter().find(|p| p.is_file())
}

fn install_tansu() -> Result<PathBuf, String> {
    eprintln!(
        "services: installing tansu {TANSU_VERSION} (in-memory storage; takes a few minutes)"
    );
    let status = Command::new("cargo")
        .args(["install", "tansu", "--version", TANSU_VERSION, "--locked", "--debug"])
        .args(["--no-default-features", "--features", "dynostore"])
        .status()
        .map_err(|e| format!("cannot run cargo install: {e}"))?;
    if !status.success() {
        return Err(format!("cargo install tansu failed: {status}"));
    }
    find_tansu().ok_or_else(|| "tansu installed but not found on PATH or in ~/.cargo/bin".into())
}

fn broker_ready(tansu: &Path) -> bool {
    Command::new(tansu)
        .args(["topic", "list", "--broker", &format!("tcp://{KAFKA_ADDR}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Installs (when missing) and starts the broker, then waits until it answers.
pub fn up() -> Result<(), String> {
    let tansu = match find_tansu() {
        Some(t) => t,
        None => install_tansu()?,
    };
    if reachable(KAFKA_ADDR) && broker_ready(&tansu) {
        eprintln!("services: kafka broker already running on {KAFKA_ADDR}");
        return Ok(());
    }
    std::fs::create_dir_all(state_dir()).map_err(|e| e.to_string())?;
    let log = std::fs::File::create(state_dir().join("tansu.log")).map_err(|e| e.to_string())?;
    let err_log = log.try_clone().map_err(|e| e.to_string())?;
    let listener = format!("tcp://{KAFKA_ADDR}");
    let mut cmd = Command::new(&tansu);
    cmd.args(["broker", "--listener-url", &listener, "--advertised-listener-url", &listener])
        .args(["--storage-engine", "memory://tansu/"])
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(err_log);
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        // Its own process group: it outlives this command.
        cmd.process_group(0);
    }
    let child = cmd.spawn().map_err(|e| format!("cannot start {}: {e}", tansu.display()))?;
    std::fs::write(state_dir().join("tansu.pid"), child.id().to_string())
        .map_err(|e| e.to_string())?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if reachable(KAFKA_ADDR) && broker_ready(&tansu) {
            eprintln!(
                "services: kafka broker (tansu {TANSU_VERSION}, in-memory) ready on {KAFKA_ADDR}"
            );
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Err(format!("the broker did not become ready; see {}", state_dir().join("tansu.log").display()))
}

/// Stops the broker started by [`up`].
pub fn down() -> Result<(), String> {
    let pid_file = state_dir().join("tansu.pid");
    let Ok(pid) = std::fs::read_to_string(&pid_file) else {
        eprintln!("services: nothing to stop");
        return Ok(());
    };
    let pid = pid.trim();
    let _ = Command::new("kill").arg(pid).status();
    let _ = std::fs::remove_file(&pid_file);
    eprintln!("services: stopped the kafka broker (pid {pid})");
    Ok(())
}
