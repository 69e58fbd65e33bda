//! Durations written in attributes: seconds (`5`, `0.25`), milliseconds
//! (`ms = 250`) or text (`"250ms"`, `"2s"`, `"1m30s"`, `"1500us"`).
//!
//! Text is read with `humantime`, the parser the runtime uses for policy files,
//! so an attribute and a policy file accept the same spellings.

use std::time::Duration;

use syn::spanned::Spanned;
use syn::{Error, Expr, ExprLit, ExprUnary, Lit, LitStr, UnOp};

/// The unit of a bare number.
#[derive(Clone, Copy)]
pub(crate) enum Unit {
    Secs,
    Millis,
}

/// A positional duration: a number of seconds or a text duration.
pub(crate) fn positional(expr: &Expr) -> syn::Result<Duration> {
    match expr {
        Expr::Lit(ExprLit {
            lit: Lit::Str(text),
            ..
        }) => from_text(text),
        _ => number(expr, Unit::Secs),
    }
}

/// A duration given as a number of `unit`s.
pub(crate) fn number(expr: &Expr, unit: Unit) -> syn::Result<Duration> {
    let duration = match expr {
        Expr::Lit(ExprLit {
            lit: Lit::Int(int), ..
        }) => {
            let n: u64 = int.base10_parse()?;
            match unit {
                Unit::Secs => Duration::from_secs(n),
                Unit::Millis => Duration::from_millis(n),
            }
        }
        Expr::Lit(ExprLit {
            lit: Lit::Float(float),
            ..
        }) => {
            let n: f64 = float.base10_parse()?;
            let secs = match unit {
                Unit::Secs => n,
                Unit::Millis => n / 1000.0,
            };
            Duration::try_from_secs_f64(secs)
                .map_err(|_| Error::new(float.span(), "this duration is too large"))?
        }
        Expr::Lit(ExprLit {
            lit: Lit::Str(text),
            ..
        }) => {
            return Err(Error::new(
                text.span(),
                "expected a number here; to write the duration as text, pass it alone: `#[timeout_async(\"250ms\")]`",
            ));
        }
        Expr::Unary(ExprUnary {
            op: UnOp::Neg(_), ..
        }) => {
            return Err(Error::new_spanned(
                expr,
                "a duration cannot be negative; write a positive one such as `5` or `\"250ms\"`",
            ));
        }
        _ => {
            return Err(Error::new(
                expr.span(),
                "expected a duration literal: seconds (`5`, `0.25`) or text (`\"250ms\"`, `\"1m30s\"`)",
            ));
        }
    };
    non_zero(duration, expr.span())
}

fn from_text(text: &LitStr) -> syn::Result<Duration> {
    non_zero(self::text(text)?, text.span())
}

/// A named duration given as text, zero allowed; `example` shows one.
pub(crate) fn text_arg(value: &Expr, example: &str) -> syn::Result<Duration> {
    match value {
        Expr::Lit(ExprLit {
            lit: Lit::Str(text),
            ..
        }) => self::text(text),
        _ => Err(Error::new(
            value.span(),
            format!("expected a duration as text, such as {example}"),
        )),
    }
}

/// A text duration, zero allowed.
pub(crate) fn text(text: &LitStr) -> syn::Result<Duration> {
    let value = text.value();
    humantime::parse_duration(value.trim()).map_err(|error| {
        Error::new(
            text.span(),
            format!(
                "invalid duration `{value:?}`: {error}; write e.g. `\"250ms\"`, `\"2s\"` or `\"1m30s\"`"
            ),
        )
    })
}

fn non_zero(duration: Duration, span: proc_macro2::Span) -> syn::Result<Duration> {
    if duration.is_zero() {
        Err(Error::new(
            span,
            "a timeout of zero would fail every call; give a duration greater than zero",
        ))
    } else {
        Ok(duration)
    }
}
