//! Drills against real libtorch: injected faults count per device attempt,
//! names include the type, stats show retries and rerun time, and an
//! injection that names no function says so. Built with `--features tch`.
#![cfg(feature = "tch")]

mod common;

use common::Recorder;
use resilience_runtime::device::FunctionStats;
use resilience_runtime::{chaos, safe_mps_op};
use tch::{Device, Kind, Tensor};

fn stats_of(function: &str) -> FunctionStats {
    common::device_stats(&format!("device_drills::{function}"))
}

const OOM: &str = "CUDA out of memory. Tried to allocate 2.00 GiB";

#[safe_mps_op(retries = 2)]
fn doubled(x: &Tensor) -> Tensor {
    x * 2
}

#[test]
fn each_device_attempt_takes_one_injection() {
    let x = Tensor::from_slice(&[1.0f32, 2.0]);
    // Two out-of-memory errors: the first attempt and the first retry fail,
    // the second retry succeeds on the device.
    chaos::inject_device_error("device_drills::doubled", OOM, 2);
    let _ = doubled(&x);
    let stats = stats_of("doubled");
    assert_eq!((stats.retries, stats.out_of_memory), (2, 0), "{stats:?}");
    assert_eq!(stats.rerun_time, std::time::Duration::ZERO);

    // Three: every retry fails, and the CPU reruns it.
    chaos::inject_device_error("device_drills::doubled", OOM, 3);
    let result = doubled(&x);
    assert_eq!(Vec::<f32>::try_from(result).unwrap(), [2.0, 4.0]);
    let stats = stats_of("doubled");
    assert_eq!((stats.retries, stats.out_of_memory), (4, 1), "{stats:?}");
    assert!(stats.rerun_time > std::time::Duration::ZERO);
}

struct Encoder;
struct Decoder;

impl Encoder {
    #[safe_mps_op]
    fn forward(&self, x: &Tensor) -> Tensor {
        x + 1
    }
}

impl Decoder {
    #[safe_mps_op]
    fn forward(&self, x: &Tensor) -> Tensor {
        x - 1
    }
}

#[test]
fn methods_of_one_name_on_two_types_are_two_functions() {
    let x = Tensor::ones([2], (Kind::Float, Device::Cpu));
    chaos::inject_device_error(
        "device_drills::Encoder::forward",
        "PyTorch is not linked with support for mps devices",
        1,
    );
    let _ = Decoder.forward(&x);
    let _ = Encoder.forward(&x);
    assert_eq!(stats_of("Encoder::forward").unavailable, 1);
    assert_eq!(stats_of("Decoder::forward").unavailable, 0);
    assert_eq!(stats_of("Decoder::forward").calls, 1);
}

#[test]
fn an_injection_for_no_function_is_a_warning() {
    let (recorder, _guard) = Recorder::install();
    chaos::inject_device_error("device_drills::dubled", OOM, 1);
    let events = recorder.events();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].field("did_you_mean"), "device_drills::doubled");
    chaos::clear();
}
