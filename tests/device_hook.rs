//! The first `#[safe_mps_op]` call of a process may happen while a thread
//! unwinds (in a destructor): installing the quiet panic hook then would
//! abort the process. One test in its own binary, so that no earlier call has
//! installed the hook. Built with `--features tch` only.
#![cfg(feature = "tch")]

use std::panic::catch_unwind;

use resilience_runtime::safe_mps_op;
use tch::{Device, Tensor};

#[safe_mps_op]
fn doubled(x: &Tensor, device: Device) -> Tensor {
    x.to_device(device) * 2
}

struct FallsBackOnDrop;

impl Drop for FallsBackOnDrop {
    fn drop(&mut self) {
        let x = Tensor::from_slice(&[1.0f32, 2.0]);
        let y = doubled(&x, Device::Mps);
        assert_eq!(Vec::<f32>::try_from(y).unwrap(), [2.0, 4.0]);
    }
}

#[test]
fn a_first_call_during_unwinding_falls_back_without_aborting() {
    let unwound = catch_unwind(|| {
        let _guard = FallsBackOnDrop;
        panic!("the caller's own panic");
    });
    assert!(unwound.is_err());
    // Later calls install the hook and fall back as usual.
    let x = Tensor::from_slice(&[1.0f32]);
    assert_eq!(
        Vec::<f32>::try_from(doubled(&x, Device::Mps)).unwrap(),
        [2.0]
    );
}
