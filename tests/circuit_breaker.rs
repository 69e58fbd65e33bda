//! `#[circuit_breaker]`: every state transition on tokio's paused clock, the
//! half-open probe limit under 100 concurrent calls, shared breakers, and the
//! operator's controls.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use resilience_runtime::breaker::{self, State};
use resilience_runtime::{CircuitOpenError, TimeoutError, circuit_breaker, timeout_async};
use tokio::sync::Semaphore;
use tokio::time::{advance, sleep};

#[derive(Debug, PartialEq)]
enum CallError {
    Failed,
    Timeout,
    Open(&'static str),
}

impl From<CircuitOpenError> for CallError {
    fn from(error: CircuitOpenError) -> Self {
        CallError::Open(error.breaker())
    }
}

impl From<TimeoutError> for CallError {
    fn from(_: TimeoutError) -> Self {
        CallError::Timeout
    }
}

#[circuit_breaker(
    window = 4,
    min_calls = 4,
    failure_rate = 0.5,
    open_for = "10s",
    name = "transitions"
)]
async fn guarded(ok: bool, runs: &AtomicU32) -> Result<(), CallError> {
    runs.fetch_add(1, Ordering::SeqCst);
    if ok { Ok(()) } else { Err(CallError::Failed) }
}

#[tokio::test(start_paused = true)]
async fn closed_open_half_open_closed_and_open_again() {
    let runs = AtomicU32::new(0);
    // Below `min_calls`, and then at 1 failure in 4: stays closed.
    for ok in [false, true, true, true] {
        let _ = guarded(ok, &runs).await;
    }
    assert_eq!(breaker::state("transitions"), Some(State::Closed));
    // The window now holds [ok, ok, fail, fail]: 50% opens it.
    assert_eq!(guarded(false, &runs).await, Err(CallError::Failed));
    assert_eq!(guarded(false, &runs).await, Err(CallError::Failed));
    assert_eq!(breaker::state("transitions"), Some(State::Open));

    // Open: rejected at once, the body does not run.
    assert_eq!(
        guarded(true, &runs).await,
        Err(CallError::Open("transitions"))
    );
    assert_eq!(runs.load(Ordering::SeqCst), 6);

    // After `open_for`, one probe; its failure opens the breaker again.
    advance(Duration::from_secs(10)).await;
    assert_eq!(guarded(false, &runs).await, Err(CallError::Failed));
    assert_eq!(breaker::state("transitions"), Some(State::Open));
    assert_eq!(
        guarded(true, &runs).await,
        Err(CallError::Open("transitions"))
    );

    // A successful probe closes it, with an empty window.
    advance(Duration::from_secs(10)).await;
    assert_eq!(guarded(true, &runs).await, Ok(()));
    assert_eq!(breaker::state("transitions"), Some(State::Closed));
    assert_eq!(guarded(false, &runs).await, Err(CallError::Failed));
    assert_eq!(
        breaker::state("transitions"),
        Some(State::Closed),
        "one failure is below min_calls"
    );
}

#[circuit_breaker(
    window = 2,
    min_calls = 2,
    failure_rate = 1.0,
    slow_call = "50ms",
    name = "slow"
)]
async fn slow(delay: Duration) -> Result<(), CallError> {
    sleep(delay).await;
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn slow_calls_count_as_failures() {
    slow(Duration::from_millis(10)).await.unwrap();
    slow(Duration::from_millis(100)).await.unwrap();
    assert_eq!(
        breaker::state("slow"),
        Some(State::Closed),
        "one slow call in two"
    );
    slow(Duration::from_millis(100)).await.unwrap();
    assert_eq!(breaker::state("slow"), Some(State::Open));
}

#[circuit_breaker(window = 3, min_calls = 3, failure_rate = 0.6, name = "timeouts")]
#[timeout_async(ms = 10)]
async fn times_out() -> Result<(), CallError> {
    sleep(Duration::from_secs(1)).await;
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn timeouts_count_as_failures() {
    for _ in 0..3 {
        assert_eq!(times_out().await, Err(CallError::Timeout));
    }
    assert_eq!(times_out().await, Err(CallError::Open("timeouts")));
}

#[circuit_breaker(
    window = 1,
    min_calls = 1,
    failure_rate = 1.0,
    open_for = "0s",
    half_open_probes = 3,
    name = "probes"
)]
async fn probe(gate: Arc<Semaphore>, started: Arc<AtomicU32>, wait: bool) -> Result<(), CallError> {
    started.fetch_add(1, Ordering::SeqCst);
    if wait {
        gate.acquire().await.unwrap().forget();
    }
    Err(CallError::Failed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn half_open_admits_exactly_the_probe_limit_among_100_concurrent_calls() {
    let gate = Arc::new(Semaphore::new(0));
    let started = Arc::new(AtomicU32::new(0));
    let _ = probe(gate.clone(), started.clone(), false).await; // opens it
    assert_eq!(breaker::state("probes"), Some(State::Open));
    started.store(0, Ordering::SeqCst);

    // `open_for` is zero: the next call moves it to half-open. Probes wait at
    // the gate, so they stay in flight while the other calls arrive.
    let calls: Vec<_> = (0..100)
        .map(|_| tokio::spawn(probe(gate.clone(), started.clone(), true)))
        .collect();
    let mut spins = 0;
    while calls.iter().filter(|c| c.is_finished()).count() < 97 {
        spins += 1;
        assert!(spins < 10_000_000, "calls did not finish");
        tokio::task::yield_now().await;
    }
    assert_eq!(
        started.load(Ordering::SeqCst),
        3,
        "exactly `half_open_probes` ran"
    );
    assert_eq!(breaker::state("probes"), Some(State::HalfOpen));

    gate.add_permits(3);
    let mut outcomes = (0, 0);
    for call in calls {
        match call.await.unwrap() {
            Err(CallError::Failed) => outcomes.0 += 1,
            Err(CallError::Open("probes")) => outcomes.1 += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(outcomes, (3, 97));
    assert_eq!(
        breaker::state("probes"),
        Some(State::Open),
        "a failed probe opens it again"
    );
}

#[circuit_breaker(window = 2, min_calls = 2, failure_rate = 1.0, name = "exchange")]
async fn place_order(ok: bool) -> Result<(), CallError> {
    if ok { Ok(()) } else { Err(CallError::Failed) }
}

#[circuit_breaker(name = "exchange")]
async fn cancel_order() -> Result<(), CallError> {
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_name_shares_one_breaker_and_operators_can_force_it() {
    let _ = place_order(false).await;
    let _ = place_order(false).await;
    assert_eq!(cancel_order().await, Err(CallError::Open("exchange")));

    assert!(breaker::force_closed("exchange"));
    assert_eq!(breaker::state("exchange"), Some(State::ForcedClosed));
    for _ in 0..5 {
        let _ = place_order(false).await;
    }
    assert_eq!(
        cancel_order().await,
        Ok(()),
        "forced closed ignores failures"
    );

    assert!(breaker::force_open("exchange"));
    assert_eq!(place_order(true).await, Err(CallError::Open("exchange")));
    advance(Duration::from_secs(3600)).await;
    assert_eq!(
        place_order(true).await,
        Err(CallError::Open("exchange")),
        "held open"
    );

    assert!(breaker::reset("exchange"));
    assert_eq!(breaker::state("exchange"), Some(State::Closed));
    assert_eq!(cancel_order().await, Ok(()));
    assert!(!breaker::reset("no-such-breaker"));
}

#[circuit_breaker]
async fn unnamed() -> Result<(), CallError> {
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn without_a_name_the_breaker_is_the_functions() {
    assert_eq!(
        breaker::state("circuit_breaker::unnamed"),
        Some(State::Closed),
        "known before the first call"
    );
    assert!(breaker::force_open("circuit_breaker::unnamed"));
    assert!(unnamed().await.is_err());
    assert!(breaker::reset("circuit_breaker::unnamed"));
    unnamed().await.unwrap();
    assert_eq!(
        breaker::state("circuit_breaker::unnamed"),
        Some(State::Closed)
    );
}
