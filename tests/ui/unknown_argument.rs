use resilience_runtime::{TimeoutError, timeout_async};

#[timeout_async(5, retries = 3)]
async fn load() -> Result<(), TimeoutError> {
    Ok(())
}

fn main() {}
