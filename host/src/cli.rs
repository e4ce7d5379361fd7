//! Command-line interface.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "dynamic-toolset",
    version,
    about = "Discovers observability backends among Kubernetes Services and writes the HolmesGPT toolset configuration for them.",
    long_about = "Discovers observability backends (Prometheus, Thanos, VictoriaMetrics, Alertmanager, \
Grafana, Loki, Tempo, Jaeger, Elasticsearch, OpenSearch, VictoriaLogs, and Services an admin \
annotates with kubernaut.io/toolset) among Kubernetes Services and produces the configuration \
HolmesGPT loads as is: a `toolsets:` map with every discovered backend enabled, kubernetes/core and \
kubernetes/logs always on, and the admin's overrides merged on top (overrides win).\n\n\
Every detector is a sandboxed WebAssembly component: the bundled ones ship inside this binary, \
third-party ones are loaded from --detectors-dir.",
    after_help = "Examples:\n  \
dynamic-toolset discover --example --no-health-check\n  \
kubectl get svc -A -o yaml | dynamic-toolset discover --manifests - --no-health-check --explain\n  \
dynamic-toolset discover --manifests rendered/ --overrides overrides.yaml --format configmap\n  \
dynamic-toolset detectors\n  \
dynamic-toolset deliver --configmap-namespace holmes --output /etc/holmes/toolsets/toolsets.yaml"
)]
pub struct Cli {
    #[command(flatten)]
    pub log: LogArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct LogArgs {
    /// Log filter for stderr logs (tracing EnvFilter syntax, e.g. `debug` or
    /// `dynamic_toolset=debug`). Overridden by RUST_LOG when set.
    #[arg(long, global = true, default_value = "info", env = "LOG_LEVEL")]
    pub log_level: String,
    /// Log line format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "LOG_FORMAT")]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Offline discovery: read Service manifests, print the HolmesGPT configuration.
    ///
    /// Exit status: 0 on success; 1 on a fatal error (nothing printed on stdout); 3 when the
    /// configuration was printed but some input was rejected (bad manifests, failing
    /// detectors or plugin files; each is reported on stderr).
    Discover(DiscoverArgs),
    /// List the loaded detectors (bundled and from --detectors-dir) and plugin load errors.
    Detectors(DetectorArgs),
    /// Run the in-cluster controller: watch Services, probe, keep the ConfigMap up to date.
    Run(crate::config::RunArgs),
    /// Delivery sidecar beside HolmesGPT: watch the generated ConfigMap, write its
    /// toolsets.yaml atomically to HolmesGPT's file, and call HolmesGPT's reload endpoint.
    ///
    /// Runs in HolmesGPT's pod (so it works whatever namespace HolmesGPT is in, and within
    /// seconds instead of the kubelet's 60-90 s and HolmesGPT's 300 s refresh). Invalid
    /// content is never written (the last good file stays); a failed reload (HolmesGPT down,
    /// restarting, 401, 500) is retried with capped exponential backoff and ±25 % jitter.
    Deliver(crate::deliver::DeliverArgs),
    /// Settings file tools.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// overrides.yaml tools.
    #[command(subcommand)]
    Overrides(OverridesCommand),
}

#[derive(Debug, Subcommand)]
pub enum OverridesCommand {
    /// Turn the toolsets configured in HolmesGPT's own chart (values `toolsets:` and
    /// `mcp_servers:`, or its `custom-toolsets-configmap`) into our overrides.yaml, so they
    /// survive when HolmesGPT reads the generated file instead. Prints it on stdout.
    Import(crate::import::ImportArgs),
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate a settings file (and the environment overrides); print the effective settings.
    Check(crate::config::CheckArgs),
}

#[derive(Debug, Args)]
pub struct DetectorArgs {
    #[command(flatten)]
    pub runtime: RuntimeArgs,
}

#[derive(Debug, Args)]
pub struct RuntimeArgs {
    /// Directory of third-party detector components (`*.wasm`), loaded beside the bundled ones.
    #[arg(long, value_name = "DIR", env = "DETECTORS_DIR")]
    pub detectors_dir: Option<PathBuf>,
    /// Directory for precompiled detectors (makes later starts fast). Off when unset.
    #[arg(long, value_name = "DIR", env = "DETECTOR_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct DiscoverArgs {
    /// Service manifests: files, directories (every *.yaml, *.yml, *.json inside) or `-` for
    /// stdin. Multi-document YAML, JSON, `kind: List` and `kubectl get svc -A -o yaml` output
    /// are read; objects of other kinds are skipped.
    #[arg(long, short = 'm', value_name = "PATH", num_args = 1.., required_unless_present = "example", conflicts_with = "example")]
    pub manifests: Vec<PathBuf>,
    /// Use the example cluster embedded in the binary (a realistic mixed cluster rendered from
    /// real Helm charts) instead of --manifests.
    #[arg(long)]
    pub example: bool,
    /// Admin overrides in HolmesGPT's own format (`toolsets:` map, `mcp_servers:`), merged
    /// over what was discovered: overrides win, `enabled: false` keeps a toolset off.
    #[arg(long, value_name = "FILE")]
    pub overrides: Option<PathBuf>,
    /// Do not probe endpoints (offline use: cluster DNS names do not resolve outside the cluster).
    #[arg(long)]
    pub no_health_check: bool,
    /// Output format: the HolmesGPT file as YAML or JSON, or the ConfigMap object.
    #[arg(long, short = 'o', value_enum, default_value_t = Format::Yaml)]
    pub format: Format,
    /// Explain on stderr, for each Service, which detector claimed it or why none did, its
    /// instance, and whether it was chosen.
    #[arg(long)]
    pub explain: bool,
    /// Cluster DNS domain used in endpoint URLs.
    #[arg(long, default_value = "cluster.local", value_name = "DOMAIN")]
    pub cluster_domain: String,
    /// Namespace for objects that carry none (e.g. `helm template` output).
    #[arg(long, default_value = "default", value_name = "NS")]
    pub default_namespace: String,
    /// ConfigMap name for --format configmap.
    #[arg(long, default_value = "kubernaut-toolset-config", value_name = "NAME")]
    pub configmap_name: String,
    /// ConfigMap namespace for --format configmap.
    #[arg(long, default_value = "kubernaut-system", value_name = "NS")]
    pub configmap_namespace: String,
    #[command(flatten)]
    pub probe: ProbeArgs,
    #[command(flatten)]
    pub runtime: RuntimeArgs,
    #[command(flatten)]
    pub security: SecurityArgs,
}

/// What the validation gate lets through beyond its baseline (see README, "Security
/// model"). Every value here widens who can steer HolmesGPT: keep them short.
#[derive(Debug, Args, Default)]
pub struct SecurityArgs {
    /// Namespace whose backends receive HolmesGPT's credentials (`{{ env.GRAFANA_API_KEY }}`,
    /// Elasticsearch/OpenSearch passwords). Repeatable; exact names. Backends elsewhere are
    /// emitted without credentials. Default: none.
    #[arg(
        long = "credential-namespace",
        value_name = "NS",
        env = "CREDENTIAL_NAMESPACES",
        value_delimiter = ','
    )]
    pub credential_namespaces: Vec<String>,
    /// Namespace an annotated endpoint may point into besides its own Service's. Repeatable.
    #[arg(
        long = "endpoint-namespace",
        value_name = "NS",
        env = "ENDPOINT_NAMESPACES",
        value_delimiter = ','
    )]
    pub endpoint_namespaces: Vec<String>,
    /// Off-cluster host (`host` or `host:port`) an endpoint may name. Repeatable. Default: none.
    #[arg(
        long = "external-host",
        value_name = "HOST[:PORT]",
        env = "EXTERNAL_HOSTS",
        value_delimiter = ','
    )]
    pub external_hosts: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ProbeArgs {
    /// Per-attempt probe timeout, in seconds.
    #[arg(long, default_value_t = 5.0, value_name = "SECONDS")]
    pub probe_timeout: f64,
    /// Probe attempts before an endpoint counts as unhealthy.
    #[arg(long, default_value_t = 3, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=10))]
    pub probe_attempts: u32,
    /// Pause between attempts, in seconds.
    #[arg(long, default_value_t = 1.0, value_name = "SECONDS")]
    pub probe_interval: f64,
    /// Do not verify TLS certificates when probing (self-signed backends). Toolsets configured
    /// with `verify_ssl: false` are always probed without verification.
    #[arg(long)]
    pub insecure_skip_tls_verify: bool,
    /// Resolve HOST to ADDR when probing, like curl's --resolve (the URL's port is kept):
    /// `--resolve prometheus.monitoring.svc.cluster.local=127.0.0.1`. Repeatable.
    #[arg(long, value_name = "HOST=ADDR", value_parser = parse_resolve)]
    pub resolve: Vec<(String, SocketAddr)>,
}

fn parse_resolve(s: &str) -> Result<(String, SocketAddr), String> {
    let (host, addr) = s
        .split_once('=')
        .ok_or_else(|| format!("expected HOST=ADDR, got {s:?}"))?;
    if host.is_empty() {
        return Err(format!("empty host in {s:?}"));
    }
    let ip: std::net::IpAddr = addr
        .parse()
        .map_err(|e| format!("{addr:?} is not an IP address: {e}"))?;
    Ok((host.to_string(), SocketAddr::new(ip, 0)))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Yaml,
    Json,
    Configmap,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn resolve_parses_host_and_ip() {
        let (h, a) = parse_resolve("p.m.svc.cluster.local=127.0.0.1").unwrap();
        assert_eq!(h, "p.m.svc.cluster.local");
        assert_eq!(a.ip().to_string(), "127.0.0.1");
        assert!(parse_resolve("nohost").is_err());
        assert!(parse_resolve("h=notanip").is_err());
    }

    #[test]
    fn manifests_or_example_required() {
        assert!(Cli::try_parse_from(["dynamic-toolset", "discover"]).is_err());
        assert!(Cli::try_parse_from(["dynamic-toolset", "discover", "--example"]).is_ok());
        assert!(
            Cli::try_parse_from(["dynamic-toolset", "discover", "--example", "-m", "x"]).is_err()
        );
    }
}
