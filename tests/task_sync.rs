//! `task::Mutex` and `task::Queue`: waits that end with the deadline
//! budget, statistics, and who holds the lock.

use std::sync::Arc;
use std::time::Duration;

use resilience_runtime::{TimeoutError, task, timeout, timeout_async, watchdog};
use tokio::time::{Instant, sleep};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[timeout_async("1s")]
async fn rebalance(book: Arc<task::Mutex<u32>>) -> Result<Option<String>, TimeoutError> {
    let mut held = book.lock().await?;
    *held += 1;
    Ok(book.stats().holder)
}

#[tokio::test(start_paused = true)]
async fn a_lock_waits_within_the_budget_and_tells_who_holds_it() {
    let book = Arc::new(task::Mutex::new(0u32));
    let held = book.lock().await.unwrap();
    let holder = book.stats().holder.unwrap();
    assert!(holder.starts_with("tests/task_sync.rs:"), "{holder}");
    let waiter = tokio::spawn(rebalance(book.clone()));
    sleep(ms(30)).await;
    drop(held);
    // Tracked or not, the holder is known; tracked, it is the call's chain.
    let holder = waiter.await.unwrap().unwrap().unwrap();
    assert!(holder.starts_with("tests/task_sync.rs:"), "{holder}");
    watchdog::track(true);
    let named = rebalance(book.clone()).await.unwrap().unwrap();
    watchdog::track(false);
    assert_eq!(named, "task_sync::rebalance");
    assert_eq!(book.stats().holder, None, "released");
    let waits = book.stats().waits;
    assert_eq!((waits.count, waits.timed_out), (3, 0));
    assert_eq!(waits.longest, ms(30));

    let held = book.lock().await.unwrap();
    let start = Instant::now();
    let cut = timeout(ms(50), book.lock()).await.unwrap();
    assert!(cut.is_err());
    assert_eq!(start.elapsed(), ms(50));
    assert_eq!(book.stats().waits.timed_out, 1);
    drop(held);
    assert_eq!(*book.lock().await.unwrap(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_full_queue_holds_pushes_back_and_an_empty_one_pops_within_the_budget() {
    let queue = Arc::new(task::Queue::new(2));
    queue.push(1).await.unwrap();
    queue.push(2).await.unwrap();
    // Full: a push under a budget gives the item back when it runs out.
    let (item, _) = timeout(ms(20), queue.push(3)).await.unwrap().unwrap_err();
    assert_eq!(item, 3);
    // A pop 10 ms later makes room for a waiting push.
    let pusher = tokio::spawn({
        let queue = queue.clone();
        async move { queue.push(3).await.map_err(|(_, e)| e) }
    });
    sleep(ms(10)).await;
    assert_eq!(queue.pop().await.unwrap(), 1);
    pusher.await.unwrap().unwrap();
    assert_eq!(queue.pop().await.unwrap(), 2);
    assert_eq!(queue.pop().await.unwrap(), 3);
    assert!(timeout(ms(5), queue.pop()).await.unwrap().is_err());
    let stats = queue.stats();
    assert_eq!((stats.len, stats.capacity, stats.high_water), (0, 2, 2));
    assert_eq!((stats.pushed, stats.popped), (3, 3));
    assert_eq!(
        (stats.push_waits.timed_out, stats.pop_waits.timed_out),
        (1, 1)
    );
    assert_eq!(stats.push_waits.longest, ms(10));
}
