//! Health probing: does a chosen endpoint answer, and is it the backend we think?
//!
//! Each target gets up to `attempts` HTTP GETs (`timeout` each, `interval` apart); the
//! first answer whose status the detector accepts makes it healthy. Targets are probed
//! concurrently, at most `concurrency` at a time. Redirects are not followed (a 3xx is
//! an answer). What counts as healthy is [`HealthProbe::accepts`] in the core.
//!
//! A target with endpoint candidates (contract 1.1 `identify`) is identified first: every
//! candidate's fingerprint is requested at once (one GET each, the same timeout, TLS
//! certificates not verified, at most [`MAX_FINGERPRINT_BODY`] bytes of body read), and
//! the first candidate in the detector's order whose answer matches
//! ([`Fingerprint::matches`]) wins: the target is healthy (it answered) and the outcome
//! names the winner. When none matches, a `required` identification makes the target
//! unhealthy with every candidate's reason; otherwise the fragment's own endpoint is
//! health-probed as usual.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use dynamic_toolset_core::{Fingerprint, HealthProbe, Identification};

/// Bytes of a fingerprint answer read (identity is in the first bytes of every API
/// answer we look for; a backend streaming more is not read further).
pub const MAX_FINGERPRINT_BODY: usize = 64 << 10;

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
    /// Candidates to identify before anything else (see the module doc).
    pub identification: Option<Identification>,
}

/// Which candidate proved itself, and what proved it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proof {
    /// Position in the detector's candidate list.
    pub candidate: usize,
    /// "GET <url>: HTTP 200 with /data/version"
    pub text: String,
}

/// What a probe found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeOutcome {
    Healthy {
        url: String,
        status: u16,
        attempts: u32,
        /// The candidate that proved itself, when the target had candidates.
        identified: Option<Proof>,
    },
    Unhealthy {
        url: String,
        reason: String,
        attempts: u32,
        /// The candidate that proved its identity but failed its health probe.
        identified: Option<Proof>,
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

    /// Probes one target: identifies it first when it has candidates.
    pub async fn probe<K>(&self, target: &ProbeTarget<K>) -> ProbeOutcome {
        let Some(id) = &target.identification else {
            return self.health(target).await;
        };
        let mut checks = Vec::with_capacity(id.candidates.len());
        for c in &id.candidates {
            checks.push(self.fingerprint(&c.endpoint, &c.fingerprint));
        }
        let answers = futures::future::join_all(checks).await;
        let mut reasons = Vec::new();
        for (index, answer) in answers.into_iter().enumerate() {
            match answer {
                Ok((_, _, text)) => {
                    // Identified (TLS unverified). Health is then checked as HolmesGPT
                    // will connect: with the candidate's own TLS policy and probe, so an
                    // adopted https endpoint is judged the same way every round.
                    let c = &id.candidates[index];
                    let health = ProbeTarget {
                        key: (),
                        endpoint: c.endpoint.clone(),
                        probe: c.health.clone().unwrap_or_else(|| target.probe.clone()),
                        verify_tls: c
                            .config
                            .get("verify_ssl")
                            .and_then(serde_json::Value::as_bool)
                            .unwrap_or(true),
                        identification: None,
                    };
                    let proof = Proof {
                        candidate: index,
                        text,
                    };
                    return match self.health(&health).await {
                        ProbeOutcome::Healthy {
                            url,
                            status,
                            attempts,
                            ..
                        } => ProbeOutcome::Healthy {
                            url,
                            status,
                            attempts,
                            identified: Some(proof),
                        },
                        ProbeOutcome::Unhealthy {
                            url,
                            reason,
                            attempts,
                            ..
                        } => ProbeOutcome::Unhealthy {
                            url,
                            reason,
                            attempts,
                            identified: Some(proof),
                        },
                    };
                }
                Err(reason) => reasons.push(format!("candidate {}: {reason}", index + 1)),
            }
        }
        if id.required {
            let reason = if reasons.is_empty() {
                "not identified: no candidate".to_string()
            } else {
                format!("not identified: {}", reasons.join("; "))
            };
            return ProbeOutcome::Unhealthy {
                url: target.endpoint.clone(),
                reason,
                attempts: 1,
                identified: None,
            };
        }
        tracing::debug!(endpoint = %target.endpoint, reasons = %reasons.join("; "), "no candidate proved itself: probing the metadata's guess");
        self.health(target).await
    }

    /// Requests one candidate's fingerprint: `Ok((url, status, proof))` when it matches.
    async fn fingerprint(
        &self,
        endpoint: &str,
        fp: &Fingerprint,
    ) -> Result<(String, u16, String), String> {
        let url = fp.url_for(endpoint);
        let started = Instant::now();
        let mut resp = self
            .insecure
            .get(&url)
            .send()
            .await
            .map_err(|e| format!("GET {url}: {}", describe(&e, started.elapsed())))?;
        let status = resp.status().as_u16();
        let mut body = Vec::new();
        loop {
            match resp.chunk().await {
                Ok(Some(chunk)) => {
                    let room = MAX_FINGERPRINT_BODY.saturating_sub(body.len());
                    body.extend_from_slice(&chunk[..chunk.len().min(room)]);
                    if body.len() >= MAX_FINGERPRINT_BODY {
                        break;
                    }
                }
                Ok(None) => break,
                Err(e) => return Err(format!("GET {url}: {}", describe(&e, started.elapsed()))),
            }
        }
        fp.matches(status, &body)
            .map(|()| {
                let mut proof = format!("GET {url}: HTTP {status}");
                if !fp.json_pointers.is_empty() {
                    proof.push_str(&format!(" with {}", fp.json_pointers.join(", ")));
                }
                if !fp.body_contains.is_empty() {
                    proof.push_str(&format!(" containing {:?}", fp.body_contains));
                }
                (url.clone(), status, proof)
            })
            .map_err(|why| format!("GET {url}: {why}"))
    }

    /// Probes one target's health.
    async fn health<K>(&self, target: &ProbeTarget<K>) -> ProbeOutcome {
        let url = match target.probe.url_for(&target.endpoint) {
            Ok(u) => u,
            Err(reason) => {
                return ProbeOutcome::Unhealthy {
                    url: target.endpoint.clone(),
                    reason: reason.to_string(),
                    attempts: 0,
                    identified: None,
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
                            identified: None,
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
            identified: None,
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
