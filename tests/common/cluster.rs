//! Scenario helpers of the tests on the real kube-apiserver (kube-harness): a client of the
//! shared server, namespaces, Services as the charts render them, loopback backends, the
//! bundled detectors, controller options, Events, polling. Shared by tests/controller.rs,
//! tests/deliver_e2e.rs, tests/api_controller.rs and tests/reload.rs (each a crate of its
//! own: `#[path] mod`).

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::StatusCode;
use dynamic_toolset::controller;
use dynamic_toolset_runtime::{DetectorSet, RuntimeConfig};
use k8s_openapi::api::core::v1::{Namespace, Service};
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::json;

pub const PROM: &str = "kps-kube-prometheus-stack-prometheus";
/// The ConfigMap the controller tests write.
pub const CM: &str = "kubernaut-toolset-config";
pub const GRAFANA: &str = "grafana";

pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

pub fn init_logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_test_writer()
        .try_init();
}

pub async fn shared_client() -> kube::Client {
    let server = tokio::task::spawn_blocking(kube_harness::shared)
        .await
        .unwrap()
        .expect("kube-apiserver (run `cargo xtask kube build` once)");
    controller::client(Some(server.kubeconfig_path()))
        .await
        .unwrap()
}

pub fn detectors() -> DetectorSet {
    let cfg = RuntimeConfig {
        cache_dir: Some(PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("detector-cache")),
        ..RuntimeConfig::default()
    };
    let (set, errors) = DetectorSet::load(&cfg, None).expect("runtime starts");
    assert!(errors.is_empty(), "detectors failed to load: {errors:?}");
    set
}

pub async fn namespace(client: &kube::Client, name: &str) {
    let api: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
    match api.create(&PostParams::default(), &ns).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 409 => {}
        Err(e) => panic!("namespace {name}: {e}"),
    }
}

/// A local HTTP server answering every path with a settable status, counting answers.
pub struct Backend {
    pub port: u16,
    status: Arc<AtomicU16>,
    ok: Arc<AtomicU32>,
    failed: Arc<AtomicU32>,
}

impl Backend {
    pub async fn start() -> Backend {
        let status = Arc::new(AtomicU16::new(200));
        let ok = Arc::new(AtomicU32::new(0));
        let failed = Arc::new(AtomicU32::new(0));
        let (s, o, f) = (status.clone(), ok.clone(), failed.clone());
        let app = Router::new().fallback(move || {
            let code = s.load(Ordering::SeqCst);
            if code == 200 { &o } else { &f }.fetch_add(1, Ordering::SeqCst);
            async move { StatusCode::from_u16(code).unwrap() }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Backend {
            port,
            status,
            ok,
            failed,
        }
    }

    pub fn set(&self, code: u16) {
        self.status.store(code, Ordering::SeqCst);
    }

    pub fn ok(&self) -> u32 {
        self.ok.load(Ordering::SeqCst)
    }

    pub fn failed(&self) -> u32 {
        self.failed.load(Ordering::SeqCst)
    }
}

pub fn service(yaml: &str) -> Service {
    serde_yaml::from_str(yaml).unwrap()
}

/// kube-prometheus-stack 66.2.1's Prometheus Service (release "kps"), web port `port`.
pub fn prometheus(ns: &str, port: u16) -> Service {
    service(&format!(
        r#"
apiVersion: v1
kind: Service
metadata:
  name: {PROM}
  namespace: {ns}
  labels:
    app: kube-prometheus-stack-prometheus
    self-monitor: "true"
    app.kubernetes.io/managed-by: Helm
    app.kubernetes.io/instance: kps
    app.kubernetes.io/version: 66.2.1
    app.kubernetes.io/part-of: kube-prometheus-stack
    chart: kube-prometheus-stack-66.2.1
    release: kps
    heritage: Helm
spec:
  type: ClusterIP
  ports:
    - name: http-web
      port: {port}
      targetPort: 9090
      protocol: TCP
    - name: reloader-web
      port: 8080
      targetPort: reloader-web
      protocol: TCP
  selector:
    app.kubernetes.io/name: prometheus
    operator.prometheus.io/name: {PROM}
"#
    ))
}

/// grafana/grafana 8.6.0's Service (release "grafana"), port `port`.
pub fn grafana(ns: &str, port: u16) -> Service {
    service(&format!(
        r#"
apiVersion: v1
kind: Service
metadata:
  name: {GRAFANA}
  namespace: {ns}
  labels:
    helm.sh/chart: grafana-8.6.0
    app.kubernetes.io/name: grafana
    app.kubernetes.io/instance: grafana
    app.kubernetes.io/version: 11.3.0
    app.kubernetes.io/managed-by: Helm
spec:
  type: ClusterIP
  ports:
    - name: service
      port: {port}
      targetPort: grafana
      protocol: TCP
  selector:
    app.kubernetes.io/name: grafana
    app.kubernetes.io/instance: grafana
"#
    ))
}

pub fn fqdn(name: &str, ns: &str) -> String {
    format!("{name}.{ns}.svc.cluster.local")
}

/// Polls `f` every 50 ms until it gives a value; panics after `timeout`.
pub async fn wait_for<T>(
    what: &str,
    timeout: Duration,
    mut f: impl AsyncFnMut() -> Option<T>,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(ms(50)).await;
    }
}

pub async fn apply_service(client: &kube::Client, svc: &Service) {
    let ns = svc.metadata.namespace.clone().unwrap();
    let api: Api<Service> = Api::namespaced(client.clone(), &ns);
    let name = svc.metadata.name.clone().unwrap();
    api.patch(
        &name,
        &PatchParams::apply("dynamic-toolset-tests").force(),
        &Patch::Apply(svc),
    )
    .await
    .unwrap_or_else(|e| panic!("apply Service {ns}/{name}: {e}"));
}

/// Controller options of the tests: the ConfigMap [`CM`] in `ns`, only `ns` watched, a
/// 50 ms debounce and `intervals` for discovery and reconciliation. With `health`, probes
/// run every `health` and resolve [`PROM`] and [`GRAFANA`] of `ns` to loopback (the
/// backends of [`serve_backend`]-style stubs); without it nothing is probed.
pub fn controller_options(
    ns: &str,
    reporter: &str,
    intervals: Duration,
    health: Option<Duration>,
) -> controller::ControllerOptions {
    use dynamic_toolset::probe::ProbeSettings;
    let only = ns.to_string();
    let loopback: std::net::SocketAddr = "127.0.0.1:0".parse().unwrap();
    controller::ControllerOptions {
        configmap_name: CM.into(),
        configmap_namespace: ns.into(),
        owner: None,
        namespaces: Arc::new(move |n: &str| n == only),
        watch_namespaces: None,
        label_selector: None,
        policy: dynamic_toolset_core::gate::Policy::baseline("cluster.local"),
        debounce: ms(50),
        discovery_interval: intervals,
        reconciliation_interval: intervals,
        health: health.map(|interval| controller::HealthOptions {
            interval,
            failure_threshold: 3,
            probe: ProbeSettings {
                timeout: ms(500),
                attempts: 1,
                interval: ms(50),
                resolve: vec![(fqdn(PROM, ns), loopback), (fqdn(GRAFANA, ns), loopback)],
                ..ProbeSettings::default()
            },
        }),
        leader: None,
        reporter: reporter.into(),
    }
}

/// The Events of `ns` with `reason`.
pub async fn events_with_reason(
    client: &kube::Client,
    ns: &str,
    reason: &str,
) -> Vec<k8s_openapi::api::events::v1::Event> {
    let events: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(client.clone(), ns);
    events
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| e.reason.as_deref() == Some(reason))
        .collect()
}
