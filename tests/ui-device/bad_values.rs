use resilience_runtime::safe_mps_op;
use tch::Tensor;

#[safe_mps_op(fallback = "gpu", return_to = origin, sticky = 1, retries = -1)]
fn double(x: &Tensor) -> Tensor {
    x * 2
}

fn main() {}
