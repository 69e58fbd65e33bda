use resilience_runtime::safe_mps_op;
use tch::Tensor;

trait Model {
    #[safe_mps_op]
    fn forward(&self, xs: &Tensor) -> Tensor;
}

#[safe_mps_op]
struct Net;

fn main() {}
