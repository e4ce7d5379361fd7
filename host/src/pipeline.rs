//! The discovery pipeline shared by `discover` (offline) and `run` (in-cluster):
//! detectors (sandboxed) → selection → health probes → assembly → overrides. Everything
//! but detecting and probing is the pure core; these functions are the thin glue.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use anyhow::Context;
use dynamic_toolset_core::assemble::{self, Assembly, Health};
use dynamic_toolset_core::gate::{self, Grants, Policy};
use dynamic_toolset_core::overrides::{self, MergeReport, Overrides};
use dynamic_toolset_core::select::{InstanceKey, Selection};
use dynamic_toolset_core::{GateNote, ServiceDetections, ServiceRef, ServiceSnapshot};
use dynamic_toolset_runtime::{DetectorSet, Error as LoadError, RuntimeConfig};

use crate::probe::{ProbeOutcome, ProbeTarget};

/// Which detectors to load and how they run: the bundled ones, plus the `*.wasm` components
/// of `dir`, in a sandbox configured by `runtime`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DetectorSetup {
    /// Directory of third-party detector components; none: bundled detectors only.
    pub dir: Option<PathBuf>,
    pub runtime: RuntimeConfig,
}

impl DetectorSetup {
    /// The default sandbox, with precompiled detectors cached in `cache_dir` when set.
    pub fn new(dir: Option<PathBuf>, cache_dir: Option<PathBuf>) -> Self {
        Self {
            dir,
            runtime: RuntimeConfig {
                cache_dir,
                ..RuntimeConfig::default()
            },
        }
    }
}

/// Loads the detectors, reporting plugin files that could not be loaded.
pub fn load_detectors(setup: &DetectorSetup) -> anyhow::Result<(DetectorSet, Vec<LoadError>)> {
    let started = std::time::Instant::now();
    let (set, errors) = DetectorSet::load(&setup.runtime, setup.dir.as_deref())
        .context("cannot start the detector runtime")?;
    tracing::info!(
        detectors = set.detectors().len(),
        failed = errors.len(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "detectors loaded"
    );
    Ok((set, errors))
}

/// What every loaded detector may emit (from its metadata), for the gate.
pub fn grants(set: &DetectorSet) -> Grants {
    let infos: Vec<_> = set.detectors().into_iter().map(|d| d.info).collect();
    Grants::from_infos(&infos)
}

/// Runs every detector over one Service and passes the answers through the validation
/// gate ([`gate::screen`]). What the gate did is in the result's `gate` notes; callers
/// log them with [`log_gate_note`] (the controller once per distinct note).
pub fn detect_one(
    set: &mut DetectorSet,
    grants: &Grants,
    policy: &Policy,
    svc: &ServiceSnapshot,
) -> ServiceDetections {
    let mut d = set.detect(svc, &policy.cluster_domain);
    gate::screen(svc, &mut d, grants, policy);
    d
}

/// Logs one gate note, naming the Service, detector, toolset and field: refusals as
/// warnings, the rest (clamped rank, credentials withheld) at debug level.
pub fn log_gate_note(service: &ServiceRef, n: &GateNote) {
    if n.refused() {
        tracing::warn!(service = %service, detector = %n.detector, toolset = %n.toolset, field = %n.field, kind = %n.kind, "fragment refused: {}", n.message);
    } else {
        tracing::debug!(service = %service, detector = %n.detector, toolset = %n.toolset, kind = %n.kind, "{}", n.message);
    }
}

/// Runs every detector over every Service, in input order, through the gate.
pub fn detect_all(
    set: &mut DetectorSet,
    policy: &Policy,
    services: &[ServiceSnapshot],
) -> Vec<ServiceDetections> {
    let grants = grants(set);
    services
        .iter()
        .map(|s| {
            let d = detect_one(set, &grants, policy, s);
            for n in &d.gate {
                log_gate_note(&d.service, n);
            }
            d
        })
        .collect()
}

/// The probes a selection needs, each verifying TLS unless the toolset is configured with
/// `verify_ssl: false` (so the probe sees what HolmesGPT will see).
pub fn probe_targets(selection: &Selection) -> Vec<ProbeTarget<InstanceKey>> {
    selection
        .probes()
        .into_iter()
        .map(|req| {
            let verify_tls = selection
                .group(&req.key)
                .and_then(|g| g.chosen.fragment.config.get("verify_ssl"))
                .and_then(|v| v.as_bool())
                .unwrap_or(true);
            ProbeTarget {
                key: req.key,
                endpoint: req.endpoint,
                probe: req.probe,
                verify_tls,
                identification: req.identification,
            }
        })
        .collect()
}

/// Maps probe outcomes to the core's health verdicts, logging each unhealthy endpoint,
/// and puts each identified candidate in place in `selection` ([`Selection::adopt`]).
pub fn health_map(
    selection: &mut Selection,
    outcomes: Vec<(InstanceKey, ProbeOutcome)>,
) -> BTreeMap<InstanceKey, Health> {
    outcomes
        .into_iter()
        .map(|(key, outcome)| {
            let health = match outcome {
                ProbeOutcome::Healthy { identified, .. } => {
                    if let Some(proof) = identified {
                        adopt(selection, &key, proof);
                    }
                    Health::Healthy
                }
                ProbeOutcome::Unhealthy {
                    url,
                    reason,
                    attempts,
                } => {
                    tracing::warn!(toolset = %key.toolset, instance = %key.instance, %url, attempts, %reason, "endpoint unhealthy: left out");
                    Health::Unhealthy {
                        reason: format!("{url}: {reason}"),
                    }
                }
            };
            (key, health)
        })
        .collect()
}

/// Adopts an identified candidate, logging which one and why.
pub fn adopt(selection: &mut Selection, key: &InstanceKey, proof: crate::probe::Proof) {
    if selection.adopt(key, proof.candidate, proof.text)
        && let Some(g) = selection.group(key)
    {
        tracing::info!(toolset = %key.toolset, instance = %key.instance, endpoint = %g.chosen.fragment.endpoint, candidate = proof.candidate + 1, "backend identified");
    }
}

/// The result of the pure part of the pipeline.
pub struct Outcome {
    pub assembly: Assembly,
    /// The merged HolmesGPT document.
    pub document: serde_json::Value,
    pub merge: MergeReport,
}

/// Assembly and overrides: pure.
pub fn assemble_output(
    selection: &Selection,
    health: &BTreeMap<InstanceKey, Health>,
    probed_at: Option<&str>,
    overrides: &Overrides,
) -> Outcome {
    let assembly = assemble::assemble(selection, health, probed_at);
    let (document, merge) = overrides::merge(&assembly.document(), overrides);
    Outcome {
        assembly,
        document,
        merge,
    }
}

/// RFC 3339 time of `SOURCE_DATE_EPOCH` when set (reproducible output), else now.
pub fn timestamp() -> String {
    let t = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .map(|s| SystemTime::UNIX_EPOCH + Duration::from_secs(s))
        .unwrap_or_else(SystemTime::now);
    humantime::format_rfc3339_seconds(t).to_string()
}
