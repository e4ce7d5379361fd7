//! HolmesGPT's Python package for the tests: the venv `tests/holmes/setup.sh` makes (or
//! `$HOLMES_PYTHON`). Shared by the tests that load our output with HolmesGPT's own code.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The venv's python with holmesgpt installed (`$HOLMES_PYTHON` when set).
pub fn holmes_python() -> PathBuf {
    if let Ok(p) = std::env::var("HOLMES_PYTHON") {
        return p.into();
    }
    let out = Command::new("bash")
        .arg(repo().join("tests/holmes/setup.sh"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "tests/holmes/setup.sh failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}
