//! `#[circuit_breaker]`: ask the breaker before running the body, report the
//! outcome after.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::ext::IdentExt;

use super::layers::{self, Inner, Layer};
use super::{output_span, policy_option, private_ident};
use crate::args::BreakerArgs;
use crate::item::FnItem;

pub(crate) fn circuit_breaker(args: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    layers::expand(
        "circuit_breaker",
        BreakerArgs::parse(args).map(Layer::Breaker),
        item,
    )
}

/// `inner` (an expression of the function's output) run when the breaker
/// admits it. Under a `#[retry]` layer (`retried`), a rejection is also told
/// to the retrier, which does not wait out a backoff for a call it knows will
/// be rejected.
pub(super) fn wrap(args: &BreakerArgs, item: &FnItem, inner: Inner, retried: bool) -> TokenStream {
    let inner = inner.into_expr();
    let private = quote!(::resilience_runtime::__private::breaker);
    let function = item.sig.ident.unraw().to_string();
    let path = quote!(::core::concat!(::core::module_path!(), "::", #function));
    let name = match &args.name {
        Some(name) => quote!(::core::option::Option::Some(#name)),
        None => quote!(::core::option::Option::None),
    };
    let policy = policy_option(args.policy.as_ref());
    let BreakerArgs {
        failure_rate,
        window,
        min_calls,
        open_for,
        half_open_probes,
        slow_call,
        ..
    } = args;
    let duration = |d: &std::time::Duration| {
        let (secs, nanos) = (d.as_secs(), d.subsec_nanos());
        quote!(::core::time::Duration::new(#secs, #nanos))
    };
    let open_for = duration(open_for);
    let slow_call = match slow_call {
        Some(d) => {
            let d = duration(d);
            quote!(::core::option::Option::Some(#d))
        }
        None => quote!(::core::option::Option::None),
    };
    let site = private_ident("__RESILIENCE_BREAKER");
    let permit = private_ident("__resilience_permit");
    let output = private_ident("__resilience_output");
    let rejected = private_ident("__resilience_rejected");
    // Spanned at the return type: one that cannot carry a rejection is
    // reported there.
    let output_span = output_span(&item.sig);
    let reject = quote_spanned!(output_span=>
        ::resilience_runtime::__private::breaker::FromCircuitOpen::from_circuit_open(#rejected)
    );
    let tell_retrier = retried.then(|| {
        let retrier = private_ident(super::retry::RETRIER);
        quote!(#retrier.rejected(&#rejected);)
    });
    quote! {{
        static #site: #private::BreakerSite = #private::BreakerSite::new(
            #name,
            #path,
            #policy,
            #private::BreakerConfig {
                failure_rate: #failure_rate,
                window: #window,
                min_calls: #min_calls,
                open_for: #open_for,
                half_open_probes: #half_open_probes,
                slow_call: #slow_call,
            },
        );
        match #site.admit() {
            ::core::result::Result::Err(#rejected) => {
                #tell_retrier
                #reject
            }
            ::core::result::Result::Ok(#permit) => {
                let #output = #inner;
                #permit.record(#private::Outcome::is_failure(&#output));
                #output
            }
        }
    }}
}
