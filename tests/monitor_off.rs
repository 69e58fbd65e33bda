//! The kill switch turns the latency monitor off: with `monitor` among a
//! policy file's `disabled_kinds`, no call is timed or recorded, and
//! `#[monitor]` passes through; clearing the file turns it back on.

use std::io;

use resilience_runtime::{monitor, policy, timeout_async};

#[timeout_async("1s")]
async fn quick() -> io::Result<()> {
    Ok(())
}

#[tokio::test]
async fn a_switched_off_monitor_records_nothing() {
    let path = std::env::temp_dir().join(format!("monitor-off-{}.toml", std::process::id()));
    std::fs::write(&path, "disabled_kinds = [\"monitor\"]\n").unwrap();
    policy::load(&path).unwrap();
    quick().await.unwrap();
    assert_eq!(monitor::latency("monitor_off::quick"), None);
    policy::clear();
    quick().await.unwrap();
    assert_eq!(monitor::latency("monitor_off::quick").unwrap().count(), 1);
}
