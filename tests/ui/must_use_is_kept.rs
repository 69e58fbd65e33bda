#![deny(unused_must_use)]

use resilience_runtime::{TimeoutError, timeout_async};

/// Attributes on the function stay where they were.
#[must_use = "the quote is the point"]
#[timeout_async(5)]
async fn quote() -> Result<u32, TimeoutError> {
    Ok(1)
}

async fn caller() {
    quote().await;
}

fn main() {
    let _ = caller();
}
