//! `#[safe_mps_op]` on a real CUDA GPU: a real out-of-memory falls back to
//! the CPU. Without a GPU there is nothing to provoke, so the test is ignored
//! and reported as skipped; `cargo xtask test` runs it (`--ignored`) where
//! `nvidia-smi` finds a GPU, and there it fails unless CUDA is usable.
#![cfg(feature = "tch")]

mod common;

use common::values;
use resilience_runtime::device::{self, FunctionStats};
use resilience_runtime::safe_mps_op;
use tch::{Device, Kind, Tensor};

/// Asks the device for far more memory than any card has, then does the work.
#[safe_mps_op]
fn doubled_after_hog(x: &Tensor, device: Device) -> Tensor {
    if device.is_cuda() {
        // 400 GiB of f32: a real out-of-memory on any GPU.
        let _hog = Tensor::empty([100 * (1 << 30)], (Kind::Float, device));
    }
    x.to_device(device) * 2
}

#[test]
#[ignore = "needs a CUDA GPU; `cargo xtask test` runs it where `nvidia-smi` finds one"]
fn a_real_cuda_out_of_memory_falls_back_to_cpu() {
    assert!(
        tch::Cuda::is_available(),
        "CUDA is not usable from libtorch"
    );
    let x = Tensor::from_slice(&[1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0]).view([2, 3]);
    let result = doubled_after_hog(&x, Device::Cuda(0));
    assert_eq!(
        result.device(),
        Device::Cuda(0),
        "the result returns to the GPU"
    );
    assert_eq!(values(&result), values(&(&x * 2)));
    let stats: FunctionStats = device::stats()
        .into_iter()
        .find(|s| s.function == "device_cuda::doubled_after_hog")
        .expect("stats of the fallback");
    assert_eq!((stats.out_of_memory, stats.failures), (1, 0));
}

/// The same, with a result that mixes a tensor and a plain value.
#[safe_mps_op]
fn scored_after_hog(x: &Tensor, device: Device) -> (Tensor, f64) {
    if device.is_cuda() {
        let _hog = Tensor::empty([100 * (1 << 30)], (Kind::Float, device));
    }
    let y = x.to_device(device) * 2;
    let score = f64::try_from(y.sum(Kind::Float)).unwrap();
    (y, score)
}

#[test]
#[ignore = "needs a CUDA GPU; `cargo xtask test` runs it where `nvidia-smi` finds one"]
fn a_mixed_result_returns_its_tensor_to_the_gpu() {
    assert!(
        tch::Cuda::is_available(),
        "CUDA is not usable from libtorch"
    );
    let x = Tensor::from_slice(&[1.0f32, 2.0]);
    let (y, score) = scored_after_hog(&x, Device::Cuda(0));
    assert_eq!(y.device(), Device::Cuda(0));
    assert_eq!(score, 6.0);
}

#[test]
#[ignore = "needs a CUDA GPU; `cargo xtask test` runs it where `nvidia-smi` finds one"]
fn reruns_of_a_frozen_model_on_the_gpu_run_on_one_cpu_copy() {
    assert!(
        tch::Cuda::is_available(),
        "CUDA is not usable from libtorch"
    );
    common::replica::reruns_of_a_frozen_model_run_on_one_cpu_copy(Device::Cuda(0));
}

#[test]
#[ignore = "needs a CUDA GPU; `cargo xtask test` runs it where `nvidia-smi` finds one"]
fn reruns_of_a_model_in_training_on_the_gpu_see_each_step() {
    assert!(
        tch::Cuda::is_available(),
        "CUDA is not usable from libtorch"
    );
    common::replica::reruns_of_a_model_in_training_see_each_step(Device::Cuda(0));
}
