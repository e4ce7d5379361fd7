//! The pure core of dynamic-toolset: what a Service is to a detector, what a detector
//! answers, and how answers become one HolmesGPT configuration. Nothing here does I/O.

pub mod model;

pub use model::*;
