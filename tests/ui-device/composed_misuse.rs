use resilience_runtime::{DeviceError, safe_mps_op, timeout_async};
use tch::{Device, Tensor};

#[safe_mps_op]
#[timeout_async("1s")]
fn not_async(x: &Tensor, device: Device) -> Result<Tensor, DeviceError> {
    Ok(x.f_to_device(device)?)
}

#[safe_mps_op]
#[safe_mps_op(retries = 1)]
fn twice(x: &Tensor, device: Device) -> Tensor {
    x.to_device(device)
}

fn main() {}
