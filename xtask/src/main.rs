//! The workspace's task runner.
//!
//! - `cargo xtask test`: formatting, clippy and every test, first without
//!   features, then the `loom` models of the breaker's atomics, then against
//!   real libtorch with `--features tch`.
//! - `cargo xtask demo`: the examples, libtorch included.
//!
//! Both set up what they need (libtorch in a cached Python environment), so a
//! fresh machine with Rust, Python 3 and a C compiler is enough.

use std::process::ExitCode;

mod libtorch;
mod run;

use run::{Cargo, Step};

fn main() -> ExitCode {
    let task = std::env::args().nth(1);
    let result = match task.as_deref() {
        Some("test") => test(),
        Some("demo") => demo(),
        _ => {
            eprintln!("usage: cargo xtask <test|demo>");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("xtask: {error}");
            ExitCode::FAILURE
        }
    }
}

fn test() -> Result<(), String> {
    Step::new("formatting").cargo(Cargo::new(["fmt", "--all", "--", "--check"]))?;
    Step::new("clippy").cargo(Cargo::new(clippy(&[])))?;
    // The runtime without its default `metrics` feature.
    let without_metrics = [
        "clippy",
        "--package",
        "resilience-runtime",
        "--no-default-features",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ];
    Step::new("clippy, without metrics").cargo(Cargo::new(without_metrics))?;
    let mut summary = Step::new("tests").cargo_counting(Cargo::new(["test", "--workspace"]))?;
    // The atomics of the circuit breaker, under every interleaving `loom`
    // explores; a target directory of their own keeps the main build cached.
    let loom = Cargo::new([
        "test",
        "--package",
        "resilience-runtime",
        "--lib",
        "--release",
        "--target-dir",
        "target/loom",
        "models",
    ])
    .env(&[("RUSTFLAGS", "--cfg loom".into())]);
    let models = Step::new("loom models").cargo_counting(loom)?;
    models.require_suite("resilience_runtime")?;
    summary.add(models);

    let torch = libtorch::provision()?;
    let with_tch = ["--features", "tch"];
    Step::new("clippy, with libtorch").cargo(Cargo::new(clippy(&with_tch)).env(&torch))?;
    let tests = Cargo::new(["test", "--workspace", "--features", "tch"]).env(&torch);
    let with_torch = Step::new("tests, with libtorch").cargo_counting(tests)?;
    // A suite that was skipped or not built is a failure, not a pass.
    with_torch.require_suite("device_libtorch")?;
    with_torch.require_suite("device_fallback")?;
    summary.add(with_torch);
    if gpu_present() {
        let cuda = Cargo::new([
            "test",
            "--features",
            "tch",
            "--test",
            "device_cuda",
            "--",
            "--ignored",
        ])
        .env(&torch);
        let on_gpu = Step::new("tests on the GPU").cargo_counting(cuda)?;
        on_gpu.require_suite("device_cuda")?;
        summary.add(on_gpu);
    }
    println!("{summary}");
    Ok(())
}

fn demo() -> Result<(), String> {
    Step::new("quickstart").cargo(Cargo::new(["run", "--quiet", "--example", "quickstart"]))?;
    Step::new("metrics").cargo(Cargo::new(["run", "--quiet", "--example", "metrics"]))?;
    Step::new("watchdog").cargo(Cargo::new(["run", "--quiet", "--example", "watchdog"]))?;
    Step::new("pipeline").cargo(Cargo::new(["run", "--quiet", "--example", "pipeline"]))?;
    let admission = ["run", "--quiet", "--example", "admission"];
    Step::new("admission").cargo(Cargo::new(admission))?;
    let torch = libtorch::provision()?;
    let example = [
        "run",
        "--quiet",
        "--features",
        "tch",
        "--example",
        "tensor_fallback",
    ];
    Step::new("tensor fallback").cargo(Cargo::new(example).env(&torch))
}

/// Whether `nvidia-smi` finds a GPU, for the tests that need one.
fn gpu_present() -> bool {
    std::process::Command::new("nvidia-smi")
        .arg("--list-gpus")
        .output()
        .is_ok_and(|out| out.status.success() && !out.stdout.is_empty())
}

fn clippy(extra: &[&'static str]) -> Vec<&'static str> {
    let mut args = vec!["clippy", "--workspace", "--all-targets"];
    args.extend_from_slice(extra);
    args.extend(["--", "-D", "warnings"]);
    args
}
