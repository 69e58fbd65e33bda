use resilience_runtime::safe_mps_op;
use tch::Tensor;

#[safe_mps_op(sticky = false, sticky = true)]
fn double(x: &Tensor) -> Tensor {
    x * 2
}

fn main() {}
