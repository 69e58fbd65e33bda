//! The state of one call of a `#[retry]` function.

use std::time::Duration;

use super::{Backoff, RetryOutput};

/// What `#[retry(...)]` was asked for.
#[derive(Debug, Clone, Copy)]
pub struct RetryOptions {
    /// Attempts in all, the first included.
    pub attempts: u32,
    /// The delays between them.
    pub backoff: Backoff,
}

/// One annotated function.
pub struct RetrySite {
    function: &'static str,
    options: RetryOptions,
}

impl RetrySite {
    /// The site of `function`, as the expansion declares it.
    pub const fn new(function: &'static str, options: RetryOptions) -> Self {
        Self { function, options }
    }
}

/// Whether to run another attempt.
pub enum Next {
    /// Run the body again.
    Retry,
    /// Return this attempt's output.
    Stop,
}

/// `None` when the attempt succeeded, else whether `when` deems its error
/// worth another attempt.
#[inline]
pub fn outcome<R: RetryOutput>(output: &R, when: impl FnOnce(&R::Error) -> bool) -> Option<bool> {
    output.failure().map(when)
}

/// The default `when`: every error is worth another attempt.
#[inline]
pub fn any_error<E>(_: &E) -> bool {
    true
}

/// Counts attempts and waits between them.
pub struct Retrier {
    site: &'static RetrySite,
    failures: u32,
}

impl Retrier {
    /// The state of one call.
    #[inline]
    pub fn new(site: &'static RetrySite) -> Self {
        Self { site, failures: 0 }
    }

    /// Takes an attempt's outcome: `None` when it succeeded, else whether its
    /// error is worth another attempt. Waits before the next attempt, if any.
    #[inline]
    pub async fn next(&mut self, failure: Option<bool>) -> Next {
        match failure {
            None => Next::Stop,
            Some(retryable) => self.after_failure(retryable).await,
        }
    }

    async fn after_failure(&mut self, retryable: bool) -> Next {
        self.failures += 1;
        let site = self.site;
        let attempts = self.failures;
        if !retryable {
            return Next::Stop;
        }
        if attempts >= site.options.attempts {
            tracing::warn!(
                function = site.function,
                attempts,
                "giving up: no attempts left"
            );
            return Next::Stop;
        }
        let delay = site.options.backoff.delay(attempts, fastrand::f64());
        if let Some(left) = crate::deadline::remaining()
            && delay >= left
        {
            tracing::warn!(
                function = site.function,
                attempts,
                delay_ms = millis(delay),
                budget_left_ms = millis(left),
                "giving up: the next delay would outlast the deadline budget"
            );
            return Next::Stop;
        }
        tracing::debug!(
            function = site.function,
            attempt = attempts + 1,
            delay_ms = millis(delay),
            "retrying"
        );
        tokio::time::sleep(delay).await;
        Next::Retry
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
