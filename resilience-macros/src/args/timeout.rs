//! Arguments of `#[timeout_async(...)]`.

use std::time::Duration;

use proc_macro2::{Span, TokenStream};
use syn::spanned::Spanned;
use syn::{Error, Expr, Ident, LitStr};

use super::duration::{self, Unit};
use super::{Arg, Errors, parse_list};

const VALID: &str =
    "expected one of `secs`, `ms`, `on_timeout`, `policy` (or a positional duration)";

/// The configuration of one `#[timeout_async]`.
pub(crate) struct TimeoutArgs {
    pub(crate) limit: Duration,
    /// The fail-soft value, returned instead of an error when the deadline fires.
    pub(crate) on_timeout: Option<Expr>,
    /// The `policy = "…"` name that policy files may use for this function.
    pub(crate) policy: Option<LitStr>,
}

impl TimeoutArgs {
    pub(crate) fn parse(tokens: TokenStream) -> syn::Result<Self> {
        let mut builder = Builder::default();
        for arg in parse_list(tokens)? {
            match arg {
                Arg::Positional(value) => builder.limit(Source::Positional, value.span(), &value),
                Arg::Named { name, value } => builder.named(&name, value),
            }
        }
        builder.build()
    }
}

/// How the duration was written, to explain a duplicate.
#[derive(Clone, Copy, PartialEq)]
enum Source {
    Positional,
    Secs,
    Ms,
}

impl Source {
    fn describe(self) -> &'static str {
        match self {
            Source::Positional => "a positional duration",
            Source::Secs => "`secs = …`",
            Source::Ms => "`ms = …`",
        }
    }
}

#[derive(Default)]
struct Builder {
    limit: Option<(Source, Duration)>,
    on_timeout: Option<Expr>,
    policy: Option<LitStr>,
    errors: Errors,
}

impl Builder {
    fn named(&mut self, name: &Ident, value: Expr) {
        match name.to_string().as_str() {
            "secs" => self.limit(Source::Secs, name.span(), &value),
            "ms" => self.limit(Source::Ms, name.span(), &value),
            "on_timeout" if self.on_timeout.is_some() => self.errors.push(Error::new(
                name.span(),
                "duplicate `on_timeout` argument; give one fail-soft value",
            )),
            "on_timeout" => self.on_timeout = Some(value),
            "policy" => match super::policy_name(&value) {
                Ok(_) if self.policy.is_some() => self.errors.push(Error::new(
                    name.span(),
                    "duplicate `policy` argument; give it once",
                )),
                Ok(policy) => self.policy = Some(policy),
                Err(error) => self.errors.push(error),
            },
            other => self.errors.push(Error::new(
                name.span(),
                format!("unknown argument `{other}`; {VALID}"),
            )),
        }
    }

    fn limit(&mut self, source: Source, span: Span, value: &Expr) {
        let parsed = match source {
            Source::Positional => duration::positional(value),
            Source::Secs => duration::number(value, Unit::Secs),
            Source::Ms => duration::number(value, Unit::Millis),
        };
        let Some(parsed) = self.errors.take(parsed) else {
            return;
        };
        match self.limit {
            Some((earlier, _)) if earlier == source && source != Source::Positional => {
                self.errors.push(Error::new(
                    span,
                    format!(
                        "duplicate {} argument; give the duration once",
                        source.describe()
                    ),
                ));
            }
            Some((earlier, _)) => self.errors.push(Error::new(
                span,
                format!(
                    "the duration is already given as {}; keep only one of them",
                    earlier.describe()
                ),
            )),
            None => self.limit = Some((source, parsed)),
        }
    }

    fn build(mut self) -> syn::Result<TimeoutArgs> {
        if self.limit.is_none() && self.errors.is_empty() {
            self.errors.push(Error::new(
                Span::call_site(),
                "missing the timeout duration; write e.g. `#[timeout_async(5)]`, `#[timeout_async(\"250ms\")]` or `#[timeout_async(ms = 250)]`",
            ));
        }
        self.errors.finish()?;
        Ok(TimeoutArgs {
            limit: self.limit.map(|(_, limit)| limit).unwrap_or_default(),
            on_timeout: self.on_timeout,
            policy: self.policy,
        })
    }
}
