//! Retry events carry the error that caused them. One test in its own
//! binary: tracing caches each call site's interest, and a test running in
//! parallel without a subscriber could hide the event.

mod common;

use std::io;

use common::Recorder;
use resilience_runtime::retry;
use tracing::Level;

#[retry(attempts = 2, base = "10ms", jitter = "none")]
async fn reset() -> io::Result<()> {
    Err(io::Error::new(
        io::ErrorKind::ConnectionReset,
        "connection reset by peer",
    ))
}

#[derive(Debug)]
struct OnlyDebug;

#[retry(attempts = 2, base = "10ms", jitter = "none")]
async fn debug_only() -> Result<(), OnlyDebug> {
    Err(OnlyDebug)
}

#[tokio::test(start_paused = true)]
async fn retry_events_carry_the_error() {
    let (recorder, _guard) = Recorder::install();
    reset().await.unwrap_err();
    let events = recorder.events();
    let levels: Vec<_> = events.iter().map(|e| e.level).collect();
    assert_eq!(levels, [Level::DEBUG, Level::WARN], "{events:?}");
    for event in &events {
        assert_eq!(event.field("error"), "connection reset by peer");
        assert_eq!(event.field("function"), "retry_events::reset");
    }
    assert_eq!(events[1].field("attempts"), "2");

    debug_only().await.unwrap_err();
    let last = recorder.events().pop().unwrap();
    assert_eq!(
        last.field("error"),
        "OnlyDebug",
        "by `Debug` without `Display`"
    );
}
