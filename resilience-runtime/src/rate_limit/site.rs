//! The limiter of one annotated function: its own, or one shared by name,
//! under the quota the policy in force sets.

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use governor::clock::Clock;
use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::{InMemoryState, NotKeyed};
use governor::{NotUntil, Quota, RateLimiter};

use super::RateLimitedError;
use super::keys::{Keys, Sweep};
use crate::admission::{Admission, Counted, Outcomes, Owner};
use crate::monitor::clock;
use crate::policy::{Gate, Kind, at_defaults, gate, kind_off};
use crate::registry::{Function, Shared};

static SHARED: Shared<Limiter> = Shared::new();

/// The monitor's clock, for governor: the CPU's counter, or tokio's clock
/// (paused in tests) with the `test-util` feature; or, for one check on
/// this thread, the instant of [`AS_OF`].
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct MonitorClock;

thread_local! {
    /// When not zero, the instant a check is made as of: a reservation is a
    /// check as of the instant its permit comes.
    static AS_OF: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

impl Clock for MonitorClock {
    type Instant = Nanos;

    #[inline]
    fn now(&self) -> Nanos {
        match AS_OF.get() {
            0 => Nanos::from(clock::since_origin(clock::now())),
            as_of => Nanos::from(as_of),
        }
    }
}

type Direct = RateLimiter<NotKeyed, InMemoryState, MonitorClock, NoOpMiddleware<Nanos>>;
type Keyed = RateLimiter<u64, Keys, MonitorClock, NoOpMiddleware<Nanos>>;

/// The settings of a rate limiter: what `#[rate_limit(...)]` was asked
/// for, as a policy file may override it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Settings {
    /// One permit comes back every `interval`.
    pub interval: Duration,
    /// Permits that can be taken at once.
    pub burst: u32,
    /// How long a call waits for a permit.
    pub max_wait: Duration,
}

impl Settings {
    /// What an expansion declares.
    #[doc(hidden)]
    pub const fn new(interval: Duration, burst: u32, max_wait: Duration) -> Self {
        Self {
            interval,
            burst,
            max_wait,
        }
    }

    /// governor's quota: the interval from 1 ns to 292 years, and a burst
    /// that refills within that (governor's arithmetic is in 64-bit
    /// nanoseconds; attributes and policy files reject more, this keeps any
    /// merge of them in range).
    fn quota(&self) -> Quota {
        const MOST: u64 = u64::MAX / 2;
        let nanos = u64::try_from(self.interval.as_nanos()).map_or(MOST, |n| n.clamp(1, MOST));
        let burst = u32::try_from(MOST / nanos).map_or(self.burst, |most| self.burst.min(most));
        Quota::with_period(Duration::from_nanos(nanos))
            .expect("a period above zero")
            .allow_burst(NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN))
    }

    fn same_quota(&self, other: &Self) -> bool {
        (self.interval, self.burst) == (other.interval, other.burst)
    }
}

/// One quota's limiters: for calls without a key, and per key.
struct Gcra {
    settings: Settings,
    direct: Direct,
    keyed: OnceLock<(Keyed, Arc<Sweep>)>,
}

impl Gcra {
    fn new(settings: Settings) -> Self {
        Self {
            settings,
            direct: RateLimiter::new(settings.quota(), InMemoryState::default(), MonitorClock),
            keyed: OnceLock::new(),
        }
    }

    /// Takes a permit now, for `key` if given; a keyed limiter sweeps its
    /// idle keys first when a sweep is due.
    #[inline]
    fn check(&self, key: Option<u64>, max_keys: usize) -> Result<(), NotUntil<Nanos>> {
        let Some(key) = key else {
            return self.direct.check();
        };
        let (keyed, sweep) = self.keyed(max_keys);
        if sweep.due() {
            keyed.retain_recent();
        }
        keyed.check_key(&key)
    }

    fn keyed(&self, max_keys: usize) -> &(Keyed, Arc<Sweep>) {
        self.keyed.get_or_init(|| {
            let sweep = Arc::new(Sweep::default());
            let keys = Keys::new(max_keys, sweep.clone());
            (
                RateLimiter::new(self.settings.quota(), keys, MonitorClock),
                sweep,
            )
        })
    }

    /// Takes the permit that comes at `at`, if it is still free then: the
    /// check GCRA would make at that instant, made now. No sweep: it would
    /// judge keys idle as of `at`.
    #[cold]
    fn reserve(&self, key: Option<u64>, max_keys: usize, at: Nanos) -> Result<(), NotUntil<Nanos>> {
        /// Puts the clock back however the check ends.
        struct Restore(u64);

        impl Drop for Restore {
            fn drop(&mut self) {
                AS_OF.set(self.0);
            }
        }

        let _restore = Restore(AS_OF.replace(at.as_u64().max(1)));
        match key {
            None => self.direct.check(),
            Some(key) => self.keyed(max_keys).0.check_key(&key),
        }
    }
}

/// Quotas a limiter keeps: the written one, and those policy files put in
/// force since.
const QUOTAS: usize = 8;

/// One rate limiter: the quota it was made with, and those a policy file
/// put in force since (kept, so that a policy that goes back to one finds
/// its state, and at most [`QUOTAS`]).
pub(crate) struct Limiter {
    name: &'static str,
    /// The settings of the site that made it.
    config: Settings,
    max_keys: usize,
    quotas: [OnceLock<Gcra>; QUOTAS],
    /// The quota in force: an index into `quotas`.
    current: AtomicUsize,
    switching: Mutex<()>,
    /// The last quota refused for want of room, as (interval, burst), in
    /// one word: calls asking for it again keep the quota in force without
    /// a lock, and it is reported once.
    refused: ArcSwapOption<(Duration, u32)>,
}

impl Limiter {
    fn new(name: &'static str, config: Settings, max_keys: usize) -> Self {
        let quotas: [OnceLock<Gcra>; QUOTAS] = Default::default();
        let _ = quotas[0].set(Gcra::new(config));
        Self {
            name,
            config,
            max_keys,
            quotas,
            current: AtomicUsize::new(0),
            switching: Mutex::new(()),
            refused: ArcSwapOption::const_empty(),
        }
    }

    /// The limiter of `settings`' quota: one relaxed load when it is the
    /// one in force.
    #[inline]
    fn gcra(&'static self, settings: &Settings) -> &'static Gcra {
        let current = self.quotas[self.current.load(Relaxed)].get();
        match current {
            Some(gcra) if gcra.settings.same_quota(settings) => gcra,
            Some(gcra) if self.was_refused(settings) => gcra,
            _ => self.switch(settings),
        }
    }

    /// Whether the quota of `settings` is the one last refused.
    #[inline]
    fn was_refused(&self, settings: &Settings) -> bool {
        self.refused
            .load()
            .as_deref()
            .is_some_and(|&refused| refused == (settings.interval, settings.burst))
    }

    /// The settings in force when `settings` are asked for: those of the
    /// quota in force, which is another when that one was refused.
    fn in_force(&'static self, settings: Settings) -> Settings {
        let gcra = self.gcra(&settings);
        Settings {
            max_wait: settings.max_wait,
            ..gcra.settings
        }
    }

    /// Puts the quota of `settings` in force for the calls that start now.
    #[cold]
    fn switch(&'static self, settings: &Settings) -> &'static Gcra {
        let _switching = self
            .switching
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let found = self.quotas.iter().position(|slot| {
            slot.get()
                .is_none_or(|gcra| gcra.settings.same_quota(settings))
        });
        let Some(index) = found else {
            let current = self.current.load(Relaxed);
            if !self.was_refused(settings) {
                let refused = (settings.interval, settings.burst);
                self.refused.store(Some(Arc::new(refused)));
                tracing::warn!(
                    limiter = self.name,
                    quotas = QUOTAS,
                    "a rate limiter keeps its written quota and {} more; this one is not put in force, the quota in force stays",
                    QUOTAS - 1
                );
            }
            return self.quotas[current]
                .get()
                .expect("the quota in force exists");
        };
        let gcra = self.quotas[index].get_or_init(|| Gcra::new(*settings));
        self.current.store(index, Relaxed);
        gcra
    }
}

/// The limiter of one annotated function, found (or made) at its first
/// call, then cached, so calls take no lock.
pub struct RateLimitSite {
    pub(crate) owner: Owner,
    config: Settings,
    max_keys: usize,
    limiter: OnceLock<&'static Limiter>,
    outcomes: Outcomes,
}

impl RateLimitSite {
    /// The site of `function`, with a limiter of its own unless `name`
    /// shares one; keyed calls keep at most `max_keys` keys.
    pub const fn new(
        name: Option<&'static str>,
        function: &'static Function,
        policy: Option<&'static str>,
        config: Settings,
        max_keys: usize,
    ) -> Self {
        Self {
            owner: Owner::new(name, function, policy),
            config,
            max_keys,
            limiter: OnceLock::new(),
            outcomes: Outcomes::new("rate_limit"),
        }
    }

    pub(crate) fn limiter(&self) -> &'static Limiter {
        self.limiter.get_or_init(|| self.register())
    }

    #[cold]
    fn register(&self) -> &'static Limiter {
        let Some(name) = self.owner.name else {
            let limiter = Limiter::new(self.owner.function.path(), self.config, self.max_keys);
            return Box::leak(Box::new(limiter));
        };
        let limiter = SHARED.get_or_make(name, || Limiter::new(name, self.config, self.max_keys));
        if !limiter.config.same_quota(&self.config) || limiter.max_keys != self.max_keys {
            tracing::warn!(
                limiter = name,
                function = self.owner.function.path(),
                "functions sharing this rate limiter give it different quotas; that of the first one (or of the policy file) applies"
            );
        }
        limiter
    }

    /// Asks for a permit for a call, of the quota of `key` if given (see
    /// [`key`](super::keys::key)): at once, or after a wait.
    #[inline]
    pub fn admit(&'static self, key: Option<u64>) -> Admission<Admitted, RateLimitedError> {
        let limiter = self.limiter();
        let settings = if at_defaults() {
            self.written(limiter)
        } else {
            match self.settings_by_policy(limiter) {
                Some(settings) => settings,
                None => return Admission::now(Ok(Admitted(()))),
            }
        };
        let gcra = limiter.gcra(&settings);
        match gcra.check(key, limiter.max_keys) {
            Ok(()) => Admission::now(Ok(Admitted(()))),
            Err(not_until) => self.wait(limiter, gcra, key, &not_until, settings.max_wait),
        }
    }

    /// Reserves the next free permit if it comes within `max_wait` and the
    /// budget, and waits for it; fails at once if it does not.
    #[cold]
    fn wait(
        &'static self,
        limiter: &'static Limiter,
        gcra: &'static Gcra,
        key: Option<u64>,
        not_until: &NotUntil<Nanos>,
        max_wait: Duration,
    ) -> Admission<Admitted, RateLimitedError> {
        let now = MonitorClock.now();
        let budget = crate::deadline::remaining();
        let mut at = not_until.earliest_possible();
        let wait = loop {
            let wait = Duration::from_nanos(at.as_u64().saturating_sub(now.as_u64()));
            // A permit that comes as the budget ends comes too late.
            if wait > max_wait || budget.is_some_and(|left| wait >= left) {
                return Admission::now(Err(self.reject(limiter, wait)));
            }
            match gcra.reserve(key, limiter.max_keys, at) {
                Ok(()) => break wait,
                // Another caller reserved it first: the next one, then.
                Err(not_until) => at = not_until.earliest_possible(),
            }
        };
        Admission::after(async move {
            tokio::time::sleep(wait).await;
            Ok(Admitted(()))
        })
    }

    #[cold]
    fn reject(&'static self, limiter: &Limiter, retry_after: Duration) -> RateLimitedError {
        self.outcomes.count(self.owner.function, Counted::Rejected);
        RateLimitedError::new(limiter.name, retry_after)
    }

    /// Counts the outcome of an admitted call.
    #[inline]
    pub fn finish(&'static self, _admitted: Admitted, failed: bool) {
        self.outcomes
            .count(self.owner.function, Counted::of(failed));
    }

    /// The settings in force; `None` when switched off.
    pub(crate) fn settings_in_force(&self) -> Option<Settings> {
        let limiter = self.limiter();
        let asked = if at_defaults() {
            Some(self.written(limiter))
        } else {
            self.settings_by_policy(limiter)
        };
        asked.map(|settings| limiter.in_force(settings))
    }

    /// The limiter's quota (shared by name) with this site's own wait: how
    /// long a caller waits is the caller's.
    #[inline]
    fn written(&self, limiter: &Limiter) -> Settings {
        Settings {
            max_wait: self.config.max_wait,
            ..limiter.config
        }
    }

    #[cold]
    fn settings_by_policy(&self, limiter: &Limiter) -> Option<Settings> {
        if kind_off(Kind::RateLimit) {
            return None;
        }
        let base = self.written(limiter);
        match gate(Kind::RateLimit, &self.owner.keys(), |e| {
            let entry = e.rate_limit.unwrap_or_default();
            (entry.enabled, entry)
        }) {
            Gate::Defaults => Some(base),
            Gate::Off => None,
            Gate::Override(entry) => Some(Settings {
                interval: entry.rate.map_or(base.interval, |rate| rate.interval),
                burst: entry.burst.map_or(base.burst, |burst| burst.0),
                max_wait: entry.max_wait.map_or(base.max_wait, |d| d.0),
            }),
        }
    }
}

impl std::fmt::Debug for RateLimitSite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimitSite")
            .field("owner", &self.owner)
            .finish_non_exhaustive()
    }
}

/// A call the limiter admitted.
pub struct Admitted(());
