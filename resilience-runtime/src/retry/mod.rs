//! Retries with backoff, for [`#[retry]`](crate::retry).
//!
//! Each attempt re-runs the function's body. Between attempts the function
//! waits a delay from its [`Backoff`] schedule, never longer than the deadline
//! budget it has left (see [`deadline`](crate::deadline)): when the next delay
//! would outlast the budget, it gives up and returns the last error.
//!
//! Jitter is drawn from a per-thread generator; [`seed_jitter`] makes it
//! repeatable, for tests.

mod backoff;
pub(crate) mod run;

pub use backoff::{Backoff, Growth, Jitter};

/// Seeds this thread's jitter generator, so that delays repeat from run to run.
///
/// ```
/// resilience_runtime::retry::seed_jitter(7);
/// ```
pub fn seed_jitter(seed: u64) {
    fastrand::seed(seed);
}

/// How the return type of a `#[retry]` function reports a failed attempt.
#[diagnostic::on_unimplemented(
    message = "`#[retry]` needs to know when an attempt failed, but `{Self}` is not a `Result`",
    label = "retries need a `Result` return type",
    note = "return `Result<T, E>`; every `Err` is retried, or those for which `when = path::to::predicate` returns true"
)]
pub trait RetryOutput {
    /// The error of a failed attempt.
    type Error;

    /// The error, if this attempt failed.
    fn failure(&self) -> Option<&Self::Error>;
}

#[diagnostic::do_not_recommend]
impl<T, E> RetryOutput for Result<T, E> {
    type Error = E;

    #[inline]
    fn failure(&self) -> Option<&E> {
        self.as_ref().err()
    }
}
