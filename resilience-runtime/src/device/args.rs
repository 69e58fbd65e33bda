//! How arguments reach a rerun, and how results go back to their device.
//!
//! An expansion cannot know from tokens alone whether an argument holds
//! tensors, so it asks the type, with autoref-based dispatch:
//! `(&&&Arg(&x)).hold(target)` resolves, in this order of preference, to
//! [`TensorArg`] (tensors move to the CPU), `Copy` (copied) or `Clone`
//! (cloned). The same trick picks the handling of the return type. On the
//! device, borrowed tensors are passed through untouched; a tensor passed by
//! value costs one `shallow_clone`, so that a rerun still has it.

use std::fmt::Display;
use std::marker::PhantomData;

use tch::{Device, Kind, TchError, Tensor};

use super::DeviceError;

/// Where a rerun runs.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// Again on the inputs' device (an out-of-memory retry).
    Device,
    /// On the CPU.
    Cpu,
    /// On the CPU, with half-precision inputs upcast to `f32`.
    CpuUpcast,
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

impl TensorArg for Tensor {
    type Held<'a> = Taken<Tensor>;
    fn device(&self) -> Option<Device> {
        Some(Tensor::device(self))
    }
    fn hold(&self, target: Target) -> Result<Taken<Tensor>, TchError> {
        move_tensor(self, target).map(|t| Taken(Some(t)))
    }
}

impl TensorArg for &Tensor {
    type Held<'a>
        = Lent<'a, Tensor, Tensor>
    where
        Self: 'a;
    fn device(&self) -> Option<Device> {
        Some(Tensor::device(self))
    }
    fn hold(&self, target: Target) -> Result<Lent<'_, Tensor, Tensor>, TchError> {
        Ok(match target {
            Target::Device => Lent::Same(*self),
            _ => Lent::Moved(move_tensor(self, target)?),
        })
    }
}

impl TensorArg for &[Tensor] {
    type Held<'a>
        = Lent<'a, [Tensor], Vec<Tensor>>
    where
        Self: 'a;
    fn device(&self) -> Option<Device> {
        self.first().map(Tensor::device)
    }
    fn hold(&self, target: Target) -> Result<Lent<'_, [Tensor], Vec<Tensor>>, TchError> {
        Ok(match target {
            Target::Device => Lent::Same(*self),
            _ => Lent::Moved(moved_all(self, target)?),
        })
    }
}

impl TensorArg for Vec<Tensor> {
    type Held<'a> = Taken<Vec<Tensor>>;
    fn device(&self) -> Option<Device> {
        self.first().map(Tensor::device)
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
            Target::Device => *self,
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

/// Where a tensor argument says the call runs.
#[doc(hidden)]
pub trait LocateTensor {
    fn locate(&self) -> Located;
}

impl<T: TensorArg> LocateTensor for &Arg<'_, T> {
    fn locate(&self) -> Located {
        Located {
            device: self.0.device(),
            named: self.0.names_device(),
        }
    }
}

/// Any other argument says nothing about it.
#[doc(hidden)]
pub trait LocateOther {
    fn locate(&self) -> Located {
        Located::default()
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

/// Last choice: `Clone` values, cloned for each call. An argument that is none
/// of these cannot be passed again, and the compiler says so at the argument.
#[doc(hidden)]
pub trait ViaClone<T> {
    fn hold(&self, target: Target) -> Result<Taken<T>, TchError>;
}

impl<T: Clone> ViaClone<T> for Arg<'_, T> {
    fn hold(&self, _: Target) -> Result<Taken<T>, TchError> {
        Ok(Taken(Some(self.0.clone())))
    }
}

/// Where one argument says the call runs.
#[doc(hidden)]
#[derive(Debug, Default, Clone, Copy)]
pub struct Located {
    device: Option<Device>,
    named: bool,
}

/// The device a call runs on: the first `Device` argument, else the device of
/// the first tensor.
#[doc(hidden)]
pub fn origin<const N: usize>(arguments: [Located; N]) -> Option<Device> {
    let named = arguments.iter().find(|a| a.named).and_then(|a| a.device);
    named.or_else(|| arguments.iter().find_map(|a| a.device))
}

/// A result that can be moved to another device.
///
/// Implemented for `Tensor`, `Vec<Tensor>`, `Option` of these and tuples of up
/// to three of them.
pub trait ToOrigin: Sized {
    /// Moves `self` to `device`; on failure, gives `self` back unchanged.
    fn to_origin(self, device: Device) -> Result<Self, (Self, TchError)>;
}

impl ToOrigin for Tensor {
    fn to_origin(self, device: Device) -> Result<Self, (Self, TchError)> {
        match self.f_to_device(device) {
            Ok(moved) => Ok(moved),
            Err(error) => Err((self, error)),
        }
    }
}

impl ToOrigin for Vec<Tensor> {
    fn to_origin(self, device: Device) -> Result<Self, (Self, TchError)> {
        let moved: Result<Vec<_>, _> = self.iter().map(|t| t.f_to_device(device)).collect();
        match moved {
            Ok(moved) => Ok(moved),
            Err(error) => Err((self, error)),
        }
    }
}

impl<T: ToOrigin> ToOrigin for Option<T> {
    fn to_origin(self, device: Device) -> Result<Self, (Self, TchError)> {
        match self {
            None => Ok(None),
            Some(value) => value
                .to_origin(device)
                .map(Some)
                .map_err(|(v, e)| (Some(v), e)),
        }
    }
}

impl<A: ToOrigin, B: ToOrigin> ToOrigin for (A, B) {
    fn to_origin(self, device: Device) -> Result<Self, (Self, TchError)> {
        let (a, b) = self;
        match a.to_origin(device) {
            Err((a, error)) => Err(((a, b), error)),
            Ok(a) => match b.to_origin(device) {
                Ok(b) => Ok((a, b)),
                Err((b, error)) => Err(((a, b), error)),
            },
        }
    }
}

impl<A: ToOrigin, B: ToOrigin, C: ToOrigin> ToOrigin for (A, B, C) {
    fn to_origin(self, device: Device) -> Result<Self, (Self, TchError)> {
        let (a, b, c) = self;
        match (a, b).to_origin(device) {
            Err(((a, b), error)) => Err(((a, b, c), error)),
            Ok((a, b)) => match c.to_origin(device) {
                Ok(c) => Ok((a, b, c)),
                Err((c, error)) => Err(((a, b, c), error)),
            },
        }
    }
}

/// How an annotated function's output reports failures and moves back.
#[doc(hidden)]
pub trait Output<R>: Copy {
    /// The message of an `Err` output.
    fn failure(self, output: &R) -> Option<String>;
    /// The output that carries `error`, for outputs that can.
    fn report(self, error: DeviceError) -> Option<R>;
    /// Moves the output to `device`, or gives it back with the reason.
    fn to_origin(self, output: R, device: Device) -> Result<R, (R, TchError)>;
}

/// A `Result` output.
#[doc(hidden)]
#[derive(Clone, Copy)]
pub struct ResultOutput<M>(M);

/// A plain output: failures arrive as panics.
#[doc(hidden)]
#[derive(Clone, Copy)]
pub struct PlainOutput<M>(M);

/// The output holds tensors and moves back to the origin.
#[doc(hidden)]
#[derive(Clone, Copy)]
pub struct MoveBack;

/// The output stays where it is.
#[doc(hidden)]
#[derive(Clone, Copy)]
pub struct Stay;

#[doc(hidden)]
pub trait Mover<T>: Copy {
    fn move_to(self, value: T, device: Device) -> Result<T, (T, TchError)>;
}

impl<T: ToOrigin> Mover<T> for MoveBack {
    fn move_to(self, value: T, device: Device) -> Result<T, (T, TchError)> {
        value.to_origin(device)
    }
}

impl<T> Mover<T> for Stay {
    fn move_to(self, value: T, _: Device) -> Result<T, (T, TchError)> {
        Ok(value)
    }
}

/// Needed of the error type of a `Result` returned by a `#[safe_mps_op]` function.
#[diagnostic::on_unimplemented(
    message = "`#[safe_mps_op]` cannot report a device error through `{Self}`",
    label = "the error type of this `Result` needs `From<resilience_runtime::device::DeviceError>` and `Display`",
    note = "add `impl From<DeviceError> for {Self}` (or a thiserror `#[from]` variant), or return the value without `Result`"
)]
pub trait FromDeviceError: From<DeviceError> + Display {}

#[diagnostic::do_not_recommend]
impl<E: From<DeviceError> + Display> FromDeviceError for E {}

impl<T, E: FromDeviceError, M: Mover<T>> Output<Result<T, E>> for ResultOutput<M> {
    fn failure(self, output: &Result<T, E>) -> Option<String> {
        output.as_ref().err().map(ToString::to_string)
    }
    fn report(self, error: DeviceError) -> Option<Result<T, E>> {
        Some(Err(E::from(error)))
    }
    fn to_origin(
        self,
        output: Result<T, E>,
        device: Device,
    ) -> Result<Result<T, E>, (Result<T, E>, TchError)> {
        match output {
            Ok(value) => self
                .0
                .move_to(value, device)
                .map(Ok)
                .map_err(|(v, e)| (Ok(v), e)),
            Err(error) => Ok(Err(error)),
        }
    }
}

impl<R, M: Mover<R>> Output<R> for PlainOutput<M> {
    fn failure(self, _: &R) -> Option<String> {
        None
    }
    fn report(self, _: DeviceError) -> Option<R> {
        None
    }
    fn to_origin(self, output: R, device: Device) -> Result<R, (R, TchError)> {
        self.0.move_to(output, device)
    }
}

/// Picks the [`Output`] handling of `R`; see the module docs.
#[doc(hidden)]
pub struct OutputOf<R>(PhantomData<R>);

impl<R> OutputOf<R> {
    #[allow(clippy::new_without_default)]
    pub const fn new() -> Self {
        Self(PhantomData)
    }
}

#[doc(hidden)]
pub trait ResultMoveBack {
    fn output(&self) -> ResultOutput<MoveBack> {
        ResultOutput(MoveBack)
    }
}
impl<T: ToOrigin, E> ResultMoveBack for &&&OutputOf<Result<T, E>> {}

#[doc(hidden)]
pub trait ResultStay {
    fn output(&self) -> ResultOutput<Stay> {
        ResultOutput(Stay)
    }
}
impl<T, E> ResultStay for &&OutputOf<Result<T, E>> {}

#[doc(hidden)]
pub trait PlainMoveBack {
    fn output(&self) -> PlainOutput<MoveBack> {
        PlainOutput(MoveBack)
    }
}
impl<T: ToOrigin> PlainMoveBack for &OutputOf<T> {}

#[doc(hidden)]
pub trait PlainStay {
    fn output(&self) -> PlainOutput<Stay> {
        PlainOutput(Stay)
    }
}
impl<T> PlainStay for OutputOf<T> {}
