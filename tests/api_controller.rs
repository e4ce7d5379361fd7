//! The REST API of a running controller on the real kube-apiserver: what it serves is what
//! the controller discovered (provenance, health, verdicts), behind TokenReview +
//! SubjectAccessReview with the apiserver's static tokens; `POST /api/v1/discover` runs a
//! round; liveness stops when the controller does.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "common/cluster.rs"]
mod cluster;

use std::sync::Arc;
use std::time::Duration;

use cluster::*;
use dynamic_toolset::api::auth::{AuthOptions, Authorizer};
use dynamic_toolset::api::server;
use dynamic_toolset::controller::{self, ControllerOptions, state};
use dynamic_toolset::metrics::{ControllerMetrics, Exported};
use serde_json::Value;

fn options(ns: &str) -> ControllerOptions {
    let long = Duration::from_secs(600);
    controller_options(ns, "api-test", long, Some(long))
}

async fn get(url: &str, token: &str) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let code = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (
        code,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_serves_what_the_controller_discovered() {
    init_logs();
    let ns = "api-ctl";
    let server_harness = tokio::task::spawn_blocking(kube_harness::shared)
        .await
        .unwrap()
        .unwrap();
    let client = shared_client().await;
    namespace(&client, ns).await;
    let prom = Backend::start().await;
    apply_service(&client, &prometheus(ns, prom.port)).await;

    let metrics = Arc::new(ControllerMetrics::new().unwrap());
    let h = controller::start_with(client.clone(), options(ns), detectors(), metrics.clone());
    let auth = Authorizer::kubernetes(client.clone(), AuthOptions::default());
    let app = server::observed(server::router(h.api.clone(), auth), metrics.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let admin = server_harness.admin_token();

    // The unprivileged user has a valid token and no grant: 403.
    let (code, body) = get(
        &format!("{base}/api/v1/toolsets"),
        server_harness.user_token(),
    )
    .await;
    assert_eq!(code, 403, "{body}");

    // The published Prometheus with its provenance and health.
    let want = format!("http://{}:{}", fqdn(PROM, ns), prom.port);
    let toolsets = wait_for(
        "prometheus in the API",
        Duration::from_secs(15),
        async || {
            let (code, body) = get(&format!("{base}/api/v1/toolsets"), admin).await;
            assert_eq!(code, 200, "{body}");
            body.as_array()?
                .iter()
                .any(|t| {
                    t["name"] == "prometheus/metrics"
                        && t["provenance"][0]["endpoint"] == want.as_str()
                        && t["provenance"][0]["health"] == "healthy"
                })
                .then_some(body)
        },
    )
    .await;
    let prom_entry = toolsets
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "prometheus/metrics")
        .unwrap();
    assert_eq!(
        prom_entry["provenance"][0]["service"],
        format!("{ns}/{PROM}")
    );
    assert_eq!(prom_entry["provenance"][0]["detector"], "prometheus");
    assert!(prom_entry["provenance"][0]["last_probe"].is_string());
    assert_eq!(
        prom_entry["config"]["config"]["prometheus_url"],
        want.as_str()
    );

    // ?format=yaml is the ConfigMap's toolsets.yaml, byte for byte.
    let cms: kube::Api<k8s_openapi::api::core::v1::ConfigMap> =
        kube::Api::namespaced(client.clone(), ns);
    let yaml = reqwest::Client::new()
        .get(format!("{base}/api/v1/toolsets?format=yaml"))
        .bearer_auth(admin)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let cm = cms.get("kubernaut-toolset-config").await.unwrap();
    assert_eq!(
        yaml,
        cm.data.unwrap()[dynamic_toolset_core::render::TOOLSETS_KEY]
    );

    // The Service, chosen, with the detector's verdict.
    let (code, svc) = get(&format!("{base}/api/v1/services/{ns}/{PROM}"), admin).await;
    assert_eq!(code, 200, "{svc}");
    assert_eq!(svc["chosen"], true);
    assert!(
        svc["verdicts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v["detector"] == "prometheus" && v["outcome"] == "matched"),
        "{svc}"
    );
    let (_, page) = get(
        &format!("{base}/api/v1/services?namespace={ns}&backend=prometheus&chosen=true"),
        admin,
    )
    .await;
    assert_eq!(page["total"], 1, "{page}");

    // Detectors with live statistics.
    let (_, dets) = get(&format!("{base}/api/v1/detectors"), admin).await;
    let p = dets
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "prometheus")
        .unwrap();
    assert_eq!(p["source"], "bundled");
    assert!(p["stats"]["calls"].as_u64().unwrap() >= 1, "{p}");
    assert!(p["stats"]["matches"].as_u64().unwrap() >= 1, "{p}");

    // A Grafana appears; `POST /api/v1/discover` answers after a full round that saw it.
    let graf = Backend::start().await;
    apply_service(&client, &grafana(ns, graf.port)).await;
    let resp = reqwest::Client::new()
        .post(format!("{base}/api/v1/discover"))
        .bearer_auth(admin)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let round: Value = serde_json::from_str(&resp.text().await.unwrap()).unwrap();
    assert!(round["generated_at"].is_string(), "{round}");
    let (_, toolsets) = get(&format!("{base}/api/v1/toolsets"), admin).await;
    assert!(
        toolsets
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["name"] == "grafana/dashboards"),
        "after the round: {toolsets}"
    );
    assert!(graf.ok() >= 1, "the round probed the new Grafana");

    // The API's own metrics.
    let text = metrics.encode().unwrap();
    assert!(
        text.contains(r#"dynamic_toolset_api_requests_total{code="403",method="GET",route="/api/v1/toolsets"} 1"#),
        "{text}"
    );

    // Liveness: the loop beats every second while it runs, and stops when the controller
    // stops, so `/healthz` fails once the bound has passed.
    let beat = |h: &controller::Handle| h.readiness().read().unwrap().heartbeat.unwrap();
    let before = beat(&h);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let running = beat(&h);
    assert!(running > before, "the loop beats");
    assert!(
        state::not_alive(
            Some(running),
            std::time::Instant::now(),
            state::LIVENESS_BOUND
        )
        .is_none()
    );
    let readiness = h.readiness();
    h.stop().await;
    let stopped = readiness.read().unwrap().heartbeat.unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        readiness.read().unwrap().heartbeat.unwrap(),
        stopped,
        "no beat after stop"
    );
    let later = std::time::Instant::now() + state::LIVENESS_BOUND;
    assert!(state::not_alive(Some(stopped), later, state::LIVENESS_BOUND).is_some());
}
