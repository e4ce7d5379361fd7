//! Prometheus metrics of the controller (`run`) and of the delivery sidecar (`deliver`).
//!
//! The pattern of kube-rs' controller-rs: each command owns one struct of collectors,
//! registered once on its own [`Registry`] when it starts and fed as events happen; the
//! `/metrics` endpoint ([`handler`]) only encodes the registry.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use dynamic_toolset_runtime::DetectorStats;
use prometheus::{
    Encoder, Gauge, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

/// Registers collectors as it creates them: one way of registering for every command.
struct Builder {
    registry: Registry,
}

impl Builder {
    fn new() -> Self {
        Self {
            registry: Registry::new(),
        }
    }

    fn register<C: prometheus::core::Collector + Clone + 'static>(
        &self,
        c: C,
    ) -> Result<C, prometheus::Error> {
        self.registry.register(Box::new(c.clone()))?;
        Ok(c)
    }

    fn counter(&self, name: &str, help: &str) -> Result<IntCounter, prometheus::Error> {
        self.register(IntCounter::new(name, help)?)
    }

    fn gauge(&self, name: &str, help: &str) -> Result<IntGauge, prometheus::Error> {
        self.register(IntGauge::new(name, help)?)
    }

    fn float_gauge(&self, name: &str, help: &str) -> Result<Gauge, prometheus::Error> {
        self.register(Gauge::new(name, help)?)
    }

    fn counters(
        &self,
        name: &str,
        help: &str,
        labels: &[&str],
    ) -> Result<IntCounterVec, prometheus::Error> {
        self.register(IntCounterVec::new(Opts::new(name, help), labels)?)
    }

    fn histogram(
        &self,
        name: &str,
        help: &str,
        buckets: Vec<f64>,
    ) -> Result<Histogram, prometheus::Error> {
        self.register(Histogram::with_opts(
            HistogramOpts::new(name, help).buckets(buckets),
        )?)
    }

    fn histograms(
        &self,
        name: &str,
        help: &str,
        labels: &[&str],
        buckets: Vec<f64>,
    ) -> Result<HistogramVec, prometheus::Error> {
        self.register(HistogramVec::new(
            HistogramOpts::new(name, help).buckets(buckets),
            labels,
        )?)
    }
}

/// A registry in the Prometheus text format.
pub fn encode(registry: &Registry) -> Result<String, prometheus::Error> {
    let mut buf = Vec::new();
    TextEncoder::new().encode(&registry.gather(), &mut buf)?;
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// What a `/metrics` endpoint serves.
pub trait Exported: Send + Sync + 'static {
    /// The metrics in the Prometheus text format.
    fn encode(&self) -> Result<String, prometheus::Error>;
}

/// The `/metrics` endpoint of either command.
pub async fn handler<M: Exported>(
    axum::extract::State(metrics): axum::extract::State<Arc<M>>,
) -> (axum::http::StatusCode, String) {
    match metrics.encode() {
        Ok(text) => (axum::http::StatusCode::OK, text),
        Err(e) => (axum::http::StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

fn bool_value(b: bool) -> i64 {
    i64::from(b)
}

// ---------------------------------------------------------------------------------------------
// The controller

/// Outcome of a ConfigMap write, the `status` label of `toolset_configmap_updates_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteStatus {
    Success,
    Failed,
}

/// The controller's collectors.
pub struct ControllerMetrics {
    registry: Registry,
    pub synced: IntGauge,
    pub leader: IntGauge,
    pub services_watched: IntGauge,
    pub toolsets_published: IntGauge,
    configmap_updates: IntCounterVec,
    configmap_update_failures: IntCounter,
    pub configmap_conflicts: IntCounter,
    pub output_stale: IntGauge,
    pub refused_writes: IntCounter,
    pub fenced_writes: IntCounter,
    pub detectors_failed: IntGauge,
    detector_reloads: IntCounterVec,
    gate_refusals: IntCounterVec,
    pub overrides_invalid: IntCounter,
    services_discovered: IntCounterVec,
    pub discovery_passes: IntCounter,
    pub discovery_duration: Histogram,
    pub health_check_rounds: IntCounter,
    pub health_check_duration: Histogram,
    toolset_health: IntGaugeVec,
    detector_calls: IntCounterVec,
    detector_matches: IntCounterVec,
    detector_declines: IntCounterVec,
    detector_unrelated: IntCounterVec,
    detector_failures: IntCounterVec,
    detector_call_duration: HistogramVec,
    /// REST API requests, by route (the matched pattern), method and status code.
    pub api_requests: IntCounterVec,
    /// REST API request latency, by route.
    pub api_request_duration: HistogramVec,
    /// Gate refusal series seen, to read them back ([`ControllerMetrics::gate_refusals`]).
    refusal_keys: Mutex<std::collections::BTreeSet<(String, String)>>,
}

/// Failure kinds of `dynamic_toolset_detector_failures_total` (the runtime's counters).
pub const DETECTOR_FAILURE_KINDS: &[&str] = &["timeout", "out_of_memory", "trap", "invalid_output"];

/// Buckets of the detector call histogram: a call normally takes microseconds to a few
/// milliseconds; the runtime's deadline is around a second.
const CALL_BUCKETS: &[f64] = &[
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5,
];
/// Buckets of discovery passes and probe rounds.
const PASS_BUCKETS: &[f64] = &[
    0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
];

impl ControllerMetrics {
    /// Creates and registers every collector.
    pub fn new() -> Result<Self, prometheus::Error> {
        let b = Builder::new();
        let m = Self {
            synced: b.gauge(
                "toolset_synced",
                "1 once the initial Service and ConfigMap lists have synced",
            )?,
            leader: b.gauge(
                "toolset_leader",
                "1 while this replica holds the leader lease (only the leader writes)",
            )?,
            services_watched: b.gauge(
                "toolset_services_watched",
                "Services watched after namespace filtering",
            )?,
            toolsets_published: b.gauge(
                "toolset_toolsets_published",
                "Toolset entries in the last computed configuration",
            )?,
            configmap_updates: b.counters(
                "toolset_configmap_updates_total",
                "ConfigMap writes, by outcome (success, failed)",
                &["status"],
            )?,
            configmap_update_failures: b.counter(
                "toolset_configmap_update_failures_total",
                "ConfigMap writes that failed (retried on the next pass)",
            )?,
            configmap_conflicts: b.counter(
                "toolset_configmap_conflicts_total",
                "409 conflicts met while writing the ConfigMap (the view is re-read and the next pass decides again)",
            )?,
            output_stale: b.gauge(
                "dynamic_toolset_output_stale",
                "1 while the published ConfigMap lags behind the computed configuration (refused as too large, invalid overrides at start, or write failures)",
            )?,
            refused_writes: b.counter(
                "dynamic_toolset_configmap_refused_writes_total",
                "ConfigMap writes refused because the data would exceed its size budget",
            )?,
            fenced_writes: b.counter(
                "dynamic_toolset_fenced_writes_total",
                "ConfigMap writes refused by leader fencing (lease possibly expired, or a newer leader wrote)",
            )?,
            detectors_failed: b.gauge(
                "dynamic_toolset_detectors_failed",
                "Bundled detectors that failed to load",
            )?,
            detector_reloads: {
                let c = b.counters(
                    "dynamic_toolset_detector_reloads_total",
                    "Detector reloads after a change of the declarations or of a detector file: success (every declared detector loaded), partial (some kept their last good version or were rejected), failure (the declarations were invalid: nothing changed)",
                    &["result"],
                )?;
                for r in ["success", "partial", "failure"] {
                    c.with_label_values(&[r]);
                }
                c
            },
            gate_refusals: b.counters(
                "dynamic_toolset_gate_refusals_total",
                "Detector fragments refused by the validation gate, by detector and reason (external_name, toolset, commands, template, endpoint, health, config, instance, grant)",
                &["detector", "reason"],
            )?,
            overrides_invalid: b.counter(
                "toolset_overrides_invalid_total",
                "Distinct invalid overrides.yaml contents seen (last good configuration kept)",
            )?,
            services_discovered: b.counters(
                "toolset_services_discovered_total",
                "Services detected, by outcome (matched: some detector's fragment was admitted; unrelated: none)",
                &["status"],
            )?,
            discovery_passes: b.counter(
                "toolset_discovery_passes_total",
                "Selections computed from the detected Services",
            )?,
            discovery_duration: b.histogram(
                "toolset_discovery_duration_seconds",
                "Time of one detection batch (detectors over changed Services, on a blocking thread)",
                PASS_BUCKETS.to_vec(),
            )?,
            health_check_rounds: b.counter(
                "toolset_health_check_rounds_total",
                "Completed health probe batches",
            )?,
            health_check_duration: b.histogram(
                "toolset_health_check_duration_seconds",
                "Time of one health probe batch",
                PASS_BUCKETS.to_vec(),
            )?,
            toolset_health: b.register(IntGaugeVec::new(
                Opts::new(
                    "toolset_health",
                    "Health of each chosen installation of a toolset (1 healthy, 0 not; absent when not probed)",
                ),
                &["toolset", "instance"],
            )?)?,
            detector_calls: b.counters(
                "dynamic_toolset_detector_calls_total",
                "Detector calls, by detector",
                &["detector"],
            )?,
            detector_matches: b.counters(
                "dynamic_toolset_detector_matches_total",
                "Detector calls that matched (before the validation gate), by detector",
                &["detector"],
            )?,
            detector_declines: b.counters(
                "dynamic_toolset_detector_declines_total",
                "Detector calls that recognised a backend but declined it, by detector",
                &["detector"],
            )?,
            detector_unrelated: b.counters(
                "dynamic_toolset_detector_unrelated_total",
                "Detector calls on a Service the detector does not handle, by detector",
                &["detector"],
            )?,
            detector_failures: b.counters(
                "dynamic_toolset_detector_failures_total",
                "Detector calls that failed, by detector and kind (timeout, out_of_memory, trap, invalid_output)",
                &["detector", "kind"],
            )?,
            detector_call_duration: b.histograms(
                "dynamic_toolset_detector_call_duration_seconds",
                "Time of one detector call, by detector",
                &["detector"],
                CALL_BUCKETS.to_vec(),
            )?,
            api_requests: b.counters(
                "dynamic_toolset_api_requests_total",
                "REST API requests, by route, method and status code",
                &["route", "method", "code"],
            )?,
            api_request_duration: b.histograms(
                "dynamic_toolset_api_request_duration_seconds",
                "REST API request latency, by route",
                &["route"],
                vec![0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0],
            )?,
            refusal_keys: Mutex::default(),
            registry: b.registry,
        };
        // Both outcomes exported from the start (as 0), so rates and alerts see the series.
        for status in ["success", "failed"] {
            m.configmap_updates.with_label_values(&[status]);
        }
        Ok(m)
    }

    pub fn set_synced(&self, synced: bool) {
        self.synced.set(bool_value(synced));
    }

    pub fn set_leader(&self, leader: bool) {
        self.leader.set(bool_value(leader));
    }

    pub fn set_stale(&self, stale: bool) {
        self.output_stale.set(bool_value(stale));
    }

    /// One ConfigMap write that reached the API server.
    pub fn write(&self, status: WriteStatus) {
        match status {
            WriteStatus::Success => self.configmap_updates.with_label_values(&["success"]).inc(),
            WriteStatus::Failed => {
                self.configmap_updates.with_label_values(&["failed"]).inc();
                self.configmap_update_failures.inc();
            }
        }
    }

    /// Successful ConfigMap writes.
    pub fn writes(&self) -> u64 {
        self.configmap_updates.with_label_values(&["success"]).get()
    }

    /// Failed ConfigMap writes.
    pub fn write_failures(&self) -> u64 {
        self.configmap_update_failures.get()
    }

    /// One fragment refused by the gate.
    /// Counts one detector reload by result (`success`, `partial`, `failure`).
    pub fn detector_reload(&self, result: &str) {
        self.detector_reloads.with_label_values(&[result]).inc();
    }

    /// Detector reloads so far with `result`.
    pub fn detector_reloads(&self, result: &str) -> u64 {
        self.detector_reloads.with_label_values(&[result]).get()
    }

    pub fn gate_refusal(&self, detector: &str, reason: &str, n: u64) {
        self.gate_refusals
            .with_label_values(&[detector, reason])
            .inc_by(n);
        if let Ok(mut keys) = self.refusal_keys.lock() {
            keys.insert((detector.to_string(), reason.to_string()));
        }
    }

    /// Gate refusals so far, by (detector, reason).
    pub fn gate_refusals(&self) -> BTreeMap<(String, String), u64> {
        let keys = self
            .refusal_keys
            .lock()
            .map(|k| k.clone())
            .unwrap_or_default();
        keys.into_iter()
            .map(|(d, r)| {
                let n = self.gate_refusals.with_label_values(&[&d, &r]).get();
                ((d, r), n)
            })
            .collect()
    }

    /// One Service detected: matched (some fragment admitted) or not.
    pub fn service_detected(&self, matched: bool) {
        let status = if matched { "matched" } else { "unrelated" };
        self.services_discovered.with_label_values(&[status]).inc();
    }

    /// Feeds the runtime's per-detector counters: `now` against `before` (the previous
    /// reading, replaced). A detector that made exactly one call since is timed exactly.
    pub fn detector_stats(&self, before: &mut Vec<DetectorStats>, now: Vec<DetectorStats>) {
        for s in &now {
            let prev = before.iter().find(|p| p.detector == s.detector);
            let delta =
                |f: fn(&DetectorStats) -> u64| f(s).saturating_sub(prev.map(f).unwrap_or_default());
            let d = s.detector.as_str();
            let calls = delta(|s| s.calls);
            if calls == 0 {
                continue;
            }
            self.detector_calls.with_label_values(&[d]).inc_by(calls);
            self.detector_matches
                .with_label_values(&[d])
                .inc_by(delta(|s| s.matched));
            self.detector_declines
                .with_label_values(&[d])
                .inc_by(delta(|s| s.declined));
            self.detector_unrelated
                .with_label_values(&[d])
                .inc_by(delta(|s| s.unrelated));
            for (kind, n) in [
                ("timeout", delta(|s| s.failures.timeout)),
                ("out_of_memory", delta(|s| s.failures.out_of_memory)),
                ("trap", delta(|s| s.failures.trap)),
                ("invalid_output", delta(|s| s.failures.invalid_output)),
            ] {
                if n > 0 {
                    self.detector_failures
                        .with_label_values(&[d, kind])
                        .inc_by(n);
                }
            }
            let time = s
                .total_time
                .saturating_sub(prev.map(|p| p.total_time).unwrap_or_default());
            let per_call = time / u32::try_from(calls).unwrap_or(u32::MAX);
            let h = self.detector_call_duration.with_label_values(&[d]);
            for _ in 0..calls.min(1_000) {
                h.observe(per_call.as_secs_f64());
            }
        }
        *before = now;
    }

    /// The published health of the chosen installations (replaces the previous set).
    pub fn set_health<'a>(&self, health: impl IntoIterator<Item = (&'a str, &'a str, bool)>) {
        self.toolset_health.reset();
        for (toolset, instance, healthy) in health {
            self.toolset_health
                .with_label_values(&[toolset, instance])
                .set(bool_value(healthy));
        }
    }

    /// One probe batch.
    pub fn health_round(&self, took: Duration) {
        self.health_check_rounds.inc();
        self.health_check_duration.observe(took.as_secs_f64());
    }
}

impl Default for ControllerMetrics {
    /// [`ControllerMetrics::new`] at startup: the collectors' names and labels are
    /// constants, so it cannot fail (checked by the tests below).
    #[allow(clippy::expect_used)]
    fn default() -> Self {
        Self::new().expect("the controller's metric definitions are valid")
    }
}

impl Exported for ControllerMetrics {
    fn encode(&self) -> Result<String, prometheus::Error> {
        encode(&self.registry)
    }
}

// ---------------------------------------------------------------------------------------------
// The delivery sidecar

/// Failure reasons (the `reason` label of `toolset_delivery_failures_total`).
pub const DELIVERY_FAILURE_REASONS: &[&str] = &[
    "invalid_configmap",
    "write_failed",
    "holmes_unreachable",
    "unauthorized",
    "reload_error",
    "unexpected_status",
    "credential_unreadable",
];

/// The delivery sidecar's collectors.
pub struct DeliveryMetrics {
    registry: Registry,
    pub deliveries: IntCounter,
    pub reload_attempts: IntCounter,
    failures: IntCounterVec,
    pub configmap_present: IntGauge,
    pub pending: IntGauge,
    pub consecutive_failures: IntGauge,
    served_content_age: Gauge,
    last_success: Gauge,
    /// When the served content was generated: the age gauge is computed from it when
    /// encoding (it grows with time, not with events).
    served_generated_at: Mutex<Option<SystemTime>>,
}

impl DeliveryMetrics {
    /// Creates and registers every collector.
    pub fn new() -> Result<Self, prometheus::Error> {
        let b = Builder::new();
        let failures = b.counters(
            "toolset_delivery_failures_total",
            "Delivery failures by reason (invalid ConfigMap refused, write failed, HolmesGPT unreachable, unauthorized, reload error, ...)",
            &["reason"],
        )?;
        // Every reason is exported from the start, at 0.
        for r in DELIVERY_FAILURE_REASONS {
            failures.with_label_values(&[r]);
        }
        Ok(Self {
            deliveries: b.counter(
                "toolset_delivery_deliveries_total",
                "Contents delivered: file written atomically and HolmesGPT's reload answered 2xx",
            )?,
            reload_attempts: b.counter(
                "toolset_delivery_reload_attempts_total",
                "Calls of HolmesGPT's reload endpoint",
            )?,
            failures,
            configmap_present: b.gauge(
                "toolset_delivery_configmap_present",
                "1 while the watched ConfigMap exists",
            )?,
            pending: b.gauge(
                "toolset_delivery_pending",
                "1 while newer valid content waits to be served by HolmesGPT",
            )?,
            consecutive_failures: b.gauge(
                "toolset_delivery_consecutive_failures",
                "Failed attempts since the last successful delivery",
            )?,
            served_content_age: b.float_gauge(
                "toolset_delivery_served_content_age_seconds",
                "Seconds since the content HolmesGPT last reloaded was generated (-1: nothing delivered yet)",
            )?,
            last_success: b.float_gauge(
                "toolset_delivery_last_success_timestamp_seconds",
                "Unix time of the last successful delivery (0: none)",
            )?,
            served_generated_at: Mutex::new(None),
            registry: b.registry,
        })
    }

    /// One failed attempt, by reason (one of [`DELIVERY_FAILURE_REASONS`]).
    pub fn failure(&self, reason: &str) {
        self.failures.with_label_values(&[reason]).inc();
    }

    /// One successful delivery of content generated at `generated_at`.
    pub fn delivered(&self, generated_at: SystemTime, at: SystemTime) {
        self.deliveries.inc();
        self.last_success.set(
            at.duration_since(SystemTime::UNIX_EPOCH)
                .map(|d| d.as_secs_f64())
                .unwrap_or(0.0),
        );
        if let Ok(mut g) = self.served_generated_at.lock() {
            *g = Some(generated_at);
        }
    }
}

impl Exported for DeliveryMetrics {
    fn encode(&self) -> Result<String, prometheus::Error> {
        let served = self.served_generated_at.lock().ok().and_then(|g| *g);
        self.served_content_age.set(match served {
            Some(t) => SystemTime::now()
                .duration_since(t)
                .map(|d| d.as_secs_f64())
                .unwrap_or(0.0),
            None => -1.0,
        });
        encode(&self.registry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dynamic_toolset_runtime::FailureCounts;

    fn stats(calls: u64, matched: u64, traps: u64, ms: u64) -> DetectorStats {
        DetectorStats {
            detector: "loki".into(),
            calls,
            matched,
            unrelated: calls - matched - traps,
            failures: FailureCounts {
                trap: traps,
                ..FailureCounts::default()
            },
            total_time: Duration::from_millis(ms),
            ..DetectorStats::default()
        }
    }

    #[test]
    fn controller_metrics_encode_after_events() {
        let m = ControllerMetrics::new().unwrap();
        m.set_synced(true);
        m.services_watched.set(42);
        m.write(WriteStatus::Success);
        m.write(WriteStatus::Success);
        m.write(WriteStatus::Failed);
        m.gate_refusal("custom", "endpoint", 2);
        m.service_detected(true);
        m.health_round(Duration::from_millis(30));
        m.set_health([("prometheus/metrics", "monitoring/kps", true)]);
        let mut before = Vec::new();
        m.detector_stats(&mut before, vec![stats(1, 1, 0, 2)]);
        m.detector_stats(&mut before, vec![stats(3, 1, 1, 8)]);
        let text = m.encode().unwrap();
        for want in [
            "toolset_synced 1",
            "toolset_services_watched 42",
            r#"toolset_configmap_updates_total{status="success"} 2"#,
            r#"toolset_configmap_updates_total{status="failed"} 1"#,
            "toolset_configmap_update_failures_total 1",
            r#"dynamic_toolset_gate_refusals_total{detector="custom",reason="endpoint"} 2"#,
            r#"toolset_services_discovered_total{status="matched"} 1"#,
            "toolset_health_check_duration_seconds_count 1",
            r#"toolset_health{instance="monitoring/kps",toolset="prometheus/metrics"} 1"#,
            r#"dynamic_toolset_detector_calls_total{detector="loki"} 3"#,
            r#"dynamic_toolset_detector_matches_total{detector="loki"} 1"#,
            r#"dynamic_toolset_detector_failures_total{detector="loki",kind="trap"} 1"#,
            r#"dynamic_toolset_detector_call_duration_seconds_count{detector="loki"} 3"#,
            "# TYPE toolset_discovery_duration_seconds histogram",
            "# TYPE toolset_overrides_invalid_total counter",
        ] {
            assert!(text.contains(want), "{want}:\n{text}");
        }
        assert_eq!(m.writes(), 2);
        assert_eq!(
            m.gate_refusals(),
            BTreeMap::from([(("custom".to_string(), "endpoint".to_string()), 2)])
        );
    }

    #[test]
    fn delivery_metrics_export_every_reason_from_the_start() {
        let m = DeliveryMetrics::new().unwrap();
        let text = m.encode().unwrap();
        for r in DELIVERY_FAILURE_REASONS {
            assert!(
                text.contains(&format!(
                    r#"toolset_delivery_failures_total{{reason="{r}"}} 0"#
                )),
                "{text}"
            );
        }
        assert!(
            text.contains("toolset_delivery_served_content_age_seconds -1"),
            "{text}"
        );
    }
}
