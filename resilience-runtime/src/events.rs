//! Keeping WARN events readable under a storm: at most one per second of
//! each kind from each site, the next one saying how many were held back.
//!
//! Only failure paths come here, so a lock is fine; the success path never
//! does.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

const EVERY: Duration = Duration::from_secs(1);

/// A kind of WARN event, throttled apart from the others of its site.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Warning {
    /// A deadline passed.
    Timeout,
    /// A retry gave up.
    GivingUp,
    /// A `#[monitor]` call was slow.
    Slow,
}

type Key = (&'static str, Warning);

/// Per site and kind: when it last spoke, and how many events it held back
/// since.
static SITES: Mutex<Option<HashMap<Key, (Instant, u64)>>> = Mutex::new(None);

/// Whether the site `site` may emit a WARN of this kind now; `Some(n)` with
/// the number of such events it held back since its last one.
pub(crate) fn may_warn(site: &'static str, kind: Warning) -> Option<u64> {
    let now = Instant::now();
    let mut sites = SITES.lock().unwrap_or_else(PoisonError::into_inner);
    let sites = sites.get_or_insert_with(HashMap::new);
    let site = (site, kind);
    match sites.get_mut(&site) {
        Some((last, suppressed)) if now.saturating_duration_since(*last) < EVERY => {
            *suppressed += 1;
            None
        }
        Some((last, suppressed)) => {
            *last = now;
            Some(std::mem::take(suppressed))
        }
        None => {
            sites.insert(site, (now, 0));
            Some(0)
        }
    }
}

/// An error as an event shows it: by `Display` where it has one, else by
/// `Debug`, else as a placeholder. Expansions pick the way with autoref
/// dispatch: `(&&&Unshown(&error)).shown()`.
#[derive(Clone, Copy)]
pub enum Shown<'a> {
    /// By `Display`.
    Display(&'a dyn fmt::Display),
    /// By `Debug`.
    Debug(&'a dyn fmt::Debug),
    /// Neither.
    Opaque,
}

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Shown::Display(error) => error.fmt(f),
            Shown::Debug(error) => error.fmt(f),
            Shown::Opaque => f.write_str("<an error without Display or Debug>"),
        }
    }
}

/// An error not yet rendered; see [`Shown`].
pub struct Unshown<'a, E>(pub &'a E);

/// The first choice of [`Shown`]: `Display`.
pub trait ShownByDisplay {
    /// The error, shown.
    fn shown(&self) -> Shown<'_>;
}

impl<E: fmt::Display> ShownByDisplay for &&Unshown<'_, E> {
    fn shown(&self) -> Shown<'_> {
        Shown::Display(self.0)
    }
}

/// The second choice of [`Shown`]: `Debug`.
pub trait ShownByDebug {
    /// The error, shown.
    fn shown(&self) -> Shown<'_>;
}

impl<E: fmt::Debug> ShownByDebug for &Unshown<'_, E> {
    fn shown(&self) -> Shown<'_> {
        Shown::Debug(self.0)
    }
}

impl<E> Unshown<'_, E> {
    /// The last choice of [`Shown`]: a placeholder.
    pub fn shown(&self) -> Shown<'_> {
        Shown::Opaque
    }
}

/// A duration in whole milliseconds, for event fields.
pub(crate) fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn one_warning_a_second_per_site_then_the_count_held_back() {
        let timeout = Warning::Timeout;
        assert_eq!(may_warn("a", timeout), Some(0));
        assert_eq!(may_warn("a", timeout), None);
        assert_eq!(may_warn("b", timeout), Some(0), "sites are limited apart");
        assert_eq!(may_warn("a", Warning::Slow), Some(0), "and kinds");
        assert_eq!(may_warn("a", timeout), None);
        tokio::time::advance(EVERY).await;
        assert_eq!(may_warn("a", timeout), Some(2));
        assert_eq!(may_warn("a", timeout), None);
    }

    #[derive(Debug)]
    struct OnlyDebug;
    struct Neither;

    #[test]
    #[allow(clippy::needless_borrow)] // the borrows pick the way, as in expansions
    fn errors_are_shown_by_display_then_debug() {
        let io = std::io::Error::other("connection reset");
        assert_eq!((&&&Unshown(&io)).shown().to_string(), "connection reset");
        assert_eq!((&&&Unshown(&OnlyDebug)).shown().to_string(), "OnlyDebug");
        assert!(
            (&&&Unshown(&Neither))
                .shown()
                .to_string()
                .contains("without Display")
        );
    }
}
