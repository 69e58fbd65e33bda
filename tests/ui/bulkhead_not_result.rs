use resilience_runtime::bulkhead;

#[bulkhead(max_concurrent = 4)]
async fn render() -> u32 {
    1
}

fn main() {}
