//! Arguments of `#[safe_mps_op(...)]`.

use proc_macro2::{Span, TokenStream};
use syn::spanned::Spanned;
use syn::{Error, Expr, ExprLit, Ident, Lit};

use super::{Arg, Errors, choice, parse_list};

const VALID: &str = "expected one of `fallback`, `return_to`, `sticky`, `retries`, `rerun`, `snapshot_inputs`, `policy`";

/// The configuration of one `#[safe_mps_op]`.
pub(crate) struct DeviceArgs {
    /// `fallback = "cpu"` (the default) or `"none"`.
    pub(crate) fallback: bool,
    /// `return_to = "origin"` (the default) or `"cpu"`.
    pub(crate) return_to_origin: bool,
    /// `sticky = true` (the default) or `false`.
    pub(crate) sticky: bool,
    /// `retries = N`: out-of-memory retries on the device; 0 by default.
    pub(crate) retries: u32,
    /// `rerun = "idempotent"`: the body may run again although it takes
    /// `&mut` state.
    pub(crate) idempotent: bool,
    /// `snapshot_inputs = true`: device attempts work on copies of the
    /// tensors passed by value.
    pub(crate) snapshot: bool,
    /// The `policy = "…"` name that policy files may use for this function.
    pub(crate) policy: Option<syn::LitStr>,
}

impl DeviceArgs {
    pub(crate) fn parse(tokens: TokenStream) -> syn::Result<Self> {
        let mut builder = Builder::default();
        for arg in parse_list(tokens)? {
            match arg {
                Arg::Positional(value) => builder.errors.push(Error::new(
                    value.span(),
                    format!("`#[safe_mps_op]` takes named options only; {VALID}, e.g. `#[safe_mps_op(retries = 2)]`"),
                )),
                Arg::Named { name, value } => builder.named(&name, &value),
            }
        }
        builder.errors.finish()?;
        Ok(DeviceArgs {
            fallback: builder.fallback.unwrap_or(true),
            return_to_origin: builder.return_to_origin.unwrap_or(true),
            sticky: builder.sticky.unwrap_or(true),
            retries: builder.retries.unwrap_or(0),
            idempotent: builder.idempotent.unwrap_or(false),
            snapshot: builder.snapshot.unwrap_or(false),
            policy: builder.policy,
        })
    }
}

#[derive(Default)]
struct Builder {
    fallback: Option<bool>,
    return_to_origin: Option<bool>,
    sticky: Option<bool>,
    retries: Option<u32>,
    idempotent: Option<bool>,
    snapshot: Option<bool>,
    policy: Option<syn::LitStr>,
    errors: Errors,
}

impl Builder {
    fn named(&mut self, name: &Ident, value: &Expr) {
        let key = name.to_string();
        let parsed = match key.as_str() {
            "fallback" => {
                choice(value, &[("cpu", true), ("none", false)]).map(|v| set(&mut self.fallback, v))
            }
            "return_to" => choice(value, &[("origin", true), ("cpu", false)])
                .map(|v| set(&mut self.return_to_origin, v)),
            "sticky" => boolean(value).map(|v| set(&mut self.sticky, v)),
            "retries" => count(value).map(|v| set(&mut self.retries, v)),
            "rerun" => choice(value, &[("idempotent", true), ("checked", false)])
                .map(|v| set(&mut self.idempotent, v)),
            "snapshot_inputs" => boolean(value).map(|v| set(&mut self.snapshot, v)),
            "policy" => super::policy_name(value).map(|v| set(&mut self.policy, v)),
            other => Err(Error::new(
                name.span(),
                format!("unknown option `{other}`; {VALID}"),
            )),
        };
        match parsed {
            Ok(true) => {}
            Ok(false) => self.errors.push(duplicate(name.span(), &key)),
            Err(error) => self.errors.push(error),
        }
    }
}

/// Stores `value`; false when the option was already given.
fn set<T>(slot: &mut Option<T>, value: T) -> bool {
    slot.replace(value).is_none()
}

fn duplicate(span: Span, key: &str) -> Error {
    Error::new(span, format!("duplicate `{key}` option; give it once"))
}

fn boolean(value: &Expr) -> syn::Result<bool> {
    match value {
        Expr::Lit(ExprLit {
            lit: Lit::Bool(flag),
            ..
        }) => Ok(flag.value),
        _ => Err(Error::new(value.span(), "expected `true` or `false`")),
    }
}

fn count(value: &Expr) -> syn::Result<u32> {
    match value {
        Expr::Lit(ExprLit {
            lit: Lit::Int(int), ..
        }) => int.base10_parse::<u32>().map_err(|_| {
            Error::new(
                int.span(),
                "expected a number of retries between 0 and 4294967295",
            )
        }),
        _ => Err(Error::new(
            value.span(),
            "expected a whole number of retries, such as `retries = 2`",
        )),
    }
}
