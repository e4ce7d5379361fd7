//! Builds the API's [`View`] from what the controller holds: the watched Services and their
//! detections, the selection, the assembled output with the overrides' effect, health, and
//! the detectors. Pure: the controller calls it and publishes the result.

use std::collections::{BTreeMap, BTreeSet};

use dynamic_toolset_core::assemble::Assembly;
use dynamic_toolset_core::overrides::MergeReport;
use dynamic_toolset_core::select::{InstanceKey, Selection};
use dynamic_toolset_core::{Detection, ServiceDetections, ServiceRef};
use dynamic_toolset_runtime::{DetectorSource, DetectorStats as RuntimeStats, LoadedInfo};

use super::model::{
    DetectorStats, DetectorView, Health, LimitsView, Outcome, OverrideEffect, Provenance,
    ServiceView, ToolsetView, VerdictView, View, WriteView,
};

/// Health of one installation for the view: the verdict, when it was last probed, and why
/// it failed (if it did).
pub type HealthInfo = (Health, Option<String>, Option<String>);

/// Everything a view is made of.
pub struct Parts<'a> {
    /// Every watched Service as (namespace, name), sorted, with its detections when any
    /// detector did more than answer "unrelated".
    pub services: Vec<(&'a str, &'a str, Option<&'a ServiceDetections>)>,
    pub selection: &'a Selection,
    pub assembly: &'a Assembly,
    /// The merged document (`{"toolsets": ...}` after the overrides).
    pub document: &'a serde_json::Value,
    pub merge: &'a MergeReport,
    pub toolsets_yaml: String,
    pub generated_at: Option<String>,
    /// Health as tracked: the verdict and, when probed, when and why.
    pub health: &'a dyn Fn(&InstanceKey) -> HealthInfo,
    pub detectors: &'a [LoadedInfo],
    pub stats: &'a [RuntimeStats],
    /// Every detector's status (loaded, rejected with the reason, disabled).
    pub statuses: &'a [crate::pipeline::DetectorStatus],
    pub limits: LimitsView,
    pub last_write: Option<WriteView>,
    pub last_error: Option<String>,
}

fn effect(name: &str, merge: &MergeReport) -> OverrideEffect {
    let has = |v: &[String]| v.iter().any(|n| n == name);
    if has(&merge.disabled) {
        OverrideEffect::Disabled
    } else if has(&merge.added) {
        OverrideEffect::Added
    } else if has(&merge.modified) {
        OverrideEffect::Changed
    } else {
        OverrideEffect::None
    }
}

fn toolsets(p: &Parts<'_>, versions: &BTreeMap<&str, &str>) -> Vec<ToolsetView> {
    let Some(entries) = p.document.get("toolsets").and_then(|t| t.as_object()) else {
        return vec![];
    };
    entries
        .iter()
        .map(|(name, config)| {
            let provenance = p
                .assembly
                .provenance
                .get(name)
                .map(|tp| {
                    tp.instances
                        .iter()
                        .map(|i| {
                            let key = InstanceKey::new(&tp.detected_as, &i.instance);
                            let (health, last_probe, reason) = (p.health)(&key);
                            Provenance {
                                instance: i.instance.clone(),
                                service: i.service.to_string(),
                                detector: i.detector.clone(),
                                detector_version: versions
                                    .get(i.detector.as_str())
                                    .map(|v| v.to_string())
                                    .unwrap_or_default(),
                                endpoint: i.endpoint.clone(),
                                health,
                                last_probe,
                                health_reason: reason,
                            }
                        })
                        .collect()
                })
                .unwrap_or_default();
            ToolsetView {
                name: name.clone(),
                enabled: config.get("enabled").and_then(|e| e.as_bool()) != Some(false),
                config: config.clone(),
                override_effect: effect(name, p.merge),
                provenance,
            }
        })
        .collect()
}

/// `(namespace, name)` of a Service, borrowed.
type Key<'a> = (&'a str, &'a str);

fn key(r: &ServiceRef) -> Key<'_> {
    (r.namespace.as_str(), r.name.as_str())
}

/// Why each Service that had a candidate is not (fully) in the output.
fn not_chosen<'a>(p: &Parts<'a>) -> (BTreeSet<Key<'a>>, BTreeMap<Key<'a>, Vec<String>>) {
    let chosen: BTreeSet<Key<'a>> = p
        .assembly
        .provenance
        .values()
        .flat_map(|tp| tp.instances.iter().map(|i| key(&i.service)))
        .collect();
    let mut why: BTreeMap<Key<'a>, Vec<String>> = BTreeMap::new();
    for g in &p.selection.groups {
        for s in &g.siblings {
            why.entry(key(&s.candidate.service))
                .or_default()
                .push(format!(
                    "{} {}: another Service of the installation won ({})",
                    g.key.toolset, g.key.instance, s.lost
                ));
        }
    }
    for l in &p.assembly.left_out {
        why.entry(key(&l.service))
            .or_default()
            .push(format!("{} {}: {}", l.toolset, l.instance, l.reason));
    }
    (chosen, why)
}

fn verdicts(d: &ServiceDetections) -> Vec<VerdictView> {
    let mut out = vec![];
    for v in &d.verdicts {
        let base = |outcome, reason: Option<String>| VerdictView {
            detector: v.detector.clone(),
            outcome,
            reason,
            toolset: None,
            instance: None,
            endpoint: None,
        };
        match &v.outcome {
            Ok(Detection::Unrelated) => {}
            Ok(Detection::Declined(why)) => out.push(base(Outcome::Declined, Some(why.clone()))),
            Err(f) => out.push(base(
                Outcome::Failed,
                Some(format!("{}: {}", f.kind.as_str(), f.message)),
            )),
            Ok(Detection::Matched(frags)) => out.extend(frags.iter().map(|f| VerdictView {
                toolset: Some(f.toolset.clone()),
                instance: Some(f.instance.clone()),
                endpoint: Some(f.endpoint.clone()),
                ..base(Outcome::Matched, None)
            })),
        }
    }
    out.extend(d.gate.iter().filter(|n| n.refused()).map(|n| VerdictView {
        detector: n.detector.clone(),
        outcome: Outcome::Refused,
        reason: Some(format!("{}: {}", n.field, n.message)),
        toolset: Some(n.toolset.clone()),
        instance: None,
        endpoint: None,
    }));
    out
}

fn detectors(p: &Parts<'_>) -> Vec<DetectorView> {
    let stats: BTreeMap<&str, &RuntimeStats> =
        p.stats.iter().map(|s| (s.detector.as_str(), s)).collect();
    let status = |name: &str| p.statuses.iter().find(|s| s.detector == name);
    let mut out: Vec<DetectorView> = p
        .detectors
        .iter()
        .map(|d| {
            let s = stats.get(d.info.name.as_str());
            let mut failures = BTreeMap::new();
            if let Some(s) = s {
                for (k, n) in [
                    ("timeout", s.failures.timeout),
                    ("out_of_memory", s.failures.out_of_memory),
                    ("trap", s.failures.trap),
                    ("invalid_output", s.failures.invalid_output),
                ] {
                    if n > 0 {
                        failures.insert(k.to_string(), n);
                    }
                }
            }
            let mean_us = s.and_then(|s| {
                (s.calls > 0).then(|| (s.total_time.as_micros() / u128::from(s.calls)) as u64)
            });
            DetectorView {
                name: d.info.name.clone(),
                status: "loaded".into(),
                reason: status(&d.info.name).and_then(|s| s.reason.clone()),
                emits: d.info.emits.as_ref().map(|e| e.toolsets.clone()),
                http_apis: d.info.http_apis.iter().map(|a| a.toolset.clone()).collect(),
                version: d.info.version.clone(),
                source: match &d.source {
                    DetectorSource::Bundled(_) => "bundled".into(),
                    DetectorSource::File(path) => path.display().to_string(),
                },
                sha256: d.sha256.clone(),
                wit_version: dynamic_toolset_runtime::WIT_VERSION.to_string(),
                limits: p.limits.clone(),
                stats: DetectorStats {
                    calls: s.map_or(0, |s| s.calls),
                    matches: s.map_or(0, |s| s.matched),
                    declines: s.map_or(0, |s| s.declined),
                    failures,
                    call_mean_us: mean_us,
                    call_max_us: s.map(|s| s.max_time.as_micros() as u64),
                },
            }
        })
        .collect();
    for s in p.statuses.iter().filter(|s| s.status != "loaded") {
        out.push(DetectorView {
            name: s.detector.clone(),
            status: s.status.to_string(),
            reason: s.reason.clone(),
            emits: None,
            http_apis: Vec::new(),
            version: String::new(),
            source: String::new(),
            sha256: String::new(),
            wit_version: dynamic_toolset_runtime::WIT_VERSION.to_string(),
            limits: p.limits.clone(),
            stats: DetectorStats::default(),
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// The view of `p`.
pub fn view(p: &Parts<'_>) -> View {
    let versions: BTreeMap<&str, &str> = p
        .detectors
        .iter()
        .map(|d| (d.info.name.as_str(), d.info.version.as_str()))
        .collect();
    let (chosen, why) = not_chosen(p);
    let services = p
        .services
        .iter()
        .map(|&(ns, name, d)| {
            let is_chosen = chosen.contains(&(ns, name));
            ServiceView {
                namespace: ns.to_string(),
                name: name.to_string(),
                verdicts: d.map(verdicts).unwrap_or_default(),
                chosen: is_chosen,
                not_chosen_because: if is_chosen {
                    vec![]
                } else {
                    why.get(&(ns, name)).cloned().unwrap_or_default()
                },
            }
        })
        .collect();
    View {
        generated_at: p.generated_at.clone(),
        toolsets_yaml: p.toolsets_yaml.clone(),
        toolsets: toolsets(p, &versions),
        services,
        detectors: detectors(p),
        last_write: p.last_write.clone(),
        last_error: p.last_error.clone(),
    }
}
