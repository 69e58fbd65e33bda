use resilience_runtime::{TimeoutError, timeout_async};

#[timeout_async(ms = 100, ms = 200)]
async fn load() -> Result<(), TimeoutError> {
    Ok(())
}

#[timeout_async(1, on_timeout = Ok(()), on_timeout = Ok(()))]
async fn save() -> Result<(), TimeoutError> {
    Ok(())
}

fn main() {}
