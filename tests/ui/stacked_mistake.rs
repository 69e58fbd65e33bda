use resilience_runtime::{retry, timeout_async, TimeoutError};

// One mistake in the inner attribute: one error, not one per attribute.
#[retry(attempts = 3)]
#[timeout_async(0)]
async fn fetch() -> Result<(), TimeoutError> {
    Ok(())
}

fn main() {}
