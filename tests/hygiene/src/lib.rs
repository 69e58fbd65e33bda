//! Every expansion must compile here: no prelude, no imports, and no direct
//! dependency on tokio or tracing. A stray unqualified path in generated code
//! (`Ok`, `Result`, `Duration`, `tokio::…`) fails this crate's build, and so
//! does generated `unsafe` code.
#![no_implicit_prelude]
#![forbid(unsafe_code)]

/// An error with a `From<TimeoutError>` conversion.
#[derive(Debug)]
pub struct Failed;

impl ::core::convert::From<::resilience_runtime::TimeoutError> for Failed {
    fn from(_: ::resilience_runtime::TimeoutError) -> Self {
        Failed
    }
}

/// A timed free function.
#[::resilience_runtime::timeout_async("250ms")]
pub async fn free(x: u32) -> ::core::result::Result<u32, Failed> {
    ::core::result::Result::Ok(x + 1)
}

/// A fail-soft timed function.
#[::resilience_runtime::timeout_async(secs = 0.5, on_timeout = 0)]
pub async fn fail_soft() -> u32 {
    7
}

/// A type with a timed method.
pub struct Counter(pub u64);

impl Counter {
    /// A timed method on `&mut self`.
    #[::resilience_runtime::timeout_async(ms = 10)]
    pub async fn bump(&mut self) -> ::core::result::Result<u64, Failed> {
        self.0 += 1;
        ::core::result::Result::Ok(self.0)
    }
}

impl ::core::convert::From<::resilience_runtime::RateLimitedError> for Failed {
    fn from(_: ::resilience_runtime::RateLimitedError) -> Self {
        Failed
    }
}

impl ::core::convert::From<::resilience_runtime::BulkheadFullError> for Failed {
    fn from(_: ::resilience_runtime::BulkheadFullError) -> Self {
        Failed
    }
}

/// Admission control under a retry, a keyed limiter and an adaptive
/// deadline.
#[::resilience_runtime::retry(attempts = 2)]
#[::resilience_runtime::rate_limit(per_second = 50, burst = 10, max_wait = "10ms", key = user)]
#[::resilience_runtime::bulkhead(max_concurrent = 4, max_wait = "5ms", name = "hygiene")]
#[::resilience_runtime::timeout_async(ms = 200, adaptive(percentile = 99, floor = "20ms"))]
pub async fn admitted(user: u64, x: u32) -> ::core::result::Result<u32, Failed> {
    ::core::result::Result::Ok(x + user as u32)
}

/// Measured, sync.
#[::resilience_runtime::monitor(slow = "5ms", name = "hygiene_parse", policy = "hygiene")]
pub fn measured(text: &::core::primitive::str) -> ::core::option::Option<::core::primitive::usize> {
    ::core::option::Option::Some(text.len())
}

/// Measured inside a deadline.
#[::resilience_runtime::timeout_async(ms = 10)]
#[::resilience_runtime::monitor]
pub async fn measured_later(x: u32) -> ::core::result::Result<u32, Failed> {
    ::core::result::Result::Ok(x)
}

/// Tensor functions, with the `tch` feature.
#[cfg(feature = "tch")]
pub mod tensors {
    /// A timed-out device op falls back to the CPU.
    #[::resilience_runtime::safe_mps_op]
    pub fn double(x: &::tch::Tensor, device: ::tch::Device) -> ::tch::Tensor {
        x.to_device(device) * 2
    }

    /// The `Result` form, with options.
    #[::resilience_runtime::safe_mps_op(retries = 1, return_to = "cpu")]
    pub fn checked(
        x: ::tch::Tensor,
        (a, b): (f64, f64),
    ) -> ::core::result::Result<::tch::Tensor, ::resilience_runtime::device::DeviceError> {
        ::core::result::Result::Ok(x.f_mul_scalar(a)?.f_add_scalar(b)?)
    }

    /// The async form.
    #[::resilience_runtime::safe_mps_op(sticky = false)]
    pub async fn later(xs: &[::tch::Tensor]) -> ::tch::Tensor {
        ::tch::Tensor::cat(xs, 0)
    }

    /// An error for the device layer and the others.
    #[derive(Debug)]
    pub struct Failed;

    impl ::core::fmt::Display for Failed {
        fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
            f.write_str("failed")
        }
    }

    impl ::core::convert::From<::resilience_runtime::DeviceError> for Failed {
        fn from(_: ::resilience_runtime::DeviceError) -> Self {
            Failed
        }
    }

    impl ::core::convert::From<::resilience_runtime::TimeoutError> for Failed {
        fn from(_: ::resilience_runtime::TimeoutError) -> Self {
            Failed
        }
    }

    /// Among the other layers: one deadline over both runs, each run retried.
    #[::resilience_runtime::timeout_async(ms = 10)]
    #[::resilience_runtime::safe_mps_op]
    #[::resilience_runtime::retry(attempts = 2)]
    pub async fn composed(
        x: &::tch::Tensor,
        mut scale: f64,
    ) -> ::core::result::Result<::tch::Tensor, Failed> {
        scale += 1.0;
        let device_error: fn(::tch::TchError) -> ::resilience_runtime::DeviceError =
            ::core::convert::From::from;
        ::core::result::Result::Ok(x.f_mul_scalar(scale).map_err(device_error)?)
    }
}

/// Retried, each attempt under a deadline.
#[::resilience_runtime::retry(attempts = 2, base = "1ms", when = is_failed)]
#[::resilience_runtime::timeout_async(ms = 10)]
pub async fn retried(
    counter: &mut Counter,
    label: ::core::primitive::u8,
) -> ::core::result::Result<u64, Failed> {
    let _ = label;
    counter.bump().await
}

/// A `when` predicate.
pub fn is_failed(_: &Failed) -> bool {
    true
}

impl ::core::convert::From<::resilience_runtime::CircuitOpenError> for Failed {
    fn from(_: ::resilience_runtime::CircuitOpenError) -> Self {
        Failed
    }
}

/// Guarded by a shared breaker, retried, each attempt timed.
#[::resilience_runtime::circuit_breaker(name = "hygiene", slow_call = "1s")]
#[::resilience_runtime::retry(attempts = 2, jitter = "equal")]
#[::resilience_runtime::timeout_async(ms = 10)]
pub async fn guarded(counter: &mut Counter) -> ::core::result::Result<u64, Failed> {
    counter.bump().await
}
