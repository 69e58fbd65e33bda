use resilience_runtime::retry;

#[retry(attempts = 3)]
async fn count() -> u32 {
    1
}

fn main() {}
