use resilience_runtime::retry;

struct Client;

impl Client {
    #[retry]
    async fn send(self) -> Result<(), String> {
        Ok(())
    }
}

fn main() {}
