//! A CPU rerun is correct, or it is refused: against real libtorch, with
//! `Device::Mps` requested on a machine without MPS (a real device error).
//! Built with `--features tch` only.
#![cfg(feature = "tch")]

mod common;

use std::panic::{AssertUnwindSafe, catch_unwind};

use common::{panic_text, values};
use resilience_runtime::device::{self, DeviceError, DeviceErrorKind, FunctionStats};
use resilience_runtime::safe_mps_op;
use tch::{Device, Kind, Tensor};

fn stats_of(function: &str) -> FunctionStats {
    common::device_stats(&format!("device_rerun::{function}"))
}

/// Doubles its input in place, then fails on the device.
#[safe_mps_op]
fn doubled_in_place(mut xs: Tensor, device: Device) -> Tensor {
    let _ = xs.g_mul_scalar_(2.0);
    xs.to_device(device)
}

#[test]
fn an_input_changed_in_place_is_not_computed_on_again() {
    let xs = Tensor::from_slice(&[1.0f32, 2.0]);
    let text = panic_text(|| {
        let _ = doubled_in_place(xs.shallow_clone(), Device::Mps);
    });
    assert!(text.contains("not linked with support for mps"), "{text}");
    // Doubled once, by the one attempt: a rerun would have returned 4x.
    assert_eq!(values(&xs), [2.0, 4.0]);
    let stats = stats_of("doubled_in_place");
    assert_eq!((stats.unavailable, stats.failures), (0, 1));
}

/// The same, asking for a snapshot: device attempts work on a copy.
#[safe_mps_op(snapshot_inputs = true)]
fn doubled_in_place_from_a_snapshot(mut xs: Tensor, device: Device) -> Tensor {
    let _ = xs.g_mul_scalar_(2.0);
    xs.to_device(device)
}

#[test]
fn a_snapshot_reruns_from_the_inputs_as_passed() {
    let xs = Tensor::from_slice(&[1.0f32, 2.0]);
    let out = doubled_in_place_from_a_snapshot(xs.shallow_clone(), Device::Mps);
    // The failed attempt doubled a copy; the rerun doubled the input once.
    assert_eq!(values(&out), [2.0, 4.0]);
    assert_eq!(values(&xs), [2.0, 4.0]);
    assert_eq!(stats_of("doubled_in_place_from_a_snapshot").unavailable, 1);
}

/// Takes the input by value without changing it: reruns as before.
#[safe_mps_op]
fn doubled(xs: Tensor, device: Device) -> Tensor {
    xs.to_device(device) * 2
}

#[test]
fn an_input_taken_by_value_and_left_alone_is_rerun() {
    let xs = Tensor::from_slice(&[1.0f32, 2.0]);
    assert_eq!(
        values(&doubled(xs.shallow_clone(), Device::Mps)),
        [2.0, 4.0]
    );
    assert_eq!(values(&xs), [1.0, 2.0]);
}

struct Trainer {
    steps: u32,
}

impl Trainer {
    /// A side effect, then a device op that fails.
    #[safe_mps_op]
    fn step(&mut self, xs: &Tensor, device: Device) -> Result<Tensor, DeviceError> {
        self.steps += 1;
        Ok(xs.to_device(device) * 2)
    }

    #[safe_mps_op(rerun = "idempotent")]
    fn step_again(&mut self, xs: &Tensor, device: Device) -> Result<Tensor, DeviceError> {
        self.steps += 1;
        Ok(xs.to_device(device) * 2)
    }
}

#[test]
fn mutable_state_is_not_run_twice_unless_the_function_says_it_may() {
    let xs = Tensor::from_slice(&[1.0f32, 2.0]);
    let mut trainer = Trainer { steps: 0 };
    let err = trainer.step(&xs, Device::Mps).unwrap_err();
    assert_eq!(err.kind(), DeviceErrorKind::Unavailable);
    assert_eq!(trainer.steps, 1, "stepped once");

    let mut trainer = Trainer { steps: 0 };
    let doubled = trainer.step_again(&xs, Device::Mps).unwrap();
    assert_eq!(values(&doubled), [2.0, 4.0]);
    assert_eq!(trainer.steps, 2, "idempotent: run again on the CPU");
}

#[safe_mps_op(sticky = true)]
fn product(a: &Tensor, b: &Tensor, device: Device) -> Result<Tensor, DeviceError> {
    Ok(a.to_device(device).matmul(&b.to_device(device)))
}

#[safe_mps_op]
fn product_returned(a: &Tensor, b: &Tensor, device: Device) -> Result<Tensor, DeviceError> {
    let a = a.f_to_device(device)?;
    Ok(a.f_matmul(&b.f_to_device(device)?)?)
}

#[test]
fn when_the_cpu_fails_too_its_failure_is_the_answer_and_nothing_is_marked() {
    let (a, b) = (
        Tensor::ones([2, 3], (Kind::Float, Device::Cpu)),
        Tensor::ones([4, 5], (Kind::Float, Device::Cpu)),
    );
    // A user bug behind a device error: the caller learns of the bug, as it
    // would without the attribute (a shape mismatch panics in a plain tch
    // method, and is an `Err` from an `f_` one).
    let text = panic_text(|| {
        let _ = product(&a, &b, Device::Mps);
    });
    assert!(text.contains("cannot be multiplied"), "{text}");
    let err = product_returned(&a, &b, Device::Mps).unwrap_err();
    assert_eq!(err.kind(), DeviceErrorKind::NotDevice, "{err}");
    assert!(err.message().contains("cannot be multiplied"), "{err}");

    // The device was not proven at fault: the next call tries it again.
    let ok = Tensor::ones([3, 2], (Kind::Float, Device::Cpu));
    assert_eq!(values(&product(&a, &ok, Device::Mps).unwrap()), [3.0; 4]);
    assert_eq!(stats_of("product").sticky_skips, 0);
    // That rerun proved it: now it is marked.
    let _ = product(&a, &ok, Device::Mps).unwrap();
    assert_eq!(stats_of("product").sticky_skips, 1);
}

#[safe_mps_op]
fn inverse_here(x: &Tensor) -> Tensor {
    Tensor::linalg_inv(x)
}

#[safe_mps_op]
fn softmax_here(x: &Tensor) -> Tensor {
    x.softmax(-1, None)
}

#[safe_mps_op]
fn inverse_result(x: &Tensor) -> Result<Tensor, DeviceError> {
    Ok(Tensor::linalg_inv(x))
}

#[test]
fn a_call_that_never_left_the_cpu_is_untouched() {
    let half = Tensor::from_slice(&[2.0f32, 0.0, 0.0, 4.0])
        .view([2, 2])
        .to_kind(Kind::Half);
    let bare = panic_text(|| {
        let _ = Tensor::linalg_inv(&half);
    });
    let annotated = panic_text(|| {
        let _ = inverse_here(&half);
    });
    assert_eq!(device::normalize(&annotated), device::normalize(&bare));

    // A `Result` function too: a panic stays a panic, as without the
    // attribute.
    let in_result = panic_text(|| {
        let _ = inverse_result(&half);
    });
    assert_eq!(device::normalize(&in_result), device::normalize(&bare));

    let long = Tensor::from_slice(&[1i64, 2, 3]);
    assert!(catch_unwind(AssertUnwindSafe(|| softmax_here(&long))).is_err());
    for function in ["inverse_here", "softmax_here"] {
        let stats = stats_of(function);
        assert_eq!(
            (
                stats.unsupported_op,
                stats.unsupported_dtype,
                stats.failures,
                stats.sticky_skips
            ),
            (0, 0, 0, 0),
            "{function}: no rerun, no count"
        );
    }
}

#[test]
fn the_device_error_is_exported_beside_the_others() {
    let error: resilience_runtime::DeviceError = DeviceError::new("CUDA error: out of memory");
    assert_eq!(error.kind(), DeviceErrorKind::OutOfMemory);
}

#[safe_mps_op]
fn with_context(x: &Tensor, device: Device) -> anyhow::Result<Tensor> {
    use anyhow::Context as _;
    let x = x.f_to_device(device).context("moving the batch")?;
    Ok(x * 2)
}

#[derive(Debug, thiserror::Error)]
enum InferError {
    #[error("moving the batch")]
    Moving(#[from] tch::TchError),
    #[error(transparent)]
    Device(#[from] DeviceError),
}

#[safe_mps_op]
fn with_source(x: &Tensor, device: Device) -> Result<Tensor, InferError> {
    let x = x.f_to_device(device)?;
    Ok(x * 2)
}

/// An error that shows none of its source, in `Display` or in `Debug`.
#[derive(thiserror::Error)]
enum Opaque {
    #[error("the forward pass failed")]
    Forward(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("the device failed")]
    Device(#[from] DeviceError),
}

impl std::fmt::Debug for Opaque {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Opaque")
    }
}

/// A `TchError` two sources down, behind a boxed error.
#[derive(Debug, thiserror::Error)]
#[error("moving the batch")]
struct Moving(#[source] tch::TchError);

#[safe_mps_op]
fn with_hidden_source(x: &Tensor, device: Device) -> Result<Tensor, Opaque> {
    let x = x
        .f_to_device(device)
        .map_err(|error| Opaque::Forward(Box::new(Moving(error))))?;
    Ok(x * 2)
}

#[test]
fn a_libtorch_error_wrapped_in_context_still_falls_back() {
    let x = Tensor::from_slice(&[1.0f32, 2.0]);
    assert_eq!(values(&with_context(&x, Device::Mps).unwrap()), [2.0, 4.0]);
    assert_eq!(values(&with_source(&x, Device::Mps).unwrap()), [2.0, 4.0]);
    assert_eq!(
        values(&with_hidden_source(&x, Device::Mps).unwrap()),
        [2.0, 4.0]
    );
    assert_eq!(stats_of("with_context").unavailable, 1);
    assert_eq!(stats_of("with_source").unavailable, 1);
    assert_eq!(stats_of("with_hidden_source").unavailable, 1);
}

#[safe_mps_op]
async fn infer(xs: Tensor, scale: f64, device: Device) -> Tensor {
    tokio::task::yield_now().await;
    xs.to_device(device) * scale
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_async_function_is_send_when_its_body_is() {
    let xs = Tensor::from_slice(&[1.0f32, 2.0]);
    let out = tokio::spawn(infer(xs, 3.0, Device::Mps)).await.unwrap();
    assert_eq!(values(&out), [3.0, 6.0]);
    assert_eq!(stats_of("infer").unavailable, 1);
}

#[test]
fn results_that_mix_tensors_and_plain_values_can_move_back() {
    fn moves_back<T: device::ToOrigin>() {}
    moves_back::<(Tensor, f64)>();
    moves_back::<(Tensor, Vec<i64>, bool)>();
    moves_back::<Option<(Tensor, usize)>>();
}
