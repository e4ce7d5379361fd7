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
//!
//! Detectors key instances from labels, which do not always tie Services of one
//! installation together (prometheus-operator's governing `prometheus-operated` carries no
//! instance label; an operator's Services may carry only the custom resource's name). So
//! before choosing, groups of one toolset are folded together by stronger signals from
//! the Services themselves ([`crate::model::Grouping`]), in one namespace:
//! - a Service whose selector is a proper subset of another's selects (at least) the
//!   other's pods: its group folds into the other's (e.g. `prometheus-operated`, selector
//!   `app.kubernetes.io/name=prometheus`, into `prometheus-k8s`);
//! - equal selectors, or an owner reference in common (the custom resource an operator
//!   reconciles), fold the weaker group (lower best rank, then later key) into the
//!   stronger;
//! - a prometheus-operator governing Service (`operated-*` labels) folds into a
//!   non-governing Service whose selector shares a label with its own.
//!
//! A group folds only when that leads to exactly one installation. A governing Service no
//! signal folds goes to the only other installation of its backend in its namespace; with
//! several there, it selects the pods of all of them and stands for none: it is kept as a
//! sibling of one, never chosen ([`SiblingLoss::Ambiguous`]), so nothing is published for it.
//!
//! A fragment the detector could only name after its own Service (`<namespace>/<service>`)
//! is named after the custom resource that owns the Service instead, when it has exactly
//! one non-workload owner (operators make Services with fixed names, such as
//! grafana-operator v4's `grafana-service` for its `Grafana` resource). The folded group
//! keeps the key of the installation it folds into (named after its release or custom
//! resource), so the name does not depend on which Service wins.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::model::{
    Detection, Fragment, Grouping, HealthProbe, Identification, ServiceDetections, ServiceRef,
};

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
    /// A governing Service (prometheus-operator's `*-operated`) in a namespace holding
    /// several installations of its backend selects the pods of all of them: it stands for
    /// none (kept beside one of them only to be explained).
    Ambiguous { installations: usize },
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
            SiblingLoss::Ambiguous { installations } => write!(
                f,
                "a governing Service selecting the pods of {installations} installations stands for none of them"
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
    /// The endpoint candidate that proved itself, when the chosen fragment had candidates
    /// (contract 1.1 `identify`) and the host probed them ([`Selection::adopt`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identified: Option<Identified>,
}

/// Which endpoint candidate proved the backend's identity, and how.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Identified {
    /// Position in the detector's candidate list.
    pub candidate: usize,
    /// The candidate's own reason (from the detector).
    pub why: String,
    /// What the host saw, e.g. "GET https://...:9090/api/v1/status/buildinfo: HTTP 200
    /// with /data/version".
    pub proof: String,
    /// The chosen fragment as the detector returned it (restored by
    /// [`Selection::unadopt`]).
    #[serde(skip)]
    original: Box<Fragment>,
}

impl fmt::Display for Identified {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let total = self
            .original
            .identification
            .as_ref()
            .map_or(0, |i| i.candidates.len());
        write!(
            f,
            "candidate {} of {total} ({}) proved itself: {}",
            self.candidate + 1,
            self.why,
            self.proof
        )
    }
}

/// The outcome of selection, ordered by [`InstanceKey`].
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Selection {
    pub groups: Vec<InstanceGroup>,
}

/// A health check the host must run for a chosen candidate. The host answers with a
/// map from [`ProbeRequest::key`] to [`crate::assemble::Health`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProbeRequest {
    pub key: InstanceKey,
    pub service: ServiceRef,
    /// The fragment's endpoint (what HolmesGPT will use), for messages.
    pub endpoint: String,
    pub probe: HealthProbe,
    /// Candidates to identify first (the chosen fragment has some and none has been
    /// adopted yet); the host answers which one proved itself ([`Selection::adopt`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identification: Option<Identification>,
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
                    identification: match &g.identified {
                        Some(_) => None,
                        None => g
                            .chosen
                            .fragment
                            .identification
                            .clone()
                            .filter(|i| !i.candidates.is_empty() || i.required),
                    },
                })
            })
            .collect()
    }

    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    /// Puts endpoint candidate `candidate` of the chosen fragment of `key` in place of
    /// its endpoint, health probe and config (see [`Fragment::with_candidate`]),
    /// remembering the original and `proof`. False (nothing changed) when the group, the
    /// candidate or the identification is unknown.
    pub fn adopt(&mut self, key: &InstanceKey, candidate: usize, proof: String) -> bool {
        let Some(group) = self.group_mut(key) else {
            return false;
        };
        let original = match group.identified.take() {
            Some(previous) => previous.original,
            None => Box::new(group.chosen.fragment.clone()),
        };
        let Some(adopted) = original.with_candidate(candidate) else {
            group.chosen.fragment = (*original).clone();
            return false;
        };
        let why = original
            .identification
            .as_ref()
            .and_then(|i| i.candidates.get(candidate))
            .map(|c| c.why.clone())
            .unwrap_or_default();
        group.chosen.fragment = adopted;
        group.identified = Some(Identified {
            candidate,
            why,
            proof,
            original,
        });
        true
    }

    /// Undoes [`Selection::adopt`] (the adopted candidate stopped answering: identify
    /// again). False when nothing was adopted.
    pub fn unadopt(&mut self, key: &InstanceKey) -> bool {
        let Some(group) = self.group_mut(key) else {
            return false;
        };
        match group.identified.take() {
            Some(identified) => {
                group.chosen.fragment = *identified.original;
                true
            }
            None => false,
        }
    }

    fn group_mut(&mut self, key: &InstanceKey) -> Option<&mut InstanceGroup> {
        self.groups
            .binary_search_by(|g| g.key.cmp(key))
            .ok()
            .and_then(|i| self.groups.get_mut(i))
    }
}

/// Collects every matched fragment and picks one candidate per installation.
pub fn select(detections: &[ServiceDetections]) -> Selection {
    let mut by_key: BTreeMap<InstanceKey, Vec<Candidate>> = BTreeMap::new();
    let mut grouping: BTreeMap<&ServiceRef, &Grouping> = BTreeMap::new();
    for sd in detections {
        grouping.insert(&sd.service, &sd.grouping);
        for verdict in &sd.verdicts {
            let Ok(Detection::Matched(fragments)) = &verdict.outcome else {
                continue;
            };
            for (position, fragment) in fragments.iter().enumerate() {
                let mut fragment = fragment.clone();
                if let Some(owner) = owning_resource(&sd.service, &sd.grouping, &fragment) {
                    fragment.instance = format!("{}/{owner}", sd.service.namespace);
                }
                let candidate = Candidate {
                    service: sd.service.clone(),
                    trusted: sd.trusted,
                    detector: verdict.detector.clone(),
                    position,
                    fragment,
                };
                by_key.entry(candidate.key()).or_default().push(candidate);
            }
        }
    }

    let (by_key, ambiguous) = fold_installations(by_key, &grouping);
    let id = |c: &Candidate| (c.service.clone(), c.detector.clone(), c.position);
    let groups = by_key
        .into_iter()
        .filter_map(|(key, mut candidates)| {
            // Ambiguous governing Services last: they never stand for the installation.
            candidates.sort_by(|a, b| {
                (ambiguous.contains_key(&id(a)), a.order())
                    .cmp(&(ambiguous.contains_key(&id(b)), b.order()))
            });
            let mut iter = candidates.into_iter();
            let chosen = iter.next()?;
            if ambiguous.contains_key(&id(&chosen)) {
                // Only ambiguous candidates here: nothing to publish (cannot happen, as an
                // ambiguous group folds into a real installation).
                return None;
            }
            let siblings = iter
                .map(|candidate| {
                    let lost = if let Some(&installations) = ambiguous.get(&id(&candidate)) {
                        SiblingLoss::Ambiguous { installations }
                    } else if candidate.fragment.rank < chosen.fragment.rank {
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
                identified: None,
            })
        })
        .collect();
    Selection { groups }
}

/// Workload kinds that may own a Service without being the installation's name.
const WORKLOAD_KINDS: &[&str] = &[
    "Deployment",
    "StatefulSet",
    "DaemonSet",
    "ReplicaSet",
    "Job",
    "CronJob",
    "Pod",
    "Service",
    "Endpoints",
    "EndpointSlice",
];

/// The custom resource to name `fragment`'s installation after, when the detector could
/// only name it after the Service itself (`<namespace>/<service>`) and the Service has
/// exactly one owner that is not a workload: the resource an operator made it for (e.g.
/// grafana-operator v4's fixed `grafana-service`, owned by the `Grafana` resource).
fn owning_resource<'a>(
    service: &ServiceRef,
    grouping: &'a Grouping,
    fragment: &Fragment,
) -> Option<&'a str> {
    if fragment.instance != format!("{}/{}", service.namespace, service.name) {
        return None;
    }
    let mut owners = grouping
        .owners
        .iter()
        .filter(|o| !WORKLOAD_KINDS.contains(&o.kind.as_str()));
    match (owners.next(), owners.next()) {
        (Some(o), None) if !o.name.is_empty() => Some(o.name.as_str()),
        _ => None,
    }
}

/// Whether Service `a` (of group `a_key`, best rank `a_rank`) belongs to the installation
/// of Service `b` (group `b_key`, best rank `b_rank`): see the module documentation.
fn joins(a: (&Grouping, &InstanceKey, u32), b: (&Grouping, &InstanceKey, u32)) -> bool {
    let ((ga, a_key, a_rank), (gb, b_key, b_rank)) = (a, b);
    // Strict order between groups, so that symmetric signals fold one way only.
    let b_stronger = (b_rank, Reverse(b_key)) > (a_rank, Reverse(a_key));
    let (sa, sb) = (&ga.selector, &gb.selector);
    if !sa.is_empty() && !sb.is_empty() {
        let subset = sa.iter().all(|(k, v)| sb.get(k) == Some(v));
        if subset && sa.len() < sb.len() {
            return true;
        }
        if subset && sa.len() == sb.len() && b_stronger {
            return true;
        }
        if ga.governing && !gb.governing && sa.iter().any(|(k, v)| sb.get(k) == Some(v)) {
            return true;
        }
    }
    b_stronger && ga.owners.iter().any(|o| gb.owners.contains(o))
}

/// Identifies a candidate across folding: (Service, detector, position).
type CandidateId = (ServiceRef, String, usize);

/// Folds groups of one toolset that belong to one installation (module documentation).
/// Candidates of a folded group take the installation's instance key. Also returns the
/// candidates of governing groups that are ambiguous (they select the pods of several
/// installations of their backend), with the number of installations.
fn fold_installations(
    by_key: BTreeMap<InstanceKey, Vec<Candidate>>,
    grouping: &BTreeMap<&ServiceRef, &Grouping>,
) -> (
    BTreeMap<InstanceKey, Vec<Candidate>>,
    BTreeMap<CandidateId, usize>,
) {
    let none = Grouping::default();
    let info = |c: &Candidate| -> &Grouping { grouping.get(&c.service).copied().unwrap_or(&none) };
    let groups: Vec<(&InstanceKey, &Vec<Candidate>)> = by_key.iter().collect();
    let best: Vec<u32> = groups
        .iter()
        .map(|(_, cs)| cs.iter().map(|c| c.fragment.rank).max().unwrap_or(0))
        .collect();
    // Groups by (toolset, namespace of one of their Services): only those can fold.
    let mut buckets: BTreeMap<(&str, &str), BTreeSet<usize>> = BTreeMap::new();
    for (i, (key, cs)) in groups.iter().enumerate() {
        for c in cs.iter() {
            buckets
                .entry((key.toolset.as_str(), c.service.namespace.as_str()))
                .or_default()
                .insert(i);
        }
    }
    // Direct targets of each group.
    let mut targets: Vec<BTreeSet<usize>> = vec![BTreeSet::new(); groups.len()];
    for (i, (ka, cs)) in groups.iter().enumerate() {
        for a in cs.iter() {
            let ga = info(a);
            if ga.is_empty() {
                continue;
            }
            let near = buckets.get(&(ka.toolset.as_str(), a.service.namespace.as_str()));
            for &j in near.into_iter().flatten() {
                let Some((kb, bs)) = groups.get(j) else {
                    continue;
                };
                if j == i || targets[i].contains(&j) {
                    continue;
                }
                if bs.iter().any(|b| {
                    a.service.namespace == b.service.namespace
                        && joins((ga, ka, best[i]), (info(b), kb, best[j]))
                }) {
                    targets[i].insert(j);
                }
            }
        }
    }
    // A governing group (every Service `*-operated`) that no signal folds: with exactly one
    // other installation of its backend in its namespace, it is that one's; with several,
    // it selects all their pods and stands for none.
    let governing_only =
        |cs: &Vec<Candidate>| !cs.is_empty() && cs.iter().all(|c| info(c).governing);
    let backend = |cs: &Vec<Candidate>| cs.first().map(|c| c.fragment.backend.clone());
    let mut ambiguous: BTreeMap<CandidateId, usize> = BTreeMap::new();
    for (i, (ka, cs)) in groups.iter().enumerate() {
        if !targets[i].is_empty() || !governing_only(cs) {
            continue;
        }
        let Some(ns) = cs.first().map(|c| c.service.namespace.as_str()) else {
            continue;
        };
        let others: Vec<usize> = buckets
            .get(&(ka.toolset.as_str(), ns))
            .into_iter()
            .flatten()
            .copied()
            .filter(|&j| {
                j != i
                    && groups
                        .get(j)
                        .is_some_and(|(_, bs)| !governing_only(bs) && backend(bs) == backend(cs))
            })
            .collect();
        match others.as_slice() {
            [] => {}
            [one] => {
                targets[i].insert(*one);
            }
            several => {
                // Leads to several installations: ambiguous (below).
                targets[i].extend(several.iter().copied());
            }
        }
    }
    // The installations (groups that fold nowhere) each group leads to.
    fn roots(
        i: usize,
        targets: &[BTreeSet<usize>],
        memo: &mut [Option<BTreeSet<usize>>],
        active: &mut [bool],
    ) -> BTreeSet<usize> {
        if let Some(r) = &memo[i] {
            return r.clone();
        }
        if targets[i].is_empty() || active[i] {
            return BTreeSet::from([i]);
        }
        active[i] = true;
        let mut out = BTreeSet::new();
        for &j in &targets[i] {
            out.extend(roots(j, targets, memo, active));
        }
        active[i] = false;
        memo[i] = Some(out.clone());
        out
    }
    let mut memo = vec![None; groups.len()];
    let mut active = vec![false; groups.len()];
    let into: Vec<usize> = (0..groups.len())
        .map(|i| {
            let r = roots(i, &targets, &mut memo, &mut active);
            match (r.len(), r.first(), groups.get(i)) {
                (1, Some(&root), _) => root,
                // A governing group leading to several installations selects all their
                // pods: it stands for none, kept beside the first to be explained.
                (n, Some(&root), Some((_, cs))) if n > 1 && governing_only(cs) => {
                    for c in cs.iter() {
                        ambiguous.insert((c.service.clone(), c.detector.clone(), c.position), n);
                    }
                    root
                }
                _ => i,
            }
        })
        .collect();
    let keys: Vec<InstanceKey> = groups.iter().map(|(k, _)| (*k).clone()).collect();
    let mut out: BTreeMap<InstanceKey, Vec<Candidate>> = BTreeMap::new();
    for (i, (_, mut candidates)) in by_key.into_iter().enumerate() {
        let Some(key) = keys.get(into[i]) else {
            continue;
        };
        if into[i] != i {
            for c in &mut candidates {
                c.fragment.instance.clone_from(&key.instance);
            }
        }
        out.entry(key.clone()).or_default().extend(candidates);
    }
    (out, ambiguous)
}
