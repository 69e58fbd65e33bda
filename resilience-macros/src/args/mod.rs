//! Attribute arguments: an optional positional value, then `name = value` pairs.
//!
//! Each attribute has a module that turns the generic list into its own
//! configuration, with one setter per argument and a final `build` that checks
//! the rules between arguments.

mod breaker;
mod bulkhead;
#[cfg(feature = "tch")]
mod device;
mod duration;
mod monitor;
mod rate_limit;
mod retry;
mod timeout;

pub(crate) use breaker::BreakerArgs;
pub(crate) use bulkhead::BulkheadArgs;
#[cfg(feature = "tch")]
pub(crate) use device::DeviceArgs;
pub(crate) use monitor::MonitorArgs;
pub(crate) use rate_limit::RateLimitArgs;
pub(crate) use retry::RetryArgs;
pub(crate) use timeout::{AdaptiveArgs, TimeoutArgs};

use proc_macro2::TokenStream;
use syn::parse::{Parse, ParseStream, Parser};
use syn::punctuated::Punctuated;
use syn::{Expr, Ident, Token};

/// One argument of an attribute.
pub(crate) enum Arg {
    /// A bare value, as in `#[timeout_async(5)]`.
    Positional(Expr),
    /// `name = value`.
    Named { name: Ident, value: Expr },
}

impl Parse for Arg {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        if input.peek(Ident) && input.peek2(Token![=]) && !input.peek2(Token![==]) {
            let name: Ident = input.parse()?;
            input.parse::<Token![=]>()?;
            let value = input.parse()?;
            no_suffix(&value, Some(&name))?;
            Ok(Self::Named { name, value })
        } else {
            let value = input.parse()?;
            no_suffix(&value, None)?;
            Ok(Self::Positional(value))
        }
    }
}

/// Rejects a number with a suffix (`250ms`, `3s`, `20u32`): Rust reads
/// `250ms` as the number 250 with a suffix it would otherwise ignore here.
fn no_suffix(value: &Expr, name: Option<&Ident>) -> syn::Result<()> {
    let (digits, suffix, span) = match value {
        Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Int(int),
            ..
        }) => (int.base10_digits(), int.suffix(), int.span()),
        Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Float(float),
            ..
        }) => (float.base10_digits(), float.suffix(), float.span()),
        _ => return Ok(()),
    };
    if suffix.is_empty() {
        return Ok(());
    }
    let message = match name.map(|n| n.to_string()) {
        Some(name) if name == "ms" || name == "secs" => {
            let unit = if name == "ms" {
                "milliseconds"
            } else {
                "seconds"
            };
            format!(
                "`{name} = …` takes a plain number of {unit}; write `{name} = {digits}` for {digits} {unit}, or the duration alone as text: `(\"{digits}{suffix}\")`"
            )
        }
        Some(name)
            if matches!(
                name.as_str(),
                "base" | "max_delay" | "open_for" | "slow_call" | "max_wait" | "per" | "floor"
            ) =>
        {
            format!(
                "a number with a suffix is not a duration; write `{name} = \"{digits}{suffix}\"`"
            )
        }
        Some(name) => format!("`{name}` takes a plain number; write `{name} = {digits}`"),
        None => format!(
            "a number with a suffix is not a duration; write it as text, `\"{digits}{suffix}\"`, or as `ms = …` / `secs = …`"
        ),
    };
    Err(syn::Error::new(span, message))
}

/// Parses `arg, arg, …` (a trailing comma is fine).
pub(crate) fn parse_list(tokens: TokenStream) -> syn::Result<Punctuated<Arg, Token![,]>> {
    Punctuated::parse_terminated.parse2(tokens)
}

/// The `name = value` arguments of an attribute that takes no positional one,
/// each name once; a positional argument or a repeated name is reported in
/// `errors` and left out. `usage` follows "takes named arguments only; ".
pub(crate) fn named_only(
    tokens: TokenStream,
    attr: &str,
    usage: &str,
    errors: &mut Errors,
) -> syn::Result<Vec<(Ident, Expr)>> {
    let mut named: Vec<(Ident, Expr)> = Vec::new();
    for arg in parse_list(tokens)? {
        match arg {
            Arg::Positional(value) => errors.push(syn::Error::new_spanned(
                value,
                format!("`#[{attr}]` takes named arguments only; {usage}"),
            )),
            Arg::Named { name, .. } if named.iter().any(|(seen, _)| *seen == name) => {
                errors.push(syn::Error::new(
                    name.span(),
                    format!("duplicate `{name}` argument; give it once"),
                ));
            }
            Arg::Named { name, value } => named.push((name, value)),
        }
    }
    Ok(named)
}

/// One of a few text values, each standing for a `T`.
pub(crate) fn choice<T: Copy>(value: &Expr, choices: &[(&str, T)]) -> syn::Result<T> {
    let expected = choices
        .iter()
        .map(|(name, _)| format!("`\"{name}\"`"))
        .collect::<Vec<_>>()
        .join(", ");
    if let Expr::Lit(syn::ExprLit {
        lit: syn::Lit::Str(text),
        ..
    }) = value
    {
        let given = text.value();
        return choices
            .iter()
            .find(|(name, _)| *name == given)
            .map(|(_, choice)| *choice)
            .ok_or_else(|| {
                syn::Error::new(
                    text.span(),
                    format!("unknown value `{given:?}`; expected one of {expected}"),
                )
            });
    }
    Err(syn::Error::new_spanned(
        value,
        format!("expected one of {expected}"),
    ))
}

/// A whole number from `min` to `max`; `message` says what is expected
/// otherwise.
pub(crate) fn count(value: &Expr, min: u32, max: u32, message: &str) -> syn::Result<u32> {
    if let Expr::Lit(syn::ExprLit {
        lit: syn::Lit::Int(int),
        ..
    }) = value
        && let Ok(n) = int.base10_parse::<u32>()
        && (min..=max).contains(&n)
    {
        return Ok(n);
    }
    Err(syn::Error::new_spanned(value, message))
}

/// A `policy = "…"` name: the key of this function in policy files.
pub(crate) fn policy_name(value: &Expr) -> syn::Result<syn::LitStr> {
    name(
        value,
        "expected a policy name as text, such as `policy = \"slow-dep\"`",
    )
}

/// A name given as non-blank text; `expected` says what is expected
/// otherwise.
pub(crate) fn name(value: &Expr, expected: &str) -> syn::Result<syn::LitStr> {
    match value {
        Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Str(name),
            ..
        }) if !name.value().trim().is_empty() => Ok(name.clone()),
        _ => Err(syn::Error::new_spanned(value, expected)),
    }
}

/// Collects independent errors so that one build reports all of them.
#[derive(Default)]
pub(crate) struct Errors(Option<syn::Error>);

impl Errors {
    pub(crate) fn push(&mut self, error: syn::Error) {
        match &mut self.0 {
            Some(first) => first.combine(error),
            None => self.0 = Some(error),
        }
    }

    /// Keeps the error of `result`, if any, and passes its value on.
    pub(crate) fn take<T>(&mut self, result: syn::Result<T>) -> Option<T> {
        result.map_err(|error| self.push(error)).ok()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_none()
    }

    pub(crate) fn finish(self) -> syn::Result<()> {
        self.0.map_or(Ok(()), Err)
    }
}
