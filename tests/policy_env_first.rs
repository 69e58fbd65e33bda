//! The environment is read before anything else sets the policy: an
//! application that calls `policy::load` before any attribute has run still
//! gets its `RESILIENCE_DISABLE` rollback switch, in any case, and it also
//! switches `timeout()` scopes off. One test in its own process.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

mod common;

use common::Recorder;
use resilience_runtime::{policy, retry, timeout};
use tokio::time::{Instant, sleep};

#[retry(attempts = 3, base = "1ms", jitter = "none")]
async fn flaky(calls: &AtomicU32) -> Result<(), ()> {
    calls.fetch_add(1, Ordering::SeqCst);
    Err(())
}

#[tokio::test(start_paused = true)]
async fn a_load_before_any_call_keeps_the_kill_switch() {
    let file = std::env::temp_dir().join(format!("resilience-first-{}.toml", std::process::id()));
    std::fs::write(
        &file,
        "[policies.\"policy_env_first::flaky\".retry]\nattempts = 5\n",
    )
    .unwrap();
    // SAFETY: nothing else runs in this process yet: this is its only test.
    unsafe {
        std::env::set_var("RESILIENCE_DISABLE", "Retry, TIMEOUT, retires");
    }
    let (recorder, _guard) = Recorder::install();
    policy::load(&file).unwrap();
    let unknown: Vec<_> = recorder
        .events()
        .into_iter()
        .filter(|e| e.fields.get("value").map(String::as_str) == Some("retires"))
        .collect();
    assert_eq!(unknown.len(), 1, "{:?}", recorder.events());
    assert!(
        unknown[0]
            .field("message")
            .contains("all, timeout, retry, breaker, device, monitor, rate_limit and bulkhead"),
        "{unknown:?}"
    );

    let calls = AtomicU32::new(0);
    let _ = flaky(&calls).await;
    assert_eq!(calls.load(Ordering::SeqCst), 1, "retries are off");

    let start = Instant::now();
    let slow = timeout(Duration::from_millis(10), sleep(Duration::from_secs(1))).await;
    assert_eq!(slow, Ok(()));
    assert_eq!(
        start.elapsed(),
        Duration::from_secs(1),
        "timeout() is off too"
    );
}
