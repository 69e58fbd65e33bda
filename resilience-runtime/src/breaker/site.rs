//! Where each annotated function finds its breaker: its own, or one shared
//! by name, in a registry that operators look breakers up in.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock, PoisonError};

use super::CircuitOpenError;
use super::state::{Breaker, BreakerConfig, Permit};
use crate::policy::{Gate, Kind, Known, at_defaults, gate, kind_off};

static BREAKERS: OnceLock<Mutex<HashMap<&'static str, &'static Breaker>>> = OnceLock::new();

fn registry() -> std::sync::MutexGuard<'static, HashMap<&'static str, &'static Breaker>> {
    BREAKERS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
}

/// The breaker of one annotated function: its own, or the one it shares by
/// `name = "…"`. Found (or created) on first use, then cached, so calls take
/// no lock.
pub struct BreakerSite {
    name: Option<&'static str>,
    function: &'static str,
    policy: Option<&'static str>,
    config: BreakerConfig,
    breaker: OnceLock<&'static Breaker>,
    known: Known,
}

impl BreakerSite {
    /// The site of `function`, with its own breaker unless `name` shares one.
    pub const fn new(
        name: Option<&'static str>,
        function: &'static str,
        policy: Option<&'static str>,
        config: BreakerConfig,
    ) -> Self {
        Self {
            name,
            function,
            policy,
            config,
            breaker: OnceLock::new(),
            known: Known::new(),
        }
    }

    fn breaker(&self) -> &'static Breaker {
        self.breaker.get_or_init(|| self.register())
    }

    #[cold]
    fn register(&self) -> &'static Breaker {
        let create = |name| &*Box::leak(Box::new(Breaker::new(name, self.function, self.config)));
        let mut registry = registry();
        let Some(name) = self.name else {
            // Its own breaker, found by its path unless another function
            // already reports the same path.
            let breaker = create(self.function);
            registry.entry(self.function).or_insert(breaker);
            return breaker;
        };
        let breaker = *registry.entry(name).or_insert_with(|| create(name));
        if breaker.config != self.config {
            tracing::warn!(
                breaker = name,
                function = self.function,
                first = breaker.owner,
                "functions sharing this circuit breaker give it different settings; those of the first one (or of the policy file) apply"
            );
        }
        breaker
    }

    /// Admits one call, under the breaker's settings as the policy in force
    /// says.
    #[inline]
    pub fn admit(&'static self) -> Result<Permit<'static>, CircuitOpenError> {
        self.known.note(self.function, self.policy);
        let breaker = self.breaker();
        if at_defaults() {
            return breaker.admit(self.function, breaker.config);
        }
        if kind_off(Kind::Breaker) {
            return Ok(breaker.pass(self.function, breaker.config));
        }
        self.admit_by_policy(breaker)
    }

    #[cold]
    fn admit_by_policy(
        &'static self,
        breaker: &'static Breaker,
    ) -> Result<Permit<'static>, CircuitOpenError> {
        let keys = [Some(self.function), self.policy, self.name];
        match gate(Kind::Breaker, &keys, |e| {
            let entry = e.circuit_breaker.unwrap_or_default();
            (entry.enabled, entry)
        }) {
            Gate::Defaults => breaker.admit(self.function, breaker.config),
            Gate::Off => Ok(breaker.pass(self.function, breaker.config)),
            Gate::Override(entry) => {
                let base = breaker.config;
                let config = BreakerConfig {
                    failure_rate: entry.failure_rate.map_or(base.failure_rate, |r| r.0),
                    window: entry.window.map_or(base.window, |w| w.0),
                    min_calls: entry.min_calls.map_or(base.min_calls, |m| m.0),
                    open_for: entry.open_for.map_or(base.open_for, |d| d.0),
                    half_open_probes: entry
                        .half_open_probes
                        .map_or(base.half_open_probes, |p| p.0),
                    slow_call: entry.slow_call.map(|d| d.0).or(base.slow_call),
                };
                breaker.admit(self.function, config)
            }
        }
    }
}

impl std::fmt::Debug for BreakerSite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BreakerSite")
            .field("function", &self.function)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

pub(super) fn find(name: &str) -> Option<&'static Breaker> {
    registry().get(name).copied()
}
