//! The deadline of one `#[timeout_async]` function, as the policy in force
//! says.

use std::time::Duration;

use super::{Timeout, TimeoutError};
use crate::policy::{Gate, Kind, at_defaults, gate, kind_off};
use crate::registry::Function;
#[cfg(feature = "metrics")]
use crate::telemetry;

/// One `#[timeout_async]` function, as its expansion declares it.
pub struct TimeoutSite {
    function: &'static Function,
    pub(crate) policy: Option<&'static str>,
    limit: Duration,
    /// The function returns a fail-soft value (`on_timeout = …`).
    fail_soft: bool,
    /// `resilience_calls_total`: success, timeout, fail_soft.
    #[cfg(feature = "metrics")]
    calls: telemetry::Cached<[metrics::Counter; 3]>,
}

impl TimeoutSite {
    /// The site of `function`, with its limit and `policy = "…"` name;
    /// `fail_soft` when it answers a timeout with an `on_timeout` value.
    pub const fn new(
        function: &'static Function,
        policy: Option<&'static str>,
        limit: Duration,
        fail_soft: bool,
    ) -> Self {
        Self {
            function,
            policy,
            limit,
            fail_soft,
            #[cfg(feature = "metrics")]
            calls: telemetry::Cached::new(),
        }
    }

    /// Counts the outcome of one call, and passes it on.
    #[inline]
    pub fn counted<T>(&'static self, result: Result<T, TimeoutError>) -> Result<T, TimeoutError> {
        #[cfg(feature = "metrics")]
        self.calls.update(
            |recorder| {
                let outcomes = ["success", "timeout", "fail_soft"];
                telemetry::calls(recorder, self.function.label(), "timeout", outcomes)
            },
            |calls| {
                let outcome = match &result {
                    Ok(_) => 0,
                    Err(_) if self.fail_soft => 2,
                    Err(_) => 1,
                };
                calls[outcome].increment(1);
            },
        );
        result
    }

    /// Runs `future` under this site's deadline, as the policy in force says.
    // Always: a `run` left out of line moves the body's future into it.
    #[inline(always)]
    pub fn run<F: IntoFuture>(&'static self, future: F) -> Timeout<F::IntoFuture> {
        let function = self.function;
        let future = future.into_future();
        let limit = if at_defaults() {
            self.limit
        } else {
            match self.limit_by_policy() {
                Some(limit) => limit,
                None => return Timeout::passthrough(function, future),
            }
        };
        Timeout::new(function, limit, future, self.fail_soft)
    }

    /// The policy keys that reach it: its function's path and `policy` name.
    pub(crate) fn keys(&self) -> [Option<&'static str>; 2] {
        [Some(self.function.path()), self.policy]
    }

    /// The limit in force; `None` when switched off.
    pub(crate) fn limit_in_force(&self) -> Option<Duration> {
        if at_defaults() {
            Some(self.limit)
        } else {
            self.limit_by_policy()
        }
    }

    #[cold]
    fn limit_by_policy(&self) -> Option<Duration> {
        if kind_off(Kind::Timeout) {
            return None;
        }
        match gate(Kind::Timeout, &self.keys(), |e| {
            (None, e.timeout.map(|limit| limit.0))
        }) {
            Gate::Defaults | Gate::Override(None) => Some(self.limit),
            Gate::Override(Some(limit)) => Some(limit),
            Gate::Off => None,
        }
    }
}
