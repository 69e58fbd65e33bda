use resilience_runtime::safe_mps_op;
use tch::{TchError, Tensor};

#[safe_mps_op]
fn double(x: &Tensor) -> Result<Tensor, TchError> {
    x.f_mul_scalar(2.0)
}

fn main() {}
