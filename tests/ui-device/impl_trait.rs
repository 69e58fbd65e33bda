use resilience_runtime::safe_mps_op;
use tch::Tensor;

#[safe_mps_op]
fn double(x: &Tensor) -> impl Into<Tensor> {
    x * 2
}

#[safe_mps_op]
fn triple(x: impl AsRef<Tensor>) -> Tensor {
    x.as_ref() * 3
}

fn main() {}
