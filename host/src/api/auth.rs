//! Authentication and authorisation of API requests, the way kube-rbac-proxy does it.
//!
//! A request carries `Authorization: Bearer <token>`. The token is checked with a Kubernetes
//! `TokenReview`; the user it names must then be allowed the request's path by a
//! `SubjectAccessReview` on a non-resource URL (verb `get` for reads, `create` for `POST`),
//! so cluster admins grant access with an ordinary ClusterRole.
//!
//! The URL reviewed is the request path under [`SAR_PATH_PREFIX`]: `GET /api/v1/toolsets` is
//! reviewed as `get /dynamic-toolset/api/v1/toolsets`. Reviewing the bare path would open the
//! API to every identity of the cluster: Kubernetes' default `system:discovery` ClusterRole
//! grants `get` on `/api/*`, `/healthz`, `/openapi/*` ... to `system:authenticated`, i.e. to
//! every ServiceAccount token (checked on the real apiserver in `tests/api_auth.rs`).
//!
//! ```yaml
//! rules:
//!   - nonResourceURLs: ["/dynamic-toolset/*"]          # read everything
//!     verbs: [get]
//!   - nonResourceURLs: ["/dynamic-toolset/api/v1/discover"]
//!     verbs: [create]                                   # trigger a discovery round
//! ```
//!
//! Decisions are cached briefly in a bounded map keyed by a SHA-256 digest of the token, never
//! the token itself; failures to reach the API server are never cached. Tokens are never
//! logged. Answers: 401 without a token or with one the API server does not accept, 403 when
//! the user is not allowed, 503 when the API server cannot be asked; each a JSON body with a
//! reason.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use k8s_openapi::api::authorization::v1::{
    NonResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use kube::Api;
use kube::api::PostParams;
use sha2::{Digest, Sha256};

/// Prefix of the non-resource URL a request is reviewed as (see the module doc for why).
pub const SAR_PATH_PREFIX: &str = "/dynamic-toolset";

/// The non-resource URL a request for `path` is reviewed as.
pub fn reviewed_path(path: &str) -> String {
    format!("{SAR_PATH_PREFIX}{path}")
}

/// How long decisions are kept and how many.
#[derive(Debug, Clone)]
pub struct AuthOptions {
    /// How long an allowed decision is reused.
    pub allow_ttl: Duration,
    /// How long a denial (401 or 403) is reused; zero: never cached.
    pub deny_ttl: Duration,
    /// At most this many cached decisions.
    pub capacity: usize,
}

impl Default for AuthOptions {
    fn default() -> Self {
        AuthOptions {
            allow_ttl: Duration::from_secs(60),
            deny_ttl: Duration::from_secs(10),
            capacity: 4096,
        }
    }
}

/// The verdict on one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// The user may do this.
    Allowed { user: String },
    /// No token, or one the API server does not accept (401).
    Unauthenticated { reason: String },
    /// A known user who may not do this (403).
    Forbidden { user: String, reason: String },
    /// The API server could not be asked (503; never cached).
    Unavailable { reason: String },
}

impl Decision {
    fn status(&self) -> StatusCode {
        match self {
            Decision::Allowed { .. } => StatusCode::OK,
            Decision::Unauthenticated { .. } => StatusCode::UNAUTHORIZED,
            Decision::Forbidden { .. } => StatusCode::FORBIDDEN,
            Decision::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The JSON error answer for a decision that is not `Allowed`.
    fn response(&self) -> Response {
        let (error, reason) = match self {
            Decision::Allowed { .. } => return StatusCode::OK.into_response(),
            Decision::Unauthenticated { reason } => ("unauthorized", reason),
            Decision::Forbidden { reason, .. } => ("forbidden", reason),
            Decision::Unavailable { reason } => ("unavailable", reason),
        };
        let body = serde_json::json!({ "error": error, "reason": reason });
        let mut resp = (self.status(), axum::Json(body)).into_response();
        if matches!(self, Decision::Unauthenticated { .. }) {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"dynamic-toolset\""),
            );
        }
        resp
    }
}

/// The Kubernetes verb a request method asks for, as kube-rbac-proxy maps it.
pub fn verb_of(method: &Method) -> &'static str {
    match *method {
        Method::GET | Method::HEAD | Method::OPTIONS => "get",
        Method::POST => "create",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE => "delete",
        _ => "get",
    }
}

/// The cache key: a digest of the token (the token itself is never stored), the verb and path.
fn cache_key(token: &str, verb: &str, path: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(token.as_bytes());
    h.update([0]);
    h.update(verb.as_bytes());
    h.update([0]);
    h.update(path.as_bytes());
    h.finalize().into()
}

/// A bounded map of decisions with an expiry each.
#[derive(Debug)]
struct Cache {
    entries: HashMap<[u8; 32], (Decision, Instant)>,
    capacity: usize,
}

impl Cache {
    fn get(&mut self, key: &[u8; 32], now: Instant) -> Option<Decision> {
        match self.entries.get(key) {
            Some((d, until)) if *until > now => Some(d.clone()),
            Some(_) => {
                self.entries.remove(key);
                None
            }
            None => None,
        }
    }

    fn put(&mut self, key: [u8; 32], decision: Decision, until: Instant, now: Instant) {
        if self.capacity == 0 {
            return;
        }
        if self.entries.len() >= self.capacity && !self.entries.contains_key(&key) {
            self.entries.retain(|_, (_, u)| *u > now);
            if self.entries.len() >= self.capacity {
                // Still full of live entries: evict the one that expires first.
                if let Some(oldest) = self
                    .entries
                    .iter()
                    .min_by_key(|(_, (_, u))| *u)
                    .map(|(k, _)| *k)
                {
                    self.entries.remove(&oldest);
                }
            }
        }
        self.entries.insert(key, (decision, until));
    }

    fn len(&self) -> usize {
        self.entries.len()
    }
}

/// Counters of what the authoriser did (for metrics and tests).
#[derive(Debug, Default)]
pub struct AuthStats {
    /// Decisions answered from the cache.
    pub cache_hits: AtomicU64,
    /// TokenReviews sent to the API server.
    pub token_reviews: AtomicU64,
    /// SubjectAccessReviews sent to the API server.
    pub access_reviews: AtomicU64,
}

enum Mode {
    Kubernetes(kube::Client),
    /// Every request is allowed (local use only; logged as a warning at start).
    Disabled,
}

/// Decides requests; shared by the API's handlers through [`require`].
pub struct Authorizer {
    mode: Mode,
    options: AuthOptions,
    cache: std::sync::Mutex<Cache>,
    pub stats: AuthStats,
}

impl Authorizer {
    /// Reviews tokens and access with the API server `client` talks to (its identity needs
    /// `create` on `tokenreviews` and `subjectaccessreviews`: the `system:auth-delegator`
    /// ClusterRole).
    pub fn kubernetes(client: kube::Client, options: AuthOptions) -> Arc<Self> {
        Self::new(Mode::Kubernetes(client), options)
    }

    /// Lets every request through. For local use only: says so in the log.
    pub fn disabled() -> Arc<Self> {
        tracing::warn!(
            "API authentication is OFF: anyone who can reach the API port can read it and trigger discovery (local use only)"
        );
        Self::new(Mode::Disabled, AuthOptions::default())
    }

    fn new(mode: Mode, options: AuthOptions) -> Arc<Self> {
        let cache = Cache {
            entries: HashMap::new(),
            capacity: options.capacity,
        };
        Arc::new(Authorizer {
            mode,
            options,
            cache: std::sync::Mutex::new(cache),
            stats: AuthStats::default(),
        })
    }

    /// How many decisions are cached now.
    pub fn cached(&self) -> usize {
        self.cache.lock().map(|c| c.len()).unwrap_or(0)
    }

    /// The decision on a request with this bearer token (if any) for `verb` on `path`.
    pub async fn decide(&self, token: Option<&str>, verb: &str, path: &str) -> Decision {
        let client = match &self.mode {
            Mode::Disabled => {
                return Decision::Allowed {
                    user: "anonymous (auth disabled)".into(),
                };
            }
            Mode::Kubernetes(client) => client,
        };
        let Some(token) = token.filter(|t| !t.is_empty()) else {
            return Decision::Unauthenticated {
                reason: "no bearer token: send `Authorization: Bearer <token>`".into(),
            };
        };
        let key = cache_key(token, verb, path);
        let now = Instant::now();
        if let Some(d) = self.cache.lock().ok().and_then(|mut c| c.get(&key, now)) {
            self.stats.cache_hits.fetch_add(1, Ordering::Relaxed);
            return d;
        }
        let decision = self.review(client, token, verb, path).await;
        let ttl = match decision {
            Decision::Allowed { .. } => self.options.allow_ttl,
            Decision::Unauthenticated { .. } | Decision::Forbidden { .. } => self.options.deny_ttl,
            Decision::Unavailable { .. } => Duration::ZERO,
        };
        if !ttl.is_zero() {
            let now = Instant::now();
            if let Ok(mut c) = self.cache.lock() {
                c.put(key, decision.clone(), now + ttl, now);
            }
        }
        decision
    }

    async fn review(&self, client: &kube::Client, token: &str, verb: &str, path: &str) -> Decision {
        self.stats.token_reviews.fetch_add(1, Ordering::Relaxed);
        let review = TokenReview {
            spec: TokenReviewSpec {
                token: Some(token.to_string()),
                audiences: None,
            },
            ..Default::default()
        };
        let reviewed = match Api::<TokenReview>::all(client.clone())
            .create(&PostParams::default(), &review)
            .await
        {
            Ok(r) => r,
            // The error names the API call, never the token (it is in the body we sent).
            Err(e) => {
                tracing::warn!(error = %e, "TokenReview failed");
                return Decision::Unavailable {
                    reason: format!("cannot review the token with the Kubernetes API: {e}"),
                };
            }
        };
        let status = reviewed.status.unwrap_or_default();
        let user = status.user.unwrap_or_default();
        let username = user.username.clone().unwrap_or_default();
        if status.authenticated != Some(true) || username.is_empty() {
            let why = status
                .error
                .filter(|e| !e.is_empty())
                .unwrap_or_else(|| "the Kubernetes API did not authenticate the token".into());
            return Decision::Unauthenticated { reason: why };
        }
        self.stats.access_reviews.fetch_add(1, Ordering::Relaxed);
        let url = reviewed_path(path);
        let sar = SubjectAccessReview {
            spec: SubjectAccessReviewSpec {
                user: Some(username.clone()),
                groups: user.groups.clone(),
                uid: user.uid.clone(),
                extra: user.extra.clone(),
                non_resource_attributes: Some(NonResourceAttributes {
                    path: Some(url.clone()),
                    verb: Some(verb.to_string()),
                }),
                resource_attributes: None,
            },
            ..Default::default()
        };
        let answered = match Api::<SubjectAccessReview>::all(client.clone())
            .create(&PostParams::default(), &sar)
            .await
        {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, user = %username, "SubjectAccessReview failed");
                return Decision::Unavailable {
                    reason: format!("cannot review access with the Kubernetes API: {e}"),
                };
            }
        };
        let status = answered.status.unwrap_or_default();
        if status.allowed && status.denied != Some(true) {
            Decision::Allowed { user: username }
        } else {
            let mut reason = format!(
                "user {username:?} may not {verb} {path} (reviewed as non-resource URL {url})"
            );
            if let Some(r) = status.reason.filter(|r| !r.is_empty()) {
                reason.push_str(": ");
                reason.push_str(&r);
            }
            Decision::Forbidden {
                user: username,
                reason,
            }
        }
    }
}

/// The bearer token of a request, if it has one.
fn bearer(req: &Request) -> Option<&str> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// axum middleware: lets the request through only when [`Authorizer::decide`] allows it.
pub async fn require(State(auth): State<Arc<Authorizer>>, req: Request, next: Next) -> Response {
    let verb = verb_of(req.method());
    let path = req.uri().path().to_string();
    let decision = auth.decide(bearer(&req), verb, &path).await;
    match &decision {
        Decision::Allowed { user } => {
            tracing::debug!(%user, verb, %path, "API request allowed");
            next.run(req).await
        }
        Decision::Forbidden { user, .. } => {
            tracing::info!(%user, verb, %path, "API request forbidden");
            decision.response()
        }
        _ => decision.response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed(u: &str) -> Decision {
        Decision::Allowed { user: u.into() }
    }

    #[test]
    fn cache_is_bounded_and_expires() {
        let now = Instant::now();
        let later = now + Duration::from_secs(60);
        let mut c = Cache {
            entries: HashMap::new(),
            capacity: 2,
        };
        let (a, b, d) = (
            cache_key("a", "get", "/"),
            cache_key("b", "get", "/"),
            cache_key("d", "get", "/"),
        );
        c.put(a, allowed("a"), now + Duration::from_secs(5), now);
        c.put(b, allowed("b"), later, now);
        c.put(d, allowed("d"), later, now);
        assert_eq!(c.len(), 2, "capacity holds");
        assert_eq!(c.get(&a, now), None, "the entry expiring first was evicted");
        assert_eq!(c.get(&d, now), Some(allowed("d")));
        assert_eq!(c.get(&b, later + Duration::from_secs(1)), None, "expired");
        assert_eq!(c.len(), 1);
    }

    #[test]
    fn key_depends_on_token_verb_and_path_and_hides_the_token() {
        let k = cache_key("secret-token", "get", "/api/v1/toolsets");
        assert_ne!(k, cache_key("secret-token", "create", "/api/v1/toolsets"));
        assert_ne!(k, cache_key("secret-token", "get", "/api/v1/services"));
        assert_ne!(k, cache_key("other-token", "get", "/api/v1/toolsets"));
        assert!(!k.windows(6).any(|w| w == b"secret"));
    }

    #[test]
    fn verbs_follow_kube_rbac_proxy() {
        assert_eq!(verb_of(&Method::GET), "get");
        assert_eq!(verb_of(&Method::HEAD), "get");
        assert_eq!(verb_of(&Method::POST), "create");
        assert_eq!(verb_of(&Method::DELETE), "delete");
    }

    #[tokio::test]
    async fn disabled_allows_and_missing_token_is_401() {
        let off = Authorizer::disabled();
        assert!(matches!(
            off.decide(None, "get", "/").await,
            Decision::Allowed { .. }
        ));
        let d = Decision::Unauthenticated {
            reason: "no bearer token".into(),
        };
        let resp = d.response();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
        assert!(resp.headers().contains_key(header::WWW_AUTHENTICATE));
    }
}
