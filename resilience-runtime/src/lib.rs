//! Resilience by annotation for async Rust.
//!
//! `resilience-runtime` is the crate you depend on. It re-exports the attributes
//! and owns everything their expansions call:
//!
//! - [`timeout_async`] puts a deadline on an `async fn`. Deadlines nest: a timed
//!   call inside another timed call gets at most the budget its caller has left
//!   (see [`deadline`]).
//! - [`timeout()`] is the same deadline as a function, for a scope around several
//!   awaits.
//!
//! ```
//! use std::time::Duration;
//! use resilience_runtime::{timeout_async, TimeoutError};
//!
//! #[timeout_async("50ms")]
//! async fn fetch_quote(symbol: &str) -> Result<f64, TimeoutError> {
//!     tokio::time::sleep(Duration::from_secs(1)).await; // a slow dependency
//!     Ok(if symbol == "ACME" { 101.5 } else { 0.0 })
//! }
//!
//! #[tokio::main(flavor = "current_thread", start_paused = true)]
//! async fn main() {
//!     let err = fetch_quote("ACME").await.unwrap_err();
//!     assert_eq!(err.limit(), Duration::from_millis(50));
//!     assert!(err.function().ends_with("::fetch_quote"));
//! }
//! ```
//!
//! Generated code reaches this crate only through the hidden `__private` module
//! and the standard library only through `::core`, so the attributes work in any
//! crate, with no direct dependency on tokio or tracing.
#![doc(test(attr(deny(warnings))))]
#![deny(unsafe_code)]
#![warn(missing_docs)]

mod admission;
mod attention;
pub mod breaker;
pub mod bulkhead;
mod call;
pub mod chaos;
pub mod deadline;
pub mod device;
mod events;
pub mod monitor;
pub mod pipeline;
pub mod policy;
pub mod rate_limit;
mod registry;
pub mod retry;
pub mod sites;
pub mod task;
#[cfg(feature = "metrics")]
mod telemetry;
pub mod watchdog;

/// Puts a deadline on an `async fn`.
///
/// ```
/// # use resilience_runtime::{timeout_async, TimeoutError};
/// #[timeout_async(5)] // also 0.25, "250ms", "1m30s", secs = 0.25, ms = 250
/// async fn load() -> Result<Vec<u8>, TimeoutError> {
///     Ok(Vec::new())
/// }
///
/// #[timeout_async(ms = 250, on_timeout = Vec::new())] // fail soft
/// async fn recommendations() -> Vec<String> {
///     vec!["more of the same".to_owned()]
/// }
/// ```
///
/// Without `on_timeout` the return type must implement [`deadline::FromTimeout`]:
/// any `Result<T, E>` with `E: From<TimeoutError>`. The full reference is in
/// `docs/guide.md`.
///
/// Faults can be injected into it by its path for drills
/// ([`chaos`](mod@chaos)): a delay or blocking before the body, or an
/// injected error, returned as `Err(E::from(chaos::InjectedError))` where
/// the return type is a `Result<T, E>` whose `E: From<InjectedError>` is
/// named in the signature (another return type logs a WARN and runs the
/// body).
#[doc(inline)]
pub use resilience_macros::timeout_async;

/// Re-runs an `async fn` when it returns an error, with backoff between
/// attempts.
///
/// ```
/// use resilience_runtime::retry;
///
/// fn transient(error: &std::io::Error) -> bool {
///     error.kind() == std::io::ErrorKind::ConnectionReset
/// }
///
/// #[retry(attempts = 5, base = "50ms", max_delay = "1s", when = transient)]
/// async fn fetch(attempts: &mut u32) -> std::io::Result<u32> {
///     *attempts += 1;
///     if *attempts < 3 {
///         return Err(std::io::ErrorKind::ConnectionReset.into());
///     }
///     Ok(*attempts)
/// }
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let mut attempts = 0;
/// assert_eq!(fetch(&mut attempts).await.unwrap(), 3);
/// # }
/// ```
///
/// Arguments: `attempts = 3`, `backoff = "exponential" | "constant"`,
/// `base = "100ms"`, `factor = 2.0`, `max_delay = "2s"`,
/// `jitter = "full" | "equal" | "none"`, `when = path::to::predicate`; those
/// are the defaults. See `docs/guide.md`, also for how it composes with
/// `#[timeout_async]`.
///
/// Faults can be injected into it by its path for drills
/// ([`chaos`](mod@chaos)): a delay or blocking before the body, or an
/// injected error, returned as `Err(E::from(chaos::InjectedError))` where
/// the return type is a `Result<T, E>` whose `E: From<InjectedError>` is
/// named in the signature (another return type logs a WARN and runs the
/// body).
#[doc(inline)]
pub use resilience_macros::retry;

/// Stops calling what is down: rejects calls at once while too many recent
/// ones failed.
///
/// ```
/// use resilience_runtime::{circuit_breaker, CircuitOpenError};
///
/// #[derive(Debug)]
/// enum QuoteError {
///     Down,
///     Open(CircuitOpenError),
/// }
///
/// impl From<CircuitOpenError> for QuoteError {
///     fn from(error: CircuitOpenError) -> Self {
///         QuoteError::Open(error)
///     }
/// }
///
/// #[circuit_breaker(window = 4, min_calls = 4, failure_rate = 0.5, open_for = "10s")]
/// async fn quote() -> Result<f64, QuoteError> {
///     Err(QuoteError::Down)
/// }
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// for _ in 0..4 {
///     assert!(matches!(quote().await, Err(QuoteError::Down)));
/// }
/// // Rejected without running:
/// assert!(matches!(quote().await, Err(QuoteError::Open(e)) if e.breaker().ends_with("::quote")));
/// # }
/// ```
///
/// Arguments (all optional, these are the defaults): `failure_rate = 0.5`,
/// `window = 20`, `min_calls = 10`, `open_for = "30s"`, `half_open_probes = 1`,
/// `slow_call = "2s"` (off when not given), `name = "…"` (shared breaker). See
/// [`breaker`] and `docs/guide.md`.
///
/// Faults can be injected into it by its path for drills
/// ([`chaos`](mod@chaos)): a delay or blocking before the body, or an
/// injected error, returned as `Err(E::from(chaos::InjectedError))` where
/// the return type is a `Result<T, E>` whose `E: From<InjectedError>` is
/// named in the signature (another return type logs a WARN and runs the
/// body).
#[doc(inline)]
pub use resilience_macros::circuit_breaker;

/// Admits at most so many calls a second, a minute or a period: a GCRA
/// from `governor`, per function, per `name = "…"` or per argument value.
///
/// ```
/// use resilience_runtime::{rate_limit, RateLimitedError};
///
/// #[rate_limit(per_second = 50, burst = 10, max_wait = "100ms", key = user)]
/// async fn search(user: &str, query: &str) -> Result<usize, RateLimitedError> {
///     Ok(user.len() + query.len())
/// }
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// for _ in 0..10 {
///     search("alice", "acme").await.unwrap(); // the burst
/// }
/// search("bob", "acme").await.unwrap(); // another key, another quota
/// search("alice", "acme").await.unwrap(); // waits 20 ms for a permit
/// # }
/// ```
///
/// Arguments: one rate, `per_second = n`, `per_minute = n`, or
/// `per = "250ms"` with `max = n`; `burst = n` (the rate's count by
/// default); `max_wait = "…"` (0 by default: no wait); `key = argument`
/// with `max_keys = n` (10 000 by default); `name = "…"` (a shared
/// limiter); `policy = "…"`. A call that would wait longer than
/// `max_wait`, or past its deadline budget, returns
/// `FromRateLimited::from_rate_limited(RateLimitedError)` at once: any
/// `Result<T, E>` with `E: From<RateLimitedError>`. See
/// [`rate_limit`](mod@rate_limit) and `docs/guide.md`.
#[doc(inline)]
pub use resilience_macros::rate_limit;

/// Lets at most `max_concurrent` calls run at once; the others wait up to
/// `max_wait` for a place, never past their deadline budget.
///
/// ```
/// use resilience_runtime::{bulkhead, BulkheadFullError};
///
/// #[bulkhead(max_concurrent = 10, max_wait = "50ms")]
/// async fn render(page: u32) -> Result<u32, BulkheadFullError> {
///     Ok(page)
/// }
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// assert_eq!(render(3).await, Ok(3));
/// # }
/// ```
///
/// Arguments: `max_concurrent = n` (required), `max_wait = "…"` (0 by
/// default: no wait), `name = "…"` (a shared bulkhead), `policy = "…"`.
/// A call that finds no place in time returns
/// `FromBulkheadFull::from_bulkhead_full(BulkheadFullError)`: any
/// `Result<T, E>` with `E: From<BulkheadFullError>`. See
/// [`bulkhead`](mod@bulkhead) and `docs/guide.md`.
#[doc(inline)]
pub use resilience_macros::bulkhead;

/// Measures a function that needs no other policy: its latency goes to the
/// [`monitor`](mod@monitor) and the metrics (`kind = "monitor"`), and a call
/// slower than `slow` is one WARN event (`function`, `elapsed_ms`,
/// `slow_ms`), at most one a second per function.
///
/// ```
/// use resilience_runtime::monitor;
///
/// #[monitor(slow = "50ms", name = "api_call")]
/// fn handle(request: &str) -> Result<usize, std::io::Error> {
///     Ok(request.len())
/// }
///
/// handle("GET /").unwrap();
/// assert_eq!(monitor::latency("api_call").unwrap().count(), 1);
/// ```
///
/// On a sync or async function, alone or composed in written order with the
/// other attributes. Arguments (all optional): `slow = "…"` (no report when
/// not given), `name = "…"` (the name it is recorded under, instead of its
/// path), `policy = "…"`. A policy file sets `slow` and `enabled` in a
/// `monitor` table.
///
/// Faults can be injected into it (on an `async fn`) by its path for drills
/// ([`chaos`](mod@chaos)): a delay or blocking before the body, or an
/// injected error, returned as `Err(E::from(chaos::InjectedError))` where
/// the return type is a `Result<T, E>` whose `E: From<InjectedError>` is
/// named in the signature (another return type logs a WARN and runs the
/// body).
#[doc(inline)]
pub use resilience_macros::monitor;

/// Runs a tensor op again on the CPU when its device fails.
///
/// Put it on a sync or async function (or method) that does `tch` work. A
/// libtorch error, returned as `Err` by an `f_*` method or raised as a panic by
/// a plain one, is classified with [`device::classify`]; for an unsupported
/// op or dtype, an out-of-memory or an absent device, the body runs again
/// with every tensor argument moved to the CPU and every `Device` argument
/// replaced by `Device::Cpu`, and the result moves back to the inputs'
/// device. Anything else (shape mismatches, mixed devices, non-torch panics)
/// passes through unchanged.
///
/// ```
/// use resilience_runtime::safe_mps_op;
/// use tch::{Device, Tensor};
///
/// #[safe_mps_op]
/// fn gram(x: &Tensor, device: Device) -> Tensor {
///     let x = x.to_device(device); // no MPS here: fails, and reruns on CPU
///     x.matmul(&x.tr())
/// }
///
/// let x = Tensor::from_slice(&[1.0f32, 2.0, 3.0, 4.0]).view([2, 2]);
/// let g = gram(&x, Device::Mps);
/// assert_eq!(Vec::<f32>::try_from(g.view([-1])).unwrap(), [5.0, 11.0, 11.0, 25.0]);
/// ```
///
/// Options: `fallback = "cpu" | "none"`, `return_to = "origin" | "cpu"`,
/// `sticky = true | false`, `retries = N`; see `docs/guide.md`.
#[cfg(feature = "tch")]
#[doc(inline)]
pub use resilience_macros::safe_mps_op;

/// Without the `tch` feature, `#[safe_mps_op]` is a compile error that says
/// to enable it.
#[cfg(not(feature = "tch"))]
#[doc(hidden)]
pub use resilience_macros::safe_mps_op;

#[doc(inline)]
pub use breaker::CircuitOpenError;
#[doc(inline)]
pub use bulkhead::BulkheadFullError;
#[doc(inline)]
pub use deadline::{TimeoutError, timeout};
#[cfg(feature = "tch")]
#[doc(inline)]
pub use device::DeviceError;
#[doc(inline)]
pub use rate_limit::RateLimitedError;
#[doc(inline)]
pub use sites::sites;

/// What expanded attributes call. Not public API: it may change in any release.
#[doc(hidden)]
pub mod __private {
    pub use crate::call::{Call, Named, Pick, PickCannotFail, PickFails};
    pub use crate::deadline::FromTimeout;
    pub use crate::deadline::adaptive::Adaptive;
    pub use crate::deadline::site::TimeoutSite;
    pub use crate::monitor::site::{Entered, MonitorSite};
    pub use crate::policy::Kind;
    pub use crate::policy::state::all_off;
    pub use crate::registry::{
        FUNCTIONS, Function, LayerSite, Outcome, PlainOutcome, ResultOutcome, Start,
    };
    pub use linkme;
    pub mod admit {
        pub use crate::admission::Admission;
        pub use crate::bulkhead::FromBulkheadFull;
        pub use crate::bulkhead::site::{BulkheadSite, Entered, Settings as BulkheadSettings};
        pub use crate::rate_limit::FromRateLimited;
        pub use crate::rate_limit::keys::key;
        pub use crate::rate_limit::site::{Admitted, RateLimitSite, Settings as RateLimitSettings};
    }
    pub mod breaker {
        pub use crate::breaker::FromCircuitOpen;
        pub use crate::breaker::Settings;
        pub use crate::breaker::site::BreakerSite;
        pub use crate::breaker::state::Outcome;
    }
    pub mod retry {
        pub use crate::events::{Shown, ShownByDebug, ShownByDisplay, Unshown};
        pub use crate::retry::run::{Next, Retrier, RetryOptions, RetrySite, any_error, wait};
        pub use crate::retry::{Backoff, Jitter, RetryOutput};
    }
    #[cfg(feature = "tch")]
    pub mod device {
        pub use crate::device::args::{
            Arg, LocateOther, LocateTensor, Param, Target, ViaClone, ViaCopy, ViaTensor, origin,
            versions,
        };
        pub use crate::device::fallback::{run, run_async};
        pub use crate::device::output::{
            ErrorsOf, OutputOf, PlainMoveBack, PlainStay, ReadShown, ReadSources, ResultMoveBack,
            ResultStay,
        };
        pub use crate::device::site::{DeviceOptions, DeviceSite};
        pub use tch::TchError;
    }
}
