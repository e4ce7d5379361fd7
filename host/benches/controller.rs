//! Controller figures on a real kube-apiserver (`kube-harness`; `cargo xtask kube build` once):
//!
//! 1. Service created → ConfigMap updated (and deleted → updated), p50/p99 over 50 Services,
//!    the controller running in this process with the default settings (debounce 200 ms,
//!    probes 5 s × 3, leader election on), health endpoints answering on loopback.
//! 2. ConfigMap deleted → recreated, p50/p99 over 20 deletions.
//! 3. Resident memory and idle CPU of a real `dynamic-toolset run` child process (default
//!    settings, `--no-leader-election`) watching 10,000 Services in 10 namespaces.
//!
//! `cargo bench -p dynamic-toolset --bench controller` prints a Markdown table.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use axum::Router;
use dynamic_toolset::config::Settings;
use dynamic_toolset::controller::{self, cmd};
use dynamic_toolset_core::render::TOOLSETS_KEY;
use dynamic_toolset_runtime::{DetectorSet, RuntimeConfig};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Service};
use kube::Api;
use kube::api::{DeleteParams, PostParams};
use kube::runtime::watcher;
use serde_json::json;
use tokio::sync::mpsc;

#[path = "controller/api.rs"]
mod api;

const CM: &str = "kubernaut-toolset-config";
const CREATIONS: usize = 50;
const CM_DELETIONS: usize = 20;
const MANY: usize = 10_000;
const MANY_NAMESPACES: usize = 10;

fn main() -> Result<()> {
    // `cargo bench` passes `--bench`; nothing else is accepted.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(run())
}

async fn run() -> Result<()> {
    let server = tokio::task::spawn_blocking(kube_harness::ApiServer::start)
        .await?
        .context("kube-apiserver (run `cargo xtask kube build` once)")?;
    let client = controller::client(Some(server.kubeconfig_path())).await?;
    let mut rows: Vec<(String, String, &str)> = Vec::new();

    let (created, deleted, recreated) = latencies(&client).await?;
    rows.push((
        format!(
            "Service created → ConfigMap updated ({} Services)",
            created.len()
        ),
        summary(&created),
        "p99 < 1 s",
    ));
    rows.push((
        format!(
            "Service deleted → ConfigMap updated ({} Services)",
            deleted.len()
        ),
        summary(&deleted),
        "—",
    ));
    rows.push((
        format!(
            "ConfigMap deleted → recreated ({} deletions)",
            recreated.len()
        ),
        summary(&recreated),
        "< 1 s",
    ));

    let mem = memory_and_cpu(&server, &client).await?;
    rows.push((
        "`dynamic-toolset run` RSS, synced, 0 Services watched".into(),
        mib(mem.rss_empty_kib),
        "—",
    ));
    rows.push((
        format!("`dynamic-toolset run` RSS, {MANY} Services watched (after sync, settled)"),
        format!(
            "**{}** (+{} for the Services)",
            mib(mem.rss_many_kib),
            mib(mem.rss_many_kib.saturating_sub(mem.rss_empty_kib))
        ),
        "< 64 MiB",
    ));
    rows.push((
        "`dynamic-toolset run` peak RSS (VmHWM) over the whole run".into(),
        mib(mem.hwm_kib),
        "(seeds allow 128 MiB)",
    ));
    rows.push((
        format!(
            "idle CPU with {MANY} Services watched ({} s)",
            mem.idle_secs
        ),
        format!(
            "{:.2} % of one core ({} ms CPU)",
            mem.idle_cpu_ms as f64 / (mem.idle_secs as f64 * 10.0),
            mem.idle_cpu_ms
        ),
        "—",
    ));
    rows.push((
        format!("cold start with {MANY} Services: process start → synced and all detected"),
        format!("{:.2} s", mem.cold_sync_secs),
        "—",
    ));
    rows.push((
        format!("cold start with {MANY} Services: RSS settled / peak (VmHWM)"),
        format!(
            "**{}** / **{}**",
            mib(mem.cold_rss_kib),
            mib(mem.cold_hwm_kib)
        ),
        "< 64 MiB",
    ));
    rows.push((
        "cold start with an up-to-date ConfigMap: writes".into(),
        format!("{}", mem.cold_writes),
        "0",
    ));
    rows.push((
        format!("creating the {MANY} Services (16 concurrent requests, 4 clients)"),
        format!("{:.1} s", mem.create_secs),
        "—",
    ));
    rows.push((
        format!("child sees all {MANY} Services after the last create"),
        format!("{:.2} s", mem.catch_up_secs),
        "—",
    ));

    let a = api::api_under_load(&server, &client).await?;
    rows.push((
        format!(
            "API: `GET /api/v1/toolsets`, {} Services watched, {} req/s (half of the load) for {} s",
            a.watched,
            api::RATE / 2,
            api::LOAD_SECS
        ),
        summary_fine(&a.toolsets),
        "p99 < 5 ms",
    ));
    rows.push((
        "API: `GET /api/v1/services?namespace=…&chosen=false&limit=100` (the other half)".into(),
        summary_fine(&a.services),
        "p99 < 5 ms",
    ));
    rows.push((
        "API: requests sent / failed (not 200, or no answer)".into(),
        format!("{} / **{}**", a.sent, a.errors),
        "0 failed",
    ));
    rows.push((
        "API auth: cached decision / fresh TokenReview + SubjectAccessReview".into(),
        format!(
            "**{:.1} µs** / {:.1} ms",
            a.cached_decide.as_secs_f64() * 1e6,
            a.uncached_decide.as_secs_f64() * 1e3
        ),
        "cached < 0.5 ms",
    ));
    rows.push((
        format!(
            "Service created → ConfigMap updated, {} Services watched, no API load ({} Services)",
            a.watched,
            a.idle.len()
        ),
        summary(&a.idle),
        "—",
    ));
    rows.push((
        format!(
            "Service created → ConfigMap updated, same, during the API load ({} Services)",
            a.loaded.len()
        ),
        summary(&a.loaded),
        "must not move",
    ));

    println!("\n| what | result | target |\n|---|---|---|");
    for (what, result, target) in rows {
        println!("| {what} | {result} | {target} |");
    }
    Ok(())
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

fn summary(samples: &[Duration]) -> String {
    let mut v: Vec<Duration> = samples.to_vec();
    v.sort();
    let pick = |q: f64| {
        let i = ((v.len() as f64 * q).ceil() as usize).clamp(1, v.len()) - 1;
        v[i]
    };
    let ms = |d: Duration| format!("{:.0} ms", d.as_secs_f64() * 1000.0);
    format!(
        "p50 **{}**, p99 **{}** (min {}, max {})",
        ms(pick(0.50)),
        ms(pick(0.99)),
        ms(v[0]),
        ms(v[v.len() - 1])
    )
}

/// [`summary`] in microseconds (for sub-millisecond figures).
fn summary_fine(samples: &[Duration]) -> String {
    if samples.is_empty() {
        return "no samples".into();
    }
    let mut v: Vec<Duration> = samples.to_vec();
    v.sort();
    let pick = |q: f64| {
        let i = ((v.len() as f64 * q).ceil() as usize).clamp(1, v.len()) - 1;
        v[i]
    };
    let us = |d: Duration| format!("{:.2} ms", d.as_secs_f64() * 1000.0);
    format!(
        "p50 **{}**, p99 **{}** (max {}, {} answers)",
        us(pick(0.50)),
        us(pick(0.99)),
        us(v[v.len() - 1]),
        v.len()
    )
}

async fn namespace(client: &kube::Client, name: &str) -> Result<()> {
    let api: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}}))?;
    match api.create(&PostParams::default(), &ns).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
        Err(e) => Err(e).with_context(|| format!("namespace {name}")),
    }
}

/// kube-prometheus-stack's Prometheus Service, release `release`, web port `port`.
fn prometheus(ns: &str, release: &str, port: u16) -> Result<Service> {
    let name = format!("{release}-kube-prometheus-stack-prometheus");
    Ok(serde_json::from_value(json!({
        "metadata": {
            "name": name, "namespace": ns,
            "labels": {
                "app": "kube-prometheus-stack-prometheus", "self-monitor": "true",
                "app.kubernetes.io/managed-by": "Helm", "app.kubernetes.io/instance": release,
                "app.kubernetes.io/version": "66.2.1", "app.kubernetes.io/part-of": "kube-prometheus-stack",
                "chart": "kube-prometheus-stack-66.2.1", "release": release, "heritage": "Helm",
            },
        },
        "spec": {
            "type": "ClusterIP",
            "ports": [
                {"name": "http-web", "port": port, "targetPort": 9090, "protocol": "TCP"},
                {"name": "reloader-web", "port": 8080, "targetPort": "reloader-web", "protocol": "TCP"},
            ],
            "selector": {"app.kubernetes.io/name": "prometheus"},
        },
    }))?)
}

/// An everyday workload Service (nothing to detect), like most of a cluster's.
fn workload(ns: &str, i: usize) -> Result<Service> {
    let app = ["api", "web", "worker", "redis", "postgresql", "cart"][i % 6];
    Ok(serde_json::from_value(json!({
        "metadata": {
            "name": format!("{app}-{i}"), "namespace": ns,
            "labels": {
                "app.kubernetes.io/name": app, "app.kubernetes.io/instance": format!("{app}-{i}"),
                "app.kubernetes.io/managed-by": "Helm", "helm.sh/chart": format!("{app}-1.2.3"),
            },
            "annotations": {"meta.helm.sh/release-name": format!("{app}-{i}"), "meta.helm.sh/release-namespace": ns},
        },
        "spec": {
            "type": "ClusterIP",
            "ports": [{"name": "http", "port": 8080, "targetPort": "http", "protocol": "TCP"}],
            "selector": {"app.kubernetes.io/name": app, "app.kubernetes.io/instance": format!("{app}-{i}")},
        },
    }))?)
}

/// The ConfigMap as this process's own watch sees it: `None` when deleted.
type Seen = (Instant, Option<ConfigMap>);

fn watch_configmap(client: &kube::Client, ns: &str) -> mpsc::UnboundedReceiver<Seen> {
    let (tx, rx) = mpsc::unbounded_channel();
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    let cfg = watcher::Config::default().fields(&format!("metadata.name={CM}"));
    tokio::spawn(async move {
        let mut stream = std::pin::pin!(watcher(api, cfg));
        while let Some(ev) = stream.next().await {
            let seen = match ev {
                Ok(watcher::Event::Apply(cm) | watcher::Event::InitApply(cm)) => Some(cm),
                Ok(watcher::Event::Delete(_)) => None,
                _ => continue,
            };
            if tx.send((Instant::now(), seen)).is_err() {
                return;
            }
        }
    });
    rx
}

/// Waits for a sighting satisfying `pred`; returns when it was seen.
async fn seen(
    rx: &mut mpsc::UnboundedReceiver<Seen>,
    what: &str,
    pred: impl Fn(Option<&ConfigMap>) -> bool,
) -> Result<(Instant, Option<ConfigMap>)> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some((t, cm))) if pred(cm.as_ref()) => return Ok((t, cm)),
            Ok(Some(_)) => {}
            Ok(None) => bail!("ConfigMap watch ended while waiting for {what}"),
            Err(_) => bail!("timed out waiting for {what}"),
        }
    }
}

fn toolsets_text(cm: Option<&ConfigMap>) -> &str {
    cm.and_then(|c| c.data.as_ref())
        .and_then(|d| d.get(TOOLSETS_KEY))
        .map_or("", String::as_str)
}

async fn latencies(client: &kube::Client) -> Result<(Vec<Duration>, Vec<Duration>, Vec<Duration>)> {
    let ns = "bench-latency";
    namespace(client, ns).await?;
    // Health endpoint: every path answers 200.
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
    // The defaults of `dynamic-toolset run`, pointed at this namespace and at loopback.
    let mut opts = cmd::options(&Settings::default(), "bench");
    opts.configmap_namespace = ns.into();
    opts.namespaces = Arc::new(|n: &str| n == "bench-latency");
    if let Some(l) = opts.leader.as_mut() {
        l.lease_namespace = ns.into();
    }
    let loopback: SocketAddr = "127.0.0.1:0".parse()?;
    if let Some(h) = opts.health.as_mut() {
        h.probe.resolve = (0..CREATIONS)
            .map(|i| {
                (
                    format!("b{i}-kube-prometheus-stack-prometheus.{ns}.svc.cluster.local"),
                    loopback,
                )
            })
            .collect();
    }
    let mut rx = watch_configmap(client, ns);
    let handle = controller::start(client.clone(), opts, detectors);
    seen(&mut rx, "the first ConfigMap", |c| c.is_some()).await?;

    let services: Api<Service> = Api::namespaced(client.clone(), ns);
    let mut created = Vec::new();
    let mut deleted = Vec::new();
    for i in 0..CREATIONS {
        let release = format!("b{i}");
        let host = format!("{release}-kube-prometheus-stack-prometheus.{ns}.svc.cluster.local");
        let svc = prometheus(ns, &release, port)?;
        let t0 = Instant::now();
        services.create(&PostParams::default(), &svc).await?;
        let (t, _) = seen(&mut rx, "the new Service in toolsets.yaml", |c| {
            toolsets_text(c).contains(&host)
        })
        .await?;
        created.push(t - t0);
        let t0 = Instant::now();
        services
            .delete(
                svc.metadata.name.as_deref().unwrap_or_default(),
                &DeleteParams::default(),
            )
            .await?;
        let (t, _) = seen(&mut rx, "the Service gone from toolsets.yaml", |c| {
            c.is_some() && !toolsets_text(c).contains(&host)
        })
        .await?;
        deleted.push(t - t0);
    }

    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    let mut recreated = Vec::new();
    for _ in 0..CM_DELETIONS {
        let t0 = Instant::now();
        cms.delete(CM, &DeleteParams::default()).await?;
        seen(&mut rx, "the deletion", |c| c.is_none()).await?;
        let (t, _) = seen(&mut rx, "the ConfigMap recreated", |c| c.is_some()).await?;
        recreated.push(t - t0);
    }
    let status = handle.status();
    handle.stop().await;
    eprintln!("latency controller status: {status:?}");
    Ok((created, deleted, recreated))
}

struct Memory {
    cold_sync_secs: f64,
    cold_rss_kib: u64,
    cold_hwm_kib: u64,
    cold_writes: f64,
    rss_empty_kib: u64,
    rss_many_kib: u64,
    hwm_kib: u64,
    idle_cpu_ms: u64,
    idle_secs: u64,
    create_secs: f64,
    catch_up_secs: f64,
}

fn proc_status_kib(pid: u32, field: &str) -> Result<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    text.lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .with_context(|| format!("{field} of process {pid}"))
}

/// utime + stime of a process, in milliseconds.
fn cpu_ms(pid: u32) -> Result<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = text.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let f: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state); utime is field 14, stime 15.
    let ticks: u64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0)
        + f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0);
    // USER_HZ is 100 on Linux.
    Ok(ticks * 10)
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

async fn metrics(http: &reqwest::Client, port: u16) -> Option<BTreeMap<String, f64>> {
    let text = http
        .get(format!("http://127.0.0.1:{port}/metrics"))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    Some(
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| {
                let (k, v) = l.split_once(' ')?;
                Some((k.to_string(), v.trim().parse().ok()?))
            })
            .collect(),
    )
}

async fn wait_metric(
    http: &reqwest::Client,
    port: u16,
    child: &mut std::process::Child,
    what: &str,
    timeout: Duration,
    pred: impl Fn(&BTreeMap<String, f64>) -> bool,
) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait()? {
            bail!("dynamic-toolset run exited with {status} while waiting for {what}");
        }
        if metrics(http, port).await.is_some_and(|m| pred(&m)) {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Starts `dynamic-toolset run` (default settings, no leader election) writing its
/// ConfigMap in `cm_ns`; returns it with its metrics port.
fn spawn_run(
    server: &kube_harness::ApiServer,
    cm_ns: &str,
    name: &str,
) -> Result<(ChildGuard, u16)> {
    let (listen, metrics_port) = (free_port()?, free_port()?);
    let log = std::env::temp_dir().join(format!("dynamic-toolset-bench-{name}.log"));
    let cache = std::env::temp_dir().join("dynamic-toolset-bench-cache");
    let bin = Path::new(env!("CARGO_BIN_EXE_dynamic-toolset"));
    let child = std::process::Command::new(bin)
        .arg("run")
        .arg("--kubeconfig")
        .arg(server.kubeconfig_path())
        .args(["--configmap-namespace", cm_ns, "--no-leader-election"])
        .args(["--listen", &format!("127.0.0.1:{listen}")])
        .args(["--metrics-listen", &format!("127.0.0.1:{metrics_port}")])
        .arg("--cache-dir")
        .arg(&cache)
        .env_remove("KUBECONFIG")
        .stdout(std::fs::File::create(&log)?)
        .stderr(std::fs::File::create(log.with_extension("err"))?)
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))?;
    Ok((ChildGuard(child), metrics_port))
}

/// Kills the child when dropped.
struct ChildGuard(std::process::Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn memory_and_cpu(server: &kube_harness::ApiServer, client: &kube::Client) -> Result<Memory> {
    let cm_ns = "bench-memory";
    namespace(client, cm_ns).await?;
    let (mut child, metrics_port) = spawn_run(server, cm_ns, "first")?;
    let pid = child.0.id();
    let http = reqwest::Client::new();
    wait_metric(
        &http,
        metrics_port,
        &mut child.0,
        "the initial sync",
        Duration::from_secs(60),
        |m| m.get("toolset_synced") == Some(&1.0),
    )
    .await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_empty_kib = proc_status_kib(pid, "VmRSS:")?;

    // 10,000 Services over 10 namespaces, 1 in 100 a Prometheus; 4 clients, 16 in flight.
    let namespaces: Vec<String> = (0..MANY_NAMESPACES)
        .map(|i| format!("bench-many-{i:02}"))
        .collect();
    for ns in &namespaces {
        namespace(client, ns).await?;
    }
    let mut clients = Vec::new();
    for _ in 0..4 {
        clients.push(controller::client(Some(server.kubeconfig_path())).await?);
    }
    let started = Instant::now();
    futures::stream::iter(0..MANY)
        .map(|i| {
            let ns = &namespaces[i % MANY_NAMESPACES];
            let api: Api<Service> = Api::namespaced(clients[i % clients.len()].clone(), ns);
            async move {
                let svc = if i % 100 == 0 {
                    prometheus(ns, &format!("p{i}"), 9090)?
                } else {
                    workload(ns, i)?
                };
                api.create(&PostParams::default(), &svc)
                    .await
                    .with_context(|| format!("creating Service {i}"))?;
                Ok::<(), anyhow::Error>(())
            }
        })
        .buffer_unordered(16)
        .try_collect::<()>()
        .await?;
    let create_secs = started.elapsed().as_secs_f64();
    let created_at = Instant::now();
    wait_metric(
        &http,
        metrics_port,
        &mut child.0,
        "all Services watched",
        Duration::from_secs(120),
        |m| m.get("toolset_services_watched").copied().unwrap_or(0.0) >= MANY as f64,
    )
    .await?;
    let catch_up_secs = created_at.elapsed().as_secs_f64();
    // Let the last discovery pass and first probes finish, then measure.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let rss_many_kib = proc_status_kib(pid, "VmRSS:")?;
    let idle_secs = 10;
    let cpu_before = cpu_ms(pid)?;
    tokio::time::sleep(Duration::from_secs(idle_secs)).await;
    let idle_cpu_ms = cpu_ms(pid)? - cpu_before;
    let hwm_kib = proc_status_kib(pid, "VmHWM:")?;
    if let Some(m) = metrics(&http, metrics_port).await {
        let keep = |k: &String| k.starts_with("toolset_");
        eprintln!(
            "child metrics: {:?}",
            m.iter().filter(|(k, _)| keep(k)).collect::<Vec<_>>()
        );
    }
    drop(child);

    // Cold start with the 10,000 Services already there: the initial list is the peak.
    let started = Instant::now();
    let (mut child, metrics_port) = spawn_run(server, cm_ns, "cold")?;
    let pid = child.0.id();
    wait_metric(
        &http,
        metrics_port,
        &mut child.0,
        "the cold start's sync",
        Duration::from_secs(120),
        |m| {
            m.get("toolset_synced") == Some(&1.0)
                && m.get("toolset_services_watched").copied().unwrap_or(0.0) >= MANY as f64
        },
    )
    .await?;
    let cold_sync_secs = started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let cold_rss_kib = proc_status_kib(pid, "VmRSS:")?;
    // First probes of the 100 Prometheus Services (their names do not resolve here: each
    // fails its 3 attempts 1 s apart, 16 at a time) finish before anything is published.
    tokio::time::sleep(Duration::from_secs(20)).await;
    let cold_hwm_kib = proc_status_kib(pid, "VmHWM:")?;
    let cold_writes = metrics(&http, metrics_port)
        .await
        .and_then(|m| {
            m.get(r#"toolset_configmap_updates_total{status="success"}"#)
                .copied()
        })
        .unwrap_or(-1.0);
    drop(child);
    Ok(Memory {
        cold_sync_secs,
        cold_rss_kib,
        cold_hwm_kib,
        cold_writes,
        rss_empty_kib,
        rss_many_kib,
        hwm_kib,
        idle_cpu_ms,
        idle_secs,
        create_secs,
        catch_up_secs,
    })
}
