//! Every state change of a circuit breaker is one WARN event, and so is a
//! shared breaker given other settings. In a binary of their own, each test
//! installing its recorder before any call: tracing caches each call site's
//! interest, and a test running without a subscriber could hide the event.

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
    let opened = &recorder.events()[0];
    assert_eq!(opened.field("failure_rate"), "1.0");
    assert_eq!((opened.field("failed"), opened.field("calls")), ("2", "2"));
}

#[circuit_breaker(window = 10, name = "shared-settings")]
async fn first_site() -> Result<(), std::io::Error> {
    Ok(())
}

#[circuit_breaker(window = 4, min_calls = 4, name = "shared-settings")]
async fn second_site() -> Result<(), std::io::Error> {
    Ok(())
}

#[circuit_breaker(window = 10, name = "shared-settings")]
async fn same_settings() -> Result<(), std::io::Error> {
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn sites_sharing_a_breaker_with_other_settings_warn_once() {
    let (recorder, _guard) = Recorder::install();
    first_site().await.unwrap();
    same_settings().await.unwrap();
    for _ in 0..3 {
        second_site().await.unwrap();
    }
    let warnings: Vec<_> = recorder
        .events()
        .into_iter()
        .filter(|e| e.fields.get("breaker").map(String::as_str) == Some("shared-settings"))
        .collect();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert_eq!(warnings[0].level, Level::WARN);
    assert_eq!(warnings[0].field("function"), "breaker_events::second_site");
    assert_eq!(warnings[0].field("first"), "breaker_events::first_site");
}
