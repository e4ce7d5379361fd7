//! The pure core of dynamic-toolset: what a Service is to a detector, what a detector
//! answers, and how answers become one HolmesGPT configuration. Nothing here does I/O,
//! reads a clock or depends on input order.
//!
//! Pipeline the CLI and the controller run:
//! 0. [`gate::screen`] — every detector's fragments for one Service are validated
//!    (untrusted input); refused ones are dropped with a note, the host's credentials
//!    are attached where the admin trusts the namespace ([`catalog`]).
//! 1. [`select::select`] — one candidate per backend installation; [`select::Selection::probes`]
//!    lists the health checks to run.
//! 2. [`assemble::assemble`] — HolmesGPT `toolsets:` map plus provenance.
//! 3. [`overrides::Overrides::parse`] then [`overrides::merge`] — the admin's file on top.
//! 4. [`render`] — YAML/JSON/ConfigMap; [`explain::explain`] for `--explain`.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod assemble;
pub mod catalog;
pub mod error;
pub mod explain;
pub mod gate;
pub mod k8s_names;
pub mod limits;
pub mod model;
pub mod overrides;
pub mod render;
pub mod select;

pub use model::*;

pub use error::{Error, Result, TextError};
