//! The in-cluster controller (`dynamic-toolset run`).
//!
//! A Service goes one way, each step in its own module:
//!
//! 1. [`watch`]: the Service watch (cluster-wide, or one per namespace) converts each
//!    Service to a slim snapshot ([`crate::services`]) and records it in a relist-safe
//!    [`mirror`] as pending;
//! 2. [`detect`]: the detection worker runs the detectors (sandboxed, through the
//!    validation gate) over pending snapshots on blocking threads behind a bound, and
//!    stores what matched;
//! 3. [`reconcile`]: the loop selects from the detections once every Service is
//!    detected, probes the chosen installations in the background, assembles the
//!    configuration with the admin's overrides and decides ([`state`], pure) whether the
//!    ConfigMap differs;
//! 4. [`apply`]: when leader ([`lease`]), the generated keys are written by server-side
//!    apply.
//!
//! The loop wakes on the detection worker's signal (it selects `debounce` after the
//! first one), on ConfigMap events, on probe results, on leadership changes and on
//! timers: a full resync (a relist from the API server, every Service detected anew)
//! every `discovery_interval`, a probe round every `health_check_interval`, and a
//! reconciliation every `reconciliation_interval`. Progress and readiness are in
//! [`Readiness`]; counters in the metrics ([`ControllerMetrics`]).

pub mod apply;
pub mod cmd;
mod detect;
mod events;
pub mod lease;
pub mod mirror;
mod reconcile;
pub mod reload;
pub mod state;
mod watch;

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::Context;
use dynamic_toolset_runtime::DetectorSet;
use tokio::sync::watch as signal;

use crate::metrics::ControllerMetrics;
use crate::probe::ProbeSettings;

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
    /// Added to the ConfigMap when set (see [`apply::owner_reference`]).
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

/// What readiness and liveness need, shared by the loop and the `/readyz` and `/healthz`
/// endpoints (counters are in the metrics).
#[derive(Debug, Default, Clone)]
pub struct Readiness {
    /// The initial Service and ConfigMap lists have synced.
    pub synced: bool,
    /// Why the published ConfigMap lags behind what was computed (None: up to date, or
    /// not the writer). Readiness is false while set.
    pub stale: Option<String>,
    /// Bundled detectors that failed to load (readiness is false while any did).
    pub detector_load_errors: Vec<String>,
    /// Last time the main loop made progress (liveness).
    pub heartbeat: Option<std::time::Instant>,
    /// The last error, for a person.
    pub last_error: Option<String>,
}

/// The controller's state at one instant, for a person (and tests): [`Readiness`] and
/// the metrics' current values.
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
    /// Completed discovery passes (selections from the detected Services).
    pub discovery_passes: u64,
    /// Completed probe batches.
    pub probe_rounds: u64,
    pub last_error: Option<String>,
    pub stale: Option<String>,
    /// Writes refused because the ConfigMap would exceed its size budget.
    pub refused_writes: u64,
    /// Writes refused by leader fencing (lease possibly expired, or a newer leader wrote).
    pub fenced_writes: u64,
    pub detector_load_errors: Vec<String>,
    pub heartbeat: Option<std::time::Instant>,
    /// Fragments refused by the validation gate, by (detector, reason kind), counted on
    /// every detection (a relist counts a still-hostile Service again).
    pub gate_refusals: BTreeMap<(String, String), u64>,
}

/// Reads a running controller's [`Status`] (cheap to clone; outlives the controller).
#[derive(Clone)]
pub struct StatusSource {
    readiness: Arc<RwLock<Readiness>>,
    metrics: Arc<ControllerMetrics>,
}

/// The readiness lock was poisoned (a thread panicked while holding it).
#[derive(Debug, thiserror::Error)]
#[error("status lock poisoned")]
pub struct Poisoned;

impl StatusSource {
    /// The current status.
    pub fn read(&self) -> Result<Status, Poisoned> {
        let r = self.readiness.read().map_err(|_| Poisoned)?.clone();
        let m = &self.metrics;
        let count = |n: i64| usize::try_from(n).unwrap_or_default();
        Ok(Status {
            synced: r.synced,
            leader: m.leader.get() == 1,
            services: count(m.services_watched.get()),
            toolsets: count(m.toolsets_published.get()),
            writes: m.writes(),
            write_failures: m.write_failures(),
            conflicts: m.configmap_conflicts.get(),
            invalid_overrides: m.overrides_invalid.get(),
            discovery_passes: m.discovery_passes.get(),
            probe_rounds: m.health_check_rounds.get(),
            last_error: r.last_error,
            stale: r.stale,
            refused_writes: m.refused_writes.get(),
            fenced_writes: m.fenced_writes.get(),
            detector_load_errors: r.detector_load_errors,
            heartbeat: r.heartbeat,
            gate_refusals: m.gate_refusals(),
        })
    }
}

/// A running controller. [`Handle::stop`] stops it gracefully and waits; dropping the
/// handle also stops it gracefully (without waiting); [`Handle::abort`] simulates a crash.
pub struct Handle {
    shutdown: signal::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    pub status: StatusSource,
    /// What the REST API reads (the published view) and where it asks for rounds.
    pub api: crate::api::server::ApiState,
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

    /// The current status.
    pub fn status(&self) -> Status {
        self.status.read().unwrap_or_default()
    }

    /// What `/readyz` and `/healthz` read.
    pub fn readiness(&self) -> Arc<RwLock<Readiness>> {
        self.status.readiness.clone()
    }

    /// What `/metrics` encodes.
    pub fn metrics(&self) -> Arc<ControllerMetrics> {
        self.status.metrics.clone()
    }

    /// Records the bundled detectors that failed to load (not ready while any did).
    pub fn set_detector_load_errors(&self, errors: Vec<String>) {
        self.status
            .metrics
            .detectors_failed
            .set(i64::try_from(errors.len()).unwrap_or(i64::MAX));
        if let Ok(mut r) = self.status.readiness.write() {
            r.detector_load_errors = errors;
        }
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

/// The detectors the controller runs, and where to reload them from.
pub struct Detectors {
    pub loaded: crate::pipeline::LoadedDetectors,
    /// Watched for changes every `Duration` (hot reload); None: never reloaded.
    pub reload: Option<(crate::pipeline::DetectorSetup, Duration)>,
}

impl From<DetectorSet> for Detectors {
    fn from(set: DetectorSet) -> Self {
        Detectors {
            loaded: crate::pipeline::LoadedDetectors {
                set,
                errors: Vec::new(),
                declarations: Default::default(),
            },
            reload: None,
        }
    }
}

/// Starts the controller on the current tokio runtime (multi-threaded or not: detection
/// runs on blocking threads, see [`detect`]), with its metrics registered on `metrics`.
pub fn start_with(
    client: kube::Client,
    opts: ControllerOptions,
    detectors: impl Into<Detectors>,
    metrics: Arc<ControllerMetrics>,
) -> Handle {
    let detectors: Detectors = detectors.into();
    let (shutdown, shutdown_rx) = signal::channel(false);
    let readiness = Arc::new(RwLock::new(Readiness::default()));
    // The limits every detector runs under (the runtime's defaults: `run` sets none).
    let rc = dynamic_toolset_runtime::RuntimeConfig::default();
    let limits = crate::api::model::LimitsView {
        call_deadline_ms: u64::try_from(rc.call_deadline.as_millis()).unwrap_or(u64::MAX),
        memory_bytes: rc.memory_limit_bytes as u64,
        output_bytes: rc.max_output_bytes as u64,
    };
    let loaded = &detectors.loaded;
    let statuses = crate::pipeline::statuses(&loaded.set, &loaded.errors, &loaded.declarations);
    if let Ok(mut r) = readiness.write() {
        r.detector_load_errors = detect::required_missing(&statuses);
    }
    let (api_side, api) = reconcile::view::channels(
        detect::DetectorsView {
            infos: loaded.set.detectors(),
            stats: loaded.set.stats(),
            statuses,
        },
        limits,
    );
    let task = tokio::spawn(reconcile::main_loop(
        client,
        opts,
        detectors,
        shutdown_rx,
        readiness.clone(),
        metrics.clone(),
        api_side,
    ));
    Handle {
        shutdown,
        task,
        status: StatusSource { readiness, metrics },
        api,
    }
}

/// [`start_with`] on a new set of metrics.
pub fn start(
    client: kube::Client,
    opts: ControllerOptions,
    detectors: impl Into<Detectors>,
) -> Handle {
    start_with(
        client,
        opts,
        detectors,
        Arc::new(ControllerMetrics::default()),
    )
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
