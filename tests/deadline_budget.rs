//! The deadline API: `timeout`, `deadline::{current, remaining, propagate}`.

use std::future::Future;
use std::task::{Context, Waker};
use std::time::Duration;

use resilience_runtime::{TimeoutError, deadline, timeout, timeout_async};
use tokio::time::{Instant, sleep};

const MS: Duration = Duration::from_millis(1);

#[tokio::test(start_paused = true)]
async fn no_budget_outside_a_scope() {
    assert_eq!(deadline::current(), None);
    assert_eq!(deadline::remaining(), None);
}

#[tokio::test(start_paused = true)]
async fn remaining_shrinks_as_time_passes_and_is_restored_after_the_scope() {
    let start = Instant::now();
    timeout(Duration::from_secs(1), async {
        assert_eq!(deadline::current(), Some(start + Duration::from_secs(1)));
        assert_eq!(deadline::remaining(), Some(Duration::from_secs(1)));
        sleep(400 * MS).await;
        assert_eq!(deadline::remaining(), Some(600 * MS));
        timeout(100 * MS, async {
            assert_eq!(deadline::remaining(), Some(100 * MS));
        })
        .await
        .unwrap();
        assert_eq!(deadline::remaining(), Some(600 * MS));
    })
    .await
    .unwrap();
    assert_eq!(deadline::remaining(), None);
}

#[tokio::test(start_paused = true)]
async fn a_nested_timeout_scope_inherits_the_budget() {
    let err = timeout(100 * MS, async {
        timeout(Duration::from_secs(5), sleep(Duration::from_secs(10))).await
    })
    .await
    .unwrap()
    .unwrap_err();
    assert!(err.inherited());
    assert_eq!(err.limit(), 100 * MS);
}

#[tokio::test(start_paused = true)]
async fn a_budget_already_spent_fails_the_next_call_at_once() {
    let start = Instant::now();
    let err = timeout(50 * MS, async {
        tokio::time::advance(80 * MS).await;
        timeout(Duration::from_secs(1), sleep(MS)).await
    })
    .await
    .unwrap()
    .unwrap_err();
    assert!(err.inherited());
    assert_eq!(err.limit(), Duration::ZERO);
    assert_eq!(start.elapsed(), 80 * MS);
}

#[timeout_async(secs = 10)]
async fn timed_child() -> Result<(), TimeoutError> {
    sleep(Duration::from_secs(60)).await;
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn spawned_tasks_inherit_only_through_propagate() {
    let start = Instant::now();
    // Spawn inside the scope, await outside it: only the carried budget can fire.
    let (carried, bare) = timeout(200 * MS, async {
        let carried = tokio::spawn(deadline::propagate(timed_child()));
        let bare = tokio::spawn(async { deadline::remaining() });
        (carried, bare)
    })
    .await
    .unwrap();
    let (carried, bare) = (carried.await.unwrap(), bare.await.unwrap());
    assert_eq!(bare, None);
    let err = carried.unwrap_err();
    assert!(err.inherited());
    assert_eq!(err.limit(), 200 * MS);
    assert_eq!(start.elapsed(), 200 * MS);
}

#[tokio::test(start_paused = true)]
async fn a_panicking_poll_restores_the_enclosing_budget() {
    let outer = timeout(Duration::from_secs(1), async {
        // Polled by hand on this thread, inside the outer scope, so that a
        // budget left behind by the unwinding poll would be seen right here.
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let inner = std::pin::pin!(timeout(10 * MS, async { panic!("boom") }));
            inner.poll(&mut Context::from_waker(Waker::noop()))
        }));
        assert!(caught.is_err());
        deadline::remaining()
    })
    .await
    .unwrap();
    assert_eq!(outer, Some(Duration::from_secs(1)));
}

#[tokio::test(start_paused = true)]
async fn limits_too_large_for_the_clock_mean_no_limit() {
    let value = timeout(Duration::MAX, async { 5 }).await;
    assert_eq!(value, Ok(5));
}

#[tokio::test(start_paused = true)]
async fn futures_print_their_deadline() {
    let future = timeout(Duration::from_secs(1), async {});
    let printed = format!("{future:?}");
    assert!(
        printed.starts_with("Timeout { function: \"resilience_runtime::timeout\", deadline: "),
        "{printed}"
    );
    assert!(
        printed.contains("inherited: false, completed: false"),
        "{printed}"
    );
    let propagated = format!("{:?}", deadline::propagate(async {}));
    assert_eq!(propagated, "Budgeted { budget: None, .. }");
}

#[timeout_async(1)]
async fn waits_once() -> Result<(), TimeoutError> {
    tokio::task::yield_now().await;
    Ok(())
}

#[test]
fn waiting_outside_a_runtime_names_the_function_and_the_requirement() {
    // Polled by hand, with no runtime: a body that is ready at once needs
    // no timer and succeeds; one that waits needs a runtime.
    let ready = std::pin::pin!(timeout(Duration::from_secs(1), async { 7 }));
    let polled = ready.poll(&mut Context::from_waker(Waker::noop()));
    assert_eq!(polled, std::task::Poll::Ready(Ok(7)));

    let caught = std::panic::catch_unwind(|| {
        let waiting = std::pin::pin!(waits_once());
        let _ = waiting.poll(&mut Context::from_waker(Waker::noop()));
    });
    let message = *caught.unwrap_err().downcast::<String>().unwrap();
    assert!(message.contains("deadline_budget::waits_once"), "{message}");
    assert!(
        message.contains("need a tokio runtime with timers enabled"),
        "{message}"
    );
}
