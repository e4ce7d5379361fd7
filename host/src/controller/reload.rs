//! Hot reload of the detectors: watches the declarations file, the files it names and the
//! detectors directory; on a change (seen twice in a row, so a file still being written
//! is not read half-way) it parses the declarations and prepares the new detectors on a
//! blocking thread, with the running set's engine, then hands them to the detection
//! worker, which swaps them in between batches ([`super::detect`]). Invalid declarations
//! change nothing (the running detectors stay) and are reported; so is every detector of
//! a new version that fails to load (its last good version keeps running): in the log, the
//! `dynamic_toolset_detector_reloads_total` metric, a Warning Event beside the ConfigMap
//! ([`EVENT_DECLARATIONS`], [`EVENT_DETECTORS`]) and the detectors API.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use dynamic_toolset_runtime::{Prepared, Reloader};
use tokio::sync::mpsc;

use crate::detectors::declare::Declarations;
use crate::metrics::ControllerMetrics;
use crate::pipeline::DetectorSetup;

/// Event reason: the declarations file could not be applied (nothing changed).
pub const EVENT_DECLARATIONS: &str = "DetectorDeclarationsInvalid";
/// Event reason: detectors of a new version failed to load (the rest swapped in).
pub const EVENT_DETECTORS: &str = "DetectorReloadFailed";
const EVENT_ACTION: &str = "ReloadDetectors";

/// Where reload failures are reported as Warning Events: beside the ConfigMap.
pub struct ReloadEvents {
    pub sink: super::events::EventSink,
    pub namespace: String,
    pub configmap: String,
}

impl ReloadEvents {
    async fn warn(&mut self, reason: &str, note: &str) {
        self.sink
            .warn(&self.namespace, &self.configmap, reason, EVENT_ACTION, note)
            .await;
    }
}

/// New detectors, ready to swap in.
pub struct Reload {
    pub prepared: Prepared,
    pub declarations: Declarations,
}

/// What a change is detected from: the declarations text and each watched file's size
/// and modification time.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    declarations: Option<String>,
    files: Vec<(PathBuf, Option<(u64, SystemTime)>)>,
}

fn stamp(setup: &DetectorSetup) -> Stamp {
    let declarations = setup
        .file
        .as_ref()
        .map(|f| std::fs::read_to_string(f).unwrap_or_default());
    let mut paths = setup.dir_files().unwrap_or_default();
    if let Ok(d) = setup.declarations() {
        paths.extend(d.files());
    }
    paths.sort();
    paths.dedup();
    let files = paths
        .into_iter()
        .map(|p| {
            let meta = std::fs::metadata(&p)
                .ok()
                .and_then(|m| Some((m.len(), m.modified().ok()?)));
            (p, meta)
        })
        .collect();
    Stamp {
        declarations,
        files,
    }
}

/// Watches for changes every `interval` until `tx` closes.
pub async fn watch(
    setup: DetectorSetup,
    interval: Duration,
    reloader: Reloader,
    tx: mpsc::Sender<Reload>,
    metrics: Arc<ControllerMetrics>,
    mut events: ReloadEvents,
) {
    let mut current = stamp(&setup);
    let mut seen: Option<Stamp> = None;
    let mut tick = tokio::time::interval(interval.max(Duration::from_millis(50)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if tx.is_closed() {
            return;
        }
        let now = stamp(&setup);
        if now == current {
            seen = None;
            continue;
        }
        // Debounce: act once the change has stayed the same for one interval.
        if seen.as_ref() != Some(&now) {
            seen = Some(now);
            continue;
        }
        seen = None;
        current = now;
        let started = std::time::Instant::now();
        let (declarations, specs) = match setup.specs() {
            Ok(x) => x,
            Err(e) => {
                let note =
                    format!("detector declarations not applied, the running detectors stay: {e:#}");
                tracing::error!("{note}");
                metrics.detector_reload("failure");
                events.warn(EVENT_DECLARATIONS, &note).await;
                continue;
            }
        };
        let loader = reloader.clone();
        let prepared = match tokio::task::spawn_blocking(move || loader.prepare(specs)).await {
            Ok(p) => p,
            Err(e) => {
                let note = format!("detector reload failed, the running detectors stay: {e}");
                tracing::error!("{note}");
                metrics.detector_reload("failure");
                events.warn(EVENT_DETECTORS, &note).await;
                continue;
            }
        };
        if !prepared.errors.is_empty() {
            let failed: Vec<String> = prepared.errors.iter().map(ToString::to_string).collect();
            let note = format!(
                "{} detector(s) of the new declarations failed to load; each keeps its last good version where one was running: {}",
                failed.len(),
                failed.join("; ")
            );
            events.warn(EVENT_DETECTORS, &note).await;
        }
        tracing::info!(
            elapsed_ms = started.elapsed().as_millis() as u64,
            failed = prepared.errors.len(),
            "detectors prepared after a change; swapping in"
        );
        if tx
            .send(Reload {
                prepared,
                declarations,
            })
            .await
            .is_err()
        {
            return;
        }
    }
}
