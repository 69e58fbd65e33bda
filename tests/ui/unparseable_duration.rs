use resilience_runtime::{TimeoutError, timeout_async};

#[timeout_async("250 parsecs")]
async fn load() -> Result<(), TimeoutError> {
    Ok(())
}

#[timeout_async(secs = "2s")]
async fn save() -> Result<(), TimeoutError> {
    Ok(())
}

#[timeout_async(LIMIT)]
async fn send() -> Result<(), TimeoutError> {
    Ok(())
}

fn main() {}
