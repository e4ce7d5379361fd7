//! `dynamic-toolset run`: settings → client → detectors → controller, until a signal.

use std::process::ExitCode;

use crate::config::RunArgs;

/// `dynamic-toolset run`.
pub fn run(args: &RunArgs) -> anyhow::Result<ExitCode> {
    let _ = args;
    anyhow::bail!("`run` settings are being wired (see host/src/config.rs)")
}

