//! Circuit breakers, for [`#[circuit_breaker]`](crate::circuit_breaker).
//!
//! A breaker counts the outcomes of the last `window` calls. When at least
//! `failure_rate` of them failed (errors, and calls slower than `slow_call`),
//! once `min_calls` are in the window, it opens: calls are rejected at once
//! with [`CircuitOpenError`], without running. After `open_for` it lets
//! `half_open_probes` calls through at a time; if they all succeed it closes,
//! if one fails it opens again. Every state change is a `tracing` WARN event.
//!
//! Breakers are found by name: the `name = "…"` of the attribute, shared by
//! every function that gives it, or else the function's path.
//!
//! ```
//! use resilience_runtime::breaker::{self, State};
//! use resilience_runtime::circuit_breaker;
//!
//! #[circuit_breaker(name = "exchange")]
//! async fn place_order() -> std::io::Result<()> {
//!     Ok(())
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! assert_eq!(breaker::state("exchange"), None); // the first call creates it
//! place_order().await.unwrap();
//! assert_eq!(breaker::state("exchange"), Some(State::Closed));
//!
//! breaker::force_open("exchange"); // an operator takes the exchange out
//! let rejected = place_order().await.unwrap_err();
//! assert_eq!(rejected.kind(), std::io::ErrorKind::ConnectionRefused);
//! breaker::reset("exchange");
//! # }
//! ```

mod state;

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::Duration;

use crate::policy::{Gate, Kind, Known, at_defaults, gate, kind_off};

pub use state::State;
#[doc(hidden)]
pub use state::{Breaker, BreakerConfig, Permit};

/// A call was rejected because its circuit breaker is open.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "circuit breaker `{breaker}` is open{}",
    retry_after.map(|d| format!("; it lets calls through again in {d:?}")).unwrap_or_default()
)]
pub struct CircuitOpenError {
    breaker: &'static str,
    retry_after: Option<Duration>,
}

impl CircuitOpenError {
    pub(crate) fn new(breaker: &'static str, retry_after: Option<Duration>) -> Self {
        Self {
            breaker,
            retry_after,
        }
    }

    /// The breaker's name: its `name = "…"`, or the function's path.
    pub fn breaker(&self) -> &'static str {
        self.breaker
    }

    /// When the breaker will let a probe through, if it will by itself.
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }
}

/// `std::io::Result<T>` works as the return type of a guarded function.
impl From<CircuitOpenError> for std::io::Error {
    fn from(error: CircuitOpenError) -> Self {
        std::io::Error::new(std::io::ErrorKind::ConnectionRefused, error)
    }
}

/// How the return type of a `#[circuit_breaker]` function reports outcomes
/// and rejections.
#[diagnostic::on_unimplemented(
    message = "`#[circuit_breaker]` cannot report a rejection through `{Self}`",
    label = "this return type has no way to carry a `CircuitOpenError`",
    note = "return `Result<T, E>` where `E: From<resilience_runtime::CircuitOpenError>`"
)]
pub trait FromCircuitOpen {
    /// The value of a rejected call.
    fn from_circuit_open(error: CircuitOpenError) -> Self;
}

impl<T, E: From<CircuitOpenError>> FromCircuitOpen for Result<T, E> {
    #[inline]
    fn from_circuit_open(error: CircuitOpenError) -> Self {
        Err(E::from(error))
    }
}

/// Whether a guarded call's outcome counts as a failure: any `Err`.
#[doc(hidden)]
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

static BREAKERS: OnceLock<Mutex<HashMap<&'static str, &'static Breaker>>> = OnceLock::new();

fn registry() -> std::sync::MutexGuard<'static, HashMap<&'static str, &'static Breaker>> {
    BREAKERS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
}

/// The breaker of one annotated function: found (or created) on first use,
/// then cached, so calls take no lock.
#[doc(hidden)]
pub struct BreakerSite {
    name: &'static str,
    function: &'static str,
    policy: Option<&'static str>,
    config: BreakerConfig,
    breaker: OnceLock<&'static Breaker>,
    known: Known,
}

impl BreakerSite {
    /// The site of `function`, guarded by the breaker `name`.
    pub const fn new(
        name: &'static str,
        function: &'static str,
        policy: Option<&'static str>,
        config: BreakerConfig,
    ) -> Self {
        Self {
            name,
            function,
            policy,
            config,
            breaker: OnceLock::new(),
            known: Known::new(),
        }
    }

    fn breaker(&self) -> &'static Breaker {
        self.breaker.get_or_init(|| {
            *registry()
                .entry(self.name)
                .or_insert_with(|| Box::leak(Box::new(Breaker::new(self.name))))
        })
    }

    /// Admits one call, under this site's settings as the policy in force
    /// says. Each site of a shared breaker counts with its own settings.
    #[inline]
    pub fn admit(&'static self) -> Result<Permit<'static>, CircuitOpenError> {
        self.known.note(self.function, self.policy);
        let breaker = self.breaker();
        if at_defaults() {
            return breaker.admit(self.config);
        }
        if kind_off(Kind::Breaker) {
            return Ok(breaker.pass(self.config));
        }
        self.admit_by_policy(breaker)
    }

    #[cold]
    fn admit_by_policy(
        &'static self,
        breaker: &'static Breaker,
    ) -> Result<Permit<'static>, CircuitOpenError> {
        match gate(Kind::Breaker, self.function, self.policy, |e| {
            let entry = e.circuit_breaker.unwrap_or_default();
            (entry.enabled, entry)
        }) {
            Gate::Defaults => breaker.admit(self.config),
            Gate::Off => Ok(breaker.pass(self.config)),
            Gate::Override(entry) => {
                let base = self.config;
                breaker.admit(BreakerConfig {
                    failure_rate: entry.failure_rate.map_or(base.failure_rate, |r| r.0),
                    window: entry.window.map_or(base.window, |w| w.0),
                    min_calls: entry.min_calls.map_or(base.min_calls, |m| m.0),
                    open_for: entry.open_for.map_or(base.open_for, |d| d.0),
                    half_open_probes: entry
                        .half_open_probes
                        .map_or(base.half_open_probes, |p| p.0),
                    slow_call: entry.slow_call.map(|d| d.0).or(base.slow_call),
                })
            }
        }
    }
}

fn find(name: &str) -> Option<&'static Breaker> {
    registry().get(name).copied()
}

/// The state of the breaker `name`, if it exists yet.
pub fn state(name: &str) -> Option<State> {
    find(name).map(Breaker::state)
}

/// Holds the breaker `name` open, rejecting every call, until [`reset`] or
/// [`force_closed`]. Returns false if there is no such breaker.
pub fn force_open(name: &str) -> bool {
    find(name).map(|b| b.set(State::ForcedOpen)).is_some()
}

/// Holds the breaker `name` closed, admitting every call without counting,
/// until [`reset`] or [`force_open`]. Returns false if there is no such breaker.
pub fn force_closed(name: &str) -> bool {
    find(name).map(|b| b.set(State::ForcedClosed)).is_some()
}

/// Closes the breaker `name` and forgets its window. Returns false if there is
/// no such breaker.
pub fn reset(name: &str) -> bool {
    find(name).map(|b| b.set(State::Closed)).is_some()
}
