//! The latency monitor: percentiles within 1 %, timeouts recorded at their
//! limit, a window that forgets, no count lost across threads. Time runs on
//! tokio's paused clock, except across threads.

use std::io;
use std::time::Duration;

use resilience_runtime::{monitor, timeout_async};

fn function(name: &str) -> String {
    format!("monitor::{name}")
}

#[timeout_async("1s")]
async fn sleeps(ms: u64) -> io::Result<()> {
    tokio::time::sleep(Duration::from_millis(ms)).await;
    Ok(())
}

fn within_one_percent(got: Duration, want_ms: u64) {
    let want = Duration::from_millis(want_ms).as_secs_f64();
    let error = (got.as_secs_f64() - want).abs() / want;
    assert!(error <= 0.01, "{got:?} vs {want_ms} ms");
}

#[tokio::test(start_paused = true)]
async fn percentiles_are_within_one_percent() {
    for ms in 1..=100 {
        sleeps(ms).await.unwrap();
    }
    let latency = monitor::latency(&function("sleeps")).unwrap();
    assert_eq!((latency.count(), latency.errors()), (100, 0));
    within_one_percent(latency.p50(), 50);
    within_one_percent(latency.p95(), 95);
    within_one_percent(latency.p99(), 99);
    assert_eq!(latency.max(), Duration::from_millis(100));

    let report = monitor::report().to_string();
    let row = report
        .lines()
        .find(|line| line.contains("monitor::sleeps"))
        .unwrap();
    assert!(row.contains("100.00ms"), "{report}");
}

#[timeout_async("50ms")]
async fn stuck() -> io::Result<()> {
    tokio::time::sleep(Duration::from_secs(5)).await;
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_timed_out_call_is_recorded_at_its_limit() {
    assert!(stuck().await.is_err());
    let latency = monitor::latency(&function("stuck")).unwrap();
    assert_eq!((latency.count(), latency.errors()), (1, 1));
    assert_eq!(latency.max(), Duration::from_millis(50));
}

#[timeout_async("1s")]
async fn once() -> io::Result<()> {
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn the_window_forgets_calls_older_than_it() {
    once().await.unwrap();
    assert_eq!(monitor::latency(&function("once")).unwrap().count(), 1);
    tokio::time::advance(Duration::from_secs(50)).await;
    assert_eq!(monitor::latency(&function("once")).unwrap().count(), 1);
    tokio::time::advance(Duration::from_secs(11)).await;
    assert_eq!(monitor::latency(&function("once")), None);
    assert!(
        monitor::all()
            .iter()
            .all(|(name, _)| *name != function("once"))
    );
}

#[timeout_async("1s")]
async fn busy() -> io::Result<()> {
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn eight_threads_lose_no_count() {
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            tokio::spawn(async {
                for _ in 0..1_000 {
                    busy().await.unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(monitor::latency(&function("busy")).unwrap().count(), 8_000);
}
