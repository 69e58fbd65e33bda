//! Code generation. Expansions name nothing but `::resilience_runtime::__private`
//! and `::core`, and give their own identifiers `Span::mixed_site()` so that user
//! code can neither see nor shadow them.

mod admit;
mod breaker;
mod compose;
#[cfg(feature = "tch")]
mod device;
mod monitor;
mod retry;
mod timeout;

#[cfg(feature = "tch")]
pub(crate) use compose::safe_mps_op;
pub(crate) use compose::{
    bulkhead, circuit_breaker, is_composed, monitor, quieted, rate_limit, retry, timeout_async,
};

use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::visit_mut::{self, VisitMut};
use syn::{Ident, Type, TypeInfer};

/// What a layer that may reject a call is given: its site, and the call's
/// retrier if a `#[retry]` is outside it.
pub(super) struct Gate<'a> {
    pub(super) site: &'a Ident,
    pub(super) retrier: Option<&'a Ident>,
}

/// `Some(value)` or `None`, as the expression that builds it: a site's
/// `policy = "…"` name, a breaker's name, an optional duration.
fn option(value: Option<impl quote::ToTokens>) -> TokenStream {
    match value {
        Some(value) => quote!(::core::option::Option::Some(#value)),
        None => quote!(::core::option::Option::None),
    }
}

/// The declaration of the annotated function, registered at link time:
/// statics named by the returned identifier, with `layers` (expressions of
/// `__private::LayerSite`), and for a method the statement that names its
/// type on each call.
fn declare_function(item: &crate::item::FnItem, layers: &[TokenStream]) -> (Ident, TokenStream) {
    use syn::ext::IdentExt;
    let private = quote!(::resilience_runtime::__private);
    let function = private_ident("__RESILIENCE_FUNCTION");
    let registered = private_ident("__RESILIENCE_REGISTERED");
    let named = named();
    let name = item.sig.ident.unraw().to_string();
    let method = item.is_method();
    // A method's path names its type, which only its body can see.
    let resolve = method.then(|| quote!(#function.resolve(::core::any::type_name::<Self>);));
    let tokens = quote! {
        static #function: #private::Function = #private::Function::new(
            ::core::concat!(::core::module_path!(), "::", #name),
            #name,
            #method,
            &[#(#layers),*],
        );
        #[#private::linkme::distributed_slice(#private::FUNCTIONS)]
        #[linkme(crate = #private::linkme)]
        static #registered: &#private::Function = &#function;
        #[allow(dead_code)]
        struct #named;
        impl #private::Named for #named {
            #[inline]
            fn function() -> &'static #private::Function {
                &#function
            }
        }
        #resolve
    };
    (function, tokens)
}

/// The zero-sized type that names the function [`declare_function`]
/// declares, for `__private::Call`.
fn named() -> Ident {
    private_ident("__ResilienceFunction")
}

/// `future`, the body of one call of the declared function, as a
/// `__private::Call`: the frame the watchdog sees, and injected faults.
fn call(future: TokenStream) -> TokenStream {
    let private = quote!(::resilience_runtime::__private);
    let named = named();
    let body = private_ident("__resilience_body_future");
    let pick = private_ident("__resilience_pick");
    quote! {{
        let #body = #future;
        let #pick = {
            #[allow(unused_imports)]
            use #private::{PickCannotFail as _, PickFails as _};
            (&&#private::Pick::of(&#body)).__resilience_pick()
        };
        #private::Call::<_, #named, _>::new(#body, #pick)
    }}
}

/// A `Duration` as the expression that builds it.
fn duration(duration: &std::time::Duration) -> TokenStream {
    let (secs, nanos) = (duration.as_secs(), duration.subsec_nanos());
    quote!(::core::time::Duration::new(#secs, #nanos))
}

/// Where errors about the return type go: the type, or the function's name
/// when there is none.
fn output_span(sig: &syn::Signature) -> proc_macro2::Span {
    use syn::spanned::Spanned;
    match &sig.output {
        syn::ReturnType::Type(_, ty) => ty.span(),
        syn::ReturnType::Default => sig.ident.span(),
    }
}

/// An identifier private to the expansion.
fn private_ident(name: &str) -> Ident {
    Ident::new(name, Span::mixed_site())
}

/// A "fake return edge" at the top of a wrapped body: it fixes the body's output
/// type to the declared return type (as `tracing::instrument` does), so that
/// inference and `?` conversions behave as in the unwrapped function and type
/// errors point at the user's signature.
fn fake_return_edge(output: Option<&Type>) -> TokenStream {
    let ty = match output {
        Some(ty) => {
            let mut ty = ty.clone();
            EraseImplTrait.visit_type_mut(&mut ty);
            quote!(#ty)
        }
        None => quote!(()),
    };
    let fake = private_ident("__resilience_fake_return");
    quote! {
        #[allow(
            unknown_lints,
            unreachable_code,
            clippy::diverging_sub_expression,
            clippy::empty_loop,
            clippy::let_unit_value,
            clippy::let_with_type_underscore,
            clippy::needless_return,
            clippy::unreachable
        )]
        if false {
            let #fake: #ty = loop {};
            return #fake;
        }
    }
}

/// `impl Trait` cannot be named inside a body; `_` lets inference fill it in.
struct EraseImplTrait;

impl VisitMut for EraseImplTrait {
    fn visit_type_mut(&mut self, ty: &mut Type) {
        if let Type::ImplTrait(_) = ty {
            *ty = Type::Infer(TypeInfer {
                attrs: Vec::new(),
                underscore_token: Default::default(),
            });
        } else {
            visit_mut::visit_type_mut(self, ty);
        }
    }
}
