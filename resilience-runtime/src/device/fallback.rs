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
use super::site::{DeviceOptions, DeviceSite, Served};
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

/// A fault injected for this attempt: each attempt on the device takes one
/// (out-of-memory retries included); CPU reruns take none.
fn injected<R>(site: &DeviceSite, target: Target) -> Option<Failure<R>> {
    if !target.on_device() {
        return None;
    }
    site.injected()
        .map(|message| Failure::new(message, Source::Injected))
}

/// When a CPU rerun starts, for the site's stats; `None` on the device.
fn rerun_clock(target: Target) -> Option<std::time::Instant> {
    (!target.on_device()).then(std::time::Instant::now)
}

/// Adds the time since `started` (a CPU rerun's start) to the site's stats.
fn stop_rerun_clock(site: &DeviceSite, started: Option<std::time::Instant>) {
    if let Some(started) = started {
        site.count_rerun_time(started.elapsed());
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
    if let Some(failure) = injected(site, Target::Device) {
        return Some(failure);
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
    inputs: &dyn Fn() -> i64,
    mut call: impl FnMut(Target) -> Result<R, TchError>,
) -> R {
    let Some(options) = site.options() else {
        // Switched off: the body as it is, on the device.
        return passthrough(call(Target::Device));
    };
    install_quiet_hook();
    // The in-place version counters of the tensors the body could change,
    // summed: a failed attempt that changed one cannot be run again.
    let before = inputs();
    let changed = || inputs() != before;
    // Every attempt runs with the quiet hook on when the call falls back: a
    // panic that a later attempt recovers from is never printed.
    let quiet = options.fallback;
    let failure = match before_attempt(site, &options, origin) {
        Some(failure) => failure,
        None => match quietly(quiet, || attempt(output, || call(options.device_target()))) {
            Attempt::Done(value) => {
                site.count_call(Served::Device);
                return value;
            }
            Attempt::Failed(failure) => failure,
        },
    };
    let mut step = Recovery::new(site, options, output, failure, origin).decide(&changed);
    loop {
        match step {
            Step::Done(value) => return value,
            Step::Run(recovery, target) => {
                let started = rerun_clock(target);
                let outcome = match injected(site, target) {
                    Some(failure) => Attempt::Failed(failure),
                    None => quietly(quiet, || attempt(output, || call(target))),
                };
                stop_rerun_clock(site, started);
                step = recovery.next(outcome, &changed);
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
///
/// `changed` tells, when asked, whether the failed attempts changed an input
/// tensor in place.
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
    fn decide(mut self, changed: &dyn Fn() -> bool) -> Step<R, O> {
        if self.failure.kind == DeviceErrorKind::OutOfMemory
            && self.retries > 0
            && !on_cpu(&self.failure, self.origin)
            && refusal(&self.options, changed).is_none()
        {
            self.retries -= 1;
            self.site.count_retry();
            tracing::debug!(function = self.site.function(), device = %Named(self.origin), "out of memory; retrying on the device");
            let target = self.options.device_target();
            return Step::Run(self, target);
        }
        match plan(
            self.site,
            &self.options,
            &self.failure,
            self.origin,
            changed,
        ) {
            Plan::PassOn => Step::Done(pass_on(
                self.site,
                &self.options,
                self.output,
                self.failure,
                self.origin,
                None,
            )),
            Plan::Untouched => {
                // As if the attribute were not there: nothing in the stats,
                // nothing reported, a panic raised as a panic; the metrics
                // count a failed call.
                let (function, origin) = (self.site.function(), self.origin);
                self.site.count_call(Served::Failed);
                Step::Done(raise(
                    &self.options,
                    self.output,
                    self.failure,
                    false,
                    |message| DeviceError::new(message).at(function, origin),
                ))
            }
            Plan::Cpu => {
                self.stage = Target::Cpu;
                Step::Run(self, Target::Cpu)
            }
        }
    }

    /// The step after the attempt that the last step ran.
    fn next(mut self, outcome: Attempt<R>, changed: &dyn Fn() -> bool) -> Step<R, O> {
        match (self.stage, outcome) {
            (Target::Device, Attempt::Done(value)) => {
                self.site.count_call(Served::Device);
                Step::Done(value)
            }
            (Target::Device, Attempt::Failed(failure)) => {
                self.failure = failure;
                self.decide(changed)
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
    /// Pass the failure on, counted and reported.
    PassOn,
    /// Pass the failure on as if the attribute were not there: the call
    /// never left the CPU, so it is not a device failure.
    Untouched,
    Cpu,
}

/// Whether a failure happened on the CPU, in a call that never left it: not
/// a device failure. An injected one is a drill of one, wherever it runs.
fn on_cpu<R>(failure: &Failure<R>, origin: Option<Device>) -> bool {
    origin == Some(Device::Cpu) && !matches!(failure.source, Source::Injected)
}

/// Why running the body again would be wrong, if it would.
fn refusal(options: &DeviceOptions, changed: &dyn Fn() -> bool) -> Option<&'static str> {
    if !options.rerun {
        return Some(
            "the method takes `&mut self`, whose state a rerun would change twice; mark it `rerun = \"idempotent\"` if running it again is safe",
        );
    }
    if changed() {
        return Some(
            "the failed attempt changed an input tensor in place, and a rerun would compute on the changed input",
        );
    }
    None
}

fn plan<R>(
    site: &DeviceSite,
    options: &DeviceOptions,
    failure: &Failure<R>,
    origin: Option<Device>,
    changed: &dyn Fn() -> bool,
) -> Plan {
    if let Source::Sticky(device) = failure.source {
        site.count_sticky_skip();
        tracing::debug!(function = site.function(), device = %Named(Some(device)), "device failed before; running on CPU");
        return Plan::Cpu;
    }
    if on_cpu(failure, origin) {
        return Plan::Untouched;
    }
    if !options.fallback || !failure.kind.falls_back() {
        return Plan::PassOn;
    }
    let error = first_line(&failure.message);
    if let Some(reason) = refusal(options, changed) {
        tracing::warn!(
            function = site.function(),
            device = %Named(origin),
            kind = failure.kind.as_str(),
            error,
            reason,
            "device op failed; not running it again on CPU"
        );
        return Plan::PassOn;
    }
    site.count_fallback(failure.kind, || Named(origin).to_string());
    tracing::warn!(
        function = site.function(),
        device = %Named(origin),
        kind = failure.kind.as_str(),
        error,
        "device op failed; running it on CPU"
    );
    Plan::Cpu
}

/// The first line of a libtorch message, cut to a readable length: the rest
/// (a list of backends, a C++ backtrace) is in the error itself.
fn first_line(message: &str) -> String {
    const MAX: usize = 200;
    let normalized = normalize(message);
    let line = normalized.lines().next().unwrap_or_default();
    match line.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line.to_owned(),
    }
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
        Attempt::Done(value) => {
            site.count_call(Served::Cpu);
            value
        }
        Attempt::Failed(cpu_failure) => {
            // The CPU failed too: the device was not at fault, or not only.
            // Its failure is the real cause; the device's is context.
            tracing::warn!(
                function = site.function(),
                device = %Named(origin),
                kind = cpu_failure.kind.as_str(),
                error = first_line(&cpu_failure.message),
                device_error = first_line(&failure.message),
                "the CPU rerun failed too; passing on its failure, the real cause"
            );
            let context = match failure.source {
                Source::Sticky(_) => None,
                _ => Some(DeviceError::new(&failure.message).at(site.function(), origin)),
            };
            return pass_on(site, options, output, cpu_failure, origin, context);
        }
    };
    // The rerun proved the device at fault: only now is it marked.
    if options.sticky
        && failure.kind.is_sticky()
        && let Some(device) = origin
        && !matches!(failure.source, Source::Sticky(_))
    {
        site.mark_sticky(device, failure.kind);
    }
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
                function = site.function(),
                device = %Named(Some(device)),
                error = first_line(&error.to_string()),
                "cannot move the result back to its device; keeping it on CPU"
            );
            value
        }
    }
}

/// Passes a failure on as it came: the `Err` returned, the panic resumed. A
/// device panic in a function returning `Result` becomes an
/// `Err(DeviceError)`, with `context` (the device's failure, when this one is
/// the CPU rerun's) as its source. A panic the quiet hook kept quiet is
/// raised again, so that the panic hook reports it once; a failure that was
/// never a panic (injected, a sticky device, moving the inputs) is raised as
/// what it is, a `DeviceError`.
fn pass_on<R, O: Output<R>>(
    site: &'static DeviceSite,
    options: &DeviceOptions,
    output: O,
    failure: Failure<R>,
    origin: Option<Device>,
    context: Option<DeviceError>,
) -> R {
    site.count_failure();
    site.count_call(Served::Failed);
    raise(options, output, failure, true, |message| {
        let error = DeviceError::new(message).at(site.function(), origin);
        match context {
            Some(context) => error.caused_after(context),
            None => error,
        }
    })
}

/// Passes a failure on: the `Err` returned, the panic raised (again, with
/// its text, when the quiet hook kept it quiet); with `report`, a device
/// panic in a function returning `Result` becomes an `Err(DeviceError)`.
fn raise<R, O: Output<R>>(
    options: &DeviceOptions,
    output: O,
    failure: Failure<R>,
    report: bool,
    error: impl FnOnce(&str) -> DeviceError,
) -> R {
    let quieted = options.fallback && failure.kind.falls_back();
    match failure.source {
        Source::Returned(value) => value,
        Source::Panicked(payload) if failure.kind == DeviceErrorKind::NotDevice => {
            resume_unwind(payload)
        }
        Source::Panicked(payload) => match report.then(|| output.report(error(&failure.message))) {
            Some(Some(value)) => value,
            _ if quieted => std::panic::panic_any(failure.message),
            _ => resume_unwind(payload),
        },
        Source::Injected | Source::Moving | Source::Sticky(_) => {
            let error = error(&failure.message);
            output
                .report(error.clone())
                .unwrap_or_else(|| std::panic::panic_any(error.to_string()))
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

/// [`run`] for async functions. The runner owns the function's arguments
/// (`args`) and lends them, one call at a time, to `origin`, `inputs` and
/// `call` (which holds them for `target` and returns the body's future), so
/// that nothing borrowed is held across an await: the future is `Send`
/// exactly when the arguments and the body's future are.
#[doc(hidden)]
pub async fn run_async<A, R, O, F>(
    site: &'static DeviceSite,
    output: O,
    args: A,
    origin: impl Fn(&A) -> Option<Device>,
    inputs: impl Fn(&A) -> i64,
    mut call: impl FnMut(&A, Target) -> F,
) -> R
where
    O: Output<R>,
    F: Future<Output = Result<R, TchError>>,
{
    let Some(options) = site.options() else {
        return passthrough(call(&args, Target::Device).await);
    };
    install_quiet_hook();
    let before = inputs(&args);
    let quiet = options.fallback;
    // In a statement of its own: a borrow of the arguments in the `match`
    // below would live across its await.
    let ahead = before_attempt(site, &options, &|| origin(&args));
    let failure = match ahead {
        Some(failure) => failure,
        None => match attempt_async(quiet, output, call(&args, options.device_target())).await {
            Attempt::Done(value) => {
                site.count_call(Served::Device);
                return value;
            }
            Attempt::Failed(failure) => failure,
        },
    };
    let mut step = Recovery::new(site, options, output, failure, &|| origin(&args))
        .decide(&|| inputs(&args) != before);
    loop {
        match step {
            Step::Done(value) => return value,
            Step::Run(recovery, target) => {
                let started = rerun_clock(target);
                let outcome = match injected(site, target) {
                    Some(failure) => Attempt::Failed(failure),
                    None => attempt_async(quiet, output, call(&args, target)).await,
                };
                stop_rerun_clock(site, started);
                step = recovery.next(outcome, &|| inputs(&args) != before);
            }
        }
    }
}

/// An async attempt; `quiet` turns the quiet hook on (attempts of a call that
/// falls back).
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
