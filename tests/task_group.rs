//! Task groups and gathering: spawn order, the limit, fail-fast with every
//! error kept, panics resumed after the drain, budgets that follow children,
//! and no task outliving its group (drop guards count what was dropped).

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::Duration;

use resilience_runtime::task::{TaskGroup, gather_with_timeout};
use resilience_runtime::{deadline, timeout};
use tokio::time::{Instant, sleep};

/// Counts its drops: a task's future dropped, whether it ended or was
/// cancelled.
#[derive(Clone, Default)]
struct Drops(Arc<AtomicUsize>);

impl Drops {
    fn guard(&self) -> Guard {
        Guard(self.0.clone())
    }

    fn count(&self) -> usize {
        self.0.load(SeqCst)
    }

    /// A child that holds a guard and waits an hour, then returns `value`.
    fn parked<T: Send + 'static>(
        &self,
        value: T,
    ) -> impl Future<Output = io::Result<T>> + Send + 'static {
        let guard = self.guard();
        async move {
            let _guard = guard;
            sleep(Duration::from_secs(3600)).await;
            Ok(value)
        }
    }
}

struct Guard(Arc<AtomicUsize>);

impl Drop for Guard {
    fn drop(&mut self) {
        self.0.fetch_add(1, SeqCst);
    }
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn failed(what: &str) -> io::Error {
    io::Error::other(what.to_owned())
}

#[tokio::test(start_paused = true)]
async fn results_come_in_spawn_order_and_the_limit_holds_children_back() {
    let running = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let group = TaskGroup::<u64, io::Error>::new().limit(2);
    let start = Instant::now();
    for delay in [30, 10, 20, 10] {
        let (running, most) = (running.clone(), most.clone());
        group.spawn(async move {
            let now = running.fetch_add(1, SeqCst) + 1;
            most.fetch_max(now, SeqCst);
            sleep(ms(delay)).await;
            running.fetch_sub(1, SeqCst);
            Ok(delay)
        });
    }
    assert_eq!(group.join().await.unwrap(), [30, 10, 20, 10]);
    assert_eq!(most.load(SeqCst), 2);
    // 30 ‖ 10 then 20, then 10 after the 30: 40 ms.
    assert_eq!(start.elapsed(), ms(40));
}

#[tokio::test(start_paused = true)]
async fn the_first_error_cancels_every_sibling_and_closes_the_group() {
    let drops = Drops::default();
    let group = TaskGroup::<u32, io::Error>::new();
    group.spawn(drops.parked(1));
    group.spawn(async {
        sleep(ms(5)).await;
        Err(failed("venue down"))
    });
    let guard = drops.guard();
    group.spawn(async move {
        let _guard = guard;
        sleep(ms(10)).await;
        Ok(3)
    });
    sleep(ms(6)).await;
    assert!(group.is_cancelled());
    // A child spawned into the failed group never runs.
    let ran = Arc::new(AtomicUsize::new(0));
    let late = ran.clone();
    let handle = group.spawn(async move {
        late.fetch_add(1, SeqCst);
        Ok(4)
    });
    assert_eq!(handle.index(), 3);
    let start = Instant::now();
    let error = group.join().await.unwrap_err();
    assert_eq!(
        start.elapsed(),
        Duration::ZERO,
        "nothing waited for the hour"
    );
    let messages: Vec<_> = error.errors().iter().map(ToString::to_string).collect();
    assert_eq!(messages, ["venue down"]);
    assert_eq!(error.cancelled(), 3);
    assert_eq!(ran.load(SeqCst), 0);
    assert_eq!(drops.count(), 2, "both siblings' futures were dropped");
}

#[tokio::test(start_paused = true)]
async fn errors_that_beat_the_cancellation_are_all_kept_in_the_order_they_happened() {
    let group = TaskGroup::<u32, io::Error>::new();
    // The first to fail cancels the group; the others never fail.
    for (delay, what) in [(20, "second"), (10, "first"), (20, "third")] {
        group.spawn(async move {
            sleep(ms(delay)).await;
            Err(failed(what))
        });
    }
    group.spawn(async {
        sleep(ms(15)).await;
        Ok(4)
    });
    let error = group.join().await.unwrap_err();
    let messages: Vec<_> = error.errors().iter().map(ToString::to_string).collect();
    assert_eq!(messages, ["first"]);
    assert_eq!(error.cancelled(), 3);

    // Woken together: the first spawned yields once before failing, so
    // it fails second, in its next poll, after the cancellation was made:
    // both are kept, in the order they failed, not the order spawned.
    let group = TaskGroup::<u32, io::Error>::new();
    group.spawn(async {
        sleep(ms(10)).await;
        tokio::task::yield_now().await;
        Err(failed("second"))
    });
    group.spawn(async {
        sleep(ms(10)).await;
        Err(failed("first"))
    });
    let error = group.join().await.unwrap_err();
    let messages: Vec<_> = error.errors().iter().map(ToString::to_string).collect();
    assert_eq!(messages, ["first", "second"]);
    assert_eq!(error.cancelled(), 0);

    // Children not yet started when the group fails never start, under a
    // limit too.
    let started = Arc::new(AtomicUsize::new(0));
    let group = TaskGroup::<u32, io::Error>::new().limit(1);
    group.spawn(async { Err(failed("at once")) });
    for _ in 0..3 {
        let started = started.clone();
        group.spawn(async move {
            started.fetch_add(1, SeqCst);
            Ok(1)
        });
    }
    let error = group.join().await.unwrap_err();
    assert_eq!(error.cancelled(), 3);
    assert_eq!(started.load(SeqCst), 0);
}

#[tokio::test(start_paused = true)]
async fn a_panic_cancels_the_siblings_and_is_resumed_from_join_after_the_drain() {
    let drops = Drops::default();
    let group = TaskGroup::<u32, io::Error>::new();
    group.spawn(drops.parked(1));
    group.spawn(async {
        sleep(ms(10)).await;
        panic!("a bug in a child");
    });
    let joined = tokio::spawn(group.join()).await.unwrap_err();
    let payload = joined.into_panic();
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"a bug in a child"));
    assert_eq!(
        drops.count(),
        1,
        "the sibling was cancelled before the panic came back"
    );
}

#[tokio::test(start_paused = true)]
async fn a_supervised_group_cancels_nothing_and_returns_every_result() {
    let group = TaskGroup::<u32, io::Error>::supervised();
    group.spawn(async { Err(failed("one")) });
    group.spawn(async {
        sleep(ms(50)).await;
        Ok(2)
    });
    let results = group.join().await;
    assert_eq!(results[0].as_ref().unwrap_err().to_string(), "one");
    assert_eq!(results[1].as_ref().unwrap(), &2);
}

#[tokio::test(start_paused = true)]
async fn dropping_a_group_aborts_its_children() {
    let drops = Drops::default();
    let group = TaskGroup::<(), io::Error>::new();
    for _ in 0..3 {
        group.spawn(drops.parked(()));
    }
    sleep(ms(1)).await;
    drop(group);
    sleep(ms(1)).await;
    assert_eq!(drops.count(), 3, "no child outlived its group");
}

#[tokio::test(start_paused = true)]
async fn children_inherit_the_budget_and_die_with_the_timed_call_that_made_them() {
    let budgets = timeout(ms(100), async {
        let group = TaskGroup::<Option<Duration>, io::Error>::new();
        group.spawn(async { Ok(deadline::remaining()) });
        group.join().await.unwrap()
    })
    .await
    .unwrap();
    assert_eq!(budgets, [Some(ms(100))]);
    // Without it, a spawned task knows no budget.
    let bare = tokio::spawn(async { deadline::remaining() }).await.unwrap();
    assert_eq!(bare, None);

    let drops = Drops::default();
    let parked = drops.parked(());
    let cut = timeout(ms(50), async move {
        let group = TaskGroup::<(), io::Error>::new();
        group.spawn(parked);
        group.join().await
    })
    .await;
    assert!(cut.is_err());
    sleep(ms(1)).await;
    assert_eq!(drops.count(), 1);
}

/// On the real clock and two workers: 10,000 children, at most 64 at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_children_with_a_limit_of_64() {
    let running = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let group = TaskGroup::<usize, io::Error>::new().limit(64);
    for n in 0..10_000 {
        let (running, most) = (running.clone(), most.clone());
        group.spawn(async move {
            let now = running.fetch_add(1, SeqCst) + 1;
            most.fetch_max(now, SeqCst);
            tokio::task::yield_now().await;
            running.fetch_sub(1, SeqCst);
            Ok(n)
        });
    }
    let values = group.join().await.unwrap();
    assert_eq!(values.len(), 10_000);
    assert!(values.iter().enumerate().all(|(i, n)| i == *n));
    let most = most.load(SeqCst);
    assert!((1..=64).contains(&most), "{most}");
}

#[tokio::test(start_paused = true)]
async fn gathering_drops_what_is_late_and_respects_an_enclosing_budget() {
    let drops = Drops::default();
    let replies: Vec<_> = [10, 300, 20, 500]
        .into_iter()
        .map(|delay| {
            let guard = drops.guard();
            async move {
                let _guard = guard;
                sleep(ms(delay)).await;
                delay
            }
        })
        .collect();
    let gathered = timeout(
        ms(100),
        gather_with_timeout(replies, Duration::from_secs(1)),
    )
    .await
    .unwrap();
    assert_eq!(gathered.done, [(0, 10), (2, 20)]);
    assert_eq!(gathered.pending, [1, 3]);
    assert_eq!(drops.count(), 4, "the late ones were dropped at the limit");
}
