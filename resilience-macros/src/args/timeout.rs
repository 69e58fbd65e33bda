//! Arguments of `#[timeout_async(...)]`.

use std::time::Duration;

use proc_macro2::{Span, TokenStream};
use syn::spanned::Spanned;
use syn::{Error, Expr, Ident, LitStr};

use super::duration::{self, Unit};
use super::{Arg, Errors, parse_list};

const VALID: &str = "expected one of `secs`, `ms`, `on_timeout`, `policy`, `adaptive(...)` (or a positional duration)";

const ADAPTIVE: &str =
    "expected one of `percentile`, `floor`, `multiplier`, `min_calls`, `learning_rate`";

/// The configuration of one `#[timeout_async]`.
pub(crate) struct TimeoutArgs {
    pub(crate) limit: Duration,
    /// The fail-soft value, returned instead of an error when the deadline fires.
    pub(crate) on_timeout: Option<Expr>,
    /// The `policy = "…"` name that policy files may use for this function.
    pub(crate) policy: Option<LitStr>,
    /// How the limit adapts; `limit` is then its ceiling.
    pub(crate) adaptive: Option<AdaptiveArgs>,
}

/// The configuration of `adaptive(...)`.
pub(crate) struct AdaptiveArgs {
    pub(crate) percentile: f64,
    pub(crate) floor: Duration,
    pub(crate) multiplier: f64,
    pub(crate) min_calls: u32,
    pub(crate) learning_rate: f64,
}

impl TimeoutArgs {
    pub(crate) fn parse(tokens: TokenStream) -> syn::Result<Self> {
        let mut builder = Builder::default();
        for arg in parse_list(tokens)? {
            match arg {
                Arg::Positional(value) if is_adaptive(&value) => builder.adaptive(&value),
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
    /// `adaptive(...)` as written, and the floor if it gave one.
    adaptive: Option<(AdaptiveArgs, Option<(Span, Duration)>)>,
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

    /// `adaptive`, or `adaptive(name = value, …)`.
    fn adaptive(&mut self, value: &Expr) {
        if self.adaptive.is_some() {
            self.errors.push(Error::new_spanned(
                value,
                "duplicate `adaptive(...)` argument; give it once",
            ));
            return;
        }
        let mut args = AdaptiveArgs {
            percentile: 95.0,
            floor: Duration::ZERO,
            multiplier: 2.0,
            min_calls: 20,
            learning_rate: 0.5,
        };
        let mut floor = None;
        let mut seen: Vec<String> = Vec::new();
        let pairs = match value {
            Expr::Call(call) => call.args.iter().collect(),
            _ => Vec::new(),
        };
        for pair in pairs {
            let Expr::Assign(assign) = pair else {
                self.errors.push(Error::new_spanned(
                    pair,
                    format!("`adaptive(...)` takes `name = value` pairs; {ADAPTIVE}"),
                ));
                continue;
            };
            let name = match &*assign.left {
                Expr::Path(path) => path.path.get_ident().map(ToString::to_string),
                _ => None,
            };
            let Some(name) = name else {
                self.errors.push(Error::new_spanned(&assign.left, ADAPTIVE));
                continue;
            };
            if seen.contains(&name) {
                self.errors.push(Error::new_spanned(
                    &assign.left,
                    format!("duplicate `{name}` argument; give it once"),
                ));
                continue;
            }
            seen.push(name.clone());
            let value = &*assign.right;
            let set = match name.as_str() {
                "percentile" => number(value, "expected a percentile above 0 and below 100, such as `percentile = 95` or `99.9`")
                    .and_then(|p| in_range(value, p, p > 0.0 && p < 100.0, "expected a percentile above 0 and below 100, such as `percentile = 95` or `99.9`"))
                    .map(|p| args.percentile = p),
                "multiplier" => number(value, "expected a multiplier of at least 1.0, such as `multiplier = 1.5`")
                    .and_then(|m| in_range(value, m, (1.0..=1000.0).contains(&m), "expected a multiplier of at least 1.0, such as `multiplier = 1.5`"))
                    .map(|m| args.multiplier = m),
                "learning_rate" => number(value, "expected a learning rate above 0 and at most 1, such as `learning_rate = 0.5`")
                    .and_then(|r| in_range(value, r, r > 0.0 && r <= 1.0, "expected a learning rate above 0 and at most 1, such as `learning_rate = 0.5`"))
                    .map(|r| args.learning_rate = r),
                "min_calls" => super::count(value, 1, u32::MAX, "expected a number of calls, at least 1, such as `min_calls = 20`")
                    .map(|n| args.min_calls = n),
                "floor" => duration::text_arg(value, "`\"20ms\"`")
                    .and_then(|d| in_range(value, d, !d.is_zero(), "a floor of zero lets the limit fall to nothing; give a duration greater than zero, such as `floor = \"20ms\"`"))
                    .map(|d| floor = Some((value.span(), d))),
                other => Err(Error::new_spanned(
                    &assign.left,
                    format!("unknown argument `{other}` of `adaptive(...)`; {ADAPTIVE}"),
                )),
            };
            self.errors.take(set);
        }
        self.adaptive = Some((args, floor));
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
        let limit = self.limit.map(|(_, limit)| limit).unwrap_or_default();
        let adaptive = self.adaptive.map(|(mut args, floor)| {
            match floor {
                Some((span, floor)) if floor >= limit && !limit.is_zero() => {
                    self.errors.push(Error::new(
                        span,
                        "the floor is not below the written limit, which is the ceiling of an adaptive timeout; give a lower floor or a higher limit",
                    ));
                }
                Some((_, floor)) => args.floor = floor,
                // A tenth of the ceiling.
                None => args.floor = limit / 10,
            }
            args
        });
        self.errors.finish()?;
        Ok(TimeoutArgs {
            limit,
            on_timeout: self.on_timeout,
            policy: self.policy,
            adaptive,
        })
    }
}

/// Whether `value` is `adaptive` or `adaptive(...)`.
fn is_adaptive(value: &Expr) -> bool {
    let path = match value {
        Expr::Call(call) => match &*call.func {
            Expr::Path(path) => path,
            _ => return false,
        },
        Expr::Path(path) => path,
        _ => return false,
    };
    path.path.is_ident("adaptive")
}

/// A number, whole or not.
fn number(value: &Expr, message: &str) -> syn::Result<f64> {
    if let Expr::Lit(syn::ExprLit { lit, .. }) = value {
        let parsed = match lit {
            syn::Lit::Int(int) => int.base10_parse::<f64>().ok(),
            syn::Lit::Float(float) => float.base10_parse::<f64>().ok(),
            _ => None,
        };
        if let Some(number) = parsed {
            return Ok(number);
        }
    }
    Err(Error::new_spanned(value, message))
}

fn in_range<T>(value: &Expr, number: T, ok: bool, message: &str) -> syn::Result<T> {
    if ok {
        Ok(number)
    } else {
        Err(Error::new_spanned(value, message))
    }
}
