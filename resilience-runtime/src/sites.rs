//! Every annotated function, known at link time.
//!
//! Each expansion declares one [`Function`] and registers it in a `linkme`
//! distributed slice, so the full set of functions, policy names and breaker
//! names is known before the first call: a policy file is checked against it
//! when it loads, breakers can be forced open at start-up, and [`sites`]
//! lists them all, for a health or admin endpoint.
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

use std::sync::OnceLock;
use std::time::Duration;

use linkme::distributed_slice;

use crate::breaker::site::BreakerSite;
use crate::breaker::{Settings, State};
use crate::deadline::site::TimeoutSite;
#[cfg(feature = "tch")]
use crate::device::site::DeviceSite;
use crate::policy::Kind;
use crate::retry::run::RetrySite;

/// Every annotated function of the program.
#[doc(hidden)]
#[distributed_slice]
pub static FUNCTIONS: [&'static Function];

/// One annotated function, as its expansion declares it.
#[doc(hidden)]
pub struct Function {
    /// `module::function`.
    path: &'static str,
    /// The function's own name.
    name: &'static str,
    /// A method (a receiver, or `Self` in its signature): its path names the
    /// type, known from the first call on.
    method: bool,
    resolved: OnceLock<&'static str>,
    layers: &'static [LayerSite],
}

/// One attribute of a function, outermost first.
#[doc(hidden)]
#[derive(Clone, Copy)]
pub enum LayerSite {
    /// `#[timeout_async]`
    Timeout(&'static TimeoutSite),
    /// `#[retry]`
    Retry(&'static RetrySite),
    /// `#[circuit_breaker]`
    Breaker(&'static BreakerSite),
    /// `#[safe_mps_op]`
    #[cfg(feature = "tch")]
    Device(&'static DeviceSite),
}

impl LayerSite {
    pub(crate) fn kind(self) -> Kind {
        match self {
            LayerSite::Timeout(_) => Kind::Timeout,
            LayerSite::Retry(_) => Kind::Retry,
            LayerSite::Breaker(_) => Kind::Breaker,
            #[cfg(feature = "tch")]
            LayerSite::Device(_) => Kind::Device,
        }
    }

    pub(crate) fn policy(self) -> Option<&'static str> {
        match self {
            LayerSite::Timeout(site) => site.policy,
            LayerSite::Retry(site) => site.policy,
            LayerSite::Breaker(site) => site.policy,
            #[cfg(feature = "tch")]
            LayerSite::Device(site) => site.policy,
        }
    }
}

impl Function {
    /// The function at `path` (`module::name`), with its `layers`.
    pub const fn new(
        path: &'static str,
        name: &'static str,
        method: bool,
        layers: &'static [LayerSite],
    ) -> Self {
        Self {
            path,
            name,
            method,
            resolved: OnceLock::new(),
            layers,
        }
    }

    /// The path reported in errors and events and used as a policy key:
    /// `module::function`, or `module::Type::method` once a method has run.
    #[inline]
    pub fn path(&self) -> &'static str {
        if self.method {
            self.resolved.get().copied().unwrap_or(self.path)
        } else {
            self.path
        }
    }

    /// Names the type of a method, once: `type_name` is
    /// `core::any::type_name::<Self>`.
    #[inline]
    pub fn resolve(&self, type_name: fn() -> &'static str) {
        if self.resolved.get().is_none() {
            self.resolve_slow(type_name);
        }
    }

    #[cold]
    fn resolve_slow(&self, type_name: fn() -> &'static str) {
        self.resolved.get_or_init(|| {
            // Without generic arguments: one site, whatever the instance.
            let ty = type_name();
            let ty = ty.split_once('<').map_or(ty, |(path, _)| path);
            Box::leak(format!("{ty}::{}", self.name).into_boxed_str())
        });
    }

    pub(crate) fn layers(&self) -> &'static [LayerSite] {
        self.layers
    }

    /// Whether `key` names this function: its path, or for a method not yet
    /// run, any `Type::method` path in the same crate.
    pub(crate) fn is_called(&self, key: &str) -> bool {
        if key == self.path() {
            return true;
        }
        let krate = |path: &str| path.split("::").next().unwrap_or_default().to_owned();
        self.method
            && self.resolved.get().is_none()
            && key.ends_with(&format!("::{}", self.name))
            && krate(key) == krate(self.path)
    }
}

/// Every annotated function of the program.
pub(crate) fn functions() -> impl Iterator<Item = &'static Function> {
    FUNCTIONS.iter().copied()
}

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
/// `#[circuit_breaker]` or `#[safe_mps_op]` in the program, with the
/// settings in force.
pub fn sites() -> Vec<Site> {
    let mut sites: Vec<Site> = functions()
        .map(|function| Site {
            function: function.path(),
            layers: function
                .layers
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
                    policy: site.policy,
                }
            }
            #[cfg(feature = "tch")]
            LayerSite::Device(site) => Layer::Device {
                fallback: site.options_in_force().map(|options| options.fallback),
                policy: site.policy,
            },
        }
    }
}
