//! Panics of libtorch during a device attempt: telling them from the
//! caller's own panics, and a chained panic hook that keeps quiet about the
//! ones a CPU rerun is about to recover from.

use std::any::Any;
use std::cell::Cell;
use std::sync::Once;

use super::classify;

/// The text of a panic raised by a tch method, or `None` for any other panic.
pub(super) fn torch_panic(payload: &(dyn Any + Send)) -> Option<String> {
    torch_panic_text(payload).map(str::to_owned)
}

fn torch_panic_text(payload: &(dyn Any + Send)) -> Option<&str> {
    let text = payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied())?;
    let from_torch = text.contains("Torch(\"") || text.contains("Internal torch error");
    from_torch.then_some(text)
}

thread_local! {
    /// Set while a device attempt runs whose torch panics will be recovered
    /// by a CPU rerun when they are of a kind that falls back.
    static QUIET: Cell<bool> = const { Cell::new(false) };
}

static QUIET_HOOK: Once = Once::new();

/// Chains a panic hook that keeps quiet about the torch panics a CPU rerun is
/// about to recover from: they are reported once, as a `tracing` event, rather
/// than as a panic message with a C++ backtrace. Every other panic, and every
/// torch panic that is passed on, reaches the previous hook unchanged.
pub(super) fn install_quiet_hook() {
    // Setting a hook from a thread that is unwinding panics (and aborts): a
    // first call made from a destructor during a panic installs it later.
    if QUIET_HOOK.is_completed() || std::thread::panicking() {
        return;
    }
    QUIET_HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let recovered = QUIET.get()
                && torch_panic_text(info.payload()).is_some_and(|text| classify(text).falls_back());
            if !recovered {
                previous(info);
            }
        }));
    });
}

/// Restores the enclosing quiet flag, also when unwinding.
struct QuietReset(bool);

impl Drop for QuietReset {
    fn drop(&mut self) {
        QUIET.set(self.0);
    }
}

/// Runs `attempt` with the quiet hook on when `quiet` (a device attempt of a
/// call that falls back), restoring the enclosing setting afterwards, also
/// when unwinding.
pub(super) fn quietly<T>(quiet: bool, attempt: impl FnOnce() -> T) -> T {
    let _reset = QuietReset(QUIET.replace(quiet));
    attempt()
}
