//! The monitor's clock: the CPU's time-stamp counter, read through `quanta`
//! (about 10 ns a read on the benchmark machine, against 25 ns for the
//! operating system's clock), since every call of every annotated function
//! reads it twice. With the `test-util` feature it is tokio's clock instead,
//! which a paused test clock drives.
//!
//! A reading is a `u64` of the clock's own unit; [`nanos`] turns two into
//! the nanoseconds between them.

#[cfg(not(feature = "test-util"))]
mod source {
    use std::sync::OnceLock;

    fn clock() -> &'static quanta::Clock {
        static CLOCK: OnceLock<quanta::Clock> = OnceLock::new();
        CLOCK.get_or_init(quanta::Clock::new)
    }

    fn origin() -> u64 {
        static ORIGIN: OnceLock<u64> = OnceLock::new();
        *ORIGIN.get_or_init(|| clock().raw())
    }

    #[inline]
    pub(crate) fn now() -> u64 {
        clock().raw()
    }

    #[inline]
    pub(crate) fn nanos(start: u64, end: u64) -> u64 {
        clock().delta_as_nanos(start, end)
    }

    /// Nanoseconds from the clock's first reading to `reading`.
    #[inline]
    pub(crate) fn since_origin(reading: u64) -> u64 {
        nanos(origin(), reading)
    }
}

#[cfg(feature = "test-util")]
mod source {
    use std::sync::OnceLock;

    use tokio::time::Instant;

    /// A day before the first reading: tests run paused clocks of several
    /// runtimes side by side, each a little behind or ahead of the others,
    /// and every one of them reads after this.
    fn origin() -> Instant {
        static ORIGIN: OnceLock<Instant> = OnceLock::new();
        *ORIGIN.get_or_init(|| {
            let now = Instant::now();
            now.checked_sub(std::time::Duration::from_secs(86_400))
                .unwrap_or(now)
        })
    }

    /// Nanoseconds since the origin.
    #[inline]
    pub(crate) fn now() -> u64 {
        let since = Instant::now().saturating_duration_since(origin());
        u64::try_from(since.as_nanos()).unwrap_or(u64::MAX)
    }

    #[inline]
    pub(crate) fn nanos(start: u64, end: u64) -> u64 {
        end.saturating_sub(start)
    }

    #[inline]
    pub(crate) fn since_origin(reading: u64) -> u64 {
        reading
    }
}

pub(crate) use source::{nanos, now, since_origin};
