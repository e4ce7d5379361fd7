//! `discover` with health checks against real HTTP servers on loopback: the healthy
//! Prometheus is kept, the one whose endpoint does not answer is left out and reported.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use axum::Router;
use axum::routing::get;

fn service(name: &str, release: &str, port: u16) -> String {
    format!(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\n  namespace: monitoring\n  labels:\n    \
         app.kubernetes.io/name: prometheus\n    app.kubernetes.io/component: server\n    \
         app.kubernetes.io/instance: {release}\nspec:\n  ports:\n  - {{name: http, port: {port}, targetPort: 9090}}\n---\n"
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn unhealthy_endpoints_are_left_out_and_reported() {
    let app = Router::new().route("/-/ready", get(|| async { "Prometheus Server is Ready." }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let up = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };

    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("discover-health");
    std::fs::create_dir_all(&dir).unwrap();
    let manifest = dir.join("services.yaml");
    std::fs::write(
        &manifest,
        service("up-prometheus-server", "up", up)
            + &service("down-prometheus-server", "down", closed),
    )
    .unwrap();

    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_dynamic-toolset"))
        .args([
            "discover",
            "--probe-timeout",
            "1",
            "--probe-interval",
            "0.1",
            "--manifests",
        ])
        .arg(&manifest)
        .args([
            "--resolve",
            "up-prometheus-server.monitoring.svc.cluster.local=127.0.0.1",
            "--resolve",
            "down-prometheus-server.monitoring.svc.cluster.local=127.0.0.1",
        ])
        .env(
            "DETECTOR_CACHE_DIR",
            PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("detector-cache"),
        )
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stdout.contains(&format!(
            "http://up-prometheus-server.monitoring.svc.cluster.local:{up}"
        )),
        "{stdout}"
    );
    assert!(!stdout.contains("down-prometheus-server"), "{stdout}");
    assert!(stderr.contains("endpoint unhealthy"), "{stderr}");
    assert!(stderr.contains("down-prometheus-server"), "{stderr}");
}
