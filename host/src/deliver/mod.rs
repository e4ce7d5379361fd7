//! `dynamic-toolset deliver`: the delivery sidecar that runs beside HolmesGPT.
//!
//! The pattern of kiwigrid's k8s-sidecar, with HolmesGPT's reload endpoint: watch ONE
//! ConfigMap through the API (a watch with a `metadata.name` field selector, so a Role on
//! that ConfigMap in HolmesGPT's namespace is enough), validate its `toolsets.yaml`, write it
//! atomically to the file HolmesGPT reads (`CUSTOM_TOOLSET_LOCATION`, in a volume shared with
//! the HolmesGPT container), then `POST {holmes_url}/api/admin/reload/toolsets`.
//!
//! Why not mount the ConfigMap: a pod mounts only ConfigMaps of its own namespace, the kubelet
//! projects changes after its sync period (60-90 s; never for `subPath`), and HolmesGPT re-reads
//! the file only every `TOOLSET_STATUS_REFRESH_INTERVAL_SECONDS` (300 s) and then ignores a URL
//! that moved between healthy endpoints. The reload endpoint rebuilds the tool executor.
//!
//! Guarantees:
//! - never a half-written file: temp file in the same directory, fsync, rename, fsync dir;
//! - never an invalid one: content that is not YAML with a `toolsets:` map (each entry a map;
//!   `mcp_servers`, when present, a map) is refused, the last good file stays, the refusal is
//!   logged and counted;
//! - HolmesGPT down, restarting or answering an error: the reload is retried with exponential
//!   backoff (±25 % jitter, capped) until it succeeds or newer content arrives (then the newer
//!   content is written and reloaded); every failure is logged with its reason and counted, the
//!   state is on `/status` and in the metrics;
//! - the admin credential (env `HOLMES_API_KEY`, or `--api-key-file`, re-read before every call
//!   so a rotated Secret is picked up) is sent as HolmesGPT's `X-API-Key` header and never
//!   logged.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context;
use clap::Args;
use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::runtime::{WatchStreamExt, watcher};
use tokio::sync::watch;

use dynamic_toolset_core::render::{GENERATED_AT_ANNOTATION, TOOLSETS_KEY};

use crate::metrics::{self, DeliveryMetrics};

mod content;

/// HolmesGPT's admin reload path (`holmes/admin/admin_api.py`, mounted under `/api/admin`).
pub const RELOAD_PATH: &str = "/api/admin/reload/toolsets";
/// The header HolmesGPT's server checks first (`holmes/utils/auth.py` `extract_api_key`:
/// `X-API-Key`, else `Authorization: Bearer`), against its env `HOLMES_API_KEY`.
pub const API_KEY_HEADER: &str = "X-API-Key";
/// Env of the admin credential (the same variable HolmesGPT's server reads its key from).
pub const API_KEY_ENV: &str = "HOLMES_API_KEY";

#[derive(Debug, Args)]
#[command(after_help = "\
Runs beside HolmesGPT (same pod, a shared emptyDir volume): HolmesGPT gets \
CUSTOM_TOOLSET_LOCATION=<--output>, this container gets the same volume and a Role allowing \
get/list/watch on the one ConfigMap in HolmesGPT's namespace.

Admin credential: env HOLMES_API_KEY (e.g. from the Secret HolmesGPT's chart uses for its own \
HOLMES_API_KEY), or --api-key-file (a mounted Secret key; re-read before every reload). Sent as \
the X-API-Key header; never logged. Without one, the reload is sent unauthenticated (HolmesGPT \
without API-key auth).

Endpoints on --listen: /metrics (Prometheus), /healthz, /status (the delivery state in words).

Example:
  dynamic-toolset deliver --configmap-namespace holmes --output /etc/holmes/toolsets/toolsets.yaml \\
    --holmes-url http://127.0.0.1:5050 --listen 0.0.0.0:9091")]
pub struct DeliverArgs {
    /// Namespace of the ConfigMap (HolmesGPT's). Default: env POD_NAMESPACE, else the service
    /// account's namespace.
    #[arg(long, value_name = "NS", env = "CONFIGMAP_NAMESPACE")]
    pub configmap_namespace: Option<String>,
    /// Name of the generated ConfigMap.
    #[arg(
        long,
        value_name = "NAME",
        env = "CONFIGMAP_NAME",
        default_value = "kubernaut-toolset-config"
    )]
    pub configmap_name: String,
    /// The ConfigMap key holding HolmesGPT's file.
    #[arg(long, value_name = "KEY", default_value = TOOLSETS_KEY)]
    pub key: String,
    /// The file HolmesGPT reads (its CUSTOM_TOOLSET_LOCATION), written atomically.
    #[arg(long, short = 'o', value_name = "FILE", env = "TOOLSET_FILE")]
    pub output: PathBuf,
    /// HolmesGPT's server (its admin app is mounted under /api/admin).
    #[arg(
        long,
        value_name = "URL",
        env = "HOLMES_URL",
        default_value = "http://127.0.0.1:5050"
    )]
    pub holmes_url: String,
    /// File holding the admin API key (a mounted Secret); wins over env HOLMES_API_KEY.
    #[arg(long, value_name = "FILE", env = "HOLMES_API_KEY_FILE")]
    pub api_key_file: Option<PathBuf>,
    /// Only write the file; do not call HolmesGPT's reload endpoint.
    #[arg(long)]
    pub no_reload: bool,
    /// First retry delay after a failed reload (doubles up to --backoff-max, ±25 % jitter).
    #[arg(long, value_name = "DURATION", default_value = "500ms", value_parser = parse_duration)]
    pub backoff_initial: Duration,
    /// Longest delay between reload attempts.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub backoff_max: Duration,
    /// Timeout of one reload call (HolmesGPT re-checks every toolset while answering).
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_duration)]
    pub reload_timeout: Duration,
    /// Address for /metrics, /healthz and /status. Off when unset.
    #[arg(long, value_name = "ADDR", env = "DELIVER_LISTEN")]
    pub listen: Option<std::net::SocketAddr>,
    /// Kubeconfig file (default: in-cluster, else KUBECONFIG / ~/.kube/config).
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    crate::config::parse_duration(s, false).map_err(|e| e.to_string())
}

pub use content::{Backoff, Failure, REASONS, classify, invalid_reason, write_atomic};

// ---------------------------------------------------------------------------------------------
// State and metrics

/// The delivery state, for /status (the counters are in [`DeliveryMetrics`]).
#[derive(Debug, Clone, Default)]
pub struct Status {
    pub configmap_present: bool,
    /// Newer valid content than what HolmesGPT serves is waiting to be delivered.
    pub pending: bool,
    pub consecutive_failures: u32,
    pub last_failure: Option<String>,
    /// When the content HolmesGPT serves was generated (the ConfigMap's generated-at
    /// annotation, else when it was seen).
    pub served_generated_at: Option<SystemTime>,
    pub last_success: Option<SystemTime>,
}

impl Status {
    fn fail(&mut self, f: &Failure) {
        self.last_failure = Some(format!("{}: {}", f.reason, f.detail));
    }

    /// The state in words (for /status and logs).
    pub fn describe(&self) -> String {
        let served = match self.served_generated_at {
            Some(t) => format!(
                "serving content generated {}s ago",
                SystemTime::now()
                    .duration_since(t)
                    .map(|d| d.as_secs())
                    .unwrap_or(0)
            ),
            None => "nothing delivered yet".into(),
        };
        match (&self.pending, &self.last_failure) {
            (true, Some(f)) if self.consecutive_failures > 0 => format!(
                "retrying: {} consecutive failures, last {f}; {served}",
                self.consecutive_failures
            ),
            (true, _) => format!("delivering; {served}"),
            (false, _) => format!("up to date; {served}"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// I/O

/// Valid content to deliver.
#[derive(Debug, Clone, PartialEq)]
struct Desired {
    content: String,
    generated_at: SystemTime,
}

/// Where the admin credential comes from. Its value never reaches a log or Debug output.
#[derive(Clone)]
enum Credential {
    None,
    Env(String),
    File(PathBuf),
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credential::None => f.write_str("none"),
            Credential::Env(_) => write!(f, "env {API_KEY_ENV} (redacted)"),
            Credential::File(p) => write!(f, "file {} (redacted)", p.display()),
        }
    }
}

impl Credential {
    fn from_args(args: &DeliverArgs) -> Self {
        if let Some(p) = &args.api_key_file {
            return Credential::File(p.clone());
        }
        match std::env::var(API_KEY_ENV) {
            Ok(k) if !k.trim().is_empty() => Credential::Env(k.trim().to_string()),
            _ => Credential::None,
        }
    }

    fn read(&self) -> Result<Option<String>, Failure> {
        match self {
            Credential::None => Ok(None),
            Credential::Env(k) => Ok(Some(k.clone())),
            Credential::File(p) => std::fs::read_to_string(p)
                .map(|k| Some(k.trim().to_string()))
                .map_err(|e| Failure {
                    reason: "credential_unreadable",
                    detail: format!("{}: {e}", p.display()),
                }),
        }
    }
}

/// Calls HolmesGPT's reload endpoint once.
async fn reload(
    http: &reqwest::Client,
    url: &str,
    credential: &Credential,
) -> Result<String, Failure> {
    let mut req = http.post(url);
    if let Some(key) = credential.read()? {
        let mut value = reqwest::header::HeaderValue::from_str(&key).map_err(|_| Failure {
            reason: "credential_unreadable",
            detail: "the API key is not a valid header value".into(),
        })?;
        value.set_sensitive(true);
        req = req.header(API_KEY_HEADER, value);
    }
    let resp = req.send().await.map_err(|e| Failure {
        reason: "holmes_unreachable",
        // reqwest errors name the URL, never the headers; the causes say why.
        detail: error_chain(&e),
    })?;
    let status = resp.status().as_u16();
    let body = resp.text().await.unwrap_or_default();
    classify(status, &body).map(|()| body.chars().take(300).collect())
}

/// An error and its causes, `: `-separated.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let text = c.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cur = c.source();
    }
    out
}

/// The namespace of the ConfigMap: the flag/env, else the pod's.
fn configmap_namespace(args: &DeliverArgs) -> anyhow::Result<String> {
    if let Some(ns) = args.configmap_namespace.as_ref().filter(|s| !s.is_empty()) {
        return Ok(ns.clone());
    }
    if let Ok(ns) = std::env::var("POD_NAMESPACE")
        && !ns.trim().is_empty()
    {
        return Ok(ns.trim().to_string());
    }
    std::fs::read_to_string("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
        .map(|s| s.trim().to_string())
        .context("no --configmap-namespace, POD_NAMESPACE or service account namespace")
}

fn generated_at(cm: &ConfigMap) -> SystemTime {
    cm.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(GENERATED_AT_ANNOTATION))
        .and_then(|t| humantime::parse_rfc3339_weak(t).ok())
        .unwrap_or_else(SystemTime::now)
}

/// The state and the metrics, shared by the watch, the deliverer and the endpoints.
#[derive(Clone)]
struct Shared {
    status: Arc<RwLock<Status>>,
    metrics: Arc<DeliveryMetrics>,
}

impl Shared {
    /// Changes the state; the gauges follow it.
    fn update(&self, f: impl FnOnce(&mut Status)) {
        if let Ok(mut s) = self.status.write() {
            f(&mut s);
            let m = &self.metrics;
            m.configmap_present.set(i64::from(s.configmap_present));
            m.pending.set(i64::from(s.pending));
            m.consecutive_failures
                .set(i64::from(s.consecutive_failures));
        }
    }

    /// One failed attempt: counted by reason, and the last failure in the state.
    fn fail(&self, f: &Failure, then: impl FnOnce(&mut Status)) {
        self.metrics.failure(f.reason);
        self.update(|s| {
            s.fail(f);
            then(s);
        });
    }
}

/// Watches the ConfigMap; sends each new valid content.
async fn watch_configmap(
    api: Api<ConfigMap>,
    name: String,
    key: String,
    tx: watch::Sender<Option<Desired>>,
    status: Shared,
) {
    let cfg = watcher::Config::default().fields(&format!("metadata.name={name}"));
    let mut stream = std::pin::pin!(watcher(api, cfg).default_backoff());
    let mut seen = false;
    let mut last_refused: Option<String> = None;
    while let Some(item) = stream.next().await {
        let cm = match item {
            Ok(watcher::Event::Apply(cm) | watcher::Event::InitApply(cm)) => cm,
            Ok(watcher::Event::Delete(_)) => {
                tracing::warn!(configmap = %name, "ConfigMap deleted; HolmesGPT keeps the last delivered file");
                status.update(|s| s.configmap_present = false);
                continue;
            }
            Ok(watcher::Event::Init) => {
                seen = false;
                continue;
            }
            Ok(watcher::Event::InitDone) => {
                if !seen {
                    tracing::warn!(configmap = %name, "ConfigMap not found; waiting for it (the file is left as is)");
                    status.update(|s| s.configmap_present = false);
                }
                continue;
            }
            Err(e) => {
                tracing::warn!(error = %e, "ConfigMap watch failed; retrying with backoff");
                continue;
            }
        };
        seen = true;
        status.update(|s| s.configmap_present = true);
        let content = cm
            .data
            .as_ref()
            .and_then(|d| d.get(&key))
            .cloned()
            .unwrap_or_default();
        let why = if content.trim().is_empty() {
            Some(format!("key {key:?} missing or empty"))
        } else {
            invalid_reason(&content)
        };
        if let Some(why) = why {
            // Logged once per distinct refused content (each watch event re-sends it).
            let rv = cm.metadata.resource_version.clone().unwrap_or_default();
            if last_refused.as_deref() != Some(rv.as_str()) {
                tracing::error!(configmap = %name, resource_version = %rv, "refusing invalid content ({why}); keeping the last good file");
                status.fail(
                    &Failure {
                        reason: "invalid_configmap",
                        detail: why.clone(),
                    },
                    |_| {},
                );
                last_refused = Some(rv);
            }
            continue;
        }
        let same = tx.borrow().as_ref().is_some_and(|d| d.content == content);
        if !same {
            let desired = Desired {
                content,
                generated_at: generated_at(&cm),
            };
            status.update(|s| s.pending = true);
            let _ = tx.send(Some(desired));
        }
    }
}

struct Deliverer {
    output: PathBuf,
    reload_url: Option<String>,
    credential: Credential,
    http: reqwest::Client,
    backoff_initial: Duration,
    backoff_max: Duration,
    status: Shared,
}

impl Deliverer {
    /// One attempt: write the file (when it differs), then reload.
    async fn attempt(&self, desired: &Desired) -> Result<(), Failure> {
        let path = self.output.clone();
        let content = desired.content.clone();
        tokio::task::spawn_blocking(move || {
            if std::fs::read(&path).ok().as_deref() == Some(content.as_bytes()) {
                return Ok(());
            }
            write_atomic(&path, content.as_bytes())
        })
        .await
        .map_err(|e| Failure {
            reason: "write_failed",
            detail: e.to_string(),
        })?
        .map_err(|e| Failure {
            reason: "write_failed",
            detail: format!("{}: {e}", self.output.display()),
        })?;
        let Some(url) = &self.reload_url else {
            return Ok(());
        };
        self.status.metrics.reload_attempts.inc();
        let answer = reload(&self.http, url, &self.credential).await?;
        tracing::debug!(answer = %answer, "HolmesGPT reloaded");
        Ok(())
    }

    /// Delivers every new content until the channel closes.
    async fn run(self, mut rx: watch::Receiver<Option<Desired>>) {
        let mut backoff = Backoff::new(self.backoff_initial, self.backoff_max);
        'next: loop {
            let desired = rx.borrow_and_update().clone();
            let Some(desired) = desired else {
                if rx.changed().await.is_err() {
                    return;
                }
                continue;
            };
            backoff.reset();
            let started = Instant::now();
            let mut attempts = 0u32;
            loop {
                attempts += 1;
                match self.attempt(&desired).await {
                    Ok(()) => {
                        let took = started.elapsed();
                        let now = SystemTime::now();
                        self.status.metrics.delivered(desired.generated_at, now);
                        self.status.update(|s| {
                            s.consecutive_failures = 0;
                            s.last_failure = None;
                            s.served_generated_at = Some(desired.generated_at);
                            s.last_success = Some(now);
                            s.pending = false;
                        });
                        tracing::info!(
                            attempts,
                            took_ms = took.as_millis() as u64,
                            file = %self.output.display(),
                            reloaded = self.reload_url.is_some(),
                            "delivered"
                        );
                        break;
                    }
                    Err(f) => {
                        let delay = backoff.next_delay();
                        let consecutive = {
                            let mut n = 0;
                            self.status.fail(&f, |s| {
                                s.consecutive_failures += 1;
                                n = s.consecutive_failures;
                            });
                            n
                        };
                        if consecutive >= 10 && consecutive % 10 == 0 {
                            tracing::error!(
                                reason = f.reason,
                                detail = %f.detail,
                                consecutive,
                                retry_in_ms = delay.as_millis() as u64,
                                "HolmesGPT still does not serve the current toolsets; the file is written, retrying"
                            );
                        } else {
                            tracing::warn!(
                                reason = f.reason,
                                detail = %f.detail,
                                attempt = attempts,
                                retry_in_ms = delay.as_millis() as u64,
                                "delivery failed; retrying"
                            );
                        }
                        tokio::select! {
                            _ = tokio::time::sleep(delay) => {}
                            r = rx.changed() => {
                                if r.is_err() { return; }
                                // Newer content: deliver it instead (the backoff restarts).
                                continue 'next;
                            }
                        }
                    }
                }
            }
            if rx.changed().await.is_err() {
                return;
            }
        }
    }
}

/// `dynamic-toolset deliver`.
pub fn run(args: &DeliverArgs) -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(serve(args))?;
    Ok(ExitCode::SUCCESS)
}

async fn serve(args: &DeliverArgs) -> anyhow::Result<()> {
    let namespace = configmap_namespace(args)?;
    if let Some(dir) = args.output.parent().filter(|d| !d.as_os_str().is_empty()) {
        anyhow::ensure!(
            dir.is_dir(),
            "the directory of --output ({}) does not exist",
            dir.display()
        );
    }
    let credential = Credential::from_args(args);
    let reload_url = (!args.no_reload)
        .then(|| format!("{}{RELOAD_PATH}", args.holmes_url.trim_end_matches('/')));
    tracing::info!(
        configmap = %format!("{namespace}/{}", args.configmap_name),
        key = %args.key,
        output = %args.output.display(),
        reload = ?reload_url,
        credential = ?credential,
        "starting delivery"
    );
    let client = crate::controller::client(args.kubeconfig.as_deref()).await?;
    let http = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(2))
        .timeout(args.reload_timeout)
        .build()
        .context("cannot build the HTTP client")?;
    let status = Shared {
        status: Arc::default(),
        metrics: Arc::new(DeliveryMetrics::new().context("cannot register the metrics")?),
    };
    let (tx, rx) = watch::channel(None);
    let api: Api<ConfigMap> = Api::namespaced(client, &namespace);
    let watch_task = tokio::spawn(watch_configmap(
        api,
        args.configmap_name.clone(),
        args.key.clone(),
        tx,
        status.clone(),
    ));
    let deliverer = Deliverer {
        output: args.output.clone(),
        reload_url,
        credential,
        http,
        backoff_initial: args.backoff_initial,
        backoff_max: args.backoff_max,
        status: status.clone(),
    };
    let deliver_task = tokio::spawn(deliverer.run(rx));
    let server = async {
        match args.listen {
            Some(addr) => {
                use axum::routing::get;
                let app = axum::Router::new()
                    .route("/metrics", get(metrics::handler::<DeliveryMetrics>))
                    .with_state(status.metrics.clone())
                    .route("/healthz", get(|| async { "ok" }))
                    .route("/status", get(status_text))
                    .with_state(status.status.clone());
                let listener = tokio::net::TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("cannot listen on {addr}"))?;
                tracing::info!(%addr, "serving /metrics, /healthz, /status");
                axum::serve(listener, app)
                    .await
                    .context("HTTP server failed")
            }
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        r = server => r?,
        _ = crate::shutdown::signal() => tracing::info!("shutting down"),
    }
    watch_task.abort();
    deliver_task.abort();
    Ok(())
}

async fn status_text(
    axum::extract::State(status): axum::extract::State<Arc<RwLock<Status>>>,
) -> String {
    status
        .read()
        .map(|s| s.describe())
        .unwrap_or_else(|_| "status lock poisoned".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Exported;

    #[test]
    fn credential_debug_never_shows_the_key() {
        let c = Credential::Env("s3cr3t".into());
        assert!(!format!("{c:?}").contains("s3cr3t"));
    }

    #[test]
    fn credential_file_is_read_per_call_and_trimmed() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("key");
        std::fs::write(&p, "k1\n").unwrap();
        let c = Credential::File(p.clone());
        assert_eq!(c.read().unwrap().as_deref(), Some("k1"));
        // A rotated Secret is picked up by the next call.
        std::fs::write(&p, "k2").unwrap();
        assert_eq!(c.read().unwrap().as_deref(), Some("k2"));
        assert!(!format!("{c:?}").contains("k2"));
        std::fs::remove_file(&p).unwrap();
        assert_eq!(c.read().unwrap_err().reason, "credential_unreadable");
    }

    #[test]
    fn metrics_show_deliveries_failures_and_age() {
        let m = DeliveryMetrics::new().unwrap();
        let generated_at = SystemTime::now() - Duration::from_secs(5);
        for _ in 0..3 {
            m.delivered(generated_at, SystemTime::now());
        }
        m.failure("reload_error");
        let text = m.encode().unwrap();
        assert!(
            text.contains("toolset_delivery_deliveries_total 3"),
            "{text}"
        );
        assert!(
            text.contains(r#"toolset_delivery_failures_total{reason="reload_error"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"toolset_delivery_failures_total{reason="holmes_unreachable"} 0"#),
            "{text}"
        );
        let age = text
            .lines()
            .find_map(|l| l.strip_prefix("toolset_delivery_served_content_age_seconds "))
            .unwrap();
        let age: f64 = age.parse().unwrap();
        assert!((5.0..60.0).contains(&age), "{age}");
    }
}
