use resilience_runtime::{TimeoutError, timeout_async};

#[timeout_async(-1)]
async fn load() -> Result<(), TimeoutError> {
    Ok(())
}

#[timeout_async(ms = -250)]
async fn save() -> Result<(), TimeoutError> {
    Ok(())
}

fn main() {}
