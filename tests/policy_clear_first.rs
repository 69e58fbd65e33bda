//! `policy::clear()` as the very first call, with `RESILIENCE_POLICY_FILE`
//! set, reads the file and then clears it, without waiting on itself. One
//! test in its own process.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use resilience_runtime::{policy, retry};

#[retry(attempts = 1, base = "1ms", jitter = "none")]
async fn once(calls: &AtomicU32) -> Result<(), ()> {
    calls.fetch_add(1, Ordering::SeqCst);
    Err(())
}

#[tokio::test(start_paused = true)]
async fn clear_first_does_not_deadlock() {
    let file = std::env::temp_dir().join(format!("resilience-clear-{}.toml", std::process::id()));
    std::fs::write(
        &file,
        "[policies.\"policy_clear_first::once\".retry]\nattempts = 4\n",
    )
    .unwrap();
    // SAFETY: nothing else runs in this process yet: this is its only test.
    unsafe {
        std::env::set_var("RESILIENCE_POLICY_FILE", &file);
    }
    let (done, cleared) = mpsc::channel();
    std::thread::spawn(move || {
        policy::clear();
        done.send(()).unwrap();
    });
    // A guard against a hang, not a timing assertion: a deadlock never sends.
    cleared
        .recv_timeout(Duration::from_secs(60))
        .expect("policy::clear() deadlocked");

    let calls = AtomicU32::new(0);
    let _ = once(&calls).await;
    assert_eq!(calls.load(Ordering::SeqCst), 1, "the file was cleared");
    // And it can be put back.
    policy::reload().unwrap_err();
    policy::load(&file).unwrap();
    calls.store(0, Ordering::SeqCst);
    let _ = once(&calls).await;
    assert_eq!(calls.load(Ordering::SeqCst), 4);
}
