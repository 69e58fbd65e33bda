//! Many futures at once, for as long as a limit allows.

use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

/// What [`gather_with_timeout`] got: the outputs that came in time, and the
/// futures it dropped at the limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gathered<T> {
    /// `(index in the input, output)`, in the order they completed.
    pub done: Vec<(usize, T)>,
    /// The indices of the futures that had not completed, ascending.
    pub pending: Vec<usize>,
}

/// Runs `futures` concurrently, in this task, until all complete or `limit`
/// passes; those still pending then are dropped (cancelled).
///
/// The limit nests in any enclosing deadline budget, as a timed call does:
/// the earlier deadline wins, and the futures see it as their budget.
///
/// ```
/// use std::time::Duration;
/// use resilience_runtime::task::gather_with_timeout;
/// use tokio::time::sleep;
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let replies = [10, 300, 20].map(|ms| async move {
///     sleep(Duration::from_millis(ms)).await;
///     ms
/// });
/// let gathered = gather_with_timeout(replies, Duration::from_millis(100)).await;
/// assert_eq!(gathered.done, [(0, 10), (2, 20)]);
/// assert_eq!(gathered.pending, [1]);
/// # }
/// ```
pub async fn gather_with_timeout<I>(
    futures: I,
    limit: Duration,
) -> Gathered<<I::Item as Future>::Output>
where
    I: IntoIterator,
    I::Item: Future,
{
    let mut running: Vec<Option<Pin<Box<I::Item>>>> =
        futures.into_iter().map(|f| Some(Box::pin(f))).collect();
    let mut done = Vec::with_capacity(running.len());
    let all = poll_fn(|cx| {
        let mut left = false;
        for (index, slot) in running.iter_mut().enumerate() {
            let Some(future) = slot else { continue };
            match future.as_mut().poll(cx) {
                Poll::Ready(output) => {
                    done.push((index, output));
                    *slot = None;
                }
                Poll::Pending => left = true,
            }
        }
        if left { Poll::Pending } else { Poll::Ready(()) }
    });
    // Whatever the outcome, what completed is in `done`.
    let _ = crate::deadline::within(limit, all).await;
    let pending = running
        .iter()
        .enumerate()
        .filter_map(|(index, slot)| slot.as_ref().map(|_| index))
        .collect();
    Gathered { done, pending }
}
