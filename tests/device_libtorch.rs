//! Real libtorch errors, raised on this machine, get the right class.
//! Built with `--features tch` only (`cargo xtask test` runs it).
#![cfg(feature = "tch")]

mod common;

use common::panic_text;

use resilience_runtime::device::{DeviceErrorKind, classify, normalize};
use tch::{Device, Kind, Tensor};

fn absent(device: Device) -> bool {
    match device {
        Device::Cuda(_) => !tch::Cuda::is_available(),
        Device::Mps => !tch::utils::has_mps(),
        _ => false,
    }
}

#[test]
fn allocating_on_an_absent_device_is_unavailable() {
    for device in [Device::Mps, Device::Cuda(0)] {
        if !absent(device) {
            println!("{device:?} is present here; nothing to check");
            continue;
        }
        let err = Tensor::f_zeros([2, 2], (Kind::Float, device)).unwrap_err();
        assert_eq!(
            classify(&err.to_string()),
            DeviceErrorKind::Unavailable,
            "{device:?}: {err}"
        );
        let panic = panic_text(|| {
            let _ = Tensor::zeros([2, 2], (Kind::Float, device));
        });
        assert_eq!(classify(&panic), DeviceErrorKind::Unavailable, "{panic}");
        assert!(
            !normalize(&panic).contains("Exception raised from"),
            "{panic}"
        );
    }
}

#[test]
fn a_shape_mismatch_is_not_a_device_error() {
    let a = Tensor::ones([2, 3], (Kind::Float, Device::Cpu));
    let b = Tensor::ones([4, 5], (Kind::Float, Device::Cpu));
    let err = a.f_matmul(&b).unwrap_err();
    assert_eq!(
        classify(&err.to_string()),
        DeviceErrorKind::NotDevice,
        "{err}"
    );
    let panic = panic_text(|| {
        let _ = a.matmul(&b);
    });
    assert_eq!(classify(&panic), DeviceErrorKind::NotDevice, "{panic}");
}
