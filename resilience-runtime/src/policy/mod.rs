//! Policies from a file, changed at run time without a rebuild.
//!
//! A policy file overrides the arguments of `#[timeout_async]`, `#[retry]`,
//! `#[circuit_breaker]`, `#[rate_limit]`, `#[bulkhead]` and `#[safe_mps_op]`,
//! per function (by the path that
//! `TimeoutError::function()` reports, e.g. `my_crate::orders::submit`) or
//! per `policy = "…"` name given in the attribute. TOML, JSON or YAML, by
//! extension; `docs/policy.example.toml` shows every key.
//!
//! ```toml
//! enabled = true                       # false: every attribute passes through
//! disabled_kinds = []                  # any of "timeout", "retry", "breaker", "device", "monitor", "rate_limit", "bulkhead"
//!
//! [policies."slow-dep"]
//! timeout = "200ms"
//! [policies."slow-dep".retry]
//! attempts = 5
//! base = "50ms"
//! [policies."slow-dep".circuit_breaker]
//! failure_rate = 0.3
//! open_for = "10s"
//! ```
//!
//! [`load`] puts a file in force for calls that start afterwards; calls in
//! flight keep what they started with. A file that cannot be used is an error
//! naming the file and line, and changes nothing. [`reload`] reads the last
//! file again. The environment variable `RESILIENCE_POLICY_FILE` names a file
//! to load at the first use of any attribute.
//!
//! Kill switch: `enabled = false` (everything), `disabled_kinds`, or
//! `enabled = false` in an entry (or in its `retry`, `circuit_breaker`,
//! `rate_limit`, `bulkhead`, `device` table) make the attributes pass-throughs. So does the environment
//! variable `RESILIENCE_DISABLE`: `all`, or a comma list of kinds, read at the
//! first use of any attribute.

pub(crate) mod check;
pub(crate) mod file;
pub(crate) mod state;

use std::path::Path;

pub(crate) use file::{BackoffKind, JitterKind};
#[cfg(feature = "tch")]
pub(crate) use file::{FallbackKind, ReturnTo};
pub use file::{Kind, PolicyError};
pub(crate) use state::{Gate, at_defaults, gate, kind_off, kind_off_all};

/// Reads the policy file at `path` and puts it in force.
///
/// ```no_run
/// resilience_runtime::policy::load("config/resilience.toml")?;
/// # Ok::<(), resilience_runtime::policy::PolicyError>(())
/// ```
pub fn load(path: impl AsRef<Path>) -> Result<(), PolicyError> {
    state::apply(path.as_ref())
}

/// Reads the last loaded file again and puts it in force; on error the policy
/// in force stays.
pub fn reload() -> Result<(), PolicyError> {
    state::reapply()
}

/// Drops the file's policy: attributes go back to their own settings
/// (`RESILIENCE_DISABLE` still applies).
pub fn clear() {
    state::clear();
}
