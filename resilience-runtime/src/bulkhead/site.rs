//! The bulkhead of one annotated function: its own, or one shared by name.

use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::Duration;

use tokio::sync::{Semaphore, SemaphorePermit, TryAcquireError};

use super::BulkheadFullError;
use crate::admission::{Admission, Counted, Outcomes, Owner};
use crate::policy::{Gate, Kind, at_defaults, gate, kind_off};
use crate::registry::{Function, LayerSite, Shared};

static SHARED: Shared<Bulkhead> = Shared::new();

/// The settings of a bulkhead: what `#[bulkhead(...)]` was asked for, as a
/// policy file may override it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Settings {
    /// Calls that run at once.
    pub max_concurrent: u32,
    /// How long a call waits for a place.
    pub max_wait: Duration,
}

impl Settings {
    /// What an expansion declares.
    #[doc(hidden)]
    pub const fn new(max_concurrent: u32, max_wait: Duration) -> Self {
        Self {
            max_concurrent,
            max_wait,
        }
    }
}

/// How full a bulkhead is, from [`stats`](super::stats).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    running: u32,
    waiting: u32,
    max_concurrent: u32,
}

impl Stats {
    /// Calls holding a place now.
    pub fn running(&self) -> u32 {
        self.running
    }

    /// Calls waiting for a place now.
    pub fn waiting(&self) -> u32 {
        self.waiting
    }

    /// The places in force.
    pub fn max_concurrent(&self) -> u32 {
        self.max_concurrent
    }
}

/// One bulkhead: a semaphore with as many permits as places in force.
pub(crate) struct Bulkhead {
    name: &'static str,
    semaphore: Semaphore,
    /// The places in force; changed under `resizing`.
    places: AtomicU32,
    /// Places taken away while their permits were held: that many permits
    /// are forgotten as they come back.
    debt: AtomicU32,
    waiting: AtomicU32,
    resizing: Mutex<()>,
    /// The settings of the site that made it.
    config: Settings,
}

impl Bulkhead {
    fn new(name: &'static str, config: Settings) -> Self {
        Self {
            name,
            semaphore: Semaphore::new(config.max_concurrent as usize),
            places: AtomicU32::new(config.max_concurrent),
            debt: AtomicU32::new(0),
            waiting: AtomicU32::new(0),
            resizing: Mutex::new(()),
            config,
        }
    }

    pub(crate) fn stats(&self) -> Stats {
        let places = self.places.load(Relaxed);
        let held = (places + self.debt.load(Relaxed))
            .saturating_sub(u32::try_from(self.semaphore.available_permits()).unwrap_or(u32::MAX));
        Stats {
            running: held,
            waiting: self.waiting.load(Relaxed),
            max_concurrent: places,
        }
    }

    /// Makes `places` the places in force: new permits, or fewer, taking
    /// away free ones now and held ones as they come back.
    #[cold]
    fn resize(&self, places: u32) {
        let _resizing = self.resizing.lock().unwrap_or_else(PoisonError::into_inner);
        let before = self.places.load(Relaxed);
        if places > before {
            let mut more = places - before;
            // Cancel debt first: those permits are still out.
            let _ = self.debt.fetch_update(Relaxed, Relaxed, |debt| {
                let paid = debt.min(more);
                more = places - before - paid;
                Some(debt - paid)
            });
            self.semaphore.add_permits(more as usize);
        } else if places < before {
            let fewer = before - places;
            let forgotten = self.semaphore.forget_permits(fewer as usize) as u32;
            self.debt.fetch_add(fewer - forgotten, Relaxed);
        }
        self.places.store(places, Relaxed);
    }

    /// Takes one permit back for a debt, if there is one.
    fn repay(&self) -> bool {
        self.debt.load(Relaxed) != 0
            && self
                .debt
                .fetch_update(Relaxed, Relaxed, |debt| debt.checked_sub(1))
                .is_ok()
    }
}

/// The bulkhead of one annotated function, found (or made) at its first
/// call, then cached, so calls take no lock.
pub struct BulkheadSite {
    pub(crate) owner: Owner,
    config: Settings,
    bulkhead: OnceLock<&'static Bulkhead>,
    outcomes: Outcomes,
}

impl BulkheadSite {
    /// The site of `function`, with its own bulkhead unless `name` shares
    /// one.
    pub const fn new(
        name: Option<&'static str>,
        function: &'static Function,
        policy: Option<&'static str>,
        config: Settings,
    ) -> Self {
        Self {
            owner: Owner::new(name, function, policy),
            config,
            bulkhead: OnceLock::new(),
            outcomes: Outcomes::new("bulkhead"),
        }
    }

    pub(crate) fn bulkhead(&self) -> &'static Bulkhead {
        self.bulkhead.get_or_init(|| self.register())
    }

    #[cold]
    fn register(&self) -> &'static Bulkhead {
        let Some(name) = self.owner.name else {
            let own = Bulkhead::new(self.owner.function.path(), self.config);
            return Box::leak(Box::new(own));
        };
        let bulkhead = SHARED.get_or_make(name, || Bulkhead::new(name, self.config));
        if bulkhead.config.max_concurrent != self.config.max_concurrent {
            tracing::warn!(
                bulkhead = name,
                function = self.owner.function.path(),
                "functions sharing this bulkhead give it different places; those of the first one (or of the policy file) apply"
            );
        }
        bulkhead
    }

    /// Asks for a place: at once when one is free, else after a wait.
    #[inline]
    pub fn enter(&'static self) -> Admission<Entered, BulkheadFullError> {
        let bulkhead = self.bulkhead();
        let settings = if at_defaults() {
            self.written(bulkhead)
        } else {
            match self.settings_by_policy(bulkhead) {
                Some(settings) => settings,
                None => return Admission::now(Ok(Entered::pass())),
            }
        };
        if bulkhead.places.load(Relaxed) != settings.max_concurrent {
            bulkhead.resize(settings.max_concurrent);
        }
        match bulkhead.semaphore.try_acquire() {
            Ok(permit) => Admission::now(Ok(Entered::new(bulkhead, permit))),
            Err(TryAcquireError::NoPermits | TryAcquireError::Closed) => {
                self.wait(bulkhead, settings.max_wait)
            }
        }
    }

    /// Waits for a place up to `max_wait`, and no longer than the budget.
    #[cold]
    fn wait(
        &'static self,
        bulkhead: &'static Bulkhead,
        max_wait: Duration,
    ) -> Admission<Entered, BulkheadFullError> {
        let wait = crate::deadline::remaining().map_or(max_wait, |left| left.min(max_wait));
        if wait.is_zero() {
            return Admission::now(Err(self.reject(bulkhead, Duration::ZERO)));
        }
        Admission::after(async move {
            let _waiting = Waiting::count(&bulkhead.waiting);
            let start = tokio::time::Instant::now();
            // Dropping `acquire` at the limit leaves the queue: a permit
            // released afterwards goes to the next waiter, not to this one.
            match tokio::time::timeout(wait, bulkhead.semaphore.acquire()).await {
                Ok(Ok(permit)) => Ok(Entered::new(bulkhead, permit)),
                Ok(Err(_)) | Err(_) => Err(self.reject(bulkhead, start.elapsed())),
            }
        })
    }

    #[cold]
    fn reject(&'static self, bulkhead: &Bulkhead, waited: Duration) -> BulkheadFullError {
        self.outcomes.count(self.owner.function, Counted::Rejected);
        BulkheadFullError::new(bulkhead.name, bulkhead.places.load(Relaxed), waited)
    }

    /// Counts the outcome of an entered call and gives its place back.
    #[inline]
    pub fn finish(&'static self, entered: Entered, failed: bool) {
        self.outcomes
            .count(self.owner.function, Counted::of(failed));
        drop(entered);
    }

    /// The settings in force; `None` when switched off.
    pub(crate) fn settings_in_force(&self) -> Option<Settings> {
        let bulkhead = self.bulkhead();
        if at_defaults() {
            Some(self.written(bulkhead))
        } else {
            self.settings_by_policy(bulkhead)
        }
    }

    /// The bulkhead's places (shared by name) with this site's own wait:
    /// how long a caller waits is the caller's.
    #[inline]
    fn written(&self, bulkhead: &Bulkhead) -> Settings {
        Settings {
            max_wait: self.config.max_wait,
            ..bulkhead.config
        }
    }

    #[cold]
    fn settings_by_policy(&self, bulkhead: &Bulkhead) -> Option<Settings> {
        if kind_off(Kind::Bulkhead) {
            return None;
        }
        let base = self.written(bulkhead);
        match gate(Kind::Bulkhead, &self.owner.keys(), |e| {
            let entry = e.bulkhead.unwrap_or_default();
            (entry.enabled, entry)
        }) {
            Gate::Defaults => Some(base),
            Gate::Off => None,
            Gate::Override(entry) => Some(Settings {
                max_concurrent: entry.max_concurrent.map_or(base.max_concurrent, |m| m.0),
                max_wait: entry.max_wait.map_or(base.max_wait, |d| d.0),
            }),
        }
    }
}

impl std::fmt::Debug for BulkheadSite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BulkheadSite")
            .field("owner", &self.owner)
            .finish_non_exhaustive()
    }
}

/// Counts a waiting caller for as long as it waits, however that ends.
struct Waiting(&'static AtomicU32);

impl Waiting {
    fn count(waiting: &'static AtomicU32) -> Self {
        waiting.fetch_add(1, Relaxed);
        Self(waiting)
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Relaxed);
    }
}

/// A call's place in the bulkhead, given back when it is dropped: when the
/// call completes, is dropped or panics.
pub struct Entered(Option<(SemaphorePermit<'static>, &'static Bulkhead)>);

impl Entered {
    fn new(bulkhead: &'static Bulkhead, permit: SemaphorePermit<'static>) -> Self {
        Self(Some((permit, bulkhead)))
    }

    /// A call the kill switch lets through without a place.
    fn pass() -> Self {
        Self(None)
    }
}

impl Drop for Entered {
    fn drop(&mut self) {
        if let Some((permit, bulkhead)) = self.0.take()
            && bulkhead.repay()
        {
            permit.forget();
        }
    }
}

/// The bulkhead `name`: a shared one, or the one of the function of that
/// path (made now if it has not run yet).
pub(super) fn find(name: &str) -> Option<&'static Bulkhead> {
    if let Some(bulkhead) = SHARED.get(name) {
        return Some(bulkhead);
    }
    crate::registry::functions()
        .flat_map(|function| function.layers())
        .find_map(|layer| match layer {
            LayerSite::Bulkhead(site) if site.owner.name() == name => Some(site.bulkhead()),
            _ => None,
        })
}
