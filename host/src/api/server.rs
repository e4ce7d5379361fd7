//! The API's routes and handlers. They read the latest [`View`] the controller published (a
//! `watch` channel: reading never blocks or slows the controller) and, for `POST discover`,
//! ask the controller for a round through a channel and wait for its answer with a deadline.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use dynamic_toolset_core::overrides::Overrides;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot, watch};
use utoipa::{OpenApi, ToSchema};

use super::auth::{self, Authorizer};
use super::model::{DetectorView, ErrorBody, ServicePage, ServiceView, ToolsetView, View};
use super::query::ServiceQuery;

/// Largest request body (`POST /api/v1/overrides/validate`); larger: 413.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// A request taking longer is answered 408.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// How long `POST /api/v1/discover` waits for the round.
pub const DISCOVER_TIMEOUT: Duration = Duration::from_secs(45);

/// A request for a full relist + detection + probe round; answered when it is done.
/// Requests that arrive while one waits are served by the same round (the controller drains
/// them all before it starts).
pub type DiscoverRequest = oneshot::Sender<()>;

/// What the handlers share.
#[derive(Clone)]
pub struct ApiState {
    pub view: watch::Receiver<Arc<View>>,
    pub discover: Option<mpsc::Sender<DiscoverRequest>>,
}

fn error(status: StatusCode, code: &str, reason: impl Into<String>) -> Response {
    let body = ErrorBody {
        error: code.into(),
        reason: reason.into(),
    };
    (status, axum::Json(body)).into_response()
}

fn current(state: &ApiState) -> Arc<View> {
    state.view.borrow().clone()
}

/// The generated configuration, per toolset with its provenance; `?format=yaml`: exactly the
/// bytes of `toolsets.yaml`.
#[utoipa::path(get, path = "/api/v1/toolsets",
    params(("format" = Option<String>, Query, description = "`json` (default) or `yaml`")),
    responses((status = 200, body = [ToolsetView]), (status = 400, body = ErrorBody)))]
async fn toolsets(
    State(state): State<ApiState>,
    Query(q): Query<BTreeMap<String, String>>,
) -> Response {
    let view = current(&state);
    match q.get("format").map(String::as_str) {
        None | Some("json") => axum::Json(view.toolsets.clone()).into_response(),
        Some("yaml") => (
            [(header::CONTENT_TYPE, "application/yaml")],
            view.toolsets_yaml.clone(),
        )
            .into_response(),
        Some(other) => error(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!("query parameter `format`: {other:?} is not `json` or `yaml`"),
        ),
    }
}

/// One toolset (its name contains a slash: `/api/v1/toolsets/prometheus/metrics`).
#[utoipa::path(get, path = "/api/v1/toolsets/{name}",
    params(("name" = String, Path, description = "toolset name, e.g. prometheus/metrics")),
    responses((status = 200, body = ToolsetView), (status = 404, body = ErrorBody)))]
async fn toolset(State(state): State<ApiState>, Path(name): Path<String>) -> Response {
    let view = current(&state);
    match view.toolsets.iter().find(|t| t.name == name) {
        Some(t) => axum::Json(t.clone()).into_response(),
        None => error(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no toolset {name:?} in the generated configuration"),
        ),
    }
}

/// Every watched Service with each detector's verdict; filters and paging.
#[utoipa::path(get, path = "/api/v1/services",
    params(
        ("namespace" = Option<String>, Query),
        ("backend" = Option<String>, Query, description = "toolset (`prometheus/metrics`) or backend (`prometheus`)"),
        ("chosen" = Option<bool>, Query),
        ("limit" = Option<usize>, Query, description = "page size, 1 to 5000 (default 500)"),
        ("continue" = Option<String>, Query, description = "token from the previous page"),
    ),
    responses((status = 200, body = ServicePage), (status = 400, body = ErrorBody)))]
async fn services(
    State(state): State<ApiState>,
    Query(q): Query<BTreeMap<String, String>>,
) -> Response {
    match ServiceQuery::parse(&q) {
        Ok(query) => axum::Json(query.page(&current(&state).services)).into_response(),
        Err(e) => error(StatusCode::BAD_REQUEST, "bad_request", e.to_string()),
    }
}

/// One Service.
#[utoipa::path(get, path = "/api/v1/services/{namespace}/{name}",
    params(("namespace" = String, Path), ("name" = String, Path)),
    responses((status = 200, body = ServiceView), (status = 404, body = ErrorBody)))]
async fn service(
    State(state): State<ApiState>,
    Path((namespace, name)): Path<(String, String)>,
) -> Response {
    let view = current(&state);
    let found = view
        .services
        .binary_search_by(|s| (s.namespace.as_str(), s.name.as_str()).cmp(&(&namespace, &name)))
        .ok()
        .map(|i| view.services[i].clone());
    match found {
        Some(s) => axum::Json(s).into_response(),
        None => error(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no watched Service {namespace}/{name}"),
        ),
    }
}

/// The loaded detectors with live statistics.
#[utoipa::path(get, path = "/api/v1/detectors", responses((status = 200, body = [DetectorView])))]
async fn detectors(State(state): State<ApiState>) -> Response {
    axum::Json(current(&state).detectors.clone()).into_response()
}

/// What a discovery round changed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DiscoverResult {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub changed: Vec<String>,
    pub generated_at: Option<String>,
}

/// The toolsets `after` added, removed or changed against `before`.
pub fn diff(before: &View, after: &View) -> DiscoverResult {
    let index = |v: &View| -> BTreeMap<String, ToolsetView> {
        v.toolsets
            .iter()
            .map(|t| (t.name.clone(), t.clone()))
            .collect()
    };
    let (b, a) = (index(before), index(after));
    let names: BTreeSet<&String> = b.keys().chain(a.keys()).collect();
    let mut out = DiscoverResult {
        added: vec![],
        removed: vec![],
        changed: vec![],
        generated_at: after.generated_at.clone(),
    };
    for n in names {
        match (b.get(n), a.get(n)) {
            (None, Some(_)) => out.added.push(n.clone()),
            (Some(_), None) => out.removed.push(n.clone()),
            (Some(x), Some(y)) if x != y => out.changed.push(n.clone()),
            _ => {}
        }
    }
    out
}

/// A full relist + detection + probe round now; answers when it is done. Concurrent calls
/// share one round.
#[utoipa::path(post, path = "/api/v1/discover",
    responses((status = 200, body = DiscoverResult), (status = 503, body = ErrorBody), (status = 504, body = ErrorBody)))]
async fn discover(State(state): State<ApiState>) -> Response {
    let Some(tx) = &state.discover else {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "this server runs no controller",
        );
    };
    let before = current(&state);
    let (done_tx, done_rx) = oneshot::channel();
    if tx.send(done_tx).await.is_err() {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the controller loop has stopped",
        );
    }
    match tokio::time::timeout(DISCOVER_TIMEOUT, done_rx).await {
        Ok(Ok(())) => {
            let after = current(&state);
            axum::Json(diff(&before, &after)).into_response()
        }
        Ok(Err(_)) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the controller dropped the request (stopping?)",
        ),
        Err(_) => error(
            StatusCode::GATEWAY_TIMEOUT,
            "timeout",
            format!(
                "the round did not finish within {}s; it goes on in the background",
                DISCOVER_TIMEOUT.as_secs()
            ),
        ),
    }
}

/// The answer of `POST /api/v1/overrides/validate`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Validation {
    pub valid: bool,
    pub errors: Vec<ValidationError>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ValidationError {
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub message: String,
}

/// Validates an overrides.yaml body exactly as the controller does; never writes.
#[utoipa::path(post, path = "/api/v1/overrides/validate",
    request_body(content = String, content_type = "application/yaml"),
    responses((status = 200, body = Validation), (status = 413, description = "body over 1 MiB")))]
async fn validate(body: String) -> Response {
    let answer = match Overrides::parse(&body) {
        Ok(_) => Validation {
            valid: true,
            errors: vec![],
        },
        Err(e) => Validation {
            valid: false,
            errors: vec![ValidationError {
                line: e.line,
                column: e.column,
                message: e.message,
            }],
        },
    };
    axum::Json(answer).into_response()
}

/// The status page.
async fn page(State(state): State<ApiState>) -> Response {
    Html(super::page::render(&current(&state))).into_response()
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "dynamic-toolset API",
        description = "What was discovered for HolmesGPT, and why."
    ),
    paths(toolsets, toolset, services, service, detectors, discover, validate),
    components(schemas(View, DiscoverResult, Validation, ValidationError, ErrorBody))
)]
pub struct ApiDoc;

/// The OpenAPI 3.1 document, generated from the types and handlers above.
pub fn openapi_json() -> String {
    ApiDoc::openapi()
        .to_pretty_json()
        .unwrap_or_else(|e| format!("{{\"error\":\"openapi\",\"reason\":\"{e}\"}}"))
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], openapi_json()).into_response()
}

async fn not_found(uri: axum::http::Uri) -> Response {
    error(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("no such path: {}", uri.path()),
    )
}

/// The route a path belongs to, as a bounded metric label (never the raw path: names in it
/// come from the cluster).
pub fn route_label(path: &str) -> &'static str {
    match path {
        "/" => "/",
        "/openapi.json" => "/openapi.json",
        "/api/v1/toolsets" => "/api/v1/toolsets",
        "/api/v1/services" => "/api/v1/services",
        "/api/v1/detectors" => "/api/v1/detectors",
        "/api/v1/discover" => "/api/v1/discover",
        "/api/v1/services/discover" => "/api/v1/services/discover",
        "/api/v1/overrides/validate" => "/api/v1/overrides/validate",
        p if p.starts_with("/api/v1/toolsets/") => "/api/v1/toolsets/{name}",
        p if p.starts_with("/api/v1/services/") => "/api/v1/services/{namespace}/{name}",
        _ => "other",
    }
}

/// Counts and times every API request (after auth, so 401 and 403 count too).
async fn observe(
    State(metrics): State<Arc<crate::metrics::ControllerMetrics>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let route = route_label(req.uri().path());
    let method = req.method().as_str().to_string();
    let started = std::time::Instant::now();
    let resp = next.run(req).await;
    metrics
        .api_requests
        .with_label_values(&[route, &method, resp.status().as_str()])
        .inc();
    metrics
        .api_request_duration
        .with_label_values(&[route])
        .observe(started.elapsed().as_secs_f64());
    resp
}

/// [`router`] with every request counted and timed in `metrics`.
pub fn observed(router: Router, metrics: Arc<crate::metrics::ControllerMetrics>) -> Router {
    router.layer(axum::middleware::from_fn_with_state(metrics, observe))
}

/// The API router: every route behind `auth`, a JSON 404 for unknown paths, a body limit
/// (413) and a request timeout (408). Health and metrics are served elsewhere, unauthenticated.
pub fn router(state: ApiState, auth: Arc<Authorizer>) -> Router {
    Router::new()
        .route("/", get(page))
        .route("/openapi.json", get(openapi))
        .route("/api/v1/toolsets", get(toolsets))
        .route("/api/v1/toolsets/{*name}", get(toolset))
        .route("/api/v1/services", get(services))
        .route("/api/v1/services/{namespace}/{name}", get(service))
        .route("/api/v1/detectors", get(detectors))
        .route("/api/v1/discover", post(discover))
        .route("/api/v1/services/discover", post(discover))
        .route("/api/v1/overrides/validate", post(validate))
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(auth, auth::require))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
        .with_state(state)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::model::OverrideEffect;

    fn t(name: &str, url: &str) -> ToolsetView {
        ToolsetView {
            name: name.into(),
            enabled: true,
            config: serde_json::json!({"url": url}),
            override_effect: OverrideEffect::None,
            provenance: vec![],
        }
    }

    #[test]
    fn route_labels_are_bounded() {
        assert_eq!(
            route_label("/api/v1/toolsets/prometheus/metrics"),
            "/api/v1/toolsets/{name}"
        );
        assert_eq!(
            route_label("/api/v1/services/ns/x"),
            "/api/v1/services/{namespace}/{name}"
        );
        assert_eq!(
            route_label("/api/v1/services/discover"),
            "/api/v1/services/discover"
        );
        assert_eq!(route_label("/etc/passwd"), "other");
    }

    #[test]
    fn diff_names_added_removed_changed() {
        let before = View {
            toolsets: vec![t("a", "1"), t("b", "1"), t("c", "1")],
            ..View::default()
        };
        let after = View {
            toolsets: vec![t("b", "2"), t("c", "1"), t("d", "1")],
            ..View::default()
        };
        let d = diff(&before, &after);
        assert_eq!(d.added, ["d"]);
        assert_eq!(d.removed, ["a"]);
        assert_eq!(d.changed, ["b"]);
    }

    #[test]
    fn openapi_document_lists_every_route() {
        let doc: serde_json::Value = serde_json::from_str(&openapi_json()).unwrap();
        assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
        for p in [
            "/api/v1/toolsets",
            "/api/v1/toolsets/{name}",
            "/api/v1/services",
            "/api/v1/services/{namespace}/{name}",
            "/api/v1/detectors",
            "/api/v1/discover",
            "/api/v1/overrides/validate",
        ] {
            assert!(doc["paths"].get(p).is_some(), "{p} missing");
        }
        assert!(doc["components"]["schemas"].get("ServicePage").is_some());
    }
}
