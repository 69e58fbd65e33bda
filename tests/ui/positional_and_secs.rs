use resilience_runtime::{TimeoutError, timeout_async};

#[timeout_async(5, secs = 2)]
async fn load() -> Result<(), TimeoutError> {
    Ok(())
}

#[timeout_async(secs = 2, ms = 500)]
async fn save() -> Result<(), TimeoutError> {
    Ok(())
}

fn main() {}
