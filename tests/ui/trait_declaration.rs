use resilience_runtime::{TimeoutError, timeout_async};

trait Store {
    #[timeout_async(5)]
    async fn get(&self, key: u32) -> Result<u32, TimeoutError>;
}

fn main() {}
