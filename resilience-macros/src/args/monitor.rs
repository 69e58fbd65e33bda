//! Arguments of `#[monitor(...)]`.

use std::time::Duration;

use proc_macro2::TokenStream;
use syn::{Error, LitStr};

use super::{Errors, duration, named_only};

const VALID: &str = "expected one of `slow`, `name`, `policy`";

/// The configuration of one `#[monitor]`.
pub(crate) struct MonitorArgs {
    /// Calls slower than this are reported.
    pub(crate) slow: Option<Duration>,
    /// The name the function is recorded under.
    pub(crate) name: Option<LitStr>,
    /// The `policy = "…"` name that policy files may use for this function.
    pub(crate) policy: Option<LitStr>,
}

impl MonitorArgs {
    pub(crate) fn parse(tokens: TokenStream) -> syn::Result<Self> {
        let mut args = MonitorArgs {
            slow: None,
            name: None,
            policy: None,
        };
        let mut errors = Errors::default();
        for (name, value) in named_only(tokens, "monitor", VALID, &mut errors)? {
            let set = match name.to_string().as_str() {
                "slow" => duration::text_arg(&value, "`\"50ms\"`").map(|v| args.slow = Some(v)),
                "name" => super::name(
                    &value,
                    "expected the name to record calls under, as text, such as `name = \"api_call\"`",
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
        errors.finish()?;
        Ok(args)
    }
}
