//! The key table: every settings key described once — its YAML path, type, default,
//! environment variable, command-line flag and one-line doc. The resolver, the environment
//! variable list, the flags' names and help of `run`, [`Settings::default`] and the checks of
//! the example file (`example.yaml`) are all read from here.
//!
//! [`Settings::default`]: super::Settings

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::settings::Settings;

type Acc<T> = for<'a> fn(&'a mut Settings) -> &'a mut T;

/// The type of a key and where it lives in [`Settings`].
#[derive(Clone, Copy)]
pub(super) enum Slot {
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

/// The command-line flag of a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flag {
    /// `--NAME VALUE` (repeatable and comma separated for lists).
    Value(&'static str),
    /// `--NAME` alone sets the (boolean) key to `sets`; `help` says what that does.
    Switch {
        name: &'static str,
        sets: bool,
        help: &'static str,
    },
}

impl Flag {
    /// The flag's name, without the leading `--`.
    pub fn name(self) -> &'static str {
        match self {
            Flag::Value(name) | Flag::Switch { name, .. } => name,
        }
    }
}

/// One settings key.
pub struct Key {
    /// Dotted YAML path, e.g. `service_discovery.discovery_interval`.
    pub path: &'static str,
    pub(super) slot: Slot,
    /// Environment variable that overrides the file.
    pub env: Option<&'static str>,
    /// Flag of `dynamic-toolset run` that overrides the file and the environment.
    pub flag: Option<Flag>,
    /// The default, as it would be written in the file (`5m`, `true`, ``).
    pub default: &'static str,
    /// What the key does, in one line.
    pub doc: &'static str,
}

pub const SD_DISCOVERY: &str = "service_discovery.discovery_interval";
pub const SD_RECONCILE: &str = "service_discovery.reconciliation_interval";
pub const SD_DEBOUNCE: &str = "service_discovery.debounce";
pub const SD_NAMESPACES: &str = "service_discovery.namespaces";
pub const SD_EXCLUDE: &str = "service_discovery.exclude_namespaces";
pub const SD_SELECTOR: &str = "service_discovery.label_selector";
pub const SD_DOMAIN: &str = "service_discovery.cluster_domain";
/// The seeds' flat spelling of [`HC_INTERVAL`]: accepted in the file, same setting.
pub const SD_HC_FLAT: &str = "service_discovery.health_check_interval";
/// The seeds' `cache_ttl`: accepted in the file with a deprecation warning, ignored.
pub const SD_CACHE_TTL: &str = "service_discovery.cache_ttl";
pub const HC_ENABLED: &str = "service_discovery.health_check.enabled";
pub const HC_INTERVAL: &str = "service_discovery.health_check.interval";
pub const HC_TIMEOUT: &str = "service_discovery.health_check.timeout";
pub const HC_ATTEMPTS: &str = "service_discovery.health_check.attempts";
pub const HC_RETRY: &str = "service_discovery.health_check.retry_interval";
pub const HC_THRESHOLD: &str = "service_discovery.health_check.failure_threshold";
pub const HC_CONCURRENCY: &str = "service_discovery.health_check.concurrency";
pub const HC_INSECURE: &str = "service_discovery.health_check.insecure_skip_tls_verify";
pub const CM_NAME: &str = "configmap.name";
pub const CM_NAMESPACE: &str = "configmap.namespace";
pub const CM_OWNER: &str = "configmap.owner_deployment";
pub const LE_ENABLED: &str = "leader_election.enabled";
pub const LE_NAME: &str = "leader_election.lease_name";
pub const LE_NAMESPACE: &str = "leader_election.lease_namespace";
pub const LE_DURATION: &str = "leader_election.lease_duration";
pub const LE_RENEW: &str = "leader_election.renew_deadline";
pub const LE_RETRY: &str = "leader_election.retry_period";
pub const DET_DIR: &str = "detectors.dir";
pub const DET_CACHE: &str = "detectors.cache_dir";
pub const DET_FILE: &str = "detectors.file";
pub const DET_RELOAD: &str = "detectors.reload_interval";
pub const SEC_CREDENTIALS: &str = "security.credential_namespaces";
pub const SEC_ENDPOINTS: &str = "security.endpoint_namespaces";
pub const SEC_EXTERNAL: &str = "security.external_hosts";
pub const SRV_LISTEN: &str = "server.listen";
pub const SRV_METRICS: &str = "server.metrics_listen";
pub const SRV_API_AUTH: &str = "server.api_auth";

/// The environment variable that stands in for an empty `configmap.namespace` and
/// `leader_election.lease_namespace` (else the service account's namespace file).
pub const POD_NAMESPACE: &str = "POD_NAMESPACE";

/// Mapping sections; every other known path is a leaf in [`KEYS`] or a special key.
pub(super) const SECTIONS: &[&str] = &[
    "service_discovery",
    "service_discovery.health_check",
    "configmap",
    "leader_election",
    "detectors",
    "security",
    "server",
];

const fn key(
    path: &'static str,
    slot: Slot,
    env: Option<&'static str>,
    flag: Option<Flag>,
    default: &'static str,
    doc: &'static str,
) -> Key {
    Key {
        path,
        slot,
        env,
        flag,
        default,
        doc,
    }
}

const fn value(name: &'static str) -> Option<Flag> {
    Some(Flag::Value(name))
}

/// Every leaf key (in the order the environment is read and errors are reported).
#[rustfmt::skip]
pub static KEYS: &[Key] = &[
    key(SD_DISCOVERY, Slot::Dur(|s| &mut s.service_discovery.discovery_interval, false),
        Some("DISCOVERY_INTERVAL"), None, "5m",
        "Full resync of every Service, on top of the watch."),
    key(SD_RECONCILE, Slot::Dur(|s| &mut s.service_discovery.reconciliation_interval, false),
        Some("RECONCILIATION_INTERVAL"), None, "30s",
        "Periodic drift check of the generated ConfigMap, on top of its watch."),
    key(SD_DEBOUNCE, Slot::Dur(|s| &mut s.service_discovery.debounce, true), None, None, "200ms",
        "Bursts of Service events closer than this become one discovery run (0s allowed)."),
    key(SD_NAMESPACES, Slot::List(|s| &mut s.service_discovery.namespaces),
        Some("NAMESPACES"), value("namespace"), "",
        "Namespaces to watch, wildcards `*` and `?` (e.g. `team-*`); empty means all."),
    key(SD_EXCLUDE, Slot::List(|s| &mut s.service_discovery.exclude_namespaces),
        None, value("exclude-namespace"), "",
        "Namespaces never watched (wildcards); wins over the namespaces to watch."),
    key(SD_SELECTOR, Slot::OptStr(|s| &mut s.service_discovery.label_selector),
        None, value("label-selector"), "",
        "Kubernetes label selector for the Service watch (e.g. `app.kubernetes.io/part-of=monitoring`)."),
    key(SD_DOMAIN, Slot::Str(|s| &mut s.service_discovery.cluster_domain),
        None, value("cluster-domain"), "cluster.local",
        "Cluster DNS domain used in endpoint URLs."),
    key(SEC_CREDENTIALS, Slot::List(|s| &mut s.security.credential_namespaces),
        Some("CREDENTIAL_NAMESPACES"), value("credential-namespace"), "",
        "Namespaces (exact names) whose backends receive HolmesGPT's credentials \
         (`{{ env.GRAFANA_API_KEY }}`, Elasticsearch/OpenSearch passwords); backends elsewhere \
         are emitted without them."),
    key(SEC_ENDPOINTS, Slot::List(|s| &mut s.security.endpoint_namespaces),
        Some("ENDPOINT_NAMESPACES"), value("endpoint-namespace"), "",
        "Namespaces an annotated endpoint may point into besides its own Service's."),
    key(SEC_EXTERNAL, Slot::List(|s| &mut s.security.external_hosts),
        Some("EXTERNAL_HOSTS"), value("external-host"), "",
        "Off-cluster hosts (`host` or `host:port`) an endpoint may name."),
    key(HC_ENABLED, Slot::Bool(|s| &mut s.service_discovery.health_check.enabled),
        Some("HEALTH_CHECK_ENABLED"),
        Some(Flag::Switch { name: "no-health-check", sets: false,
            help: "Publish every discovered backend without probing it." }),
        "true", "Probe endpoints before publishing them."),
    key(HC_INTERVAL, Slot::Dur(|s| &mut s.service_discovery.health_check.interval, false),
        Some("HEALTH_CHECK_INTERVAL"), None, "60s",
        "Re-probe period (the seeds' `service_discovery.health_check_interval` is the same setting)."),
    key(HC_TIMEOUT, Slot::Dur(|s| &mut s.service_discovery.health_check.timeout, false),
        None, None, "5s", "Timeout of one probe attempt."),
    key(HC_ATTEMPTS, Slot::Count(|s| &mut s.service_discovery.health_check.attempts, 1, 10),
        None, None, "3", "Attempts per round before an endpoint counts as failed (1-10)."),
    key(HC_RETRY, Slot::Dur(|s| &mut s.service_discovery.health_check.retry_interval, true),
        None, None, "1s", "Pause between attempts (0s allowed)."),
    key(HC_THRESHOLD,
        Slot::Count(|s| &mut s.service_discovery.health_check.failure_threshold, 1, 100),
        None, None, "3",
        "Consecutive failed rounds before a healthy toolset is removed (1-100)."),
    key(HC_CONCURRENCY,
        Slot::Count(|s| &mut s.service_discovery.health_check.concurrency, 1, 1024),
        None, None, "16", "Probes in flight at once (1-1024)."),
    key(HC_INSECURE,
        Slot::Bool(|s| &mut s.service_discovery.health_check.insecure_skip_tls_verify), None,
        Some(Flag::Switch { name: "insecure-skip-tls-verify", sets: true,
            help: "Do not verify TLS certificates when probing (self-signed backends)." }),
        "false", "Skip TLS certificate verification when probing (self-signed backends)."),
    key(CM_NAME, Slot::Str(|s| &mut s.configmap.name),
        Some("CONFIGMAP_NAME"), value("configmap-name"), "kubernaut-toolset-config",
        "Name of the generated ConfigMap."),
    key(CM_NAMESPACE, Slot::Str(|s| &mut s.configmap.namespace),
        Some("CONFIGMAP_NAMESPACE"), value("configmap-namespace"), "",
        "Namespace of the generated ConfigMap; empty means the pod's own (env POD_NAMESPACE, \
         else the service account's namespace, else kubernaut-system)."),
    key(CM_OWNER, Slot::OptStr(|s| &mut s.configmap.owner_deployment),
        None, value("owner-deployment"), "",
        "Deployment (in the ConfigMap's namespace) set as owner of the generated ConfigMap."),
    key(LE_ENABLED, Slot::Bool(|s| &mut s.leader_election.enabled),
        Some("LEADER_ELECTION_ENABLED"),
        Some(Flag::Switch { name: "no-leader-election", sets: false,
            help: "Run without a Lease (single replica only)." }),
        "true", "Take a Lease before writing: only its holder writes."),
    key(LE_NAME, Slot::Str(|s| &mut s.leader_election.lease_name), None, None,
        "dynamic-toolset-leader", "Name of the Lease."),
    key(LE_NAMESPACE, Slot::Str(|s| &mut s.leader_election.lease_namespace), None, None, "",
        "Namespace of the Lease; empty means the pod's own (env POD_NAMESPACE, else the \
         service account's namespace), else the ConfigMap's."),
    key(LE_DURATION, Slot::Dur(|s| &mut s.leader_election.lease_duration, false),
        Some("LEASE_DURATION"), None, "15s", "Validity of the Lease without renewal."),
    key(LE_RENEW, Slot::Dur(|s| &mut s.leader_election.renew_deadline, false),
        Some("RENEW_DEADLINE"), None, "10s",
        "The leader steps down after failing to renew for this long (< lease_duration)."),
    key(LE_RETRY, Slot::Dur(|s| &mut s.leader_election.retry_period, false),
        Some("RETRY_PERIOD"), None, "2s", "Period of acquire/renew attempts (< renew_deadline)."),
    key(DET_DIR, Slot::Path(|s| &mut s.detectors.dir),
        Some("DETECTORS_DIR"), value("detectors-dir"), "",
        "Directory of third-party detector components (`*.wasm`), loaded beside the bundled ones."),
    key(DET_FILE, Slot::Path(|s| &mut s.detectors.file),
        Some("DETECTORS_FILE"), value("detectors-file"), "",
        "Detector declarations (YAML `detectors:` list: pinned files, settings, limits, grants, disabled bundled ones; README, \"Declaring detectors\"). Watched: changes apply without a restart."),
    key(DET_RELOAD, Slot::Dur(|s| &mut s.detectors.reload_interval, false),
        None, None, "2s",
        "How often the declarations file, the files it names and the detectors directory are checked for changes."),
    key(DET_CACHE, Slot::Path(|s| &mut s.detectors.cache_dir),
        Some("DETECTOR_CACHE_DIR"), value("cache-dir"), "",
        "Directory where third-party detector files are kept compiled, so later starts and reloads skip compiling them; off when unset (bundled detectors come precompiled in the binary)."),
    key(SRV_LISTEN, Slot::Addr(|s| &mut s.server.listen), None, value("listen"), "0.0.0.0:8080",
        "Address of the health endpoints (`/healthz`, `/readyz`, `/health`, `/ready`), the REST API (`/api/v1/...`) and the status page (`/`)."),
    key(SRV_METRICS, Slot::Addr(|s| &mut s.server.metrics_listen),
        None, value("metrics-listen"), "0.0.0.0:9090",
        "Address of the Prometheus metrics endpoint (`/metrics`)."),
    key(SRV_API_AUTH, Slot::Bool(|s| &mut s.server.api_auth), Some("API_AUTH"),
        Some(Flag::Switch { name: "no-api-auth", sets: false,
            help: "Serve the REST API and status page without authentication (local use only)." }),
        "true",
        "Check REST API and status page requests with Kubernetes TokenReview + SubjectAccessReview; off only for local use (logged as a warning)."),
];

/// The key at `path`.
pub fn find(path: &str) -> Option<&'static Key> {
    KEYS.iter().find(|k| k.path == path)
}

/// The flag name of the key at `path` (empty when it has none: clap's own checks refuse it).
pub fn flag_name(path: &str) -> &'static str {
    find(path).and_then(|k| k.flag).map_or("", Flag::name)
}

/// The environment variable of the key at `path`.
pub fn env_name(path: &str) -> Option<&'static str> {
    find(path).and_then(|k| k.env)
}

/// The help of the flag of the key at `path`: the key's doc (or the switch's), its default,
/// the environment variable, and the settings key it overrides.
pub fn flag_help(path: &str) -> String {
    let Some(key) = find(path) else {
        return String::new();
    };
    let mut help = match key.flag {
        Some(Flag::Switch { help, .. }) => help.to_string(),
        _ => key.doc.to_string(),
    };
    if matches!(key.slot, Slot::List(_)) {
        help.push_str(" Repeatable or comma separated.");
    }
    if matches!(key.flag, Some(Flag::Value(_))) && !key.default.is_empty() {
        help.push_str(&format!(" Default `{}`.", key.default));
    }
    match key.env {
        Some(env) => help.push_str(&format!(" Env {env}; settings key `{}`.", key.path)),
        None => help.push_str(&format!(" Settings key `{}`.", key.path)),
    }
    help
}

/// Environment variables read by the resolver, with the key each sets (`POD_NAMESPACE` is the
/// default of `configmap.namespace`). For documentation and `config check`.
pub fn env_variables() -> Vec<(&'static str, &'static str)> {
    let mut out: Vec<_> = KEYS
        .iter()
        .filter_map(|k| k.env.map(|e| (e, k.path)))
        .collect();
    out.push((POD_NAMESPACE, CM_NAMESPACE));
    out
}

/// The names a file may use under `prefix` (`""` for the top level): leaves, sections and
/// the seeds' flat health-check key, for "did you mean".
pub(super) fn names_under(prefix: &str) -> Vec<&'static str> {
    all_paths()
        .chain([SD_HC_FLAT])
        .filter_map(|p| {
            let parent = p.rsplit_once('.').map_or("", |(a, _)| a);
            (parent == prefix).then(|| p.rsplit('.').next().unwrap_or(p))
        })
        .collect()
}

/// Every leaf and section path.
pub(super) fn all_paths() -> impl Iterator<Item = &'static str> {
    KEYS.iter().map(|k| k.path).chain(SECTIONS.iter().copied())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::super::values::set_from_text;
    use super::*;

    #[test]
    fn every_default_parses() {
        for k in KEYS {
            let mut s = Settings::default();
            assert!(
                set_from_text(k.slot, &mut s, k.default).is_ok(),
                "{}: default {:?}",
                k.path,
                k.default
            );
        }
    }

    #[test]
    fn names_are_unique() {
        let mut paths: Vec<_> = all_paths().collect();
        let mut envs: Vec<_> = KEYS.iter().filter_map(|k| k.env).collect();
        let mut flags: Vec<_> = KEYS.iter().filter_map(|k| k.flag).map(Flag::name).collect();
        for v in [&mut paths, &mut envs, &mut flags] {
            let n = v.len();
            v.sort_unstable();
            v.dedup();
            assert_eq!(v.len(), n, "{v:?}");
        }
    }

    #[test]
    fn switches_are_booleans_and_docs_are_one_line() {
        for k in KEYS {
            if matches!(k.flag, Some(Flag::Switch { .. })) {
                assert!(matches!(k.slot, Slot::Bool(_)), "{}", k.path);
            }
            assert!(!k.doc.is_empty() && !k.doc.contains('\n'), "{}", k.path);
        }
        assert_eq!(flag_name(SD_NAMESPACES), "namespace");
        assert_eq!(flag_name(SD_DISCOVERY), "");
        assert!(flag_help(SEC_CREDENTIALS).contains("Env CREDENTIAL_NAMESPACES"));
        assert!(env_variables().contains(&("POD_NAMESPACE", CM_NAMESPACE)));
    }
}
