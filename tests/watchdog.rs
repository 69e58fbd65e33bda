//! Frames of in-flight calls, `in_flight()`, the timeout report, and the
//! watchdog's stall and blocking reports. Frames and the subscriber are
//! process-wide: each test looks only at its own functions.

mod common;

use std::io;
use std::sync::Arc;
use std::time::Duration;

use common::Recorder;
use resilience_runtime::watchdog::{self, Frame};
use resilience_runtime::{TimeoutError, retry, timeout_async};
use tokio::sync::Notify;
use tokio::time::sleep;

/// Lets spawned tasks make their first polls.
async fn settle() {
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
}

/// The frames in flight whose chain begins with `root` (a function of this
/// file, without the crate's name).
fn under(root: &str) -> Vec<Frame> {
    let root = format!("watchdog::{root}");
    watchdog::in_flight()
        .into_iter()
        .filter(|frame| frame.chain().starts_with(&root))
        .collect()
}

#[timeout_async("2s")]
async fn place_order() -> Result<Vec<Frame>, TimeoutError> {
    sleep(Duration::from_millis(5)).await;
    fetch_price().await
}

#[timeout_async("1s")]
#[retry(attempts = 2)]
async fn fetch_price() -> Result<Vec<Frame>, TimeoutError> {
    connect().await
}

#[retry(attempts = 2)]
async fn connect() -> Result<Vec<Frame>, TimeoutError> {
    sleep(Duration::from_millis(10)).await;
    Ok(under("place_order"))
}

#[tokio::test(start_paused = true)]
async fn in_flight_lists_each_chain_outermost_first_and_forgets_ended_calls() {
    watchdog::track(true);
    let frames = place_order().await.unwrap();
    let chains: Vec<_> = frames.iter().map(Frame::chain).collect();
    assert_eq!(
        chains,
        [
            "watchdog::place_order",
            "watchdog::place_order > watchdog::fetch_price",
            "watchdog::place_order > watchdog::fetch_price > watchdog::connect",
        ]
    );
    let [order, price, connect] = &frames[..] else {
        unreachable!()
    };
    assert_eq!((order.depth(), price.depth(), connect.depth()), (0, 1, 2));
    assert_eq!(connect.function(), "watchdog::connect");
    // Each is inside a poll: the innermost one is where the thread is.
    assert!(
        frames.iter().all(|f| f.polling_for().is_some()),
        "{frames:#?}"
    );
    assert_eq!(order.elapsed(), Duration::from_millis(15));
    assert_eq!(connect.elapsed(), Duration::from_millis(10));
    assert_eq!(order.limit(), Some(Duration::from_secs(2)));
    assert_eq!(order.deadline_owner(), Some("watchdog::place_order"));
    assert_eq!(price.limit(), Some(Duration::from_secs(1)));
    assert_eq!(price.attempt(), Some(1));
    // `connect` has no deadline of its own: it runs in `fetch_price`'s.
    assert_eq!(connect.limit(), Some(Duration::from_secs(1)));
    assert_eq!(connect.deadline_owner(), Some("watchdog::fetch_price"));
    assert!(order.polls() >= 2, "it waited once before");
    assert_eq!(under("place_order"), []);
}

#[retry(attempts = 1)]
async fn parked(release: Arc<Notify>) -> io::Result<()> {
    release.notified().await;
    Ok(())
}

#[retry(attempts = 1)]
async fn parks_then_panics(release: Arc<Notify>) -> io::Result<()> {
    release.notified().await;
    panic!("a bug in the body");
}

#[tokio::test(start_paused = true)]
async fn frames_end_with_their_calls_when_cancelled_aborted_or_panicking() {
    watchdog::track(true);
    let release = Arc::new(Notify::new());

    // Dropped by `select!`.
    tokio::select! {
        biased;
        _ = parked(release.clone()) => unreachable!(),
        () = async { assert_eq!(under("parked").len(), 1) } => {}
    }
    assert_eq!(under("parked"), []);

    // Aborted.
    let task = tokio::spawn(parked(release.clone()));
    settle().await;
    let frames = under("parked");
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].polling_for(), None, "it waits");
    task.abort();
    assert!(task.await.unwrap_err().is_cancelled());
    assert_eq!(under("parked"), []);

    // Panicked.
    let task = tokio::spawn(parks_then_panics(release.clone()));
    settle().await;
    assert_eq!(under("parks_then_panics").len(), 1);
    release.notify_waiters();
    assert!(task.await.unwrap_err().is_panic());
    assert_eq!(under("parks_then_panics"), []);
    // The panic unwound through the frame's poll: the next call on this
    // thread is a root again, not a child of the frame that panicked.
    let alone = tokio::spawn(parked_chain()).await.unwrap().unwrap();
    assert_eq!(alone, "watchdog::parked_chain");
}

#[retry(attempts = 1)]
async fn parked_chain() -> io::Result<String> {
    Ok(under("parked_chain")[0].chain().to_owned())
}

#[timeout_async("300ms")]
async fn submit() -> Result<(), TimeoutError> {
    sleep(Duration::from_millis(100)).await;
    route().await
}

#[timeout_async("5s")]
async fn route() -> Result<(), TimeoutError> {
    venue().await
}

#[retry(attempts = 1)]
async fn venue() -> Result<(), TimeoutError> {
    sleep(Duration::from_secs(10)).await;
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_timeout_report_names_whose_deadline_fired_and_what_ran_inside_it() {
    let recorder = Recorder::global();
    watchdog::track(true);
    let error = submit().await.unwrap_err();
    assert_eq!(error.function(), "watchdog::route");
    assert!(error.inherited());
    assert_eq!(error.deadline_owner(), "watchdog::submit");
    assert_eq!(
        error.to_string(),
        "`watchdog::route` timed out after 200ms (limit 200ms, the budget left by an enclosing deadline)"
    );
    let report = format!("{error:#}");
    let lines: Vec<_> = report.lines().collect();
    assert_eq!(
        lines[1..],
        [
            "  deadline of `watchdog::submit`; in flight inside it when it fired, innermost last:",
            "    watchdog::submit: 300 ms, polling for 0 µs, limit 300 ms",
            "      watchdog::route: 200 ms, waiting 0 µs, limit 200 ms (`watchdog::submit`'s)",
            "        watchdog::venue: 200 ms, waiting 0 µs, limit 200 ms (`watchdog::submit`'s), attempt 1",
        ],
        "{report}"
    );
    let warned = recorder.find("deadline exceeded", "function", "watchdog::route");
    assert_eq!(warned.len(), 1, "{warned:?}");
    assert_eq!(
        warned[0].field("chain"),
        "watchdog::submit > watchdog::route > watchdog::venue"
    );
    assert_eq!(warned[0].field("owner"), "watchdog::submit");
}

#[timeout_async("100ms")]
async fn handle(venue: u8) -> Result<(), TimeoutError> {
    if venue == 0 {
        send_a().await
    } else {
        send_b().await
    }
}

#[retry(attempts = 1)]
async fn send_a() -> Result<(), TimeoutError> {
    sleep(Duration::from_secs(10)).await;
    Ok(())
}

#[retry(attempts = 1)]
async fn send_b() -> Result<(), TimeoutError> {
    sleep(Duration::from_secs(10)).await;
    Ok(())
}

/// Two requests to one handler at once, each timing out: each report
/// shows its own calls, never the other request's.
#[tokio::test(start_paused = true)]
async fn concurrent_calls_of_one_function_each_report_their_own_calls() {
    watchdog::track(true);
    let a = tokio::spawn(handle(0));
    let b = tokio::spawn(handle(1));
    let a = format!("{:#}", a.await.unwrap().unwrap_err());
    let b = format!("{:#}", b.await.unwrap().unwrap_err());
    assert!(
        a.contains("watchdog::send_a") && !a.contains("send_b"),
        "{a}"
    );
    assert!(
        b.contains("watchdog::send_b") && !b.contains("send_a"),
        "{b}"
    );
    // A `timeout()` scope lists the calls made inside it.
    let error = resilience_runtime::timeout(Duration::from_millis(50), send_a())
        .await
        .unwrap_err();
    let report = format!("{error:#}");
    assert!(report.ends_with("watchdog::send_a: 50 ms, waiting 0 µs, limit 50 ms (`resilience_runtime::timeout`'s), attempt 1"), "{report}");
}

#[retry(attempts = 1)]
async fn stuck() -> io::Result<()> {
    sleep(Duration::from_secs(3600)).await;
    Ok(())
}

#[retry(attempts = 1)]
async fn waits_on_stuck() -> io::Result<()> {
    stuck().await
}

#[tokio::test(start_paused = true)]
async fn a_call_in_flight_past_stall_after_is_reported_once_per_report_every() {
    let recorder = Recorder::global();
    let dog = watchdog::start(watchdog::Config {
        stall_after: Duration::from_secs(5),
        ..watchdog::Config::default()
    });
    let task = tokio::spawn(waits_on_stuck());
    settle().await;
    tokio::time::advance(Duration::from_secs(4)).await;
    dog.check();
    assert_eq!(
        recorder
            .find("stalled call", "function", "watchdog::stuck")
            .len(),
        0
    );

    tokio::time::advance(Duration::from_secs(2)).await;
    dog.check();
    // The deepest stalled call of the chain is reported, not its callers.
    let stalled = recorder.find("stalled call", "function", "watchdog::stuck");
    assert_eq!(stalled.len(), 1, "{stalled:?}");
    assert_eq!(
        stalled[0].field("chain"),
        "watchdog::waits_on_stuck > watchdog::stuck"
    );
    assert_eq!(stalled[0].field("elapsed_ms"), "6000");
    let callers = recorder.find("stalled call", "function", "watchdog::waits_on_stuck");
    assert_eq!(callers.len(), 0, "{callers:?}");

    tokio::time::advance(Duration::from_secs(5)).await;
    dog.check();
    assert_eq!(
        recorder
            .find("stalled call", "function", "watchdog::stuck")
            .len(),
        1
    );
    tokio::time::advance(Duration::from_secs(6)).await;
    dog.check();
    assert_eq!(
        recorder
            .find("stalled call", "function", "watchdog::stuck")
            .len(),
        2
    );
    task.abort();
}

#[retry(attempts = 1)]
async fn one_of_many(release: Arc<Notify>) -> io::Result<()> {
    release.notified().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_frames_in_flight_are_each_seen_and_each_released() {
    watchdog::track(true);
    let release = Arc::new(Notify::new());
    let tasks: Vec<_> = (0..5000)
        .map(|_| tokio::spawn(one_of_many(release.clone())))
        .collect();
    // Every task has made its first poll once each frame is seen.
    let mut seen = 0;
    for _ in 0..1000 {
        seen = under("one_of_many").len();
        if seen == 5000 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(seen, 5000);
    release.notify_waiters();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    assert_eq!(under("one_of_many"), []);
}
