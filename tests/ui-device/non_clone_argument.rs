use resilience_runtime::safe_mps_op;
use tch::Tensor;

/// Owned, and not `Clone`: a CPU rerun could not get it again.
struct Weights(Vec<f32>);

#[safe_mps_op]
fn scale(x: &Tensor, weights: Weights) -> Tensor {
    x * f64::from(weights.0[0])
}

fn main() {}
