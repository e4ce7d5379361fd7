//! `cargo xtask build-detectors`: builds the bundled detector components
//! (`guest-detectors/<name>` → `target/guests/wasm32-wasip2/guest/detector_<name>.wasm`).

use std::path::PathBuf;

use anyhow::Context as _;

#[derive(clap::Args)]
pub struct Args {
    /// Build only these detectors (names as in `guest-detectors/<name>`); default: all.
    #[arg(value_name = "NAME")]
    only: Vec<String>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let root = workspace_root()?;
    let mut opts = guest_build::Options::bundled(&root)?;
    if !args.only.is_empty() {
        for name in &args.only {
            anyhow::ensure!(
                opts.guests.iter().any(|g| &g.name == name),
                "no bundled detector named `{name}` (expected guest-detectors/{name}/Cargo.toml)"
            );
        }
        opts.guests.retain(|g| args.only.contains(&g.name));
    }
    opts.show_progress = true;
    let built = guest_build::build(&opts)?;
    for guest in &built {
        let size = std::fs::metadata(&guest.path)
            .with_context(|| format!("reading {}", guest.path.display()))?
            .len();
        let shown = guest.path.strip_prefix(&root).unwrap_or(&guest.path);
        println!("{:<20} {:>9} bytes  {}", guest.name, size, shown.display());
    }
    Ok(())
}

fn workspace_root() -> anyhow::Result<PathBuf> {
    let manifest_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    guest_build::find_workspace_root(&manifest_dir)
        .with_context(|| format!("no workspace root above {}", manifest_dir.display()))
}
