//! What a call of an annotated function must look at beyond its layers:
//! frames to track for the watchdog, and faults injected by `chaos`. One
//! word, so that a call with neither pays one relaxed load.

use std::sync::atomic::{AtomicU8, Ordering::Relaxed};

static WORD: AtomicU8 = AtomicU8::new(0);

/// One reason for a call to look.
#[derive(Clone, Copy)]
pub(crate) enum Reason {
    /// Frames are tracked (`watchdog::track` or a running watchdog).
    Frames = 1,
    /// Some call fault is injected (`chaos`).
    Faults = 2,
}

/// Sets or clears `reason`.
pub(crate) fn set(reason: Reason, on: bool) {
    if on {
        WORD.fetch_or(reason as u8, Relaxed);
    } else {
        WORD.fetch_and(!(reason as u8), Relaxed);
    }
}

/// The reasons set, as a word: 0 when a call need look at nothing.
#[inline]
pub(crate) fn word() -> u8 {
    WORD.load(Relaxed)
}

/// Whether `reason` is set in `word`.
#[inline]
pub(crate) fn has(word: u8, reason: Reason) -> bool {
    word & reason as u8 != 0
}
