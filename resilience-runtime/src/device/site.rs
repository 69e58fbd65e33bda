//! Per-function state of `#[safe_mps_op]`: options, counters, and the devices
//! the function is known to fail on. One `static` per annotated function, so
//! the success path touches no lock and no map.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

use tch::Device;

use super::DeviceErrorKind;
use crate::registry::{Function, LayerSite};
#[cfg(feature = "metrics")]
use crate::telemetry;

/// What `#[safe_mps_op(...)]` was asked for.
#[doc(hidden)]
#[derive(Debug, Clone, Copy)]
pub struct DeviceOptions {
    /// `fallback = "cpu"` (true) or `"none"`.
    pub fallback: bool,
    /// `return_to = "origin"` (true) or `"cpu"`.
    pub return_to_origin: bool,
    /// `sticky = true`.
    pub sticky: bool,
    /// `retries = N`: out-of-memory retries on the device before falling back.
    pub retries: u32,
    /// The body may run again: it takes no `&mut self`, or it is marked
    /// `rerun = "idempotent"`.
    pub rerun: bool,
    /// `snapshot_inputs = true`: device attempts get copies of the tensors
    /// passed by value, so that a rerun starts from the inputs as passed.
    pub snapshot: bool,
}

impl DeviceOptions {
    /// How a device attempt holds its arguments.
    pub(super) fn device_target(&self) -> super::args::Target {
        if self.snapshot {
            super::args::Target::DeviceCopy
        } else {
            super::args::Target::Device
        }
    }
}

/// The state of one annotated function.
#[doc(hidden)]
pub struct DeviceSite {
    function: &'static Function,
    pub(crate) policy: Option<&'static str>,
    options: DeviceOptions,
    /// A fault is injected for this function (`chaos`).
    pub(crate) armed: AtomicBool,
    calls: AtomicU64,
    /// Out-of-memory retries on the device.
    retries: AtomicU64,
    /// Time spent in CPU reruns, in nanoseconds.
    rerun_nanos: AtomicU64,
    fallbacks: [AtomicU64; 4],
    sticky_skips: AtomicU64,
    failures: AtomicU64,
    /// One bit per device (see `device_bit`) this function failed on for good.
    sticky: AtomicU64,
    /// Of those, the devices that are absent, as opposed to lacking a kernel.
    absent: AtomicU64,
    /// `resilience_calls_total`: success, fallback, failure.
    #[cfg(feature = "metrics")]
    outcomes: telemetry::Cached<[metrics::Counter; 3]>,
}

/// How a call was served, for `resilience_calls_total`.
#[derive(Clone, Copy)]
pub(super) enum Served {
    /// By the device (`success`).
    Device,
    /// By the CPU, after the device failed (`fallback`).
    Cpu,
    /// Not at all: its failure was passed on (`failure`).
    Failed,
}

/// Every `#[safe_mps_op]` site of the program, registered at link time.
pub(crate) fn sites() -> impl Iterator<Item = &'static DeviceSite> {
    crate::registry::functions()
        .flat_map(|function| function.layers())
        .filter_map(|layer| match layer {
            LayerSite::Device(site) => Some(*site),
            _ => None,
        })
}

impl DeviceSite {
    #[doc(hidden)]
    pub const fn new(
        function: &'static Function,
        policy: Option<&'static str>,
        options: DeviceOptions,
    ) -> Self {
        Self {
            function,
            policy,
            options,
            armed: AtomicBool::new(false),
            calls: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            rerun_nanos: AtomicU64::new(0),
            fallbacks: [const { AtomicU64::new(0) }; 4],
            sticky_skips: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            sticky: AtomicU64::new(0),
            absent: AtomicU64::new(0),
            #[cfg(feature = "metrics")]
            outcomes: telemetry::Cached::new(),
        }
    }

    /// The policy keys that reach it: its function's path and `policy` name.
    pub(crate) fn keys(&self) -> [Option<&'static str>; 2] {
        [Some(self.function.path()), self.policy]
    }

    /// The options in force; `None` when switched off.
    pub(crate) fn options_in_force(&self) -> Option<DeviceOptions> {
        self.options()
    }

    /// The options of one call as the policy in force says; `None` when the
    /// attribute is switched off.
    #[inline]
    pub(super) fn options(&self) -> Option<DeviceOptions> {
        use crate::policy::{FallbackKind, Gate, Kind, ReturnTo, gate};
        match gate(Kind::Device, &self.keys(), |e| {
            let device = e.device.unwrap_or_default();
            (device.enabled, device)
        }) {
            Gate::Defaults => Some(self.options),
            Gate::Off => None,
            Gate::Override(entry) => Some(DeviceOptions {
                fallback: entry
                    .fallback
                    .map_or(self.options.fallback, |f| f == FallbackKind::Cpu),
                return_to_origin: entry
                    .return_to
                    .map_or(self.options.return_to_origin, |r| r == ReturnTo::Origin),
                sticky: entry.sticky.unwrap_or(self.options.sticky),
                retries: entry.retries.unwrap_or(self.options.retries),
                ..self.options
            }),
        }
    }

    /// The path reported in events, errors and stats.
    #[inline]
    pub(crate) fn function(&self) -> &'static str {
        self.function.path()
    }

    #[inline]
    pub(super) fn enter(&'static self) {
        self.calls.fetch_add(1, Relaxed);
    }

    /// Whether `function` names this site (see [`Function::is_called`]).
    pub(crate) fn is_called(&self, function: &str) -> bool {
        self.function.is_called(function)
    }

    /// The fault injected for this attempt, if any: one relaxed load when
    /// none is.
    #[inline]
    pub(super) fn injected(&self) -> Option<String> {
        if self.armed.load(Relaxed) {
            self.take_injected()
        } else {
            None
        }
    }

    #[cold]
    fn take_injected(&self) -> Option<String> {
        crate::chaos::take_device_error(self.function(), &self.armed)
    }

    pub(super) fn count_retry(&self) {
        self.retries.fetch_add(1, Relaxed);
    }

    pub(super) fn count_rerun_time(&self, spent: std::time::Duration) {
        let nanos = u64::try_from(spent.as_nanos()).unwrap_or(u64::MAX);
        self.rerun_nanos.fetch_add(nanos, Relaxed);
    }

    /// Whether any device is marked, so that the inputs' device need not be
    /// looked up on the common path.
    #[inline]
    pub(super) fn has_sticky(&self) -> bool {
        self.sticky.load(Relaxed) != 0
    }

    pub(super) fn is_sticky(&self, device: Device) -> bool {
        device_bit(device).is_some_and(|bit| self.sticky.load(Relaxed) & bit != 0)
    }

    pub(super) fn is_absent(&self, device: Device) -> bool {
        device_bit(device).is_some_and(|bit| self.absent.load(Relaxed) & bit != 0)
    }

    pub(super) fn mark_sticky(&self, device: Device, kind: DeviceErrorKind) {
        if let Some(bit) = device_bit(device) {
            if kind == DeviceErrorKind::Unavailable {
                self.absent.fetch_or(bit, Relaxed);
            }
            self.sticky.fetch_or(bit, Relaxed);
        }
    }

    /// Counts a fallback from the device that `device` names.
    pub(super) fn count_fallback(&self, kind: DeviceErrorKind, _device: impl FnOnce() -> String) {
        crate::watchdog::escalation::record(
            self.function,
            crate::watchdog::Cause::DeviceFault,
            || {
                let error = format!("device fault in `{}`: {kind:?}", self.function.path());
                (error, String::new())
            },
        );
        if let Some(slot) = fallback_slot(kind) {
            self.fallbacks[slot].fetch_add(1, Relaxed);
        }
        #[cfg(feature = "metrics")]
        telemetry::device_fallback(self.function.label(), _device(), reason(kind));
    }

    /// Counts how a call was served.
    #[inline]
    pub(super) fn count_call(&'static self, _served: Served) {
        #[cfg(feature = "metrics")]
        self.outcomes.update(
            |recorder| {
                let outcomes = ["success", "fallback", "failure"];
                telemetry::calls(recorder, self.function.label(), "device", outcomes)
            },
            |outcomes| outcomes[_served as usize].increment(1),
        );
    }

    pub(super) fn count_sticky_skip(&self) {
        self.sticky_skips.fetch_add(1, Relaxed);
    }

    pub(super) fn count_failure(&self) {
        self.failures.fetch_add(1, Relaxed);
    }

    fn stats(&self) -> FunctionStats {
        let fallback = |kind| fallback_slot(kind).map_or(0, |i| self.fallbacks[i].load(Relaxed));
        FunctionStats {
            function: self.function(),
            calls: self.calls.load(Relaxed),
            retries: self.retries.load(Relaxed),
            rerun_time: std::time::Duration::from_nanos(self.rerun_nanos.load(Relaxed)),
            unsupported_op: fallback(DeviceErrorKind::UnsupportedOp),
            out_of_memory: fallback(DeviceErrorKind::OutOfMemory),
            unsupported_dtype: fallback(DeviceErrorKind::UnsupportedDtype),
            unavailable: fallback(DeviceErrorKind::Unavailable),
            sticky_skips: self.sticky_skips.load(Relaxed),
            failures: self.failures.load(Relaxed),
        }
    }
}

/// A fallback's `reason` label.
#[cfg(feature = "metrics")]
fn reason(kind: DeviceErrorKind) -> &'static str {
    match kind {
        DeviceErrorKind::UnsupportedOp => "unsupported_op",
        DeviceErrorKind::OutOfMemory => "out_of_memory",
        DeviceErrorKind::UnsupportedDtype => "unsupported_dtype",
        DeviceErrorKind::Unavailable => "unavailable",
        _ => "fault",
    }
}

fn fallback_slot(kind: DeviceErrorKind) -> Option<usize> {
    match kind {
        DeviceErrorKind::UnsupportedOp => Some(0),
        DeviceErrorKind::OutOfMemory => Some(1),
        DeviceErrorKind::UnsupportedDtype => Some(2),
        DeviceErrorKind::Unavailable => Some(3),
        _ => None,
    }
}

/// CUDA devices 0 to 30 have a bit each (higher ordinals share bit 31); MPS
/// and Vulkan have one each; the CPU is never marked.
fn device_bit(device: Device) -> Option<u64> {
    match device {
        Device::Cpu => None,
        Device::Cuda(ordinal) => Some(1 << ordinal.min(31)),
        Device::Mps => Some(1 << 32),
        Device::Vulkan => Some(1 << 33),
    }
}

/// Counts of one `#[safe_mps_op]` function since the process started.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionStats {
    /// Module path and name.
    pub function: &'static str,
    /// Calls, reruns excluded.
    pub calls: u64,
    /// Out-of-memory retries on the device (`retries = N`).
    pub retries: u64,
    /// Time spent in CPU reruns.
    pub rerun_time: std::time::Duration,
    /// CPU fallbacks after an [`UnsupportedOp`](DeviceErrorKind::UnsupportedOp).
    pub unsupported_op: u64,
    /// CPU fallbacks after an [`OutOfMemory`](DeviceErrorKind::OutOfMemory).
    pub out_of_memory: u64,
    /// CPU fallbacks after an [`UnsupportedDtype`](DeviceErrorKind::UnsupportedDtype).
    pub unsupported_dtype: u64,
    /// CPU fallbacks after an [`Unavailable`](DeviceErrorKind::Unavailable).
    pub unavailable: u64,
    /// Calls sent straight to CPU because the device failed before (sticky).
    pub sticky_skips: u64,
    /// Device failures passed on to the caller: not recoverable, or the CPU
    /// rerun failed too.
    pub failures: u64,
}

impl FunctionStats {
    /// All CPU fallbacks after a failed device attempt, sticky skips excluded.
    pub fn fallbacks(&self) -> u64 {
        self.unsupported_op + self.out_of_memory + self.unsupported_dtype + self.unavailable
    }
}

/// Per-function counts of every `#[safe_mps_op]` function of the program
/// (those never called included: they are known at link time).
///
/// ```no_run
/// for stats in resilience_runtime::device::stats() {
///     println!("{}: {} calls, {} fallbacks", stats.function, stats.calls, stats.fallbacks());
/// }
/// ```
pub fn stats() -> Vec<FunctionStats> {
    sites().map(DeviceSite::stats).collect()
}

/// Forgets which devices each function failed on, so that the next calls try
/// the device again (after a driver update, or a device that came back).
pub fn reset_health() {
    for site in sites() {
        site.sticky.store(0, Relaxed);
        site.absent.store(0, Relaxed);
    }
}
