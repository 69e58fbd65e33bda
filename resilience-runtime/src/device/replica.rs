//! A model whose weights live on a device, with a CPU copy for reruns.
//!
//! Moving a call's arguments to the CPU cannot rerun a forward pass whose
//! weights stay on the device: libtorch refuses to mix devices. A
//! [`Replica`] owns the model and its `VarStore`; passed to a
//! `#[safe_mps_op]` function by reference, it is the model itself on the
//! device, and a CPU copy of it in a rerun.

use std::ops::Deref;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, PoisonError};

use tch::nn::{Path, VarStore};
use tch::{Device, TchError, Tensor};

use super::args::{Lent, Target, TensorArg};

type Build<M> = dyn Fn(&Path<'_>) -> M + Send + Sync;

/// A model built on a [`VarStore`], with a CPU copy made when a
/// `#[safe_mps_op]` call reruns on the CPU.
///
/// The copy is built with the same function, in a `VarStore` of its own on
/// the CPU. While any variable is trainable, each rerun copies the weights
/// afresh: libtorch's optimizers write them through `.data`, which leaves no
/// trace a copy could be checked against. A frozen store (`freeze`, as for
/// inference) is copied once, and again when a rerun finds that a variable
/// changed in place since (`load`, `copy_`: libtorch's version counters
/// tell); weights changed in inference mode keep no version, so call
/// [`refresh`](Self::refresh) after such a change.
///
/// The copy's variables are frozen: a rerun's result carries no gradient, so
/// a training step on it fails loudly (libtorch: "does not require grad")
/// instead of updating nothing.
///
/// ```no_run
/// use resilience_runtime::device::Replica;
/// use resilience_runtime::safe_mps_op;
/// use tch::nn::{self, Module};
/// use tch::{Device, Tensor};
///
/// fn mlp(path: &nn::Path<'_>) -> nn::Sequential {
///     nn::seq()
///         .add(nn::linear(path / "hidden", 4, 16, Default::default()))
///         .add_fn(|xs| xs.relu())
///         .add(nn::linear(path / "out", 16, 2, Default::default()))
/// }
///
/// #[safe_mps_op]
/// fn predict(model: &Replica<nn::Sequential>, batch: &Tensor) -> Tensor {
///     model.forward(&batch.to_device(model.device()))
/// }
///
/// let model = Replica::new(nn::VarStore::new(Device::Mps), mlp);
/// let scores = predict(&model, &Tensor::zeros([8, 4], (tch::Kind::Float, Device::Cpu)));
/// assert_eq!(scores.size(), [8, 2]);
/// ```
pub struct Replica<M> {
    store: VarStore,
    model: M,
    build: Arc<Build<M>>,
    /// The store's variables (sharing their version counters), in one order.
    variables: Vec<Tensor>,
    cpu: Mutex<Option<Copy<M>>>,
    copies: AtomicU64,
}

/// The CPU copy, and the version of the weights it was copied from.
struct Copy<M> {
    replica: Arc<Replica<M>>,
    version: Option<i64>,
}

impl<M> Replica<M> {
    /// Builds the model with `build` on the root of `store`.
    pub fn new(store: VarStore, build: impl Fn(&Path<'_>) -> M + Send + Sync + 'static) -> Self {
        let model = build(&store.root());
        Self::of(store, model, Arc::new(build))
    }

    fn of(store: VarStore, model: M, build: Arc<Build<M>>) -> Self {
        Self {
            variables: store.variables().into_values().collect(),
            store,
            model,
            build,
            cpu: Mutex::new(None),
            copies: AtomicU64::new(0),
        }
    }

    /// The model's variables, for an optimizer or `load`.
    pub fn var_store(&self) -> &VarStore {
        &self.store
    }

    /// The model's variables, for `freeze`, `half` and the like.
    pub fn var_store_mut(&mut self) -> &mut VarStore {
        &mut self.store
    }

    /// The device of the model's variables.
    pub fn device(&self) -> Device {
        self.store.device()
    }

    /// How many times the weights were copied to the CPU.
    pub fn copies(&self) -> u64 {
        self.copies.load(Relaxed)
    }

    /// Copies the weights to the CPU copy at its next use, changed or not.
    pub fn refresh(&self) {
        *self.cpu.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }

    /// The CPU copy, copied again first when the weights may have changed
    /// since the last copy.
    pub fn cpu(&self) -> Result<Arc<Replica<M>>, TchError> {
        let mut cpu = self.cpu.lock().unwrap_or_else(PoisonError::into_inner);
        let version = self.version();
        if let Some(copy) = cpu
            .as_ref()
            .filter(|copy| version.is_some() && copy.version == version)
        {
            return Ok(Arc::clone(&copy.replica));
        }
        // A fresh copy each time: a rerun still running on the last one
        // keeps computing on the weights it started with.
        let mut store = VarStore::new(Device::Cpu);
        let model = tch::no_grad(|| -> Result<_, TchError> {
            let model = (self.build)(&store.root());
            let mut sources = self.store.variables();
            for (name, mut variable) in store.variables() {
                let source = sources.remove(&name).ok_or_else(|| {
                    TchError::TensorNameNotFound(name, "the device's VarStore".into())
                })?;
                variable.f_copy_(&source)?;
            }
            Ok(model)
        })?;
        store.freeze();
        let replica = Arc::new(Replica::of(store, model, Arc::clone(&self.build)));
        self.copies.fetch_add(1, Relaxed);
        *cpu = Some(Copy {
            replica: Arc::clone(&replica),
            version,
        });
        Ok(replica)
    }

    /// The sum of the variables' version counters, which every in-place
    /// change advances; `None` while a variable is trainable, whose changes
    /// an optimizer makes without one.
    fn version(&self) -> Option<i64> {
        self.variables
            .iter()
            .map(|variable| {
                (!variable.requires_grad()).then(|| variable.f_internal_version().unwrap_or(0))
            })
            .sum()
    }
}

impl<M> Deref for Replica<M> {
    type Target = M;

    fn deref(&self) -> &M {
        &self.model
    }
}

impl<M: std::fmt::Debug> std::fmt::Debug for Replica<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replica")
            .field("device", &self.device())
            .field("model", &self.model)
            .field("copies", &self.copies())
            .finish_non_exhaustive()
    }
}

/// On the device, the model itself; in a CPU rerun, its CPU copy.
impl<'x, M> TensorArg for &'x Replica<M> {
    type Held<'a>
        = Lent<'x, Replica<M>, Arc<Replica<M>>>
    where
        Self: 'a;

    fn device(&self) -> Option<Device> {
        Some(self.store.device())
    }

    fn hold(&self, target: Target) -> Result<Self::Held<'_>, TchError> {
        Ok(match target {
            Target::Device | Target::DeviceCopy => Lent::Same(*self),
            Target::Cpu | Target::CpuUpcast => Lent::Moved(self.cpu()?),
        })
    }
}
