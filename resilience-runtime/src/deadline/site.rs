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
    known: Known,
}

impl TimeoutSite {
    /// The site of `function`, with its limit and `policy = "…"` name.
    pub const fn new(
        function: &'static str,
        policy: Option<&'static str>,
        limit: Duration,
    ) -> Self {
        Self {
            function,
            policy,
            limit,
            known: Known::new(),
        }
    }

    /// Runs `future` under this site's deadline, as the policy in force says.
    #[inline]
    pub fn run<F: IntoFuture>(&'static self, future: F) -> Timeout<F::IntoFuture> {
        self.known.note(self.function, self.policy);
        let future = future.into_future();
        if at_defaults() {
            return Timeout::new(self.function, self.limit, future);
        }
        if kind_off(Kind::Timeout) {
            return Timeout::passthrough(self.function, future);
        }
        match gate(Kind::Timeout, &[Some(self.function), self.policy], |e| {
            (None, e.timeout.map(|limit| limit.0))
        }) {
            Gate::Defaults | Gate::Override(None) => {
                Timeout::new(self.function, self.limit, future)
            }
            Gate::Override(Some(limit)) => Timeout::new(self.function, limit, future),
            Gate::Off => Timeout::passthrough(self.function, future),
        }
    }
}
