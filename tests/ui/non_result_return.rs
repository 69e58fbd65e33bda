use resilience_runtime::timeout_async;

#[timeout_async(5)]
async fn count() -> u32 {
    1
}

#[timeout_async(5)]
async fn nothing() {}

fn main() {}
