//! What the layers that admit or reject calls share: the future that admits
//! a call to a bulkhead or a rate limiter (ready at once on the fast path, a
//! boxed wait only when the call has to wait), whose state a layer holds
//! (its [`Owner`]), and how it counts its calls.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::registry::Function;

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

/// Whose the state of a breaker, rate limiter or bulkhead is: the annotated
/// function, its `policy = "…"` name, and the `name = "…"` that shares the
/// state across functions, if any.
#[derive(Clone, Copy)]
pub(crate) struct Owner {
    /// The name that shares the state.
    pub(crate) name: Option<&'static str>,
    pub(crate) function: &'static Function,
    pub(crate) policy: Option<&'static str>,
}

impl Owner {
    pub(crate) const fn new(
        name: Option<&'static str>,
        function: &'static Function,
        policy: Option<&'static str>,
    ) -> Self {
        Self {
            name,
            function,
            policy,
        }
    }

    /// The policy keys that reach the state: a shared one's settings belong
    /// to it, so only its name keys them; otherwise the function's path and
    /// `policy` name.
    pub(crate) fn keys(&self) -> [Option<&'static str>; 2] {
        match self.name {
            Some(name) => [Some(name), None],
            None => [Some(self.function.path()), self.policy],
        }
    }

    /// The name the state is known by: the shared name, or the function's
    /// path.
    pub(crate) fn name(&self) -> &'static str {
        self.name.unwrap_or_else(|| self.function.path())
    }
}

impl std::fmt::Debug for Owner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Owner")
            .field("function", &self.function.path())
            .field("name", &self.name)
            .field("policy", &self.policy)
            .finish()
    }
}

/// What a layer that admits calls counts in `resilience_calls_total`.
#[derive(Clone, Copy)]
pub(crate) enum Counted {
    Success = 0,
    Failure = 1,
    Rejected = 2,
}

impl Counted {
    #[inline]
    pub(crate) fn of(failed: bool) -> Self {
        if failed {
            Counted::Failure
        } else {
            Counted::Success
        }
    }
}

/// `resilience_calls_total{function, kind, outcome}` of a rate limiter or
/// a bulkhead: `success`, `failure`, `rejected`.
pub(crate) struct Outcomes {
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    kind: &'static str,
    #[cfg(feature = "metrics")]
    calls: crate::telemetry::Cached<[metrics::Counter; 3]>,
}

impl Outcomes {
    pub(crate) const fn new(kind: &'static str) -> Self {
        Self {
            kind,
            #[cfg(feature = "metrics")]
            calls: crate::telemetry::Cached::new(),
        }
    }

    /// Counts one call of `function`.
    #[inline]
    pub(crate) fn count(&self, _function: &'static Function, _outcome: Counted) {
        #[cfg(feature = "metrics")]
        self.calls.update(
            |recorder| {
                let outcomes = ["success", "failure", "rejected"];
                crate::telemetry::calls(recorder, _function.label(), self.kind, outcomes)
            },
            |calls| calls[_outcome as usize].increment(1),
        );
    }
}
