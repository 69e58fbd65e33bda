use resilience_runtime::safe_mps_op;
use tch::Tensor;

#[safe_mps_op(retry = 2)]
fn double(x: &Tensor) -> Tensor {
    x * 2
}

fn main() {}
