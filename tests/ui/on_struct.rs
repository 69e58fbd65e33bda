use resilience_runtime::timeout_async;

#[timeout_async(5)]
struct Client {
    url: String,
}

fn main() {
    let _ = Client { url: String::new() }.url;
}
