//! Health probing: does a chosen endpoint answer?
//!
//! Each target gets up to `attempts` HTTP GETs (`timeout` each, `interval` apart); the
//! first answer whose status the detector accepts makes it healthy. Targets are probed
//! concurrently, at most `concurrency` at a time. Redirects are not followed (a 3xx is
//! an answer). What counts as healthy is [`HealthProbe::accepts`] in the core.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use dynamic_toolset_core::HealthProbe;

/// Probe settings; the defaults are the seeds' (5 s timeout, 3 attempts 1 s apart).
#[derive(Debug, Clone)]
pub struct ProbeSettings {
    pub timeout: Duration,
    pub attempts: u32,
    pub interval: Duration,
    pub concurrency: usize,
    /// Skip TLS verification for every target (self-signed backends).
    pub insecure_tls: bool,
    /// DNS overrides, like curl's `--resolve`: host name → address (the URL's port is kept).
    pub resolve: Vec<(String, SocketAddr)>,
}

impl Default for ProbeSettings {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(5),
            attempts: 3,
            interval: Duration::from_secs(1),
            concurrency: 16,
            insecure_tls: false,
            resolve: Vec::new(),
        }
    }
}

/// One endpoint to check.
#[derive(Debug, Clone)]
pub struct ProbeTarget<K> {
    /// Caller's key, returned with the outcome.
    pub key: K,
    /// The endpoint HolmesGPT will use; its host is probed.
    pub endpoint: String,
    pub probe: HealthProbe,
    /// Verify TLS certificates for this target (false when the toolset itself is
    /// configured with `verify_ssl: false`, so the probe behaves like the consumer).
    pub verify_tls: bool,
}

/// What a probe found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeOutcome {
    Healthy {
        url: String,
        status: u16,
        attempts: u32,
    },
    Unhealthy {
        url: String,
        reason: String,
        attempts: u32,
    },
}

impl ProbeOutcome {
    pub fn is_healthy(&self) -> bool {
        matches!(self, ProbeOutcome::Healthy { .. })
    }
}

/// A client pair (verifying and not verifying TLS) built once per settings.
pub struct Prober {
    settings: ProbeSettings,
    verifying: reqwest::Client,
    insecure: reqwest::Client,
}

impl Prober {
    pub fn new(settings: ProbeSettings) -> Result<Self, crate::error::Error> {
        let build = |insecure: bool| {
            let mut b = reqwest::Client::builder()
                .timeout(settings.timeout)
                .connect_timeout(settings.timeout)
                .redirect(reqwest::redirect::Policy::none())
                .user_agent(concat!("dynamic-toolset/", env!("CARGO_PKG_VERSION")))
                .danger_accept_invalid_certs(insecure);
            for (host, addr) in &settings.resolve {
                b = b.resolve(host, *addr);
            }
            b.build().map_err(crate::error::Error::HttpClient)
        };
        Ok(Self {
            verifying: build(settings.insecure_tls)?,
            insecure: build(true)?,
            settings,
        })
    }

    /// Probes every target, concurrently (bounded); outcomes come back in input order.
    pub async fn probe_all<K: Clone>(&self, targets: &[ProbeTarget<K>]) -> Vec<(K, ProbeOutcome)> {
        let permits = tokio::sync::Semaphore::new(self.settings.concurrency.max(1));
        // A plain loop (not an iterator closure) keeps the future `Send` for any lifetime.
        let mut futures = Vec::with_capacity(targets.len());
        for target in targets {
            futures.push(self.probe_bounded(target, &permits));
        }
        futures::future::join_all(futures).await
    }

    async fn probe_bounded<K: Clone>(
        &self,
        target: &ProbeTarget<K>,
        permits: &tokio::sync::Semaphore,
    ) -> (K, ProbeOutcome) {
        let _permit = permits.acquire().await;
        (target.key.clone(), self.probe(target).await)
    }

    /// Probes one target.
    pub async fn probe<K>(&self, target: &ProbeTarget<K>) -> ProbeOutcome {
        let url = match target.probe.url_for(&target.endpoint) {
            Ok(u) => u,
            Err(reason) => {
                return ProbeOutcome::Unhealthy {
                    url: target.endpoint.clone(),
                    reason: reason.to_string(),
                    attempts: 0,
                };
            }
        };
        let client = if target.verify_tls {
            &self.verifying
        } else {
            &self.insecure
        };
        let attempts = self.settings.attempts.max(1);
        let mut reason = String::new();
        for attempt in 1..=attempts {
            if attempt > 1 {
                tokio::time::sleep(self.settings.interval).await;
            }
            let started = Instant::now();
            match client.get(url.clone()).send().await {
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    if target.probe.accepts(status) {
                        return ProbeOutcome::Healthy {
                            url: url.to_string(),
                            status,
                            attempts: attempt,
                        };
                    }
                    reason = format!("HTTP {status} (accepted: {})", accepted(&target.probe));
                }
                Err(e) => reason = describe(&e, started.elapsed()),
            }
            tracing::debug!(url = %url, attempt, %reason, "probe failed");
        }
        ProbeOutcome::Unhealthy {
            url: url.to_string(),
            reason,
            attempts,
        }
    }
}

fn accepted(p: &HealthProbe) -> String {
    if p.accepted_statuses.is_empty() {
        "200-399".to_string()
    } else {
        p.accepted_statuses
            .iter()
            .map(u16::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// A short, secret-free description of a request failure.
fn describe(e: &reqwest::Error, elapsed: Duration) -> String {
    use std::error::Error;
    if e.is_timeout() {
        return format!("timed out after {:.1}s", elapsed.as_secs_f64());
    }
    // The innermost cause says what happened (DNS, refused, TLS); URLs carry no secrets
    // here but are left out to keep the line short.
    let mut cause: &dyn Error = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    let kind = if e.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    format!("{kind}: {cause}")
}
