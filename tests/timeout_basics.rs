use resilience_runtime::{TimeoutError, timeout_async};
#[timeout_async(1)]
async fn quick(x: u32) -> Result<u32, TimeoutError> { Ok(x) }
#[tokio::test]
async fn works() { assert_eq!(quick(3).await.unwrap(), 3); }
