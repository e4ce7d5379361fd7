//! The in-cluster controller (`dynamic-toolset run`).

use std::process::ExitCode;

use crate::config::RunArgs;

/// `dynamic-toolset run`.
pub fn run(_args: &RunArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("the controller is not written yet")
}
