//! Policy files: overrides, reload while calls run, the kill switch, and bad
//! files that are reported with their line and change nothing. The policy is
//! process-wide, so the tests take turns.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

mod common;

use common::{Recorder, write};
use resilience_runtime::breaker::{self, State};
use resilience_runtime::policy;
use resilience_runtime::{CircuitOpenError, TimeoutError, circuit_breaker, retry, timeout_async};
use tokio::time::{Instant, sleep};

static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[timeout_async(ms = 100, policy = "slow-dep")]
async fn fetch(delay: Duration) -> Result<(), TimeoutError> {
    sleep(delay).await;
    Ok(())
}

/// The limit `fetch` runs with now.
async fn fetch_limit() -> Duration {
    fetch(Duration::from_secs(3600)).await.unwrap_err().limit()
}

#[tokio::test(start_paused = true)]
async fn a_file_overrides_by_policy_name_and_reload_swaps_it() {
    let _turn = TURN.lock().await;
    policy::clear();
    assert_eq!(fetch_limit().await, Duration::from_millis(100));

    let path = write(
        "names.toml",
        "[policies.\"slow-dep\"]\ntimeout = \"200ms\"\n",
    );
    policy::load(&path).unwrap();
    assert_eq!(fetch_limit().await, Duration::from_millis(200));

    // A call in flight keeps the policy it started with.
    let started = tokio::spawn(fetch(Duration::from_secs(3600)));
    tokio::task::yield_now().await;
    std::fs::write(&path, "[policies.\"policy::fetch\"]\ntimeout = \"50ms\"\n").unwrap();
    policy::reload().unwrap();
    assert_eq!(
        started.await.unwrap().unwrap_err().limit(),
        Duration::from_millis(200)
    );
    assert_eq!(
        fetch_limit().await,
        Duration::from_millis(50),
        "function paths work too"
    );

    policy::clear();
}

#[tokio::test(start_paused = true)]
async fn keys_are_checked_against_every_annotated_function() {
    let _turn = TURN.lock().await;
    // Every function is known at link time: keys of functions that never ran
    // do not warn; a typo warns with the closest key; a setting for an
    // attribute the function does not have warns too.
    let (recorder, _guard) = Recorder::install();
    let path = write(
        "keys.toml",
        concat!(
            "[policies.\"policy::never_called\".retry]\nattempts = 2\n",
            "[policies.\"slow-dep\"]\ntimeout = \"1s\"\n",
            "[policies.\"policy::fecth\"]\ntimeout = \"1s\"\n",
            "[policies.\"policy::only_retried\"]\ntimeout = \"1s\"\n",
        ),
    );
    policy::load(&path).unwrap();
    let warnings: Vec<_> = recorder
        .events()
        .into_iter()
        .filter(|e| e.fields.contains_key("key"))
        .collect();
    let keys: Vec<&str> = warnings.iter().map(|e| e.field("key")).collect();
    assert_eq!(keys.len(), 2, "{warnings:?}");
    let typo = warnings
        .iter()
        .find(|e| e.field("key") == "policy::fecth")
        .unwrap();
    assert_eq!(typo.field("did_you_mean"), "policy::fetch");
    let misplaced = warnings
        .iter()
        .find(|e| e.field("key") == "policy::only_retried")
        .unwrap();
    assert_eq!(misplaced.field("setting"), "timeout");
    policy::clear();
}

#[retry(attempts = 2)]
async fn never_called() -> Result<(), ()> {
    Ok(())
}

#[retry(attempts = 2)]
async fn only_retried() -> Result<(), ()> {
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn the_documented_example_file_loads() {
    let _turn = TURN.lock().await;
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/policy.example.toml");
    policy::load(example).unwrap();
    assert_eq!(fetch_limit().await, Duration::from_millis(200));
    policy::clear();
}

#[tokio::test(start_paused = true)]
async fn json_and_yaml_mirror_toml() {
    let _turn = TURN.lock().await;
    let json = write(
        "p.json",
        r#"{"policies": {"slow-dep": {"timeout": "300ms"}}}"#,
    );
    policy::load(&json).unwrap();
    assert_eq!(fetch_limit().await, Duration::from_millis(300));
    let yaml = write("p.yaml", "policies:\n  slow-dep:\n    timeout: 400ms\n");
    policy::load(&yaml).unwrap();
    assert_eq!(fetch_limit().await, Duration::from_millis(400));
    policy::clear();
}

/// `(file name, contents, expected line, a fragment of the message)`.
const BAD_FILES: [(&str, &str, Option<usize>, &str); 16] = [
    (
        "unknown-top.toml",
        "enabled = true\nenabeld = false\n",
        Some(2),
        "unknown field `enabeld`",
    ),
    (
        "unknown-entry.toml",
        "[policies.a]\ntimeout = \"1s\"\ntimeuot = \"2s\"\n",
        Some(3),
        "unknown field `timeuot`",
    ),
    (
        "unknown-retry.toml",
        "[policies.a.retry]\nattempts = 2\nretries = 3\n",
        Some(3),
        "unknown field `retries`",
    ),
    (
        "wrong-type.toml",
        "[policies.a.retry]\nattempts = \"three\"\n",
        Some(2),
        "invalid type",
    ),
    (
        "negative.toml",
        "[policies.a]\ntimeout = \"-5s\"\n",
        Some(2),
        "cannot be negative",
    ),
    (
        "parsecs.toml",
        "[policies.a.retry]\nbase = \"250 parsecs\"\n",
        Some(2),
        "unknown time unit",
    ),
    (
        "zero.toml",
        "[policies.a]\ntimeout = \"0s\"\n",
        Some(2),
        "greater than zero",
    ),
    (
        "rate.toml",
        "[policies.a.circuit_breaker]\nfailure_rate = 1.5\n",
        Some(2),
        "failure rate",
    ),
    (
        "two-rates.toml",
        "[policies.a.rate_limit]\nper_second = 5\nper_minute = 100\n",
        Some(1),
        "one rate",
    ),
    (
        "per-without-max.toml",
        "[policies.a]\nrate_limit = { per = \"250ms\" }\n",
        Some(2),
        "`per` and `max` go together",
    ),
    (
        "no-places.toml",
        "[policies.a.bulkhead]\nmax_concurrent = 0\n",
        Some(2),
        "at least 1",
    ),
    (
        "percentile.toml",
        "[policies.a.adaptive]\npercentile = 100.0\n",
        Some(2),
        "below 100",
    ),
    (
        "malformed.toml",
        "[policies.a\ntimeout = \"1s\"\n",
        Some(1),
        "",
    ),
    (
        "malformed.json",
        "{\"policies\": {\"a\": {\"timeout\": }}}",
        Some(1),
        "",
    ),
    (
        "kind.yaml",
        "disabled_kinds:\n  - retry\n  - teleport\n",
        Some(3),
        "unknown variant `teleport`",
    ),
    (
        "format.ini",
        "timeout = 1s\n",
        None,
        "unknown policy file format",
    ),
];

#[tokio::test(start_paused = true)]
async fn a_bad_file_is_reported_with_its_line_and_changes_nothing() {
    let _turn = TURN.lock().await;
    let good = write(
        "good.toml",
        "[policies.\"slow-dep\"]\ntimeout = \"250ms\"\n",
    );
    policy::load(&good).unwrap();
    for (name, text, line, fragment) in BAD_FILES {
        let path = write(name, text);
        let err = policy::load(&path).unwrap_err();
        assert_eq!(err.path(), path, "{name}");
        assert_eq!(err.line(), line, "{name}: {err}");
        assert!(err.message().contains(fragment), "{name}: {err}");
        assert!(
            err.to_string().starts_with(&path.display().to_string()),
            "{err}"
        );
        assert_eq!(
            fetch_limit().await,
            Duration::from_millis(250),
            "{name} changed the policy"
        );
    }
    let missing = policy::load(write("x.toml", "").with_file_name("missing.toml")).unwrap_err();
    assert!(missing.message().contains("cannot read"), "{missing}");
    // `reload` of the good file still works after all that.
    policy::reload().unwrap();
    assert_eq!(fetch_limit().await, Duration::from_millis(250));
    policy::clear();
}

#[derive(Debug)]
#[allow(dead_code)]
enum CallError {
    Failed,
    Open(CircuitOpenError),
}

impl From<CircuitOpenError> for CallError {
    fn from(error: CircuitOpenError) -> Self {
        CallError::Open(error)
    }
}

#[retry(attempts = 3, base = "10ms", jitter = "none", policy = "flaky")]
async fn flaky(calls: &AtomicU32) -> Result<(), CallError> {
    calls.fetch_add(1, Ordering::SeqCst);
    Err(CallError::Failed)
}

#[circuit_breaker(window = 2, min_calls = 2, failure_rate = 1.0, name = "kill")]
async fn guarded() -> Result<(), CallError> {
    Err(CallError::Failed)
}

async fn retry_attempts() -> u32 {
    let calls = AtomicU32::new(0);
    let _ = flaky(&calls).await;
    calls.load(Ordering::SeqCst)
}

#[tokio::test(start_paused = true)]
async fn the_kill_switch_turns_attributes_into_pass_throughs() {
    let _turn = TURN.lock().await;
    policy::clear();
    assert_eq!(retry_attempts().await, 3);

    let retry_off = write("retry-off.toml", "disabled_kinds = [\"retry\"]\n");
    policy::load(&retry_off).unwrap();
    assert_eq!(retry_attempts().await, 1);
    assert_eq!(
        fetch_limit().await,
        Duration::from_millis(100),
        "timeouts still on"
    );

    let entry_off = write("entry-off.toml", "[policies.flaky]\nenabled = false\n");
    policy::load(&entry_off).unwrap();
    assert_eq!(retry_attempts().await, 1);

    let override_retry = write("more.toml", "[policies.flaky.retry]\nattempts = 5\n");
    policy::load(&override_retry).unwrap();
    assert_eq!(retry_attempts().await, 5);

    let all_off = write("all-off.toml", "enabled = false\n");
    policy::load(&all_off).unwrap();
    let start = Instant::now();
    fetch(Duration::from_secs(10)).await.unwrap();
    assert_eq!(
        start.elapsed(),
        Duration::from_secs(10),
        "no deadline at all"
    );
    for _ in 0..5 {
        assert!(
            matches!(guarded().await, Err(CallError::Failed)),
            "never rejected"
        );
    }
    assert!(
        matches!(breaker::state("kill"), None | Some(State::Closed)),
        "nothing counted"
    );

    policy::clear();
    let _ = guarded().await;
    let _ = guarded().await;
    assert!(
        matches!(guarded().await, Err(CallError::Open(_))),
        "back to its own settings"
    );
}

#[retry(attempts = 1, base = "1ms", jitter = "none", policy = "merged")]
#[timeout_async(ms = 100, policy = "merged")]
async fn merged(calls: &AtomicU32, delay: Duration) -> Result<(), TimeoutError> {
    calls.fetch_add(1, Ordering::SeqCst);
    sleep(delay).await;
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn entries_by_path_and_by_name_merge_field_by_field() {
    let _turn = TURN.lock().await;
    // The name entry sets the retry and a timeout; the path entry sets only a
    // timeout, which wins for that field. The name's retry still applies.
    let path = write(
        "merge.toml",
        "[policies.merged]\ntimeout = \"1s\"\n[policies.merged.retry]\nattempts = 3\n\
         [policies.\"policy::merged\"]\ntimeout = \"20ms\"\n",
    );
    policy::load(&path).unwrap();
    let calls = AtomicU32::new(0);
    let err = merged(&calls, Duration::from_secs(5)).await.unwrap_err();
    assert_eq!(err.limit(), Duration::from_millis(20), "the path's timeout");
    assert_eq!(calls.load(Ordering::SeqCst), 3, "the name's retry");
    policy::clear();
}

#[circuit_breaker(name = "pricing-feed", open_for = "30s")]
async fn priced() -> Result<(), CircuitOpenError> {
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_shared_breaker_takes_its_settings_by_its_name() {
    let _turn = TURN.lock().await;
    let open_for = || {
        resilience_runtime::sites()
            .into_iter()
            .find(|site| site.function == "policy::priced")
            .and_then(|site| match &site.layers[..] {
                [resilience_runtime::sites::Layer::Breaker { settings, .. }] => {
                    settings.map(|s| s.open_for)
                }
                _ => None,
            })
    };
    assert_eq!(open_for(), Some(Duration::from_secs(30)));
    let path = write(
        "breaker-name.toml",
        "[policies.\"pricing-feed\".circuit_breaker]\nopen_for = \"5s\"\n",
    );
    policy::load(&path).unwrap();
    assert_eq!(open_for(), Some(Duration::from_secs(5)));
    priced().await.unwrap();
    policy::clear();
}

#[tokio::test(start_paused = true)]
async fn only_its_name_reaches_a_shared_breaker_kill_switch_included() {
    let _turn = TURN.lock().await;
    breaker::force_open("pricing-feed");
    // The function's path does not reach the breaker it shares: still open.
    let by_path = write(
        "shared-by-path.toml",
        "[policies.\"policy::priced\".circuit_breaker]\nenabled = false\n",
    );
    policy::load(&by_path).unwrap();
    assert!(priced().await.is_err());
    // Its name does: switched off, the call runs.
    let by_name = write(
        "shared-by-name.toml",
        "[policies.\"pricing-feed\".circuit_breaker]\nenabled = false\n",
    );
    policy::load(&by_name).unwrap();
    assert!(priced().await.is_ok());
    policy::clear();
    breaker::reset("pricing-feed");
}
