//! A model whose weights live on a device, with a CPU copy for reruns.
//!
//! Moving a call's arguments to the CPU cannot rerun a forward pass whose
//! weights stay on the device: libtorch refuses to mix devices. A
//! [`Replica`] owns the model and its `VarStore`; passed to a
//! `#[safe_mps_op]` function by reference, it is the model itself on the
//! device, and a CPU copy of it in a rerun.

use std::borrow::Borrow;
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
/// The copy has the weights' own kind; a half-precision rerun that is
/// upcast gets an `f32` copy. Each copy is lent to one rerun at a time.
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
    /// The CPU copies not lent to a rerun now: in the weights' own kind,
    /// and in `f32` (for a half-precision model whose rerun is upcast).
    cpu: Mutex<[Option<Copy<M>>; 2]>,
    copies: AtomicU64,
}

/// A CPU copy, and the version of the weights it was copied from.
struct Copy<M> {
    replica: Box<Replica<M>>,
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
            store,
            model,
            build,
            cpu: Mutex::new([None, None]),
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
        *self.cpu.lock().unwrap_or_else(PoisonError::into_inner) = [None, None];
    }

    /// A CPU copy for a rerun (`upcast`: in `f32`), copied again first when
    /// the weights may have changed since the last copy. It is lent: a
    /// concurrent rerun gets a copy of its own, and the copy goes back when
    /// the rerun is done.
    fn lease(&self, upcast: bool) -> Result<Lease<'_, M>, TchError> {
        let slot = usize::from(upcast);
        let version = self.version();
        let cached = self.cpu.lock().unwrap_or_else(PoisonError::into_inner)[slot].take();
        let copy = match cached {
            Some(copy) if version.is_some() && copy.version == version => copy,
            _ => Copy {
                replica: Box::new(self.copy_to_cpu(upcast)?),
                version,
            },
        };
        Ok(Lease {
            copy: Some(copy),
            home: self,
            slot,
        })
    }

    /// A fresh CPU copy, built by the same function, frozen: in the weights'
    /// own kind, or in `f32` when `upcast`.
    fn copy_to_cpu(&self, upcast: bool) -> Result<Replica<M>, TchError> {
        let mut sources = self.store.variables();
        let mut store = VarStore::new(Device::Cpu);
        let model = tch::no_grad(|| -> Result<_, TchError> {
            let model = (self.build)(&store.root());
            let kind = sources
                .values()
                .find(|variable| variable.is_floating_point())
                .map(Tensor::kind);
            if let Some(kind) = kind.filter(|_| !upcast) {
                store.set_kind(kind);
            }
            for (name, mut variable) in store.variables() {
                let source = sources.remove(&name).ok_or_else(|| {
                    TchError::TensorNameNotFound(name, "the device's VarStore".into())
                })?;
                variable.f_copy_(&source)?;
            }
            Ok(model)
        })?;
        store.freeze();
        self.copies.fetch_add(1, Relaxed);
        Ok(Replica::of(store, model, Arc::clone(&self.build)))
    }

    /// The sum of the variables' version counters, which every in-place
    /// change advances; `None` while a variable is trainable, whose changes
    /// an optimizer makes without one.
    fn version(&self) -> Option<i64> {
        self.store
            .variables()
            .values()
            .map(|variable| {
                (!variable.requires_grad()).then(|| variable.f_internal_version().unwrap_or(0))
            })
            .sum()
    }
}

/// A CPU copy lent to one rerun; it goes back to its replica when dropped,
/// unless another rerun brought one back first.
#[doc(hidden)]
pub struct Lease<'a, M> {
    copy: Option<Copy<M>>,
    home: &'a Replica<M>,
    slot: usize,
}

impl<M> Borrow<Replica<M>> for Lease<'_, M> {
    fn borrow(&self) -> &Replica<M> {
        &self.copy.as_ref().expect("lent until dropped").replica
    }
}

impl<M> Drop for Lease<'_, M> {
    fn drop(&mut self) {
        let mut cpu = self.home.cpu.lock().unwrap_or_else(PoisonError::into_inner);
        if cpu[self.slot].is_none() {
            cpu[self.slot] = self.copy.take();
        }
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
        = Lent<'x, Replica<M>, Lease<'x, M>>
    where
        Self: 'a;

    fn device(&self) -> Option<Device> {
        Some(self.store.device())
    }

    fn hold(&self, target: Target) -> Result<Self::Held<'_>, TchError> {
        Ok(match target {
            Target::Device | Target::DeviceCopy => Lent::Same(*self),
            Target::Cpu => Lent::Moved(self.lease(false)?),
            Target::CpuUpcast => Lent::Moved(self.lease(true)?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::Replica;

    #[test]
    fn a_replica_crosses_threads_as_its_model_does() {
        fn send<T: Send>() {}
        fn sync<T: Sync>() {}
        send::<Replica<std::sync::Mutex<u8>>>();
        sync::<Replica<std::sync::Mutex<u8>>>();
        send::<Replica<tch::nn::Sequential>>();
    }
}
