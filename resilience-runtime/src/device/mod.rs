//! Device errors of libtorch: what they mean, and (with the `tch` feature)
//! the CPU fallback of [`#[safe_mps_op]`](crate::safe_mps_op).
//!
//! [`classify`] is available without libtorch, for code that only needs to
//! tell an out-of-memory from an unsupported op in a message.

#[cfg(feature = "tch")]
mod args;
mod classify;
#[cfg(feature = "tch")]
mod error;
#[cfg(feature = "tch")]
mod fallback;
#[cfg(feature = "tch")]
mod site;

#[cfg(feature = "tch")]
pub use args::{FromDeviceError, TensorArg, ToOrigin};
pub use classify::{DeviceErrorKind, classify, normalize};
#[cfg(feature = "tch")]
pub use error::DeviceError;
#[cfg(feature = "tch")]
pub use site::{FunctionStats, reset_health, stats};

/// What `#[safe_mps_op]` expansions call.
#[cfg(feature = "tch")]
#[doc(hidden)]
pub mod __private {
    pub use super::args::{
        Arg, LocateOther, LocateTensor, OutputOf, Param, PlainMoveBack, PlainStay, ResultMoveBack,
        ResultStay, Target, ViaClone, ViaCopy, ViaTensor, origin,
    };
    pub use super::fallback::{run, run_async};
    pub use super::site::{DeviceOptions, DeviceSite};
    pub use tch::TchError;
}
