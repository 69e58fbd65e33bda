//! Composition of the attributes. Written top-down, the first attribute
//! is the outermost: `#[retry] #[timeout_async(1)]` gives each attempt 1 s,
//! `#[timeout_async(5)] #[retry]` gives all attempts together 5 s.
//!
//! The compiler expands the top attribute first, with the others still on the
//! item. So the top attribute takes the resilience attributes below it off
//! the item, and builds all of their code itself, innermost first. This
//! module drives that; the leaves (`timeout`, `retry`, `breaker`, `admit`, `device`) each build
//! one layer and know nothing of the others.

use proc_macro2::TokenStream;
use quote::quote;
use syn::{Attribute, Ident, Meta};

// The `retry` and `monitor` leaves are named `super::…`: here those names are
// the entry points.
#[cfg(feature = "tch")]
use super::device::Device;
use super::{
    Gate, admit, breaker, call, declare_function, fake_return_edge, private_ident, timeout,
};
#[cfg(feature = "tch")]
use crate::args::DeviceArgs;
use crate::args::{
    BreakerArgs, BulkheadArgs, Errors, MonitorArgs, RateLimitArgs, RetryArgs, TimeoutArgs,
};
use crate::item::{AsyncBody, FnItem, InSpan};

pub(crate) fn timeout_async(args: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    let own = TimeoutArgs::parse(args).map(|args| Attr::Layer(Layer::Timeout(args)));
    expand("timeout_async", own, item)
}

pub(crate) fn retry(args: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    let own = RetryArgs::parse(args).map(|args| Attr::Layer(Layer::Retry(args)));
    expand("retry", own, item)
}

pub(crate) fn circuit_breaker(args: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    let own = BreakerArgs::parse(args).map(|args| Attr::Layer(Layer::Breaker(args)));
    expand("circuit_breaker", own, item)
}

pub(crate) fn rate_limit(args: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    let own = RateLimitArgs::parse(args).map(|args| Attr::Layer(Layer::RateLimit(args)));
    expand("rate_limit", own, item)
}

pub(crate) fn bulkhead(args: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    let own = BulkheadArgs::parse(args).map(|args| Attr::Layer(Layer::Bulkhead(args)));
    expand("bulkhead", own, item)
}

pub(crate) fn monitor(args: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    let own = MonitorArgs::parse(args).map(|args| Attr::Layer(Layer::Monitor(args)));
    expand("monitor", own, item)
}

#[cfg(feature = "tch")]
pub(crate) fn safe_mps_op(args: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    expand(
        "safe_mps_op",
        DeviceArgs::parse(args).map(Attr::Device),
        item,
    )
}

/// One of this crate's attributes on a function. Parsed once per attribute
/// at compile time: the size of its variants does not matter.
#[cfg_attr(feature = "tch", allow(clippy::large_enum_variant))]
enum Attr {
    Layer(Layer),
    #[cfg(feature = "tch")]
    Device(DeviceArgs),
}

/// What a layer wraps: the body's future (the body's value, in a sync
/// function), or the expression of an inner layer.
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
    RateLimit(RateLimitArgs),
    Bulkhead(BulkheadArgs),
    Monitor(MonitorArgs),
}

impl Layer {
    /// The attribute's name.
    fn name(&self) -> &'static str {
        match self {
            Layer::Timeout(_) => "timeout_async",
            Layer::Retry(_) => "retry",
            Layer::Breaker(_) => "circuit_breaker",
            Layer::RateLimit(_) => "rate_limit",
            Layer::Bulkhead(_) => "bulkhead",
            Layer::Monitor(_) => "monitor",
        }
    }

    /// Whether it needs an `async fn`: all but `#[monitor]` do.
    fn needs_async(&self) -> bool {
        !matches!(self, Layer::Monitor(_))
    }

    /// Checks what this layer needs of the function.
    fn check(&self, item: &FnItem) -> syn::Result<()> {
        match self {
            Layer::Timeout(_) | Layer::Breaker(_) | Layer::Bulkhead(_) | Layer::Monitor(_) => {
                Ok(())
            }
            Layer::Retry(_) => super::retry::check(item),
            Layer::RateLimit(args) => admit::check_key(args, item),
        }
    }

    /// Adjusts the signature to the wrapped body.
    fn prepare(&self, item: &mut FnItem) {
        if let Layer::Retry(_) = self {
            super::retry::prepare(item);
        }
    }

    /// What this layer reads of the arguments before the body takes them.
    fn prologue(&self, site: &Ident) -> Option<TokenStream> {
        match self {
            Layer::RateLimit(args) => admit::read_key(args, site),
            _ => None,
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
            Layer::RateLimit(args) => (
                quote!(#private::admit::RateLimitSite),
                admit::rate_limit_site(args, function),
            ),
            Layer::Bulkhead(args) => (
                quote!(#private::admit::BulkheadSite),
                admit::bulkhead_site(args, function),
            ),
            Layer::Monitor(args) => (
                quote!(#private::MonitorSite),
                super::monitor::site(args, function),
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
            Layer::RateLimit(_) => quote!(RateLimit),
            Layer::Bulkhead(_) => quote!(Bulkhead),
            Layer::Monitor(_) => quote!(Monitor),
        };
        quote!(::resilience_runtime::__private::LayerSite::#kind(&#site))
    }

    /// Whether it may reject a call without running it.
    fn rejects(&self) -> bool {
        matches!(
            self,
            Layer::Breaker(_) | Layer::RateLimit(_) | Layer::Bulkhead(_)
        )
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
        let gate = Gate { site, retrier };
        match self {
            Layer::Timeout(args) => timeout::wrap(args, item, inner.into_future(), site),
            Layer::Retry(args) => super::retry::wrap(args, item, inner.into_expr(), site),
            Layer::Breaker(_) => breaker::wrap(item, inner.into_expr(), &gate),
            Layer::RateLimit(args) => admit::rate_limit(args, item, inner.into_expr(), &gate),
            Layer::Bulkhead(_) => admit::bulkhead(item, inner.into_expr(), &gate),
            Layer::Monitor(_) => super::monitor::wrap(inner.into_expr(), site),
        }
    }
}

/// The flag that says whether a call ran its body, for a function with a
/// layer that may reject calls (see [`measured`]).
fn ran_flag() -> Ident {
    private_ident("__resilience_ran")
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

/// The attributes of one function in written order: the layers above the
/// device layer (or all of them, when there is none), the device layer, and
/// the layers below it.
#[derive(Default)]
struct Plan {
    outer: Vec<Layer>,
    #[cfg(feature = "tch")]
    device: Option<DeviceArgs>,
    inner: Vec<Layer>,
    /// Whether `#[safe_mps_op]` is written, parsed or not.
    has_device: bool,
}

impl Plan {
    fn push(&mut self, attr: Attr) {
        match attr {
            Attr::Layer(layer) if self.has_device => self.inner.push(layer),
            Attr::Layer(layer) => self.outer.push(layer),
            #[cfg(feature = "tch")]
            Attr::Device(args) => {
                self.has_device = true;
                self.device = Some(args);
            }
        }
    }

    fn layers(&self) -> impl Iterator<Item = &Layer> {
        self.outer.iter().chain(&self.inner)
    }
}

/// Expands the attribute `attr` (already parsed as `own`) on `item`, with
/// the attributes of this crate below it.
fn expand(attr: &str, own: syn::Result<Attr>, item: TokenStream) -> syn::Result<TokenStream> {
    // Arguments and item are checked independently so that both kinds of
    // mistakes show up in one build.
    let mut errors = Errors::default();
    let mut plan = Plan {
        has_device: attr == "safe_mps_op",
        ..Plan::default()
    };
    if let Some(own) = errors.take(own) {
        plan.push(own);
    }
    let expected = if plan.has_device || attr == "monitor" {
        "a function"
    } else {
        "an `async fn`"
    };
    let mut item = errors.take(FnItem::parse(item, attr, expected));
    if let Some(item) = &mut item {
        for below in take_below(&mut item.attrs, plan.has_device, &mut errors) {
            plan.push(below);
        }
    }
    // Timeouts, retries and breakers need an async body; the device and
    // monitor layers take any.
    let async_attr = if matches!(
        attr,
        "timeout_async" | "retry" | "circuit_breaker" | "rate_limit" | "bulkhead"
    ) {
        Some(attr)
    } else {
        plan.layers().find(|l| l.needs_async()).map(Layer::name)
    };
    let body = item.as_ref().and_then(|item| {
        errors.take(match async_attr {
            Some(async_attr) => item.async_body(async_attr),
            None => item
                .async_body(attr)
                .or_else(|_| item.body(attr).map(AsyncBody::Native)),
        })
    });
    let sync = item
        .as_ref()
        .is_some_and(|item| item.sig.asyncness.is_none())
        && matches!(body, Some(AsyncBody::Native(_)));
    if let Some(item) = &item {
        for layer in plan.layers() {
            errors.take(layer.check(item));
        }
    }
    #[cfg(feature = "tch")]
    let device = match (&item, plan.device.take()) {
        (Some(item), Some(args)) => errors.take(Device::new(args, item)),
        _ => None,
    };
    #[cfg(feature = "tch")]
    if let (Some(_), Some(AsyncBody::AsyncTrait { .. })) = (&device, &body) {
        errors.push(syn::Error::new(
            proc_macro2::Span::call_site(),
            "`#[safe_mps_op]` composes with the other attributes on a native `async fn`, not on one `#[async_trait]` has rewritten",
        ));
    }
    errors.finish()?;
    let (Some(mut item), Some(body)) = (item, body) else {
        unreachable!("errors were reported above");
    };
    #[cfg(feature = "tch")]
    if let Some(device) = device {
        let AsyncBody::Native(stmts) = body else {
            unreachable!("reported above");
        };
        return Ok(match InSpan::split(&stmts) {
            Some((span, inner)) => {
                let body = with_device(plan, device, &mut item, inner, sync);
                item.with_body(span.with(body))
            }
            None => {
                let body = with_device(plan, device, &mut item, stmts, sync);
                item.with_body(body)
            }
        });
    }
    let layers = plan.outer;
    // Inside the span of a `#[tracing::instrument]` written above, if any.
    let compose = |stmts: TokenStream, sync| match InSpan::split(&stmts) {
        Some((span, inner)) => span.with(compose(&layers, &item, inner, sync)),
        None => compose(&layers, &item, stmts, sync),
    };
    let body = match body {
        AsyncBody::Native(stmts) => compose(stmts, sync),
        AsyncBody::AsyncTrait {
            prefix,
            mut call,
            future,
        } => {
            // `#[async_trait]` already pins the output type inside its block.
            let stmts = &future.block.stmts;
            let wrapped = compose(quote!(#(#stmts)*), false);
            call.args[0] = syn::parse_quote!(async move { #wrapped });
            quote!(#(#prefix)* #call)
        }
    };
    for layer in &layers {
        layer.prepare(&mut item);
    }
    Ok(item.with_body(body))
}

/// The body `stmts` of `item` under every layer, outermost first, with the
/// function declared; `sync` for a function that is not async.
fn compose(layers: &[Layer], item: &FnItem, stmts: TokenStream, sync: bool) -> TokenStream {
    let sites = site_idents(0, layers.len());
    let entries = layers
        .iter()
        .zip(&sites)
        .map(|(layer, site)| layer.entry(site));
    let (function, declaration) = declare_function(item, &entries.collect::<Vec<_>>());
    let statics = statics(layers, &sites, &function);
    let ran = layers.iter().any(Layer::rejects).then(ran_flag);
    let body = layered(
        layers,
        &sites,
        item,
        stmts,
        &function,
        sync,
        true,
        ran.as_ref().map(|flag| (flag, true)),
    );
    quote! {
        #declaration
        #statics
        #body
    }
}

/// The body of a function with a device layer among the others: the layers
/// written above it wrap the device's runner, and the layers written below it
/// run inside each device attempt. The function's arguments become plain
/// names in `item` (see `Device::wrap`).
#[cfg(feature = "tch")]
fn with_device(
    plan: Plan,
    device: Device,
    item: &mut FnItem,
    stmts: TokenStream,
    sync: bool,
) -> TokenStream {
    let Plan { outer, inner, .. } = plan;
    let outer_sites = site_idents(0, outer.len());
    let inner_sites = site_idents(outer.len(), inner.len());
    let device_site = private_ident("__RESILIENCE_DEVICE_SITE");
    let entries: Vec<TokenStream> = outer
        .iter()
        .zip(&outer_sites)
        .map(|(layer, site)| layer.entry(site))
        .chain([Device::entry(&device_site)])
        .chain(
            inner
                .iter()
                .zip(&inner_sites)
                .map(|(layer, site)| layer.entry(site)),
        )
        .collect();
    let (function, declaration) = declare_function(item, &entries);
    let statics = [
        statics(&outer, &outer_sites, &function),
        device.site(&device_site, &function),
        statics(&inner, &inner_sites, &function),
    ];
    // Inner layers see the arguments as the user wrote them; the device layer
    // binds them in its closure, whose parameters lose a `mut` the inner
    // layers' own bindings now carry.
    // The body starts below the innermost layer that may reject a call: in
    // each device attempt when there is one below the device layer.
    let inner_rejects = inner.iter().any(Layer::rejects);
    let ran = (inner_rejects || outer.iter().any(Layer::rejects)).then(ran_flag);
    let stmts = layered(
        &inner,
        &inner_sites,
        item,
        stmts,
        &function,
        sync,
        false,
        ran.as_ref().map(|flag| (flag, inner_rejects)),
    );
    for layer in &inner {
        layer.prepare(item);
    }
    let stmts = device.rebind(item).wrap(item, Some(stmts), &device_site);
    let body = if outer.is_empty() {
        // No `all_off` return to skip the record: the start asks.
        measured(&function, stmts, true, ran.as_ref())
    } else {
        layered(
            &outer,
            &outer_sites,
            item,
            stmts,
            &function,
            sync,
            true,
            ran.as_ref().map(|flag| (flag, !inner_rejects)),
        )
    };
    for layer in &outer {
        layer.prepare(item);
    }
    quote! {
        #declaration
        #(#statics)*
        #body
    }
}

/// `body` (statements that end in the function's output), recorded as one
/// call of `function` in the monitor and the metrics when it completes: a
/// block expression. With `ran`, the flag a call sets when its body starts
/// (below every layer that may reject it, see [`layered`]), a call rejected
/// without running its body is not recorded: it says nothing of the
/// function's latency (which adaptive timeouts learn from). A call that ran
/// its body in any attempt is.
fn measured(
    function: &Ident,
    body: TokenStream,
    unless_off: bool,
    ran: Option<&Ident>,
) -> TokenStream {
    let private = quote!(::resilience_runtime::__private);
    let start = private_ident("__resilience_start");
    let output = private_ident("__resilience_output");
    let now = if unless_off {
        quote!(#private::Start::unless_off(&#function))
    } else {
        quote!(#private::Start::now())
    };
    // An atomic, not a `bool`: a device layer's runner calls the attempts
    // that set it through a shared reference, and the future stays `Send`.
    let (declare, check) = match ran {
        Some(ran) => (
            quote!(let #ran = ::core::sync::atomic::AtomicBool::new(false);),
            quote!(#ran.load(::core::sync::atomic::Ordering::Relaxed)),
        ),
        None => (TokenStream::new(), quote!(true)),
    };
    quote! {{
        #declare
        let #start = #now;
        let #output = { #body };
        if #check {
            #[allow(unused_imports)]
            use #private::{PlainOutcome as _, ResultOutcome as _};
            #function.finish(#start, (&&#private::Outcome(&#output)).failed());
        }
        #output
    }}
}

/// The identifiers of `count` layer sites, numbered from `first`.
fn site_idents(first: usize, count: usize) -> Vec<Ident> {
    (first..first + count)
        .map(|i| private_ident(&format!("__RESILIENCE_SITE_{i}")))
        .collect()
}

/// The statics that hold the settings of `layers`, of the function `function`.
fn statics(layers: &[Layer], sites: &[Ident], function: &Ident) -> TokenStream {
    layers
        .iter()
        .zip(sites)
        .map(|(layer, site)| layer.site(site, function))
        .collect()
}

/// The body `stmts` of `item` under `layers`, outermost first, whose
/// settings are in `sites`; `stmts` as they are when there are none.
///
/// The body is written once. With a retry it becomes an async closure over
/// the arguments, which each attempt calls again; otherwise an async block,
/// or in a `sync` function a closure. When the kill switch has turned every
/// layer of the function off, the function runs the body directly; when not,
/// and `measure` says so, the call is recorded (see [`measured`]). With
/// `ran`, the flag of the call's record and whether these layers' body sets
/// it when it starts.
#[allow(clippy::too_many_arguments)]
fn layered(
    layers: &[Layer],
    sites: &[Ident],
    item: &FnItem,
    stmts: TokenStream,
    function: &Ident,
    sync: bool,
    measure: bool,
    ran: Option<(&Ident, bool)>,
) -> TokenStream {
    if layers.is_empty() {
        return stmts;
    }
    let private = quote!(::resilience_runtime::__private);
    let body = private_ident("__resilience_body");
    let fake_return = fake_return_edge(item.output_type());
    let retried = layers.iter().any(|l| matches!(l, Layer::Retry(_)));
    let (define, call) = if sync {
        (
            quote!(let #body = || { #fake_return #stmts };),
            quote!(#body()),
        )
    } else if retried {
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
    let (innermost, direct) = if sync {
        (Inner::Expr(call.clone()), call)
    } else {
        let body = self::call(call.clone());
        let body = match ran {
            // Built only once every layer above has let the call through.
            Some((flag, true)) => quote! {{
                #flag.store(true, ::core::sync::atomic::Ordering::Relaxed);
                #body
            }},
            _ => body,
        };
        (Inner::Future(body), quote!(#call.await))
    };
    let layered = layers
        .iter()
        .zip(sites)
        .enumerate()
        .rev()
        .fold(innermost, |inner, (i, (layer, site))| {
            let retried = layers[..i].iter().any(|l| matches!(l, Layer::Retry(_)));
            Inner::Expr(layer.wrap(item, inner, site, retried.then_some(&retrier)))
        })
        .into_expr();
    let layered = if measure {
        measured(function, layered, false, ran.map(|(flag, _)| flag))
    } else {
        layered
    };
    let prologue = layers
        .iter()
        .zip(sites)
        .filter_map(|(layer, site)| layer.prologue(site));
    quote! {
        #(#prologue)*
        #define
        if #private::all_off(&#function) {
            return #direct;
        }
        #layered
    }
}

/// Builds the attributes of this crate below the one being expanded, and
/// marks them as built. `device` says whether a `#[safe_mps_op]` is already
/// written above.
fn take_below(attrs: &mut [Attribute], mut device: bool, errors: &mut Errors) -> Vec<Attr> {
    let mut below = Vec::new();
    for attr in attrs {
        let parse: fn(TokenStream) -> syn::Result<Attr> = match ours(attr) {
            Some("timeout_async") => {
                |tokens| TimeoutArgs::parse(tokens).map(|args| Attr::Layer(Layer::Timeout(args)))
            }
            Some("retry") => {
                |tokens| RetryArgs::parse(tokens).map(|args| Attr::Layer(Layer::Retry(args)))
            }
            Some("circuit_breaker") => {
                |tokens| BreakerArgs::parse(tokens).map(|args| Attr::Layer(Layer::Breaker(args)))
            }
            Some("rate_limit") => |tokens| {
                RateLimitArgs::parse(tokens).map(|args| Attr::Layer(Layer::RateLimit(args)))
            },
            Some("bulkhead") => {
                |tokens| BulkheadArgs::parse(tokens).map(|args| Attr::Layer(Layer::Bulkhead(args)))
            }
            Some("monitor") => {
                |tokens| MonitorArgs::parse(tokens).map(|args| Attr::Layer(Layer::Monitor(args)))
            }
            #[cfg(feature = "tch")]
            Some("safe_mps_op") => |tokens| DeviceArgs::parse(tokens).map(Attr::Device),
            _ => continue,
        };
        let tokens = match &attr.meta {
            Meta::List(list) => list.tokens.clone(),
            _ => TokenStream::new(),
        };
        if is_composed(&tokens) {
            continue;
        }
        if ours(attr) == Some("safe_mps_op") {
            if device {
                errors.push(syn::Error::new_spanned(
                    &*attr,
                    "`#[safe_mps_op]` is written twice on this function; keep one",
                ));
                mark(attr);
                continue;
            }
            device = true;
        }
        if let Some(attr) = errors.take(parse(tokens)) {
            below.push(attr);
        }
        mark(attr);
    }
    below
}

/// The name of one of this crate's composable attributes: written bare
/// (`#[retry]`, as imported) or by a path through this crate
/// (`#[resilience_runtime::retry]`). A foreign `#[other::retry]` is not ours.
fn ours(attr: &Attribute) -> Option<&'static str> {
    let path = attr.path();
    let name = path.segments.last()?.ident.to_string();
    let name = [
        "timeout_async",
        "retry",
        "circuit_breaker",
        "rate_limit",
        "bulkhead",
        "monitor",
        "safe_mps_op",
    ]
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
