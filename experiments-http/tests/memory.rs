//! Heap use of the HTTP sink when the collector answers with an endless body, measured by a
//! counting global allocator. Its own test binary with a single test, so nothing else
//! allocates while it measures.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use experiments_events::{Batch, EncodedEvent, Encoding, EventFate, EventSink};
use experiments_http::collector::{Behavior, Collector};
use experiments_http::{HttpSettings, HttpSink, Secret};

/// The system allocator, counting live bytes and their high-water mark.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(size: usize) {
    let live = LIVE.fetch_add(size, Ordering::Relaxed) + size;
    PEAK.fetch_max(live, Ordering::Relaxed);
}

// SAFETY: every call is forwarded unchanged to `System`; only counters are added.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
            grew(new_size);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const KEY: &str = "exp-test";
const SECRET: &[u8] = b"correct horse battery staple";

fn batch() -> Batch {
    let event = EncodedEvent::new(
        br#"{"1":{"str":"experiment"}}"#.to_vec(),
        "expose",
        None,
        Default::default(),
    );
    Batch::new(Encoding::V2, vec![event])
}

/// An endless 200 or 500 body, for as long as the request timeout would allow, costs the
/// sink a few MiB of heap at most (before the fix it kept everything it read: hundreds of
/// MiB within the timeout).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endless_bodies_cost_bounded_memory() {
    for status in [200, 500] {
        let collector = Collector::start(KEY, SECRET).await.unwrap();
        collector.script([Behavior::EndlessBody(status)]);
        let timeout = Duration::from_secs(3);
        let settings = {
            let mut ps = HttpSettings::new(collector.url(), KEY, Secret::new(SECRET));
            ps.timeout = timeout;
            ps
        };
        let sink = HttpSink::new(settings).unwrap();
        let batch = batch();
        let before = LIVE.load(Ordering::Relaxed);
        PEAK.store(before, Ordering::Relaxed);
        let started = Instant::now();
        let outcome = sink.export(&batch).await;
        let took = started.elapsed();
        let growth = PEAK.load(Ordering::Relaxed).saturating_sub(before);
        eprintln!("{status}: heap peak +{growth} bytes, {took:?}");
        assert!(growth < 8 << 20, "{status}: heap grew by {growth} bytes during the export");
        assert!(took < timeout, "{status}: within the timeout: {took:?}");
        let expected_ok = status == 200;
        let (fates, _) = outcome.resolve(1);
        assert_eq!(fates.as_slice() == [EventFate::Delivered], expected_ok, "{fates:?}");
    }
}
