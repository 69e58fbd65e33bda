//! Every annotated function is known at link time, with a state of its own
//! and a name that includes its type where there is one.

use std::time::Duration;

use resilience_runtime::breaker::{self, State};
use resilience_runtime::sites::{Layer, Site};
use resilience_runtime::{CircuitOpenError, circuit_breaker, retry, sites, timeout_async};

#[derive(Debug, PartialEq)]
enum OrderError {
    Rejected,
    Open(&'static str),
}

impl From<CircuitOpenError> for OrderError {
    fn from(error: CircuitOpenError) -> Self {
        OrderError::Open(error.breaker())
    }
}

mod venues {
    use super::*;

    fn outcome(ok: bool) -> Result<(), OrderError> {
        if ok {
            Ok(())
        } else {
            Err(OrderError::Rejected)
        }
    }

    pub(crate) struct Binance;
    pub(crate) struct Kraken;

    impl Binance {
        #[circuit_breaker(window = 2, min_calls = 2, failure_rate = 1.0)]
        pub(crate) async fn place(&self, ok: bool) -> Result<(), OrderError> {
            outcome(ok)
        }

        /// No `Self` in the signature: reports the module's path.
        #[circuit_breaker(window = 1, min_calls = 1, failure_rate = 1.0)]
        pub(crate) async fn status(ok: bool) -> Result<(), OrderError> {
            outcome(ok)
        }
    }

    impl Kraken {
        #[circuit_breaker(window = 2, min_calls = 2, failure_rate = 1.0)]
        pub(crate) async fn place(&self, ok: bool) -> Result<(), OrderError> {
            outcome(ok)
        }

        #[circuit_breaker(window = 1, min_calls = 1, failure_rate = 1.0)]
        pub(crate) async fn status(ok: bool) -> Result<(), OrderError> {
            outcome(ok)
        }
    }
}

use venues::{Binance, Kraken};

#[tokio::test(start_paused = true)]
async fn methods_of_one_name_on_two_types_have_two_breakers() {
    for _ in 0..2 {
        assert_eq!(Binance.place(false).await, Err(OrderError::Rejected));
    }
    assert_eq!(
        Binance.place(true).await,
        Err(OrderError::Open("sites::venues::Binance::place"))
    );
    assert_eq!(
        breaker::state("sites::venues::Binance::place"),
        Some(State::Open)
    );
    // Failover to the other venue works.
    assert_eq!(Kraken.place(true).await, Ok(()));
    assert_eq!(
        breaker::state("sites::venues::Kraken::place"),
        Some(State::Closed)
    );
}

#[tokio::test(start_paused = true)]
async fn associated_functions_without_self_share_a_name_but_not_a_state() {
    assert_eq!(Binance::status(false).await, Err(OrderError::Rejected));
    assert_eq!(
        Binance::status(true).await,
        Err(OrderError::Open("sites::venues::status"))
    );
    assert_eq!(Kraken::status(true).await, Ok(()));
}

#[timeout_async("250ms", policy = "pricing")]
#[retry(attempts = 3)]
#[circuit_breaker(name = "pricing-feed", open_for = "5s")]
async fn price() -> std::io::Result<f64> {
    Ok(1.0)
}

#[test]
fn sites_lists_every_function_before_it_runs() {
    let all = sites();
    let price: &Site = all
        .iter()
        .find(|site| site.function == "sites::price")
        .expect("listed without a call");
    assert!(matches!(
        price.layers[..],
        [
            Layer::Timeout {
                limit: Some(limit),
                policy: Some("pricing")
            },
            Layer::Retry { attempts: 3, .. },
            Layer::Breaker {
                name: "pricing-feed",
                state: State::Closed,
                settings: Some(settings),
                ..
            },
        ] if limit == Duration::from_millis(250) && settings.open_for == Duration::from_secs(5)
    ));
    // Methods are listed by their module path until they first run.
    assert!(all.iter().any(|site| site.function.ends_with("::place")));
}
