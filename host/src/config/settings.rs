//! The settings model: the resolved [`Settings`], their defaults and the namespace scope.
//!
//! Every leaf field is a settings key; what it means, its default, environment variable and
//! flag are written once, in the key table ([`super::keys`]). [`Settings::default`] is built
//! from that table.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Serialize, Serializer};

use super::error::ConfigError;
use super::keys::KEYS;
use super::resolve::{Flags, resolve};
use super::values::{fmt_dur, set_from_text};

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
    pub credential_namespaces: Vec<String>,
    pub endpoint_namespaces: Vec<String>,
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
    #[serde(serialize_with = "ser_duration")]
    pub discovery_interval: Duration,
    #[serde(serialize_with = "ser_duration")]
    pub reconciliation_interval: Duration,
    #[serde(serialize_with = "ser_duration")]
    pub debounce: Duration,
    pub namespaces: Vec<String>,
    pub exclude_namespaces: Vec<String>,
    /// None when unset.
    #[serde(serialize_with = "ser_opt_string")]
    pub label_selector: Option<String>,
    pub cluster_domain: String,
    /// Health validation of discovered endpoints.
    pub health_check: HealthCheck,
}

/// `service_discovery.health_check:` section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HealthCheck {
    pub enabled: bool,
    #[serde(serialize_with = "ser_duration")]
    pub interval: Duration,
    #[serde(serialize_with = "ser_duration")]
    pub timeout: Duration,
    pub attempts: u32,
    #[serde(serialize_with = "ser_duration")]
    pub retry_interval: Duration,
    pub failure_threshold: u32,
    pub concurrency: u32,
    pub insecure_skip_tls_verify: bool,
}

/// `configmap:` section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConfigMapSettings {
    pub name: String,
    /// Always concrete once resolved (the pod's namespace when the file leaves it empty).
    pub namespace: String,
    #[serde(serialize_with = "ser_opt_string")]
    pub owner_deployment: Option<String>,
}

/// `leader_election:` section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LeaderElection {
    pub enabled: bool,
    pub lease_name: String,
    /// Always concrete once resolved.
    pub lease_namespace: String,
    #[serde(serialize_with = "ser_duration")]
    pub lease_duration: Duration,
    #[serde(serialize_with = "ser_duration")]
    pub renew_deadline: Duration,
    #[serde(serialize_with = "ser_duration")]
    pub retry_period: Duration,
}

/// `detectors:` section.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct DetectorSettings {
    #[serde(serialize_with = "ser_opt_path")]
    pub dir: Option<PathBuf>,
    #[serde(serialize_with = "ser_opt_path")]
    pub file: Option<PathBuf>,
    #[serde(serialize_with = "ser_duration")]
    pub reload_interval: Duration,
    #[serde(serialize_with = "ser_opt_path")]
    pub cache_dir: Option<PathBuf>,
}

/// `server:` section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServerSettings {
    pub listen: SocketAddr,
    pub metrics_listen: SocketAddr,
    /// Authenticate and authorise API requests (TokenReview + SubjectAccessReview).
    pub api_auth: bool,
}

/// Namespace used when neither the file, the environment nor the pod tells one.
pub const FALLBACK_NAMESPACE: &str = "kubernaut-system";
/// Where Kubernetes mounts the pod's namespace.
pub const SERVICE_ACCOUNT_NAMESPACE_FILE: &str =
    "/var/run/secrets/kubernetes.io/serviceaccount/namespace";

impl Settings {
    /// Every value zero, empty or off: what the key table's defaults are written onto.
    fn blank() -> Self {
        let unspecified = SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0));
        Self {
            service_discovery: ServiceDiscovery {
                discovery_interval: Duration::ZERO,
                reconciliation_interval: Duration::ZERO,
                debounce: Duration::ZERO,
                namespaces: Vec::new(),
                exclude_namespaces: Vec::new(),
                label_selector: None,
                cluster_domain: String::new(),
                health_check: HealthCheck {
                    enabled: false,
                    interval: Duration::ZERO,
                    timeout: Duration::ZERO,
                    attempts: 0,
                    retry_interval: Duration::ZERO,
                    failure_threshold: 0,
                    concurrency: 0,
                    insecure_skip_tls_verify: false,
                },
            },
            configmap: ConfigMapSettings {
                name: String::new(),
                namespace: String::new(),
                owner_deployment: None,
            },
            leader_election: LeaderElection {
                enabled: false,
                lease_name: String::new(),
                lease_namespace: String::new(),
                lease_duration: Duration::ZERO,
                renew_deadline: Duration::ZERO,
                retry_period: Duration::ZERO,
            },
            detectors: DetectorSettings::default(),
            security: SecuritySettings::default(),
            server: ServerSettings {
                listen: unspecified,
                metrics_listen: unspecified,
                api_auth: false,
            },
        }
    }
}

impl Default for Settings {
    /// The defaults of the key table (`configmap.namespace` and
    /// `leader_election.lease_namespace` stay empty: they are derived while resolving).
    fn default() -> Self {
        let mut s = Settings::blank();
        for key in KEYS {
            // The defaults are literals of the table; a unit test checks each one parses.
            let _ = set_from_text(key.slot, &mut s, key.default);
        }
        s
    }
}

impl Settings {
    /// Parses a settings file alone (no environment, no flags).
    pub fn from_yaml(path: &Path, text: &str) -> Result<Settings, ConfigError> {
        resolve(Some((path, text)), |_| None, &Flags::default())
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
    pub fn namespace_filter(&self) -> Arc<dyn Fn(&str) -> bool + Send + Sync> {
        let settings = Settings {
            service_discovery: ServiceDiscovery {
                namespaces: self.service_discovery.namespaces.clone(),
                exclude_namespaces: self.service_discovery.exclude_namespaces.clone(),
                ..Settings::default().service_discovery
            },
            ..Settings::default()
        };
        Arc::new(move |ns: &str| matches_namespace(&settings, ns))
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

/// Whether a namespace pattern holds a wildcard.
pub(super) fn is_wildcard(pattern: &str) -> bool {
    pattern.contains(['*', '?'])
}

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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn defaults_match_the_documented_values() {
        let s = Settings::default();
        assert_eq!(
            s.service_discovery.discovery_interval,
            Duration::from_secs(300)
        );
        assert_eq!(s.service_discovery.health_check.attempts, 3);
        assert_eq!(s.service_discovery.health_check.concurrency, 16);
        assert!(s.service_discovery.health_check.enabled);
        assert!(!s.service_discovery.health_check.insecure_skip_tls_verify);
        assert!(s.leader_election.enabled);
        assert_eq!(s.leader_election.retry_period, Duration::from_secs(2));
        assert_eq!(s.server.metrics_listen.to_string(), "0.0.0.0:9090");
        assert_eq!(s.configmap.namespace, "", "derived while resolving");
        assert!(s.detectors.dir.is_none() && s.configmap.owner_deployment.is_none());
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
}
