//! Host bindings generated from `wit/detector.wit` (world `detector-world`).

#![allow(unsafe_code, missing_docs, clippy::all)]

wasmtime::component::bindgen!({
    path: "../../wit",
    world: "detector-world",
});

pub use dynamic_toolset::detector::types as wit;
