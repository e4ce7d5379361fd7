//! `dynamic-toolset run`: settings → client → detectors → controller + health/metrics
//! endpoints, until SIGTERM or Ctrl-C.

use std::process::ExitCode;
use std::sync::{Arc, RwLock};

use anyhow::Context;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;

use super::{ControllerOptions, HealthOptions, LeaderOptions, Status, state};
use crate::config::{RunArgs, Settings};
use crate::probe::ProbeSettings;

/// Maps validated settings onto the controller's options.
pub fn options(settings: &Settings, identity: &str) -> ControllerOptions {
    let sd = &settings.service_discovery;
    let hc = &sd.health_check;
    let le = &settings.leader_election;
    ControllerOptions {
        configmap_name: settings.configmap.name.clone(),
        configmap_namespace: settings.configmap.namespace.clone(),
        owner: None,
        namespaces: settings.namespace_filter(),
        watch_namespaces: settings
            .literal_namespaces()
            .map(|v| v.into_iter().map(str::to_string).collect()),
        label_selector: sd.label_selector.clone(),
        policy: settings.security.policy(&sd.cluster_domain),
        debounce: sd.debounce,
        discovery_interval: sd.discovery_interval,
        reconciliation_interval: sd.reconciliation_interval,
        health: hc.enabled.then(|| HealthOptions {
            interval: hc.interval,
            failure_threshold: hc.failure_threshold,
            probe: ProbeSettings {
                timeout: hc.timeout,
                attempts: hc.attempts,
                interval: hc.retry_interval,
                concurrency: hc.concurrency as usize,
                insecure_tls: hc.insecure_skip_tls_verify,
                resolve: Vec::new(),
            },
        }),
        leader: le.enabled.then(|| LeaderOptions {
            lease_name: le.lease_name.clone(),
            lease_namespace: le.lease_namespace.clone(),
            lease_duration: le.lease_duration,
            renew_deadline: le.renew_deadline,
            retry_period: le.retry_period,
            identity: identity.to_string(),
        }),
        reporter: identity.to_string(),
    }
}

/// This replica's identity: the pod name (env POD_NAME, else HOSTNAME), else a fixed name.
fn identity() -> String {
    std::env::var("POD_NAME")
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| format!("dynamic-toolset-{}", std::process::id()))
}

/// `dynamic-toolset run`.
pub fn run(args: &RunArgs) -> anyhow::Result<ExitCode> {
    let settings = crate::config::load(args)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(serve(args, settings))?;
    Ok(ExitCode::SUCCESS)
}

async fn serve(args: &RunArgs, settings: Settings) -> anyhow::Result<()> {
    let id = identity();
    let mut opts = options(&settings, &id);
    let client = super::client(args.kubeconfig.as_deref()).await?;
    if let Some(dep) = &settings.configmap.owner_deployment {
        match super::kube_io::owner_reference(&client, &opts.configmap_namespace, dep).await {
            Ok(owner) => opts.owner = Some(owner),
            Err(e) => tracing::warn!("no owner reference on the ConfigMap: {e:#}"),
        }
    }
    let runtime_args = crate::cli::RuntimeArgs {
        detectors_dir: settings.detectors.dir.clone(),
        cache_dir: settings.detectors.cache_dir.clone(),
    };
    let (detectors, load_errors) = crate::pipeline::load_detectors(&runtime_args)?;
    for e in &load_errors {
        tracing::error!("detector not loaded: {e}");
    }
    // A bundled detector that failed to load would silently drop its toolsets: not ready.
    let bundled_failures: Vec<String> = load_errors
        .iter()
        .filter(|e| {
            matches!(
                e.origin(),
                Some(dynamic_toolset_runtime::DetectorSource::Bundled(_))
            )
        })
        .map(ToString::to_string)
        .collect();
    tracing::info!(
        identity = %id,
        configmap = %format!("{}/{}", opts.configmap_namespace, opts.configmap_name),
        leader_election = opts.leader.is_some(),
        services = %match &opts.watch_namespaces {
            Some(ns) => format!("namespaced watches in {}", ns.join(", ")),
            None => "one cluster-wide watch".to_string(),
        },
        health_checks = opts.health.is_some(),
        "starting controller"
    );
    let handle = super::start(client, opts, detectors);
    if let Ok(mut s) = handle.status.write() {
        s.detector_load_errors = bundled_failures;
    }

    let status = handle.status.clone();
    let health_app = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(status.clone());
    let metrics_app = Router::new()
        .route("/metrics", get(metrics))
        .with_state(status.clone());
    let health_listener = tokio::net::TcpListener::bind(settings.server.listen)
        .await
        .with_context(|| format!("cannot listen on {}", settings.server.listen))?;
    let metrics_listener = tokio::net::TcpListener::bind(settings.server.metrics_listen)
        .await
        .with_context(|| format!("cannot listen on {}", settings.server.metrics_listen))?;
    tracing::info!(health = %settings.server.listen, metrics = %settings.server.metrics_listen, "serving");
    let servers = async {
        tokio::try_join!(
            axum::serve(health_listener, health_app).into_future(),
            axum::serve(metrics_listener, metrics_app).into_future(),
        )
    };
    tokio::select! {
        r = servers => { r.context("HTTP server failed")?; }
        _ = shutdown_signal() => { tracing::info!("shutting down"); }
    }
    handle.stop().await;
    Ok(())
}

pub(crate) async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                    return;
                }
            };
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Ready: synced, every bundled detector loaded, and the published output not stale.
async fn readyz(State(status): State<Arc<RwLock<Status>>>) -> (StatusCode, String) {
    let why = match status.read() {
        Ok(s) => state::not_ready(s.synced, s.stale.as_deref(), &s.detector_load_errors),
        Err(_) => Some("status lock poisoned".into()),
    };
    match why {
        None => (StatusCode::OK, "ready".into()),
        Some(why) => (StatusCode::SERVICE_UNAVAILABLE, why),
    }
}

/// Alive: the main loop made progress within [`state::LIVENESS_BOUND`].
async fn healthz(State(status): State<Arc<RwLock<Status>>>) -> (StatusCode, String) {
    let why = match status.read() {
        Ok(s) => state::not_alive(
            s.heartbeat,
            std::time::Instant::now(),
            state::LIVENESS_BOUND,
        ),
        Err(_) => Some("status lock poisoned".into()),
    };
    match why {
        None => (StatusCode::OK, "ok".into()),
        Some(why) => (StatusCode::SERVICE_UNAVAILABLE, why),
    }
}

async fn metrics(State(status): State<Arc<RwLock<Status>>>) -> (StatusCode, String) {
    let s = status.read().map(|s| s.clone()).unwrap_or_default();
    match render_metrics(&s) {
        Ok(text) => (StatusCode::OK, text),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// The controller's status in the Prometheus text format.
pub fn render_metrics(s: &Status) -> Result<String, prometheus::Error> {
    use prometheus::{Encoder, IntCounter, IntGauge, Registry, TextEncoder};
    let registry = Registry::new();
    let gauge = |name: &str, help: &str, v: i64| -> Result<(), prometheus::Error> {
        let g = IntGauge::new(name, help)?;
        g.set(v);
        registry.register(Box::new(g))
    };
    let counter = |name: &str, help: &str, v: u64| -> Result<(), prometheus::Error> {
        let c = IntCounter::new(name, help)?;
        c.inc_by(v);
        registry.register(Box::new(c))
    };
    gauge(
        "toolset_synced",
        "1 once the initial Service and ConfigMap lists have synced",
        i64::from(s.synced),
    )?;
    gauge(
        "toolset_leader",
        "1 while this replica holds the leader lease (only the leader writes)",
        i64::from(s.leader),
    )?;
    gauge(
        "toolset_services_watched",
        "Services watched after namespace filtering",
        s.services as i64,
    )?;
    gauge(
        "toolset_toolsets_published",
        "Toolset entries in the last computed configuration",
        s.toolsets as i64,
    )?;
    counter(
        "toolset_configmap_updates_total",
        "ConfigMap writes that succeeded",
        s.writes,
    )?;
    counter(
        "toolset_configmap_update_failures_total",
        "ConfigMap writes that failed (retried on the next pass)",
        s.write_failures,
    )?;
    counter(
        "toolset_configmap_conflicts_total",
        "409 conflicts retried while writing the ConfigMap",
        s.conflicts,
    )?;
    gauge(
        "dynamic_toolset_output_stale",
        "1 while the published ConfigMap lags behind the computed configuration (refused as too large, invalid overrides at start, or write failures)",
        i64::from(s.stale.is_some()),
    )?;
    counter(
        "dynamic_toolset_configmap_refused_writes_total",
        "ConfigMap writes refused because the data would exceed its size budget",
        s.refused_writes,
    )?;
    counter(
        "dynamic_toolset_fenced_writes_total",
        "ConfigMap writes refused by leader fencing (lease possibly expired, or a newer leader wrote)",
        s.fenced_writes,
    )?;
    gauge(
        "dynamic_toolset_detectors_failed",
        "Bundled detectors that failed to load",
        s.detector_load_errors.len() as i64,
    )?;
    let refusals = prometheus::IntCounterVec::new(
        prometheus::Opts::new(
            "dynamic_toolset_gate_refusals_total",
            "Detector fragments refused by the validation gate, by detector and reason (external_name, toolset, commands, template, endpoint, health, config, instance)",
        ),
        &["detector", "reason"],
    )?;
    for ((detector, reason), n) in &s.gate_refusals {
        refusals.with_label_values(&[detector, reason]).inc_by(*n);
    }
    registry.register(Box::new(refusals))?;
    counter(
        "toolset_overrides_invalid_total",
        "Distinct invalid overrides.yaml contents seen (last good configuration kept)",
        s.invalid_overrides,
    )?;
    let mut buf = Vec::new();
    TextEncoder::new().encode(&registry.gather(), &mut buf)?;
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_render_counters_and_gauges() {
        let text = render_metrics(&Status {
            synced: true,
            leader: true,
            services: 42,
            toolsets: 5,
            writes: 3,
            write_failures: 1,
            conflicts: 2,
            invalid_overrides: 1,
            last_error: None,
            ..Status::default()
        })
        .unwrap();
        assert!(text.contains("toolset_services_watched 42"), "{text}");
        assert!(text.contains("toolset_configmap_updates_total 3"), "{text}");
        assert!(
            text.contains("# TYPE toolset_overrides_invalid_total counter"),
            "{text}"
        );
        assert!(text.contains("dynamic_toolset_output_stale 0"), "{text}");
        let stale = render_metrics(&Status {
            stale: Some("too large".into()),
            refused_writes: 2,
            ..Status::default()
        })
        .unwrap();
        assert!(stale.contains("dynamic_toolset_output_stale 1"), "{stale}");
        assert!(
            stale.contains("dynamic_toolset_configmap_refused_writes_total 2"),
            "{stale}"
        );
    }

    #[test]
    fn settings_map_onto_options() {
        let s = Settings::default();
        let o = options(&s, "pod-1");
        assert_eq!(o.configmap_name, "kubernaut-toolset-config");
        assert!(o.health.is_some());
        let l = o.leader.unwrap();
        assert_eq!(l.lease_name, "dynamic-toolset-leader");
        assert_eq!(l.identity, "pod-1");
        assert!(
            o.watch_namespaces.is_none(),
            "no list: one cluster-wide watch"
        );
        let mut s = Settings::default();
        s.service_discovery.namespaces = vec!["b".into(), "a".into()];
        assert_eq!(
            options(&s, "p").watch_namespaces,
            Some(vec!["a".to_string(), "b".to_string()])
        );
        s.service_discovery.namespaces.push("team-*".into());
        assert!(options(&s, "p").watch_namespaces.is_none(), "wildcards");
    }
}
