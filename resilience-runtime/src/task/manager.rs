//! Named long-lived tasks: monitoring loops, feeds, sockets.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::{Semaphore, oneshot, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

tokio::task_local! {
    static TOKEN: CancellationToken;
}

/// The cancellation token of the managed task being run, for cooperative
/// cancellation: `None` outside a task of a [`TaskManager`].
///
/// ```
/// # use resilience_runtime::task::{self, TaskManager};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let manager = TaskManager::new();
/// manager.spawn_named("feed", async {
///     let token = task::cancellation().expect("a managed task");
///     token.cancelled().await; // a real loop would select! on it
/// }).unwrap();
/// let report = manager.shutdown(std::time::Duration::from_secs(1)).await;
/// assert_eq!(report.ended()[0].1, task::Ended::Cancelled);
/// # }
/// ```
pub fn cancellation() -> Option<CancellationToken> {
    TOKEN.try_with(CancellationToken::clone).ok()
}

/// How a managed task ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// Its future completed before anyone asked it to stop.
    Completed,
    /// It completed after its cancellation was asked for (it cooperated).
    Cancelled,
    /// It was dropped: it did not stop within the shutdown's grace.
    Aborted,
    /// It panicked.
    Panicked,
}

/// Where a managed task is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskState {
    /// Waiting for a place under the manager's concurrency cap.
    Queued,
    /// Running.
    Running,
    /// Asked to stop, still running.
    Cancelling,
}

/// A live managed task, as [`TaskManager::running`] saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskInfo {
    name: String,
    age: Duration,
    state: TaskState,
}

impl TaskInfo {
    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// How long since it was spawned.
    pub fn age(&self) -> Duration {
        self.age
    }

    /// Where it is.
    pub fn state(&self) -> TaskState {
        self.state
    }
}

/// A task manager's mistake.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TaskError {
    /// A live task already has this name.
    #[error("a task named `{0}` is already running; names are unique among live tasks")]
    Duplicate(String),
    /// No task of this name was spawned.
    #[error("no task named `{0}` was spawned")]
    Unknown(String),
    /// It did not end within the time given.
    #[error("task `{0}` did not end in time")]
    TimedOut(String),
    /// The manager was shut down: it takes no new task.
    #[error("the task manager is shut down; task `{0}` was not started")]
    ShutDown(String),
}

/// What a shutdown did: each task that ended during it, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShutdownReport {
    ended: Vec<(String, Ended)>,
}

impl ShutdownReport {
    /// `(name, how it ended)`, sorted by name.
    pub fn ended(&self) -> &[(String, Ended)] {
        &self.ended
    }
}

type Cleanup = Box<dyn FnOnce() -> Pin<Box<dyn Future<Output = ()> + Send>> + Send>;

/// One spawned task, whose start waits for its cleanup: attach one with
/// [`cleanup`](Self::cleanup), or drop the handle to start it without.
pub struct Spawned {
    start: Option<oneshot::Sender<Option<Cleanup>>>,
}

impl Spawned {
    /// Runs `cleanup` when the task ends, whatever the way: completed,
    /// cancelled, aborted or panicked. The task starts now.
    pub fn cleanup<F, Fut>(mut self, cleanup: F)
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let cleanup: Cleanup = Box::new(move || Box::pin(cleanup()));
        if let Some(start) = self.start.take() {
            let _ = start.send(Some(cleanup));
        }
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        if let Some(start) = self.start.take() {
            let _ = start.send(None);
        }
    }
}

/// Long-lived named tasks, each with a cancellation token, an optional
/// cleanup, and a graceful shutdown.
///
/// Tasks run on the tokio runtime they are spawned from. At most `cap` run
/// at once when a cap is set ([`with_cap`](Self::with_cap)); the others
/// wait for a place. Dropping the manager does not stop its tasks:
/// [`shutdown`](Self::shutdown) does.
#[derive(Clone)]
pub struct TaskManager {
    shared: Arc<Shared>,
}

struct Shared {
    tasks: Mutex<Tasks>,
    cap: Option<Arc<Semaphore>>,
}

#[derive(Default)]
struct Tasks {
    live: HashMap<String, Live>,
    /// How each ended task ended, by name (the last of each name).
    ended: HashMap<String, Ended>,
    shut_down: bool,
}

struct Live {
    started: Instant,
    running: bool,
    token: CancellationToken,
    /// Drops the task's future: abort.
    abort: CancellationToken,
    done: watch::Receiver<Option<Ended>>,
}

impl Default for TaskManager {
    fn default() -> Self {
        Self::new()
    }
}

impl TaskManager {
    /// A manager with no cap.
    pub fn new() -> Self {
        Self::build(None)
    }

    /// A manager that runs at most `cap` tasks at once; the others queue.
    ///
    /// # Panics
    ///
    /// When `cap` is zero.
    pub fn with_cap(cap: usize) -> Self {
        assert!(cap > 0, "a task manager's cap must be at least 1");
        Self::build(Some(Arc::new(Semaphore::new(cap))))
    }

    fn build(cap: Option<Arc<Semaphore>>) -> Self {
        Self {
            shared: Arc::new(Shared {
                tasks: Mutex::new(Tasks::default()),
                cap,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Tasks> {
        self.shared
            .tasks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Spawns `future` as the task `name`. It sees its cancellation token
    /// through [`cancellation`]. The task starts when the returned handle
    /// is dropped or given a [`cleanup`](Spawned::cleanup).
    pub fn spawn_named<F>(&self, name: impl Into<String>, future: F) -> Result<Spawned, TaskError>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let name = name.into();
        let mut tasks = self.lock();
        if tasks.shut_down {
            return Err(TaskError::ShutDown(name));
        }
        if tasks.live.contains_key(&name) {
            return Err(TaskError::Duplicate(name));
        }
        let token = CancellationToken::new();
        let abort = CancellationToken::new();
        let (done_tx, done) = watch::channel(None);
        let (start, started) = oneshot::channel::<Option<Cleanup>>();
        tasks.live.insert(
            name.clone(),
            Live {
                started: Instant::now(),
                running: false,
                token: token.clone(),
                abort: abort.clone(),
                done,
            },
        );
        drop(tasks);
        let manager = self.clone();
        tokio::spawn(async move {
            // Reported however this task ends, a panicking cleanup included.
            let mut report = Report {
                manager: &manager,
                name: &name,
                done: &done_tx,
                ended: Ended::Aborted,
            };
            // Waiting to start, or for a place under the cap: cancelled or
            // aborted meanwhile, it never runs.
            let mut started = started;
            let cleanup = tokio::select! {
                biased;
                cleanup = &mut started => cleanup.ok().flatten(),
                () = token.cancelled() => {
                    report.ended = Ended::Cancelled;
                    // Its cleanup still runs, if it was given one.
                    if let Ok(Some(cleanup)) = started.try_recv() {
                        run_cleanup(&name, cleanup).await;
                    }
                    return;
                }
                () = abort.cancelled() => {
                    if let Ok(Some(cleanup)) = started.try_recv() {
                        run_cleanup(&name, cleanup).await;
                    }
                    return;
                }
            };
            let cap = manager.shared.cap.clone();
            let permit = tokio::select! {
                biased;
                permit = async move {
                    match cap {
                        Some(cap) => Some(cap.acquire_owned().await.expect("never closed")),
                        None => None,
                    }
                } => Some(permit),
                () = token.cancelled() => None,
            };
            report.ended = match permit {
                Some(_permit) => {
                    manager.set_running(&name);
                    run(future, &token, &abort).await
                }
                None => Ended::Cancelled,
            };
            if let Some(cleanup) = cleanup {
                run_cleanup(&name, cleanup).await;
            }
        });
        Ok(Spawned { start: Some(start) })
    }

    fn set_running(&self, name: &str) {
        if let Some(live) = self.lock().live.get_mut(name) {
            live.running = true;
        }
    }

    fn finish(&self, name: &str, ended: Ended) {
        let mut tasks = self.lock();
        tasks.live.remove(name);
        tasks.ended.insert(name.to_owned(), ended);
    }

    /// The live tasks, by name.
    pub fn running(&self) -> Vec<TaskInfo> {
        let now = Instant::now();
        let mut infos: Vec<_> = self
            .lock()
            .live
            .iter()
            .map(|(name, live)| TaskInfo {
                name: name.clone(),
                age: now.saturating_duration_since(live.started),
                state: if live.token.is_cancelled() {
                    TaskState::Cancelling
                } else if live.running {
                    TaskState::Running
                } else {
                    TaskState::Queued
                },
            })
            .collect();
        infos.sort_by(|a, b| a.name.cmp(&b.name));
        infos
    }

    /// Asks the task `name` to stop (its token is cancelled); `false` when
    /// no live task has that name.
    pub fn cancel(&self, name: &str) -> bool {
        match self.lock().live.get(name) {
            Some(live) => {
                live.token.cancel();
                true
            }
            None => false,
        }
    }

    /// Waits up to `limit` (and never past the caller's deadline budget)
    /// for the task `name` to end; how it ended.
    pub async fn wait_for(&self, name: &str, limit: Duration) -> Result<Ended, TaskError> {
        let mut done = {
            let tasks = self.lock();
            match (tasks.live.get(name), tasks.ended.get(name)) {
                (Some(live), _) => live.done.clone(),
                (None, Some(ended)) => return Ok(*ended),
                (None, None) => return Err(TaskError::Unknown(name.to_owned())),
            }
        };
        let ended = crate::deadline::within(limit, async {
            loop {
                if let Some(ended) = *done.borrow_and_update() {
                    return Some(ended);
                }
                if done.changed().await.is_err() {
                    return *done.borrow();
                }
            }
        })
        .await;
        match ended {
            Ok(Some(ended)) => Ok(ended),
            Ok(None) | Err(_) => Err(TaskError::TimedOut(name.to_owned())),
        }
    }

    /// Stops every task: asks each to stop, waits up to `grace` for them to
    /// cooperate, then drops the futures of those left; cleanups run either
    /// way. Returns how each ended; the manager then takes no new task.
    pub async fn shutdown(&self, grace: Duration) -> ShutdownReport {
        let live: Vec<(String, CancellationToken, watch::Receiver<Option<Ended>>)> = {
            let mut tasks = self.lock();
            tasks.shut_down = true;
            tasks
                .live
                .iter()
                .map(|(name, live)| {
                    live.token.cancel();
                    (name.clone(), live.abort.clone(), live.done.clone())
                })
                .collect()
        };
        let wait_all = |receivers: Vec<watch::Receiver<Option<Ended>>>| async move {
            for mut done in receivers {
                let _ = done.wait_for(Option::is_some).await;
            }
        };
        let receivers = live.iter().map(|(_, _, done)| done.clone()).collect();
        if crate::deadline::within(grace, wait_all(receivers))
            .await
            .is_err()
        {
            for (_, abort, _) in &live {
                abort.cancel();
            }
            wait_all(live.iter().map(|(_, _, done)| done.clone()).collect()).await;
        }
        let mut ended: Vec<_> = live
            .into_iter()
            .map(|(name, _, done)| {
                let how = done.borrow().unwrap_or(Ended::Aborted);
                (name, how)
            })
            .collect();
        ended.sort_by(|a, b| a.0.cmp(&b.0));
        ShutdownReport { ended }
    }
}

/// Runs a task's future in a task of its own, so that a panic or an abort
/// leaves the caller to run the cleanup and report; how it ended.
async fn run<F>(future: F, token: &CancellationToken, abort: &CancellationToken) -> Ended
where
    F: Future<Output = ()> + Send + 'static,
{
    let mut inner = tokio::spawn(TOKEN.scope(token.clone(), future));
    let joined = tokio::select! {
        joined = &mut inner => joined,
        () = abort.cancelled() => {
            inner.abort();
            // Dropped before the cleanup runs.
            inner.await
        }
    };
    match joined {
        Ok(()) if token.is_cancelled() => Ended::Cancelled,
        Ok(()) => Ended::Completed,
        Err(error) if error.is_panic() => Ended::Panicked,
        Err(_) => Ended::Aborted,
    }
}

/// Runs a task's cleanup in a task of its own: a panic there is logged.
async fn run_cleanup(name: &str, cleanup: Cleanup) {
    if tokio::spawn(cleanup()).await.is_err() {
        tracing::warn!(task = name, "a task's cleanup panicked");
    }
}

/// Publishes how a task ended when dropped.
struct Report<'a> {
    manager: &'a TaskManager,
    name: &'a str,
    done: &'a watch::Sender<Option<Ended>>,
    ended: Ended,
}

impl Drop for Report<'_> {
    fn drop(&mut self) {
        self.manager.finish(self.name, self.ended);
        let _ = self.done.send(Some(self.ended));
    }
}

impl fmt::Debug for TaskManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskManager")
            .field("running", &self.running())
            .finish_non_exhaustive()
    }
}
