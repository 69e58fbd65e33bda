use resilience_runtime::circuit_breaker;

#[circuit_breaker(failure_rate = 1.5, window = 100, open_for = 30, probes = 2, name = "")]
async fn quote() -> Result<(), std::io::Error> {
    Ok(())
}

fn main() {}
