//! `#[timeout_async]`: the body runs inside `__private::deadline`, and the
//! timeout becomes either the fail-soft value or `FromTimeout::from_timeout`.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::Ident;
use syn::spanned::Spanned;

use super::{duration, option, private_ident};
use crate::args::{AdaptiveArgs, TimeoutArgs};
use crate::item::FnItem;

/// The site of one `#[timeout_async]`: its settings, for `function`.
pub(super) fn site(args: &TimeoutArgs, function: &Ident) -> TokenStream {
    let (secs, nanos) = (args.limit.as_secs(), args.limit.subsec_nanos());
    let policy = option(args.policy.as_ref());
    let fail_soft = args.on_timeout.is_some();
    let adaptive = option(args.adaptive.as_ref().map(|adaptive| {
        let AdaptiveArgs {
            percentile,
            floor,
            multiplier,
            min_calls,
            learning_rate,
        } = adaptive;
        let floor = duration(floor);
        quote! {
            ::resilience_runtime::__private::Adaptive::new(
                #percentile,
                #floor,
                #multiplier,
                #min_calls,
                #learning_rate,
            )
        }
    }));
    quote! {
        ::resilience_runtime::__private::TimeoutSite::new(
            &#function,
            #policy,
            ::core::time::Duration::new(#secs, #nanos),
            #fail_soft,
            #adaptive,
        )
    }
}

/// `inner` (a future of the function's output) run under the deadline of
/// the site `site`.
pub(super) fn wrap(
    args: &TimeoutArgs,
    item: &FnItem,
    inner: TokenStream,
    site: &Ident,
) -> TokenStream {
    let output = private_ident("__resilience_output");
    let error = private_ident("__resilience_error");
    let (expired, on_expired) = match &args.on_timeout {
        Some(value) => (quote!(_), quote!(#value)),
        None => {
            // Spanned at the return type: an unsuitable type is reported there.
            let span = item
                .output_type()
                .map_or_else(|| item.sig.ident.span(), |ty| ty.span());
            let convert = quote_spanned!(span=>
                ::resilience_runtime::__private::FromTimeout::from_timeout(#error)
            );
            (quote!(#error), convert)
        }
    };
    quote! {
        match #site.counted(#site.run(#inner).await) {
            ::core::result::Result::Ok(#output) => #output,
            ::core::result::Result::Err(#expired) => #on_expired,
        }
    }
}
