//! `#[timeout_async]`: the body runs inside `__private::deadline`, and the
//! timeout becomes either the fail-soft value or `FromTimeout::from_timeout`.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::ext::IdentExt;
use syn::spanned::Spanned;

use super::layers::{self, Layer};
use super::{fake_return_edge, policy_option, private_ident};
use crate::args::TimeoutArgs;
use crate::item::FnItem;

pub(crate) fn timeout_async(args: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    layers::expand(
        "timeout_async",
        TimeoutArgs::parse(args).map(Layer::Timeout),
        item,
    )
}

/// The statements `body` of an async body, run under the deadline.
pub(super) fn wrap(args: &TimeoutArgs, item: &FnItem, body: TokenStream) -> TokenStream {
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
    let function = item.sig.ident.unraw().to_string();
    let (secs, nanos) = (args.limit.as_secs(), args.limit.subsec_nanos());
    let policy = policy_option(args.policy.as_ref());
    let site = private_ident("__RESILIENCE_TIMEOUT");
    let fake_return = fake_return_edge(item.output_type());
    // Not `async move`: the block borrows the arguments, so that an enclosing
    // `#[retry]` can run it again.
    quote! {
        static #site: ::resilience_runtime::__private::TimeoutSite =
            ::resilience_runtime::__private::TimeoutSite::new(
                ::core::concat!(::core::module_path!(), "::", #function),
                #policy,
                ::core::time::Duration::new(#secs, #nanos),
            );
        match #site.run(async { #fake_return #body }).await {
            ::core::result::Result::Ok(#output) => #output,
            ::core::result::Result::Err(#expired) => #on_expired,
        }
    }
}
