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
async fn every_timeout_emits_one_warn_event_and_success_emits_none() {
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
}
