//! Latency percentiles of every annotated function, in process.
//!
//! Every call of a function annotated with this crate's attributes is
//! recorded when it completes: successes, failures and timeouts alike (a
//! timed-out call counts the time it ran, up to its deadline), since
//! percentiles of successes alone are biased low exactly when a dependency
//! degrades. A call dropped before it completes records nothing, nor does
//! one whose attributes the kill switch turned off, nor one a circuit
//! breaker, rate limiter or bulkhead rejected without running it. Timing costs two reads of
//! the CPU's time-stamp counter per call; the kill switch's `monitor` kind
//! (`RESILIENCE_DISABLE=monitor`, or `disabled_kinds` in a policy file)
//! turns the monitor off, and `#[monitor]` with it.
//!
//! Figures cover a sliding window, by default the last 60 s, kept in six
//! rotating slices (so the window is between 50 and 60 s old at its oldest).
//! Percentiles are within 1 % of the true ones. Recording takes no lock (the
//! first call of a new period clears its slice while the other calls of that
//! period wait) and allocates only at a function's first call.
//!
//! ```
//! use resilience_runtime::{monitor, timeout_async};
//!
//! #[timeout_async("1s")]
//! async fn quote() -> std::io::Result<f64> {
//!     Ok(101.5)
//! }
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! quote().await?;
//! let (function, latency) = monitor::all()
//!     .into_iter()
//!     .find(|(function, _)| function.ends_with("::quote"))
//!     .unwrap();
//! assert_eq!(monitor::latency(function), Some(latency));
//! assert_eq!((latency.count(), latency.errors()), (1, 0));
//! println!("{}", monitor::report());
//! # std::io::Result::Ok(())
//! # }).unwrap();
//! ```

pub(crate) mod clock;
pub(crate) mod site;
mod window;

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::Duration;

use crate::registry::functions;
pub(crate) use site::MonitorSite;
use window::{SLICES, Totals, Window};

/// The latency of one function over the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Latency {
    count: u64,
    errors: u64,
    p50: Duration,
    p95: Duration,
    p99: Duration,
    max: Duration,
}

impl Latency {
    /// Calls completed in the window.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Of those, the calls that failed: returned an `Err` (a timeout
    /// included).
    pub fn errors(&self) -> u64 {
        self.errors
    }

    /// The median.
    pub fn p50(&self) -> Duration {
        self.p50
    }

    /// The 95th percentile.
    pub fn p95(&self) -> Duration {
        self.p95
    }

    /// The 99th percentile.
    pub fn p99(&self) -> Duration {
        self.p99
    }

    /// The slowest call.
    pub fn max(&self) -> Duration {
        self.max
    }

    fn of(totals: &Totals) -> Option<Self> {
        let count = totals.count();
        (count > 0).then(|| Self {
            count,
            errors: totals.errors,
            p50: Duration::from_nanos(totals.quantile(0.50)),
            p95: Duration::from_nanos(totals.quantile(0.95)),
            p99: Duration::from_nanos(totals.quantile(0.99)),
            max: Duration::from_nanos(totals.max),
        })
    }
}

/// The latency of `function` (its path, as in errors and policy keys, or
/// its `#[monitor(name = "…")]`) over the window; `None` for a function with no call in it, or none of that
/// name.
pub fn latency(function: &str) -> Option<Latency> {
    let now = epoch(clock::since_origin(clock::now()));
    let site = functions()
        .find(|f| f.label() == function)
        .map(|f| f.monitor())
        .or_else(|| {
            lock_named()
                .iter()
                .find(|(name, _)| *name == function)
                .map(|(_, site)| *site)
        });
    site.and_then(|site| site.totals(now))
        .and_then(|totals| Latency::of(&totals))
}

/// Sites recorded by name at run time (a pipeline's stages,
/// `"<pipeline>/<stage>"`), each made once and kept.
static NAMED: Mutex<Vec<(&'static str, &'static Site)>> = Mutex::new(Vec::new());

fn lock_named() -> std::sync::MutexGuard<'static, Vec<(&'static str, &'static Site)>> {
    NAMED.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The site recorded as `name`, made at its first use, and the name as
/// kept.
pub(crate) fn named(name: &str) -> (&'static str, &'static Site) {
    let mut named = lock_named();
    match named.iter().find(|(known, _)| *known == name) {
        Some(found) => *found,
        None => {
            let site: &'static Site = Box::leak(Box::new(Site::new()));
            let name: &'static str = Box::leak(name.into());
            named.push((name, site));
            (name, site)
        }
    }
}

impl Site {
    /// Records a call that took `nanos` and ended now.
    pub(crate) fn record_now(&self, nanos: u64, failed: bool) {
        let _ = self.record(clock::since_origin(clock::now()), nanos, failed);
    }
}

/// Every function with calls in the window, and its latency.
pub fn all() -> Vec<(&'static str, Latency)> {
    let now = epoch(clock::since_origin(clock::now()));
    let named = lock_named().clone();
    functions()
        .map(|f| (f.label(), f.monitor()))
        .chain(named)
        .filter_map(|(name, site)| Some((name, Latency::of(&site.totals(now)?)?)))
        .collect()
}

/// Sets the window (60 s by default). What was recorded before is forgotten.
/// Meant for set-up: past 65 535 calls, a window that shrinks may record
/// nothing until the periods it held have passed.
///
/// # Panics
///
/// On a window under 6 ns (one nanosecond per slice).
pub fn set_window(window: Duration) {
    let period = u64::try_from(window.as_nanos() / SLICES as u128).unwrap_or(u64::MAX);
    assert!(period > 0, "a monitor window needs at least {SLICES} ns");
    PERIOD.store(period, Relaxed);
    let _ = GENERATION.fetch_update(Relaxed, Relaxed, |g| (g < 0xFFFF).then_some(g + 1));
}

/// A table of every function with calls in the window: calls, errors, p50,
/// p95, p99 and max, slowest p99 first. It prints as text.
pub fn report() -> Report {
    let mut rows = all();
    rows.sort_by(|a, b| b.1.p99.cmp(&a.1.p99).then(a.0.cmp(b.0)));
    Report { rows }
}

/// What [`report`] returns; `Display` prints it as a table.
#[derive(Debug, Clone)]
pub struct Report {
    rows: Vec<(&'static str, Latency)>,
}

impl Report {
    /// Its rows: each function and its latency, slowest p99 first.
    pub fn rows(&self) -> &[(&'static str, Latency)] {
        &self.rows
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let width = self
            .rows
            .iter()
            .map(|(name, _)| name.len())
            .chain(["function".len()])
            .max()
            .unwrap_or(0);
        writeln!(
            f,
            "{:<width$}  {:>8}  {:>7}  {:>9}  {:>9}  {:>9}  {:>9}",
            "function", "calls", "errors", "p50", "p95", "p99", "max"
        )?;
        for (name, l) in &self.rows {
            writeln!(
                f,
                "{name:<width$}  {:>8}  {:>7}  {:>9}  {:>9}  {:>9}  {:>9}",
                l.count,
                l.errors,
                Short(l.p50),
                Short(l.p95),
                Short(l.p99),
                Short(l.max)
            )?;
        }
        Ok(())
    }
}

/// A duration in three or four significant figures: `850ns`, `12.3µs`,
/// `4.56ms`, `1.20s`.
struct Short(Duration);

impl fmt::Display for Short {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let nanos = self.0.as_nanos() as f64;
        let text = if nanos < 1e3 {
            format!("{nanos}ns")
        } else if nanos < 1e6 {
            format!("{:.1}µs", nanos / 1e3)
        } else if nanos < 1e9 {
            format!("{:.2}ms", nanos / 1e6)
        } else {
            format!("{:.2}s", nanos / 1e9)
        };
        f.pad(&text)
    }
}

/// The length of a slice, in nanoseconds: the window over [`SLICES`].
static PERIOD: AtomicU64 = AtomicU64::new(10_000_000_000);
/// Advanced by each [`set_window`], so that slices of an earlier window are
/// older than any of the new one.
static GENERATION: AtomicU64 = AtomicU64::new(0);

/// The slice period of `nanos` since the clock's origin.
fn epoch(nanos: u64) -> u64 {
    let period = nanos / PERIOD.load(Relaxed);
    (GENERATION.load(Relaxed) << 48) | period.min((1 << 48) - 1)
}

/// The latencies of one function.
pub(crate) struct Site {
    window: OnceLock<Box<Window>>,
}

impl Site {
    pub(crate) const fn new() -> Self {
        Self {
            window: OnceLock::new(),
        }
    }

    /// Records a call of `nanos` that ended `now` nanoseconds after the
    /// clock's origin; true when it moved the window (it is the first call
    /// of a new period).
    #[inline]
    pub(crate) fn record(&self, now: u64, nanos: u64, failed: bool) -> bool {
        let window = self.window.get_or_init(|| Box::new(Window::new()));
        window.record(epoch(now), nanos, failed)
    }

    /// The calls in the window now, and their latency at quantile `q`, in
    /// nanoseconds.
    pub(crate) fn quantile(&self, q: f64) -> Option<(u64, u64)> {
        let totals = self.totals(epoch(clock::since_origin(clock::now())))?;
        Some((totals.count(), totals.quantile(q)))
    }

    fn totals(&self, now: u64) -> Option<Totals> {
        self.window.get().map(|window| window.totals(now))
    }
}
