//! The metrics every attribute records through the `metrics` facade: exact
//! names, labels and values after a known sequence of calls, read from
//! `metrics-util`'s debugging recorder (installed for the whole process).

use std::io;
use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
use std::time::Duration;

use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use metrics_util::{CompositeKey, MetricKind};
use resilience_runtime::{
    BulkheadFullError, CircuitOpenError, RateLimitedError, TimeoutError, breaker, bulkhead,
    circuit_breaker, monitor, rate_limit, retry, timeout_async, watchdog,
};

#[derive(Debug, thiserror::Error)]
enum Failed {
    #[error("timed out")]
    Timeout(#[from] TimeoutError),
    #[error("rejected")]
    Rejected(#[from] CircuitOpenError),
    #[error("flaky")]
    Flaky,
    #[error("limited")]
    Limited(#[from] RateLimitedError),
    #[error("full")]
    Full(#[from] BulkheadFullError),
}

#[rate_limit(per_second = 1, burst = 1)]
async fn limited(fail: bool) -> Result<u32, Failed> {
    if fail { Err(Failed::Flaky) } else { Ok(1) }
}

#[bulkhead(max_concurrent = 1)]
async fn crowded(fail: bool) -> Result<u32, Failed> {
    tokio::time::sleep(Duration::from_millis(10)).await;
    if fail { Err(Failed::Flaky) } else { Ok(1) }
}

#[timeout_async(ms = 500, adaptive(min_calls = 1, multiplier = 2.0))]
async fn learns() -> Result<u32, Failed> {
    tokio::time::sleep(Duration::from_millis(100)).await;
    Ok(1)
}

#[timeout_async("1s")]
async fn quick() -> io::Result<u32> {
    Ok(1)
}

#[timeout_async("10ms")]
async fn slow() -> io::Result<u32> {
    tokio::time::sleep(Duration::from_secs(1)).await;
    Ok(1)
}

#[timeout_async(ms = 10, on_timeout = 0)]
async fn soft() -> u32 {
    tokio::time::sleep(Duration::from_secs(1)).await;
    1
}

static ATTEMPTS: AtomicU32 = AtomicU32::new(0);

#[retry(attempts = 5, base = "10ms", jitter = "none")]
async fn third_time_lucky() -> Result<u32, Failed> {
    match ATTEMPTS.fetch_add(1, Relaxed) {
        0 | 1 => Err(Failed::Flaky),
        _ => Ok(3),
    }
}

#[circuit_breaker(name = "metrics-exchange")]
async fn guarded() -> Result<u32, Failed> {
    Ok(4)
}

/// Dropped by its own deadline: the breaker counts a failure.
#[timeout_async("10ms")]
#[circuit_breaker(name = "metrics-slow")]
async fn hangs() -> Result<u32, Failed> {
    tokio::time::sleep(Duration::from_secs(1)).await;
    Ok(5)
}

/// Waits an hour, with no deadline over it.
#[retry(attempts = 1)]
async fn stuck() -> Result<u32, Failed> {
    tokio::time::sleep(Duration::from_secs(3600)).await;
    Ok(0)
}

#[monitor]
fn parsed(text: &str) -> Result<u32, std::num::ParseIntError> {
    text.parse()
}

/// What was recorded since the last snapshot: the debugging recorder hands
/// out each update once (counters and gauges are reset, histograms drained).
struct Seen(Vec<(CompositeKey, DebugValue)>);

impl Seen {
    fn take(snapshotter: &Snapshotter) -> Self {
        let snapshot = snapshotter.snapshot().into_vec();
        Self(
            snapshot
                .into_iter()
                .map(|(key, _, _, value)| (key, value))
                .collect(),
        )
    }

    /// The metric of `kind` named `name` with exactly `labels`.
    fn value(&self, kind: MetricKind, name: &str, labels: &[(&str, &str)]) -> &DebugValue {
        let matches = |key: &CompositeKey| {
            let mut found: Vec<(&str, &str)> =
                key.key().labels().map(|l| (l.key(), l.value())).collect();
            let mut wanted = labels.to_vec();
            found.sort();
            wanted.sort();
            key.kind() == kind && key.key().name() == name && found == wanted
        };
        self.0
            .iter()
            .find(|(key, _)| matches(key))
            .map(|(_, value)| value)
            .unwrap_or_else(|| panic!("no {kind:?} {name} {labels:?}"))
    }

    fn counter(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        match self.value(MetricKind::Counter, name, labels) {
            DebugValue::Counter(n) => *n,
            other => panic!("{name} {labels:?}: {other:?}"),
        }
    }

    fn calls(&self, function: &str, kind: &str, outcome: &str) -> u64 {
        let function = format!("metrics_facade::{function}");
        let labels = [
            ("function", &*function),
            ("kind", kind),
            ("outcome", outcome),
        ];
        self.counter("resilience_calls_total", &labels)
    }

    /// The durations recorded for `function` and `outcome`, in seconds.
    fn durations(&self, function: &str, outcome: &str) -> Vec<f64> {
        let function = format!("metrics_facade::{function}");
        let labels = [("function", &*function), ("outcome", outcome)];
        let name = "resilience_call_duration_seconds";
        match self.value(MetricKind::Histogram, name, &labels) {
            DebugValue::Histogram(values) => values.iter().map(|v| v.into_inner()).collect(),
            other => panic!("{function} {outcome}: {other:?}"),
        }
    }

    fn gauge(&self, breaker: &str, state: &str) -> f64 {
        let labels = [("breaker", breaker), ("state", state)];
        match self.value(
            MetricKind::Gauge,
            "resilience_circuitbreaker_state",
            &labels,
        ) {
            DebugValue::Gauge(value) => value.into_inner(),
            other => panic!("{breaker} {state}: {other:?}"),
        }
    }
}

#[tokio::test(start_paused = true)]
async fn every_attribute_records_its_calls_by_name_and_outcome() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder.install().unwrap();

    // Timeouts: a success, a timeout, a fail-soft timeout.
    quick().await.unwrap();
    quick().await.unwrap();
    assert!(slow().await.is_err());
    assert_eq!(soft().await, 0);
    let seen = Seen::take(&snapshotter);
    assert_eq!(seen.calls("quick", "timeout", "success"), 2);
    assert_eq!(seen.calls("slow", "timeout", "timeout"), 1);
    assert_eq!(seen.calls("soft", "timeout", "fail_soft"), 1);
    assert_eq!(seen.calls("soft", "timeout", "timeout"), 0);
    assert_eq!(seen.durations("quick", "success").len(), 2);
    // A timed-out call ran until its deadline; the fail-soft one returned a
    // value, a success.
    assert_eq!(seen.durations("slow", "failure"), [0.01]);
    assert_eq!(seen.durations("soft", "success"), [0.01]);

    // A retry that succeeds on the third attempt: one call, two retries.
    assert_eq!(third_time_lucky().await.unwrap(), 3);
    let seen = Seen::take(&snapshotter);
    assert_eq!(seen.calls("third_time_lucky", "retry", "success"), 1);
    let function = [("function", "metrics_facade::third_time_lucky")];
    assert_eq!(seen.counter("resilience_retries_total", &function), 2);
    // 10 ms then 20 ms of backoff: the whole call, retries included.
    assert_eq!(seen.durations("third_time_lucky", "success"), [0.03]);

    // A breaker: a success, then forced open, a rejection.
    guarded().await.unwrap();
    let seen = Seen::take(&snapshotter);
    assert_eq!(seen.calls("guarded", "breaker", "success"), 1);
    assert_eq!(seen.gauge("metrics-exchange", "closed"), 1.0);
    assert!(breaker::force_open("metrics-exchange"));
    assert!(matches!(guarded().await, Err(Failed::Rejected(_))));
    let seen = Seen::take(&snapshotter);
    assert_eq!(seen.calls("guarded", "breaker", "rejected"), 1);
    // Rejected without running: no duration, it says nothing of latency.
    assert!(seen.durations("guarded", "failure").is_empty());
    let transition = [
        ("breaker", "metrics-exchange"),
        ("from", "closed"),
        ("to", "forced_open"),
    ];
    let transitions = "resilience_circuitbreaker_transitions_total";
    assert_eq!(seen.counter(transitions, &transition), 1);
    for (state, expected) in [
        ("closed", 0.0),
        ("open", 0.0),
        ("half_open", 0.0),
        ("forced_open", 1.0),
        ("forced_closed", 0.0),
    ] {
        assert_eq!(seen.gauge("metrics-exchange", state), expected, "{state}");
    }
    breaker::reset("metrics-exchange");

    // A call its own deadline drops is a failure, in the window and here.
    assert!(matches!(hangs().await, Err(Failed::Timeout(_))));
    let seen = Seen::take(&snapshotter);
    assert_eq!(seen.calls("hangs", "breaker", "failure"), 1);
    assert_eq!(seen.calls("hangs", "timeout", "timeout"), 1);

    // `#[monitor]` on a sync function: a success and a failure.
    parsed("1").unwrap();
    parsed("one").unwrap_err();
    let seen = Seen::take(&snapshotter);
    assert_eq!(seen.calls("parsed", "monitor", "success"), 1);
    assert_eq!(seen.calls("parsed", "monitor", "failure"), 1);
    assert_eq!(seen.durations("parsed", "failure").len(), 1);

    // The watchdog's reports, and an escalation.
    let dog = watchdog::start(watchdog::Config::default());
    let task = tokio::spawn(stuck());
    for _ in 0..10 {
        tokio::task::yield_now().await; // its first poll
    }
    tokio::time::advance(Duration::from_secs(6)).await;
    dog.check();
    let seen = Seen::take(&snapshotter);
    let labels = [
        ("function", "metrics_facade::stuck"),
        ("kind", "stalled_call"),
    ];
    assert_eq!(seen.counter("resilience_watchdog_events_total", &labels), 1);
    task.abort();
    drop(dog);
    let file = std::env::temp_dir().join(format!("metrics-escalate-{}.toml", std::process::id()));
    std::fs::write(&file, "[escalate]\nafter = 1\n").unwrap();
    resilience_runtime::policy::load(&file).unwrap();
    assert!(slow().await.is_err());
    resilience_runtime::policy::clear();
    let seen = Seen::take(&snapshotter);
    let labels = [("function", "metrics_facade::slow"), ("cause", "timeout")];
    assert_eq!(seen.counter("resilience_escalations_total", &labels), 1);

    // Admission: the rate limiter and the bulkhead count what they admit
    // and what they reject.
    limited(false).await.unwrap();
    assert!(matches!(limited(false).await, Err(Failed::Limited(_))));
    tokio::time::advance(Duration::from_secs(1)).await;
    assert!(limited(true).await.is_err());
    crowded(false).await.unwrap();
    let holder = tokio::spawn(crowded(true));
    tokio::task::yield_now().await;
    assert!(matches!(crowded(false).await, Err(Failed::Full(_))));
    assert!(holder.await.unwrap().is_err());
    let seen = Seen::take(&snapshotter);
    for (function, kind) in [("limited", "rate_limit"), ("crowded", "bulkhead")] {
        for outcome in ["success", "failure", "rejected"] {
            assert_eq!(
                seen.calls(function, kind, outcome),
                1,
                "{function} {outcome}"
            );
        }
    }

    // An adaptive timeout's limit, set as the window moves: from 500 ms
    // half the way down to 2 × 100 ms at each call that moves it (the
    // first, and the one 11 s later): 350, then 275 ms.
    learns().await.unwrap();
    tokio::time::advance(Duration::from_secs(11)).await;
    learns().await.unwrap();
    let seen = Seen::take(&snapshotter);
    let labels = [("function", "metrics_facade::learns")];
    match seen.value(
        MetricKind::Gauge,
        "resilience_timeout_limit_seconds",
        &labels,
    ) {
        DebugValue::Gauge(seconds) => {
            assert!((seconds.into_inner() - 0.275).abs() < 0.003, "{seconds:?}");
        }
        other => panic!("{other:?}"),
    }

    #[cfg(feature = "tch")]
    device::a_real_fallback_is_counted(&snapshotter);
}

#[cfg(feature = "tch")]
mod device {
    use metrics_util::debugging::Snapshotter;
    use resilience_runtime::safe_mps_op;
    use tch::{Device, Tensor};

    use super::Seen;

    #[safe_mps_op]
    fn doubled(x: &Tensor, device: Device) -> Tensor {
        x.to_device(device) * 2
    }

    /// MPS requested where there is none: a real device error, a CPU rerun.
    pub(super) fn a_real_fallback_is_counted(snapshotter: &Snapshotter) {
        let x = Tensor::from_slice(&[1.0f32]);
        let _ = doubled(&x, Device::Cpu);
        let _ = doubled(&x, Device::Mps);
        let seen = Seen::take(snapshotter);
        assert_eq!(seen.calls("device::doubled", "device", "success"), 1);
        assert_eq!(seen.calls("device::doubled", "device", "fallback"), 1);
        let labels = [
            ("function", "metrics_facade::device::doubled"),
            ("device", "mps"),
            ("reason", "unavailable"),
        ];
        assert_eq!(
            seen.counter("resilience_device_fallbacks_total", &labels),
            1
        );
    }
}
