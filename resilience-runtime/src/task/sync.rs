//! A mutex and a queue whose waits respect the deadline budget and keep
//! statistics.

use std::collections::VecDeque;
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::panic::Location;
use std::sync::PoisonError;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::deadline::{self, TimeoutError};

/// Waits for `future` no longer than the deadline budget in force, if any.
async fn within_budget<F: Future>(future: F) -> Result<F::Output, TimeoutError> {
    match deadline::remaining() {
        Some(left) => deadline::within(left, future).await,
        None => Ok(future.await),
    }
}

/// Wait times, on atomics.
#[derive(Default)]
struct Waits {
    count: AtomicU64,
    timed_out: AtomicU64,
    total_nanos: AtomicU64,
    longest_nanos: AtomicU64,
}

impl Waits {
    fn record(&self, waited: Duration) {
        let nanos = u64::try_from(waited.as_nanos()).unwrap_or(u64::MAX);
        self.count.fetch_add(1, Relaxed);
        self.total_nanos.fetch_add(nanos, Relaxed);
        self.longest_nanos.fetch_max(nanos, Relaxed);
    }

    fn stats(&self) -> WaitStats {
        let count = self.count.load(Relaxed);
        WaitStats {
            count,
            timed_out: self.timed_out.load(Relaxed),
            mean: Duration::from_nanos(self.total_nanos.load(Relaxed) / count.max(1)),
            longest: Duration::from_nanos(self.longest_nanos.load(Relaxed)),
        }
    }
}

/// How long waits took.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitStats {
    /// Waits that got what they waited for.
    pub count: u64,
    /// Waits the deadline budget ended.
    pub timed_out: u64,
    /// Their mean.
    pub mean: Duration,
    /// The longest.
    pub longest: Duration,
}

/// An async mutex (tokio's) whose `lock` respects the deadline budget, and
/// which knows who holds it.
///
/// ```
/// use std::time::Duration;
/// use resilience_runtime::{task, timeout};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let book = task::Mutex::new(0u32);
/// let held = book.lock().await.unwrap();
/// // Under a 50 ms budget, a second lock gives up when the budget does.
/// let waited = timeout(Duration::from_millis(50), book.lock()).await.unwrap();
/// assert!(waited.is_err());
/// assert!(book.stats().holder.unwrap().contains(".rs:"));
/// drop(held);
/// assert_eq!(book.stats().waits.timed_out, 1);
/// # }
/// ```
pub struct Mutex<T> {
    inner: tokio::sync::Mutex<T>,
    holder: std::sync::Mutex<Option<Holder>>,
    waits: Waits,
}

/// What a [`Mutex`] has seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MutexStats {
    /// Who holds it now: the annotated call holding it (its chain, while
    /// frames are tracked), else where `lock` was called.
    pub holder: Option<String>,
    /// Its lock waits.
    pub waits: WaitStats,
}

impl<T> Mutex<T> {
    /// A mutex around `value`.
    pub fn new(value: T) -> Self {
        Self {
            inner: tokio::sync::Mutex::new(value),
            holder: std::sync::Mutex::new(None),
            waits: Waits::default(),
        }
    }

    /// Locks it, waiting no longer than the deadline budget in force (for
    /// ever without one).
    #[track_caller]
    pub fn lock(&self) -> impl Future<Output = Result<MutexGuard<'_, T>, TimeoutError>> {
        let caller = Location::caller();
        async move {
            let start = Instant::now();
            match within_budget(self.inner.lock()).await {
                Ok(guard) => {
                    self.waits.record(start.elapsed());
                    *self.holder.lock().unwrap_or_else(PoisonError::into_inner) =
                        Some(Holder::of(caller));
                    Ok(MutexGuard { guard, mutex: self })
                }
                Err(timeout) => {
                    self.waits.timed_out.fetch_add(1, Relaxed);
                    Err(timeout)
                }
            }
        }
    }

    /// Its holder and wait times.
    pub fn stats(&self) -> MutexStats {
        MutexStats {
            holder: self
                .holder
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .as_ref()
                .map(Holder::to_string),
            waits: self.waits.stats(),
        }
    }
}

/// Who holds a lock: the chain of the annotated call that took it, while
/// frames are tracked, else the place in the code. Rendered only when
/// asked: a lock taken untracked stores a pointer, no text.
enum Holder {
    Chain(String),
    Caller(&'static Location<'static>),
}

impl Holder {
    fn of(caller: &'static Location<'static>) -> Self {
        match crate::watchdog::tracking()
            .then(crate::watchdog::current_chain)
            .flatten()
        {
            Some(chain) => Holder::Chain(chain),
            None => Holder::Caller(caller),
        }
    }
}

impl fmt::Display for Holder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Holder::Chain(chain) => f.write_str(chain),
            Holder::Caller(caller) => caller.fmt(f),
        }
    }
}

/// A held [`Mutex`].
pub struct MutexGuard<'a, T> {
    guard: tokio::sync::MutexGuard<'a, T>,
    mutex: &'a Mutex<T>,
}

impl<T> Deref for MutexGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.guard
    }
}

impl<T> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.guard
    }
}

impl<T> Drop for MutexGuard<'_, T> {
    fn drop(&mut self) {
        *self
            .mutex
            .holder
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = None;
    }
}

impl<T> fmt::Debug for Mutex<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mutex")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

/// A bounded async queue whose waits (push when full, pop when empty)
/// respect the deadline budget, with statistics.
///
/// ```
/// use std::time::Duration;
/// use resilience_runtime::{task, timeout};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let orders = task::Queue::new(2);
/// orders.push("buy").await.unwrap();
/// assert_eq!(orders.pop().await.unwrap(), "buy");
/// // Empty: a pop under a 10 ms budget gives up with it.
/// assert!(timeout(Duration::from_millis(10), orders.pop()).await.unwrap().is_err());
/// assert_eq!(orders.stats().pushed, 1);
/// # }
/// ```
pub struct Queue<T> {
    items: std::sync::Mutex<VecDeque<T>>,
    capacity: usize,
    free: Semaphore,
    filled: Semaphore,
    pushed: AtomicU64,
    popped: AtomicU64,
    most: AtomicUsize,
    push_waits: Waits,
    pop_waits: Waits,
}

/// What a [`Queue`] has seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueStats {
    /// Items in it now.
    pub len: usize,
    /// The most it may hold.
    pub capacity: usize,
    /// The most it has held.
    pub high_water: usize,
    /// Items pushed so far.
    pub pushed: u64,
    /// Items popped so far.
    pub popped: u64,
    /// Pushes' waits for room.
    pub push_waits: WaitStats,
    /// Pops' waits for an item.
    pub pop_waits: WaitStats,
}

impl<T> Queue<T> {
    /// An empty queue for at most `capacity` items.
    ///
    /// # Panics
    ///
    /// When `capacity` is zero.
    pub fn new(capacity: usize) -> Self {
        assert!(capacity > 0, "a queue's capacity must be at least 1");
        Self {
            items: std::sync::Mutex::new(VecDeque::with_capacity(capacity)),
            capacity,
            free: Semaphore::new(capacity),
            filled: Semaphore::new(0),
            pushed: AtomicU64::new(0),
            popped: AtomicU64::new(0),
            most: AtomicUsize::new(0),
            push_waits: Waits::default(),
            pop_waits: Waits::default(),
        }
    }

    /// Adds `item` at the back, waiting for room no longer than the
    /// deadline budget in force; the item comes back with the error.
    pub async fn push(&self, item: T) -> Result<(), (T, TimeoutError)> {
        let start = Instant::now();
        match within_budget(self.free.acquire()).await {
            Ok(permit) => {
                permit.expect("never closed").forget();
                self.push_waits.record(start.elapsed());
                let len = {
                    let mut items = self.items.lock().unwrap_or_else(PoisonError::into_inner);
                    items.push_back(item);
                    items.len()
                };
                self.most.fetch_max(len, Relaxed);
                self.pushed.fetch_add(1, Relaxed);
                self.filled.add_permits(1);
                Ok(())
            }
            Err(timeout) => {
                self.push_waits.timed_out.fetch_add(1, Relaxed);
                Err((item, timeout))
            }
        }
    }

    /// Takes the item at the front, waiting for one no longer than the
    /// deadline budget in force.
    pub async fn pop(&self) -> Result<T, TimeoutError> {
        let start = Instant::now();
        match within_budget(self.filled.acquire()).await {
            Ok(permit) => {
                permit.expect("never closed").forget();
                self.pop_waits.record(start.elapsed());
                let item = self
                    .items
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .pop_front()
                    .expect("a permit for each item");
                self.popped.fetch_add(1, Relaxed);
                self.free.add_permits(1);
                Ok(item)
            }
            Err(timeout) => {
                self.pop_waits.timed_out.fetch_add(1, Relaxed);
                Err(timeout)
            }
        }
    }

    /// Its counts and wait times.
    pub fn stats(&self) -> QueueStats {
        QueueStats {
            len: self
                .items
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .len(),
            capacity: self.capacity,
            high_water: self.most.load(Relaxed),
            pushed: self.pushed.load(Relaxed),
            popped: self.popped.load(Relaxed),
            push_waits: self.push_waits.stats(),
            pop_waits: self.pop_waits.stats(),
        }
    }
}

impl<T> fmt::Debug for Queue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Queue")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}
