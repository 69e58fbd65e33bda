use resilience_runtime::retry;

#[retry(attempts = 0, backoff = "linear", base = 100, factor = 0.5, tries = 3)]
async fn fetch() -> Result<(), String> {
    Ok(())
}

fn main() {}
