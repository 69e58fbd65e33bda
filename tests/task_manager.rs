//! Named long-lived tasks, on the paused clock: unique names, cleanups that
//! run however a task ends, cooperative cancellation, waiting with a limit,
//! a graceful shutdown that aborts what does not cooperate, and a cap.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use resilience_runtime::task::{self, Ended, TaskError, TaskManager, TaskState};
use tokio::time::{Instant, sleep};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Records what happened, in order.
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<String>>>);

impl Log {
    fn push(&self, what: impl Into<String>) {
        self.0.lock().unwrap().push(what.into());
    }

    fn entries(&self) -> Vec<String> {
        let mut entries = self.0.lock().unwrap().clone();
        entries.sort();
        entries
    }

    /// A cleanup that logs `name`.
    fn cleanup(
        &self,
        name: &'static str,
    ) -> impl FnOnce() -> std::future::Ready<()> + Send + 'static {
        let log = self.clone();
        move || {
            log.push(format!("cleaned {name}"));
            std::future::ready(())
        }
    }
}

/// Ends when its task is asked to stop.
async fn cooperative() {
    task::cancellation().unwrap().cancelled().await;
}

struct Guard(Log);

impl Drop for Guard {
    fn drop(&mut self) {
        self.0.push("stubborn dropped");
    }
}

#[tokio::test(start_paused = true)]
async fn names_are_unique_among_live_tasks_and_running_shows_them() {
    let manager = TaskManager::new();
    manager.spawn_named("feed", sleep(ms(100))).unwrap();
    let again = manager.spawn_named("feed", sleep(ms(1)));
    assert_eq!(again.err(), Some(TaskError::Duplicate("feed".into())));
    sleep(ms(10)).await;
    let running = manager.running();
    assert_eq!(running.len(), 1);
    assert_eq!(
        (running[0].name(), running[0].state()),
        ("feed", TaskState::Running)
    );
    assert_eq!(running[0].age(), ms(10));
    assert_eq!(
        manager.wait_for("feed", ms(200)).await,
        Ok(Ended::Completed)
    );
    assert!(manager.running().is_empty());
    // Ended: the name is free again, and its ending is remembered.
    assert_eq!(manager.wait_for("feed", ms(1)).await, Ok(Ended::Completed));
    manager.spawn_named("feed", sleep(ms(1))).unwrap();
    assert_eq!(
        manager.wait_for("nope", ms(1)).await,
        Err(TaskError::Unknown("nope".into()))
    );
}

#[tokio::test(start_paused = true)]
async fn a_cleanup_runs_however_the_task_ends() {
    let log = Log::default();
    let manager = TaskManager::new();
    manager
        .spawn_named("done", sleep(ms(5)))
        .unwrap()
        .cleanup(log.cleanup("done"));
    manager
        .spawn_named("asked", cooperative())
        .unwrap()
        .cleanup(log.cleanup("asked"));
    manager
        .spawn_named("panics", async {
            sleep(ms(5)).await;
            panic!("a bug in a feed");
        })
        .unwrap()
        .cleanup(log.cleanup("panics"));
    let guard = Guard(log.clone());
    manager
        .spawn_named("stubborn", async move {
            let _guard = guard;
            sleep(Duration::from_secs(3600)).await;
        })
        .unwrap()
        .cleanup(log.cleanup("stubborn"));
    assert_eq!(
        manager.wait_for("done", ms(100)).await,
        Ok(Ended::Completed)
    );
    assert_eq!(
        manager.wait_for("panics", ms(100)).await,
        Ok(Ended::Panicked)
    );
    assert!(manager.cancel("asked"));
    assert!(!manager.cancel("nope"));
    assert_eq!(
        manager.wait_for("asked", ms(100)).await,
        Ok(Ended::Cancelled)
    );
    // Asked, it does not stop: the wait gives up at its limit.
    assert!(manager.cancel("stubborn"));
    assert_eq!(manager.running()[0].state(), TaskState::Cancelling);
    let start = Instant::now();
    assert_eq!(
        manager.wait_for("stubborn", ms(50)).await,
        Err(TaskError::TimedOut("stubborn".into()))
    );
    assert_eq!(start.elapsed(), ms(50));
    let report = manager.shutdown(ms(100)).await;
    assert_eq!(report.ended(), [("stubborn".to_owned(), Ended::Aborted)]);
    assert_eq!(
        log.entries(),
        [
            "cleaned asked",
            "cleaned done",
            "cleaned panics",
            "cleaned stubborn",
            "stubborn dropped"
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn shutdown_asks_first_aborts_after_the_grace_and_takes_no_new_task() {
    let log = Log::default();
    let manager = TaskManager::new();
    manager
        .spawn_named("quotes", cooperative())
        .unwrap()
        .cleanup(log.cleanup("quotes"));
    let guard = Guard(log.clone());
    manager
        .spawn_named("socket", async move {
            let _guard = guard;
            sleep(Duration::from_secs(3600)).await;
        })
        .unwrap()
        .cleanup(log.cleanup("socket"));
    sleep(ms(1)).await;
    let start = Instant::now();
    let report = manager.shutdown(ms(200)).await;
    assert_eq!(start.elapsed(), ms(200), "waited the grace for the socket");
    assert_eq!(
        report.ended(),
        [
            ("quotes".to_owned(), Ended::Cancelled),
            ("socket".to_owned(), Ended::Aborted)
        ]
    );
    assert_eq!(
        log.entries(),
        ["cleaned quotes", "cleaned socket", "stubborn dropped"]
    );
    assert!(manager.running().is_empty());
    assert_eq!(
        manager.spawn_named("late", sleep(ms(1))).err(),
        Some(TaskError::ShutDown("late".into()))
    );
}

#[tokio::test(start_paused = true)]
async fn a_cap_holds_tasks_back_until_a_place_is_free() {
    let manager = TaskManager::with_cap(1);
    // The sleeps begin when the tasks do.
    manager
        .spawn_named("a", async { sleep(ms(10)).await })
        .unwrap();
    manager
        .spawn_named("b", async { sleep(ms(10)).await })
        .unwrap();
    sleep(ms(1)).await;
    let states: Vec<_> = manager.running().iter().map(|t| t.state()).collect();
    assert_eq!(states, [TaskState::Running, TaskState::Queued]);
    let start = Instant::now();
    assert_eq!(manager.wait_for("b", ms(100)).await, Ok(Ended::Completed));
    assert_eq!(start.elapsed(), ms(19), "b ran after a");
}

#[tokio::test(start_paused = true)]
async fn a_shutdown_ends_tasks_not_started_and_a_panicking_cleanup_still_reports() {
    let manager = TaskManager::with_cap(1);
    let ran = Log::default();
    let log = ran.clone();
    // Its handle held: the task has not started.
    let held = manager
        .spawn_named("held", async move { log.push("held ran") })
        .unwrap();
    manager.spawn_named("busy", cooperative()).unwrap();
    let log = ran.clone();
    // Queued behind `busy` under the cap.
    manager
        .spawn_named("queued", async move { log.push("queued ran") })
        .unwrap();
    sleep(ms(1)).await;
    let report = manager.shutdown(ms(100)).await;
    assert_eq!(
        report.ended(),
        [
            ("busy".to_owned(), Ended::Cancelled),
            ("held".to_owned(), Ended::Cancelled),
            ("queued".to_owned(), Ended::Cancelled),
        ]
    );
    assert!(ran.entries().is_empty(), "{:?}", ran.entries());
    drop(held);

    let manager = TaskManager::new();
    manager
        .spawn_named("feed", sleep(ms(5)))
        .unwrap()
        .cleanup(|| async { panic!("a broken cleanup") });
    assert_eq!(
        manager.wait_for("feed", ms(100)).await,
        Ok(Ended::Completed)
    );
    assert!(manager.running().is_empty());
    manager.spawn_named("feed", sleep(ms(5))).unwrap();
}
