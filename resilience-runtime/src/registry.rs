//! Every annotated function of the program, registered at link time.
//!
//! Each expansion declares one [`Function`] (its path and a reference to the
//! site of each of its attributes) and registers it in a `linkme`
//! distributed slice, so the full set of functions, policy names and breaker
//! names is known before `main` runs, with no code before it. Expansions
//! reach this module through `__private`; users see it through
//! [`sites`](crate::sites()).

use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
use std::sync::{Mutex, OnceLock, PoisonError};

use linkme::distributed_slice;

use crate::breaker::site::BreakerSite;
use crate::bulkhead::site::BulkheadSite;
use crate::deadline::site::TimeoutSite;
#[cfg(feature = "tch")]
use crate::device::site::DeviceSite;
use crate::monitor::{self, MonitorSite, clock};
use crate::policy::Kind;
use crate::rate_limit::site::RateLimitSite;
use crate::retry::run::RetrySite;
#[cfg(feature = "metrics")]
use crate::telemetry;

/// Every annotated function of the program.
#[distributed_slice]
pub static FUNCTIONS: [&'static Function];

/// One annotated function, as its expansion declares it.
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
    monitor: monitor::Site,
    #[cfg(feature = "metrics")]
    durations: telemetry::Cached<[metrics::Histogram; 2]>,
    /// Its number in [`by_id`], from 1; 0 until it needs one.
    id: AtomicU32,
}

/// One attribute of a function, outermost first.
#[derive(Clone, Copy)]
pub enum LayerSite {
    /// `#[timeout_async]`
    Timeout(&'static TimeoutSite),
    /// `#[retry]`
    Retry(&'static RetrySite),
    /// `#[circuit_breaker]`
    Breaker(&'static BreakerSite),
    /// `#[rate_limit]`
    RateLimit(&'static RateLimitSite),
    /// `#[bulkhead]`
    Bulkhead(&'static BulkheadSite),
    /// `#[safe_mps_op]`
    #[cfg(feature = "tch")]
    Device(&'static DeviceSite),
    /// `#[monitor]`
    Monitor(&'static MonitorSite),
}

impl LayerSite {
    pub(crate) fn kind(self) -> Kind {
        match self {
            LayerSite::Timeout(_) => Kind::Timeout,
            LayerSite::Retry(_) => Kind::Retry,
            LayerSite::Breaker(_) => Kind::Breaker,
            LayerSite::RateLimit(_) => Kind::RateLimit,
            LayerSite::Bulkhead(_) => Kind::Bulkhead,
            #[cfg(feature = "tch")]
            LayerSite::Device(_) => Kind::Device,
            LayerSite::Monitor(_) => Kind::Monitor,
        }
    }

    /// The policy keys that reach this layer, in precedence order: its
    /// function's path and its `policy = "…"` name; for a shared breaker,
    /// the breaker's name alone (its settings belong to the breaker).
    pub(crate) fn keys(self) -> [Option<&'static str>; 2] {
        match self {
            LayerSite::Timeout(site) => site.keys(),
            LayerSite::Retry(site) => site.keys(),
            LayerSite::Breaker(site) => site.owner.keys(),
            LayerSite::RateLimit(site) => site.owner.keys(),
            LayerSite::Bulkhead(site) => site.owner.keys(),
            #[cfg(feature = "tch")]
            LayerSite::Device(site) => site.keys(),
            LayerSite::Monitor(site) => site.keys(),
        }
    }

    /// Whether the policy key `key` reaches this layer of `function` (a
    /// method not yet run also answers to `Type::method` paths of its crate).
    pub(crate) fn reached_by(self, function: &Function, key: &str) -> bool {
        let [first, second] = self.keys();
        let path = first.filter(|first| *first == function.path());
        second == Some(key)
            || first == Some(key)
            || (path.is_some() && function.is_called(key))
            || path.is_some_and(|path| {
                path.strip_prefix(key)
                    .is_some_and(|rest| rest.starts_with("::"))
            })
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
            monitor: monitor::Site::new(),
            #[cfg(feature = "metrics")]
            durations: telemetry::Cached::new(),
            id: AtomicU32::new(0),
        }
    }

    /// Its number, from 1, for records that hold a function in an atomic
    /// (the watchdog's frames); [`by_id`] gives the function back.
    #[inline]
    pub(crate) fn id(&'static self) -> u32 {
        match self.id.load(Relaxed) {
            0 => self.assign_id(),
            id => id,
        }
    }

    #[cold]
    fn assign_id(&'static self) -> u32 {
        let mut numbered = NUMBERED.lock().unwrap_or_else(PoisonError::into_inner);
        // Under the lock: a racing caller found 0 too, and may have won.
        let id = self.id.load(Relaxed);
        if id != 0 {
            return id;
        }
        numbered.push(self);
        let id = u32::try_from(numbered.len()).expect("fewer than 2^32 functions");
        self.id.store(id, Relaxed);
        id
    }

    /// Records a call that started at `start` and just completed, `failed`
    /// or not, into the monitor and `resilience_call_duration_seconds`.
    #[inline]
    pub fn finish(&'static self, start: Start, failed: bool) {
        if start.0 == Start::OFF {
            return;
        }
        let end = clock::now();
        let nanos = clock::nanos(start.0, end);
        if self.monitor.record(clock::since_origin(end), nanos, failed) {
            self.window_moved();
        }
        #[cfg(feature = "metrics")]
        self.durations.update(
            |recorder| telemetry::durations(recorder, self.label()),
            |[success, failure]| {
                let seconds = nanos as f64 / 1e9;
                if failed { failure } else { success }.record(seconds);
            },
        );
    }

    /// A new period began in the monitor's window: adaptive timeouts learn.
    #[cold]
    fn window_moved(&'static self) {
        for layer in self.layers {
            if let LayerSite::Timeout(site) = layer {
                site.learn(&self.monitor);
            }
        }
    }

    /// The name it is recorded under in the monitor and the metrics: its
    /// `#[monitor(name = "…")]`, or else its path.
    pub fn label(&self) -> &'static str {
        self.layers
            .iter()
            .find_map(|layer| match layer {
                LayerSite::Monitor(site) => site.name,
                _ => None,
            })
            .unwrap_or_else(|| self.path())
    }

    pub(crate) fn monitor(&self) -> &monitor::Site {
        &self.monitor
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

/// Functions that have a number, in order.
static NUMBERED: Mutex<Vec<&'static Function>> = Mutex::new(Vec::new());

/// The function numbered `id` (see [`Function::id`]).
pub(crate) fn by_id(id: u32) -> Option<&'static Function> {
    let numbered = NUMBERED.lock().unwrap_or_else(PoisonError::into_inner);
    numbered
        .get(usize::try_from(id).ok()?.checked_sub(1)?)
        .copied()
}

/// Every annotated function of the program.
pub(crate) fn functions() -> impl Iterator<Item = &'static Function> {
    FUNCTIONS.iter().copied()
}

/// When one call of an annotated function started: a reading of the
/// monitor's clock, 8 bytes held across the call's awaits; [`Start::OFF`]
/// when the kill switch turned the monitor off.
#[derive(Clone, Copy)]
pub struct Start(u64);

impl Start {
    const OFF: u64 = u64::MAX;

    /// Now, unless the monitor or every layer of `function` is switched off.
    #[inline]
    pub fn unless_off(function: &'static Function) -> Self {
        if crate::policy::state::all_off(function) {
            Self(Self::OFF)
        } else {
            Self::now()
        }
    }

    /// Now, unless the monitor is switched off.
    #[inline]
    pub fn now() -> Self {
        if crate::policy::kind_off(Kind::Monitor) {
            Self(Self::OFF)
        } else {
            Self(clock::now())
        }
    }
}

/// The output of a call, for whether it failed: `(&&Outcome(&output)).failed()`
/// is `is_err()` for a `Result`, `false` for anything else.
pub struct Outcome<'a, T>(pub &'a T);

/// A `Result`: failed when `Err`.
pub trait ResultOutcome {
    /// Whether the call failed.
    fn failed(&self) -> bool;
}

impl<T, E> ResultOutcome for &Outcome<'_, Result<T, E>> {
    #[inline]
    fn failed(&self) -> bool {
        self.0.is_err()
    }
}

/// Anything but a `Result`: a call that returns never failed.
pub trait PlainOutcome {
    /// Whether the call failed: no.
    #[inline]
    fn failed(&self) -> bool {
        false
    }
}

impl<T> PlainOutcome for Outcome<'_, T> {}

/// Instances shared across functions by `name = "…"` (breakers, rate
/// limiters, bulkheads): made by the first function that asks, kept for the life of
/// the program. Looked up once per site, never per call.
pub(crate) struct Shared<T: 'static>(Mutex<Vec<(&'static str, &'static T)>>);

impl<T> Shared<T> {
    pub(crate) const fn new() -> Self {
        Self(Mutex::new(Vec::new()))
    }

    /// The instance called `name`, made by `make` if there is none yet.
    pub(crate) fn get_or_make(&self, name: &'static str, make: impl FnOnce() -> T) -> &'static T {
        let mut shared = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, found)) = shared.iter().find(|(known, _)| *known == name) {
            return found;
        }
        let made: &'static T = Box::leak(Box::new(make()));
        shared.push((name, made));
        made
    }

    /// The instance called `name`, if one was made.
    pub(crate) fn get(&self, name: &str) -> Option<&'static T> {
        let shared = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        shared
            .iter()
            .find(|(known, _)| *known == name)
            .map(|(_, found)| *found)
    }
}
