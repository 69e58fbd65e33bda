//! Deadlines with budgets that propagate into nested calls.
//!
//! Every deadline started by [`#[timeout_async]`](crate::timeout_async) or
//! [`timeout()`] becomes the *budget* of everything awaited inside it, in the
//! same task. A nested deadline gets `min(own limit, remaining budget)`; when the
//! enclosing budget is the one that fires, [`TimeoutError::inherited`] is true.
//!
//! ```
//! use std::time::Duration;
//! use resilience_runtime::{deadline, timeout, TimeoutError};
//!
//! async fn query_db() -> Result<u32, TimeoutError> {
//!     // Hand what is left of the caller's budget to a client that takes a timeout.
//!     let budget = deadline::remaining().unwrap_or(Duration::from_secs(30));
//!     timeout(budget.min(Duration::from_secs(2)), async { 42 }).await
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! assert_eq!(deadline::remaining(), None); // no deadline outside a scope
//! let rows = timeout(Duration::from_millis(500), query_db()).await;
//! assert_eq!(rows.unwrap().unwrap(), 42);
//! # }
//! ```
//!
//! The budget lives with the task that awaits it: a future handed to
//! `tokio::spawn` starts without one unless it is wrapped in [`propagate`].

pub(crate) mod adaptive;
mod error;
mod future;
pub(crate) mod site;

use std::time::Duration;

use tokio::time::Instant;

use crate::registry::Function;

pub use error::TimeoutError;
pub use future::{Budgeted, Timeout};
pub(crate) use future::{Scope, expiring, scope, with_budget};

/// How a function's return type reports a timeout.
///
/// `#[timeout_async]` without `on_timeout` returns `FromTimeout::from_timeout(err)`
/// when its deadline fires. It is implemented for every `Result<T, E>` whose error
/// converts from [`TimeoutError`], which covers `std::io::Result<T>`,
/// `anyhow::Result<T>`, `Result<T, Box<dyn Error + Send + Sync>>`, type aliases of
/// these, and your own error enums with a `From<TimeoutError>` impl (or a
/// thiserror `#[from]` variant).
#[diagnostic::on_unimplemented(
    message = "`#[timeout_async]` cannot report a timeout through `{Self}`",
    label = "this return type has no way to carry a `TimeoutError`",
    note = "return `Result<T, E>` and add `impl From<resilience_runtime::TimeoutError> for E`, or give a fail-soft value with `on_timeout = …`"
)]
pub trait FromTimeout {
    /// The value returned when the deadline fires.
    fn from_timeout(error: TimeoutError) -> Self;
}

// Not recommended, so that a missing `From` is reported as a missing
// `FromTimeout`, with the note above, rather than as rustc's general message.
#[diagnostic::do_not_recommend]
impl<T, E: From<TimeoutError>> FromTimeout for Result<T, E> {
    #[inline]
    fn from_timeout(error: TimeoutError) -> Self {
        Err(E::from(error))
    }
}

/// The deadline of the innermost enclosing scope, if any.
///
/// ```
/// # use std::time::Duration;
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use resilience_runtime::{deadline, timeout};
/// let before = tokio::time::Instant::now();
/// timeout(Duration::from_secs(1), async move {
///     let at = deadline::current().unwrap();
///     assert!(at >= before + Duration::from_secs(1));
/// })
/// .await
/// .unwrap();
/// # }
/// ```
#[inline]
pub fn current() -> Option<Instant> {
    future::current()
}

/// The budget left before the innermost enclosing deadline, if any; zero once it
/// has passed.
#[inline]
pub fn remaining() -> Option<Duration> {
    current().map(|at| at.saturating_duration_since(Instant::now()))
}

/// The limit a `#[timeout_async]` function's calls get now: the written
/// one, the one an adaptive timeout has learned, or a policy file's;
/// `None` when the function has no timeout, or timeouts are switched off
/// for it. `function` is the path errors and policy keys use.
///
/// ```
/// use std::time::Duration;
/// use resilience_runtime::{deadline, timeout_async, TimeoutError};
///
/// #[timeout_async(ms = 200, adaptive(percentile = 95, floor = "20ms", multiplier = 1.5))]
/// async fn quote() -> Result<f64, TimeoutError> {
///     Ok(101.5)
/// }
///
/// // A cold start uses the ceiling: the written limit.
/// let path = concat!(module_path!(), "::quote");
/// assert_eq!(deadline::limit_in_force(path), Some(Duration::from_millis(200)));
/// ```
pub fn limit_in_force(function: &str) -> Option<Duration> {
    crate::registry::functions()
        .filter(|f| f.path() == function)
        .flat_map(|f| f.layers())
        .find_map(|layer| match layer {
            crate::registry::LayerSite::Timeout(site) => Some(site),
            _ => None,
        })
        .and_then(|site| site.limit_in_force())
}

/// Carries the current budget into a future that will run elsewhere, typically
/// one handed to `tokio::spawn`.
///
/// Spawned tasks do not inherit a budget silently. Inside the propagated future,
/// [`current`], [`remaining`] and nested deadlines see the budget of the scope
/// `propagate` was called in. It does not cut the future short by itself: wrap it
/// in [`timeout()`] for that.
///
/// ```
/// # use std::time::Duration;
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use resilience_runtime::{deadline, timeout};
/// timeout(Duration::from_secs(1), async {
///     let carried = tokio::spawn(deadline::propagate(async { deadline::remaining() }));
///     let bare = tokio::spawn(async { deadline::remaining() });
///     assert!(carried.await.unwrap().is_some());
///     assert!(bare.await.unwrap().is_none());
/// })
/// .await
/// .unwrap();
/// # }
/// ```
pub fn propagate<F: IntoFuture>(future: F) -> Budgeted<F::IntoFuture> {
    Budgeted::new(future::scope(), future.into_future())
}

/// Runs `future` with a deadline `limit` from now, nested in any enclosing budget.
///
/// The clock starts when `timeout` is called, as with `tokio::time::timeout`.
/// Errors report the function `resilience_runtime::timeout`. The kill switch
/// for timeouts (`RESILIENCE_DISABLE=timeout` or `all`, or a policy file's
/// `disabled_kinds`) makes it a pass-through too.
///
/// ```
/// # use std::time::Duration;
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// use resilience_runtime::timeout;
/// let slow = tokio::time::sleep(Duration::from_secs(10));
/// let err = timeout(Duration::from_secs(1), slow).await.unwrap_err();
/// assert!(!err.inherited());
/// assert_eq!(err.elapsed(), Duration::from_secs(1));
/// # }
/// ```
pub fn timeout<F: IntoFuture>(limit: Duration, future: F) -> Timeout<F::IntoFuture> {
    if crate::policy::kind_off(crate::policy::Kind::Timeout) {
        return Timeout::passthrough(&TIMEOUT, future.into_future());
    }
    Timeout::new(&TIMEOUT, limit, future.into_future(), false)
}

/// The function `timeout()` reports. Not registered: it is no annotated
/// function, and has no layers.
static TIMEOUT: Function = Function::new("resilience_runtime::timeout", "timeout", false, &[]);

/// [`timeout()`] for the limits that are part of a program's logic (a
/// task's wait, a shutdown's grace, a pipeline's budget), which the kill
/// switch leaves in force.
pub(crate) fn within<F: IntoFuture>(limit: Duration, future: F) -> Timeout<F::IntoFuture> {
    Timeout::new(&TIMEOUT, limit, future.into_future(), false)
}
