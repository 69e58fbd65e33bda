//! Every annotated function of the program, known at link time, before any
//! call: a policy file is checked against them when it loads, breakers can be
//! forced open at start-up, and [`sites`] lists them all, with the settings
//! in force, for a health or admin endpoint.
//!
//! ```
//! use resilience_runtime::sites::{Layer, Site};
//! use resilience_runtime::timeout_async;
//!
//! #[timeout_async("250ms")]
//! async fn best_bid() -> std::io::Result<f64> {
//!     Ok(101.5)
//! }
//!
//! // Listed before any call.
//! let site: Site = resilience_runtime::sites()
//!     .into_iter()
//!     .find(|site| site.function.ends_with("::best_bid"))
//!     .unwrap();
//! assert!(matches!(site.layers[..], [Layer::Timeout { limit: Some(_), .. }]));
//! ```

use std::time::Duration;

use crate::breaker::{Settings, State};
use crate::registry::{LayerSite, functions};

/// One annotated function and its attributes, with the settings in force.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Site {
    /// Its path, as errors and policy keys name it.
    pub function: &'static str,
    /// Its attributes, outermost first.
    pub layers: Vec<Layer>,
}

/// One attribute of a [`Site`], with the settings in force (the attribute's,
/// as a policy file overrides them).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Layer {
    /// `#[timeout_async]`.
    Timeout {
        /// The limit; `None` when switched off.
        limit: Option<Duration>,
        /// Its `policy = "…"` name.
        policy: Option<&'static str>,
    },
    /// `#[retry]`.
    Retry {
        /// Attempts in all; 1 when switched off.
        attempts: u32,
        /// Its `policy = "…"` name.
        policy: Option<&'static str>,
    },
    /// `#[circuit_breaker]`.
    Breaker {
        /// The breaker's name.
        name: &'static str,
        /// Its state.
        state: State,
        /// Its settings; `None` when switched off.
        settings: Option<Settings>,
        /// Its `policy = "…"` name.
        policy: Option<&'static str>,
    },
    /// `#[monitor]`.
    Monitor {
        /// The name it is recorded under, when it has its own.
        name: Option<&'static str>,
        /// Calls slower than this are reported; `None` when none is.
        slow: Option<Duration>,
        /// Its `policy = "…"` name.
        policy: Option<&'static str>,
    },
    /// `#[rate_limit]`.
    RateLimit {
        /// The limiter's name.
        name: &'static str,
        /// Its settings; `None` when switched off.
        settings: Option<crate::rate_limit::Settings>,
        /// Its `policy = "…"` name.
        policy: Option<&'static str>,
    },
    /// `#[bulkhead]`.
    Bulkhead {
        /// The bulkhead's name.
        name: &'static str,
        /// Its settings; `None` when switched off.
        settings: Option<crate::bulkhead::Settings>,
        /// Its `policy = "…"` name.
        policy: Option<&'static str>,
    },
    /// `#[safe_mps_op]`.
    #[cfg(feature = "tch")]
    Device {
        /// Whether a failed device op runs again on the CPU; `None` when
        /// switched off.
        fallback: Option<bool>,
        /// Its `policy = "…"` name.
        policy: Option<&'static str>,
    },
}

/// Every function annotated with `#[timeout_async]`, `#[retry]`,
/// `#[circuit_breaker]`, `#[rate_limit]`, `#[bulkhead]`, `#[monitor]` or
/// `#[safe_mps_op]` in the program, with the settings in force.
pub fn sites() -> Vec<Site> {
    let mut sites: Vec<Site> = functions()
        .map(|function| Site {
            function: function.path(),
            layers: function
                .layers()
                .iter()
                .map(|layer| layer.describe())
                .collect(),
        })
        .collect();
    sites.sort_by_key(|site| site.function);
    sites
}

impl LayerSite {
    fn describe(self) -> Layer {
        match self {
            LayerSite::Timeout(site) => Layer::Timeout {
                limit: site.limit_in_force(),
                policy: site.policy,
            },
            LayerSite::Retry(site) => Layer::Retry {
                attempts: site.options().attempts,
                policy: site.policy,
            },
            LayerSite::Breaker(site) => {
                let breaker = site.breaker();
                Layer::Breaker {
                    name: breaker.name(),
                    state: breaker.state(),
                    settings: site.config_in_force(),
                    policy: site.owner.policy,
                }
            }
            LayerSite::RateLimit(site) => Layer::RateLimit {
                name: site.owner.name(),
                settings: site.settings_in_force(),
                policy: site.owner.policy,
            },
            LayerSite::Bulkhead(site) => Layer::Bulkhead {
                name: site.owner.name(),
                settings: site.settings_in_force(),
                policy: site.owner.policy,
            },
            #[cfg(feature = "tch")]
            LayerSite::Device(site) => Layer::Device {
                fallback: site.options_in_force().map(|options| options.fallback),
                policy: site.policy,
            },
            LayerSite::Monitor(site) => Layer::Monitor {
                name: site.name,
                slow: site.slow_in_force(),
                policy: site.policy,
            },
        }
    }
}
