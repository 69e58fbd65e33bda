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
    /// The device's failure, when this is the failure of the CPU rerun that
    /// followed it.
    #[source]
    device_failure: Option<Box<DeviceError>>,
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
            device_failure: None,
        }
    }

    pub(crate) fn at(mut self, function: &'static str, device: Option<Device>) -> Self {
        self.function = Some(function);
        self.device = device;
        self
    }

    /// This error, which a CPU rerun raised after `device` failed.
    pub(crate) fn caused_after(mut self, device: DeviceError) -> Self {
        self.device_failure = Some(Box::new(device));
        self
    }

    /// The device's failure that came first, when this error is the failure
    /// of the CPU rerun that followed it: the CPU's failure is the real
    /// cause (a shape mismatch, say), the device's is context. Also its
    /// [`source`](std::error::Error::source).
    pub fn device_failure(&self) -> Option<&DeviceError> {
        self.device_failure.as_deref()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cpu_failure_carries_the_device_failure_as_its_source() {
        let device = DeviceError::new("PyTorch is not linked with support for mps devices");
        let cpu = DeviceError::new("Internal torch error: CUDA error: an illegal memory access")
            .caused_after(device);
        let source = std::error::Error::source(&cpu).expect("a source");
        assert!(
            source
                .to_string()
                .contains("not linked with support for mps")
        );
        assert_eq!(
            cpu.device_failure().map(DeviceError::kind),
            Some(DeviceErrorKind::Unavailable)
        );
    }
}
