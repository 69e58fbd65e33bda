//! Misuse of `#[safe_mps_op]` is a compile error that points at the offending
//! tokens and names the fix. The expected messages are in
//! `tests/ui-device/*.stderr`.
#![cfg(feature = "tch")]

#[test]
fn ui_device() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui-device/*.rs");
}
