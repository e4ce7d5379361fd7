//! End to end: a Service changes in the cluster → the controller (in-process, as an RBAC-
//! restricted user: a Role on Services in namespace A, a Role on ConfigMaps and Events in
//! namespace B, nothing cluster-wide) writes the ConfigMap in B → `dynamic-toolset deliver`
//! (the binary, a child process, as a ServiceAccount of B whose Role allows get/list/watch of
//! that one ConfigMap by name and nothing else) writes HolmesGPT's file and calls its
//! reload endpoint with the API key → HolmesGPT (tests/holmes/holmes_server.py: HolmesGPT
//! 0.45.0's own Config, admin app, auth and refresh loop) serves it. Every assertion on
//! HolmesGPT reads its tool executor through the harness's API, never our file.
//!
//! Needs the kube-apiserver (`cargo xtask kube build`) and the HolmesGPT venv
//! (`tests/holmes/setup.sh`, or env HOLMES_PYTHON).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use dynamic_toolset::controller::{self, ControllerOptions, HealthOptions};
use dynamic_toolset::probe::ProbeSettings;
use dynamic_toolset_core::render::TOOLSETS_KEY;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

#[path = "common/cluster.rs"]
mod cluster;
#[path = "common/holmes.rs"]
mod holmes;
use cluster::{PROM, apply_service, detectors, ms, namespace, prometheus, wait_for};
use holmes::{holmes_python, repo as repo_root};

const CM: &str = "kubernaut-toolset-config";
const API_KEY: &str = "e2e-admin-key-3f9a";
const WAIT: Duration = Duration::from_secs(30);

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A loopback Prometheus stand-in: `/api/v1/query` (HolmesGPT's check) and anything else
/// (the controller's probe) answer a valid empty vector.
async fn prometheus_backend() -> u16 {
    let app = Router::new().fallback(|| async {
        axum::Json(json!({"status": "success", "data": {"resultType": "vector", "result": []}}))
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    port
}

/// A Role in `ns` with `rules`, bound to the harness's unprivileged user.
async fn grant(admin: &kube::Client, ns: &str, name: &str, rules: Value) {
    let user = kube_harness::UNPRIVILEGED_USER;
    let role: Role = serde_json::from_value(
        json!({"metadata": {"name": name, "namespace": ns}, "rules": rules}),
    )
    .unwrap();
    let binding: RoleBinding = serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": ns},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}],
    }))
    .unwrap();
    let pp = PatchParams::apply("deliver-e2e").force();
    Api::<Role>::namespaced(admin.clone(), ns)
        .patch(name, &pp, &Patch::Apply(&role))
        .await
        .unwrap();
    Api::<RoleBinding>::namespaced(admin.clone(), ns)
        .patch(name, &pp, &Patch::Apply(&binding))
        .await
        .unwrap();
}

/// A second watched namespace (empty): the controller syncs only once both watches listed.
fn second(svc_ns: &str) -> String {
    format!("{svc_ns}-2")
}

/// Controller options: ConfigMap in `cm_ns`, Services watched in `svc_ns` and its
/// [`second`] with one namespaced watch each, probes of the Service name resolved to loopback.
fn options(svc_ns: &str, cm_ns: &str) -> ControllerOptions {
    let watched = [svc_ns.to_string(), second(svc_ns)];
    let filter = watched.clone();
    let loopback: SocketAddr = "127.0.0.1:0".parse().unwrap();
    ControllerOptions {
        configmap_name: CM.into(),
        configmap_namespace: cm_ns.into(),
        owner: None,
        namespaces: Arc::new(move |n: &str| filter.iter().any(|w| w == n)),
        watch_namespaces: Some(watched.to_vec()),
        label_selector: None,
        policy: dynamic_toolset_core::gate::Policy::baseline("cluster.local"),
        debounce: ms(50),
        discovery_interval: Duration::from_secs(600),
        reconciliation_interval: Duration::from_secs(600),
        health: Some(HealthOptions {
            interval: Duration::from_secs(5),
            failure_threshold: 3,
            probe: ProbeSettings {
                timeout: ms(1000),
                attempts: 1,
                interval: ms(50),
                resolve: vec![(cluster::fqdn(PROM, svc_ns), loopback)],
                ..ProbeSettings::default()
            },
        }),
        leader: None,
        reporter: "deliver-e2e".into(),
    }
}

/// HolmesGPT (the harness), a child process; killed on drop.
struct Holmes {
    child: Child,
    port: u16,
}

impl Holmes {
    fn start(python: &Path, port: u16, file: &Path, home: &Path) -> Holmes {
        let log = std::fs::File::create(home.join(format!("holmes-{port}.log"))).unwrap();
        let child = Command::new(python)
            .arg(repo_root().join("tests/holmes/holmes_server.py"))
            .current_dir(home)
            .env("HOME", home)
            .env("HOLMES_PORT", port.to_string())
            .env("CUSTOM_TOOLSET_LOCATION", file)
            .env("HOLMES_API_KEY", API_KEY)
            .env("HARNESS_RESOLVE_SUFFIX", ".svc.cluster.local")
            .env("LITELLM_LOCAL_MODEL_COST_MAP", "True")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start the HolmesGPT harness");
        Holmes { child, port }
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Holmes {
    fn drop(&mut self) {
        self.stop();
    }
}

/// What HolmesGPT serves: its executor's toolsets (through its API, with the key).
async fn served(http: &reqwest::Client, port: u16) -> Option<Value> {
    let resp = http
        .get(format!("http://127.0.0.1:{port}/test/toolsets"))
        .header("X-API-Key", API_KEY)
        .send()
        .await
        .ok()?;
    if !resp.status().is_success() {
        return None;
    }
    serde_json::from_str::<Value>(&resp.text().await.ok()?)
        .ok()?
        .get("toolsets")
        .cloned()
}

/// The prometheus_url HolmesGPT serves for an enabled prometheus/metrics (None otherwise).
fn served_prometheus(toolsets: &Value) -> Option<(String, String)> {
    let t = toolsets.get("prometheus/metrics")?;
    if t.get("enabled") != Some(&Value::Bool(true)) {
        return None;
    }
    let url = t.pointer("/config/prometheus_url")?.as_str()?;
    Some((
        url.trim_end_matches('/').to_string(),
        t.get("status")?.as_str()?.to_string(),
    ))
}

/// A metric of the deliver sidecar (None: not scraped or absent).
async fn metric(http: &reqwest::Client, port: u16, line_prefix: &str) -> Option<f64> {
    let text = http
        .get(format!("http://127.0.0.1:{port}/metrics"))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(line_prefix)?.trim().parse().ok())
}

/// ServiceAccount `holmes-delivery` in `ns` (HolmesGPT's) with a Role allowing get, list
/// and watch of the generated ConfigMap by name only; returns a kubeconfig with its token.
async fn delivery_service_account(
    admin: &kube::Client,
    server: &kube_harness::ApiServer,
    ns: &str,
    dir: &Path,
) -> PathBuf {
    use k8s_openapi::api::authentication::v1::TokenRequest;
    use k8s_openapi::api::core::v1::ServiceAccount;
    let name = "holmes-delivery";
    let pp = PatchParams::apply("deliver-e2e").force();
    let sa: ServiceAccount =
        serde_json::from_value(json!({"metadata": {"name": name, "namespace": ns}})).unwrap();
    let sas: Api<ServiceAccount> = Api::namespaced(admin.clone(), ns);
    sas.patch(name, &pp, &Patch::Apply(&sa)).await.unwrap();
    let role: Role = serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": ns},
        "rules": [{"apiGroups": [""], "resources": ["configmaps"], "resourceNames": [CM],
                   "verbs": ["get", "list", "watch"]}],
    }))
    .unwrap();
    let binding: RoleBinding = serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": ns},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
        "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": ns}],
    }))
    .unwrap();
    Api::<Role>::namespaced(admin.clone(), ns)
        .patch(name, &pp, &Patch::Apply(&role))
        .await
        .unwrap();
    Api::<RoleBinding>::namespaced(admin.clone(), ns)
        .patch(name, &pp, &Patch::Apply(&binding))
        .await
        .unwrap();
    let tr: TokenRequest =
        serde_json::from_value(json!({"spec": {"audiences": [], "expirationSeconds": 3600}}))
            .unwrap();
    let token = sas
        .create_token_request(name, &PostParams::default(), &tr)
        .await
        .expect("TokenRequest")
        .status
        .expect("token")
        .token;
    let path = dir.join("kubeconfig-delivery");
    std::fs::write(
        &path,
        server.kubeconfig_yaml_for(&format!("system:serviceaccount:{ns}:{name}"), &token),
    )
    .unwrap();
    // Least privilege holds: the ServiceAccount cannot list the namespace's ConfigMaps.
    let sa_client = controller::client(Some(&path)).await.unwrap();
    let denied = Api::<ConfigMap>::namespaced(sa_client, ns)
        .list(&Default::default())
        .await;
    assert!(
        matches!(denied, Err(kube::Error::Api(ref s)) if s.code == 403),
        "{denied:?}"
    );
    path
}

struct Deliver(Child);

impl Drop for Deliver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Everything started: namespaces, RBAC, backends, HolmesGPT, controller, deliver.
struct Rig {
    admin: kube::Client,
    http: reqwest::Client,
    holmes: Holmes,
    python: PathBuf,
    file: PathBuf,
    dir: tempfile::TempDir,
    metrics_port: u16,
    _deliver: Deliver,
    controller: Option<controller::Handle>,
}

impl Rig {
    async fn start(svc_ns: &str, cm_ns: &str) -> Rig {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| "warn".into()),
            )
            .with_test_writer()
            .try_init();
        let server = tokio::task::spawn_blocking(kube_harness::shared)
            .await
            .unwrap()
            .expect("kube-apiserver (run `cargo xtask kube build` once)");
        let admin = controller::client(Some(server.kubeconfig_path()))
            .await
            .unwrap();
        namespace(&admin, svc_ns).await;
        namespace(&admin, cm_ns).await;
        // Namespace A: read Services. Namespace B: the ConfigMap and its Events. Nothing else.
        for ns in [svc_ns.to_string(), second(svc_ns)] {
            namespace(&admin, &ns).await;
            grant(
                &admin,
                &ns,
                "dynamic-toolset-services",
                json!([{"apiGroups": [""], "resources": ["services"], "verbs": ["get", "list", "watch"]}]),
            )
            .await;
        }
        grant(
            &admin,
            cm_ns,
            "dynamic-toolset-configmap",
            json!([
                {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list", "watch", "create", "update", "patch"]},
                {"apiGroups": ["events.k8s.io"], "resources": ["events"], "verbs": ["create", "patch"]},
            ]),
        )
        .await;
        let restricted = controller::client(Some(server.user_kubeconfig_path()))
            .await
            .unwrap();
        // The restricted user cannot list Services cluster-wide: a cluster-wide watch would
        // never sync (tests/controller.rs never_publishes_before_the_initial_list).
        assert!(
            Api::<Service>::all(restricted.clone())
                .list(&Default::default())
                .await
                .is_err(),
            "the restricted user must not list Services cluster-wide"
        );

        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("toolsets.yaml");
        let deliver_kubeconfig = delivery_service_account(&admin, server, cm_ns, dir.path()).await;
        let python = tokio::task::spawn_blocking(holmes_python).await.unwrap();
        let holmes = Holmes::start(&python, free_port(), &file, dir.path());
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        wait_for("HolmesGPT up", Duration::from_secs(60), async || {
            served(&http, holmes.port).await
        })
        .await;

        let h = controller::start(restricted, options(svc_ns, cm_ns), detectors());
        let metrics_port = free_port();
        let deliver = Command::new(env!("CARGO_BIN_EXE_dynamic-toolset"))
            .args([
                "deliver",
                "--configmap-namespace",
                cm_ns,
                "--configmap-name",
                CM,
            ])
            .arg("--output")
            .arg(&file)
            .args(["--holmes-url", &format!("http://127.0.0.1:{}", holmes.port)])
            .args(["--listen", &format!("127.0.0.1:{metrics_port}")])
            .args(["--backoff-initial", "200ms", "--backoff-max", "2s"])
            .arg("--kubeconfig")
            .arg(&deliver_kubeconfig)
            .env("HOLMES_API_KEY", API_KEY)
            .env("RUST_LOG", "info")
            .env_remove("CONFIGMAP_NAMESPACE")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("deliver.log")).unwrap())
            .spawn()
            .expect("start dynamic-toolset deliver");
        Rig {
            admin,
            http,
            holmes,
            python,
            file,
            dir,
            metrics_port,
            _deliver: Deliver(deliver),
            controller: Some(h),
        }
    }

    async fn served_url(&self) -> Option<(String, String)> {
        served_prometheus(&served(&self.http, self.holmes.port).await?)
    }

    async fn metric(&self, prefix: &str) -> f64 {
        metric(&self.http, self.metrics_port, prefix)
            .await
            .unwrap_or(0.0)
    }

    fn deliver_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("deliver.log")).unwrap_or_default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_changes_reach_holmesgpt_through_deliver_and_reload() {
    let (svc_ns, cm_ns) = ("dlv-apps", "dlv-holmes");
    let mut rig = Rig::start(svc_ns, cm_ns).await;
    let (p1, p2) = (prometheus_backend().await, prometheus_backend().await);

    // HolmesGPT's API-key auth is on: its admin endpoint refuses a call without the key.
    let unauthenticated = rig
        .http
        .post(format!(
            "http://127.0.0.1:{}/api/admin/reload/toolsets",
            rig.holmes.port
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(unauthenticated.status().as_u16(), 401);

    // The first delivery (the always-on part) reaches HolmesGPT.
    wait_for("first delivery", WAIT, async || {
        (rig.metric("toolset_delivery_deliveries_total ").await >= 1.0).then_some(())
    })
    .await;
    assert!(rig.served_url().await.is_none());

    // Created: HolmesGPT serves the Service's URL, and its own check passes.
    apply_service(&rig.admin, &prometheus(svc_ns, p1)).await;
    let want = format!("http://{}:{p1}", cluster::fqdn(PROM, svc_ns));
    let (_, status) = wait_for("HolmesGPT serves the new Prometheus", WAIT, async || {
        rig.served_url().await.filter(|(u, _)| *u == want)
    })
    .await;
    assert_eq!(status, "enabled", "HolmesGPT's own health check of the URL");

    // Moved to another healthy port: HolmesGPT's refresh alone would never pick this up.
    apply_service(&rig.admin, &prometheus(svc_ns, p2)).await;
    let want = format!("http://{}:{p2}", cluster::fqdn(PROM, svc_ns));
    wait_for("HolmesGPT serves the moved URL", WAIT, async || {
        rig.served_url().await.filter(|(u, _)| *u == want)
    })
    .await;

    // Deleted: gone from what HolmesGPT serves.
    Api::<Service>::namespaced(rig.admin.clone(), svc_ns)
        .delete(PROM, &DeleteParams::default())
        .await
        .unwrap();
    wait_for("HolmesGPT no longer serves Prometheus", WAIT, async || {
        let t = served(&rig.http, rig.holmes.port).await?;
        served_prometheus(&t).is_none().then_some(())
    })
    .await;

    // Reload answers 500 twice: the file is kept, the reload retried and counted.
    let before = rig
        .metric("toolset_delivery_failures_total{reason=\"reload_error\"} ")
        .await;
    rig.http
        .post(format!(
            "http://127.0.0.1:{}/test/fail-reloads/2",
            rig.holmes.port
        ))
        .header("X-API-Key", API_KEY)
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap();
    apply_service(&rig.admin, &prometheus(svc_ns, p1)).await;
    let want = format!("http://{}:{p1}", cluster::fqdn(PROM, svc_ns));
    wait_for("served after two failed reloads", WAIT, async || {
        rig.served_url().await.filter(|(u, _)| *u == want)
    })
    .await;
    let after = rig
        .metric("toolset_delivery_failures_total{reason=\"reload_error\"} ")
        .await;
    assert_eq!(after - before, 2.0, "two 500s counted");
    assert!(
        rig.deliver_log().contains("injected reload failure"),
        "reason logged"
    );

    // An invalid toolsets.yaml in the ConfigMap is never written to HolmesGPT's file.
    let good = std::fs::read_to_string(&rig.file).unwrap();
    let cms: Api<ConfigMap> = Api::namespaced(rig.admin.clone(), cm_ns);
    if let Some(h) = rig.controller.take() {
        h.stop().await; // else it restores its keys at once (tested in controller.rs)
    }
    cms.patch(
        CM,
        &PatchParams::default(),
        &Patch::Merge(
            json!({"data": {TOOLSETS_KEY: "toolsets:\n  prometheus/metrics: {enabled: tr"}}),
        ),
    )
    .await
    .unwrap();
    wait_for("invalid content refused", WAIT, async || {
        (rig.metric("toolset_delivery_failures_total{reason=\"invalid_configmap\"} ")
            .await
            >= 1.0)
            .then_some(())
    })
    .await;
    assert_eq!(
        std::fs::read_to_string(&rig.file).unwrap(),
        good,
        "last good file kept"
    );
    assert!(
        rig.served_url().await.is_some(),
        "HolmesGPT still serves the last good content"
    );
    let h = controller::start(
        controller::client(Some(
            tokio::task::spawn_blocking(kube_harness::shared)
                .await
                .unwrap()
                .unwrap()
                .user_kubeconfig_path(),
        ))
        .await
        .unwrap(),
        options(svc_ns, cm_ns),
        detectors(),
    );
    rig.controller = Some(h);
    wait_for("the controller restores valid content", WAIT, async || {
        let cm = cms.get(CM).await.ok()?;
        let text = cm.data?.get(TOOLSETS_KEY)?.clone();
        dynamic_toolset::deliver::invalid_reason(&text)
            .is_none()
            .then_some(())
    })
    .await;

    // HolmesGPT down during a change: delivered when it returns (backoff).
    rig.holmes.stop();
    let unreachable = rig
        .metric("toolset_delivery_failures_total{reason=\"holmes_unreachable\"} ")
        .await;
    let delivered = rig.metric("toolset_delivery_deliveries_total ").await;
    apply_service(&rig.admin, &prometheus(svc_ns, p2)).await;
    let want = format!("http://{}:{p2}", cluster::fqdn(PROM, svc_ns));
    wait_for("reload failing while HolmesGPT is down", WAIT, async || {
        let n = rig
            .metric("toolset_delivery_failures_total{reason=\"holmes_unreachable\"} ")
            .await;
        (n >= unreachable + 2.0).then_some(())
    })
    .await;
    assert_eq!(rig.metric("toolset_delivery_pending ").await, 1.0);
    let port = rig.holmes.port;
    rig.holmes = Holmes::start(&rig.python, port, &rig.file, rig.dir.path());
    wait_for(
        "HolmesGPT serves the change after its restart",
        Duration::from_secs(60),
        async || rig.served_url().await.filter(|(u, _)| *u == want),
    )
    .await;
    wait_for(
        "the pending delivery completes by the retried reload",
        WAIT,
        async || {
            (rig.metric("toolset_delivery_pending ").await == 0.0
                && rig.metric("toolset_delivery_deliveries_total ").await > delivered)
                .then_some(())
        },
    )
    .await;
    let age = rig
        .metric("toolset_delivery_served_content_age_seconds ")
        .await;
    assert!((0.0..120.0).contains(&age), "served content age {age}");
    let log = rig.deliver_log();
    assert!(!log.contains(API_KEY), "the API key is never logged");
    eprintln!("--- deliver log ---\n{log}");
    if let Some(h) = rig.controller.take() {
        h.stop().await;
    }
}

/// Benchmark (BENCHMARKS.md): Service created → HolmesGPT serving its URL, over 30 changes.
/// `cargo test -p dynamic-toolset --release --test deliver_e2e -- --ignored --nocapture`
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark; run explicitly"]
async fn bench_service_created_to_holmesgpt_serving() {
    let (svc_ns, cm_ns) = ("dlv-bench-apps", "dlv-bench-holmes");
    let rig = Rig::start(svc_ns, cm_ns).await;
    let port = prometheus_backend().await;
    wait_for("first delivery", WAIT, async || {
        (rig.metric("toolset_delivery_deliveries_total ").await >= 1.0).then_some(())
    })
    .await;
    let want = format!("http://{}:{port}", cluster::fqdn(PROM, svc_ns));
    let svcs: Api<Service> = Api::namespaced(rig.admin.clone(), svc_ns);
    let mut took = Vec::new();
    for _ in 0..30 {
        let t0 = Instant::now();
        apply_service(&rig.admin, &prometheus(svc_ns, port)).await;
        loop {
            if rig.served_url().await.is_some_and(|(u, _)| u == want) {
                break;
            }
            assert!(t0.elapsed() < WAIT, "not served within {WAIT:?}");
            tokio::time::sleep(ms(10)).await;
        }
        took.push(t0.elapsed());
        svcs.delete(PROM, &DeleteParams::default()).await.unwrap();
        wait_for("gone", WAIT, async || {
            rig.served_url().await.is_none().then_some(())
        })
        .await;
    }
    let rss = std::fs::read_to_string(format!("/proc/{}/status", rig._deliver.0.id()))
        .unwrap_or_default()
        .lines()
        .filter(|l| l.starts_with("VmRSS") || l.starts_with("VmHWM"))
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join(", ");
    eprintln!("deliver process after the run: {rss}");
    took.sort();
    let pct = |p: f64| took[((took.len() as f64 * p).ceil() as usize).clamp(1, took.len()) - 1];
    eprintln!(
        "Service created -> HolmesGPT serving it, {} changes: p50 {:?}, p90 {:?}, p99 {:?}, max {:?}",
        took.len(),
        pct(0.50),
        pct(0.90),
        pct(0.99),
        took[took.len() - 1]
    );
}
