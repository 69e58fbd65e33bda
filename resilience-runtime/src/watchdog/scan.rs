//! The watchdog: a thread of its own that scans the frame table, so that it
//! sees a call whose worker thread is blocked.

use std::collections::HashMap;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use super::Snapshot;
use crate::events::millis;
use crate::monitor::clock;

/// What the watchdog reports, and how often it looks.
///
/// ```
/// use std::time::Duration;
/// use resilience_runtime::watchdog;
///
/// let config = watchdog::Config {
///     blocking_after: Duration::from_millis(250),
///     ..watchdog::Config::default()
/// };
/// assert_eq!(config.interval, Duration::from_millis(50));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// A call in flight this long is stalled, unless a deadline is over it:
    /// then past twice that deadline's limit. Default 5 s.
    pub stall_after: Duration,
    /// One poll running this long blocks its worker thread. Default 100 ms.
    pub blocking_after: Duration,
    /// How often the watchdog looks. Default 50 ms.
    pub interval: Duration,
    /// The least time between two reports of the same call and kind.
    /// Default 10 s.
    pub report_every: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            stall_after: Duration::from_secs(5),
            blocking_after: Duration::from_millis(100),
            interval: Duration::from_millis(50),
            report_every: Duration::from_secs(10),
        }
    }
}

/// A [`Config`] the watchdog cannot work with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// `interval` is zero.
    #[error("watchdog interval is zero; give it a positive interval, such as the default 50 ms")]
    ZeroInterval,
    /// A threshold is below the interval, so the watchdog could not see it
    /// in time.
    #[error(
        "watchdog `{name}` ({value:?}) is below its `interval` ({interval:?}); a check every \
         {interval:?} cannot see it: raise `{name}` or lower `interval`"
    )]
    BelowInterval {
        /// The threshold: `stall_after` or `blocking_after`.
        name: &'static str,
        /// Its value.
        value: Duration,
        /// The interval.
        interval: Duration,
    },
}

impl Config {
    /// Checks that the watchdog can work with these settings.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.interval.is_zero() {
            return Err(ConfigError::ZeroInterval);
        }
        for (name, value) in [
            ("stall_after", self.stall_after),
            ("blocking_after", self.blocking_after),
        ] {
            if value < self.interval {
                return Err(ConfigError::BelowInterval {
                    name,
                    value,
                    interval: self.interval,
                });
            }
        }
        Ok(())
    }
}

/// A running watchdog; dropping it stops it.
///
/// While one runs, frames are tracked (see [`track`](super::track)).
#[must_use = "the watchdog stops when its handle is dropped"]
pub struct Watchdog {
    scanner: Arc<Mutex<Scanner>>,
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

/// Starts a watchdog on a thread of its own (named `resilience-watchdog`).
///
/// # Panics
///
/// When `config` does not [validate](Config::validate); [`try_start`]
/// returns the error instead.
pub fn start(config: Config) -> Watchdog {
    try_start(config).unwrap_or_else(|error| panic!("{error}"))
}

/// Starts a watchdog, or says why `config` cannot work.
pub fn try_start(config: Config) -> Result<Watchdog, ConfigError> {
    config.validate()?;
    let scanner = Arc::new(Mutex::new(Scanner {
        config,
        reported: HashMap::new(),
    }));
    let (stop, stopped) = mpsc::channel();
    // With `test-util` the clock is tokio's: a paused test clock reaches
    // the watchdog's thread through the runtime's handle.
    #[cfg(feature = "test-util")]
    let handle = tokio::runtime::Handle::try_current().ok();
    let thread = std::thread::Builder::new()
        .name("resilience-watchdog".into())
        .spawn({
            let scanner = Arc::clone(&scanner);
            move || {
                #[cfg(feature = "test-util")]
                let _runtime = handle.as_ref().map(tokio::runtime::Handle::enter);
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(config.interval) {
                    lock(&scanner).scan();
                }
            }
        })
        .expect("the watchdog's thread starts");
    super::watchdogs(1);
    Ok(Watchdog {
        scanner,
        stop: Some(stop),
        thread: Some(thread),
    })
}

impl Watchdog {
    /// Looks now, on this thread, as the watchdog's thread does every
    /// `interval`: for tests, and for an admin endpoint that wants a fresh
    /// look.
    pub fn check(&self) {
        lock(&self.scanner).scan();
    }

    /// The settings it runs with.
    pub fn config(&self) -> Config {
        lock(&self.scanner).config
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        super::watchdogs(-1);
    }
}

impl std::fmt::Debug for Watchdog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watchdog")
            .field("config", &self.config())
            .finish_non_exhaustive()
    }
}

fn lock(scanner: &Mutex<Scanner>) -> std::sync::MutexGuard<'_, Scanner> {
    scanner.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What the watchdog reports.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Blocking,
    Stalled,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::Blocking => "blocking_poll",
            Kind::Stalled => "stalled_call",
        }
    }
}

struct Scanner {
    config: Config,
    /// When each frame (by parent link) last got each kind of report.
    reported: HashMap<(u64, Kind), u64>,
}

impl Scanner {
    /// One look: frames are judged on what the table holds, and only
    /// those reported are rendered.
    fn scan(&mut self) {
        let snapshot = Snapshot::take();
        let now = snapshot.now;
        let live: std::collections::HashSet<u64> =
            (0..snapshot.len()).map(|i| snapshot.link(i)).collect();
        self.reported.retain(|(link, _), _| live.contains(link));
        let polling: Vec<bool> = (0..snapshot.len())
            .map(|i| snapshot.polling_for(i).is_some())
            .collect();
        let stalled: Vec<bool> = (0..snapshot.len())
            .map(|i| self.stalled(&snapshot, i))
            .collect();
        // Whether a frame under `i`, at any depth, is marked.
        let below = |marks: &[bool], i: usize| {
            let mut stack: Vec<usize> = snapshot.children(i).to_vec();
            while let Some(c) = stack.pop() {
                if marks[c] {
                    return true;
                }
                stack.extend_from_slice(snapshot.children(c));
            }
            false
        };
        for i in 0..snapshot.len() {
            let link = snapshot.link(i);
            // The innermost frame being polled: where the thread is.
            if snapshot.polling_for(i) >= Some(self.config.blocking_after)
                && !below(&polling, i)
                && self.due(link, Kind::Blocking, now)
            {
                report(&snapshot.frame(i), Kind::Blocking);
            }
            // The deepest stalled call of a chain: the one that is stuck.
            if stalled[i] && !below(&stalled, i) && self.due(link, Kind::Stalled, now) {
                report(&snapshot.frame(i), Kind::Stalled);
            }
        }
    }

    fn stalled(&self, snapshot: &Snapshot, i: usize) -> bool {
        let elapsed = snapshot.elapsed(i);
        match snapshot.limit(i) {
            Some(limit) => elapsed > limit.saturating_mul(2),
            None => elapsed > self.config.stall_after,
        }
    }

    /// Whether a report of `kind` on the frame `link` is due at `now`, and
    /// if so notes it.
    fn due(&mut self, link: u64, kind: Kind, now: u64) -> bool {
        let every = u64::try_from(self.config.report_every.as_nanos()).unwrap_or(u64::MAX);
        match self.reported.get(&(link, kind)) {
            Some(&last) if clock::nanos(last, now) < every => false,
            _ => {
                self.reported.insert((link, kind), now);
                true
            }
        }
    }
}

fn report(frame: &super::Frame, kind: Kind) {
    let function = frame.function;
    let chain = frame.chain.as_str();
    match kind {
        Kind::Blocking => {
            let polling = frame.polling_for.unwrap_or_default();
            tracing::warn!(
                function,
                chain,
                polling_ms = millis(polling),
                thread = frame.thread.as_deref().unwrap_or(""),
                "blocking poll"
            );
        }
        Kind::Stalled => {
            tracing::warn!(
                function,
                chain,
                elapsed_ms = millis(frame.elapsed),
                limit_ms = frame.limit.map(millis),
                "stalled call"
            );
        }
    }
    #[cfg(feature = "metrics")]
    crate::telemetry::watchdog_event(function, kind.label());
    #[cfg(not(feature = "metrics"))]
    let _ = kind.label();
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn a_zero_interval_or_a_threshold_below_it_is_rejected_with_the_fix() {
        assert_eq!(Config::default().validate(), Ok(()));
        let zero = Config {
            interval: Duration::ZERO,
            ..Config::default()
        };
        assert_eq!(zero.validate(), Err(ConfigError::ZeroInterval));
        let below = Config {
            blocking_after: Duration::from_millis(10),
            ..Config::default()
        };
        let error = try_start(below).unwrap_err();
        assert_eq!(
            error.to_string(),
            "watchdog `blocking_after` (10ms) is below its `interval` (50ms); a check every 50ms \
             cannot see it: raise `blocking_after` or lower `interval`"
        );
        let stall = Config {
            stall_after: Duration::from_millis(20),
            ..Config::default()
        };
        assert!(matches!(
            stall.validate(),
            Err(ConfigError::BelowInterval {
                name: "stall_after",
                ..
            })
        ));
        assert!(
            !super::super::tracking(),
            "a rejected watchdog tracks nothing"
        );
    }
}
