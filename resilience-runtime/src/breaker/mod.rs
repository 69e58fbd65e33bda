//! Circuit breakers, for [`#[circuit_breaker]`](crate::circuit_breaker).
//!
//! A breaker counts the outcomes of the last `window` calls. When at least
//! `failure_rate` of them failed (errors, and calls slower than `slow_call`),
//! once `min_calls` are in the window, it opens: calls are rejected at once
//! with [`CircuitOpenError`], without running. After `open_for` it lets
//! `half_open_probes` calls through at a time; if they all succeed it closes,
//! if one fails it opens again. Every state change is a `tracing` WARN event.
//!
//! Every annotated function has a breaker of its own, found by the
//! function's path (see [`sites`](crate::sites) for methods), unless it
//! shares one on purpose with `name = "…"`: then the settings of the first
//! function that registered it (or of the policy file, under the breaker's
//! name) apply to all of them, and a function that gives other settings is
//! a WARN. Breakers exist before their first call, so an operator can force
//! one open at start-up.
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
//! assert_eq!(breaker::state("exchange"), Some(State::Closed)); // before any call
//! place_order().await.unwrap();
//!
//! breaker::force_open("exchange"); // an operator takes the exchange out
//! let rejected = place_order().await.unwrap_err();
//! assert_eq!(rejected.kind(), std::io::ErrorKind::ConnectionRefused);
//! breaker::reset("exchange");
//! # }
//! ```

mod machine;
pub(crate) mod site;
pub(crate) mod state;

use std::time::Duration;

pub use machine::State;
use site::find;
use state::Breaker;
pub use state::Settings;

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
    note = "return `Result<T, E>` and add `impl From<resilience_runtime::CircuitOpenError> for E`"
)]
pub trait FromCircuitOpen {
    /// The value of a rejected call.
    fn from_circuit_open(error: CircuitOpenError) -> Self;
}

#[diagnostic::do_not_recommend]
impl<T, E: From<CircuitOpenError>> FromCircuitOpen for Result<T, E> {
    #[inline]
    fn from_circuit_open(error: CircuitOpenError) -> Self {
        Err(E::from(error))
    }
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
