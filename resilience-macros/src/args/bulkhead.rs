//! Arguments of `#[bulkhead(...)]`.

use std::time::Duration;

use proc_macro2::{Span, TokenStream};
use syn::{Error, LitStr};

use super::{Errors, count, duration, named_only};

const VALID: &str = "expected one of `max_concurrent`, `max_wait`, `name`, `policy`";

/// The configuration of one `#[bulkhead]`.
pub(crate) struct BulkheadArgs {
    pub(crate) max_concurrent: u32,
    pub(crate) max_wait: Duration,
    /// A bulkhead shared by every function with this name.
    pub(crate) name: Option<LitStr>,
    /// The `policy = "…"` name that policy files may use for this function.
    pub(crate) policy: Option<LitStr>,
}

impl BulkheadArgs {
    pub(crate) fn parse(tokens: TokenStream) -> syn::Result<Self> {
        let mut max_concurrent = None;
        let mut args = BulkheadArgs {
            max_concurrent: 0,
            max_wait: Duration::ZERO,
            name: None,
            policy: None,
        };
        let mut errors = Errors::default();
        for (name, value) in named_only(tokens, "bulkhead", VALID, &mut errors)? {
            let set = match name.to_string().as_str() {
                "max_concurrent" => count(
                    &value,
                    1,
                    u32::MAX >> 3,
                    "expected how many calls may run at once, at least 1, such as `max_concurrent = 10`",
                )
                .map(|n| max_concurrent = Some(n)),
                "max_wait" => duration::text_arg(&value, "`\"50ms\"`").map(|d| args.max_wait = d),
                "name" => super::name(
                    &value,
                    "expected a bulkhead name as text, such as `name = \"renderer\"`",
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
        match max_concurrent {
            Some(n) => args.max_concurrent = n,
            None if errors.is_empty() => errors.push(Error::new(
                Span::call_site(),
                "missing `max_concurrent`: how many calls may run at once; write e.g. `#[bulkhead(max_concurrent = 10)]`",
            )),
            None => {}
        }
        errors.finish()?;
        Ok(args)
    }
}
