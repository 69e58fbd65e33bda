//! The state of one call of a `#[retry]` function.

use std::time::Duration;

use super::{Backoff, Growth, Jitter};
use crate::breaker::CircuitOpenError;
use crate::events::{Shown, Warning, may_warn, millis};
use crate::policy::{BackoffKind, Gate, JitterKind, Kind, at_defaults, gate, kind_off};
use crate::registry::Function;
#[cfg(feature = "metrics")]
use crate::telemetry;

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
    function: &'static Function,
    pub(crate) policy: Option<&'static str>,
    options: RetryOptions,
    /// `resilience_calls_total` (success, failure) and
    /// `resilience_retries_total`.
    #[cfg(feature = "metrics")]
    counters: telemetry::Cached<([metrics::Counter; 2], metrics::Counter)>,
}

impl RetrySite {
    /// The site of `function`, as the expansion declares it.
    pub const fn new(
        function: &'static Function,
        policy: Option<&'static str>,
        options: RetryOptions,
    ) -> Self {
        Self {
            function,
            policy,
            options,
            #[cfg(feature = "metrics")]
            counters: telemetry::Cached::new(),
        }
    }

    /// Counts a call that ended (0 success, 1 failure), or a retry.
    #[inline]
    fn count(&'static self, _counted: Counted) {
        #[cfg(feature = "metrics")]
        self.counters.update(
            |recorder| {
                let function = self.function.label();
                (
                    telemetry::calls(recorder, function, "retry", ["success", "failure"]),
                    telemetry::counter(recorder, telemetry::RETRIES, "function", function),
                )
            },
            |(calls, retries)| match _counted {
                Counted::Success => calls[0].increment(1),
                Counted::Failure => calls[1].increment(1),
                Counted::Retry => retries.increment(1),
            },
        );
    }

    /// The policy keys that reach it: its function's path and `policy` name.
    pub(crate) fn keys(&self) -> [Option<&'static str>; 2] {
        [Some(self.function.path()), self.policy]
    }

    /// The options of one call, as the policy in force says.
    #[inline]
    pub(crate) fn options(&self) -> RetryOptions {
        if at_defaults() {
            return self.options;
        }
        if kind_off(Kind::Retry) {
            return RetryOptions {
                attempts: 1,
                ..self.options
            };
        }
        self.options_from_policy()
    }

    #[cold]
    fn options_from_policy(&self) -> RetryOptions {
        match gate(Kind::Retry, &self.keys(), |e| {
            let retry = e.retry.unwrap_or_default();
            (retry.enabled, retry)
        }) {
            Gate::Defaults => self.options,
            Gate::Off => RetryOptions {
                attempts: 1,
                ..self.options
            },
            Gate::Override(retry) => {
                let base = self.options;
                RetryOptions {
                    attempts: retry.attempts.map_or(base.attempts, |a| a.0),
                    backoff: Backoff {
                        growth: match retry.backoff {
                            Some(BackoffKind::Constant) => Growth::Constant,
                            Some(BackoffKind::Exponential) => Growth::Exponential,
                            None => base.backoff.growth,
                        },
                        base: retry.base.map_or(base.backoff.base, |d| d.0),
                        factor: retry.factor.map_or(base.backoff.factor, |f| f.0),
                        max_delay: retry.max_delay.map_or(base.backoff.max_delay, |d| d.0),
                        jitter: match retry.jitter {
                            Some(JitterKind::None) => Jitter::None,
                            Some(JitterKind::Full) => Jitter::Full,
                            Some(JitterKind::Equal) => Jitter::Equal,
                            None => base.backoff.jitter,
                        },
                    },
                }
            }
        }
    }
}

/// Whether to run another attempt.
pub enum Next {
    /// Run the body again after this delay.
    Wait(Duration),
    /// Return this attempt's output.
    Stop,
}

/// The default `when`: every error is worth another attempt.
#[inline]
pub fn any_error<E>(_: &E) -> bool {
    true
}

thread_local! {
    // The attempt a retrier is starting on this thread: its function's id
    // and the attempt, for the frame of the body it is about to poll.
    static ATTEMPT: std::cell::Cell<(u32, u32)> = const { std::cell::Cell::new((0, 0)) };
}

/// The attempt a retrier of `function` just started on this thread, taken;
/// 0 when none did.
pub(crate) fn attempt_of(function: &'static Function) -> u32 {
    match ATTEMPT.take() {
        (id, attempt) if id == function.id() => attempt,
        _ => 0,
    }
}

/// Counts attempts and waits between them. The options are fixed when the
/// call starts: a policy loaded meanwhile applies to later calls.
pub struct Retrier {
    site: &'static RetrySite,
    options: RetryOptions,
    failures: u32,
    /// Set when the last attempt was rejected by an open circuit breaker:
    /// when it will let a probe through, if it will by itself.
    rejection: Option<Option<Duration>>,
    /// A rate limiter's `retry_after` for the attempt it rejected.
    limited: Option<Duration>,
}

impl Retrier {
    /// The state of one call.
    #[inline]
    pub fn new(site: &'static RetrySite) -> Self {
        Self {
            site,
            options: site.options(),
            failures: 0,
            rejection: None,
            limited: None,
        }
    }

    /// An attempt starts: the body's frame, if tracked, records which.
    #[inline]
    pub fn attempt(&self) {
        use crate::attention::{Reason, has, word};
        if has(word(), Reason::Frames) {
            ATTEMPT.set((self.site.function.id(), self.failures + 1));
        }
    }

    /// The attempt is being rejected by an open circuit breaker.
    #[cold]
    pub fn rejected(&mut self, error: &CircuitOpenError) {
        self.rejection = Some(error.retry_after());
    }

    /// The attempt is being rejected by a rate limiter: the next one waits
    /// at least until a permit is free.
    #[cold]
    pub fn limited(&mut self, error: &crate::RateLimitedError) {
        self.limited = Some(error.retry_after());
    }

    /// The attempt succeeded: the call ends.
    #[inline]
    pub fn succeeded(&self) {
        self.site.count(Counted::Success);
    }

    /// After a failed attempt (`retryable`: whether its `error` is worth
    /// another), the delay before the next attempt, if there is one.
    pub fn next(&mut self, retryable: bool, error: Shown<'_>) -> Next {
        let next = self.decide(retryable, error);
        self.site.count(match next {
            Next::Wait(_) => Counted::Retry,
            Next::Stop => Counted::Failure,
        });
        next
    }

    fn decide(&mut self, retryable: bool, error: Shown<'_>) -> Next {
        self.failures += 1;
        let function = self.site.function.path();
        let attempts = self.failures;
        if !retryable {
            return Next::Stop;
        }
        if attempts >= self.options.attempts {
            if self.options.attempts > 1
                && let Some(suppressed) = may_warn(function, Warning::GivingUp)
            {
                tracing::warn!(function, attempts, %error, suppressed, "giving up: no attempts left");
            }
            return Next::Stop;
        }
        let delay = self.options.backoff.delay(attempts, fastrand::f64());
        let delay = self.limited.take().map_or(delay, |after| delay.max(after));
        if let Some(retry_after) = self.rejection.take()
            && retry_after.is_none_or(|after| after > delay)
        {
            // The breaker would reject the next attempt too.
            if let Some(suppressed) = may_warn(function, Warning::GivingUp) {
                tracing::warn!(
                    function,
                    attempts,
                    %error,
                    retry_after_ms = retry_after.map(millis),
                    delay_ms = millis(delay),
                    suppressed,
                    "giving up: the circuit breaker is open beyond the next delay"
                );
            }
            return Next::Stop;
        }
        if let Some(left) = crate::deadline::remaining()
            && delay >= left
        {
            if let Some(suppressed) = may_warn(function, Warning::GivingUp) {
                tracing::warn!(
                    function,
                    attempts,
                    %error,
                    delay_ms = millis(delay),
                    budget_left_ms = millis(left),
                    suppressed,
                    "giving up: the next delay would outlast the deadline budget"
                );
            }
            return Next::Stop;
        }
        tracing::debug!(
            function,
            attempt = attempts + 1,
            %error,
            delay_ms = millis(delay),
            "retrying"
        );
        Next::Wait(delay)
    }
}

/// What a retry site counts.
#[derive(Clone, Copy)]
enum Counted {
    Success,
    Failure,
    Retry,
}

/// Waits between two attempts.
pub async fn wait(delay: Duration) {
    tokio::time::sleep(delay).await;
}
