//! `loom` models of the state machine: every interleaving of admit, record,
//! cancel and forced transitions across threads.
//!
//! `RUSTFLAGS="--cfg loom" cargo test -p resilience-runtime --lib --release breaker::machine::models`

use std::time::Duration;

use loom::sync::Arc;
use loom::thread;

use super::*;

const OPEN_FOR: Duration = Duration::from_secs(10);

fn limits(half_open_probes: u32) -> Limits {
    Limits {
        failure_rate: 0.5,
        window: 2,
        min_calls: 2,
        open_for: OPEN_FOR,
        half_open_probes,
    }
}

/// A machine that opened at time zero.
fn opened(limits: &Limits) -> Arc<Machine> {
    let machine = Arc::new(Machine::new());
    for _ in 0..2 {
        let (Admission::Run(ticket), _) = machine.admit(limits, || Duration::ZERO) else {
            panic!("a closed breaker admits");
        };
        machine.record(ticket, true, limits, || Duration::ZERO);
    }
    assert_eq!(machine.state(), State::Open);
    machine
}

fn admitted(admission: Admission) -> Option<Ticket> {
    match admission {
        Admission::Run(ticket) => Some(ticket),
        _ => None,
    }
}

#[test]
fn half_open_admits_no_more_than_its_probes() {
    loom::model(|| {
        let limits = limits(1);
        let machine = opened(&limits);
        let callers: Vec<_> = (0..2)
            .map(|_| {
                let machine = machine.clone();
                thread::spawn(move || admitted(machine.admit(&limits, || OPEN_FOR).0))
            })
            .collect();
        let tickets: Vec<Ticket> = callers
            .into_iter()
            .filter_map(|c| c.join().unwrap())
            .collect();
        assert_eq!(tickets.len(), 1);
        assert_eq!(machine.state(), State::HalfOpen);
        assert_eq!(machine.probes(), 1);
    });
}

#[test]
fn a_late_probe_and_a_cancelled_one_leave_the_next_round_usable() {
    loom::model(|| {
        let limits = limits(2);
        let machine = opened(&limits);
        // Round 1: a slow probe, and one that fails and reopens the breaker.
        let slow = admitted(machine.admit(&limits, || OPEN_FOR).0).unwrap();
        let failing = admitted(machine.admit(&limits, || OPEN_FOR).0).unwrap();
        machine.record(failing, true, &limits, || OPEN_FOR);
        let round_two = OPEN_FOR * 2;
        let fresh = admitted(machine.admit(&limits, || round_two).0).unwrap();

        let late = {
            let machine = machine.clone();
            thread::spawn(move || {
                machine.record(slow, false, &limits, || round_two);
            })
        };
        let cancelled = {
            let machine = machine.clone();
            thread::spawn(move || machine.cancel(fresh))
        };
        late.join().unwrap();
        cancelled.join().unwrap();

        assert_eq!(machine.state(), State::HalfOpen);
        assert_eq!(machine.probes(), 0);
        let (first, second) = (
            admitted(machine.admit(&limits, || round_two).0),
            admitted(machine.admit(&limits, || round_two).0),
        );
        assert!(first.is_some() && second.is_some());
        assert_eq!(
            machine.admit(&limits, || round_two).0,
            Admission::Reject(None)
        );
    });
}

#[test]
fn concurrent_probe_successes_close_once() {
    loom::model(|| {
        let limits = limits(2);
        let machine = opened(&limits);
        let tickets = [
            admitted(machine.admit(&limits, || OPEN_FOR).0).unwrap(),
            admitted(machine.admit(&limits, || OPEN_FOR).0).unwrap(),
        ];
        let probes: Vec<_> = tickets
            .into_iter()
            .map(|ticket| {
                let machine = machine.clone();
                thread::spawn(move || machine.record(ticket, false, &limits, || OPEN_FOR))
            })
            .collect();
        let closed = probes
            .into_iter()
            .filter_map(|p| p.join().unwrap())
            .filter(|t| t.to == State::Closed)
            .count();
        assert_eq!(closed, 1);
        assert_eq!(machine.state(), State::Closed);
    });
}

#[test]
fn a_failed_probe_wins_over_a_concurrent_success() {
    loom::model(|| {
        let limits = limits(2);
        let machine = opened(&limits);
        let ok = admitted(machine.admit(&limits, || OPEN_FOR).0).unwrap();
        let bad = admitted(machine.admit(&limits, || OPEN_FOR).0).unwrap();
        let success = {
            let machine = machine.clone();
            thread::spawn(move || machine.record(ok, false, &limits, || OPEN_FOR))
        };
        machine.record(bad, true, &limits, || OPEN_FOR);
        success.join().unwrap();
        assert_eq!(machine.state(), State::Open);
        // Reopened now, so the next probe waits `open_for` again.
        assert!(matches!(
            machine.admit(&limits, || OPEN_FOR).0,
            Admission::Reject(Some(left)) if left == OPEN_FOR
        ));
    });
}

#[test]
fn forcing_wins_over_a_concurrent_opening() {
    loom::model(|| {
        let limits = limits(1);
        let machine = Arc::new(Machine::new());
        let tickets = [
            admitted(machine.admit(&limits, || Duration::ZERO).0).unwrap(),
            admitted(machine.admit(&limits, || Duration::ZERO).0).unwrap(),
        ];
        let failures = {
            let machine = machine.clone();
            thread::spawn(move || {
                for ticket in tickets {
                    machine.record(ticket, true, &limits, || Duration::ZERO);
                }
            })
        };
        machine.set(State::ForcedClosed, Duration::ZERO);
        failures.join().unwrap();
        // Either the failures opened it and the operator then closed it, or
        // they belonged to a round the operator had already ended.
        assert_eq!(machine.state(), State::ForcedClosed);
    });
}

#[test]
fn a_failure_right_after_closing_does_not_reopen_on_old_outcomes() {
    loom::model(|| {
        let limits = limits(1);
        let machine = opened(&limits);
        let probe = admitted(machine.admit(&limits, || OPEN_FOR).0).unwrap();
        let closing = {
            let machine = machine.clone();
            thread::spawn(move || machine.record(probe, false, &limits, || OPEN_FOR))
        };
        let failing = {
            let machine = machine.clone();
            thread::spawn(move || {
                if let (Admission::Run(ticket), _) = machine.admit(&limits, || OPEN_FOR) {
                    machine.record(ticket, true, &limits, || OPEN_FOR);
                }
            })
        };
        closing.join().unwrap();
        failing.join().unwrap();
        // One failure in a fresh window is below `min_calls`.
        assert_eq!(machine.state(), State::Closed);
    });
}
