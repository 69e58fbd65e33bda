//! `#[retry]` on tokio's paused clock: attempts, delays, predicates, `&mut`
//! arguments, deadline budgets and composition with `#[timeout_async]`.

use std::io;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use resilience_runtime::{TimeoutError, retry, timeout_async};
use tokio::time::{Instant, sleep};

const MS: Duration = Duration::from_millis(1);

/// Fails `failures` times, recording when each attempt started.
struct Flaky {
    failures: u32,
    started: Vec<Duration>,
    origin: Instant,
}

impl Flaky {
    fn new(failures: u32) -> Self {
        Self {
            failures,
            started: Vec::new(),
            origin: Instant::now(),
        }
    }

    #[retry(
        attempts = 4,
        base = "100ms",
        factor = 2.0,
        max_delay = "250ms",
        jitter = "none"
    )]
    async fn call(&mut self) -> io::Result<usize> {
        self.started.push(self.origin.elapsed());
        if self.failures > 0 {
            self.failures -= 1;
            return Err(io::ErrorKind::ConnectionReset.into());
        }
        Ok(self.started.len())
    }
}

#[tokio::test(start_paused = true)]
async fn retries_a_mut_self_method_with_exponential_capped_delays() {
    let mut flaky = Flaky::new(3);
    assert_eq!(flaky.call().await.unwrap(), 4);
    assert_eq!(
        flaky.started,
        [Duration::ZERO, 100 * MS, 300 * MS, 550 * MS]
    );
}

#[tokio::test(start_paused = true)]
async fn gives_up_after_the_last_attempt_with_the_last_error() {
    let mut flaky = Flaky::new(10);
    let err = flaky.call().await.unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::ConnectionReset);
    assert_eq!(flaky.started.len(), 4);
}

fn is_transient(error: &io::Error) -> bool {
    error.kind() == io::ErrorKind::ConnectionReset
}

#[retry(attempts = 5, base = "10ms", jitter = "none", when = is_transient)]
async fn classify(kinds: &mut Vec<io::ErrorKind>, calls: &AtomicU32) -> io::Result<()> {
    calls.fetch_add(1, Ordering::SeqCst);
    match kinds.pop() {
        Some(kind) => Err(kind.into()),
        None => Ok(()),
    }
}

#[tokio::test(start_paused = true)]
async fn only_errors_the_predicate_accepts_are_retried() {
    let calls = AtomicU32::new(0);
    let mut kinds = vec![
        io::ErrorKind::PermissionDenied,
        io::ErrorKind::ConnectionReset,
    ];
    let err = classify(&mut kinds, &calls).await.unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::PermissionDenied);
    assert_eq!(
        calls.load(Ordering::SeqCst),
        2,
        "the reset was retried, the denial was not"
    );
}

#[retry(attempts = 3, backoff = "constant", base = "20ms", jitter = "none")]
async fn consumes(
    mut owned: Vec<u32>,
    (a, b): (u32, u32),
    log: &mut Vec<Vec<u32>>,
) -> Result<(), String> {
    owned.push(a + b);
    log.push(owned); // moves the argument: the next attempt gets a fresh clone
    if log.len() < 3 {
        Err("again".to_owned())
    } else {
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn owned_arguments_are_cloned_for_each_attempt() {
    let start = Instant::now();
    let mut log = Vec::new();
    consumes(vec![1], (2, 3), &mut log).await.unwrap();
    assert_eq!(log, [vec![1, 5], vec![1, 5], vec![1, 5]]);
    assert_eq!(start.elapsed(), 40 * MS, "constant backoff");
}

#[timeout_async(ms = 250)]
#[retry(attempts = 5, base = "100ms", jitter = "none")]
async fn within_a_budget(calls: &AtomicU32) -> Result<(), TimeoutError> {
    calls.fetch_add(1, Ordering::SeqCst);
    Err(
        resilience_runtime::timeout(MS, std::future::pending::<()>())
            .await
            .unwrap_err(),
    )
}

#[tokio::test(start_paused = true)]
async fn no_delay_starts_that_would_outlast_the_budget() {
    // Attempts at 0 ms and 101 ms; the next delay (200 ms) would end past the
    // 250 ms budget, so the second error is returned at once.
    let start = Instant::now();
    let calls = AtomicU32::new(0);
    let err = within_a_budget(&calls).await.unwrap_err();
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert_eq!(err.function(), "resilience_runtime::timeout");
    assert_eq!(start.elapsed(), 102 * MS);
}

#[retry(attempts = 3, base = "10ms", jitter = "none")]
#[timeout_async(ms = 50)]
async fn each_attempt_timed(calls: &AtomicU32) -> Result<(), TimeoutError> {
    calls.fetch_add(1, Ordering::SeqCst);
    sleep(Duration::from_secs(1)).await;
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn retry_above_timeout_gives_each_attempt_the_limit() {
    let start = Instant::now();
    let calls = AtomicU32::new(0);
    let err = each_attempt_timed(&calls).await.unwrap_err();
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    assert_eq!(err.limit(), 50 * MS);
    assert!(!err.inherited());
    assert_eq!(start.elapsed(), (50 + 10 + 50 + 20 + 50) * MS);
}

#[timeout_async(ms = 130)]
#[retry(attempts = 10, base = "10ms", factor = 1.0, jitter = "none")]
async fn all_attempts_timed(calls: &AtomicU32) -> Result<(), TimeoutError> {
    calls.fetch_add(1, Ordering::SeqCst);
    sleep(40 * MS).await;
    Err(
        resilience_runtime::timeout(MS, std::future::pending::<()>())
            .await
            .unwrap_err(),
    )
}

#[tokio::test(start_paused = true)]
async fn timeout_above_retry_limits_all_attempts_together() {
    // Each attempt takes 41 ms plus a 10 ms pause: attempts start at 0, 51 and
    // 102 ms; the third is cut off by the 130 ms budget.
    let start = Instant::now();
    let calls = AtomicU32::new(0);
    let err = all_attempts_timed(&calls).await.unwrap_err();
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    assert_eq!(err.function(), "retry::all_attempts_timed");
    assert_eq!(start.elapsed(), 130 * MS);
}

#[retry(attempts = 4, base = "100ms", jitter = "full")]
async fn jittered(started: &mut Vec<Duration>, origin: Instant) -> Result<(), ()> {
    started.push(origin.elapsed());
    Err(())
}

async fn jitter_run(seed: u64) -> Vec<Duration> {
    resilience_runtime::retry::seed_jitter(seed);
    let mut started = Vec::new();
    let _ = jittered(&mut started, Instant::now()).await;
    started
}

#[tokio::test(start_paused = true)]
async fn seeded_jitter_repeats_and_stays_under_the_caps() {
    let first = jitter_run(42).await;
    assert_eq!(first, jitter_run(42).await);
    assert_ne!(first, jitter_run(7).await);
    let gaps: Vec<Duration> = first.windows(2).map(|w| w[1] - w[0]).collect();
    for (gap, cap) in gaps.iter().zip([100, 200, 400]) {
        assert!(*gap <= cap * MS, "{gap:?} over {cap} ms");
    }
}
