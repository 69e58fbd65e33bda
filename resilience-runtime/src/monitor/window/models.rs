//! `loom` models of the window: every interleaving of recorders that find a
//! slice of an older period, and of a reader beside them.
//!
//! `RUSTFLAGS="--cfg loom" cargo test -p resilience-runtime --lib --release monitor::window::models`

use loom::sync::Arc;
use loom::thread;

use super::*;

/// A small window: four buckets a slice.
type Small = Window<4>;

/// Two recorders of a new period: both counted, and exactly one of them
/// told that it moved the window (adaptive timeouts learn once a period).
#[test]
fn recorders_of_a_new_period_lose_no_count_and_one_moves_the_window() {
    loom::model(|| {
        let window = Arc::new(Small::new());
        // The slice of period SLICES holds period 0 to start with.
        assert!(window.record(0, 1, false));
        let recorders: Vec<_> = (0..2)
            .map(|_| {
                let window = Arc::clone(&window);
                thread::spawn(move || window.record(SLICES as u64, 2, true))
            })
            .collect();
        let moved = recorders
            .into_iter()
            .map(|recorder| recorder.join().unwrap())
            .filter(|&moved| moved)
            .count();
        assert_eq!(moved, 1);
        let totals = window.totals(SLICES as u64);
        assert_eq!((totals.count(), totals.errors, totals.max), (2, 2, 2));
    });
}

/// A recorder of period 0 that is overtaken, between claiming its slice and
/// adding to it, by a recorder a whole window later: its call, already out
/// of the window, is forgotten or counted in the newer period; never more.
/// (On a real clock that needs a recorder stalled for a whole window.)
#[test]
fn a_late_recorder_adds_at_most_its_own_call() {
    loom::model(|| {
        let window = Arc::new(Small::new());
        let late = {
            let window = Arc::clone(&window);
            thread::spawn(move || window.record(0, 1, false))
        };
        window.record(SLICES as u64, 3, false);
        late.join().unwrap();
        let newer = window.totals(SLICES as u64);
        assert!(matches!(newer.count(), 1 | 2), "{}", newer.count());
        assert_eq!(newer.max, 3, "{:?}", newer.counts);
    });
}

#[test]
fn a_reader_sees_whole_counts() {
    loom::model(|| {
        let window = Arc::new(Small::new());
        let recorder = {
            let window = Arc::clone(&window);
            thread::spawn(move || window.record(1, 2, false))
        };
        let seen = window.totals(1).count();
        assert!(seen <= 1);
        recorder.join().unwrap();
        assert_eq!(window.totals(1).count(), 1);
    });
}
