//! `#[safe_mps_op]` against real libtorch: real device errors on this machine
//! (no MPS, no GPU), injected real messages, and the paths each one takes.
//! Built with `--features tch` only (`cargo xtask test` runs it and fails if it
//! did not).
#![cfg(feature = "tch")]

mod common;

use std::panic::{AssertUnwindSafe, catch_unwind};

use common::{panic_text, values};

use resilience_runtime::device::{self, DeviceError, DeviceErrorKind, FunctionStats};
use resilience_runtime::{chaos, safe_mps_op};
use tch::{Device, Kind, Tensor, nn, nn::Module};

fn stats_of(function: &str) -> FunctionStats {
    common::device_stats(&format!("device_fallback::{function}"))
}

fn matrix() -> Tensor {
    Tensor::from_slice(&[1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0]).view([2, 3])
}

fn gram_on_cpu(x: &Tensor) -> Tensor {
    x.matmul(&x.tr())
}

fn no_gpu() -> bool {
    !tch::Cuda::is_available()
}

/// Allocates its work on `device`: fails for real where the device is absent.
#[safe_mps_op]
fn gram_on_mps(x: &Tensor, device: Device) -> Tensor {
    let x = x.to_device(device);
    x.matmul(&x.tr())
}

#[test]
fn an_op_on_mps_falls_back_to_cpu_with_the_right_result() {
    assert!(
        !tch::utils::has_mps(),
        "this test expects a libtorch without MPS"
    );
    let x = matrix();
    let result = gram_on_mps(&x, Device::Mps);
    assert_eq!(result.device(), Device::Cpu);
    assert_eq!(values(&result), values(&gram_on_cpu(&x)));
    let stats = stats_of("gram_on_mps");
    assert_eq!((stats.calls, stats.unavailable, stats.failures), (1, 1, 0));
}

#[safe_mps_op]
fn gram_on_cuda(x: &Tensor, device: Device) -> Result<Tensor, DeviceError> {
    let x = x.f_to_device(device)?;
    Ok(x.f_matmul(&x.tr())?)
}

#[test]
fn an_op_on_an_absent_gpu_falls_back_to_cpu_with_the_right_result() {
    if !no_gpu() {
        println!("a CUDA GPU is present: the absent-GPU path does not apply");
        return;
    }
    let x = matrix();
    let result = gram_on_cuda(&x, Device::Cuda(0)).unwrap();
    assert_eq!(values(&result), values(&gram_on_cpu(&x)));
    assert_eq!(stats_of("gram_on_cuda").unavailable, 1);
}

#[safe_mps_op]
fn scaled(x: &Tensor, factor: f64) -> Tensor {
    x * factor
}

#[safe_mps_op]
fn scaled_result(x: &Tensor, factor: f64) -> Result<Tensor, DeviceError> {
    Ok(x.f_mul_scalar(factor)?)
}

/// Real messages from `tests/fixtures`, one per kind.
const MESSAGES: [(&str, DeviceErrorKind); 6] = [
    (
        "NotImplementedError: The operator 'aten::_slow_conv2d_forward' is not currently implemented for the MPS device.",
        DeviceErrorKind::UnsupportedOp,
    ),
    (
        "Error: Tch tensor error: Internal torch error: CUDA out of memory. Tried to allocate 20.00 MiB (GPU 0; 3.95 GiB total capacity)",
        DeviceErrorKind::OutOfMemory,
    ),
    (
        "TypeError: Cannot convert a MPS Tensor to float64 dtype as the MPS framework doesn't support float64. Please use float32 instead.",
        DeviceErrorKind::UnsupportedDtype,
    ),
    (
        "RuntimeError: PyTorch is not linked with support for mps devices",
        DeviceErrorKind::Unavailable,
    ),
    (
        "RuntimeError: CUDA error: unspecified launch failure",
        DeviceErrorKind::Fault,
    ),
    (
        "RuntimeError: Expected all tensors to be on the same device, but found at least two devices, mps:0 and cpu!",
        DeviceErrorKind::NotDevice,
    ),
];

#[test]
fn each_kind_of_injected_error_takes_its_path() {
    let x = matrix();
    let expected = values(&(&x * 2.0));
    for (count, (message, kind)) in MESSAGES.into_iter().enumerate() {
        let calls = count as u64 + 1;
        chaos::inject_device_error("device_fallback::scaled_result", message, 1);
        let result = scaled_result(&x, 2.0);
        chaos::inject_device_error("device_fallback::scaled", message, 1);
        let plain = catch_unwind(AssertUnwindSafe(|| scaled(&x, 2.0)));
        if kind.falls_back() {
            assert_eq!(values(&result.unwrap()), expected, "{kind}");
            assert_eq!(values(&plain.unwrap()), expected, "{kind}");
        } else {
            let err = result.unwrap_err();
            assert_eq!(err.kind(), kind, "{err}");
            assert_eq!(err.function(), Some("device_fallback::scaled_result"));
            assert_eq!(err.device(), Some(Device::Cpu));
            assert!(message.ends_with(err.message()), "{}", err.message());
            // A plain function raises what happened: the device error.
            let payload = plain.unwrap_err();
            let text = payload.downcast_ref::<String>().unwrap();
            assert_eq!(text, &err.to_string().replace("scaled_result", "scaled"));
        }
        assert_eq!(stats_of("scaled_result").calls, calls);
    }
    let stats = stats_of("scaled_result");
    assert_eq!(
        (
            stats.unsupported_op,
            stats.out_of_memory,
            stats.unsupported_dtype,
            stats.unavailable
        ),
        (1, 1, 1, 1)
    );
    assert_eq!(stats.failures, 2, "fault and not-device are passed on");
}

#[safe_mps_op]
fn product(a: &Tensor, b: &Tensor) -> Tensor {
    a.matmul(b)
}

#[safe_mps_op]
fn product_result(a: &Tensor, b: &Tensor) -> Result<Tensor, DeviceError> {
    Ok(a.f_matmul(b)?)
}

#[test]
fn a_real_shape_mismatch_propagates_unchanged() {
    let (a, b) = (
        Tensor::ones([2, 3], (Kind::Float, Device::Cpu)),
        Tensor::ones([4, 5], (Kind::Float, Device::Cpu)),
    );
    let bare = panic_text(|| {
        let _ = a.matmul(&b);
    });
    let annotated = panic_text(|| {
        let _ = product(&a, &b);
    });
    // The same panic, resumed; only the C++ backtrace's addresses differ.
    assert!(annotated.starts_with("called `Result::unwrap()` on an `Err` value: Torch("));
    assert_eq!(device::normalize(&annotated), device::normalize(&bare));
    let err = product_result(&a, &b).unwrap_err();
    assert_eq!(err.kind(), DeviceErrorKind::NotDevice);
    assert!(
        err.message().contains("cannot be multiplied"),
        "{}",
        err.message()
    );
    assert_eq!(stats_of("product").fallbacks(), 0);
    assert_eq!(stats_of("product_result").fallbacks(), 0);
}

#[safe_mps_op]
fn buggy(x: &Tensor) -> Tensor {
    if x.numel() > 0 {
        panic!("index {} out of my own bounds", 7);
    }
    x.shallow_clone()
}

#[test]
fn a_panic_that_is_not_a_torch_error_is_resumed() {
    let text = panic_text(|| {
        let _ = buggy(&matrix());
    });
    assert_eq!(text, "index 7 out of my own bounds");
    let stats = stats_of("buggy");
    assert_eq!((stats.fallbacks(), stats.failures), (0, 0));
}

#[safe_mps_op]
fn sticky_sum(x: &Tensor, device: Device) -> Tensor {
    x.to_device(device).sum(Kind::Float)
}

#[safe_mps_op(sticky = false)]
fn forgetful_sum(x: &Tensor, device: Device) -> Tensor {
    x.to_device(device).sum(Kind::Float)
}

#[test]
fn a_sticky_fallback_skips_the_device_until_health_is_reset() {
    let x = matrix();
    for _ in 0..3 {
        assert_eq!(values(&sticky_sum(&x, Device::Mps)), [21.0]);
        assert_eq!(values(&forgetful_sum(&x, Device::Mps)), [21.0]);
    }
    let sticky = stats_of("sticky_sum");
    assert_eq!(
        (sticky.calls, sticky.unavailable, sticky.sticky_skips),
        (3, 1, 2)
    );
    let forgetful = stats_of("forgetful_sum");
    assert_eq!((forgetful.unavailable, forgetful.sticky_skips), (3, 0));

    device::reset_health();
    assert_eq!(values(&sticky_sum(&x, Device::Mps)), [21.0]);
    let sticky = stats_of("sticky_sum");
    assert_eq!(
        (sticky.unavailable, sticky.sticky_skips),
        (2, 2),
        "tried the device again"
    );
}

#[safe_mps_op(return_to = "cpu")]
fn stays_on_cpu(x: &Tensor, device: Device) -> Tensor {
    x.to_device(device) + 1
}

#[safe_mps_op]
fn back_to_origin(x: &Tensor, device: Device) -> (Tensor, Tensor) {
    let x = x.to_device(device);
    (x.relu(), x.neg())
}

#[test]
fn the_result_lands_on_the_requested_device() {
    let x = matrix();
    assert_eq!(stays_on_cpu(&x, Device::Mps).device(), Device::Cpu);
    // The device has no kernel for the op, and the move back fails: the CPU
    // result is kept (with a warning) rather than lost.
    chaos::inject_device_error(
        "device_fallback::back_to_origin",
        "Conv3D is not supported on MPS",
        1,
    );
    let (relu, neg) = back_to_origin(&x, Device::Mps);
    assert_eq!((relu.device(), neg.device()), (Device::Cpu, Device::Cpu));
    assert_eq!(values(&neg), values(&x.neg()));
    assert_eq!(stats_of("back_to_origin").unsupported_op, 1);
}

#[safe_mps_op(retries = 2)]
fn retried(x: &Tensor) -> Tensor {
    x.exp()
}

#[safe_mps_op(fallback = "none")]
fn never_falls_back(x: &Tensor) -> Result<Tensor, DeviceError> {
    Ok(x.f_exp()?)
}

#[test]
fn out_of_memory_is_retried_on_the_device_and_fallback_can_be_off() {
    let x = matrix();
    chaos::inject_device_error("device_fallback::retried", "CUDA error: out of memory", 1);
    assert_eq!(values(&retried(&x)), values(&x.exp()));
    let stats = stats_of("retried");
    assert_eq!(
        (stats.out_of_memory, stats.failures),
        (0, 0),
        "the retry succeeded"
    );

    chaos::inject_device_error(
        "device_fallback::never_falls_back",
        "CUDA error: out of memory",
        1,
    );
    let err = never_falls_back(&x).unwrap_err();
    assert_eq!(err.kind(), DeviceErrorKind::OutOfMemory);
    assert_eq!(stats_of("never_falls_back").failures, 1);
}

#[safe_mps_op]
fn inverse(x: &Tensor, device: Device) -> Tensor {
    Tensor::linalg_inv(&x.to_device(device))
}

#[test]
fn half_precision_is_upcast_when_the_cpu_lacks_the_kernel() {
    let x = Tensor::from_slice(&[2.0f32, 0.0, 0.0, 4.0])
        .view([2, 2])
        .to_kind(Kind::Half);
    let bare = panic_text(|| {
        let _ = Tensor::linalg_inv(&x);
    });
    assert_eq!(
        device::classify(&bare),
        DeviceErrorKind::UnsupportedDtype,
        "{bare}"
    );
    let inv = inverse(&x, Device::Mps);
    assert_eq!(inv.kind(), Kind::Float);
    assert_eq!(values(&inv), [0.5, 0.0, 0.0, 0.25]);
}

#[safe_mps_op]
async fn gram_later(x: &Tensor, device: Device) -> Tensor {
    tokio::task::yield_now().await;
    let x = x.to_device(device);
    x.matmul(&x.tr())
}

#[tokio::test]
async fn async_functions_fall_back_too() {
    let x = matrix();
    let result = gram_later(&x, Device::Mps).await;
    assert_eq!(values(&result), values(&gram_on_cpu(&x)));
    assert_eq!(stats_of("gram_later").unavailable, 1);
}

struct Classifier {
    hidden: nn::Linear,
    out: nn::Linear,
}

impl Classifier {
    fn new(vs: &nn::Path<'_>) -> Self {
        Self {
            hidden: nn::linear(vs / "hidden", 3, 8, Default::default()),
            out: nn::linear(vs / "out", 8, 2, Default::default()),
        }
    }

    fn forward_cpu(&self, xs: &Tensor) -> Tensor {
        xs.apply(&self.hidden).relu().apply(&self.out)
    }

    /// The forward pass, requested on `device`.
    #[safe_mps_op]
    fn forward_on(&self, xs: &Tensor, device: Device) -> Tensor {
        let xs = xs.to_device(device);
        self.out.forward(&self.hidden.forward(&xs).relu())
    }
}

#[test]
fn methods_of_a_small_nn_model() {
    let vs = nn::VarStore::new(Device::Cpu);
    let model = Classifier::new(&vs.root());
    let xs = matrix();
    let expected = values(&model.forward_cpu(&xs));
    let got = model.forward_on(&xs, Device::Mps);
    assert_eq!(got.size(), [2, 2]);
    assert_eq!(values(&got), expected);
    assert_eq!(stats_of("Classifier::forward_on").unavailable, 1);
}
