//! Task groups: children that succeed together or are cancelled together.

use std::any::Any;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use tokio::sync::Semaphore;
use tokio::task::{AbortHandle, JoinSet};
use tokio_util::sync::{CancellationToken, WaitForCancellationFuture};

/// A group of child tasks that end together.
///
/// Fail-fast: the first child that returns `Err` (or panics) cancels every
/// sibling and closes the group to new children. [`join`](Self::join)
/// waits for every child and gives the results in spawn order, or every
/// error that happened before the cancellation took effect.
///
/// Children inherit the deadline budget in force where they are spawned
/// (`tokio::spawn` does not), and no child outlives its group: dropping the
/// group (with the timed call it was made in, say) aborts them all.
///
/// ```
/// use resilience_runtime::task::TaskGroup;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let group = TaskGroup::<u32, std::io::Error>::new().limit(2);
/// for n in 1..=4 {
///     group.spawn(async move { Ok(n * 10) });
/// }
/// assert_eq!(group.join().await.unwrap(), [10, 20, 30, 40]);
/// # }
/// ```
pub struct TaskGroup<T, E> {
    core: Core<T, E>,
}

/// A group whose children fail alone: nothing is cancelled, and
/// [`join`](Self::join) gives every child's `Result` (Kotlin's
/// `supervisorScope`). Made by [`TaskGroup::supervised`].
pub struct Supervised<T, E> {
    core: Core<T, E>,
}

/// One child of a group.
#[derive(Debug)]
pub struct TaskHandle<T> {
    index: usize,
    abort: Option<AbortHandle>,
    _output: PhantomData<fn() -> T>,
}

impl<T> TaskHandle<T> {
    /// Its place in spawn order, from 0: where its result is in `join`'s.
    pub fn index(&self) -> usize {
        self.index
    }

    /// Whether it has ended; a child spawned into a closed group has, at
    /// once, without running.
    pub fn is_finished(&self) -> bool {
        self.abort.as_ref().is_none_or(AbortHandle::is_finished)
    }
}

/// Why a fail-fast group failed: every error that happened before the
/// cancellation took effect, in the order they happened, and how many
/// children the cancellation stopped.
#[derive(Debug, thiserror::Error)]
#[error("{} of a task group's children failed ({} cancelled)", errors.len(), cancelled)]
pub struct GroupError<E> {
    errors: Vec<E>,
    cancelled: usize,
}

impl<E> GroupError<E> {
    /// The errors, in the order they happened.
    pub fn errors(&self) -> &[E] {
        &self.errors
    }

    /// The errors, owned.
    pub fn into_errors(self) -> Vec<E> {
        self.errors
    }

    /// How many children were cancelled (and those not yet started that
    /// never ran).
    pub fn cancelled(&self) -> usize {
        self.cancelled
    }
}

/// A child's end, as its task returns it.
enum Ended<T, E> {
    /// It returned, as the `order`-th child to end.
    Returned(Result<T, E>, usize),
    /// The group's cancellation stopped it.
    Cancelled,
}

struct Core<T, E> {
    tasks: Mutex<Tasks<T, E>>,
    cancel: CancellationToken,
    fail_fast: bool,
    limit: Option<Arc<Semaphore>>,
    ended: Arc<AtomicUsize>,
}

struct Tasks<T, E> {
    set: JoinSet<(usize, Ended<T, E>)>,
    spawned: usize,
}

impl<T: Send + 'static, E: Send + 'static> Core<T, E> {
    fn new(fail_fast: bool) -> Self {
        Self {
            tasks: Mutex::new(Tasks {
                set: JoinSet::new(),
                spawned: 0,
            }),
            cancel: CancellationToken::new(),
            fail_fast,
            limit: None,
            ended: Arc::new(AtomicUsize::new(0)),
        }
    }

    fn spawn<F>(&self, future: F) -> TaskHandle<T>
    where
        F: Future<Output = Result<T, E>> + Send + 'static,
    {
        let mut tasks = self.tasks.lock().unwrap_or_else(PoisonError::into_inner);
        let index = tasks.spawned;
        tasks.spawned += 1;
        if self.cancel.is_cancelled() {
            // Closed: the child never runs, and counts as cancelled.
            tasks.set.spawn(async move { (index, Ended::Cancelled) });
            return TaskHandle {
                index,
                abort: None,
                _output: PhantomData,
            };
        }
        let cancel = self.cancel.clone();
        let limit = self.limit.clone();
        let ended = Arc::clone(&self.ended);
        let fail_fast = self.fail_fast;
        // Carries the caller's deadline budget into the child.
        let future = crate::deadline::propagate(future);
        let abort = tasks.set.spawn(async move {
            // A panic while the child runs cancels its siblings at once.
            let _panics = fail_fast.then_some(CancelOnPanic(&cancel));
            let run = async {
                // Boxed: the permit's wait holds no room in a group
                // without a limit.
                let _permit = match &limit {
                    Some(limit) => Some(Box::pin(limit.acquire()).await.expect("never closed")),
                    None => None,
                };
                // A group that failed before this child's turn: it never
                // starts.
                if fail_fast && cancel.is_cancelled() {
                    return None;
                }
                Some(future.await)
            };
            let result = if fail_fast {
                Cancellable {
                    future: run,
                    token: &cancel,
                    cancelled: None,
                }
                .await
                .flatten()
            } else {
                run.await
            };
            let Some(result) = result else {
                return (index, Ended::Cancelled);
            };
            let order = ended.fetch_add(1, Relaxed);
            if fail_fast && result.is_err() {
                cancel.cancel();
            }
            (index, Ended::Returned(result, order))
        });
        TaskHandle {
            index,
            abort: Some(abort),
            _output: PhantomData,
        }
    }

    /// Every child's end, by index; a panic's payload, resumed by the caller
    /// once every child has ended.
    async fn drain(self) -> (Vec<Option<Ended<T, E>>>, Option<Box<dyn Any + Send>>) {
        let mut tasks = self
            .tasks
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner);
        let mut ends: Vec<Option<Ended<T, E>>> = (0..tasks.spawned).map(|_| None).collect();
        let mut panic = None;
        while let Some(joined) = tasks.set.join_next().await {
            match joined {
                Ok((index, end)) => ends[index] = Some(end),
                Err(error) if error.is_panic() => {
                    self.cancel.cancel();
                    panic.get_or_insert(error.into_panic());
                }
                // Aborted: only the group aborts, and only when dropped.
                Err(_) => {}
            }
        }
        (ends, panic)
    }
}

pin_project_lite::pin_project! {
    /// A child that stops when its group is cancelled. The child is polled
    /// first, so one that ends in the same poll as the cancellation reaches
    /// it has its result kept; the wait for the cancellation is made (and
    /// boxed) only when the child first waits.
    struct Cancellable<'a, F> {
        #[pin]
        future: F,
        token: &'a CancellationToken,
        cancelled: Option<Pin<Box<WaitForCancellationFuture<'a>>>>,
    }
}

impl<F: Future> Future for Cancellable<'_, F> {
    type Output = Option<F::Output>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(output) = this.future.poll(cx) {
            return Poll::Ready(Some(output));
        }
        let token = *this.token;
        let cancelled = this
            .cancelled
            .get_or_insert_with(|| Box::pin(token.cancelled()));
        match cancelled.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// Cancels the group when the child's task unwinds.
struct CancelOnPanic<'a>(&'a CancellationToken);

impl Drop for CancelOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.cancel();
        }
    }
}

impl<T: Send + 'static, E: Send + 'static> TaskGroup<T, E> {
    /// An empty fail-fast group.
    pub fn new() -> Self {
        Self {
            core: Core::new(true),
        }
    }

    /// An empty fail-soft group.
    pub fn supervised() -> Supervised<T, E> {
        Supervised {
            core: Core::new(false),
        }
    }

    /// At most `n` children run at once; the others wait for a place.
    ///
    /// # Panics
    ///
    /// When `n` is zero: no child could ever run.
    pub fn limit(mut self, n: usize) -> Self {
        self.core.limit = Some(semaphore(n));
        self
    }

    /// Starts `future` as a child. In a group that has failed, the child
    /// never runs and counts as cancelled.
    pub fn spawn<F>(&self, future: F) -> TaskHandle<T>
    where
        F: Future<Output = Result<T, E>> + Send + 'static,
    {
        self.core.spawn(future)
    }

    /// Whether a child has failed, closing the group.
    pub fn is_cancelled(&self) -> bool {
        self.core.cancel.is_cancelled()
    }

    /// Waits for every child: their values in spawn order, or every error
    /// that happened before the cancellation took effect. A child's panic is
    /// resumed here, once every child has ended.
    pub async fn join(self) -> Result<Vec<T>, GroupError<E>> {
        let (ends, panic) = self.core.drain().await;
        if let Some(panic) = panic {
            std::panic::resume_unwind(panic);
        }
        let mut values = Vec::with_capacity(ends.len());
        let mut errors = Vec::new();
        let mut cancelled = 0;
        for end in ends {
            match end {
                Some(Ended::Returned(Ok(value), _)) => values.push(value),
                Some(Ended::Returned(Err(error), order)) => errors.push((order, error)),
                Some(Ended::Cancelled) | None => cancelled += 1,
            }
        }
        if errors.is_empty() && cancelled == 0 {
            return Ok(values);
        }
        errors.sort_by_key(|(order, _)| *order);
        Err(GroupError {
            errors: errors.into_iter().map(|(_, error)| error).collect(),
            cancelled,
        })
    }
}

impl<T: Send + 'static, E: Send + 'static> Default for TaskGroup<T, E> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Send + 'static, E: Send + 'static> Supervised<T, E> {
    /// At most `n` children run at once (see [`TaskGroup::limit`]).
    pub fn limit(mut self, n: usize) -> Self {
        self.core.limit = Some(semaphore(n));
        self
    }

    /// Starts `future` as a child.
    pub fn spawn<F>(&self, future: F) -> TaskHandle<T>
    where
        F: Future<Output = Result<T, E>> + Send + 'static,
    {
        self.core.spawn(future)
    }

    /// Waits for every child: each one's `Result`, in spawn order. A
    /// child's panic is resumed here, once every child has ended.
    pub async fn join(self) -> Vec<Result<T, E>> {
        let (ends, panic) = self.core.drain().await;
        if let Some(panic) = panic {
            std::panic::resume_unwind(panic);
        }
        ends.into_iter()
            .map(|end| match end {
                Some(Ended::Returned(result, _)) => result,
                Some(Ended::Cancelled) | None => unreachable!("a supervised group cancels nothing"),
            })
            .collect()
    }
}

fn semaphore(n: usize) -> Arc<Semaphore> {
    assert!(n > 0, "a task group's limit must be at least 1");
    Arc::new(Semaphore::new(n))
}

impl<T, E> std::fmt::Debug for TaskGroup<T, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskGroup")
            .field("cancelled", &self.core.cancel.is_cancelled())
            .finish_non_exhaustive()
    }
}

impl<T, E> std::fmt::Debug for Supervised<T, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Supervised").finish_non_exhaustive()
    }
}
