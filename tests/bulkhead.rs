//! `#[bulkhead]`: at most `max_concurrent` calls at once, a bounded wait for
//! a place, and places that come back however a call ends. Paused clock.

mod common;

use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::time::Duration;

use resilience_runtime::{BulkheadFullError, TimeoutError, bulkhead, timeout, timeout_async};
use tokio::time::{Instant, sleep};

static RUNNING: AtomicU32 = AtomicU32::new(0);
static MOST: AtomicU32 = AtomicU32::new(0);

#[bulkhead(max_concurrent = 3, max_wait = "1s")]
async fn render(ms: u64) -> Result<Instant, BulkheadFullError> {
    let now = RUNNING.fetch_add(1, SeqCst) + 1;
    MOST.fetch_max(now, SeqCst);
    sleep(Duration::from_millis(ms)).await;
    RUNNING.fetch_sub(1, SeqCst);
    Ok(Instant::now())
}

#[tokio::test(start_paused = true)]
async fn at_most_max_concurrent_calls_run_and_waiters_go_in_the_order_they_came() {
    let start = Instant::now();
    let calls: Vec<_> = (0..9).map(|_| tokio::spawn(render(100))).collect();
    let mut ends = Vec::new();
    for call in calls {
        ends.push(call.await.unwrap().unwrap() - start);
    }
    assert_eq!(MOST.load(SeqCst), 3);
    let ms: Vec<u128> = ends.iter().map(Duration::as_millis).collect();
    assert_eq!(ms, [100, 100, 100, 200, 200, 200, 300, 300, 300]);
    let stats = bulkhead::stats("bulkhead::render").unwrap();
    assert_eq!((stats.running(), stats.waiting()), (0, 0));
}

#[bulkhead(max_concurrent = 1, max_wait = "50ms", name = "printer")]
async fn print(ms: u64) -> Result<(), BulkheadFullError> {
    sleep(Duration::from_millis(ms)).await;
    Ok(())
}

/// Shares `print`'s places, not its wait: a caller's wait is its own.
#[bulkhead(max_concurrent = 1, name = "printer")]
async fn scan() -> Result<(), BulkheadFullError> {
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_caller_waits_up_to_max_wait_and_a_place_never_goes_to_one_that_gave_up() {
    // `print` and `scan` share the bulkhead "printer".
    let long = tokio::spawn(print(200));
    tokio::task::yield_now().await;
    let stats = bulkhead::stats("printer").unwrap();
    assert_eq!((stats.running(), stats.max_concurrent()), (1, 1));

    // Waits 50 ms, then gives up.
    let start = Instant::now();
    let waiter = tokio::spawn(print(10));
    tokio::task::yield_now().await;
    assert_eq!(bulkhead::stats("printer").unwrap().waiting(), 1);
    let full = waiter.await.unwrap().unwrap_err();
    assert_eq!(start.elapsed(), Duration::from_millis(50));
    assert_eq!(
        (full.bulkhead(), full.max_concurrent(), full.waited()),
        ("printer", 1, Duration::from_millis(50))
    );
    assert_eq!(
        full.to_string(),
        "bulkhead `printer` is full: 1 calls running; waited 50ms"
    );
    assert_eq!(bulkhead::stats("printer").unwrap().waiting(), 0);

    // `scan` finds the place `print` holds taken, and does not wait.
    let start = Instant::now();
    assert!(scan().await.is_err());
    assert_eq!(start.elapsed(), Duration::ZERO);

    // The place the long call gives back is not held for the waiters that
    // left: the next call takes it at once.
    long.await.unwrap().unwrap();
    let start = Instant::now();
    scan().await.unwrap();
    assert_eq!(start.elapsed(), Duration::ZERO);
    assert_eq!(bulkhead::stats("printer").unwrap().running(), 0);
}

#[bulkhead(max_concurrent = 1)]
async fn single(ms: u64) -> Result<(), BulkheadFullError> {
    sleep(Duration::from_millis(ms)).await;
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn without_max_wait_a_full_bulkhead_rejects_at_once() {
    let long = tokio::spawn(single(100));
    tokio::task::yield_now().await;
    let start = Instant::now();
    let full = single(1).await.unwrap_err();
    assert_eq!(
        (start.elapsed(), full.waited()),
        (Duration::ZERO, Duration::ZERO)
    );
    assert_eq!(
        full.to_string(),
        "bulkhead `bulkhead::single` is full: 1 calls running"
    );
    long.await.unwrap().unwrap();
}

#[derive(Debug, thiserror::Error)]
enum PoolError {
    #[error(transparent)]
    Full(#[from] BulkheadFullError),
    #[error(transparent)]
    Timeout(#[from] TimeoutError),
}

#[bulkhead(max_concurrent = 1, max_wait = "500ms")]
async fn pooled(ms: u64) -> Result<(), PoolError> {
    sleep(Duration::from_millis(ms)).await;
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_wait_never_outlasts_the_budget() {
    let long = tokio::spawn(pooled(1_000));
    tokio::task::yield_now().await;
    let start = Instant::now();
    let result = timeout(Duration::from_millis(30), pooled(1)).await;
    assert_eq!(start.elapsed(), Duration::from_millis(30));
    // The bulkhead gave up as the budget ended (its timer, set first, fires
    // first), not after `max_wait`.
    let Ok(Err(PoolError::Full(full))) = result else {
        panic!("{result:?}");
    };
    assert_eq!(full.waited(), Duration::from_millis(30));
    assert_eq!(bulkhead::stats("bulkhead::pooled").unwrap().waiting(), 0);
    long.abort();
}

#[bulkhead(max_concurrent = 2, max_wait = "1s")]
async fn guarded(ms: u64, panics: bool) -> Result<(), BulkheadFullError> {
    sleep(Duration::from_millis(ms)).await;
    assert!(!panics, "the body panicked");
    Ok(())
}

fn running() -> u32 {
    bulkhead::stats("bulkhead::guarded").unwrap().running()
}

#[tokio::test(start_paused = true)]
async fn a_place_comes_back_on_completion_drop_abort_and_panic() {
    guarded(1, false).await.unwrap();
    assert_eq!(running(), 0, "completion");

    // Dropped by an enclosing deadline.
    assert!(
        timeout(Duration::from_millis(10), guarded(100, false))
            .await
            .is_err()
    );
    assert_eq!(running(), 0, "drop");

    // Aborted with its task.
    let task = tokio::spawn(guarded(100, false));
    tokio::task::yield_now().await;
    assert_eq!(running(), 1);
    task.abort();
    assert!(task.await.unwrap_err().is_cancelled());
    assert_eq!(running(), 0, "abort");

    // A panic unwinds through it.
    let task = tokio::spawn(guarded(1, true));
    assert!(task.await.unwrap_err().is_panic());
    assert_eq!(running(), 0, "panic");

    // A waiter dropped while it waits leaves no place taken and no count.
    let a = tokio::spawn(guarded(100, false));
    let b = tokio::spawn(guarded(100, false));
    tokio::task::yield_now().await;
    let waiter = tokio::spawn(guarded(1, false));
    tokio::task::yield_now().await;
    assert_eq!(bulkhead::stats("bulkhead::guarded").unwrap().waiting(), 1);
    waiter.abort();
    let _ = waiter.await;
    assert_eq!(bulkhead::stats("bulkhead::guarded").unwrap().waiting(), 0);
    a.await.unwrap().unwrap();
    b.await.unwrap().unwrap();
    assert_eq!(running(), 0);
    guarded(1, false).await.unwrap();
}

#[timeout_async("1s")]
#[bulkhead(max_concurrent = 1)]
async fn composed() -> Result<(), PoolError> {
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn it_composes_and_is_listed() {
    composed().await.unwrap();
    let site = resilience_runtime::sites()
        .into_iter()
        .find(|site| site.function == "bulkhead::composed")
        .unwrap();
    assert!(matches!(
        site.layers[..],
        [
            resilience_runtime::sites::Layer::Timeout { .. },
            resilience_runtime::sites::Layer::Bulkhead {
                name: "bulkhead::composed",
                settings: Some(_),
                ..
            }
        ]
    ));
}
