//! `cargo xtask fuzz`: bounded runs of the cargo-fuzz project in `fuzz/` (its own workspace
//! and target dir). The committed seed corpus (`fuzz/corpus/<target>`) is only read: libFuzzer
//! writes new units into the first corpus directory given, `target/fuzz-corpus/<target>`,
//! which persists between local runs. Crashes land in `fuzz/artifacts/<target>/`
//! (git-ignored).

use std::process::ExitCode;

/// How to call it.
pub const USAGE: &str = "usage: cargo xtask fuzz [--seconds N] [--target NAME]";

/// What libFuzzer reports at the end of a run.
#[derive(Debug, Default, PartialEq)]
struct FuzzStats {
    execs: Option<u64>,
    execs_per_sec: Option<u64>,
    cov: Option<u64>,
    ft: Option<u64>,
    corpus: Option<u64>,
    /// Where libFuzzer wrote the crashing (or hanging, or leaking) input.
    artifact: Option<String>,
}

/// Parses a libFuzzer log: `-print_final_stats=1`'s `stat::` lines for executions, and the
/// last status line (`#N DONE cov: X ft: Y corp: Z/..b ...`, or the last `NEW`/`REDUCE`/`pulse`
/// line when the run ended early) for coverage, features and corpus size.
fn parse_fuzz_log(log: &str) -> FuzzStats {
    fn after<'a>(line: &'a str, key: &str) -> Option<&'a str> {
        let mut words = line.split_whitespace();
        words.by_ref().find(|w| *w == key)?;
        words.next()
    }
    fn number(text: Option<&str>) -> Option<u64> {
        let text = text?;
        let digits = text.find(|c: char| !c.is_ascii_digit()).map_or(text, |end| &text[..end]);
        digits.parse().ok()
    }
    let mut stats = FuzzStats::default();
    let mut last_status: Option<&str> = None;
    for line in log.lines() {
        let line = line.trim_end();
        if let Some(v) = line.strip_prefix("stat::number_of_executed_units:") {
            stats.execs = v.trim().parse().ok();
        } else if let Some(v) = line.strip_prefix("stat::average_exec_per_sec:") {
            stats.execs_per_sec = v.trim().parse().ok();
        } else if line.starts_with('#') && line.contains(" cov: ") {
            last_status = Some(line);
        } else if let Some((_, path)) = line.split_once("Test unit written to ") {
            stats.artifact = Some(path.trim().to_owned());
        }
    }
    if let Some(line) = last_status {
        stats.cov = number(after(line, "cov:"));
        stats.ft = number(after(line, "ft:"));
        stats.corpus = number(after(line, "corp:"));
        // Without final stats, the status line's own count (`#N`) and rate.
        stats.execs = stats.execs.or_else(|| number(line.get(1..)));
        stats.execs_per_sec = stats.execs_per_sec.or_else(|| number(after(line, "exec/s:")));
    }
    stats
}

/// Runs `cargo xtask fuzz [--seconds N] [--target NAME]`; the exit code says whether any target
/// crashed (1) or the command could not run (2).
pub fn run(args: &[String]) -> ExitCode {
    use std::process::{Command, Stdio};
    use std::time::Instant;

    let mut seconds = 60u64;
    let mut only: Option<String> = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match (a.as_str(), it.next()) {
            ("--seconds", Some(n)) => match n.parse() {
                Ok(n) if n >= 1 => seconds = n,
                _ => {
                    eprintln!("--seconds needs a number >= 1");
                    return ExitCode::from(2);
                }
            },
            ("--target", Some(t)) => only = Some(t.clone()),
            _ => {
                eprintln!("{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    let root = match std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent() {
        Some(root) => root.to_path_buf(),
        None => return ExitCode::from(2),
    };
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    // cargo-fuzz passes nightly-only flags (-Zsanitizer=address); RUSTC_BOOTSTRAP lets the
    // stable toolchain accept them.
    let cargo_fuzz = |sub: &str| {
        let mut cmd = Command::new(&cargo);
        cmd.current_dir(&root).env("RUSTC_BOOTSTRAP", "1").args(["fuzz", sub]);
        if sub != "--version" {
            cmd.args(["--fuzz-dir", "fuzz"]);
        }
        cmd
    };
    // Sanitizer builds stay in the fuzz project's own (git-ignored) target dir, whatever
    // CARGO_TARGET_DIR says; `build` and `run` must agree on it and on the flags.
    let build_flags = ["--debug-assertions", "--target-dir", "fuzz/target"];

    match cargo_fuzz("--version").output() {
        Ok(out) if out.status.success() => {
            eprintln!("fuzz: {}", String::from_utf8_lossy(&out.stdout).trim());
        }
        _ => {
            eprintln!(
                "fuzz: cargo-fuzz is not installed; install it with `cargo install cargo-fuzz --locked`"
            );
            return ExitCode::from(2);
        }
    }
    let listed = match cargo_fuzz("list").stderr(Stdio::inherit()).output() {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).into_owned(),
        _ => {
            eprintln!("fuzz: `cargo fuzz list --fuzz-dir fuzz` failed");
            return ExitCode::from(2);
        }
    };
    let all: Vec<&str> = listed.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    let targets: Vec<&str> = match &only {
        Some(t) if all.contains(&t.as_str()) => vec![t.as_str()],
        Some(t) => {
            eprintln!("fuzz: unknown target {t:?}; targets: {}", all.join(", "));
            return ExitCode::from(2);
        }
        None => all.clone(),
    };

    // Build first, in the open (the run below captures libFuzzer's output into a log).
    // Debug assertions on: an arithmetic overflow is a crash here, as in `cargo test`.
    let started = Instant::now();
    let mut build = cargo_fuzz("build");
    build.args(build_flags);
    if let [one] = targets.as_slice() {
        build.arg(one);
    }
    match build.status() {
        Ok(s) if s.success() => {}
        _ => {
            eprintln!("fuzz: `cargo fuzz build` failed");
            return ExitCode::from(2);
        }
    }
    println!("fuzz build seconds={:.1}", started.elapsed().as_secs_f64());

    let mut crashed = false;
    for target in targets {
        let scratch = root.join("target/fuzz-corpus").join(target);
        let logs = root.join("target/fuzz-logs");
        let log_path = logs.join(format!("{target}.log"));
        let log = std::fs::create_dir_all(&scratch)
            .and_then(|()| std::fs::create_dir_all(&logs))
            .and_then(|()| std::fs::File::create(&log_path));
        let (log, log_err) = match log.and_then(|f| Ok((f.try_clone()?, f))) {
            Ok(files) => files,
            Err(e) => {
                eprintln!("fuzz: {}: {e}", log_path.display());
                return ExitCode::from(2);
            }
        };
        eprintln!("fuzz: {target} for {seconds} s (log {})", log_path.display());
        let mut run = cargo_fuzz("run");
        run.args(build_flags)
            .arg(target)
            .arg(&scratch)
            .arg(root.join("fuzz/corpus").join(target))
            .arg("--")
            .arg(format!("-max_total_time={seconds}"))
            .args(["-print_final_stats=1", "-timeout=20"]);
        let dict = root.join("fuzz/dict").join(format!("{target}.dict"));
        if dict.is_file() {
            run.arg(format!("-dict={}", dict.display()));
        }
        let status = run.stdout(log).stderr(log_err).status();
        let text = std::fs::read_to_string(&log_path).unwrap_or_default();
        let stats = parse_fuzz_log(&text);
        let show = |v: Option<u64>| v.map_or_else(|| "?".to_owned(), |v| v.to_string());
        let ok = matches!(status, Ok(s) if s.success());
        println!(
            "fuzz target={target} seconds={seconds} execs={} execs_per_sec={} cov={} ft={} corpus={} status={}",
            show(stats.execs),
            show(stats.execs_per_sec),
            show(stats.cov),
            show(stats.ft),
            show(stats.corpus),
            if ok { "ok" } else { "crash" }
        );
        if !ok {
            crashed = true;
            // The panic (or sanitizer) message without its backtrace, libFuzzer's summary
            // lines, and the input itself.
            let lines: Vec<&str> = text.lines().collect();
            let first = lines.iter().position(|l| {
                l.contains("panicked at") || (l.starts_with("==") && l.contains("ERROR"))
            });
            if let Some(first) = first {
                for line in lines[first..].iter().take(12) {
                    if line.starts_with("stack backtrace:") || line.trim_start().starts_with("#0 ")
                    {
                        break;
                    }
                    eprintln!("  | {line}");
                }
            }
            for line in
                lines.iter().filter(|l| l.starts_with("SUMMARY:") || l.starts_with("Base64:"))
            {
                eprintln!("  | {line}");
            }
            if let Some(bytes) =
                stats.artifact.as_ref().and_then(|p| std::fs::read(root.join(p)).ok())
            {
                let shown = String::from_utf8_lossy(&bytes[..bytes.len().min(4096)])
                    .escape_debug()
                    .to_string();
                eprintln!("  input ({} bytes, escaped): \"{shown}\"", bytes.len());
            }
            match &stats.artifact {
                Some(path) => eprintln!(
                    "fuzz: {target} crashed; input: {path}\n  reproduce: RUSTC_BOOTSTRAP=1 cargo fuzz run --fuzz-dir fuzz {flags} {target} {path}\n  minimize:  RUSTC_BOOTSTRAP=1 cargo fuzz tmin --fuzz-dir fuzz {flags} {target} {path}",
                    flags = build_flags.join(" ")
                ),
                None => eprintln!("fuzz: {target} failed; see {}", log_path.display()),
            }
        }
    }
    if crashed { ExitCode::FAILURE } else { ExitCode::SUCCESS }
}

#[cfg(test)]
mod fuzz_tests {
    use super::{FuzzStats, parse_fuzz_log};

    #[test]
    fn final_stats_and_done_line() {
        let log = "#41\tINITED cov: 3884 ft: 12981 corp: 40/113Kb exec/s: 0 rss: 73Mb
#23304\tREDUCE cov: 4704 ft: 17476 corp: 507/1998Kb lim: 37397 exec/s: 1165 rss: 486Mb L: 150/37397 MS: 1 EraseBytes-
#23387\tDONE   cov: 4704 ft: 17476 corp: 507/1997Kb lim: 37397 exec/s: 1113 rss: 486Mb
Done 23387 runs in 21 second(s)
stat::number_of_executed_units: 23387
stat::average_exec_per_sec:     1113
stat::new_units_added:          865
";
        assert_eq!(
            parse_fuzz_log(log),
            FuzzStats {
                execs: Some(23387),
                execs_per_sec: Some(1113),
                cov: Some(4704),
                ft: Some(17476),
                corpus: Some(507),
                artifact: None,
            }
        );
    }

    #[test]
    fn crash_without_final_stats() {
        let log = "#1200\tNEW    cov: 10 ft: 20 corp: 3/9b lim: 4 exec/s: 600 rss: 40Mb L: 3/3 MS: 1 ChangeBit-
thread '<unnamed>' panicked at fuzz_targets/x.rs:3:5:
==123== ERROR: libFuzzer: deadly signal
artifact_prefix='fuzz/artifacts/x/'; Test unit written to fuzz/artifacts/x/crash-da39a3ee
";
        let stats = parse_fuzz_log(log);
        assert_eq!(
            (stats.execs, stats.execs_per_sec, stats.cov),
            (Some(1200), Some(600), Some(10))
        );
        assert_eq!(stats.artifact.as_deref(), Some("fuzz/artifacts/x/crash-da39a3ee"));
    }
}
