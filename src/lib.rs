//! The workspace's root package: it hosts the integration tests (`tests/`) and
//! the examples (`examples/`) of the resilience toolkit, and has no code of its
//! own. Use `resilience-runtime`.
//!
//! The library target exists so that compile-error tests build with this
//! package's features, `tch` included.
