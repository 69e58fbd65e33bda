//! Every state change of a circuit breaker is one WARN event. One test in its
//! own binary: tracing caches each call site's interest, and a test running in
//! parallel without a subscriber could hide the event.

mod common;

use std::time::Duration;

use common::Recorder;
use resilience_runtime::{CircuitOpenError, circuit_breaker};
use tracing::Level;

#[circuit_breaker(
    window = 2,
    min_calls = 2,
    failure_rate = 1.0,
    open_for = "1s",
    name = "events"
)]
async fn flaky(ok: bool) -> Result<(), std::io::Error> {
    if ok {
        Ok(())
    } else {
        Err(std::io::Error::other("down"))
    }
}

#[tokio::test(start_paused = true)]
async fn state_changes_are_warn_events() {
    let (recorder, _guard) = Recorder::install();
    flaky(true).await.unwrap();
    assert!(
        recorder.events().is_empty(),
        "calls in a closed state are silent"
    );

    let _ = flaky(false).await;
    let _ = flaky(false).await;
    let rejected = flaky(true).await.unwrap_err();
    let open = rejected
        .get_ref()
        .unwrap()
        .downcast_ref::<CircuitOpenError>()
        .unwrap();
    assert_eq!(open.retry_after(), Some(Duration::from_secs(1)));
    tokio::time::advance(Duration::from_secs(1)).await;
    flaky(true).await.unwrap();

    let changes: Vec<(String, String)> = recorder
        .events()
        .iter()
        .filter(|e| e.level == Level::WARN)
        .map(|e| {
            assert_eq!(e.field("breaker"), "events");
            (e.field("from").to_owned(), e.field("to").to_owned())
        })
        .collect();
    let expected = [
        ("closed", "open"),
        ("open", "half-open"),
        ("half-open", "closed"),
    ];
    let expected: Vec<(String, String)> = expected
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    assert_eq!(changes, expected);
}
