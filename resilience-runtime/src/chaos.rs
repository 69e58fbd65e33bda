//! Fault injection for tests and drills.
//!
//! ```
//! use resilience_runtime::chaos;
//!
//! // The next two calls of `my_app::infer` fail as if the GPU ran out of memory.
//! chaos::inject_device_error("my_app::infer", "CUDA out of memory. Tried to allocate 2.00 GiB", 2);
//! # chaos::clear();
//! ```

use std::sync::{Mutex, PoisonError};

static PLANS: Mutex<Vec<Plan>> = Mutex::new(Vec::new());

struct Plan {
    function: String,
    message: String,
    remaining: usize,
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
    let mut plans = PLANS.lock().unwrap_or_else(PoisonError::into_inner);
    plans.retain(|plan| plan.function != function);
    if times > 0 {
        plans.push(Plan {
            function: function.to_owned(),
            message: message.into(),
            remaining: times,
        });
    }
    arm(function, times > 0);
}

/// Removes every pending injection.
pub fn clear() {
    let mut plans = PLANS.lock().unwrap_or_else(PoisonError::into_inner);
    for plan in plans.drain(..) {
        arm(&plan.function, false);
    }
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
    let Some(index) = plans.iter().position(|plan| plan.function == function) else {
        armed.store(false, std::sync::atomic::Ordering::Relaxed);
        return None;
    };
    let plan = &mut plans[index];
    plan.remaining -= 1;
    if plan.remaining > 0 {
        return Some(plan.message.clone());
    }
    armed.store(false, std::sync::atomic::Ordering::Relaxed);
    Some(plans.swap_remove(index).message)
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
