//! What observability costs on the success path: each attribute and a bare
//! call with no metrics recorder installed, then the same calls with the
//! Prometheus recorder installed (every call updates its cached handles).
//! The latency monitor records every call in both; in between, the same
//! calls with the monitor switched off by the kill switch.

mod support;

use std::hint::black_box;
use std::io;

use criterion::{Criterion, criterion_group, criterion_main};
use resilience_runtime::{circuit_breaker, monitor, retry, timeout_async};
use support::per_call;

async fn bare(x: u64) -> io::Result<u64> {
    Ok(black_box(x) + 1)
}

#[timeout_async(5)]
async fn timed(x: u64) -> io::Result<u64> {
    Ok(black_box(x) + 1)
}

#[retry]
async fn retried(x: u64) -> io::Result<u64> {
    Ok(black_box(x) + 1)
}

#[circuit_breaker]
async fn guarded(x: u64) -> io::Result<u64> {
    Ok(black_box(x) + 1)
}

#[monitor]
async fn measured(x: u64) -> io::Result<u64> {
    Ok(black_box(x) + 1)
}

#[timeout_async(5)]
#[retry]
#[circuit_breaker]
async fn all_three(x: u64) -> io::Result<u64> {
    Ok(black_box(x) + 1)
}

fn group(c: &mut Criterion, name: &str, runtime: &tokio::runtime::Runtime) {
    let mut group = c.benchmark_group(name);
    group.bench_function("bare", |b| b.iter_custom(per_call(runtime, bare)));
    group.bench_function("timeout", |b| b.iter_custom(per_call(runtime, timed)));
    group.bench_function("retry", |b| b.iter_custom(per_call(runtime, retried)));
    group.bench_function("breaker", |b| b.iter_custom(per_call(runtime, guarded)));
    group.bench_function("monitor", |b| b.iter_custom(per_call(runtime, measured)));
    group.bench_function("timeout_retry_breaker", |b| {
        b.iter_custom(per_call(runtime, all_three))
    });
    group.finish();
}

fn benches(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    group(c, "no_recorder", &runtime);
    let off = std::env::temp_dir().join(format!("resilience-observe-{}.toml", std::process::id()));
    std::fs::write(&off, "disabled_kinds = [\"monitor\"]\n").unwrap();
    resilience_runtime::policy::load(&off).unwrap();
    group(c, "monitor_off", &runtime);
    resilience_runtime::policy::clear();
    metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .unwrap();
    group(c, "prometheus", &runtime);
}

criterion_group!(observe, benches);
criterion_main!(observe);
