//! `cargo xtask kube ...` (to be written).

#[derive(clap::Subcommand)]
pub enum Command {
    /// Build the kube-apiserver binary into the cache (no-op when cached).
    Build,
}

pub fn run(_cmd: Command) -> anyhow::Result<()> {
    anyhow::bail!("kube is not written yet")
}
