//! Host bindings generated from `wit/detector.wit` (world `full-detector`, contract
//! 1.2.0). The world is used for its types and per-interface export lookups only: the
//! `detector` export is required (every 1.x guest has it), `setup` and `identify`
//! (since 1.1.0) and `http-apis` (since 1.2.0) are looked up one by one and may be absent
//! (see `exports.rs`).

#![allow(unsafe_code, missing_docs, clippy::all)]

wasmtime::component::bindgen!({
    path: "../../wit",
    world: "full-detector",
});

pub use dynamic_toolset::detector::types as wit;
pub use exports::dynamic_toolset::detector::{detector, http_apis, identify, setup};
