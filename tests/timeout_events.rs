//! Timeouts are reported as `tracing` events; the success path is silent.
//!
//! One test in its own binary: tracing caches each call site's interest, and a
//! test running in parallel without a subscriber could hide the event.

mod common;

use std::time::Duration;

use common::Recorder;
use resilience_runtime::{TimeoutError, timeout_async};
use tokio::time::sleep;
use tracing::Level;

#[timeout_async(ms = 100)]
async fn quick() -> Result<(), TimeoutError> {
    sleep(Duration::from_millis(1)).await;
    Ok(())
}

#[timeout_async(5)]
async fn inner() -> Result<(), TimeoutError> {
    sleep(Duration::from_secs(10)).await;
    Ok(())
}

#[timeout_async(ms = 300)]
async fn outer() -> Result<(), TimeoutError> {
    sleep(Duration::from_millis(100)).await;
    inner().await
}

#[tokio::test(start_paused = true)]
async fn every_timeout_emits_one_event_and_success_emits_none() {
    let (recorder, _guard) = Recorder::install();
    quick().await.unwrap();
    assert!(recorder.events().is_empty(), "{:?}", recorder.events());

    outer().await.unwrap_err();
    let events = recorder.events();
    assert_eq!(events.len(), 1, "{events:?}");
    let event = &events[0];
    assert_eq!(event.level, Level::WARN);
    assert_eq!(event.field("function"), "timeout_events::inner");
    assert_eq!(event.field("limit_ms"), "200");
    assert_eq!(event.field("elapsed_ms"), "200");
    assert_eq!(event.field("inherited"), "true");
    assert_eq!(event.field("suppressed"), "0");

    // A storm from one site: one WARN a second, the next one counting the
    // events held back.
    for _ in 0..5 {
        storm().await.unwrap_err(); // 10 ms each
    }
    let storm_events: Vec<_> = recorder.events().into_iter().skip(1).collect();
    assert_eq!(storm_events.len(), 1, "{storm_events:?}");
    assert_eq!(storm_events[0].field("suppressed"), "0");
    sleep(Duration::from_secs(1)).await;
    storm().await.unwrap_err();
    let last = recorder.events().pop().unwrap();
    assert_eq!(last.field("suppressed"), "4");

    // A fail-soft timeout is expected: INFO, never held back.
    for _ in 0..2 {
        assert_eq!(fail_soft().await, 0);
    }
    let soft: Vec<_> = recorder
        .events()
        .into_iter()
        .filter(|e| e.field("function") == "timeout_events::fail_soft")
        .collect();
    assert_eq!(soft.len(), 2, "{soft:?}");
    assert!(soft.iter().all(|e| e.level == Level::INFO));
}

#[timeout_async(ms = 10)]
async fn storm() -> Result<(), TimeoutError> {
    sleep(Duration::from_secs(1)).await;
    Ok(())
}

#[timeout_async(ms = 10, on_timeout = 0)]
async fn fail_soft() -> u32 {
    sleep(Duration::from_secs(1)).await;
    1
}
