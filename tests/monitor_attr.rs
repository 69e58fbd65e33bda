//! `#[monitor]`: calls recorded under the function's path or its `name`,
//! slow calls reported once each, sync and async, composed in written
//! order, `slow` set by a policy file. Time runs on tokio's paused clock.

mod common;

use std::io;
use std::time::Duration;

use common::Recorder;
use resilience_runtime::sites::Layer;
use resilience_runtime::{monitor, policy, retry};

#[monitor(slow = "50ms")]
async fn fetch(ms: u64) -> io::Result<u64> {
    tokio::time::sleep(Duration::from_millis(ms)).await;
    Ok(ms)
}

#[tokio::test(start_paused = true)]
async fn a_slow_call_is_one_warning() {
    let (recorder, _guard) = Recorder::install();
    fetch(10).await.unwrap();
    assert!(recorder.events().is_empty(), "{:?}", recorder.events());
    fetch(80).await.unwrap();
    let events = recorder.events();
    let [event] = &events[..] else {
        panic!("one event: {events:?}");
    };
    assert_eq!(event.level, tracing::Level::WARN);
    assert_eq!(event.field("function"), "monitor_attr::fetch");
    assert_eq!(event.field("elapsed_ms"), "80");
    assert_eq!(event.field("slow_ms"), "50");
    let latency = monitor::latency("monitor_attr::fetch").unwrap();
    assert_eq!(
        (latency.count(), latency.max()),
        (2, Duration::from_millis(80))
    );
}

#[monitor(name = "parse_request")]
fn parse(text: &str) -> Result<u32, std::num::ParseIntError> {
    text.parse()
}

#[test]
fn a_sync_function_is_recorded_under_its_name_with_its_failures() {
    parse("7").unwrap();
    parse("x").unwrap_err();
    let latency = monitor::latency("parse_request").unwrap();
    assert_eq!((latency.count(), latency.errors()), (2, 1));
    assert_eq!(monitor::latency("monitor_attr::parse"), None);
}

static ATTEMPTS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// Each attempt passes through the monitor; the function's record is the
/// whole call.
#[retry(attempts = 3, base = "10ms", jitter = "none")]
#[monitor(slow = "1ms")]
async fn flaky() -> io::Result<()> {
    tokio::time::sleep(Duration::from_millis(5)).await;
    match ATTEMPTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed) {
        0 | 1 => Err(io::Error::other("flaky")),
        _ => Ok(()),
    }
}

#[tokio::test(start_paused = true)]
async fn composed_below_a_retry_it_sees_each_attempt() {
    let (recorder, _guard) = Recorder::install();
    flaky().await.unwrap();
    let slow = recorder
        .events()
        .into_iter()
        .filter(|e| e.fields.get("message").is_some_and(|m| m == "slow call"))
        .count();
    // Three attempts of 5 ms, each slower than 1 ms; one warning a second.
    assert_eq!(slow, 1);
    let latency = monitor::latency("monitor_attr::flaky").unwrap();
    // One call: 3 × 5 ms of attempts and 10 + 20 ms of backoff.
    assert_eq!(
        (latency.count(), latency.max()),
        (1, Duration::from_millis(45))
    );
    let site = resilience_runtime::sites()
        .into_iter()
        .find(|site| site.function == "monitor_attr::flaky")
        .unwrap();
    assert!(matches!(
        site.layers[..],
        [Layer::Retry { .. }, Layer::Monitor { slow: Some(_), .. }]
    ));
}

#[monitor(policy = "quiet-dep")]
async fn quiet(ms: u64) {
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

#[tokio::test(start_paused = true)]
async fn a_policy_file_sets_slow() {
    let dir = std::env::temp_dir().join(format!("monitor-attr-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("policy.toml");
    std::fs::write(&path, "[policies.\"quiet-dep\".monitor]\nslow = \"20ms\"\n").unwrap();
    let (recorder, _guard) = Recorder::install();
    quiet(30).await;
    assert!(recorder.events().is_empty(), "no `slow` in the attribute");
    policy::load(&path).unwrap();
    quiet(30).await;
    let events = recorder.events();
    assert!(
        events
            .iter()
            .any(|e| e.fields.get("slow_ms").is_some_and(|ms| ms == "20")),
        "{events:?}"
    );
    policy::clear();
}
