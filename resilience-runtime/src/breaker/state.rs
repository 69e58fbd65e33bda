//! One circuit breaker: a count-based window of recent outcomes and a state
//! machine, on atomics. The closed path takes no lock.

use std::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, Ordering::*};
use std::time::Duration;

use tokio::time::Instant;

use super::CircuitOpenError;

/// What `#[circuit_breaker(...)]` was asked for.
#[doc(hidden)]
#[derive(Debug, Clone, Copy)]
pub struct BreakerConfig {
    /// Open when at least this share of the window failed.
    pub failure_rate: f64,
    /// How many recent calls the window holds (1 to 64).
    pub window: u32,
    /// No decision before this many calls are in the window.
    pub min_calls: u32,
    /// How long to stay open before probing.
    pub open_for: Duration,
    /// Calls admitted at a time while half-open.
    pub half_open_probes: u32,
    /// A call slower than this counts as a failure.
    pub slow_call: Option<Duration>,
}

/// The state of a breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Calls run; outcomes are counted.
    Closed,
    /// Calls are rejected until `open_for` has passed.
    Open,
    /// A few probe calls decide between closing and opening again.
    HalfOpen,
    /// Held open by [`force_open`](super::force_open) until reset.
    ForcedOpen,
    /// Held closed by [`force_closed`](super::force_closed) until reset; outcomes
    /// are not counted.
    ForcedClosed,
}

impl State {
    fn from_u8(value: u8) -> Self {
        match value {
            1 => State::Open,
            2 => State::HalfOpen,
            3 => State::ForcedOpen,
            4 => State::ForcedClosed,
            _ => State::Closed,
        }
    }

    /// Lowercase name, as in events: `closed`, `open`, `half-open`, …
    pub fn as_str(self) -> &'static str {
        match self {
            State::Closed => "closed",
            State::Open => "open",
            State::HalfOpen => "half-open",
            State::ForcedOpen => "forced-open",
            State::ForcedClosed => "forced-closed",
        }
    }
}

/// A circuit breaker.
#[doc(hidden)]
pub struct Breaker {
    pub(super) name: &'static str,
    state: AtomicU8,
    /// Nanoseconds after `epoch` at which the breaker last opened.
    opened_at: AtomicU64,
    epoch: Instant,
    /// Outcomes in the window, one bit per slot (1 = failure).
    failures: AtomicU64,
    /// Outcomes recorded since the window was last cleared.
    recorded: AtomicU64,
    /// Probes running, and probes that succeeded, while half-open.
    probes: AtomicU32,
    probe_successes: AtomicU32,
}

/// Admission to run one call; reports its outcome when done. A permit dropped
/// without an outcome (a cancelled call) frees its probe slot and counts
/// nothing.
#[doc(hidden)]
pub struct Permit<'a> {
    breaker: &'a Breaker,
    config: BreakerConfig,
    probe: bool,
    start: Option<Instant>,
    done: bool,
}

impl Breaker {
    pub(super) fn new(name: &'static str) -> Self {
        Self {
            name,
            state: AtomicU8::new(State::Closed as u8),
            opened_at: AtomicU64::new(0),
            epoch: Instant::now(),
            failures: AtomicU64::new(0),
            recorded: AtomicU64::new(0),
            probes: AtomicU32::new(0),
            probe_successes: AtomicU32::new(0),
        }
    }

    /// The current state.
    pub fn state(&self) -> State {
        State::from_u8(self.state.load(Acquire))
    }

    /// Admits a call under `config`, or says why not.
    #[inline]
    pub fn admit(&self, config: BreakerConfig) -> Result<Permit<'_>, CircuitOpenError> {
        match self.state() {
            State::Closed => Ok(self.permit(config, false)),
            State::ForcedClosed => Ok(self.pass(config)),
            _ => self.admit_slow(config),
        }
    }

    /// A permit that counts nothing: forced closed, or switched off.
    #[inline]
    pub fn pass(&self, config: BreakerConfig) -> Permit<'_> {
        Permit {
            breaker: self,
            config,
            probe: false,
            start: None,
            done: true,
        }
    }

    #[inline]
    fn permit(&self, config: BreakerConfig, probe: bool) -> Permit<'_> {
        Permit {
            breaker: self,
            config,
            probe,
            start: config.slow_call.map(|_| Instant::now()),
            done: false,
        }
    }

    #[cold]
    fn admit_slow(&self, config: BreakerConfig) -> Result<Permit<'_>, CircuitOpenError> {
        loop {
            match self.state() {
                State::Closed => return Ok(self.permit(config, false)),
                State::ForcedClosed => return Ok(self.pass(config)),
                State::ForcedOpen => return Err(self.rejection(None)),
                State::Open => {
                    let left = self.open_left(&config);
                    if !left.is_zero() {
                        return Err(self.rejection(Some(left)));
                    }
                    // Time to probe: one caller moves the breaker on.
                    if self.transition(State::Open, State::HalfOpen) {
                        self.probes.store(0, SeqCst);
                        self.probe_successes.store(0, SeqCst);
                    }
                }
                State::HalfOpen => {
                    let running = self.probes.fetch_add(1, SeqCst);
                    if running < config.half_open_probes {
                        return Ok(self.permit(config, true));
                    }
                    self.probes.fetch_sub(1, SeqCst);
                    return Err(self.rejection(None));
                }
            }
        }
    }

    fn rejection(&self, retry_after: Option<Duration>) -> CircuitOpenError {
        CircuitOpenError::new(self.name, retry_after)
    }

    fn open_left(&self, config: &BreakerConfig) -> Duration {
        let opened = self.epoch + Duration::from_nanos(self.opened_at.load(Acquire));
        (opened + config.open_for).saturating_duration_since(Instant::now())
    }

    /// Moves from `from` to `to` if the breaker is still in `from`; reports it.
    fn transition(&self, from: State, to: State) -> bool {
        let moved = self
            .state
            .compare_exchange(from as u8, to as u8, AcqRel, Acquire)
            .is_ok();
        if moved {
            self.entered(from, to);
        }
        moved
    }

    /// Sets the state whatever it was (forcing, resetting).
    pub(super) fn set(&self, to: State) {
        let from = State::from_u8(self.state.swap(to as u8, AcqRel));
        self.clear_window();
        if from != to {
            self.entered(from, to);
        }
    }

    fn entered(&self, from: State, to: State) {
        if matches!(to, State::Open | State::ForcedOpen) {
            let since = Instant::now().saturating_duration_since(self.epoch);
            self.opened_at
                .store(u64::try_from(since.as_nanos()).unwrap_or(u64::MAX), Release);
        }
        if to == State::Closed {
            self.clear_window();
        }
        tracing::warn!(
            breaker = self.name,
            from = from.as_str(),
            to = to.as_str(),
            "circuit breaker changed state"
        );
    }

    fn clear_window(&self) {
        self.failures.store(0, Release);
        self.recorded.store(0, Release);
    }

    /// Counts one closed-state outcome; opens when the window says so.
    #[inline]
    fn record_closed(&self, config: &BreakerConfig, failed: bool) {
        let window = u64::from(config.window);
        let position = self.recorded.fetch_add(1, AcqRel);
        let bit = 1u64 << (position % window);
        if !failed {
            // A success cannot open the breaker; clear its slot only if a
            // failure was there, so the common case is one atomic add.
            if self.failures.load(Acquire) & bit != 0 {
                self.failures.fetch_and(!bit, AcqRel);
            }
            return;
        }
        let failures = self.failures.fetch_or(bit, AcqRel) | bit;
        let calls = (position + 1).min(window);
        if calls < u64::from(config.min_calls) {
            return;
        }
        let rate = f64::from(failures.count_ones()) / calls as f64;
        if rate >= config.failure_rate {
            self.transition(State::Closed, State::Open);
        }
    }

    fn record_probe(&self, config: &BreakerConfig, failed: bool) {
        self.probes.fetch_sub(1, SeqCst);
        if failed {
            self.transition(State::HalfOpen, State::Open);
        } else if self.probe_successes.fetch_add(1, SeqCst) + 1 >= config.half_open_probes {
            self.transition(State::HalfOpen, State::Closed);
        }
    }
}

impl Permit<'_> {
    /// Reports the call's outcome: a failure, or a success that may still be
    /// too slow.
    #[inline]
    pub fn record(mut self, failed: bool) {
        if self.done {
            return;
        }
        self.done = true;
        let slow = match (self.start, self.config.slow_call) {
            (Some(start), Some(limit)) => start.elapsed() > limit,
            _ => false,
        };
        if self.probe {
            self.breaker.record_probe(&self.config, failed || slow);
        } else {
            self.breaker.record_closed(&self.config, failed || slow);
        }
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if !self.done && self.probe {
            self.breaker.probes.fetch_sub(1, SeqCst);
        }
    }
}
