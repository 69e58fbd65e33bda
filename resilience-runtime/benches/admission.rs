//! Admission control and adaptive deadlines on their success path, side by
//! side with what a user would write instead: an admitted `#[rate_limit]`
//! call against a bare `governor` check, an uncontended `#[bulkhead]` call
//! against a bare `Semaphore::acquire`, an adaptive `#[timeout_async]`
//! against a fixed one. Each group also has the cost every annotated
//! function pays whatever its layers: its record in the latency monitor.

mod support;

use std::hint::black_box;
use std::io;
use std::num::NonZeroU32;
use std::sync::LazyLock;

use criterion::{Criterion, criterion_group, criterion_main};
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota};
use resilience_runtime::{
    BulkheadFullError, RateLimitedError, bulkhead, monitor, rate_limit, timeout_async,
};
use support::per_call;
use tokio::sync::Semaphore;

/// A quota no benchmark exhausts.
fn quota() -> Quota {
    Quota::per_second(NonZeroU32::MAX).allow_burst(NonZeroU32::new(1_000_000).unwrap())
}

static GOVERNOR: LazyLock<DefaultDirectRateLimiter> =
    LazyLock::new(|| DefaultDirectRateLimiter::direct(quota()));

static GOVERNOR_KEYED: LazyLock<DefaultKeyedRateLimiter<&'static str>> =
    LazyLock::new(|| DefaultKeyedRateLimiter::hashmap(quota()));

static SEMAPHORE: Semaphore = Semaphore::const_new(10);

async fn bare(x: u64) -> io::Result<u64> {
    Ok(black_box(x) + 1)
}

/// What every annotated function does besides its layers: its call is
/// recorded in the latency monitor (two clock reads and a few atomic adds).
#[monitor]
async fn monitored(x: u64) -> io::Result<u64> {
    Ok(black_box(x) + 1)
}

async fn governor_checked(x: u64) -> io::Result<u64> {
    GOVERNOR
        .check()
        .map_err(|_| io::Error::from(io::ErrorKind::QuotaExceeded))?;
    Ok(black_box(x) + 1)
}

#[rate_limit(per_second = 4_294_967_295, burst = 1_000_000)]
async fn limited(x: u64) -> Result<u64, RateLimitedError> {
    Ok(black_box(x) + 1)
}

async fn governor_keyed(x: u64) -> io::Result<u64> {
    GOVERNOR_KEYED
        .check_key(&black_box("alice"))
        .map_err(|_| io::Error::from(io::ErrorKind::QuotaExceeded))?;
    Ok(black_box(x) + 1)
}

#[rate_limit(per_second = 4_294_967_295, burst = 1_000_000, key = user)]
async fn limited_by_user(user: &str, x: u64) -> Result<u64, RateLimitedError> {
    Ok(black_box(x) + user.len() as u64)
}

async fn semaphore_acquired(x: u64) -> io::Result<u64> {
    let _permit = SEMAPHORE.acquire().await.map_err(io::Error::other)?;
    Ok(black_box(x) + 1)
}

#[bulkhead(max_concurrent = 10)]
async fn bulkheaded(x: u64) -> Result<u64, BulkheadFullError> {
    Ok(black_box(x) + 1)
}

#[timeout_async(5)]
async fn fixed(x: u64) -> io::Result<u64> {
    Ok(black_box(x) + 1)
}

#[timeout_async(5, adaptive)]
async fn adaptive(x: u64) -> io::Result<u64> {
    Ok(black_box(x) + 1)
}

fn benches(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();

    let mut rate = c.benchmark_group("rate_limit_admitted");
    rate.bench_function("bare", |b| b.iter_custom(per_call(&runtime, bare)));
    rate.bench_function("monitor_only", |b| {
        b.iter_custom(per_call(&runtime, monitored))
    });
    rate.bench_function("governor", |b| {
        b.iter_custom(per_call(&runtime, governor_checked))
    });
    rate.bench_function("annotated", |b| b.iter_custom(per_call(&runtime, limited)));
    rate.bench_function("governor_keyed", |b| {
        b.iter_custom(per_call(&runtime, governor_keyed))
    });
    rate.bench_function("annotated_keyed", |b| {
        b.iter_custom(per_call(&runtime, |x| {
            limited_by_user(black_box("alice"), x)
        }))
    });
    rate.finish();

    let mut places = c.benchmark_group("bulkhead_uncontended");
    places.bench_function("bare", |b| b.iter_custom(per_call(&runtime, bare)));
    places.bench_function("monitor_only", |b| {
        b.iter_custom(per_call(&runtime, monitored))
    });
    places.bench_function("semaphore", |b| {
        b.iter_custom(per_call(&runtime, semaphore_acquired))
    });
    places.bench_function("annotated", |b| {
        b.iter_custom(per_call(&runtime, bulkheaded))
    });
    places.finish();

    let mut deadline = c.benchmark_group("adaptive_timeout_ready");
    deadline.bench_function("fixed", |b| b.iter_custom(per_call(&runtime, fixed)));
    deadline.bench_function("adaptive", |b| b.iter_custom(per_call(&runtime, adaptive)));
    deadline.finish();
}

criterion_group!(admission, benches);
criterion_main!(admission);
