//! One circuit breaker: the state machine of [`machine`](super::machine)
//! with a clock, settings and events.

use std::time::Duration;

use tokio::time::Instant;

use super::CircuitOpenError;
use super::machine::{Admission, Limits, MAX_PROBES, Machine, State, Ticket, Transition};
use crate::registry::Function;

/// The settings of a circuit breaker: what `#[circuit_breaker(...)]` was
/// asked for, as a policy file may override it.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct Settings {
    /// Open when at least this share of the window failed.
    pub failure_rate: f64,
    /// How many recent calls the window holds (1 to 64).
    pub window: u32,
    /// No decision before this many calls are in the window.
    pub min_calls: u32,
    /// How long to stay open before probing.
    pub open_for: Duration,
    /// Calls admitted at a time while half-open.
    pub half_open_probes: u32,
    /// A call slower than this counts as a failure.
    pub slow_call: Option<Duration>,
}

impl Settings {
    /// What an expansion declares.
    #[doc(hidden)]
    pub const fn new(
        failure_rate: f64,
        window: u32,
        min_calls: u32,
        open_for: Duration,
        half_open_probes: u32,
        slow_call: Option<Duration>,
    ) -> Self {
        Self {
            failure_rate,
            window,
            min_calls,
            open_for,
            half_open_probes,
            slow_call,
        }
    }

    /// The settings in the machine's bounds, whatever a policy file said: a
    /// window of 1 to 64 calls, `min_calls` no more than the window (a full
    /// window decides), at least one probe.
    fn limits(&self) -> Limits {
        let window = self.window.clamp(1, 64);
        Limits {
            failure_rate: self.failure_rate,
            window,
            min_calls: self.min_calls.clamp(1, window),
            open_for: self.open_for,
            half_open_probes: self.half_open_probes.clamp(1, MAX_PROBES),
        }
    }
}

/// How a breaker is named: by `name = "…"`, or by its function's path, read
/// when it is reported (a method's names its type from its first call on,
/// even when the breaker was created before).
pub(crate) enum Name {
    Shared(&'static str),
    Own(&'static Function),
}

/// A circuit breaker.
pub(crate) struct Breaker {
    name: Name,
    machine: Machine,
    epoch: Instant,
    /// The settings of the site that created it; other sites sharing its
    /// name use these.
    pub(super) config: Settings,
    /// That site's function.
    pub(super) owner: &'static str,
}

/// Admission to run one call; reports its outcome when done.
///
/// A permit dropped without an outcome is a call that was cancelled: it
/// counts as a failure when the function's own deadline dropped it, and as
/// nothing otherwise (a caller's shorter budget, a `select!` that took another
/// branch). A probe's place is given back either way.
pub(crate) struct Permit<'a> {
    breaker: &'a Breaker,
    function: &'static str,
    /// `None` once the outcome is counted, or when nothing is counted.
    counted: Option<Counted>,
}

/// What a permit needs to count its call's outcome.
struct Counted {
    ticket: Ticket,
    /// The settings it was admitted under.
    limits: Limits,
    /// With `slow_call`: when the call becomes slow.
    slow_after: Option<Instant>,
}

impl Breaker {
    pub(super) fn new(name: Name, owner: &'static str, config: Settings) -> Self {
        Self {
            name,
            machine: Machine::new(),
            epoch: Instant::now(),
            config,
            owner,
        }
    }

    /// Its name, as errors, events and operators know it.
    pub(crate) fn name(&self) -> &'static str {
        match self.name {
            Name::Shared(name) => name,
            Name::Own(function) => function.path(),
        }
    }

    /// The current state.
    pub(crate) fn state(&self) -> State {
        self.machine.state()
    }

    fn now(&self) -> Duration {
        self.epoch.elapsed()
    }

    /// Admits a call of `function` under `config`, or says why not.
    #[inline]
    pub(crate) fn admit(
        &self,
        function: &'static str,
        config: Settings,
    ) -> Result<Permit<'_>, CircuitOpenError> {
        let limits = config.limits();
        let (admission, moved) = self.machine.admit(&limits, || self.now());
        if let Some(moved) = moved {
            self.report(moved, &limits);
        }
        match admission {
            Admission::Run(ticket) => Ok(Permit {
                breaker: self,
                function,
                counted: Some(Counted {
                    ticket,
                    limits,
                    slow_after: config.slow_call.map(|limit| Instant::now() + limit),
                }),
            }),
            Admission::Pass => Ok(self.pass(function)),
            Admission::Reject(retry_after) => Err(CircuitOpenError::new(self.name(), retry_after)),
        }
    }

    /// A permit that counts nothing: forced closed, or switched off.
    #[inline]
    pub(crate) fn pass(&self, function: &'static str) -> Permit<'_> {
        Permit {
            breaker: self,
            function,
            counted: None,
        }
    }

    /// Sets the state whatever it was (forcing, resetting).
    pub(super) fn set(&self, to: State) {
        if let Some(moved) = self.machine.set(to, self.now()) {
            self.report(moved, &self.config.limits());
        }
    }

    #[cold]
    fn report(&self, moved: Transition, limits: &Limits) {
        #[cfg(feature = "metrics")]
        crate::telemetry::transition(self.name(), moved.from, moved.to);
        let (from, to) = (moved.from.as_str(), moved.to.as_str());
        if moved.to == State::Open {
            crate::watchdog::escalation::record_breaker(self.name(), || {
                format!("circuit breaker `{}` opened (from {from})", self.name())
            });
        }
        match moved.window {
            Some((failed, calls)) => tracing::warn!(
                breaker = self.name(),
                from,
                to,
                failure_rate = f64::from(failed) / f64::from(calls),
                failed,
                calls,
                open_for_ms = u64::try_from(limits.open_for.as_millis()).unwrap_or(u64::MAX),
                "circuit breaker opened"
            ),
            None => tracing::warn!(
                breaker = self.name(),
                from,
                to,
                "circuit breaker changed state"
            ),
        }
    }

    fn record(&self, counted: Counted, failed: bool) {
        let limits = &counted.limits;
        if let Some(moved) = self
            .machine
            .record(counted.ticket, failed, limits, || self.now())
        {
            self.report(moved, limits);
        }
    }
}

impl Permit<'_> {
    /// Reports the call's outcome: a failure, or a success that may still be
    /// too slow.
    #[inline]
    pub(crate) fn record(mut self, failed: bool) {
        let Some(counted) = self.counted.take() else {
            return;
        };
        let slow = counted
            .slow_after
            .is_some_and(|after| Instant::now() > after);
        self.breaker.record(counted, failed || slow);
    }
}

impl Permit<'_> {
    /// Whether dropping it now counts a failure: its call is being dropped
    /// by its own deadline.
    pub(super) fn drops_as_failure(&self) -> bool {
        self.counted.is_some() && crate::deadline::expiring(self.function)
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if let Some(counted) = self.counted.take() {
            if crate::deadline::expiring(self.function) {
                self.breaker.record(counted, true);
            } else {
                self.breaker.machine.cancel(counted.ticket);
            }
        }
    }
}

impl std::fmt::Debug for Breaker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Breaker")
            .field("name", &self.name())
            .field("state", &self.state())
            .finish_non_exhaustive()
    }
}

/// Whether a guarded call's outcome counts as a failure: any `Err`.
pub trait Outcome {
    /// True for an `Err`.
    fn is_failure(&self) -> bool;
}

impl<T, E> Outcome for Result<T, E> {
    #[inline]
    fn is_failure(&self) -> bool {
        self.is_err()
    }
}
