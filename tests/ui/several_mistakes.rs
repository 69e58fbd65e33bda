use resilience_runtime::timeout_async;

// Independent mistakes are reported together, in one build.
#[timeout_async(0, timeout = 5)]
fn load() -> u32 {
    1
}

fn main() {}
