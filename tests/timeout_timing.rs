//! Deadlines on tokio's paused clock: exact, deterministic timings.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use resilience_runtime::{TimeoutError, timeout_async};
use tokio::time::{Instant, sleep};

const MS: Duration = Duration::from_millis(1);

#[timeout_async(ms = 100)]
async fn sleeps(duration: Duration) -> Result<Duration, TimeoutError> {
    sleep(duration).await;
    Ok(duration)
}

#[tokio::test(start_paused = true)]
async fn a_body_one_ms_under_the_limit_succeeds() {
    let start = Instant::now();
    assert_eq!(sleeps(99 * MS).await, Ok(99 * MS));
    assert_eq!(start.elapsed(), 99 * MS);
}

#[tokio::test(start_paused = true)]
async fn a_body_one_ms_over_the_limit_fails() {
    let start = Instant::now();
    let err = sleeps(101 * MS).await.unwrap_err();
    assert_eq!(err.function(), "timeout_timing::sleeps");
    assert_eq!(err.limit(), 100 * MS);
    assert!(err.elapsed() >= err.limit(), "{err}");
    assert!(!err.inherited());
    assert_eq!(start.elapsed(), 100 * MS);
}

#[timeout_async(5)]
async fn inner(duration: Duration) -> Result<(), TimeoutError> {
    sleep(duration).await;
    Ok(())
}

#[timeout_async(ms = 300)]
async fn outer(before: Duration, inner_sleep: Duration) -> Result<(), TimeoutError> {
    sleep(before).await;
    inner(inner_sleep).await
}

#[tokio::test(start_paused = true)]
async fn a_nested_call_fires_at_the_enclosing_remaining_budget() {
    let start = Instant::now();
    let err = outer(100 * MS, Duration::from_secs(10)).await.unwrap_err();
    assert_eq!(start.elapsed(), 300 * MS);
    assert_eq!(err.function(), "timeout_timing::inner");
    assert!(err.inherited());
    assert_eq!(err.limit(), 200 * MS);
    assert!(err.elapsed() >= 200 * MS);
}

#[timeout_async(ms = 50)]
async fn short_inner() -> Result<(), TimeoutError> {
    sleep(Duration::from_secs(1)).await;
    Ok(())
}

#[timeout_async(secs = 2)]
async fn roomy_outer() -> Result<(), TimeoutError> {
    short_inner().await
}

#[tokio::test(start_paused = true)]
async fn a_nested_call_with_the_tighter_own_limit_is_not_inherited() {
    let err = roomy_outer().await.unwrap_err();
    assert_eq!(err.function(), "timeout_timing::short_inner");
    assert!(!err.inherited());
    assert_eq!(err.limit(), 50 * MS);
}

#[timeout_async(ms = 900)]
async fn level_one() -> Result<(), TimeoutError> {
    sleep(100 * MS).await;
    level_two().await
}

#[timeout_async(secs = 5)]
async fn level_two() -> Result<(), TimeoutError> {
    sleep(100 * MS).await;
    level_three().await
}

#[timeout_async(secs = 10)]
async fn level_three() -> Result<(), TimeoutError> {
    sleep(Duration::from_secs(60)).await;
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_budget_crosses_three_levels() {
    let start = Instant::now();
    let err = level_one().await.unwrap_err();
    assert_eq!(err.function(), "timeout_timing::level_three");
    assert!(err.inherited());
    assert_eq!(err.limit(), 700 * MS);
    assert_eq!(start.elapsed(), 900 * MS);
}

#[tokio::test(start_paused = true)]
async fn the_enclosing_scope_fires_itself_when_its_body_is_not_timed() {
    let err = resilience_runtime::timeout(250 * MS, async {
        sleep(Duration::from_secs(1)).await;
    })
    .await
    .unwrap_err();
    assert_eq!(err.function(), "resilience_runtime::timeout");
    assert!(!err.inherited());
    assert_eq!(err.elapsed(), 250 * MS);
}

#[timeout_async(ms = 10, on_timeout = vec!["fallback"])]
async fn recommendations(delay: Duration) -> Vec<&'static str> {
    sleep(delay).await;
    vec!["fresh"]
}

#[tokio::test(start_paused = true)]
async fn on_timeout_returns_the_fail_soft_value() {
    assert_eq!(recommendations(MS).await, ["fresh"]);
    assert_eq!(recommendations(Duration::from_secs(1)).await, ["fallback"]);
}

static GUARD_DROPPED: AtomicBool = AtomicBool::new(false);

struct Guard;

impl Drop for Guard {
    fn drop(&mut self) {
        GUARD_DROPPED.store(true, Ordering::SeqCst);
    }
}

/// The fail-soft value reports whether the body was already dropped.
#[timeout_async(ms = 20, on_timeout = GUARD_DROPPED.load(Ordering::SeqCst))]
async fn holds_a_guard() -> bool {
    let _guard = Guard;
    sleep(Duration::from_secs(1)).await;
    unreachable!("the deadline fires first")
}

#[tokio::test(start_paused = true)]
async fn the_body_is_dropped_when_the_deadline_fires() {
    assert!(
        holds_a_guard().await,
        "body still alive when on_timeout ran"
    );
}

#[tokio::test]
async fn real_clock_smoke_test() {
    let start = std::time::Instant::now();
    let err = sleeps(Duration::from_secs(30)).await.unwrap_err();
    let waited = start.elapsed();
    assert!(waited >= 100 * MS, "fired early: {waited:?}");
    assert!(waited < Duration::from_secs(10), "fired late: {waited:?}");
    assert!(err.elapsed() >= 100 * MS);
    assert!(sleeps(MS).await.is_ok());
}
