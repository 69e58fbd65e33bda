use resilience_runtime::timeout_async;

#[derive(Debug)]
struct MyError;

#[timeout_async(5)]
async fn load() -> Result<(), MyError> {
    Ok(())
}

fn main() {}
