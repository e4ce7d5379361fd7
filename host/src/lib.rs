//! dynamic-toolset: the service and CLI around the pure core (`dynamic-toolset-core`) and
//! the sandboxed detector runtime (`dynamic-toolset-runtime`). This crate holds the thin
//! I/O layers: reading manifests, probing endpoints, the commands.

pub mod api;
pub mod cli;
pub mod config;
pub mod controller;
pub mod deliver;
pub mod detectors;
pub mod detectors_cmd;
pub mod discover;
pub mod error;
pub mod import;
pub mod manifest;
pub mod metrics;
pub mod pipeline;
pub mod probe;
pub mod services;
pub mod shutdown;
