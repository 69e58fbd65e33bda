//! The state of a keyed limiter: one GCRA state per key, for at most `cap`
//! keys.
//!
//! governor's keyed limiters grow with every key they see and leave
//! eviction to their user. This store bounds them: keys are hashed to 64
//! bits once per call (with a per-process random key, so that keys cannot
//! be chosen to collide), and a key seen when `cap` keys are held shares
//! one overflow state with the other newcomers until room is made. Room is
//! made when [`Sweep::due`] says so: every `cap` arrivals (new keys and
//! overflow calls, at most 1 024 apart), the limiter drops the keys whose
//! state is indistinguishable from a fresh one (governor's
//! `retain_recent`), so idle keys go as new ones come, and a store that
//! sees no new keys costs nothing to keep.

use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hash, Hasher, RandomState};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use governor::nanos::Nanos;
use governor::state::StateStore;
use governor::state::keyed::ShrinkableKeyedStateStore;

/// The most arrivals between two sweeps.
const SWEEP_EVERY: usize = 1024;

/// `key` as the 64 bits a keyed limiter holds.
#[inline]
pub fn key<K: Hash + ?Sized>(key: &K) -> u64 {
    static HASHER: OnceLock<RandomState> = OnceLock::new();
    HASHER.get_or_init(RandomState::new).hash_one(key)
}

/// The map's hasher: its keys are hashes already (with a random key), so
/// it takes them as they are instead of hashing them again.
#[derive(Default)]
struct Hashed(u64);

impl Hasher for Hashed {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `u64` keys are hashed here; fold anything else in anyway.
        for &byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(byte);
        }
    }

    fn write_u64(&mut self, key: u64) {
        self.0 = key;
    }
}

/// One GCRA state (a theoretical arrival time) per key.
pub(crate) struct Keys {
    held: Mutex<Held>,
    cap: usize,
    sweep: Arc<Sweep>,
}

/// Set when enough keys arrived since the last sweep for another.
#[derive(Default)]
pub(crate) struct Sweep(AtomicBool);

impl Sweep {
    /// Whether a sweep is due; says so once.
    #[inline]
    pub(crate) fn due(&self) -> bool {
        self.0.load(Relaxed) && self.0.swap(false, Relaxed)
    }
}

#[derive(Default)]
struct Held {
    states: HashMap<u64, u64, BuildHasherDefault<Hashed>>,
    /// The state newcomers share while `states` is full.
    overflow: Option<u64>,
    arrivals: usize,
}

impl Keys {
    /// A store of at most `cap` keys, which raises `sweep` when a sweep is
    /// due.
    pub(crate) fn new(cap: usize, sweep: Arc<Sweep>) -> Self {
        Self {
            held: Mutex::new(Held::default()),
            cap: cap.max(1),
            sweep,
        }
    }

    fn held(&self) -> std::sync::MutexGuard<'_, Held> {
        self.held.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn arrived(&self, held: &mut Held) {
        held.arrivals += 1;
        if held.arrivals >= self.cap.min(SWEEP_EVERY) {
            held.arrivals = 0;
            self.sweep.0.store(true, Relaxed);
        }
    }
}

impl StateStore for Keys {
    type Key = u64;

    fn measure_and_replace<T, F, E>(&self, key: &u64, f: F) -> Result<T, E>
    where
        F: Fn(Option<Nanos>) -> Result<(T, Nanos), E>,
    {
        let mut held = self.held();
        let held = &mut *held;
        if let Some(state) = held.states.get_mut(key) {
            let (outcome, next) = f(Some(Nanos::from(*state)))?;
            *state = next.as_u64();
            return Ok(outcome);
        }
        self.arrived(held);
        if held.states.len() < self.cap {
            let (outcome, next) = f(None)?;
            held.states.insert(*key, next.as_u64());
            return Ok(outcome);
        }
        let (outcome, next) = f(held.overflow.map(Nanos::from))?;
        held.overflow = Some(next.as_u64());
        Ok(outcome)
    }
}

impl ShrinkableKeyedStateStore<u64> for Keys {
    fn retain_recent(&self, drop_below: Nanos) {
        let drop_below = drop_below.as_u64();
        let mut held = self.held();
        held.states.retain(|_, state| *state > drop_below);
        if held.overflow.is_some_and(|state| state <= drop_below) {
            held.overflow = None;
        }
    }

    fn shrink_to_fit(&self) {
        self.held().states.shrink_to_fit();
    }

    fn len(&self) -> usize {
        self.held().states.len()
    }

    fn is_empty(&self) -> bool {
        self.held().states.is_empty()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn take(keys: &Keys, key: u64, now: u64) -> Result<(), ()> {
        // A quota of one call per 100 ns.
        keys.measure_and_replace(&key, |state| {
            let tat = state.map_or(now, |s| s.as_u64().max(now));
            if tat > now {
                Err(())
            } else {
                Ok(((), Nanos::from(tat + 100)))
            }
        })
    }

    #[test]
    fn keys_past_the_cap_share_one_state_until_a_sweep_makes_room() {
        let sweep = Arc::new(Sweep::default());
        let keys = Keys::new(2, sweep.clone());
        assert_eq!((take(&keys, 1, 0), take(&keys, 2, 0)), (Ok(()), Ok(())));
        assert!(sweep.due(), "the cap was reached");
        assert!(!sweep.due(), "said once");
        // Full: 3 and 4 share the overflow state.
        assert_eq!((take(&keys, 3, 0), take(&keys, 4, 0)), (Ok(()), Err(())));
        assert_eq!(keys.len(), 2);
        // Key 1 is used again; key 2 goes idle. A sweep at 150 drops what
        // is no newer than 150: key 2 (100) and the overflow (100).
        assert_eq!(take(&keys, 1, 100), Ok(()));
        keys.retain_recent(Nanos::from(150));
        assert_eq!(keys.len(), 1);
        assert_eq!(take(&keys, 4, 160), Ok(()), "4 has a state of its own now");
        assert_eq!(keys.len(), 2);
    }

    #[test]
    fn equal_keys_hash_alike() {
        assert_eq!(key("alice"), key(&"alice".to_owned()[..]));
        assert_ne!(key("alice"), key("bob"));
    }
}
