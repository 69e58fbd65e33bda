//! The annotated future stays close in size to a hand-written
//! `tokio::time::timeout` around the same body: at most 72 bytes more, of
//! which 8 are the call's frame state (see `watchdog`).

use std::io;
use std::mem::size_of_val;
use std::time::Duration;

use resilience_runtime::timeout_async;

async fn hand_written(buffer: [u8; 64]) -> io::Result<u8> {
    let body = async move {
        tokio::task::yield_now().await;
        Ok(buffer[0])
    };
    match tokio::time::timeout(Duration::from_secs(5), body).await {
        Ok(output) => output,
        Err(elapsed) => Err(io::Error::new(io::ErrorKind::TimedOut, elapsed)),
    }
}

#[timeout_async(5)]
async fn annotated(buffer: [u8; 64]) -> io::Result<u8> {
    tokio::task::yield_now().await;
    Ok(buffer[0])
}

#[test]
fn annotated_future_is_at_most_72_bytes_larger() {
    let hand_written = size_of_val(&hand_written([0; 64]));
    let annotated = size_of_val(&annotated([0; 64]));
    println!("hand-written {hand_written} bytes, annotated {annotated} bytes");
    assert!(
        annotated <= hand_written + 72,
        "annotated {annotated} bytes vs hand-written {hand_written} bytes"
    );
}
