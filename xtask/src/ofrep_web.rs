//! The browser half of `cargo xtask ofrep-web`: the page (`experiments-serve/tests/ofrep_web/
//! check.mjs`, bundled with the web SDK and the OFREP web provider by the esbuild of the npm
//! prefix), a static server for it on two loopback origins (the one the servers allow, and
//! one they do not), headless Chromium loading it, and the results the page posts back.
//! The plan, the servers and the comparison of the accounting are `ofrep_clients.rs`'s.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The page: the bundle, loaded as a module.
const INDEX_HTML: &str = "<!doctype html><html><head><meta charset=\"utf-8\">\
    <title>ofrep-web</title></head><body><script type=\"module\" src=\"check.js\"></script>\
    </body></html>";

/// The packages the page needs in the npm prefix (the provider's own dependency,
/// `@openfeature/ofrep-core`, comes with it).
const PACKAGES: [&str; 3] = ["@openfeature/web-sdk", "@openfeature/ofrep-web-provider", "esbuild"];

/// Largest request the page server reads (the result of a whole plan fits easily).
const MAX_REQUEST: usize = 256 * 1024 * 1024;

/// How long one Chromium run may take, page and plan included.
const BROWSER_DEADLINE: Duration = Duration::from_secs(900);

/// What the page posted, by path (`/result`, `/refused`).
#[derive(Default)]
struct Posted {
    bodies: Mutex<BTreeMap<String, Vec<u8>>>,
}

/// The static server of the page, on two origins; its threads end with the task.
pub struct PageServer {
    /// The origin the servers allow (`http://127.0.0.1:PORT`).
    pub origin: String,
    /// Another origin, which they do not.
    pub other_origin: String,
    posted: Arc<Posted>,
}

/// Checks the npm prefix holds what the page needs.
pub fn check_node_dir(node_dir: &Path) -> Result<(), String> {
    for package in PACKAGES {
        let manifest = node_dir.join("node_modules").join(package).join("package.json");
        if !manifest.is_file() {
            return Err(format!("no {package} in {}/node_modules", node_dir.display()));
        }
    }
    Ok(())
}

/// Bundles the page into `site/check.js` (packages resolved from `node_dir`) and writes
/// `site/index.html`.
pub fn build_page(root: &Path, node_dir: &Path, site: &Path) -> Result<(), String> {
    let esbuild = node_dir.join("node_modules/.bin/esbuild");
    let entry = root.join("experiments-serve/tests/ofrep_web/check.mjs");
    let output = Command::new(&esbuild)
        .arg(&entry)
        .args(["--bundle", "--format=esm", "--log-level=warning"])
        .arg(format!("--outfile={}", site.join("check.js").display()))
        .env("NODE_PATH", node_dir.join("node_modules"))
        .output()
        .map_err(|e| format!("cannot run {}: {e}", esbuild.display()))?;
    if !output.status.success() {
        return Err(format!(
            "esbuild failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    std::fs::write(site.join("index.html"), INDEX_HTML).map_err(|e| format!("index.html: {e}"))
}

/// The version of each package in the npm prefix, for the report.
pub fn versions(node_dir: &Path) -> String {
    ["@openfeature/web-sdk", "@openfeature/ofrep-web-provider", "@openfeature/ofrep-core"]
        .iter()
        .map(|p| {
            let file = node_dir.join("node_modules").join(p).join("package.json");
            let version = std::fs::read_to_string(file)
                .ok()
                .and_then(|t| serde_json::from_str::<Value>(&t).ok())
                .and_then(|m| m["version"].as_str().map(str::to_owned))
                .unwrap_or_else(|| "?".into());
            format!("{p}@{version}")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

impl PageServer {
    /// Serves `site` (files by name only) on two ports of 127.0.0.1 and takes the page's posts.
    pub fn start(site: &Path) -> Result<PageServer, String> {
        let posted = Arc::new(Posted::default());
        let mut origins = Vec::new();
        for _ in 0..2 {
            let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("bind: {e}"))?;
            let port = listener.local_addr().map_err(|e| e.to_string())?.port();
            origins.push(format!("http://127.0.0.1:{port}"));
            let (site, posted) = (site.to_path_buf(), Arc::clone(&posted));
            std::thread::spawn(move || {
                for stream in listener.incoming().flatten() {
                    // One request per connection, each on its own thread: a connection the
                    // browser opens ahead and leaves idle holds up no other.
                    let (site, posted) = (site.clone(), Arc::clone(&posted));
                    std::thread::spawn(move || {
                        // A broken request only loses itself.
                        let _ = answer(stream, &site, &posted);
                    });
                }
            });
        }
        let other_origin = origins.pop().unwrap_or_default();
        let origin = origins.pop().unwrap_or_default();
        Ok(PageServer { origin, other_origin, posted })
    }

    /// Loads `url` in headless Chromium and waits for the page to post to `path`: its JSON.
    pub fn run_page(
        &self,
        chromium: &Path,
        profile: &Path,
        url: &str,
        path: &str,
    ) -> Result<Value, String> {
        let _ = std::fs::remove_dir_all(profile);
        let log = profile.with_extension("log");
        let log_file =
            std::fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
        // The flags the machine's notes give for headless Chromium on a closed network, as
        // root; the virtual time budget lets the page finish, then Chromium exits.
        let mut child = Command::new(chromium)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-dev-shm-usage",
                "--virtual-time-budget=600000",
                "--dump-dom",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg(url)
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", chromium.display()))?;
        let started = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
                break Some(status);
            }
            if started.elapsed() > BROWSER_DEADLINE {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            if self.posted.bodies.lock().is_ok_and(|b| b.contains_key(path)) {
                // The page is done; Chromium ends with its virtual time budget.
                if let Some(status) = wait_briefly(&mut child) {
                    break Some(status);
                }
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let body = self.posted.bodies.lock().ok().and_then(|mut b| b.remove(path));
        let Some(body) = body else {
            let tail = std::fs::read_to_string(&log).unwrap_or_default();
            let tail: Vec<&str> = tail.lines().rev().take(15).collect();
            return Err(format!(
                "{url}: the page posted nothing to {path} (Chromium: {status:?}); its log ends:\n{}",
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            ));
        };
        serde_json::from_slice(&body).map_err(|e| format!("{url}: {path} is not JSON: {e}"))
    }
}

/// Waits up to 20 s for Chromium to exit on its own.
fn wait_briefly(child: &mut std::process::Child) -> Option<std::process::ExitStatus> {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(20) {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

/// Answers one request: `GET /NAME` with a file of `site` (names without `/` only), `POST
/// /result` or `/refused` kept for [`PageServer::run_page`].
fn answer(stream: TcpStream, site: &Path, posted: &Posted) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" || line == "\n" {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap_or(0);
        }
    }
    let mut parts = request_line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    let (status, kind, body): (&str, &str, Vec<u8>) = match (method, path) {
        ("POST", "/result" | "/refused") if length <= MAX_REQUEST => {
            let mut body = vec![0; length];
            reader.read_exact(&mut body)?;
            let mut bodies = posted.bodies.lock().unwrap_or_else(|e| e.into_inner());
            bodies.insert(path.to_owned(), body);
            ("204 No Content", "text/plain", Vec::new())
        }
        ("GET", name) => {
            let name = name.trim_start_matches('/');
            let name = if name.is_empty() { "index.html" } else { name };
            let file = PathBuf::from(name);
            let kind = match file.extension().and_then(|e| e.to_str()) {
                Some("html") => "text/html; charset=utf-8",
                Some("js") => "text/javascript; charset=utf-8",
                Some("json") => "application/json",
                _ => "application/octet-stream",
            };
            let outside = name.contains(['/', '\\']) || name.starts_with('.');
            match (!outside).then(|| std::fs::read(site.join(name)).ok()).flatten() {
                Some(bytes) => ("200 OK", kind, bytes),
                None => ("404 Not Found", "text/plain", b"not found".to_vec()),
            }
        }
        _ => ("405 Method Not Allowed", "text/plain", Vec::new()),
    };
    let mut stream = reader.into_inner();
    write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\n\
         Cache-Control: no-store\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    stream.write_all(&body)?;
    stream.flush()
}

/// The CORS preflights a server answered, read from its `/metrics` (one request more, which
/// the caller counts).
pub fn preflights(server: std::net::SocketAddr) -> Result<u64, String> {
    let mut stream = TcpStream::connect(server).map_err(|e| format!("{server}: {e}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(10))).map_err(|e| e.to_string())?;
    write!(stream, "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .map_err(|e| format!("{server}: {e}"))?;
    let mut text = String::new();
    stream.read_to_string(&mut text).map_err(|e| format!("{server}: {e}"))?;
    let mut total = 0.0;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("experiments_serve_requests_total{")
            && rest.contains("route=\"preflight\"")
        {
            let value = rest.rsplit(' ').next().unwrap_or("");
            total += value.parse::<f64>().map_err(|_| format!("metrics line {line:?}"))?;
        }
    }
    Ok(total as u64)
}
