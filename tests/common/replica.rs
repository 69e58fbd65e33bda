//! The drill of a model whose weights live on `device`, shared by the CPU
//! test and the CUDA one.

use std::cell::RefCell;
use std::sync::{Mutex, MutexGuard, PoisonError};

use super::values;
use resilience_runtime::device::Replica;
use resilience_runtime::{chaos, safe_mps_op};
use tch::nn::{self, Module, OptimizerConfig};
use tch::{Device, Kind, Tensor};

fn mlp(path: &nn::Path<'_>) -> nn::Sequential {
    nn::seq()
        .add(nn::linear(path / "hidden", 4, 8, Default::default()))
        .add_fn(|xs| xs.relu())
        .add(nn::linear(path / "out", 8, 2, Default::default()))
}

/// One drill at a time: injections name the function, not the thread.
fn one_at_a_time() -> MutexGuard<'static, ()> {
    static DRILL: Mutex<()> = Mutex::new(());
    DRILL.lock().unwrap_or_else(PoisonError::into_inner)
}

thread_local! {
    /// The address of each model `predict` ran with on this thread.
    static RAN_WITH: RefCell<Vec<usize>> = const { RefCell::new(Vec::new()) };
}

#[safe_mps_op]
fn predict(model: &Replica<nn::Sequential>, batch: &Tensor) -> Tensor {
    RAN_WITH.with_borrow_mut(|ran| ran.push(std::ptr::from_ref(model) as usize));
    model.forward(&batch.to_device(model.device()))
}

const UNSUPPORTED: &str =
    "The operator 'aten::_linear' is not currently implemented for the MPS device.";

fn predict_path() -> String {
    format!("{}::predict", module_path!())
}

/// One call of `predict`, whose device attempt fails when `fail` says so
/// (an injected failure replaces the attempt): the models it ran with.
fn call(model: &Replica<nn::Sequential>, batch: &Tensor, fail: bool) -> (Tensor, Vec<usize>) {
    RAN_WITH.with_borrow_mut(Vec::clear);
    if fail {
        chaos::inject_device_error(&predict_path(), UNSUPPORTED, 1);
    }
    let out = predict(model, batch);
    (out, RAN_WITH.take())
}

fn failing_once(model: &Replica<nn::Sequential>, batch: &Tensor) -> (Tensor, Vec<usize>) {
    call(model, batch, true)
}

/// What the model computes on `batch`, without the attribute.
fn expected(model: &Replica<nn::Sequential>, batch: &Tensor) -> Vec<f32> {
    values(&tch::no_grad(|| {
        model.forward(&batch.to_device(model.device()))
    }))
}

/// A rerun runs on the CPU copy of a frozen model, which is made once, and
/// again after its weights were loaded anew.
pub(crate) fn reruns_of_a_frozen_model_run_on_one_cpu_copy(device: Device) {
    let _drill = one_at_a_time();
    tch::manual_seed(7);
    let mut model = Replica::new(nn::VarStore::new(device), mlp);
    model.var_store_mut().freeze();
    let batch = Tensor::randn([3, 4], (Kind::Float, Device::Cpu));
    let own = std::ptr::from_ref(&model) as usize;

    let (_, ran_with) = call(&model, &batch, false);
    assert_eq!(ran_with, [own], "the device runs the model itself");
    assert_eq!(model.copies(), 0, "nothing copied while the device works");

    let (out, ran_with) = failing_once(&model, &batch);
    let [copy] = ran_with[..] else {
        panic!("one rerun: {ran_with:?}");
    };
    assert_ne!(copy, own, "the rerun runs the copy");
    assert_eq!(model.copies(), 1);
    assert_eq!(out.device(), device, "the result returns to the device");
    assert_eq!(values(&out), expected(&model, &batch));

    // Unchanged weights: the same copy, not copied again.
    let (_, ran_with) = failing_once(&model, &batch);
    assert_eq!((ran_with, model.copies()), (vec![copy], 1));

    // New weights, copied in place as `VarStore::load` does.
    let before = expected(&model, &batch);
    tch::no_grad(|| {
        for (_, mut variable) in model.var_store().variables() {
            let _ = variable.f_mul_scalar_(0.5).unwrap();
        }
    });
    let after = expected(&model, &batch);
    assert_ne!(before, after);
    let (out, _) = failing_once(&model, &batch);
    assert_eq!(model.copies(), 2, "copied again after the change");
    assert_eq!(values(&out), after);

    // A copy asked for explicitly.
    model.refresh();
    let _ = failing_once(&model, &batch);
    assert_eq!(model.copies(), 3);
}

/// A model in training: each rerun copies the weights, so a rerun after an
/// optimizer step computes with the stepped weights, and its result carries
/// no gradient.
pub(crate) fn reruns_of_a_model_in_training_see_each_step(device: Device) {
    let _drill = one_at_a_time();
    tch::manual_seed(7);
    let model = Replica::new(nn::VarStore::new(device), mlp);
    let batch = Tensor::randn([3, 4], (Kind::Float, Device::Cpu));
    let mut sgd = nn::Sgd::default().build(model.var_store(), 0.5).unwrap();

    let (out, _) = failing_once(&model, &batch);
    assert_eq!(values(&out), expected(&model, &batch));
    assert!(!out.requires_grad(), "the copy's weights are frozen");
    assert_eq!(model.copies(), 1);

    // An optimizer step writes the weights without advancing their version.
    let before = expected(&model, &batch);
    sgd.backward_step(
        &model
            .forward(&batch.to_device(device))
            .square()
            .sum(Kind::Float),
    );
    let after = expected(&model, &batch);
    assert_ne!(before, after, "the step changed the weights");

    let (out, _) = failing_once(&model, &batch);
    assert_eq!(model.copies(), 2, "copied again after the step");
    assert_eq!(values(&out), after);
}

/// A rerun computes in the weights' own kind: an `f64` model is copied as
/// `f64`, not narrowed to `f32`.
pub(crate) fn a_double_precision_model_is_copied_as_it_is(device: Device) {
    let _drill = one_at_a_time();
    tch::manual_seed(7);
    let mut store = nn::VarStore::new(device);
    store.set_kind(Kind::Double);
    let model = Replica::new(store, mlp);
    let batch = Tensor::randn([3, 4], (Kind::Double, Device::Cpu));
    let (out, _) = failing_once(&model, &batch);
    assert_eq!(out.kind(), Kind::Double);
    let expected = tch::no_grad(|| model.forward(&batch.to_device(device)));
    assert!(
        out.to_device(Device::Cpu)
            .equal(&expected.to_device(Device::Cpu))
    );
}
