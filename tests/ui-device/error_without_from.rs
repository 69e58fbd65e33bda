use resilience_runtime::safe_mps_op;
use tch::Tensor;

#[derive(Debug)]
struct MyError;

impl std::fmt::Display for MyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("my error")
    }
}

#[safe_mps_op]
fn double(x: &Tensor) -> Result<Tensor, MyError> {
    Ok(x * 2)
}

fn main() {}
