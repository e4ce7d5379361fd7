//! Domain types shared by the runtime (which fills them from detector components),
//! the host (which fills [`ServiceSnapshot`] from Kubernetes objects) and assembly.
//! They mirror the WIT contract in `wit/detector.wit`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Identifies a Service: `<namespace>/<name>`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ServiceRef {
    pub namespace: String,
    pub name: String,
}

impl std::fmt::Display for ServiceRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// One entry of `spec.ports`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServicePort {
    pub name: Option<String>,
    pub port: u16,
    /// `targetPort` as written (number or name).
    pub target_port: Option<String>,
    /// "TCP", "UDP" or "SCTP".
    pub protocol: String,
    pub app_protocol: Option<String>,
}

/// What detectors see of a Service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceSnapshot {
    pub name: String,
    pub namespace: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    /// `spec.type`, "ClusterIP" when unset.
    pub service_type: String,
    /// `spec.clusterIP`; "None" for headless.
    pub cluster_ip: Option<String>,
    pub ports: Vec<ServicePort>,
}

impl ServiceSnapshot {
    pub fn service_ref(&self) -> ServiceRef {
        ServiceRef {
            namespace: self.namespace.clone(),
            name: self.name.clone(),
        }
    }

    /// True when `spec.clusterIP` is "None".
    pub fn headless(&self) -> bool {
        self.cluster_ip.as_deref() == Some("None")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scheme {
    Http,
    Https,
}

impl Scheme {
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
}

/// How to check an endpoint answers.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct HealthProbe {
    pub port: u16,
    pub scheme: Scheme,
    /// Starts with "/".
    pub path: String,
    /// Empty means 200-399.
    pub accepted_statuses: Vec<u16>,
}

impl HealthProbe {
    /// The URL to probe for `endpoint`: the endpoint's host with this probe's scheme, port
    /// and path (so an endpoint on another host, e.g. from an annotation, is probed there).
    pub fn url_for(&self, endpoint: &str) -> Result<String, String> {
        let base = url::Url::parse(endpoint).map_err(|e| format!("endpoint {endpoint:?}: {e}"))?;
        let host = base
            .host_str()
            .ok_or_else(|| format!("endpoint {endpoint:?} has no host"))?;
        let host = if host.contains(':') && !host.starts_with('[') {
            format!("[{host}]")
        } else {
            host.to_string()
        };
        let slash = if self.path.starts_with('/') { "" } else { "/" };
        let text = format!(
            "{}://{host}:{}{slash}{}",
            self.scheme.as_str(),
            self.port,
            self.path
        );
        url::Url::parse(&text)
            .map(String::from)
            .map_err(|e| format!("probe URL {text:?}: {e}"))
    }

    /// Whether an HTTP status counts as healthy for this probe.
    pub fn accepts(&self, status: u16) -> bool {
        if self.accepted_statuses.is_empty() {
            (200..400).contains(&status)
        } else {
            self.accepted_statuses.contains(&status)
        }
    }
}

/// One tool of a custom toolset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tool {
    pub name: String,
    pub description: String,
    pub command: String,
}

/// A toolset definition for a backend HolmesGPT has no built-in for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomToolset {
    pub description: String,
    pub prerequisites: Vec<String>,
    pub tools: Vec<Tool>,
}

/// One toolset contribution from one Service (see `fragment` in the WIT).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fragment {
    /// HolmesGPT toolset name, e.g. "prometheus/metrics".
    pub toolset: String,
    /// Backend kind, e.g. "thanos".
    pub backend: String,
    /// Installation key; siblings share it.
    pub instance: String,
    /// Highest wins within an instance.
    pub rank: u32,
    pub endpoint: String,
    pub health: Option<HealthProbe>,
    /// The HolmesGPT `config` object (already parsed and checked to be a JSON object).
    pub config: serde_json::Map<String, serde_json::Value>,
    pub custom: Option<CustomToolset>,
}

/// A detector's answer for one Service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "kind", content = "value")]
pub enum Detection {
    Unrelated,
    Declined(String),
    Matched(Vec<Fragment>),
}

/// What a detector says of itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DetectorInfo {
    pub name: String,
    pub version: String,
    pub backends: Vec<String>,
}

/// One detector's verdict on one Service, or why it has none.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// Detector name.
    pub detector: String,
    /// The detection, or the failure (trap, timeout, invalid output) as text.
    pub outcome: Result<Detection, String>,
}

/// Every detector's verdict on one Service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceDetections {
    pub service: ServiceRef,
    pub verdicts: Vec<Verdict>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hp(scheme: Scheme, port: u16, path: &str) -> HealthProbe {
        HealthProbe {
            port,
            scheme,
            path: path.into(),
            accepted_statuses: vec![],
        }
    }

    #[test]
    fn probe_url_uses_endpoint_host_and_probe_port_scheme_path() {
        let u = hp(Scheme::Https, 8443, "-/ready")
            .url_for("http://prom.monitoring.svc.cluster.local:9090/select/0/prometheus");
        assert_eq!(
            u.as_deref(),
            Ok("https://prom.monitoring.svc.cluster.local:8443/-/ready")
        );
        // An annotated endpoint on another host is probed there.
        let u = hp(Scheme::Http, 80, "/health").url_for("http://10.0.0.7:9428/");
        // (The scheme's default port is implied.)
        assert_eq!(u.as_deref(), Ok("http://10.0.0.7/health"));
        assert!(hp(Scheme::Http, 1, "/").url_for("not a url").is_err());
    }

    #[test]
    fn accepted_statuses_default_to_2xx_3xx() {
        let mut p = hp(Scheme::Http, 1, "/");
        assert!(p.accepts(200) && p.accepts(302) && !p.accepts(401));
        p.accepted_statuses = vec![200, 401];
        assert!(p.accepts(401) && !p.accepts(302));
    }
}
