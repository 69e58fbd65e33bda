//! Device errors of libtorch: what they mean, and (with the `tch` feature)
//! the CPU fallback of [`#[safe_mps_op]`](crate::safe_mps_op).
//!
//! [`classify`] is available without libtorch, for code that only needs to
//! tell an out-of-memory from an unsupported op in a message.

#[cfg(feature = "tch")]
pub(crate) mod args;
mod classify;
#[cfg(feature = "tch")]
mod error;
#[cfg(feature = "tch")]
pub(crate) mod fallback;
#[cfg(feature = "tch")]
pub(crate) mod output;
#[cfg(feature = "tch")]
mod panics;
#[cfg(feature = "tch")]
mod replica;
#[cfg(feature = "tch")]
pub(crate) mod site;

#[cfg(feature = "tch")]
pub use args::TensorArg;
pub use classify::{DeviceErrorKind, classify, normalize};
#[cfg(feature = "tch")]
pub use error::DeviceError;
#[cfg(feature = "tch")]
pub use output::{FromDeviceError, ToOrigin};
#[cfg(feature = "tch")]
pub use replica::Replica;
#[cfg(feature = "tch")]
pub use site::{FunctionStats, reset_health, stats};
