//! `RESILIENCE_DISABLE` and `RESILIENCE_POLICY_FILE` are read at the first use
//! of any attribute. One test in its own process, which sets them first.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use resilience_runtime::{
    BulkheadFullError, RateLimitedError, TimeoutError, bulkhead, rate_limit, retry, timeout_async,
};
use tokio::time::{Instant, sleep};

#[timeout_async(ms = 10)]
async fn slow() -> Result<(), TimeoutError> {
    sleep(Duration::from_secs(1)).await;
    Ok(())
}

#[retry(attempts = 2, base = "1ms", jitter = "none")]
async fn flaky(calls: &AtomicU32) -> Result<(), ()> {
    calls.fetch_add(1, Ordering::SeqCst);
    Err(())
}

#[rate_limit(per_minute = 1)]
async fn limited() -> Result<(), RateLimitedError> {
    Ok(())
}

#[bulkhead(max_concurrent = 1)]
async fn crowded() -> Result<(), BulkheadFullError> {
    sleep(Duration::from_secs(1)).await;
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn environment_variables_switch_kinds_off_and_load_a_file() {
    let file = std::env::temp_dir().join(format!("resilience-env-{}.toml", std::process::id()));
    std::fs::write(
        &file,
        "[policies.\"kill_switch_env::flaky\".retry]\nattempts = 4\n",
    )
    .unwrap();
    // SAFETY: nothing else runs in this process yet: this is its only test.
    unsafe {
        std::env::set_var("RESILIENCE_DISABLE", "timeout, Rate_Limit,bulkhead");
        std::env::set_var("RESILIENCE_POLICY_FILE", &file);
    }
    let start = Instant::now();
    slow().await.unwrap();
    assert_eq!(start.elapsed(), Duration::from_secs(1), "timeouts are off");

    for _ in 0..3 {
        limited().await.unwrap();
    }
    let crowd: Vec<_> = (0..3).map(|_| tokio::spawn(crowded())).collect();
    for call in crowd {
        call.await.unwrap().unwrap();
    }

    let calls = AtomicU32::new(0);
    let _ = flaky(&calls).await;
    assert_eq!(
        calls.load(Ordering::SeqCst),
        4,
        "the file's retry policy applies"
    );
}
