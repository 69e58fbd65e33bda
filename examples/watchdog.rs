//! The watchdog on a small trading loop: a feed that stalls, a pricing call
//! that blocks its worker, an order whose deadline fires, and an escalation
//! when that keeps happening. The faults are injected with `chaos`.
//!
//! Run it with `cargo xtask demo` (or `cargo run --example watchdog`).

use std::time::Duration;

use resilience_runtime::{TimeoutError, chaos, policy, watchdog};
use tokio::time::sleep;

mod feed {
    use super::*;

    /// Market data; no deadline of its own, so the watchdog judges it by
    /// `stall_after`.
    #[resilience_runtime::monitor]
    pub async fn subscribe(symbol: &str) -> Result<u32, TimeoutError> {
        sleep(Duration::from_millis(5)).await;
        Ok(symbol.len() as u32)
    }
}

mod pricing {
    use super::*;

    #[resilience_runtime::timeout_async("1s")]
    pub async fn quote(symbol: &str) -> Result<f64, TimeoutError> {
        Ok(if symbol == "ACME" { 101.25 } else { 42.0 })
    }
}

mod venue {
    use super::*;

    /// A venue that has stopped answering.
    #[resilience_runtime::retry(attempts = 1)]
    pub async fn send(_price: f64) -> Result<(), TimeoutError> {
        sleep(Duration::from_secs(5)).await;
        Ok(())
    }
}

mod orders {
    use super::*;

    #[resilience_runtime::timeout_async("200ms")]
    pub async fn place_order(symbol: &str) -> Result<(), TimeoutError> {
        let price = pricing::quote(symbol).await?;
        venue::send(price).await
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    tracing_subscriber::fmt()
        .with_target(false)
        .with_writer(std::io::stdout)
        .init();

    // Escalate when orders time out three times within a minute.
    let file = std::env::temp_dir().join(format!("watchdog-demo-{}.toml", std::process::id()));
    std::fs::write(
        &file,
        "[policies.\"watchdog::orders::place_order\"]\nescalate = { after = 3, within = \"1m\" }\n",
    )
    .expect("a temporary file");
    policy::load(&file).expect("a valid policy file");
    watchdog::on_escalation(|e| {
        println!(
            "PAGER: `{}` hit {} {} within {:?}; last: {}",
            e.function(),
            e.count(),
            e.cause(),
            e.window(),
            e.last_error()
        );
    });

    let dog = watchdog::start(watchdog::Config {
        stall_after: Duration::from_millis(400),
        blocking_after: Duration::from_millis(100),
        interval: Duration::from_millis(25),
        ..watchdog::Config::default()
    });

    println!("\n1. The feed stalls for 1 s (an injected delay):");
    chaos::inject_delay("watchdog::feed::subscribe", Duration::from_secs(1), 1);
    let feed = tokio::spawn(feed::subscribe("ACME"));
    sleep(Duration::from_millis(600)).await;
    for frame in watchdog::in_flight() {
        println!("   in flight: {frame}");
    }
    feed.await.expect("no panic").expect("the feed recovers");

    println!("\n2. Pricing blocks its worker for 300 ms (injected blocking):");
    chaos::inject_blocking("watchdog::pricing::quote", Duration::from_millis(300), 1);
    let price = tokio::spawn(pricing::quote("ACME"));
    println!(
        "   price {}",
        price.await.expect("no panic").expect("a price")
    );

    println!("\n3. Orders time out on a silent venue; the third escalates:");
    for _ in 0..3 {
        let error = orders::place_order("ACME").await.unwrap_err();
        println!("{error:#}");
    }
    // The pager runs on the escalation thread; give it a moment.
    sleep(Duration::from_millis(100)).await;
    drop(dog);
    policy::clear();
    let _ = std::fs::remove_file(file);
}
