//! Command-line interface: the clap structs of every subcommand, and the small conversions
//! from their flags to the domain types the commands use (settings flags, gate policy,
//! probe settings, detector setup).
//!
//! The flags that override settings keys take their names and help from the key table
//! ([`crate::config::keys`]); the security and detector flags are declared once and shared
//! by `run` and `discover`/`detectors`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};
use dynamic_toolset_core::gate::Policy;

use crate::config::keys::{self, *};
use crate::config::{EXAMPLE_CONFIG, Flags, SecuritySettings};
use crate::pipeline::DetectorSetup;
use crate::probe::ProbeSettings;

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
    Run(RunArgs),
    /// Delivery sidecar beside HolmesGPT: watch the generated ConfigMap, write its
    /// toolsets.yaml atomically to HolmesGPT's file, and call HolmesGPT's reload endpoint.
    ///
    /// Runs in HolmesGPT's pod (so it works whatever namespace HolmesGPT is in, and within
    /// seconds instead of the kubelet's 60-90 s and HolmesGPT's 300 s refresh). Invalid
    /// content is never written (the last good file stays); a failed reload (HolmesGPT down,
    /// restarting, 401, 500) is retried with capped exponential backoff and ±25 % jitter.
    Deliver(crate::deliver::DeliverArgs),
    /// List what a running controller discovered, through its REST API: toolsets (with the
    /// Services, health and overrides behind them), services (every detector's verdict and
    /// why a Service was not chosen) or detectors (with live call statistics).
    Get(crate::api::client::GetArgs),
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
    Check(CheckArgs),
}

/// Flags of `dynamic-toolset run`. Every flag overrides the settings file and the environment.
#[derive(Debug, Default, Clone, Args)]
pub struct RunArgs {
    /// Settings file (YAML, the `config.yaml` key of ConfigMap kubernaut-dynamic-toolset-config).
    /// See `dynamic-toolset config check --help` for every key.
    #[arg(long, short = 'c', value_name = "FILE", env = "CONFIG_FILE")]
    pub config: Option<PathBuf>,
    /// Kubeconfig file (default: in-cluster config, else KUBECONFIG, else ~/.kube/config).
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    #[arg(long = flag_name(SD_NAMESPACES), short = 'n', value_name = "NS", value_delimiter = ',', help = flag_help(SD_NAMESPACES))]
    pub namespaces: Vec<String>,
    #[arg(long = flag_name(SD_EXCLUDE), value_name = "NS", value_delimiter = ',', help = flag_help(SD_EXCLUDE))]
    pub exclude_namespaces: Vec<String>,
    #[arg(long = flag_name(SD_SELECTOR), value_name = "SELECTOR", help = flag_help(SD_SELECTOR))]
    pub label_selector: Option<String>,
    #[command(flatten)]
    pub security: SecurityArgs,
    #[arg(long = flag_name(CM_NAME), value_name = "NAME", help = flag_help(CM_NAME))]
    pub configmap_name: Option<String>,
    #[arg(long = flag_name(CM_NAMESPACE), value_name = "NS", help = flag_help(CM_NAMESPACE))]
    pub configmap_namespace: Option<String>,
    #[arg(long = flag_name(CM_OWNER), value_name = "NAME", help = flag_help(CM_OWNER))]
    pub owner_deployment: Option<String>,
    #[arg(long = flag_name(LE_ENABLED), help = flag_help(LE_ENABLED))]
    pub no_leader_election: bool,
    #[arg(long = flag_name(HC_ENABLED), help = flag_help(HC_ENABLED))]
    pub no_health_check: bool,
    #[arg(long = flag_name(HC_INSECURE), help = flag_help(HC_INSECURE))]
    pub insecure_skip_tls_verify: bool,
    #[command(flatten)]
    pub runtime: RuntimeArgs,
    #[arg(long = flag_name(SRV_LISTEN), value_name = "ADDR", help = flag_help(SRV_LISTEN))]
    pub listen: Option<String>,
    #[arg(long = flag_name(SRV_METRICS), value_name = "ADDR", help = flag_help(SRV_METRICS))]
    pub metrics_listen: Option<String>,
    #[arg(long = flag_name(SRV_API_AUTH), help = flag_help(SRV_API_AUTH))]
    pub no_api_auth: bool,
    #[arg(long = flag_name(SD_DOMAIN), value_name = "DOMAIN", help = flag_help(SD_DOMAIN))]
    pub cluster_domain: Option<String>,
}

impl RunArgs {
    /// The settings these flags override, for [`crate::config::load`].
    pub fn flags(&self) -> Flags {
        let mut f = Flags::default();
        f.text(SD_SELECTOR, self.label_selector.clone())
            .text(CM_NAME, self.configmap_name.clone())
            .text(CM_NAMESPACE, self.configmap_namespace.clone())
            .text(CM_OWNER, self.owner_deployment.clone());
        self.runtime.flags(&mut f);
        f.text(SRV_LISTEN, self.listen.clone())
            .text(SRV_METRICS, self.metrics_listen.clone())
            .text(SD_DOMAIN, self.cluster_domain.clone())
            .list(SD_NAMESPACES, &self.namespaces)
            .list(SD_EXCLUDE, &self.exclude_namespaces);
        self.security.flags(&mut f);
        f.switch(LE_ENABLED, self.no_leader_election)
            .switch(HC_ENABLED, self.no_health_check)
            .switch(HC_INSECURE, self.insecure_skip_tls_verify)
            .switch(SRV_API_AUTH, self.no_api_auth);
        f
    }
}

/// Arguments of `dynamic-toolset config check`.
#[derive(Debug, Clone, Args)]
#[command(
    after_help = "Exit status: 0 when the settings are valid (the effective settings are \
printed on stdout as YAML), 1 otherwise (every error is printed on stderr). `--help` shows every \
key.",
    after_long_help = format!(
        "Exit status: 0 when the settings are valid (the effective settings are printed on \
stdout as YAML), 1 otherwise (every error is printed on stderr, naming the key and where the \
value came from: FILE:LINE, env VAR or flag --x).\n\nEvery key, with its default:\n\n{EXAMPLE_CONFIG}"
    )
)]
pub struct CheckArgs {
    /// Settings file to validate (`-` reads stdin).
    pub file: PathBuf,
    /// Ignore the environment overrides (DISCOVERY_INTERVAL, ...): check the file alone.
    #[arg(long)]
    pub no_env: bool,
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct DetectorArgs {
    #[command(subcommand)]
    pub command: Option<DetectorsCommand>,
    #[command(flatten)]
    pub runtime: RuntimeArgs,
}

#[derive(Debug, Subcommand)]
pub enum DetectorsCommand {
    /// Run one detector component over Service manifests and show what it answers.
    ///
    /// Per Service: its verdict, every fragment (toolset, instance, rank, endpoint, health,
    /// config), its candidate endpoints with their fingerprints, and what the host's
    /// validation gate did with each fragment. What a detector author iterates with: the
    /// component runs in the host's sandbox, alone (no bundled detector beside it), and
    /// nothing is probed.
    Test(DetectorTestArgs),
}

/// Arguments of `dynamic-toolset detectors test`.
#[derive(Debug, Args)]
#[command(
    after_help = "Exit status: 0 when every Service was run and no fragment was refused; \
1 when the component cannot be loaded (the error names the file and the reason) or a manifest \
path does not exist; 2 on a usage error; 3 when the detector ran but a call failed (trap, \
timeout, invalid output), the validation gate refused a fragment or candidate, or a manifest \
document was rejected (each is reported)."
)]
pub struct DetectorTestArgs {
    /// The detector component, e.g. target/wasm32-wasip2/release/my_detector.wasm.
    #[arg(value_name = "FILE.wasm")]
    pub file: PathBuf,
    /// Service manifests: files, directories (every *.yaml, *.yml, *.json inside) or `-` for
    /// stdin, read as `discover` reads them; objects of other kinds are skipped.
    #[arg(long, short = 'm', value_name = "PATH", num_args = 1.., required = true)]
    pub manifests: Vec<PathBuf>,
    /// Output format: text for a person, JSON (every field, fragments as the host holds them)
    /// for scripts.
    #[arg(long, short = 'o', value_enum, default_value_t = TestOutput::Text)]
    pub output: TestOutput,
    /// Settings handed to the detector's `configure` at load, as an operator's declaration
    /// would (the text of a JSON object); a detector that refuses them is not loaded (exit
    /// status 1, with its reason).
    #[arg(long, value_name = "JSON")]
    pub settings: Option<String>,
    /// Give the component the minimal, deny-by-default WASI a declaration's `wasi: true`
    /// grants (no files, environment or sockets; stdout and stderr go to the log): what
    /// detectors built with componentize-py or jco need. Without it such a component is
    /// refused, naming the WASI import it asked for.
    #[arg(long)]
    pub wasi: bool,
    /// The grant to screen its fragments with, written as a declaration's `grants:` (YAML),
    /// e.g. '{toolsets: [acme/tools], allow_commands: true}'. Default: the strict grant of a
    /// declaration without `grants:` (endpoints on the given Service only, what it declares,
    /// no custom toolsets).
    #[arg(long, value_name = "YAML")]
    pub grants: Option<String>,
    /// Leave out the Services the detector said are unrelated (text output).
    #[arg(long)]
    pub hide_unrelated: bool,
    /// Cluster DNS domain used in endpoint URLs.
    #[arg(long, default_value = "cluster.local", value_name = "DOMAIN")]
    pub cluster_domain: String,
    /// Namespace for objects that carry none (e.g. `helm template` output).
    #[arg(long, default_value = "default", value_name = "NS")]
    pub default_namespace: String,
    #[arg(long = flag_name(DET_CACHE), value_name = "DIR", help = flag_help(DET_CACHE))]
    pub cache_dir: Option<PathBuf>,
    #[command(flatten)]
    pub security: SecurityArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TestOutput {
    Text,
    Json,
}

/// Where the detectors come from; the environment is read when a flag is not given.
#[derive(Debug, Args, Default, Clone)]
pub struct RuntimeArgs {
    #[arg(long = flag_name(DET_DIR), value_name = "DIR", help = flag_help(DET_DIR))]
    pub detectors_dir: Option<PathBuf>,
    #[arg(long = flag_name(DET_FILE), value_name = "FILE", help = flag_help(DET_FILE))]
    pub detectors_file: Option<PathBuf>,
    #[arg(long = flag_name(DET_CACHE), value_name = "DIR", help = flag_help(DET_CACHE))]
    pub cache_dir: Option<PathBuf>,
}

impl RuntimeArgs {
    /// The detectors to load (`discover`, `detectors`): each directory from its flag, else
    /// its environment variable (`DETECTORS_DIR`, `DETECTOR_CACHE_DIR`).
    pub fn setup(&self, env: impl Fn(&str) -> Option<String>) -> DetectorSetup {
        let dir = |given: &Option<PathBuf>, path: &str| {
            given.clone().or_else(|| {
                keys::env_name(path)
                    .and_then(&env)
                    .map(|v| v.trim().to_string())
                    .filter(|v| !v.is_empty())
                    .map(PathBuf::from)
            })
        };
        DetectorSetup {
            file: dir(&self.detectors_file, DET_FILE),
            ..DetectorSetup::new(
                dir(&self.detectors_dir, DET_DIR),
                dir(&self.cache_dir, DET_CACHE),
            )
        }
    }

    fn flags(&self, f: &mut Flags) {
        let text = |p: &Option<PathBuf>| p.as_ref().map(|p| p.display().to_string());
        f.text(DET_DIR, text(&self.detectors_dir))
            .text(DET_FILE, text(&self.detectors_file))
            .text(DET_CACHE, text(&self.cache_dir));
    }
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
#[derive(Debug, Args, Default, Clone)]
pub struct SecurityArgs {
    #[arg(long = flag_name(SEC_CREDENTIALS), value_name = "NS", value_delimiter = ',', help = flag_help(SEC_CREDENTIALS))]
    pub credential_namespaces: Vec<String>,
    #[arg(long = flag_name(SEC_ENDPOINTS), value_name = "NS", value_delimiter = ',', help = flag_help(SEC_ENDPOINTS))]
    pub endpoint_namespaces: Vec<String>,
    #[arg(long = flag_name(SEC_EXTERNAL), value_name = "HOST[:PORT]", value_delimiter = ',', help = flag_help(SEC_EXTERNAL))]
    pub external_hosts: Vec<String>,
}

impl SecurityArgs {
    /// The gate policy of `discover`: each list from its flag, else its environment variable
    /// (comma separated), as the `security:` settings of `run` describe it.
    pub fn policy(&self, cluster_domain: &str, env: impl Fn(&str) -> Option<String>) -> Policy {
        let list = |given: &[String], path: &str| -> Vec<String> {
            if !given.is_empty() {
                return given.to_vec();
            }
            keys::env_name(path)
                .and_then(&env)
                .map(|v| {
                    v.split(',')
                        .map(str::trim)
                        .filter(|p| !p.is_empty())
                        .map(String::from)
                        .collect()
                })
                .unwrap_or_default()
        };
        SecuritySettings {
            credential_namespaces: list(&self.credential_namespaces, SEC_CREDENTIALS),
            endpoint_namespaces: list(&self.endpoint_namespaces, SEC_ENDPOINTS),
            external_hosts: list(&self.external_hosts, SEC_EXTERNAL),
        }
        .policy(cluster_domain)
    }

    fn flags(&self, f: &mut Flags) {
        f.list(SEC_CREDENTIALS, &self.credential_namespaces)
            .list(SEC_ENDPOINTS, &self.endpoint_namespaces)
            .list(SEC_EXTERNAL, &self.external_hosts);
    }
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

impl ProbeArgs {
    /// The probe settings these flags describe.
    pub fn settings(&self) -> anyhow::Result<ProbeSettings> {
        let secs = |name: &str, v: f64| {
            Duration::try_from_secs_f64(v)
                .ok()
                .filter(|d| !d.is_zero())
                .with_context(|| format!("--{name}: {v} is not a positive number of seconds"))
        };
        Ok(ProbeSettings {
            timeout: secs("probe-timeout", self.probe_timeout)?,
            attempts: self.probe_attempts,
            interval: secs("probe-interval", self.probe_interval)?,
            insecure_tls: self.insecure_skip_tls_verify,
            resolve: self.resolve.clone(),
            ..ProbeSettings::default()
        })
    }
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
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::config::FlagValue;
    use crate::config::keys::{Flag, KEYS};
    use clap::CommandFactory;

    fn run_args(args: &[&str]) -> RunArgs {
        let argv = ["dynamic-toolset", "run"].iter().chain(args);
        match Cli::try_parse_from(argv).unwrap().command {
            Command::Run(a) => a,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn every_settings_flag_of_run_sets_its_key() {
        for k in KEYS {
            let Some(flag) = k.flag else { continue };
            let name = format!("--{}", flag.name());
            let (args, expected) = match flag {
                Flag::Switch { .. } => (vec![name.as_str()], vec![FlagValue::Given]),
                Flag::Value(_) => (
                    vec![name.as_str(), "x"],
                    vec![
                        FlagValue::Text("x".into()),
                        FlagValue::List(vec!["x".into()]),
                    ],
                ),
            };
            let flags = run_args(&args).flags();
            let [(path, value)] = flags.values() else {
                panic!("{name}: {flags:?}");
            };
            assert_eq!(*path, k.path, "{name}");
            assert!(expected.contains(value), "{name}: {value:?}");
        }
        assert!(run_args(&[]).flags().values().is_empty());
    }

    #[test]
    fn every_flag_of_run_is_a_settings_key() {
        let cmd = Cli::command();
        let run = cmd.find_subcommand("run").unwrap();
        for arg in run.get_arguments() {
            let Some(long) = arg.get_long() else { continue };
            if ["config", "kubeconfig", "log-level", "log-format"].contains(&long) {
                continue;
            }
            assert!(
                KEYS.iter().any(|k| k.flag.map(Flag::name) == Some(long)),
                "--{long} is not in the key table"
            );
        }
    }

    #[test]
    fn discover_reads_security_and_detector_env_when_no_flag_is_given() {
        let env = |k: &str| match k {
            "CREDENTIAL_NAMESPACES" => Some("a, b,".to_string()),
            "DETECTORS_DIR" => Some("/plugins".to_string()),
            _ => None,
        };
        let p = SecurityArgs::default().policy("Cluster.Local", env);
        assert_eq!(p.cluster_domain, "cluster.local");
        assert_eq!(p.credential_namespaces.len(), 2);
        assert!(p.endpoint_namespaces.is_empty());
        let given = SecurityArgs {
            credential_namespaces: vec!["c".into()],
            ..SecurityArgs::default()
        };
        assert_eq!(
            given
                .policy("cluster.local", env)
                .credential_namespaces
                .len(),
            1
        );
        let setup = RuntimeArgs::default().setup(env);
        assert_eq!(setup.dir, Some(PathBuf::from("/plugins")));
        assert_eq!(setup.runtime.cache_dir, None);
    }

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
    fn detectors_lists_or_tests() {
        let parse = |args: &[&str]| {
            let argv = ["dynamic-toolset", "detectors"].iter().chain(args);
            Cli::try_parse_from(argv).map(|c| match c.command {
                Command::Detectors(a) => a,
                other => panic!("{other:?}"),
            })
        };
        let list = parse(&["--detectors-dir", "/plugins"]).unwrap();
        assert!(list.command.is_none());
        assert_eq!(list.runtime.detectors_dir, Some(PathBuf::from("/plugins")));
        let test = parse(&["test", "d.wasm", "-m", "a.yaml", "b/", "-o", "json"]).unwrap();
        let Some(DetectorsCommand::Test(t)) = test.command else {
            panic!("{test:?}")
        };
        assert_eq!(t.file, PathBuf::from("d.wasm"));
        assert_eq!(t.manifests.len(), 2);
        assert_eq!(t.output, TestOutput::Json);
        assert_eq!(t.cluster_domain, "cluster.local");
        assert!(
            parse(&["test", "d.wasm"]).is_err(),
            "manifests are required"
        );
        assert!(parse(&["--detectors-dir", "/p", "test", "d.wasm", "-m", "a"]).is_err());
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
