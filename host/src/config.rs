//! Controller settings: file (`service_discovery:` ...), then environment, then flags.
//! (Being written: see the config brief.)

use std::path::PathBuf;

/// Flags of `dynamic-toolset run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Settings file (YAML, the `config.yaml` key of ConfigMap kubernaut-dynamic-toolset-config).
    #[arg(long, short = 'c', value_name = "FILE", env = "CONFIG_FILE")]
    pub config: Option<PathBuf>,
}

/// Arguments of `dynamic-toolset config check`.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// Settings file to validate.
    pub file: PathBuf,
}

/// `dynamic-toolset config check`.
pub fn check(args: &CheckArgs) -> anyhow::Result<std::process::ExitCode> {
    anyhow::bail!("config check is not written yet ({})", args.file.display())
}
