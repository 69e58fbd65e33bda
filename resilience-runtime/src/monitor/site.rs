//! One `#[monitor]`: counts its calls and reports slow ones.

use std::time::Duration;

use super::clock;
use crate::events::{Warning, may_warn, millis};
use crate::policy::{Gate, Kind, at_defaults, gate};
use crate::registry::Function;
#[cfg(feature = "metrics")]
use crate::telemetry;

/// One `#[monitor]` function, as its expansion declares it.
pub struct MonitorSite {
    function: &'static Function,
    pub(crate) policy: Option<&'static str>,
    /// The name it is recorded under (`name = "…"`).
    pub(crate) name: Option<&'static str>,
    slow: Option<Duration>,
    /// `resilience_calls_total`: success, failure.
    #[cfg(feature = "metrics")]
    calls: telemetry::Cached<[metrics::Counter; 2]>,
}

/// One pass through a `#[monitor]` layer: `Off` when the layer is switched
/// off; the clock is read only for a `slow` threshold.
#[derive(Clone, Copy)]
pub enum Entered {
    #[doc(hidden)]
    Off,
    #[doc(hidden)]
    On(Option<(u64, Duration)>),
}

impl MonitorSite {
    /// The site of `function`: its `policy` name, its `name`, and its `slow`
    /// threshold.
    pub const fn new(
        function: &'static Function,
        policy: Option<&'static str>,
        name: Option<&'static str>,
        slow: Option<Duration>,
    ) -> Self {
        Self {
            function,
            policy,
            name,
            slow,
            #[cfg(feature = "metrics")]
            calls: telemetry::Cached::new(),
        }
    }

    /// The policy keys that reach it: its function's path and `policy` name.
    pub(crate) fn keys(&self) -> [Option<&'static str>; 2] {
        [Some(self.function.path()), self.policy]
    }

    /// Starts one pass.
    #[inline]
    pub fn enter(&'static self) -> Entered {
        if at_defaults() {
            return Entered::On(self.slow.map(|slow| (clock::now(), slow)));
        }
        if !self.on() {
            return Entered::Off;
        }
        Entered::On(self.slow_in_force().map(|slow| (clock::now(), slow)))
    }

    /// Ends the pass `entered`, which `failed` or not: counted, and reported
    /// when slow.
    #[inline]
    pub fn exit(&'static self, entered: Entered, failed: bool) {
        let Entered::On(timed) = entered else {
            return;
        };
        #[cfg(not(feature = "metrics"))]
        let _ = failed;
        #[cfg(feature = "metrics")]
        self.calls.update(
            |recorder| {
                let outcomes = ["success", "failure"];
                telemetry::calls(recorder, self.function.label(), "monitor", outcomes)
            },
            |calls| calls[usize::from(failed)].increment(1),
        );
        if let Some((started, slow)) = timed {
            let elapsed = Duration::from_nanos(clock::nanos(started, clock::now()));
            if elapsed > slow {
                self.report_slow(elapsed, slow);
            }
        }
    }

    /// The `slow` threshold in force; `None` when there is none.
    pub(crate) fn slow_in_force(&self) -> Option<Duration> {
        if at_defaults() {
            return self.slow;
        }
        match gate(Kind::Monitor, &self.keys(), |e| {
            let entry = e.monitor.unwrap_or_default();
            (entry.enabled, entry.slow)
        }) {
            Gate::Defaults | Gate::Override(None) => self.slow,
            Gate::Override(Some(slow)) => Some(slow.0),
            Gate::Off => None,
        }
    }

    #[cold]
    fn on(&self) -> bool {
        !matches!(
            gate(Kind::Monitor, &self.keys(), |e| {
                (e.monitor.and_then(|m| m.enabled), ())
            }),
            Gate::Off
        )
    }

    #[cold]
    #[inline(never)]
    fn report_slow(&self, elapsed: Duration, slow: Duration) {
        let function = self.function.path();
        if let Some(suppressed) = may_warn(function, Warning::Slow) {
            tracing::warn!(
                function,
                elapsed_ms = millis(elapsed),
                slow_ms = millis(slow),
                suppressed,
                "slow call"
            );
        }
    }
}
