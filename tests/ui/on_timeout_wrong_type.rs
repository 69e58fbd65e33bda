use resilience_runtime::timeout_async;

#[timeout_async(5, on_timeout = "none")]
async fn count() -> u32 {
    1
}

fn main() {}
