//! How arguments reach a rerun.
//!
//! An expansion cannot know from tokens alone whether an argument holds
//! tensors, so it asks the type, with autoref-based dispatch:
//! `(&&&Arg(&x)).hold(target)` resolves, in this order of preference, to
//! [`TensorArg`] (tensors move to the CPU), `Copy` (copied) or `Clone`
//! (cloned). On the device, borrowed tensors are passed through untouched; a
//! tensor passed by value costs one `shallow_clone`, so that a rerun still
//! has it. How results go back is in [`output`](super::output).

use tch::{Device, Kind, TchError, Tensor};

/// Where a rerun runs.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// On the inputs' device.
    Device,
    /// On the inputs' device, with tensors passed by value copied, so that
    /// a rerun starts from the inputs as they were (`snapshot_inputs`).
    DeviceCopy,
    /// On the CPU.
    Cpu,
    /// On the CPU, with half-precision inputs upcast to `f32`.
    CpuUpcast,
}

impl Target {
    /// Whether the call runs on the inputs' device.
    pub(crate) fn on_device(self) -> bool {
        matches!(self, Target::Device | Target::DeviceCopy)
    }
}

/// An argument type that carries tensors or a device.
///
/// Implemented for `Tensor`, `&Tensor`, `Option` of these, `&[Tensor]`,
/// `Vec<Tensor>`, `Device`, and tuples of two or three of them.
pub trait TensorArg {
    /// What one call's argument is made from.
    #[doc(hidden)]
    type Held<'a>
    where
        Self: 'a;

    /// The device of the first tensor (or the device itself).
    fn device(&self) -> Option<Device>;

    /// Whether the argument names the device to run on (a `Device`), which
    /// takes precedence over where the tensors happen to be.
    fn names_device(&self) -> bool {
        false
    }

    /// The sum of its tensors' in-place version counters, which every
    /// in-place op advances (0 without tensors, or for a tensor that keeps
    /// none, such as one made in inference mode).
    fn version(&self) -> i64 {
        0
    }

    #[doc(hidden)]
    fn hold(&self, target: Target) -> Result<Self::Held<'_>, TchError>;
}

/// Turns what was held into the argument of one call.
#[doc(hidden)]
pub trait Param<'a> {
    type Out;
    fn param(&'a mut self) -> Self::Out;
}

fn move_tensor(tensor: &Tensor, target: Target) -> Result<Tensor, TchError> {
    match target {
        Target::Device => Ok(tensor.shallow_clone()),
        Target::DeviceCopy => {
            let mut copy = tensor.f_zeros_like()?;
            copy.f_copy_(tensor)?;
            Ok(copy)
        }
        Target::Cpu => tensor.f_to_device(Device::Cpu),
        Target::CpuUpcast => {
            let cpu = tensor.f_to_device(Device::Cpu)?;
            match cpu.kind() {
                Kind::Half | Kind::BFloat16 => cpu.f_to_kind(Kind::Float),
                Kind::ComplexHalf => cpu.f_to_kind(Kind::ComplexFloat),
                _ => Ok(cpu),
            }
        }
    }
}

/// An argument passed by value: taken by the one call it is made for.
#[doc(hidden)]
pub struct Taken<T>(Option<T>);

impl<'a, T> Param<'a> for Taken<T> {
    type Out = T;
    fn param(&'a mut self) -> T {
        self.0.take().expect("each held argument serves one call")
    }
}

/// A borrowed argument: the caller's own on the device, a moved copy otherwise.
#[doc(hidden)]
pub enum Lent<'a, T: ?Sized, O> {
    Same(&'a T),
    Moved(O),
}

impl<'b, T: ?Sized + 'b, O: std::borrow::Borrow<T>> Param<'b> for Lent<'_, T, O> {
    type Out = &'b T;
    fn param(&'b mut self) -> &'b T {
        match self {
            Lent::Same(value) => value,
            Lent::Moved(owned) => std::borrow::Borrow::borrow(owned),
        }
    }
}

fn version_of(tensor: &Tensor) -> i64 {
    tensor.f_internal_version().unwrap_or(0)
}

impl TensorArg for Tensor {
    type Held<'a> = Taken<Tensor>;
    fn device(&self) -> Option<Device> {
        Some(Tensor::device(self))
    }
    fn version(&self) -> i64 {
        version_of(self)
    }
    fn hold(&self, target: Target) -> Result<Taken<Tensor>, TchError> {
        move_tensor(self, target).map(|t| Taken(Some(t)))
    }
}

// A borrowed argument is held with its own lifetime, not the lifetime of the
// borrow of the variable that holds it, so that an async runner can lend its
// arguments one call at a time.
impl<'x> TensorArg for &'x Tensor {
    type Held<'a>
        = Lent<'x, Tensor, Tensor>
    where
        Self: 'a;
    fn device(&self) -> Option<Device> {
        Some(Tensor::device(self))
    }
    fn version(&self) -> i64 {
        version_of(self)
    }
    fn hold(&self, target: Target) -> Result<Lent<'x, Tensor, Tensor>, TchError> {
        Ok(match target {
            Target::Device | Target::DeviceCopy => Lent::Same(*self),
            _ => Lent::Moved(move_tensor(self, target)?),
        })
    }
}

impl<'x> TensorArg for &'x [Tensor] {
    type Held<'a>
        = Lent<'x, [Tensor], Vec<Tensor>>
    where
        Self: 'a;
    fn device(&self) -> Option<Device> {
        self.first().map(Tensor::device)
    }
    fn version(&self) -> i64 {
        self.iter().map(version_of).sum()
    }
    fn hold(&self, target: Target) -> Result<Lent<'x, [Tensor], Vec<Tensor>>, TchError> {
        Ok(match target {
            Target::Device | Target::DeviceCopy => Lent::Same(*self),
            _ => Lent::Moved(moved_all(self, target)?),
        })
    }
}

impl TensorArg for Vec<Tensor> {
    type Held<'a> = Taken<Vec<Tensor>>;
    fn device(&self) -> Option<Device> {
        self.first().map(Tensor::device)
    }
    fn version(&self) -> i64 {
        self.iter().map(version_of).sum()
    }
    fn hold(&self, target: Target) -> Result<Taken<Vec<Tensor>>, TchError> {
        moved_all(self, target).map(|v| Taken(Some(v)))
    }
}

fn moved_all(tensors: &[Tensor], target: Target) -> Result<Vec<Tensor>, TchError> {
    tensors.iter().map(|t| move_tensor(t, target)).collect()
}

impl TensorArg for Device {
    type Held<'a> = Taken<Device>;
    fn device(&self) -> Option<Device> {
        Some(*self)
    }
    fn names_device(&self) -> bool {
        true
    }
    fn hold(&self, target: Target) -> Result<Taken<Device>, TchError> {
        Ok(Taken(Some(match target {
            Target::Device | Target::DeviceCopy => *self,
            Target::Cpu | Target::CpuUpcast => Device::Cpu,
        })))
    }
}

impl<T: TensorArg> TensorArg for Option<T> {
    type Held<'a>
        = Option<T::Held<'a>>
    where
        Self: 'a;
    fn device(&self) -> Option<Device> {
        self.as_ref().and_then(T::device)
    }
    fn names_device(&self) -> bool {
        self.as_ref().is_some_and(T::names_device)
    }
    fn version(&self) -> i64 {
        self.as_ref().map_or(0, T::version)
    }
    fn hold(&self, target: Target) -> Result<Self::Held<'_>, TchError> {
        self.as_ref().map(|t| t.hold(target)).transpose()
    }
}

impl<'a, H: Param<'a>> Param<'a> for Option<H> {
    type Out = Option<H::Out>;
    fn param(&'a mut self) -> Self::Out {
        self.as_mut().map(H::param)
    }
}

macro_rules! tuples {
    ($(($($name:ident $index:tt),+))+) => {$(
        impl<$($name: TensorArg),+> TensorArg for ($($name,)+) {
            type Held<'a> = ($($name::Held<'a>,)+) where Self: 'a;
            fn device(&self) -> Option<Device> {
                None$(.or_else(|| self.$index.device()))+
            }
            fn version(&self) -> i64 {
                0 $(+ self.$index.version())+
            }
            fn hold(&self, target: Target) -> Result<Self::Held<'_>, TchError> {
                Ok(($(self.$index.hold(target)?,)+))
            }
        }

        impl<'a, $($name: Param<'a>),+> Param<'a> for ($($name,)+) {
            type Out = ($($name::Out,)+);
            fn param(&'a mut self) -> Self::Out {
                ($(self.$index.param(),)+)
            }
        }
    )+};
}

tuples! {
    (A 0, B 1)
    (A 0, B 1, C 2)
}

/// An argument on its way to a call; see the module docs.
#[doc(hidden)]
pub struct Arg<'a, T>(pub &'a T);

/// First choice: arguments that carry tensors.
#[doc(hidden)]
pub trait ViaTensor<'a> {
    type Held;
    fn hold(&self, target: Target) -> Result<Self::Held, TchError>;
}

impl<'a, T: TensorArg + 'a> ViaTensor<'a> for &&Arg<'a, T> {
    type Held = T::Held<'a>;
    fn hold(&self, target: Target) -> Result<T::Held<'a>, TchError> {
        self.0.hold(target)
    }
}

/// Where a tensor argument says the call runs, and the version of its
/// tensors.
#[doc(hidden)]
pub trait LocateTensor {
    fn locate(&self) -> Located;
    fn version(&self) -> i64;
}

impl<T: TensorArg> LocateTensor for &Arg<'_, T> {
    fn locate(&self) -> Located {
        Located {
            device: self.0.device(),
            named: self.0.names_device(),
        }
    }
    fn version(&self) -> i64 {
        self.0.version()
    }
}

/// Any other argument says nothing about either.
#[doc(hidden)]
pub trait LocateOther {
    fn locate(&self) -> Located {
        Located::default()
    }
    fn version(&self) -> i64 {
        0
    }
}

impl<T> LocateOther for Arg<'_, T> {}

/// Second choice: `Copy` values, passed again as they are.
#[doc(hidden)]
pub trait ViaCopy<T> {
    fn hold(&self, target: Target) -> Result<Taken<T>, TchError>;
}

impl<T: Copy> ViaCopy<T> for &Arg<'_, T> {
    fn hold(&self, _: Target) -> Result<Taken<T>, TchError> {
        Ok(Taken(Some(*self.0)))
    }
}

/// Last choice: `Clone` values, cloned for each call. The impl takes every
/// argument, and the method asks for `Rerunnable`: an argument that is none
/// of these is reported at the argument, with that trait's message.
#[doc(hidden)]
pub trait ViaClone<T> {
    fn hold(&self, target: Target) -> Result<Taken<T>, TchError>
    where
        T: Rerunnable;
}

impl<T> ViaClone<T> for Arg<'_, T> {
    fn hold(&self, _: Target) -> Result<Taken<T>, TchError>
    where
        T: Rerunnable,
    {
        Ok(Taken(Some(self.0.clone())))
    }
}

/// An argument a CPU rerun can pass again by value.
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "`#[safe_mps_op]` cannot pass `{Self}` to a CPU rerun",
    label = "a rerun passes this argument again, so it must be `Clone` or taken by reference",
    note = "derive or implement `Clone` for `{Self}`, or take the argument as `&{Self}`"
)]
pub trait Rerunnable: Clone {}

#[diagnostic::do_not_recommend]
impl<T: Clone> Rerunnable for T {}

/// Where one argument says the call runs.
#[doc(hidden)]
#[derive(Debug, Default, Clone, Copy)]
pub struct Located {
    device: Option<Device>,
    named: bool,
}

/// The in-place version of a call's inputs: the sum of its arguments'.
#[doc(hidden)]
pub fn versions<const N: usize>(arguments: [i64; N]) -> i64 {
    arguments.iter().sum()
}

/// The device a call runs on: the first `Device` argument, else the device of
/// the first tensor.
#[doc(hidden)]
pub fn origin<const N: usize>(arguments: [Located; N]) -> Option<Device> {
    let named = arguments.iter().find(|a| a.named).and_then(|a| a.device);
    named.or_else(|| arguments.iter().find_map(|a| a.device))
}
