//! The future that admits a call to a bulkhead or a rate limiter: ready at
//! once on the fast path, a boxed wait only when the call has to wait.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// A decision about one call: taken now, or after a wait.
pub enum Admission<T, E> {
    #[doc(hidden)]
    Ready(Option<Result<T, E>>),
    #[doc(hidden)]
    Waiting(Pin<Box<dyn Future<Output = Result<T, E>> + Send>>),
}

impl<T, E> Admission<T, E> {
    #[inline]
    pub(crate) fn now(decision: Result<T, E>) -> Self {
        Admission::Ready(Some(decision))
    }

    pub(crate) fn after(wait: impl Future<Output = Result<T, E>> + Send + 'static) -> Self {
        Admission::Waiting(Box::pin(wait))
    }
}

impl<T: Unpin, E: Unpin> Future for Admission<T, E> {
    type Output = Result<T, E>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.get_mut() {
            Admission::Ready(decision) => Poll::Ready(
                decision
                    .take()
                    .expect("an admission polled after it completed"),
            ),
            Admission::Waiting(wait) => wait.as_mut().poll(cx),
        }
    }
}
