use resilience_runtime::{RateLimitedError, rate_limit};

// Two rates, a zero burst, a key that is no argument.
#[rate_limit(per_second = 10, per_minute = 100, burst = 0, key = venue)]
async fn order(user: &str) -> Result<(), RateLimitedError> {
    let _ = user;
    Ok(())
}

// `per` without `max`; `max_keys` without `key`; a number for a duration.
#[rate_limit(per = "250ms", max_keys = 10, max_wait = 100)]
async fn feed() -> Result<(), RateLimitedError> {
    Ok(())
}

// No rate at all.
#[rate_limit(burst = 5)]
async fn quote() -> Result<(), RateLimitedError> {
    Ok(())
}

// `max` without `per`; an unknown argument.
#[rate_limit(per_second = 5, max = 3, per_hour = 1)]
async fn cancel() -> Result<(), RateLimitedError> {
    Ok(())
}

// A key that is not `Hash`.
struct Venue;

#[rate_limit(per_second = 5, key = venue)]
async fn route(venue: Venue) -> Result<(), RateLimitedError> {
    let _ = venue;
    Ok(())
}

// Not async.
#[rate_limit(per_second = 5)]
fn sync() -> Result<(), RateLimitedError> {
    Ok(())
}

// A burst that would take millennia to refill.
#[rate_limit(per_minute = 1, burst = 4000000000)]
async fn archive() -> Result<(), RateLimitedError> {
    Ok(())
}

fn main() {}
