//! Fault injection for tests and drills: stalls, blocking, errors and
//! device failures, injected into named functions.
//!
//! ```
//! use std::time::Duration;
//! use resilience_runtime::chaos;
//!
//! // The next two calls of `my_app::feed::connect` wait 3 s before the body runs.
//! chaos::inject_delay("my_app::feed::connect", Duration::from_secs(3), 2);
//! // The next two calls of `my_app::infer` fail as if the GPU ran out of memory.
//! chaos::inject_device_error("my_app::infer", "CUDA out of memory. Tried to allocate 2.00 GiB", 2);
//! chaos::clear();
//! ```
//!
//! A policy file can inject the same faults for a drill in staging: a
//! `[chaos]` table, in force only when the file also says
//! `chaos_enabled = true`. [`clear`] and the kill switch (`enabled = false`,
//! `RESILIENCE_DISABLE=all`) stop everything injected.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use crate::attention::{self, Reason};
use crate::registry::{Function, functions};

static PLANS: Mutex<Vec<Plan>> = Mutex::new(Vec::new());

struct Plan {
    function: String,
    fault: Fault,
    remaining: u64,
    /// Made by a policy file: the next file's table replaces it.
    from_file: bool,
}

#[derive(Clone, PartialEq)]
enum Fault {
    Device(String),
    Delay(Duration),
    Blocking(Duration),
    Error,
}

impl Fault {
    fn same_kind(&self, other: &Fault) -> bool {
        std::mem::discriminant(self) == std::mem::discriminant(other)
    }
}

/// The error an injected failure is built from: `#[timeout_async]`,
/// `#[retry]`, `#[circuit_breaker]` and `#[monitor]` functions whose return
/// type is `Result<T, E>` with `E: From<InjectedError>` (named in the
/// signature, not generic) return `Err(InjectedError.into())` in place of
/// running the body. Other return types cannot carry it: the injection is a
/// WARN there and the body runs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a fault injected into `{function}` (chaos::inject_error)")]
pub struct InjectedError {
    function: &'static str,
}

impl InjectedError {
    /// The function it was injected into.
    pub fn function(&self) -> &'static str {
        self.function
    }
}

/// Makes the next `times` calls of `function` wait `delay` before the body
/// runs: a stalled dependency. The wait is asynchronous, inside every
/// deadline of the function, and ends early when the call is dropped.
///
/// `function` is the path errors report (`my_app::feed::connect`; a method's
/// includes its type). A new injection of the same kind replaces the
/// pending one; a `function` no annotated function is called is a WARN with
/// the closest one. Each call (each attempt, under a `#[retry]` written
/// above) takes one.
pub fn inject_delay(function: &str, delay: Duration, times: u32) {
    inject(function, Fault::Delay(delay), times.into(), false);
}

/// Makes the next `times` calls of `function` block their thread for
/// `delay` before the body runs: a blocking bug, which no deadline can cut
/// short and the [`watchdog`](crate::watchdog) reports.
pub fn inject_blocking(function: &str, delay: Duration, times: u32) {
    inject(function, Fault::Blocking(delay), times.into(), false);
}

/// Makes the next `times` calls of `function` fail with an
/// [`InjectedError`] in place of running the body, as if the body had
/// returned it.
pub fn inject_error(function: &str, times: u32) {
    inject(function, Fault::Error, times.into(), false);
}

/// Makes the next `times` device attempts of `function` fail as if libtorch
/// had raised `message`, before the function's body runs.
///
/// `function` is the path `#[safe_mps_op]` reports (module path and name, e.g.
/// `my_app::model::forward`; a method's includes its type,
/// `my_app::model::Encoder::forward`). The failure is classified and handled
/// like a real one: a CPU rerun for a device kind, propagation otherwise.
/// Each attempt on the device takes one, out-of-memory retries included, so
/// `retries = N` can be drilled; CPU reruns take none. A new injection for
/// the same function replaces the pending one. A `function` that names no
/// `#[safe_mps_op]` function of the program is a WARN with the closest one.
///
/// Only the functions it names pay for it: every other call still checks
/// one relaxed flag of its own.
pub fn inject_device_error(function: &str, message: impl Into<String>, times: usize) {
    inject(function, Fault::Device(message.into()), times as u64, false);
}

fn inject(function: &str, fault: Fault, times: u64, from_file: bool) {
    let mut plans = PLANS.lock().unwrap_or_else(PoisonError::into_inner);
    plans.retain(|plan| !(plan.function == function && plan.fault.same_kind(&fault)));
    let device = matches!(fault, Fault::Device(_));
    if times > 0 {
        plans.push(Plan {
            function: function.to_owned(),
            fault,
            remaining: times,
            from_file,
        });
        if !device && !functions().any(|f| f.is_called(function)) {
            tracing::warn!(
                function,
                did_you_mean = crate::policy::check::closest(function).unwrap_or(""),
                "no annotated function is called this; the injection will never fire"
            );
        }
    }
    if device {
        arm(function, times > 0);
    }
    armed(&plans);
}

/// Sets the call-fault flag when a plan other than a device error is left.
fn armed(plans: &[Plan]) {
    let calls = plans.iter().any(|p| !matches!(p.fault, Fault::Device(_)));
    attention::set(Reason::Faults, calls);
}

/// Removes every pending injection.
pub fn clear() {
    let mut plans = PLANS.lock().unwrap_or_else(PoisonError::into_inner);
    for plan in plans.drain(..) {
        if let Fault::Device(_) = plan.fault {
            arm(&plan.function, false);
        }
    }
    armed(&plans);
}

/// One function's entry in a policy file's `[chaos]` table.
pub(crate) struct Drill<'a> {
    pub(crate) function: &'a str,
    pub(crate) delay: Option<Duration>,
    pub(crate) blocking: Option<Duration>,
    pub(crate) error: bool,
    pub(crate) times: u32,
}

/// Injects what a policy file's `[chaos]` table says, in place of what the
/// previous file injected.
pub(crate) fn from_file(drills: &[Drill<'_>]) {
    {
        let mut plans = PLANS.lock().unwrap_or_else(PoisonError::into_inner);
        plans.retain(|plan| !plan.from_file);
        armed(&plans);
    }
    for drill in drills {
        let (function, times) = (drill.function, u64::from(drill.times));
        if let Some(delay) = drill.delay {
            inject(function, Fault::Delay(delay), times, true);
        }
        if let Some(blocking) = drill.blocking {
            inject(function, Fault::Blocking(blocking), times, true);
        }
        if drill.error {
            inject(function, Fault::Error, times, true);
        }
    }
}

/// The faults one call of `function` takes.
#[derive(Default)]
pub(crate) struct CallFaults {
    pub(crate) delay: Option<Duration>,
    pub(crate) blocking: Option<Duration>,
    pub(crate) error: Option<InjectedError>,
}

/// Takes this call's share of what is injected into `function`; nothing
/// while the kill switch turns everything off.
#[cold]
pub(crate) fn take_call_faults(function: &'static Function) -> CallFaults {
    let mut faults = CallFaults::default();
    if crate::policy::kind_off_all() {
        return faults;
    }
    let mut plans = PLANS.lock().unwrap_or_else(PoisonError::into_inner);
    for plan in plans.iter_mut() {
        if matches!(plan.fault, Fault::Device(_)) || !function.is_called(&plan.function) {
            continue;
        }
        plan.remaining -= 1;
        match plan.fault {
            Fault::Delay(delay) => faults.delay = Some(delay),
            Fault::Blocking(delay) => faults.blocking = Some(delay),
            Fault::Error => {
                faults.error = Some(InjectedError {
                    function: function.path(),
                })
            }
            Fault::Device(_) => unreachable!("skipped above"),
        }
    }
    plans.retain(|plan| plan.remaining > 0);
    armed(&plans);
    faults
}

/// Sets the flag of each device site called `function`.
#[cfg(feature = "tch")]
fn arm(function: &str, armed: bool) {
    use std::sync::atomic::Ordering::Relaxed;
    let mut found = false;
    for site in crate::device::site::sites().filter(|site| site.is_called(function)) {
        site.armed.store(armed, Relaxed);
        found = true;
    }
    if armed && !found {
        tracing::warn!(
            function,
            did_you_mean = crate::policy::check::closest(function).unwrap_or(""),
            "no #[safe_mps_op] function is called this; the injection will never fire"
        );
    }
}

#[cfg(not(feature = "tch"))]
fn arm(function: &str, armed: bool) {
    if armed {
        tracing::warn!(
            function,
            "no #[safe_mps_op] function is called this (the `tch` feature is off); the injection will never fire"
        );
    }
}

/// The injected message for this attempt of `function`, if one is pending.
/// `armed` (the site's flag) is cleared under the same lock when none is
/// left, so that an injection made meanwhile is never disarmed.
#[cfg_attr(not(feature = "tch"), allow(dead_code))]
#[cold]
pub(crate) fn take_device_error(
    function: &str,
    armed: &std::sync::atomic::AtomicBool,
) -> Option<String> {
    let mut plans = PLANS.lock().unwrap_or_else(PoisonError::into_inner);
    let device = |plan: &Plan| plan.function == function && matches!(plan.fault, Fault::Device(_));
    let Some(index) = plans.iter().position(device) else {
        armed.store(false, std::sync::atomic::Ordering::Relaxed);
        return None;
    };
    let plan = &mut plans[index];
    let Fault::Device(message) = &plan.fault else {
        unreachable!("found above");
    };
    let message = message.clone();
    plan.remaining -= 1;
    if plan.remaining > 0 {
        return Some(message);
    }
    armed.store(false, std::sync::atomic::Ordering::Relaxed);
    plans.swap_remove(index);
    Some(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_injection_fires_the_given_number_of_times() {
        use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
        inject_device_error("chaos::tests::f", "CUDA out of memory", 2);
        let armed = AtomicBool::new(true);
        let message = Some("CUDA out of memory".to_owned());
        assert_eq!(take_device_error("chaos::tests::f", &armed), message);
        assert!(armed.load(Relaxed), "one left");
        assert_eq!(take_device_error("chaos::tests::f", &armed), message);
        assert!(!armed.load(Relaxed), "none left");
        assert_eq!(take_device_error("chaos::tests::f", &armed), None);
        let other = AtomicBool::new(true);
        assert_eq!(take_device_error("chaos::tests::g", &other), None);
        assert!(!other.load(Relaxed));
    }
}
