//! Identification (contract 1.1 `identify`) against real HTTP and HTTPS servers on
//! loopback: stub servers answer as each backend (bodies from `tests/fixtures/identify/`,
//! copied from or composed after upstream sources, see its `SOURCES.md`) or as an impostor,
//! cluster DNS names resolve to 127.0.0.1 (`ProbeSettings::resolve`, `discover --resolve`),
//! and the bundled detectors' candidates are probed as `discover` probes them: detect, gate,
//! select, probe (fingerprints first), adopt the winner, assemble, explain.
//!
//! Proven here: the first candidate that proves itself wins and its endpoint and config
//! reach the output (https on a TLS-only port named `http`, https first behind an OpenShift
//! serving certificate, a Prometheus under `/prometheus`, Mimir only under `/prometheus`,
//! Jaeger only under `/jaeger`, a search engine with its https default turned off); an
//! impostor does not prove itself (Zipkin on a Jaeger-looking Service, OpenSearch on an
//! Elasticsearch Service and the reverse); a *required* fragment without proof is left
//! out; `--explain` names the winner and why. The last test runs the `discover` binary.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{StatusCode, Uri, header};
use axum::response::IntoResponse;
use dynamic_toolset::manifest::{self, ReadOptions};
use dynamic_toolset::pipeline;
use dynamic_toolset::probe::{ProbeSettings, Prober};
use dynamic_toolset_core::assemble::Assembly;
use dynamic_toolset_core::explain;
use dynamic_toolset_core::gate::Policy;
use dynamic_toolset_core::overrides::Overrides;
use dynamic_toolset_core::select::{self, InstanceGroup, Selection};
use serde_json::{Value, json};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;

// ---------------------------------------------------------------------------------------
// Stub servers

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/identify")
}

/// A body from `tests/fixtures/identify/`.
fn body(name: &str) -> String {
    std::fs::read_to_string(fixtures().join(name)).unwrap()
}

/// What a stub answers: exact path -> (status, body); every other path 404.
#[derive(Clone, Default)]
struct Stub {
    routes: BTreeMap<String, (u16, String)>,
}

impl Stub {
    fn new() -> Self {
        Self::default()
    }

    fn with(mut self, path: &str, status: u16, body: impl Into<String>) -> Self {
        self.routes.insert(path.to_string(), (status, body.into()));
        self
    }

    /// `path` answers 200 with the fixture `name`.
    fn fixture(self, path: &str, name: &str) -> Self {
        self.with(path, 200, body(name))
    }

    fn router(self) -> Router {
        let routes = Arc::new(self.routes);
        Router::new().fallback(move |uri: Uri| {
            let routes = routes.clone();
            async move {
                match routes.get(uri.path()) {
                    Some((status, body)) => {
                        let json = body.starts_with('{') || body.starts_with('[');
                        let kind = if json {
                            "application/json"
                        } else {
                            "text/plain; charset=utf-8"
                        };
                        (
                            StatusCode::from_u16(*status).unwrap(),
                            [(header::CONTENT_TYPE, kind)],
                            body.clone(),
                        )
                            .into_response()
                    }
                    None => (StatusCode::NOT_FOUND, "404 page not found\n").into_response(),
                }
            }
        })
    }

    /// Serves plain HTTP on a fresh loopback port.
    async fn http(self) -> u16 {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let app = self.router();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        port
    }

    /// Serves HTTPS only (self-signed, `loopback-stub.cert.pem`) on a fresh loopback port:
    /// a plain-HTTP request fails its handshake.
    async fn https(self) -> u16 {
        let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = tcp.local_addr().unwrap().port();
        let listener = TlsListener {
            tcp,
            acceptor: tls_acceptor(),
        };
        let app = self.router();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        port
    }
}

fn tls_acceptor() -> TlsAcceptor {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let cert = std::fs::read(fixtures().join("loopback-stub.cert.pem")).unwrap();
    let key = std::fs::read(fixtures().join("loopback-stub.key.pem")).unwrap();
    let certs = CertificateDer::pem_slice_iter(&cert)
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_slice(&key).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .unwrap();
    TlsAcceptor::from(Arc::new(config))
}

/// TLS on top of a TCP listener, for `axum::serve`. Connections whose handshake fails (a
/// plain-HTTP client) are dropped, as a TLS-only server drops them.
struct TlsListener {
    tcp: tokio::net::TcpListener,
    acceptor: TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((tcp, addr)) = self.tcp.accept().await else {
                continue;
            };
            let handshake = self.acceptor.accept(tcp);
            if let Ok(Ok(tls)) = tokio::time::timeout(Duration::from_secs(5), handshake).await {
                return (tls, addr);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

// ---------------------------------------------------------------------------------------
// Services

/// A Service manifest (JSON, which the YAML reader takes).
struct Svc {
    doc: Value,
}

fn svc(namespace: &str, name: &str) -> Svc {
    Svc {
        doc: json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": name, "namespace": namespace, "labels": {}, "annotations": {}},
            "spec": {"ports": []},
        }),
    }
}

impl Svc {
    fn label(mut self, k: &str, v: &str) -> Self {
        self.doc["metadata"]["labels"][k] = json!(v);
        self
    }
    fn annotation(mut self, k: &str, v: &str) -> Self {
        self.doc["metadata"]["annotations"][k] = json!(v);
        self
    }
    fn port(self, name: &str, port: u16) -> Self {
        self.port_to(name, port, port)
    }
    fn port_to(mut self, name: &str, port: u16, target: u16) -> Self {
        let ports = self.doc["spec"]["ports"].as_array_mut().unwrap();
        ports.push(json!({"name": name, "port": port, "targetPort": target, "protocol": "TCP"}));
        self
    }
    fn host(&self) -> String {
        let m = &self.doc["metadata"];
        format!(
            "{}.{}.svc.cluster.local",
            m["name"].as_str().unwrap(),
            m["namespace"].as_str().unwrap()
        )
    }
}

fn manifest_text(services: &[Svc]) -> String {
    services
        .iter()
        .map(|s| serde_json::to_string(&s.doc).unwrap())
        .collect::<Vec<_>>()
        .join("\n---\n")
}

// ---------------------------------------------------------------------------------------
// The pipeline, as `discover` runs it

struct Run {
    selection: Selection,
    assembly: Assembly,
    document: Value,
    explain: String,
}

impl Run {
    /// The installation whose chosen Service is `namespace/name` for `toolset`.
    fn group(&self, toolset: &str, service: &str) -> &InstanceGroup {
        self.selection
            .groups
            .iter()
            .find(|g| g.key.toolset == toolset && g.chosen.service.to_string() == service)
            .unwrap_or_else(|| {
                panic!(
                    "no {toolset} group chosen from {service}:\n{}",
                    self.explain
                )
            })
    }

    /// The `toolsets:` entry `name` of the output document.
    fn toolset(&self, name: &str) -> &Value {
        let t = &self.document["toolsets"][name];
        assert!(
            !t.is_null(),
            "no toolset {name} in the output:\n{}",
            self.document
        );
        t
    }

    /// Why `toolset` of `service` was left out.
    fn left_out(&self, toolset: &str, service: &str) -> String {
        self.assembly
            .left_out
            .iter()
            .find(|l| l.toolset == toolset && l.service.to_string() == service)
            .map(|l| l.reason.to_string())
            .unwrap_or_else(|| panic!("{toolset} of {service} was not left out:\n{}", self.explain))
    }
}

/// Probe settings for the stubs. Their certificates are self-signed, so health (unlike
/// identification, which never verifies) needs `insecure_tls` (the operator's
/// `insecure_skip_tls_verify`), as a cluster with such backends would.
fn settings(hosts: Vec<String>) -> ProbeSettings {
    ProbeSettings {
        insecure_tls: true,
        timeout: Duration::from_secs(3),
        attempts: 1,
        interval: Duration::from_millis(50),
        resolve: hosts
            .into_iter()
            .map(|h| (h, "127.0.0.1:0".parse().unwrap()))
            .collect(),
        ..ProbeSettings::default()
    }
}

fn cache_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("detector-cache")
}

/// Detects, selects, probes (every Service's name resolved to loopback) and assembles.
async fn discover(services: &[Svc]) -> Run {
    discover_with(services, true).await
}

async fn discover_with(services: &[Svc], insecure_tls: bool) -> Run {
    let text = manifest_text(services);
    let loaded = manifest::parse_str("identify", &text, &ReadOptions::default());
    assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
    let snapshots: Vec<_> = loaded.services.into_iter().map(|(_, s)| s).collect();
    let setup = pipeline::DetectorSetup::new(None, Some(cache_dir()));
    let mut loaded = pipeline::load_detectors(&setup).unwrap();
    assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
    let grants = loaded.grants();
    let detections = pipeline::detect_all(
        &mut loaded.set,
        &Policy::baseline("cluster.local"),
        &snapshots,
        &grants,
    );
    let mut selection = select::select(&detections);
    let targets = pipeline::probe_targets(&selection);
    let prober = Prober::new(ProbeSettings {
        insecure_tls,
        ..settings(services.iter().map(Svc::host).collect())
    })
    .unwrap();
    let outcomes = prober.probe_all(&targets).await;
    let health = pipeline::health_map(&mut selection, outcomes);
    let out = pipeline::assemble_output(
        &selection,
        &health,
        Some("2026-01-01T00:00:00Z"),
        &Overrides::default(),
    );
    let explain =
        explain::explain(&detections, &selection, &out.assembly, &out.merge).render_text();
    Run {
        selection,
        assembly: out.assembly,
        document: out.document,
        explain,
    }
}

fn prometheus_server(namespace: &str, name: &str, port_name: &str, port: u16) -> Svc {
    svc(namespace, name)
        .label("app.kubernetes.io/name", "prometheus")
        .label("app.kubernetes.io/instance", name)
        .label("app.kubernetes.io/component", "server")
        .port(port_name, port)
}

fn prometheus_stub(base: &str) -> Stub {
    Stub::new()
        .fixture(
            &format!("{base}/api/v1/status/buildinfo"),
            "prometheus-buildinfo.json",
        )
        .with(
            &format!("{base}/-/ready"),
            200,
            "Prometheus Server is Ready.\n",
        )
}

fn jaeger_stub(base: &str) -> Stub {
    Stub::new()
        .fixture(&format!("{base}/api/services"), "jaeger-services.json")
        .with(
            &format!("{base}/"),
            200,
            "<!doctype html><title>Jaeger UI</title>",
        )
}

/// Zipkin's own routes: services as a bare array under `/api/v2`, nothing at
/// `/api/services`.
fn zipkin_stub() -> Stub {
    Stub::new()
        .fixture("/api/v2/services", "zipkin-services.json")
        .with(
            "/health",
            200,
            r#"{"status":"UP","zipkin":{"status":"UP"}}"#,
        )
        .with("/", 200, "<!doctype html><title>Zipkin</title>")
}

// ---------------------------------------------------------------------------------------
// Scheme

#[tokio::test(flavor = "multi_thread")]
async fn tls_only_port_named_http_is_identified_over_https() {
    let tls = prometheus_stub("").https().await;
    let plain = prometheus_stub("").http().await;
    let run = discover(&[
        prometheus_server("monitoring", "secure", "http", tls),
        prometheus_server("metrics", "plain", "http", plain),
    ])
    .await;

    let secure = run.group("prometheus/metrics", "monitoring/secure");
    let url = format!("https://secure.monitoring.svc.cluster.local:{tls}");
    assert_eq!(secure.chosen.fragment.endpoint, url);
    assert_eq!(secure.chosen.fragment.config["prometheus_url"], json!(url));
    let health = secure.chosen.fragment.health.as_ref().unwrap();
    assert_eq!(
        (health.scheme.as_str(), health.path.as_str()),
        ("https", "/-/ready")
    );
    let won = secure.identified.as_ref().expect("identified");
    assert_eq!(won.candidate, 1, "{}", run.explain);
    assert!(
        run.explain.contains(&format!(
            "candidate 2 of 4 (alternative: https on port {tls}) proved itself: \
             GET {url}/api/v1/status/buildinfo: HTTP 200 with /data/version; endpoint {url}"
        )),
        "{}",
        run.explain
    );

    // The plain one proves itself on the metadata's guess.
    let plain_group = run.group("prometheus/metrics", "metrics/plain");
    assert_eq!(
        plain_group.identified.as_ref().map(|i| i.candidate),
        Some(0)
    );
    assert_eq!(
        plain_group.chosen.fragment.endpoint,
        format!("http://plain.metrics.svc.cluster.local:{plain}")
    );
    assert!(
        run.explain.contains(&format!(
            "candidate 1 of 4 (metadata: http on port {plain} (port name http)) proved itself"
        )),
        "{}",
        run.explain
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn serving_certificate_puts_https_first_and_it_wins() {
    let am = Stub::new()
        .fixture("/api/v2/status", "alertmanager-status.json")
        .with("/-/ready", 200, "OK")
        .https()
        .await;
    let run = discover(&[svc("openshift-monitoring", "alertmanager-main")
        .label("app.kubernetes.io/name", "alertmanager")
        .label("app.kubernetes.io/instance", "main")
        .annotation(
            "service.beta.openshift.io/serving-cert-secret-name",
            "alertmanager-main-tls",
        )
        .port("web", am)])
    .await;
    let g = run.group(
        "alertmanager/alerts",
        "openshift-monitoring/alertmanager-main",
    );
    let url = format!("https://alertmanager-main.openshift-monitoring.svc.cluster.local:{am}");
    assert_eq!(g.chosen.fragment.endpoint, url);
    assert_eq!(g.identified.as_ref().map(|i| i.candidate), Some(0));
    assert!(
        run.explain.contains(&format!(
            "candidate 1 of 4 (metadata: https on port {am} (the Service carries a \
             serving-certificate annotation)) proved itself: GET {url}/api/v2/status: HTTP 200 \
             with /versionInfo/version, /cluster/status"
        )),
        "{}",
        run.explain
    );
    let hosts = &run.toolset("alertmanager/alerts")["config"]["endpoints"][0]["hosts"];
    assert_eq!(hosts, &json!([url]));
}

// ---------------------------------------------------------------------------------------
// Base paths

#[tokio::test(flavor = "multi_thread")]
async fn prometheus_under_a_route_prefix_and_mimir_only_under_its_prefix() {
    let prefixed = prometheus_stub("/prometheus").http().await;
    let run = discover(&[prometheus_server("monitoring", "routed", "web", prefixed)]).await;
    let g = run.group("prometheus/metrics", "monitoring/routed");
    let url = format!("http://routed.monitoring.svc.cluster.local:{prefixed}/prometheus");
    assert_eq!(
        g.identified.as_ref().map(|i| i.candidate),
        Some(2),
        "{}",
        run.explain
    );
    assert_eq!(g.chosen.fragment.endpoint, url);
    assert_eq!(
        g.chosen.fragment.health.as_ref().unwrap().path,
        "/prometheus/-/ready"
    );
    assert_eq!(
        run.toolset("prometheus/metrics")["config"]["prometheus_url"],
        json!(url)
    );
    assert!(
        run.explain.contains(&format!(
            "candidate 3 of 4 (alternative: http on port {prefixed}/prometheus) proved itself"
        )),
        "{}",
        run.explain
    );

    // Mimir: the Prometheus API only under /prometheus, readiness at the root.
    let mimir = Stub::new()
        .fixture(
            "/prometheus/api/v1/status/buildinfo",
            "mimir-buildinfo.json",
        )
        .with("/ready", 200, "ready")
        .http()
        .await;
    let run = discover(&[svc("mimir", "mimir-query-frontend")
        .label("app.kubernetes.io/name", "mimir")
        .label("app.kubernetes.io/instance", "mimir")
        .label("app.kubernetes.io/component", "query-frontend")
        .port("http-metrics", mimir)])
    .await;
    let g = run.group("prometheus/metrics", "mimir/mimir-query-frontend");
    let url = format!("http://mimir-query-frontend.mimir.svc.cluster.local:{mimir}/prometheus");
    assert_eq!(
        g.identified.as_ref().map(|i| i.candidate),
        Some(0),
        "{}",
        run.explain
    );
    assert_eq!(g.chosen.fragment.endpoint, url);
    assert_eq!(g.chosen.fragment.health.as_ref().unwrap().path, "/ready");
}

#[tokio::test(flavor = "multi_thread")]
async fn jaeger_only_under_its_base_path() {
    let port = jaeger_stub("/jaeger").http().await;
    let run = discover(&[svc("tracing", "jaeger-query")
        .label("app.kubernetes.io/name", "jaeger")
        .label("app.kubernetes.io/instance", "jaeger")
        .label("app.kubernetes.io/component", "query")
        .port("http-query", port)])
    .await;
    let g = run.group("jaeger/traces", "tracing/jaeger-query");
    let origin = format!("http://jaeger-query.tracing.svc.cluster.local:{port}");
    assert_eq!(
        g.identified.as_ref().map(|i| i.candidate),
        Some(2),
        "{}",
        run.explain
    );
    assert_eq!(g.chosen.fragment.endpoint, format!("{origin}/jaeger"));
    let ep = &run.toolset("jaeger/traces")["config"]["endpoints"][0];
    assert_eq!(ep["hosts"], json!([origin]));
    assert_eq!(ep["paths"], json!(["/jaeger/api/*"]));
    assert_eq!(ep["health_check_url"], json!(format!("{origin}/jaeger/")));
    assert!(
        run.explain.contains(&format!(
            "candidate 3 of 6 (alternative: http on port {port}/jaeger) proved itself: \
             GET {origin}/jaeger/api/services: HTTP 200 with /data, /total"
        )),
        "{}",
        run.explain
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn jaeger_under_the_demo_ui_base_path() {
    // The OpenTelemetry demo's Jaeger: `jaeger_query.base_path: /jaeger/ui`
    // (tests/fixtures/real/opentelemetry-demo.yaml); nothing at the root or /jaeger.
    let port = jaeger_stub("/jaeger/ui").http().await;
    let run = discover(&[svc("otel-demo", "jaeger")
        .label("app.kubernetes.io/name", "jaeger")
        .label("app.kubernetes.io/instance", "otel-demo")
        .label("app.kubernetes.io/component", "all-in-one")
        .port("http-query", port)])
    .await;
    let g = run.group("jaeger/traces", "otel-demo/jaeger");
    let origin = format!("http://jaeger.otel-demo.svc.cluster.local:{port}");
    assert_eq!(
        g.identified.as_ref().map(|i| i.candidate),
        Some(4),
        "{}",
        run.explain
    );
    assert_eq!(g.chosen.fragment.endpoint, format!("{origin}/jaeger/ui"));
    let ep = &run.toolset("jaeger/traces")["config"]["endpoints"][0];
    assert_eq!(ep["paths"], json!(["/jaeger/ui/api/*"]));
}

fn grafana_stub(base: &str) -> Stub {
    Stub::new()
        .fixture(&format!("{base}/api/health"), "grafana-health.json")
        .with(
            &format!("{base}/login"),
            200,
            "<!doctype html><title>Grafana</title>",
        )
}

#[tokio::test(flavor = "multi_thread")]
async fn grafana_under_its_sub_path_and_at_the_root() {
    // `root_url .../grafana` with `serve_from_sub_path` (the OpenTelemetry demo): the API
    // only under /grafana; a plain Grafana at the root keeps its root.
    let sub = grafana_stub("/grafana").http().await;
    let root = grafana_stub("").http().await;
    let grafana = |ns: &str, port: u16| {
        svc(ns, "grafana")
            .label("app.kubernetes.io/name", "grafana")
            .label("app.kubernetes.io/instance", ns)
            .port("service", port)
    };
    let run = discover(&[grafana("otel-demo", sub), grafana("monitoring", root)]).await;
    let g = run.group("grafana/dashboards", "otel-demo/grafana");
    assert_eq!(
        g.identified.as_ref().map(|i| i.candidate),
        Some(2),
        "{}",
        run.explain
    );
    let origin = format!("http://grafana.otel-demo.svc.cluster.local:{sub}");
    assert_eq!(g.chosen.fragment.endpoint, format!("{origin}/grafana"));
    assert_eq!(
        g.chosen.fragment.config["api_url"],
        json!(format!("{origin}/grafana"))
    );
    assert!(
        run.explain.contains(&format!(
            "GET {origin}/grafana/api/health: HTTP 200 with /database"
        )),
        "{}",
        run.explain
    );
    let g = run.group("grafana/dashboards", "monitoring/grafana");
    assert_eq!(
        g.identified.as_ref().map(|i| i.candidate),
        Some(0),
        "{}",
        run.explain
    );
    assert_eq!(
        g.chosen.fragment.endpoint,
        format!("http://grafana.monitoring.svc.cluster.local:{root}")
    );
}

// ---------------------------------------------------------------------------------------
// Impostors and required identification

fn thin_jaeger(namespace: &str, name: &str, port: u16) -> Svc {
    // The old jaeger-kubernetes templates' query Service: app=jaeger, a port to 16686.
    svc(namespace, name)
        .label("app", "jaeger")
        .label("jaeger-infra", "query-service")
        .port_to("jaeger-query", port, 16686)
}

#[tokio::test(flavor = "multi_thread")]
async fn zipkin_on_a_thin_jaeger_service_is_left_out() {
    let zipkin = zipkin_stub().http().await;
    // An impostor answering Jaeger's path with Zipkin's bare array.
    let array = Stub::new()
        .fixture("/api/services", "zipkin-services.json")
        .with("/", 200, "ok")
        .http()
        .await;
    let jaeger = jaeger_stub("").http().await;
    let run = discover(&[
        thin_jaeger("zipkin", "jaeger-query", zipkin),
        thin_jaeger("impostor", "jaeger-query", array),
        thin_jaeger("tracing", "jaeger-query", jaeger),
    ])
    .await;

    let why = run.left_out("jaeger/traces", "zipkin/jaeger-query");
    let url = format!("http://jaeger-query.zipkin.svc.cluster.local:{zipkin}");
    assert!(why.contains("not identified"), "{why}");
    assert!(
        why.contains(&format!("candidate 1: GET {url}/api/services: HTTP 404")),
        "{why}"
    );
    let why = run.left_out("jaeger/traces", "impostor/jaeger-query");
    assert!(why.contains("HTTP 200 but the JSON has no /data"), "{why}");

    // The same thin Service in front of a real Jaeger is published.
    let g = run.group("jaeger/traces", "tracing/jaeger-query");
    assert_eq!(g.identified.as_ref().map(|i| i.candidate), Some(0));
    let published = serde_json::to_string(&run.document).unwrap();
    assert!(published.contains(&format!("jaeger-query.tracing.svc.cluster.local:{jaeger}")));
    assert!(
        !published.contains("jaeger-query.zipkin.svc"),
        "{published}"
    );
    assert!(
        !published.contains("jaeger-query.impostor.svc"),
        "{published}"
    );
    assert!(
        run.explain.contains("left out: unhealthy"),
        "{}",
        run.explain
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn thin_prometheus_component_is_published_only_with_proof() {
    let other = Stub::new()
        .with("/", 200, "<html>some web app</html>")
        .with("/-/ready", 200, "ready")
        .http()
        .await;
    let prom = prometheus_stub("").http().await;
    let thin = |ns: &str, port| {
        svc(ns, "prom")
            .label("component", "prometheus")
            .port("web", port)
    };
    let run = discover(&[thin("apps", other), thin("metrics", prom)]).await;
    let why = run.left_out("prometheus/metrics", "apps/prom");
    assert!(why.contains("not identified"), "{why}");
    let g = run.group("prometheus/metrics", "metrics/prom");
    assert_eq!(g.identified.as_ref().map(|i| i.candidate), Some(0));
    assert_eq!(
        run.toolset("prometheus/metrics")["config"]["prometheus_url"],
        json!(format!("http://prom.metrics.svc.cluster.local:{prom}"))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn search_engines_with_security_off_and_each_other_as_impostors() {
    // The elastic chart defaults to https; this one runs with security off.
    let es = Stub::new()
        .fixture("/", "elasticsearch-root.json")
        .with("/_cluster/health", 200, r#"{"status":"green"}"#)
        .http()
        .await;
    let run = discover(&[svc("logging", "elasticsearch-master")
        .label("app", "elasticsearch-master")
        .label("chart", "elasticsearch")
        .label("release", "elasticsearch")
        .port("http", es)])
    .await;
    let url = format!("http://elasticsearch-master.logging.svc.cluster.local:{es}");
    for toolset in ["elasticsearch/data", "elasticsearch/cluster"] {
        let g = run.group(toolset, "logging/elasticsearch-master");
        assert_eq!(
            g.identified.as_ref().map(|i| i.candidate),
            Some(1),
            "{}",
            run.explain
        );
        // http: no verify_ssl, which only the https build carries.
        assert_eq!(run.toolset(toolset)["config"], json!({"api_url": url}));
    }

    // OpenSearch with its security plugin off, behind the chart's https default.
    let os = Stub::new()
        .fixture("/", "opensearch-root.json")
        .with("/_cluster/health", 200, r#"{"status":"green"}"#)
        .http()
        .await;
    let run = discover(&[svc("search", "opensearch-cluster-master")
        .label("app.kubernetes.io/name", "opensearch")
        .label("app.kubernetes.io/instance", "opensearch")
        .label("app.kubernetes.io/component", "opensearch-cluster-master")
        .port("http", os)])
    .await;
    let g = run.group("elasticsearch/data", "search/opensearch-cluster-master");
    assert_eq!(
        g.identified.as_ref().map(|i| i.candidate),
        Some(1),
        "{}",
        run.explain
    );
    assert_eq!(
        g.chosen.fragment.endpoint,
        format!("http://opensearch-cluster-master.search.svc.cluster.local:{os}")
    );

    // Each answering as the other (over TLS, where the metadata's guess is right): the
    // fingerprint does not prove it, the metadata's guess stands on its health probe.
    let as_opensearch = Stub::new()
        .fixture("/", "opensearch-root.json")
        .with("/_cluster/health", 200, r#"{"status":"green"}"#)
        .https()
        .await;
    let as_elasticsearch = Stub::new()
        .fixture("/", "elasticsearch-root.json")
        .with("/_cluster/health", 200, r#"{"status":"green"}"#)
        .https()
        .await;
    let run = discover(&[
        svc("logging", "elasticsearch-master")
            .label("app", "elasticsearch-master")
            .label("chart", "elasticsearch")
            .label("release", "elasticsearch")
            .port("http", as_opensearch),
        svc("search", "opensearch-cluster-master")
            .label("app.kubernetes.io/name", "opensearch")
            .label("app.kubernetes.io/instance", "opensearch")
            .label("app.kubernetes.io/component", "opensearch-cluster-master")
            .port("http", as_elasticsearch),
    ])
    .await;
    for service in [
        "logging/elasticsearch-master",
        "search/opensearch-cluster-master",
    ] {
        let g = run.group("elasticsearch/data", service);
        assert!(g.identified.is_none(), "{service}: {}", run.explain);
        assert!(g.chosen.fragment.endpoint.starts_with("https://"));
    }
    assert!(
        run.explain
            .contains("none of 2 candidate(s) proved itself: the metadata's guess https://elasticsearch-master"),
        "{}",
        run.explain
    );
    assert!(
        run.assembly.left_out.is_empty(),
        "{:?}",
        run.assembly.left_out
    );
}

// ---------------------------------------------------------------------------------------
// The binary

#[tokio::test(flavor = "multi_thread")]
async fn discover_binary_adopts_winners_explains_and_drops_the_unproven() {
    let prom = prometheus_stub("").https().await;
    let jaeger = jaeger_stub("/jaeger").http().await;
    let zipkin = zipkin_stub().http().await;
    let services = [
        prometheus_server("monitoring", "prometheus-server", "http", prom),
        svc("tracing", "jaeger-query")
            .label("app.kubernetes.io/name", "jaeger")
            .label("app.kubernetes.io/instance", "jaeger")
            .label("app.kubernetes.io/component", "query")
            .port("http-query", jaeger),
        thin_jaeger("zipkin", "tracing-query", zipkin),
    ];
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("identify");
    std::fs::create_dir_all(&dir).unwrap();
    let manifest = dir.join("services.yaml");
    std::fs::write(&manifest, manifest_text(&services)).unwrap();

    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_dynamic-toolset"));
    cmd.args([
        "discover",
        "--explain",
        "--probe-timeout",
        "3",
        "--probe-attempts",
        "1",
        "--probe-interval",
        "0.1",
        "--insecure-skip-tls-verify",
        "--manifests",
    ])
    .arg(&manifest)
    .env("DETECTOR_CACHE_DIR", cache_dir());
    for s in &services {
        cmd.args(["--resolve", &format!("{}=127.0.0.1", s.host())]);
    }
    let out = cmd.output().await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");

    let prom_url = format!("https://prometheus-server.monitoring.svc.cluster.local:{prom}");
    assert!(
        stdout.contains(&format!("prometheus_url: {prom_url}\n")),
        "{stdout}"
    );
    let jaeger_origin = format!("http://jaeger-query.tracing.svc.cluster.local:{jaeger}");
    assert!(stdout.contains(&format!("- {jaeger_origin}\n")), "{stdout}");
    assert!(stdout.contains("- /jaeger/api/*\n"), "{stdout}");
    assert!(!stdout.contains("tracing-query.zipkin"), "{stdout}");

    assert!(
        stderr.contains(&format!(
            "candidate 2 of 4 (alternative: https on port {prom}) proved itself"
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "candidate 3 of 6 (alternative: http on port {jaeger}/jaeger) proved itself"
        )),
        "{stderr}"
    );
    assert!(stderr.contains("backend identified"), "{stderr}");
    assert!(stderr.contains("not identified"), "{stderr}");
}

/// Identification never verifies certificates; health does, as HolmesGPT will connect.
/// Without `insecure_skip_tls_verify`, a self-signed https backend is identified (the
/// winner is adopted and explained) but left out as unhealthy, naming the certificate.
#[tokio::test(flavor = "multi_thread")]
async fn an_identified_https_winner_is_still_health_checked_with_tls_verification() {
    let tls = prometheus_stub("").https().await;
    let run = discover_with(
        &[prometheus_server("monitoring", "secure", "http", tls)],
        false,
    )
    .await;
    let url = format!("https://secure.monitoring.svc.cluster.local:{tls}");
    let secure = run.group("prometheus/metrics", "monitoring/secure");
    assert_eq!(secure.chosen.fragment.endpoint, url);
    assert_eq!(secure.identified.as_ref().map(|i| i.candidate), Some(1));
    assert!(
        run.explain.contains("left out: unhealthy") && run.explain.contains("certificate"),
        "{}",
        run.explain
    );
}
