use resilience_runtime::{circuit_breaker, retry, timeout_async, CircuitOpenError, TimeoutError};

#[timeout_async(250ms)]
async fn positional() -> Result<(), TimeoutError> {
    Ok(())
}

#[timeout_async(ms = 5s)]
async fn millis() -> Result<(), TimeoutError> {
    Ok(())
}

#[retry(attempts = 3s)]
async fn attempts() -> Result<(), TimeoutError> {
    Ok(())
}

#[circuit_breaker(window = 20ms)]
async fn window() -> Result<(), CircuitOpenError> {
    Ok(())
}

#[retry(attempts = 3u32)]
async fn typed() -> Result<(), TimeoutError> {
    Ok(())
}

#[circuit_breaker(open_for = 30s)]
async fn open_for() -> Result<(), CircuitOpenError> {
    Ok(())
}

fn main() {}
