//! `dynamic-toolset run`: settings → client → detectors → controller + health/metrics
//! endpoints, until SIGTERM or Ctrl-C.

use std::process::ExitCode;
use std::sync::{Arc, RwLock};

use anyhow::Context;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;

use super::{ControllerOptions, HealthOptions, LeaderOptions, Readiness, state};
use crate::api::auth::{AuthOptions, Authorizer};
use crate::api::server;
use crate::cli::RunArgs;
use crate::config::Settings;
use crate::metrics::{self, ControllerMetrics};
use crate::pipeline::DetectorSetup;
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
    let settings = crate::config::load(args.config.as_deref(), &args.flags())?;
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
        match super::apply::owner_reference(&client, &opts.configmap_namespace, dep).await {
            Ok(owner) => opts.owner = Some(owner),
            Err(e) => tracing::warn!("no owner reference on the ConfigMap: {e:#}"),
        }
    }
    let setup = DetectorSetup::new(
        settings.detectors.dir.clone(),
        settings.detectors.cache_dir.clone(),
    );
    let setup = DetectorSetup {
        file: settings.detectors.file.clone(),
        ..setup
    };
    let loaded = crate::pipeline::load_detectors(&setup)?;
    let load_errors = &loaded.errors;
    for e in load_errors {
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
    let metrics = Arc::new(ControllerMetrics::new().context("cannot register the metrics")?);
    let auth = if settings.server.api_auth {
        Authorizer::kubernetes(client.clone(), AuthOptions::default())
    } else {
        Authorizer::disabled()
    };
    let detectors = super::Detectors {
        loaded,
        reload: Some((setup, settings.detectors.reload_interval)),
    };
    let handle = super::start_with(client, opts, detectors, metrics);
    if !bundled_failures.is_empty() {
        handle.set_detector_load_errors(bundled_failures);
    }

    // Health (unauthenticated; the runbook's /health and /ready too), then the REST API and
    // the status page behind TokenReview + SubjectAccessReview.
    let health_app = Router::new()
        .route("/healthz", get(healthz))
        .route("/health", get(healthz))
        .route("/readyz", get(readyz))
        .route("/ready", get(readyz))
        .with_state(handle.readiness())
        .merge(server::observed(
            server::router(handle.api.clone(), auth),
            handle.metrics(),
        ));
    let metrics_app = Router::new()
        .route("/metrics", get(metrics::handler::<ControllerMetrics>))
        .with_state(handle.metrics());
    let health_listener = tokio::net::TcpListener::bind(settings.server.listen)
        .await
        .with_context(|| format!("cannot listen on {}", settings.server.listen))?;
    let metrics_listener = tokio::net::TcpListener::bind(settings.server.metrics_listen)
        .await
        .with_context(|| format!("cannot listen on {}", settings.server.metrics_listen))?;
    tracing::info!(
        health_api_status_page = %settings.server.listen,
        metrics = %settings.server.metrics_listen,
        api_auth = settings.server.api_auth,
        "serving"
    );
    let servers = async {
        tokio::try_join!(
            axum::serve(health_listener, health_app).into_future(),
            axum::serve(metrics_listener, metrics_app).into_future(),
        )
    };
    tokio::select! {
        r = servers => { r.context("HTTP server failed")?; }
        _ = crate::shutdown::signal() => { tracing::info!("shutting down"); }
    }
    handle.stop().await;
    Ok(())
}

/// Ready: synced, every bundled detector loaded, and the published output not stale.
async fn readyz(State(readiness): State<Arc<RwLock<Readiness>>>) -> (StatusCode, String) {
    let why = match readiness.read() {
        Ok(s) => state::not_ready(s.synced, s.stale.as_deref(), &s.detector_load_errors),
        Err(_) => Some("status lock poisoned".into()),
    };
    match why {
        None => (StatusCode::OK, "ready".into()),
        Some(why) => (StatusCode::SERVICE_UNAVAILABLE, why),
    }
}

/// Alive: the main loop made progress within [`state::LIVENESS_BOUND`].
async fn healthz(State(readiness): State<Arc<RwLock<Readiness>>>) -> (StatusCode, String) {
    let why = match readiness.read() {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_render_counters_and_gauges() {
        use crate::metrics::{Exported, WriteStatus};
        let m = ControllerMetrics::new().unwrap();
        m.set_synced(true);
        m.set_leader(true);
        m.services_watched.set(42);
        m.toolsets_published.set(5);
        for _ in 0..3 {
            m.write(WriteStatus::Success);
        }
        m.write(WriteStatus::Failed);
        m.configmap_conflicts.inc_by(2);
        m.overrides_invalid.inc();
        let text = m.encode().unwrap();
        assert!(text.contains("toolset_services_watched 42"), "{text}");
        assert!(
            text.contains(r#"toolset_configmap_updates_total{status="success"} 3"#),
            "{text}"
        );
        assert!(
            text.contains("# TYPE toolset_overrides_invalid_total counter"),
            "{text}"
        );
        assert!(text.contains("dynamic_toolset_output_stale 0"), "{text}");
        let stale = ControllerMetrics::new().unwrap();
        stale.set_stale(true);
        stale.refused_writes.inc_by(2);
        let stale = stale.encode().unwrap();
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
