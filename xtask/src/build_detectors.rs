//! `cargo xtask build-detectors` (to be written).

#[derive(clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("build-detectors is not written yet")
}
