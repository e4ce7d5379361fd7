//! The API's answers: stable JSON field names, documented in the OpenAPI document generated
//! from these types (`/openapi.json`). Nothing here does I/O; the controller publishes a
//! [`View`] after every pass and the handlers only read it.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Everything the API serves, as of one controller pass.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct View {
    /// When the generated configuration was last computed (RFC 3339), if ever.
    pub generated_at: Option<String>,
    /// Exactly the bytes of `toolsets.yaml` in the generated ConfigMap.
    #[serde(skip)]
    pub toolsets_yaml: String,
    pub toolsets: Vec<ToolsetView>,
    /// Every watched Service, sorted by namespace and name.
    pub services: Vec<ServiceView>,
    pub detectors: Vec<DetectorView>,
    pub last_write: Option<WriteView>,
    /// The last error the controller reported (write refused, overrides invalid ...).
    pub last_error: Option<String>,
}

/// One toolset of the generated configuration with where it came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ToolsetView {
    /// HolmesGPT's toolset name, e.g. `prometheus/metrics`.
    pub name: String,
    pub enabled: bool,
    /// The toolset's entry as it is in `toolsets.yaml` (JSON form).
    #[schema(value_type = Object)]
    pub config: serde_json::Value,
    /// What an override did to it.
    pub override_effect: OverrideEffect,
    /// The installations behind it (several for multi-instance toolsets).
    pub provenance: Vec<Provenance>,
}

/// What the admin's `overrides.yaml` did to a toolset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OverrideEffect {
    None,
    Changed,
    Disabled,
    /// Defined by the overrides only (nothing discovered).
    Added,
}

/// One installation a toolset was built from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Provenance {
    pub instance: String,
    /// `namespace/name` of the Service that won.
    pub service: String,
    pub detector: String,
    pub detector_version: String,
    pub endpoint: String,
    pub health: Health,
    /// Last probe (RFC 3339), if probed.
    pub last_probe: Option<String>,
    /// Why the last probe failed, if it did.
    pub health_reason: Option<String>,
}

/// Health of an installation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Health {
    Healthy,
    Unhealthy,
    /// Not probed (yet, or probing is off).
    Unknown,
}

/// One watched Service and every detector's verdict on it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ServiceView {
    pub namespace: String,
    pub name: String,
    pub verdicts: Vec<VerdictView>,
    /// Whether one of its fragments became (part of) a toolset.
    pub chosen: bool,
    /// Why its fragments were not chosen (another installation won, unhealthy, refused ...).
    pub not_chosen_because: Vec<String>,
}

impl ServiceView {
    /// `namespace/name`.
    pub fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    /// The backends (toolsets) its detectors matched it as.
    pub fn backends(&self) -> impl Iterator<Item = &str> {
        self.verdicts.iter().filter_map(|v| v.toolset.as_deref())
    }
}

/// One detector's verdict on one Service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct VerdictView {
    pub detector: String,
    pub outcome: Outcome,
    /// Declined: the detector's reason; failed: the failure; refused: the gate's reason.
    pub reason: Option<String>,
    pub toolset: Option<String>,
    pub instance: Option<String>,
    pub endpoint: Option<String>,
}

/// What a detector said of a Service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Matched,
    Declined,
    Unrelated,
    Failed,
    /// Matched, but the validation gate refused the fragment.
    Refused,
}

/// A loaded detector and its live statistics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DetectorView {
    pub name: String,
    /// `loaded`, `rejected` (see `reason`) or `disabled` (by its declaration).
    #[serde(default = "loaded")]
    pub status: String,
    /// Why it was rejected, or why its running version is not the newest declared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Toolsets it declares it may emit (contract 1.1 `setup`); none for 1.0 detectors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emits: Option<Vec<String>>,
    /// Toolsets it describes as HTTP APIs (contract 1.2 `http-apis`): the host builds them
    /// as HolmesGPT `type: http` toolsets.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub http_apis: Vec<String>,
    pub version: String,
    /// `bundled` or the file it was loaded from.
    pub source: String,
    pub sha256: String,
    pub wit_version: String,
    pub limits: LimitsView,
    pub stats: DetectorStats,
}

fn loaded() -> String {
    "loaded".to_string()
}

/// A detector's sandbox limits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct LimitsView {
    pub call_deadline_ms: u64,
    pub memory_bytes: u64,
    pub output_bytes: u64,
}

/// Calls of one detector since start.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DetectorStats {
    pub calls: u64,
    pub matches: u64,
    pub declines: u64,
    /// Failures by kind (`timeout`, `out_of_memory`, `trap`, ...).
    pub failures: std::collections::BTreeMap<String, u64>,
    /// Mean call time (µs) since load.
    pub call_mean_us: Option<u64>,
    /// Longest call (µs) since load (percentiles: the `dynamic_toolset_detector_call_duration_seconds`
    /// histogram on /metrics).
    pub call_max_us: Option<u64>,
}

/// The last write of the generated ConfigMap.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct WriteView {
    /// RFC 3339.
    pub at: String,
    /// `namespace/name` of the ConfigMap.
    pub configmap: String,
    pub ok: bool,
    pub message: Option<String>,
}

/// A page of Services.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ServicePage {
    pub items: Vec<ServiceView>,
    /// How many Services match the filters (all pages).
    pub total: usize,
    /// Pass as `?continue=` for the next page; absent on the last page.
    #[serde(rename = "continue", skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// An error answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// A short code: `not_found`, `bad_request`, `unauthorized`, `forbidden`, ...
    pub error: String,
    /// What was wrong, naming the parameter or object at fault.
    pub reason: String,
}
