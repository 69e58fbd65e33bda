//! The orchestrator's five-stage pipeline in a 250 ms budget: healthy, with a
//! slow processing stage (a partial result), and with a failing validation
//! (fail-soft). Each run prints its report.
//!
//! Run it with `cargo xtask demo` (or `cargo run --example pipeline`).

use std::time::Duration;

use resilience_runtime::TimeoutError;
use resilience_runtime::pipeline::{self, Stages};
use tokio::time::sleep;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[derive(Debug, thiserror::Error)]
enum QueryError {
    #[error(transparent)]
    Timeout(#[from] TimeoutError),
    #[error("the answer does not hold up")]
    Invalid,
}

/// How long each stage takes in one scenario, and whether validation fails.
struct Scenario {
    name: &'static str,
    processing: u64,
    validation_fails: bool,
}

async fn step<T>(took: u64, value: T) -> Result<T, QueryError> {
    sleep(ms(took)).await;
    Ok(value)
}

async fn answer(p: Stages, input: &str, scenario: &Scenario) -> Result<String, QueryError> {
    let intent = p
        .stage("intent", ms(50), step(15, format!("intent of {input:?}")))
        .await?;
    let node = p
        .stage("decision", ms(100), step(30, "pricing node"))
        .await?;
    let out = p
        .stage(
            "processing",
            ms(120),
            step(scenario.processing, format!("{node} answered {intent}")),
        )
        .await?;
    let fails = scenario.validation_fails;
    let valid = p
        .optional("validation", ms(40), async move {
            sleep(ms(10)).await;
            if fails {
                Err(QueryError::Invalid)
            } else {
                Ok(true)
            }
        })
        .await;
    p.optional("reflection", ms(30), step(10, valid)).await;
    Ok(out)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let scenarios = [
        Scenario {
            name: "healthy",
            processing: 40,
            validation_fails: false,
        },
        Scenario {
            name: "slow processing",
            processing: 400,
            validation_fails: false,
        },
        Scenario {
            name: "failing validation",
            processing: 40,
            validation_fails: true,
        },
    ];
    for scenario in &scenarios {
        let report =
            pipeline::run("query", ms(250), |p| answer(p, "price of ACME", scenario)).await;
        println!("{}:", scenario.name);
        print!("{report}");
        match report.result() {
            Ok(out) => println!("  result: {out}\n"),
            Err(error) => println!("  result: {error}\n"),
        }
    }
}
