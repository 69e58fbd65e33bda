//! How results go back to their device, and how a return type reports a
//! device error. The expansion picks the handling of its return type with
//! autoref-based dispatch, as for arguments: a `Result` or not, holding
//! tensors (moved back to their device) or not.

use std::fmt::{Debug, Display};
use std::marker::PhantomData;

use tch::{Device, TchError, Tensor};

use super::{DeviceError, DeviceErrorKind, classify};

/// A result that can be moved to another device.
///
/// Implemented for `Tensor`, `Vec<Tensor>`, `Option` of these, plain values
/// that live on no device (numbers, `bool`, `String`, `()`, vectors of
/// numbers: they stay as they are), and tuples of up to three of these, so
/// `(Tensor, f64)` moves its tensor back. Implement it for a type of your own
/// to have its tensors moved back too:
///
/// ```
/// use resilience_runtime::device::ToOrigin;
/// use tch::{Device, TchError, Tensor};
///
/// struct Prediction {
///     logits: Tensor,
///     label: usize,
/// }
///
/// impl ToOrigin for Prediction {
///     fn to_origin(self, device: Device) -> Result<Self, (Self, TchError)> {
///         match self.logits.f_to_device(device) {
///             Ok(logits) => Ok(Prediction { logits, ..self }),
///             Err(error) => Err((self, error)),
///         }
///     }
/// }
///
/// let prediction = Prediction { logits: Tensor::from_slice(&[0.1f32, 0.9]), label: 1 };
/// let back = prediction.to_origin(Device::Cpu).ok().unwrap();
/// assert_eq!((back.logits.device(), back.label), (Device::Cpu, 1));
/// ```
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

/// Values that live on no device stay as they are, so that a result mixing
/// them with tensors, `(Tensor, f64)`, still moves its tensors back.
macro_rules! stays {
    ($($ty:ty),+) => {$(
        impl ToOrigin for $ty {
            #[inline]
            fn to_origin(self, _: Device) -> Result<Self, (Self, TchError)> {
                Ok(self)
            }
        }
    )+};
}

stays!(
    (),
    bool,
    f32,
    f64,
    i8,
    i16,
    i32,
    i64,
    isize,
    u8,
    u16,
    u32,
    u64,
    usize,
    String,
    Vec<f32>,
    Vec<f64>,
    Vec<i64>
);

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

/// A `Result` output, whose errors are read by `X`.
#[doc(hidden)]
#[derive(Clone, Copy)]
pub struct ResultOutput<M, X = ()>(M, X);

impl<M> ResultOutput<M> {
    /// The same, with errors read by `reader`.
    pub fn reading<X>(self, reader: X) -> ResultOutput<M, X> {
        ResultOutput(self.0, reader)
    }
}

impl<M> PlainOutput<M> {
    /// The same: a plain output has no error to read.
    pub fn reading<X>(self, _: X) -> Self {
        self
    }
}

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
    label = "the error type of this `Result` needs `From<resilience_runtime::device::DeviceError>`, `Display` and `Debug`",
    note = "add `impl From<DeviceError> for {Self}` (or a thiserror `#[from]` variant), or return the value without `Result`"
)]
pub trait FromDeviceError: From<DeviceError> + Display + Debug {}

#[diagnostic::do_not_recommend]
impl<E: From<DeviceError> + Display + Debug> FromDeviceError for E {}

/// How the error type of a `Result` is read for a device failure.
#[doc(hidden)]
pub trait ErrorText<E>: Copy {
    fn text(self, error: &E) -> String;
}

/// Errors that implement `std::error::Error`: their `source()` chain is
/// walked for libtorch's error, wherever it is.
#[doc(hidden)]
#[derive(Clone, Copy)]
pub struct Sources;

/// Other errors (anyhow's, eyre's): read by what they show.
#[doc(hidden)]
#[derive(Clone, Copy)]
pub struct Shown;

impl<E: std::error::Error + 'static> ErrorText<E> for Sources {
    fn text(self, error: &E) -> String {
        let mut next: Option<&(dyn std::error::Error + 'static)> = Some(error);
        while let Some(error) = next {
            if let Some(torch) = error.downcast_ref::<TchError>() {
                return torch.to_string();
            }
            if let Some(device) = error.downcast_ref::<DeviceError>() {
                return device.to_string();
            }
            next = error.source();
        }
        failure_text(error)
    }
}

impl<E: Display + Debug> ErrorText<E> for Shown {
    fn text(self, error: &E) -> String {
        failure_text(error)
    }
}

/// Picks the [`ErrorText`] of `R`'s error type, as [`OutputOf`] does.
#[doc(hidden)]
pub struct ErrorsOf<R>(PhantomData<R>);

impl<R> ErrorsOf<R> {
    #[allow(clippy::new_without_default)]
    pub const fn new() -> Self {
        Self(PhantomData)
    }
}

#[doc(hidden)]
pub trait ReadSources {
    fn reader(&self) -> Sources {
        Sources
    }
}
impl<T, E: std::error::Error + 'static> ReadSources for &ErrorsOf<Result<T, E>> {}

#[doc(hidden)]
pub trait ReadShown {
    fn reader(&self) -> Shown {
        Shown
    }
}
impl<R> ReadShown for ErrorsOf<R> {}

/// The text of an error that may wrap libtorch's: its `Display` with the
/// alternate flag (anyhow and eyre show their whole chain of context then),
/// or else its `Debug`, which shows the wrapped errors (a thiserror
/// `#[from] TchError` variant, anyhow's "Caused by:" list), when only that
/// names a device failure.
fn failure_text<E: Display + Debug>(error: &E) -> String {
    let shown = format!("{error:#}");
    if classify(&shown) != DeviceErrorKind::NotDevice {
        return shown;
    }
    let debug = format!("{error:?}");
    if classify(&debug) != DeviceErrorKind::NotDevice {
        debug
    } else {
        shown
    }
}

impl<T, E: FromDeviceError, M: Mover<T>, X: ErrorText<E>> Output<Result<T, E>>
    for ResultOutput<M, X>
{
    fn failure(self, output: &Result<T, E>) -> Option<String> {
        output.as_ref().err().map(|error| self.1.text(error))
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
        ResultOutput(MoveBack, ())
    }
}
impl<T: ToOrigin, E> ResultMoveBack for &&&OutputOf<Result<T, E>> {}

#[doc(hidden)]
pub trait ResultStay {
    fn output(&self) -> ResultOutput<Stay> {
        ResultOutput(Stay, ())
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
