//! Adaptive timeouts: a limit learned from the function's own latency.
//!
//! The limit in force is `clamp(multiplier × p<percentile>, floor,
//! ceiling)`, where the ceiling is the limit written in the attribute and
//! the percentile is read from the latency monitor's window of the
//! function's calls, timed-out calls included (at the time they ran), so
//! that a dependency that slows down raises the limit instead of shrinking
//! it. The limit is recomputed when the window moves (the first call of
//! each of its six periods, every 10 s by default), not per call: up to a
//! new target at once, down towards it by `learning_rate` of the distance
//! each time. Until the window holds `min_calls` calls, the limit stays
//! where it is (the ceiling, at a cold start).
//!
//! Learning pauses while the function's circuit breaker is open, while
//! timeouts are switched off, and while a policy file sets the function's
//! `timeout`: the calls of those times say nothing about the limit.

use std::time::Duration;

/// How an adaptive timeout learns, as `adaptive(...)` writes it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Adaptive {
    /// The percentile of recent calls the limit follows (0 to 100).
    pub(crate) percentile: f64,
    /// The lowest limit.
    pub(crate) floor: Duration,
    /// The limit over the percentile.
    pub(crate) multiplier: f64,
    /// Calls in the window before the limit moves.
    pub(crate) min_calls: u32,
    /// The share of the distance to a lower target covered per period.
    pub(crate) learning_rate: f64,
}

impl Adaptive {
    /// What an expansion declares.
    #[doc(hidden)]
    pub const fn new(
        percentile: f64,
        floor: Duration,
        multiplier: f64,
        min_calls: u32,
        learning_rate: f64,
    ) -> Self {
        Self {
            percentile,
            floor,
            multiplier,
            min_calls,
            learning_rate,
        }
    }

    /// These settings as a policy file's `[adaptive]` table overrides them.
    pub(crate) fn with(self, entry: &crate::policy::file::AdaptiveEntry) -> Self {
        Self {
            percentile: entry.percentile.map_or(self.percentile, |p| p.0),
            floor: entry.floor.map_or(self.floor, |f| f.0),
            multiplier: entry.multiplier.map_or(self.multiplier, |m| m.0),
            min_calls: entry.min_calls.map_or(self.min_calls, |m| m.0),
            learning_rate: entry.learning_rate.map_or(self.learning_rate, |r| r.0),
        }
    }

    /// The next limit, from the `current` one, when `p` is the latency at
    /// the percentile, under `ceiling`.
    pub(crate) fn next(&self, current: Duration, p: Duration, ceiling: Duration) -> Duration {
        let floor = self.floor.min(ceiling);
        let target = Duration::try_from_secs_f64(p.as_secs_f64() * self.multiplier)
            .unwrap_or(ceiling)
            .clamp(floor, ceiling);
        let next = if target >= current {
            target
        } else {
            current - (current - target).mul_f64(self.learning_rate)
        };
        next.clamp(floor, ceiling)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }

    #[test]
    fn up_at_once_down_by_the_learning_rate_within_floor_and_ceiling() {
        let adaptive = Adaptive::new(95.0, ms(20), 1.5, 20, 0.5);
        let ceiling = ms(400);
        // Target 150: down half the way from 400, then half again.
        assert_eq!(adaptive.next(ms(400), ms(100), ceiling), ms(275));
        assert_eq!(
            adaptive.next(ms(275), ms(100), ceiling),
            ms(212) + Duration::from_micros(500)
        );
        // Target 300: up at once.
        assert_eq!(adaptive.next(ms(160), ms(200), ceiling), ms(300));
        // Bounds.
        assert_eq!(adaptive.next(ms(300), ms(1_000), ceiling), ceiling);
        assert_eq!(adaptive.next(ms(22), ms(1), ceiling), ms(21));
        assert_eq!(adaptive.next(ms(20), ms(1), ceiling), ms(20));
        // A floor above the ceiling (a policy file's) gives way to it.
        let high = Adaptive {
            floor: ms(500),
            ..adaptive
        };
        assert_eq!(high.next(ms(400), ms(1), ceiling), ceiling);
    }
}
