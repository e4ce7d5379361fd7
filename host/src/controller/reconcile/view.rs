//! The loop's side of the REST API: it publishes a [`View`] of what it holds (rebuilt at
//! most every [`VIEW_MIN_INTERVAL`], never on a request: readers never touch the loop's
//! state) and serves `POST /api/v1/discover` by relisting, detecting, probing and answering
//! every request that arrived meanwhile with the same round.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use super::super::detect::DetectorsView;
use dynamic_toolset_core::render::{GENERATED_AT_ANNOTATION, TOOLSETS_KEY};
use dynamic_toolset_core::select::InstanceKey;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::Loop;
use crate::api::build::{self, Parts};
use crate::api::model::{Health, LimitsView, View, WriteView};
use crate::api::server::{ApiState, DiscoverRequest};
use crate::controller::state::Tracked;
use crate::controller::watch::Watched;
use crate::pipeline;

/// The view is rebuilt at most this often (a 10,000-Service view costs milliseconds).
pub const VIEW_MIN_INTERVAL: Duration = Duration::from_millis(500);

/// What a view is built from, to tell whether anything changed.
#[derive(Debug, PartialEq, Eq)]
struct Fingerprint {
    services: u64,
    health: u64,
    write: Option<String>,
    configmap: Option<String>,
}

/// The channels between the loop and the API, and what only the API needs.
pub struct ApiSide {
    view: watch::Sender<Arc<View>>,
    pub(super) requests: mpsc::Receiver<DiscoverRequest>,
    stats: watch::Receiver<DetectorsView>,
    /// Handed to the detection worker, which publishes its counters after every batch
    /// and the detectors after a reload.
    pub(super) stats_tx: Option<watch::Sender<DetectorsView>>,
    limits: LimitsView,
    pub(super) last_write: Option<WriteView>,
    pub(super) probed_at: BTreeMap<InstanceKey, String>,
    dirty: bool,
    built_at: Option<Instant>,
    /// What the last view was built from (nothing changed: no rebuild).
    fingerprint: Option<Fingerprint>,
    /// Bumped when probe results arrive.
    pub(super) health_version: u64,
    waiters: Vec<DiscoverRequest>,
    /// `lists_completed` the mirror must reach for the requested relist to be done.
    relist_target: Option<u64>,
}

/// The ends the loop keeps ([`ApiSide`]) and the ends the API reads ([`ApiState`]).
pub fn channels(detectors: DetectorsView, limits: LimitsView) -> (ApiSide, ApiState) {
    let (view_tx, view_rx) = watch::channel(Arc::new(View::default()));
    let (stats_tx, stats) = watch::channel(detectors);
    let (req_tx, req_rx) = mpsc::channel(64);
    (
        ApiSide {
            view: view_tx,
            requests: req_rx,
            stats,
            stats_tx: Some(stats_tx),
            limits,
            last_write: None,
            probed_at: BTreeMap::new(),
            dirty: true,
            built_at: None,
            fingerprint: None,
            health_version: 0,
            waiters: Vec::new(),
            relist_target: None,
        },
        ApiState {
            view: view_rx,
            discover: Some(req_tx),
        },
    )
}

impl Loop {
    /// Something the view shows may have changed.
    pub(super) fn view_changed(&mut self) {
        self.api.dirty = true;
    }

    /// Publishes a new view when something changed (at most every [`VIEW_MIN_INTERVAL`]
    /// unless `force`).
    pub(super) fn refresh_view(&mut self, force: bool) {
        if !self.api.dirty && !force {
            return;
        }
        if !force
            && self
                .api
                .built_at
                .is_some_and(|t| t.elapsed() < VIEW_MIN_INTERVAL)
        {
            return;
        }
        let started = std::time::Instant::now();
        let Ok(mirror) = self.services.read() else {
            return;
        };
        let cm_version = self.configmap.read().ok().and_then(|m| {
            m.objects
                .values()
                .next()
                .and_then(|c| c.metadata.resource_version.clone())
        });
        let fingerprint = Fingerprint {
            services: mirror.generation,
            health: self.api.health_version,
            write: self.api.last_write.as_ref().map(|w| w.at.clone()),
            configmap: cm_version,
        };
        if !force && self.api.fingerprint.as_ref() == Some(&fingerprint) {
            self.api.dirty = false;
            return;
        }
        // Built under the read lock (milliseconds for 10,000 Services) rather than copied out:
        // the watch waits that long at most, and no second copy of every Service is made.
        let services: Vec<(&str, &str, Option<&dynamic_toolset_core::ServiceDetections>)> = mirror
            .objects
            .iter()
            .map(|((ns, name), w)| {
                let d = match w {
                    Watched::Done(d) => d.as_deref(),
                    Watched::Pending(_) => None,
                };
                (ns.as_str(), name.as_str(), d)
            })
            .collect();
        let overrides = self
            .last_good_overrides
            .as_ref()
            .map(|(o, _)| o.clone())
            .unwrap_or_default();
        let health_map = self.tracker.health_map();
        let out = pipeline::assemble_output(&self.selection, &health_map, None, &overrides);
        let current = self
            .configmap
            .read()
            .ok()
            .and_then(|m| m.objects.values().next().cloned());
        let toolsets_yaml = current
            .as_ref()
            .and_then(|c| c.data.as_ref())
            .and_then(|d| d.get(TOOLSETS_KEY).cloned())
            .unwrap_or_default();
        let generated_at = current
            .as_ref()
            .and_then(|c| c.metadata.annotations.as_ref())
            .and_then(|a| a.get(GENERATED_AT_ANNOTATION).cloned());
        let tracker = &self.tracker;
        self.api.probed_at.retain(|k, _| tracker.state(k).is_some());
        let probed_at = &self.api.probed_at;
        let health = |k: &InstanceKey| -> (Health, Option<String>, Option<String>) {
            let when = probed_at.get(k).cloned();
            match tracker.state(k) {
                Some(Tracked::Healthy {
                    failures,
                    last_reason,
                }) => (
                    Health::Healthy,
                    when,
                    (*failures > 0).then(|| last_reason.clone()),
                ),
                Some(Tracked::Unhealthy { reason }) => {
                    (Health::Unhealthy, when, Some(reason.clone()))
                }
                Some(Tracked::Pending { reason }) => (
                    Health::Unknown,
                    when,
                    (!reason.is_empty()).then(|| reason.clone()),
                ),
                None => (Health::Unknown, None, None),
            }
        };
        let detectors = self.api.stats.borrow().clone();
        let last_error = self
            .readiness
            .read()
            .ok()
            .and_then(|r| r.last_error.clone());
        let parts = Parts {
            services,
            selection: &self.selection,
            assembly: &out.assembly,
            document: &out.document,
            merge: &out.merge,
            toolsets_yaml,
            generated_at,
            health: &health,
            detectors: &detectors.infos,
            stats: &detectors.stats,
            statuses: &detectors.statuses,
            limits: self.api.limits.clone(),
            last_write: self.api.last_write.clone(),
            last_error,
        };
        let view = build::view(&parts);
        let count = view.services.len();
        drop(parts);
        drop(mirror);
        // The old view is dropped before the next one is built (readers holding it keep it).
        self.api.view.send_replace(Arc::new(view));
        self.api.dirty = false;
        self.api.fingerprint = Some(fingerprint);
        self.api.built_at = Some(Instant::now());
        tracing::debug!(
            services = count,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "API view rebuilt"
        );
    }

    /// Takes a discover request (and every other one already waiting). True when a relist
    /// must start (none was in progress for earlier requests).
    pub(super) fn discover_requested(&mut self, first: DiscoverRequest, scopes: u64) -> bool {
        self.api.waiters.push(first);
        while let Ok(more) = self.api.requests.try_recv() {
            self.api.waiters.push(more);
        }
        if self.api.relist_target.is_some() {
            return false;
        }
        let done = self.services.read().map(|m| m.lists_completed).unwrap_or(0);
        self.api.relist_target = Some(done + scopes.max(1));
        true
    }

    /// Answers the waiting discover requests once their round is complete: the relist
    /// swapped in, every Service detected and selected, and the probes back.
    pub(super) fn answer_discover(&mut self) {
        let Some(target) = self.api.relist_target else {
            return;
        };
        let settled = self.services.read().is_ok_and(|m| {
            m.lists_completed >= target
                && !m.listing()
                && m.generation == self.seen_generation
                && m.objects.values().all(|w| matches!(w, Watched::Done(_)))
        });
        if !settled || !self.in_flight.is_empty() {
            return;
        }
        self.refresh_view(true);
        self.api.relist_target = None;
        let n = self.api.waiters.len();
        for w in self.api.waiters.drain(..) {
            let _ = w.send(());
        }
        tracing::info!(
            requests = n,
            "discovery round requested through the API done"
        );
    }
}
