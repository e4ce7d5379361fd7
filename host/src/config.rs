//! Controller settings, resolved in three layers: the YAML settings file (the `config.yaml` key
//! of ConfigMap `kubernaut-dynamic-toolset-config`), then the environment (the seeds' variable
//! names), then command-line flags. Later layers win.
//!
//! Everything here is pure except [`load`] and [`check`], which read the file and the process
//! environment and hand them to [`resolve`]. [`resolve`] takes the environment as a function, so
//! tests need no process environment.
//!
//! Validation refuses to start and reports *every* problem, each naming the key and where the
//! value came from (`config.yaml:12`, `env LEASE_DURATION`, `flag --listen`, `default`).
//!
//! Decisions worth knowing:
//! - Unknown keys are errors (with a "did you mean"), except the seeds' `cache_ttl`, which is
//!   accepted with a deprecation warning and ignored: discovery is watch-driven, there is no cache
//!   to expire.
//! - A key set to `null` (e.g. `label_selector:` with nothing after it) keeps its default.
//! - An environment variable set to the empty string counts as unset.
//! - `service_discovery.health_check_interval` (the seeds' flat key) and
//!   `service_discovery.health_check.interval` are the same setting; setting both to different
//!   values is an error.
//! - `configmap.namespace` left empty resolves to `POD_NAMESPACE`, else the service account's
//!   namespace file (read by [`load`] only), else `kubernaut-system`; `leader_election.lease_namespace`
//!   left empty resolves to the pod's own namespace (`POD_NAMESPACE`, else the service
//!   account's namespace file), else the ConfigMap's namespace: with `configmap.namespace` set
//!   to HolmesGPT's namespace, the Lease stays in ours. The resolved [`Settings`] always hold the
//!   concrete values.
//! - Durations use the `humantime` syntax (`250ms`, `30s`, `5m`, `1h 30m`); a bare number is
//!   refused because its unit would be a guess.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::io::Read;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use dynamic_toolset_core::k8s_names;
use serde::{Serialize, Serializer};
use serde_yaml::Value;

/// Flags of `dynamic-toolset run`. Every flag overrides the settings file and the environment.
#[derive(Debug, Default, Clone, clap::Args)]
pub struct RunArgs {
    /// Settings file (YAML, the `config.yaml` key of ConfigMap kubernaut-dynamic-toolset-config).
    /// See `dynamic-toolset config check --help` for every key.
    #[arg(long, short = 'c', value_name = "FILE", env = "CONFIG_FILE")]
    pub config: Option<PathBuf>,
    /// Kubeconfig file (default: in-cluster config, else KUBECONFIG, else ~/.kube/config).
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// Watch only these namespaces (wildcards `*` and `?`, e.g. `team-*`). Repeatable or comma
    /// separated. Replaces `service_discovery.namespaces`.
    #[arg(
        long = "namespace",
        short = 'n',
        value_name = "NS",
        value_delimiter = ','
    )]
    pub namespaces: Vec<String>,
    /// Never watch these namespaces (wildcards; wins over --namespace). Repeatable or comma
    /// separated. Replaces `service_discovery.exclude_namespaces`.
    #[arg(long = "exclude-namespace", value_name = "NS", value_delimiter = ',')]
    pub exclude_namespaces: Vec<String>,
    /// Kubernetes label selector for the Service watch (e.g. `app.kubernetes.io/part-of=monitoring`).
    #[arg(long, value_name = "SELECTOR")]
    pub label_selector: Option<String>,
    /// Namespaces whose backends receive HolmesGPT's credentials. Repeatable or comma
    /// separated. Replaces `security.credential_namespaces`.
    #[arg(
        long = "credential-namespace",
        value_name = "NS",
        value_delimiter = ','
    )]
    pub credential_namespaces: Vec<String>,
    /// Namespaces an annotated endpoint may point into besides its own. Replaces
    /// `security.endpoint_namespaces`.
    #[arg(long = "endpoint-namespace", value_name = "NS", value_delimiter = ',')]
    pub endpoint_namespaces: Vec<String>,
    /// Off-cluster hosts (`host` or `host:port`) an endpoint may name. Replaces
    /// `security.external_hosts`.
    #[arg(
        long = "external-host",
        value_name = "HOST[:PORT]",
        value_delimiter = ','
    )]
    pub external_hosts: Vec<String>,
    /// Name of the generated ConfigMap.
    #[arg(long, value_name = "NAME")]
    pub configmap_name: Option<String>,
    /// Namespace of the generated ConfigMap (default: the pod's own).
    #[arg(long, value_name = "NS")]
    pub configmap_namespace: Option<String>,
    /// Deployment (in the ConfigMap's namespace) set as owner of the generated ConfigMap.
    #[arg(long, value_name = "NAME")]
    pub owner_deployment: Option<String>,
    /// Run without a Lease (single replica only).
    #[arg(long)]
    pub no_leader_election: bool,
    /// Publish every discovered backend without probing it.
    #[arg(long)]
    pub no_health_check: bool,
    /// Do not verify TLS certificates when probing (self-signed backends).
    #[arg(long)]
    pub insecure_skip_tls_verify: bool,
    /// Directory of third-party detector components (`*.wasm`).
    #[arg(long, value_name = "DIR")]
    pub detectors_dir: Option<PathBuf>,
    /// Directory for precompiled detectors.
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Address of the health endpoints (`/healthz`, `/readyz`).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// Address of the Prometheus metrics endpoint.
    #[arg(long, value_name = "ADDR")]
    pub metrics_listen: Option<String>,
    /// Cluster DNS domain used in endpoint URLs.
    #[arg(long, value_name = "DOMAIN")]
    pub cluster_domain: Option<String>,
}

/// Arguments of `dynamic-toolset config check`.
#[derive(Debug, Clone, clap::Args)]
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

/// The resolved controller settings. Every field is concrete (no "empty means default" left).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Settings {
    /// How Services are found and validated.
    pub service_discovery: ServiceDiscovery,
    /// The generated ConfigMap (the HolmesGPT toolsets file).
    pub configmap: ConfigMapSettings,
    /// Leader election with a coordination.k8s.io Lease: only the leader writes.
    pub leader_election: LeaderElection,
    /// Detector components.
    pub detectors: DetectorSettings,
    /// What the validation gate lets through beyond its baseline.
    pub security: SecuritySettings,
    /// HTTP listeners.
    pub server: ServerSettings,
}

/// `security:` section: every entry widens who can steer HolmesGPT (README, "Security model").
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct SecuritySettings {
    /// Namespaces (exact names) whose backends receive `{{ env.* }}` credentials
    /// (GRAFANA_API_KEY, ELASTICSEARCH_PASSWORD, OPENSEARCH_PASSWORD). Env
    /// `CREDENTIAL_NAMESPACES`, flag `--credential-namespace`. Default none.
    pub credential_namespaces: Vec<String>,
    /// Namespaces an annotated endpoint may point into besides its Service's own. Env
    /// `ENDPOINT_NAMESPACES`, flag `--endpoint-namespace`. Default none.
    pub endpoint_namespaces: Vec<String>,
    /// Off-cluster hosts (`host` or `host:port`) an endpoint may name. Env `EXTERNAL_HOSTS`,
    /// flag `--external-host`. Default none.
    pub external_hosts: Vec<String>,
}

impl SecuritySettings {
    /// The gate policy these settings describe.
    pub fn policy(&self, cluster_domain: &str) -> dynamic_toolset_core::gate::Policy {
        dynamic_toolset_core::gate::Policy {
            cluster_domain: cluster_domain.to_ascii_lowercase(),
            credential_namespaces: self.credential_namespaces.iter().cloned().collect(),
            endpoint_namespaces: self.endpoint_namespaces.iter().cloned().collect(),
            external_hosts: self
                .external_hosts
                .iter()
                .map(|h| h.to_ascii_lowercase())
                .collect(),
        }
    }
}

/// `service_discovery:` section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServiceDiscovery {
    /// Full resync of every Service, on top of the watch. Env `DISCOVERY_INTERVAL`. Default 5m.
    #[serde(serialize_with = "ser_duration")]
    pub discovery_interval: Duration,
    /// Periodic drift check of the generated ConfigMap, on top of its watch. Env
    /// `RECONCILIATION_INTERVAL`. Default 30s.
    #[serde(serialize_with = "ser_duration")]
    pub reconciliation_interval: Duration,
    /// Bursts of Service events closer than this are coalesced into one discovery run. May be 0.
    /// Default 200ms.
    #[serde(serialize_with = "ser_duration")]
    pub debounce: Duration,
    /// Allow list of namespaces, wildcards `*` and `?` (`team-*`); empty means all namespaces.
    /// Env `NAMESPACES` (comma separated), flag `--namespace`.
    pub namespaces: Vec<String>,
    /// Deny list of namespaces, wildcards; wins over the allow list. Flag `--exclude-namespace`.
    pub exclude_namespaces: Vec<String>,
    /// Kubernetes label selector for the Service watch (`k=v,k!=v,k in (a,b),!k,k`); none when
    /// unset. Flag `--label-selector`.
    #[serde(serialize_with = "ser_opt_string")]
    pub label_selector: Option<String>,
    /// Cluster DNS domain used in endpoint URLs. Flag `--cluster-domain`. Default `cluster.local`.
    pub cluster_domain: String,
    /// Health validation of discovered endpoints.
    pub health_check: HealthCheck,
}

/// `service_discovery.health_check:` section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HealthCheck {
    /// Probe endpoints before publishing them. Env `HEALTH_CHECK_ENABLED`, flag
    /// `--no-health-check`. Default true.
    pub enabled: bool,
    /// Re-probe period. Also `service_discovery.health_check_interval` (the seeds' key), env
    /// `HEALTH_CHECK_INTERVAL`. Default 60s.
    #[serde(serialize_with = "ser_duration")]
    pub interval: Duration,
    /// Timeout of one probe attempt. Default 5s.
    #[serde(serialize_with = "ser_duration")]
    pub timeout: Duration,
    /// Attempts before an endpoint counts as failed in a round (1-10). Default 3.
    pub attempts: u32,
    /// Pause between attempts (may be 0). Default 1s.
    #[serde(serialize_with = "ser_duration")]
    pub retry_interval: Duration,
    /// Consecutive failed rounds before a healthy toolset is removed (1-100); a new toolset
    /// must pass once. Default 3.
    pub failure_threshold: u32,
    /// Probes in flight at once (1-1024). Default 16.
    pub concurrency: u32,
    /// Do not verify TLS certificates (self-signed backends). Flag `--insecure-skip-tls-verify`.
    /// Default false.
    pub insecure_skip_tls_verify: bool,
}

/// `configmap:` section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConfigMapSettings {
    /// Name of the generated ConfigMap. Env `CONFIGMAP_NAME`, flag `--configmap-name`. Default
    /// `kubernaut-toolset-config`.
    pub name: String,
    /// Its namespace. Env `CONFIGMAP_NAMESPACE`, flag `--configmap-namespace`. Empty in the file
    /// means the pod's own: env `POD_NAMESPACE`, else the service account namespace file, else
    /// `kubernaut-system`.
    pub namespace: String,
    /// When set, an ownerReference to this Deployment (same namespace) is put on the ConfigMap.
    /// Flag `--owner-deployment`.
    #[serde(serialize_with = "ser_opt_string")]
    pub owner_deployment: Option<String>,
}

/// `leader_election:` section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LeaderElection {
    /// Take a Lease before writing. Env `LEADER_ELECTION_ENABLED`, flag `--no-leader-election`.
    /// Default true.
    pub enabled: bool,
    /// Lease name. Default `dynamic-toolset-leader`.
    pub lease_name: String,
    /// Lease namespace; empty in the file means the pod's own namespace (env `POD_NAMESPACE`,
    /// else the service account namespace file), else the ConfigMap's namespace.
    pub lease_namespace: String,
    /// How long a Lease is valid without renewal. Env `LEASE_DURATION`. Default 15s.
    #[serde(serialize_with = "ser_duration")]
    pub lease_duration: Duration,
    /// The leader gives up when it could not renew for this long; shorter than
    /// lease_duration. Env `RENEW_DEADLINE`. Default 10s.
    #[serde(serialize_with = "ser_duration")]
    pub renew_deadline: Duration,
    /// Period of acquire/renew attempts; shorter than renew_deadline. Env `RETRY_PERIOD`.
    /// Default 2s.
    #[serde(serialize_with = "ser_duration")]
    pub retry_period: Duration,
}

/// `detectors:` section.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct DetectorSettings {
    /// Directory of third-party detector components (`*.wasm`); none when unset. Env
    /// `DETECTORS_DIR`, flag `--detectors-dir`.
    #[serde(serialize_with = "ser_opt_path")]
    pub dir: Option<PathBuf>,
    /// Directory for precompiled detectors; off when unset. Env `DETECTOR_CACHE_DIR`, flag
    /// `--cache-dir`.
    #[serde(serialize_with = "ser_opt_path")]
    pub cache_dir: Option<PathBuf>,
}

/// `server:` section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServerSettings {
    /// Health endpoints. Flag `--listen`. Default `0.0.0.0:8080`.
    pub listen: SocketAddr,
    /// Prometheus metrics. Flag `--metrics-listen`. Default `0.0.0.0:9090`.
    pub metrics_listen: SocketAddr,
}

/// Namespace used when neither the file, the environment nor the pod tells one.
pub const FALLBACK_NAMESPACE: &str = "kubernaut-system";
/// Where Kubernetes mounts the pod's namespace.
pub const SERVICE_ACCOUNT_NAMESPACE_FILE: &str =
    "/var/run/secrets/kubernetes.io/serviceaccount/namespace";

impl Default for Settings {
    fn default() -> Self {
        Self {
            service_discovery: ServiceDiscovery {
                discovery_interval: Duration::from_secs(300),
                reconciliation_interval: Duration::from_secs(30),
                debounce: Duration::from_millis(200),
                namespaces: Vec::new(),
                exclude_namespaces: Vec::new(),
                label_selector: None,
                cluster_domain: "cluster.local".into(),
                health_check: HealthCheck {
                    enabled: true,
                    interval: Duration::from_secs(60),
                    timeout: Duration::from_secs(5),
                    attempts: 3,
                    retry_interval: Duration::from_secs(1),
                    failure_threshold: 3,
                    concurrency: 16,
                    insecure_skip_tls_verify: false,
                },
            },
            configmap: ConfigMapSettings {
                name: "kubernaut-toolset-config".into(),
                namespace: String::new(),
                owner_deployment: None,
            },
            leader_election: LeaderElection {
                enabled: true,
                lease_name: "dynamic-toolset-leader".into(),
                lease_namespace: String::new(),
                lease_duration: Duration::from_secs(15),
                renew_deadline: Duration::from_secs(10),
                retry_period: Duration::from_secs(2),
            },
            detectors: DetectorSettings::default(),
            security: SecuritySettings::default(),
            server: ServerSettings {
                listen: SocketAddr::from(([0, 0, 0, 0], 8080)),
                metrics_listen: SocketAddr::from(([0, 0, 0, 0], 9090)),
            },
        }
    }
}

impl Settings {
    /// Parses a settings file alone (no environment, no flags).
    pub fn from_yaml(path: &Path, text: &str) -> Result<Settings, ConfigError> {
        resolve(Some((path, text)), |_| None, &RunArgs::default())
    }

    /// Whether Services of namespace `ns` are watched: see [`matches_namespace`].
    pub fn matches_namespace(&self, ns: &str) -> bool {
        matches_namespace(self, ns)
    }

    /// The namespaces to watch one by one when the allow list names them all literally (no
    /// wildcard) and none is excluded away; `None` means "watch all namespaces and filter with
    /// [`matches_namespace`]". Lets the controller use namespaced watches (and a Role instead of
    /// a ClusterRole) when the admin restricted discovery to a few namespaces.
    pub fn literal_namespaces(&self) -> Option<Vec<&str>> {
        let sd = &self.service_discovery;
        if sd.namespaces.is_empty() || sd.namespaces.iter().any(|p| is_wildcard(p)) {
            return None;
        }
        let mut out: Vec<&str> = sd
            .namespaces
            .iter()
            .map(String::as_str)
            .filter(|ns| self.matches_namespace(ns))
            .collect();
        out.sort_unstable();
        out.dedup();
        Some(out)
    }

    /// [`matches_namespace`] as a shareable predicate (owns a copy of the two lists).
    pub fn namespace_filter(&self) -> std::sync::Arc<dyn Fn(&str) -> bool + Send + Sync> {
        let settings = Settings {
            service_discovery: ServiceDiscovery {
                namespaces: self.service_discovery.namespaces.clone(),
                exclude_namespaces: self.service_discovery.exclude_namespaces.clone(),
                ..Settings::default().service_discovery
            },
            ..Settings::default()
        };
        std::sync::Arc::new(move |ns: &str| matches_namespace(&settings, ns))
    }

    /// The effective settings as YAML (what `config check` prints).
    pub fn to_yaml(&self) -> String {
        // Serialising plain structs of strings, numbers and lists cannot fail.
        serde_yaml::to_string(self).unwrap_or_else(|e| format!("# cannot render settings: {e}\n"))
    }
}

/// Whether namespace `ns` is in scope: not matched by any `exclude_namespaces` pattern, and
/// matched by some `namespaces` pattern (an empty allow list allows every namespace). Patterns
/// use `*` (any run of characters, including none) and `?` (exactly one character).
pub fn matches_namespace(settings: &Settings, ns: &str) -> bool {
    let sd = &settings.service_discovery;
    if sd.exclude_namespaces.iter().any(|p| wildcard_match(p, ns)) {
        return false;
    }
    sd.namespaces.is_empty() || sd.namespaces.iter().any(|p| wildcard_match(p, ns))
}

/// Glob match with `*` and `?` (no escapes: namespace names cannot contain either).
pub fn wildcard_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0usize, 0usize);
    // Position of the last `*` in the pattern and the text position it currently covers up to.
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

fn is_wildcard(pattern: &str) -> bool {
    pattern.contains(['*', '?'])
}

// ---------------------------------------------------------------------------------------------
// Errors

/// Where a value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The built-in default.
    Default,
    /// The settings file, with the line when known.
    File { path: PathBuf, line: Option<usize> },
    /// An environment variable.
    Env(String),
    /// A command-line flag (without the leading `--`).
    Flag(String),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Default => f.write_str("default"),
            Source::File {
                path,
                line: Some(l),
            } => write!(f, "{}:{l}", path.display()),
            Source::File { path, line: None } => write!(f, "{}", path.display()),
            Source::Env(name) => write!(f, "env {name}"),
            Source::Flag(name) => write!(f, "flag --{name}"),
        }
    }
}

/// One problem (or warning) with one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    /// Dotted key path, e.g. `leader_election.renew_deadline` (`(file)` for the file as a whole).
    pub key: String,
    /// Where the offending value came from.
    pub source: Source,
    pub message: String,
}

impl fmt::Display for Issue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.source, self.key, self.message)
    }
}

/// Every problem found; the controller refuses to start on any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub issues: Vec<Issue>,
    /// Warnings found on the way (deprecated keys); not part of the message.
    pub warnings: Vec<Issue>,
}

impl ConfigError {
    /// Whether some issue is about `key`.
    pub fn mentions(&self, key: &str) -> bool {
        self.issues.iter().any(|i| i.key == key)
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.issues.len();
        write!(
            f,
            "invalid settings ({n} error{})",
            if n == 1 { "" } else { "s" }
        )?;
        for issue in &self.issues {
            write!(f, "\n  {issue}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

// ---------------------------------------------------------------------------------------------
// The key table: every leaf key, its type, its environment variable.

type Acc<T> = for<'a> fn(&'a mut Settings) -> &'a mut T;

#[derive(Clone, Copy)]
enum Slot {
    /// A duration; `true` when zero is allowed.
    Dur(Acc<Duration>, bool),
    Bool(Acc<bool>),
    /// A whole number within the inclusive range.
    Count(Acc<u32>, u32, u32),
    Str(Acc<String>),
    OptStr(Acc<Option<String>>),
    List(Acc<Vec<String>>),
    Path(Acc<Option<PathBuf>>),
    Addr(Acc<SocketAddr>),
}

struct Key {
    path: &'static str,
    slot: Slot,
    env: Option<&'static str>,
}

const SD_DISCOVERY: &str = "service_discovery.discovery_interval";
const SD_RECONCILE: &str = "service_discovery.reconciliation_interval";
const SD_DEBOUNCE: &str = "service_discovery.debounce";
const SD_NAMESPACES: &str = "service_discovery.namespaces";
const SD_EXCLUDE: &str = "service_discovery.exclude_namespaces";
const SD_SELECTOR: &str = "service_discovery.label_selector";
const SD_DOMAIN: &str = "service_discovery.cluster_domain";
const SD_HC_FLAT: &str = "service_discovery.health_check_interval";
const SD_CACHE_TTL: &str = "service_discovery.cache_ttl";
const HC_ENABLED: &str = "service_discovery.health_check.enabled";
const HC_INTERVAL: &str = "service_discovery.health_check.interval";
const HC_TIMEOUT: &str = "service_discovery.health_check.timeout";
const HC_ATTEMPTS: &str = "service_discovery.health_check.attempts";
const HC_RETRY: &str = "service_discovery.health_check.retry_interval";
const HC_THRESHOLD: &str = "service_discovery.health_check.failure_threshold";
const HC_CONCURRENCY: &str = "service_discovery.health_check.concurrency";
const HC_INSECURE: &str = "service_discovery.health_check.insecure_skip_tls_verify";
const CM_NAME: &str = "configmap.name";
const CM_NAMESPACE: &str = "configmap.namespace";
const CM_OWNER: &str = "configmap.owner_deployment";
const LE_ENABLED: &str = "leader_election.enabled";
const LE_NAME: &str = "leader_election.lease_name";
const LE_NAMESPACE: &str = "leader_election.lease_namespace";
const LE_DURATION: &str = "leader_election.lease_duration";
const LE_RENEW: &str = "leader_election.renew_deadline";
const LE_RETRY: &str = "leader_election.retry_period";
const DET_DIR: &str = "detectors.dir";
const DET_CACHE: &str = "detectors.cache_dir";
const SEC_CREDENTIALS: &str = "security.credential_namespaces";
const SEC_ENDPOINTS: &str = "security.endpoint_namespaces";
const SEC_EXTERNAL: &str = "security.external_hosts";
const SRV_LISTEN: &str = "server.listen";
const SRV_METRICS: &str = "server.metrics_listen";

/// Mapping sections; every other known path is a leaf in [`KEYS`] or a special key.
const SECTIONS: &[&str] = &[
    "service_discovery",
    "service_discovery.health_check",
    "configmap",
    "leader_election",
    "detectors",
    "security",
    "server",
];

static KEYS: &[Key] = &[
    Key {
        path: SD_DISCOVERY,
        slot: Slot::Dur(|s| &mut s.service_discovery.discovery_interval, false),
        env: Some("DISCOVERY_INTERVAL"),
    },
    Key {
        path: SD_RECONCILE,
        slot: Slot::Dur(|s| &mut s.service_discovery.reconciliation_interval, false),
        env: Some("RECONCILIATION_INTERVAL"),
    },
    Key {
        path: SD_DEBOUNCE,
        slot: Slot::Dur(|s| &mut s.service_discovery.debounce, true),
        env: None,
    },
    Key {
        path: SD_NAMESPACES,
        slot: Slot::List(|s| &mut s.service_discovery.namespaces),
        env: Some("NAMESPACES"),
    },
    Key {
        path: SD_EXCLUDE,
        slot: Slot::List(|s| &mut s.service_discovery.exclude_namespaces),
        env: None,
    },
    Key {
        path: SD_SELECTOR,
        slot: Slot::OptStr(|s| &mut s.service_discovery.label_selector),
        env: None,
    },
    Key {
        path: SD_DOMAIN,
        slot: Slot::Str(|s| &mut s.service_discovery.cluster_domain),
        env: None,
    },
    Key {
        path: SEC_CREDENTIALS,
        slot: Slot::List(|s| &mut s.security.credential_namespaces),
        env: Some("CREDENTIAL_NAMESPACES"),
    },
    Key {
        path: SEC_ENDPOINTS,
        slot: Slot::List(|s| &mut s.security.endpoint_namespaces),
        env: Some("ENDPOINT_NAMESPACES"),
    },
    Key {
        path: SEC_EXTERNAL,
        slot: Slot::List(|s| &mut s.security.external_hosts),
        env: Some("EXTERNAL_HOSTS"),
    },
    Key {
        path: HC_ENABLED,
        slot: Slot::Bool(|s| &mut s.service_discovery.health_check.enabled),
        env: Some("HEALTH_CHECK_ENABLED"),
    },
    Key {
        path: HC_INTERVAL,
        slot: Slot::Dur(|s| &mut s.service_discovery.health_check.interval, false),
        env: Some("HEALTH_CHECK_INTERVAL"),
    },
    Key {
        path: HC_TIMEOUT,
        slot: Slot::Dur(|s| &mut s.service_discovery.health_check.timeout, false),
        env: None,
    },
    Key {
        path: HC_ATTEMPTS,
        slot: Slot::Count(|s| &mut s.service_discovery.health_check.attempts, 1, 10),
        env: None,
    },
    Key {
        path: HC_RETRY,
        slot: Slot::Dur(
            |s| &mut s.service_discovery.health_check.retry_interval,
            true,
        ),
        env: None,
    },
    Key {
        path: HC_THRESHOLD,
        slot: Slot::Count(
            |s| &mut s.service_discovery.health_check.failure_threshold,
            1,
            100,
        ),
        env: None,
    },
    Key {
        path: HC_CONCURRENCY,
        slot: Slot::Count(
            |s| &mut s.service_discovery.health_check.concurrency,
            1,
            1024,
        ),
        env: None,
    },
    Key {
        path: HC_INSECURE,
        slot: Slot::Bool(|s| &mut s.service_discovery.health_check.insecure_skip_tls_verify),
        env: None,
    },
    Key {
        path: CM_NAME,
        slot: Slot::Str(|s| &mut s.configmap.name),
        env: Some("CONFIGMAP_NAME"),
    },
    Key {
        path: CM_NAMESPACE,
        slot: Slot::Str(|s| &mut s.configmap.namespace),
        env: Some("CONFIGMAP_NAMESPACE"),
    },
    Key {
        path: CM_OWNER,
        slot: Slot::OptStr(|s| &mut s.configmap.owner_deployment),
        env: None,
    },
    Key {
        path: LE_ENABLED,
        slot: Slot::Bool(|s| &mut s.leader_election.enabled),
        env: Some("LEADER_ELECTION_ENABLED"),
    },
    Key {
        path: LE_NAME,
        slot: Slot::Str(|s| &mut s.leader_election.lease_name),
        env: None,
    },
    Key {
        path: LE_NAMESPACE,
        slot: Slot::Str(|s| &mut s.leader_election.lease_namespace),
        env: None,
    },
    Key {
        path: LE_DURATION,
        slot: Slot::Dur(|s| &mut s.leader_election.lease_duration, false),
        env: Some("LEASE_DURATION"),
    },
    Key {
        path: LE_RENEW,
        slot: Slot::Dur(|s| &mut s.leader_election.renew_deadline, false),
        env: Some("RENEW_DEADLINE"),
    },
    Key {
        path: LE_RETRY,
        slot: Slot::Dur(|s| &mut s.leader_election.retry_period, false),
        env: Some("RETRY_PERIOD"),
    },
    Key {
        path: DET_DIR,
        slot: Slot::Path(|s| &mut s.detectors.dir),
        env: Some("DETECTORS_DIR"),
    },
    Key {
        path: DET_CACHE,
        slot: Slot::Path(|s| &mut s.detectors.cache_dir),
        env: Some("DETECTOR_CACHE_DIR"),
    },
    Key {
        path: SRV_LISTEN,
        slot: Slot::Addr(|s| &mut s.server.listen),
        env: None,
    },
    Key {
        path: SRV_METRICS,
        slot: Slot::Addr(|s| &mut s.server.metrics_listen),
        env: None,
    },
];

fn key(path: &str) -> Option<&'static Key> {
    KEYS.iter().find(|k| k.path == path)
}

/// Environment variables read by [`resolve`], with the key each sets (`POD_NAMESPACE` is the
/// default of `configmap.namespace`). For documentation and `config check`.
pub fn env_variables() -> Vec<(&'static str, &'static str)> {
    let mut out: Vec<_> = KEYS
        .iter()
        .filter_map(|k| k.env.map(|e| (e, k.path)))
        .collect();
    out.push(("POD_NAMESPACE", CM_NAMESPACE));
    out
}

// ---------------------------------------------------------------------------------------------
// Resolution

/// The outcome of [`resolve_detailed`]: the settings, where each value came from, and warnings
/// (deprecated keys) that do not stop the controller.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub settings: Settings,
    /// Key path → source, for every leaf key.
    pub sources: BTreeMap<&'static str, Source>,
    pub warnings: Vec<Issue>,
}

/// Resolves the settings: defaults, then the file (`(path, text)`, the path only names it in
/// messages), then the environment (`env("DISCOVERY_INTERVAL")` ...), then the flags.
pub fn resolve(
    file_text: Option<(&Path, &str)>,
    env: impl Fn(&str) -> Option<String>,
    flags: &RunArgs,
) -> Result<Settings, ConfigError> {
    resolve_detailed(file_text, env, flags).map(|r| r.settings)
}

/// [`resolve`], also telling where every value came from and the warnings.
pub fn resolve_detailed(
    file_text: Option<(&Path, &str)>,
    env: impl Fn(&str) -> Option<String>,
    flags: &RunArgs,
) -> Result<Resolved, ConfigError> {
    let mut r = Resolver {
        settings: Settings::default(),
        sources: KEYS.iter().map(|k| (k.path, Source::Default)).collect(),
        errors: Vec::new(),
        warnings: Vec::new(),
        failed: Vec::new(),
        lines: HashMap::new(),
    };
    if let Some((path, text)) = file_text {
        r.apply_file(path, text);
    }
    r.apply_env(&env);
    r.apply_flags(flags);
    r.derive_defaults(&env);
    r.validate();
    if r.errors.is_empty() {
        Ok(Resolved {
            settings: r.settings,
            sources: r.sources,
            warnings: r.warnings,
        })
    } else {
        Err(ConfigError {
            issues: r.errors,
            warnings: r.warnings,
        })
    }
}

struct Resolver {
    settings: Settings,
    sources: BTreeMap<&'static str, Source>,
    errors: Vec<Issue>,
    warnings: Vec<Issue>,
    /// Keys whose value could not be read: cross-key checks skip them.
    failed: Vec<&'static str>,
    /// Line index of the settings file (key path → line).
    lines: HashMap<String, usize>,
}

impl Resolver {
    fn error(&mut self, key: impl Into<String>, source: Source, message: impl Into<String>) {
        self.errors.push(Issue {
            key: key.into(),
            source,
            message: message.into(),
        });
    }

    fn source(&self, path: &str) -> Source {
        self.sources.get(path).cloned().unwrap_or(Source::Default)
    }

    // --- file layer ---

    fn apply_file(&mut self, path: &Path, text: &str) {
        let file_src = |line: Option<usize>| Source::File {
            path: path.to_path_buf(),
            line,
        };
        let root: Value = match serde_yaml::from_str(text) {
            Ok(v) => v,
            Err(e) => {
                let line = e.location().map(|l| l.line());
                self.error("(file)", file_src(line), format!("not valid YAML: {e}"));
                return;
            }
        };
        let lines = index_lines(text);
        let root = match root {
            Value::Null => return,
            Value::Mapping(m) => m,
            other => {
                self.error(
                    "(file)",
                    file_src(None),
                    format!(
                        "expected a mapping with service_discovery, configmap, ... at the top, found {}",
                        kind_of(&other)
                    ),
                );
                return;
            }
        };
        let mut flat_hc: Option<(Duration, Source)> = None;
        self.walk_mapping("", &root, &lines, path, &mut flat_hc);
        // The seeds' flat key and the nested one are the same setting.
        if let Some((d, src)) = flat_hc {
            let nested_src = self.source(HC_INTERVAL);
            if matches!(nested_src, Source::File { .. })
                && self.settings.service_discovery.health_check.interval != d
            {
                self.error(
                    SD_HC_FLAT,
                    src,
                    format!(
                        "{} conflicts with {HC_INTERVAL} ({}, {nested_src}); they are the same setting, keep one",
                        fmt_dur(d),
                        fmt_dur(self.settings.service_discovery.health_check.interval),
                    ),
                );
            } else {
                self.settings.service_discovery.health_check.interval = d;
                self.sources.insert(HC_INTERVAL, src);
            }
        }
        self.lines = lines;
    }

    fn walk_mapping(
        &mut self,
        prefix: &str,
        map: &serde_yaml::Mapping,
        lines: &HashMap<String, usize>,
        file: &Path,
        flat_hc: &mut Option<(Duration, Source)>,
    ) {
        let src = |key: &str| Source::File {
            path: file.to_path_buf(),
            line: line_of(lines, key),
        };
        for (k, v) in map {
            let name = match k {
                Value::String(s) => s.clone(),
                other => {
                    let shown = serde_yaml::to_string(other)
                        .map(|s| s.trim().to_string())
                        .unwrap_or_default();
                    let at = if prefix.is_empty() { "(file)" } else { prefix };
                    self.error(
                        at,
                        src(at),
                        format!("keys must be strings, found {shown:?}"),
                    );
                    continue;
                }
            };
            let path = if prefix.is_empty() {
                name.clone()
            } else {
                format!("{prefix}.{name}")
            };
            if SECTIONS.contains(&path.as_str()) {
                match v {
                    Value::Null => {}
                    Value::Mapping(m) => self.walk_mapping(&path, m, lines, file, flat_hc),
                    other => self.error(
                        path.clone(),
                        src(&path),
                        format!("expected a mapping of keys, found {}", kind_of(other)),
                    ),
                }
            } else if let Some(key) = key(&path) {
                if v.is_null() {
                    continue;
                }
                match set_from_yaml(key.slot, &mut self.settings, v) {
                    Ok(()) => {
                        self.sources.insert(key.path, src(&path));
                    }
                    Err(msg) => {
                        let line_key = first_bad_item(&path, key.slot, v);
                        self.failed.push(key.path);
                        self.error(path.clone(), src(&line_key), msg);
                    }
                }
            } else if path == SD_HC_FLAT {
                if v.is_null() {
                    continue;
                }
                match yaml_duration(v, false) {
                    Ok(d) => *flat_hc = Some((d, src(&path))),
                    Err(msg) => {
                        self.failed.push(HC_INTERVAL);
                        self.error(path.clone(), src(&path), msg);
                    }
                }
            } else if path == SD_CACHE_TTL {
                self.warnings.push(Issue {
                    key: path.clone(),
                    source: src(&path),
                    message:
                        "deprecated and ignored: discovery is watch-driven, there is no cache \
                              to expire (discovery_interval sets the full resync)"
                            .into(),
                });
            } else {
                let message = unknown_key_message(prefix, &name);
                self.error(path.clone(), src(&path), message);
            }
        }
    }

    // --- environment layer ---

    fn apply_env(&mut self, env: &impl Fn(&str) -> Option<String>) {
        for key in KEYS {
            let Some(var) = key.env else { continue };
            let Some(value) = env(var).filter(|v| !v.trim().is_empty()) else {
                continue;
            };
            match set_from_text(key.slot, &mut self.settings, &value) {
                Ok(()) => {
                    self.sources.insert(key.path, Source::Env(var.into()));
                }
                Err(msg) => {
                    self.failed.push(key.path);
                    self.error(key.path, Source::Env(var.into()), msg);
                }
            }
        }
    }

    // --- flag layer ---

    fn apply_flags(&mut self, f: &RunArgs) {
        let text_flags: [(&'static str, &str, Option<String>); 9] = [
            (SD_SELECTOR, "label-selector", f.label_selector.clone()),
            (CM_NAME, "configmap-name", f.configmap_name.clone()),
            (
                CM_NAMESPACE,
                "configmap-namespace",
                f.configmap_namespace.clone(),
            ),
            (CM_OWNER, "owner-deployment", f.owner_deployment.clone()),
            (
                DET_DIR,
                "detectors-dir",
                f.detectors_dir.as_ref().map(|p| p.display().to_string()),
            ),
            (
                DET_CACHE,
                "cache-dir",
                f.cache_dir.as_ref().map(|p| p.display().to_string()),
            ),
            (SRV_LISTEN, "listen", f.listen.clone()),
            (SRV_METRICS, "metrics-listen", f.metrics_listen.clone()),
            (SD_DOMAIN, "cluster-domain", f.cluster_domain.clone()),
        ];
        for (path, flag, value) in text_flags {
            let Some(value) = value else { continue };
            let Some(key) = key(path) else { continue };
            match set_from_text(key.slot, &mut self.settings, &value) {
                Ok(()) => {
                    self.sources.insert(key.path, Source::Flag(flag.into()));
                }
                Err(msg) => {
                    self.failed.push(key.path);
                    self.error(path, Source::Flag(flag.into()), msg);
                }
            }
        }
        let lists: [(&'static str, &str, &Vec<String>); 5] = [
            (SD_NAMESPACES, "namespace", &f.namespaces),
            (SD_EXCLUDE, "exclude-namespace", &f.exclude_namespaces),
            (
                SEC_CREDENTIALS,
                "credential-namespace",
                &f.credential_namespaces,
            ),
            (SEC_ENDPOINTS, "endpoint-namespace", &f.endpoint_namespaces),
            (SEC_EXTERNAL, "external-host", &f.external_hosts),
        ];
        for (path, flag, values) in lists {
            if values.is_empty() {
                continue;
            }
            let Some(Key {
                slot: Slot::List(acc),
                ..
            }) = key(path)
            else {
                continue;
            };
            *acc(&mut self.settings) = values.iter().map(|v| v.trim().to_string()).collect();
            self.sources.insert(path, Source::Flag(flag.into()));
        }
        let switches: [(&'static str, &str, bool, bool); 3] = [
            (
                LE_ENABLED,
                "no-leader-election",
                f.no_leader_election,
                false,
            ),
            (HC_ENABLED, "no-health-check", f.no_health_check, false),
            (
                HC_INSECURE,
                "insecure-skip-tls-verify",
                f.insecure_skip_tls_verify,
                true,
            ),
        ];
        for (path, flag, given, value) in switches {
            if !given {
                continue;
            }
            if let Some(Key {
                slot: Slot::Bool(acc),
                ..
            }) = key(path)
            {
                *acc(&mut self.settings) = value;
                self.sources.insert(path, Source::Flag(flag.into()));
            }
        }
    }

    // --- derived defaults ---

    fn derive_defaults(&mut self, env: &impl Fn(&str) -> Option<String>) {
        if self.settings.configmap.namespace.trim().is_empty() {
            match env("POD_NAMESPACE").map(|s| s.trim().to_string()) {
                Some(ns) if !ns.is_empty() => {
                    self.settings.configmap.namespace = ns;
                    self.sources
                        .insert(CM_NAMESPACE, Source::Env("POD_NAMESPACE".into()));
                }
                _ => {
                    self.settings.configmap.namespace = FALLBACK_NAMESPACE.into();
                    self.sources.insert(CM_NAMESPACE, Source::Default);
                }
            }
        }
        if self
            .settings
            .leader_election
            .lease_namespace
            .trim()
            .is_empty()
        {
            // Our own namespace (the ConfigMap may live in HolmesGPT's), else the ConfigMap's.
            match env("POD_NAMESPACE").map(|s| s.trim().to_string()) {
                Some(ns) if !ns.is_empty() => {
                    self.settings.leader_election.lease_namespace = ns;
                    self.sources
                        .insert(LE_NAMESPACE, Source::Env("POD_NAMESPACE".into()));
                }
                _ => {
                    self.settings.leader_election.lease_namespace =
                        self.settings.configmap.namespace.clone();
                    let src = self.source(CM_NAMESPACE);
                    self.sources.insert(LE_NAMESPACE, src);
                }
            }
        }
    }

    // --- validation of the merged values ---

    fn validate(&mut self) {
        let s = self.settings.clone();
        let sd = &s.service_discovery;
        let le = &s.leader_election;

        for key in KEYS {
            if let Slot::Dur(acc, zero_ok) = key.slot
                && !zero_ok
                && !self.failed.contains(&key.path)
            {
                let zero = acc(&mut self.settings).is_zero();
                if zero {
                    let src = self.source(key.path);
                    self.error(key.path, src, "must be greater than zero");
                    self.failed.push(key.path);
                }
            }
        }
        let ok = |r: &Resolver, keys: &[&str]| keys.iter().all(|k| !r.failed.contains(k));

        if ok(self, &[LE_RENEW, LE_DURATION]) && le.renew_deadline >= le.lease_duration {
            let msg = format!(
                "{} must be shorter than {LE_DURATION} ({}, {})",
                fmt_dur(le.renew_deadline),
                fmt_dur(le.lease_duration),
                self.source(LE_DURATION)
            );
            self.error(LE_RENEW, self.source(LE_RENEW), msg);
        }
        if ok(self, &[LE_RETRY, LE_RENEW]) && le.retry_period >= le.renew_deadline {
            let msg = format!(
                "{} must be shorter than {LE_RENEW} ({}, {})",
                fmt_dur(le.retry_period),
                fmt_dur(le.renew_deadline),
                self.source(LE_RENEW)
            );
            self.error(LE_RETRY, self.source(LE_RETRY), msg);
        }
        if ok(self, &[SD_DEBOUNCE, SD_DISCOVERY]) && sd.debounce >= sd.discovery_interval {
            let msg = format!(
                "{} must be shorter than {SD_DISCOVERY} ({}, {})",
                fmt_dur(sd.debounce),
                fmt_dur(sd.discovery_interval),
                self.source(SD_DISCOVERY)
            );
            self.error(SD_DEBOUNCE, self.source(SD_DEBOUNCE), msg);
        }

        for (path, list) in [
            (SD_NAMESPACES, &sd.namespaces),
            (SD_EXCLUDE, &sd.exclude_namespaces),
        ] {
            if self.failed.contains(&path) {
                continue;
            }
            for (i, pattern) in list.iter().enumerate() {
                if let Err(msg) = check_namespace_pattern(pattern) {
                    let src = self.item_source(path, i);
                    self.error(format!("{path}[{i}]"), src, msg);
                }
            }
        }
        for (path, list) in [
            (SEC_CREDENTIALS, &s.security.credential_namespaces),
            (SEC_ENDPOINTS, &s.security.endpoint_namespaces),
        ] {
            if self.failed.contains(&path) {
                continue;
            }
            for (i, ns) in list.iter().enumerate() {
                if let Err(msg) = k8s_names::dns1123_label(ns) {
                    let src = self.item_source(path, i);
                    self.error(format!("{path}[{i}]"), src, msg.to_string());
                }
            }
        }
        if !self.failed.contains(&SEC_EXTERNAL) {
            for (i, host) in s.security.external_hosts.iter().enumerate() {
                let (name, port) = host.rsplit_once(':').unwrap_or((host.as_str(), ""));
                let res = k8s_names::dns1123_subdomain(
                    &name.to_ascii_lowercase(),
                    k8s_names::SUBDOMAIN_MAX,
                )
                .map_err(|e| e.to_string())
                .and_then(|()| {
                    if port.is_empty() || port.parse::<u16>().is_ok_and(|p| p > 0) {
                        Ok(())
                    } else {
                        Err(format!("port {port:?} is not a number from 1 to 65535"))
                    }
                });
                if let Err(msg) = res {
                    let src = self.item_source(SEC_EXTERNAL, i);
                    self.error(format!("{SEC_EXTERNAL}[{i}]"), src, msg);
                }
            }
        }
        if let Some(sel) = &sd.label_selector
            && let Err(msg) = k8s_names::label_selector(sel)
        {
            self.error(SD_SELECTOR, self.source(SD_SELECTOR), msg.to_string());
        }
        if let Err(msg) = k8s_names::dns1123_subdomain(&sd.cluster_domain, k8s_names::SUBDOMAIN_MAX)
        {
            self.error(SD_DOMAIN, self.source(SD_DOMAIN), msg.to_string());
        }
        let names: [(&str, Option<&str>, bool); 5] = [
            (CM_NAME, Some(s.configmap.name.as_str()), false),
            (CM_NAMESPACE, Some(s.configmap.namespace.as_str()), true),
            (CM_OWNER, s.configmap.owner_deployment.as_deref(), false),
            (LE_NAME, Some(le.lease_name.as_str()), false),
            (LE_NAMESPACE, Some(le.lease_namespace.as_str()), true),
        ];
        for (path, value, label) in names {
            let Some(value) = value else { continue };
            let res = if label {
                k8s_names::dns1123_label(value)
            } else {
                k8s_names::dns1123_subdomain(value, k8s_names::SUBDOMAIN_MAX)
            };
            if let Err(msg) = res {
                self.error(path, self.source(path), msg.to_string());
            }
        }
        if ok(self, &[SRV_LISTEN, SRV_METRICS])
            && s.server.listen == s.server.metrics_listen
            && s.server.listen.port() != 0
        {
            let msg = format!(
                "{} is also {SRV_LISTEN} ({}); the two endpoints need different addresses",
                s.server.metrics_listen,
                self.source(SRV_LISTEN)
            );
            self.error(SRV_METRICS, self.source(SRV_METRICS), msg);
        }
    }

    /// The source of item `index` of list `path`: its own line when it came from the file.
    fn item_source(&self, path: &str, index: usize) -> Source {
        match self.source(path) {
            Source::File { path: file, line } => Source::File {
                path: file,
                line: line_of(&self.lines, &format!("{path}[{index}]")).or(line),
            },
            other => other,
        }
    }
}

/// For a list with a bad item, the line index key of that item (`path[i]`), else the key.
fn first_bad_item(path: &str, slot: Slot, v: &Value) -> String {
    if let (Slot::List(_), Value::Sequence(items)) = (slot, v)
        && let Some(i) = items.iter().position(|it| yaml_scalar_string(it).is_none())
    {
        return format!("{path}[{i}]");
    }
    path.to_string()
}

fn set_from_yaml(slot: Slot, s: &mut Settings, v: &Value) -> Result<(), String> {
    match slot {
        Slot::Dur(acc, zero_ok) => *acc(s) = yaml_duration(v, zero_ok)?,
        Slot::Bool(acc) => {
            *acc(s) = v
                .as_bool()
                .ok_or_else(|| format!("expected true or false, found {}", describe(v)))?
        }
        Slot::Count(acc, min, max) => {
            let n = v
                .as_u64()
                .ok_or_else(|| format!("expected a whole number, found {}", describe(v)))?;
            *acc(s) = check_count(n, min, max)?;
        }
        Slot::Str(acc) => *acc(s) = yaml_string(v)?,
        Slot::OptStr(acc) => {
            let text = yaml_string(v)?;
            *acc(s) = (!text.trim().is_empty()).then(|| text.trim().to_string());
        }
        Slot::List(acc) => {
            let Value::Sequence(items) = v else {
                return Err(format!(
                    "expected a list (e.g. [monitoring, team-*]), found {}",
                    describe(v)
                ));
            };
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                match yaml_scalar_string(item) {
                    Some(text) => out.push(text),
                    None => {
                        return Err(format!(
                            "item {i}: expected a namespace name or pattern, found {}",
                            describe(item)
                        ));
                    }
                }
            }
            *acc(s) = out;
        }
        Slot::Path(acc) => {
            let text = yaml_string(v)?;
            *acc(s) = (!text.trim().is_empty()).then(|| PathBuf::from(text.trim()));
        }
        Slot::Addr(acc) => *acc(s) = parse_addr(&yaml_string(v)?)?,
    }
    Ok(())
}

fn set_from_text(slot: Slot, s: &mut Settings, text: &str) -> Result<(), String> {
    let t = text.trim();
    match slot {
        Slot::Dur(acc, zero_ok) => *acc(s) = parse_duration(t, zero_ok)?,
        Slot::Bool(acc) => *acc(s) = parse_bool(t)?,
        Slot::Count(acc, min, max) => {
            let n: u64 = t
                .parse()
                .map_err(|_| format!("{t:?} is not a whole number"))?;
            *acc(s) = check_count(n, min, max)?;
        }
        Slot::Str(acc) => *acc(s) = t.to_string(),
        Slot::OptStr(acc) => *acc(s) = (!t.is_empty()).then(|| t.to_string()),
        Slot::List(acc) => {
            *acc(s) = t
                .split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(String::from)
                .collect()
        }
        Slot::Path(acc) => *acc(s) = (!t.is_empty()).then(|| PathBuf::from(t)),
        Slot::Addr(acc) => *acc(s) = parse_addr(t)?,
    }
    Ok(())
}

fn check_count(n: u64, min: u32, max: u32) -> Result<u32, String> {
    u32::try_from(n)
        .ok()
        .filter(|n| (min..=max).contains(n))
        .ok_or_else(|| format!("{n} is out of range ({min} to {max})"))
}

fn yaml_string(v: &Value) -> Result<String, String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        other => Err(format!("expected a string, found {}", describe(other))),
    }
}

/// Strings, and numbers written without quotes (a namespace may be called `2024`).
fn yaml_scalar_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn yaml_duration(v: &Value, zero_ok: bool) -> Result<Duration, String> {
    match v {
        Value::String(s) => parse_duration(s.trim(), zero_ok),
        Value::Number(n) => Err(format!("{n} has no unit; write e.g. \"{n}s\" or \"{n}ms\"")),
        other => Err(format!(
            "expected a duration (e.g. 30s, 5m), found {}",
            describe(other)
        )),
    }
}

/// `250ms`, `30s`, `5m`, `1h 30m` (humantime).
pub fn parse_duration(text: &str, zero_ok: bool) -> Result<Duration, String> {
    let t = text.trim();
    if t.starts_with('-') {
        return Err(format!("{t:?} is negative; durations must be positive"));
    }
    if !t.is_empty() && t.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return Err(format!(
            "{t:?} has no unit; write e.g. \"{t}s\" or \"{t}ms\""
        ));
    }
    let d = humantime::parse_duration(t)
        .map_err(|_| format!("{t:?} is not a duration (e.g. 30s, 5m)"))?;
    if d.is_zero() && !zero_ok {
        return Err(format!("{t:?}: must be greater than zero"));
    }
    Ok(d)
}

/// `true`/`false`/`1`/`0` (case-insensitive), as environment variables give booleans.
pub fn parse_bool(text: &str) -> Result<bool, String> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(format!(
            "{text:?} is not a boolean (use true, false, 1 or 0)"
        )),
    }
}

fn parse_addr(text: &str) -> Result<SocketAddr, String> {
    let t = text.trim();
    t.parse::<SocketAddr>().map_err(|_| {
        if let Some(port) = t.strip_prefix(':') {
            format!("{t:?} is not a listen address; write \"0.0.0.0:{port}\" or \"[::]:{port}\"")
        } else {
            format!("{t:?} is not a listen address (IP:PORT, e.g. 0.0.0.0:8080 or [::]:8080)")
        }
    })
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a tagged value",
    }
}

fn describe(v: &Value) -> String {
    match v {
        Value::Bool(b) => format!("the boolean {b}"),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) => format!("the string {s:?}"),
        other => kind_of(other).to_string(),
    }
}

fn fmt_dur(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

// ---------------------------------------------------------------------------------------------
// Unknown keys: "did you mean"

fn unknown_key_message(prefix: &str, name: &str) -> String {
    let siblings: Vec<&'static str> = KEYS
        .iter()
        .map(|k| k.path)
        .chain(SECTIONS.iter().copied())
        .chain([SD_HC_FLAT])
        .filter_map(|p| {
            let parent = p.rsplit_once('.').map_or("", |(a, _)| a);
            (parent == prefix).then(|| p.rsplit('.').next().unwrap_or(p))
        })
        .collect();
    // The same name somewhere else: a key put in the wrong section.
    let elsewhere: Vec<&'static str> = KEYS
        .iter()
        .map(|k| k.path)
        .chain(SECTIONS.iter().copied())
        .filter(|p| p.rsplit('.').next() == Some(name))
        .collect();
    if let Some(p) = elsewhere.first() {
        let section = p.rsplit_once('.').map_or("the top level", |(a, _)| a);
        return format!("unknown key; did you mean {p}? (it belongs under {section})");
    }
    let best = siblings
        .iter()
        .map(|s| (edit_distance(name, s), *s))
        .min_by_key(|(d, _)| *d);
    if let Some((d, s)) = best
        && d <= (name.len() / 3).max(2)
    {
        return format!("unknown key; did you mean {s}?");
    }
    let mut known = siblings.clone();
    known.sort_unstable();
    format!("unknown key (known keys here: {})", known.join(", "))
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

// ---------------------------------------------------------------------------------------------
// Line numbers: a light index of block-style keys (`a:\n  b: 1` gives `a` → 1, `a.b` → 2) and
// list items (`a.b[0]`). Flow style (`{a: 1}`) is not indexed: those errors carry no line.

fn index_lines(text: &str) -> HashMap<String, usize> {
    let mut out = HashMap::new();
    let mut stack: Vec<(usize, String)> = Vec::new();
    let mut items: HashMap<String, usize> = HashMap::new();
    let path_of = |stack: &[(usize, String)]| {
        stack
            .iter()
            .map(|(_, k)| k.as_str())
            .collect::<Vec<_>>()
            .join(".")
    };
    for (i, raw) in text.lines().enumerate() {
        let line_no = i + 1;
        let trimmed = raw.trim_start();
        let indent = raw.len() - trimmed.len();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if trimmed.starts_with("---") || trimmed.starts_with("...") {
            stack.clear();
            continue;
        }
        if trimmed == "-" || trimmed.starts_with("- ") {
            while stack.last().is_some_and(|(n, _)| *n > indent) {
                stack.pop();
            }
            let parent = path_of(&stack);
            let n = items.entry(parent.clone()).or_insert(0);
            out.entry(format!("{parent}[{n}]")).or_insert(line_no);
            *n += 1;
            continue;
        }
        let Some(key) = line_key(trimmed) else {
            continue;
        };
        while stack.last().is_some_and(|(n, _)| *n >= indent) {
            stack.pop();
        }
        stack.push((indent, key));
        out.entry(path_of(&stack)).or_insert(line_no);
    }
    out
}

/// The key of a `key: value` line, unquoted.
fn line_key(trimmed: &str) -> Option<String> {
    if let Some(q) = trimmed.chars().next().filter(|c| *c == '"' || *c == '\'') {
        let rest = &trimmed[1..];
        let end = rest.find(q)?;
        let after = rest[end + 1..].trim_start();
        return after.starts_with(':').then(|| rest[..end].to_string());
    }
    let bytes = trimmed.as_bytes();
    for (i, b) in bytes.iter().enumerate() {
        match b {
            b'#' | b'{' | b'[' => return None,
            b':' if bytes.get(i + 1).is_none_or(|c| c.is_ascii_whitespace()) => {
                return Some(trimmed[..i].trim_end().to_string());
            }
            _ => {}
        }
    }
    None
}

fn line_of(lines: &HashMap<String, usize>, key: &str) -> Option<usize> {
    if let Some(l) = lines.get(key) {
        return Some(*l);
    }
    // `a.b[3]` without an indexed item (flow list): the list's key.
    key.split_once('[').and_then(|(k, _)| lines.get(k).copied())
}

// ---------------------------------------------------------------------------------------------
// Value checks

/// A namespace or a pattern with `*` and `?`.
fn check_namespace_pattern(p: &str) -> Result<(), String> {
    if p.is_empty() {
        return Err("empty namespace pattern".into());
    }
    if let Some(c) = p
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '*' | '?')))
    {
        return Err(format!(
            "{p:?} is not a namespace pattern: {c:?} is not allowed (namespaces use a-z, 0-9 and \
             '-'; the wildcards are '*' and '?', not regular expressions)"
        ));
    }
    if p.len() > 63 {
        return Err(format!("{p:?} is longer than a namespace (63 characters)"));
    }
    if !is_wildcard(p) {
        k8s_names::dns1123_label(p).map_err(|e| e.to_string())?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Serialisation helpers

fn ser_duration<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&fmt_dur(*d))
}

fn ser_opt_string<S: Serializer>(v: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(v.as_deref().unwrap_or(""))
}

fn ser_opt_path<S: Serializer>(v: &Option<PathBuf>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(
        &v.as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
    )
}

// ---------------------------------------------------------------------------------------------
// I/O: the controller's loader and `config check`

/// The process environment, with the pod's namespace file standing in for an unset
/// `POD_NAMESPACE`.
fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok().or_else(|| {
        (name == "POD_NAMESPACE")
            .then(|| std::fs::read_to_string(SERVICE_ACCOUNT_NAMESPACE_FILE).ok())
            .flatten()
            .map(|s| s.trim().to_string())
    })
}

fn read_settings_file(path: &Path) -> anyhow::Result<String> {
    if path.as_os_str() == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| anyhow::anyhow!("cannot read settings from stdin: {e}"))?;
        return Ok(text);
    }
    std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("cannot read settings file {}: {e}", path.display()))
}

/// The controller's settings: `--config` file (if any), the process environment, the flags.
/// Warnings (deprecated keys) are logged.
pub fn load(args: &RunArgs) -> anyhow::Result<Settings> {
    let text = args.config.as_deref().map(read_settings_file).transpose()?;
    let file = args.config.as_deref().zip(text.as_deref());
    let resolved = resolve_detailed(file, process_env, args)?;
    for w in &resolved.warnings {
        tracing::warn!("{w}");
    }
    for (key, source) in &resolved.sources {
        if !matches!(source, Source::Default) {
            tracing::debug!(key, %source, "setting");
        }
    }
    Ok(resolved.settings)
}

/// `dynamic-toolset config check`.
pub fn check(args: &CheckArgs) -> anyhow::Result<ExitCode> {
    let text = read_settings_file(&args.file)?;
    let env = |name: &str| if args.no_env { None } else { process_env(name) };
    match resolve_detailed(Some((&args.file, &text)), env, &RunArgs::default()) {
        Ok(resolved) => {
            for w in &resolved.warnings {
                eprintln!("warning: {w}");
            }
            for (key, source) in &resolved.sources {
                if let Source::Env(var) = source {
                    eprintln!("note: {key} from env {var}");
                }
            }
            print!("{}", resolved.settings.to_yaml());
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            for w in &e.warnings {
                eprintln!("warning: {w}");
            }
            for issue in &e.issues {
                eprintln!("error: {issue}");
            }
            let n = e.issues.len();
            eprintln!(
                "{}: {n} error{}; the controller would refuse to start",
                args.file.display(),
                if n == 1 { "" } else { "s" }
            );
            Ok(ExitCode::from(1))
        }
    }
}

/// A complete, commented settings file holding the defaults. Valid as is (a test checks it).
pub const EXAMPLE_CONFIG: &str = r#"# dynamic-toolset settings: the `config.yaml` key of ConfigMap kubernaut-dynamic-toolset-config,
# passed with `--config FILE`. Every key is optional; the values below are the defaults.
# Environment variables override the file, flags override both. Durations: 250ms, 30s, 5m, 1h.
# Validate with: dynamic-toolset config check config.yaml
service_discovery:
  # Full resync of every Service on top of the watch.            env DISCOVERY_INTERVAL
  discovery_interval: 5m
  # Periodic drift check of the generated ConfigMap (it is also watched).
  #                                                               env RECONCILIATION_INTERVAL
  reconciliation_interval: 30s
  # Bursts of Service events closer than this become one discovery run (0s allowed).
  debounce: 200ms
  # Namespaces to watch, wildcards * and ? (e.g. team-*); empty = all namespaces.
  #                                     env NAMESPACES (comma separated), flag --namespace
  namespaces: []
  # Namespaces never watched (wildcards); wins over `namespaces`.  flag --exclude-namespace
  exclude_namespaces: []
  # Kubernetes label selector for the Service watch, e.g. "app.kubernetes.io/part-of=monitoring";
  # empty = every Service.                                        flag --label-selector
  label_selector: ""
  # Cluster DNS domain used in endpoint URLs.                     flag --cluster-domain
  cluster_domain: cluster.local
  # The seeds' flat key `health_check_interval: 60s` is accepted as well (same as
  # health_check.interval). `cache_ttl` is accepted, ignored, and warned about.
  health_check:
    # Probe endpoints before publishing them.   env HEALTH_CHECK_ENABLED, flag --no-health-check
    enabled: true
    # Re-probe period.                                            env HEALTH_CHECK_INTERVAL
    interval: 60s
    # Timeout of one probe attempt.
    timeout: 5s
    # Attempts per round before an endpoint counts as failed (1-10).
    attempts: 3
    # Pause between attempts (0s allowed).
    retry_interval: 1s
    # Consecutive failed rounds before a healthy toolset is removed (1-100).
    failure_threshold: 3
    # Probes in flight at once (1-1024).
    concurrency: 16
    # Skip TLS certificate verification (self-signed backends). flag --insecure-skip-tls-verify
    insecure_skip_tls_verify: false
configmap:
  # The generated ConfigMap (toolsets.yaml, overrides.yaml, discovery.json).
  #                                                   env CONFIGMAP_NAME, flag --configmap-name
  name: kubernaut-toolset-config
  # Empty = the pod's own namespace (env POD_NAMESPACE, else the service account namespace,
  # else kubernaut-system).               env CONFIGMAP_NAMESPACE, flag --configmap-namespace
  namespace: ""
  # When set, an ownerReference to this Deployment (same namespace) is added.
  #                                                                 flag --owner-deployment
  owner_deployment: ""
leader_election:
  # Only the holder of the Lease writes.   env LEADER_ELECTION_ENABLED, flag --no-leader-election
  enabled: true
  lease_name: dynamic-toolset-leader
  # Empty = the pod's own namespace (env POD_NAMESPACE, else the service account namespace),
  # else the ConfigMap's namespace.
  lease_namespace: ""
  # Validity of the Lease without renewal.                        env LEASE_DURATION
  lease_duration: 15s
  # The leader steps down after failing to renew for this long (< lease_duration).
  #                                                               env RENEW_DEADLINE
  renew_deadline: 10s
  # Period of acquire/renew attempts (< renew_deadline).          env RETRY_PERIOD
  retry_period: 2s
detectors:
  # Directory of third-party detector components (*.wasm); empty = bundled detectors only.
  #                                                     env DETECTORS_DIR, flag --detectors-dir
  dir: ""
  # Directory for precompiled detectors (faster starts); empty = off.
  #                                                   env DETECTOR_CACHE_DIR, flag --cache-dir
  cache_dir: ""
security:
  # What the validation gate lets through beyond its baseline; each entry widens who can steer
  # HolmesGPT. Namespaces whose backends receive HolmesGPT's credentials ({{ env.GRAFANA_API_KEY }},
  # Elasticsearch/OpenSearch passwords); elsewhere toolsets are emitted without them.
  #                                     env CREDENTIAL_NAMESPACES, flag --credential-namespace
  credential_namespaces: []
  # Namespaces an annotated endpoint may point into besides its own Service's.
  #                                       env ENDPOINT_NAMESPACES, flag --endpoint-namespace
  endpoint_namespaces: []
  # Off-cluster hosts (host or host:port) an endpoint may name.
  #                                                 env EXTERNAL_HOSTS, flag --external-host
  external_hosts: []
server:
  # Health endpoints (/healthz, /readyz).                         flag --listen
  listen: 0.0.0.0:8080
  # Prometheus metrics (/metrics).                                flag --metrics-listen
  metrics_listen: 0.0.0.0:9090
"#;

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    fn file(text: &str) -> Option<(&'static Path, &str)> {
        Some((Path::new("config.yaml"), text))
    }

    fn err(text: &str) -> ConfigError {
        resolve(file(text), no_env, &RunArgs::default()).unwrap_err()
    }

    fn ok(text: &str) -> Settings {
        resolve(file(text), no_env, &RunArgs::default()).unwrap()
    }

    #[test]
    fn defaults_without_file_env_or_flags() {
        let s = resolve(None, no_env, &RunArgs::default()).unwrap();
        assert_eq!(
            s.service_discovery.discovery_interval,
            Duration::from_secs(300)
        );
        assert_eq!(
            s.service_discovery.reconciliation_interval,
            Duration::from_secs(30)
        );
        assert_eq!(s.service_discovery.debounce, Duration::from_millis(200));
        assert_eq!(
            s.service_discovery.health_check.interval,
            Duration::from_secs(60)
        );
        assert_eq!(s.configmap.name, "kubernaut-toolset-config");
        assert_eq!(s.configmap.namespace, "kubernaut-system");
        assert_eq!(s.leader_election.lease_namespace, "kubernaut-system");
        assert_eq!(s.leader_election.lease_duration, Duration::from_secs(15));
        assert_eq!(s.server.listen.to_string(), "0.0.0.0:8080");
        assert!(s.service_discovery.label_selector.is_none());
    }

    #[test]
    fn example_config_is_valid_and_holds_the_defaults() {
        let from_example = ok(EXAMPLE_CONFIG);
        let defaults = resolve(None, no_env, &RunArgs::default()).unwrap();
        assert_eq!(from_example, defaults);
        let r = resolve_detailed(file(EXAMPLE_CONFIG), no_env, &RunArgs::default()).unwrap();
        assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    }

    #[test]
    fn every_key_is_in_the_example() {
        let lines = index_lines(EXAMPLE_CONFIG);
        for k in KEYS {
            assert!(
                lines.contains_key(k.path),
                "{} missing from EXAMPLE_CONFIG",
                k.path
            );
        }
    }

    #[test]
    fn effective_yaml_round_trips() {
        let s = resolve(
            file("service_discovery:\n  namespaces: [team-*]\n  label_selector: a=b\n"),
            env_of(&[("POD_NAMESPACE", "ops"), ("LEASE_DURATION", "1m")]),
            &RunArgs::default(),
        )
        .unwrap();
        let yaml = s.to_yaml();
        assert!(yaml.contains("lease_duration: 1m"), "{yaml}");
        assert!(yaml.contains("namespace: ops"), "{yaml}");
        let again = Settings::from_yaml(Path::new("out.yaml"), &yaml).unwrap();
        assert_eq!(again, s);
    }

    #[test]
    fn seeds_example_is_accepted_with_a_warning_for_cache_ttl() {
        let text = "service_discovery:\n  discovery_interval: \"10m\"\n  cache_ttl: \"15m\"\n  health_check_interval: \"60s\"\n  namespaces:\n    - \"monitoring\"\n    - \"observability\"\n";
        let r = resolve_detailed(file(text), no_env, &RunArgs::default()).unwrap();
        assert_eq!(
            r.settings.service_discovery.discovery_interval,
            Duration::from_secs(600)
        );
        assert_eq!(
            r.settings.service_discovery.namespaces,
            ["monitoring", "observability"]
        );
        assert_eq!(r.warnings.len(), 1);
        assert_eq!(r.warnings[0].key, "service_discovery.cache_ttl");
        assert_eq!(r.warnings[0].to_string().split(':').nth(1), Some("3"));
        assert_eq!(
            r.sources[HC_INTERVAL],
            Source::File {
                path: "config.yaml".into(),
                line: Some(4)
            }
        );
    }

    #[test]
    fn flat_and_nested_health_interval_must_agree() {
        let same = "service_discovery:\n  health_check_interval: 30s\n  health_check:\n    interval: 30s\n";
        assert_eq!(
            ok(same).service_discovery.health_check.interval,
            Duration::from_secs(30)
        );
        let e = err(
            "service_discovery:\n  health_check_interval: 30s\n  health_check:\n    interval: 1m\n",
        );
        assert!(e.mentions(SD_HC_FLAT), "{e}");
    }

    #[test]
    fn layers_file_then_env_then_flags() {
        let text = "service_discovery:\n  discovery_interval: 1m\n  namespaces: [a]\nconfigmap:\n  name: from-file\nleader_election:\n  enabled: true\n";
        // File alone.
        let s = resolve(file(text), no_env, &RunArgs::default()).unwrap();
        assert_eq!(
            s.service_discovery.discovery_interval,
            Duration::from_secs(60)
        );
        assert_eq!(s.configmap.name, "from-file");
        // Env over file.
        let env = env_of(&[
            ("DISCOVERY_INTERVAL", "2m"),
            ("NAMESPACES", "b, c ,"),
            ("CONFIGMAP_NAME", "from-env"),
            ("LEADER_ELECTION_ENABLED", "0"),
            ("POD_NAMESPACE", "pod-ns"),
        ]);
        let r = resolve_detailed(file(text), &env, &RunArgs::default()).unwrap();
        let s = &r.settings;
        assert_eq!(
            s.service_discovery.discovery_interval,
            Duration::from_secs(120)
        );
        assert_eq!(s.service_discovery.namespaces, ["b", "c"]);
        assert_eq!(s.configmap.name, "from-env");
        assert!(!s.leader_election.enabled);
        assert_eq!(s.configmap.namespace, "pod-ns");
        assert_eq!(s.leader_election.lease_namespace, "pod-ns");
        assert_eq!(
            r.sources[SD_DISCOVERY],
            Source::Env("DISCOVERY_INTERVAL".into())
        );
        // Flags over env.
        let flags = RunArgs {
            namespaces: vec!["d".into()],
            configmap_name: Some("from-flag".into()),
            configmap_namespace: Some("flag-ns".into()),
            no_health_check: true,
            listen: Some("127.0.0.1:1".into()),
            ..RunArgs::default()
        };
        let r = resolve_detailed(file(text), &env, &flags).unwrap();
        let s = &r.settings;
        assert_eq!(s.service_discovery.namespaces, ["d"]);
        assert_eq!(s.configmap.name, "from-flag");
        assert_eq!(s.configmap.namespace, "flag-ns");
        // The Lease stays in the pod's namespace when the ConfigMap goes elsewhere.
        assert_eq!(s.leader_election.lease_namespace, "pod-ns");
        assert!(!s.service_discovery.health_check.enabled);
        assert_eq!(s.server.listen.to_string(), "127.0.0.1:1");
        assert_eq!(r.sources[CM_NAME], Source::Flag("configmap-name".into()));
        // Env that is empty counts as unset.
        let s = resolve(
            file(text),
            env_of(&[("DISCOVERY_INTERVAL", "")]),
            &RunArgs::default(),
        )
        .unwrap();
        assert_eq!(
            s.service_discovery.discovery_interval,
            Duration::from_secs(60)
        );
    }

    #[test]
    fn configmap_namespace_in_file_beats_pod_namespace() {
        let s = resolve(
            file("configmap:\n  namespace: fixed\nleader_election:\n  lease_namespace: leases\n"),
            env_of(&[("POD_NAMESPACE", "pod-ns")]),
            &RunArgs::default(),
        )
        .unwrap();
        assert_eq!(s.configmap.namespace, "fixed");
        assert_eq!(s.leader_election.lease_namespace, "leases");
    }

    #[test]
    fn configmap_in_another_namespace_keeps_the_lease_in_the_pods() {
        let s = resolve(
            file("configmap:\n  namespace: holmes\n"),
            env_of(&[("POD_NAMESPACE", "kubernaut-system")]),
            &RunArgs::default(),
        )
        .unwrap();
        assert_eq!(s.configmap.namespace, "holmes");
        assert_eq!(s.leader_election.lease_namespace, "kubernaut-system");
        // Without a pod namespace, the ConfigMap's.
        let s = resolve(
            file("configmap:\n  namespace: holmes\n"),
            env_of(&[]),
            &RunArgs::default(),
        )
        .unwrap();
        assert_eq!(s.leader_election.lease_namespace, "holmes");
    }

    #[test]
    fn bad_duration_names_key_line_and_example() {
        let e = err("# settings\nservice_discovery:\n  discovery_interval: 5x\n");
        assert_eq!(e.issues.len(), 1);
        assert_eq!(
            e.issues[0].to_string(),
            "config.yaml:3: service_discovery.discovery_interval: \"5x\" is not a duration (e.g. 30s, 5m)"
        );
    }

    #[test]
    fn durations_zero_negative_and_unitless() {
        let e = err(
            "service_discovery:\n  reconciliation_interval: 0s\n  discovery_interval: -5s\n  health_check:\n    timeout: 5\n",
        );
        assert!(e.mentions(SD_RECONCILE), "{e}");
        assert!(e.mentions(SD_DISCOVERY), "{e}");
        assert!(e.mentions(HC_TIMEOUT), "{e}");
        assert_eq!(e.issues.len(), 3, "{e}");
        assert!(e.to_string().contains("greater than zero"), "{e}");
        assert!(e.to_string().contains("negative"), "{e}");
        assert!(e.to_string().contains("no unit"), "{e}");
        // Zero is fine where it means "no pause".
        let s =
            ok("service_discovery:\n  debounce: 0s\n  health_check:\n    retry_interval: 0ms\n");
        assert!(s.service_discovery.debounce.is_zero());
    }

    #[test]
    fn every_error_is_collected() {
        let text = "\
service_discovery:
  discovery_intervall: 5m
  reconciliation_interval: soon
  namespaces: [Team_A, ok-ns, \"team-*\"]
  label_selector: \"app in (a,b\"
  health_check:
    enabled: yes
    attempts: 0
leader_election:
  lease_duration: 10s
  renew_deadline: 10s
  retry_period: 20s
server:
  listen: \":8080\"
  metrics_listen: localhost
bogus: 1
";
        let e = err(text);
        for key in [
            "service_discovery.discovery_intervall",
            SD_RECONCILE,
            "service_discovery.namespaces[0]",
            SD_SELECTOR,
            HC_ENABLED,
            HC_ATTEMPTS,
            LE_RENEW,
            LE_RETRY,
            SRV_LISTEN,
            SRV_METRICS,
            "bogus",
        ] {
            assert!(e.mentions(key), "{key} not reported in\n{e}");
        }
        assert_eq!(e.issues.len(), 11, "{e}");
        let line = |key: &str| {
            e.issues
                .iter()
                .find(|i| i.key == key)
                .and_then(|i| match &i.source {
                    Source::File { line, .. } => *line,
                    _ => None,
                })
        };
        assert_eq!(line("service_discovery.discovery_intervall"), Some(2));
        assert_eq!(line(HC_ENABLED), Some(7));
        assert_eq!(line(LE_RETRY), Some(12));
        assert_eq!(line("bogus"), Some(16));
        assert!(
            e.to_string().contains("did you mean discovery_interval?"),
            "{e}"
        );
    }

    #[test]
    fn unknown_key_in_the_wrong_section_points_to_the_right_one() {
        let e = err("service_discovery:\n  lease_duration: 15s\n");
        assert!(
            e.issues[0]
                .message
                .contains("did you mean leader_election.lease_duration?"),
            "{e}"
        );
        let e = err("discovery_interval: 5m\n");
        assert!(
            e.issues[0]
                .message
                .contains("service_discovery.discovery_interval"),
            "{e}"
        );
        let e = err("server:\n  zzzzzzzzzz: 1\n");
        assert!(
            e.issues[0]
                .message
                .contains("known keys here: listen, metrics_listen"),
            "{e}"
        );
    }

    #[test]
    fn leader_election_ordering_names_both_sources() {
        let e = resolve(
            None,
            env_of(&[("LEASE_DURATION", "5s")]),
            &RunArgs::default(),
        )
        .unwrap_err();
        assert_eq!(e.issues.len(), 1, "{e}");
        assert_eq!(
            e.issues[0].to_string(),
            "default: leader_election.renew_deadline: 10s must be shorter than \
             leader_election.lease_duration (5s, env LEASE_DURATION)"
        );
    }

    #[test]
    fn env_errors_name_the_variable() {
        let e = resolve(
            None,
            env_of(&[
                ("HEALTH_CHECK_ENABLED", "yes"),
                ("DISCOVERY_INTERVAL", "5x"),
                ("NAMESPACES", "ok,Bad.NS"),
            ]),
            &RunArgs::default(),
        )
        .unwrap_err();
        assert_eq!(e.issues.len(), 3, "{e}");
        let text = e.to_string();
        assert!(text.contains("env HEALTH_CHECK_ENABLED: service_discovery.health_check.enabled: \"yes\" is not a boolean"), "{text}");
        assert!(
            text.contains("env DISCOVERY_INTERVAL: service_discovery.discovery_interval"),
            "{text}"
        );
        assert!(
            text.contains("env NAMESPACES: service_discovery.namespaces[1]"),
            "{text}"
        );
        for (v, b) in [("TRUE", true), ("1", true), ("false", false), ("0", false)] {
            let s = resolve(
                None,
                env_of(&[("HEALTH_CHECK_ENABLED", v)]),
                &RunArgs::default(),
            )
            .unwrap();
            assert_eq!(s.service_discovery.health_check.enabled, b, "{v}");
        }
    }

    #[test]
    fn flag_errors_name_the_flag() {
        let flags = RunArgs {
            metrics_listen: Some("nope".into()),
            label_selector: Some("a==".into()),
            exclude_namespaces: vec!["kube-.*".into()],
            cluster_domain: Some("Cluster_Local".into()),
            ..RunArgs::default()
        };
        let e = resolve(None, no_env, &flags).unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("flag --metrics-listen: server.metrics_listen"),
            "{text}"
        );
        assert!(
            text.contains("flag --exclude-namespace: service_discovery.exclude_namespaces[0]"),
            "{text}"
        );
        assert!(
            text.contains("flag --cluster-domain: service_discovery.cluster_domain"),
            "{text}"
        );
        // `a==` is a valid selector (empty value), so only three errors.
        assert_eq!(e.issues.len(), 3, "{text}");
    }

    #[test]
    fn same_listen_addresses_conflict() {
        let e = err("server:\n  listen: 0.0.0.0:9090\n");
        assert!(e.mentions(SRV_METRICS), "{e}");
        ok("server:\n  listen: 127.0.0.1:0\n  metrics_listen: 127.0.0.1:0\n");
    }

    #[test]
    fn names_are_checked() {
        let e = err(
            "configmap:\n  name: Bad_Name\n  namespace: a.b\n  owner_deployment: -x\nleader_election:\n  lease_name: \"\"\n",
        );
        for k in [CM_NAME, CM_NAMESPACE, CM_OWNER, LE_NAME] {
            assert!(e.mentions(k), "{k}: {e}");
        }
    }

    #[test]
    fn wrong_types_are_reported() {
        let e = err(
            "service_discovery: 5\nconfigmap:\n  name: [a]\nserver:\n  listen: 8080\ndetectors:\n  dir: 3\n",
        );
        for k in ["service_discovery", CM_NAME, SRV_LISTEN, DET_DIR] {
            assert!(e.mentions(k), "{k}: {e}");
        }
        let e = err("- a\n- b\n");
        assert!(e.mentions("(file)"), "{e}");
        let e = err("service_discovery:\n  namespaces: monitoring\n");
        assert!(e.to_string().contains("expected a list"), "{e}");
    }

    #[test]
    fn syntax_error_has_a_line() {
        let e = err("service_discovery:\n  namespaces: [a\n  debounce: 1s\n");
        assert_eq!(e.issues.len(), 1);
        assert!(
            matches!(e.issues[0].source, Source::File { line: Some(_), .. }),
            "{e}"
        );
    }

    #[test]
    fn empty_file_and_nulls_keep_defaults() {
        assert_eq!(ok(""), resolve(None, no_env, &RunArgs::default()).unwrap());
        assert_eq!(ok("# only comments\n"), ok(""));
        let s = ok("service_discovery:\n  label_selector:\n  namespaces:\nconfigmap:\n");
        assert!(s.service_discovery.label_selector.is_none());
    }

    #[test]
    fn wildcards() {
        assert!(wildcard_match("team-*", "team-a"));
        assert!(wildcard_match("team-*", "team-"));
        assert!(!wildcard_match("team-*", "team"));
        assert!(wildcard_match("*", ""));
        assert!(wildcard_match("?", "a"));
        assert!(!wildcard_match("?", ""));
        assert!(!wildcard_match("?", "ab"));
        assert!(wildcard_match("a*b*c", "axxbyyc"));
        assert!(wildcard_match("a*b*c", "abc"));
        assert!(!wildcard_match("a*b*c", "acb"));
        assert!(wildcard_match("*-prod", "eu-west-prod"));
        assert!(wildcard_match("k?be-*", "kube-system"));
        assert!(!wildcard_match("monitoring", "monitoring-2"));
        assert!(wildcard_match("**a", "a"));
    }

    #[test]
    fn namespace_allow_and_deny() {
        let mut s = Settings::default();
        assert!(matches_namespace(&s, "anything"));
        s.service_discovery.exclude_namespaces = vec!["kube-*".into()];
        assert!(!matches_namespace(&s, "kube-system"));
        assert!(matches_namespace(&s, "monitoring"));
        s.service_discovery.namespaces = vec!["team-*".into(), "monitoring".into()];
        assert!(matches_namespace(&s, "team-a"));
        assert!(matches_namespace(&s, "monitoring"));
        assert!(!matches_namespace(&s, "default"));
        s.service_discovery.exclude_namespaces = vec!["team-secret".into()];
        assert!(
            !matches_namespace(&s, "team-secret"),
            "deny wins over allow"
        );
        assert!(s.literal_namespaces().is_none());
        let filter = s.namespace_filter();
        assert!(filter("team-a") && !filter("team-secret") && !filter("default"));
        s.service_discovery.namespaces = vec!["b".into(), "a".into(), "team-secret".into()];
        assert_eq!(s.literal_namespaces(), Some(vec!["a", "b"]));
    }

    #[test]
    fn namespace_patterns() {
        for good in ["monitoring", "team-*", "*", "?-prod", "a1"] {
            assert!(check_namespace_pattern(good).is_ok(), "{good}");
        }
        for bad in ["", "Team", "team.*", "team_a", "-a", "a/b", &"a".repeat(64)] {
            assert!(check_namespace_pattern(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn line_index() {
        let l =
            index_lines("a:\n  b: 1\n  c:\n    - x\n    - y\n  \"d\": 2\n# c\ne: [1]\nf:\n- z\n");
        assert_eq!(l.get("a"), Some(&1));
        assert_eq!(l.get("a.b"), Some(&2));
        assert_eq!(l.get("a.c[1]"), Some(&5));
        assert_eq!(l.get("a.d"), Some(&6));
        assert_eq!(l.get("e"), Some(&8));
        assert_eq!(l.get("f[0]"), Some(&10));
        assert_eq!(line_of(&l, "e[0]"), Some(8));
    }

    #[test]
    fn edit_distance_works() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("debounce", "debounce"), 0);
    }
}
