//! The sidecar's Prometheus metrics: its own counters (evaluations by flag and outcome,
//! requests by route and status, a latency histogram per route), kept in atomics so the
//! request path neither allocates nor contends on a lock, and rendered with the client's
//! status (config freshness, event pipeline accounting) in the text exposition format 0.0.4.
//!
//! Cardinality is bounded by construction: outcomes, routes and status codes come from fixed
//! tables (anything else is counted as `other`), and flag labels are only created for flags
//! of the config served, at most `max_flags` of them.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use experiments_sdk::ClientStatus;
use experiments_sdk::events::Counters;
use experiments_sdk::watch::Health;

/// The `outcome` label values counted separately: the OFREP reasons, then the error codes.
/// Anything else is counted under the last one, `other`.
const OUTCOMES: [&str; 17] = [
    "SPLIT",
    "DEFAULT",
    "DISABLED",
    "TARGETING_MATCH",
    "STATIC",
    "CACHED",
    "UNKNOWN",
    "ERROR",
    "FLAG_NOT_FOUND",
    "PARSE_ERROR",
    "INVALID_CONTEXT",
    "TARGETING_KEY_MISSING",
    "TYPE_MISMATCH",
    "GENERAL",
    "PROVIDER_NOT_READY",
    "PROVIDER_FATAL",
    "other",
];
const N_OUTCOMES: usize = OUTCOMES.len();

/// The index of `outcome` in [`OUTCOMES`] (the `other` slot for a string not listed).
fn outcome_index(outcome: &str) -> usize {
    match outcome {
        "SPLIT" => 0,
        "DEFAULT" => 1,
        "DISABLED" => 2,
        "TARGETING_MATCH" => 3,
        "STATIC" => 4,
        "CACHED" => 5,
        "UNKNOWN" => 6,
        "ERROR" => 7,
        "FLAG_NOT_FOUND" => 8,
        "PARSE_ERROR" => 9,
        "INVALID_CONTEXT" => 10,
        "TARGETING_KEY_MISSING" => 11,
        "TYPE_MISMATCH" => 12,
        "GENERAL" => 13,
        "PROVIDER_NOT_READY" => 14,
        "PROVIDER_FATAL" => 15,
        _ => N_OUTCOMES - 1,
    }
}

/// The `route` label values; an unlisted route is counted under the last one, `other`.
const ROUTES: [&str; 8] =
    ["evaluate", "bulk", "configuration", "healthz", "readyz", "metrics", "preflight", "other"];
const N_ROUTES: usize = ROUTES.len();

/// The index of `route` in [`ROUTES`] (the `other` slot for a string not listed).
fn route_index(route: &str) -> usize {
    match route {
        "evaluate" => 0,
        "bulk" => 1,
        "configuration" => 2,
        "healthz" => 3,
        "readyz" => 4,
        "metrics" => 5,
        "preflight" => 6,
        _ => N_ROUTES - 1,
    }
}

/// The `code` label values: the status codes the server answers with, by exact code, then
/// any other code by class (`1xx` ... `5xx`), then `other` for codes outside 100..=599.
const CODES: [&str; 21] = [
    "200", "204", "304", "400", "401", "403", "404", "405", "408", "413", "415", "429", "500",
    "502", "503", "504", "1xx", "2xx", "3xx", "4xx", "5xx",
];
/// The `code` label of the slot after [`CODES`]: a status outside 100..=599.
const CODE_OTHER: &str = "other";
const N_CODES: usize = CODES.len() + 1;

/// The index of `status` in [`CODES`]: its exact code, else its class, else `other`.
fn code_index(status: u16) -> usize {
    match status {
        200 => 0,
        204 => 1,
        304 => 2,
        400 => 3,
        401 => 4,
        403 => 5,
        404 => 6,
        405 => 7,
        408 => 8,
        413 => 9,
        415 => 10,
        429 => 11,
        500 => 12,
        502 => 13,
        503 => 14,
        504 => 15,
        100..=599 => 16 + usize::from(status / 100 - 1),
        _ => N_CODES - 1,
    }
}

/// The label of the status slot `i` (`CODES[i]`, or `other` for the last slot).
fn code_label(i: usize) -> &'static str {
    CODES.get(i).copied().unwrap_or(CODE_OTHER)
}

/// Upper bounds of the latency buckets in nanoseconds (a request taking exactly a bound is
/// counted in that bucket, as `le` means), with their `le` labels in seconds. A last,
/// implicit bucket (`+Inf`) takes everything slower.
const BUCKETS_NANOS: [u64; 14] = [
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
    2_500_000_000,
];
const BUCKET_LABELS: [&str; 14] = [
    "0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1",
    "0.25", "0.5", "1", "2.5",
];
const N_BUCKETS: usize = BUCKETS_NANOS.len() + 1;

/// The `flag` label of evaluations of keys the config does not have (and of the empty key).
const UNKNOWN_FLAG: &str = "";
/// The `flag` label of known flags seen after `max_flags` others got their own label.
const OVERFLOW_FLAG: &str = "_other";
/// Longest `error` label of `experiments_config_last_error`, in characters.
const MAX_ERROR_CHARS: usize = 200;
/// `max_flags` of [`Metrics::default`] (the settings' default too).
const DEFAULT_MAX_FLAGS: usize = 1000;

/// Evaluation counts of one flag label, by outcome ([`OUTCOMES`]).
type Row = [AtomicU64; N_OUTCOMES];

fn new_row() -> Row {
    [const { AtomicU64::new(0) }; N_OUTCOMES]
}

/// Requests of one route: counts by status slot ([`CODES`]), latency counts by bucket (not
/// cumulative: `buckets[i]` counts requests in `(bound[i-1], bound[i]]`, the last one those
/// above every bound) and the sum of latencies in nanoseconds.
#[derive(Debug)]
struct RouteStats {
    codes: [AtomicU64; N_CODES],
    buckets: [AtomicU64; N_BUCKETS],
    /// Wraps after 584 years of cumulated latency.
    sum_nanos: AtomicU64,
}

impl RouteStats {
    fn new() -> Self {
        RouteStats {
            codes: [const { AtomicU64::new(0) }; N_CODES],
            buckets: [const { AtomicU64::new(0) }; N_BUCKETS],
            sum_nanos: AtomicU64::new(0),
        }
    }
}

/// The server's own counters and the latency histogram, rendered with the client's status.
///
/// Every counter is an atomic updated with relaxed ordering: a render concurrent with
/// requests may see one metric a request ahead of another, never a torn or decreasing
/// value. A histogram's `_count` and `+Inf` bucket are computed from the same loads, so
/// they are always equal.
///
/// Flag labels: a flag evaluated while it exists in the config served gets its own `flag`
/// label the first time it is seen (the only allocation and the only write lock), up to
/// `max_flags` labels for the life of the process (labels are never removed, so counters
/// stay monotonic across config changes); later flags are counted under `flag="_other"`.
/// Keys the config does not have are counted under `flag=""`, so requests cannot create
/// series. A known flag literally named `""` or `"_other"` shares those series.
#[derive(Debug)]
pub(crate) struct Metrics {
    /// Most flag labels in `flags`.
    max_flags: usize,
    /// Per known flag, its evaluations by outcome. Read-locked on the hot path.
    flags: RwLock<HashMap<Arc<str>, Row>>,
    /// Set once `flags` holds `max_flags` labels: new flags go to `overflow` without
    /// taking the write lock.
    full: AtomicBool,
    /// Evaluations of keys the config does not have (`flag=""`).
    unknown: Row,
    /// Evaluations of known flags beyond the cap (`flag="_other"`).
    overflow: Row,
    /// Requests, by route ([`ROUTES`]).
    routes: [RouteStats; N_ROUTES],
}

impl Default for Metrics {
    /// Empty metrics labelling at most 1000 flags.
    fn default() -> Self {
        Metrics::new(DEFAULT_MAX_FLAGS)
    }
}

impl Metrics {
    /// Empty metrics; `max_flags` caps the distinct `flag` label values of known flags
    /// (beyond it they count under `flag="_other"`; `0` puts every known flag there).
    pub(crate) fn new(max_flags: usize) -> Self {
        Metrics {
            max_flags,
            flags: RwLock::new(HashMap::new()),
            full: AtomicBool::new(max_flags == 0),
            unknown: new_row(),
            overflow: new_row(),
            routes: std::array::from_fn(|_| RouteStats::new()),
        }
    }

    /// One flag evaluated. `known`: the flag exists in the config served (unknown keys are
    /// counted under `flag=""`, so keys from outside never create series). `outcome`: the
    /// OFREP reason (`SPLIT`, `DEFAULT`, ...) or error code (`FLAG_NOT_FOUND`, ...); a
    /// string outside the fixed table counts as `outcome="other"`.
    ///
    /// A flag already labelled costs one read lock and one hash lookup, without allocating;
    /// its first sighting takes the write lock once (or, past the cap, nothing more).
    pub(crate) fn evaluation(&self, flag: &str, known: bool, outcome: &'static str) {
        let slot = outcome_index(outcome);
        if !known || flag == UNKNOWN_FLAG {
            self.unknown[slot].fetch_add(1, Relaxed);
            return;
        }
        if flag == OVERFLOW_FLAG {
            self.overflow[slot].fetch_add(1, Relaxed);
            return;
        }
        {
            let flags = self.flags.read().unwrap_or_else(PoisonError::into_inner);
            if let Some(row) = flags.get(flag) {
                row[slot].fetch_add(1, Relaxed);
                return;
            }
        }
        if self.full.load(Relaxed) {
            self.overflow[slot].fetch_add(1, Relaxed);
            return;
        }
        let mut flags = self.flags.write().unwrap_or_else(PoisonError::into_inner);
        // Another thread may have labelled it (or filled the map) since the read lock.
        if !flags.contains_key(flag) && flags.len() < self.max_flags {
            flags.insert(Arc::from(flag), new_row());
            if flags.len() >= self.max_flags {
                self.full.store(true, Relaxed);
            }
        }
        match flags.get(flag) {
            Some(row) => row[slot].fetch_add(1, Relaxed),
            None => self.overflow[slot].fetch_add(1, Relaxed),
        };
    }

    /// One HTTP request answered: its route label (`evaluate`, `bulk`, `configuration`,
    /// `healthz`, `readyz`, `metrics`; anything else counts as `other`), its status code
    /// (exact for the codes the server uses, else by class) and the time it took. Lock-free
    /// and allocation-free: three relaxed atomic additions.
    pub(crate) fn request(&self, route: &'static str, status: u16, elapsed: Duration) {
        let stats = &self.routes[route_index(route)];
        stats.codes[code_index(status)].fetch_add(1, Relaxed);
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        let bucket = BUCKETS_NANOS.partition_point(|&bound| bound < nanos);
        stats.buckets[bucket].fetch_add(1, Relaxed);
        stats.sum_nanos.fetch_add(nanos, Relaxed);
    }

    /// The Prometheus text exposition (format 0.0.4) of these metrics and of `status`:
    ///
    /// - `experiments_serve_evaluations_total{flag,outcome}`,
    ///   `experiments_serve_requests_total{route,code}` and
    ///   `experiments_serve_request_duration_seconds{route}` (histogram): only the series
    ///   counted at least once (a family with none is left out whole);
    /// - the config: `experiments_config_info{source,dialect,startup}`,
    ///   `experiments_config_health{health}` (1 for the current state, 0 for the others),
    ///   `experiments_config_version` and `experiments_config_age_seconds` (once a config
    ///   is loaded), `experiments_config_consecutive_failures`,
    ///   `experiments_config_checks_total`, and `experiments_config_last_error{error}`
    ///   (the last failure, kept after recovery, cut to 200 characters; only when there is
    ///   one);
    /// - `experiments_decider_errors_total`;
    /// - with an event pipeline: `experiments_events_accepted_total`, `_delivered_total`,
    ///   `_in_flight`, `_retries_total`, `_mismatched_fates_total` and
    ///   `experiments_events_dropped_total{reason}` for all eight reasons.
    pub(crate) fn render(&self, status: &ClientStatus) -> String {
        let mut out = String::with_capacity(4096);
        self.render_evaluations(&mut out);
        self.render_requests(&mut out);
        render_config(&mut out, status);
        header(
            &mut out,
            "experiments_decider_errors_total",
            "counter",
            "Errors of decider-dialect requests swallowed by the client (each returned the fallback).",
        );
        sample(&mut out, "experiments_decider_errors_total", &[], status.decider_errors);
        if let Some(events) = &status.events {
            render_events(&mut out, events);
        }
        out
    }

    /// `experiments_serve_evaluations_total`: the non-zero cells of every flag label, sorted
    /// by flag (`""` and `"_other"` last). The map is copied under the read lock and
    /// formatted after it is released, so a render never holds back first sightings long.
    fn render_evaluations(&self, out: &mut String) {
        let mut rows: Vec<(Arc<str>, [u64; N_OUTCOMES])> = {
            let flags = self.flags.read().unwrap_or_else(PoisonError::into_inner);
            flags.iter().map(|(flag, row)| (Arc::clone(flag), load_row(row))).collect()
        };
        rows.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let rows = rows
            .iter()
            .map(|(flag, counts)| (&**flag, *counts))
            .chain([(OVERFLOW_FLAG, load_row(&self.overflow))])
            .chain([(UNKNOWN_FLAG, load_row(&self.unknown))]);
        let name = "experiments_serve_evaluations_total";
        let mut first = true;
        for (flag, counts) in rows {
            for (outcome, &count) in OUTCOMES.iter().zip(&counts) {
                if count == 0 {
                    continue;
                }
                if std::mem::take(&mut first) {
                    header(
                        out,
                        name,
                        "counter",
                        "Flags evaluated, by flag (\"\": a key the config does not have; \
                         \"_other\": flags beyond the label cap) and OFREP reason or error code.",
                    );
                }
                sample(out, name, &[("flag", flag), ("outcome", outcome)], count);
            }
        }
    }

    /// `experiments_serve_requests_total` and `experiments_serve_request_duration_seconds`
    /// for the routes that answered at least one request.
    fn render_requests(&self, out: &mut String) {
        let codes: Vec<[u64; N_CODES]> =
            self.routes.iter().map(|r| r.codes.each_ref().map(|c| c.load(Relaxed))).collect();
        let name = "experiments_serve_requests_total";
        let mut first = true;
        for (route, counts) in ROUTES.iter().zip(&codes) {
            for (i, &count) in counts.iter().enumerate() {
                if count == 0 {
                    continue;
                }
                if std::mem::take(&mut first) {
                    header(out, name, "counter", "HTTP requests answered, by route and status.");
                }
                sample(out, name, &[("route", route), ("code", code_label(i))], count);
            }
        }

        let name = "experiments_serve_request_duration_seconds";
        let bucket = "experiments_serve_request_duration_seconds_bucket";
        let mut first = true;
        for (route, stats) in ROUTES.iter().zip(&self.routes) {
            let buckets = stats.buckets.each_ref().map(|b| b.load(Relaxed));
            let sum_nanos = stats.sum_nanos.load(Relaxed);
            let count: u64 = buckets.iter().sum();
            if count == 0 {
                continue;
            }
            if std::mem::take(&mut first) {
                header(out, name, "histogram", "Time taken to answer HTTP requests, by route.");
            }
            let mut cumulative = 0;
            for (le, &n) in BUCKET_LABELS.iter().chain(&["+Inf"]).zip(&buckets) {
                cumulative += n;
                sample(out, bucket, &[("route", route), ("le", le)], cumulative);
            }
            let seconds = sum_nanos as f64 / 1e9;
            sample(
                out,
                "experiments_serve_request_duration_seconds_sum",
                &[("route", route)],
                seconds,
            );
            sample(
                out,
                "experiments_serve_request_duration_seconds_count",
                &[("route", route)],
                count,
            );
        }
    }
}

/// The counts of `row`, loaded one by one.
fn load_row(row: &Row) -> [u64; N_OUTCOMES] {
    row.each_ref().map(|c| c.load(Relaxed))
}

/// The `experiments_config_*` families.
fn render_config(out: &mut String, status: &ClientStatus) {
    let config = &status.config;
    let name = "experiments_config_info";
    header(out, name, "gauge", "The config served: its source, dialect and start-up policy.");
    let dialect = status.dialect.map_or("", |d| d.as_str());
    let startup = debug_snake(&status.startup);
    sample(
        out,
        name,
        &[("source", &config.source), ("dialect", dialect), ("startup", &startup)],
        1,
    );

    let name = "experiments_config_health";
    header(
        out,
        name,
        "gauge",
        "1 for the config store's health: ready (a config is served, the last check succeeded), \
         stale (the last check failed) or empty (nothing loaded).",
    );
    let current = match config.health {
        Health::Ready => "ready".to_owned(),
        Health::Stale => "stale".to_owned(),
        Health::Empty => "empty".to_owned(),
        ref other => debug_snake(other),
    };
    let mut states = vec!["ready", "stale", "empty"];
    if !states.contains(&current.as_str()) {
        states.push(&current);
    }
    for state in states {
        sample(out, name, &[("health", state)], u64::from(state == current));
    }

    if let Some(version) = config.version {
        let name = "experiments_config_version";
        header(out, name, "gauge", "Version of the config served (1 for the first loaded).");
        sample(out, name, &[], version);
    }
    if let Some(age) = config.age {
        let name = "experiments_config_age_seconds";
        header(out, name, "gauge", "Seconds since the config served was loaded.");
        sample(out, name, &[], age.as_secs_f64());
    }
    let name = "experiments_config_consecutive_failures";
    header(out, name, "gauge", "Failed config checks since the last good one.");
    sample(out, name, &[], config.consecutive_failures);
    let name = "experiments_config_checks_total";
    header(out, name, "counter", "Config checks reported by the source (good or failed).");
    sample(out, name, &[], config.checks);
    if let Some(error) = &config.last_error {
        let name = "experiments_config_last_error";
        header(
            out,
            name,
            "gauge",
            "1, labelled with the most recent config failure (kept after recovery), cut to 200 \
             characters.",
        );
        let cut = match error.char_indices().nth(MAX_ERROR_CHARS) {
            Some((at, _)) => format!("{}…", &error[..at]),
            None => error.clone(),
        };
        sample(out, name, &[("error", &cut)], 1);
    }
}

/// The `experiments_events_*` families of a pipeline's accounting.
fn render_events(out: &mut String, events: &Counters) {
    let counters = [
        (
            "experiments_events_accepted_total",
            "counter",
            "Events taken into the queue.",
            events.accepted,
        ),
        (
            "experiments_events_delivered_total",
            "counter",
            "Events the sink confirmed.",
            events.delivered,
        ),
        (
            "experiments_events_in_flight",
            "gauge",
            "Accepted events neither delivered nor dropped yet.",
            events.in_flight,
        ),
        (
            "experiments_events_retries_total",
            "counter",
            "Export attempts that failed and were retried.",
            events.retries,
        ),
        (
            "experiments_events_mismatched_fates_total",
            "counter",
            "Fates a sink reported that did not match its batch (non-zero: a sink bug).",
            events.mismatched_fates,
        ),
    ];
    for (name, kind, help, value) in counters {
        header(out, name, kind, help);
        sample(out, name, &[], value);
    }
    let d = &events.dropped;
    let name = "experiments_events_dropped_total";
    header(out, name, "counter", "Events dropped, by reason.");
    for (reason, value) in [
        ("queue_full", d.queue_full),
        ("closed", d.closed),
        ("too_large", d.too_large),
        ("encode_error", d.encode_error),
        ("rejected_by_sink", d.rejected_by_sink),
        ("sink_panicked", d.sink_panicked),
        ("retry_budget_exhausted", d.retry_budget_exhausted),
        ("shutdown_timeout", d.shutdown_timeout),
    ] {
        sample(out, name, &[("reason", reason)], value);
    }
}

/// `FooBar` → `foo_bar`: the serde name of a unit variant of the SDK's enums, for variants
/// this crate does not know yet (they are `#[non_exhaustive]`).
fn debug_snake(value: &impl std::fmt::Debug) -> String {
    let debug = format!("{value:?}");
    let mut out = String::with_capacity(debug.len() + 4);
    for (i, c) in debug.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// The `# HELP` and `# TYPE` lines of a family (`help` must hold no backslash or newline).
fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// One sample line: `name{label="value",...} value`, the label values escaped.
fn sample(out: &mut String, name: &str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
    out.push_str(name);
    if !labels.is_empty() {
        out.push('{');
        for (i, (label, value)) in labels.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(label);
            out.push_str("=\"");
            escape_label_value(out, value);
            out.push('"');
        }
        out.push('}');
    }
    let _ = writeln!(out, " {value}");
}

/// Appends `value` escaped as the text format wants in a label value: `\` as `\\`, `"` as
/// `\"`, a line feed as `\n`.
fn escape_label_value(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::time::Duration;

    use experiments_sdk::events::{PipelineSettings, StdoutSink};
    use experiments_sdk::watch::{FailureKind, LoadFailure};
    use experiments_sdk::{ClientStatus, Config, ExperimentsClient, Inputs, SinkSettings};
    use prom_text_format_parser::Type;

    use super::Metrics;
    use crate::prometheus::{Parsed, named, parse, value};

    const CONFIG: &str = r#"{"rollout": {"id": 3, "name": "rollout", "owner": "team",
      "type": "feature_rollout", "version": "1", "start_ts": 0, "stop_ts": 4102444800,
      "experiment": {"experiment_version": 2, "variants": [{"name": "on", "size": 1.0}]}}}"#;

    /// The status of a real client serving [`CONFIG`], with a pipeline writing nowhere or
    /// none; the client is returned too so its store can be fed.
    async fn client(pipeline: bool) -> ExperimentsClient {
        let builder = ExperimentsClient::builder().config(Config::parse(CONFIG).unwrap());
        let builder = if pipeline {
            let mut events = PipelineSettings::default();
            events.max_batch_age = Duration::from_millis(10);
            builder.events(events).sink(StdoutSink::new(tokio::io::sink()))
        } else {
            builder.sink_settings(SinkSettings::None)
        };
        builder.build().await.unwrap()
    }

    async fn status() -> ClientStatus {
        client(false).await.status()
    }

    const EVALS: &str = "experiments_serve_evaluations_total";

    #[tokio::test]
    async fn evaluations_are_counted_by_flag_and_outcome() {
        let m = Metrics::new(10);
        for _ in 0..3 {
            m.evaluation("rollout", true, "SPLIT");
        }
        m.evaluation("rollout", true, "DEFAULT");
        m.evaluation("rollout", true, "NOT_AN_OUTCOME");
        m.evaluation("other_flag", true, "TARGETING_KEY_MISSING");
        // Unknown keys never create a series of their own.
        for key in ["nope", "t2_secret", "rollout"] {
            m.evaluation(key, false, "FLAG_NOT_FOUND");
        }
        m.evaluation("", true, "PARSE_ERROR");
        let samples = parse(&m.render(&status().await));
        let v = |flag, outcome| value(&samples, EVALS, &[("flag", flag), ("outcome", outcome)]);
        assert_eq!(v("rollout", "SPLIT"), Some(3.0));
        assert_eq!(v("rollout", "DEFAULT"), Some(1.0));
        assert_eq!(v("rollout", "other"), Some(1.0));
        assert_eq!(v("rollout", "FLAG_NOT_FOUND"), None, "zero cells are left out");
        assert_eq!(v("other_flag", "TARGETING_KEY_MISSING"), Some(1.0));
        assert_eq!(v("", "FLAG_NOT_FOUND"), Some(3.0));
        assert_eq!(v("", "PARSE_ERROR"), Some(1.0));
        let flags: HashSet<&str> =
            named(&samples, EVALS).map(|s| s.labels["flag"].as_str()).collect();
        assert_eq!(flags, HashSet::from(["rollout", "other_flag", ""]));
        assert!(named(&samples, EVALS).all(|s| s.kind == Type::Counter));
        assert_eq!(named(&samples, EVALS).map(|s| s.value).sum::<f64>(), 10.0);
    }

    #[tokio::test]
    async fn flags_beyond_the_cap_count_as_other() {
        let m = Metrics::new(2);
        for flag in ["a", "b", "c", "d", "a", "c"] {
            m.evaluation(flag, true, "SPLIT");
        }
        m.evaluation("_other", true, "SPLIT");
        let samples = parse(&m.render(&status().await));
        let v = |flag| value(&samples, EVALS, &[("flag", flag), ("outcome", "SPLIT")]);
        assert_eq!((v("a"), v("b"), v("c"), v("d")), (Some(2.0), Some(1.0), None, None));
        assert_eq!(v("_other"), Some(4.0));

        let none = Metrics::new(0);
        none.evaluation("a", true, "DEFAULT");
        none.evaluation("b", false, "FLAG_NOT_FOUND");
        let samples = parse(&none.render(&status().await));
        let flags: Vec<&str> = named(&samples, EVALS).map(|s| s.labels["flag"].as_str()).collect();
        assert_eq!(flags, ["_other", ""]);
    }

    #[tokio::test]
    async fn label_values_are_escaped() {
        let m = Metrics::new(10);
        let flag = "we\"ird\nna\\me,x=}{";
        m.evaluation(flag, true, "STATIC");
        let text = m.render(&status().await);
        assert!(text.contains(r#"{flag="we\"ird\nna\\me,x=}{",outcome="STATIC"} 1"#), "{text}");
        let samples = parse(&text);
        assert_eq!(value(&samples, EVALS, &[("flag", flag), ("outcome", "STATIC")]), Some(1.0));
    }

    #[tokio::test]
    async fn requests_and_latency_histogram() {
        let m = Metrics::new(10);
        let us = Duration::from_micros;
        m.request("evaluate", 200, us(50));
        m.request("evaluate", 200, us(100)); // on the bound: in le="0.0001"
        m.request("evaluate", 404, us(101));
        m.request("evaluate", 503, us(300));
        m.request("evaluate", 299, Duration::from_secs(3)); // above every bound
        m.request("bulk", 42, us(1));
        m.request("no_such_route", 200, Duration::MAX);
        let samples = parse(&m.render(&status().await));

        let reqs = "experiments_serve_requests_total";
        let r = |route, code| value(&samples, reqs, &[("route", route), ("code", code)]);
        assert_eq!(r("evaluate", "200"), Some(2.0));
        assert_eq!(r("evaluate", "404"), Some(1.0));
        assert_eq!(r("evaluate", "503"), Some(1.0));
        assert_eq!(r("evaluate", "2xx"), Some(1.0));
        assert_eq!(r("bulk", "other"), Some(1.0));
        assert_eq!(r("other", "200"), Some(1.0));
        assert_eq!(named(&samples, reqs).count(), 6);

        let bucket = "experiments_serve_request_duration_seconds_bucket";
        let buckets: Vec<(f64, f64)> = named(&samples, bucket)
            .filter(|s| s.labels["route"] == "evaluate")
            .map(|s| (s.labels["le"].parse::<f64>().unwrap(), s.value))
            .collect();
        assert_eq!(buckets.len(), 15);
        assert!(buckets.windows(2).all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1), "{buckets:?}");
        assert_eq!(buckets.last(), Some(&(f64::INFINITY, 5.0)));
        let at = |le: f64| buckets.iter().find(|b| b.0 == le).map(|b| b.1);
        assert_eq!(
            (at(0.0001), at(0.00025), at(0.0005), at(2.5)),
            (Some(2.0), Some(3.0), Some(4.0), Some(4.0))
        );
        let route = [("route", "evaluate")];
        let count = value(&samples, "experiments_serve_request_duration_seconds_count", &route);
        assert_eq!(count, Some(5.0));
        let sum = value(&samples, "experiments_serve_request_duration_seconds_sum", &route);
        assert!(sum.is_some_and(|s| (s - 3.000551).abs() < 1e-9), "{sum:?}");
        let routes: HashSet<&str> =
            named(&samples, bucket).map(|s| s.labels["route"].as_str()).collect();
        assert_eq!(routes, HashSet::from(["evaluate", "bulk", "other"]));
        for route in routes {
            let inf = value(&samples, bucket, &[("route", route), ("le", "+Inf")]);
            let count = value(
                &samples,
                "experiments_serve_request_duration_seconds_count",
                &[("route", route)],
            );
            assert_eq!(inf, count);
        }
    }

    #[tokio::test]
    async fn empty_metrics_render_only_the_status() {
        let text = Metrics::new(10).render(&status().await);
        let samples = parse(&text);
        assert!(!text.contains("experiments_serve_"), "{text}");
        assert!(!text.contains("experiments_events_"), "no pipeline, no event metrics: {text}");
        assert!(!text.contains("experiments_config_last_error"), "{text}");
        assert_eq!(value(&samples, "experiments_config_health", &[("health", "ready")]), Some(1.0));
        assert_eq!(value(&samples, "experiments_config_health", &[("health", "stale")]), Some(0.0));
        assert_eq!(value(&samples, "experiments_config_health", &[("health", "empty")]), Some(0.0));
        assert_eq!(value(&samples, "experiments_config_version", &[]), Some(1.0));
        assert_eq!(value(&samples, "experiments_decider_errors_total", &[]), Some(0.0));
    }

    #[tokio::test]
    async fn client_status_is_rendered() {
        let client = client(true).await;
        let exp = client.request();
        let inputs = Inputs::new().with("user_id", "t2_1").with("logged_in", true);
        let variant = exp.variant("rollout", &inputs).unwrap();
        assert!(exp.expose("rollout", variant, &inputs));
        let long = format!("bad \"doc\" at C:\\x {}", "y".repeat(300));
        client.store().record_failure(LoadFailure::new(FailureKind::Other, &long));
        let status = client.status();
        let text = Metrics::new(10).render(&status);
        let samples = parse(&text);

        let info = named(&samples, "experiments_config_info").collect::<Vec<_>>();
        assert_eq!(info.len(), 1);
        assert_eq!(info[0].labels["dialect"], "baseplate");
        assert_eq!(info[0].labels["startup"], "wait");
        assert_eq!(info[0].labels["source"], status.config.source);
        let health = |h| value(&samples, "experiments_config_health", &[("health", h)]);
        assert_eq!(
            (health("ready"), health("stale"), health("empty")),
            (Some(0.0), Some(1.0), Some(0.0))
        );
        assert_eq!(value(&samples, "experiments_config_version", &[]), Some(1.0));
        let age = value(&samples, "experiments_config_age_seconds", &[]);
        assert!(age.is_some_and(|a| (0.0..60.0).contains(&a)), "{age:?}");
        assert_eq!(value(&samples, "experiments_config_consecutive_failures", &[]), Some(1.0));
        let checks = status.config.checks as f64;
        assert_eq!(value(&samples, "experiments_config_checks_total", &[]), Some(checks));
        let errors: Vec<&Parsed> = named(&samples, "experiments_config_last_error").collect();
        assert_eq!(errors.len(), 1);
        let error = &errors[0].labels["error"];
        assert_eq!(error.chars().count(), 201, "{error}");
        assert!(error.starts_with("bad \"doc\" at C:\\x yyy") && error.ends_with("y…"), "{error}");
        assert_eq!(errors[0].value, 1.0);

        let events = status.events.expect("a pipeline");
        assert!(events.accepted >= 1);
        for (name, want) in [
            ("experiments_events_accepted_total", events.accepted),
            ("experiments_events_delivered_total", events.delivered),
            ("experiments_events_in_flight", events.in_flight),
            ("experiments_events_retries_total", events.retries),
            ("experiments_events_mismatched_fates_total", events.mismatched_fates),
        ] {
            assert_eq!(value(&samples, name, &[]), Some(want as f64), "{name}");
        }
        let reasons: Vec<&str> = named(&samples, "experiments_events_dropped_total")
            .map(|s| s.labels["reason"].as_str())
            .collect();
        assert_eq!(
            reasons,
            [
                "queue_full",
                "closed",
                "too_large",
                "encode_error",
                "rejected_by_sink",
                "sink_panicked",
                "retry_budget_exhausted",
                "shutdown_timeout"
            ]
        );
        assert_eq!(value(&samples, "experiments_decider_errors_total", &[]), Some(0.0));
        client.shutdown(Duration::from_secs(5)).await;
    }

    #[tokio::test]
    async fn concurrent_counting_is_exact() {
        let m = Metrics::new(20);
        std::thread::scope(|scope| {
            for t in 0..4 {
                let m = &m;
                scope.spawn(move || {
                    for i in 0..10_000 {
                        let flag = format!("flag_{}", (i + t) % 50);
                        m.evaluation(&flag, i % 7 != 0, "SPLIT");
                        m.request("evaluate", 200, Duration::from_micros(i % 3000));
                    }
                });
            }
        });
        let samples = parse(&m.render(&status().await));
        assert_eq!(named(&samples, EVALS).map(|s| s.value).sum::<f64>(), 40_000.0);
        // 20 labelled flags, `_other` and `""`.
        assert_eq!(named(&samples, EVALS).count(), 22);
        let route = [("route", "evaluate")];
        let count = value(&samples, "experiments_serve_request_duration_seconds_count", &route);
        assert_eq!(count, Some(40_000.0));
    }
}
