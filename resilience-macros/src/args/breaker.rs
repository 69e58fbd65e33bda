//! Arguments of `#[circuit_breaker(...)]`.

use std::time::Duration;

use proc_macro2::TokenStream;
use syn::spanned::Spanned;
use syn::{Error, Expr, ExprLit, Lit, LitStr};

use super::{Errors, count, duration, named_only};

const VALID: &str = "expected one of `failure_rate`, `window`, `min_calls`, `open_for`, `half_open_probes`, `slow_call`, `name`, `policy`";

/// The configuration of one `#[circuit_breaker]`.
pub(crate) struct BreakerArgs {
    pub(crate) failure_rate: f64,
    pub(crate) window: u32,
    pub(crate) min_calls: u32,
    pub(crate) open_for: Duration,
    pub(crate) half_open_probes: u32,
    pub(crate) slow_call: Option<Duration>,
    /// A breaker shared by every function with this name.
    pub(crate) name: Option<LitStr>,
    /// The `policy = "…"` name that policy files may use for this function.
    pub(crate) policy: Option<LitStr>,
}

impl BreakerArgs {
    pub(crate) fn parse(tokens: TokenStream) -> syn::Result<Self> {
        let mut args = BreakerArgs {
            failure_rate: 0.5,
            window: 20,
            min_calls: 10,
            open_for: Duration::from_secs(30),
            half_open_probes: 1,
            slow_call: None,
            name: None,
            policy: None,
        };
        let mut errors = Errors::default();
        for (name, value) in named_only(tokens, "circuit_breaker", VALID, &mut errors)? {
            let key = name.to_string();
            let set = match key.as_str() {
                "failure_rate" => rate(&value).map(|v| args.failure_rate = v),
                "window" => {
                    count(&value, 1, 64, "the window holds 1 to 64 calls").map(|v| args.window = v)
                }
                "min_calls" => {
                    count(&value, 1, 64, "expected 1 to 64 calls").map(|v| args.min_calls = v)
                }
                "half_open_probes" => count(&value, 1, u32::MAX, "expected at least 1 probe")
                    .map(|v| args.half_open_probes = v),
                "open_for" => duration::text_arg(&value, "`\"30s\"`").map(|v| args.open_for = v),
                "slow_call" => {
                    duration::text_arg(&value, "`\"30s\"`").map(|v| args.slow_call = Some(v))
                }
                "name" => super::name(
                    &value,
                    "expected a breaker name as text, such as `name = \"exchange\"`",
                )
                .map(|v| args.name = Some(v)),
                "policy" => super::policy_name(&value).map(|v| args.policy = Some(v)),
                other => Err(Error::new(
                    name.span(),
                    format!("unknown argument `{other}`; {VALID}"),
                )),
            };
            errors.take(set);
        }
        if args.min_calls > args.window {
            errors.push(Error::new(
                proc_macro2::Span::call_site(),
                "`min_calls` is larger than `window`: the breaker could never decide; make `min_calls` at most `window`",
            ));
        }
        errors.finish()?;
        Ok(args)
    }
}

fn rate(value: &Expr) -> syn::Result<f64> {
    if let Expr::Lit(ExprLit {
        lit: Lit::Float(float),
        ..
    }) = value
        && let Ok(rate) = float.base10_parse::<f64>()
        && rate > 0.0
        && rate <= 1.0
    {
        return Ok(rate);
    }
    Err(Error::new(
        value.span(),
        "expected a failure rate above 0.0 and at most 1.0, such as `failure_rate = 0.5`",
    ))
}
