//! Attribute macros of the `resilience` toolkit.
//!
//! This crate is an implementation detail: depend on `resilience-runtime`, which
//! re-exports these attributes and provides everything their expansions call.

#![warn(missing_docs)]

use proc_macro::TokenStream;

mod args;
mod expand;
mod item;

/// Puts a deadline on an `async fn`. See `resilience_runtime::timeout_async`.
#[proc_macro_attribute]
pub fn timeout_async(args: TokenStream, item: TokenStream) -> TokenStream {
    let (args, item) = (
        proc_macro2::TokenStream::from(args),
        proc_macro2::TokenStream::from(item),
    );
    if expand::is_composed(&args) {
        return item.into(); // already built by the attribute above it
    }
    expand::timeout_async(args, item.clone())
        .unwrap_or_else(|error| unchanged_with(error, item))
        .into()
}

/// Re-runs an `async fn` that returned an error. See `resilience_runtime::retry`.
#[proc_macro_attribute]
pub fn retry(args: TokenStream, item: TokenStream) -> TokenStream {
    let (args, item) = (
        proc_macro2::TokenStream::from(args),
        proc_macro2::TokenStream::from(item),
    );
    if expand::is_composed(&args) {
        return item.into(); // already built by the attribute above it
    }
    expand::retry(args, item.clone())
        .unwrap_or_else(|error| unchanged_with(error, item))
        .into()
}

/// Rejects calls while too many recent ones failed. See
/// `resilience_runtime::circuit_breaker`.
#[proc_macro_attribute]
pub fn circuit_breaker(args: TokenStream, item: TokenStream) -> TokenStream {
    let (args, item) = (
        proc_macro2::TokenStream::from(args),
        proc_macro2::TokenStream::from(item),
    );
    if expand::is_composed(&args) {
        return item.into(); // already built by the attribute above it
    }
    expand::circuit_breaker(args, item.clone())
        .unwrap_or_else(|error| unchanged_with(error, item))
        .into()
}

/// Runs a tensor op on the CPU when the device fails. See
/// `resilience_runtime::safe_mps_op`.
#[proc_macro_attribute]
pub fn safe_mps_op(args: TokenStream, item: TokenStream) -> TokenStream {
    let item = proc_macro2::TokenStream::from(item);
    #[cfg(feature = "tch")]
    let expanded = expand::safe_mps_op(args.into(), item.clone());
    #[cfg(not(feature = "tch"))]
    let expanded: syn::Result<proc_macro2::TokenStream> = {
        let _ = args;
        Err(syn::Error::new(
            proc_macro2::Span::call_site(),
            "`#[safe_mps_op]` needs the `tch` feature of resilience-runtime; enable it with `resilience-runtime = { version = \"0.1\", features = [\"tch\"] }`",
        ))
    };
    expanded
        .unwrap_or_else(|error| unchanged_with(error, item))
        .into()
}

/// On a mistake, the item is emitted unchanged next to the error, so that one
/// mistake gives one error and the rest of the crate still type-checks.
fn unchanged_with(error: syn::Error, item: proc_macro2::TokenStream) -> proc_macro2::TokenStream {
    let mut tokens = error.into_compile_error();
    tokens.extend(item);
    tokens
}
