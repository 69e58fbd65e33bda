//! `#[timeout_async]`: the body runs inside `__private::deadline`, and the
//! timeout becomes either the fail-soft value or `FromTimeout::from_timeout`.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::ext::IdentExt;
use syn::spanned::Spanned;

use super::layers::{self, Inner, Layer};
use super::{policy_option, private_ident};
use crate::args::TimeoutArgs;
use crate::item::FnItem;

pub(crate) fn timeout_async(args: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    layers::expand(
        "timeout_async",
        TimeoutArgs::parse(args).map(Layer::Timeout),
        item,
    )
}

/// `inner` (an expression of the function's output) run under the deadline.
pub(super) fn wrap(args: &TimeoutArgs, item: &FnItem, inner: Inner) -> TokenStream {
    let inner = inner.into_future();
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
    let fail_soft = args.on_timeout.is_some();
    quote! {{
        static #site: ::resilience_runtime::__private::TimeoutSite =
            ::resilience_runtime::__private::TimeoutSite::new(
                ::core::concat!(::core::module_path!(), "::", #function),
                #policy,
                ::core::time::Duration::new(#secs, #nanos),
                #fail_soft,
            );
        match #site.run(#inner).await {
            ::core::result::Result::Ok(#output) => #output,
            ::core::result::Result::Err(#expired) => #on_expired,
        }
    }}
}
