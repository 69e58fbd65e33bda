//! The deadline of one `#[timeout_async]` function, as the policy in force
//! says.

use std::time::Duration;

use super::Timeout;
use crate::policy::{Gate, Kind, Known, at_defaults, gate, kind_off};

/// One `#[timeout_async]` function, as its expansion declares it.
pub struct TimeoutSite {
    function: &'static str,
    policy: Option<&'static str>,
    limit: Duration,
    /// The function returns a fail-soft value (`on_timeout = …`).
    fail_soft: bool,
    known: Known,
}

impl TimeoutSite {
    /// The site of `function`, with its limit and `policy = "…"` name;
    /// `fail_soft` when it answers a timeout with an `on_timeout` value.
    pub const fn new(
        function: &'static str,
        policy: Option<&'static str>,
        limit: Duration,
        fail_soft: bool,
    ) -> Self {
        Self {
            function,
            policy,
            limit,
            fail_soft,
            known: Known::new(),
        }
    }

    /// Runs `future` under this site's deadline, as the policy in force says.
    #[inline]
    pub fn run<F: IntoFuture>(&'static self, future: F) -> Timeout<F::IntoFuture> {
        self.known.note(self.function, self.policy);
        let future = future.into_future();
        if at_defaults() {
            return Timeout::new(self.function, self.limit, future).fail_soft(self.fail_soft);
        }
        if kind_off(Kind::Timeout) {
            return Timeout::passthrough(self.function, future);
        }
        let limit = match gate(Kind::Timeout, &[Some(self.function), self.policy], |e| {
            (None, e.timeout.map(|limit| limit.0))
        }) {
            Gate::Defaults | Gate::Override(None) => self.limit,
            Gate::Override(Some(limit)) => limit,
            Gate::Off => return Timeout::passthrough(self.function, future),
        };
        Timeout::new(self.function, limit, future).fail_soft(self.fail_soft)
    }
}
