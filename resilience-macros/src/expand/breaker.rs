//! `#[circuit_breaker]`: ask the breaker before running the body, report the
//! outcome after.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::Ident;

use super::{Gate, duration, option, output_span, private_ident};
use crate::args::BreakerArgs;
use crate::item::FnItem;

/// The site of one `#[circuit_breaker]`: its settings, for `function`.
pub(super) fn site(args: &BreakerArgs, function: &Ident) -> TokenStream {
    let private = quote!(::resilience_runtime::__private::breaker);
    let name = option(args.name.as_ref());
    let policy = option(args.policy.as_ref());
    let BreakerArgs {
        failure_rate,
        window,
        min_calls,
        open_for,
        half_open_probes,
        slow_call,
        ..
    } = args;
    let open_for = duration(open_for);
    let slow_call = option(slow_call.as_ref().map(duration));
    quote! {
        #private::BreakerSite::new(
            #name,
            &#function,
            #policy,
            #private::Settings::new(
                #failure_rate,
                #window,
                #min_calls,
                #open_for,
                #half_open_probes,
                #slow_call,
            ),
        )
    }
}

/// `inner` (an expression of the function's output) run when the breaker
/// of the site `site` admits it. Under a `#[retry]` layer, a rejection is
/// also told to the call's `retrier`, which does not wait out a backoff for a
/// call it knows will be rejected.
pub(super) fn wrap(item: &FnItem, inner: TokenStream, gate: &Gate<'_>) -> TokenStream {
    let Gate { site, retrier } = *gate;
    let private = quote!(::resilience_runtime::__private::breaker);
    let permit = private_ident("__resilience_permit");
    let output = private_ident("__resilience_output");
    let rejected = private_ident("__resilience_rejected");
    // Spanned at the return type: one that cannot carry a rejection is
    // reported there.
    let output_span = output_span(&item.sig);
    let reject = quote_spanned!(output_span=>
        ::resilience_runtime::__private::breaker::FromCircuitOpen::from_circuit_open(#rejected)
    );
    let tell_retrier = retrier.map(|retrier| quote!(#retrier.rejected(&#rejected);));
    quote! {
        match #site.admit() {
            ::core::result::Result::Err(#rejected) => {
                #tell_retrier
                #reject
            }
            ::core::result::Result::Ok(#permit) => {
                let #output = #inner;
                #site.finish(#permit, #private::Outcome::is_failure(&#output));
                #output
            }
        }
    }
}
