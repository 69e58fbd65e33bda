//! Composition of the async attributes. Written top-down, the first attribute
//! is the outermost: `#[retry] #[timeout_async(1)]` gives each attempt 1 s,
//! `#[timeout_async(5)] #[retry]` gives all attempts together 5 s.
//!
//! The compiler expands the top attribute first, with the others still on the
//! item. So the top attribute takes the resilience attributes below it off
//! the item, and builds all of their code itself, innermost first. This
//! module drives that; the leaves (`timeout`, `retry`, `breaker`) each build
//! one layer and know nothing of the others.

use proc_macro2::TokenStream;
use quote::quote;
use syn::{Attribute, Ident, Meta};

// The `retry` leaf is named `super::retry`: `retry` here is the entry point.
use super::{breaker, declare_function, fake_return_edge, private_ident, timeout};
use crate::args::{BreakerArgs, Errors, RetryArgs, TimeoutArgs};
use crate::item::{AsyncBody, FnItem};

pub(crate) fn timeout_async(args: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    expand(
        "timeout_async",
        TimeoutArgs::parse(args).map(Layer::Timeout),
        item,
    )
}

pub(crate) fn retry(args: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    expand("retry", RetryArgs::parse(args).map(Layer::Retry), item)
}

pub(crate) fn circuit_breaker(args: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    expand(
        "circuit_breaker",
        BreakerArgs::parse(args).map(Layer::Breaker),
        item,
    )
}

/// What a layer wraps: the body's future, or the expression of an inner layer.
enum Inner {
    Future(TokenStream),
    Expr(TokenStream),
}

impl Inner {
    /// A future of the function's output.
    fn into_future(self) -> TokenStream {
        match self {
            Inner::Future(future) => future,
            Inner::Expr(expr) => quote!(async { #expr }),
        }
    }

    /// An expression of the function's output.
    fn into_expr(self) -> TokenStream {
        match self {
            Inner::Future(future) => quote!(#future.await),
            Inner::Expr(expr) => expr,
        }
    }
}

/// One attribute's effect on the body.
enum Layer {
    Timeout(TimeoutArgs),
    Retry(RetryArgs),
    Breaker(BreakerArgs),
}

impl Layer {
    /// Checks what this layer needs of the function.
    fn check(&self, item: &FnItem) -> syn::Result<()> {
        match self {
            Layer::Timeout(_) | Layer::Breaker(_) => Ok(()),
            Layer::Retry(_) => super::retry::check(item),
        }
    }

    /// Adjusts the signature to the wrapped body.
    fn prepare(&self, item: &mut FnItem) {
        if let Layer::Retry(_) = self {
            super::retry::prepare(item);
        }
    }

    /// The static `site` that holds this layer's settings, for the function
    /// `function`.
    fn site(&self, site: &Ident, function: &Ident) -> TokenStream {
        let private = quote!(::resilience_runtime::__private);
        let (ty, value) = match self {
            Layer::Timeout(args) => (quote!(#private::TimeoutSite), timeout::site(args, function)),
            Layer::Retry(args) => (
                quote!(#private::retry::RetrySite),
                super::retry::site(args, function),
            ),
            Layer::Breaker(args) => (
                quote!(#private::breaker::BreakerSite),
                breaker::site(args, function),
            ),
        };
        quote!(static #site: #ty = #value;)
    }

    /// This layer's entry in the function's list of layers, for its `site`.
    fn entry(&self, site: &Ident) -> TokenStream {
        let kind = match self {
            Layer::Timeout(_) => quote!(Timeout),
            Layer::Retry(_) => quote!(Retry),
            Layer::Breaker(_) => quote!(Breaker),
        };
        quote!(::resilience_runtime::__private::LayerSite::#kind(&#site))
    }

    /// `inner` wrapped in this layer, whose settings are in `site`; the
    /// call's retrier is `retrier` when a `#[retry]` layer is outside it.
    fn wrap(
        &self,
        item: &FnItem,
        inner: Inner,
        site: &Ident,
        retrier: Option<&Ident>,
    ) -> TokenStream {
        match self {
            Layer::Timeout(args) => timeout::wrap(args, item, inner.into_future(), site),
            Layer::Retry(args) => super::retry::wrap(args, item, inner.into_expr(), site),
            Layer::Breaker(_) => breaker::wrap(item, inner.into_expr(), site, retrier),
        }
    }
}

/// What an outer attribute leaves in place of the attribute arguments it has
/// built into its own expansion. The attribute stays on the item, so that its
/// import is used, and expands to nothing.
const COMPOSED: &str = "__resilience_composed";

/// Whether an attribute's arguments are the [`COMPOSED`] marker.
pub(crate) fn is_composed(args: &TokenStream) -> bool {
    let mut tokens = args.clone().into_iter();
    matches!(
        (tokens.next(), tokens.next()),
        (Some(proc_macro2::TokenTree::Ident(ident)), None) if ident == COMPOSED
    )
}

/// Expands the attribute `attr` (already parsed as `own`) on an async `item`.
fn expand(attr: &str, own: syn::Result<Layer>, item: TokenStream) -> syn::Result<TokenStream> {
    // Arguments and item are checked independently so that both kinds of
    // mistakes show up in one build.
    let mut errors = Errors::default();
    let own = errors.take(own);
    let mut item = errors.take(FnItem::parse(item, attr, "an `async fn`"));
    let inner = match &mut item {
        Some(item) => take_inner(&mut item.attrs, &mut errors),
        None => Vec::new(),
    };
    let body = item
        .as_ref()
        .and_then(|item| errors.take(item.async_body(attr)));
    let layers: Vec<Layer> = own.into_iter().chain(inner).collect();
    if let Some(item) = &item {
        for layer in &layers {
            errors.take(layer.check(item));
        }
    }
    errors.finish()?;
    let (Some(mut item), Some(body)) = (item, body) else {
        unreachable!("errors were reported above");
    };
    let body = match body {
        AsyncBody::Native(stmts) => compose(&layers, &item, stmts),
        AsyncBody::AsyncTrait {
            prefix,
            mut call,
            future,
        } => {
            // `#[async_trait]` already pins the output type inside its block.
            let stmts = &future.block.stmts;
            let wrapped = compose(&layers, &item, quote!(#(#stmts)*));
            call.args[0] = syn::parse_quote!(async move { #wrapped });
            quote!(#(#prefix)* #call)
        }
    };
    for layer in &layers {
        layer.prepare(&mut item);
    }
    Ok(item.with_body(body))
}

/// The body `stmts` of `item` under every layer, outermost first.
///
/// The function is declared once, in a static registered at link time, with
/// the settings of each layer in statics of their own. The body is written
/// once. With a retry it becomes an async closure over the arguments, which
/// each attempt calls again; otherwise an async block. When the kill switch
/// has turned every layer off, the function awaits the body directly.
fn compose(layers: &[Layer], item: &FnItem, stmts: TokenStream) -> TokenStream {
    let private = quote!(::resilience_runtime::__private);
    let body = private_ident("__resilience_body");
    let sites: Vec<Ident> = (0..layers.len())
        .map(|i| private_ident(&format!("__RESILIENCE_SITE_{i}")))
        .collect();
    let entries: Vec<TokenStream> = layers
        .iter()
        .zip(&sites)
        .map(|(layer, site)| layer.entry(site))
        .collect();
    let (function, declaration) = declare_function(item, &entries);
    let statics = layers
        .iter()
        .zip(&sites)
        .map(|(layer, site)| layer.site(site, &function));

    let fake_return = fake_return_edge(item.output_type());
    let retried = layers.iter().any(|l| matches!(l, Layer::Retry(_)));
    let (define, call) = if retried {
        let fresh = super::retry::fresh_arguments(item);
        (
            quote! {
                #[allow(unused_mut)]
                let mut #body = async || { #(#fresh)* #fake_return #stmts };
            },
            quote!(#body()),
        )
    } else {
        (
            quote!(let #body = async { #fake_return #stmts };),
            quote!(#body),
        )
    };
    let retrier = super::retry::retrier();
    let layered = layers
        .iter()
        .zip(&sites)
        .enumerate()
        .rev()
        .fold(Inner::Future(call.clone()), |inner, (i, (layer, site))| {
            let retried = layers[..i].iter().any(|l| matches!(l, Layer::Retry(_)));
            Inner::Expr(layer.wrap(item, inner, site, retried.then_some(&retrier)))
        })
        .into_expr();
    quote! {
        #declaration
        #(#statics)*
        #define
        if #private::all_off(&#function) {
            return #call.await;
        }
        #layered
    }
}

/// Builds the resilience attributes below the one being expanded, and marks
/// them as built.
fn take_inner(attrs: &mut [Attribute], errors: &mut Errors) -> Vec<Layer> {
    let mut layers = Vec::new();
    for attr in attrs {
        let parse: fn(TokenStream) -> syn::Result<Layer> = match ours(attr) {
            Some("timeout_async") => |tokens| TimeoutArgs::parse(tokens).map(Layer::Timeout),
            Some("retry") => |tokens| RetryArgs::parse(tokens).map(Layer::Retry),
            Some("circuit_breaker") => |tokens| BreakerArgs::parse(tokens).map(Layer::Breaker),
            _ => continue,
        };
        let tokens = match &attr.meta {
            Meta::List(list) => list.tokens.clone(),
            _ => TokenStream::new(),
        };
        if is_composed(&tokens) {
            continue;
        }
        if let Some(layer) = errors.take(parse(tokens)) {
            layers.push(layer);
        }
        mark(attr);
    }
    layers
}

/// The name of one of this crate's composable attributes: written bare
/// (`#[retry]`, as imported) or by a path through this crate
/// (`#[resilience_runtime::retry]`). A foreign `#[other::retry]` is not ours.
fn ours(attr: &Attribute) -> Option<&'static str> {
    let path = attr.path();
    let name = path.segments.last()?.ident.to_string();
    let name = ["timeout_async", "retry", "circuit_breaker"]
        .into_iter()
        .find(|known| name == *known)?;
    match path.segments.len() {
        1 => Some(name),
        2 => {
            let krate = path.segments[0].ident.to_string();
            matches!(krate.as_str(), "resilience_runtime" | "resilience_macros").then_some(name)
        }
        _ => None,
    }
}

fn mark(attr: &mut Attribute) {
    let path = attr.path().clone();
    let marker = proc_macro2::Ident::new(COMPOSED, proc_macro2::Span::call_site());
    attr.meta = syn::parse_quote!(#path(#marker));
}

/// The item of an attribute that reported an error, with the composable
/// attributes below it marked as built, so that they add no second error
/// about the same function.
pub(crate) fn quieted(item: TokenStream) -> TokenStream {
    match syn::parse2::<syn::ItemFn>(item.clone()) {
        Ok(mut function) => {
            function
                .attrs
                .iter_mut()
                .filter(|attr| ours(attr).is_some())
                .for_each(mark);
            quote!(#function)
        }
        Err(_) => item,
    }
}

#[cfg(test)]
mod tests {
    use super::ours;

    #[test]
    fn only_this_crates_attributes_are_ours() {
        let attrs: Vec<syn::Attribute> = vec![
            syn::parse_quote!(#[retry]),
            syn::parse_quote!(#[resilience_runtime::timeout_async(1)]),
            syn::parse_quote!(#[resilience_macros::circuit_breaker]),
            syn::parse_quote!(#[other::retry(3)]),
            syn::parse_quote!(#[a::resilience_runtime::retry]),
            syn::parse_quote!(#[instrument]),
        ];
        let found: Vec<_> = attrs.iter().map(ours).collect();
        assert_eq!(
            found,
            [
                Some("retry"),
                Some("timeout_async"),
                Some("circuit_breaker"),
                None,
                None,
                None
            ]
        );
    }
}
