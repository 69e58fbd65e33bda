//! `#[safe_mps_op]`: the body becomes a closure over the function's
//! arguments, and the runtime calls it first with the arguments as given, then,
//! on a device failure, with the arguments moved to the CPU.
//!
//! `compose` places this layer among the others in written order.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::visit_mut::{self, VisitMut};
use syn::{
    Error, FnArg, Ident, Lifetime, Pat, PatIdent, PatType, ReceiverKind, ReturnType, Type,
    TypeReference,
};

use super::{fake_return_edge, option, output_span, private_ident};
use crate::args::{DeviceArgs, Errors};
use crate::item::FnItem;

/// One `#[safe_mps_op]`, checked against the function it is on.
pub(super) struct Device {
    args: DeviceArgs,
    parts: Parts,
}

impl Device {
    pub(super) fn new(args: DeviceArgs, item: &FnItem) -> syn::Result<Self> {
        let parts = Parts::of(item)?;
        Ok(Self { args, parts })
    }

    /// The entry of this layer in the function's list of layers.
    pub(super) fn entry(site: &Ident) -> TokenStream {
        quote!(::resilience_runtime::__private::LayerSite::Device(&#site))
    }

    /// The static `site` that holds the settings, for the function `function`.
    pub(super) fn site(&self, site: &Ident, function: &Ident) -> TokenStream {
        let private = quote!(::resilience_runtime::__private::device);
        let DeviceArgs {
            fallback,
            return_to_origin,
            sticky,
            retries,
            idempotent,
            snapshot,
            ref policy,
        } = self.args;
        let rerun = idempotent || !self.parts.mutable_state;
        let policy = option(policy.as_ref());
        quote! {
            static #site: #private::DeviceSite = #private::DeviceSite::new(
                &#function,
                #policy,
                #private::DeviceOptions {
                    fallback: #fallback,
                    return_to_origin: #return_to_origin,
                    sticky: #sticky,
                    retries: #retries,
                    rerun: #rerun,
                    snapshot: #snapshot,
                },
            );
        }
    }

    /// The same layer, with the argument patterns of `item` read again, after
    /// inner layers have changed them.
    pub(super) fn rebind(self, item: &FnItem) -> Self {
        let parts = Parts::of(item).unwrap_or(self.parts);
        Self { parts, ..self }
    }

    /// The statements that run `body` (the function's, or what inner layers
    /// made of it) under the settings in `site`. The function's arguments
    /// become plain names; their patterns move to the closure that holds the
    /// body.
    pub(super) fn wrap(
        self,
        item: &mut FnItem,
        body: Option<TokenStream>,
        site: &Ident,
    ) -> TokenStream {
        let mut parts = self.parts;
        if let Some(body) = body {
            parts.body = body;
        }
        wrap(item, parts, site)
    }
}

/// What the expansion needs from the function, checked.
struct Parts {
    body: TokenStream,
    output: Type,
    /// Per typed argument: the name the function binds it to, and the
    /// closure parameter (the user's pattern, with lifetimes elided).
    args: Vec<(Ident, TokenStream)>,
    /// Per typed argument: whether the body could change its tensors in
    /// place (passed by value or by `&mut`).
    changeable: Vec<bool>,
    /// Per typed argument: where its type is written.
    type_spans: Vec<Span>,
    /// The function takes `&mut` state (`&mut self`; a `&mut` argument, which
    /// no dispatch can hold, fails to compile anyway), which a rerun would
    /// change twice.
    mutable_state: bool,
}

impl Parts {
    fn of(item: &FnItem) -> syn::Result<Self> {
        let mut errors = Errors::default();
        let body = errors.take(item.body("safe_mps_op"));
        let output = match &item.sig.output {
            ReturnType::Default => syn::parse_quote!(()),
            ReturnType::Type(_, ty) => (**ty).clone(),
        };
        if let Some(span) = impl_trait_span(&output) {
            errors.push(Error::new(
                span,
                "`#[safe_mps_op]` needs a return type it can name; return a concrete type instead of `impl Trait`",
            ));
        }
        if let Some(receiver) = item.sig.receiver()
            && by_value(receiver)
        {
            errors.push(Error::new(
                receiver.self_token.span,
                "`#[safe_mps_op]` cannot run a method that takes `self` by value again: the failed attempt consumed it; take `&self`",
            ));
        }
        if let Some(error_type) = tch_error_type(&output) {
            errors.push(Error::new_spanned(
                error_type,
                "`#[safe_mps_op]` reports failures it cannot recover from as a `DeviceError`; return `Result<_, resilience_runtime::DeviceError>` (it converts from `TchError`, so `?` keeps working)",
            ));
        }
        let mut args = Vec::new();
        let mut changeable = Vec::new();
        let mut type_spans = Vec::new();
        let mut mutable_state = item
            .sig
            .receiver()
            .is_some_and(|receiver| match &receiver.kind {
                ReceiverKind::Reference(_, _, mutability) => mutability.is_some(),
                ReceiverKind::Typed(_, ty) => is_mut_reference(ty),
                _ => false,
            });
        for (index, input) in item.sig.inputs.iter().enumerate() {
            let FnArg::Typed(PatType { pat, ty, .. }) = input else {
                continue;
            };
            type_spans.push(ty.span());
            let by_mut = is_mut_reference(ty);
            mutable_state |= by_mut;
            changeable.push(by_mut || !matches!(**ty, Type::Reference(_)));
            if let Some(span) = impl_trait_span(ty) {
                errors.push(Error::new(
                    span,
                    "`#[safe_mps_op]` cannot pass an `impl Trait` argument to a CPU rerun; use a generic parameter",
                ));
            }
            let name = match &**pat {
                Pat::Ident(PatIdent {
                    by_ref: None,
                    ident,
                    subpat: None,
                    ..
                }) => ident.clone(),
                _ => format_ident!("__resilience_arg{}", index, span = Span::mixed_site()),
            };
            let mut ty = (**ty).clone();
            ElideLifetimes.visit_type_mut(&mut ty);
            args.push((name, quote!(#pat: #ty)));
        }
        errors.finish()?;
        Ok(Self {
            body: body.unwrap_or_default(),
            output,
            args,
            changeable,
            type_spans,
            mutable_state,
        })
    }
}

fn wrap(item: &mut FnItem, parts: Parts, site: &Ident) -> TokenStream {
    let Parts {
        body,
        output,
        args: arguments,
        changeable,
        type_spans,
        ..
    } = parts;
    // The function binds each argument to a plain name; patterns move to the
    // closure that holds the body.
    for (input, (name, _)) in item
        .sig
        .inputs
        .iter_mut()
        .filter(|input| matches!(input, FnArg::Typed(_)))
        .zip(&arguments)
    {
        if let FnArg::Typed(typed) = input {
            *typed.pat = Pat::Ident(PatIdent {
                attrs: Vec::new(),
                by_ref: None,
                mutability: None,
                ident: name.clone(),
                subpat: None,
            });
        }
    }

    let private = quote!(::resilience_runtime::__private::device);
    let body_fn = private_ident("__resilience_op");
    let target = private_ident("__resilience_target");
    let fake_return = fake_return_edge(Some(&output));
    let names: Vec<&Ident> = arguments.iter().map(|(name, _)| name).collect();
    let params = arguments.iter().map(|(_, param)| param);
    let holders: Vec<Ident> = (0..names.len())
        .map(|i| format_ident!("__resilience_held{}", i, span = Span::mixed_site()))
        .collect();
    // How each argument is reached: `&name` where the function owns it,
    // `name` where an async runner lends it (already a reference).
    let arg = |name: &Ident, lent: bool| {
        if lent {
            quote!(#private::Arg(#name))
        } else {
            quote!(#private::Arg(&#name))
        }
    };
    // Spanned at each argument's type, so that one that cannot be passed
    // again is reported where it is declared, and rustc's suggestion to
    // borrow lands on the type.
    let held = |lent: bool| -> Vec<TokenStream> {
        names
            .iter()
            .zip(&type_spans)
            .map(|(name, &span)| {
                let arg = arg(name, lent);
                quote_spanned!(span=> (&&&#arg).hold(#target))
            })
            .collect()
    };
    let devices = |lent: bool| -> Vec<TokenStream> {
        names
            .iter()
            .map(|name| {
                let arg = arg(name, lent);
                quote_spanned!(name.span()=> (&&#arg).locate())
            })
            .collect()
    };
    // The in-place version counters of the tensors the body could change: those
    // passed by value or by `&mut`. A body that only borrows reads none.
    let versions = |lent: bool| -> Vec<TokenStream> {
        names
            .iter()
            .zip(&changeable)
            .filter(|(_, changeable)| **changeable)
            .map(|(name, _)| {
                let arg = arg(name, lent);
                quote_spanned!(name.span()=> (&&#arg).version())
            })
            .collect()
    };
    let result = quote!(::core::result::Result);
    // Spanned at the return type: an error type that cannot carry a
    // `DeviceError` is reported there.
    let output_span = output_span(&item.sig);
    let run = quote_spanned!(output_span=> #private::run);
    let run_async = quote_spanned!(output_span=> #private::run_async);
    let (closure, invoke) = if item.sig.asyncness.is_some() {
        let closure = quote!(async |#(#params),*| { #fake_return #body });
        // The runner owns the arguments and lends them to each closure, one
        // call at a time: nothing borrowed is held across an await, so the
        // future is `Send` when the body's is. The arguments are held (moved,
        // for a rerun) before the body's future starts, which owns what it
        // passes to the body.
        let args = private_ident("__resilience_args");
        let (held, devices, versions) = (held(true), devices(true), versions(true));
        let unpack = quote! {
            #[allow(unused_variables)]
            let (#(#names,)*) = #args;
        };
        let invoke = quote_spanned! {output_span=>
            let #body_fn = &#body_fn;
            #run_async(
                &#site,
                __resilience_output,
                (#(#names,)*),
                |#args| { #unpack #private::origin([#(#devices),*]) },
                |#args| { #unpack #private::versions([#(#versions),*]) },
                move |#args, #target| {
                    #unpack
                    #[allow(clippy::redundant_closure_call)]
                    let __resilience_held = (|| -> #result<_, #private::TchError> {
                        #result::Ok((#(#held?,)*))
                    })();
                    async move {
                        let (#(mut #holders,)*) = match __resilience_held {
                            #result::Ok(held) => held,
                            #result::Err(error) => return #result::Err(error),
                        };
                        #result::Ok(#body_fn(#(#holders.param()),*).await)
                    }
                },
            )
            .await
        };
        (closure, invoke)
    } else {
        let closure = quote!(|#(#params),*| { #fake_return #body });
        let (held, devices, versions) = (held(false), devices(false), versions(false));
        let invoke = quote_spanned! {output_span=>
            let __resilience_origin = || #private::origin([#(#devices),*]);
            let __resilience_inputs = || #private::versions([#(#versions),*]);
            #run(&#site, __resilience_output, &__resilience_origin, &__resilience_inputs, |#target| {
                #(let mut #holders = #held?;)*
                #result::Ok(#body_fn(#(#holders.param()),*))
            })
        };
        (closure, invoke)
    };
    quote! {
        #[allow(unused_mut)]
        let mut #body_fn = #closure;
        {
            #[allow(unused_imports)]
            use #private::{
                LocateOther as _, LocateTensor as _, Param as _, PlainMoveBack as _,
                PlainStay as _, ReadShown as _, ReadSources as _, ResultMoveBack as _,
                ResultStay as _, ViaClone as _, ViaCopy as _, ViaTensor as _,
            };
            let __resilience_output = (&&&&#private::OutputOf::<#output>::new())
                .output()
                .reading((&&#private::ErrorsOf::<#output>::new()).reader());
            #invoke
        }
    }
}

/// `self` or `self: Self`.
fn by_value(receiver: &syn::Receiver) -> bool {
    match &receiver.kind {
        ReceiverKind::Value => true,
        ReceiverKind::Typed(_, ty) => matches!(&**ty, Type::Path(p) if p.path.is_ident("Self")),
        _ => false,
    }
}

/// The error type of `Result<_, TchError>`, as written.
fn tch_error_type(output: &Type) -> Option<&Type> {
    let Type::Path(path) = output else {
        return None;
    };
    let last = path.path.segments.last()?;
    if last.ident != "Result" {
        return None;
    }
    let syn::PathArguments::AngleBracketed(arguments) = &last.arguments else {
        return None;
    };
    match arguments.args.iter().nth(1)? {
        syn::GenericArgument::Type(error @ Type::Path(error_path))
            if error_path
                .path
                .segments
                .last()
                .is_some_and(|s| s.ident == "TchError") =>
        {
            Some(error)
        }
        _ => None,
    }
}

/// `&mut T`.
fn is_mut_reference(ty: &Type) -> bool {
    matches!(ty, Type::Reference(reference) if reference.mutability.is_some())
}

/// The span of the first `impl Trait` in `ty`.
fn impl_trait_span(ty: &Type) -> Option<Span> {
    struct Find(Option<Span>);
    impl<'ast> syn::visit::Visit<'ast> for Find {
        fn visit_type_impl_trait(&mut self, ty: &'ast syn::TypeImplTrait) {
            self.0.get_or_insert(ty.span());
        }
    }
    let mut find = Find(None);
    syn::visit::Visit::visit_type(&mut find, ty);
    find.0
}

/// Closure parameters must not name the function's lifetimes: elided, each is
/// fresh for every call, so a rerun can pass arguments that live shorter.
struct ElideLifetimes;

impl VisitMut for ElideLifetimes {
    fn visit_type_reference_mut(&mut self, reference: &mut TypeReference) {
        if reference
            .lifetime
            .as_ref()
            .is_some_and(|l| l.ident != "static")
        {
            reference.lifetime = None;
        }
        visit_mut::visit_type_reference_mut(self, reference);
    }

    fn visit_lifetime_mut(&mut self, lifetime: &mut Lifetime) {
        if lifetime.ident != "static" {
            *lifetime = Lifetime::new("'_", lifetime.span());
        }
    }
}
