//! `#[timeout_async]`: the body runs inside `__private::deadline`, and the
//! timeout becomes either the fail-soft value or `FromTimeout::from_timeout`.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::ext::IdentExt;
use syn::spanned::Spanned;

use super::{fake_return_edge, private_ident};
use crate::args::{Errors, TimeoutArgs};
use crate::item::{AsyncBody, FnItem};

pub(crate) fn timeout_async(args: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    // Arguments and item are checked independently so that both kinds of
    // mistakes show up in one build.
    let mut errors = Errors::default();
    let args = errors.take(TimeoutArgs::parse(args));
    let item = errors.take(FnItem::parse(item, "timeout_async", "an `async fn`"));
    let body = item
        .as_ref()
        .and_then(|item| errors.take(item.async_body("timeout_async")));
    errors.finish()?;
    let (Some(args), Some(item), Some(body)) = (args, item, body) else {
        unreachable!("errors were reported above");
    };
    Ok(expand(&args, &item, body))
}

fn expand(args: &TimeoutArgs, item: &FnItem, body: AsyncBody) -> TokenStream {
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
    let timed = |future: TokenStream| {
        quote! {
            match ::resilience_runtime::__private::deadline(
                ::core::concat!(::core::module_path!(), "::", #function),
                ::core::time::Duration::new(#secs, #nanos),
                #future,
            )
            .await
            {
                ::core::result::Result::Ok(#output) => #output,
                ::core::result::Result::Err(#expired) => #on_expired,
            }
        }
    };

    match body {
        AsyncBody::Native(stmts) => {
            let fake_return = fake_return_edge(item.output_type());
            item.with_body(timed(quote!(async move { #fake_return #stmts })))
        }
        AsyncBody::AsyncTrait {
            prefix,
            mut call,
            future,
        } => {
            // `#[async_trait]` already pins the output type inside its block.
            let timed = timed(quote!(#future));
            call.args[0] = syn::parse_quote!(async move { #timed });
            item.with_body(quote!(#(#prefix)* #call))
        }
    }
}
