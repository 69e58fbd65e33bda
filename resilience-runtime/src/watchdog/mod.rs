//! What is in flight, and what is stuck: frames of annotated calls, a
//! watchdog thread that reports blocking polls and stalled calls, and
//! escalation of failures that keep happening.
//!
//! Every in-flight call of an annotated `async fn` is a *frame*: its
//! function, when it started, the deadline in force and whose it is, the
//! attempt under a `#[retry]`, and whether it is being polled or waiting.
//! A frame links to the frame it was called inside, so each task has a
//! chain such as `orders::place_order > pricing::fetch_price > feed::connect`.
//!
//! Frames are tracked only while a [`Watchdog`] runs or [`track`] is on;
//! otherwise a call pays one relaxed load to know. A tracked frame takes a
//! slot of a table allocated once per 64 frames, never a per-call
//! allocation.
//!
//! ```
//! use resilience_runtime::{timeout_async, watchdog, TimeoutError};
//!
//! #[timeout_async("1s")]
//! async fn fetch_price() -> Result<String, TimeoutError> {
//!     // The innermost frame in flight is this call.
//!     Ok(watchdog::in_flight().last().unwrap().chain().to_owned())
//! }
//!
//! #[timeout_async("2s")]
//! async fn place_order() -> Result<String, TimeoutError> {
//!     fetch_price().await
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! watchdog::track(true);
//! let chain = place_order().await.unwrap();
//! let names: Vec<_> = chain.split(" > ").collect();
//! assert!(names[0].ends_with("::place_order") && names[1].ends_with("::fetch_price"));
//! assert!(watchdog::in_flight().is_empty());
//! # }
//! ```

pub(crate) mod escalation;
pub(crate) mod frames;
mod scan;

use std::cell::Cell;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crate::attention::{self, Reason};
use crate::monitor::clock;
use crate::registry::{self, Function};

pub(crate) use escalation::Cause;
pub use escalation::{Escalation, on_escalation};
pub use scan::{Config, ConfigError, Watchdog, start, try_start};

/// Whether `track(true)` is in force.
static TRACK: AtomicBool = AtomicBool::new(false);
/// Watchdogs running.
static WATCHDOGS: AtomicUsize = AtomicUsize::new(0);
static REFRESH: Mutex<()> = Mutex::new(());

/// Turns frame tracking on or off for calls that start afterwards, whether
/// or not a watchdog runs (a running watchdog tracks too). With tracking
/// on, [`in_flight`] lists calls and a [`TimeoutError`](crate::TimeoutError)'s
/// report names the calls that were in flight inside its deadline.
pub fn track(on: bool) {
    TRACK.store(on, Relaxed);
    refresh();
}

/// Whether frames are tracked now.
pub fn tracking() -> bool {
    attention::has(attention::word(), Reason::Frames)
}

fn watchdogs(delta: isize) {
    if delta > 0 {
        WATCHDOGS.fetch_add(1, Relaxed);
    } else {
        WATCHDOGS.fetch_sub(1, Relaxed);
    }
    refresh();
}

fn refresh() {
    let _serial = REFRESH.lock().unwrap_or_else(PoisonError::into_inner);
    let on = TRACK.load(Relaxed) || WATCHDOGS.load(Relaxed) > 0;
    attention::set(Reason::Frames, on);
}

thread_local! {
    // The parent link of the tracked frame being polled on this thread
    // (see `frames::parent_link`); 0 for none.
    static CURRENT: Cell<u64> = const { Cell::new(0) };
    static THREAD: Cell<u32> = const { Cell::new(0) };
}

/// The frame being polled on this thread, as a parent link.
pub(crate) fn current() -> u64 {
    CURRENT.get()
}

/// Makes `link` the frame being polled on this thread until the guard drops.
#[inline]
pub(crate) fn enter(link: u64) -> Entered {
    Entered(CURRENT.replace(link))
}

/// The frame polled before [`enter`], put back on drop (also in a panic).
pub(crate) struct Entered(u64);

impl Drop for Entered {
    #[inline]
    fn drop(&mut self) {
        CURRENT.set(self.0);
    }
}

/// The chain of the tracked frame being polled on this thread, if any.
pub(crate) fn current_chain() -> Option<String> {
    let link = current();
    if link == 0 {
        return None;
    }
    let snapshot = Snapshot::take();
    let i = snapshot.live.iter().position(|frame| frame.link == link)?;
    Some(snapshot.frame(i).chain)
}

/// The names of threads that polled a tracked frame, each once: threads
/// come and go (`spawn_blocking`), names repeat.
static THREADS: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// This thread's name's id in [`THREADS`], from 1.
#[inline]
pub(crate) fn thread_id() -> u32 {
    match THREAD.get() {
        0 => thread_id_slow(),
        id => id,
    }
}

#[cold]
fn thread_id_slow() -> u32 {
    let name = std::thread::current()
        .name()
        .unwrap_or("an unnamed thread")
        .to_owned();
    let mut threads = THREADS.lock().unwrap_or_else(PoisonError::into_inner);
    let index = match threads.iter().position(|known| *known == name) {
        Some(index) => index,
        None => {
            threads.push(name);
            threads.len() - 1
        }
    };
    let id = u32::try_from(index + 1).unwrap_or(u32::MAX);
    THREAD.set(id);
    id
}

fn thread_name(id: u32) -> Option<String> {
    let threads = THREADS.lock().unwrap_or_else(PoisonError::into_inner);
    threads
        .get(usize::try_from(id).ok()?.checked_sub(1)?)
        .cloned()
}

/// One in-flight call of an annotated function, as [`in_flight`] saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    function: &'static str,
    chain: String,
    depth: usize,
    elapsed: Duration,
    limit: Option<Duration>,
    owner: Option<&'static str>,
    attempt: Option<u32>,
    polling_for: Option<Duration>,
    waiting_for: Duration,
    polls: u32,
    longest_poll: Duration,
    thread: Option<String>,
}

impl Frame {
    /// The function's path, as in errors and policy keys.
    pub fn function(&self) -> &'static str {
        self.function
    }

    /// The annotated calls this one runs inside, outermost first, and this
    /// one: `orders::place_order > pricing::fetch_price`.
    pub fn chain(&self) -> &str {
        &self.chain
    }

    /// How long the call has run.
    pub fn elapsed(&self) -> Duration {
        self.elapsed
    }

    /// The time from the call's start to the deadline in force over it (its
    /// own, or what an enclosing one left), if any.
    pub fn limit(&self) -> Option<Duration> {
        self.limit
    }

    /// The function whose deadline that is.
    pub fn deadline_owner(&self) -> Option<&'static str> {
        self.owner
    }

    /// The attempt, from 1, when a `#[retry]` of the same function runs it.
    pub fn attempt(&self) -> Option<u32> {
        self.attempt
    }

    /// How long the poll now running has run: `Some` while a thread is
    /// inside the call, `None` while it waits.
    pub fn polling_for(&self) -> Option<Duration> {
        self.polling_for
    }

    /// How long the call has waited since its last poll (zero while polled).
    pub fn waiting_for(&self) -> Duration {
        self.waiting_for
    }

    /// Polls so far.
    pub fn polls(&self) -> u32 {
        self.polls
    }

    /// The longest poll that has ended.
    pub fn longest_poll(&self) -> Duration {
        self.longest_poll
    }

    /// The name of the thread running the poll now, or that ran the last
    /// one.
    pub fn thread(&self) -> Option<&str> {
        self.thread.as_deref()
    }

    /// How many annotated calls this one runs inside.
    pub fn depth(&self) -> usize {
        self.depth
    }

    fn state(&self) -> State {
        match self.polling_for {
            Some(polling) => State::Polling(polling),
            None => State::Waiting(self.waiting_for),
        }
    }
}

/// A frame's poll state, as reports print it.
enum State {
    Polling(Duration),
    Waiting(Duration),
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            State::Polling(d) => write!(f, "polling for {}", Short(*d)),
            State::Waiting(d) => write!(f, "waiting {}", Short(*d)),
        }
    }
}

/// A duration as reports print it: `87 ms`, `2.3 s`.
pub(crate) struct Short(pub(crate) Duration);

impl fmt::Display for Short {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.0;
        if d < Duration::from_millis(1) {
            write!(f, "{} µs", d.as_micros())
        } else if d < Duration::from_secs(1) {
            write!(f, "{} ms", d.as_millis())
        } else {
            write!(f, "{:.1} s", d.as_secs_f64())
        }
    }
}

impl fmt::Display for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {}, {}",
            self.function,
            Short(self.elapsed),
            self.state()
        )?;
        if let Some(limit) = self.limit {
            write!(f, ", limit {}", Short(limit))?;
            if let Some(owner) = self.owner.filter(|owner| *owner != self.function) {
                write!(f, " (`{owner}`'s)")?;
            }
        }
        if let Some(attempt) = self.attempt {
            write!(f, ", attempt {attempt}")?;
        }
        Ok(())
    }
}

/// The frames that were in flight inside a deadline when it fired,
/// outermost first; displayed as their chain (`a > b > c`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Chain(Arc<[Frame]>);

impl Chain {
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// One line per frame, each after `prefix`, indented by depth.
    pub(crate) fn lines(&self, f: &mut fmt::Formatter<'_>, prefix: &str) -> fmt::Result {
        let top = self.0.first().map_or(0, |frame| frame.depth);
        for frame in self.0.iter() {
            let indent = 2 * (frame.depth - top);
            write!(f, "{prefix}{:indent$}{frame}", "")?;
        }
        Ok(())
    }
}

impl fmt::Display for Chain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.last() {
            Some(frame) => f.write_str(&frame.chain),
            None => Ok(()),
        }
    }
}

/// Every tracked in-flight call of an annotated function: each chain's
/// frames outermost first, chains in the order they started.
///
/// It sees the calls that started while frames were tracked (see
/// [`track`]). It reads the frame table without stopping any call: one
/// pass over the slots in use, and one lock for function and thread names.
pub fn in_flight() -> Vec<Frame> {
    let snapshot = Snapshot::take();
    let mut order = Vec::with_capacity(snapshot.live.len());
    for root in snapshot.roots(|i| snapshot.parent(i).is_none()) {
        snapshot.walk(root, &mut order);
    }
    order.into_iter().map(|i| snapshot.frame(i)).collect()
}

/// The frames in flight under the deadline `scope` (see `deadline::Scope`)
/// that just fired, while frames are tracked: the outermost calls made
/// under it, and what they called.
#[cold]
pub(crate) fn chain_inside(scope: usize) -> Option<Chain> {
    if !tracking() {
        return None;
    }
    let snapshot = Snapshot::take();
    let scope = scope as u64;
    let under = |i: usize| snapshot.live[i].fixed.scope == scope;
    let mut order = Vec::new();
    for root in snapshot.roots(|i| under(i) && snapshot.parent(i).is_none_or(|p| !under(p))) {
        snapshot.walk(root, &mut order);
    }
    Some(Chain(
        order.into_iter().map(|i| snapshot.frame(i)).collect(),
    ))
}

/// The live frames at one moment.
pub(crate) struct Snapshot {
    live: Vec<Live>,
    /// Each frame's parent, if it is live.
    parents: Vec<Option<usize>>,
    /// Each frame's children, oldest first.
    children: Vec<Vec<usize>>,
    now: u64,
}

struct Live {
    link: u64,
    fixed: frames::Fixed,
    polls: frames::Polls,
}

impl Snapshot {
    pub(crate) fn take() -> Self {
        let now = clock::now();
        let mut live: Vec<Live> = frames::live()
            .into_iter()
            .map(|(index, seq, fixed, polls)| Live {
                link: frames::parent_link(index, seq),
                fixed,
                polls,
            })
            .collect();
        live.sort_by_key(|frame| frame.link);
        let index_of = |link: u64| live.binary_search_by_key(&link, |frame| frame.link).ok();
        let parents: Vec<_> = live
            .iter()
            .map(|frame| index_of(frame.fixed.parent))
            .collect();
        let mut children = vec![Vec::new(); live.len()];
        for (child, parent) in parents.iter().enumerate() {
            if let Some(parent) = parent {
                children[*parent].push(child);
            }
        }
        for siblings in &mut children {
            siblings.sort_by_key(|&c| live[c].fixed.start);
        }
        Self {
            live,
            parents,
            children,
            now,
        }
    }

    fn parent(&self, i: usize) -> Option<usize> {
        self.parents[i]
    }

    fn function_of(&self, i: usize) -> Option<&'static Function> {
        registry::by_id(self.live[i].fixed.function)
    }

    /// The frames `root` picks, oldest first.
    fn roots(&self, root: impl Fn(usize) -> bool) -> Vec<usize> {
        let mut roots: Vec<usize> = (0..self.live.len()).filter(|&i| root(i)).collect();
        roots.sort_by_key(|&i| self.live[i].fixed.start);
        roots
    }

    /// `i` and the frames under it, depth first, oldest first.
    fn walk(&self, i: usize, order: &mut Vec<usize>) {
        order.push(i);
        for &child in &self.children[i] {
            self.walk(child, order);
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.live.len()
    }

    pub(crate) fn link(&self, i: usize) -> u64 {
        self.live[i].link
    }

    pub(crate) fn children(&self, i: usize) -> &[usize] {
        &self.children[i]
    }

    /// How long the frame `i`'s call has run.
    pub(crate) fn elapsed(&self, i: usize) -> Duration {
        Duration::from_nanos(clock::nanos(self.live[i].fixed.start, self.now))
    }

    /// Its limit, if a deadline is over it.
    pub(crate) fn limit(&self, i: usize) -> Option<Duration> {
        let limit = self.live[i].fixed.limit;
        (limit != 0).then(|| Duration::from_nanos(limit))
    }

    /// How long the poll now running in frame `i` has run, if one is.
    pub(crate) fn polling_for(&self, i: usize) -> Option<Duration> {
        let since = self.live[i].polls.polling_since?;
        Some(Duration::from_nanos(clock::nanos(since, self.now)))
    }

    pub(crate) fn frame(&self, i: usize) -> Frame {
        let Live { fixed, polls, .. } = &self.live[i];
        let since = |reading: u64| Duration::from_nanos(clock::nanos(reading, self.now));
        let mut path = vec![i];
        while let Some(parent) = self.parent(*path.last().expect("not empty")) {
            if path.len() > 64 {
                break;
            }
            path.push(parent);
        }
        let name = |i: usize| self.function_of(i).map_or("?", Function::path);
        let chain = path
            .iter()
            .rev()
            .map(|&i| name(i))
            .collect::<Vec<_>>()
            .join(" > ");
        Frame {
            function: name(i),
            chain,
            depth: path.len() - 1,
            elapsed: self.elapsed(i),
            limit: self.limit(i),
            owner: registry::by_id(fixed.owner).map(Function::path),
            attempt: (fixed.attempt != 0).then_some(fixed.attempt),
            polling_for: self.polling_for(i),
            waiting_for: match polls.polling_since {
                Some(_) => Duration::ZERO,
                None => since(polls.waiting_since),
            },
            polls: polls.count,
            longest_poll: Duration::from_nanos(polls.longest),
            thread: thread_name(polls.thread),
        }
    }
}
