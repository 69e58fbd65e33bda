use resilience_runtime::retry;

struct Connection;

#[retry]
async fn send(connection: Connection) -> Result<(), String> {
    let _ = connection;
    Ok(())
}

fn main() {}
