//! What policy files add for drills and incidents: a `[chaos]` table,
//! escalation of failures that keep happening, keys that name modules, and
//! the errors for bad ones. The policy is process-wide, so the tests take
//! turns.

mod common;

use std::sync::mpsc;
use std::time::Duration;

use common::{Recorder, write};
use resilience_runtime::watchdog::{self, Escalation};
use resilience_runtime::{TimeoutError, chaos, policy, retry, timeout_async};
use tokio::time::{Instant, sleep};

static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[derive(Debug, thiserror::Error)]
enum QuoteError {
    #[error(transparent)]
    Timeout(#[from] TimeoutError),
    #[error(transparent)]
    Injected(#[from] chaos::InjectedError),
}

#[timeout_async("1s")]
async fn quote() -> Result<u32, QuoteError> {
    Ok(1)
}

#[tokio::test(start_paused = true)]
async fn a_chaos_table_injects_only_when_the_file_enables_it_and_the_kill_switch_stops_it() {
    let _turn = TURN.lock().await;
    let table = "[chaos.\"drills::quote\"]\ndelay = \"300ms\"\ntimes = 2\n";
    policy::load(write("off.toml", table)).unwrap();
    let start = Instant::now();
    quote().await.unwrap();
    assert_eq!(start.elapsed(), Duration::ZERO, "not enabled");

    policy::load(write("on.toml", &format!("chaos_enabled = true\n{table}"))).unwrap();
    let start = Instant::now();
    quote().await.unwrap();
    assert_eq!(start.elapsed(), Duration::from_millis(300));

    // The kill switch: every attribute passes through, and what was
    // injected, from a file or from code, is removed.
    chaos::inject_error("drills::quote", 1);
    policy::load(write(
        "killed.toml",
        &format!("enabled = false\nchaos_enabled = true\n{table}"),
    ))
    .unwrap();
    let start = Instant::now();
    quote().await.unwrap();
    assert_eq!(start.elapsed(), Duration::ZERO);
    policy::clear();
    let start = Instant::now();
    quote().await.unwrap();
    assert_eq!(
        start.elapsed(),
        Duration::ZERO,
        "nothing left after the switch"
    );

    // A new file replaces what the last one injected; `clear` drops it.
    policy::load(write(
        "delay.toml",
        &format!("chaos_enabled = true\n{table}"),
    ))
    .unwrap();
    let error = "chaos_enabled = true\n[chaos.\"drills::quote\"]\nerror = true\n";
    policy::load(write("error.toml", error)).unwrap();
    let start = Instant::now();
    assert!(matches!(quote().await, Err(QuoteError::Injected(_))));
    quote().await.unwrap();
    assert_eq!(
        start.elapsed(),
        Duration::ZERO,
        "the first file's delay went with it"
    );
    policy::load(write(
        "again.toml",
        &format!("chaos_enabled = true\n{table}"),
    ))
    .unwrap();
    policy::clear();
    let start = Instant::now();
    quote().await.unwrap();
    assert_eq!(start.elapsed(), Duration::ZERO, "cleared with the file");
}

/// The escalations of `function` from now on, from a handler.
fn escalations_of(function: &'static str) -> mpsc::Receiver<Escalation> {
    let (send, escalations) = mpsc::channel();
    let send = std::sync::Mutex::new(send);
    watchdog::on_escalation(move |e| {
        if e.function() == function {
            send.lock().unwrap().send(e.clone()).unwrap();
        }
    });
    escalations
}

#[timeout_async("100ms")]
async fn hangs() -> Result<(), TimeoutError> {
    sleep(Duration::from_secs(10)).await;
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn the_fifth_timeout_within_a_minute_escalates_once_per_window() {
    let _turn = TURN.lock().await;
    let recorder = Recorder::global();
    // A handler that panics is logged; the next one still runs.
    watchdog::on_escalation(|_| panic!("a broken pager"));
    let escalations = escalations_of("drills::hangs");
    policy::load(write(
        "escalate.toml",
        "[escalate]\nafter = 50\n[policies.\"drills::hangs\"]\nescalate = { after = 5, within = \"1m\" }\n",
    ))
    .unwrap();
    let next = || escalations.recv_timeout(Duration::from_secs(10));
    for _ in 0..4 {
        hangs().await.unwrap_err();
    }
    let none = escalations.recv_timeout(Duration::from_millis(300));
    assert!(none.is_err(), "four are not five: {none:?}");
    hangs().await.unwrap_err();
    let escalation = next().unwrap();
    assert_eq!(escalation.function(), "drills::hangs");
    assert_eq!(escalation.cause(), "timeout");
    assert_eq!(escalation.count(), 5);
    assert_eq!(escalation.window(), Duration::from_secs(60));
    assert!(
        escalation.last_error().contains("timed out after 100ms"),
        "{escalation:?}"
    );
    // The sixth and seventh in the same window escalate nothing more.
    hangs().await.unwrap_err();
    hangs().await.unwrap_err();
    let none = escalations.recv_timeout(Duration::from_millis(300));
    assert!(none.is_err(), "once per window: {none:?}");
    // A minute later, five more are a new incident.
    sleep(Duration::from_secs(60)).await;
    for _ in 0..5 {
        hangs().await.unwrap_err();
    }
    let again = next().unwrap();
    assert_eq!(again.count(), 5);
    assert!(
        escalations
            .recv_timeout(Duration::from_millis(300))
            .is_err()
    );
    let escalated = recorder.find(
        "escalation: 5 timeout within 60s",
        "function",
        "drills::hangs",
    );
    assert_eq!(escalated.len(), 2, "{escalated:?}");
    // Frames are not tracked here: the chain is empty, the field is there.
    assert_eq!(escalated[0].field("chain"), "");
    let errors: Vec<_> = recorder
        .events()
        .into_iter()
        .filter(|e| {
            e.level == tracing::Level::ERROR
                && e.fields.get("function").map(String::as_str) == Some("drills::hangs")
        })
        .collect();
    let escalated = errors
        .iter()
        .filter(|e| e.fields.get("cause").is_some_and(|c| c == "timeout"));
    assert_eq!(escalated.count(), 2, "{errors:?}");
    assert!(
        errors
            .iter()
            .any(|e| e.field("message").contains("handler panicked")),
        "{errors:?}"
    );
    policy::clear();
}

#[derive(Debug, thiserror::Error)]
enum VenueError {
    #[error("down")]
    Down,
    #[error(transparent)]
    Open(#[from] resilience_runtime::CircuitOpenError),
}

#[resilience_runtime::circuit_breaker(window = 2, min_calls = 2, open_for = "10s")]
async fn fragile() -> Result<(), VenueError> {
    Err(VenueError::Down)
}

#[tokio::test(start_paused = true)]
async fn a_breaker_that_opens_escalates_under_its_name() {
    let _turn = TURN.lock().await;
    let escalations = escalations_of("drills::fragile");
    policy::load(write(
        "breaker.toml",
        "[policies.\"drills::fragile\"]\nescalate = { after = 1 }\n",
    ))
    .unwrap();
    assert!(matches!(fragile().await, Err(VenueError::Down)));
    assert!(matches!(fragile().await, Err(VenueError::Down)));
    assert!(matches!(fragile().await, Err(VenueError::Open(_))));
    let escalation = escalations.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(escalation.cause(), "breaker_opened");
    assert_eq!(escalation.count(), 1);
    assert_eq!(escalation.window(), Duration::from_secs(60));
    policy::clear();
}

mod venues {
    use std::sync::atomic::{AtomicU32, Ordering::Relaxed};

    use super::*;

    pub(super) static RUNS: AtomicU32 = AtomicU32::new(0);

    /// Fails at once; its retry's settings come from the policy file.
    #[retry(attempts = 1, base = "1ms", jitter = "none")]
    pub(super) async fn flaky() -> std::io::Result<()> {
        RUNS.fetch_add(1, Relaxed);
        Err(std::io::ErrorKind::ConnectionReset.into())
    }

    pub(super) fn runs() -> u32 {
        RUNS.load(Relaxed)
    }

    #[timeout_async("1s")]
    #[retry(attempts = 1)]
    pub(super) async fn fill() -> Result<Duration, TimeoutError> {
        sleep(Duration::from_secs(3600)).await;
        Ok(Duration::ZERO)
    }

    pub(super) mod lit {
        use super::*;

        #[timeout_async("1s")]
        pub(in super::super) async fn cross() -> Result<(), TimeoutError> {
            sleep(Duration::from_secs(3600)).await;
            Ok(())
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_module_key_reaches_every_function_under_it_and_the_most_specific_wins() {
    let _turn = TURN.lock().await;
    let (recorder, _guard) = Recorder::install();
    policy::load(write(
        "modules.toml",
        "[policies.\"drills::venues\"]\ntimeout = \"50ms\"\n\
         [policies.\"drills::venues::lit\"]\ntimeout = \"20ms\"\n",
    ))
    .unwrap();
    let warnings = recorder.warnings();
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(
        venues::fill().await.unwrap_err().limit(),
        Duration::from_millis(50)
    );
    assert_eq!(
        venues::lit::cross().await.unwrap_err().limit(),
        Duration::from_millis(20)
    );
    // The function's own key wins its field; the module keeps the others.
    policy::load(write(
        "specific.toml",
        "[policies.\"drills::venues\"]\ntimeout = \"50ms\"\n\
         [policies.\"drills::venues\".retry]\nattempts = 3\nbase = \"1s\"\n\
         [policies.\"drills::venues::fill\"]\ntimeout = \"70ms\"\n\
         [policies.\"drills::venues::flaky\".retry]\nbase = \"2ms\"\n",
    ))
    .unwrap();
    assert_eq!(
        venues::fill().await.unwrap_err().limit(),
        Duration::from_millis(70)
    );
    assert_eq!(
        venues::lit::cross().await.unwrap_err().limit(),
        Duration::from_millis(50)
    );
    // Three attempts from the module, 2 ms and 4 ms apart by the function.
    let (runs, start) = (venues::runs(), Instant::now());
    venues::flaky().await.unwrap_err();
    assert_eq!(venues::runs(), runs + 3);
    assert_eq!(start.elapsed(), Duration::from_millis(6));
    policy::clear();
}

#[tokio::test]
async fn bad_drill_keys_are_errors_with_their_line_that_change_nothing() {
    let _turn = TURN.lock().await;
    policy::clear();
    for (text, line, says) in [
        (
            "chaos_enabled = true\n[chaos.\"drills::quote\"]\ntimes = 2\n",
            2,
            "injects nothing",
        ),
        (
            "[chaos.\"drills::quote\"]\ndelay = \"soon\"\n",
            2,
            "invalid duration",
        ),
        (
            "[chaos.\"drills::quote\"]\nerror = true\nstall = 1\n",
            3,
            "unknown field",
        ),
        (
            "[policies.\"drills::hangs\"]\nescalate = { after = 0 }\n",
            2,
            "at least 1",
        ),
        ("[escalate]\nwithin = \"0s\"\n", 2, "zero"),
    ] {
        let path = write("bad.toml", text);
        let error = policy::load(&path).unwrap_err();
        assert_eq!(error.line(), Some(line), "{text}: {error}");
        assert!(error.message().contains(says), "{text}: {error}");
    }
    // Nothing was injected by the files that failed.
    let start = Instant::now();
    quote().await.unwrap();
    assert!(start.elapsed() < Duration::from_millis(100));
}

#[tokio::test(start_paused = true)]
async fn a_pipelines_stage_caps_come_from_its_entry() {
    let _turn = TURN.lock().await;
    let (recorder, _guard) = Recorder::install();
    policy::load(write(
        "stages.toml",
        "[policies.\"priced\".stages]\nintent = \"60ms\"\n",
    ))
    .unwrap();
    let warnings = recorder.warnings();
    assert!(warnings.is_empty(), "{warnings:?}");
    let report =
        resilience_runtime::pipeline::run("priced", Duration::from_millis(250), |p| async move {
            p.stage("intent", Duration::from_millis(50), async {
                Ok::<_, TimeoutError>(())
            })
            .await?;
            p.stage("decision", Duration::from_millis(50), async {
                Ok::<_, TimeoutError>(())
            })
            .await
        })
        .await;
    let limits: Vec<_> = report.stages().iter().map(|s| s.limit()).collect();
    assert_eq!(
        limits,
        [Duration::from_millis(60), Duration::from_millis(50)]
    );
    policy::clear();
}
