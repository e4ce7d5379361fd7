//! `discover --explain`: for every Service, what each detector said and what became of it.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use serde::Serialize;

use crate::assemble::{Assembly, Health, LeftOutReason};
use crate::model::{Detection, Fragment, GateNote, ServiceDetections, ServiceRef};
use crate::overrides::MergeReport;
use crate::select::{Candidate, InstanceGroup, InstanceKey, Selection, SiblingLoss};

/// What became of one fragment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FragmentOutcome {
    /// In the output as `toolset` (and `instance_name` in `config.instances`).
    Chosen {
        toolset: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        instance_name: Option<String>,
        health: Health,
        /// How the endpoint was settled when the detector named candidates (contract
        /// 1.1 `identify`): which one proved itself, or why the metadata's guess stands.
        #[serde(skip_serializing_if = "Option::is_none")]
        identification: Option<String>,
    },
    /// Chosen, then switched off by `enabled: false` in the overrides.
    DisabledByOverride { toolset: String },
    /// Another Service of the same installation won.
    Sibling { lost: SiblingLoss },
    /// Chosen for its installation but left out of the output.
    LeftOut { reason: LeftOutReason },
    /// Inconsistent inputs (selection or assembly built from other detections).
    Unknown { reason: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FragmentExplanation {
    pub toolset: String,
    pub backend: String,
    pub instance: String,
    pub rank: u32,
    pub endpoint: String,
    pub outcome: FragmentOutcome,
}

/// One detector's verdict on one Service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum VerdictExplanation {
    Matched {
        detector: String,
        fragments: Vec<FragmentExplanation>,
    },
    Declined {
        detector: String,
        reason: String,
    },
    Unrelated {
        detector: String,
    },
    Failed {
        detector: String,
        error: String,
    },
}

impl VerdictExplanation {
    fn detector(&self) -> &str {
        match self {
            VerdictExplanation::Matched { detector, .. }
            | VerdictExplanation::Declined { detector, .. }
            | VerdictExplanation::Unrelated { detector }
            | VerdictExplanation::Failed { detector, .. } => detector,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServiceExplanation {
    pub service: ServiceRef,
    /// Ordered by detector name.
    pub verdicts: Vec<VerdictExplanation>,
    /// What the validation gate refused or changed (see [`crate::gate`]).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub gate: Vec<GateNote>,
}

impl ServiceExplanation {
    /// True when every detector said "unrelated".
    pub fn unclaimed(&self) -> bool {
        self.gate.is_empty()
            && self
                .verdicts
                .iter()
                .all(|v| matches!(v, VerdictExplanation::Unrelated { .. }))
    }
}

/// The whole explanation, Services ordered by namespace/name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Explanation {
    pub services: Vec<ServiceExplanation>,
}

fn outcome(
    service: &ServiceRef,
    detector: &str,
    position: usize,
    fragment: &Fragment,
    selection: &Selection,
    assembly: &Assembly,
    disabled: &BTreeSet<&str>,
) -> FragmentOutcome {
    let key = InstanceKey::new(&fragment.toolset, &fragment.instance);
    // Selection may have folded the fragment into another installation (and renamed its
    // instance): its group is the one that holds it.
    let holds = |g: &&InstanceGroup| {
        let this = |c: &Candidate| {
            c.service == *service && c.detector == detector && c.position == position
        };
        this(&g.chosen) || g.siblings.iter().any(|s| this(&s.candidate))
    };
    let Some(group) = selection.group(&key).filter(holds).or_else(|| {
        selection
            .groups
            .iter()
            .filter(|g| g.key.toolset == fragment.toolset)
            .find(holds)
    }) else {
        // Cannot happen when `selection` was built from the same detections.
        return FragmentOutcome::Unknown {
            reason: format!("{key} is not in the selection"),
        };
    };
    let key = &group.key;
    let is_chosen = group.chosen.service == *service
        && group.chosen.detector == detector
        && group.chosen.position == position;
    if !is_chosen
        && let Some(s) = group.siblings.iter().find(|s| {
            s.candidate.service == *service
                && s.candidate.detector == detector
                && s.candidate.position == position
        })
    {
        return FragmentOutcome::Sibling {
            lost: s.lost.clone(),
        };
    }
    if let Some(left) = assembly.left_out_reason(key) {
        return FragmentOutcome::LeftOut {
            reason: left.reason.clone(),
        };
    }
    match assembly.placement(key) {
        Some(p) if disabled.contains(p.toolset.as_str()) => {
            FragmentOutcome::DisabledByOverride { toolset: p.toolset }
        }
        Some(p) => {
            let health = assembly
                .provenance
                .get(&p.toolset)
                .and_then(|prov| prov.instances.iter().find(|i| i.instance == key.instance))
                .map(|i| i.health.clone())
                .unwrap_or_default();
            let identification = identification(group, fragment, &health);
            FragmentOutcome::Chosen {
                toolset: p.toolset,
                instance_name: p.instance_name,
                health,
                identification,
            }
        }
        None => FragmentOutcome::Unknown {
            reason: format!("{key} is not in the assembled output"),
        },
    }
}

/// How a chosen fragment's endpoint was settled, when it had candidates.
fn identification(group: &InstanceGroup, fragment: &Fragment, health: &Health) -> Option<String> {
    if let Some(identified) = &group.identified {
        return Some(format!(
            "{identified}; endpoint {}",
            group.chosen.fragment.endpoint
        ));
    }
    let candidates = fragment.identification.as_ref()?.candidates.len();
    if candidates == 0 {
        return None;
    }
    Some(match health {
        Health::NotChecked => format!(
            "{candidates} candidate(s) not probed (no health checks): the metadata's guess {} is used",
            fragment.endpoint
        ),
        _ => format!(
            "none of {candidates} candidate(s) proved itself: the metadata's guess {} is used",
            fragment.endpoint
        ),
    })
}

/// Builds the explanation from the same inputs the configuration was built from.
pub fn explain(
    detections: &[ServiceDetections],
    selection: &Selection,
    assembly: &Assembly,
    merge: &MergeReport,
) -> Explanation {
    let disabled: BTreeSet<&str> = merge.disabled.iter().map(String::as_str).collect();
    let mut services: Vec<ServiceExplanation> = detections
        .iter()
        .map(|sd| {
            let mut verdicts: Vec<VerdictExplanation> = sd
                .verdicts
                .iter()
                .map(|v| {
                    let detector = v.detector.clone();
                    match &v.outcome {
                        Err(failure) => VerdictExplanation::Failed {
                            detector,
                            error: failure.to_string(),
                        },
                        Ok(Detection::Unrelated) => VerdictExplanation::Unrelated { detector },
                        Ok(Detection::Declined(reason)) => VerdictExplanation::Declined {
                            detector,
                            reason: reason.clone(),
                        },
                        Ok(Detection::Matched(fragments)) => VerdictExplanation::Matched {
                            fragments: fragments
                                .iter()
                                .enumerate()
                                .map(|(pos, f)| FragmentExplanation {
                                    toolset: f.toolset.clone(),
                                    backend: f.backend.clone(),
                                    instance: f.instance.clone(),
                                    rank: f.rank,
                                    endpoint: f.endpoint.clone(),
                                    outcome: outcome(
                                        &sd.service,
                                        &v.detector,
                                        pos,
                                        f,
                                        selection,
                                        assembly,
                                        &disabled,
                                    ),
                                })
                                .collect(),
                            detector,
                        },
                    }
                })
                .collect();
            verdicts.sort_by(|a, b| a.detector().cmp(b.detector()));
            ServiceExplanation {
                service: sd.service.clone(),
                verdicts,
                gate: sd.gate.clone(),
            }
        })
        .collect();
    services.sort_by(|a, b| a.service.cmp(&b.service));
    Explanation { services }
}

fn describe(outcome: &FragmentOutcome) -> String {
    match outcome {
        FragmentOutcome::Chosen {
            toolset,
            instance_name,
            health,
            identification,
        } => {
            let chosen = match instance_name {
                Some(n) => format!("chosen: {toolset} (instance {n}), {health}"),
                None => format!("chosen: {toolset}, {health}"),
            };
            match identification {
                Some(how) => format!("{chosen}; {how}"),
                None => chosen,
            }
        }
        FragmentOutcome::DisabledByOverride { toolset } => {
            format!("not used: {toolset} disabled by override (enabled: false)")
        }
        FragmentOutcome::Sibling { lost } => format!("not chosen: {lost}"),
        FragmentOutcome::LeftOut { reason } => format!("left out: {reason}"),
        FragmentOutcome::Unknown { reason } => format!("unknown: {reason}"),
    }
}

impl Explanation {
    /// Human text: one block per claimed Service, detectors aligned; Services nobody
    /// claimed listed compactly at the end.
    pub fn render_text(&self) -> String {
        let width = self
            .services
            .iter()
            .flat_map(|s| s.verdicts.iter().map(|v| v.detector().len()))
            .max()
            .unwrap_or(0);
        let mut out = String::new();
        let mut unclaimed = Vec::new();
        for s in &self.services {
            if s.unclaimed() {
                unclaimed.push(s.service.to_string());
                continue;
            }
            let _ = writeln!(out, "{}", s.service);
            let mut unrelated = Vec::new();
            for v in &s.verdicts {
                match v {
                    VerdictExplanation::Unrelated { detector } => unrelated.push(detector.as_str()),
                    VerdictExplanation::Declined { detector, reason } => {
                        let _ = writeln!(out, "  {detector:<width$}  declined: {reason}");
                    }
                    VerdictExplanation::Failed { detector, error } => {
                        let _ = writeln!(out, "  {detector:<width$}  FAILED: {error}");
                    }
                    VerdictExplanation::Matched {
                        detector,
                        fragments,
                    } => {
                        if fragments.is_empty() {
                            let _ = writeln!(out, "  {detector:<width$}  matched, no fragment");
                        }
                        for (i, f) in fragments.iter().enumerate() {
                            let name = if i == 0 { detector.as_str() } else { "" };
                            let _ = writeln!(
                                out,
                                "  {name:<width$}  matched {} [{}] instance={} rank={} {}",
                                f.toolset, f.backend, f.instance, f.rank, f.endpoint
                            );
                            let _ =
                                writeln!(out, "  {:<width$}    -> {}", "", describe(&f.outcome));
                        }
                    }
                }
            }
            for n in &s.gate {
                let verb = if n.refused() { "REFUSED" } else { "note" };
                let _ = writeln!(
                    out,
                    "  {:<width$}  {verb} {}: {}: {}",
                    n.detector, n.toolset, n.field, n.message
                );
            }
            if !unrelated.is_empty() {
                let _ = writeln!(out, "  {:<width$}  unrelated: {}", "", unrelated.join(", "));
            }
            out.push('\n');
        }
        if !unclaimed.is_empty() {
            let _ = writeln!(
                out,
                "No detector claimed {} Service(s): {}",
                unclaimed.len(),
                unclaimed.join(", ")
            );
        }
        out
    }
}
