use resilience_runtime::{TimeoutError, timeout_async};

#[timeout_async]
async fn load() -> Result<(), TimeoutError> {
    Ok(())
}

fn main() {}
