//! Rate limits and bulkheads under a policy file: quotas and places change
//! for the calls that start afterwards, and the kill switch lets calls
//! through. The policy is process-wide, so the tests take turns.

mod common;

use std::time::Duration;

use common::write;
use resilience_runtime::{
    BulkheadFullError, RateLimitedError, bulkhead, policy, rate_limit, sites,
};
use tokio::time::{Instant, sleep};

static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[rate_limit(per_second = 1, burst = 2, policy = "orders")]
async fn order() -> Result<(), RateLimitedError> {
    Ok(())
}

/// How many calls are admitted back to back.
async fn admitted() -> usize {
    let mut admitted = 0;
    while order().await.is_ok() {
        admitted += 1;
        assert!(admitted < 1_000);
    }
    admitted
}

#[tokio::test(start_paused = true)]
async fn a_quota_from_the_file_applies_to_the_calls_that_start_afterwards() {
    let _turn = TURN.lock().await;
    assert_eq!(admitted().await, 2);
    policy::load(write(
        "quota.toml",
        "[policies.orders.rate_limit]\nper_second = 100\nburst = 5\n",
    ))
    .unwrap();
    assert_eq!(admitted().await, 5);
    let settings = sites()
        .into_iter()
        .find(|site| site.function == "admission_policy::order")
        .map(|site| site.layers[0].clone());
    let Some(sites::Layer::RateLimit {
        settings: Some(settings),
        ..
    }) = settings
    else {
        panic!("{settings:?}");
    };
    assert_eq!(
        (settings.interval, settings.burst),
        (Duration::from_millis(10), 5)
    );

    // `per` with `max`, and a wait.
    policy::load(write(
        "per.toml",
        "[policies.orders.rate_limit]\nper = \"1s\"\nmax = 4\nburst = 1\nmax_wait = \"300ms\"\n",
    ))
    .unwrap();
    let start = Instant::now();
    order().await.unwrap();
    order().await.unwrap();
    assert_eq!(start.elapsed(), Duration::from_millis(250));

    // Switched off: by its entry, by kind, by the whole file.
    for text in [
        "[policies.orders.rate_limit]\nenabled = false\n",
        "disabled_kinds = [\"rate_limit\"]\n",
        "enabled = false\n",
    ] {
        policy::load(write("rate-off.toml", text)).unwrap();
        assert_eq!(admitted_up_to(50).await, 50, "{text}");
    }
    policy::clear();
    sleep(Duration::from_secs(10)).await;
    assert_eq!(admitted().await, 2, "back to its own quota");

    // A limiter keeps its written quota and 7 more: two were put in force
    // above, five more fit, and a sixth is refused, once, while the quota
    // in force stays.
    let recorder = common::Recorder::global();
    for per_second in [101, 102, 103, 104, 105, 106, 106] {
        policy::load(write(
            "many.toml",
            &format!("[policies.orders.rate_limit]\nper_second = {per_second}\n"),
        ))
        .unwrap();
        order().await.unwrap();
    }
    assert_eq!(rate_in_force(), Duration::from_secs(1) / 105);
    let refused = recorder.find(
        "a rate limiter keeps its written quota and 7 more; this one is not put in force, the quota in force stays",
        "limiter",
        "admission_policy::order",
    );
    assert_eq!(refused.len(), 1);
    policy::clear();
}

fn rate_in_force() -> Duration {
    let site = sites()
        .into_iter()
        .find(|site| site.function == "admission_policy::order")
        .unwrap();
    match &site.layers[0] {
        sites::Layer::RateLimit {
            settings: Some(settings),
            ..
        } => settings.interval,
        other => panic!("{other:?}"),
    }
}

async fn admitted_up_to(n: usize) -> usize {
    let mut admitted = 0;
    while admitted < n && order().await.is_ok() {
        admitted += 1;
    }
    admitted
}

#[bulkhead(max_concurrent = 2)]
async fn render(ms: u64) -> Result<(), BulkheadFullError> {
    sleep(Duration::from_millis(ms)).await;
    Ok(())
}

fn stats() -> bulkhead::Stats {
    bulkhead::stats("admission_policy::render").unwrap()
}

/// Starts `n` calls of 100 ms and says how many were rejected at once.
async fn crowd(
    n: usize,
) -> (
    Vec<tokio::task::JoinHandle<Result<(), BulkheadFullError>>>,
    usize,
) {
    let mut running = Vec::new();
    let mut rejected = 0;
    for _ in 0..n {
        let call = tokio::spawn(render(100));
        tokio::task::yield_now().await;
        if call.is_finished() {
            assert!(call.await.unwrap().is_err());
            rejected += 1;
        } else {
            running.push(call);
        }
    }
    (running, rejected)
}

#[tokio::test(start_paused = true)]
async fn places_from_the_file_grow_and_shrink_and_the_kill_switch_lets_calls_through() {
    let _turn = TURN.lock().await;
    let (running, rejected) = crowd(4).await;
    assert_eq!((running.len(), rejected), (2, 2));

    // Grown to 3 while 2 are held: one more fits.
    policy::load(write(
        "places.toml",
        "[policies.\"admission_policy::render\".bulkhead]\nmax_concurrent = 3\n",
    ))
    .unwrap();
    let (more, rejected) = crowd(2).await;
    assert_eq!((more.len(), rejected), (1, 1));
    assert_eq!((stats().running(), stats().max_concurrent()), (3, 3));

    // Shrunk to 1 while 3 are held: the places come back as the calls end,
    // and only one is kept.
    policy::load(write(
        "places.toml",
        "[policies.\"admission_policy::render\".bulkhead]\nmax_concurrent = 1\nmax_wait = \"1s\"\n",
    ))
    .unwrap();
    assert_eq!(crowd(1).await.0.len(), 1, "waits for a place");
    for call in running.into_iter().chain(more) {
        call.await.unwrap().unwrap();
    }
    sleep(Duration::from_millis(200)).await;
    assert_eq!((stats().running(), stats().max_concurrent()), (0, 1));
    let (held, rejected) = crowd(1).await;
    let waiting = tokio::spawn(render(1));
    tokio::task::yield_now().await;
    assert_eq!((held.len(), rejected, stats().waiting()), (1, 0, 1));
    for call in held {
        call.await.unwrap().unwrap();
    }
    waiting.await.unwrap().unwrap();

    // Switched off: every call runs.
    policy::load(write(
        "bulkhead-off.toml",
        "disabled_kinds = [\"bulkhead\"]\n",
    ))
    .unwrap();
    let (running, rejected) = crowd(5).await;
    assert_eq!((running.len(), rejected), (5, 0));
    for call in running {
        call.await.unwrap().unwrap();
    }
    // Back to the attribute's 2.
    policy::clear();
    let (running, rejected) = crowd(3).await;
    assert_eq!((running.len(), rejected), (2, 1));
    for call in running {
        call.await.unwrap().unwrap();
    }
    assert_eq!((stats().running(), stats().max_concurrent()), (0, 2));
}
