//! Adaptive timeouts on tokio's paused clock: the limit follows
//! `multiplier × p<percentile>` of the function's recent calls, within the
//! floor and the written ceiling, up at once and down by half the distance
//! a period; learning pauses while the breaker is open or a policy file
//! sets the limit. The monitor's window is 6 s here: one period a second.
//! Policy and window are process-wide, so the tests take turns.

mod common;

use std::sync::Once;
use std::time::Duration;

use common::{Recorder, write};
use resilience_runtime::breaker;
use resilience_runtime::{TimeoutError, circuit_breaker, deadline, monitor, policy, timeout_async};
use tokio::time::sleep;

static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn setup() {
    static WINDOW: Once = Once::new();
    WINDOW.call_once(|| monitor::set_window(Duration::from_secs(6)));
}

fn limit(function: &str) -> Duration {
    deadline::limit_in_force(&format!("adaptive::{function}")).unwrap()
}

fn ms(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

/// The `n`th latency of a distribution uniform over 1..=`top` ms, in an
/// order that spreads every stretch of calls over it.
fn latency(n: u64, top: u64) -> Duration {
    ms((n * 37) % top + 1)
}

#[timeout_async(ms = 400, adaptive(percentile = 95, floor = "20ms", multiplier = 1.5))]
async fn quote(latency: Duration) -> Result<(), TimeoutError> {
    sleep(latency).await;
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn the_limit_converges_on_the_percentile_and_follows_a_slowdown_upward_within_a_window() {
    let _turn = TURN.lock().await;
    setup();
    let recorder = Recorder::global();
    // A cold start uses the ceiling, until 20 calls are in the window.
    assert_eq!(limit("quote"), ms(400));
    for n in 0..19 {
        quote(latency(n, 100)).await.unwrap();
    }
    assert_eq!(limit("quote"), ms(400));

    // Latency uniform over 1..100 ms: p95 = 95 ms, target 142.5 ms. About
    // 20 calls a period; the limit halves its distance each period.
    let target = 1.5 * 95.0;
    let mut calls = 19;
    while (limit("quote").as_secs_f64() * 1e3 - target).abs() > 0.1 * target {
        quote(latency(calls, 100)).await.unwrap();
        calls += 1;
        assert!(
            calls <= 120,
            "not within 10% after {calls} calls: {:?}",
            limit("quote")
        );
    }
    // Stays there.
    for n in 0..200 {
        quote(latency(calls + n, 100)).await.unwrap();
        let ms = limit("quote").as_secs_f64() * 1e3;
        assert!((ms - target).abs() <= 0.1 * target, "{ms} ms");
    }
    let moved = recorder.find(
        "adaptive timeout limit changed",
        "function",
        "adaptive::quote",
    );
    assert!(!moved.is_empty());
    assert_eq!(moved[0].field("previous_ms"), "400.0");

    // Latency doubles: p95 = 190 ms, target 285 ms. Calls past the limit
    // time out and are learned from at the limit, so it climbs, and within
    // one window (6 s) it is there.
    let start = tokio::time::Instant::now();
    let mut n = 0;
    while start.elapsed() < Duration::from_secs(6) {
        let _ = quote(latency(n, 200)).await;
        n += 1;
    }
    let ms = limit("quote").as_secs_f64() * 1e3;
    assert!((ms - 285.0).abs() <= 28.5, "{ms} ms after one window");
}

#[timeout_async(ms = 100, adaptive(floor = "20ms", min_calls = 5))]
async fn bounded(latency: Duration) -> Result<(), TimeoutError> {
    sleep(latency).await;
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn the_limit_stays_between_the_floor_and_the_ceiling() {
    let _turn = TURN.lock().await;
    setup();
    // Calls far faster than the floor: the limit falls to the floor, never
    // below.
    for _ in 0..300 {
        bounded(ms(1)).await.unwrap();
        sleep(ms(99)).await;
        assert!(limit("bounded") >= ms(20));
    }
    assert!(limit("bounded") <= ms(21), "{:?}", limit("bounded"));
    // Calls that all time out: it climbs to the ceiling, never above.
    for _ in 0..100 {
        assert!(bounded(ms(10_000)).await.is_err());
        assert!(limit("bounded") <= ms(100));
    }
    assert_eq!(limit("bounded"), ms(100));
}

#[circuit_breaker(window = 4, min_calls = 4)]
#[timeout_async(ms = 400, adaptive(floor = "10ms", min_calls = 5))]
async fn guarded(latency: Duration) -> Result<(), Failure> {
    sleep(latency).await;
    Ok(())
}

#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error(transparent)]
    Timeout(#[from] TimeoutError),
    #[error(transparent)]
    Open(#[from] resilience_runtime::CircuitOpenError),
}

async fn run_for(seconds: u64, latency: u64) {
    let start = tokio::time::Instant::now();
    while start.elapsed() < Duration::from_secs(seconds) {
        let _ = guarded(ms(latency)).await;
        sleep(ms(50)).await;
    }
}

#[tokio::test(start_paused = true)]
async fn learning_pauses_while_the_breaker_is_open_or_a_policy_sets_the_limit() {
    let _turn = TURN.lock().await;
    setup();
    run_for(8, 100).await;
    let learned = limit("guarded");
    assert!(learned < ms(300), "{learned:?}");

    // Open: learning pauses, and the calls it rejects are not recorded, so
    // that once it closes the limit goes on from real calls only.
    // 1,600 rejections in 8 s; were they recorded, they would be over 99 %
    // of the window when it closes, and its p95 would be zero.
    assert!(breaker::force_open("adaptive::guarded"));
    for _ in 0..1_600 {
        assert!(matches!(guarded(ms(100)).await, Err(Failure::Open(_))));
        sleep(ms(5)).await;
    }
    assert_eq!(limit("guarded"), learned);
    breaker::reset("adaptive::guarded");
    run_for(2, 100).await;
    let after = limit("guarded").as_secs_f64();
    assert!(
        (after - learned.as_secs_f64()).abs() <= 0.1 * learned.as_secs_f64(),
        "{after} s against {learned:?}"
    );
    let learned = limit("guarded");

    // A policy file's limit is in force, and learning pauses under it.
    let file = write(
        "adaptive.toml",
        "[policies.\"adaptive::guarded\"]\ntimeout = \"250ms\"\n",
    );
    policy::load(&file).unwrap();
    assert_eq!(limit("guarded"), ms(250));
    run_for(8, 1).await;
    policy::clear();
    assert_eq!(limit("guarded"), learned);

    // The file can bound it instead: a floor of 300 ms lifts it there.
    let file = write(
        "adaptive-bounds.toml",
        "[policies.\"adaptive::guarded\".adaptive]\nfloor = \"300ms\"\n",
    );
    policy::load(&file).unwrap();
    assert_eq!(limit("guarded"), ms(300));
    // `enabled = false` holds it at the ceiling.
    let file = write(
        "adaptive-off.toml",
        "[policies.\"adaptive::guarded\".adaptive]\nenabled = false\n",
    );
    policy::load(&file).unwrap();
    assert_eq!(limit("guarded"), ms(400));
    policy::clear();
    assert_eq!(limit("guarded"), learned);

    // A floor below the written one (10 ms) lets fast calls take the limit
    // under it; without the file, the written floor holds again.
    let file = write(
        "adaptive-low.toml",
        "[policies.\"adaptive::guarded\".adaptive]\nfloor = \"2ms\"\n",
    );
    policy::load(&file).unwrap();
    run_for(12, 1).await;
    let low = limit("guarded");
    assert!(low < ms(10) && low >= ms(2), "{low:?}");
    policy::clear();
    assert_eq!(limit("guarded"), ms(10));
}
