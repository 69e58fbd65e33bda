//! `#[monitor]`: each pass through the layer is counted, and a slow one
//! reported.

use proc_macro2::TokenStream;
use quote::quote;
use syn::Ident;

use super::{duration, option, private_ident};
use crate::args::MonitorArgs;

/// The site of one `#[monitor]`: its settings, for `function`.
pub(super) fn site(args: &MonitorArgs, function: &Ident) -> TokenStream {
    let policy = option(args.policy.as_ref());
    let name = option(args.name.as_ref());
    let slow = option(args.slow.as_ref().map(duration));
    quote! {
        ::resilience_runtime::__private::MonitorSite::new(&#function, #policy, #name, #slow)
    }
}

/// `inner` (an expression of the function's output) measured by the site
/// `site`.
pub(super) fn wrap(inner: TokenStream, site: &Ident) -> TokenStream {
    let private = quote!(::resilience_runtime::__private);
    let entered = private_ident("__resilience_entered");
    let output = private_ident("__resilience_output");
    quote! {{
        let #entered = #site.enter();
        let #output = #inner;
        {
            #[allow(unused_imports)]
            use #private::{PlainOutcome as _, ResultOutcome as _};
            #site.exit(#entered, (&&#private::Outcome(&#output)).failed());
        }
        #output
    }}
}
