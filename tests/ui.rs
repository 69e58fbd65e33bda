//! Misuse of an attribute is a compile error that points at the offending
//! tokens and names the fix. The expected messages are in `tests/ui/*.stderr`.
//!
//! These messages do not depend on libtorch, so the suite runs in the pass
//! without features only; with `--features tch` it would build libtorch's
//! bindings a second time for nothing.
#![cfg(not(feature = "tch"))]

#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/*.rs");
}
