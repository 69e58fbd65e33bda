//! The device attempt, and what happens when it fails: out-of-memory retries,
//! the CPU rerun, the move back to the inputs' device, and the counts.

use std::any::Any;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;
use tch::{Device, TchError};

use super::args::Target;
use super::output::Output;
use super::panics::{install_quiet_hook, quietly, torch_panic};
use super::site::{DeviceOptions, DeviceSite};
use super::{DeviceError, DeviceErrorKind, classify, normalize};

/// How an attempt ended.
enum Attempt<R> {
    Done(R),
    Failed(Failure<R>),
}

/// A failed attempt, with everything needed to pass it on unchanged.
struct Failure<R> {
    kind: DeviceErrorKind,
    message: String,
    source: Source<R>,
}

enum Source<R> {
    /// The function returned an `Err`.
    Returned(R),
    /// A plain tch method panicked.
    Panicked(Box<dyn Any + Send>),
    /// `chaos::inject_device_error`.
    Injected,
    /// Moving the inputs for a rerun failed.
    Moving,
    /// The device is known to fail for this function: no attempt was made.
    Sticky(Device),
}

impl<R> Failure<R> {
    fn new(message: String, source: Source<R>) -> Self {
        Self {
            kind: classify(&message),
            message,
            source,
        }
    }
}

/// A device as PyTorch writes it: `cpu`, `cuda:0`, `mps`.
struct Named(Option<Device>);

impl std::fmt::Display for Named {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            None => f.write_str("unknown"),
            Some(Device::Cpu) => f.write_str("cpu"),
            Some(Device::Cuda(ordinal)) => write!(f, "cuda:{ordinal}"),
            Some(Device::Mps) => f.write_str("mps"),
            Some(Device::Vulkan) => f.write_str("vulkan"),
        }
    }
}

/// Reads one finished run: a result, or a panic to classify or resume.
fn settle<R, O: Output<R>>(output: O, run: std::thread::Result<R>) -> Attempt<R> {
    match run {
        Ok(value) => match output.failure(&value) {
            Some(message) if classify(&message) != DeviceErrorKind::NotDevice => {
                Attempt::Failed(Failure::new(message, Source::Returned(value)))
            }
            _ => Attempt::Done(value),
        },
        Err(payload) => match torch_panic(&*payload) {
            Some(message) => Attempt::Failed(Failure::new(message, Source::Panicked(payload))),
            // Not a torch error: a bug of the caller's, never swallowed.
            None => resume_unwind(payload),
        },
    }
}

/// What precedes every attempt: counting, injected faults, sticky devices.
#[inline]
fn before_attempt<R>(
    site: &'static DeviceSite,
    options: &DeviceOptions,
    origin: &dyn Fn() -> Option<Device>,
) -> Option<Failure<R>> {
    site.enter();
    if let Some(message) = crate::chaos::take_device_error(site.function) {
        return Some(Failure::new(message, Source::Injected));
    }
    if site.has_sticky()
        && options.sticky
        && let Some(device) = origin().filter(|&d| site.is_sticky(d))
    {
        let kind = if site.is_absent(device) {
            DeviceErrorKind::Unavailable
        } else {
            DeviceErrorKind::UnsupportedOp
        };
        return Some(Failure {
            kind,
            message: String::new(),
            source: Source::Sticky(device),
        });
    }
    None
}

/// Runs a sync `#[safe_mps_op]` function: `call(target)` runs its body with
/// the arguments held for `target`, first on the inputs' device.
#[doc(hidden)]
#[inline]
pub fn run<R, O: Output<R>>(
    site: &'static DeviceSite,
    output: O,
    origin: &dyn Fn() -> Option<Device>,
    mut call: impl FnMut(Target) -> Result<R, TchError>,
) -> R {
    let Some(options) = site.options() else {
        // Switched off: the body as it is, on the device.
        return passthrough(call(Target::Device));
    };
    install_quiet_hook();
    let failure = match before_attempt(site, &options, origin) {
        Some(failure) => failure,
        None => match quietly(options.fallback, || {
            attempt(output, || call(Target::Device))
        }) {
            Attempt::Done(value) => return value,
            Attempt::Failed(failure) => failure,
        },
    };
    let mut step = Recovery::new(site, options, output, failure, origin).decide();
    loop {
        match step {
            Step::Done(value) => return value,
            Step::Run(recovery, target) => {
                let outcome = if target == Target::Device {
                    quietly(recovery.options.fallback, || {
                        attempt(output, || call(target))
                    })
                } else {
                    attempt(output, || call(target))
                };
                step = recovery.next(outcome);
            }
        }
    }
}

#[inline]
fn attempt<R, O: Output<R>>(output: O, call: impl FnOnce() -> Result<R, TchError>) -> Attempt<R> {
    match catch_unwind(AssertUnwindSafe(call)) {
        Ok(Err(error)) => Attempt::Failed(Failure::new(error.to_string(), Source::Moving)),
        Ok(Ok(value)) => settle(output, Ok(value)),
        Err(payload) => settle(output, Err(payload)),
    }
}

/// What to do after a failed device attempt: out-of-memory retries on the
/// device, then the CPU rerun (upcast if the CPU lacks a half-precision
/// kernel), or passing the failure on. The sync and async runners drive it
/// one attempt at a time, so both take the same decisions.
struct Recovery<R, O> {
    site: &'static DeviceSite,
    options: DeviceOptions,
    output: O,
    origin: Option<Device>,
    failure: Failure<R>,
    retries: u32,
    stage: Target,
}

enum Step<R, O> {
    /// Run the body for this target, then call `next` with the outcome.
    Run(Recovery<R, O>, Target),
    Done(R),
}

impl<R, O: Output<R>> Recovery<R, O> {
    #[cold]
    fn new(
        site: &'static DeviceSite,
        options: DeviceOptions,
        output: O,
        failure: Failure<R>,
        origin: &dyn Fn() -> Option<Device>,
    ) -> Self {
        let origin = match failure.source {
            Source::Sticky(device) => Some(device),
            _ => origin(),
        };
        Self {
            site,
            retries: options.retries,
            options,
            output,
            origin,
            failure,
            stage: Target::Device,
        }
    }

    /// The step after a failure on the device.
    fn decide(mut self) -> Step<R, O> {
        if self.failure.kind == DeviceErrorKind::OutOfMemory && self.retries > 0 {
            self.retries -= 1;
            tracing::debug!(function = self.site.function, device = %Named(self.origin), "out of memory; retrying on the device");
            return Step::Run(self, Target::Device);
        }
        match plan(self.site, &self.options, &self.failure, self.origin) {
            Plan::PassOn => Step::Done(pass_on(self.site, self.output, self.failure, self.origin)),
            Plan::Cpu => {
                self.stage = Target::Cpu;
                Step::Run(self, Target::Cpu)
            }
        }
    }

    /// The step after the attempt that the last step ran.
    fn next(mut self, outcome: Attempt<R>) -> Step<R, O> {
        match (self.stage, outcome) {
            (Target::Device, Attempt::Done(value)) => Step::Done(value),
            (Target::Device, Attempt::Failed(failure)) => {
                self.failure = failure;
                self.decide()
            }
            (Target::Cpu, Attempt::Failed(f)) if f.kind == DeviceErrorKind::UnsupportedDtype => {
                self.stage = Target::CpuUpcast;
                Step::Run(self, Target::CpuUpcast)
            }
            (_, cpu) => Step::Done(finish(
                self.site,
                &self.options,
                self.output,
                self.failure,
                self.origin,
                cpu,
            )),
        }
    }
}

/// The result of a call whose attribute is switched off.
fn passthrough<R>(result: Result<R, TchError>) -> R {
    // Holding arguments for the device never moves them, so it cannot fail.
    result.unwrap_or_else(|error| panic!("{error}"))
}

enum Plan {
    PassOn,
    Cpu,
}

fn plan<R>(
    site: &DeviceSite,
    options: &DeviceOptions,
    failure: &Failure<R>,
    origin: Option<Device>,
) -> Plan {
    if let Source::Sticky(device) = failure.source {
        site.count_sticky_skip();
        tracing::debug!(function = site.function, device = %Named(Some(device)), "device failed before; running on CPU");
        return Plan::Cpu;
    }
    if !options.fallback || !failure.kind.falls_back() {
        return Plan::PassOn;
    }
    site.count_fallback(failure.kind);
    tracing::warn!(
        function = site.function,
        device = %Named(origin),
        kind = failure.kind.as_str(),
        error = normalize(&failure.message).lines().next().unwrap_or_default(),
        "device op failed; running it on CPU"
    );
    if options.sticky
        && failure.kind.is_sticky()
        && let Some(device) = origin
    {
        site.mark_sticky(device, failure.kind);
    }
    Plan::Cpu
}

fn finish<R, O: Output<R>>(
    site: &'static DeviceSite,
    options: &DeviceOptions,
    output: O,
    failure: Failure<R>,
    origin: Option<Device>,
    cpu: Attempt<R>,
) -> R {
    let value = match cpu {
        Attempt::Done(value) => value,
        Attempt::Failed(cpu_failure) => {
            tracing::warn!(
                function = site.function,
                kind = cpu_failure.kind.as_str(),
                message = normalize(&cpu_failure.message)
                    .lines()
                    .next()
                    .unwrap_or_default(),
                "the CPU rerun failed too"
            );
            return match failure.source {
                // No device attempt was made: the CPU run's own failure is the answer.
                Source::Sticky(_) => pass_on(site, output, cpu_failure, origin),
                _ => pass_on(site, output, failure, origin),
            };
        }
    };
    let Some(device) = origin.filter(|&d| d != Device::Cpu && options.return_to_origin) else {
        return value;
    };
    if failure.kind == DeviceErrorKind::Unavailable {
        return value; // there is no such device to go back to
    }
    match output.to_origin(value, device) {
        Ok(moved) => moved,
        Err((value, error)) => {
            tracing::warn!(
                function = site.function,
                device = %Named(Some(device)),
                error = %normalize(&error.to_string()).lines().next().unwrap_or_default(),
                "cannot move the result back to its device; keeping it on CPU"
            );
            value
        }
    }
}

/// Passes a failure on as it came: the `Err` returned, the panic resumed. A
/// device panic in a function returning `Result` becomes an `Err(DeviceError)`;
/// an injected one looks like tch's own.
fn pass_on<R, O: Output<R>>(
    site: &'static DeviceSite,
    output: O,
    failure: Failure<R>,
    origin: Option<Device>,
) -> R {
    site.count_failure();
    let error = || DeviceError::new(&failure.message).at(site.function, origin);
    match failure.source {
        Source::Returned(value) => value,
        Source::Panicked(payload) => match failure.kind {
            DeviceErrorKind::NotDevice => resume_unwind(payload),
            _ => output
                .report(error())
                .unwrap_or_else(|| resume_unwind(payload)),
        },
        Source::Injected | Source::Moving | Source::Sticky(_) => {
            output.report(error()).unwrap_or_else(|| {
                panic!(
                    "called `Result::unwrap()` on an `Err` value: Torch({:?})",
                    failure.message
                )
            })
        }
    }
}

pin_project! {
    /// Polls a future, turning a panic into an `Err`; with `quiet`, each poll
    /// runs with the quiet hook on.
    struct CatchUnwind<F> {
        #[pin]
        future: F,
        quiet: bool,
    }
}

impl<F: Future> Future for CatchUnwind<F> {
    type Output = std::thread::Result<F::Output>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let future = this.future;
        let polled = quietly(*this.quiet, || {
            catch_unwind(AssertUnwindSafe(|| future.poll(cx)))
        });
        match polled {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(value)) => Poll::Ready(Ok(value)),
            Err(payload) => Poll::Ready(Err(payload)),
        }
    }
}

/// [`run`] for async functions: `call(target)` returns the body's future.
#[doc(hidden)]
pub async fn run_async<R, O, F>(
    site: &'static DeviceSite,
    output: O,
    origin: &dyn Fn() -> Option<Device>,
    mut call: impl FnMut(Target) -> F,
) -> R
where
    O: Output<R>,
    F: Future<Output = Result<R, TchError>>,
{
    let Some(options) = site.options() else {
        return passthrough(call(Target::Device).await);
    };
    install_quiet_hook();
    let failure = match before_attempt(site, &options, origin) {
        Some(failure) => failure,
        None => match attempt_async(options.fallback, output, call(Target::Device)).await {
            Attempt::Done(value) => return value,
            Attempt::Failed(failure) => failure,
        },
    };
    let mut step = Recovery::new(site, options, output, failure, origin).decide();
    loop {
        match step {
            Step::Done(value) => return value,
            Step::Run(recovery, target) => {
                let quiet = target == Target::Device && recovery.options.fallback;
                let outcome = attempt_async(quiet, output, call(target)).await;
                step = recovery.next(outcome);
            }
        }
    }
}

/// An async attempt; `quiet` turns the quiet hook on (device attempts of a
/// call that falls back).
async fn attempt_async<R, O: Output<R>>(
    quiet: bool,
    output: O,
    call: impl Future<Output = Result<R, TchError>>,
) -> Attempt<R> {
    match (CatchUnwind {
        future: call,
        quiet,
    })
    .await
    {
        Ok(Err(error)) => Attempt::Failed(Failure::new(error.to_string(), Source::Moving)),
        Ok(Ok(value)) => settle(output, Ok(value)),
        Err(payload) => settle(output, Err(payload)),
    }
}
