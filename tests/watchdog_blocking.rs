//! The watchdog on the real clock: a poll that blocks its worker thread is
//! reported from the watchdog's own thread. Its own binary, so that no
//! test on a paused clock runs beside it.

mod common;

use std::io;
use std::time::Duration;

use common::Recorder;
use resilience_runtime::{chaos, timeout_async, watchdog};

#[timeout_async("5s")]
async fn blocks_its_worker() -> io::Result<()> {
    std::thread::sleep(Duration::from_millis(300));
    Ok(())
}

#[timeout_async("5s")]
async fn priced() -> io::Result<()> {
    Ok(())
}

/// On the real clock, with every worker of a runtime free to be blocked:
/// the watchdog's own thread sees the poll that holds one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poll_that_blocks_its_worker_is_reported_from_the_watchdogs_thread() {
    let recorder = Recorder::global();
    let _dog = watchdog::start(watchdog::Config::default());
    tokio::spawn(blocks_its_worker()).await.unwrap().unwrap();
    chaos::inject_blocking("watchdog_blocking::priced", Duration::from_millis(300), 1);
    tokio::spawn(priced()).await.unwrap().unwrap();
    for function in [
        "watchdog_blocking::blocks_its_worker",
        "watchdog_blocking::priced",
    ] {
        let blocking = recorder.find("blocking poll", "function", function);
        assert_eq!(blocking.len(), 1, "{function}: {:?}", recorder.events());
        let polling: u64 = blocking[0].field("polling_ms").parse().unwrap();
        assert!((100..=300).contains(&polling), "{polling}");
        assert!(
            blocking[0].field("thread").contains("tokio"),
            "{:?}",
            blocking[0]
        );
        assert_eq!(blocking[0].field("chain"), function);
    }
}
