//! Attribute macros of the `resilience` toolkit.
//!
//! This crate is an implementation detail: depend on `resilience-runtime`, which
//! re-exports these attributes and provides everything their expansions call.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

use proc_macro::TokenStream;
use proc_macro2::TokenStream as TokenStream2;

mod args;
mod expand;
mod item;

/// Puts a deadline on an `async fn`. See `resilience_runtime::timeout_async`.
#[proc_macro_attribute]
pub fn timeout_async(args: TokenStream, item: TokenStream) -> TokenStream {
    composable(args, item, expand::timeout_async)
}

/// Re-runs an `async fn` that returned an error. See `resilience_runtime::retry`.
#[proc_macro_attribute]
pub fn retry(args: TokenStream, item: TokenStream) -> TokenStream {
    composable(args, item, expand::retry)
}

/// Rejects calls while too many recent ones failed. See
/// `resilience_runtime::circuit_breaker`.
#[proc_macro_attribute]
pub fn circuit_breaker(args: TokenStream, item: TokenStream) -> TokenStream {
    composable(args, item, expand::circuit_breaker)
}

/// Admits at most so many calls a period. See `resilience_runtime::rate_limit`.
#[proc_macro_attribute]
pub fn rate_limit(args: TokenStream, item: TokenStream) -> TokenStream {
    composable(args, item, expand::rate_limit)
}

/// Lets at most so many calls run at once. See `resilience_runtime::bulkhead`.
#[proc_macro_attribute]
pub fn bulkhead(args: TokenStream, item: TokenStream) -> TokenStream {
    composable(args, item, expand::bulkhead)
}

/// Records the latency of a function and reports slow calls. See
/// `resilience_runtime::monitor`.
#[proc_macro_attribute]
pub fn monitor(args: TokenStream, item: TokenStream) -> TokenStream {
    composable(args, item, expand::monitor)
}

/// Runs a tensor op on the CPU when the device fails. See
/// `resilience_runtime::safe_mps_op`.
#[proc_macro_attribute]
pub fn safe_mps_op(args: TokenStream, item: TokenStream) -> TokenStream {
    #[cfg(feature = "tch")]
    let expand = expand::safe_mps_op;
    #[cfg(not(feature = "tch"))]
    let expand = |_, _| -> syn::Result<TokenStream2> {
        Err(syn::Error::new(
            proc_macro2::Span::call_site(),
            "`#[safe_mps_op]` needs the `tch` feature of resilience-runtime; enable it with `resilience-runtime = { version = \"0.1\", features = [\"tch\"] }`",
        ))
    };
    composable(args, item, expand)
}

/// An attribute that composes with the others: when an attribute above it has
/// already built its code, it leaves the item as it is.
fn composable(
    args: TokenStream,
    item: TokenStream,
    expand: fn(TokenStream2, TokenStream2) -> syn::Result<TokenStream2>,
) -> TokenStream {
    let args = TokenStream2::from(args);
    if expand::is_composed(&args) {
        return item;
    }
    edge(args, item.into(), expand)
}

/// The one conversion from `syn::Result` to tokens. On a mistake, the item is
/// emitted next to the error, as written but with the attributes below marked
/// as built, so that one mistake gives one error and the rest of the crate
/// still type-checks.
fn edge(
    args: TokenStream2,
    item: TokenStream2,
    expand: impl FnOnce(TokenStream2, TokenStream2) -> syn::Result<TokenStream2>,
) -> TokenStream {
    expand(args, item.clone())
        .unwrap_or_else(|error| {
            let mut tokens = error.into_compile_error();
            tokens.extend(expand::quieted(item));
            tokens
        })
        .into()
}
