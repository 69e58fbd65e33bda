use resilience_runtime::{TimeoutError, timeout_async};

// A percentile out of range, a multiplier below 1, an unknown argument.
#[timeout_async(ms = 200, adaptive(percentile = 100, multiplier = 0.5, window = 10))]
async fn quote() -> Result<(), TimeoutError> {
    Ok(())
}

// A floor at the ceiling; a learning rate above 1.
#[timeout_async("200ms", adaptive(floor = "200ms", learning_rate = 2))]
async fn book() -> Result<(), TimeoutError> {
    Ok(())
}

// `adaptive` twice; a positional value inside it.
#[timeout_async(ms = 200, adaptive, adaptive(95))]
async fn fill() -> Result<(), TimeoutError> {
    Ok(())
}

// A floor of zero.
#[timeout_async(ms = 200, adaptive(floor = "0ms"))]
async fn cancel() -> Result<(), TimeoutError> {
    Ok(())
}

fn main() {}
