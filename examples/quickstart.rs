//! A deadline, a fail-soft stage and a nested budget, on the real clock.
//!
//! Run it with `cargo xtask demo` (or `cargo run --example quickstart`).

use std::time::Duration;

use resilience_runtime::{TimeoutError, deadline, timeout_async};
use tokio::time::sleep;

/// A quote feed with a 100 ms deadline.
#[timeout_async("100ms")]
async fn fetch_price(symbol: &str, latency: Duration) -> Result<f64, TimeoutError> {
    sleep(latency).await;
    Ok(if symbol == "ACME" { 101.25 } else { 42.0 })
}

/// Non-critical: on timeout the page shows no recommendations instead of failing.
#[timeout_async(ms = 50, on_timeout = Vec::new())]
async fn recommendations(latency: Duration) -> Vec<&'static str> {
    sleep(latency).await;
    vec!["ACME", "INITECH"]
}

/// The whole order has 300 ms; every timed call inside gets what is left of it.
#[timeout_async(ms = 300)]
async fn place_order(symbol: &str, checks: Duration) -> Result<String, TimeoutError> {
    sleep(checks).await; // risk checks
    let left = deadline::remaining().unwrap_or_default();
    println!(
        "  risk checks done, {} ms of the order's budget left",
        left.as_millis()
    );
    let price = fetch_price(symbol, Duration::from_millis(80)).await?;
    Ok(format!("bought {symbol} at {price}"))
}

fn show<T: std::fmt::Debug>(result: Result<T, TimeoutError>) {
    match result {
        Ok(value) => println!("  ok: {value:?}"),
        Err(err) => println!(
            "  error: {err}\n    inherited from an enclosing budget: {}",
            err.inherited()
        ),
    }
}

#[tokio::main]
async fn main() {
    println!("1. a deadline: the feed answers in 20 ms, then hangs for 2 s");
    show(fetch_price("ACME", Duration::from_millis(20)).await);
    show(fetch_price("ACME", Duration::from_secs(2)).await);

    println!("2. a fail-soft stage: recommendations take 500 ms, the limit is 50 ms");
    println!(
        "  got {:?}",
        recommendations(Duration::from_millis(500)).await
    );

    println!("3. a nested budget: the order has 300 ms, the feed call 100 ms of its own");
    show(place_order("ACME", Duration::from_millis(100)).await);
    println!("  …and when risk checks eat 250 ms, the feed call gets only the rest");
    show(place_order("ACME", Duration::from_millis(250)).await);
}
