//! Instance selection: which Service stands for each backend installation.
//!
//! Every `Matched` fragment becomes a [`Candidate`]. Candidates are grouped by
//! [`InstanceKey`] (toolset, instance key): Services of one installation (a headless
//! twin, an operator's governing Service, query vs query-frontend) share a key and only
//! one of them may reach the configuration. The chosen one is the candidate with the
//! highest rank; equal ranks are broken by Service namespace, then name, then detector
//! name, then the fragment's position in the detector's answer — so the result never
//! depends on the order Services were listed in. The others are kept as [`Sibling`]s with
//! the reason they lost, for `--explain`.

use std::cmp::Reverse;
use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::model::{Detection, Fragment, HealthProbe, ServiceDetections, ServiceRef};

/// Identifies one backend installation offering one toolset.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct InstanceKey {
    /// HolmesGPT toolset name from the fragment, e.g. "prometheus/metrics".
    pub toolset: String,
    /// Installation key from the fragment, e.g. "monitoring/kube-prometheus-stack".
    pub instance: String,
}

impl InstanceKey {
    pub fn new(toolset: impl Into<String>, instance: impl Into<String>) -> Self {
        InstanceKey {
            toolset: toolset.into(),
            instance: instance.into(),
        }
    }
}

impl fmt::Display for InstanceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} [{}]", self.toolset, self.instance)
    }
}

/// One fragment together with the Service and detector it came from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Candidate {
    pub service: ServiceRef,
    /// The Service's namespace is trusted with credentials (see [`ServiceDetections::trusted`]).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub trusted: bool,
    pub detector: String,
    /// Position of the fragment in the detector's answer (tie-breaker of last resort).
    pub position: usize,
    pub fragment: Fragment,
}

impl Candidate {
    pub fn key(&self) -> InstanceKey {
        InstanceKey::new(&self.fragment.toolset, &self.fragment.instance)
    }

    /// Sort key: best candidate first.
    fn order(&self) -> (Reverse<u32>, &ServiceRef, &str, usize) {
        (
            Reverse(self.fragment.rank),
            &self.service,
            self.detector.as_str(),
            self.position,
        )
    }
}

/// Why a sibling was not chosen for its instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SiblingLoss {
    /// The winner has a higher rank.
    LowerRank {
        winner: ServiceRef,
        winner_rank: u32,
    },
    /// Same rank; the winner comes first by namespace/name (then detector, position).
    TieBreak {
        winner: ServiceRef,
        winner_detector: String,
    },
}

impl fmt::Display for SiblingLoss {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SiblingLoss::LowerRank {
                winner,
                winner_rank,
            } => write!(f, "lower rank than {winner} (rank {winner_rank})"),
            SiblingLoss::TieBreak {
                winner,
                winner_detector,
            } => write!(
                f,
                "same rank as {winner} ({winner_detector}), which comes first by namespace/name"
            ),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sibling {
    pub candidate: Candidate,
    pub lost: SiblingLoss,
}

/// All candidates of one installation: the chosen one and the siblings it beat.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InstanceGroup {
    pub key: InstanceKey,
    pub chosen: Candidate,
    /// Best first.
    pub siblings: Vec<Sibling>,
}

/// The outcome of selection, ordered by [`InstanceKey`].
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Selection {
    pub groups: Vec<InstanceGroup>,
}

/// A health check the host must run for a chosen candidate. The host answers with a
/// map from [`ProbeRequest::key`] to [`crate::assemble::Health`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProbeRequest {
    pub key: InstanceKey,
    pub service: ServiceRef,
    /// The fragment's endpoint (what HolmesGPT will use), for messages.
    pub endpoint: String,
    pub probe: HealthProbe,
}

impl ProbeRequest {
    /// URL to probe: the endpoint's host with the probe's scheme, port and path
    /// (see [`HealthProbe::url_for`]).
    pub fn url(&self) -> Result<String, crate::Error> {
        self.probe.url_for(&self.endpoint)
    }
}

impl Selection {
    /// The group of one installation.
    pub fn group(&self, key: &InstanceKey) -> Option<&InstanceGroup> {
        self.groups
            .binary_search_by(|g| g.key.cmp(key))
            .ok()
            .and_then(|i| self.groups.get(i))
    }

    /// Probes to run, one per chosen candidate that declares one, ordered by key.
    pub fn probes(&self) -> Vec<ProbeRequest> {
        self.groups
            .iter()
            .filter_map(|g| {
                g.chosen.fragment.health.as_ref().map(|probe| ProbeRequest {
                    key: g.key.clone(),
                    service: g.chosen.service.clone(),
                    endpoint: g.chosen.fragment.endpoint.clone(),
                    probe: probe.clone(),
                })
            })
            .collect()
    }

    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }
}

/// Collects every matched fragment and picks one candidate per installation.
pub fn select(detections: &[ServiceDetections]) -> Selection {
    let mut by_key: BTreeMap<InstanceKey, Vec<Candidate>> = BTreeMap::new();
    for sd in detections {
        for verdict in &sd.verdicts {
            let Ok(Detection::Matched(fragments)) = &verdict.outcome else {
                continue;
            };
            for (position, fragment) in fragments.iter().enumerate() {
                let candidate = Candidate {
                    service: sd.service.clone(),
                    trusted: sd.trusted,
                    detector: verdict.detector.clone(),
                    position,
                    fragment: fragment.clone(),
                };
                by_key.entry(candidate.key()).or_default().push(candidate);
            }
        }
    }

    let groups = by_key
        .into_iter()
        .filter_map(|(key, mut candidates)| {
            candidates.sort_by(|a, b| a.order().cmp(&b.order()));
            let mut iter = candidates.into_iter();
            let chosen = iter.next()?;
            let siblings = iter
                .map(|candidate| {
                    let lost = if candidate.fragment.rank < chosen.fragment.rank {
                        SiblingLoss::LowerRank {
                            winner: chosen.service.clone(),
                            winner_rank: chosen.fragment.rank,
                        }
                    } else {
                        SiblingLoss::TieBreak {
                            winner: chosen.service.clone(),
                            winner_detector: chosen.detector.clone(),
                        }
                    };
                    Sibling { candidate, lost }
                })
                .collect();
            Some(InstanceGroup {
                key,
                chosen,
                siblings,
            })
        })
        .collect();
    Selection { groups }
}
