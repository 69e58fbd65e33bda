//! The table of tracked frames: fixed slots that in-flight calls claim and
//! release, readable from any thread.
//!
//! A frame must be readable by the watchdog's thread while its call runs
//! elsewhere, and claiming one must not allocate. So frames are slots of a
//! process-wide table of chunks, each chunk 64 slots with a bitmap of the
//! claimed ones: a call claims a free bit with one compare-and-swap and
//! releases it with one `fetch_and`. Chunks are allocated the first time one
//! is needed and never freed, so a slot's address is stable; at most
//! [`CAPACITY`] frames are tracked at once (a call beyond that is not tracked).
//!
//! Each slot is a sequence lock made of atomics: its sequence number is even
//! while the slot describes a live frame and odd while it is free or being
//! written, and a reader keeps what it read only when the number was even
//! and unchanged across the read. Fields that change during a call (the
//! poll state) are single atomics, read as they are.

// The table is a static of std types; the slots and chunks, whose atomics
// the `loom` models check, take loom's under `--cfg loom`.
use std::sync::OnceLock;
use std::sync::atomic::AtomicUsize;

#[cfg(loom)]
use loom::sync::atomic::{AtomicU32, AtomicU64, Ordering::*, fence};
#[cfg(not(loom))]
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::*, fence};

/// Slots in a chunk: one bit each in its bitmap.
pub(crate) const CHUNK: usize = 64;
/// Chunks in the table.
const CHUNKS: usize = 1024;
/// The most frames tracked at once.
pub(crate) const CAPACITY: usize = CHUNK * CHUNKS;

/// What a frame records when it is claimed; it does not change afterwards.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub(crate) struct Fixed {
    /// The function's id in `super::functions` (never 0).
    pub(crate) function: u32,
    /// The frame this call runs inside, as `parent_link` made it; 0 for none.
    pub(crate) parent: u64,
    /// The monitor clock's reading when the call began.
    pub(crate) start: u64,
    /// The deadline in force, in nanoseconds from `start`; 0 for none.
    pub(crate) limit: u64,
    /// The id of the function whose deadline that is; 0 for none.
    pub(crate) owner: u32,
    /// The attempt, from 1, under a `#[retry]`; 0 otherwise.
    pub(crate) attempt: u32,
    /// The identity of the deadline in force (see `deadline::Scope`); 0
    /// for none.
    pub(crate) scope: u64,
}

/// How a frame is being polled, as the frame's own call last wrote it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub(crate) struct Polls {
    /// The clock reading when the poll now running began; `None` while the
    /// call waits.
    pub(crate) polling_since: Option<u64>,
    /// The clock reading when the call last returned `Pending`; its start
    /// before that.
    pub(crate) waiting_since: u64,
    /// Polls so far.
    pub(crate) count: u32,
    /// The longest poll so far, in nanoseconds.
    pub(crate) longest: u64,
    /// The thread running the poll now, or that ran the last one (see
    /// `super::threads`).
    pub(crate) thread: u32,
}

/// One frame.
pub(crate) struct Slot {
    seq: AtomicU32,
    function: AtomicU32,
    parent: AtomicU64,
    start: AtomicU64,
    limit: AtomicU64,
    owner: AtomicU32,
    attempt: AtomicU32,
    scope: AtomicU64,
    // The reading + 1, so that 0 means "waiting".
    polling_since: AtomicU64,
    waiting_since: AtomicU64,
    polls: AtomicU32,
    longest: AtomicU64,
    thread: AtomicU32,
}

impl Slot {
    fn new() -> Self {
        Self {
            seq: AtomicU32::new(1),
            function: AtomicU32::new(0),
            parent: AtomicU64::new(0),
            start: AtomicU64::new(0),
            limit: AtomicU64::new(0),
            owner: AtomicU32::new(0),
            attempt: AtomicU32::new(0),
            scope: AtomicU64::new(0),
            polling_since: AtomicU64::new(0),
            waiting_since: AtomicU64::new(0),
            polls: AtomicU32::new(0),
            longest: AtomicU64::new(0),
            thread: AtomicU32::new(0),
        }
    }

    /// Writes a new frame into this slot, which its caller has just claimed.
    pub(crate) fn begin(&self, fixed: Fixed) {
        let seq = self.seq.load(Relaxed);
        debug_assert!(!seq.is_multiple_of(2), "a claimed slot is free");
        // Writes below must not be seen before the odd number written when
        // the slot was freed: a reader that sees one re-reads a new number.
        fence(Release);
        self.function.store(fixed.function, Relaxed);
        self.parent.store(fixed.parent, Relaxed);
        self.start.store(fixed.start, Relaxed);
        self.limit.store(fixed.limit, Relaxed);
        self.owner.store(fixed.owner, Relaxed);
        self.attempt.store(fixed.attempt, Relaxed);
        self.scope.store(fixed.scope, Relaxed);
        self.polling_since.store(0, Relaxed);
        self.waiting_since.store(fixed.start, Relaxed);
        self.polls.store(0, Relaxed);
        self.longest.store(0, Relaxed);
        self.seq.store(seq.wrapping_add(1), Release);
    }

    /// Marks the frame ended; the slot is then free to claim again.
    pub(crate) fn end(&self) {
        let seq = self.seq.load(Relaxed);
        debug_assert!(seq.is_multiple_of(2), "a live frame ends once");
        self.seq.store(seq.wrapping_add(1), Release);
    }

    /// The sequence number of the frame its owner holds.
    #[inline]
    pub(crate) fn seq(&self) -> u32 {
        self.seq.load(Relaxed)
    }

    /// A poll begins, at clock reading `now`, on thread `thread`.
    #[inline]
    pub(crate) fn poll_begins(&self, now: u64, thread: u32) {
        self.thread.store(thread, Relaxed);
        self.polls.fetch_add(1, Relaxed);
        self.polling_since.store(now.saturating_add(1), Relaxed);
    }

    /// The poll now running ended at `now`, `nanos` after it began.
    #[inline]
    pub(crate) fn poll_ends(&self, now: u64, nanos: u64) {
        self.polling_since.store(0, Relaxed);
        self.waiting_since.store(now, Relaxed);
        if nanos > self.longest.load(Relaxed) {
            self.longest.store(nanos, Relaxed);
        }
    }

    /// The reading at which the poll now running began, if one is.
    pub(crate) fn polling_since(&self) -> Option<u64> {
        self.polling_since.load(Relaxed).checked_sub(1)
    }

    /// The live frame in this slot and its sequence number, or `None` when
    /// the slot is free or changed while it was read.
    pub(crate) fn read(&self) -> Option<(u32, Fixed, Polls)> {
        let seq = self.seq.load(Acquire);
        if !seq.is_multiple_of(2) {
            return None;
        }
        let fixed = Fixed {
            function: self.function.load(Relaxed),
            parent: self.parent.load(Relaxed),
            start: self.start.load(Relaxed),
            limit: self.limit.load(Relaxed),
            owner: self.owner.load(Relaxed),
            attempt: self.attempt.load(Relaxed),
            scope: self.scope.load(Relaxed),
        };
        let polls = Polls {
            polling_since: self.polling_since(),
            waiting_since: self.waiting_since.load(Relaxed),
            count: self.polls.load(Relaxed),
            longest: self.longest.load(Relaxed),
            thread: self.thread.load(Relaxed),
        };
        // The reads above happen before the second read of the number: a
        // write of a newer frame that any of them saw shows in it.
        fence(Acquire);
        (self.seq.load(Relaxed) == seq).then_some((seq, fixed, polls))
    }
}

/// `N` slots and the bitmap of the claimed ones.
pub(crate) struct Chunk<const N: usize = CHUNK> {
    used: AtomicU64,
    slots: [Slot; N],
}

impl<const N: usize> Chunk<N> {
    pub(crate) fn new() -> Self {
        const { assert!(N <= 64) };
        Self {
            used: AtomicU64::new(0),
            slots: std::array::from_fn(|_| Slot::new()),
        }
    }

    /// Claims a free slot: its index, or `None` when all are taken.
    pub(crate) fn claim(&self) -> Option<usize> {
        let full = if N == 64 { u64::MAX } else { (1 << N) - 1 };
        let mut used = self.used.load(Relaxed);
        loop {
            if used == full {
                return None;
            }
            let bit = (!used).trailing_zeros();
            // Acquire: the slot's last `end` happens before this claim.
            match self
                .used
                .compare_exchange_weak(used, used | 1 << bit, Acquire, Relaxed)
            {
                Ok(_) => return Some(bit as usize),
                Err(now) => used = now,
            }
        }
    }

    /// Frees the slot at `index`, whose frame has ended.
    pub(crate) fn release(&self, index: usize) {
        self.slots[index].end();
        self.used.fetch_and(!(1 << index), Release);
    }

    /// The claimed slots.
    pub(crate) fn claimed(&self) -> impl Iterator<Item = (usize, &Slot)> {
        let used = self.used.load(Acquire);
        self.slots
            .iter()
            .enumerate()
            .filter(move |(i, _)| used & (1 << i) != 0)
    }

    pub(crate) fn slot(&self, index: usize) -> &Slot {
        &self.slots[index]
    }
}

/// The parent link of a frame in slot `index` with sequence number `seq`.
pub(crate) fn parent_link(index: u32, seq: u32) -> u64 {
    (u64::from(index) + 1) << 32 | u64::from(seq)
}

static TABLE: [OnceLock<Box<Chunk>>; CHUNKS] = [const { OnceLock::new() }; CHUNKS];
/// Chunks allocated so far.
static CHUNKS_IN_USE: AtomicUsize = AtomicUsize::new(0);

/// Claims a slot in the table: its index, or `None` when [`CAPACITY`]
/// frames are tracked already.
pub(crate) fn claim() -> Option<u32> {
    thread_local! {
        // Where this thread last found room: threads spread over chunks.
        static HINT: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    }
    let hint = HINT.get();
    let in_use = CHUNKS_IN_USE.load(Acquire);
    for c in (hint..in_use).chain(0..hint.min(in_use)) {
        if let Some(i) = TABLE[c].get().and_then(|chunk| chunk.claim()) {
            HINT.set(c);
            return Some((c * CHUNK + i) as u32);
        }
    }
    claim_in_new_chunk(in_use)
}

/// Every chunk in use was full: claims in the next one, allocating it.
#[cold]
fn claim_in_new_chunk(from: usize) -> Option<u32> {
    for (c, chunk) in TABLE.iter().enumerate().skip(from) {
        let chunk = chunk.get_or_init(|| Box::new(Chunk::new()));
        CHUNKS_IN_USE.fetch_max(c + 1, Release);
        if let Some(i) = chunk.claim() {
            return Some((c * CHUNK + i) as u32);
        }
    }
    None
}

/// The slot at `index`, claimed earlier.
pub(crate) fn slot(index: u32) -> &'static Slot {
    let index = index as usize;
    TABLE[index / CHUNK]
        .get()
        .expect("a claimed slot's chunk exists")
        .slot(index % CHUNK)
}

/// Frees the slot at `index`.
pub(crate) fn release(index: u32) {
    let index = index as usize;
    TABLE[index / CHUNK]
        .get()
        .expect("a claimed slot's chunk exists")
        .release(index % CHUNK);
}

/// Every live frame: slot index, sequence number, and what it holds.
pub(crate) fn live() -> Vec<(u32, u32, Fixed, Polls)> {
    let mut frames = Vec::new();
    for (c, chunk) in TABLE[..CHUNKS_IN_USE.load(Acquire)].iter().enumerate() {
        let Some(chunk) = chunk.get() else { continue };
        for (i, slot) in chunk.claimed() {
            if let Some((seq, fixed, polls)) = slot.read() {
                frames.push(((c * CHUNK + i) as u32, seq, fixed, polls));
            }
        }
    }
    frames
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn fixed(function: u32) -> Fixed {
        Fixed {
            function,
            start: 7,
            limit: 100,
            ..Fixed::default()
        }
    }

    #[test]
    fn a_slot_reads_as_its_frame_while_live_and_as_nothing_after() {
        let chunk = Chunk::<2>::new();
        let index = chunk.claim().unwrap();
        assert_eq!(chunk.slot(index).read(), None, "claimed, not written");
        chunk.slot(index).begin(fixed(3));
        let (seq, read, polls) = chunk.slot(index).read().unwrap();
        assert_eq!(read, fixed(3));
        assert_eq!(polls.waiting_since, 7);
        chunk.slot(index).poll_begins(10, 4);
        assert_eq!(chunk.slot(index).read().unwrap().2.polling_since, Some(10));
        chunk.slot(index).poll_ends(25, 15);
        let polls = chunk.slot(index).read().unwrap().2;
        assert_eq!((polls.polling_since, polls.waiting_since), (None, 25));
        assert_eq!((polls.count, polls.longest, polls.thread), (1, 15, 4));
        chunk.release(index);
        assert_eq!(chunk.slot(index).read(), None);
        assert_eq!(chunk.claimed().count(), 0);
        // The next frame there has a new number: a stale parent link fails.
        assert_eq!(chunk.claim(), Some(index));
        chunk.slot(index).begin(fixed(5));
        assert_ne!(chunk.slot(index).read().unwrap().0, seq);
    }

    #[test]
    fn a_full_chunk_claims_nothing_until_a_slot_is_released() {
        let chunk = Chunk::<3>::new();
        let claimed: Vec<_> = (0..3).map(|_| chunk.claim().unwrap()).collect();
        assert_eq!(claimed, [0, 1, 2]);
        assert_eq!(chunk.claim(), None);
        chunk.slot(1).begin(fixed(1));
        chunk.release(1);
        assert_eq!(chunk.claim(), Some(1));
    }

    #[test]
    fn parent_links_are_never_zero_and_tell_slots_and_frames_apart() {
        assert_ne!(parent_link(0, 0), 0);
        assert_ne!(parent_link(0, 2), parent_link(0, 4));
        assert_ne!(parent_link(1, 2), parent_link(2, 2));
    }
}

#[cfg(all(test, loom))]
mod models;
