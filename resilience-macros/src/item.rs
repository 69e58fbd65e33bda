//! The function an attribute is applied to, and the checks on its shape.

use proc_macro2::{Delimiter, Group, TokenStream, TokenTree};
use syn::parse::{ParseStream, Parser};
use syn::{
    Attribute, Block, Error, Expr, ExprAsync, ExprCall, GenericArgument, Ident, Pat, PathArguments,
    ReturnType, Signature, Stmt, Token, Type, TypeParamBound, Visibility,
};

/// A function item, kept as close to the user's tokens as possible: the body is
/// not parsed unless it must be, so that syntax errors in it come from rustc.
pub(crate) struct FnItem {
    pub(crate) attrs: Vec<Attribute>,
    pub(crate) vis: Visibility,
    pub(crate) sig: Signature,
    /// `None` for a declaration without a body, such as a trait method.
    body: Option<Group>,
    semi: Option<Token![;]>,
}

/// The future-producing part of a function.
pub(crate) enum AsyncBody {
    /// The body of an `async fn`, without its braces.
    Native(TokenStream),
    /// A method already rewritten by `#[async_trait]`:
    /// `fn f(..) -> Pin<Box<dyn Future<Output = R> + ..>> { ..; Box::pin(async move { .. }) }`.
    AsyncTrait {
        /// Statements before the boxed future (async-trait emits none today).
        prefix: Vec<Stmt>,
        /// The `Box::pin` call, whose argument is `future`.
        call: ExprCall,
        future: ExprAsync,
    },
}

impl FnItem {
    /// Parses the item an attribute named `attr` is applied to; `expected`
    /// names what it applies to, for the error on anything else.
    pub(crate) fn parse(item: TokenStream, attr: &str, expected: &str) -> syn::Result<Self> {
        (|input: ParseStream<'_>| Self::parse_fn(input, attr, expected)).parse2(item)
    }

    fn parse_fn(input: ParseStream<'_>, attr: &str, expected: &str) -> syn::Result<Self> {
        let attrs = input.call(Attribute::parse_outer)?;
        let vis = input.parse()?;
        if input.fork().parse::<Signature>().is_err() {
            let what: TokenTree = input.parse()?;
            return Err(Error::new(
                what.span(),
                format!("`#[{attr}]` applies to {expected}, not to this `{what}`"),
            ));
        }
        let sig = input.parse()?;
        let (body, semi) = if input.peek(Token![;]) {
            (None, Some(input.parse()?))
        } else {
            let body: Group = input.parse()?;
            if body.delimiter() != Delimiter::Brace {
                return Err(Error::new(
                    body.span(),
                    "expected a function body in braces",
                ));
            }
            (Some(body), None)
        };
        Ok(Self {
            attrs,
            vis,
            sig,
            body,
            semi,
        })
    }

    /// The async body, or an error naming what to change for `attr` to apply.
    pub(crate) fn async_body(&self, attr: &str) -> syn::Result<AsyncBody> {
        if let Some(constness) = &self.sig.constness {
            return Err(Error::new(
                constness.span,
                format!(
                    "`#[{attr}]` applies to an `async fn`, not to a `const fn`; remove `const` and make it `async`"
                ),
            ));
        }
        let body = self.body(attr)?;
        if self.sig.asyncness.is_some() {
            return Ok(AsyncBody::Native(body));
        }
        self.body
            .as_ref()
            .and_then(async_trait_shape)
            .ok_or_else(|| {
                let or = if attr == "timeout_async" {
                    ", or wrap the future with `resilience_runtime::timeout(limit, future)`"
                } else {
                    ""
                };
                Error::new(
                    self.sig.fn_token.span,
                    format!("`#[{attr}]` needs an `async fn`; add `async`{or}"),
                )
            })
    }

    /// The body of a sync or async function, or an error naming what to change
    /// for `attr` to apply.
    pub(crate) fn body(&self, attr: &str) -> syn::Result<TokenStream> {
        if let Some(constness) = &self.sig.constness {
            return Err(Error::new(
                constness.span,
                format!("`#[{attr}]` cannot wrap a `const fn`; remove `const`"),
            ));
        }
        match &self.body {
            Some(body) => Ok(body.stream()),
            None => Err(Error::new_spanned(
                {
                    let (sig, semi) = (&self.sig, &self.semi);
                    quote::quote!(#sig #semi)
                },
                format!(
                    "`#[{attr}]` needs a function body; put it on the method in the `impl` block, not on the declaration"
                ),
            )),
        }
    }

    /// The names the function's arguments bind (not `self`).
    pub(crate) fn argument_names(&self) -> Vec<syn::Ident> {
        let mut names = Vec::new();
        for input in &self.sig.inputs {
            if let syn::FnArg::Typed(typed) = input {
                bindings(&typed.pat, &mut names);
            }
        }
        names.into_iter().map(|(name, _)| name).collect()
    }

    /// Whether the function is a method: it has a receiver, or names `Self`
    /// in its signature, so its body may name `Self`.
    pub(crate) fn is_method(&self) -> bool {
        fn names_self(tokens: TokenStream) -> bool {
            tokens.into_iter().any(|token| match token {
                proc_macro2::TokenTree::Ident(ident) => ident == "Self",
                proc_macro2::TokenTree::Group(group) => names_self(group.stream()),
                _ => false,
            })
        }
        let sig = &self.sig;
        sig.receiver().is_some() || names_self(quote::quote!(#sig))
    }

    /// The type a caller finally receives: the declared return type, or the
    /// `Output` of the boxed future of an `#[async_trait]` method.
    pub(crate) fn output_type(&self) -> Option<&Type> {
        let ReturnType::Type(_, ty) = &self.sig.output else {
            return None;
        };
        if self.sig.asyncness.is_some() {
            return Some(ty);
        }
        boxed_future_output(ty).or(Some(ty))
    }

    /// The item with a new body.
    pub(crate) fn with_body(&self, body: TokenStream) -> TokenStream {
        let Self {
            attrs, vis, sig, ..
        } = self;
        quote::quote!(#(#attrs)* #vis #sig { #body })
    }
}

/// Recognises the body `#[async_trait]` produces, as `tracing::instrument` does.
fn async_trait_shape(body: &Group) -> Option<AsyncBody> {
    let mut stmts = Block::parse_within.parse2(body.stream()).ok()?;
    let Some(Stmt::Expr(Expr::Call(call), None)) = stmts.pop() else {
        return None;
    };
    let Expr::Path(func) = &*call.func else {
        return None;
    };
    let mut segments = func.path.segments.iter().rev();
    let is_box_pin = segments.next().is_some_and(|s| s.ident == "pin")
        && segments.next().is_some_and(|s| s.ident == "Box");
    if !is_box_pin || call.args.len() != 1 {
        return None;
    }
    let Some(Expr::Async(future)) = call.args.first() else {
        return None;
    };
    future.capture?;
    Some(AsyncBody::AsyncTrait {
        prefix: stmts,
        future: future.clone(),
        call,
    })
}

/// `R` in `Pin<Box<dyn Future<Output = R> + ..>>`.
fn boxed_future_output(ty: &Type) -> Option<&Type> {
    let Type::Path(pin) = ty else { return None };
    let boxed = single_type_argument(&pin.path.segments.last()?.arguments)?;
    let Type::Path(boxed) = boxed else {
        return None;
    };
    let Type::TraitObject(object) = single_type_argument(&boxed.path.segments.last()?.arguments)?
    else {
        return None;
    };
    object.bounds.iter().find_map(|bound| {
        let TypeParamBound::Trait(bound) = bound else {
            return None;
        };
        let PathArguments::AngleBracketed(args) = &bound.path.segments.last()?.arguments else {
            return None;
        };
        args.args.iter().find_map(|arg| match arg {
            GenericArgument::AssocType(assoc) if assoc.ident == "Output" => Some(&assoc.ty),
            _ => None,
        })
    })
}

fn single_type_argument(arguments: &PathArguments) -> Option<&Type> {
    let PathArguments::AngleBracketed(args) = arguments else {
        return None;
    };
    match args.args.first()? {
        GenericArgument::Type(ty) => Some(ty),
        _ => None,
    }
}

/// A body that `#[tracing::instrument]` (written above) has rewritten, split
/// at the part that runs inside its span: the layers go there, so that their
/// events belong to the call's span.
///
/// In an `async fn` that part is the async block it instruments
/// (`let __tracing_instrument_future = async move { … };`); in a sync one,
/// the statements after the one that enters the span, in the block it
/// writes them in. Empty blocks before (its lint warnings) are kept as they
/// are.
pub(crate) struct InSpan {
    stmts: Vec<Stmt>,
    part: Part,
}

enum Part {
    /// The block of the future declared by `stmts[.0]`.
    Future(usize),
    /// The statements after the first three in the block `stmts[.0]`.
    After(usize),
}

fn binds(stmt: Option<&Stmt>, name: &str) -> bool {
    matches!(stmt, Some(Stmt::Local(syn::Local { pat: syn::Pat::Ident(p), .. })) if p.ident == name)
}

fn is_empty_block(stmt: &Stmt) -> bool {
    matches!(stmt, Stmt::Expr(Expr::Block(b), _) if b.block.stmts.is_empty())
}

impl InSpan {
    /// The body split at its span, and the part inside; `None` for a body
    /// `#[tracing::instrument]` has not rewritten.
    pub(crate) fn split(body: &TokenStream) -> Option<(Self, TokenStream)> {
        let mut stmts = Block::parse_within.parse2(body.clone()).ok()?;
        let start = stmts.iter().take_while(|s| is_empty_block(s)).count();
        if binds(stmts.get(start), "__tracing_attr_span")
            && binds(stmts.get(start + 1), "__tracing_instrument_future")
        {
            let Some(Stmt::Local(future)) = stmts.get_mut(start + 1) else {
                return None;
            };
            let Expr::Async(block) = &mut *future.init.as_mut()?.expr else {
                return None;
            };
            let inner = std::mem::take(&mut block.block.stmts);
            let inner = quote::quote!(#(#inner)*);
            let part = Part::Future(start + 1);
            return Some((Self { stmts, part }, inner));
        }
        // Sync: `{ let __tracing_attr_span; let __tracing_attr_guard; if … { … } body }`.
        let Some(Stmt::Expr(Expr::Block(block), None)) = stmts.get_mut(start) else {
            return None;
        };
        let inner = &mut block.block.stmts;
        if !binds(inner.first(), "__tracing_attr_span")
            || !binds(inner.get(1), "__tracing_attr_guard")
            || inner.len() < 4
        {
            return None;
        }
        let rest = inner.split_off(3);
        let part = Part::After(start);
        Some((Self { stmts, part }, quote::quote!(#(#rest)*)))
    }

    /// The body, with `wrapped` in place of the part inside the span.
    pub(crate) fn with(mut self, wrapped: TokenStream) -> TokenStream {
        match self.part {
            Part::Future(index) => {
                if let Some(Stmt::Local(future)) = self.stmts.get_mut(index)
                    && let Some(init) = future.init.as_mut()
                    && let Expr::Async(block) = &mut *init.expr
                {
                    block.block = syn::parse_quote!({ #wrapped });
                }
            }
            Part::After(index) => {
                if let Some(Stmt::Expr(Expr::Block(block), None)) = self.stmts.get_mut(index) {
                    let kept = &block.block.stmts;
                    block.block = syn::parse_quote!({ #(#kept)* #wrapped });
                }
            }
        }
        let stmts = &self.stmts;
        quote::quote!(#(#stmts)*)
    }
}

/// The names a pattern binds, each with whether it is `mut`.
pub(crate) fn bindings(pat: &Pat, out: &mut Vec<(Ident, bool)>) {
    match pat {
        Pat::Ident(p) => {
            out.push((p.ident.clone(), p.mutability.is_some()));
            if let Some((_, sub)) = &p.subpat {
                bindings(sub, out);
            }
        }
        Pat::Tuple(t) => t.elems.iter().for_each(|p| bindings(p, out)),
        Pat::TupleStruct(t) => t.elems.iter().for_each(|p| bindings(p, out)),
        Pat::Struct(s) => s.fields.iter().for_each(|f| bindings(&f.pat, out)),
        Pat::Slice(s) => s.elems.iter().for_each(|p| bindings(p, out)),
        Pat::Reference(r) => bindings(&r.pat, out),
        Pat::Type(t) => bindings(&t.pat, out),
        Pat::Paren(p) => bindings(&p.pat, out),
        _ => {}
    }
}
