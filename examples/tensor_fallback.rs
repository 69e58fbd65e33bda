//! A small `nn::Sequential` whose weights live on the best device this
//! machine has. When the device fails a forward pass, the pass runs again on
//! a CPU copy of the weights (a `device::Replica`), and the job goes on.
//! Without a GPU, the device failures are drills (`chaos`).
//!
//! Run it with `cargo xtask demo` (it sets up libtorch).

use resilience_runtime::device::{self, Replica};
use resilience_runtime::{chaos, safe_mps_op};
use tch::nn::{self, Module, OptimizerConfig};
use tch::{Device, Kind, Tensor};

fn classifier(path: &nn::Path<'_>) -> nn::Sequential {
    nn::seq()
        .add(nn::linear(path / "hidden", 4, 16, Default::default()))
        .add_fn(|xs| xs.relu())
        .add(nn::linear(path / "out", 16, 3, Default::default()))
}

/// Class probabilities for a batch, computed where the weights are.
#[safe_mps_op]
fn predict(model: &Replica<nn::Sequential>, batch: &Tensor) -> Tensor {
    model
        .forward(&batch.to_device(model.device()))
        .softmax(-1, Kind::Float)
}

/// What a device says when it lacks a kernel.
const UNSUPPORTED: &str =
    "The operator 'aten::_softmax' is not currently implemented for the MPS device.";

fn main() {
    tracing_subscriber::fmt().with_target(false).init();

    let device = if tch::utils::has_mps() {
        Device::Mps
    } else {
        Device::cuda_if_available()
    };
    let model = Replica::new(nn::VarStore::new(device), classifier);
    let batch = Tensor::randn([5, 4], (Kind::Float, Device::Cpu));
    println!("weights on {device:?}");

    println!("1. a forward pass on the device");
    let probs = predict(&model, &batch);
    println!(
        "   got {:?} on {:?}; CPU copies so far: {}",
        probs.size(),
        probs.device(),
        model.copies()
    );

    println!("2. a drill: the device lacks a kernel, so the pass reruns on a CPU copy");
    chaos::inject_device_error("tensor_fallback::predict", UNSUPPORTED, 1);
    let rerun = predict(&model, &batch);
    println!(
        "   same answer: {}; back on {:?}; CPU copies: {}",
        rerun.allclose(&probs, 1e-6, 1e-6, false),
        rerun.device(),
        model.copies()
    );

    println!("3. a training step changes the weights; the next rerun copies them again");
    let mut sgd = nn::Sgd::default().build(model.var_store(), 0.1).unwrap();
    let targets = Tensor::from_slice(&[0i64, 1, 2, 0, 1]).to_device(device);
    let logits = model.forward(&batch.to_device(device));
    sgd.backward_step(&logits.cross_entropy_for_logits(&targets));
    chaos::inject_device_error("tensor_fallback::predict", UNSUPPORTED, 1);
    let stepped = predict(&model, &batch);
    let on_device = tch::no_grad(|| predict(&model, &batch));
    println!(
        "   matches the stepped weights: {}; CPU copies: {}",
        stepped.allclose(&on_device, 1e-6, 1e-6, false),
        model.copies()
    );

    for stats in device::stats() {
        println!(
            "{}: {} calls, {} fallbacks ({} unsupported ops), {} sticky skips, {} failures",
            stats.function,
            stats.calls,
            stats.fallbacks(),
            stats.unsupported_op,
            stats.sticky_skips,
            stats.failures
        );
    }
}
