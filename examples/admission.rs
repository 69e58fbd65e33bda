//! Admission control and a timeout that learns: a venue's order gateway
//! limited to 20 orders a second per trader, a pricing service that runs at
//! most 4 requests at once, and a quote feed whose deadline follows its own
//! latency. Runs on tokio's paused clock, so it takes no time.
//!
//! Run it with `cargo xtask demo` (or `cargo run --example admission`).

use std::time::Duration;

use resilience_runtime::{
    BulkheadFullError, RateLimitedError, TimeoutError, bulkhead, deadline, monitor, rate_limit,
    timeout_async,
};
use tokio::time::{Instant, sleep};

#[derive(Debug, thiserror::Error)]
enum GatewayError {
    #[error(transparent)]
    Limited(#[from] RateLimitedError),
    #[error(transparent)]
    Busy(#[from] BulkheadFullError),
    #[error(transparent)]
    Timeout(#[from] TimeoutError),
}

/// At most 20 orders a second per trader, bursts of 5, and a caller waits
/// up to 100 ms for its turn.
#[rate_limit(per_second = 20, burst = 5, max_wait = "100ms", key = trader)]
async fn place_order(trader: &str, quantity: u32) -> Result<u32, GatewayError> {
    Ok(quantity)
}

/// Pricing is heavy: 4 at a time, and a caller waits up to 30 ms for a place.
#[bulkhead(max_concurrent = 4, max_wait = "30ms", name = "pricing")]
async fn price(instrument: u32) -> Result<f64, GatewayError> {
    sleep(Duration::from_millis(50)).await;
    Ok(100.0 + f64::from(instrument))
}

/// A quote feed: 400 ms at most, and as the feed shows its latency, 1.5
/// times its p95, never under 20 ms.
#[timeout_async(ms = 400, adaptive(percentile = 95, floor = "20ms", multiplier = 1.5))]
async fn quote(latency: Duration) -> Result<f64, GatewayError> {
    sleep(latency).await;
    Ok(101.25)
}

#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() {
    println!("-- rate limit: 12 orders from alice at once, then 2 from bob");
    let start = Instant::now();
    let orders: Vec<_> = (0..12)
        .map(|n| tokio::spawn(place_order("alice", n)))
        .collect();
    for (n, order) in orders.into_iter().enumerate() {
        match order.await.unwrap() {
            Ok(_) => println!("  alice's order {n} placed at {:?}", start.elapsed()),
            Err(error) => println!("  alice's order {n}: {error}"),
        }
    }
    for n in 0..2 {
        place_order("bob", n).await.unwrap();
    }
    println!("  bob's 2 orders placed at once: his own quota");

    println!("-- bulkhead: 7 pricing requests at once");
    let requests: Vec<_> = (0..7).map(|n| tokio::spawn(price(n))).collect();
    tokio::task::yield_now().await;
    let stats = bulkhead::stats("pricing").unwrap();
    println!(
        "  running {}, waiting {} (of {} places)",
        stats.running(),
        stats.waiting(),
        stats.max_concurrent()
    );
    for (n, request) in requests.into_iter().enumerate() {
        match request.await.unwrap() {
            Ok(price) => println!("  request {n}: {price}"),
            Err(error) => println!("  request {n}: {error}"),
        }
    }

    println!("-- adaptive timeout: a feed at 10-60 ms, then at 20-120 ms");
    monitor::set_window(Duration::from_secs(6));
    let feed = concat!(module_path!(), "::quote");
    println!(
        "  cold start: {:?}",
        deadline::limit_in_force(feed).unwrap()
    );
    for round in 0..2u64 {
        let slow = round + 1;
        for n in 0..300u64 {
            let latency = Duration::from_millis(slow * (10 + (n * 37) % 50));
            let _ = quote(latency).await;
        }
        println!(
            "  after 300 calls at up to {} ms: {:?}",
            slow * 60,
            deadline::limit_in_force(feed).unwrap()
        );
    }
}
