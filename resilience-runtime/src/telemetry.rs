//! Metrics through the `metrics` facade. The names and labels are a public
//! contract (dashboards depend on them); the guide lists them.
//!
//! The `metrics` macros build and hash a key for every update. Each site
//! registers its handles once instead, with the recorder in force at its
//! first call after one is installed, and then pays an atomic add per update.
//! Rare updates (a transition, a fallback) use the macros.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use metrics::{Counter, Key, Label, Metadata, Recorder};

use crate::breaker::State;

pub(crate) const CALLS: &str = "resilience_calls_total";
pub(crate) const DURATION: &str = "resilience_call_duration_seconds";
pub(crate) const RETRIES: &str = "resilience_retries_total";
pub(crate) const BREAKER_STATE: &str = "resilience_circuitbreaker_state";
pub(crate) const TRANSITIONS: &str = "resilience_circuitbreaker_transitions_total";
pub(crate) const WATCHDOG_EVENTS: &str = "resilience_watchdog_events_total";
pub(crate) const ESCALATIONS: &str = "resilience_escalations_total";
pub(crate) const TIMEOUT_LIMIT: &str = "resilience_timeout_limit_seconds";
#[cfg(feature = "tch")]
pub(crate) const FALLBACKS: &str = "resilience_device_fallbacks_total";

static METADATA: Metadata<'static> =
    Metadata::new(module_path!(), metrics::Level::INFO, Some(module_path!()));

/// The handles of one site, registered with one recorder.
pub(crate) struct Cached<H> {
    /// The recorder the handles were registered with (its address).
    owner: AtomicUsize,
    handles: OnceLock<H>,
}

impl<H> Cached<H> {
    pub(crate) const fn new() -> Self {
        Self {
            owner: AtomicUsize::new(0),
            handles: OnceLock::new(),
        }
    }

    /// Runs `update` on the handles for the recorder in force, registered by
    /// `register` the first time. With no recorder installed, does nothing.
    ///
    /// `metrics`' no-op recorder, in force until one is installed, is the
    /// only recorder of zero size that this toolkit knows of: every exporter
    /// holds state. A zero-sized recorder is taken for it.
    #[inline]
    pub(crate) fn update(
        &self,
        register: impl FnOnce(&dyn Recorder) -> H,
        update: impl FnOnce(&H),
    ) {
        metrics::with_recorder(|recorder| {
            if size_of_val(recorder) == 0 {
                return;
            }
            let id = recorder_id(recorder);
            match self.handles.get() {
                Some(handles) if self.owner.load(Relaxed) == id => update(handles),
                _ => self.update_slow(recorder, id, register, update),
            }
        });
    }

    #[cold]
    #[inline(never)]
    fn update_slow(
        &self,
        recorder: &dyn Recorder,
        id: usize,
        register: impl FnOnce(&dyn Recorder) -> H,
        update: impl FnOnce(&H),
    ) {
        let mut register = Some(register);
        let handles = self.handles.get_or_init(|| {
            self.owner.store(id, Relaxed);
            (register.take().expect("registers once"))(recorder)
        });
        if self.owner.load(Relaxed) == id {
            update(handles);
        } else if let Some(register) = register {
            // Another recorder than the one cached (a thread's local one):
            // registered afresh for this update.
            update(&register(recorder));
        }
    }
}

fn recorder_id(recorder: &dyn Recorder) -> usize {
    std::ptr::from_ref(recorder).cast::<()>() as usize
}

/// `resilience_calls_total{function, kind, outcome}`, one counter per outcome.
pub(crate) fn calls<const N: usize>(
    recorder: &dyn Recorder,
    function: &'static str,
    kind: &'static str,
    outcomes: [&'static str; N],
) -> [Counter; N] {
    outcomes.map(|outcome| {
        let labels = vec![
            Label::from_static_parts("function", function),
            Label::from_static_parts("kind", kind),
            Label::from_static_parts("outcome", outcome),
        ];
        recorder.register_counter(&Key::from_parts(CALLS, labels), &METADATA)
    })
}

/// A counter of `name` with the one label `label = value`.
pub(crate) fn counter(
    recorder: &dyn Recorder,
    name: &'static str,
    label: &'static str,
    value: &'static str,
) -> Counter {
    let key = Key::from_parts(name, vec![Label::from_static_parts(label, value)]);
    recorder.register_counter(&key, &METADATA)
}

/// `resilience_call_duration_seconds{function, outcome}`: success, failure.
pub(crate) fn durations(
    recorder: &dyn Recorder,
    function: &'static str,
) -> [metrics::Histogram; 2] {
    ["success", "failure"].map(|outcome| {
        let labels = vec![
            Label::from_static_parts("function", function),
            Label::from_static_parts("outcome", outcome),
        ];
        recorder.register_histogram(&Key::from_parts(DURATION, labels), &METADATA)
    })
}

/// A breaker's state as a label: `closed`, `open`, `half_open`, …
fn state_label(state: State) -> &'static str {
    match state {
        State::Closed => "closed",
        State::Open => "open",
        State::HalfOpen => "half_open",
        State::ForcedOpen => "forced_open",
        State::ForcedClosed => "forced_closed",
    }
}

/// `resilience_circuitbreaker_state{breaker, state}`: 1 for `state`, 0 for
/// the others.
pub(crate) fn breaker_state(breaker: &'static str, state: State) {
    for other in State::ALL {
        let value = if other == state { 1.0 } else { 0.0 };
        metrics::gauge!(BREAKER_STATE, "breaker" => breaker, "state" => state_label(other))
            .set(value);
    }
}

/// A breaker's transition: counted, and its state gauges set.
pub(crate) fn transition(breaker: &'static str, from: State, to: State) {
    metrics::counter!(
        TRANSITIONS,
        "breaker" => breaker,
        "from" => state_label(from),
        "to" => state_label(to)
    )
    .increment(1);
    breaker_state(breaker, to);
}

/// `resilience_timeout_limit_seconds{function}`: the limit an adaptive
/// timeout's calls get.
pub(crate) fn timeout_limit(function: &'static str, limit: std::time::Duration) {
    metrics::gauge!(TIMEOUT_LIMIT, "function" => function).set(limit.as_secs_f64());
}

/// `resilience_watchdog_events_total{function, kind}`.
pub(crate) fn watchdog_event(function: &'static str, kind: &'static str) {
    metrics::counter!(WATCHDOG_EVENTS, "function" => function, "kind" => kind).increment(1);
}

/// `resilience_escalations_total{function, cause}`.
pub(crate) fn escalation(function: &'static str, cause: &'static str) {
    metrics::counter!(ESCALATIONS, "function" => function, "cause" => cause).increment(1);
}

/// `resilience_device_fallbacks_total{function, device, reason}`.
#[cfg(feature = "tch")]
pub(crate) fn device_fallback(function: &'static str, device: String, reason: &'static str) {
    metrics::counter!(FALLBACKS, "function" => function, "device" => device, "reason" => reason)
        .increment(1);
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use metrics::{Gauge, Histogram, KeyName, SharedString, Unit};

    use super::*;

    /// Counts the counters registered with it.
    struct Registrations(AtomicUsize);

    impl Recorder for Registrations {
        fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn register_counter(&self, _: &Key, _: &Metadata<'_>) -> Counter {
            self.0.fetch_add(1, Relaxed);
            Counter::noop()
        }
        fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
            Gauge::noop()
        }
        fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
            Histogram::noop()
        }
    }

    #[test]
    fn handles_are_registered_once_and_never_with_the_no_op_recorder() {
        let cached: Cached<Counter> = Cached::new();
        let register = |recorder: &dyn Recorder| counter(recorder, RETRIES, "function", "f");
        let mut updates = 0;
        cached.update(register, |_| updates += 1);
        assert_eq!(updates, 0, "no recorder installed: nothing to update");

        let recorder = Registrations(AtomicUsize::new(0));
        metrics::with_local_recorder(&recorder, || {
            for _ in 0..3 {
                cached.update(register, |_| updates += 1);
            }
        });
        assert_eq!(updates, 3);
        assert_eq!(recorder.0.load(Relaxed), 1, "registered once, then cached");
    }
}
