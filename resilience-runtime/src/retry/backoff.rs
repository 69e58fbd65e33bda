//! Delays between attempts: constant or exponential, capped, with AWS-style
//! full or equal jitter.

use std::time::Duration;

/// How delays grow between attempts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Growth {
    /// Every delay is `base`.
    Constant,
    /// `base`, `base * factor`, `base * factor²`, …
    Exponential,
}

/// How much randomness spreads retries of many callers apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Jitter {
    /// The capped delay itself.
    None,
    /// Uniform in `[0, cap]`.
    Full,
    /// `cap / 2` plus uniform in `[0, cap / 2]`.
    Equal,
}

/// The delay schedule of `#[retry]`.
///
/// ```
/// use std::time::Duration;
/// use resilience_runtime::retry::{Backoff, Jitter};
///
/// let backoff = Backoff::exponential(Duration::from_millis(100), 2.0)
///     .max_delay(Duration::from_millis(300))
///     .jitter(Jitter::None);
/// let caps: Vec<_> = (1..=4).map(|n| backoff.cap(n).as_millis()).collect();
/// assert_eq!(caps, [100, 200, 300, 300]);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    /// Constant or exponential.
    pub(crate) growth: Growth,
    /// The first delay.
    pub(crate) base: Duration,
    /// Growth per attempt, for `Growth::Exponential`.
    pub(crate) factor: f64,
    /// No delay is longer.
    pub(crate) max_delay: Duration,
    /// Randomness applied to the capped delay.
    pub(crate) jitter: Jitter,
}

impl Backoff {
    /// Every delay is `base`; at most 2 s, with full jitter (the defaults of
    /// `#[retry]`).
    pub const fn constant(base: Duration) -> Self {
        Self {
            growth: Growth::Constant,
            base,
            factor: 1.0,
            max_delay: Duration::from_secs(2),
            jitter: Jitter::Full,
        }
    }

    /// `base`, `base * factor`, `base * factor²`, …; at most 2 s, with full
    /// jitter (the defaults of `#[retry]`).
    pub const fn exponential(base: Duration, factor: f64) -> Self {
        Self {
            growth: Growth::Exponential,
            factor,
            ..Self::constant(base)
        }
    }

    /// No delay is longer than `max_delay`.
    #[must_use]
    pub const fn max_delay(self, max_delay: Duration) -> Self {
        Self { max_delay, ..self }
    }

    /// The randomness applied to each capped delay.
    #[must_use]
    pub const fn jitter(self, jitter: Jitter) -> Self {
        Self { jitter, ..self }
    }

    /// The delay after the `failures`-th failure (from 1), before jitter.
    pub fn cap(&self, failures: u32) -> Duration {
        let delay = match self.growth {
            Growth::Constant => self.base,
            Growth::Exponential => {
                let exponent = i32::try_from(failures.saturating_sub(1)).unwrap_or(i32::MAX);
                let scaled = self.base.as_secs_f64() * self.factor.max(1.0).powi(exponent);
                Duration::try_from_secs_f64(scaled).unwrap_or(Duration::MAX)
            }
        };
        delay.min(self.max_delay)
    }

    /// The delay after the `failures`-th failure; `unit` is a number in
    /// `[0, 1)` that draws the jitter.
    pub fn delay(&self, failures: u32, unit: f64) -> Duration {
        let cap = self.cap(failures);
        let unit = unit.clamp(0.0, 1.0);
        match self.jitter {
            Jitter::None => cap,
            Jitter::Full => cap.mul_f64(unit),
            Jitter::Equal => cap / 2 + (cap / 2).mul_f64(unit),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn growth() -> impl Strategy<Value = Growth> {
        prop_oneof![Just(Growth::Constant), Just(Growth::Exponential)]
    }

    fn jitter() -> impl Strategy<Value = Jitter> {
        prop_oneof![Just(Jitter::None), Just(Jitter::Full), Just(Jitter::Equal)]
    }

    fn backoff() -> impl Strategy<Value = Backoff> {
        (growth(), 0u64..10_000, 1.0f64..10.0, 0u64..60_000, jitter()).prop_map(
            |(growth, base_ms, factor, max_ms, jitter)| Backoff {
                growth,
                base: Duration::from_millis(base_ms),
                factor,
                max_delay: Duration::from_millis(max_ms),
                jitter,
            },
        )
    }

    proptest! {
        #[test]
        fn every_delay_is_within_zero_and_max_delay(
            backoff in backoff(),
            failures in 1u32..200,
            unit in 0.0f64..1.0,
        ) {
            let delay = backoff.delay(failures, unit);
            prop_assert!(delay <= backoff.max_delay, "{delay:?} > {:?}", backoff.max_delay);
        }

        #[test]
        fn caps_never_decrease(backoff in backoff(), failures in 1u32..200) {
            prop_assert!(backoff.cap(failures) <= backoff.cap(failures + 1));
        }

        #[test]
        fn jitter_stays_below_the_cap(backoff in backoff(), failures in 1u32..50, unit in 0.0f64..1.0) {
            let cap = backoff.cap(failures);
            let delay = backoff.delay(failures, unit);
            prop_assert!(delay <= cap);
            if backoff.jitter == Jitter::Equal {
                prop_assert!(delay >= cap / 2);
            }
        }
    }
}
