//! Arguments of `#[retry(...)]`.

use std::time::Duration;

use proc_macro2::TokenStream;
use syn::spanned::Spanned;
use syn::{Error, Expr, ExprLit, ExprPath, Ident, Lit, LitStr, Path};

use super::{Errors, choice, duration, named_only};

const VALID: &str = "expected one of `attempts`, `backoff`, `base`, `factor`, `max_delay`, `jitter`, `when`, `policy`";

/// The configuration of one `#[retry]`.
pub(crate) struct RetryArgs {
    pub(crate) attempts: u32,
    /// `backoff = "exponential"` (true, the default) or `"constant"`.
    pub(crate) exponential: bool,
    pub(crate) base: Duration,
    pub(crate) factor: f64,
    pub(crate) max_delay: Duration,
    /// `"none"`, `"full"` (the default) or `"equal"`.
    pub(crate) jitter: &'static str,
    /// `fn(&E) -> bool`: which errors are worth another attempt.
    pub(crate) when: Option<Path>,
    /// The `policy = "…"` name that policy files may use for this function.
    pub(crate) policy: Option<LitStr>,
}

impl RetryArgs {
    pub(crate) fn parse(tokens: TokenStream) -> syn::Result<Self> {
        let mut args = RetryArgs {
            attempts: 3,
            exponential: true,
            base: Duration::from_millis(100),
            factor: 2.0,
            max_delay: Duration::from_secs(2),
            jitter: "full",
            when: None,
            policy: None,
        };
        let mut errors = Errors::default();
        let usage = format!("{VALID}, e.g. `#[retry(attempts = 5)]`");
        for (name, value) in named_only(tokens, "retry", &usage, &mut errors)? {
            let key = name.to_string();
            let set = args.set(&name, &key, &value);
            errors.take(set);
        }
        if args.max_delay < args.base {
            errors.push(Error::new(
                proc_macro2::Span::call_site(),
                "`max_delay` is shorter than `base`; every delay would be `max_delay`",
            ));
        }
        errors.finish()?;
        Ok(args)
    }

    fn set(&mut self, name: &Ident, key: &str, value: &Expr) -> syn::Result<()> {
        match key {
            "attempts" => self.attempts = attempts(value)?,
            "backoff" => {
                self.exponential = choice(value, &[("exponential", true), ("constant", false)])?;
            }
            "base" => self.base = duration::text_arg(value, "`\"100ms\"` or `\"2s\"`")?,
            "max_delay" => self.max_delay = duration::text_arg(value, "`\"100ms\"` or `\"2s\"`")?,
            "factor" => self.factor = factor(value)?,
            "jitter" => {
                self.jitter = choice(
                    value,
                    &[("full", "full"), ("equal", "equal"), ("none", "none")],
                )?
            }
            "policy" => self.policy = Some(super::policy_name(value)?),
            "when" => match value {
                Expr::Path(ExprPath { path, .. }) => self.when = Some(path.clone()),
                _ => {
                    return Err(Error::new(
                        value.span(),
                        "expected a path to a function `fn(&E) -> bool`, such as `when = is_transient`",
                    ));
                }
            },
            other => {
                return Err(Error::new(
                    name.span(),
                    format!("unknown argument `{other}`; {VALID}"),
                ));
            }
        }
        Ok(())
    }
}

fn attempts(value: &Expr) -> syn::Result<u32> {
    if let Expr::Lit(ExprLit {
        lit: Lit::Int(int), ..
    }) = value
        && let Ok(n) = int.base10_parse::<u32>()
        && n >= 1
    {
        return Ok(n);
    }
    Err(Error::new(
        value.span(),
        "expected a number of attempts of at least 1 (the first attempt included), such as `attempts = 3`",
    ))
}

fn factor(value: &Expr) -> syn::Result<f64> {
    let factor = match value {
        Expr::Lit(ExprLit {
            lit: Lit::Float(float),
            ..
        }) => float.base10_parse::<f64>().ok(),
        Expr::Lit(ExprLit {
            lit: Lit::Int(int), ..
        }) => int.base10_parse::<u32>().ok().map(f64::from),
        _ => None,
    };
    match factor {
        Some(f) if f.is_finite() && f >= 1.0 => Ok(f),
        _ => Err(Error::new(
            value.span(),
            "expected a growth factor of at least 1.0, such as `factor = 2.0`",
        )),
    }
}
