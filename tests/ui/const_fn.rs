use resilience_runtime::timeout_async;

#[timeout_async(5)]
const fn limit() -> u32 {
    5
}

fn main() {
    let _ = limit();
}
