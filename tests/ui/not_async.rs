use resilience_runtime::timeout_async;

#[timeout_async(5)]
fn load() -> Result<(), resilience_runtime::TimeoutError> {
    Ok(())
}

fn main() {}
