//! One call of an annotated `async fn`, around its body: the frame the
//! watchdog sees, and the faults `chaos` injects. A call with neither pays
//! one relaxed load, on its first poll.

use std::collections::HashMap;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::{Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use pin_project_lite::pin_project;
use tokio::time::Sleep;

use crate::attention::{self, Reason};
use crate::chaos::{self, InjectedError};
use crate::monitor::clock;
use crate::registry::Function;
use crate::watchdog::{self, frames};

/// The function a call belongs to, named by a zero-sized type its expansion
/// declares, so that the call's future holds no pointer to it.
pub trait Named {
    /// The function.
    fn function() -> &'static Function;
}

/// Builds a function's output from an injected failure, where its return
/// type can carry one; picked at compile time (see [`Pick`]).
pub trait Inject<O> {
    /// The output of a call that failed with `error`, or `None` when the
    /// type cannot carry it.
    fn output(error: InjectedError) -> Option<O>;
}

/// For a return type `Result<T, E>` with `E: From<InjectedError>`.
pub struct Fails;

impl<T, E: From<InjectedError>> Inject<Result<T, E>> for Fails {
    fn output(error: InjectedError) -> Option<Result<T, E>> {
        Some(Err(E::from(error)))
    }
}

/// For any other return type.
pub struct CannotFail;

impl<O> Inject<O> for CannotFail {
    #[cold]
    fn output(error: InjectedError) -> Option<O> {
        tracing::warn!(
            function = error.function(),
            "an injected error cannot be returned by this function (its return type is not a \
             `Result` whose error converts from `chaos::InjectedError`); the body runs"
        );
        None
    }
}

/// The output type of a body, for autoref dispatch:
/// `(&&Pick::of(&future)).__resilience_pick()` is `Fails` where the output can carry
/// an injected error and `CannotFail` elsewhere.
pub struct Pick<O>(PhantomData<fn() -> O>);

impl<O> Pick<O> {
    /// The pick for `future`'s output.
    pub fn of<F: Future<Output = O>>(_: &F) -> Self {
        Pick(PhantomData)
    }
}

/// A `Result` whose error converts from [`InjectedError`].
pub trait PickFails {
    /// `Fails`. Named so that no user trait in scope shares the name.
    fn __resilience_pick(&self) -> PhantomData<Fails> {
        PhantomData
    }
}

impl<T, E: From<InjectedError>> PickFails for &Pick<Result<T, E>> {}

/// Anything else.
pub trait PickCannotFail {
    /// `CannotFail`.
    fn __resilience_pick(&self) -> PhantomData<CannotFail> {
        PhantomData
    }
}

impl<O> PickCannotFail for Pick<O> {}

// The state is a whole word although 32 bits would hold it: it pads to 8
// bytes anyway, and a future built with a 4-byte store and moved with an
// 8-byte load stalls store forwarding, on every call.

/// `state` before the first poll.
const NEW: u64 = u64::MAX;
/// `state` of a call with no frame (possibly delayed, see `DELAYED`).
const NO_FRAME: u64 = 0x00FF_FFFF;
/// In `state`: an injected delay is pending.
const DELAYED: u64 = 1 << 31;
const FRAME: u64 = 0x00FF_FFFF;

const _: () = assert!(frames::CAPACITY < NO_FRAME as usize);

type Delays = Option<HashMap<(usize, u32), Pin<Box<Sleep>>>>;

/// Injected delays pending, by call (see `Call::key`).
static DELAYS: Mutex<Delays> = Mutex::new(None);

pin_project! {
    /// The body of one call of the annotated function `N`.
    #[must_use = "futures do nothing unless you `.await` or poll them"]
    pub struct Call<F, N: Named, I> {
        #[pin]
        future: F,
        // `NEW`; or the frame's slot (`NO_FRAME` for none) with `DELAYED`.
        state: u64,
        marker: PhantomData<fn() -> (N, I)>,
    }

    impl<F, N: Named, I> PinnedDrop for Call<F, N, I> {
        #[inline(always)]
        fn drop(this: Pin<&mut Self>) {
            let state = this.state;
            // The usual case, a call with nothing to release, in one compare.
            if state != NO_FRAME && state != NEW {
                let key = this.as_ref().key();
                release(state, key);
            }
        }
    }
}

/// Releases what a call that ends holds: its frame, its pending delay.
#[cold]
#[inline(never)]
fn release(state: u64, key: (usize, u32)) {
    if state & DELAYED != 0
        && let Some(delays) = lock_delays().as_mut()
    {
        delays.remove(&key);
    }
    if state & FRAME != NO_FRAME {
        frames::release((state & FRAME) as u32);
    }
}

impl<F, N: Named, I> Call<F, N, I> {
    /// The key of this call's pending delay: its pinned address, and its
    /// function, since a call's body may begin with another call at the
    /// same address.
    fn key(self: Pin<&Self>) -> (usize, u32) {
        (self.get_ref() as *const Self as usize, N::function().id())
    }
}

fn lock_delays() -> std::sync::MutexGuard<'static, Delays> {
    DELAYS.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<F: Future, N: Named, I: Inject<F::Output>> Call<F, N, I> {
    /// The body `future`; `I` from [`Pick`].
    #[inline(always)]
    pub fn new(future: F, _: PhantomData<I>) -> Self {
        Self {
            future,
            state: NEW,
            marker: PhantomData,
        }
    }
}

impl<F: Future, N: Named, I: Inject<F::Output>> Future for Call<F, N, I> {
    type Output = F::Output;

    #[inline(always)]
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.as_mut().project();
        if *this.state == NO_FRAME {
            return this.future.poll(cx);
        }
        if *this.state == NEW && attention::word() == 0 {
            *this.state = NO_FRAME;
            return this.future.poll(cx);
        }
        self.poll_watched(cx)
    }
}

impl<F: Future, N: Named, I: Inject<F::Output>> Call<F, N, I> {
    /// The first poll of a call that something watches: takes its faults
    /// and claims its frame. `Err` with the output when it fails at once;
    /// else how long to block the thread, if that is injected.
    #[cold]
    fn begin(mut self: Pin<&mut Self>, word: u8) -> Result<Option<Duration>, F::Output> {
        let function = N::function();
        let mut state = NO_FRAME;
        let mut blocking = None;
        if attention::has(word, Reason::Faults) {
            let faults = chaos::take_call_faults(function);
            if let Some(output) = faults.error.and_then(I::output) {
                *self.as_mut().project().state = NO_FRAME;
                return Err(output);
            }
            if let Some(delay) = faults.delay {
                let key = self.as_ref().key();
                let sleep = Box::pin(tokio::time::sleep(delay));
                lock_delays()
                    .get_or_insert_with(HashMap::new)
                    .insert(key, sleep);
                state |= DELAYED;
            }
            blocking = faults.blocking;
        }
        if attention::has(word, Reason::Frames)
            && let Some(slot) = frames::claim()
        {
            let scope = crate::deadline::scope();
            let limit = scope.map_or(0, |scope| {
                let left = scope
                    .deadline
                    .saturating_duration_since(tokio::time::Instant::now());
                u64::try_from(left.as_nanos()).unwrap_or(u64::MAX).max(1)
            });
            frames::slot(slot).begin(frames::Fixed {
                function: function.id(),
                parent: watchdog::current(),
                start: clock::now(),
                limit,
                owner: scope.map_or(0, |scope| scope.owner.id()),
                attempt: crate::retry::run::attempt_of(function),
                scope: scope.map_or(0, |scope| scope.id as u64),
            });
            state = state & DELAYED | u64::from(slot);
        }
        *self.as_mut().project().state = state;
        Ok(blocking)
    }

    /// The frame's slot and parent link, if the call has one.
    fn frame(&self) -> Option<(&'static frames::Slot, u64)> {
        let index = (self.state & FRAME) as u32;
        (u64::from(index) != NO_FRAME).then(|| {
            let slot = frames::slot(index);
            (slot, frames::parent_link(index, slot.seq()))
        })
    }

    /// A poll of a call something watches: a tracked frame, an injection.
    #[inline(never)]
    fn poll_watched(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let mut blocking = None;
        if self.state == NEW {
            match self.as_mut().begin(attention::word()) {
                Ok(block) => blocking = block,
                Err(output) => return Poll::Ready(output),
            }
        }
        let _poll = self.frame().map(|(slot, link)| Polling::begin(slot, link));
        if let Some(blocking) = blocking {
            // Inside the frame's poll, so that the watchdog sees it.
            std::thread::sleep(blocking);
        }
        if self.state & DELAYED != 0 {
            let key = self.as_ref().key();
            let mut delays = lock_delays();
            let delays = delays.get_or_insert_with(HashMap::new);
            if let Some(sleep) = delays.get_mut(&key) {
                if sleep.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                delays.remove(&key);
            }
            *self.as_mut().project().state &= !DELAYED;
        }
        self.project().future.poll(cx)
    }
}

/// One poll of a tracked frame: stamps the slot, and makes the frame the
/// parent of calls made inside the poll, until it drops (also in a panic).
struct Polling {
    slot: &'static frames::Slot,
    began: u64,
    _entered: watchdog::Entered,
}

impl Polling {
    #[inline]
    fn begin(slot: &'static frames::Slot, link: u64) -> Self {
        let began = clock::now();
        slot.poll_begins(began, watchdog::thread_id());
        Self {
            slot,
            began,
            _entered: watchdog::enter(link),
        }
    }
}

impl Drop for Polling {
    #[inline]
    fn drop(&mut self) {
        let end = clock::now();
        self.slot.poll_ends(end, clock::nanos(self.began, end));
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    static FUNCTION: Function = Function::new("call::tests::delayed", "delayed", false, &[]);

    struct Delayed;

    impl Named for Delayed {
        fn function() -> &'static Function {
            &FUNCTION
        }
    }

    fn pending_delays() -> usize {
        lock_delays().as_ref().map_or(0, HashMap::len)
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_dropped_while_delayed_leaves_no_delay_behind() {
        chaos::inject_delay("call::tests::delayed", Duration::from_secs(5), 1);
        {
            let call = Call::<_, Delayed, CannotFail>::new(async { 7 }, PhantomData);
            let mut call = std::pin::pin!(call);
            let waker = std::task::Waker::noop();
            let poll = call.as_mut().poll(&mut Context::from_waker(waker));
            assert!(poll.is_pending());
            assert_eq!(pending_delays(), 1);
        } // dropped here, delayed
        assert_eq!(pending_delays(), 0);
    }
}
