use resilience_runtime::{TimeoutError, timeout_async};

#[timeout_async(0)]
async fn load() -> Result<(), TimeoutError> {
    Ok(())
}

#[timeout_async("0ms")]
async fn save() -> Result<(), TimeoutError> {
    Ok(())
}

fn main() {}
