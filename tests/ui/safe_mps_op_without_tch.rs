use resilience_runtime::safe_mps_op;

#[safe_mps_op]
fn double(x: f32) -> f32 {
    x * 2.0
}

fn main() {
    let _ = double(1.0);
}
