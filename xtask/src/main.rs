//! The workspace's task runner.
//!
//! - `cargo xtask test`: formatting, clippy and every test, first without
//!   features, then against real libtorch with `--features tch`.
//! - `cargo xtask demo`: the examples, libtorch included.
//!
//! Both set up what they need (libtorch in a cached Python environment), so a
//! fresh machine with Rust, Python 3 and a C compiler is enough.

use std::process::ExitCode;

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
    let summary = Step::new("tests").cargo_counting(Cargo::new(["test", "--workspace"]))?;
    println!("{summary}");
    Ok(())
}

fn demo() -> Result<(), String> {
    Step::new("quickstart").cargo(Cargo::new(["run", "--quiet", "--example", "quickstart"]))
}

fn clippy(extra: &[&'static str]) -> Vec<&'static str> {
    let mut args = vec!["clippy", "--workspace", "--all-targets"];
    args.extend_from_slice(extra);
    args.extend(["--", "-D", "warnings"]);
    args
}
