//! Where each annotated function finds its breaker: its own, or one shared
//! by name, in a registry that operators look breakers up in.

use std::sync::OnceLock;

use super::CircuitOpenError;
use super::state::{Breaker, Name, Permit, Settings};
use crate::admission::Owner;
use crate::policy::{Gate, Kind, at_defaults, gate, kind_off};
use crate::registry::{Function, LayerSite, Shared};
#[cfg(feature = "metrics")]
use crate::telemetry;

static SHARED: Shared<Breaker> = Shared::new();

/// The breaker of one annotated function: its own, or the one it shares by
/// `name = "…"`. Found (or created) on first use, then cached, so calls take
/// no lock.
pub struct BreakerSite {
    pub(crate) owner: Owner,
    config: Settings,
    breaker: OnceLock<&'static Breaker>,
    /// `resilience_calls_total`: success, failure, rejected.
    #[cfg(feature = "metrics")]
    calls: telemetry::Cached<[metrics::Counter; 3]>,
}

impl BreakerSite {
    /// The site of `function`, with its own breaker unless `name` shares one.
    pub const fn new(
        name: Option<&'static str>,
        function: &'static Function,
        policy: Option<&'static str>,
        config: Settings,
    ) -> Self {
        Self {
            owner: Owner::new(name, function, policy),
            config,
            breaker: OnceLock::new(),
            #[cfg(feature = "metrics")]
            calls: telemetry::Cached::new(),
        }
    }

    /// Its breaker, created by the first call, or earlier when an operator
    /// or [`sites`](crate::sites()) asks for it.
    pub(crate) fn breaker(&self) -> &'static Breaker {
        self.breaker.get_or_init(|| self.register())
    }

    /// The name its breaker is known by.
    pub(crate) fn breaker_name(&self) -> &'static str {
        self.owner.name()
    }

    #[cold]
    fn register(&self) -> &'static Breaker {
        let function = self.owner.function.path();
        let Some(name) = self.owner.name else {
            // Its own breaker; found through its site (see `find`).
            let own = Breaker::new(Name::Own(self.owner.function), function, self.config);
            return Box::leak(Box::new(own));
        };
        let breaker = SHARED.get_or_make(name, || {
            Breaker::new(Name::Shared(name), function, self.config)
        });
        if breaker.config != self.config {
            tracing::warn!(
                breaker = name,
                function,
                first = breaker.owner,
                "functions sharing this circuit breaker give it different settings; those of the first one (or of the policy file) apply"
            );
        }
        breaker
    }

    /// Admits one call, under the breaker's settings as the policy in force
    /// says.
    #[inline]
    pub fn admit(&'static self) -> Result<Admitted, CircuitOpenError> {
        let function = self.owner.function.path();
        let breaker = self.breaker();
        let admitted = if at_defaults() {
            breaker.admit(function, breaker.config)
        } else {
            match self.config_by_policy(breaker) {
                Some(config) => breaker.admit(function, config),
                None => Ok(breaker.pass(function)),
            }
        };
        match admitted {
            Ok(permit) => Ok(Admitted {
                permit: Some(permit),
                site: self,
            }),
            Err(rejected) => {
                self.count(2);
                Err(rejected)
            }
        }
    }

    /// Counts the outcome of an `admitted` call.
    #[inline]
    pub fn finish(&'static self, mut admitted: Admitted, failed: bool) {
        if let Some(permit) = admitted.permit.take() {
            permit.record(failed);
        }
        self.count(usize::from(failed));
    }

    /// Counts a call in `resilience_calls_total`: 0 success, 1 failure, 2
    /// rejected.
    #[inline]
    fn count(&'static self, _outcome: usize) {
        #[cfg(feature = "metrics")]
        self.calls.update(
            |recorder| {
                let breaker = self.breaker();
                telemetry::breaker_state(breaker.name(), breaker.state());
                telemetry::calls(
                    recorder,
                    self.owner.function.label(),
                    "breaker",
                    ["success", "failure", "rejected"],
                )
            },
            |calls| calls[_outcome].increment(1),
        );
    }

    /// The settings in force; `None` when switched off.
    pub(crate) fn config_in_force(&self) -> Option<Settings> {
        let breaker = self.breaker();
        if at_defaults() {
            Some(breaker.config)
        } else {
            self.config_by_policy(breaker)
        }
    }

    #[cold]
    fn config_by_policy(&self, breaker: &'static Breaker) -> Option<Settings> {
        if kind_off(Kind::Breaker) {
            return None;
        }
        let base = breaker.config;
        match gate(Kind::Breaker, &self.owner.keys(), |e| {
            let entry = e.circuit_breaker.unwrap_or_default();
            (entry.enabled, entry)
        }) {
            Gate::Defaults => Some(base),
            Gate::Off => None,
            Gate::Override(entry) => Some(Settings {
                failure_rate: entry.failure_rate.map_or(base.failure_rate, |r| r.0),
                window: entry.window.map_or(base.window, |w| w.0),
                min_calls: entry.min_calls.map_or(base.min_calls, |m| m.0),
                open_for: entry.open_for.map_or(base.open_for, |d| d.0),
                half_open_probes: entry
                    .half_open_probes
                    .map_or(base.half_open_probes, |p| p.0),
                slow_call: entry.slow_call.map(|d| d.0).or(base.slow_call),
            }),
        }
    }
}

impl std::fmt::Debug for BreakerSite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BreakerSite")
            .field("owner", &self.owner)
            .finish_non_exhaustive()
    }
}

/// A call the breaker admitted: its permit, and the site that counts its
/// outcome in the metrics, also when the call's own deadline drops it (a
/// failure, as the breaker's window counts it).
pub struct Admitted {
    permit: Option<Permit<'static>>,
    site: &'static BreakerSite,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        if self.permit.as_ref().is_some_and(Permit::drops_as_failure) {
            self.site.count(1);
        }
    }
}

/// The breaker `name`: a shared one, or the one of the function of that path
/// (created now if it has not run yet).
pub(super) fn find(name: &str) -> Option<&'static Breaker> {
    if let Some(breaker) = SHARED.get(name) {
        return Some(breaker);
    }
    crate::registry::functions()
        .flat_map(|function| function.layers())
        .find_map(|layer| match layer {
            LayerSite::Breaker(site) if site.breaker_name() == name => Some(site.breaker()),
            _ => None,
        })
}
