//! Escalation: a failure that keeps happening to one function is an
//! incident. The policy file says how many within how long
//! (`escalate = { after = 5, within = "1m" }`); the count that reaches it
//! escalates once per window: an ERROR event, a counter, and a call of
//! every handler registered with [`on_escalation`].

use std::collections::{HashMap, VecDeque};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use crate::registry::Function;

/// What failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Cause {
    Timeout,
    BreakerOpened,
    #[cfg_attr(not(feature = "tch"), allow(dead_code))]
    DeviceFault,
}

impl Cause {
    fn label(self) -> &'static str {
        match self {
            Cause::Timeout => "timeout",
            Cause::BreakerOpened => "breaker_opened",
            Cause::DeviceFault => "device_fault",
        }
    }
}

/// One escalation, as handlers see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Escalation {
    function: &'static str,
    cause: &'static str,
    count: u32,
    window: Duration,
    last_error: String,
}

impl Escalation {
    /// The function it happened to.
    pub fn function(&self) -> &'static str {
        self.function
    }

    /// What kept happening: `timeout`, `breaker_opened` or `device_fault`.
    pub fn cause(&self) -> &'static str {
        self.cause
    }

    /// How many times within [`window`](Self::window).
    pub fn count(&self) -> u32 {
        self.count
    }

    /// The window of the count.
    pub fn window(&self) -> Duration {
        self.window
    }

    /// The last failure, as its error displays; for a timeout, its report
    /// (`{:#}`), with the calls that were in flight when frames are tracked.
    pub fn last_error(&self) -> &str {
        &self.last_error
    }
}

type Handler = Arc<dyn Fn(&Escalation) + Send + Sync>;

static HANDLERS: Mutex<Vec<Handler>> = Mutex::new(Vec::new());

/// Calls `handler` on every escalation from now on: a pager, a chat hook.
///
/// Handlers run one after the other on a thread of their own, never on the
/// failing call's; a handler that panics is logged and the others still run.
pub fn on_escalation(handler: impl Fn(&Escalation) + Send + Sync + 'static) {
    let mut handlers = HANDLERS.lock().unwrap_or_else(PoisonError::into_inner);
    handlers.push(Arc::new(handler));
}

/// Failures of one function and cause within the window.
struct Count {
    times: VecDeque<Instant>,
    /// When this window's escalation was made.
    escalated: Option<Instant>,
}

static COUNTS: Mutex<Option<HashMap<(&'static str, Cause), Count>>> = Mutex::new(None);

/// Counts one failure of `function`, and escalates when the policy in
/// force says it is one too many; `error` renders the failure and the
/// chain of calls in flight (empty when not known).
#[cold]
pub(crate) fn record(
    function: &'static Function,
    cause: Cause,
    error: impl FnOnce() -> (String, String),
) {
    if !crate::policy::state::loaded() {
        return;
    }
    let mut keys = vec![Some(function.path())];
    keys.extend(function.layers().iter().map(|layer| layer.keys()[1]));
    record_keyed(function.path(), &keys, cause, error);
}

/// [`record`] for a breaker, known by its name: a function's path, or the
/// `name = "…"` of a shared breaker.
#[cold]
pub(crate) fn record_breaker(breaker: &'static str, error: impl FnOnce() -> String) {
    record_keyed(breaker, &[Some(breaker)], Cause::BreakerOpened, || {
        (error(), String::new())
    });
}

fn record_keyed(
    function: &'static str,
    keys: &[Option<&'static str>],
    cause: Cause,
    error: impl FnOnce() -> (String, String),
) {
    let Some((after, within)) = crate::policy::state::escalation(keys) else {
        return;
    };
    let now = Instant::now();
    let count = {
        let mut counts = COUNTS.lock().unwrap_or_else(PoisonError::into_inner);
        let count = counts
            .get_or_insert_with(HashMap::new)
            .entry((function, cause))
            .or_insert_with(|| Count {
                times: VecDeque::new(),
                escalated: None,
            });
        while count
            .times
            .front()
            .is_some_and(|&t| now.saturating_duration_since(t) >= within)
        {
            count.times.pop_front();
        }
        count.times.push_back(now);
        let n = count.times.len();
        let quiet = count
            .escalated
            .is_some_and(|at| now.saturating_duration_since(at) < within);
        if n < after as usize || quiet {
            return;
        }
        count.escalated = Some(now);
        u32::try_from(n).unwrap_or(u32::MAX)
    };
    let (last_error, chain) = error();
    let escalation = Escalation {
        function,
        cause: cause.label(),
        count,
        window: within,
        last_error,
    };
    tracing::error!(
        function = escalation.function,
        cause = escalation.cause,
        count,
        window_ms = crate::events::millis(within),
        last_error = escalation.last_error.as_str(),
        chain = chain.as_str(),
        "escalation: {} {} within {:?}",
        count,
        cause.label(),
        within
    );
    #[cfg(feature = "metrics")]
    crate::telemetry::escalation(escalation.function, escalation.cause);
    notify(escalation);
}

/// Hands `escalation` to the handlers' thread.
fn notify(escalation: Escalation) {
    static QUEUE: OnceLock<Mutex<Sender<Escalation>>> = OnceLock::new();
    let queue = QUEUE.get_or_init(|| {
        let (send, receive) = mpsc::channel::<Escalation>();
        std::thread::Builder::new()
            .name("resilience-escalation".into())
            .spawn(move || {
                for escalation in receive {
                    let handlers = HANDLERS
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .clone();
                    for handler in handlers {
                        if catch_unwind(AssertUnwindSafe(|| handler(&escalation))).is_err() {
                            tracing::error!(
                                function = escalation.function,
                                "an escalation handler panicked; the other handlers still run"
                            );
                        }
                    }
                }
            })
            .expect("the escalation thread starts");
        Mutex::new(send)
    });
    let _ = queue
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .send(escalation);
}
