use resilience_runtime::safe_mps_op;
use tch::{Device, Tensor};

struct Batch(Tensor);

impl Batch {
    #[safe_mps_op]
    fn forward(self, device: Device) -> Tensor {
        self.0.to_device(device)
    }
}

fn main() {}
