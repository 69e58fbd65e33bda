//! A small `tch::nn` model whose forward pass is requested on MPS. On a machine
//! without MPS the op fails, runs again on the CPU, and the job goes on.
//!
//! Run it with `cargo xtask demo` (it sets up libtorch).

use resilience_runtime::{chaos, device, safe_mps_op};
use tch::{Device, Kind, Tensor, nn, nn::Module};

struct Classifier {
    hidden: nn::Linear,
    out: nn::Linear,
}

impl Classifier {
    fn new(vs: &nn::Path<'_>) -> Self {
        Self {
            hidden: nn::linear(vs / "hidden", 4, 16, Default::default()),
            out: nn::linear(vs / "out", 16, 3, Default::default()),
        }
    }

    /// The forward pass, on `device` when it can.
    #[safe_mps_op]
    fn forward_on(&self, xs: &Tensor, device: Device) -> Tensor {
        let xs = xs.to_device(device);
        self.out
            .forward(&self.hidden.forward(&xs).relu())
            .softmax(-1, Kind::Float)
    }
}

fn main() {
    tracing_subscriber::fmt().with_target(false).init();

    let vs = nn::VarStore::new(Device::Cpu);
    let model = Classifier::new(&vs.root());
    let batch = Tensor::randn([5, 4], (Kind::Float, Device::Cpu));
    println!("MPS available: {}", tch::utils::has_mps());

    println!("1. forward pass requested on MPS");
    let probs = model.forward_on(&batch, Device::Mps);
    println!("   got {:?} on {:?}", probs.size(), probs.device());

    println!("2. again: MPS is known to fail for this function, so the call goes straight to CPU");
    let again = model.forward_on(&batch, Device::Mps);
    println!(
        "   same answer: {}",
        again.allclose(&probs, 1e-6, 1e-6, false)
    );

    println!("3. a drill: the next call fails as if the GPU ran out of memory");
    chaos::inject_device_error(
        "tensor_fallback::forward_on",
        "CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 7.79 GiB total capacity)",
        1,
    );
    let drilled = model.forward_on(&batch, Device::Cpu);
    println!("   still answered: {:?}", drilled.size());

    for stats in device::stats() {
        println!(
            "{}: {} calls, {} fallbacks ({} device unavailable, {} out of memory), {} sticky skips, {} failures",
            stats.function,
            stats.calls,
            stats.fallbacks(),
            stats.unavailable,
            stats.out_of_memory,
            stats.sticky_skips,
            stats.failures
        );
    }
}
