//! Health probing against real HTTP servers on loopback.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use dynamic_toolset::probe::{ProbeOutcome, ProbeSettings, ProbeTarget, Prober};
use dynamic_toolset_core::{HealthProbe, Scheme};

/// Serves `/ready` answering the statuses in `script` in turn (the last one repeats).
async fn serve(script: Vec<u16>) -> (u16, Arc<AtomicU32>) {
    let hits = Arc::new(AtomicU32::new(0));
    let counter = hits.clone();
    let app = Router::new().route(
        "/ready",
        get(move || {
            let n = counter.fetch_add(1, Ordering::SeqCst) as usize;
            let code = script[n.min(script.len() - 1)];
            async move { StatusCode::from_u16(code).unwrap() }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (port, hits)
}

fn settings() -> ProbeSettings {
    ProbeSettings {
        timeout: Duration::from_millis(500),
        attempts: 3,
        interval: Duration::from_millis(50),
        resolve: vec![(
            "backend.monitoring.svc.cluster.local".into(),
            "127.0.0.1:0".parse().unwrap(),
        )],
        ..ProbeSettings::default()
    }
}

fn target(port: u16, accepted: Vec<u16>) -> ProbeTarget<&'static str> {
    ProbeTarget {
        key: "backend",
        endpoint: format!("http://backend.monitoring.svc.cluster.local:{port}/api"),
        probe: HealthProbe {
            port,
            scheme: Scheme::Http,
            path: "/ready".into(),
            accepted_statuses: accepted,
        },
        verify_tls: true,
        identification: None,
    }
}

#[tokio::test]
async fn healthy_on_first_answer_through_resolve_override() {
    let (port, hits) = serve(vec![200]).await;
    let prober = Prober::new(settings()).unwrap();
    let out = prober.probe(&target(port, vec![])).await;
    assert!(
        matches!(
            out,
            ProbeOutcome::Healthy {
                status: 200,
                attempts: 1,
                ..
            }
        ),
        "{out:?}"
    );
    assert_eq!(hits.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn retries_until_accepted_status() {
    let (port, hits) = serve(vec![503, 503, 200]).await;
    let prober = Prober::new(settings()).unwrap();
    let out = prober.probe(&target(port, vec![200])).await;
    assert!(
        matches!(out, ProbeOutcome::Healthy { attempts: 3, .. }),
        "{out:?}"
    );
    assert_eq!(hits.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn unaccepted_status_is_unhealthy_after_all_attempts() {
    let (port, hits) = serve(vec![500]).await;
    let prober = Prober::new(settings()).unwrap();
    match prober.probe(&target(port, vec![200])).await {
        ProbeOutcome::Unhealthy {
            reason, attempts, ..
        } => {
            assert_eq!(attempts, 3);
            assert!(reason.contains("HTTP 500"), "{reason}");
        }
        other => panic!("expected unhealthy, got {other:?}"),
    }
    assert_eq!(hits.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn detector_declared_statuses_are_honoured() {
    // Elasticsearch with security on answers 401 to anonymous requests: alive.
    let (port, _) = serve(vec![401]).await;
    let prober = Prober::new(settings()).unwrap();
    assert!(
        prober
            .probe(&target(port, vec![200, 401]))
            .await
            .is_healthy()
    );
    assert!(!prober.probe(&target(port, vec![])).await.is_healthy());
}

#[tokio::test]
async fn closed_port_is_unhealthy_with_connection_reason() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let prober = Prober::new(settings()).unwrap();
    match prober.probe(&target(port, vec![])).await {
        ProbeOutcome::Unhealthy { reason, .. } => {
            assert!(reason.contains("connection"), "{reason}")
        }
        other => panic!("expected unhealthy, got {other:?}"),
    }
}

#[tokio::test]
async fn unresolvable_host_is_unhealthy_not_a_crash() {
    let prober = Prober::new(ProbeSettings {
        attempts: 1,
        ..settings()
    })
    .unwrap();
    let mut t = target(9, vec![]);
    t.endpoint = "http://nowhere.invalid:9/".into();
    assert!(!prober.probe(&t).await.is_healthy());
}

#[tokio::test]
async fn probe_all_keeps_input_order() {
    let (up, _) = serve(vec![200]).await;
    let (down, _) = serve(vec![500]).await;
    let prober = Prober::new(ProbeSettings {
        attempts: 1,
        ..settings()
    })
    .unwrap();
    let mut a = target(down, vec![]);
    a.key = "down";
    let mut b = target(up, vec![]);
    b.key = "up";
    let out = prober.probe_all(&[a, b]).await;
    assert_eq!(out[0].0, "down");
    assert!(!out[0].1.is_healthy());
    assert_eq!(out[1].0, "up");
    assert!(out[1].1.is_healthy());
}
