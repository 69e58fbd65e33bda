//! The metrics of every attribute, scraped as Prometheus would: installs
//! `metrics-exporter-prometheus` on 127.0.0.1, drives a small workload
//! through a timeout, a retry, a breaker that opens and closes and a
//! fail-soft stage, fetches `/metrics` over HTTP and prints the
//! `resilience_*` lines, then the latency monitor's report.
//!
//! Run it with `cargo xtask demo`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
use std::time::Duration;

use metrics_exporter_prometheus::PrometheusBuilder;
use resilience_runtime::{
    CircuitOpenError, TimeoutError, breaker, circuit_breaker, monitor, retry, timeout_async,
};

#[derive(Debug, thiserror::Error)]
enum StageError {
    #[error(transparent)]
    Timeout(#[from] TimeoutError),
    #[error(transparent)]
    Open(#[from] CircuitOpenError),
    #[error("the exchange is down")]
    Down,
}

/// A quote that takes `ms` milliseconds, under a 50 ms deadline.
#[timeout_async("50ms")]
async fn quote(ms: u64) -> Result<f64, StageError> {
    tokio::time::sleep(Duration::from_millis(ms)).await;
    Ok(101.5)
}

static FLAKES: AtomicU32 = AtomicU32::new(0);

/// Fails twice in every three calls: retried.
#[retry(attempts = 3, base = "5ms")]
async fn settle() -> Result<u32, StageError> {
    if FLAKES.fetch_add(1, Relaxed) % 3 < 2 {
        Err(StageError::Down)
    } else {
        Ok(7)
    }
}

/// An exchange that is down, then back: its breaker opens, then closes.
#[circuit_breaker(name = "exchange", window = 4, min_calls = 4, open_for = "100ms")]
async fn place(up: bool) -> Result<(), StageError> {
    if up { Ok(()) } else { Err(StageError::Down) }
}

/// Recommendations are optional: a slow answer is an empty one.
#[timeout_async(ms = 20, on_timeout = Vec::new())]
#[monitor(slow = "10ms")]
async fn recommendations(ms: u64) -> Vec<&'static str> {
    tokio::time::sleep(Duration::from_millis(ms)).await;
    vec!["more of the same"]
}

/// An address on 127.0.0.1 that no one listens on.
fn free_address() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free port on 127.0.0.1");
    listener.local_addr().expect("its address")
}

/// `GET /metrics`, as a scraper would.
fn scrape(address: SocketAddr) -> String {
    for _ in 0..50 {
        if let Ok(mut stream) = TcpStream::connect(address) {
            let request = "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
            stream
                .write_all(request.as_bytes())
                .expect("a request sent");
            let mut response = String::new();
            stream
                .read_to_string(&mut response)
                .expect("a response read");
            return response;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("the exporter did not listen on {address}");
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let address = free_address();
    PrometheusBuilder::new()
        .with_http_listener(address)
        .install()
        .expect("the Prometheus exporter installs");
    println!("exporter listening on http://{address}/metrics");

    for ms in [5, 10, 80] {
        let _ = quote(ms).await;
    }
    for _ in 0..3 {
        let _ = settle().await;
    }
    for _ in 0..4 {
        let _ = place(false).await;
    }
    let rejected = place(true).await;
    println!(
        "breaker after four failures: {:?} ({rejected:?})",
        breaker::state("exchange")
    );
    tokio::time::sleep(Duration::from_millis(120)).await;
    place(true).await.expect("the probe succeeds");
    println!(
        "breaker after a successful probe: {:?}",
        breaker::state("exchange")
    );
    for ms in [5, 15, 40] {
        let _ = recommendations(ms).await;
    }

    let response = tokio::task::spawn_blocking(move || scrape(address))
        .await
        .expect("the scrape ran");
    println!("\n--- /metrics (resilience_* lines) ---");
    for line in response
        .lines()
        .filter(|line| line.starts_with("resilience_"))
    {
        println!("{line}");
    }
    println!("\n--- monitor::report() ---\n{}", monitor::report());
}
