//! A sliding window of call latencies: log-linear buckets of atomic counts,
//! in slices that rotate as time passes.
//!
//! A latency in nanoseconds falls in a bucket by its power of two and, within
//! it, by its next [`SUB_BITS`] bits: 64 buckets per doubling, so a bucket's
//! midpoint is within 1/128 (0.8 %) of any value in it. Values below 64 ns
//! have a bucket each. Recording is a few atomic adds on the slice of the
//! current period; no lock, no allocation.
//!
//! The window is [`SLICES`] slices of one period each, the newest being
//! written. A slice knows which period it holds (its epoch); the first
//! recorder of a new period claims the slice with a compare-and-swap (to
//! [`ROTATING`]), clears it, and publishes the new epoch, while the other
//! recorders of that period wait for it: no call of the current period is
//! lost. Readers add up the slices of the last `SLICES` periods. A recorder
//! stalled between claiming its slice and adding to it for a whole window
//! (`SLICES` periods) may see its call, by then out of the window, forgotten
//! or counted in the newer period (the `loom` models show both).

#[cfg(loom)]
use loom::sync::atomic::{AtomicU32, AtomicU64, Ordering::*};
#[cfg(not(loom))]
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::*};

/// Bits of a latency, after its leading one, that pick its bucket.
pub(crate) const SUB_BITS: u32 = 6;
const SUB: u64 = 1 << SUB_BITS;
/// Powers of two above `SUB` ns that have buckets: up to 2^41 ns (36 min).
const POWERS: usize = 41 - SUB_BITS as usize;
/// Buckets of a full-size slice.
pub(crate) const BUCKETS: usize = SUB as usize * (POWERS + 1);

/// Slices in a window: the window forgets a slice's calls `SLICES` periods
/// after its period began.
pub(crate) const SLICES: usize = 6;

/// The epoch of a slice being cleared for a new period.
const ROTATING: u64 = u64::MAX;
/// The epoch of a slice that never held a period.
const EMPTY: u64 = u64::MAX - 1;

/// The bucket of a latency of `nanos`.
pub(crate) fn bucket(nanos: u64) -> usize {
    if nanos < SUB {
        return nanos as usize;
    }
    let power = 63 - nanos.leading_zeros(); // >= SUB_BITS
    let shift = power - SUB_BITS;
    if shift as usize >= POWERS {
        return BUCKETS - 1;
    }
    let sub = (nanos >> shift) & (SUB - 1);
    ((shift as u64 + 1) * SUB + sub) as usize
}

/// The smallest latency of bucket `index`, and its width.
fn bounds(index: usize) -> (u64, u64) {
    let index = index as u64;
    if index < SUB {
        return (index, 1);
    }
    let shift = index / SUB - 1;
    let sub = index % SUB;
    ((SUB + sub) << shift, 1 << shift)
}

/// The latency that stands for bucket `index`: its midpoint.
pub(crate) fn value(index: usize) -> u64 {
    let (low, width) = bounds(index);
    low + width / 2
}

/// The calls of one period.
struct Slice<const B: usize> {
    epoch: AtomicU64,
    /// `B` counts, on the heap: a full window is 55 KB, too much for the
    /// stack of a small thread.
    counts: Box<[AtomicU32]>,
    errors: AtomicU32,
    max: AtomicU64,
}

impl<const B: usize> Slice<B> {
    fn new() -> Self {
        Self {
            epoch: AtomicU64::new(EMPTY),
            counts: (0..B).map(|_| AtomicU32::new(0)).collect(),
            errors: AtomicU32::new(0),
            max: AtomicU64::new(0),
        }
    }

    /// Makes this slice hold `epoch`, clearing an older one: `Some(true)`
    /// when this call cleared it (the window moved), `Some(false)` when it
    /// already held `epoch`, `None` when a newer period holds it (for a
    /// recorder of an older one).
    fn claim(&self, epoch: u64) -> Option<bool> {
        loop {
            let held = self.epoch.load(Acquire);
            if held == epoch {
                return Some(false);
            }
            if held == ROTATING {
                std::hint::spin_loop();
                #[cfg(loom)]
                loom::thread::yield_now();
                continue;
            }
            if held != EMPTY && held > epoch {
                return None;
            }
            if self
                .epoch
                .compare_exchange(held, ROTATING, Acquire, Relaxed)
                .is_ok()
            {
                // Swaps, not stores: a recorder of an older period may still
                // be adding to this slice, and a plain store could be ordered
                // before its add (the `loom` models found this).
                for count in &self.counts {
                    count.swap(0, Relaxed);
                }
                self.errors.swap(0, Relaxed);
                self.max.swap(0, Relaxed);
                self.epoch.store(epoch, Release);
                return Some(true);
            }
        }
    }
}

/// The latencies of one function over the last [`SLICES`] periods.
pub(crate) struct Window<const B: usize = BUCKETS> {
    slices: [Slice<B>; SLICES],
}

/// What a window holds, added up.
#[derive(Clone)]
pub(crate) struct Totals {
    pub(crate) counts: Vec<u64>,
    pub(crate) errors: u64,
    pub(crate) max: u64,
}

impl<const B: usize> Window<B> {
    pub(crate) fn new() -> Self {
        Self {
            slices: std::array::from_fn(|_| Slice::new()),
        }
    }

    /// Records a call of `nanos` in period `epoch`; true when it is the
    /// first of its period, which moved the window.
    pub(crate) fn record(&self, epoch: u64, nanos: u64, failed: bool) -> bool {
        let slice = &self.slices[(epoch % SLICES as u64) as usize];
        let Some(moved) = slice.claim(epoch) else {
            return false;
        };
        slice.counts[bucket(nanos).min(B - 1)].fetch_add(1, Relaxed);
        if failed {
            slice.errors.fetch_add(1, Relaxed);
        }
        // A load first: most calls set no new maximum, and `fetch_max` is a
        // compare-and-swap loop.
        if nanos > slice.max.load(Relaxed) {
            slice.max.fetch_max(nanos, Relaxed);
        }
        moved
    }

    /// The calls of the periods `now - SLICES + 1 ..= now`.
    pub(crate) fn totals(&self, now: u64) -> Totals {
        let mut totals = Totals {
            counts: vec![0; B],
            errors: 0,
            max: 0,
        };
        for slice in &self.slices {
            let epoch = slice.epoch.load(Acquire);
            if epoch >= EMPTY || epoch > now || now - epoch >= SLICES as u64 {
                continue;
            }
            let counts: Vec<u64> = slice
                .counts
                .iter()
                .map(|count| u64::from(count.load(Relaxed)))
                .collect();
            let errors = u64::from(slice.errors.load(Relaxed));
            let max = slice.max.load(Relaxed);
            // Rotated meanwhile: what was read mixes two periods.
            if slice.epoch.load(Acquire) != epoch {
                continue;
            }
            for (total, count) in totals.counts.iter_mut().zip(counts) {
                *total += count;
            }
            totals.errors += errors;
            totals.max = totals.max.max(max);
        }
        totals
    }
}

impl Totals {
    pub(crate) fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// The latency at quantile `q` (nearest rank), in nanoseconds; never more
    /// than the largest recorded.
    pub(crate) fn quantile(&self, q: f64) -> u64 {
        let count = self.count();
        if count == 0 {
            return 0;
        }
        let rank = ((q * count as f64).ceil() as u64).clamp(1, count);
        let mut seen = 0;
        for (index, &n) in self.counts.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return value(index).min(self.max);
            }
        }
        self.max
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn every_bucket_is_within_one_percent_of_its_values() {
        for nanos in (1..200_000u64).chain([1 << 20, 3 << 30, 123_456_789_012]) {
            let index = bucket(nanos);
            let (low, width) = bounds(index);
            assert!((low..low + width).contains(&nanos), "{nanos} in {index}");
            let error = value(index).abs_diff(nanos) as f64 / nanos as f64;
            assert!(error <= 0.01, "{nanos}: {error}");
        }
    }

    #[test]
    fn buckets_are_ordered_and_the_last_holds_the_rest() {
        let mut last = 0;
        for nanos in (0..40).map(|p| 1u64 << p) {
            let index = bucket(nanos);
            assert!(index >= last);
            last = index;
        }
        assert_eq!(bucket(u64::MAX), BUCKETS - 1);
    }

    #[test]
    fn quantiles_by_nearest_rank() {
        let window: Window = Window::new();
        for ms in 1..=100u64 {
            window.record(0, ms * 1_000_000, ms % 10 == 0);
        }
        let totals = window.totals(0);
        assert_eq!(
            (totals.count(), totals.errors, totals.max),
            (100, 10, 100_000_000)
        );
        for (q, ms) in [(0.5, 50.0), (0.95, 95.0), (0.99, 99.0)] {
            let got = totals.quantile(q) as f64 / 1e6;
            assert!((got - ms).abs() / ms <= 0.01, "p{q}: {got} ms");
        }
    }

    #[test]
    fn the_first_call_of_each_period_moves_the_window() {
        let window: Window = Window::new();
        let moved: Vec<bool> = [0, 0, 1, 1, 0, 7]
            .into_iter()
            .map(|epoch| window.record(epoch, 1_000, false))
            .collect();
        // Period 0 again after 1: a late recorder, in its own slice.
        assert_eq!(moved, [true, false, true, false, false, true]);
    }

    #[test]
    fn a_slice_is_forgotten_after_the_window_and_reused() {
        let window: Window = Window::new();
        window.record(3, 1_000, false);
        assert_eq!(window.totals(3 + SLICES as u64 - 1).count(), 1);
        assert_eq!(window.totals(3 + SLICES as u64).count(), 0);
        // The same slice, a window later: cleared first.
        window.record(3 + SLICES as u64, 2_000, false);
        assert_eq!(window.totals(3 + SLICES as u64).count(), 1);
        // A late recorder of the older period adds nothing.
        window.record(3, 1_000, false);
        assert_eq!(window.totals(3 + SLICES as u64).count(), 1);
    }
}

#[cfg(all(test, loom))]
mod models;
