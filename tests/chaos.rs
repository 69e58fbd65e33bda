//! Faults injected into named functions: delays, blocking, errors. The
//! injections are process-wide, so the tests take turns.

mod common;

use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
use std::time::Duration;

use common::Recorder;
use resilience_runtime::{TimeoutError, chaos, retry, timeout_async};
use tokio::time::Instant;

static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[derive(Debug, thiserror::Error)]
enum FeedError {
    #[error(transparent)]
    Timeout(#[from] TimeoutError),
    #[error(transparent)]
    Injected(#[from] chaos::InjectedError),
}

static CONNECTS: AtomicU32 = AtomicU32::new(0);

#[timeout_async("1s")]
async fn connect() -> Result<u32, FeedError> {
    CONNECTS.fetch_add(1, Relaxed);
    Ok(7)
}

#[tokio::test(start_paused = true)]
async fn an_injected_delay_runs_inside_the_deadline_before_the_body() {
    let _turn = TURN.lock().await;
    let runs = CONNECTS.load(Relaxed);
    chaos::inject_delay("chaos::connect", Duration::from_millis(300), 1);
    let start = Instant::now();
    assert_eq!(connect().await.unwrap(), 7);
    assert_eq!(start.elapsed(), Duration::from_millis(300));

    chaos::inject_delay("chaos::connect", Duration::from_secs(2), 2);
    let start = Instant::now();
    let error = connect().await.unwrap_err();
    assert!(matches!(error, FeedError::Timeout(_)), "{error:?}");
    assert_eq!(start.elapsed(), Duration::from_secs(1));
    assert_eq!(
        CONNECTS.load(Relaxed),
        runs + 1,
        "the stalled call never ran its body"
    );

    // A call dropped while it waits takes its injection with it.
    tokio::select! {
        biased;
        _ = connect() => unreachable!("delayed"),
        () = tokio::time::sleep(Duration::from_millis(10)) => {}
    }
    let start = Instant::now();
    assert_eq!(connect().await.unwrap(), 7);
    assert_eq!(
        start.elapsed(),
        Duration::ZERO,
        "both injections were taken"
    );
}

static FLAKY: AtomicU32 = AtomicU32::new(0);

#[retry(attempts = 3, base = "10ms", jitter = "none")]
async fn flaky() -> Result<u32, FeedError> {
    FLAKY.fetch_add(1, Relaxed);
    Ok(1)
}

#[timeout_async(ms = 100, on_timeout = 0)]
async fn soft() -> u32 {
    5
}

#[tokio::test(start_paused = true)]
async fn an_injected_error_is_returned_in_place_of_the_body() {
    let _turn = TURN.lock().await;
    chaos::inject_error("chaos::connect", 1);
    let runs = CONNECTS.load(Relaxed);
    match connect().await {
        Err(FeedError::Injected(error)) => assert_eq!(error.function(), "chaos::connect"),
        other => panic!("{other:?}"),
    }
    assert_eq!(CONNECTS.load(Relaxed), runs);
    assert_eq!(connect().await.unwrap(), 7);

    // A retry above sees the injected failures as the body's own.
    chaos::inject_error("chaos::flaky", 2);
    let start = Instant::now();
    assert_eq!(flaky().await.unwrap(), 1);
    assert_eq!(
        FLAKY.load(Relaxed),
        1,
        "the body ran once: the third attempt"
    );
    assert_eq!(start.elapsed(), Duration::from_millis(30));

    // A return type that cannot carry the error: a WARN, and the body runs.
    let (recorder, _guard) = Recorder::install();
    chaos::inject_error("chaos::soft", 1);
    assert_eq!(soft().await, 5);
    let warned = recorder.events();
    assert_eq!(warned.len(), 1, "{warned:?}");
    assert_eq!(warned[0].field("function"), "chaos::soft");
}

#[tokio::test(start_paused = true)]
async fn clear_stops_every_injection_and_unknown_names_warn_with_the_closest() {
    let _turn = TURN.lock().await;
    let (recorder, _guard) = Recorder::install();
    chaos::inject_delay("chaos::connect", Duration::from_secs(5), 3);
    chaos::inject_error("chaos::connect", 3);
    chaos::inject_blocking("chaos::connect", Duration::from_secs(5), 3);
    assert!(recorder.events().is_empty(), "{:?}", recorder.events());
    chaos::clear();
    let start = Instant::now();
    assert_eq!(connect().await.unwrap(), 7);
    assert_eq!(start.elapsed(), Duration::ZERO);

    chaos::inject_delay("chaos::conect", Duration::from_secs(1), 1);
    let warned = recorder.events();
    assert_eq!(warned.len(), 1, "{warned:?}");
    assert_eq!(warned[0].field("function"), "chaos::conect");
    assert_eq!(warned[0].field("did_you_mean"), "chaos::connect");
    chaos::clear();
}
