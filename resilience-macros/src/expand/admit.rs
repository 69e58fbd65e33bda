//! `#[rate_limit]` and `#[bulkhead]`: ask for a permit or a place before
//! running the body (waiting if the attribute allows), report the outcome
//! after.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::Ident;

use super::{Gate, duration, option, output_span, private_ident};
use crate::args::{BulkheadArgs, RateLimitArgs};
use crate::item::FnItem;

/// The site of one `#[rate_limit]`: its settings, for `function`.
pub(super) fn rate_limit_site(args: &RateLimitArgs, function: &Ident) -> TokenStream {
    let private = quote!(::resilience_runtime::__private::admit);
    let name = option(args.name.as_ref());
    let policy = option(args.policy.as_ref());
    let interval = duration(&args.interval);
    let max_wait = duration(&args.max_wait);
    let burst = args.burst;
    let max_keys = args.max_keys as usize;
    quote! {
        #private::RateLimitSite::new(
            #name,
            &#function,
            #policy,
            #private::RateLimitSettings::new(#interval, #burst, #max_wait),
            #max_keys,
        )
    }
}

/// The site of one `#[bulkhead]`: its settings, for `function`.
pub(super) fn bulkhead_site(args: &BulkheadArgs, function: &Ident) -> TokenStream {
    let private = quote!(::resilience_runtime::__private::admit);
    let name = option(args.name.as_ref());
    let policy = option(args.policy.as_ref());
    let max_wait = duration(&args.max_wait);
    let max_concurrent = args.max_concurrent;
    quote! {
        #private::BulkheadSite::new(
            #name,
            &#function,
            #policy,
            #private::BulkheadSettings::new(#max_concurrent, #max_wait),
        )
    }
}

/// The variable that holds the key of the `#[rate_limit]` of site `site`.
fn key_var(site: &Ident) -> Ident {
    private_ident(&format!("__resilience_key_{site}"))
}

/// The statement that reads a `#[rate_limit]`'s key before the body takes
/// its arguments.
pub(super) fn read_key(args: &RateLimitArgs, site: &Ident) -> Option<TokenStream> {
    let key = args.key.as_ref()?;
    let var = key_var(site);
    // Spanned at the key: an argument that is not `Hash` is reported there.
    let read = quote_spanned!(key.span()=>
        ::resilience_runtime::__private::admit::key(&#key)
    );
    Some(quote!(let #var = #read;))
}

/// Checks that `key = …` names an argument of the function.
pub(super) fn check_key(args: &RateLimitArgs, item: &FnItem) -> syn::Result<()> {
    let Some(key) = &args.key else {
        return Ok(());
    };
    let names = item.argument_names();
    if names.iter().any(|name| name == key) {
        return Ok(());
    }
    let listed = names
        .iter()
        .map(|name| format!("`{name}`"))
        .collect::<Vec<_>>()
        .join(", ");
    let message = if listed.is_empty() {
        format!("`key = {key}` names no argument: this function takes none")
    } else {
        format!("`key = {key}` names no argument of this function; its arguments are {listed}")
    };
    Err(syn::Error::new(key.span(), message))
}

/// `inner` (an expression of the function's output) run once the rate
/// limiter of `site` admits it. Under a `#[retry]` layer, a rejection is
/// also told to the call's `retrier`, whose next attempt waits for a
/// permit.
pub(super) fn rate_limit(
    args: &RateLimitArgs,
    item: &FnItem,
    inner: TokenStream,
    gate: &Gate<'_>,
) -> TokenStream {
    let Gate { site, retrier } = *gate;
    let key = match &args.key {
        Some(_) => {
            let var = key_var(site);
            quote!(::core::option::Option::Some(#var))
        }
        None => quote!(::core::option::Option::None),
    };
    let rejected = private_ident("__resilience_rejected");
    let convert = quote_spanned!(output_span(&item.sig)=>
        ::resilience_runtime::__private::admit::FromRateLimited::from_rate_limited(#rejected)
    );
    let tell_retrier = retrier.map(|retrier| quote!(#retrier.limited(&#rejected);));
    admitted(
        quote!(#site.admit(#key)),
        inner,
        gate,
        &rejected,
        quote!(#tell_retrier #convert),
    )
}

/// `inner` (an expression of the function's output) run once the bulkhead
/// of `site` has a place for it.
pub(super) fn bulkhead(item: &FnItem, inner: TokenStream, gate: &Gate<'_>) -> TokenStream {
    let site = gate.site;
    let rejected = private_ident("__resilience_rejected");
    let convert = quote_spanned!(output_span(&item.sig)=>
        ::resilience_runtime::__private::admit::FromBulkheadFull::from_bulkhead_full(#rejected)
    );
    admitted(quote!(#site.enter()), inner, gate, &rejected, convert)
}

/// `inner` run when `admission` (a future of a `Result`) admits it, its
/// outcome counted by the gate's site; `reject` is the output when it does
/// not.
fn admitted(
    admission: TokenStream,
    inner: TokenStream,
    gate: &Gate<'_>,
    rejected: &Ident,
    reject: TokenStream,
) -> TokenStream {
    let site = gate.site;
    let private = quote!(::resilience_runtime::__private);
    let admitted = private_ident("__resilience_admitted");
    let output = private_ident("__resilience_output");
    let failed = private_ident("__resilience_failed");
    // Any output type: whether it can carry a rejection is the one error
    // a wrong one gets.
    quote! {
        match #admission.await {
            ::core::result::Result::Err(#rejected) => { #reject }
            ::core::result::Result::Ok(#admitted) => {
                let #output = #inner;
                let #failed = {
                    #[allow(unused_imports)]
                    use #private::{PlainOutcome as _, ResultOutcome as _};
                    (&&#private::Outcome(&#output)).failed()
                };
                #site.finish(#admitted, #failed);
                #output
            }
        }
    }
}
