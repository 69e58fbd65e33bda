//! `#[rate_limit]`: quotas, bounded waits that respect the budget, keys and
//! shared limiters. Paused clock: the limiter reads tokio's clock through
//! the `test-util` feature.

mod common;

use std::time::Duration;

use resilience_runtime::{
    RateLimitedError, TimeoutError, rate_limit, retry, timeout, timeout_async,
};
use tokio::time::{Instant, sleep};

#[rate_limit(per_second = 10, burst = 3)]
async fn order() -> Result<(), RateLimitedError> {
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_burst_then_one_permit_per_interval() {
    for _ in 0..3 {
        order().await.unwrap();
    }
    let limited = order().await.unwrap_err();
    assert_eq!(limited.limiter(), "rate_limit::order");
    assert_eq!(limited.retry_after(), Duration::from_millis(100));
    assert_eq!(
        limited.to_string(),
        "rate limit `rate_limit::order` reached; a permit is free again in 100ms"
    );
    sleep(Duration::from_millis(100)).await;
    order().await.unwrap();
    assert!(order().await.is_err());
}

#[rate_limit(per = "250ms", max = 5, max_wait = "100ms")]
async fn poll_feed() -> Result<Instant, RateLimitedError> {
    Ok(Instant::now())
}

#[tokio::test(start_paused = true)]
async fn a_call_waits_for_a_permit_that_comes_within_max_wait() {
    let start = Instant::now();
    for _ in 0..5 {
        assert_eq!(poll_feed().await.unwrap(), start);
    }
    // One permit per 50 ms: the next three wait for theirs.
    for n in 1..=3 {
        let admitted = poll_feed().await.unwrap();
        assert_eq!(admitted - start, Duration::from_millis(50 * n));
    }
    // Three callers at once: the first waits 50 ms, the second 100 ms
    // (both within `max_wait`); the third would wait 150 ms and fails at
    // once.
    let now = Instant::now();
    let calls: Vec<_> = (0..3).map(|_| tokio::spawn(poll_feed())).collect();
    let mut outcomes = Vec::new();
    for call in calls {
        outcomes.push(call.await.unwrap().map(|at| at - now));
    }
    let waits: Vec<_> = outcomes.iter().filter_map(|o| o.as_ref().ok()).collect();
    assert_eq!(
        waits,
        [&Duration::from_millis(50), &Duration::from_millis(100)]
    );
    let limited = outcomes.iter().find_map(|o| o.as_ref().err()).unwrap();
    assert!(limited.retry_after() > Duration::from_millis(100));
}

#[derive(Debug, thiserror::Error)]
enum FeedError {
    #[error(transparent)]
    Limited(#[from] RateLimitedError),
    #[error(transparent)]
    Timeout(#[from] TimeoutError),
    #[error("the feed failed")]
    Failed,
}

#[rate_limit(per_second = 10, burst = 1, max_wait = "1s")]
async fn snapshot() -> Result<(), FeedError> {
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_call_never_waits_past_its_budget() {
    snapshot().await.unwrap();
    // The next permit is 100 ms away; the budget is 30 ms: no wait.
    let start = Instant::now();
    let result = timeout(Duration::from_millis(30), snapshot()).await;
    assert_eq!(start.elapsed(), Duration::ZERO);
    let Ok(Err(FeedError::Limited(limited))) = result else {
        panic!("{result:?}");
    };
    assert_eq!(limited.retry_after(), Duration::from_millis(100));
    // With budget enough, it waits.
    timeout(Duration::from_millis(500), snapshot())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(start.elapsed(), Duration::from_millis(100));
}

#[rate_limit(per_minute = 2, key = user, max_keys = 2)]
async fn search(user: &str, query: String) -> Result<usize, RateLimitedError> {
    Ok(user.len() + query.len())
}

#[tokio::test(start_paused = true)]
async fn each_key_has_its_own_quota_and_keys_past_the_cap_share_one() {
    for user in ["alice", "bob"] {
        search(user, "a".into()).await.unwrap();
        search(user, "b".into()).await.unwrap();
        assert!(search(user, "c".into()).await.is_err(), "{user}");
    }
    // Two keys held, the cap: newcomers share one quota.
    search("carol", "a".into()).await.unwrap();
    search("dave", "a".into()).await.unwrap();
    assert!(search("erin", "a".into()).await.is_err());
    // A minute and a half on, alice and bob are idle: newcomers sweep them
    // out, and the next gets a quota of its own.
    sleep(Duration::from_secs(91)).await;
    search("frank", "a".into()).await.unwrap();
    search("grace", "a".into()).await.unwrap();
    search("grace", "b".into()).await.unwrap();
    assert!(search("grace", "c".into()).await.is_err());
    assert!(
        search("alice", "c".into()).await.is_ok(),
        "alice's calls were forgotten"
    );
}

#[rate_limit(per_second = 1, burst = 2, name = "venue")]
async fn place() -> Result<(), RateLimitedError> {
    Ok(())
}

#[rate_limit(per_second = 1, burst = 2, name = "venue")]
async fn cancel() -> Result<(), RateLimitedError> {
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn functions_that_share_a_name_share_the_quota() {
    place().await.unwrap();
    cancel().await.unwrap();
    assert_eq!(place().await.unwrap_err().limiter(), "venue");
    assert!(cancel().await.is_err());
}

static ATTEMPTS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

#[retry(attempts = 3, base = "1ms", jitter = "none")]
#[rate_limit(per_second = 5, burst = 1)]
#[timeout_async("50ms")]
async fn send() -> Result<Instant, FeedError> {
    ATTEMPTS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    Ok(Instant::now())
}

#[tokio::test(start_paused = true)]
async fn under_a_retry_each_attempt_takes_a_permit_and_waits_for_the_next() {
    let start = Instant::now();
    send().await.unwrap();
    // The second call is rejected once, and its retry waits for the
    // permit (200 ms), not its 1 ms backoff; each attempt then has its own
    // 50 ms, which the wait did not spend.
    let at = send().await.unwrap();
    assert_eq!(at - start, Duration::from_millis(200));
    assert_eq!(ATTEMPTS.load(std::sync::atomic::Ordering::SeqCst), 2);
}

#[retry(attempts = 2, base = "1ms", jitter = "none")]
#[rate_limit(per_minute = 1)]
async fn fails_then_limited() -> Result<(), FeedError> {
    Err(FeedError::Failed)
}

fn recorded(function: &str) -> u64 {
    resilience_runtime::monitor::latency(&format!("rate_limit::{function}"))
        .map_or(0, |latency| latency.count())
}

#[tokio::test(start_paused = true)]
async fn a_call_is_recorded_when_its_body_ran_in_any_attempt_and_not_when_it_never_ran() {
    // Attempt 1 runs and fails; attempt 2 is rejected: the call ran, and
    // its latency is recorded.
    let limited = fails_then_limited().await.unwrap_err();
    assert!(matches!(limited, FeedError::Limited(_)), "{limited:?}");
    assert_eq!(recorded("fails_then_limited"), 1);
    // Rejected: the call never ran, and is not recorded.
    limited_once().await.unwrap();
    assert!(limited_once().await.is_err());
    assert_eq!(recorded("limited_once"), 1);
}

#[rate_limit(per_minute = 1)]
async fn limited_once() -> Result<(), FeedError> {
    Ok(())
}
