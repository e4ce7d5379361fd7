//! `cargo xtask`: project automation.
//!
//! - `build-detectors`: build the bundled guest detectors (wasm32-wasip2 components).
//! - `ci`: install what the tests need, then fmt, clippy and every test.
//! - `kube`: build (cached outside the repository) and run a real kube-apiserver + etcd.

use clap::{Parser, Subcommand};

mod build_detectors;
mod ci;
mod kube;

#[derive(Parser)]
#[command(name = "cargo xtask", about = "dynamic-toolset project automation")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build the bundled detector components (adds the wasm32-wasip2 target if missing).
    BuildDetectors(build_detectors::Args),
    /// Install what the tests need, check format and lints, run every test (the README's test command).
    Ci(ci::Args),
    /// Build or run a real kube-apiserver + etcd for integration tests.
    #[command(subcommand)]
    Kube(kube::Command),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::BuildDetectors(args) => build_detectors::run(args),
        Command::Kube(cmd) => kube::run(cmd),
        Command::Ci(args) => ci::run_ci(args),
    }
}
