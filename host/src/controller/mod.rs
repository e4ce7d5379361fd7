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
pub mod mirror;
pub mod state;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use anyhow::Context;
use dynamic_toolset_core::overrides::Overrides;
use dynamic_toolset_core::render::{self, Discovery, OVERRIDES_KEY};
use dynamic_toolset_core::select::{self, InstanceKey, Selection};
use dynamic_toolset_core::{Detection, ServiceDetections};
use dynamic_toolset_runtime::DetectorSet;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use kube::Api;
use kube::runtime::{WatchStreamExt, watcher};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use crate::pipeline;
use crate::probe::{ProbeOutcome, ProbeSettings, Prober};
use state::{Action, Generated, HealthTracker};

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

/// One Service as the controller keeps it: what the detectors matched in it, computed
/// as its watch event (or relist entry) arrives. Nothing else is kept (selection reads
/// nothing else; failures are logged when they happen), so an unrelated Service costs
/// its key and one word, and a relist never buffers thousands of Service objects.
#[derive(Debug, Default)]
struct Watched {
    matched: Option<Box<ServiceDetections>>,
}

/// Probe outcomes of one batch.
type ProbeResults = Vec<(InstanceKey, ProbeOutcome)>;

/// Lives in the loop task.
struct Loop {
    client: kube::Client,
    opts: ControllerOptions,
    detectors: Arc<Mutex<DetectorSet>>,
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
    /// Last valid overrides (used while the ConfigMap holds invalid ones).
    last_good_overrides: Option<Overrides>,
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
    let (configmap_changed, mut configmap_rx) = mpsc::channel::<()>(1);
    let (probe_tx, mut probe_rx) = mpsc::unbounded_channel::<ProbeResults>();
    let services: mirror::Shared<Watched> = Arc::default();
    let configmap: mirror::Shared<ConfigMap> = Arc::default();
    // Dropped (aborted) with this future, also when the controller task is aborted.
    let mut watches = tokio::task::JoinSet::new();

    let detectors = Arc::new(Mutex::new(detectors));
    let mut services_watch = spawn_services_watch(
        &client,
        &opts,
        detectors.clone(),
        services.clone(),
        services_changed.clone(),
    );
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

    let (leader_tx, mut leader_rx) = watch::channel(opts.leader.is_none());
    // Without leader election the sender must outlive the loop (a closed channel ends it).
    let (leader_task, _always_leader) = match opts.leader.clone() {
        Some(l) => (
            Some(AbortOnDrop::new(tokio::spawn(kube_io::lead(
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
        detectors,
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
        reported_overrides_error: None,
    };

    let initially_leader = *leader_rx.borrow();
    lp.set_status(|s| s.leader = initially_leader);

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
    for t in [&mut resync, &mut health, &mut reconcile] {
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
                let leader = *leader_rx.borrow_and_update();
                tracing::info!(leader, "leadership changed");
                lp.set_status(|s| s.leader = leader);
            }
            _ = resync.tick() => {
                // A full resync is a relist from the API server: a new watch whose
                // complete list replaces the mirror at once and is detected anew.
                services_watch = spawn_services_watch(
                    &lp.client, &lp.opts, lp.detectors.clone(), lp.services.clone(),
                    services_changed.clone(),
                );
                continue;
            }
            _ = health.tick() => { health_round = lp.prober.is_some(); }
            _ = reconcile.tick() => {}
        }
        let leader = *leader_rx.borrow();
        lp.step(&mut services_dirty, &mut health_round, leader)
            .await;
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

    fn synced(&self) -> bool {
        let s = self.services.read().map(|m| m.synced).unwrap_or(false);
        let c = self.configmap.read().map(|m| m.synced).unwrap_or(false);
        s && c
    }

    async fn step(&mut self, services_dirty: &mut bool, health_round: &mut bool, leader: bool) {
        // Never publish from a cache that has not listed yet: an empty cache must not
        // wipe a good ConfigMap.
        if !self.synced() {
            return;
        }
        self.set_status(|s| s.synced = true);
        if std::mem::take(services_dirty) {
            self.rediscover();
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
        if leader {
            self.publish().await;
        }
    }

    /// Selects again from the mirror's detections when it changed.
    fn rediscover(&mut self) {
        let started = std::time::Instant::now();
        let (all, services) = {
            let Ok(m) = self.services.read() else {
                tracing::error!("services mirror lock poisoned");
                return;
            };
            if m.generation == self.seen_generation {
                return;
            }
            self.seen_generation = m.generation;
            // Keys are (namespace, name): the order of ServiceRef.
            let all: Vec<ServiceDetections> = m
                .objects
                .values()
                .filter_map(|w| w.matched.as_deref().cloned())
                .collect();
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

    /// The overrides to merge: the ConfigMap's, or the last good ones while they are
    /// invalid (None: invalid and nothing good seen yet, so nothing may be written).
    async fn overrides(&mut self, current: Option<&ConfigMap>) -> Option<Overrides> {
        let text = current
            .and_then(|c| c.data.as_ref())
            .and_then(|d| d.get(OVERRIDES_KEY));
        match text.map(|t| Overrides::parse(t)) {
            None => {
                self.reported_overrides_error = None;
                Some(Overrides::default())
            }
            Some(Ok(o)) => {
                self.reported_overrides_error = None;
                self.last_good_overrides = Some(o.clone());
                Some(o)
            }
            Some(Err(e)) => {
                let msg = format!(
                    "{OVERRIDES_KEY} in ConfigMap {}/{} is invalid, keeping the last good configuration: {e}",
                    self.opts.configmap_namespace, self.opts.configmap_name
                );
                if self.reported_overrides_error.as_deref() != Some(msg.as_str()) {
                    tracing::error!("{msg}");
                    self.set_status(|s| {
                        s.invalid_overrides += 1;
                        s.last_error = Some(msg.clone());
                    });
                    if let Some(cm) = current {
                        self.events
                            .warn(cm, "InvalidOverrides", "MergeOverrides", &msg)
                            .await;
                    }
                    self.reported_overrides_error = Some(msg);
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
        let Some(overrides) = self.overrides(current.as_ref()).await else {
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
                tracing::error!("cannot render the configuration: {e}");
                return;
            }
        };
        let toolsets = out.assembly.provenance.len();
        self.set_status(|s| s.toolsets = toolsets);
        let action = state::decide(current.as_ref().and_then(|c| c.data.as_ref()), &generated);
        if action == Action::Nothing {
            return;
        }
        match kube_io::write(&self.client, &self.opts, current, &generated).await {
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
            }
            Err(e) => {
                tracing::warn!("configmap write failed (will retry): {e:#}");
                self.set_status(|s| {
                    s.write_failures += 1;
                    s.last_error = Some(format!("{e:#}"));
                });
            }
        }
    }
}

/// Starts the Service watch (all namespaces, optional label selector; the namespace
/// filter is applied here) feeding `shared`. Dropping the result stops it.
fn spawn_services_watch(
    client: &kube::Client,
    opts: &ControllerOptions,
    detectors: Arc<Mutex<DetectorSet>>,
    shared: mirror::Shared<Watched>,
    changed: mpsc::Sender<()>,
) -> AbortOnDrop<()> {
    let mut wcfg = watcher::Config::default();
    if let Some(sel) = &opts.label_selector {
        wcfg = wcfg.labels(sel);
    }
    let filter = opts.namespaces.clone();
    let policy = opts.policy.clone();
    let grants = detectors
        .lock()
        .map(|set| pipeline::grants(&set))
        .unwrap_or_default();
    AbortOnDrop::new(tokio::spawn(mirror::run(
        "services",
        watcher(Api::<Service>::all(client.clone()), wcfg).default_backoff(),
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
            let Ok(mut set) = detectors.lock() else {
                tracing::error!("detector set lock poisoned");
                return Some(Watched::default());
            };
            let mut d = pipeline::detect_one(&mut set, &grants, &policy, &snapshot);
            for v in &d.verdicts {
                if let Err(e) = &v.outcome {
                    tracing::error!(service = %d.service, detector = %v.detector, "detector failed: {e}");
                }
            }
            d.verdicts
                .retain(|v| matches!(v.outcome, Ok(Detection::Matched(_))));
            Some(Watched {
                matched: (!d.verdicts.is_empty()).then(|| Box::new(d)),
            })
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
