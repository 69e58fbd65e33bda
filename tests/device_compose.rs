//! `#[safe_mps_op]` among the other attributes, in written order: the layers
//! above it wrap the device attempt and the CPU rerun together; the layers
//! below it run inside each of them. Against real libtorch, with
//! `Device::Mps` requested on a machine without MPS (a real device error).
//! Built with `--features tch` only.
#![cfg(feature = "tch")]

mod common;

use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
use std::time::Duration;

use common::values;
use resilience_runtime::sites::Layer;
use resilience_runtime::{DeviceError, TimeoutError, retry, safe_mps_op, timeout_async};
use tch::{Device, Tensor};

#[derive(Debug, thiserror::Error)]
enum InferError {
    #[error(transparent)]
    Device(#[from] DeviceError),
    #[error(transparent)]
    Timeout(#[from] TimeoutError),
    #[error(transparent)]
    Open(#[from] resilience_runtime::CircuitOpenError),
}

/// Each attempt takes 300 ms, then moves the batch to `device`.
async fn slow_double(xs: &Tensor, device: Device) -> Result<Tensor, InferError> {
    tokio::time::sleep(Duration::from_millis(300)).await;
    Ok(xs.f_to_device(device).map_err(DeviceError::from)? * 2)
}

/// One deadline over the device attempt and the CPU rerun.
#[timeout_async("500ms")]
#[safe_mps_op]
async fn one_deadline(xs: &Tensor, device: Device) -> Result<Tensor, InferError> {
    slow_double(xs, device).await
}

/// A deadline for each attempt.
#[safe_mps_op]
#[timeout_async("500ms")]
async fn a_deadline_each(xs: &Tensor, device: Device) -> Result<Tensor, InferError> {
    slow_double(xs, device).await
}

#[tokio::test(start_paused = true)]
async fn a_deadline_written_above_covers_the_attempt_and_the_rerun() {
    let xs = Tensor::from_slice(&[1.0f32, 2.0]);
    let started = tokio::time::Instant::now();
    let error = one_deadline(&xs, Device::Mps).await.unwrap_err();
    assert!(matches!(error, InferError::Timeout(_)), "{error:?}");
    assert_eq!(started.elapsed(), Duration::from_millis(500));
}

#[tokio::test(start_paused = true)]
async fn a_deadline_written_below_covers_each_attempt() {
    let xs = Tensor::from_slice(&[1.0f32, 2.0]);
    let started = tokio::time::Instant::now();
    let out = a_deadline_each(&xs, Device::Mps).await.unwrap();
    assert_eq!(values(&out), [2.0, 4.0]);
    assert_eq!(started.elapsed(), Duration::from_millis(600));
}

static RETRIED_RUNS: AtomicU32 = AtomicU32::new(0);

/// Fails on the device; a retry below the device layer runs inside each
/// attempt, so the device failure (not a retried error) reaches the rerun.
#[safe_mps_op]
#[retry(attempts = 3, base = "10ms")]
async fn retried_inside(xs: &Tensor, device: Device) -> Result<Tensor, InferError> {
    RETRIED_RUNS.fetch_add(1, Relaxed);
    Ok(xs.f_to_device(device).map_err(DeviceError::from)? + 1)
}

#[tokio::test(start_paused = true)]
async fn a_retry_written_below_retries_each_attempt() {
    let xs = Tensor::from_slice(&[1.0f32, 2.0]);
    let out = retried_inside(&xs, Device::Mps).await.unwrap();
    assert_eq!(values(&out), [2.0, 3.0]);
    // Three device attempts (the default `when` retries any error), then one
    // CPU run that succeeds.
    assert_eq!(RETRIED_RUNS.load(Relaxed), 4);
}

/// A breaker inside each device attempt.
#[safe_mps_op]
#[resilience_runtime::circuit_breaker]
async fn guarded_inside(xs: &Tensor, device: Device) -> Result<Tensor, InferError> {
    Ok(xs.f_to_device(device).map_err(DeviceError::from)? * 2)
}

#[tokio::test(start_paused = true)]
async fn calls_rejected_below_the_device_layer_are_not_recorded() {
    let recorded = || {
        resilience_runtime::monitor::latency("device_compose::guarded_inside")
            .map_or(0, |latency| latency.count())
    };
    let xs = Tensor::from_slice(&[1.0f32, 2.0]);
    let _ = guarded_inside(&xs, Device::Cpu).await.unwrap();
    assert_eq!(recorded(), 1);
    assert!(resilience_runtime::breaker::force_open(
        "device_compose::guarded_inside"
    ));
    let rejected = guarded_inside(&xs, Device::Cpu).await.unwrap_err();
    assert!(matches!(rejected, InferError::Open(_)), "{rejected:?}");
    assert_eq!(recorded(), 1, "a rejected call ran nothing");
    resilience_runtime::breaker::reset("device_compose::guarded_inside");
    let _ = guarded_inside(&xs, Device::Cpu).await.unwrap();
    assert_eq!(recorded(), 2);
}

#[test]
fn sites_list_the_layers_in_written_order() {
    let layers = |name: &str| {
        resilience_runtime::sites()
            .into_iter()
            .find(|site| site.function == format!("device_compose::{name}"))
            .unwrap()
            .layers
    };
    assert!(matches!(
        layers("one_deadline")[..],
        [Layer::Timeout { .. }, Layer::Device { .. }]
    ));
    assert!(matches!(
        layers("a_deadline_each")[..],
        [Layer::Device { .. }, Layer::Timeout { .. }]
    ));
    assert!(matches!(
        layers("retried_inside")[..],
        [Layer::Device { .. }, Layer::Retry { .. }]
    ));
}

#[tracing::instrument(name = "device_span", skip_all)]
#[safe_mps_op]
fn instrumented_on(xs: &Tensor, device: Device) -> Tensor {
    xs.to_device(device) * 3
}

/// With the process's subscriber: the other tests here hit the same event
/// on other threads, and a thread-local one could find its interest cached
/// as "never" by a thread that had none.
#[test]
fn a_fallback_is_reported_in_the_calls_span() {
    let recorder = common::Recorder::global();
    let xs = Tensor::from_slice(&[1.0f32]);
    assert_eq!(values(&instrumented_on(&xs, Device::Mps)), [3.0]);
    let in_span = recorder
        .events()
        .into_iter()
        .filter(|e| {
            e.fields
                .get("message")
                .is_some_and(|m| m == "device op failed; running it on CPU")
                && e.fields
                    .get("function")
                    .is_some_and(|f| f.ends_with("::instrumented_on"))
        })
        .map(|e| e.span)
        .collect::<Vec<_>>();
    assert_eq!(in_span, [Some("device_span")]);
}
