use resilience_runtime::rate_limit;

#[derive(Debug)]
struct OrderError;

#[rate_limit(per_second = 5)]
async fn order() -> Result<(), OrderError> {
    Ok(())
}

fn main() {}
