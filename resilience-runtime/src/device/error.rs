use tch::Device;

use super::{DeviceErrorKind, classify, normalize};

/// A libtorch error, with what is known of where it happened.
///
/// `DeviceError: From<tch::TchError>`, so `?` works on tch's `f_*` methods in a
/// function returning `Result<T, DeviceError>` (or an error that converts from
/// it). `#[safe_mps_op]` returns one, converted into the function's error type,
/// for a device failure that it could not recover from and that was not
/// already an `Err` of the function.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "{kind} error{}{}: {message}",
    device.map(|d| format!(" on {d:?}")).unwrap_or_default(),
    function.map(|f| format!(" in `{f}`")).unwrap_or_default()
)]
pub struct DeviceError {
    kind: DeviceErrorKind,
    function: Option<&'static str>,
    device: Option<Device>,
    message: String,
}

impl DeviceError {
    /// An error for a raw libtorch message: normalised and classified.
    ///
    /// ```
    /// use resilience_runtime::device::{DeviceError, DeviceErrorKind};
    ///
    /// let err = DeviceError::new("Internal torch error: CUDA out of memory. Tried to allocate 2.00 GiB");
    /// assert_eq!(err.kind(), DeviceErrorKind::OutOfMemory);
    /// assert_eq!(err.message(), "CUDA out of memory. Tried to allocate 2.00 GiB");
    /// ```
    pub fn new(message: &str) -> Self {
        Self {
            kind: classify(message),
            function: None,
            device: None,
            message: normalize(message).into_owned(),
        }
    }

    pub(crate) fn at(mut self, function: &'static str, device: Option<Device>) -> Self {
        self.function = Some(function);
        self.device = device;
        self
    }

    /// What the error means for the device.
    pub fn kind(&self) -> DeviceErrorKind {
        self.kind
    }

    /// The function that failed (module path and name), when known.
    pub fn function(&self) -> Option<&'static str> {
        self.function
    }

    /// The device the inputs were on, when known.
    pub fn device(&self) -> Option<Device> {
        self.device
    }

    /// libtorch's message, without wrappers and C++ backtrace.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl From<tch::TchError> for DeviceError {
    fn from(error: tch::TchError) -> Self {
        Self::new(&error.to_string())
    }
}
