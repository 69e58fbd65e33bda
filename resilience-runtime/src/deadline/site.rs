//! The deadline of one `#[timeout_async]` function, as the policy in force
//! says.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use super::adaptive::Adaptive;
use super::{Timeout, TimeoutError};
use crate::breaker::State;
use crate::policy::{Gate, Kind, at_defaults, gate, kind_off};
use crate::registry::{Function, LayerSite};
#[cfg(feature = "metrics")]
use crate::telemetry;

/// One `#[timeout_async]` function, as its expansion declares it.
pub struct TimeoutSite {
    function: &'static Function,
    pub(crate) policy: Option<&'static str>,
    limit: Duration,
    /// The function returns a fail-soft value (`on_timeout = …`).
    fail_soft: bool,
    /// How the limit adapts, when it does: `limit` is then its ceiling.
    adaptive: Option<Adaptive>,
    /// The learned limit, in nanoseconds; 0 before the first.
    learned: AtomicU64,
    /// `resilience_calls_total`: success, timeout, fail_soft.
    #[cfg(feature = "metrics")]
    calls: telemetry::Cached<[metrics::Counter; 3]>,
}

impl TimeoutSite {
    /// The site of `function`, with its limit and `policy = "…"` name;
    /// `fail_soft` when it answers a timeout with an `on_timeout` value;
    /// with `adaptive`, `limit` is the ceiling of a learned one.
    pub const fn new(
        function: &'static Function,
        policy: Option<&'static str>,
        limit: Duration,
        fail_soft: bool,
        adaptive: Option<Adaptive>,
    ) -> Self {
        Self {
            function,
            policy,
            limit,
            fail_soft,
            adaptive,
            learned: AtomicU64::new(0),
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
            self.written_or_learned()
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
            Some(self.written_or_learned())
        } else {
            self.limit_by_policy()
        }
    }

    /// The written limit, or the learned one of an adaptive timeout.
    #[inline(always)]
    fn written_or_learned(&self) -> Duration {
        let Some(adaptive) = &self.adaptive else {
            return self.limit;
        };
        match self.learned.load(Relaxed) {
            0 => self.limit,
            // Learned under a policy's lower floor, it may be below this one.
            nanos => Duration::from_nanos(nanos).max(adaptive.floor.min(self.limit)),
        }
    }

    /// The limit learned so far, as learned (under the bounds in force
    /// then); `None` before the first.
    fn learned(&self) -> Option<Duration> {
        match self.learned.load(Relaxed) {
            0 => None,
            nanos => Some(Duration::from_nanos(nanos)),
        }
    }

    /// Whether its limit adapts (`adaptive(...)`).
    pub(crate) fn is_adaptive(&self) -> bool {
        self.adaptive.is_some()
    }

    #[cold]
    fn limit_by_policy(&self) -> Option<Duration> {
        match self.by_policy()? {
            (Some(limit), _) => Some(limit),
            // The bounds in force: a policy's floor may be lower than the
            // written one.
            (None, Some(adaptive)) => Some(self.learned().map_or(self.limit, |learned| {
                learned.clamp(adaptive.floor.min(self.limit), self.limit)
            })),
            (None, None) => Some(self.limit),
        }
    }

    /// What the policy in force says: `None` when switched off; else a
    /// limit it sets, and how the limit adapts (`None` when it does not,
    /// or a policy holds it at the ceiling).
    #[cold]
    fn by_policy(&self) -> Option<(Option<Duration>, Option<Adaptive>)> {
        if kind_off(Kind::Timeout) {
            return None;
        }
        let base = self.adaptive;
        match gate(Kind::Timeout, &self.keys(), |e| {
            (None, (e.timeout.map(|limit| limit.0), e.adaptive))
        }) {
            Gate::Defaults => Some((None, base)),
            Gate::Override((limit, entry)) => {
                let adaptive = match (base, entry) {
                    (Some(_), Some(entry)) if entry.enabled == Some(false) => None,
                    (Some(base), Some(entry)) => Some(base.with(&entry)),
                    (base, _) => base,
                };
                Some((limit, adaptive))
            }
            Gate::Off => None,
        }
    }

    /// The function's window moved: an adaptive limit follows its latency,
    /// unless learning is paused (see [`adaptive`](super::adaptive)), and
    /// `resilience_timeout_limit_seconds` follows the limit in force.
    #[cold]
    pub(crate) fn learn(&self, monitor: &crate::monitor::Site) {
        if self.adaptive.is_none() {
            return;
        }
        self.relearn(monitor);
        #[cfg(feature = "metrics")]
        if let Some(limit) = self.limit_in_force() {
            crate::telemetry::timeout_limit(self.function.label(), limit);
        }
    }

    fn relearn(&self, monitor: &crate::monitor::Site) {
        let Some(adaptive) = (if at_defaults() {
            self.adaptive
        } else {
            match self.by_policy() {
                Some((None, adaptive)) => adaptive,
                _ => None,
            }
        }) else {
            return;
        };
        if self.breaker_open() {
            return;
        }
        let Some((calls, nanos)) = monitor.quantile(adaptive.percentile / 100.0) else {
            return;
        };
        if calls < u64::from(adaptive.min_calls) {
            return;
        }
        let current = self.learned().unwrap_or(self.limit);
        let percentile = Duration::from_nanos(nanos);
        let next = adaptive.next(current, percentile, self.limit);
        self.learned.store(
            u64::try_from(next.as_nanos()).unwrap_or(u64::MAX).max(1),
            Relaxed,
        );
        let function = self.function.path();
        if next.abs_diff(current).as_secs_f64() > 0.1 * current.as_secs_f64() {
            tracing::debug!(
                function,
                limit_ms = millis(next),
                previous_ms = millis(current),
                percentile_ms = millis(percentile),
                calls,
                "adaptive timeout limit changed"
            );
        }
    }

    /// Whether the function's circuit breaker is open.
    fn breaker_open(&self) -> bool {
        self.function.layers().iter().any(|layer| {
            matches!(layer, LayerSite::Breaker(site)
                if matches!(site.breaker().state(), State::Open | State::ForcedOpen))
        })
    }
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}
