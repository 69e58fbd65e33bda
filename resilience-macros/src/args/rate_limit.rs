//! Arguments of `#[rate_limit(...)]`.

use std::time::Duration;

use proc_macro2::{Span, TokenStream};
use syn::{Error, Expr, Ident, LitStr};

use super::{Errors, count, duration, named_only};

const VALID: &str = "expected one of `per_second`, `per_minute`, `per`, `max`, `burst`, `max_wait`, `key`, `max_keys`, `name`, `policy`";

/// The configuration of one `#[rate_limit]`.
pub(crate) struct RateLimitArgs {
    /// One permit comes back every `interval`.
    pub(crate) interval: Duration,
    pub(crate) burst: u32,
    pub(crate) max_wait: Duration,
    /// The argument whose value has a quota of its own.
    pub(crate) key: Option<Ident>,
    pub(crate) max_keys: u32,
    /// A limiter shared by every function with this name.
    pub(crate) name: Option<LitStr>,
    /// The `policy = "…"` name that policy files may use for this function.
    pub(crate) policy: Option<LitStr>,
}

/// How the rate was written.
#[derive(Clone, Copy)]
enum Rate {
    PerSecond(u32),
    PerMinute(u32),
    Per(Duration),
}

impl Rate {
    fn describe(self) -> &'static str {
        match self {
            Rate::PerSecond(_) => "`per_second`",
            Rate::PerMinute(_) => "`per_minute`",
            Rate::Per(_) => "`per`",
        }
    }
}

impl RateLimitArgs {
    pub(crate) fn parse(tokens: TokenStream) -> syn::Result<Self> {
        let mut rate: Option<(Rate, Span)> = None;
        let mut max: Option<(u32, Span)> = None;
        let mut burst = None;
        let mut max_keys: Option<(u32, Span)> = None;
        let mut args = RateLimitArgs {
            interval: Duration::ZERO,
            burst: 0,
            max_wait: Duration::ZERO,
            key: None,
            max_keys: 10_000,
            name: None,
            policy: None,
        };
        let mut errors = Errors::default();
        let calls = "expected a number of calls, at least 1";
        for (name, value) in named_only(tokens, "rate_limit", VALID, &mut errors)? {
            let span = name.span();
            let given = match name.to_string().as_str() {
                "per_second" => count(&value, 1, u32::MAX, calls).map(|n| Some(Rate::PerSecond(n))),
                "per_minute" => count(&value, 1, u32::MAX, calls).map(|n| Some(Rate::PerMinute(n))),
                "per" => per(&value).map(|d| Some(Rate::Per(d))),
                "max" => count(&value, 1, u32::MAX, calls).map(|n| {
                    max = Some((n, span));
                    None
                }),
                "burst" => count(
                    &value,
                    1,
                    u32::MAX,
                    "expected how many calls may go at once, at least 1, such as `burst = 10`",
                )
                .map(|n| {
                    burst = Some(n);
                    None
                }),
                "max_wait" => duration::text_arg(&value, "`\"100ms\"`").map(|d| {
                    args.max_wait = d;
                    None
                }),
                "key" => key(&value).map(|k| {
                    args.key = Some(k);
                    None
                }),
                "max_keys" => count(
                    &value,
                    1,
                    u32::MAX,
                    "expected how many keys to keep, at least 1, such as `max_keys = 10000`",
                )
                .map(|n| {
                    max_keys = Some((n, span));
                    None
                }),
                "name" => super::name(
                    &value,
                    "expected a limiter name as text, such as `name = \"exchange\"`",
                )
                .map(|v| {
                    args.name = Some(v);
                    None
                }),
                "policy" => super::policy_name(&value).map(|v| {
                    args.policy = Some(v);
                    None
                }),
                other => Err(Error::new(
                    span,
                    format!("unknown argument `{other}`; {VALID}"),
                )),
            };
            match (errors.take(given).flatten(), rate) {
                (Some(_), Some((first, _))) => errors.push(Error::new(
                    span,
                    format!(
                        "the rate is already given as {}; keep one of `per_second`, `per_minute`, or `per` with `max`",
                        first.describe(),
                    ),
                )),
                (Some(given), None) => rate = Some((given, span)),
                (None, _) => {}
            }
        }
        match (rate, max) {
            (Some((Rate::Per(_), span)), None) => errors.push(Error::new(
                span,
                "`per` needs `max`: `per = \"250ms\", max = 5` admits 5 calls per 250 ms",
            )),
            (Some((Rate::PerSecond(_) | Rate::PerMinute(_), _)) | None, Some((_, span))) => {
                errors.push(Error::new(
                    span,
                    "`max` goes with `per`: `per = \"250ms\", max = 5` admits 5 calls per 250 ms",
                ));
            }
            (None, None) if errors.is_empty() => errors.push(Error::new(
                Span::call_site(),
                "missing the rate; write e.g. `per_second = 50`, `per_minute = 600`, or `per = \"250ms\", max = 5`",
            )),
            _ => {}
        }
        if let (Some((_, span)), None) = (max_keys, &args.key) {
            errors.push(Error::new(
                span,
                "`max_keys` bounds the quotas of `key = argument`; add `key`, or remove `max_keys`",
            ));
        }
        errors.finish()?;
        let (interval, count) = match (rate, max) {
            (Some((Rate::PerSecond(n), _)), _) => (Duration::from_secs(1) / n, n),
            (Some((Rate::PerMinute(n), _)), _) => (Duration::from_secs(60) / n, n),
            (Some((Rate::Per(per), _)), Some((n, _))) => (per / n, n),
            _ => unreachable!("reported above"),
        };
        args.interval = interval.max(Duration::from_nanos(1));
        args.burst = burst.unwrap_or(count);
        if args.interval.as_nanos() * u128::from(args.burst) > u128::from(u64::MAX / 2) {
            let span = rate.map_or_else(Span::call_site, |(_, span)| span);
            return Err(Error::new(
                span,
                "this quota takes more than 292 years to refill its burst; give a faster rate or a smaller burst",
            ));
        }
        if let Some((n, _)) = max_keys {
            args.max_keys = n;
        }
        Ok(args)
    }
}

/// A `per = "…"` period, above zero.
fn per(value: &Expr) -> syn::Result<Duration> {
    let per = duration::text_arg(value, "`\"250ms\"`")?;
    if per.is_zero() {
        return Err(Error::new_spanned(
            value,
            "a period of zero admits nothing; give a duration greater than zero",
        ));
    }
    Ok(per)
}

/// A `key = argument`: the name of one of the function's arguments.
fn key(value: &Expr) -> syn::Result<Ident> {
    if let Expr::Path(path) = value
        && path.qself.is_none()
        && let Some(ident) = path.path.get_ident()
    {
        return Ok(ident.clone());
    }
    Err(Error::new_spanned(
        value,
        "expected the name of an argument, such as `key = user`",
    ))
}
