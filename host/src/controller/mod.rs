//! The in-cluster controller (`dynamic-toolset run`).
//!
//! Watches Services (mirrored, see [`mirror`]) and its own ConfigMap. Detectors run on
//! every changed Service (debounced), and on every Service after a full resync, which is
//! a relist from the API server every `discovery_interval`. Health probes run in the
//! background (new installations at once, all of them every `health_check_interval`).
//! After every change the pipeline's pure part (select → assemble → merge overrides)
//! runs and, when leader, the generated keys of the ConfigMap are written if they
//! differ. Decisions are pure ([`state`]); this module is the I/O around them.

pub mod cmd;
pub mod kube_io;
pub mod lease;
pub mod mirror;
pub mod state;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use anyhow::Context;
use dynamic_toolset_core::gate::{Grants, Policy};
use dynamic_toolset_core::overrides::Overrides;
use dynamic_toolset_core::render::{self, Discovery, OVERRIDES_KEY};
use dynamic_toolset_core::select::{self, InstanceKey, Selection};
use dynamic_toolset_core::{Detection, GateNote, ServiceDetections, ServiceSnapshot};
use dynamic_toolset_runtime::DetectorSet;
use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use kube::Api;
use kube::runtime::{WatchStreamExt, watcher};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use crate::pipeline;
use crate::probe::{ProbeOutcome, ProbeSettings, Prober};
use state::{Action, Generated, HealthTracker, Leadership};

/// Health checking settings.
#[derive(Debug, Clone)]
pub struct HealthOptions {
    pub interval: Duration,
    /// Consecutive failed rounds before a published toolset is removed.
    pub failure_threshold: u32,
    pub probe: ProbeSettings,
}

/// Leader election settings.
#[derive(Debug, Clone)]
pub struct LeaderOptions {
    pub lease_name: String,
    pub lease_namespace: String,
    pub lease_duration: Duration,
    pub renew_deadline: Duration,
    pub retry_period: Duration,
    /// Unique among contenders: the pod name.
    pub identity: String,
}

/// Which namespaces to watch.
pub type NamespaceFilter = Arc<dyn Fn(&str) -> bool + Send + Sync>;

/// Everything the controller needs, already validated.
#[derive(Clone)]
pub struct ControllerOptions {
    pub configmap_name: String,
    pub configmap_namespace: String,
    /// Added to the ConfigMap when set (see [`kube_io::owner_reference`]).
    pub owner: Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference>,
    pub namespaces: NamespaceFilter,
    /// Watch Services with one namespaced watch per namespace listed here (a Role per
    /// namespace is then enough); None: one cluster-wide watch filtered by `namespaces`.
    pub watch_namespaces: Option<Vec<String>>,
    pub label_selector: Option<String>,
    /// The validation gate's policy (cluster domain, trusted namespaces, allowed hosts).
    pub policy: dynamic_toolset_core::gate::Policy,
    pub debounce: Duration,
    pub discovery_interval: Duration,
    pub reconciliation_interval: Duration,
    /// None: health checking disabled.
    pub health: Option<HealthOptions>,
    /// None: single replica, always writes.
    pub leader: Option<LeaderOptions>,
    /// Name used in Events and field managers.
    pub reporter: String,
}

/// Counters a person (and the metrics endpoint) can read.
#[derive(Debug, Default, Clone)]
pub struct Status {
    pub synced: bool,
    pub leader: bool,
    pub services: usize,
    pub toolsets: usize,
    pub writes: u64,
    pub write_failures: u64,
    pub conflicts: u64,
    pub invalid_overrides: u64,
    /// Completed discovery passes (detectors run over changed Services).
    pub discovery_passes: u64,
    /// Completed probe batches.
    pub probe_rounds: u64,
    pub last_error: Option<String>,
    /// Why the published ConfigMap lags behind what was computed (None: up to date, or
    /// not the writer). Readiness is false while set.
    pub stale: Option<String>,
    /// Writes refused because the ConfigMap would exceed its size budget.
    pub refused_writes: u64,
    /// Writes refused by leader fencing (lease possibly expired, or a newer leader wrote).
    pub fenced_writes: u64,
    /// Bundled detectors that failed to load (readiness is false while any did).
    pub detector_load_errors: Vec<String>,
    /// Last time the main loop made progress (liveness).
    pub heartbeat: Option<std::time::Instant>,
    /// Fragments refused by the validation gate, by (detector, reason kind), counted on
    /// every detection (a relist counts a still-hostile Service again).
    pub gate_refusals: BTreeMap<(String, String), u64>,
}

/// A running controller. [`Handle::stop`] stops it gracefully and waits; dropping the
/// handle also stops it gracefully (without waiting); [`Handle::abort`] simulates a crash.
pub struct Handle {
    shutdown: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    pub status: Arc<RwLock<Status>>,
}

impl Handle {
    /// Stops the controller (releasing the lease if it holds it) and waits for it.
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        let _ = self.task.await;
    }

    /// Stops the controller abruptly, as a crash would: every task it runs is cancelled
    /// and the lease is not released (another instance takes over when it expires).
    pub fn abort(self) {
        self.task.abort();
    }

    /// A copy of the current status.
    pub fn status(&self) -> Status {
        self.status.read().map(|s| s.clone()).unwrap_or_default()
    }
}

/// Aborts a task when dropped, so that cancelling the controller cancels what it spawned.
pub(crate) struct AbortOnDrop<T>(Option<tokio::task::JoinHandle<T>>);

impl<T> AbortOnDrop<T> {
    pub(crate) fn new(handle: tokio::task::JoinHandle<T>) -> Self {
        Self(Some(handle))
    }

    /// The handle, no longer aborted on drop.
    pub(crate) fn into_inner(mut self) -> Option<tokio::task::JoinHandle<T>> {
        self.0.take()
    }
}

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        if let Some(h) = &self.0 {
            h.abort();
        }
    }
}

/// Starts the controller on the current tokio runtime (multi-threaded: detection runs in
/// `block_in_place`).
pub fn start(client: kube::Client, opts: ControllerOptions, detectors: DetectorSet) -> Handle {
    let (shutdown, shutdown_rx) = watch::channel(false);
    let status = Arc::new(RwLock::new(Status::default()));
    let task = tokio::spawn(main_loop(
        client,
        opts,
        detectors,
        shutdown_rx,
        status.clone(),
    ));
    Handle {
        shutdown,
        task,
        status,
    }
}

/// Annotations no detector reads, possibly large: not passed to the detectors.
const DROPPED_ANNOTATIONS: &[&str] = &["kubectl.kubernetes.io/last-applied-configuration"];

/// One Service as the controller keeps it. The watch records only a slim snapshot
/// (`Pending`, the detectors' input without the dropped annotations); the detection
/// worker runs the detectors on a blocking thread and replaces it with what they matched
/// (`Done`). Nothing else is kept, so a detected unrelated Service costs its key and one
/// word, and the watch task never runs a detector (label-heavy Services cannot stall the
/// async runtime, so `/healthz` stays answered).
#[derive(Debug)]
enum Watched {
    Pending(Arc<ServiceSnapshot>),
    Done(Option<Box<ServiceDetections>>),
}

/// Snapshots detected per blocking job (the results are stored between jobs).
const DETECT_BATCH: usize = 256;

/// Probe outcomes of one batch.
type ProbeResults = Vec<(InstanceKey, ProbeOutcome)>;

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
    status: Arc<RwLock<Status>>,
    events: kube_io::EventSink,
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
}

async fn main_loop(
    client: kube::Client,
    opts: ControllerOptions,
    detectors: DetectorSet,
    mut shutdown: watch::Receiver<bool>,
    status: Arc<RwLock<Status>>,
) {
    let (services_changed, mut services_rx) = mpsc::channel::<()>(1);
    let (watch_changed, watch_rx) = mpsc::channel::<()>(1);
    let (configmap_changed, mut configmap_rx) = mpsc::channel::<()>(1);
    let (probe_tx, mut probe_rx) = mpsc::unbounded_channel::<ProbeResults>();
    let services: mirror::Shared<Watched> = Arc::default();
    let configmap: mirror::Shared<ConfigMap> = Arc::default();
    // Dropped (aborted) with this future, also when the controller task is aborted.
    let mut watches = tokio::task::JoinSet::new();

    let detectors = Arc::new(Mutex::new(detectors));
    let mut services_watch =
        spawn_services_watch(&client, &opts, services.clone(), watch_changed.clone());
    watches.spawn(detection_worker(
        detectors,
        services.clone(),
        opts.policy.clone(),
        status.clone(),
        watch_rx,
        services_changed.clone(),
    ));
    watches.spawn(mirror::run(
        "configmap",
        watcher(
            Api::<ConfigMap>::namespaced(client.clone(), &opts.configmap_namespace),
            watcher::Config::default().fields(&format!("metadata.name={}", opts.configmap_name)),
        )
        .default_backoff(),
        configmap.clone(),
        configmap_changed,
        |cm: &ConfigMap| {
            let mut cm = cm.clone();
            // Not needed for decisions; the biggest part of the object after data.
            cm.metadata.managed_fields = None;
            Some(cm)
        },
    ));

    let (leader_tx, mut leader_rx) = watch::channel(
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
        events: kube_io::EventSink::new(client.clone(), &opts.reporter),
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
        status,
        last_good_overrides: None,
        parsed_overrides: None,
        reported_overrides_error: None,
        leadership: None,
    };

    lp.leadership = leader_rx.borrow().clone();
    let initially_leader = lp.leadership.is_some();
    lp.set_status(|s| {
        s.leader = initially_leader;
        s.heartbeat = Some(std::time::Instant::now());
    });

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
            Some(()) = services_rx.recv() => {
                debounce_until.get_or_insert_with(|| Instant::now() + lp.opts.debounce);
                continue;
            }
            _ = tokio::time::sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => {
                debounce_until = None;
                services_dirty = true;
            }
            Some(()) = configmap_rx.recv() => {}
            Some(results) = probe_rx.recv() => lp.record(results),
            r = leader_rx.changed() => {
                if r.is_err() { break; }
                let leader = leader_rx.borrow_and_update().is_some();
                tracing::info!(leader, "leadership changed");
            }
            _ = resync.tick() => {
                // A full resync is a relist from the API server: a new watch whose
                // complete list replaces the mirror at once and is detected anew.
                services_watch = spawn_services_watch(
                    &lp.client, &lp.opts, lp.services.clone(), watch_changed.clone(),
                );
                continue;
            }
            _ = health.tick() => { health_round = lp.prober.is_some(); }
            _ = reconcile.tick() => {}
            _ = heartbeat.tick() => {
                lp.beat(leader_rx.borrow().clone());
                continue;
            }
        }
        lp.beat(leader_rx.borrow().clone());
        lp.step(&mut services_dirty, &mut health_round).await;
        lp.set_status(|s| s.heartbeat = Some(std::time::Instant::now()));
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
    fn set_status(&self, f: impl FnOnce(&mut Status)) {
        if let Ok(mut s) = self.status.write() {
            f(&mut s);
        }
    }

    /// Records loop progress and the current leadership (a term past its write window
    /// counts as lost: the status follows the fence).
    fn beat(&mut self, leadership: Option<Leadership>) {
        let now = std::time::Instant::now();
        let valid = leadership
            .as_ref()
            .is_some_and(|l| l.valid_until.is_none_or(|u| now < u));
        self.leadership = leadership;
        self.set_status(|s| {
            s.heartbeat = Some(now);
            s.leader = valid;
            if !valid {
                // Not the writer: nothing of ours is stale.
                s.stale = None;
            }
        });
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
        self.set_status(|s| s.synced = true);
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
        self.set_status(|s| {
            s.services = services;
            s.discovery_passes += 1;
        });
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
            let results = prober.probe_all(&targets).await;
            let _ = tx.send(results);
        });
    }

    /// Records a batch of probe results.
    fn record(&mut self, results: ProbeResults) {
        for (key, outcome) in results {
            self.in_flight.remove(&key);
            if self.selection.group(&key).is_none() {
                continue; // no longer chosen
            }
            let (healthy, reason) = match &outcome {
                ProbeOutcome::Healthy { .. } => (true, String::new()),
                ProbeOutcome::Unhealthy { url, reason, .. } => (false, format!("{url}: {reason}")),
            };
            if self.tracker.record(&key, healthy, &reason) {
                tracing::info!(toolset = %key.toolset, instance = %key.instance, healthy, %reason, "health changed");
            }
        }
        self.set_status(|s| s.probe_rounds += 1);
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
                    self.set_status(|s| {
                        s.invalid_overrides += 1;
                        s.last_error = Some(msg.clone());
                    });
                    self.warn("InvalidOverrides", "MergeOverrides", &msg).await;
                    self.reported_overrides_error = Some(msg.clone());
                }
                if self.last_good_overrides.is_none() {
                    self.set_status(|s| s.stale = Some(msg));
                }
                self.last_good_overrides.clone()
            }
        }
    }

    /// Computes the desired content and writes what differs.
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
        let generated = match (
            render::render_yaml(&out.document),
            render::render_discovery(&Discovery::new(&out.assembly, &out.merge)),
        ) {
            (Ok(t), Ok(d)) => Generated {
                toolsets_yaml: t,
                discovery_json: d,
            },
            (Err(e), _) | (_, Err(e)) => {
                let msg = format!("cannot render the configuration: {e}");
                tracing::error!("{msg}");
                self.set_status(|s| s.stale = Some(msg.clone()));
                self.warn("RenderFailed", "Render", &msg).await;
                return;
            }
        };
        let toolsets = out.assembly.provenance.len();
        self.set_status(|s| s.toolsets = toolsets);
        let data = current.as_ref().and_then(|c| c.data.as_ref());
        let action = state::decide(data, &generated, overrides_text.as_deref());
        if action == Action::Nothing {
            self.set_status(|s| s.stale = None);
            return;
        }
        let Some(leadership) = self.leadership.clone() else {
            return;
        };
        let toolset_sizes = toolset_sizes(&out.document);
        let req = kube_io::WriteRequest {
            generated: &generated,
            last_overrides: overrides_text.as_deref(),
            toolset_sizes: &toolset_sizes,
            leadership: &leadership,
        };
        match kube_io::write(&self.client, &self.opts, current, &req).await {
            Ok(outcome) => {
                if let Some(written) = outcome.written {
                    tracing::info!(
                        configmap = %format!("{}/{}", self.opts.configmap_namespace, self.opts.configmap_name),
                        toolsets,
                        conflicts = outcome.conflicts,
                        "configmap written"
                    );
                    // Our own write is the newest view until the watch confirms it.
                    let mut written = *written;
                    written.metadata.managed_fields = None;
                    if let Ok(mut m) = self.configmap.write() {
                        m.objects.clear();
                        m.objects.insert(
                            (
                                self.opts.configmap_namespace.clone(),
                                self.opts.configmap_name.clone(),
                            ),
                            written,
                        );
                    }
                    self.set_status(|s| {
                        s.writes += 1;
                        s.conflicts += outcome.conflicts;
                    });
                }
                self.set_status(|s| s.stale = None);
            }
            Err(kube_io::WriteError::TooLarge(big)) => {
                let msg = big.to_string();
                tracing::error!("{msg}");
                self.set_status(|s| {
                    s.refused_writes += 1;
                    s.stale = Some(msg.clone());
                    s.last_error = Some(msg.clone());
                });
                self.warn("ConfigurationTooLarge", "WriteConfigMap", &msg)
                    .await;
            }
            Err(kube_io::WriteError::Fenced(f)) => {
                let msg = f.to_string();
                tracing::warn!("{msg}");
                self.set_status(|s| {
                    s.fenced_writes += 1;
                    s.last_error = Some(msg.clone());
                });
            }
            Err(kube_io::WriteError::Api(e)) => {
                let msg = format!("{e:#}");
                tracing::warn!("configmap write failed (will retry): {msg}");
                self.set_status(|s| {
                    s.write_failures += 1;
                    s.stale = Some(format!("write failed: {msg}"));
                    s.last_error = Some(msg.clone());
                });
                self.warn("WriteFailed", "WriteConfigMap", &msg).await;
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

/// Gate notes already logged: each distinct one is logged once (a relist detects every
/// Service again). Bounded: forgotten wholesale past [`GateLog::MAX`] entries.
#[derive(Default)]
struct GateLog {
    seen: std::collections::HashSet<String>,
}

impl GateLog {
    const MAX: usize = 10_000;

    fn log_once(&mut self, service: &dynamic_toolset_core::ServiceRef, n: &GateNote) {
        let key = format!(
            "{service}\0{}\0{}\0{}\0{}",
            n.detector, n.toolset, n.field, n.message
        );
        if self.seen.len() >= Self::MAX {
            self.seen.clear();
        }
        if self.seen.insert(key) {
            pipeline::log_gate_note(service, n);
        }
    }
}

/// Runs every detector over one Service, through the validation gate, and keeps what
/// matched and was admitted (failures and refusals are logged here, by detector). The
/// one place a Service meets the detectors in the controller.
fn detect_one(
    set: &mut DetectorSet,
    grants: &Grants,
    policy: &Policy,
    snapshot: &ServiceSnapshot,
) -> ServiceDetections {
    let mut d = pipeline::detect_one(set, grants, policy, snapshot);
    for v in &d.verdicts {
        if let Err(e) = &v.outcome {
            tracing::error!(service = %d.service, detector = %v.detector, "detector failed: {e}");
        }
    }
    d.verdicts
        .retain(|v| matches!(&v.outcome, Ok(Detection::Matched(f)) if !f.is_empty()));
    d
}

/// Detects what the watch recorded: takes `Pending` snapshots in batches, runs the
/// detectors on a blocking thread (one job at a time: the detector set is one), and
/// stores the results where the snapshot is still the current one (a newer event or a
/// relist replaced it otherwise, and it is detected in turn). Signals `done` after
/// every wake-up, also when nothing was pending (a deletion).
async fn detection_worker(
    detectors: Arc<Mutex<DetectorSet>>,
    services: mirror::Shared<Watched>,
    policy: Policy,
    status: Arc<RwLock<Status>>,
    mut wake: mpsc::Receiver<()>,
    done: mpsc::Sender<()>,
) {
    let logged = Arc::new(Mutex::new(GateLog::default()));
    let grants = Arc::new(
        detectors
            .lock()
            .map(|set| pipeline::grants(&set))
            .unwrap_or_default(),
    );
    let policy = Arc::new(policy);
    while wake.recv().await.is_some() {
        loop {
            // Listed objects too (a list in progress): detected as they arrive.
            let batch: Vec<((String, String), Arc<ServiceSnapshot>)> = match services.read() {
                Ok(m) => m
                    .entries()
                    .filter_map(|(k, w)| match w {
                        Watched::Pending(s) => Some((k.clone(), s.clone())),
                        Watched::Done(_) => None,
                    })
                    .take(DETECT_BATCH)
                    .collect(),
                Err(_) => {
                    tracing::error!("services mirror lock poisoned");
                    return;
                }
            };
            if batch.is_empty() {
                break;
            }
            let (set, grants, policy) = (detectors.clone(), grants.clone(), policy.clone());
            let (logged, status) = (logged.clone(), status.clone());
            let job = tokio::task::spawn_blocking(move || {
                let Ok(mut set) = set.lock() else {
                    tracing::error!("detector set lock poisoned");
                    return Vec::new();
                };
                let results = batch
                    .into_iter()
                    .map(|(k, snap)| {
                        let d = detect_one(&mut set, &grants, &policy, &snap);
                        (k, snap, d)
                    })
                    .collect::<Vec<_>>();
                if let Ok(mut logged) = logged.lock() {
                    let mut counts: BTreeMap<(String, String), u64> = BTreeMap::new();
                    for (_, _, d) in &results {
                        for n in &d.gate {
                            if n.refused() {
                                *counts
                                    .entry((n.detector.clone(), n.kind.as_str().to_string()))
                                    .or_default() += 1;
                            }
                            logged.log_once(&d.service, n);
                        }
                    }
                    if !counts.is_empty()
                        && let Ok(mut s) = status.write()
                    {
                        for (k, v) in counts {
                            *s.gate_refusals.entry(k).or_default() += v;
                        }
                    }
                }
                results
            });
            let Ok(results) = job.await else {
                tracing::error!("detection job failed");
                return;
            };
            if results.is_empty() {
                return;
            }
            let Ok(mut m) = services.write() else {
                tracing::error!("services mirror lock poisoned");
                return;
            };
            for (k, snap, d) in results {
                let mut d = Some(d);
                for w in m.entries_mut(&k) {
                    if matches!(w, Watched::Pending(s) if Arc::ptr_eq(s, &snap))
                        && let Some(d) = d.take()
                    {
                        *w = Watched::Done((!d.verdicts.is_empty()).then(|| Box::new(d)));
                    }
                }
            }
            m.generation += 1;
        }
        let _ = done.try_send(());
    }
}

/// Starts the Service watch (all namespaces, or one watch per namespace of
/// `watch_namespaces`; optional label selector; the namespace filter is applied here)
/// feeding `shared` with slim snapshots for the detection worker. Dropping the result
/// stops it.
fn spawn_services_watch(
    client: &kube::Client,
    opts: &ControllerOptions,
    shared: mirror::Shared<Watched>,
    changed: mpsc::Sender<()>,
) -> AbortOnDrop<()> {
    let mut wcfg = watcher::Config::default();
    if let Some(sel) = &opts.label_selector {
        wcfg = wcfg.labels(sel);
    }
    let filter = opts.namespaces.clone();
    let stream: futures::stream::BoxStream<'static, _> = match &opts.watch_namespaces {
        None => Box::pin(
            watcher(Api::<Service>::all(client.clone()), wcfg)
                .default_backoff()
                .map(|e| (None, e)),
        ),
        Some(namespaces) if namespaces.is_empty() => {
            // Every listed namespace is excluded: nothing to watch, synced with no Services.
            tracing::warn!(
                "service_discovery: every listed namespace is excluded; no Service is watched"
            );
            if let Ok(mut m) = shared.write() {
                m.synced = true;
                m.generation += 1;
            }
            let _ = changed.try_send(());
            Box::pin(futures::stream::pending())
        }
        Some(namespaces) => {
            if let Ok(mut m) = shared.write() {
                m.expect_scopes(namespaces.iter().map(String::as_str));
            }
            Box::pin(futures::stream::select_all(namespaces.iter().map(|ns| {
                let scope = Some(ns.clone());
                watcher(Api::<Service>::namespaced(client.clone(), ns), wcfg.clone())
                    .default_backoff()
                    .map(move |e| (scope.clone(), e))
                    .boxed()
            })))
        }
    };
    AbortOnDrop::new(tokio::spawn(mirror::run_scoped(
        "services",
        stream,
        shared,
        changed,
        move |svc: &Service| {
            let ns = svc.metadata.namespace.as_deref().unwrap_or_default();
            if !filter(ns) {
                return None;
            }
            let mut snapshot = match crate::manifest::snapshot(svc, ns) {
                Ok(s) => s,
                Err((field, problem)) => {
                    tracing::warn!(namespace = ns, service = ?svc.metadata.name, "Service skipped: {field}: {problem}");
                    return None;
                }
            };
            for a in DROPPED_ANNOTATIONS {
                snapshot.annotations.remove(*a);
            }
            Some(Watched::Pending(Arc::new(snapshot)))
        },
    )))
}

/// Builds a client from a kubeconfig path, or in-cluster / KUBECONFIG when None.
pub async fn client(kubeconfig: Option<&std::path::Path>) -> anyhow::Result<kube::Client> {
    let config = match kubeconfig {
        Some(path) => {
            let kc = kube::config::Kubeconfig::read_from(path)
                .with_context(|| format!("cannot read kubeconfig {}", path.display()))?;
            kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
                .await
                .with_context(|| format!("invalid kubeconfig {}", path.display()))?
        }
        None => kube::Config::infer()
            .await
            .context("no Kubernetes configuration (in-cluster, KUBECONFIG or ~/.kube/config)")?,
    };
    kube::Client::try_from(config).context("cannot build the Kubernetes client")
}
