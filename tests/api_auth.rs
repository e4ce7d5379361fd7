//! API authentication and authorisation on the real kube-apiserver: TokenReview with the
//! apiserver's static tokens, SubjectAccessReview on non-resource URLs through RBAC, over a
//! real HTTP server on loopback.
//!
//! The apiserver (kube-harness) knows two tokens: an admin in `system:masters` and an
//! unprivileged user `kube-harness-user` that RBAC grants nothing until a test binds it a
//! ClusterRole.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use dynamic_toolset::api::auth::{self, AuthOptions, Authorizer, Decision};
use k8s_openapi::api::authorization::v1::{
    NonResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::{Value, json};

async fn harness() -> &'static kube_harness::ApiServer {
    tokio::task::spawn_blocking(kube_harness::shared)
        .await
        .unwrap()
        .expect("kube-apiserver (run `cargo xtask kube build` once)")
}

/// The controller's identity: the admin kubeconfig (may create token and access reviews).
async fn client(server: &kube_harness::ApiServer) -> kube::Client {
    dynamic_toolset::controller::client(Some(server.kubeconfig_path()))
        .await
        .unwrap()
}

/// A loopback HTTP server with two API routes behind the auth middleware and an open
/// `/healthz`, as the API module lays them out.
async fn serve(auth: Arc<Authorizer>) -> String {
    let api = Router::new()
        .route("/api/v1/toolsets", get(|| async { "toolsets" }))
        .route("/api/v1/discover", post(|| async { "discovered" }))
        .route_layer(axum::middleware::from_fn_with_state(auth, auth::require));
    let app = Router::new()
        .merge(api)
        .route("/healthz", get(|| async { "ok" }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    format!("http://{addr}")
}

async fn call(
    method: reqwest::Method,
    url: &str,
    token: Option<&str>,
) -> (reqwest::StatusCode, String, Option<String>) {
    let mut req = reqwest::Client::new().request(method, url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let www = resp
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    (status, resp.text().await.unwrap(), www)
}

fn reason(body: &str) -> (String, String) {
    let v: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"));
    (
        v["error"].as_str().unwrap().to_string(),
        v["reason"].as_str().unwrap().to_string(),
    )
}

/// Grants `kube-harness-user` `verbs` on `urls` through an ordinary ClusterRole.
async fn grant(client: &kube::Client, name: &str, urls: &[&str], verbs: &[&str]) {
    let pp = PatchParams::apply("api-auth-test").force();
    let roles: Api<ClusterRole> = Api::all(client.clone());
    let role = json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": name},
        "rules": [{"nonResourceURLs": urls, "verbs": verbs}],
    });
    roles.patch(name, &pp, &Patch::Apply(&role)).await.unwrap();
    let bindings: Api<ClusterRoleBinding> = Api::all(client.clone());
    let binding = json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User",
                      "name": kube_harness::UNPRIVILEGED_USER}],
    });
    bindings
        .patch(name, &pp, &Patch::Apply(&binding))
        .await
        .unwrap();
    // The API server's RBAC authorizer learns of the binding through its informers, a
    // little later on a busy machine: wait until it answers yes before going on.
    let path = urls[0].replace('*', "api/v1/toolsets");
    let reviews: Api<SubjectAccessReview> = Api::all(client.clone());
    let review = SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: Some(kube_harness::UNPRIVILEGED_USER.to_string()),
            non_resource_attributes: Some(NonResourceAttributes {
                path: Some(path.clone()),
                verb: Some(verbs[0].to_string()),
            }),
            ..Default::default()
        },
        ..Default::default()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let answer = reviews
            .create(&PostParams::default(), &review)
            .await
            .unwrap();
        if answer.status.is_some_and(|s| s.allowed) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "grant {name} ({} {path}) not in effect after 20 s",
            verbs[0]
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_reviewed_and_paths_authorised_through_rbac() {
    let server = harness().await;
    let client = client(server).await;
    // Denials not cached, so the grant below takes effect at once.
    let auth = Authorizer::kubernetes(
        client.clone(),
        AuthOptions {
            deny_ttl: Duration::ZERO,
            ..AuthOptions::default()
        },
    );
    let base = serve(auth.clone()).await;
    let toolsets = format!("{base}/api/v1/toolsets");
    let discover = format!("{base}/api/v1/discover");

    // No token: 401 with a reason and a Bearer challenge.
    let (status, body, www) = call(reqwest::Method::GET, &toolsets, None).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(reason(&body).0, "unauthorized");
    assert!(www.unwrap().starts_with("Bearer"));

    // A token the apiserver does not know: 401, and the token is not echoed.
    let bogus = "not-a-real-token-0123456789";
    let (status, body, _) = call(reqwest::Method::GET, &toolsets, Some(bogus)).await;
    assert_eq!(status, 401, "{body}");
    assert!(!body.contains(bogus), "{body}");

    // A valid token without RBAC: 403 naming the user, the verb and the path.
    let user = server.user_token();
    let (status, body, _) = call(reqwest::Method::GET, &toolsets, Some(user)).await;
    assert_eq!(status, 403, "{body}");
    let (error, why) = reason(&body);
    assert_eq!(error, "forbidden");
    assert!(
        why.contains(kube_harness::UNPRIVILEGED_USER)
            && why.contains("get")
            && why.contains("/api/v1/toolsets"),
        "{why}"
    );
    assert!(!body.contains(user), "{body}");

    // The admin (system:masters) may do anything.
    let admin = server.admin_token();
    let (status, body, _) = call(reqwest::Method::GET, &toolsets, Some(admin)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, "toolsets");
    let (status, _, _) = call(reqwest::Method::POST, &discover, Some(admin)).await;
    assert_eq!(status, 200);

    // Why the reviewed URL has a prefix: Kubernetes' default `system:discovery` role lets
    // every authenticated identity `get /api/*`, so the bare path would let this user in.
    let (status, body, _) = call(reqwest::Method::GET, &toolsets, Some(user)).await;
    assert_eq!(status, 403, "{body}");
    assert!(
        reason(&body).1.contains("/dynamic-toolset/api/v1/toolsets"),
        "{body}"
    );
    grant(
        &client,
        "api-auth-test-bare",
        &["/api/v1/*"],
        &["get", "create"],
    )
    .await;
    let (status, body, _) = call(reqwest::Method::GET, &toolsets, Some(user)).await;
    assert_eq!(
        status, 403,
        "a grant on the bare path is not a grant: {body}"
    );

    // An ordinary ClusterRole grants reads of the API to the user; POST needs `create`.
    grant(
        &client,
        "api-auth-test-read",
        &["/dynamic-toolset/*"],
        &["get"],
    )
    .await;
    let (status, body, _) = call(reqwest::Method::GET, &toolsets, Some(user)).await;
    assert_eq!(status, 200, "{body}");
    let (status, body, _) = call(reqwest::Method::POST, &discover, Some(user)).await;
    assert_eq!(status, 403, "{body}");
    assert!(reason(&body).1.contains("create"), "{body}");
    grant(
        &client,
        "api-auth-test-write",
        &["/dynamic-toolset/api/v1/discover"],
        &["create"],
    )
    .await;
    let (status, body, _) = call(reqwest::Method::POST, &discover, Some(user)).await;
    assert_eq!(status, 200, "{body}");

    // Unauthenticated paths stay open.
    let (status, _, _) = call(reqwest::Method::GET, &format!("{base}/healthz"), None).await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decisions_are_cached_briefly_and_failures_are_not() {
    let server = harness().await;
    let client = client(server).await;
    let auth = Authorizer::kubernetes(
        client,
        AuthOptions {
            allow_ttl: Duration::from_millis(800),
            ..AuthOptions::default()
        },
    );
    let admin = server.admin_token();
    let first = auth.decide(Some(admin), "get", "/api/v1/services").await;
    assert!(matches!(first, Decision::Allowed { .. }), "{first:?}");
    let reviews = auth.stats.token_reviews.load(Ordering::Relaxed);
    assert_eq!(reviews, 1);
    // Again: from the cache, no review.
    for _ in 0..5 {
        let again = auth.decide(Some(admin), "get", "/api/v1/services").await;
        assert_eq!(again, first);
    }
    assert_eq!(auth.stats.token_reviews.load(Ordering::Relaxed), 1);
    assert_eq!(auth.stats.cache_hits.load(Ordering::Relaxed), 5);
    // Another path is another decision.
    auth.decide(Some(admin), "get", "/api/v1/detectors").await;
    assert_eq!(auth.stats.token_reviews.load(Ordering::Relaxed), 2);
    // After the TTL the decision is reviewed again.
    tokio::time::sleep(Duration::from_millis(900)).await;
    auth.decide(Some(admin), "get", "/api/v1/services").await;
    assert_eq!(auth.stats.token_reviews.load(Ordering::Relaxed), 3);

    // An API server that cannot be reached: 503, and not cached.
    let dead =
        kube::Client::try_from(kube::Config::new("https://127.0.0.1:1".parse().unwrap())).unwrap();
    let auth = Authorizer::kubernetes(dead, AuthOptions::default());
    for _ in 0..2 {
        let d = auth.decide(Some("some-token"), "get", "/").await;
        assert!(matches!(d, Decision::Unavailable { .. }), "{d:?}");
    }
    assert_eq!(auth.stats.token_reviews.load(Ordering::Relaxed), 2);
    assert_eq!(auth.cached(), 0);
}
