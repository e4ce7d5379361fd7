//! Domain types shared by the runtime (which fills them from detector components),
//! the host (which fills [`ServiceSnapshot`] from Kubernetes objects) and assembly.
//! They mirror the WIT contract in `wit/detector.wit`.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::Error;

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

/// One entry of `metadata.ownerReferences`: what made the Service (e.g. the custom
/// resource an operator reconciles).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct OwnerRef {
    pub kind: String,
    pub name: String,
}

/// What detectors see of a Service.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
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
    /// `spec.selector`; empty when the Service selects no pods (endpoints managed by hand).
    /// Host-side only (not in the WIT contract): selection groups Services of one
    /// installation with it.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub selector: BTreeMap<String, String>,
    /// `metadata.ownerReferences` (kind and name). Host-side only, like `selector`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub owners: Vec<OwnerRef>,
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

    /// What selection needs of this Service to group it with others of its installation.
    pub fn grouping(&self) -> Grouping {
        Grouping {
            selector: self.selector.clone(),
            owners: self.owners.clone(),
            governing: GOVERNING_LABELS
                .iter()
                .any(|k| self.labels.get(*k).is_some_and(|v| v == "true")),
        }
    }
}

/// Labels prometheus-operator puts on the governing Services it makes for its
/// StatefulSets (`prometheus-operated`, `alertmanager-operated`, `thanos-ruler-operated`).
pub const GOVERNING_LABELS: &[&str] = &[
    "operated-prometheus",
    "operated-alertmanager",
    "operated-thanos-ruler",
];

/// The signals that tie a Service to the pods it fronts, for grouping Services of one
/// installation ([`crate::select`]): its selector, its owners, and whether it is an
/// operator's governing Service.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grouping {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub selector: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub owners: Vec<OwnerRef>,
    /// Labelled as a prometheus-operator governing Service ([`GOVERNING_LABELS`]).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub governing: bool,
}

impl Grouping {
    pub fn is_empty(&self) -> bool {
        self.selector.is_empty() && self.owners.is_empty() && !self.governing
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
    pub fn url_for(&self, endpoint: &str) -> Result<String, Error> {
        let base = url::Url::parse(endpoint).map_err(|error| Error::EndpointUrl {
            endpoint: endpoint.to_string(),
            error,
        })?;
        let host = base
            .host_str()
            .ok_or_else(|| Error::EndpointHost(endpoint.to_string()))?;
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
            .map_err(|error| Error::ProbeUrl { url: text, error })
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
    /// Candidate endpoints the host may probe to settle the backend's identity (contract
    /// 1.1 `identify`); none for detectors without it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identification: Option<Identification>,
    /// The detector's HTTP API for this fragment's toolset: set by the validation gate
    /// (never by a detector) when the toolset is one its detector describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpApi>,
}

/// How to recognise a backend on a candidate endpoint (see `fingerprint` in the WIT).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint {
    /// Path relative to the candidate's endpoint, starting with "/".
    pub path: String,
    /// Statuses that may prove identity; empty means 200.
    pub statuses: Vec<u16>,
    /// JSON pointers that must all exist in the JSON body.
    pub json_pointers: Vec<String>,
    /// Texts the body must all contain.
    pub body_contains: Vec<String>,
}

impl Fingerprint {
    /// The URL to request for a candidate endpoint: the endpoint with its path and
    /// this fingerprint's path joined (no double slash).
    pub fn url_for(&self, endpoint: &str) -> String {
        format!("{}{}", endpoint.trim_end_matches('/'), self.path)
    }

    /// Whether an answer proves identity; `Err` says what was missing, for a person.
    pub fn matches(&self, status: u16, body: &[u8]) -> Result<(), String> {
        let status_ok = if self.statuses.is_empty() {
            status == 200
        } else {
            self.statuses.contains(&status)
        };
        if !status_ok {
            return Err(format!("HTTP {status}"));
        }
        if !self.json_pointers.is_empty() {
            let json: serde_json::Value = serde_json::from_slice(body)
                .map_err(|_| format!("HTTP {status} but the body is not JSON"))?;
            if let Some(missing) = self
                .json_pointers
                .iter()
                .find(|p| json.pointer(p).is_none())
            {
                return Err(format!("HTTP {status} but the JSON has no {missing}"));
            }
        }
        let text = String::from_utf8_lossy(body);
        if let Some(missing) = self
            .body_contains
            .iter()
            .find(|t| !text.contains(t.as_str()))
        {
            return Err(format!("HTTP {status} but the body lacks {missing:?}"));
        }
        Ok(())
    }
}

/// One place a backend may answer: a complete alternative of a fragment's endpoint,
/// health probe and config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EndpointCandidate {
    pub endpoint: String,
    pub health: Option<HealthProbe>,
    pub config: serde_json::Map<String, serde_json::Value>,
    pub fingerprint: Fingerprint,
    /// Why this candidate, for `--explain`.
    pub why: String,
}

/// A fragment's candidates, in the detector's order of preference.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Identification {
    pub candidates: Vec<EndpointCandidate>,
    /// Without a proven candidate (when probes run) the fragment is dropped.
    pub required: bool,
}

impl Fragment {
    /// This fragment with candidate `index` in place of its endpoint, health and config
    /// (the identification is kept, to explain the choice). `None` for a bad index.
    pub fn with_candidate(&self, index: usize) -> Option<Fragment> {
        let c = self.identification.as_ref()?.candidates.get(index)?;
        Some(Fragment {
            endpoint: c.endpoint.clone(),
            health: c.health.clone(),
            config: c.config.clone(),
            ..self.clone()
        })
    }
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
    /// What the detector declares it may emit (contract 1.1 `setup.declares`); none for
    /// a detector without that export (its `backends` alone bound it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emits: Option<Emits>,
    /// HTTP APIs it describes (contract 1.2 `http-apis`): its fragments of these toolsets
    /// become HolmesGPT `type: http` toolsets built by the host.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub http_apis: Vec<HttpApi>,
}

/// An HTTP API a detector describes (contract 1.2 `http-apis`), checked at load: the host
/// makes a HolmesGPT `type: http` toolset of it against a fragment's validated endpoint
/// (GET only, these paths under the endpoint's base path, no commands).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpApi {
    /// The toolset name.
    pub toolset: String,
    pub description: String,
    /// For the model: which requests answer what (the host prepends the base URL).
    pub instructions: String,
    /// Path patterns relative to the endpoint's base path, each starting with "/".
    pub paths: Vec<String>,
}

/// A detector's declared output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Emits {
    /// HolmesGPT toolset names.
    pub toolsets: Vec<String>,
    /// Whether it emits custom toolset definitions.
    pub custom_toolsets: bool,
}

/// Why a detector call produced no detection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// The call outlived its deadline.
    Timeout,
    /// The instance wanted more memory than its limit.
    OutOfMemory,
    /// Any other trap (panic, unreachable, stack overflow, a denied WASI import...).
    Trap,
    /// The answer broke a limit or the contract.
    InvalidOutput,
}

impl FailureKind {
    /// Every kind, in declaration order.
    pub const ALL: [FailureKind; 4] = [
        FailureKind::Timeout,
        FailureKind::OutOfMemory,
        FailureKind::Trap,
        FailureKind::InvalidOutput,
    ];

    /// Stable text (metric label, logs); the first words of a verdict's failure message.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Timeout => "timeout",
            FailureKind::OutOfMemory => "out of memory",
            FailureKind::Trap => "trap",
            FailureKind::InvalidOutput => "invalid output",
        }
    }
}

impl fmt::Display for FailureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a detector call failed: the kind, decided where the failure happened (the sandbox
/// or the output checks) and carried as a value, and the sentence a person reads. In a
/// [`Verdict`] the runtime's message starts with the kind and names the detector, e.g.
/// ``timeout: detector `x` exceeded its 100ms deadline``; that sentence is the display.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DetectorFailure {
    pub kind: FailureKind,
    pub message: String,
}

impl fmt::Display for DetectorFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// One detector's verdict on one Service, or why it has none.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// Detector name.
    pub detector: String,
    /// The detection, or the failure (trap, timeout, invalid output).
    pub outcome: Result<Detection, DetectorFailure>,
}

/// Every detector's verdict on one Service, after the validation gate
/// ([`crate::gate::screen`]) when the host ran it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceDetections {
    pub service: ServiceRef,
    pub verdicts: Vec<Verdict>,
    /// The Service's namespace is trusted with credentials (set by the gate); such
    /// installations are preferred where only one can carry a toolset's name.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub trusted: bool,
    /// What the gate refused or changed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gate: Vec<GateNote>,
    /// The Service's selector and owners ([`ServiceSnapshot::grouping`]), for grouping
    /// Services of one installation in selection.
    #[serde(default, skip_serializing_if = "Grouping::is_empty")]
    pub grouping: Grouping,
}

/// Why the gate refused a fragment, or what it changed in one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoteKind {
    /// The Service is `ExternalName`.
    ExternalName,
    /// Backend not declared by the detector, or toolset not one of the backend's.
    Toolset,
    /// A custom toolset definition (commands) from a detector.
    Commands,
    /// A template in detector or cluster-derived text.
    Template,
    /// Endpoint not in-cluster or malformed.
    Endpoint,
    /// Missing or misplaced health probe.
    Health,
    /// A `config` key or value not accepted from detectors.
    Config,
    /// Instance key too long or unprintable.
    Instance,
    /// Admitted; rank lowered to [`crate::gate::MAX_RANK`].
    RankClamped,
    /// Admitted without credentials: namespace not trusted.
    CredentialsWithheld,
    /// Outside what the operator granted this (declared) detector.
    Grant,
}

impl NoteKind {
    /// Stable text (metric label, logs).
    pub fn as_str(self) -> &'static str {
        match self {
            NoteKind::ExternalName => "external_name",
            NoteKind::Toolset => "toolset",
            NoteKind::Commands => "commands",
            NoteKind::Template => "template",
            NoteKind::Endpoint => "endpoint",
            NoteKind::Health => "health",
            NoteKind::Config => "config",
            NoteKind::Instance => "instance",
            NoteKind::RankClamped => "rank_clamped",
            NoteKind::CredentialsWithheld => "credentials_withheld",
            NoteKind::Grant => "grant",
        }
    }

    /// True when the fragment was dropped.
    pub fn refused(self) -> bool {
        !matches!(self, NoteKind::RankClamped | NoteKind::CredentialsWithheld)
    }
}

impl fmt::Display for NoteKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the gate did to one fragment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GateNote {
    pub detector: String,
    /// The fragment's toolset as the detector wrote it (truncated, printable).
    pub toolset: String,
    pub kind: NoteKind,
    /// The fragment field at fault, e.g. `endpoint`, `config.api_key`, `health.port`.
    pub field: String,
    pub message: String,
}

impl GateNote {
    pub fn refused(&self) -> bool {
        self.kind.refused()
    }
}

impl fmt::Display for GateNote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verb = if self.refused() { "refused" } else { "noted" };
        write!(
            f,
            "{verb} {} fragment of detector {}: {}: {}",
            self.toolset, self.detector, self.field, self.message
        )
    }
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
