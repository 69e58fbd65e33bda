//! The policy in force: a snapshot swapped atomically, and flags that let
//! every call find out in one relaxed load that nothing is overridden.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering::*};
use std::sync::{Arc, Mutex, MutexGuard, Once, PoisonError};

use arc_swap::ArcSwapOption;

use super::file::{self, Entry, Kind, PolicyError};
use crate::registry::Function;

const INIT: u32 = 1;
const LOADED: u32 = 1 << 1;
const OFF_ALL: u32 = 1 << 2;

fn kind_bit(kind: Kind) -> u32 {
    match kind {
        Kind::Timeout => 1 << 3,
        Kind::Retry => 1 << 4,
        Kind::Breaker => 1 << 5,
        Kind::Device => 1 << 6,
        Kind::Monitor => 1 << 7,
        Kind::RateLimit => 1 << 8,
        Kind::Bulkhead => 1 << 9,
    }
}

/// `INIT`, plus `LOADED` when a file is in force, plus the kinds switched off
/// by the file or by `RESILIENCE_DISABLE`.
static FLAGS: AtomicU32 = AtomicU32::new(0);
/// The kinds `RESILIENCE_DISABLE` switched off.
static ENV_OFF: AtomicU32 = AtomicU32::new(0);
static SNAPSHOT: ArcSwapOption<Snapshot> = ArcSwapOption::const_empty();
static LAST_FILE: Mutex<Option<PathBuf>> = Mutex::new(None);
static INIT_ONCE: Once = Once::new();
/// Serialises `load` and `reload` (never taken by calls).
static LOADING: Mutex<()> = Mutex::new(());

struct Snapshot {
    entries: HashMap<String, Entry>,
    /// Whether some key names a module (`my_app::venues`) rather than a
    /// function or a name: only then do calls look their modules up.
    modules: bool,
    escalate: Option<file::EscalateEntry>,
}

/// The keys of the modules enclosing the function at `path`, innermost
/// first: `a::b::f` gives `a::b`, `a`.
fn modules_of(path: &str) -> impl Iterator<Item = &str> {
    let mut rest = path;
    std::iter::from_fn(move || {
        let (module, _) = rest.rsplit_once("::")?;
        rest = module;
        Some(module)
    })
}

/// The entry for `keys` (a function's path first), merged field by field:
/// the keys in order, then the modules of the path, innermost first.
fn merged(snapshot: &Snapshot, keys: &[Option<&'static str>]) -> Option<Entry> {
    let modules = keys
        .first()
        .copied()
        .flatten()
        .filter(|_| snapshot.modules)
        .into_iter()
        .flat_map(modules_of);
    keys.iter()
        .flatten()
        .copied()
        .chain(modules)
        .filter_map(|key| snapshot.entries.get(key))
        .fold(None, |merged: Option<Entry>, entry| {
            Some(merged.map_or_else(|| entry.clone(), |merged| merged.or(entry)))
        })
}

/// The cap the policy file sets for `stage` of the pipeline `pipeline`.
#[cold]
pub(crate) fn stage_cap(pipeline: &str, stage: &str) -> Option<std::time::Duration> {
    if !loaded() {
        return None;
    }
    let snapshot = SNAPSHOT.load();
    let entry = snapshot.as_deref()?.entries.get(pipeline)?;
    entry.stages.as_ref()?.get(stage).map(|cap| cap.0)
}

/// When failures of `function` escalate: after how many within how long;
/// `None` when no policy file asks for it.
#[cold]
pub(crate) fn escalation(keys: &[Option<&'static str>]) -> Option<(u32, std::time::Duration)> {
    if !loaded() {
        return None;
    }
    let snapshot = SNAPSHOT.load();
    let snapshot = snapshot.as_deref()?;
    let own = merged(snapshot, keys).and_then(|entry| entry.escalate);
    let escalate = match (own, snapshot.escalate) {
        (Some(own), Some(default)) => own.or(&default),
        (own, default) => own.or(default)?,
    };
    Some((
        escalate.after.map_or(5, |after| after.0),
        escalate
            .within
            .map_or(std::time::Duration::from_secs(60), |within| within.0),
    ))
}

/// Every call's first question: is anything overridden? One relaxed load.
#[inline]
fn flags() -> u32 {
    let flags = FLAGS.load(Relaxed);
    if flags & INIT != 0 { flags } else { init() }
}

/// Reads `RESILIENCE_DISABLE` and `RESILIENCE_POLICY_FILE`, once, before
/// anything else sets the flags: the first call of an attribute, or of
/// [`load`](super::load), [`reload`](super::reload) or [`clear`](super::clear),
/// whichever comes first.
#[cold]
pub(super) fn init() -> u32 {
    // Other threads wait here until both variables are in force: `INIT` is
    // published last, so no call runs at defaults past a file that switches
    // it off. `call_once_force`: a panic inside (a subscriber's, say) must
    // not leave every later call panicking on a poisoned `Once`.
    INIT_ONCE.call_once_force(|_| {
        let off = std::env::var("RESILIENCE_DISABLE").map_or(0, |value| env_off(&value));
        ENV_OFF.store(off, Relaxed);
        if let Some(path) = std::env::var_os("RESILIENCE_POLICY_FILE") {
            let loading = LOADING.lock().unwrap_or_else(PoisonError::into_inner);
            if let Err(error) = apply_locked(Path::new(&path), &loading) {
                tracing::warn!(%error, "RESILIENCE_POLICY_FILE not applied; attributes keep their own settings");
            }
        }
        FLAGS.fetch_or(INIT | off, Release);
    });
    FLAGS.load(Acquire)
}

/// The kinds a `RESILIENCE_DISABLE` value switches off: `all`, or a comma
/// list of kinds, in any case.
fn env_off(value: &str) -> u32 {
    let mut off = 0;
    for word in value.split(',').map(str::trim).filter(|w| !w.is_empty()) {
        off |= match word.to_ascii_lowercase().as_str() {
            "all" => OFF_ALL,
            "timeout" => kind_bit(Kind::Timeout),
            "retry" => kind_bit(Kind::Retry),
            "breaker" => kind_bit(Kind::Breaker),
            "device" => kind_bit(Kind::Device),
            "monitor" => kind_bit(Kind::Monitor),
            "rate_limit" => kind_bit(Kind::RateLimit),
            "bulkhead" => kind_bit(Kind::Bulkhead),
            _ => {
                tracing::warn!(
                    value = word,
                    "RESILIENCE_DISABLE: unknown kind ignored; valid ones are all, timeout, retry, breaker, device, monitor, rate_limit and bulkhead"
                );
                0
            }
        };
    }
    off
}

/// True when no file and no kill switch is in force: every site runs as
/// written. One relaxed load.
#[inline]
pub(crate) fn at_defaults() -> bool {
    flags() == INIT
}

/// True when every attribute of `kind` is switched off (the whole file,
/// `disabled_kinds` or `RESILIENCE_DISABLE`). One relaxed load.
#[inline]
pub(crate) fn kind_off(kind: Kind) -> bool {
    flags() & (OFF_ALL | kind_bit(kind)) != 0
}

/// True when a policy file is in force.
#[inline]
pub(crate) fn loaded() -> bool {
    flags() & LOADED != 0
}

/// True when the kill switch turns everything off. One relaxed load.
#[inline]
pub(crate) fn kind_off_all() -> bool {
    flags() & OFF_ALL != 0
}

/// True when every layer of a composed function is switched off, so that
/// the function can call its body directly.
#[inline]
pub fn all_off(function: &'static Function) -> bool {
    let flags = flags();
    if flags == INIT {
        return false;
    }
    flags & OFF_ALL != 0 || all_off_slow(flags, function)
}

#[cold]
fn all_off_slow(flags: u32, function: &'static Function) -> bool {
    function.layers().iter().all(|layer| {
        let kind = layer.kind();
        flags & (OFF_ALL | kind_bit(kind)) != 0 || entry_off(flags, kind, &layer.keys())
    })
}

#[cold]
fn entry_off(flags: u32, kind: Kind, keys: &[Option<&'static str>]) -> bool {
    matches!(
        gate_slow(flags, kind, keys, |entry| {
            let enabled = match kind {
                Kind::Timeout => None,
                Kind::Retry => entry.retry.and_then(|r| r.enabled),
                Kind::Breaker => entry.circuit_breaker.and_then(|b| b.enabled),
                Kind::Device => entry.device.and_then(|d| d.enabled),
                Kind::Monitor => entry.monitor.and_then(|m| m.enabled),
                Kind::RateLimit => entry.rate_limit.and_then(|r| r.enabled),
                Kind::Bulkhead => entry.bulkhead.and_then(|b| b.enabled),
            };
            (enabled, ())
        }),
        Gate::Off
    )
}

/// How one call of a site should run.
pub(crate) enum Gate<T> {
    /// As written in the attribute.
    Defaults,
    /// As a pass-through: switched off.
    Off,
    /// With these overrides.
    Override(T),
}

/// Asks the policy about a call of a `kind` site known by `keys` (its
/// function path, its `policy = "…"` name, …, in that precedence); `pick`
/// reads the entry's part for this kind as `(enabled, overrides)`.
#[inline]
pub(crate) fn gate<T>(
    kind: Kind,
    keys: &[Option<&'static str>],
    pick: impl FnOnce(&Entry) -> (Option<bool>, T),
) -> Gate<T> {
    let flags = flags();
    if flags == INIT {
        return Gate::Defaults;
    }
    gate_slow(flags, kind, keys, pick)
}

#[cold]
fn gate_slow<T>(
    flags: u32,
    kind: Kind,
    keys: &[Option<&'static str>],
    pick: impl FnOnce(&Entry) -> (Option<bool>, T),
) -> Gate<T> {
    if flags & (OFF_ALL | kind_bit(kind)) != 0 {
        return Gate::Off;
    }
    if flags & LOADED == 0 {
        return Gate::Defaults;
    }
    let snapshot = SNAPSHOT.load();
    let Some(snapshot) = snapshot.as_deref() else {
        return Gate::Defaults;
    };
    // Entries merge field by field: the first key that sets a field wins it.
    let Some(entry) = merged(snapshot, keys) else {
        return Gate::Defaults;
    };
    if entry.enabled == Some(false) {
        return Gate::Off;
    }
    match pick(&entry) {
        (Some(false), _) => Gate::Off,
        (_, overrides) => Gate::Override(overrides),
    }
}

/// Reads `path`, and puts it in force for the calls that start afterwards.
/// A file that cannot be used changes nothing.
pub(crate) fn apply(path: &Path) -> Result<(), PolicyError> {
    init();
    let loading = LOADING.lock().unwrap_or_else(PoisonError::into_inner);
    apply_locked(path, &loading)
}

/// [`apply`], holding `LOADING`.
fn apply_locked(path: &Path, _loading: &MutexGuard<'_, ()>) -> Result<(), PolicyError> {
    let policy = file::read(path)?;
    super::check::check(path, &policy);
    let mut off = ENV_OFF.load(Relaxed);
    if !policy.enabled {
        off |= OFF_ALL;
    }
    for kind in &policy.disabled_kinds {
        off |= kind_bit(*kind);
    }
    let modules = policy
        .policies
        .keys()
        .any(|key| super::check::is_module(key));
    let drills: Vec<_> = if policy.chaos_enabled {
        policy
            .chaos
            .iter()
            .map(|(function, c)| crate::chaos::Drill {
                function,
                delay: c.delay,
                blocking: c.blocking,
                error: c.error,
                times: c.times,
            })
            .collect()
    } else {
        if !policy.chaos.is_empty() {
            tracing::info!(file = %path.display(), "the [chaos] table is off: the file does not say `chaos_enabled = true`");
        }
        Vec::new()
    };
    SNAPSHOT.store(Some(Arc::new(Snapshot {
        entries: policy.policies,
        modules,
        escalate: policy.escalate,
    })));
    crate::chaos::from_file(&drills);
    if !policy.enabled {
        // The kill switch stops everything injected, from code too.
        crate::chaos::clear();
    }
    FLAGS.store(INIT | LOADED | off, Release);
    *LAST_FILE.lock().unwrap_or_else(PoisonError::into_inner) = Some(path.to_owned());
    tracing::info!(file = %path.display(), "resilience policy in force");
    Ok(())
}

/// Reads the last file again. The path is read under the same lock as the
/// load, so a reload never puts an older file back over a newer one.
pub(crate) fn reapply() -> Result<(), PolicyError> {
    init();
    let loading = LOADING.lock().unwrap_or_else(PoisonError::into_inner);
    let last = LAST_FILE
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    match last {
        Some(path) => apply_locked(&path, &loading),
        None => Err(PolicyError::new(
            Path::new("<none>"),
            None,
            "no policy file was loaded; call `policy::load` first",
        )),
    }
}

pub(crate) fn clear() {
    init();
    let _loading = LOADING.lock().unwrap_or_else(PoisonError::into_inner);
    SNAPSHOT.store(None);
    crate::chaos::from_file(&[]);
    *LAST_FILE.lock().unwrap_or_else(PoisonError::into_inner) = None;
    FLAGS.store(INIT | ENV_OFF.load(Relaxed), Release);
}

#[cfg(test)]
mod tests {
    use super::env_off;
    use super::{Kind, OFF_ALL, kind_bit};

    #[test]
    fn disable_accepts_kinds_in_any_case() {
        assert_eq!(env_off("ALL"), OFF_ALL);
        assert_eq!(
            env_off(" Retry, BREAKER ,"),
            kind_bit(Kind::Retry) | kind_bit(Kind::Breaker)
        );
        assert_eq!(env_off("timeouts"), 0);
    }
}
