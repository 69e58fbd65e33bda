//! `#[timeout_async]` against a hand-written `tokio::time::timeout` and a bare
//! call. Each sample runs `iters` calls inside one `block_on`, so the runtime's
//! own cost is not part of the figures. The `tracked` cases run with frames
//! tracked for the watchdog (`watchdog::track(true)`).

mod support;

use std::hint::black_box;
use std::io;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use resilience_runtime::{timeout_async, watchdog};
use support::per_call;

const LIMIT: Duration = Duration::from_secs(5);

async fn bare_ready(x: u64) -> io::Result<u64> {
    Ok(black_box(x) + 1)
}

async fn hand_written_ready(x: u64) -> io::Result<u64> {
    match tokio::time::timeout(LIMIT, async move { Ok(black_box(x) + 1) }).await {
        Ok(output) => output,
        Err(elapsed) => Err(io::Error::new(io::ErrorKind::TimedOut, elapsed)),
    }
}

#[timeout_async(5)]
async fn annotated_ready(x: u64) -> io::Result<u64> {
    Ok(black_box(x) + 1)
}

async fn bare_yield(x: u64) -> io::Result<u64> {
    tokio::task::yield_now().await;
    Ok(black_box(x) + 1)
}

async fn hand_written_yield(x: u64) -> io::Result<u64> {
    let body = async move {
        tokio::task::yield_now().await;
        Ok(black_box(x) + 1)
    };
    match tokio::time::timeout(LIMIT, body).await {
        Ok(output) => output,
        Err(elapsed) => Err(io::Error::new(io::ErrorKind::TimedOut, elapsed)),
    }
}

#[timeout_async(5)]
async fn annotated_yield(x: u64) -> io::Result<u64> {
    tokio::task::yield_now().await;
    Ok(black_box(x) + 1)
}

#[timeout_async(5)]
async fn level_one(x: u64) -> io::Result<u64> {
    level_two(x).await
}

#[timeout_async(4)]
async fn level_two(x: u64) -> io::Result<u64> {
    level_three(x).await
}

#[timeout_async(3)]
async fn level_three(x: u64) -> io::Result<u64> {
    Ok(black_box(x) + 1)
}

async fn hand_written_nested(x: u64) -> io::Result<u64> {
    let three = tokio::time::timeout(Duration::from_secs(3), async move { Ok(black_box(x) + 1) });
    let two = tokio::time::timeout(Duration::from_secs(4), async move { three.await? });
    match tokio::time::timeout(LIMIT, async move { two.await? }).await {
        Ok(output) => output,
        Err(elapsed) => Err(io::Error::new(io::ErrorKind::TimedOut, elapsed)),
    }
}

/// `routine` with frames tracked while it runs.
fn tracked(mut routine: impl FnMut(u64) -> Duration) -> impl FnMut(u64) -> Duration {
    move |iters| {
        watchdog::track(true);
        let elapsed = routine(iters);
        watchdog::track(false);
        elapsed
    }
}

fn benches(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();

    let mut ready = c.benchmark_group("ready");
    ready.bench_function("bare", |b| b.iter_custom(per_call(&runtime, bare_ready)));
    ready.bench_function("hand_written", |b| {
        b.iter_custom(per_call(&runtime, hand_written_ready))
    });
    ready.bench_function("annotated", |b| {
        b.iter_custom(per_call(&runtime, annotated_ready))
    });
    ready.bench_function("annotated_tracked", |b| {
        b.iter_custom(tracked(per_call(&runtime, annotated_ready)))
    });
    ready.finish();

    let mut yields = c.benchmark_group("yield_once");
    yields.bench_function("bare", |b| b.iter_custom(per_call(&runtime, bare_yield)));
    yields.bench_function("hand_written", |b| {
        b.iter_custom(per_call(&runtime, hand_written_yield))
    });
    yields.bench_function("annotated", |b| {
        b.iter_custom(per_call(&runtime, annotated_yield))
    });
    yields.bench_function("annotated_tracked", |b| {
        b.iter_custom(tracked(per_call(&runtime, annotated_yield)))
    });
    yields.finish();

    let mut nested = c.benchmark_group("nested_three_levels");
    nested.bench_function("hand_written", |b| {
        b.iter_custom(per_call(&runtime, hand_written_nested))
    });
    nested.bench_function("annotated", |b| {
        b.iter_custom(per_call(&runtime, level_one))
    });
    nested.bench_function("annotated_tracked", |b| {
        b.iter_custom(tracked(per_call(&runtime, level_one)))
    });
    nested.finish();
}

criterion_group!(timeout, benches);
criterion_main!(timeout);
