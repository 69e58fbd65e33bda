//! `loom` models of the frame table: claims that race, and a reader beside
//! a slot that is released and claimed again.
//!
//! `RUSTFLAGS="--cfg loom" cargo test -p resilience-runtime --lib --release watchdog::frames::models`

use loom::sync::Arc;
use loom::thread;

use super::*;

fn fixed(function: u32, start: u64) -> Fixed {
    Fixed {
        function,
        start,
        ..Fixed::default()
    }
}

#[test]
fn racing_claims_get_distinct_slots_and_the_loser_of_a_full_chunk_none() {
    loom::model(|| {
        let chunk = Arc::new(Chunk::<2>::new());
        let claimers: Vec<_> = (0..3)
            .map(|_| {
                let chunk = Arc::clone(&chunk);
                thread::spawn(move || chunk.claim())
            })
            .collect();
        let mut got: Vec<_> = claimers.into_iter().map(|c| c.join().unwrap()).collect();
        got.sort();
        assert_eq!(got, [None, Some(0), Some(1)]);
    });
}

/// A reader never mixes two frames that held the same slot one after the
/// other: it sees the first whole, the second whole, or nothing.
#[test]
fn a_reader_sees_one_frame_whole_or_none() {
    // A slot is a dozen atomics: every interleaving of a reader with a
    // release and a reclaim is out of reach, so switches between the two
    // threads are bounded (as tokio bounds its larger models).
    let mut model = loom::model::Builder::new();
    model.preemption_bound = Some(2);
    model.check(|| {
        let chunk = Arc::new(Chunk::<1>::new());
        let index = chunk.claim().unwrap();
        chunk.slot(index).begin(fixed(1, 10));
        let owner = {
            let chunk = Arc::clone(&chunk);
            thread::spawn(move || {
                chunk.release(index);
                let again = chunk.claim().unwrap();
                chunk.slot(again).begin(fixed(2, 20));
            })
        };
        let read = chunk
            .slot(index)
            .read()
            .map(|(_, f, _)| (f.function, f.start));
        assert!(
            matches!(read, None | Some((1, 10)) | Some((2, 20))),
            "read a mix: {read:?}"
        );
        owner.join().unwrap();
    });
}
