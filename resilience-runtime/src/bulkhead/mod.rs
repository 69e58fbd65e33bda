//! Bulkheads, for [`#[bulkhead]`](crate::bulkhead): at most
//! `max_concurrent` calls of a function run at once.
//!
//! A call that finds the bulkhead full waits for a place up to `max_wait`
//! (none by default), and never past its deadline budget; then it fails
//! with [`BulkheadFullError`], without running. Places are the permits of a
//! tokio [`Semaphore`](tokio::sync::Semaphore), handed out in the order
//! callers asked: a call gives its place back when it completes, when it is
//! dropped and when it panics, and a caller that gave up waiting is never
//! handed one.
//!
//! Every annotated function has a bulkhead of its own, unless it shares one
//! on purpose with `name = "…"`: then the places of the first function that
//! registered it (or of the policy file, under the bulkhead's name) apply to
//! all of them, and each function keeps its own `max_wait`.
//!
//! ```
//! use resilience_runtime::{bulkhead, BulkheadFullError};
//!
//! #[bulkhead(max_concurrent = 2, name = "render")]
//! async fn render(page: u32) -> Result<u32, BulkheadFullError> {
//!     Ok(page)
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! assert_eq!(render(7).await, Ok(7));
//! let stats = bulkhead::stats("render").unwrap();
//! assert_eq!((stats.running(), stats.waiting(), stats.max_concurrent()), (0, 0, 2));
//! # }
//! ```

pub(crate) mod site;

use std::time::Duration;

pub use site::{Settings, Stats};

/// A call was rejected because its bulkhead was full for as long as it
/// could wait.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "bulkhead `{bulkhead}` is full: {max_concurrent} calls running{}",
    if waited.is_zero() { String::new() } else { format!("; waited {waited:?}") }
)]
pub struct BulkheadFullError {
    bulkhead: &'static str,
    max_concurrent: u32,
    waited: Duration,
}

impl BulkheadFullError {
    pub(crate) fn new(bulkhead: &'static str, max_concurrent: u32, waited: Duration) -> Self {
        Self {
            bulkhead,
            max_concurrent,
            waited,
        }
    }

    /// The bulkhead's name: its `name = "…"`, or the function's path.
    pub fn bulkhead(&self) -> &'static str {
        self.bulkhead
    }

    /// How many calls it lets run at once.
    pub fn max_concurrent(&self) -> u32 {
        self.max_concurrent
    }

    /// How long the call waited for a place before it gave up.
    pub fn waited(&self) -> Duration {
        self.waited
    }
}

/// `std::io::Result<T>` works as the return type of a guarded function.
impl From<BulkheadFullError> for std::io::Error {
    fn from(error: BulkheadFullError) -> Self {
        std::io::Error::new(std::io::ErrorKind::ResourceBusy, error)
    }
}

/// How the return type of a `#[bulkhead]` function reports a rejection.
#[diagnostic::on_unimplemented(
    message = "`#[bulkhead]` cannot report a rejection through `{Self}`",
    label = "this return type has no way to carry a `BulkheadFullError`",
    note = "return `Result<T, E>` and add `impl From<resilience_runtime::BulkheadFullError> for E`"
)]
pub trait FromBulkheadFull {
    /// The value of a rejected call.
    fn from_bulkhead_full(error: BulkheadFullError) -> Self;
}

#[diagnostic::do_not_recommend]
impl<T, E: From<BulkheadFullError>> FromBulkheadFull for Result<T, E> {
    #[inline]
    fn from_bulkhead_full(error: BulkheadFullError) -> Self {
        Err(E::from(error))
    }
}

/// How full the bulkhead `name` (a `name = "…"`, or a function's path) is
/// now; `None` when there is no such bulkhead.
pub fn stats(name: &str) -> Option<Stats> {
    site::find(name).map(|bulkhead| bulkhead.stats())
}
