//! `#[timeout_async]` on every signature shape it supports: each test runs a
//! call that finishes and one that times out. Methods report the path of
//! their type: `timeout_signatures::Account::by_ref`.

use std::fmt::{Debug, Display};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use resilience_runtime::{TimeoutError, timeout_async};
use tokio::time::sleep;

const LONG: Duration = Duration::from_secs(60);

fn is_timeout<T: Debug>(result: Result<T, TimeoutError>, function: &str) {
    let err = result.expect_err("expected a timeout");
    assert_eq!(err.function(), format!("timeout_signatures::{function}"));
}

#[derive(Debug, Clone, PartialEq)]
struct Account {
    balance: u64,
}

impl Account {
    #[timeout_async(ms = 10)]
    async fn by_ref(&self, wait: Duration) -> Result<u64, TimeoutError> {
        sleep(wait).await;
        Ok(self.balance)
    }

    #[timeout_async(ms = 10)]
    async fn by_mut(&mut self, amount: u64, wait: Duration) -> Result<u64, TimeoutError> {
        self.balance += amount;
        sleep(wait).await;
        Ok(self.balance)
    }

    #[timeout_async(ms = 10)]
    async fn by_value(self, wait: Duration) -> Result<Account, TimeoutError> {
        sleep(wait).await;
        Ok(self)
    }

    #[timeout_async(ms = 10)]
    async fn by_arc(self: Arc<Self>, wait: Duration) -> Result<u64, TimeoutError> {
        sleep(wait).await;
        Ok(self.balance)
    }

    #[timeout_async(ms = 10)]
    async fn by_pin(self: Pin<&mut Self>, wait: Duration) -> Result<u64, TimeoutError> {
        sleep(wait).await;
        Ok(self.balance)
    }
}

#[tokio::test(start_paused = true)]
async fn receivers() {
    let mut account = Account { balance: 5 };
    assert_eq!(account.by_ref(Duration::ZERO).await, Ok(5));
    is_timeout(account.by_ref(LONG).await, "Account::by_ref");

    assert_eq!(account.by_mut(3, Duration::ZERO).await, Ok(8));
    is_timeout(account.by_mut(1, LONG).await, "Account::by_mut");
    assert_eq!(account.balance, 9, "the body ran up to its await point");

    assert_eq!(
        account.clone().by_value(Duration::ZERO).await,
        Ok(account.clone())
    );
    is_timeout(account.clone().by_value(LONG).await, "Account::by_value");

    let shared = Arc::new(account.clone());
    assert_eq!(shared.clone().by_arc(Duration::ZERO).await, Ok(9));
    is_timeout(shared.by_arc(LONG).await, "Account::by_arc");

    let mut pinned = account.clone();
    assert_eq!(Pin::new(&mut pinned).by_pin(Duration::ZERO).await, Ok(9));
    is_timeout(Pin::new(&mut pinned).by_pin(LONG).await, "Account::by_pin");
}

trait Store {
    async fn get(&self, key: u32) -> Result<u32, TimeoutError>;

    /// A default body can be timed too.
    #[timeout_async(ms = 5)]
    async fn get_twice(&self, key: u32) -> Result<u32, TimeoutError> {
        Ok(self.get(key).await? * 2)
    }
}

struct Slow(Duration);

impl Store for Slow {
    #[timeout_async(ms = 10)]
    async fn get(&self, key: u32) -> Result<u32, TimeoutError> {
        sleep(self.0).await;
        Ok(key)
    }
}

#[tokio::test(start_paused = true)]
async fn native_async_fn_in_traits() {
    assert_eq!(Slow(Duration::ZERO).get(4).await, Ok(4));
    assert_eq!(Slow(Duration::ZERO).get_twice(4).await, Ok(8));
    is_timeout(Slow(LONG).get(4).await, "Slow::get");
    let err = Slow(LONG).get_twice(4).await.unwrap_err();
    assert!(err.inherited(), "get inherits get_twice's budget: {err}");
}

struct Cache<T> {
    items: Vec<(String, T)>,
}

impl<T: Clone + Send> Cache<T>
where
    T: Debug,
{
    #[timeout_async(ms = 10)]
    async fn find<'a, K>(&'a self, key: &K, wait: Duration) -> Result<Option<&'a T>, TimeoutError>
    where
        K: AsRef<str> + ?Sized,
    {
        sleep(wait).await;
        Ok(self
            .items
            .iter()
            .find(|(k, _)| k == key.as_ref())
            .map(|(_, v)| v))
    }
}

#[timeout_async(ms = 10)]
async fn largest<'a, T: PartialOrd>(items: &'a [T], wait: Duration) -> Result<&'a T, TimeoutError> {
    sleep(wait).await;
    let mut best = &items[0];
    for item in items {
        if item > best {
            best = item;
        }
    }
    Ok(best)
}

#[tokio::test(start_paused = true)]
async fn generics_lifetimes_and_where_clauses() {
    let cache = Cache {
        items: vec![("a".to_owned(), 1u8), ("b".to_owned(), 2)],
    };
    assert_eq!(cache.find("b", Duration::ZERO).await, Ok(Some(&2)));
    // A generic type is named without its arguments.
    is_timeout(cache.find(&String::from("a"), LONG).await, "Cache::find");
    assert_eq!(largest(&[3, 9, 4], Duration::ZERO).await, Ok(&9));
    is_timeout(largest(&["x"], LONG).await, "largest");
}

#[timeout_async(ms = 10)]
async fn describe(value: impl Display, wait: Duration) -> Result<impl Display, TimeoutError> {
    sleep(wait).await;
    Ok(format!("<{value}>"))
}

#[tokio::test(start_paused = true)]
async fn impl_trait_arguments_and_return_types() {
    let shown = describe(42, Duration::ZERO).await.unwrap();
    assert_eq!(shown.to_string(), "<42>");
    assert!(describe("x", LONG).await.is_err());
}

#[timeout_async(ms = 10)]
async fn patterns(
    (a, b): (u32, u32),
    mut total: u32,
    _: u32,
    wait: Duration,
) -> Result<u32, TimeoutError> {
    total += a + b;
    sleep(wait).await;
    Ok(total)
}

#[tokio::test(start_paused = true)]
async fn pattern_arguments() {
    assert_eq!(patterns((1, 2), 10, 99, Duration::ZERO).await, Ok(13));
    is_timeout(patterns((1, 2), 10, 99, LONG).await, "patterns");
}

#[timeout_async(ms = 10)]
async fn parse_port(text: &str, wait: Duration) -> std::io::Result<u16> {
    if text.is_empty() {
        return Err(std::io::Error::other("empty"));
    }
    sleep(wait).await;
    let port = text
        .parse::<u16>()
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    Ok(port)
}

#[tokio::test(start_paused = true)]
async fn question_mark_early_return_and_io_result() {
    assert_eq!(parse_port("8080", Duration::ZERO).await.unwrap(), 8080);
    assert_eq!(parse_port("", LONG).await.unwrap_err().to_string(), "empty");
    let bad = parse_port("http", Duration::ZERO).await.unwrap_err();
    assert_eq!(bad.kind(), std::io::ErrorKind::InvalidInput);
    let timed_out = parse_port("80", LONG).await.unwrap_err();
    assert_eq!(timed_out.kind(), std::io::ErrorKind::TimedOut);
}

#[derive(Debug, thiserror::Error)]
enum AppError {
    #[error(transparent)]
    Timeout(#[from] TimeoutError),
}

type AppResult<T> = Result<T, AppError>;

#[timeout_async(ms = 10)]
async fn aliased(wait: Duration) -> AppResult<()> {
    sleep(wait).await;
    Ok(())
}

#[timeout_async(ms = 10)]
async fn with_anyhow(wait: Duration) -> anyhow::Result<()> {
    sleep(wait).await;
    Ok(())
}

#[timeout_async(ms = 10)]
async fn boxed(wait: Duration) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    sleep(wait).await;
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn error_types_decided_through_a_trait() {
    assert!(aliased(Duration::ZERO).await.is_ok());
    assert!(
        matches!(aliased(LONG).await, Err(AppError::Timeout(e)) if e.function().ends_with("aliased"))
    );

    assert!(with_anyhow(Duration::ZERO).await.is_ok());
    let err = with_anyhow(LONG).await.unwrap_err();
    assert!(err.downcast_ref::<TimeoutError>().is_some());

    assert!(boxed(Duration::ZERO).await.is_ok());
    let err = boxed(LONG).await.unwrap_err();
    assert!(err.downcast_ref::<TimeoutError>().is_some());
}

#[async_trait::async_trait]
trait Feed {
    async fn next(&mut self) -> Result<u32, TimeoutError>;
}

struct Ticker {
    count: u32,
    wait: Duration,
}

// `#[async_trait]` goes on the impl block as usual; it runs first and
// `#[timeout_async]` then times the future it boxes.
#[async_trait::async_trait]
impl Feed for Ticker {
    #[timeout_async(ms = 10)]
    async fn next(&mut self) -> Result<u32, TimeoutError> {
        self.count += 1;
        sleep(self.wait).await;
        Ok(self.count)
    }
}

#[tokio::test(start_paused = true)]
async fn async_trait_methods() {
    let mut ticker = Ticker {
        count: 0,
        wait: Duration::ZERO,
    };
    assert_eq!(ticker.next().await, Ok(1));
    let boxed: &mut dyn Feed = &mut ticker;
    assert_eq!(boxed.next().await, Ok(2));
    ticker.wait = LONG;
    is_timeout(ticker.next().await, "Ticker::next");
    // The boxed future is still `Send`, as `#[async_trait]` promises.
    fn assert_send<T: Send>(_: &T) {}
    assert_send(&ticker.next());
}

/// Documentation and other attributes stay on the function.
#[must_use = "the balance is the point"]
#[allow(clippy::unused_async)]
#[timeout_async(1)]
pub(crate) async fn documented() -> Result<u8, TimeoutError> {
    Ok(1)
}

#[tokio::test(start_paused = true)]
async fn attributes_and_visibility_are_kept() {
    assert_eq!(documented().await, Ok(1));
}

#[timeout_async(ms = 10)]
async fn send_body(wait: Duration) -> Result<u8, TimeoutError> {
    sleep(wait).await;
    Ok(1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_body_can_be_spawned() {
    fn assert_send_static<F: Future + Send + 'static>(future: F) -> F {
        future
    }
    let handle = tokio::spawn(assert_send_static(send_body(Duration::ZERO)));
    assert_eq!(handle.await.unwrap(), Ok(1));
}

#[timeout_async(ms = 10)]
async fn local_body(shared: Rc<u8>, wait: Duration) -> Result<u8, TimeoutError> {
    sleep(wait).await; // `Rc` is held across the await: the future is not `Send`
    Ok(*shared)
}

#[tokio::test(start_paused = true)]
async fn a_non_send_body_runs_on_a_current_thread_runtime() {
    assert_eq!(local_body(Rc::new(7), Duration::ZERO).await, Ok(7));
    let local = tokio::task::LocalSet::new();
    let result = local
        .run_until(async { tokio::task::spawn_local(local_body(Rc::new(3), LONG)).await })
        .await
        .unwrap();
    is_timeout(result, "local_body");
}

#[timeout_async(ms = 10)]
async fn borrows(text: &str, out: &mut Vec<usize>) -> Result<(), TimeoutError> {
    out.push(text.len());
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn no_static_bound_on_arguments() {
    let text = String::from("local");
    let mut out = Vec::new();
    borrows(&text, &mut out).await.unwrap();
    assert_eq!(out, [5]);
}
