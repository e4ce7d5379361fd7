//! The second step of the route: detection. The worker takes the snapshots the watch
//! recorded ([`Watched::Pending`]), runs every detector over them through the validation
//! gate on a blocking thread, and stores what matched ([`Watched::Done`]); the loop
//! selects from there. Detection never runs on an async task: jobs go to
//! `spawn_blocking` behind a [`Semaphore`] (as Kubewarden's policy server bounds its
//! evaluations), and the detector set is owned by the job that runs (moved into it and
//! back), so no lock is held around it.

use std::sync::Arc;
use std::time::Instant;

use dynamic_toolset_core::gate::{Grants, Policy};
use dynamic_toolset_core::{Detection, GateNote, ServiceDetections, ServiceRef, ServiceSnapshot};
use dynamic_toolset_runtime::{DetectorSet, DetectorStats};

use crate::detectors::declare::Declarations;
use tokio::sync::{Semaphore, mpsc};

use super::mirror::{self, Key};
use super::watch::Watched;
use crate::metrics::ControllerMetrics;
use crate::pipeline;

/// Snapshots detected per blocking job (the results are stored between jobs).
const DETECT_BATCH: usize = 256;

/// Detection jobs running at once: one per detector set (the controller has one; the
/// detectors' sandboxes are single-threaded).
pub const DETECT_CONCURRENCY: usize = 1;

/// Gate notes already logged: each distinct one is logged once (a relist detects every
/// Service again). Bounded: forgotten wholesale past [`GateLog::MAX`] entries.
#[derive(Default)]
struct GateLog {
    seen: std::collections::HashSet<String>,
}

impl GateLog {
    const MAX: usize = 10_000;

    fn log_once(&mut self, service: &ServiceRef, n: &GateNote) {
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

/// The detectors and what goes with them: owned by whichever job runs.
struct Detectors {
    set: DetectorSet,
    declarations: Declarations,
    grants: Grants,
    policy: Policy,
    log: GateLog,
    /// The runtime's counters at the last reading (fed to the metrics as differences).
    stats: Vec<DetectorStats>,
    metrics: Arc<ControllerMetrics>,
}

impl Detectors {
    /// Runs every detector over one Service, through the validation gate, and keeps what
    /// matched and was admitted (failures and refusals are logged and counted here, by
    /// detector). The one place a Service meets the detectors in the controller.
    fn detect(&mut self, snapshot: &ServiceSnapshot) -> ServiceDetections {
        let mut d = pipeline::detect_one(&mut self.set, &self.grants, &self.policy, snapshot);
        let now = self.set.stats();
        self.metrics.detector_stats(&mut self.stats, now);
        for v in &d.verdicts {
            if let Err(e) = &v.outcome {
                tracing::error!(service = %d.service, detector = %v.detector, "detector failed: {e}");
            }
        }
        for n in &d.gate {
            if n.refused() {
                self.metrics.gate_refusal(&n.detector, n.kind.as_str(), 1);
            }
            self.log.log_once(&d.service, n);
        }
        let matched = d
            .verdicts
            .iter()
            .any(|v| matches!(&v.outcome, Ok(Detection::Matched(f)) if !f.is_empty()));
        self.metrics.service_detected(matched);
        // Kept: matches, declines (with the reason) and failures, for selection and for the
        // API's per-Service verdicts; "unrelated" is the default and not stored.
        d.verdicts.retain(|v| match &v.outcome {
            Ok(Detection::Matched(f)) => !f.is_empty(),
            Ok(Detection::Declined(_)) | Err(_) => true,
            Ok(Detection::Unrelated) => false,
        });
        d
    }
}

type Batch = Vec<(Key, Arc<ServiceSnapshot>)>;
type Results = Vec<(Key, Arc<ServiceSnapshot>, ServiceDetections)>;

/// The snapshots still waiting for detection (listed objects too: a list in progress is
/// detected as it arrives), at most [`DETECT_BATCH`]. None: the lock is poisoned.
fn pending(services: &mirror::Shared<Watched>) -> Option<Batch> {
    let m = services.read().ok()?;
    Some(
        m.entries()
            .filter_map(|(k, w)| match w {
                Watched::Pending(s) => Some((k.clone(), s.clone())),
                Watched::Done(_) => None,
            })
            .take(DETECT_BATCH)
            .collect(),
    )
}

/// Stores results where the snapshot is still the current one (a newer event or a
/// relist replaced it otherwise, and it is detected in turn).
fn store(services: &mirror::Shared<Watched>, results: Results) -> bool {
    let Ok(mut m) = services.write() else {
        return false;
    };
    for (k, snap, d) in results {
        let mut d = Some(d);
        for w in m.entries_mut(&k) {
            if matches!(w, Watched::Pending(s) if Arc::ptr_eq(s, &snap))
                && let Some(d) = d.take()
            {
                *w = Watched::Done(
                    (!d.verdicts.is_empty() || !d.gate.is_empty()).then(|| Box::new(d)),
                );
            }
        }
    }
    m.generation += 1;
    true
}

/// The worker's channels: woken when snapshots are pending, signals when they are
/// detected, and publishes the detectors' counters (for the API) after every batch.
pub struct Signals {
    pub wake: mpsc::Receiver<()>,
    pub done: mpsc::Sender<()>,
    pub stats: Option<tokio::sync::watch::Sender<DetectorsView>>,
    /// New detectors to swap in (hot reload); after a swap the worker asks for a relist
    /// on `relist`, so every Service is detected by the new version.
    pub reloads: mpsc::Receiver<super::reload::Reload>,
    pub relist: mpsc::Sender<()>,
    /// Readiness lists required (`fail_strategy: fail`) detectors that are not loaded.
    pub readiness: Arc<std::sync::RwLock<super::Readiness>>,
}

/// The detectors as the API shows them: loaded ones, their counters, and every
/// declared one's status.
#[derive(Debug, Clone, Default)]
pub struct DetectorsView {
    pub infos: Vec<dynamic_toolset_runtime::LoadedInfo>,
    pub stats: Vec<DetectorStats>,
    pub statuses: Vec<pipeline::DetectorStatus>,
}

/// Required detectors (`fail_strategy: fail`) that are not loaded, for readiness.
pub fn required_missing(statuses: &[pipeline::DetectorStatus]) -> Vec<String> {
    statuses
        .iter()
        .filter(|s| s.required && s.status != "loaded")
        .map(|s| {
            format!(
                "required detector `{}` is {}{}",
                s.detector,
                s.status,
                s.reason
                    .as_ref()
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default()
            )
        })
        .collect()
}

/// Detects what the watch recorded, in batches, on blocking threads (at most `bound`
/// jobs at once). Signals `done` after every wake-up, also when nothing was pending (a
/// deletion), so the loop selects again.
pub async fn worker(
    loaded: pipeline::LoadedDetectors,
    policy: Policy,
    services: mirror::Shared<Watched>,
    metrics: Arc<ControllerMetrics>,
    bound: Arc<Semaphore>,
    signals: Signals,
) {
    let Signals {
        mut wake,
        done,
        stats,
        mut reloads,
        relist,
        readiness,
    } = signals;
    let grants = loaded.grants();
    let mut detectors = Some(Detectors {
        grants,
        stats: loaded.set.stats(),
        set: loaded.set,
        declarations: loaded.declarations,
        policy,
        log: GateLog::default(),
        metrics: metrics.clone(),
    });
    loop {
        tokio::select! {
            w = wake.recv() => if w.is_none() { return },
            Some(reload) = reloads.recv() => {
                let Some(job) = detectors.as_mut() else { return };
                swap(job, reload, stats.as_ref(), &readiness, &metrics);
                // Every Service is detected again by the new version.
                let _ = relist.try_send(());
                continue;
            }
        }
        let started = Instant::now();
        let mut detected = false;
        loop {
            let Some(batch) = pending(&services) else {
                tracing::error!("services mirror lock poisoned");
                return;
            };
            if batch.is_empty() {
                break;
            }
            let (Some(mut job), Ok(permit)) =
                (detectors.take(), bound.clone().acquire_owned().await)
            else {
                tracing::error!("detection stopped: the detectors or their bound are gone");
                return;
            };
            let ran = tokio::task::spawn_blocking(move || {
                let results: Results = batch
                    .into_iter()
                    .map(|(k, snap)| {
                        let d = job.detect(&snap);
                        (k, snap, d)
                    })
                    .collect();
                drop(permit);
                (job, results)
            })
            .await;
            let Ok((job, results)) = ran else {
                tracing::error!("detection job failed");
                return;
            };
            if let Some(tx) = &stats {
                tx.send_modify(|v| v.stats = job.set.stats());
            }
            detectors = Some(job);
            detected = true;
            if !store(&services, results) {
                tracing::error!("services mirror lock poisoned");
                return;
            }
        }
        if detected {
            metrics
                .discovery_duration
                .observe(started.elapsed().as_secs_f64());
        }
        let _ = done.try_send(());
    }
}

/// Swaps a reload in (between batches: no batch mixes versions), recomputes the grants,
/// and reports what changed.
fn swap(
    job: &mut Detectors,
    reload: super::reload::Reload,
    stats: Option<&tokio::sync::watch::Sender<DetectorsView>>,
    readiness: &std::sync::RwLock<super::Readiness>,
    metrics: &ControllerMetrics,
) {
    let (report, errors) = job.set.swap(reload.prepared);
    job.declarations = reload.declarations;
    job.grants = pipeline::grants(&job.set, &job.declarations);
    job.stats = job.set.stats();
    let statuses = pipeline::statuses(&job.set, &errors, &job.declarations);
    for e in &errors {
        tracing::error!("detector reload: {e}");
    }
    tracing::info!(
        loaded = ?report.loaded,
        kept_last_good = ?report.kept_last_good,
        removed = ?report.removed,
        "detectors swapped"
    );
    metrics.detector_reload(if errors.is_empty() {
        "success"
    } else {
        "partial"
    });
    if let Ok(mut r) = readiness.write() {
        r.detector_load_errors = required_missing(&statuses);
    }
    if let Some(tx) = stats {
        tx.send_replace(DetectorsView {
            infos: job.set.detectors(),
            stats: job.stats.clone(),
            statuses,
        });
    }
}
