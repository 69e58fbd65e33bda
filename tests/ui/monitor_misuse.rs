use resilience_runtime::monitor;

#[monitor(slow = 50)]
fn number_for_slow() {}

#[monitor("api")]
fn positional() {}

#[monitor(threshold = "1s")]
fn unknown() {}

struct NotAFunction;

#[monitor]
impl NotAFunction {}

fn main() {}
