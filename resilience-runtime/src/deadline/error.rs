use std::fmt;
use std::io;
use std::time::Duration;

use crate::watchdog::Chain;

/// A deadline passed before the function finished.
///
/// Returned (converted into the function's error type) by
/// [`#[timeout_async]`](crate::timeout_async) and by [`timeout()`](crate::timeout).
///
/// ```
/// # use std::time::Duration;
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// use resilience_runtime::timeout;
/// let err = timeout(Duration::from_millis(250), std::future::pending::<()>())
///     .await
///     .unwrap_err();
/// assert_eq!(
///     err.to_string(),
///     "`resilience_runtime::timeout` timed out after 250ms (limit 250ms)"
/// );
/// # }
/// ```
///
/// The alternate form, `format!("{error:#}")`, is a report over several
/// lines: whose deadline fired and, while frames are tracked (see
/// [`watchdog`](crate::watchdog)), the annotated calls that were in flight
/// inside it, innermost last, each with how long it had run and whether it
/// was waiting or being polled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeoutError {
    function: &'static str,
    owner: &'static str,
    limit: Duration,
    elapsed: Duration,
    inherited: bool,
    chain: Option<Chain>,
}

impl fmt::Display for TimeoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self {
            function,
            limit,
            elapsed,
            ..
        } = self;
        write!(
            f,
            "`{function}` timed out after {elapsed:?} (limit {limit:?}"
        )?;
        if self.inherited {
            f.write_str(", the budget left by an enclosing deadline")?;
        }
        f.write_str(")")?;
        if !f.alternate() {
            return Ok(());
        }
        write!(f, "\n  deadline of `{}`", self.owner)?;
        match &self.chain {
            Some(chain) if !chain.is_empty() => {
                f.write_str("; in flight inside it when it fired, innermost last:")?;
                chain.lines(f, "\n    ")
            }
            Some(_) => f.write_str("; no annotated call was in flight inside it"),
            None => f.write_str("; calls in flight are listed while frames are tracked"),
        }
    }
}

impl std::error::Error for TimeoutError {}

impl TimeoutError {
    pub(crate) fn new(
        function: &'static str,
        limit: Duration,
        elapsed: Duration,
        inherited: bool,
    ) -> Self {
        Self {
            function,
            owner: function,
            limit,
            elapsed,
            inherited,
            chain: None,
        }
    }

    pub(crate) fn with_owner(mut self, owner: &'static str) -> Self {
        self.owner = owner;
        self
    }

    pub(crate) fn with_chain(mut self, chain: Option<Chain>) -> Self {
        self.chain = chain;
        self
    }

    /// The function whose deadline fired: [`function`](Self::function)
    /// itself, or, when [`inherited`](Self::inherited), the enclosing
    /// annotated function (or `resilience_runtime::timeout`) whose budget
    /// ran out. A future moved out of the scope it inherited its deadline
    /// from (and polled elsewhere) names itself: the deadline went with it.
    pub fn deadline_owner(&self) -> &'static str {
        self.owner
    }

    /// The function whose deadline fired: its module path and name, e.g.
    /// `my_app::orders::submit`.
    pub fn function(&self) -> &'static str {
        self.function
    }

    /// The limit that fired: the function's own limit, or, when
    /// [`inherited`](Self::inherited), the budget that was left to it.
    pub fn limit(&self) -> Duration {
        self.limit
    }

    /// How long the call ran before it was cut off; at least [`limit`](Self::limit).
    pub fn elapsed(&self) -> Duration {
        self.elapsed
    }

    /// True when an enclosing deadline's remaining budget, not the function's own
    /// limit, is what fired.
    pub fn inherited(&self) -> bool {
        self.inherited
    }
}

/// `std::io::Result<T>` works as the return type of a timed function.
impl From<TimeoutError> for io::Error {
    fn from(error: TimeoutError) -> Self {
        io::Error::new(io::ErrorKind::TimedOut, error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(inherited: bool) -> TimeoutError {
        TimeoutError::new(
            "shop::pay",
            Duration::from_millis(200),
            Duration::from_millis(201),
            inherited,
        )
    }

    #[test]
    fn display_names_the_function_and_both_durations() {
        assert_eq!(
            sample(false).to_string(),
            "`shop::pay` timed out after 201ms (limit 200ms)"
        );
        assert_eq!(
            sample(true).to_string(),
            "`shop::pay` timed out after 201ms (limit 200ms, the budget left by an enclosing deadline)"
        );
    }

    #[test]
    fn converts_into_io_error_of_kind_timed_out() {
        let io: io::Error = sample(false).into();
        assert_eq!(io.kind(), io::ErrorKind::TimedOut);
        let inner = io.get_ref().unwrap().downcast_ref::<TimeoutError>();
        assert_eq!(inner, Some(&sample(false)));
    }

    #[test]
    fn is_clone_send_sync_static() {
        fn check<T: Clone + Send + Sync + 'static + std::error::Error>() {}
        check::<TimeoutError>();
    }
}
