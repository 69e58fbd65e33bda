//! The budgeted pipeline, on the paused clock: caps inside a total budget,
//! optional stages that fail soft or are skipped, and partial results when
//! the budget runs out.

use std::time::Duration;

use resilience_runtime::pipeline::{self, StageOutcome, Stages};
use resilience_runtime::{TimeoutError, monitor, timeout};
use tokio::time::sleep;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[derive(Debug, thiserror::Error, PartialEq)]
enum QueryError {
    #[error(transparent)]
    Timeout(#[from] TimeoutError),
    #[error("no node")]
    NoNode,
}

/// A stage that takes `took` and then returns `value`.
async fn work(took: u64, value: &'static str) -> Result<&'static str, QueryError> {
    sleep(ms(took)).await;
    Ok(value)
}

/// The five stages of the orchestrator, with its caps, taking `took` each.
async fn five(
    p: Stages,
    took: [u64; 5],
    validation_fails: bool,
) -> Result<&'static str, QueryError> {
    p.stage("intent", ms(50), work(took[0], "intent")).await?;
    p.stage("decision", ms(100), work(took[1], "node")).await?;
    let out = p
        .stage("processing", ms(120), work(took[2], "answer"))
        .await?;
    let valid = p
        .optional("validation", ms(40), async move {
            sleep(ms(took[3])).await;
            if validation_fails {
                Err(QueryError::NoNode)
            } else {
                Ok(true)
            }
        })
        .await;
    p.optional("reflection", ms(30), work(took[4], "thought"))
        .await;
    let _ = valid;
    Ok(out)
}

fn outcomes<T, E>(report: &pipeline::PipelineReport<T, E>) -> Vec<(&'static str, StageOutcome)> {
    report
        .stages()
        .iter()
        .map(|s| (s.name(), s.outcome()))
        .collect()
}

#[tokio::test(start_paused = true)]
async fn a_healthy_run_completes_every_stage_within_its_cap() {
    let report = pipeline::run("query", ms(250), |p| five(p, [20, 40, 60, 10, 10], false)).await;
    assert_eq!(report.result(), &Ok("answer"));
    assert!(!report.partial());
    assert!(report.within_budget());
    assert_eq!(report.elapsed(), ms(140));
    use StageOutcome::Ok as Done;
    assert_eq!(
        outcomes(&report),
        [
            ("intent", Done),
            ("decision", Done),
            ("processing", Done),
            ("validation", Done),
            ("reflection", Done)
        ]
    );
    let limits: Vec<_> = report.stages().iter().map(|s| s.limit()).collect();
    // Each stage gets its cap, or what is left of 250 ms when that is less.
    assert_eq!(limits, [ms(50), ms(100), ms(120), ms(40), ms(30)]);
    let table = report.to_string();
    assert!(
        table.starts_with("pipeline `query`: complete in 140 ms of 250 ms"),
        "{table}"
    );
    assert!(table.contains("validation (opt)"), "{table}");
}

#[tokio::test(start_paused = true)]
async fn a_critical_stage_past_its_cap_ends_the_run_with_what_completed() {
    let report = pipeline::run("query", ms(250), |p| five(p, [20, 40, 500, 10, 10], false)).await;
    match report.result() {
        Err(QueryError::Timeout(error)) => assert_eq!(error.function(), "query/processing"),
        other => panic!("{other:?}"),
    }
    assert!(report.partial());
    assert_eq!(
        outcomes(&report),
        [
            ("intent", StageOutcome::Ok),
            ("decision", StageOutcome::Ok),
            ("processing", StageOutcome::TimedOut)
        ]
    );
    assert_eq!(report.stages()[2].elapsed(), ms(120));
    assert_eq!(report.elapsed(), ms(180));
}

#[tokio::test(start_paused = true)]
async fn an_optional_stage_fails_soft_and_is_skipped_without_time() {
    let report = pipeline::run("query", ms(250), |p| five(p, [20, 40, 60, 10, 10], true)).await;
    assert_eq!(report.result(), &Ok("answer"));
    assert!(report.partial(), "validation failed");
    assert_eq!(report.stages()[3].outcome(), StageOutcome::Failed);
    assert_eq!(report.stages()[4].outcome(), StageOutcome::Ok);

    // 247 ms spent: 3 ms left, under the 5 ms worth starting with.
    let report = pipeline::run("query", ms(250), |p| five(p, [50, 97, 100, 10, 10], false)).await;
    assert_eq!(report.result(), &Ok("answer"));
    assert_eq!(report.stages()[3].outcome(), StageOutcome::Skipped);
    assert_eq!(report.stages()[3].limit(), ms(3));
    assert_eq!(report.stages()[4].outcome(), StageOutcome::Skipped);
    assert!(report.within_budget());

    // The minimum is settable.
    let report = pipeline::run("query", ms(250), |p| async move {
        p.min_useful(ms(1));
        five(p, [50, 97, 100, 10, 10], false).await
    })
    .await;
    assert_eq!(report.stages()[3].outcome(), StageOutcome::TimedOut);
    assert_eq!(report.stages()[3].limit(), ms(3));
}

#[tokio::test(start_paused = true)]
async fn when_the_budget_runs_out_the_report_keeps_every_stage_that_ran() {
    let report = pipeline::run("query", ms(100), |p| async move {
        p.stage("intent", ms(50), work(30, "intent")).await?;
        // A critical stage whose cap is more than the budget left: the
        // budget cuts it, and it is recorded as timed out.
        p.stage("processing", ms(120), work(500, "answer")).await
    })
    .await;
    assert!(matches!(report.result(), Err(QueryError::Timeout(_))));
    assert_eq!(
        outcomes(&report),
        [
            ("intent", StageOutcome::Ok),
            ("processing", StageOutcome::TimedOut)
        ]
    );
    assert_eq!(report.stages()[1].limit(), ms(70));
    assert_eq!(report.elapsed(), ms(100));
    assert!(
        !report.within_budget(),
        "the budget ran out inside the stage"
    );
    assert!(report.to_string().contains("out of budget"), "{report}");

    // Time spent outside any stage: the run itself is cut short.
    let report = pipeline::run("query", ms(100), |p| async move {
        p.stage("intent", ms(50), work(30, "intent")).await?;
        sleep(ms(500)).await;
        Ok::<_, QueryError>("late")
    })
    .await;
    assert!(matches!(report.result(), Err(QueryError::Timeout(_))));
    assert!(!report.within_budget());
    assert_eq!(outcomes(&report), [("intent", StageOutcome::Ok)]);
    assert!(report.to_string().contains("out of budget"), "{report}");
}

#[tokio::test(start_paused = true)]
async fn a_run_nests_in_an_enclosing_budget() {
    let report = timeout(
        ms(60),
        pipeline::run("query", ms(250), |p| five(p, [20, 40, 60, 10, 10], false)),
    )
    .await
    .unwrap();
    assert!(matches!(report.result(), Err(QueryError::Timeout(_))));
    let limits: Vec<_> = report.stages().iter().map(|s| s.limit()).collect();
    // `decision` ends at 60 ms, as the enclosing budget does: `processing`
    // starts with nothing left and times out at once.
    assert_eq!(limits, [ms(50), ms(40), ms(0)]);
    assert_eq!(report.stages()[2].outcome(), StageOutcome::TimedOut);
    assert_eq!(report.elapsed(), ms(60));
}

#[tokio::test(start_paused = true)]
async fn stages_are_recorded_in_the_latency_monitor_as_pipeline_slash_stage() {
    pipeline::run("monitored", ms(250), |p| {
        five(p, [20, 40, 60, 10, 10], true)
    })
    .await;
    let intent = monitor::latency("monitored/intent").unwrap();
    assert_eq!((intent.count(), intent.errors()), (1, 0));
    let validation = monitor::latency("monitored/validation").unwrap();
    assert_eq!((validation.count(), validation.errors()), (1, 1));
    assert!(
        monitor::all()
            .iter()
            .any(|(name, _)| *name == "monitored/processing")
    );
}

#[tokio::test(start_paused = true)]
async fn stages_awaited_together_each_keep_their_own_cap() {
    let report = pipeline::run("together", ms(250), |p| async move {
        let (a, b) = tokio::join!(
            p.optional("slow", ms(10), work(50, "a")),
            p.optional("quick", ms(30), work(20, "b")),
        );
        Ok::<_, QueryError>((a, b))
    })
    .await;
    assert_eq!(report.result(), &Ok((None, Some("b"))));
    let seen: Vec<_> = report
        .stages()
        .iter()
        .map(|s| (s.name(), s.outcome(), s.elapsed()))
        .collect();
    assert_eq!(
        seen,
        [
            ("slow", StageOutcome::TimedOut, ms(10)),
            ("quick", StageOutcome::Ok, ms(20))
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_stage_held_aside_past_its_deadline_neither_stalls_nor_spins_the_run() {
    let report = pipeline::run("aside", ms(250), |p| async move {
        let held = std::pin::pin!(p.optional("held", ms(10), work(100, "x")));
        let mut held = held;
        // Polled once, then left waiting while the body goes on.
        tokio::select! {
            biased;
            _ = &mut held => unreachable!("it takes 100 ms"),
            () = std::future::ready(()) => {}
        }
        sleep(ms(50)).await;
        Ok::<_, QueryError>(held.await)
    })
    .await;
    assert_eq!(report.result(), &Ok(None));
    assert_eq!(report.elapsed(), ms(50));
    assert_eq!(report.stages()[0].outcome(), StageOutcome::TimedOut);
}

#[tokio::test(start_paused = true)]
async fn an_optional_stage_the_budget_cuts_still_lets_the_run_succeed() {
    let report = pipeline::run("cut", ms(100), |p| async move {
        // Its cap is more than the budget: the budget's deadline is its own.
        let checked = p.optional("validation", ms(200), work(500, "x")).await;
        Ok::<_, QueryError>(checked)
    })
    .await;
    assert_eq!(report.result(), &Ok(None));
    assert_eq!(report.stages()[0].outcome(), StageOutcome::TimedOut);
    assert_eq!(report.elapsed(), ms(100));
}
