//! `#[retry]`: a loop around the body, which runs again with the arguments as
//! they were: references re-borrowed, owned values cloned for each attempt.

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::{Error, FnArg, Ident, Pat, Receiver, ReceiverKind, Type};

use super::{duration, option, output_span, private_ident};
use crate::args::RetryArgs;
use crate::item::FnItem;

/// What `#[retry]` needs of the function: a receiver it can use again.
pub(super) fn check(item: &FnItem) -> syn::Result<()> {
    let Some(Receiver {
        self_token, kind, ..
    }) = item.sig.receiver()
    else {
        return Ok(());
    };
    let by_value = match kind {
        ReceiverKind::Value => true,
        ReceiverKind::Typed(_, ty) => matches!(&**ty, Type::Path(p) if p.path.is_ident("Self")),
        _ => false,
    };
    if by_value {
        return Err(Error::new(
            self_token.span,
            "`#[retry]` cannot run a method that takes `self` by value again; take `&self` or `&mut self`",
        ));
    }
    Ok(())
}

/// Arguments passed by value are copied afresh for each attempt, so the
/// function's own bindings need no `mut`.
pub(super) fn prepare(item: &mut FnItem) {
    for input in &mut item.sig.inputs {
        if let FnArg::Typed(typed) = input
            && !matches!(&*typed.ty, Type::Reference(_))
        {
            drop_mut(&mut typed.pat);
        }
    }
}

fn drop_mut(pat: &mut Pat) {
    match pat {
        Pat::Ident(p) => {
            p.mutability = None;
            if let Some((_, sub)) = &mut p.subpat {
                drop_mut(sub);
            }
        }
        Pat::Tuple(t) => t.elems.iter_mut().for_each(drop_mut),
        Pat::TupleStruct(t) => t.elems.iter_mut().for_each(drop_mut),
        Pat::Struct(s) => s.fields.iter_mut().for_each(|f| drop_mut(&mut f.pat)),
        Pat::Slice(s) => s.elems.iter_mut().for_each(drop_mut),
        Pat::Reference(r) => drop_mut(&mut r.pat),
        Pat::Type(t) => drop_mut(&mut t.pat),
        Pat::Paren(p) => drop_mut(&mut p.pat),
        _ => {}
    }
}

/// The site of one `#[retry]`: its settings, for `function`.
pub(super) fn site(args: &RetryArgs, function: &Ident) -> TokenStream {
    let private = quote!(::resilience_runtime::__private::retry);
    let RetryArgs {
        attempts,
        exponential,
        base,
        factor,
        max_delay,
        jitter,
        policy,
        ..
    } = args;
    let policy = option(policy.as_ref());
    // `exponential(base, factor)` or `constant(base)`.
    let (growth, factor) = if *exponential {
        (quote!(exponential), quote!(, #factor))
    } else {
        (quote!(constant), TokenStream::new())
    };
    let jitter = Ident::new(
        match *jitter {
            "none" => "None",
            "equal" => "Equal",
            _ => "Full",
        },
        Span::call_site(),
    );
    let (base, max_delay) = (duration(base), duration(max_delay));
    quote! {
        #private::RetrySite::new(
            &#function,
            #policy,
            #private::RetryOptions {
                attempts: #attempts,
                backoff: #private::Backoff::#growth(#base #factor)
                    .max_delay(#max_delay)
                    .jitter(#private::Jitter::#jitter),
            },
        )
    }
}

/// The retrier of one call, which inner layers may tell about a rejection.
pub(super) fn retrier() -> Ident {
    private_ident("__resilience_retrier")
}

/// `inner` (an expression of the function's output, a fresh attempt each
/// time it runs) run until it succeeds, as the site `site` says.
pub(super) fn wrap(
    args: &RetryArgs,
    item: &FnItem,
    inner: TokenStream,
    site: &Ident,
) -> TokenStream {
    let private = quote!(::resilience_runtime::__private::retry);
    let output_span = output_span(&item.sig);
    let when = match &args.when {
        Some(path) => quote!(#path),
        None => quote_spanned!(output_span=> ::resilience_runtime::__private::retry::any_error),
    };
    let retrier = retrier();
    let output = private_ident("__resilience_output");
    let error = private_ident("__resilience_error");
    let next = private_ident("__resilience_next");
    let delay = private_ident("__resilience_delay");
    // Spanned at the return type: one that is not a `Result` is reported there.
    let output_here = Ident::new(
        "__resilience_output",
        Span::mixed_site().located_at(output_span),
    );
    let failure = quote_spanned!(output_span=>
        ::resilience_runtime::__private::retry::RetryOutput::failure(&#output_here)
    );
    quote! {{
        let mut #retrier = #private::Retrier::new(&#site);
        loop {
            #retrier.attempt();
            let #output = #inner;
            // Only a failure awaits anything more. The error is shown in
            // events by `Display`, else `Debug`; it is not held across the
            // wait.
            let #next = match #failure {
                ::core::option::Option::Some(#error) => {
                    use #private::{ShownByDebug as _, ShownByDisplay as _};
                    #retrier.next((#when)(#error), (&&&#private::Unshown(#error)).shown())
                }
                ::core::option::Option::None => {
                    #retrier.succeeded();
                    #private::Next::Stop
                }
            };
            if let #private::Next::Wait(#delay) = #next {
                #private::wait(#delay).await;
                continue;
            }
            break #output;
        }
    }}
}

/// `let x = Clone::clone(&x);` for every argument passed by value, so that
/// each attempt starts from the arguments as the caller gave them; references
/// are re-borrowed by each attempt as they are.
pub(super) fn fresh_arguments(item: &FnItem) -> Vec<TokenStream> {
    let mut fresh = Vec::new();
    for input in &item.sig.inputs {
        let FnArg::Typed(typed) = input else { continue };
        if let Type::Reference(_) = &*typed.ty {
            continue;
        }
        let mut bindings = Vec::new();
        crate::item::bindings(&typed.pat, &mut bindings);
        for (ident, mutable) in bindings {
            let mutability = mutable.then(|| quote!(mut));
            // Spanned at the argument: one that is not `Clone` is reported there.
            fresh.push(quote_spanned! {ident.span()=>
                #[allow(unused_variables, unused_mut, clippy::redundant_clone)]
                let #mutability #ident = ::core::clone::Clone::clone(&#ident);
            });
        }
    }
    fresh
}
