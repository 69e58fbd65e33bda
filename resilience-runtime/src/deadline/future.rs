use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use pin_project_lite::pin_project;
use tokio::task::coop::{Unconstrained, unconstrained};
use tokio::time::{Instant, Sleep, sleep_until};

use super::TimeoutError;
use crate::events::{Warning, may_warn, millis};
use crate::registry::Function;

thread_local! {
    // The budget of the innermost scope being polled on this thread. It is set
    // around each poll of a scoped future and restored afterwards, so it always
    // belongs to the task being polled. A plain `Cell` rather than a tokio
    // task-local: the deadline is already stored in the future, and a task-local
    // scope would store a second copy in every timed future.
    static CURRENT: Cell<Option<Scope>> = const { Cell::new(None) };
    // The function whose own deadline is dropping its body on this thread,
    // for the destructors that run meanwhile (a breaker's permit counts that
    // as a failure).
    static EXPIRING: Cell<Option<&'static str>> = const { Cell::new(None) };
}

/// True while the own deadline of `function` (not one it inherited) is
/// dropping its body on this thread.
pub(crate) fn expiring(function: &str) -> bool {
    EXPIRING.get().is_some_and(|expiring| expiring == function)
}

/// Drops a timed body whose deadline passed, telling the destructors that run
/// meanwhile whose deadline it was.
#[cold]
fn drop_expired<F>(mut future: Pin<&mut Option<F>>, function: &'static str, inherited: bool) {
    struct Restore(Option<&'static str>);

    impl Drop for Restore {
        fn drop(&mut self) {
            EXPIRING.set(self.0);
        }
    }

    let owner = if inherited { None } else { Some(function) };
    let _restore = Restore(EXPIRING.replace(owner));
    future.set(None);
}

/// A deadline budget in force: when it runs out, and whose deadline it is.
#[derive(Clone, Copy)]
pub(crate) struct Scope {
    pub(crate) deadline: Instant,
    pub(crate) owner: &'static Function,
    /// The deadline's identity: the address of the pinned future that set
    /// it, so that two calls of one function in flight at once tell their
    /// frames apart. A nested call that inherits the deadline keeps it.
    pub(crate) id: usize,
}

/// The budget of the innermost scope being polled on this thread.
#[inline]
pub(crate) fn scope() -> Option<Scope> {
    CURRENT.get()
}

pub(super) fn current() -> Option<Instant> {
    CURRENT.get().map(|scope| scope.deadline)
}

/// Polls with `budget` as the current budget, restoring the enclosing one
/// afterwards, also when the poll unwinds.
#[inline]
pub(crate) fn with_budget<R>(budget: Option<Scope>, poll: impl FnOnce() -> R) -> R {
    struct Restore(Option<Scope>);

    impl Drop for Restore {
        #[inline]
        fn drop(&mut self) {
            CURRENT.set(self.0);
        }
    }

    let _restore = Restore(CURRENT.replace(budget));
    poll()
}

pin_project! {
    /// A future polled under a deadline budget; returned by
    /// [`propagate`](super::propagate).
    #[must_use = "futures do nothing unless you `.await` or poll them"]
    pub struct Budgeted<F> {
        #[pin]
        future: F,
        budget: Option<Scope>,
    }
}

impl<F> Budgeted<F> {
    pub(super) fn new(budget: Option<Scope>, future: F) -> Self {
        Self { future, budget }
    }
}

impl<F: Future> Future for Budgeted<F> {
    type Output = F::Output;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        with_budget(*this.budget, || this.future.poll(cx))
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
        future: Option<F>,
        // Created when the future first returns `Pending`: a call that
        // completes at once never touches the timer. Polled unconstrained by
        // tokio's cooperative budget, so a body that spends the budget cannot
        // hold off its own deadline (what `tokio::time::Timeout` does too).
        #[pin]
        sleep: Option<Unconstrained<Sleep>>,
        // `None` in a pass-through, which reads no clock.
        start: Option<Instant>,
        // The effective limit and two flags in one word (see `Limit`): 8
        // bytes instead of the 16 of a second `Instant` and two `bool`s.
        limit: Limit,
        function: &'static Function,
    }
}

/// The effective limit in nanoseconds (room for 146 years), whether it was
/// inherited from an enclosing budget, and whether the function answers a
/// timeout with a fail-soft value (an expected outcome, reported at INFO).
#[derive(Clone, Copy)]
struct Limit(u64);

impl Limit {
    const INHERITED: u64 = 1 << 63;
    const SOFT: u64 = 1 << 62;

    #[inline]
    fn new(limit: Duration, inherited: bool, soft: bool) -> Self {
        let nanos =
            u64::try_from(limit.as_nanos()).map_or(Self::SOFT - 1, |n| n.min(Self::SOFT - 1));
        let flag = |on: bool, bit: u64| if on { bit } else { 0 };
        Self(nanos | flag(inherited, Self::INHERITED) | flag(soft, Self::SOFT))
    }

    #[inline]
    fn nanos(self) -> u64 {
        self.0 & (Self::SOFT - 1)
    }

    #[inline]
    fn inherited(self) -> bool {
        self.0 & Self::INHERITED != 0
    }

    #[inline]
    fn soft(self) -> bool {
        self.0 & Self::SOFT != 0
    }
}

impl<F: Future> Timeout<F> {
    /// `future` under a deadline `limit` from now; `soft` when the function
    /// answers a timeout with a fail-soft value, reported at INFO.
    #[inline(always)]
    pub(super) fn new(function: &'static Function, limit: Duration, future: F, soft: bool) -> Self {
        let start = Instant::now();
        // Limits too large for the clock mean "no limit", as in tokio.
        let own = start
            .checked_add(limit)
            .unwrap_or_else(|| start + Duration::from_secs(86400 * 365 * 30));
        let (deadline, inherited) = match current() {
            Some(enclosing) if enclosing < own => (enclosing, true),
            _ => (own, false),
        };
        let limit = deadline.saturating_duration_since(start);
        Self {
            future: Some(future),
            sleep: None,
            start: Some(start),
            limit: Limit::new(limit, inherited, soft),
            function,
        }
    }

    /// A future that only forwards to `future`: no deadline, no budget.
    #[inline(always)]
    pub(super) fn passthrough(function: &'static Function, future: F) -> Self {
        Self {
            future: Some(future),
            sleep: None,
            start: None,
            limit: Limit::new(Duration::ZERO, false, false),
            function,
        }
    }
}

impl<F> Timeout<F> {
    #[inline]
    fn deadline(start: Instant, limit: Limit) -> Instant {
        start + Duration::from_nanos(limit.nanos())
    }
}

impl<F: Future> Future for Timeout<F> {
    type Output = Result<F::Output, TimeoutError>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let address = self.as_ref().get_ref() as *const Self as usize;
        let mut this = self.project();
        let Some(future) = this.future.as_mut().as_pin_mut() else {
            panic!("`Timeout` polled after completion");
        };
        let Some(start) = *this.start else {
            return future.poll(cx).map(Ok); // a pass-through
        };
        let limit = *this.limit;
        let deadline = Self::deadline(start, limit);
        // An inherited deadline is the enclosing scope's, when polled inside
        // it (a future moved elsewhere keeps the deadline, as its own).
        let budget = match limit.inherited().then(scope).flatten() {
            Some(enclosing) if enclosing.deadline == deadline => enclosing,
            _ => Scope {
                deadline,
                owner: this.function,
                id: address,
            },
        };
        let owner = budget.owner;
        let budget = Some(budget);
        if let Poll::Ready(output) = with_budget(budget, || future.poll(cx)) {
            this.future.set(None);
            return Poll::Ready(Ok(output));
        }
        if this.sleep.is_none() {
            this.sleep
                .set(Some(unconstrained(timer(this.function.path(), deadline))));
        }
        let sleep = this.sleep.as_pin_mut().expect("set above");
        match sleep.poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(()) => Poll::Ready(Err(expire(
                this.future,
                Expired {
                    function: this.function,
                    owner,
                    scope: budget.map_or(address, |scope| scope.id),
                },
                start,
                limit,
            ))),
        }
    }
}

/// Ends a call whose deadline passed: reads what ran inside it, drops its
/// body, and builds the error. Out of line, so the poll stays small.
#[cold]
#[inline(never)]
fn expire<F>(
    future: Pin<&mut Option<F>>,
    expired: Expired,
    start: Instant,
    limit: Limit,
) -> TimeoutError {
    // Read while the calls inside are still in flight.
    let chain = crate::watchdog::chain_inside(expired.scope);
    // Dropped before the error is handed out, so that the body's
    // destructors have run when the caller sees the timeout.
    drop_expired(future, expired.function.path(), limit.inherited());
    let deadline = start + Duration::from_nanos(limit.nanos());
    self::expired(
        expired,
        chain,
        start,
        deadline,
        limit.inherited(),
        limit.soft(),
    )
}

/// The deadline's timer, created when the body first waits. Outside a tokio
/// runtime, that is a panic that names the function and what it needs,
/// rather than tokio's general one.
#[inline]
#[track_caller]
fn timer(function: &'static str, deadline: Instant) -> Sleep {
    thread_local! {
        // This thread has been seen inside a runtime: asking tokio again
        // clones its handle, a pair of atomic operations on every call that
        // waits. A thread that later leaves its runtime gets tokio's own
        // panic instead of this one.
        static IN_RUNTIME: Cell<bool> = const { Cell::new(false) };
    }
    if !IN_RUNTIME.get() {
        check_runtime(function);
        IN_RUNTIME.set(true);
    }
    sleep_until(deadline)
}

#[cold]
#[inline(never)]
#[track_caller]
fn check_runtime(function: &'static str) {
    if tokio::runtime::Handle::try_current().is_err() {
        panic!(
            "`{function}` waited under a deadline outside a tokio runtime; deadlines need a tokio \
             runtime with timers enabled (`#[tokio::main]`, `#[tokio::test]`, or a runtime built with \
             `enable_time()`)"
        );
    }
}

/// Builds the error and reports it; out of line so the success path stays small.
/// Whose call expired, and whose deadline it was.
struct Expired {
    function: &'static Function,
    owner: &'static Function,
    /// The identity of the deadline that fired (see [`Scope::id`]).
    scope: usize,
}

fn expired(
    expired: Expired,
    chain: Option<crate::watchdog::Chain>,
    start: Instant,
    deadline: Instant,
    inherited: bool,
    soft: bool,
) -> TimeoutError {
    let function = expired.function.path();
    let owner = expired.owner.path();
    let limit = deadline.saturating_duration_since(start);
    let elapsed = start.elapsed();
    let (limit_ms, elapsed_ms) = (millis(limit), millis(elapsed));
    let chain_text = chain.as_ref().map(|chain| chain.to_string());
    let chain_text = chain_text.as_deref().unwrap_or("");
    if soft {
        tracing::info!(
            function,
            limit_ms,
            elapsed_ms,
            inherited,
            owner,
            chain = chain_text,
            "deadline exceeded; returning the fail-soft value"
        );
    } else if let Some(suppressed) = may_warn(function, Warning::Timeout) {
        tracing::warn!(
            function,
            limit_ms,
            elapsed_ms,
            inherited,
            owner,
            chain = chain_text,
            suppressed,
            "deadline exceeded"
        );
    }
    let error = TimeoutError::new(function, limit, elapsed, inherited)
        .with_owner(owner)
        .with_chain(chain);
    crate::watchdog::escalation::record(expired.function, crate::watchdog::Cause::Timeout, || {
        (format!("{error:#}"), chain_text.to_owned())
    });
    error
}

impl<F> std::fmt::Debug for Budgeted<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Budgeted")
            .field("budget", &self.budget.map(|scope| scope.deadline))
            .finish_non_exhaustive()
    }
}

impl<F> std::fmt::Debug for Timeout<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut debug = f.debug_struct("Timeout");
        debug.field("function", &self.function.path());
        if let Some(start) = self.start {
            debug
                .field("deadline", &Self::deadline(start, self.limit))
                .field("inherited", &self.limit.inherited());
        }
        debug
            .field("completed", &self.future.is_none())
            .finish_non_exhaustive()
    }
}
