//! Fault injection for tests and drills.
//!
//! ```
//! use resilience_runtime::chaos;
//!
//! // The next two calls of `my_app::infer` fail as if the GPU ran out of memory.
//! chaos::inject_device_error("my_app::infer", "CUDA out of memory. Tried to allocate 2.00 GiB", 2);
//! # chaos::clear();
//! ```

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};

/// Set while any injection is pending, so that the common case costs one
/// relaxed load and no lock.
static ARMED: AtomicBool = AtomicBool::new(false);
static PLANS: Mutex<Vec<Plan>> = Mutex::new(Vec::new());

struct Plan {
    function: String,
    message: String,
    remaining: usize,
}

/// Makes the next `times` calls of `function` fail as if libtorch had raised
/// `message` on the device, before the function's body runs.
///
/// `function` is the path `#[safe_mps_op]` reports (module path and name, e.g.
/// `my_app::model::forward`). The failure is classified and handled like a real
/// one: a CPU rerun for a device kind, propagation otherwise. A new injection
/// for the same function replaces the pending one.
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
    ARMED.store(!plans.is_empty(), Ordering::Relaxed);
}

/// Removes every pending injection.
pub fn clear() {
    let mut plans = PLANS.lock().unwrap_or_else(PoisonError::into_inner);
    plans.clear();
    ARMED.store(false, Ordering::Relaxed);
}

/// The injected message for this call of `function`, if one is pending.
#[cfg_attr(not(feature = "tch"), allow(dead_code))]
#[inline]
pub(crate) fn take_device_error(function: &str) -> Option<String> {
    if !ARMED.load(Ordering::Relaxed) {
        return None;
    }
    take_slow(function)
}

#[cold]
fn take_slow(function: &str) -> Option<String> {
    let mut plans = PLANS.lock().unwrap_or_else(PoisonError::into_inner);
    let index = plans.iter().position(|plan| plan.function == function)?;
    let plan = &mut plans[index];
    plan.remaining -= 1;
    let message = if plan.remaining == 0 {
        plans.swap_remove(index).message
    } else {
        plan.message.clone()
    };
    ARMED.store(!plans.is_empty(), Ordering::Relaxed);
    Some(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_injection_fires_the_given_number_of_times() {
        inject_device_error("chaos::tests::f", "CUDA out of memory", 2);
        assert_eq!(take_device_error("chaos::tests::g"), None);
        assert_eq!(
            take_device_error("chaos::tests::f").as_deref(),
            Some("CUDA out of memory")
        );
        assert_eq!(
            take_device_error("chaos::tests::f").as_deref(),
            Some("CUDA out of memory")
        );
        assert_eq!(take_device_error("chaos::tests::f"), None);
    }
}
