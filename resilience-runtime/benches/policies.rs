//! The success path of `#[retry]` and `#[circuit_breaker]` against a bare
//! call and against `backon` (retry) and `failsafe` (breaker) doing the same
//! work; then every attribute switched off by the kill switch.

mod support;

use std::hint::black_box;
use std::io;
use std::sync::LazyLock;

use backon::{ExponentialBuilder, Retryable};
use criterion::{Criterion, criterion_group, criterion_main};
use failsafe::futures::CircuitBreaker as _;
use resilience_runtime::{circuit_breaker, policy, retry, timeout_async};
use support::per_call;

async fn bare(x: u64) -> io::Result<u64> {
    Ok(black_box(x) + 1)
}

#[retry]
async fn retried(x: u64) -> io::Result<u64> {
    Ok(black_box(x) + 1)
}

async fn backon_retried(x: u64) -> io::Result<u64> {
    (|| async move { Ok(black_box(x) + 1) })
        .retry(ExponentialBuilder::default())
        .await
}

#[circuit_breaker]
async fn guarded(x: u64) -> io::Result<u64> {
    Ok(black_box(x) + 1)
}

type Failsafe = failsafe::StateMachine<
    failsafe::failure_policy::OrElse<
        failsafe::failure_policy::SuccessRateOverTimeWindow<failsafe::backoff::EqualJittered>,
        failsafe::failure_policy::ConsecutiveFailures<failsafe::backoff::EqualJittered>,
    >,
    (),
>;

static FAILSAFE: LazyLock<Failsafe> = LazyLock::new(|| failsafe::Config::new().build());

async fn failsafe_guarded(x: u64) -> io::Result<u64> {
    FAILSAFE
        .call(async move { Ok::<_, io::Error>(black_box(x) + 1) })
        .await
        .map_err(|e| match e {
            failsafe::Error::Inner(e) => e,
            failsafe::Error::Rejected => io::Error::other("rejected"),
        })
}

#[timeout_async(5)]
#[retry]
#[circuit_breaker]
async fn all_three(x: u64) -> io::Result<u64> {
    Ok(black_box(x) + 1)
}

fn benches(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();

    let mut retry_group = c.benchmark_group("retry_success");
    retry_group.bench_function("bare", |b| b.iter_custom(per_call(&runtime, bare)));
    retry_group.bench_function("annotated", |b| b.iter_custom(per_call(&runtime, retried)));
    retry_group.bench_function("backon", |b| {
        b.iter_custom(per_call(&runtime, backon_retried))
    });
    retry_group.finish();

    let mut breaker_group = c.benchmark_group("breaker_closed");
    breaker_group.bench_function("bare", |b| b.iter_custom(per_call(&runtime, bare)));
    breaker_group.bench_function("annotated", |b| b.iter_custom(per_call(&runtime, guarded)));
    breaker_group.bench_function("failsafe", |b| {
        b.iter_custom(per_call(&runtime, failsafe_guarded))
    });
    breaker_group.finish();

    // Everything off, as an operator would do in an incident.
    let off = std::env::temp_dir().join(format!("resilience-bench-{}.toml", std::process::id()));
    std::fs::write(&off, "enabled = false\n").unwrap();
    policy::load(&off).unwrap();
    let mut off_group = c.benchmark_group("kill_switched");
    off_group.bench_function("bare", |b| b.iter_custom(per_call(&runtime, bare)));
    off_group.bench_function("retry", |b| b.iter_custom(per_call(&runtime, retried)));
    off_group.bench_function("breaker", |b| b.iter_custom(per_call(&runtime, guarded)));
    off_group.bench_function("timeout_retry_breaker", |b| {
        b.iter_custom(per_call(&runtime, all_three))
    });
    off_group.finish();
    policy::clear();
}

criterion_group!(policies, benches);
criterion_main!(policies);
