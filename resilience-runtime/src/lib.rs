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
#![warn(missing_docs)]

pub mod deadline;
pub mod device;

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
#[doc(inline)]
pub use resilience_macros::timeout_async;

#[doc(inline)]
pub use deadline::{TimeoutError, timeout};

/// What expanded attributes call. Not public API: it may change in any release.
#[doc(hidden)]
pub mod __private {
    pub use crate::deadline::{FromTimeout, deadline};
}
