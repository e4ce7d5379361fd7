//! `cargo xtask build-python-detector`: builds the example Python detector
//! (`examples/detectors/kubernaut-context-py`) with componentize-py, installed with pip into
//! a venv under `target/` (see `guest_build::python`), into `target/python-detectors/`.

use std::time::Instant;

use anyhow::Context as _;
use guest_build::python;

use crate::process::workspace_root;

#[derive(clap::Args)]
pub struct Args {
    /// Also build the test-only variant `kubernaut_context_probe.wasm` (sandbox probes).
    #[arg(long)]
    probe: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let root = workspace_root();
    let started = Instant::now();
    let mut guests = vec![python::DETECTOR];
    if args.probe {
        guests.push(python::PROBE);
    }
    let built = python::build(&root, &guests)?;
    for path in &built {
        let size = std::fs::metadata(path)
            .with_context(|| format!("reading {}", path.display()))?
            .len();
        let shown = path.strip_prefix(&root).unwrap_or(path);
        println!("{size:>10} bytes  {}", shown.display());
    }
    eprintln!(
        "built in {:.1}s (componentize-py {})",
        started.elapsed().as_secs_f64(),
        python::COMPONENTIZE_PY_VERSION
    );
    Ok(())
}
