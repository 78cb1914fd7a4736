//! What a load costs in memory, measured by a counting global allocator: the value budget
//! (`max_json_values`) bounds it as documented, whatever the document's shape, and a document
//! over the budget costs only its bytes.

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use experiments_watch::{
    DEFAULT_MAX_FILE_SIZE, DEFAULT_MAX_JSON_VALUES, Snapshot, count_json_values,
};

/// Counts the bytes currently allocated and the peak since the last reset.
struct PeakAlloc;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

#[allow(unsafe_code)]
// SAFETY: every call is forwarded unchanged to the system allocator; only counters are added.
unsafe impl GlobalAlloc for PeakAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract, passed on as is.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let now = CURRENT.fetch_add(layout.size(), Ordering::SeqCst) + layout.size();
            PEAK.fetch_max(now, Ordering::SeqCst);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `alloc` above with this layout.
        unsafe { System.dealloc(ptr, layout) };
        CURRENT.fetch_sub(layout.size(), Ordering::SeqCst);
    }
}

#[global_allocator]
static ALLOC: PeakAlloc = PeakAlloc;

/// Measurements are global: one test at a time.
static SERIAL: Mutex<()> = Mutex::new(());

/// The documented bound of `WatchSettings::max_json_values`: peak bytes allocated by a load
/// are at most this many per counted value...
const BYTES_PER_VALUE: usize = 400;
/// ...plus this many per byte of the file.
const BYTES_PER_FILE_BYTE: usize = 6;

/// Runs `f` and returns its result with the peak of bytes allocated meanwhile (above what was
/// allocated before).
fn peak_of<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let base = CURRENT.load(Ordering::SeqCst);
    PEAK.store(base, Ordering::SeqCst);
    let out = f();
    (out, PEAK.load(Ordering::SeqCst).saturating_sub(base))
}

fn write(dir: &Path, text: &str) -> std::path::PathBuf {
    let path = dir.join("experiments.json");
    std::fs::write(&path, text).unwrap();
    path
}

fn list(item: &str, n: usize) -> String {
    vec![item; n].join(",")
}

/// A valid simple experiment whose targeting is one `EQ` over `values` (kept compiled).
fn eq_experiment(values: &str) -> String {
    format!(
        r#"{{"e": {{"id": 1, "name": "e", "type": "single_variant", "start_ts": 0, "stop_ts": 4102444800,
        "experiment": {{"experiment_version": 3, "shuffle_version": 1,
        "variants": [{{"name": "control_1", "size": 0.1}}, {{"name": "treatment", "size": 0.1}}],
        "targeting": {{"EQ": {{"field": "x", "values": [{values}]}}}}}}}}}}"#
    )
}

#[test]
fn the_reported_attack_is_refused_at_the_cost_of_its_bytes() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let dir = tempfile::tempdir().unwrap();
    // A 10 MiB config (the default max_file_size) holding a 5,000,000-element EQ list: it
    // used to parse, peaking at about 750 MB.
    let text = eq_experiment(&list("1", 5_000_000));
    assert!(text.len() as u64 <= DEFAULT_MAX_FILE_SIZE);
    let path = write(dir.path(), &text);
    let (result, peak) =
        peak_of(|| Snapshot::load(&path, DEFAULT_MAX_FILE_SIZE).map(|s| s.version));
    let error = result.unwrap_err();
    assert!(error.contains(&format!("more than {DEFAULT_MAX_JSON_VALUES} JSON values")), "{error}");
    // The bytes read and little else: nothing was parsed.
    assert!(peak <= text.len() + (1 << 20), "peak {peak} B for a {} B file", text.len());
}

#[test]
fn the_value_budget_bounds_the_memory_of_every_shape() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let n = 60_000;
    let entries = |f: &dyn Fn(usize) -> String, count: usize| {
        format!("{{{}}}", (0..count).map(f).collect::<Vec<_>>().join(","))
    };
    // The costliest shapes found per counted value and per byte, and the common ones.
    let shapes: Vec<(&str, String)> = vec![
        ("flat list of digits (the reported attack)", eq_experiment(&list("1", n))),
        ("list of short strings", eq_experiment(&list("\"t2_abcdef\"", n))),
        ("one-element arrays nested in a list", eq_experiment(&list("[[[[1]]]]", n / 5))),
        ("one-member objects nested in a list", eq_experiment(&list("{\"a\":{\"b\":1}}", n / 5))),
        ("lists of one empty container", eq_experiment(&list("[{}]", n / 2))),
        ("tiny top-level entries", entries(&|i| format!("\"{i}\":0"), n / 5)),
        ("empty top-level objects", entries(&|i| format!("\"{i}\":{{}}"), n / 5)),
        ("long top-level keys", entries(&|i| format!("\"{i}{}\":0", "k".repeat(1000)), 500)),
        (
            "many small experiments",
            entries(
                &|i| {
                    format!(
                        r#""e{i}": {{"id": {i}, "name": "e{i}", "type": "feature_flag", "start_ts": 0,
                        "stop_ts": 4102444800, "experiment": {{"variants": {{"active": 100}}}}}}"#
                    )
                },
                n / 25,
            ),
        ),
    ];
    for (name, text) in shapes {
        let values = count_json_values(text.as_bytes());
        let path = write(dir.path(), &text);
        // Exactly at the budget: loaded, within the documented bound.
        let (result, peak) =
            peak_of(|| Snapshot::load_with_limits(&path, 1 << 30, values).map(|s| s.version));
        assert_eq!(result, Ok(1), "{name}");
        let bound = BYTES_PER_VALUE * values as usize + BYTES_PER_FILE_BYTE * text.len();
        assert!(
            peak <= bound,
            "{name}: peak {peak} B over the documented bound {bound} B ({values} values, {} B)",
            text.len()
        );
        // One value under: refused for the cost of the bytes.
        let (result, peak) =
            peak_of(|| Snapshot::load_with_limits(&path, 1 << 30, values - 1).map(|s| s.version));
        assert!(result.unwrap_err().contains("JSON values"), "{name}");
        assert!(peak <= text.len() + (64 << 10), "{name}: refusing cost {peak} B");
    }
}

#[test]
fn realistic_configs_fit_the_default_budget_up_to_the_default_size() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    // Compact feature flags, the densest realistic entries (about 150 bytes each): a file of
    // them at the default size limit stays under the default value budget.
    let entry = |i: usize| {
        format!(
            r#""feature_{i}": {{"id": {i}, "name": "feature_{i}", "type": "feature_flag", "owner": "team", "version": "3", "start_ts": 1700000000, "stop_ts": 4102444800, "enabled": true, "experiment": {{"variants": {{"active": 100}}}}}}"#
        )
    };
    let sample: String = format!("{{{}}}", (0..1000).map(entry).collect::<Vec<_>>().join(","));
    let per_value = sample.len() as f64 / count_json_values(sample.as_bytes()) as f64;
    let at_size_limit = DEFAULT_MAX_FILE_SIZE as f64 / per_value;
    assert!(
        at_size_limit < DEFAULT_MAX_JSON_VALUES as f64,
        "{per_value:.1} bytes per value: a 10 MiB file counts {at_size_limit:.0} values"
    );
}
