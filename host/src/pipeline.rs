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
use dynamic_toolset_runtime::{DetectorSet, Error as LoadError, RuntimeConfig, Spec};

use crate::detectors::declare::{self, Declarations, FailStrategy};

use crate::probe::{ProbeOutcome, ProbeTarget};

/// Which detectors to load and how they run: the bundled ones, the declarations of
/// `file`, plus the `*.wasm` components of `dir`, in a sandbox configured by `runtime`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DetectorSetup {
    /// Directory of third-party detector components; none: bundled detectors only.
    pub dir: Option<PathBuf>,
    /// Detector declarations (see [`crate::detectors::declare`]).
    pub file: Option<PathBuf>,
    pub runtime: RuntimeConfig,
}

impl DetectorSetup {
    /// The default sandbox, with precompiled detectors cached in `cache_dir` when set.
    pub fn new(dir: Option<PathBuf>, cache_dir: Option<PathBuf>) -> Self {
        Self {
            dir,
            file: None,
            runtime: RuntimeConfig {
                cache_dir,
                ..RuntimeConfig::default()
            },
        }
    }

    /// Reads the declarations (none without a file). The error names the file, and the
    /// entry and field at fault.
    pub fn declarations(&self) -> anyhow::Result<Declarations> {
        let Some(file) = &self.file else {
            return Ok(Declarations::default());
        };
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("cannot read detector declarations {}", file.display()))?;
        let base = file.parent().unwrap_or(std::path::Path::new("."));
        Ok(declare::parse(&text, &file.display().to_string(), base)?)
    }

    /// The `*.wasm` files of the detectors directory, sorted (none without one).
    pub fn dir_files(&self) -> anyhow::Result<Vec<PathBuf>> {
        let Some(dir) = &self.dir else {
            return Ok(Vec::new());
        };
        let mut files = Vec::new();
        for entry in std::fs::read_dir(dir)
            .with_context(|| format!("cannot read plugin directory {}", dir.display()))?
        {
            let path = entry
                .with_context(|| format!("cannot read plugin directory {}", dir.display()))?
                .path();
            if path.extension().and_then(|e| e.to_str()) == Some("wasm") && path.is_file() {
                files.push(path);
            }
        }
        files.sort();
        Ok(files)
    }

    /// What to load: the declarations' specs and the directory's files.
    pub fn specs(&self) -> anyhow::Result<(Declarations, Vec<Spec>)> {
        let declarations = self.declarations()?;
        let specs = declarations.specs(&self.dir_files()?);
        Ok((declarations, specs))
    }
}

/// A loaded detector set, the declarations it was loaded from, and what failed.
pub struct LoadedDetectors {
    pub set: DetectorSet,
    pub errors: Vec<LoadError>,
    pub declarations: Declarations,
}

impl LoadedDetectors {
    /// What the gate allows each detector: its metadata and declared output, and what
    /// the operator granted the declared ones.
    pub fn grants(&self) -> Grants {
        grants(&self.set, &self.declarations)
    }
}

/// Loads the detectors, reporting those that could not be loaded.
pub fn load_detectors(setup: &DetectorSetup) -> anyhow::Result<LoadedDetectors> {
    let started = std::time::Instant::now();
    let (declarations, specs) = setup.specs()?;
    let (set, errors) = DetectorSet::load_specs(&setup.runtime, specs)
        .context("cannot start the detector runtime")?;
    tracing::info!(
        detectors = set.detectors().len(),
        failed = errors.len(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "detectors loaded"
    );
    Ok(LoadedDetectors {
        set,
        errors,
        declarations,
    })
}

/// What every loaded detector may emit (from its metadata and declared output), narrowed
/// for declared detectors by what the operator granted them, for the gate.
pub fn grants(set: &DetectorSet, declarations: &Declarations) -> Grants {
    let infos: Vec<_> = set.detectors().into_iter().map(|d| d.info).collect();
    let mut grants = Grants::from_infos(&infos);
    for d in &declarations.detectors {
        if let (true, Some(g)) = (d.enabled, &d.grant) {
            grants.grant(&d.name, g.clone());
        }
    }
    grants
}

/// One declared or loaded detector's state, for logs, metrics and the API.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DetectorStatus {
    pub detector: String,
    /// `loaded`, `rejected` or `disabled`.
    pub status: &'static str,
    /// Why it was rejected.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Readiness depends on it (`fail_strategy: fail`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub required: bool,
}

/// Every detector's status: the loaded ones, the declared ones that failed (with the
/// reason) or are disabled, and undeclared files that failed.
pub fn statuses(
    set: &DetectorSet,
    errors: &[LoadError],
    declarations: &Declarations,
) -> Vec<DetectorStatus> {
    let loaded: Vec<_> = set.detectors();
    let mut out: Vec<DetectorStatus> = loaded
        .iter()
        .map(|d| DetectorStatus {
            detector: d.info.name.clone(),
            status: "loaded",
            reason: None,
            required: declarations
                .get(&d.info.name)
                .is_some_and(|x| x.fail_strategy == FailStrategy::Fail),
        })
        .collect();
    for e in errors {
        let Some(origin) = e.origin() else { continue };
        let declared = declarations
            .detectors
            .iter()
            .find(|d| &d.spec.origin == origin);
        let name = match (declared, origin) {
            (Some(d), _) => d.name.clone(),
            (None, dynamic_toolset_runtime::DetectorSource::Bundled(n)) => n.clone(),
            (None, dynamic_toolset_runtime::DetectorSource::File(p)) => p.display().to_string(),
        };
        let reason = match e {
            LoadError::Load { reason, .. } => reason.to_string(),
            other => other.to_string(),
        };
        // A kept last-good version is loaded; its new version's failure is the reason.
        if let Some(s) = out.iter_mut().find(|s| s.detector == name) {
            s.reason = Some(format!("new version rejected, previous one kept: {reason}"));
            continue;
        }
        out.push(DetectorStatus {
            required: declared.is_some_and(|d| d.fail_strategy == FailStrategy::Fail),
            detector: name,
            status: "rejected",
            reason: Some(reason),
        });
    }
    for d in &declarations.detectors {
        if !d.enabled && !out.iter().any(|s| s.detector == d.name) {
            out.push(DetectorStatus {
                detector: d.name.clone(),
                status: "disabled",
                reason: None,
                required: false,
            });
        }
    }
    out.sort_by(|a, b| a.detector.cmp(&b.detector));
    out
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
    grants: &Grants,
) -> Vec<ServiceDetections> {
    services
        .iter()
        .map(|s| {
            let d = detect_one(set, grants, policy, s);
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
                    identified,
                } => {
                    if let Some(proof) = identified {
                        adopt(selection, &key, proof);
                    }
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
