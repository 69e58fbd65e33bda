//! Shared by the async benchmarks.

use std::future::Future;
use std::hint::black_box;
use std::time::{Duration, Instant};

use tokio::runtime::Runtime;

/// A criterion `iter_custom` routine: `iters` calls inside one `block_on`, so
/// that the runtime's own cost is not part of the figures.
pub(crate) fn per_call<F, Fut, E>(runtime: &Runtime, call: F) -> impl FnMut(u64) -> Duration
where
    F: Fn(u64) -> Fut + Copy,
    Fut: Future<Output = Result<u64, E>>,
    E: std::fmt::Debug,
{
    move |iters| {
        runtime.block_on(async move {
            let start = Instant::now();
            for i in 0..iters {
                black_box(call(i).await.unwrap());
            }
            start.elapsed()
        })
    }
}
