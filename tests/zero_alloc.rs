//! A successful call allocates nothing, whatever its attributes, without a
//! metrics recorder and with one, and with frames tracked for the watchdog. A counting global allocator counts this
//! thread's allocations around many calls.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::Duration;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use metrics::{
    Counter, CounterFn, Gauge, GaugeFn, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder,
    SharedString, Unit,
};
use resilience_runtime::{
    TimeoutError, bulkhead, circuit_breaker, monitor, rate_limit, retry, timeout, timeout_async,
    watchdog,
};

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: every call is forwarded to the system allocator unchanged.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

#[timeout_async(secs = 5)]
async fn ready(x: u64) -> Result<u64, TimeoutError> {
    Ok(x + 1)
}

#[timeout_async(secs = 5)]
async fn yields_once(x: u64) -> Result<u64, TimeoutError> {
    tokio::task::yield_now().await;
    Ok(x + 1)
}

#[timeout_async(secs = 5)]
async fn nested(x: u64) -> Result<u64, TimeoutError> {
    ready(x).await
}

#[retry]
#[circuit_breaker]
async fn guarded(x: u64) -> Result<u64, Failed> {
    Ok(x + 1)
}

#[timeout_async(secs = 5, adaptive)]
async fn adaptive(x: u64) -> Result<u64, TimeoutError> {
    Ok(x + 1)
}

#[rate_limit(per_second = 4_000_000_000, burst = 1_000_000)]
#[bulkhead(max_concurrent = 8)]
async fn admitted(x: u64) -> Result<u64, Failed> {
    Ok(x + 1)
}

#[rate_limit(per_second = 4_000_000_000, burst = 1_000_000, key = user)]
async fn keyed(user: &str, x: u64) -> Result<u64, Failed> {
    Ok(x + user.len() as u64)
}

#[monitor(slow = "1s")]
fn measured(x: u64) -> u64 {
    x + 1
}

#[derive(Debug)]
enum Failed {
    Open,
    Limited,
    Full,
}

impl From<resilience_runtime::RateLimitedError> for Failed {
    fn from(_: resilience_runtime::RateLimitedError) -> Self {
        Failed::Limited
    }
}

impl From<resilience_runtime::BulkheadFullError> for Failed {
    fn from(_: resilience_runtime::BulkheadFullError) -> Self {
        Failed::Full
    }
}

impl From<resilience_runtime::CircuitOpenError> for Failed {
    fn from(_: resilience_runtime::CircuitOpenError) -> Self {
        Failed::Open
    }
}

/// A recorder whose handles update atomics: registering allocates, updating
/// does not.
struct Atomics;

struct Sink(AtomicU64);

impl CounterFn for Sink {
    fn increment(&self, value: u64) {
        self.0.fetch_add(value, Relaxed);
    }
    fn absolute(&self, value: u64) {
        self.0.store(value, Relaxed);
    }
}

impl GaugeFn for Sink {
    fn increment(&self, _: f64) {}
    fn decrement(&self, _: f64) {}
    fn set(&self, value: f64) {
        self.0.store(value.to_bits(), Relaxed);
    }
}

impl HistogramFn for Sink {
    fn record(&self, _: f64) {
        self.0.fetch_add(1, Relaxed);
    }
}

impl Recorder for Atomics {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn register_counter(&self, _: &Key, _: &Metadata<'_>) -> Counter {
        Counter::from_arc(Arc::new(Sink(AtomicU64::new(0))))
    }
    fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::from_arc(Arc::new(Sink(AtomicU64::new(0))))
    }
    fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::from_arc(Arc::new(Sink(AtomicU64::new(0))))
    }
}

/// Allocations in 1 000 rounds of successful calls of every kind, after one
/// round of warm-up (registration, the monitor's window, timer state).
async fn allocations_in_successful_calls() -> u64 {
    let round = |i| async move {
        let mut sum = ready(i).await.unwrap();
        sum += yields_once(i).await.unwrap();
        sum += nested(i).await.unwrap();
        sum += timeout(Duration::from_secs(1), async { i }).await.unwrap();
        sum += guarded(i).await.unwrap();
        sum += adaptive(i).await.unwrap();
        sum += admitted(i).await.unwrap();
        sum += keyed("alice", i).await.unwrap();
        sum + measured(i)
    };
    round(0).await;
    let before = allocations();
    let mut sum = 0;
    for i in 0..1_000 {
        sum += round(i).await;
    }
    assert!(sum > 0);
    allocations() - before
}

#[test]
fn successful_calls_do_not_allocate_with_or_without_a_recorder() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    runtime.block_on(async {
        assert_eq!(allocations_in_successful_calls().await, 0, "no recorder");
        metrics::set_global_recorder(Atomics).unwrap();
        assert_eq!(allocations_in_successful_calls().await, 0, "a recorder");
        // Tracked frames take slots of a table allocated once per 64.
        watchdog::track(true);
        assert!(watchdog::tracking());
        assert_eq!(allocations_in_successful_calls().await, 0, "frames tracked");
        watchdog::track(false);
    });
}

#[test]
fn an_uncontended_task_mutex_lock_does_not_allocate() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    runtime.block_on(async {
        let book = resilience_runtime::task::Mutex::new(0u64);
        // Warm-up: long enough for the runtime's one-time set-up (the
        // first forced yield of the cooperative budget allocates once).
        for _ in 0..1_000 {
            *book.lock().await.unwrap() += 1;
        }
        let before = allocations();
        for _ in 0..1_000 {
            *book.lock().await.unwrap() += 1;
        }
        assert_eq!(
            allocations() - before,
            0,
            "the holder is a pointer, not text"
        );
        assert!(book.stats().holder.is_none());
    });
}
