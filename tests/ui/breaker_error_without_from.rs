use resilience_runtime::circuit_breaker;

#[derive(Debug)]
struct QuoteError;

#[circuit_breaker(name = "quotes")]
async fn quote() -> Result<f64, QuoteError> {
    Ok(1.0)
}

fn main() {}
