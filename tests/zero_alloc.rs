//! A successful timed call allocates nothing. A counting global allocator
//! counts this thread's allocations around many calls.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::Duration;

use resilience_runtime::{TimeoutError, timeout, timeout_async};

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

#[test]
fn successful_calls_do_not_allocate() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    runtime.block_on(async {
        // Warm up: the first call of each function registers it (for policy
        // files), and the first timer may set up the driver's state.
        ready(0).await.unwrap();
        yields_once(0).await.unwrap();
        nested(0).await.unwrap();

        let before = allocations();
        let mut sum = 0;
        for i in 0..1_000 {
            sum += ready(i).await.unwrap();
            sum += yields_once(i).await.unwrap();
            sum += nested(i).await.unwrap();
            sum += timeout(Duration::from_secs(1), async { i }).await.unwrap();
        }
        let after = allocations();
        assert!(sum > 0);
        assert_eq!(after - before, 0, "allocations in 4 000 successful calls");
    });
}
