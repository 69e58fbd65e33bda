//! Every event of the toolkit is emitted inside the span of the call that
//! caused it, with `#[tracing::instrument]` written above the attributes or
//! below them, on native async functions, sync ones and `#[async_trait]`
//! methods.

mod common;

use std::io;
use std::time::Duration;

use async_trait::async_trait;
use common::Recorder;
use resilience_runtime::{monitor, retry, timeout_async};
use tracing::instrument;

/// The span of each event with `message`.
fn spans_of(recorder: &Recorder, message: &str) -> Vec<Option<&'static str>> {
    recorder
        .events()
        .into_iter()
        .filter(|e| e.fields.get("message").is_some_and(|m| m == message))
        .map(|e| e.span)
        .collect()
}

#[instrument(name = "above")]
#[timeout_async("10ms")]
async fn instrumented_above() -> io::Result<()> {
    tokio::time::sleep(Duration::from_secs(1)).await;
    Ok(())
}

#[timeout_async("10ms")]
#[instrument(name = "below")]
async fn instrumented_below() -> io::Result<()> {
    tokio::time::sleep(Duration::from_secs(1)).await;
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_timeout_is_reported_in_the_calls_span_in_either_order() {
    let (recorder, _guard) = Recorder::install();
    instrumented_above().await.unwrap_err();
    instrumented_below().await.unwrap_err();
    assert_eq!(
        spans_of(&recorder, "deadline exceeded"),
        [Some("above"), Some("below")]
    );
}

#[instrument(name = "retried", skip_all)]
#[retry(attempts = 2, base = "1ms")]
async fn retried_above(_label: &str) -> io::Result<()> {
    Err(io::Error::other("down"))
}

#[tokio::test(start_paused = true)]
async fn retries_are_reported_in_the_calls_span() {
    let (recorder, _guard) = Recorder::install();
    retried_above("x").await.unwrap_err();
    assert_eq!(spans_of(&recorder, "retrying"), [Some("retried")]);
    assert_eq!(
        spans_of(&recorder, "giving up: no attempts left"),
        [Some("retried")]
    );
}

#[instrument(name = "measured")]
#[monitor(slow = "1ms")]
fn slow_sync() -> u32 {
    std::thread::sleep(Duration::from_millis(5));
    7
}

#[monitor(slow = "1ms")]
#[instrument(name = "measured_below")]
fn slow_sync_below() -> u32 {
    std::thread::sleep(Duration::from_millis(5));
    7
}

#[test]
fn a_slow_sync_call_is_reported_in_its_span_in_either_order() {
    let (recorder, _guard) = Recorder::install();
    assert_eq!(slow_sync(), 7);
    assert_eq!(slow_sync_below(), 7);
    assert_eq!(
        spans_of(&recorder, "slow call"),
        [Some("measured"), Some("measured_below")]
    );
}

#[async_trait]
trait Quotes {
    async fn above(&self) -> io::Result<()>;
    async fn below(&self) -> io::Result<()>;
}

struct Exchange;

#[async_trait]
impl Quotes for Exchange {
    #[instrument(name = "trait_above", skip_all)]
    #[timeout_async("10ms")]
    async fn above(&self) -> io::Result<()> {
        tokio::time::sleep(Duration::from_secs(1)).await;
        Ok(())
    }

    #[timeout_async("10ms")]
    #[instrument(name = "trait_below", skip_all)]
    async fn below(&self) -> io::Result<()> {
        tokio::time::sleep(Duration::from_secs(1)).await;
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn async_trait_methods_report_in_their_span_in_either_order() {
    let (recorder, _guard) = Recorder::install();
    Exchange.above().await.unwrap_err();
    Exchange.below().await.unwrap_err();
    assert_eq!(
        spans_of(&recorder, "deadline exceeded"),
        [Some("trait_above"), Some("trait_below")]
    );
}
