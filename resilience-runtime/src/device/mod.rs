//! Device errors of libtorch: what they mean, and (with the `tch` feature)
//! the CPU fallback of `#[safe_mps_op]`.
//!
//! [`classify`] is available without libtorch, for code that only needs to
//! tell an out-of-memory from an unsupported op in a message.

mod classify;

pub use classify::{DeviceErrorKind, classify, normalize};
