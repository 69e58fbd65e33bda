//! Misuse of an attribute is a compile error that points at the offending
//! tokens and names the fix. The expected messages are in `tests/ui/*.stderr`.

#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/*.rs");
}
