//! The REST API under load (issue 6), part of `cargo bench --bench controller`: a controller
//! in this process watching every namespace (the 10,000 Services the memory phase left, plus
//! its own), its API served on loopback behind the real TokenReview + SubjectAccessReview
//! (decisions cached), and an open-loop load of 1,000 requests/s for 30 s alternating
//! `GET /api/v1/toolsets` and a filtered `GET /api/v1/services`, sent from its own thread
//! and runtime. Beside it, Service created → ConfigMap updated is timed with and without
//! the load in the same run (the ratio is the figure: the machine is shared).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use axum::Router;
use dynamic_toolset::api::auth::{AuthOptions, Authorizer};
use dynamic_toolset::api::server;
use dynamic_toolset::config::Settings;
use dynamic_toolset::controller::{self, cmd};
use dynamic_toolset::metrics::ControllerMetrics;
use dynamic_toolset_runtime::{DetectorSet, RuntimeConfig};
use kube::Api;
use kube::api::{DeleteParams, PostParams};

use super::{MANY, namespace, prometheus, seen, toolsets_text, watch_configmap};
use k8s_openapi::api::core::v1::Service;

pub const RATE: u64 = 1000;
pub const LOAD_SECS: u64 = 30;

pub struct ApiFigures {
    pub idle: Vec<Duration>,
    pub loaded: Vec<Duration>,
    pub toolsets: Vec<Duration>,
    pub services: Vec<Duration>,
    pub errors: u64,
    pub sent: u64,
    pub watched: u64,
    pub cached_decide: Duration,
    pub uncached_decide: Duration,
}

/// One request's outcome: which route, how long, whether it answered 200.
type Sample = (bool, Duration, bool);

/// Open-loop load: a request every 1/RATE s for `secs`, each on its own task.
fn load(base: String, token: String, secs: u64, stop: Arc<AtomicBool>) -> Vec<Sample> {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(_) => return Vec::new(),
    };
    rt.block_on(async move {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(64)
            .build()
            .unwrap_or_default();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Sample>();
        let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / RATE));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        let end = Instant::now() + Duration::from_secs(secs);
        let mut n: u64 = 0;
        while Instant::now() < end && !stop.load(Ordering::Relaxed) {
            tick.tick().await;
            n += 1;
            let toolsets = n.is_multiple_of(2);
            let url = if toolsets {
                format!("{base}/api/v1/toolsets")
            } else {
                format!("{base}/api/v1/services?namespace=bench-many-03&chosen=false&limit=100")
            };
            let (http, tx, token) = (http.clone(), tx.clone(), token.clone());
            tokio::spawn(async move {
                let t0 = Instant::now();
                let ok = match http.get(url).bearer_auth(token).send().await {
                    Ok(r) => r.status().is_success() && r.bytes().await.is_ok(),
                    Err(_) => false,
                };
                let _ = tx.send((toolsets, t0.elapsed(), ok));
            });
        }
        drop(tx);
        let mut out = Vec::new();
        while let Some(s) = rx.recv().await {
            out.push(s);
        }
        out
    })
}

/// Creates and deletes Prometheus Services `range` one at a time; the creation latencies.
async fn cycles(
    client: &kube::Client,
    ns: &str,
    port: u16,
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<super::Seen>,
    names: impl Iterator<Item = usize>,
    until: Option<Instant>,
) -> Result<Vec<Duration>> {
    let services: Api<Service> = Api::namespaced(client.clone(), ns);
    let mut created = Vec::new();
    for i in names {
        if until.is_some_and(|u| Instant::now() >= u) {
            break;
        }
        let release = format!("a{i}");
        let host = format!("{release}-kube-prometheus-stack-prometheus.{ns}.svc.cluster.local");
        let svc = prometheus(ns, &release, port)?;
        let t0 = Instant::now();
        services.create(&PostParams::default(), &svc).await?;
        let (t, _) = seen(rx, "the new Service in toolsets.yaml", |c| {
            toolsets_text(c).contains(&host)
        })
        .await?;
        created.push(t - t0);
        services
            .delete(
                svc.metadata.name.as_deref().unwrap_or_default(),
                &DeleteParams::default(),
            )
            .await?;
        seen(rx, "the Service gone", |c| {
            c.is_some() && !toolsets_text(c).contains(&host)
        })
        .await?;
    }
    Ok(created)
}

pub async fn api_under_load(
    server: &kube_harness::ApiServer,
    client: &kube::Client,
) -> Result<ApiFigures> {
    let ns = "bench-api";
    namespace(client, ns).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    tokio::spawn(
        async move { axum::serve(listener, Router::new().fallback(|| async { "ok" })).await },
    );
    let cfg = RuntimeConfig {
        cache_dir: Some(std::env::temp_dir().join("dynamic-toolset-bench-cache")),
        ..RuntimeConfig::default()
    };
    let (detectors, errors) = DetectorSet::load(&cfg, None)?;
    if !errors.is_empty() {
        bail!("detectors failed to load: {errors:?}");
    }
    let mut opts = cmd::options(&Settings::default(), "bench-api");
    opts.configmap_namespace = ns.into();
    opts.namespaces = Arc::new(|_: &str| true);
    opts.watch_namespaces = None;
    if let Some(l) = opts.leader.as_mut() {
        l.lease_namespace = ns.into();
    }
    let loopback: SocketAddr = "127.0.0.1:0".parse()?;
    if let Some(h) = opts.health.as_mut() {
        h.probe.resolve = (0..200)
            .map(|i| {
                (
                    format!("a{i}-kube-prometheus-stack-prometheus.{ns}.svc.cluster.local"),
                    loopback,
                )
            })
            .collect();
    }
    let mut rx = watch_configmap(client, ns);
    let metrics = Arc::new(ControllerMetrics::new()?);
    let handle = controller::start_with(client.clone(), opts, detectors, metrics.clone());
    let auth = Authorizer::kubernetes(client.clone(), AuthOptions::default());
    let app = server::observed(server::router(handle.api.clone(), auth.clone()), metrics);
    let api_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", api_listener.local_addr()?);
    tokio::spawn(async move { axum::serve(api_listener, app).await });
    let token = server.admin_token().to_string();
    seen(&mut rx, "the first ConfigMap", |c| c.is_some()).await?;

    // Wait until the API's view holds every watched Service.
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    let watched = loop {
        let text = http
            .get(format!("{base}/api/v1/services?limit=1"))
            .bearer_auth(&token)
            .send()
            .await?
            .text()
            .await
            .unwrap_or_default();
        let page: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        let total = page["total"].as_u64().unwrap_or(0);
        if total >= MANY as u64 {
            break total;
        }
        if Instant::now() > deadline {
            bail!("the API view holds {total} Services after 120 s");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };

    // The first probe round of the 100 Prometheus Services of the memory phase (their names
    // do not resolve: 3 attempts each) holds publishing until it ends; start after it.
    let deadline = Instant::now() + Duration::from_secs(120);
    while handle.status().probe_rounds < 1 {
        if Instant::now() > deadline {
            bail!("no probe round finished within 120 s");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Auth cost: a cached decision, and a fresh one (TokenReview + SubjectAccessReview).
    let n = 20_000u32;
    auth.decide(Some(&token), "get", "/api/v1/toolsets").await;
    let t0 = Instant::now();
    for _ in 0..n {
        auth.decide(Some(&token), "get", "/api/v1/toolsets").await;
    }
    let cached_decide = t0.elapsed() / n;
    let t0 = Instant::now();
    for i in 0..20 {
        auth.decide(Some(&token), "get", &format!("/api/v1/services/x/{i}"))
            .await;
    }
    let uncached_decide = t0.elapsed() / 20;

    let idle = cycles(client, ns, port, &mut rx, 0..20, None).await?;
    let stop = Arc::new(AtomicBool::new(false));
    let load_thread = {
        let (base, token, stop) = (base.clone(), token.clone(), stop.clone());
        std::thread::spawn(move || load(base, token, LOAD_SECS, stop))
    };
    let until = Instant::now() + Duration::from_secs(LOAD_SECS - 2);
    let loaded = cycles(client, ns, port, &mut rx, 100..200, Some(until)).await;
    if loaded.is_err() {
        stop.store(true, Ordering::Relaxed);
    }
    let samples = tokio::task::spawn_blocking(move || load_thread.join())
        .await?
        .map_err(|_| anyhow::anyhow!("the load thread panicked"))?;
    let loaded = loaded.context("creations under load")?;
    handle.stop().await;

    let sent = samples.len() as u64;
    let errors = samples.iter().filter(|s| !s.2).count() as u64;
    let pick = |toolsets: bool| -> Vec<Duration> {
        samples
            .iter()
            .filter(|s| s.0 == toolsets && s.2)
            .map(|s| s.1)
            .collect()
    };
    Ok(ApiFigures {
        idle,
        loaded,
        toolsets: pick(true),
        services: pick(false),
        errors,
        sent,
        watched,
        cached_decide,
        uncached_decide,
    })
}
