//! `cargo xtask conformance|bench` — the project's automation, in Rust.

use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "usage: cargo xtask <command>

commands:
  conformance [DIR|FILE ...]   replay conformance vectors (default ../shared/conformance/vectors)
  bench                        run the shared evaluation benchmark scenarios";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("conformance") => conformance(&args[1..]),
        _ => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}

fn conformance(args: &[String]) -> ExitCode {
    let dirs: Vec<PathBuf> = if args.is_empty() {
        vec![PathBuf::from("../shared/conformance/vectors")]
    } else {
        args.iter().map(PathBuf::from).collect()
    };
    let result =
        xtask::conformance::collect_files(&dirs).and_then(|f| xtask::conformance::run_files(&f));
    match result {
        Ok(summary) => ExitCode::from(xtask::conformance::report(&summary, 50) as u8),
        Err(e) => {
            eprintln!("conformance: {e}");
            ExitCode::from(2)
        }
    }
}
