//! The fixture families of `tests/fixtures/real` (Services from upstream sources) and
//! `tests/fixtures/synthetic`: `<family>.yaml` beside `<family>.canonical.yaml`, a person's
//! judgement of the toolsets HolmesGPT should get from it (see `tests/fixtures/real/SOURCES.md`).
//! Shared by `tests/detection_real.rs` (the wasm detectors through discovery) and the native
//! harness of `guest-detectors/sdk/tests/fixtures.rs`.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Families on which detection is knowingly not exact, each with the reason. Every other
/// family must be exact: every canonical endpoint found, no false toolset, no duplicate
/// instance. A family listed here must really be inexact (so the list cannot go stale).
pub const KNOWN_GAPS: &[(&str, &str)] = &[
    (
        "tempo-operator-openshift",
        "multi-tenant TempoStack on OpenShift: only the gateway answers without the operator's \
         client certificate, and its path names a tenant (/api/traces/v1/<tenant>/tempo) that \
         only the TempoStack resource knows; detection publishes the query-frontend, which \
         refuses callers without that certificate. An override must name the tenant.",
    ),
    (
        "victoria-logs-operator-and-charts",
        "one release serves VictoriaLogs under an arbitrary -http.pathPrefix (/vlogs) set only \
         in the container arguments: neither the Service nor a probe of conventional paths can \
         find it, so the root is published (right offline by the documented guess, wrong with \
         probes). An override must give the prefix.",
    ),
];

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CanonicalFile {
    /// Namespace the fixture was installed into (`helm template -n`), for objects
    /// without `metadata.namespace` (like `discover --default-namespace`).
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub canonical: Vec<Canonical>,
    #[serde(default)]
    pub acceptable: Vec<Acceptable>,
    /// Service (`namespace/name`) -> why it must produce nothing.
    #[serde(default)]
    pub nothing: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Canonical {
    pub toolset: String,
    pub service: String,
    pub url: String,
    /// `namespace/name` of the chosen instance (the name HolmesGPT shows, with `-` for `/`).
    /// Optional in the format, required in the fixture files (`detection_real`).
    #[serde(default)]
    pub instance: Option<String>,
    pub why: String,
    #[serde(default)]
    pub alternatives: Vec<Alternative>,
    /// Where the metadata's best guess points when nothing in the Service shows the truth
    /// (a base path or TLS set only in the backend's own configuration): the endpoint
    /// offline discovery (`--no-health-check`) publishes, and the first identification
    /// candidate a probe tries. With probes the canonical `url` must still be reached.
    #[serde(default)]
    pub offline: Option<OfflineGuess>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OfflineGuess {
    pub url: String,
    pub why: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Alternative {
    pub service: String,
    pub url: String,
    pub why: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Acceptable {
    pub toolset: String,
    pub service: String,
    pub url: String,
    pub why: String,
}

impl CanonicalFile {
    /// The namespace for objects without one: the file's, else `default` (as `discover`).
    pub fn default_namespace(&self) -> &str {
        self.namespace.as_deref().unwrap_or("default")
    }
}

impl Canonical {
    /// Whether a toolset of `toolset` at `endpoint` reaches this canonical endpoint (its URL
    /// or one of its alternatives).
    pub fn reaches(&self, toolset: &str, endpoint: &str) -> bool {
        let url = normalize(endpoint);
        self.toolset == toolset
            && (normalize(&self.url) == url
                || self.alternatives.iter().any(|a| normalize(&a.url) == url))
    }

    /// [`Canonical::reaches`], or the documented offline guess (see [`Canonical::offline`]):
    /// what discovery without probes is held to.
    pub fn reaches_offline(&self, toolset: &str, endpoint: &str) -> bool {
        self.reaches(toolset, endpoint)
            || (self.toolset == toolset
                && self
                    .offline
                    .as_ref()
                    .is_some_and(|o| normalize(&o.url) == normalize(endpoint)))
    }
}

/// `scheme://host:port/path` with the default port made explicit, lowercase scheme and
/// host, no trailing slash: so `http://a:80/` and `http://a` compare equal.
pub fn normalize(url: &str) -> String {
    let url = url.trim();
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let scheme = scheme.to_ascii_lowercase();
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let authority = authority.to_ascii_lowercase();
    let authority = if authority
        .rsplit_once(':')
        .is_some_and(|(_, p)| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
    {
        authority
    } else {
        let port = match scheme.as_str() {
            "https" => "443",
            _ => "80",
        };
        format!("{authority}:{port}")
    };
    let path = path.trim_end_matches('/');
    format!("{scheme}://{authority}{path}")
}

/// `tests/fixtures` of the repository, found from the crate being tested.
pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .map(|d| d.join("tests/fixtures"))
        .find(|d| d.join("real").is_dir())
        .expect("tests/fixtures/real above the crate")
}

pub fn read_canonical(canon_path: &Path) -> CanonicalFile {
    let canon_text = std::fs::read_to_string(canon_path)
        .unwrap_or_else(|e| panic!("{}: {e}", canon_path.display()));
    serde_yaml::from_str(&canon_text).unwrap_or_else(|e| panic!("{}: {e}", canon_path.display()))
}

/// Every `<family>.yaml` of `dir` with its `<family>.canonical.yaml`, sorted by family.
pub fn families_in(dir: &Path) -> Vec<(String, PathBuf, PathBuf)> {
    let mut out: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.extension().is_some_and(|e| e == "yaml")
                && !p.to_string_lossy().ends_with(".canonical.yaml")
        })
        .map(|p| {
            let family = p.file_stem().unwrap().to_string_lossy().to_string();
            let canon = p.with_extension("canonical.yaml");
            (family, p, canon)
        })
        .collect();
    out.sort();
    out
}
