//! Follows a config file and prints one line per state change:
//! `loaded version=N experiments=T invalid=I`, `kept version=N error=...`,
//! `unavailable error=...`.
//!
//! `cargo run -p experiments-watch --example follow -- PATH [--poll-interval 1s]`

use std::io::Write;

use experiments_watch::{ConfigWatcher, WatchSettings};

fn usage() -> ! {
    eprintln!("usage: follow PATH [--poll-interval DURATION]");
    std::process::exit(2)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(path) = args.next() else { usage() };
    let mut settings = WatchSettings::for_path(path);
    while let Some(a) = args.next() {
        match (a.as_str(), args.next()) {
            ("--poll-interval", Some(v)) => match humantime::parse_duration(&v) {
                Ok(d) => settings.poll_interval = d,
                Err(_) => usage(),
            },
            _ => usage(),
        }
    }
    let watcher = ConfigWatcher::builder(settings)
        .on_event(|event| {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{event}");
            let _ = out.flush();
        })
        .start();
    let _watcher = match watcher {
        Ok(w) => w,
        Err(e) => {
            eprintln!("follow: {e}");
            std::process::exit(1);
        }
    };
    loop {
        std::thread::park();
    }
}
