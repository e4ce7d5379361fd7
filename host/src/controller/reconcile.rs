//! The third step of the route, and the loop that drives it: select from the
//! detections, probe the chosen installations, assemble the configuration with the
//! admin's overrides, decide ([`state`]) and hand the ConfigMap to [`apply`]. Lives in
//! the controller's task; the watches, the detection worker, the probes and the lease
//! run beside it and signal it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use dynamic_toolset_core::ServiceDetections;
use dynamic_toolset_core::overrides::Overrides;
use dynamic_toolset_core::render::{Discovery, Generated, OVERRIDES_KEY};
use dynamic_toolset_core::select::{self, InstanceKey, Selection};
use k8s_openapi::api::core::v1::ConfigMap;
use tokio::sync::{Semaphore, mpsc, watch as signal};
use tokio::time::Instant;

use super::state::{self, Action, HealthTracker, Leadership};
use super::watch::{self, Watched};
use super::{AbortOnDrop, ControllerOptions, Readiness, apply, detect, events, lease, mirror};
use crate::metrics::{ControllerMetrics, WriteStatus};
use crate::pipeline;
use crate::probe::{ProbeOutcome, Prober};

pub(super) mod view;

/// Probe outcomes of one batch, and how long it took.
type ProbeResults = (Vec<(InstanceKey, ProbeOutcome)>, std::time::Duration);

/// Lives in the loop task.
struct Loop {
    client: kube::Client,
    opts: ControllerOptions,
    services: mirror::Shared<Watched>,
    /// Mirror generation the current selection was computed from.
    seen_generation: u64,
    configmap: mirror::Shared<ConfigMap>,
    selection: Selection,
    tracker: HealthTracker,
    prober: Option<Arc<Prober>>,
    /// Installations with a probe running.
    in_flight: BTreeSet<InstanceKey>,
    probes: tokio::task::JoinSet<()>,
    probe_tx: mpsc::UnboundedSender<ProbeResults>,
    readiness: Arc<RwLock<Readiness>>,
    metrics: Arc<ControllerMetrics>,
    events: events::EventSink,
    /// Wakes the loop (the ConfigMap view changed outside the watch: after a conflict).
    wake: mpsc::Sender<()>,
    /// Last valid overrides and their text (used while the ConfigMap holds invalid ones,
    /// and written back when the ConfigMap is recreated).
    last_good_overrides: Option<(Overrides, Option<String>)>,
    /// The last overrides text parsed and its result: the loop steps often (every
    /// event), the text rarely changes, and a large valid file costs milliseconds.
    parsed_overrides: Option<(String, Result<Overrides, String>)>,
    /// The right to write, as the lease loop last established it (None: follower).
    leadership: Option<Leadership>,
    /// Last overrides error reported (to report each distinct one once).
    reported_overrides_error: Option<String>,
    /// The installations' health as last exported to the metrics.
    exported_health: Vec<(InstanceKey, bool)>,
    /// The REST API's view and discover requests.
    api: view::ApiSide,
    /// Endpoint candidates that proved themselves, kept across discovery passes while
    /// the detector names the same candidates (health then probes only the winner).
    identified: BTreeMap<InstanceKey, Winner>,
    /// After a detector reload: the mirror's `lists_completed` to reach before selecting
    /// again (until then the mirror may hold detections of both versions).
    hold_until_list: Option<u64>,
}

/// An identified installation: its candidates' endpoints (to notice a change) and proof.
struct Winner {
    candidates: Vec<String>,
    proof: crate::probe::Proof,
}

/// The endpoints of the chosen fragment's candidates of `key`, if it has any.
fn candidate_endpoints(selection: &Selection, key: &InstanceKey) -> Option<Vec<String>> {
    let id = selection
        .group(key)?
        .chosen
        .fragment
        .identification
        .as_ref()?;
    Some(id.candidates.iter().map(|c| c.endpoint.clone()).collect())
}

pub(super) async fn main_loop(
    client: kube::Client,
    opts: ControllerOptions,
    detectors: super::Detectors,
    mut shutdown: signal::Receiver<bool>,
    readiness: Arc<RwLock<Readiness>>,
    metrics: Arc<ControllerMetrics>,
    mut api: view::ApiSide,
) {
    // watch -> detection worker: snapshots are pending; worker -> loop: detected.
    let (pending_tx, pending_rx) = mpsc::channel::<()>(1);
    let (detected_tx, mut detected_rx) = mpsc::channel::<()>(1);
    let (configmap_changed, mut configmap_rx) = mpsc::channel::<()>(1);
    let (probe_tx, mut probe_rx) = mpsc::unbounded_channel::<ProbeResults>();
    let services: mirror::Shared<Watched> = Arc::default();
    let configmap: mirror::Shared<ConfigMap> = Arc::default();
    // Dropped (aborted) with this future, also when the controller task is aborted.
    let mut watches = tokio::task::JoinSet::new();

    let mut services_watch = watch::services(&client, &opts, services.clone(), pending_tx.clone());
    // Hot reload: the watcher prepares new detectors, the worker swaps them in and asks
    // for a relist, during which nothing is selected (no pass mixes versions).
    let (reload_tx, reload_rx) = mpsc::channel(1);
    let (relist_tx, mut relist_rx) = mpsc::channel::<()>(1);
    if let Some((setup, interval)) = detectors.reload.clone() {
        watches.spawn(super::reload::watch(
            setup,
            interval,
            detectors.loaded.set.reloader(),
            reload_tx,
            metrics.clone(),
            super::reload::ReloadEvents {
                sink: events::EventSink::new(client.clone(), &opts.reporter),
                namespace: opts.configmap_namespace.clone(),
                configmap: opts.configmap_name.clone(),
            },
        ));
    }
    watches.spawn(detect::worker(
        detectors.loaded,
        opts.policy.clone(),
        services.clone(),
        metrics.clone(),
        Arc::new(Semaphore::new(detect::DETECT_CONCURRENCY)),
        detect::Signals {
            wake: pending_rx,
            done: detected_tx,
            stats: api.stats_tx.take(),
            reloads: reload_rx,
            relist: relist_tx,
            readiness: readiness.clone(),
        },
    ));
    watches.spawn(watch::configmap(
        &client,
        &opts,
        configmap.clone(),
        configmap_changed.clone(),
    ));

    let (leader_tx, mut leader_rx) = signal::channel(
        opts.leader
            .is_none()
            .then(|| Leadership::sole(&opts.reporter)),
    );
    // Without leader election the sender must outlive the loop (a closed channel ends it).
    let (leader_task, _always_leader) = match opts.leader.clone() {
        Some(l) => (
            Some(AbortOnDrop::new(tokio::spawn(lease::lead(
                client.clone(),
                l,
                leader_tx,
                shutdown.clone(),
            )))),
            None,
        ),
        None => (None, Some(leader_tx)),
    };

    let prober = match &opts.health {
        Some(h) => match Prober::new(h.probe.clone()) {
            Ok(p) => Some(Arc::new(p)),
            Err(e) => {
                tracing::error!("health checks disabled: {e}");
                None
            }
        },
        None => None,
    };
    let mut lp = Loop {
        events: events::EventSink::new(client.clone(), &opts.reporter),
        wake: configmap_changed,
        client,
        tracker: HealthTracker::new(
            opts.health
                .as_ref()
                .map(|h| h.failure_threshold)
                .unwrap_or(1),
        ),
        opts,
        services,
        configmap,
        seen_generation: 0,
        selection: Selection::default(),
        prober,
        in_flight: BTreeSet::new(),
        probes: tokio::task::JoinSet::new(),
        probe_tx,
        readiness,
        metrics,
        last_good_overrides: None,
        parsed_overrides: None,
        reported_overrides_error: None,
        leadership: None,
        exported_health: Vec::new(),
        api,
        identified: BTreeMap::new(),
        hold_until_list: None,
    };

    lp.leadership = leader_rx.borrow().clone();
    lp.metrics.set_leader(lp.leadership.is_some());
    lp.set_readiness(|r| r.heartbeat = Some(std::time::Instant::now()));

    let at_least = |d: Duration| d.max(Duration::from_millis(10));
    let health_every = lp
        .opts
        .health
        .as_ref()
        .map(|h| h.interval)
        .unwrap_or(Duration::from_secs(3600));
    let mut resync = tokio::time::interval(at_least(lp.opts.discovery_interval));
    let mut health = tokio::time::interval(at_least(health_every));
    let mut reconcile = tokio::time::interval(at_least(lp.opts.reconciliation_interval));
    // Liveness: the loop beats at least this often when idle.
    let mut heartbeat = tokio::time::interval(Duration::from_secs(1));
    for t in [&mut resync, &mut health, &mut reconcile, &mut heartbeat] {
        t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        t.reset();
    }
    let mut debounce_until: Option<Instant> = None;
    let mut services_dirty = true;
    let mut health_round = false;

    loop {
        let deadline = debounce_until;
        tokio::select! {
            // A dropped Handle (Err) stops the controller too.
            _ = shutdown.changed() => break,
            Some(()) = detected_rx.recv() => {
                debounce_until.get_or_insert_with(|| Instant::now() + lp.opts.debounce);
                continue;
            }
            _ = tokio::time::sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => {
                debounce_until = None;
                services_dirty = true;
            }
            Some(()) = configmap_rx.recv() => {}
            Some((results, took)) = probe_rx.recv() => lp.record(results, took),
            r = leader_rx.changed() => {
                if r.is_err() { break; }
                let leader = leader_rx.borrow_and_update().is_some();
                tracing::info!(leader, "leadership changed");
            }
            _ = resync.tick() => {
                // A full resync is a relist from the API server: a new watch whose
                // complete list replaces the mirror at once and is detected anew.
                services_watch = watch::services(
                    &lp.client, &lp.opts, lp.services.clone(), pending_tx.clone(),
                );
                continue;
            }
            Some(()) = relist_rx.recv() => {
                // New detectors: every Service is detected again, and nothing is
                // selected until that relist is complete.
                let scopes = lp.opts.watch_namespaces.as_ref().map_or(1, |n| n.len() as u64);
                let done = lp.services.read().map(|m| m.lists_completed).unwrap_or(0);
                lp.hold_until_list = Some(done + scopes.max(1));
                services_watch = watch::services(
                    &lp.client, &lp.opts, lp.services.clone(), pending_tx.clone(),
                );
                health_round = lp.prober.is_some();
                continue;
            }
            _ = health.tick() => { health_round = lp.prober.is_some(); }
            _ = reconcile.tick() => {}
            _ = heartbeat.tick() => {
                lp.beat(leader_rx.borrow().clone());
                lp.refresh_view(false);
                continue;
            }
            Some(req) = lp.api.requests.recv() => {
                let scopes = lp.opts.watch_namespaces.as_ref().map_or(1, |n| n.len() as u64);
                if lp.discover_requested(req, scopes) {
                    // A full round now: relist, detect everything anew, probe every choice.
                    services_watch = watch::services(
                        &lp.client, &lp.opts, lp.services.clone(), pending_tx.clone(),
                    );
                    health_round = lp.prober.is_some();
                }
                continue;
            }
        }
        lp.beat(leader_rx.borrow().clone());
        lp.step(&mut services_dirty, &mut health_round).await;
        lp.view_changed();
        lp.refresh_view(false);
        lp.answer_discover();
        lp.set_readiness(|r| r.heartbeat = Some(std::time::Instant::now()));
    }
    drop(services_watch);
    watches.abort_all();
    lp.probes.abort_all();
    if let Some(t) = leader_task.and_then(AbortOnDrop::into_inner) {
        // Gives the lease up (the task watches `shutdown`).
        let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
    }
}

impl Loop {
    fn set_readiness(&self, f: impl FnOnce(&mut Readiness)) {
        if let Ok(mut r) = self.readiness.write() {
            f(&mut r);
        }
    }

    /// Why the published output lags (None: up to date); the gauge follows.
    fn set_stale(&self, why: Option<String>) {
        self.metrics.set_stale(why.is_some());
        self.set_readiness(|r| r.stale = why);
    }

    /// An error a person should see (the last one is kept).
    fn set_error(&self, msg: &str) {
        self.set_readiness(|r| r.last_error = Some(msg.to_string()));
    }

    /// Records loop progress and the current leadership (a term past its write window
    /// counts as lost: the status follows the fence).
    fn beat(&mut self, leadership: Option<Leadership>) {
        let now = std::time::Instant::now();
        let valid = leadership
            .as_ref()
            .is_some_and(|l| l.valid_until.is_none_or(|u| now < u));
        self.leadership = leadership;
        self.metrics.set_leader(valid);
        self.set_readiness(|r| r.heartbeat = Some(now));
        if !valid {
            // Not the writer: nothing of ours is stale.
            self.set_stale(None);
        }
    }

    fn synced(&self) -> bool {
        let s = self.services.read().map(|m| m.synced).unwrap_or(false);
        let c = self.configmap.read().map(|m| m.synced).unwrap_or(false);
        s && c
    }

    async fn step(&mut self, services_dirty: &mut bool, health_round: &mut bool) {
        // Never publish from a cache that has not listed yet: an empty cache must not
        // wipe a good ConfigMap.
        if !self.synced() {
            return;
        }
        self.metrics.set_synced(true);
        self.set_readiness(|r| r.synced = true);
        if std::mem::take(services_dirty) && !self.rediscover() {
            // Detections still running: selecting now would drop those Services (a
            // relist would publish an empty configuration). The worker signals when done.
            *services_dirty = true;
            return;
        }
        let chosen: BTreeSet<InstanceKey> = self
            .selection
            .groups
            .iter()
            .map(|g| g.key.clone())
            .collect();
        self.tracker.retain(&chosen);
        self.identified.retain(|k, _| chosen.contains(k));
        self.export_health();
        if self.prober.is_some() {
            let keys: Vec<InstanceKey> = if std::mem::take(health_round) {
                chosen.iter().cloned().collect()
            } else {
                self.tracker.unknown(chosen.iter())
            };
            self.spawn_probes(&keys);
        }
        if self.leadership.is_some() {
            self.publish().await;
        }
    }

    /// Selects again from the mirror's detections when it changed. False while some
    /// Services still wait for their detection (nothing selected then).
    fn rediscover(&mut self) -> bool {
        let started = std::time::Instant::now();
        let (all, services) = {
            let Ok(m) = self.services.read() else {
                tracing::error!("services mirror lock poisoned");
                return true;
            };
            if let Some(target) = self.hold_until_list {
                if m.lists_completed < target {
                    return false;
                }
                self.hold_until_list = None;
            }
            if m.generation == self.seen_generation {
                return true;
            }
            // Keys are (namespace, name): the order of ServiceRef.
            let mut all: Vec<ServiceDetections> = Vec::new();
            for w in m.objects.values() {
                match w {
                    Watched::Pending(_) => return false,
                    Watched::Done(d) => all.extend(d.as_deref().cloned()),
                }
            }
            self.seen_generation = m.generation;
            (all, m.objects.len())
        };
        let matched = all.len();
        self.selection = select::select(&all);
        let selection = &mut self.selection;
        self.identified.retain(|key, winner| {
            candidate_endpoints(selection, key).as_ref() == Some(&winner.candidates)
                && selection.adopt(key, winner.proof.candidate, winner.proof.text.clone())
        });
        self.metrics
            .services_watched
            .set(i64::try_from(services).unwrap_or(i64::MAX));
        self.metrics.discovery_passes.inc();
        tracing::debug!(
            services,
            matched,
            installations = self.selection.groups.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "discovery pass"
        );
        true
    }

    /// Starts probing `keys` (those not already being probed) in the background; the
    /// results come back to the loop through `probe_tx`.
    fn spawn_probes(&mut self, keys: &[InstanceKey]) {
        let Some(prober) = self.prober.clone() else {
            return;
        };
        while self.probes.try_join_next().is_some() {}
        let wanted: BTreeSet<&InstanceKey> = keys
            .iter()
            .filter(|k| !self.in_flight.contains(*k))
            .collect();
        if wanted.is_empty() {
            return;
        }
        let targets: Vec<_> = pipeline::probe_targets(&self.selection)
            .into_iter()
            .filter(|t| wanted.contains(&t.key))
            .collect();
        // Installations without a declared probe count as healthy.
        for k in &wanted {
            if !targets.iter().any(|t| &t.key == *k) {
                self.tracker.record(k, true, "");
            }
        }
        if targets.is_empty() {
            return;
        }
        self.in_flight.extend(targets.iter().map(|t| t.key.clone()));
        let tx = self.probe_tx.clone();
        self.probes.spawn(async move {
            let started = std::time::Instant::now();
            let results = prober.probe_all(&targets).await;
            let _ = tx.send((results, started.elapsed()));
        });
    }

    /// Records a batch of probe results.
    fn record(&mut self, results: Vec<(InstanceKey, ProbeOutcome)>, took: std::time::Duration) {
        for (key, outcome) in results {
            self.in_flight.remove(&key);
            if self.selection.group(&key).is_none() {
                continue; // no longer chosen
            }
            let identified = match &outcome {
                ProbeOutcome::Healthy { identified, .. }
                | ProbeOutcome::Unhealthy { identified, .. } => identified.clone(),
            };
            match (identified, candidate_endpoints(&self.selection, &key)) {
                // Identified (its health judged as HolmesGPT will connect): kept, and
                // only its health is probed from then on.
                (Some(proof), Some(candidates)) => {
                    pipeline::adopt(&mut self.selection, &key, proof.clone());
                    self.identified
                        .insert(key.clone(), Winner { candidates, proof });
                }
                // The adopted winner stopped answering: identify again next time.
                (None, _) if !outcome.is_healthy() && self.identified.remove(&key).is_some() => {
                    self.selection.unadopt(&key);
                }
                _ => {}
            }
            let (healthy, reason) = match &outcome {
                ProbeOutcome::Healthy { .. } => (true, String::new()),
                ProbeOutcome::Unhealthy { url, reason, .. } => (false, format!("{url}: {reason}")),
            };
            self.api
                .probed_at
                .insert(key.clone(), pipeline::timestamp());
            self.api.health_version += 1;
            if self.tracker.record(&key, healthy, &reason) {
                tracing::info!(toolset = %key.toolset, instance = %key.instance, healthy, %reason, "health changed");
            }
        }
        self.export_health();
        self.metrics.health_round(took);
    }

    /// The health gauge of every chosen installation that was probed (set again only
    /// when a verdict changed).
    fn export_health(&mut self) {
        let verdicts: Vec<(InstanceKey, bool)> = self
            .selection
            .groups
            .iter()
            .filter_map(|g| {
                let healthy = matches!(self.tracker.state(&g.key)?, state::Tracked::Healthy { .. });
                Some((g.key.clone(), healthy))
            })
            .collect();
        if verdicts != self.exported_health {
            self.metrics.set_health(
                verdicts
                    .iter()
                    .map(|(k, h)| (k.toolset.as_str(), k.instance.as_str(), *h)),
            );
            self.exported_health = verdicts;
        }
    }

    async fn warn(&mut self, reason: &str, action: &str, note: &str) {
        let (ns, name) = (
            self.opts.configmap_namespace.clone(),
            self.opts.configmap_name.clone(),
        );
        self.events.warn(&ns, &name, reason, action, note).await;
    }

    /// The overrides to merge and their text (None: none written): the ConfigMap's, or
    /// the last good ones while they are invalid or while the ConfigMap is gone (so a
    /// recreated one carries them). None: invalid and nothing good seen since start, so
    /// nothing may be written (the published content stays as it is).
    async fn overrides(
        &mut self,
        current: Option<&ConfigMap>,
    ) -> Option<(Overrides, Option<String>)> {
        let Some(cm) = current else {
            self.reported_overrides_error = None;
            return Some(
                self.last_good_overrides
                    .clone()
                    .unwrap_or((Overrides::default(), None)),
            );
        };
        let text = cm.data.as_ref().and_then(|d| d.get(OVERRIDES_KEY));
        let parsed = text.map(|t| {
            let result = match &self.parsed_overrides {
                Some((seen, result)) if seen == t => result.clone(),
                _ => {
                    let result = Overrides::parse(t).map_err(|e| e.to_string());
                    self.parsed_overrides = Some((t.clone(), result.clone()));
                    result
                }
            };
            (t, result)
        });
        match parsed {
            None => {
                self.reported_overrides_error = None;
                self.last_good_overrides = None;
                Some((Overrides::default(), None))
            }
            Some((t, Ok(o))) => {
                self.reported_overrides_error = None;
                let good = (o, Some(t.clone()));
                self.last_good_overrides = Some(good.clone());
                Some(good)
            }
            Some((_, Err(e))) => {
                let keeping = if self.last_good_overrides.is_some() {
                    "merging the last valid overrides instead"
                } else {
                    "nothing is written until it is fixed (the published configuration is kept)"
                };
                let msg = format!(
                    "{OVERRIDES_KEY} in ConfigMap {}/{} is invalid, {keeping}: {e}",
                    self.opts.configmap_namespace, self.opts.configmap_name
                );
                if self.reported_overrides_error.as_deref() != Some(msg.as_str()) {
                    tracing::error!("{msg}");
                    self.metrics.overrides_invalid.inc();
                    self.set_error(&msg);
                    self.warn("InvalidOverrides", "MergeOverrides", &msg).await;
                    self.reported_overrides_error = Some(msg.clone());
                }
                if self.last_good_overrides.is_none() {
                    self.set_stale(Some(msg));
                }
                self.last_good_overrides.clone()
            }
        }
    }

    /// Assembles the configuration, decides whether the ConfigMap differs, and applies it
    /// when this replica may write.
    async fn publish(&mut self) {
        let current = self
            .configmap
            .read()
            .ok()
            .and_then(|m| m.objects.values().next().cloned());
        let Some((overrides, overrides_text)) = self.overrides(current.as_ref()).await else {
            return;
        };
        let health = if self.prober.is_some() {
            let probed: Vec<InstanceKey> = pipeline::probe_targets(&self.selection)
                .into_iter()
                .map(|t| t.key)
                .collect();
            // An installation still waiting for its first probe is not published; while
            // such probes run (normally milliseconds), an existing ConfigMap is left as
            // it is rather than written without them (a restart must not drop toolsets).
            if current.is_some() && probed.iter().any(|k| self.tracker.state(k).is_none()) {
                return;
            }
            self.tracker.health_map_for(&probed)
        } else {
            BTreeMap::new()
        };
        let out = pipeline::assemble_output(&self.selection, &health, None, &overrides);
        let generated =
            match Generated::render(&out.document, &Discovery::new(&out.assembly, &out.merge)) {
                Ok(g) => g,
                Err(e) => {
                    let msg = format!("cannot render the configuration: {e}");
                    tracing::error!("{msg}");
                    self.set_stale(Some(msg.clone()));
                    self.warn("RenderFailed", "Render", &msg).await;
                    return;
                }
            };
        let toolsets = out.assembly.provenance.len();
        self.metrics
            .toolsets_published
            .set(i64::try_from(toolsets).unwrap_or(i64::MAX));
        let data = current.as_ref().and_then(|c| c.data.as_ref());
        let action = state::decide(data, &generated, overrides_text.as_deref());
        if action == Action::Nothing {
            self.set_stale(None);
            return;
        }
        let Some(leadership) = self.leadership.clone() else {
            return;
        };
        let toolset_sizes = toolset_sizes(&out.document);
        let req = apply::WriteRequest {
            current: current.as_ref(),
            action: &action,
            generated: &generated,
            toolset_sizes: &toolset_sizes,
            leadership: &leadership,
            generated_at: pipeline::timestamp(),
        };
        match apply::write(&self.client, &self.opts, &req).await {
            Ok(written) => {
                tracing::info!(
                    configmap = %format!("{}/{}", self.opts.configmap_namespace, self.opts.configmap_name),
                    toolsets,
                    "configmap written"
                );
                // Our own write is the newest view until the watch confirms it.
                self.replace_view(Some(written));
                self.metrics.write(WriteStatus::Success);
                self.set_stale(None);
                self.wrote(true, None);
            }
            Err(apply::WriteError::TooLarge(big)) => {
                let msg = big.to_string();
                tracing::error!("{msg}");
                self.metrics.refused_writes.inc();
                self.set_stale(Some(msg.clone()));
                self.set_error(&msg);
                self.wrote(false, Some(msg.clone()));
                self.warn("ConfigurationTooLarge", "WriteConfigMap", &msg)
                    .await;
            }
            Err(apply::WriteError::Fenced(f)) => {
                let msg = f.to_string();
                tracing::warn!("{msg}");
                self.metrics.fenced_writes.inc();
                self.set_error(&msg);
            }
            Err(apply::WriteError::Conflict(why)) => {
                // Decided on an old view: read it again and decide on the next pass.
                tracing::debug!("configmap write conflict ({why}); re-reading");
                self.metrics.configmap_conflicts.inc();
                match apply::read(&self.client, &self.opts).await {
                    Ok(fresh) => {
                        self.replace_view(fresh);
                        let _ = self.wake.try_send(());
                    }
                    Err(e) => self.write_failed(&format!("{e:#}")).await,
                }
            }
            Err(apply::WriteError::Api(e)) => self.write_failed(&format!("{e:#}")).await,
        }
    }

    /// A write the API server did not take (retried on the next pass).
    async fn write_failed(&mut self, msg: &str) {
        tracing::warn!("configmap write failed (will retry): {msg}");
        self.metrics.write(WriteStatus::Failed);
        self.wrote(false, Some(msg.to_string()));
        self.set_stale(Some(format!("write failed: {msg}")));
        self.set_error(msg);
        self.warn("WriteFailed", "WriteConfigMap", msg).await;
    }

    /// Records a write attempt for the API's view.
    fn wrote(&mut self, ok: bool, message: Option<String>) {
        self.api.last_write = Some(crate::api::model::WriteView {
            at: pipeline::timestamp(),
            configmap: format!(
                "{}/{}",
                self.opts.configmap_namespace, self.opts.configmap_name
            ),
            ok,
            message,
        });
    }

    /// Replaces the ConfigMap view (None: it does not exist).
    fn replace_view(&self, cm: Option<ConfigMap>) {
        if let Ok(mut m) = self.configmap.write() {
            m.objects.clear();
            if let Some(cm) = cm {
                m.objects.insert(
                    (
                        self.opts.configmap_namespace.clone(),
                        self.opts.configmap_name.clone(),
                    ),
                    watch::slim_configmap(cm),
                );
            }
        }
    }
}

/// Rendered (JSON) size of every entry of the document's `toolsets:` map.
fn toolset_sizes(document: &serde_json::Value) -> Vec<(String, usize)> {
    document
        .get("toolsets")
        .and_then(serde_json::Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), serde_json::to_string(v).map_or(0, |t| t.len())))
                .collect()
        })
        .unwrap_or_default()
}
