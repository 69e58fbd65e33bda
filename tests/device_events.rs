//! What a fallback reports: one WARN event with the function, the device, the
//! kind and the first line of libtorch's message, and no panic message for the
//! panic it recovered from. Panics that are passed on still reach the panic
//! hook. One test in its own binary: it installs a panic hook and a subscriber.
#![cfg(feature = "tch")]

mod common;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::Recorder;
use resilience_runtime::safe_mps_op;
use tch::{Device, Kind, Tensor};
use tracing::Level;

#[safe_mps_op]
fn total(x: &Tensor, device: Device) -> Tensor {
    x.to_device(device).sum(Kind::Float)
}

#[safe_mps_op]
fn product(a: &Tensor, b: &Tensor) -> Tensor {
    a.matmul(b)
}

#[safe_mps_op]
fn inverse(x: &Tensor, device: Device) -> Tensor {
    Tensor::linalg_inv(&x.to_device(device))
}

#[test]
fn a_fallback_is_one_warn_event_and_no_panic_message() {
    let reported = Arc::new(AtomicUsize::new(0));
    let counter = reported.clone();
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        counter.fetch_add(1, Ordering::SeqCst);
        default(info);
    }));
    let (recorder, _guard) = Recorder::install();

    let x = Tensor::ones([3], (Kind::Float, Device::Cpu));
    assert_eq!(f64::try_from(total(&x, Device::Mps)).unwrap(), 3.0);
    assert_eq!(
        reported.load(Ordering::SeqCst),
        0,
        "the recovered panic was reported"
    );
    let warnings = || {
        let events = recorder.events();
        events
            .into_iter()
            .filter(|e| e.level == Level::WARN)
            .collect::<Vec<_>>()
    };
    let events = warnings();
    assert_eq!(events.len(), 1, "{events:?}");
    let event = &events[0];
    assert_eq!(event.level, Level::WARN);
    assert_eq!(event.field("function"), "device_events::total");
    assert_eq!(event.field("device"), "mps");
    assert_eq!(event.field("kind"), "unavailable");
    assert_eq!(
        event.field("error"),
        "PyTorch is not linked with support for mps devices"
    );

    // A second call goes straight to the CPU: nothing to warn about.
    let _ = total(&x, Device::Mps);
    assert_eq!(warnings().len(), 1);

    // Two recovered panics (no MPS; no half-precision inverse on the CPU),
    // then the upcast rerun: nothing printed.
    let half = Tensor::from_slice(&[2.0f32, 0.0, 0.0, 4.0])
        .view([2, 2])
        .to_kind(Kind::Half);
    let _ = inverse(&half, Device::Mps);
    assert_eq!(
        reported.load(Ordering::SeqCst),
        0,
        "the upcast path printed"
    );
    assert_eq!(warnings().len(), 2);

    // A shape mismatch is passed on, and the hook sees it as usual.
    let (a, b) = (
        Tensor::ones([2, 3], (Kind::Float, Device::Cpu)),
        Tensor::ones([4, 5], (Kind::Float, Device::Cpu)),
    );
    assert!(catch_unwind(AssertUnwindSafe(|| product(&a, &b))).is_err());
    assert_eq!(reported.load(Ordering::SeqCst), 1);
    assert_eq!(warnings().len(), 2, "a call on the CPU is no fallback");
    let _ = std::panic::take_hook();
}
