//! The shared evaluation benchmark scenarios (`../shared/bench/README.md`) and a generator of
//! large configs, used by `cargo xtask bench` and by the criterion benches.

use std::path::Path;
use std::time::Instant;

use experiments_core::{Config, Experiments, Inputs, NoopHandler};
use serde_json::{Value, json};

/// Calls per scenario.
pub const CALLS: usize = 200_000;
/// A fresh per-request client is created every this many calls.
pub const CALLS_PER_REQUEST: usize = 10;
/// The instant the scenarios run at (inside every bench experiment's window).
pub const NOW: f64 = 1_700_000_000.0;

/// One benchmark scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scenario {
    /// `a`, `b` or `c`.
    pub letter: char,
    /// The experiment it calls.
    pub experiment: &'static str,
    /// Non-null variants the Python reference reports (a correctness cross-check).
    pub python_nonnull: usize,
}

/// The three scenarios.
pub const SCENARIOS: [Scenario; 3] = [
    Scenario { letter: 'a', experiment: "bench_simple", python_nonnull: 40_042 },
    Scenario { letter: 'b', experiment: "bench_targeted", python_nonnull: 20_435 },
    Scenario { letter: 'c', experiment: "bench_r2", python_nonnull: 60_125 },
];

fn base36(mut n: u64) -> String {
    const DIGITS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    loop {
        out.push(DIGITS[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

/// The bucketing id of call `k` of scenario `letter`:
/// `"t2_" + base36(10_000_000 + k * 7919 + ord(letter))`.
///
/// ```
/// assert_eq!(xtask::bench::bucketing_id('a', 0), "t2_5yc4h");
/// ```
pub fn bucketing_id(letter: char, k: usize) -> String {
    format!("t2_{}", base36(10_000_000 + k as u64 * 7919 + u64::from(letter)))
}

/// The inputs of call `k` of a scenario.
pub fn inputs(s: Scenario, k: usize) -> Inputs {
    let mut i = template(s);
    fill(s, k, &bucketing_id(s.letter, k), &mut i);
    i
}

/// An input map with every attribute of the scenario, to be filled per call by [`fill`].
pub fn template(s: Scenario) -> Inputs {
    let base =
        Inputs::with_capacity(8).with("user_id", String::with_capacity(16)).with("logged_in", true);
    if s.letter != 'b' {
        return base;
    }
    base.with("app_name", String::with_capacity(8))
        .with("country", String::with_capacity(2))
        .with("is_employee", false)
        .with("num_votes", 0)
        .with("account_age_days", 0)
        .with("device_id", String::with_capacity(8))
}

fn set_str(slot: &mut Value, text: &str) {
    if let Value::String(s) = slot {
        s.clear();
        s.push_str(text);
    }
}

/// Writes call `k`'s attributes into a [`template`] in place (no allocation once warmed), as
/// a service fills its per-request inputs.
pub fn fill(s: Scenario, k: usize, id: &str, inputs: &mut Inputs) {
    for (i, (_, slot)) in inputs.iter_mut().enumerate() {
        match i {
            0 => set_str(slot, id),
            2 => set_str(slot, ["ios", "android", "web"][k % 3]),
            3 => set_str(slot, ["US", "CA"][k % 2]),
            4 => *slot = Value::Bool(k.is_multiple_of(17)),
            5 => *slot = Value::from((k % 50) as i64),
            6 => *slot = Value::from((k % 5000) as i64),
            7 => {
                if let Value::String(d) = slot {
                    use std::fmt::Write;
                    d.clear();
                    let _ = write!(d, "dev-{}", k % 1000);
                }
            }
            _ => {}
        }
        if s.letter != 'b' && i >= 1 {
            break;
        }
    }
}

/// The precomputed bucketing ids of a scenario, in one contiguous buffer.
pub struct Workload {
    /// The scenario.
    pub scenario: Scenario,
    ids: String,
    ends: Vec<usize>,
}

impl Workload {
    /// Builds the ids of all calls of `s`.
    pub fn new(s: Scenario) -> Self {
        let mut ids = String::with_capacity(CALLS * 12);
        let mut ends = Vec::with_capacity(CALLS);
        for k in 0..CALLS {
            ids.push_str(&bucketing_id(s.letter, k));
            ends.push(ids.len());
        }
        Workload { scenario: s, ids, ends }
    }

    /// Number of calls.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether there are no calls.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The bucketing id of call `k`.
    pub fn id(&self, k: usize) -> &str {
        let start = if k == 0 { 0 } else { self.ends[k - 1] };
        &self.ids[start..self.ends[k]]
    }
}

/// Loads the shared bench config.
pub fn load_config(path: &Path) -> Result<Config, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    Config::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// Runs one pass of a scenario the way the reference does (fresh client every 10 calls, a
/// sink that receives every event) and returns the number of non-null variants.
pub fn run_pass(config: &Config, w: &Workload, inputs: &mut Inputs) -> usize {
    let s = w.scenario;
    let mut nonnull = 0;
    let mut k = 0;
    while k < w.len() {
        let mut client = Experiments::new(config, NOW, NoopHandler);
        for _ in 0..CALLS_PER_REQUEST.min(w.len() - k) {
            fill(s, k, w.id(k), inputs);
            if let Ok(Some(_)) = client.variant(s.experiment, inputs, None) {
                nonnull += 1;
            }
            k += 1;
        }
    }
    nonnull
}

/// Result of timing one scenario.
#[derive(Debug, Clone)]
pub struct Timing {
    /// Non-null variants.
    pub nonnull: usize,
    /// Median nanoseconds per call over the runs.
    pub ns_per_call: f64,
    /// Every run's nanoseconds per call.
    pub runs: Vec<f64>,
}

/// Times `runs` passes and returns the median.
pub fn time_scenario(config: &Config, w: &Workload, inputs: &mut Inputs, runs: usize) -> Timing {
    let mut nonnull = 0;
    let mut per_call: Vec<f64> = (0..runs.max(1))
        .map(|_| {
            let start = Instant::now();
            nonnull = std::hint::black_box(run_pass(config, w, inputs));
            start.elapsed().as_nanos() as f64 / w.len() as f64
        })
        .collect();
    let runs_copy = per_call.clone();
    per_call.sort_by(f64::total_cmp);
    Timing { nonnull, ns_per_call: per_call[per_call.len() / 2], runs: runs_copy }
}

/// A generated `experiments.json` with `n` experiments of every type, for parse benchmarks.
pub fn generate_document(n: usize) -> String {
    let mut doc = serde_json::Map::new();
    for i in 0..n {
        let name = format!("generated_{i}");
        let common = |kind: &str, experiment: Value| {
            json!({"id": i, "name": name, "owner": "bench", "type": kind, "version": "1",
                   "start_ts": 0, "stop_ts": 4102444800u64, "enabled": true, "experiment": experiment})
        };
        let exp = match i % 6 {
            0 => common(
                "r2",
                json!({"variants": {"active": 10, "control_1": 10},
                  "targeting": {"logged_in": [true, false]}, "overrides": {"user_id": {"t2_vip": "active"}}}),
            ),
            1 => common(
                "feature_flag",
                json!({"variants": {"active": 50}, "targeting": {"logged_in": [true]}}),
            ),
            2 => common(
                "single_variant",
                json!({"experiment_version": 3, "shuffle_version": 1,
                  "variants": [{"name": "control_1", "size": 0.1}, {"name": "treatment", "size": 0.1}],
                  "targeting": {"ALL": [{"EQ": {"field": "app_name", "values": ["ios", "android"]}},
                                        {"GE": {"field": "num_votes", "value": 5}}]}}),
            ),
            3 => common(
                "multi_variant",
                json!({"experiment_version": 1,
                  "variants": [{"name": "a", "size": 0.2}, {"name": "b", "size": 0.2}, {"name": "c", "size": 0.2}],
                  "overrides": [{"a": {"EQ": {"field": "user_id", "value": "t2_vip"}}}]}),
            ),
            4 => common(
                "feature_rollout",
                json!({"experiment_version": 2,
                  "variants": [{"name": "on", "size": 0.25}]}),
            ),
            _ => common(
                "range_variant",
                json!({"experiment_version": 1,
                  "variants": [{"name": "x", "range_start": 0.0, "range_end": 0.3},
                               {"name": "y", "range_start": 0.5, "range_end": 0.8}]}),
            ),
        };
        doc.insert(name, exp);
    }
    serde_json::to_string_pretty(&Value::Object(doc)).unwrap_or_default()
}

/// The reddit-decider scenarios of `../shared/bench/README.md` (`decider.json`).
pub mod decider {
    use std::path::Path;
    use std::time::Instant;

    use experiments_decider::{Context, Manifest, StringField};

    /// Calls per decider scenario.
    pub const CALLS: usize = 100_000;

    /// One decider scenario.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct Scenario {
        /// `d` or `e`.
        pub letter: char,
        /// The feature it decides.
        pub feature: &'static str,
        /// Non-null variants reddit-decider 1.18.2 reports (a correctness cross-check).
        pub reference_nonnull: usize,
    }

    /// The two decider scenarios.
    pub const SCENARIOS: [Scenario; 2] = [
        Scenario { letter: 'd', feature: "simple_exp", reference_nonnull: 19_902 },
        Scenario { letter: 'e', feature: "targeted_exp", reference_nonnull: 5_979 },
    ];

    /// The `user_id` of call `i`: `"t2_" + base36(1000003 * i + 7919)`.
    ///
    /// ```
    /// assert_eq!(xtask::bench::decider::user_id(0), "t2_63z");
    /// ```
    pub fn user_id(i: usize) -> String {
        format!("t2_{}", super::base36(1_000_003 * i as u64 + 7919))
    }

    /// Precomputed user ids, one buffer.
    pub struct Workload {
        ids: String,
        ends: Vec<usize>,
    }

    impl Workload {
        /// The ids of all calls (the same for both scenarios).
        pub fn new() -> Self {
            let mut ids = String::with_capacity(CALLS * 12);
            let mut ends = Vec::with_capacity(CALLS);
            for i in 0..CALLS {
                ids.push_str(&user_id(i));
                ends.push(ids.len());
            }
            Workload { ids, ends }
        }

        /// Number of calls.
        pub fn len(&self) -> usize {
            self.ends.len()
        }

        /// Whether there are no calls.
        pub fn is_empty(&self) -> bool {
            self.ends.is_empty()
        }

        /// The user id of call `i`.
        pub fn id(&self, i: usize) -> &str {
            let start = if i == 0 { 0 } else { self.ends[i - 1] };
            &self.ids[start..self.ends[i]]
        }
    }

    impl Default for Workload {
        fn default() -> Self {
            Self::new()
        }
    }

    /// Writes call `i`'s context into `ctx` in place (no allocation once every slot exists),
    /// as a service refills a per-worker context: the typed slots, and `num_votes` /
    /// `account_age_days` in `other_fields`.
    pub fn fill(ctx: &mut Context, i: usize, user_id: &str) {
        ctx.set_string(StringField::UserId, user_id);
        ctx.set_string(StringField::CountryCode, if i.is_multiple_of(4) { "CA" } else { "US" });
        ctx.set_user_is_employee(Some(i.is_multiple_of(13)));
        ctx.set_logged_in(Some(true));
        ctx.set_string(StringField::AppName, ["ios", "android", "web"][i % 3]);
        ctx.set_other("num_votes", (i % 11) as i64);
        ctx.set_other("account_age_days", ((i * 37) % 5000) as i64);
    }

    /// Loads the decider bench document.
    pub fn load(path: &Path) -> Result<Manifest, String> {
        let bytes =
            std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let m = Manifest::from_slice(&bytes).map_err(|e| format!("{}: {e}", path.display()))?;
        if !m.errors().is_empty() {
            return Err(format!("{}: entries failed to load: {:?}", path.display(), m.errors()));
        }
        Ok(m)
    }

    /// One pass: every call is a full decision (variant and its events as values); returns
    /// the number of non-null variants.
    pub fn run_pass(m: &Manifest, s: Scenario, w: &Workload, ctx: &mut Context) -> usize {
        let mut nonnull = 0;
        for i in 0..w.len() {
            fill(ctx, i, w.id(i));
            if let Ok(d) = m.choose(s.feature, ctx) {
                let d = std::hint::black_box(d);
                nonnull += usize::from(d.variant().is_some());
            }
        }
        nonnull
    }

    /// Times `runs` passes; returns (non-null, median ns per call, every run's ns per call).
    pub fn time(
        m: &Manifest,
        s: Scenario,
        w: &Workload,
        ctx: &mut Context,
        runs: usize,
    ) -> (usize, f64, Vec<f64>) {
        let mut nonnull = 0;
        let runs: Vec<f64> = (0..runs.max(1))
            .map(|_| {
                let start = Instant::now();
                nonnull = run_pass(m, s, w, ctx);
                start.elapsed().as_nanos() as f64 / w.len() as f64
            })
            .collect();
        let mut sorted = runs.clone();
        sorted.sort_by(f64::total_cmp);
        (nonnull, sorted[sorted.len() / 2], runs)
    }

    /// The per-request wrapper path of a scenario (`reddit_decider.Decider.get_variant`, whose
    /// Python figure the bench README gives): for each call a fresh request context built from
    /// the call's fields, a request object from the service client, and `get_variant` with
    /// its exposures queued in the client's pipeline. Returns the number of non-null variants.
    pub fn request_pass(
        client: &experiments_sdk::ExperimentsClient,
        s: Scenario,
        w: &Workload,
    ) -> usize {
        let kwargs = serde_json::Map::new();
        let mut nonnull = 0;
        for i in 0..w.len() {
            let ctx = experiments_sdk::DeciderContext::builder()
                .user_id(w.id(i))
                .country_code(if i.is_multiple_of(4) { "CA" } else { "US" })
                .user_is_employee(i.is_multiple_of(13))
                .logged_in(true)
                .extracted_field("app_name", ["ios", "android", "web"][i % 3])
                .extracted_field("num_votes", (i % 11) as i64)
                .extracted_field("account_age_days", ((i * 37) % 5000) as i64)
                .build();
            let request = client.decider_request(ctx, None);
            nonnull += usize::from(request.get_variant(s.feature, &kwargs).is_some());
        }
        nonnull
    }

    /// A config source that publishes fixed bytes once (the bench document, read in the
    /// decider dialect).
    pub struct Document(pub Vec<u8>);

    impl experiments_sdk::watch::ConfigSource for Document {
        fn describe(&self) -> String {
            "bench:decider".into()
        }

        fn start(
            self: Box<Self>,
            store: experiments_sdk::watch::ConfigStore,
        ) -> Result<experiments_sdk::watch::SourceGuard, experiments_sdk::watch::SourceError>
        {
            // A broken document shows in the store's status: the bench then reports 0 variants.
            let _ =
                store.offer_bytes(&self.0, experiments_sdk::watch::Origin::Other("bench".into()));
            Ok(experiments_sdk::watch::SourceGuard::new(()))
        }
    }

    /// A generated decider document with `n` features: range features (some targeted, some
    /// with overrides, some with a holdout parent) and dynamic configs.
    pub fn generate_document(n: usize) -> String {
        use serde_json::{Value, json};
        let mut doc = serde_json::Map::new();
        doc.insert(
            "$override_groups".into(),
            json!({"value": {"vips": {"name": "vips", "field": "user_id", "values": ["t2_a", "t2_b"]}}}),
        );
        for i in 0..n {
            let key = format!("generated_{i}");
            let base = |kind: &str, experiment: Value| {
                json!({"id": i, "name": key, "enabled": true, "version": "1", "type": kind,
                       "emit_event": true, "start_ts": 0, "stop_ts": 4102444800u64, "owner": "bench",
                       "experiment": experiment})
            };
            let variants = json!([{"name": "control_1", "range_start": 0.0, "range_end": 0.1},
                                  {"name": "treatment_1", "range_start": 0.1, "range_end": 0.2}]);
            let mut entry = match i % 4 {
                0 => base(
                    "range_variant",
                    json!({"experiment_version": 1, "bucket_val": "user_id", "variants": variants}),
                ),
                1 => base(
                    "range_variant",
                    json!({"experiment_version": 2, "shuffle_version": 1, "bucket_val": "user_id",
                    "variants": variants,
                    "targeting": {"ALL": [{"EQ": {"field": "app_name", "values": ["ios", "android"]}},
                                          {"GE": {"field": "num_votes", "value": 5}}]},
                    "overrides": [{"treatment_1": {"EQ": {"field": "user_id", "value": "vips"}}}]}),
                ),
                2 => base(
                    "feature_rollout",
                    json!({"experiment_version": 3, "bucket_val": "device_id", "variants": variants}),
                ),
                _ => base("dynamic_config", json!({"experiment_version": 1})),
            };
            if i % 4 == 3 {
                entry["value"] = json!({"limit": i, "label": "x"});
            } else if i % 8 == 1 && i > 0 {
                entry["parent_hg_name"] = json!(format!("generated_{}", i - 1));
            }
            doc.insert(key, entry);
        }
        serde_json::to_string(&Value::Object(doc)).unwrap_or_default()
    }
}
