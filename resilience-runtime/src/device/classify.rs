//! What a libtorch error message means for the device that raised it.
//!
//! Messages are normalised first (the wrappers that tch and Rust add, and the
//! C++ backtrace), then matched on stable fragments rather than whole
//! sentences, since PyTorch rewords its messages between versions.

use std::borrow::Cow;
use std::fmt;

/// The kind of a device error, which decides whether a CPU rerun may help.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DeviceErrorKind {
    /// The op has no kernel for this device (e.g. an MPS op not implemented yet).
    UnsupportedOp,
    /// The device ran out of memory; transient.
    OutOfMemory,
    /// The device does not support the tensor's dtype (e.g. float64 on MPS).
    UnsupportedDtype,
    /// The device is absent, or this libtorch was built without it.
    Unavailable,
    /// The device or its driver failed; its state cannot be trusted.
    Fault,
    /// Not a device problem: mixed devices, shape mismatches, device-side
    /// asserts, or not a torch error at all. A CPU rerun would hide it.
    NotDevice,
}

impl DeviceErrorKind {
    /// Whether `#[safe_mps_op]` re-runs on CPU by default for this kind.
    pub fn falls_back(self) -> bool {
        matches!(
            self,
            Self::UnsupportedOp | Self::OutOfMemory | Self::UnsupportedDtype | Self::Unavailable
        )
    }

    /// Whether a failure of this kind will fail the same way next time, so that
    /// later calls can skip the device.
    pub fn is_sticky(self) -> bool {
        matches!(
            self,
            Self::UnsupportedOp | Self::UnsupportedDtype | Self::Unavailable
        )
    }

    /// A stable, lowercase name: `unsupported-op`, `out-of-memory`,
    /// `unsupported-dtype`, `unavailable`, `fault`, `not-device`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UnsupportedOp => "unsupported-op",
            Self::OutOfMemory => "out-of-memory",
            Self::UnsupportedDtype => "unsupported-dtype",
            Self::Unavailable => "unavailable",
            Self::Fault => "fault",
            Self::NotDevice => "not-device",
        }
    }
}

impl fmt::Display for DeviceErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Classifies a libtorch error message.
///
/// ```
/// use resilience_runtime::device::{classify, DeviceErrorKind};
///
/// let oom = "called `Result::unwrap()` on an `Err` value: Torch(\"CUDA out of memory. \
///            Tried to allocate 20.00 MiB (GPU 0; 3.95 GiB total capacity)\")";
/// assert_eq!(classify(oom), DeviceErrorKind::OutOfMemory);
/// assert_eq!(
///     classify("The operator 'aten::_fft_r2c' is not currently implemented for the MPS device."),
///     DeviceErrorKind::UnsupportedOp,
/// );
/// assert_eq!(
///     classify("Expected all tensors to be on the same device, but found at least two devices, mps:0 and cpu!"),
///     DeviceErrorKind::NotDevice,
/// );
/// ```
pub fn classify(message: &str) -> DeviceErrorKind {
    let text = normalize(message).to_lowercase();
    let has = |fragments: &[&str]| fragments.iter().any(|f| text.contains(f));

    // User bugs that merely surface on a device: never retried elsewhere.
    let kernel_assert = text.contains("assertion `") && !text.contains("failed assertion");
    if kernel_assert
        || has(&[
            "same device",
            "device-side assert triggered",
            "mismatch",
            "shapes cannot be multiplied",
            "must match the size",
            "size of tensor a",
            "out of bounds",
            "index out of range",
            "dimension out of range",
            "expected scalar type",
        ])
    {
        return DeviceErrorKind::NotDevice;
    }
    // A backend's size limits for one op (MPS arrays of more than 2^32
    // bytes, XPU blocks over 4 GB): the op cannot run there at that size,
    // however much memory is free.
    if has(&[
        "> 2**32",
        "> int_max",
        "larger than int_max",
        "larger than 4gb",
    ]) {
        return DeviceErrorKind::UnsupportedOp;
    }
    if has(&[
        "out of memory",
        "outofmemory",
        "invalid buffer size",
        "alloc_failed",
        "memoryallocation",
        "failed to allocate",
        "could not allocate",
        "not enough memory",
        "not enough gpu video memory",
        "insufficient memory",
        // A math library's handle that cannot be created: its workspace did
        // not fit (cuBLAS, cuSOLVER under memory pressure).
        "create(handle)",
    ]) {
        return DeviceErrorKind::OutOfMemory;
    }
    let sparse_backend = text.contains("with arguments from the 'sparse");
    // Allocation itself failing means the backend is missing, not one op;
    // so does an extension op that this build has no CUDA kernel for.
    let cannot_allocate = text.contains("could not run 'aten::")
        && !sparse_backend
        && has(&[
            "'aten::empty",
            "'aten::_to_copy",
            "'aten::zeros",
            "'aten::ones",
        ]);
    let extension_without_cuda = text.contains("could not run '")
        && !text.contains("could not run 'aten::")
        && text.contains("from the 'cuda' backend");
    if cannot_allocate
        || extension_without_cuda
        || has(&[
            "not compiled with",
            "not linked with support",
            "backend is supported on",
            "is not available",
            "is_available() is false",
            "no cuda gpus",
            "no nvidia driver",
            "driver version is insufficient",
            "driver on your system is too old",
            "driver initialization failed",
            "busy or unavailable",
            "no kernel image is available",
            "invalid device function",
            "nobinaryforgpu",
            "not compatible with the current pytorch",
            "invalid device ordinal",
            "invalid device id",
            "cudaerrornodevice",
            "available devices to be zero",
            "device count is zero",
            "no xpu devices",
            "thcgeneral",
            "cannot open shared object file",
        ])
    {
        return DeviceErrorKind::Unavailable;
    }
    let not_supported = has(&[
        "not support",
        "not currently supported",
        "n't support",
        "not have support",
        "unsupported",
        "not implemented for",
        "only supported on",
        "undefined type",
    ]);
    let names_dtype = has(&[
        "dtype",
        "low precision",
        "'half'",
        "bfloat16",
        "float64",
        "fp64",
        "'double'",
        "float8",
        "complex",
        "int64",
        "non-float",
    ]);
    if not_supported && names_dtype {
        return DeviceErrorKind::UnsupportedDtype;
    }
    if not_supported
        || sparse_backend
        || has(&[
            "not currently implemented",
            "not implemented",
            "notimplementederror",
            "could not run 'aten::",
            "product of dimension sizes",
            // A math library that declines this configuration.
            "status_not_supported",
            "cudnn is not enabled",
            "kernel is incompatible with all devices",
        ])
    {
        return DeviceErrorKind::UnsupportedOp;
    }
    if has(&[
        "cuda error",
        "cudnn_status_",
        "cublas_status_",
        "cusparse_status_",
        "illegal memory access",
        "launch failure",
        "device lost",
        "fallen off the bus",
        "ecc error",
        "failed assertion",
        "placeholder buffer",
        "not large enough",
        "command buffer",
        "hip error",
        "nccl error",
        "cuda runtime error",
        "cuda failure",
        "unhandled cuda error",
        "misaligned address",
        "gpu is lost",
        "device_lost",
        "memory access fault",
        "miopenstatus",
        "cufft_",
        "cusolver_status_",
        "collective operation timeout",
    ]) {
        return DeviceErrorKind::Fault;
    }
    DeviceErrorKind::NotDevice
}

/// Wrappers that tch and Rust put around libtorch's own message.
const PREFIXES: [&str; 4] = [
    "called `Result::unwrap()` on an `Err` value: ",
    "Error: ",
    "Tch tensor error: ",
    "Internal torch error: ",
];

/// The libtorch message inside `message`: without the wrappers of tch's
/// `TchError` (`Torch("…")`, `Internal torch error: `), of a panicking
/// `unwrap`, and without the C++ backtrace from `Exception raised from`.
///
/// ```
/// use resilience_runtime::device::normalize;
///
/// let raw = "called `Result::unwrap()` on an `Err` value: Torch(\"Conv3D is not supported on MPS\\nException raised from conv3d at conv.cpp:42\")";
/// assert_eq!(normalize(raw), "Conv3D is not supported on MPS");
/// ```
pub fn normalize(message: &str) -> Cow<'_, str> {
    let mut text = message.trim();
    let mut escaped = false;
    loop {
        if let Some(rest) = PREFIXES.iter().find_map(|p| text.strip_prefix(p)) {
            text = rest.trim_start();
        } else if let Some(inner) = text
            .strip_prefix("Torch(\"")
            .map(|t| t.strip_suffix("\")").unwrap_or(t))
        {
            // `Torch("…")` is a `Debug` rendering: its content is escaped.
            text = inner;
            escaped = true;
        } else {
            break;
        }
    }
    let mut text: Cow<'_, str> = if escaped {
        Cow::Owned(unescape(text))
    } else {
        Cow::Borrowed(text)
    };
    if let Some(at) = text.find("Exception raised from") {
        let kept = text[..at].trim_end().to_owned();
        text = Cow::Owned(kept);
    }
    if text.len() != text.trim().len() {
        text = Cow::Owned(text.trim().to_owned());
    }
    text
}

/// Undoes the escapes of a `Debug`-formatted string.
fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_every_wrapper_and_the_backtrace() {
        let raw = "called `Result::unwrap()` on an `Err` value: Torch(\"Internal torch error: \
                   \\\"aten::foo\\\" failed\\nException raised from foo at foo.cpp:1 (most recent call first):\\nframe #0\")";
        assert_eq!(normalize(raw), "\"aten::foo\" failed");
    }

    #[test]
    fn leaves_plain_messages_borrowed() {
        assert!(matches!(
            normalize("CUDA error: out of memory"),
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn rewording_between_versions_keeps_the_class() {
        use DeviceErrorKind::*;
        let cases = [
            (
                "MPS backend out of memory (MPS allocated: 17.01 GB, other allocations: 1.2 GB)",
                OutOfMemory,
            ),
            (
                "CUDA error: an illegal memory access was encountered",
                Fault,
            ),
            (
                "\"addmm_impl_cpu_\" not implemented for 'Half'",
                UnsupportedDtype,
            ),
            (
                "MPS does not support cumsum op with int64 input",
                UnsupportedDtype,
            ),
            (
                "Could not run 'aten::_fft_r2c' with arguments from the 'MPS' backend.",
                UnsupportedOp,
            ),
            (
                "Could not run 'aten::empty.memory_format' with arguments from the 'MPS' backend.",
                Unavailable,
            ),
            ("Found no NVIDIA driver on your system.", Unavailable),
            (
                "CUDA error: no kernel image is available for execution on the device",
                Unavailable,
            ),
            (
                "mat1 and mat2 shapes cannot be multiplied (2x3 and 4x5)",
                NotDevice,
            ),
            ("CUDA error: device-side assert triggered", NotDevice),
            (
                "index 7 is out of bounds for dimension 0 with size 3",
                NotDevice,
            ),
            ("invalid literal for int() with base 10", NotDevice),
        ];
        for (message, kind) in cases {
            assert_eq!(classify(message), kind, "{message}");
        }
    }
}
