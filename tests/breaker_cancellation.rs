//! What a cancelled call counts in its breaker: a failure when the function's
//! own deadline dropped it, nothing when a caller's shorter budget or a
//! `select!` did; and a probe's place is given back either way. Also: a
//! retry outside a breaker does not sleep through a rejection known up front.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use resilience_runtime::breaker::{self, State};
use resilience_runtime::{
    CircuitOpenError, TimeoutError, circuit_breaker, retry, timeout, timeout_async,
};
use tokio::time::{Instant, advance, sleep};

#[derive(Debug, PartialEq)]
enum CallError {
    Failed,
    Timeout { inherited: bool },
    Open(Option<Duration>),
}

impl From<CircuitOpenError> for CallError {
    fn from(error: CircuitOpenError) -> Self {
        CallError::Open(error.retry_after())
    }
}

impl From<TimeoutError> for CallError {
    fn from(error: TimeoutError) -> Self {
        CallError::Timeout {
            inherited: error.inherited(),
        }
    }
}

#[timeout_async("50ms")]
#[circuit_breaker(
    window = 2,
    min_calls = 2,
    failure_rate = 1.0,
    open_for = "10s",
    name = "hanging"
)]
async fn hanging(wait: Duration) -> Result<(), CallError> {
    sleep(wait).await;
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_call_its_own_deadline_cancels_counts_as_a_failure() {
    let hang = Duration::from_secs(3600);
    for _ in 0..2 {
        assert_eq!(
            hanging(hang).await,
            Err(CallError::Timeout { inherited: false })
        );
    }
    assert_eq!(breaker::state("hanging"), Some(State::Open));
    assert_eq!(
        hanging(hang).await,
        Err(CallError::Open(Some(Duration::from_secs(10))))
    );
}

#[timeout_async("1s")]
#[circuit_breaker(
    window = 2,
    min_calls = 2,
    failure_rate = 1.0,
    open_for = "10s",
    name = "healthy"
)]
async fn healthy(wait: Duration) -> Result<(), CallError> {
    sleep(wait).await;
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_callers_shorter_budget_counts_nothing() {
    for _ in 0..5 {
        let outcome = timeout(
            Duration::from_millis(5),
            healthy(Duration::from_millis(100)),
        )
        .await;
        // The inner deadline is the caller's 5 ms: it fires inside, inherited.
        assert_eq!(outcome, Ok(Err(CallError::Timeout { inherited: true })));
    }
    assert_eq!(breaker::state("healthy"), Some(State::Closed));
    assert_eq!(healthy(Duration::from_millis(100)).await, Ok(()));
}

#[circuit_breaker(
    window = 1,
    min_calls = 1,
    failure_rate = 1.0,
    open_for = "10s",
    half_open_probes = 1,
    name = "selected"
)]
async fn selected(wait: Duration, fail: bool) -> Result<(), CallError> {
    sleep(wait).await;
    if fail { Err(CallError::Failed) } else { Ok(()) }
}

#[tokio::test(start_paused = true)]
async fn a_call_dropped_by_select_counts_nothing_and_frees_its_probe() {
    // Closed: dropped calls do not open it.
    for _ in 0..3 {
        tokio::select! {
            _ = selected(Duration::from_secs(1), true) => unreachable!("the other branch is ready first"),
            () = sleep(Duration::from_millis(1)) => {}
        }
    }
    assert_eq!(breaker::state("selected"), Some(State::Closed));

    // Half-open with one probe: a probe dropped by `select!` gives its place
    // back, so the breaker is not stuck rejecting.
    assert_eq!(selected(Duration::ZERO, true).await, Err(CallError::Failed));
    assert_eq!(breaker::state("selected"), Some(State::Open));
    advance(Duration::from_secs(10)).await;
    tokio::select! {
        _ = selected(Duration::from_secs(1), false) => unreachable!("the other branch is ready first"),
        () = sleep(Duration::from_millis(1)) => {}
    }
    assert_eq!(breaker::state("selected"), Some(State::HalfOpen));
    assert_eq!(selected(Duration::ZERO, false).await, Ok(()));
    assert_eq!(breaker::state("selected"), Some(State::Closed));
}

#[tokio::test(start_paused = true)]
async fn an_aborted_task_counts_nothing() {
    let task = tokio::spawn(hanging_forever());
    tokio::task::yield_now().await;
    task.abort();
    assert!(task.await.unwrap_err().is_cancelled());
    assert_eq!(breaker::state("aborted"), Some(State::Closed));
    assert_eq!(aborted_ok().await, Ok(()));
}

#[circuit_breaker(window = 1, min_calls = 1, failure_rate = 1.0, name = "aborted")]
async fn hanging_forever() -> Result<(), CallError> {
    std::future::pending::<()>().await;
    Ok(())
}

#[circuit_breaker(window = 1, min_calls = 1, failure_rate = 1.0, name = "aborted")]
async fn aborted_ok() -> Result<(), CallError> {
    Ok(())
}

#[retry(attempts = 5, base = "1s", jitter = "none", backoff = "constant")]
#[circuit_breaker(
    window = 2,
    min_calls = 2,
    failure_rate = 1.0,
    open_for = "60s",
    name = "down"
)]
async fn down(runs: &AtomicU32) -> Result<(), CallError> {
    runs.fetch_add(1, Ordering::SeqCst);
    Err(CallError::Failed)
}

#[tokio::test(start_paused = true)]
async fn a_retry_stops_at_a_breaker_open_beyond_its_next_delay() {
    let runs = AtomicU32::new(0);
    let start = Instant::now();
    let outcome = down(&runs).await;
    // Two failures open the breaker; the third attempt is rejected, and its
    // rejection lasts 59 s more, longer than the 1 s delay: no more attempts.
    assert_eq!(outcome, Err(CallError::Open(Some(Duration::from_secs(59)))));
    assert_eq!(runs.load(Ordering::SeqCst), 2);
    assert_eq!(start.elapsed(), Duration::from_secs(2));
}

#[retry(attempts = 4, base = "2s", jitter = "none", backoff = "constant")]
#[circuit_breaker(
    window = 1,
    min_calls = 1,
    failure_rate = 1.0,
    open_for = "1s",
    name = "blip"
)]
async fn blip(runs: &AtomicU32) -> Result<(), CallError> {
    let run = runs.fetch_add(1, Ordering::SeqCst);
    if run == 0 {
        Err(CallError::Failed)
    } else {
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn a_retry_waits_out_a_rejection_that_ends_before_its_next_delay() {
    // Opened for 1 s, with 2 s between attempts: the next attempt is a probe.
    let runs = AtomicU32::new(0);
    let start = Instant::now();
    assert_eq!(blip(&runs).await, Ok(()));
    assert_eq!(runs.load(Ordering::SeqCst), 2);
    assert_eq!(start.elapsed(), Duration::from_secs(2));

    // Forced open: no `retry_after`, so the retry gives up at once.
    breaker::force_open("blip");
    let start = Instant::now();
    assert_eq!(blip(&runs).await, Err(CallError::Open(None)));
    assert_eq!(runs.load(Ordering::SeqCst), 2);
    assert_eq!(start.elapsed(), Duration::ZERO);
}
