//! The policy file: its schema, and reading it with errors that name the file
//! and the line.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde::de::{self, Deserializer};

/// A policy file that cannot be used; nothing was changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{}: {message}", path.display(), line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct PolicyError {
    path: PathBuf,
    line: Option<usize>,
    message: String,
}

impl PolicyError {
    pub(super) fn new(path: &Path, line: Option<usize>, message: impl Into<String>) -> Self {
        Self {
            path: path.to_owned(),
            line,
            message: message.into(),
        }
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The line of the mistake, from 1, when the format tells.
    pub fn line(&self) -> Option<usize> {
        self.line
    }

    /// What is wrong.
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// The whole file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PolicyFile {
    /// `false` turns every attribute into a pass-through.
    #[serde(default = "yes")]
    pub(crate) enabled: bool,
    /// Kinds turned into pass-throughs: `timeout`, `retry`, `breaker`,
    /// `device`, `monitor`, `rate_limit`, `bulkhead`.
    #[serde(default)]
    pub(crate) disabled_kinds: Vec<Kind>,
    /// Per function path, `policy = "…"` name, or module path.
    #[serde(default)]
    pub(crate) policies: HashMap<String, Entry>,
    /// Escalation for functions whose entries set none.
    #[serde(default)]
    pub(crate) escalate: Option<EscalateEntry>,
    /// `true` puts the `[chaos]` table in force.
    #[serde(default)]
    pub(crate) chaos_enabled: bool,
    /// Faults to inject, per function path.
    #[serde(default)]
    pub(crate) chaos: HashMap<String, ChaosEntry>,
}

fn yes() -> bool {
    true
}

/// A kind of attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Kind {
    /// `#[timeout_async]`
    Timeout,
    /// `#[retry]`
    Retry,
    /// `#[circuit_breaker]`
    Breaker,
    /// `#[safe_mps_op]`
    Device,
    /// `#[monitor]`
    Monitor,
    /// `#[rate_limit]`
    #[serde(rename = "rate_limit")]
    RateLimit,
    /// `#[bulkhead]`
    Bulkhead,
}

/// What one entry overrides.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Entry {
    #[serde(default)]
    pub(crate) enabled: Option<bool>,
    #[serde(default)]
    pub(crate) timeout: Option<Limit>,
    #[serde(default)]
    pub(crate) retry: Option<RetryEntry>,
    #[serde(default)]
    pub(crate) circuit_breaker: Option<BreakerEntry>,
    // Read by `#[safe_mps_op]`, which needs the `tch` feature; the section is
    // checked either way.
    #[cfg_attr(not(feature = "tch"), allow(dead_code))]
    #[serde(default)]
    pub(crate) device: Option<DeviceEntry>,
    #[serde(default)]
    pub(crate) monitor: Option<MonitorEntry>,
    #[serde(default)]
    pub(crate) rate_limit: Option<RateLimitEntry>,
    #[serde(default)]
    pub(crate) bulkhead: Option<BulkheadEntry>,
    #[serde(default)]
    pub(crate) adaptive: Option<AdaptiveEntry>,
    #[serde(default)]
    pub(crate) escalate: Option<EscalateEntry>,
    /// A pipeline's stage caps, by stage name (the key is the pipeline's).
    #[serde(default)]
    pub(crate) stages: Option<HashMap<String, Limit>>,
}

/// Field by field: each field of `self`, or else of `other`.
macro_rules! or_fields {
    ($ty:ident { $($field:ident),* } $(, $table:ident)* $(; $owned:ident)*) => {
        impl $ty {
            pub(crate) fn or(self, other: &Self) -> Self {
                Self {
                    $($field: self.$field.or(other.$field),)*
                    $($table: match (self.$table, other.$table) {
                        (Some(mine), Some(theirs)) => Some(mine.or(&theirs)),
                        (mine, theirs) => mine.or(theirs),
                    },)*
                    $($owned: self.$owned.or_else(|| other.$owned.clone()),)*
                }
            }
        }
    };
}

or_fields!(
    Entry { enabled, timeout },
    retry,
    circuit_breaker,
    device,
    monitor,
    rate_limit,
    bulkhead,
    adaptive,
    escalate
    ; stages
);
or_fields!(RateLimitEntry {
    enabled,
    rate,
    burst,
    max_wait
});
or_fields!(BulkheadEntry {
    enabled,
    max_concurrent,
    max_wait
});
or_fields!(AdaptiveEntry {
    enabled,
    percentile,
    floor,
    multiplier,
    min_calls,
    learning_rate
});
or_fields!(EscalateEntry { after, within });
or_fields!(RetryEntry {
    enabled,
    attempts,
    backoff,
    base,
    factor,
    max_delay,
    jitter
});
or_fields!(BreakerEntry {
    enabled,
    failure_rate,
    window,
    min_calls,
    open_for,
    half_open_probes,
    slow_call
});
or_fields!(MonitorEntry { enabled, slow });
or_fields!(DeviceEntry {
    enabled,
    fallback,
    return_to,
    sticky,
    retries
});

#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RetryEntry {
    pub(crate) enabled: Option<bool>,
    pub(crate) attempts: Option<Attempts>,
    pub(crate) backoff: Option<BackoffKind>,
    pub(crate) base: Option<Delay>,
    pub(crate) factor: Option<Factor>,
    pub(crate) max_delay: Option<Delay>,
    pub(crate) jitter: Option<JitterKind>,
}

#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct BreakerEntry {
    pub(crate) enabled: Option<bool>,
    pub(crate) failure_rate: Option<Rate>,
    pub(crate) window: Option<Window>,
    pub(crate) min_calls: Option<Window>,
    pub(crate) open_for: Option<Delay>,
    pub(crate) half_open_probes: Option<Attempts>,
    pub(crate) slow_call: Option<Limit>,
}

#[cfg_attr(not(feature = "tch"), allow(dead_code))]
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DeviceEntry {
    pub(crate) enabled: Option<bool>,
    pub(crate) fallback: Option<FallbackKind>,
    pub(crate) return_to: Option<ReturnTo>,
    pub(crate) sticky: Option<bool>,
    pub(crate) retries: Option<u32>,
}

#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MonitorEntry {
    pub(crate) enabled: Option<bool>,
    pub(crate) slow: Option<Limit>,
}

/// `[rate_limit]`: a quota of `per_second`, `per_minute`, or `max` calls
/// `per` duration, with a `burst`, and how long a call may wait.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(try_from = "RawRateLimit")]
pub(crate) struct RateLimitEntry {
    pub(crate) enabled: Option<bool>,
    /// The rate, however the table writes it: entries merge it as one
    /// field, so that a `per_minute` of one key and a `per_second` of
    /// another never mix.
    pub(crate) rate: Option<RateEntry>,
    pub(crate) burst: Option<Attempts>,
    pub(crate) max_wait: Option<Delay>,
}

/// A rate: one permit back every `interval`, `count` of them a period.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct RateEntry {
    pub(crate) interval: Duration,
    pub(crate) count: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRateLimit {
    enabled: Option<bool>,
    per_second: Option<Attempts>,
    per_minute: Option<Attempts>,
    per: Option<Limit>,
    max: Option<Attempts>,
    burst: Option<Attempts>,
    max_wait: Option<Delay>,
}

impl TryFrom<RawRateLimit> for RateLimitEntry {
    type Error = String;

    fn try_from(raw: RawRateLimit) -> Result<Self, String> {
        let rate = |period: Duration, count: Attempts| RateEntry {
            interval: period / count.0,
            count: count.0,
        };
        let rate = match (raw.per_second, raw.per_minute, raw.per, raw.max) {
            (None, None, None, None) => None,
            (Some(n), None, None, None) => Some(rate(Duration::from_secs(1), n)),
            (None, Some(n), None, None) => Some(rate(Duration::from_secs(60), n)),
            (None, None, Some(per), Some(max)) => Some(rate(per.0, max)),
            (None, None, Some(_), None) | (None, None, None, Some(_)) => {
                return Err("`per` and `max` go together: `per = \"250ms\"`, `max = 5` is 5 calls per 250 ms".into());
            }
            _ => {
                return Err(
                    "a rate limit takes one rate: `per_second`, `per_minute`, or `per` with `max`"
                        .into(),
                );
            }
        };
        if let Some(rate) = rate {
            let burst = raw.burst.map_or(rate.count, |b| b.0);
            if rate.interval.as_nanos() * u128::from(burst) > u128::from(u64::MAX / 2) {
                return Err("this quota takes more than 292 years to refill its burst; give a faster rate or a smaller burst".into());
            }
        }
        Ok(Self {
            enabled: raw.enabled,
            rate,
            // A rate without a burst bursts its count, as in the attribute:
            // set here, so that it wins over a burst of a lower key.
            burst: raw.burst.or(rate.map(|rate| Attempts(rate.count))),
            max_wait: raw.max_wait,
        })
    }
}

/// `[bulkhead]`: how many calls run at once, and how long a call may wait.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct BulkheadEntry {
    pub(crate) enabled: Option<bool>,
    pub(crate) max_concurrent: Option<Attempts>,
    pub(crate) max_wait: Option<Delay>,
}

/// `[adaptive]`: the bounds of an adaptive timeout; `enabled = false`
/// holds it at its ceiling.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AdaptiveEntry {
    pub(crate) enabled: Option<bool>,
    pub(crate) percentile: Option<Percentile>,
    pub(crate) floor: Option<Limit>,
    pub(crate) multiplier: Option<Multiplier>,
    pub(crate) min_calls: Option<Attempts>,
    pub(crate) learning_rate: Option<LearningRate>,
}

/// `escalate = { after = 5, within = "1m" }`: the `after`-th failure within
/// `within` escalates.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct EscalateEntry {
    pub(crate) after: Option<Attempts>,
    pub(crate) within: Option<Limit>,
}

/// One function's entry in `[chaos]`: at least one fault, `times` calls.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(try_from = "RawChaos")]
pub(crate) struct ChaosEntry {
    pub(crate) delay: Option<Duration>,
    pub(crate) blocking: Option<Duration>,
    pub(crate) error: bool,
    pub(crate) times: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawChaos {
    delay: Option<Delay>,
    blocking: Option<Delay>,
    #[serde(default)]
    error: bool,
    times: Option<Attempts>,
}

impl TryFrom<RawChaos> for ChaosEntry {
    type Error = String;

    fn try_from(raw: RawChaos) -> Result<Self, String> {
        if raw.delay.is_none() && raw.blocking.is_none() && !raw.error {
            return Err("a chaos entry injects nothing; give `delay = \"…\"`, `blocking = \"…\"` or `error = true`".into());
        }
        Ok(Self {
            delay: raw.delay.map(|d| d.0),
            blocking: raw.blocking.map(|d| d.0),
            error: raw.error,
            times: raw.times.map_or(1, |t| t.0),
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum BackoffKind {
    Constant,
    Exponential,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum JitterKind {
    None,
    Full,
    Equal,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum FallbackKind {
    Cpu,
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum ReturnTo {
    Origin,
    Cpu,
}

/// Values checked while they are read, so that a bad one is reported at its
/// line by every format.
macro_rules! checked {
    ($name:ident($inner:ty), $raw:ty, |$value:ident| $check:expr) => {
        #[derive(Debug, Clone, Copy, PartialEq)]
        pub(crate) struct $name(pub(crate) $inner);

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let $value = <$raw>::deserialize(deserializer)?;
                $check.map($name).map_err(de::Error::custom)
            }
        }
    };
}

checked!(Limit(Duration), String, |text| duration(&text).and_then(
    |d| {
        if d.is_zero() {
            Err("a limit of zero would fail every call; give a duration greater than zero".into())
        } else {
            Ok(d)
        }
    }
));
checked!(Delay(Duration), String, |text| duration(&text));
checked!(Attempts(u32), i64, |n| u32::try_from(n)
    .ok()
    .filter(|&n| n >= 1)
    .ok_or_else(|| format!(
        "expected a count of at least 1, found {n}"
    )));
checked!(Window(u32), i64, |n| u32::try_from(n)
    .ok()
    .filter(|n| (1..=64).contains(n))
    .ok_or_else(|| format!("expected 1 to 64 calls, found {n}")));
checked!(Rate(f64), f64, |rate| if rate > 0.0 && rate <= 1.0 {
    Ok(rate)
} else {
    Err(format!(
        "expected a failure rate above 0.0 and at most 1.0, found {rate}"
    ))
});
checked!(Percentile(f64), f64, |p| if p > 0.0 && p < 100.0 {
    Ok(p)
} else {
    Err(format!(
        "expected a percentile above 0 and below 100, such as 95 or 99.9, found {p}"
    ))
});
checked!(Multiplier(f64), f64, |m| if m.is_finite() && m >= 1.0 {
    Ok(m)
} else {
    Err(format!(
        "expected a multiplier of at least 1.0, such as 1.5, found {m}"
    ))
});
checked!(LearningRate(f64), f64, |r| if r > 0.0 && r <= 1.0 {
    Ok(r)
} else {
    Err(format!(
        "expected a learning rate above 0.0 and at most 1.0, found {r}"
    ))
});
checked!(
    Factor(f64),
    f64,
    |factor| if factor.is_finite() && factor >= 1.0 {
        Ok(factor)
    } else {
        Err(format!(
            "expected a growth factor of at least 1.0, found {factor}"
        ))
    }
);

fn duration(text: &str) -> Result<Duration, String> {
    if text.trim_start().starts_with('-') {
        return Err(format!(
            "invalid duration {text:?}: durations cannot be negative"
        ));
    }
    humantime::parse_duration(text.trim()).map_err(|error| {
        format!("invalid duration {text:?}: {error}; write e.g. \"250ms\", \"2s\" or \"1m30s\"")
    })
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Timeout => "timeout",
            Kind::Retry => "retry",
            Kind::Breaker => "breaker",
            Kind::Device => "device",
            Kind::Monitor => "monitor",
            Kind::RateLimit => "rate_limit",
            Kind::Bulkhead => "bulkhead",
        })
    }
}

/// Reads and checks a policy file; TOML, JSON or YAML by extension.
pub(super) fn read(path: &Path) -> Result<PolicyFile, PolicyError> {
    let text = std::fs::read_to_string(path)
        .map_err(|error| PolicyError::new(path, None, format!("cannot read the file: {error}")))?;
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default();
    match extension.to_ascii_lowercase().as_str() {
        "toml" => toml::from_str(&text).map_err(|error| {
            let line = error.span().map(|span| line_of(&text, span.start));
            PolicyError::new(path, line, error.message().trim().to_owned())
        }),
        "json" => serde_json::from_str(&text).map_err(|error| {
            let line = (error.line() > 0).then_some(error.line());
            let message = error.to_string();
            let message = message
                .split(" at line ")
                .next()
                .unwrap_or(&message)
                .to_owned();
            PolicyError::new(path, line, message)
        }),
        "yaml" | "yml" => serde_norway::from_str(&text).map_err(|error| {
            let line = error.location().map(|l| l.line());
            let message = error.to_string();
            let message = message
                .split(" at line ")
                .next()
                .unwrap_or(&message)
                .to_owned();
            PolicyError::new(path, line, message)
        }),
        _ => Err(PolicyError::new(
            path,
            None,
            "unknown policy file format; name it `.toml`, `.json`, `.yaml` or `.yml`",
        )),
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}
