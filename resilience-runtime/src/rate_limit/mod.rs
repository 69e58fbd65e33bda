//! Rate limits, for [`#[rate_limit]`](crate::rate_limit): at most so many
//! calls a second, a minute or a given period, with a burst.
//!
//! Each limiter is a GCRA from [`governor`]: a call takes a permit if one
//! is free; if not, it may wait up to `max_wait` for the next one (none by
//! default), never past its deadline budget, and otherwise fails at once
//! with [`RateLimitedError`], which says when a permit will be free. A call
//! that waits reserves the permit it waits for: callers are served in the
//! order they asked, a call is told at once when its permit would come too
//! late, and a call dropped while it waits forfeits its permit.
//!
//! `key = argument` keeps a quota per value of that argument (per user, per
//! venue): idle keys are dropped as new ones arrive, and at most `max_keys`
//! (10 000 by default) are kept; see `docs/design.md`. `name = "…"` shares
//! one limiter (and, with `key`, one quota per key) across functions; each
//! keeps its own `max_wait`.
//!
//! ```
//! use resilience_runtime::{rate_limit, RateLimitedError};
//!
//! #[rate_limit(per_second = 2, name = "venue")]
//! async fn order() -> Result<(), RateLimitedError> {
//!     Ok(())
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! order().await.unwrap();
//! order().await.unwrap();
//! let limited = order().await.unwrap_err();
//! assert_eq!(limited.limiter(), "venue");
//! assert!(limited.retry_after() <= std::time::Duration::from_millis(500));
//! # }
//! ```

pub(crate) mod keys;
pub(crate) mod site;

pub use site::Settings;

use std::time::Duration;

/// A call was rejected because its rate limit was reached and no permit
/// would be free within the time it could wait.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("rate limit `{limiter}` reached; a permit is free again in {retry_after:?}")]
pub struct RateLimitedError {
    limiter: &'static str,
    retry_after: Duration,
}

impl RateLimitedError {
    pub(crate) fn new(limiter: &'static str, retry_after: Duration) -> Self {
        Self {
            limiter,
            retry_after,
        }
    }

    /// The limiter's name: its `name = "…"`, or the function's path.
    pub fn limiter(&self) -> &'static str {
        self.limiter
    }

    /// How long until the limiter would admit a call, as of the rejection.
    pub fn retry_after(&self) -> Duration {
        self.retry_after
    }
}

/// `std::io::Result<T>` works as the return type of a limited function.
impl From<RateLimitedError> for std::io::Error {
    fn from(error: RateLimitedError) -> Self {
        std::io::Error::new(std::io::ErrorKind::QuotaExceeded, error)
    }
}

/// How the return type of a `#[rate_limit]` function reports a rejection.
#[diagnostic::on_unimplemented(
    message = "`#[rate_limit]` cannot report a rejection through `{Self}`",
    label = "this return type has no way to carry a `RateLimitedError`",
    note = "return `Result<T, E>` and add `impl From<resilience_runtime::RateLimitedError> for E`"
)]
pub trait FromRateLimited {
    /// The value of a rejected call.
    fn from_rate_limited(error: RateLimitedError) -> Self;
}

#[diagnostic::do_not_recommend]
impl<T, E: From<RateLimitedError>> FromRateLimited for Result<T, E> {
    #[inline]
    fn from_rate_limited(error: RateLimitedError) -> Self {
        Err(E::from(error))
    }
}
