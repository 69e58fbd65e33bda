use resilience_runtime::{BulkheadFullError, bulkhead};

// No `max_concurrent`.
#[bulkhead(max_wait = "50ms")]
async fn render() -> Result<(), BulkheadFullError> {
    Ok(())
}

// Zero places; a positional argument; a name that is not text.
#[bulkhead(max_concurrent = 0, "50ms", name = pool)]
async fn print() -> Result<(), BulkheadFullError> {
    Ok(())
}

// A suffixed number for a duration; an unknown argument.
#[bulkhead(max_concurrent = 4, max_wait = 50ms, queue = 10)]
async fn scan() -> Result<(), BulkheadFullError> {
    Ok(())
}

fn main() {}
