//! The breaker's state machine. The state, the round (a generation number
//! that every transition advances) and the state's data (when it opened, or
//! the probes of a half-open round) are one atomic word, moved by
//! compare-and-swap: no reader ever sees half a transition, and a permit of an
//! earlier round recognises itself and counts nothing in the current one.
//!
//! The window of closed-state outcomes is two more atomics beside it; it is
//! statistical, and only ever read to decide a transition, which the word
//! then settles.
//!
//! Time comes in as an argument (a function that reads the time since the
//! breaker was created, called only on the paths that need it, and after the
//! word it is compared with was loaded: the closed path never reads the
//! clock), so the machine has no clock of its own and its `loom` models
//! explore every interleaving of admit, record, cancel and transition.

use std::time::Duration;

#[cfg(loom)]
use loom::sync::atomic::{AtomicU64, Ordering::*};
#[cfg(not(loom))]
use std::sync::atomic::{AtomicU64, Ordering::*};

/// The state of a breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
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
    pub(crate) const ALL: [State; 5] = [
        State::Closed,
        State::Open,
        State::HalfOpen,
        State::ForcedOpen,
        State::ForcedClosed,
    ];

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

/// The settings the machine decides by.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Limits {
    pub(crate) failure_rate: f64,
    /// 1 to 64.
    pub(crate) window: u32,
    /// 1 to `window`.
    pub(crate) min_calls: u32,
    pub(crate) open_for: Duration,
    /// 1 to [`MAX_PROBES`].
    pub(crate) half_open_probes: u32,
}

/// Probes of one half-open round, at most.
pub(crate) const MAX_PROBES: u32 = (1 << PROBE_BITS) - 1;

// The word: state in bits 0..3, generation in 3..32, payload in 32..64. The
// payload of `Open` and `ForcedOpen` is when the breaker opened, in
// milliseconds since its creation, modulo 2^32 (49.7 days: elapsed time is
// computed with wrapping arithmetic, so only a breaker left open that long
// without a single call misjudges, by one `open_for` at most); of `HalfOpen`,
// the probes running and the probes that succeeded, 16 bits each. The
// generation wraps after 2^29 transitions; a probe that is still running
// then, and finds a round of the same number, is caught by the probe count
// it would take below zero.
const STATE_BITS: u32 = 3;
const GENERATION_BITS: u32 = 29;
const PAYLOAD_SHIFT: u32 = STATE_BITS + GENERATION_BITS;
const PROBE_BITS: u32 = 16;
const PAYLOAD_MAX: u64 = (1 << (64 - PAYLOAD_SHIFT)) - 1;
const GENERATION_MAX: u32 = (1 << GENERATION_BITS) - 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Word(u64);

impl Word {
    const CLOSED: Word = Word(0);

    fn state(self) -> State {
        State::ALL[(self.0 & ((1 << STATE_BITS) - 1)) as usize]
    }

    fn generation(self) -> u32 {
        (self.0 >> STATE_BITS) as u32 & GENERATION_MAX
    }

    fn payload(self) -> u64 {
        self.0 >> PAYLOAD_SHIFT
    }

    fn probes(self) -> u32 {
        (self.payload() & u64::from(MAX_PROBES)) as u32
    }

    fn successes(self) -> u32 {
        (self.payload() >> PROBE_BITS) as u32
    }

    /// The word of a new round in `state`.
    fn next(self, state: State, payload: u64) -> Word {
        let generation = u64::from(self.generation().wrapping_add(1) & GENERATION_MAX);
        Word(state as u64 | generation << STATE_BITS | (payload & PAYLOAD_MAX) << PAYLOAD_SHIFT)
    }

    /// The same half-open round with other probe counts, each at most
    /// [`MAX_PROBES`].
    fn with_probes(self, probes: u32, successes: u32) -> Word {
        let (probes, successes) = (probes.min(MAX_PROBES), successes.min(MAX_PROBES));
        let payload = u64::from(probes) | u64::from(successes) << PROBE_BITS;
        Word(self.0 & ((1 << PAYLOAD_SHIFT) - 1) | payload << PAYLOAD_SHIFT)
    }

    /// `now` as an open breaker's payload.
    fn millis(now: Duration) -> u64 {
        (now.as_millis() as u64) & PAYLOAD_MAX
    }

    /// How long an open breaker has been open at `now`, to the millisecond.
    fn open_since(self, now: Duration) -> Duration {
        Duration::from_millis(Self::millis(now).wrapping_sub(self.payload()) & PAYLOAD_MAX)
    }
}

/// What a permit remembers of its admission: its round, and whether it is a
/// probe of a half-open round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ticket {
    generation: u32,
    probe: bool,
}

/// The answer to a call asking to run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Admission {
    /// Run, and report the outcome with this ticket.
    Run(Ticket),
    /// Run, and report nothing: forced closed.
    Pass,
    /// Do not run; a probe may be let through after this long, if known.
    Reject(Option<Duration>),
}

/// A change of state, for events.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Transition {
    pub(crate) from: State,
    pub(crate) to: State,
    /// Failures and calls in the window, when a closed breaker opened.
    pub(crate) window: Option<(u32, u32)>,
}

impl Transition {
    fn new(from: State, to: State) -> Self {
        Self {
            from,
            to,
            window: None,
        }
    }
}

pub(crate) struct Machine {
    word: AtomicU64,
    /// Outcomes in the window, one bit per slot (1 = failure).
    failures: AtomicU64,
    /// Outcomes recorded since the window was last cleared.
    recorded: AtomicU64,
}

impl Machine {
    pub(crate) fn new() -> Self {
        Self {
            word: AtomicU64::new(Word::CLOSED.0),
            failures: AtomicU64::new(0),
            recorded: AtomicU64::new(0),
        }
    }

    fn load(&self) -> Word {
        Word(self.word.load(Acquire))
    }

    fn swap(&self, from: Word, to: Word) -> bool {
        self.word
            .compare_exchange(from.0, to.0, AcqRel, Acquire)
            .is_ok()
    }

    pub(crate) fn state(&self) -> State {
        self.load().state()
    }

    /// Admits a call at `now` (since the breaker's creation), or says why
    /// not. The caller that moves an open breaker to half-open is its first
    /// probe, so that no call slips in between.
    #[inline]
    pub(crate) fn admit(
        &self,
        limits: &Limits,
        now: impl Fn() -> Duration,
    ) -> (Admission, Option<Transition>) {
        let word = self.load();
        match word.state() {
            State::Closed => (Admission::Run(Self::ticket(word, false)), None),
            State::ForcedClosed => (Admission::Pass, None),
            _ => self.admit_slow(limits, now),
        }
    }

    fn ticket(word: Word, probe: bool) -> Ticket {
        Ticket {
            generation: word.generation(),
            probe,
        }
    }

    #[cold]
    fn admit_slow(
        &self,
        limits: &Limits,
        now: impl Fn() -> Duration,
    ) -> (Admission, Option<Transition>) {
        loop {
            let word = self.load();
            let next = match word.state() {
                State::Closed => return (Admission::Run(Self::ticket(word, false)), None),
                State::ForcedClosed => return (Admission::Pass, None),
                State::ForcedOpen => return (Admission::Reject(None), None),
                State::Open => {
                    // Read after the word: a clock read before another
                    // thread reopened the breaker would be older than the
                    // time it opened.
                    let left = limits.open_for.saturating_sub(word.open_since(now()));
                    if !left.is_zero() {
                        return (Admission::Reject(Some(left)), None);
                    }
                    word.next(State::HalfOpen, 0).with_probes(1, 0)
                }
                State::HalfOpen => {
                    if word.probes() >= limits.half_open_probes {
                        return (Admission::Reject(None), None);
                    }
                    word.with_probes(word.probes() + 1, word.successes())
                }
            };
            if self.swap(word, next) {
                let moved = (word.state() != next.state()).then(|| {
                    // A new round: the closed window it opened on is history,
                    // so that a failure right after closing cannot reopen it.
                    self.clear_window();
                    Transition::new(word.state(), next.state())
                });
                return (Admission::Run(Self::ticket(next, true)), moved);
            }
        }
    }

    /// Counts the outcome of a call admitted with `ticket`; an outcome of an
    /// earlier round counts nothing.
    #[inline]
    pub(crate) fn record(
        &self,
        ticket: Ticket,
        failed: bool,
        limits: &Limits,
        now: impl FnOnce() -> Duration,
    ) -> Option<Transition> {
        if ticket.probe {
            self.record_probe(ticket, failed, limits, now)
        } else if failed {
            self.record_failure(ticket, limits, now)
        } else {
            self.record_success(limits);
            None
        }
    }

    /// A closed-state success: it cannot open the breaker, so it only clears
    /// its slot, without asking which round it belongs to. The common case is
    /// one atomic add and one load.
    #[inline]
    fn record_success(&self, limits: &Limits) {
        let position = self.recorded.fetch_add(1, AcqRel);
        let bit = 1u64 << (position % u64::from(limits.window));
        if self.failures.load(Acquire) & bit != 0 {
            self.failures.fetch_and(!bit, AcqRel);
        }
    }

    fn record_failure(
        &self,
        ticket: Ticket,
        limits: &Limits,
        now: impl FnOnce() -> Duration,
    ) -> Option<Transition> {
        let word = self.load();
        if word.state() != State::Closed || word.generation() != ticket.generation {
            return None;
        }
        let window = u64::from(limits.window);
        let position = self.recorded.fetch_add(1, AcqRel);
        let bit = 1u64 << (position % window);
        let mask = u64::MAX >> (64 - window);
        let failures = (self.failures.fetch_or(bit, AcqRel) | bit) & mask;
        // Read after the failure is in: of two failures recorded at once, the
        // second to look sees both.
        let calls = self.recorded.load(Acquire).max(position + 1).min(window);
        if calls < u64::from(limits.min_calls.min(limits.window)) {
            return None;
        }
        let failed = failures.count_ones();
        if f64::from(failed) / calls as f64 >= limits.failure_rate
            && self.swap(word, word.next(State::Open, Word::millis(now())))
        {
            return Some(Transition {
                window: Some((failed, calls as u32)),
                ..Transition::new(State::Closed, State::Open)
            });
        }
        None
    }

    fn record_probe(
        &self,
        ticket: Ticket,
        failed: bool,
        limits: &Limits,
        now: impl FnOnce() -> Duration,
    ) -> Option<Transition> {
        let now = failed.then(now).unwrap_or_default();
        loop {
            let word = self.load();
            if !Self::holds(word, ticket) {
                return None;
            }
            let successes = word.successes() + 1;
            let next = if failed {
                word.next(State::Open, Word::millis(now))
            } else if successes >= limits.half_open_probes {
                word.next(State::Closed, 0)
            } else {
                word.with_probes(word.probes() - 1, successes)
            };
            if self.swap(word, next) {
                if next.state() == State::HalfOpen {
                    return None;
                }
                if next.state() == State::Closed {
                    self.clear_window();
                }
                return Some(Transition::new(State::HalfOpen, next.state()));
            }
        }
    }

    /// Whether `ticket` is a probe of the half-open round `word` is in. A round
    /// with no probe running cannot be the ticket's, whatever its number (the
    /// generation wrapped while the probe ran).
    fn holds(word: Word, ticket: Ticket) -> bool {
        word.state() == State::HalfOpen
            && word.generation() == ticket.generation
            && word.probes() > 0
    }

    /// A call admitted with `ticket` ended without an outcome: a probe gives
    /// its place back, if its round is still on.
    pub(crate) fn cancel(&self, ticket: Ticket) {
        if !ticket.probe {
            return;
        }
        loop {
            let word = self.load();
            if !Self::holds(word, ticket) {
                return;
            }
            if self.swap(word, word.with_probes(word.probes() - 1, word.successes())) {
                return;
            }
        }
    }

    /// Sets the state whatever it was (forcing, resetting) and forgets the
    /// window.
    pub(crate) fn set(&self, to: State, now: Duration) -> Option<Transition> {
        let payload = match to {
            State::Open | State::ForcedOpen => Word::millis(now),
            _ => 0,
        };
        // Cleared before the new round starts, and again after, for outcomes
        // recorded meanwhile by calls of the old one.
        self.clear_window();
        let mut word = self.load();
        loop {
            match self
                .word
                .compare_exchange(word.0, word.next(to, payload).0, AcqRel, Acquire)
            {
                Ok(_) => break,
                Err(actual) => word = Word(actual),
            }
        }
        self.clear_window();
        (word.state() != to).then(|| Transition::new(word.state(), to))
    }

    fn clear_window(&self) {
        self.failures.store(0, Release);
        self.recorded.store(0, Release);
    }

    /// Probes running in the current half-open round (tests).
    #[cfg(test)]
    pub(crate) fn probes(&self) -> u32 {
        let word = self.load();
        if word.state() == State::HalfOpen {
            word.probes()
        } else {
            0
        }
    }
}

#[cfg(all(test, loom))]
mod models;

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        failure_rate: 0.5,
        window: 4,
        min_calls: 2,
        open_for: Duration::from_secs(10),
        half_open_probes: 2,
    };

    fn run(machine: &Machine, now: Duration) -> Ticket {
        match machine.admit(&LIMITS, || now).0 {
            Admission::Run(ticket) => ticket,
            other => panic!("expected to run, got {other:?}"),
        }
    }

    fn open(machine: &Machine) {
        for _ in 0..2 {
            let ticket = run(machine, Duration::ZERO);
            machine.record(ticket, true, &LIMITS, || Duration::ZERO);
        }
        assert_eq!(machine.state(), State::Open);
    }

    #[test]
    fn the_word_round_trips_its_fields() {
        let word = Word::CLOSED
            .next(State::HalfOpen, 0)
            .with_probes(MAX_PROBES, 12);
        assert_eq!(word.state(), State::HalfOpen);
        assert_eq!(word.generation(), 1);
        assert_eq!((word.probes(), word.successes()), (MAX_PROBES, 12));
        let wrapped = Word(u64::from(GENERATION_MAX) << STATE_BITS).next(State::Open, PAYLOAD_MAX);
        assert_eq!(wrapped.generation(), 0);
        assert_eq!(wrapped.state(), State::Open);
        // Opened just before the millisecond count wrapped; 3 ms later.
        let later = Duration::from_millis(PAYLOAD_MAX + 3);
        assert_eq!(wrapped.open_since(later), Duration::from_millis(3));
        // Counts never spill into each other.
        let full = word.with_probes(MAX_PROBES + 1, MAX_PROBES + 1);
        assert_eq!((full.probes(), full.successes()), (MAX_PROBES, MAX_PROBES));
        assert_eq!(full.generation(), word.generation());
    }

    #[test]
    fn the_caller_that_half_opens_is_the_first_probe() {
        let machine = Machine::new();
        open(&machine);
        let later = Duration::from_secs(10);
        let (admission, moved) = machine.admit(&LIMITS, || later);
        assert!(matches!(
            admission,
            Admission::Run(Ticket { probe: true, .. })
        ));
        assert_eq!(moved, Some(Transition::new(State::Open, State::HalfOpen)));
        assert_eq!(machine.probes(), 1);
        run(&machine, later);
        assert_eq!(machine.admit(&LIMITS, || later).0, Admission::Reject(None));
        assert_eq!(machine.probes(), 2);
    }

    #[test]
    fn a_probe_of_an_earlier_round_counts_nothing_in_the_next() {
        let machine = Machine::new();
        open(&machine);
        let t1 = Duration::from_secs(10);
        let slow = run(&machine, t1); // round 1's probe, still running
        let failing = run(&machine, t1);
        machine.record(failing, true, &LIMITS, || t1); // reopens
        let t2 = Duration::from_secs(20);
        let fresh = run(&machine, t2); // round 2
        let cancelled = run(&machine, t2);
        machine.cancel(cancelled);
        machine.record(slow, false, &LIMITS, || t2); // late: ignored
        machine.cancel(slow);
        assert_eq!(machine.state(), State::HalfOpen);
        assert_eq!(machine.probes(), 1);
        machine.record(fresh, false, &LIMITS, || t2);
        assert_eq!(machine.probes(), 0, "the probe that succeeded is done");
        let last = run(&machine, t2);
        assert_eq!(
            machine.record(last, false, &LIMITS, || t2).map(|t| t.to),
            Some(State::Closed)
        );
    }

    #[test]
    fn the_open_time_is_part_of_the_transition() {
        let machine = Machine::new();
        let at = Duration::from_millis(1500) + Duration::from_nanos(1);
        for _ in 0..2 {
            let ticket = run(&machine, at);
            machine.record(ticket, true, &LIMITS, || at);
        }
        let almost = at + LIMITS.open_for - Duration::from_millis(1);
        assert!(
            matches!(machine.admit(&LIMITS, || almost).0, Admission::Reject(Some(left)) if !left.is_zero())
        );
        let due = at + LIMITS.open_for;
        assert!(matches!(
            machine.admit(&LIMITS, || due).0,
            Admission::Run(_)
        ));
    }

    #[test]
    fn failures_outside_a_smaller_window_do_not_count() {
        let machine = Machine::new();
        let wide = Limits {
            window: 8,
            min_calls: 8,
            ..LIMITS
        };
        // Successes in slots 0..4 and failures in slots 4..7 of a window of
        // 8; then the window shrinks to 4, whose slots hold the successes.
        for failed in [false, false, false, false, true, true, true] {
            let ticket = run(&machine, Duration::ZERO);
            machine.record(ticket, failed, &wide, || Duration::ZERO);
        }
        let narrow = Limits {
            window: 4,
            min_calls: 4,
            failure_rate: 0.5,
            ..LIMITS
        };
        let ticket = run(&machine, Duration::ZERO);
        // Position 7 lands in slot 3 of 4: one failure in 4.
        machine.record(ticket, true, &narrow, || Duration::ZERO);
        assert_eq!(machine.state(), State::Closed);
    }

    #[test]
    fn min_calls_above_the_window_opens_at_a_full_window() {
        let machine = Machine::new();
        let limits = Limits {
            window: 2,
            min_calls: 50,
            ..LIMITS
        };
        for _ in 0..2 {
            let ticket = run(&machine, Duration::ZERO);
            machine.record(ticket, true, &limits, || Duration::ZERO);
        }
        assert_eq!(machine.state(), State::Open);
    }
}
