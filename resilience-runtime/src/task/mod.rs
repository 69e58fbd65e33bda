//! Structured concurrency: child tasks that end with their group, futures
//! gathered under a limit, named long-lived tasks with a graceful
//! shutdown, and a mutex and a queue whose waits respect the deadline
//! budget.
//!
//! tokio gives the pieces (`JoinSet`, tokio-util's `CancellationToken`);
//! this module adds the semantics: fail-fast cancellation with every error
//! kept, a concurrency limit, deadline budgets that follow children into
//! their tasks, panics resumed where the group is joined.

mod gather;
mod group;
mod manager;
mod sync;

pub use gather::{Gathered, gather_with_timeout};
pub use group::{GroupError, Supervised, TaskGroup, TaskHandle};
pub use manager::{
    Ended, ShutdownReport, Spawned, TaskError, TaskInfo, TaskManager, TaskState, cancellation,
};
pub use sync::{Mutex, MutexGuard, MutexStats, Queue, QueueStats, WaitStats};
