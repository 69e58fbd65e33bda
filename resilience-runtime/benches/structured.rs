//! The budgeted pipeline against the same five stages awaited bare and under
//! hand-written `tokio::time::timeout`s; a `TaskGroup` of 1,000 children
//! against a hand-written `JoinSet`.

mod support;

use std::hint::black_box;
use std::io;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use resilience_runtime::{TimeoutError, pipeline, task::TaskGroup};
use support::per_call;

const CAPS: [u64; 5] = [50, 100, 120, 40, 30];

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// One stage's work: ready at once, after a yield.
async fn work(x: u64) -> Result<u64, TimeoutError> {
    tokio::task::yield_now().await;
    Ok(black_box(x) + 1)
}

async fn bare(x: u64) -> Result<u64, TimeoutError> {
    let mut x = x;
    for _ in CAPS {
        x = work(x).await?;
    }
    Ok(x)
}

async fn hand_written(x: u64) -> Result<u64, TimeoutError> {
    let body = async move {
        let mut x = x;
        for cap in CAPS {
            x = match tokio::time::timeout(ms(cap), work(x)).await {
                Ok(result) => result?,
                Err(_) => return Err(io::Error::from(io::ErrorKind::TimedOut)),
            };
        }
        Ok(x)
    };
    match tokio::time::timeout(ms(250), body).await {
        Ok(Ok(x)) => Ok(x),
        _ => unreachable!("no stage is slow here"),
    }
}

async fn budgeted(x: u64) -> Result<u64, TimeoutError> {
    pipeline::run("bench", ms(250), |p| async move {
        let mut x = x;
        for (stage, cap) in [
            "intent",
            "decision",
            "processing",
            "validation",
            "reflection",
        ]
        .into_iter()
        .zip(CAPS)
        {
            x = p.stage(stage, ms(cap), work(x)).await?;
        }
        Ok(x)
    })
    .await
    .into_result()
}

fn benches(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();

    let mut stages = c.benchmark_group("five_stages");
    stages.bench_function("bare", |b| b.iter_custom(per_call(&runtime, bare)));
    stages.bench_function("hand_written", |b| {
        b.iter_custom(per_call(&runtime, hand_written))
    });
    stages.bench_function("pipeline", |b| b.iter_custom(per_call(&runtime, budgeted)));
    stages.finish();

    let mut group = c.benchmark_group("thousand_children");
    group.sample_size(20);
    group.bench_function("join_set", |b| {
        b.iter(|| {
            runtime.block_on(async {
                let mut set = tokio::task::JoinSet::new();
                for n in 0..1_000u64 {
                    set.spawn(async move { Ok::<_, io::Error>(n) });
                }
                let mut sum = 0;
                while let Some(joined) = set.join_next().await {
                    sum += joined.unwrap().unwrap();
                }
                black_box(sum)
            })
        })
    });
    group.bench_function("task_group", |b| {
        b.iter(|| {
            runtime.block_on(async {
                let children = TaskGroup::<u64, io::Error>::new();
                for n in 0..1_000u64 {
                    children.spawn(async move { Ok(n) });
                }
                black_box(children.join().await.unwrap().iter().sum::<u64>())
            })
        })
    });
    group.finish();
}

criterion_group!(structured, benches);
criterion_main!(structured);
