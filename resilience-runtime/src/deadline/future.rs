use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use pin_project_lite::pin_project;
use tokio::time::Instant;

use super::TimeoutError;

thread_local! {
    // The budget of the innermost scope being polled on this thread. It is set
    // around each poll of a `Budgeted` future and restored afterwards, so it always
    // belongs to the task being polled. A plain `Cell` rather than a tokio
    // task-local: the deadline is already stored in the future, and a task-local
    // scope would store a second copy in every timed future.
    static CURRENT: Cell<Option<Instant>> = const { Cell::new(None) };
}

pub(super) fn current() -> Option<Instant> {
    CURRENT.with(Cell::get)
}

/// Restores the enclosing budget when a poll ends, also by unwinding.
struct Restore(Option<Instant>);

impl Drop for Restore {
    fn drop(&mut self) {
        CURRENT.with(|current| current.set(self.0));
    }
}

pin_project! {
    /// A future polled under a deadline budget; returned by
    /// [`propagate`](super::propagate).
    #[must_use = "futures do nothing unless you `.await` or poll them"]
    pub struct Budgeted<F> {
        #[pin]
        future: F,
        budget: Option<Instant>,
    }
}

impl<F> Budgeted<F> {
    pub(super) fn new(budget: Option<Instant>, future: F) -> Self {
        Self { future, budget }
    }
}

impl<F: Future> Future for Budgeted<F> {
    type Output = F::Output;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let _restore = Restore(CURRENT.with(|current| current.replace(*this.budget)));
        this.future.poll(cx)
    }
}

pin_project! {
    /// A future with a deadline; returned by [`timeout`](crate::timeout()) and
    /// awaited by `#[timeout_async]` functions.
    ///
    /// Resolves to `Err(TimeoutError)` when the deadline passes first, after
    /// dropping the inner future.
    #[must_use = "futures do nothing unless you `.await` or poll them"]
    pub struct Timeout<F> {
        #[pin]
        inner: tokio::time::Timeout<Budgeted<F>>,
        function: &'static str,
        start: Instant,
        inherited: bool,
    }
}

impl<F: Future> Timeout<F> {
    #[inline]
    pub(super) fn new(function: &'static str, limit: Duration, future: F) -> Self {
        let start = Instant::now();
        // Limits too large for the clock mean "no limit", as in tokio.
        let own = start
            .checked_add(limit)
            .unwrap_or_else(|| start + Duration::from_secs(86400 * 365 * 30));
        let (deadline, inherited) = match current() {
            Some(enclosing) if enclosing < own => (enclosing, true),
            _ => (own, false),
        };
        Self {
            inner: tokio::time::timeout_at(deadline, Budgeted::new(Some(deadline), future)),
            function,
            start,
            inherited,
        }
    }
}

impl<F: Future> Future for Timeout<F> {
    type Output = Result<F::Output, TimeoutError>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        match this.inner.as_mut().poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Ok(output)) => Poll::Ready(Ok(output)),
            Poll::Ready(Err(_)) => {
                let deadline = tokio::time::Timeout::get_ref(&this.inner).budget;
                Poll::Ready(Err(expired(
                    this.function,
                    *this.start,
                    deadline,
                    *this.inherited,
                )))
            }
        }
    }
}

/// Builds the error and reports it; out of line so the success path stays small.
#[cold]
#[inline(never)]
fn expired(
    function: &'static str,
    start: Instant,
    deadline: Option<Instant>,
    inherited: bool,
) -> TimeoutError {
    let limit = deadline.map_or(Duration::ZERO, |at| at.saturating_duration_since(start));
    let elapsed = start.elapsed();
    tracing::warn!(
        function,
        limit_ms = millis(limit),
        elapsed_ms = millis(elapsed),
        inherited,
        "deadline exceeded"
    );
    TimeoutError::new(function, limit, elapsed, inherited)
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
