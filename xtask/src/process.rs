//! What every xtask command needs: the workspace root and running commands with errors that
//! name the command.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

/// The workspace root (the parent of `xtask/`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// The command as shown in errors (at most 300 characters).
fn shown(cmd: &Command) -> String {
    format!("{cmd:?}").chars().take(300).collect()
}

/// Runs `cmd` (output inherited); an error names it and its exit status.
pub fn run(cmd: &mut Command) -> Result<()> {
    let shown = shown(cmd);
    let status = cmd
        .status()
        .with_context(|| format!("cannot start {shown}"))?;
    if !status.success() {
        bail!("{shown} exited with {status}");
    }
    Ok(())
}

/// Runs `cmd` and returns its stdout; an error names it, its status and its stderr.
pub fn capture(cmd: &mut Command) -> Result<String> {
    let shown = shown(cmd);
    let out = cmd
        .output()
        .with_context(|| format!("cannot start {shown}"))?;
    if !out.status.success() {
        bail!(
            "{shown} exited with {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
