//! `#[safe_mps_op]` on the success path against the bare call, and the cost
//! of a first fallback against a sticky one. Needs `--features tch`.

use std::hint::black_box;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use resilience_runtime::{device, safe_mps_op};
use tch::{Device, Kind, Tensor};

fn bare_matmul(a: &Tensor, b: &Tensor) -> Tensor {
    a.matmul(b)
}

#[safe_mps_op]
fn annotated_matmul(a: &Tensor, b: &Tensor) -> Tensor {
    a.matmul(b)
}

fn bare_tiny(x: &Tensor) -> Tensor {
    x.neg()
}

#[safe_mps_op]
fn annotated_tiny(x: &Tensor) -> Tensor {
    x.neg()
}

/// Fails on this machine (no MPS) and falls back.
#[safe_mps_op]
fn on_mps(x: &Tensor, device: Device) -> Tensor {
    x.to_device(device).neg()
}

fn benches(c: &mut Criterion) {
    tch::set_num_threads(1);
    let a = Tensor::randn([256, 256], (Kind::Float, Device::Cpu));
    let b = Tensor::randn([256, 256], (Kind::Float, Device::Cpu));
    let mut matmul = c.benchmark_group("matmul_256");
    matmul.bench_function("bare", |bench| {
        bench.iter(|| bare_matmul(black_box(&a), &b))
    });
    matmul.bench_function("annotated", |bench| {
        bench.iter(|| annotated_matmul(black_box(&a), &b))
    });
    matmul.finish();

    let x = Tensor::from_slice(&[1.0f32]);
    let mut tiny = c.benchmark_group("tiny_op");
    tiny.bench_function("bare", |bench| bench.iter(|| bare_tiny(black_box(&x))));
    tiny.bench_function("annotated", |bench| {
        bench.iter(|| annotated_tiny(black_box(&x)))
    });
    tiny.finish();

    let mut fallback = c.benchmark_group("fallback");
    fallback.bench_function("first", |bench| {
        bench.iter_batched(
            device::reset_health,
            |()| on_mps(black_box(&x), Device::Mps),
            BatchSize::SmallInput,
        )
    });
    let _ = on_mps(&x, Device::Mps); // marks MPS as failing for `on_mps`
    fallback.bench_function("sticky", |bench| {
        bench.iter(|| on_mps(black_box(&x), Device::Mps))
    });
    fallback.finish();
}

criterion_group!(device_benches, benches);
criterion_main!(device_benches);
