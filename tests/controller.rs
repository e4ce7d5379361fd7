//! The controller against a real kube-apiserver (`kube-harness`, build it once with
//! `cargo xtask kube build`): Services created like Helm charts render them, health
//! endpoints served on loopback (the Service port is the local server's port and probes
//! resolve `<svc>.<ns>.svc.cluster.local` to 127.0.0.1). Each test has its own namespace
//! (and the controller only watches that one); the restart test has its own API server.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use dynamic_toolset::controller::{self, ControllerOptions, Handle, LeaderOptions, Status};
use dynamic_toolset_core::render::{DISCOVERY_KEY, OVERRIDES_EXAMPLE, OVERRIDES_KEY, TOOLSETS_KEY};
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

#[path = "common/cluster.rs"]
mod cluster;
use cluster::*;

/// Fast settings: debounce 50 ms, health every 300 ms, removal after 3 failed rounds.
fn options(ns: &str) -> ControllerOptions {
    controller_options(
        ns,
        "controller-test",
        Duration::from_secs(60),
        Some(ms(300)),
    )
}

/// How long any expected change may take (the target is well under a second).
const WAIT: Duration = Duration::from_secs(10);

fn leader(ns: &str, identity: &str) -> LeaderOptions {
    LeaderOptions {
        lease_name: "dynamic-toolset-leader".into(),
        lease_namespace: ns.into(),
        // Renewed every 2 s, 2 s before expiry: no flapping on a loaded machine.
        lease_duration: Duration::from_secs(4),
        renew_deadline: Duration::from_secs(2),
        retry_period: ms(200),
        identity: identity.into(),
    }
}

async fn get_cm(api: &Api<ConfigMap>) -> Option<ConfigMap> {
    api.get_opt(CM).await.unwrap()
}

fn data(cm: &ConfigMap) -> BTreeMap<String, String> {
    cm.data.clone().unwrap_or_default()
}

/// The `toolsets:` map of the ConfigMap's `toolsets.yaml`.
fn toolsets(cm: &ConfigMap) -> serde_json::Map<String, Value> {
    let text = data(cm).get(TOOLSETS_KEY).cloned().unwrap_or_default();
    let doc: Value = serde_yaml::from_str(&text).unwrap_or(Value::Null);
    doc.get("toolsets")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default()
}

/// The entry of an enabled toolset (None: absent or `enabled: false`).
fn enabled(cm: &ConfigMap, name: &str) -> Option<Value> {
    toolsets(cm)
        .get(name)
        .filter(|t| t.get("enabled") != Some(&Value::Bool(false)))
        .cloned()
}

fn prometheus_url(cm: &ConfigMap) -> Option<String> {
    enabled(cm, "prometheus/metrics")?
        .pointer("/config/prometheus_url")?
        .as_str()
        .map(str::to_string)
}

/// Waits until the ConfigMap satisfies `pred`, returning it.
async fn wait_cm(api: &Api<ConfigMap>, what: &str, pred: impl Fn(&ConfigMap) -> bool) -> ConfigMap {
    wait_for(what, WAIT, async || get_cm(api).await.filter(|c| pred(c))).await
}

fn status(h: &Handle) -> Status {
    h.status()
}

async fn wait_status(h: &Handle, what: &str, pred: impl Fn(&Status) -> bool) -> Status {
    wait_for(what, WAIT, async || Some(status(h)).filter(|s| pred(s))).await
}

/// Sets data keys of the ConfigMap (a merge patch, as `kubectl edit` would).
async fn patch_data(api: &Api<ConfigMap>, keys: Value) {
    api.patch(
        CM,
        &PatchParams::default(),
        &Patch::Merge(json!({ "data": keys })),
    )
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configmap_follows_services_created_changed_and_deleted() {
    init_logs();
    let ns = "ctl-follow";
    let client = shared_client().await;
    namespace(&client, ns).await;
    let (b1, b2, g) = (
        Backend::start().await,
        Backend::start().await,
        Backend::start().await,
    );
    let h = controller::start(client.clone(), options(ns), detectors());
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), ns);

    // Nothing discovered yet: the ConfigMap is created with the always-on part and the
    // overrides example.
    let cm = wait_cm(&cms, "the ConfigMap", |_| true).await;
    assert_eq!(data(&cm)[OVERRIDES_KEY], OVERRIDES_EXAMPLE);
    assert!(data(&cm).contains_key(DISCOVERY_KEY));
    assert!(enabled(&cm, "prometheus/metrics").is_none());
    let labels = cm.metadata.labels.clone().unwrap_or_default();
    assert_eq!(
        labels
            .get("app.kubernetes.io/managed-by")
            .map(String::as_str),
        Some("dynamic-toolset")
    );

    // Created.
    apply_service(&client, &prometheus(ns, b1.port)).await;
    let want = format!("http://{}:{}", fqdn(PROM, ns), b1.port);
    let cm = wait_cm(&cms, "prometheus published", |c| {
        prometheus_url(c).as_deref() == Some(want.as_str())
    })
    .await;
    let discovery: Value = serde_json::from_str(&data(&cm)[DISCOVERY_KEY]).unwrap();
    assert!(
        discovery.to_string().contains(PROM),
        "discovery.json names the Service: {discovery}"
    );
    apply_service(&client, &grafana(ns, g.port)).await;
    let cm = wait_cm(&cms, "grafana published", |c| {
        enabled(c, "grafana/dashboards").is_some()
    })
    .await;
    assert!(
        enabled(&cm, "prometheus/metrics").is_some(),
        "prometheus kept"
    );

    // Changed: the port moves to another (healthy) server.
    apply_service(&client, &prometheus(ns, b2.port)).await;
    let want = format!("http://{}:{}", fqdn(PROM, ns), b2.port);
    wait_cm(&cms, "prometheus URL follows the port", |c| {
        prometheus_url(c).as_deref() == Some(want.as_str())
    })
    .await;

    // Deleted.
    let svcs: Api<Service> = Api::namespaced(client.clone(), ns);
    svcs.delete(GRAFANA, &DeleteParams::default())
        .await
        .unwrap();
    let cm = wait_cm(&cms, "grafana removed", |c| {
        enabled(c, "grafana/dashboards").is_none()
    })
    .await;
    assert!(enabled(&cm, "prometheus/metrics").is_some());
    assert_eq!(data(&cm)[OVERRIDES_KEY], OVERRIDES_EXAMPLE);
    let s = status(&h);
    assert!(s.synced && s.leader, "{s:?}");
    assert_eq!(s.write_failures, 0, "{s:?}");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_hysteresis_removes_after_threshold_and_restores_after_one_pass() {
    init_logs();
    let ns = "ctl-health";
    let client = shared_client().await;
    namespace(&client, ns).await;
    let prom = Backend::start().await;
    let graf = Backend::start().await;
    // A new installation must pass once: Grafana starts unhealthy.
    graf.set(503);
    let h = controller::start(client.clone(), options(ns), detectors());
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    apply_service(&client, &prometheus(ns, prom.port)).await;
    apply_service(&client, &grafana(ns, graf.port)).await;
    wait_cm(&cms, "prometheus published", |c| {
        enabled(c, "prometheus/metrics").is_some()
    })
    .await;
    wait_for("grafana failing 3 probes", WAIT, async || {
        (graf.failed() >= 3).then_some(())
    })
    .await;
    let cm = get_cm(&cms).await.unwrap();
    assert!(
        enabled(&cm, "grafana/dashboards").is_none(),
        "never passed a probe: not published"
    );
    graf.set(200);
    wait_cm(&cms, "grafana published after its first pass", |c| {
        enabled(c, "grafana/dashboards").is_some()
    })
    .await;

    // Prometheus turns unhealthy: kept while fewer than 3 rounds failed.
    let failed_before = prom.failed();
    prom.set(503);
    let removed_after = wait_for("prometheus removed", WAIT, async || {
        // ConfigMap first, then the count: a removal seen here happened after the
        // failures counted next.
        let cm = get_cm(&cms).await?;
        let failures = prom.failed() - failed_before;
        if enabled(&cm, "prometheus/metrics").is_some() {
            return None;
        }
        Some(failures)
    })
    .await;
    assert!(
        removed_after >= 3,
        "removed after {removed_after} failed rounds (threshold 3)"
    );
    let cm = get_cm(&cms).await.unwrap();
    let discovery = &data(&cm)[DISCOVERY_KEY];
    assert!(
        discovery.contains("503"),
        "discovery.json says why: {discovery}"
    );
    assert!(enabled(&cm, "grafana/dashboards").is_some());

    // One passing round brings it back.
    let ok_before = prom.ok();
    prom.set(200);
    wait_cm(&cms, "prometheus back", |c| {
        enabled(c, "prometheus/metrics").is_some()
    })
    .await;
    assert!(prom.ok() > ok_before);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configmap_recreated_and_generated_keys_restored_admin_keys_kept() {
    init_logs();
    let ns = "ctl-reconcile";
    let client = shared_client().await;
    namespace(&client, ns).await;
    let prom = Backend::start().await;
    let graf = Backend::start().await;
    apply_service(&client, &prometheus(ns, prom.port)).await;
    let h = controller::start(client.clone(), options(ns), detectors());
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    let good = wait_cm(&cms, "prometheus published", |c| {
        enabled(c, "prometheus/metrics").is_some()
    })
    .await;
    let good_toolsets = data(&good)[TOOLSETS_KEY].clone();

    // An admin adds a key and writes overrides; then edits the generated file by hand.
    let overrides = "# mine\ntoolsets:\n  grafana/dashboards:\n    enabled: false\n";
    patch_data(
        &cms,
        json!({"notes.txt": "admin notes", OVERRIDES_KEY: overrides}),
    )
    .await;
    patch_data(&cms, json!({TOOLSETS_KEY: "toolsets: {}\n"})).await;
    let cm = wait_cm(&cms, "toolsets.yaml restored", |c| {
        enabled(c, "prometheus/metrics").is_some()
    })
    .await;
    let d = data(&cm);
    assert_eq!(d["notes.txt"], "admin notes");
    assert_eq!(d[OVERRIDES_KEY], overrides);
    assert!(d[TOOLSETS_KEY].contains("prometheus/metrics"));

    // Deleted → recreated, with the admin's last overrides (not the example): the
    // switched-off toolset stays off.
    apply_service(&client, &grafana(ns, graf.port)).await;
    let with_grafana = wait_cm(&cms, "grafana discovered, kept off by the override", |c| {
        data(c)[DISCOVERY_KEY].contains(&format!("{ns}/{GRAFANA}"))
            && enabled(c, "grafana/dashboards").is_none()
    })
    .await;
    cms.delete(CM, &DeleteParams::default()).await.unwrap();
    let cm = wait_cm(&cms, "ConfigMap recreated", |c| {
        c.metadata.uid != good.metadata.uid
    })
    .await;
    let d = data(&cm);
    assert_eq!(d[OVERRIDES_KEY], overrides, "the admin's overrides survive");
    assert_eq!(d[TOOLSETS_KEY], data(&with_grafana)[TOOLSETS_KEY]);
    assert!(enabled(&cm, "grafana/dashboards").is_none(), "still off");
    assert!(enabled(&cm, "prometheus/metrics").is_some());
    assert!(!d.contains_key("notes.txt"));
    assert_ne!(d[TOOLSETS_KEY], good_toolsets);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overrides_merged_at_once_and_invalid_ones_keep_last_good_with_event() {
    init_logs();
    let ns = "ctl-overrides";
    let client = shared_client().await;
    namespace(&client, ns).await;
    let prom = Backend::start().await;
    apply_service(&client, &prometheus(ns, prom.port)).await;
    let h = controller::start(client.clone(), options(ns), detectors());
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    wait_cm(&cms, "prometheus published", |c| {
        enabled(c, "prometheus/metrics").is_some()
    })
    .await;

    patch_data(
        &cms,
        json!({OVERRIDES_KEY: "toolsets:\n  prometheus/metrics:\n    enabled: false\n"}),
    )
    .await;
    let off = wait_cm(&cms, "prometheus switched off by override", |c| {
        toolsets(c).contains_key("prometheus/metrics") && enabled(c, "prometheus/metrics").is_none()
    })
    .await;
    let last_good = data(&off)[TOOLSETS_KEY].clone();

    let invalid = "toolsets:\n  - not a map\n";
    patch_data(&cms, json!({OVERRIDES_KEY: invalid})).await;
    let event = wait_for("an InvalidOverrides Event", WAIT, async || {
        events_with_reason(&client, ns, "InvalidOverrides")
            .await
            .into_iter()
            .next()
    })
    .await;
    let regarding = event.regarding.clone().unwrap();
    assert_eq!(regarding.kind.as_deref(), Some("ConfigMap"));
    assert_eq!(regarding.name.as_deref(), Some(CM));
    assert_eq!(event.type_.as_deref(), Some("Warning"));
    assert!(
        event.note.clone().unwrap_or_default().contains(CM),
        "{event:?}"
    );
    let s = wait_status(&h, "invalid overrides counted", |s| {
        s.invalid_overrides >= 1
    })
    .await;
    assert!(s.last_error.unwrap_or_default().contains(OVERRIDES_KEY));
    let cm = get_cm(&cms).await.unwrap();
    assert_eq!(data(&cm)[TOOLSETS_KEY], last_good, "last good output kept");
    assert_eq!(
        data(&cm)[OVERRIDES_KEY],
        invalid,
        "the admin's text untouched"
    );
    // A second, different error raises its own Event with its own message.
    let first_note = event.note.clone().unwrap_or_default();
    let invalid2 = "toolsets:\n  grafana/dashboards:\n    enable: false\n";
    patch_data(&cms, json!({OVERRIDES_KEY: invalid2})).await;
    let second = wait_for("a second InvalidOverrides Event", WAIT, async || {
        events_with_reason(&client, ns, "InvalidOverrides")
            .await
            .into_iter()
            .find(|e| e.note.as_deref() != Some(first_note.as_str()))
    })
    .await;
    let note = second.note.unwrap_or_default();
    assert!(note.contains("enable"), "the current error: {note}");
    assert_ne!(note, first_note);

    // Fixed → merged again.
    patch_data(&cms, json!({OVERRIDES_KEY: "toolsets: {}\n"})).await;
    wait_cm(&cms, "prometheus back on", |c| {
        enabled(c, "prometheus/metrics").is_some()
    })
    .await;
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_election_one_writer_and_takeover() {
    init_logs();
    let ns = "ctl-leader";
    let client = shared_client().await;
    namespace(&client, ns).await;
    let prom = Backend::start().await;
    let graf = Backend::start().await;
    apply_service(&client, &prometheus(ns, prom.port)).await;
    let start = |id: &str| {
        let mut o = options(ns);
        o.leader = Some(leader(ns, id));
        o.reporter = id.into();
        controller::start(client.clone(), o, detectors())
    };
    let a = start("a");
    let b = start("b");
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    wait_cm(&cms, "prometheus published", |c| {
        enabled(c, "prometheus/metrics").is_some()
    })
    .await;
    let (sa, sb) = (status(&a), status(&b));
    assert!(sa.leader ^ sb.leader, "exactly one leader: {sa:?} {sb:?}");
    let (leader, follower) = if sa.leader { (a, b) } else { (b, a) };
    // Both synced (the follower's cache is warm), only the leader wrote.
    wait_status(&follower, "follower synced", |s| {
        s.synced && s.services == 1
    })
    .await;
    apply_service(&client, &grafana(ns, graf.port)).await;
    wait_cm(&cms, "grafana published", |c| {
        enabled(c, "grafana/dashboards").is_some()
    })
    .await;
    // The write is visible in the API a moment before the writer's counter moves.
    let sl = wait_status(&leader, "leader counted its writes", |s| {
        s.writes >= 2 && s.leader
    })
    .await;
    let sf = status(&follower);
    assert!(
        sf.writes == 0 && !sf.leader,
        "leader {sl:?}, follower {sf:?}"
    );

    // The leader stops (releasing the lease): the follower takes over.
    leader.stop().await;
    wait_status(&follower, "follower leads", |s| s.leader).await;
    let svcs: Api<Service> = Api::namespaced(client.clone(), ns);
    svcs.delete(GRAFANA, &DeleteParams::default())
        .await
        .unwrap();
    wait_cm(&cms, "new leader writes", |c| {
        enabled(c, "grafana/dashboards").is_none()
    })
    .await;
    wait_status(&follower, "new leader counted its write", |s| s.writes >= 1).await;

    // A crash (no release): a third instance takes over once the lease expires.
    let c = start("c");
    wait_status(&c, "third instance synced", |s| s.synced).await;
    assert!(!status(&c).leader);
    let crashed_at = Instant::now();
    follower.abort();
    wait_status(&c, "takeover after lease expiry", |s| s.leader).await;
    let took = crashed_at.elapsed();
    apply_service(&client, &grafana(ns, graf.port)).await;
    wait_cm(&cms, "third instance writes", |c| {
        enabled(c, "grafana/dashboards").is_some()
    })
    .await;
    wait_status(&c, "third instance counted its write", |s| s.writes >= 1).await;
    eprintln!("takeover after crash: {took:?} (lease 4 s)");
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_server_restart_no_wrong_write_then_recovery() {
    init_logs();
    let ns = "ctl-restart";
    let mut server = tokio::task::spawn_blocking(kube_harness::ApiServer::start)
        .await
        .unwrap()
        .expect("kube-apiserver (run `cargo xtask kube build` once)");
    let client = controller::client(Some(server.kubeconfig_path()))
        .await
        .unwrap();
    namespace(&client, ns).await;
    let prom = Backend::start().await;
    let graf = Backend::start().await;
    apply_service(&client, &prometheus(ns, prom.port)).await;
    let mut o = options(ns);
    o.leader = Some(leader(ns, "only"));
    let h = controller::start(client.clone(), o, detectors());
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    let before = wait_cm(&cms, "prometheus published", |c| {
        enabled(c, "prometheus/metrics").is_some()
    })
    .await;

    let mut server = tokio::task::spawn_blocking(move || {
        server.stop_apiserver();
        server
    })
    .await
    .unwrap();
    // Several health rounds and a lease expiry while the API server is away.
    let rounds = status(&h).probe_rounds;
    wait_status(&h, "health rounds during the outage", |s| {
        s.probe_rounds >= rounds + 8
    })
    .await;
    let server = tokio::task::spawn_blocking(move || {
        server.start_apiserver().unwrap();
        server
    })
    .await
    .unwrap();

    // Back: the ConfigMap was never wiped, and nothing needed writing.
    let after = wait_for("the API server answers", WAIT, async || {
        cms.get_opt(CM).await.ok().flatten()
    })
    .await;
    assert_eq!(data(&after), data(&before), "content unchanged");
    // Recovery: a change made now is picked up.
    apply_service(&client, &grafana(ns, graf.port)).await;
    let cm = wait_for(
        "grafana published after the restart",
        Duration::from_secs(30),
        async || {
            get_cm(&cms)
                .await
                .filter(|c| enabled(c, "grafana/dashboards").is_some())
        },
    )
    .await;
    assert!(enabled(&cm, "prometheus/metrics").is_some());
    h.stop().await;
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cold_start_with_up_to_date_configmap_writes_nothing() {
    init_logs();
    let ns = "ctl-cold";
    let client = shared_client().await;
    namespace(&client, ns).await;
    let prom = Backend::start().await;
    let graf = Backend::start().await;
    apply_service(&client, &prometheus(ns, prom.port)).await;
    apply_service(&client, &grafana(ns, graf.port)).await;
    let first = controller::start(client.clone(), options(ns), detectors());
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    let cm = wait_cm(&cms, "both published", |c| {
        enabled(c, "prometheus/metrics").is_some() && enabled(c, "grafana/dashboards").is_some()
    })
    .await;
    first.stop().await;
    let rv = cm.metadata.resource_version.clone();

    // Full resyncs (relists) every 400 ms: none of them may cause a write either.
    let mut o = options(ns);
    o.discovery_interval = ms(400);
    let second = controller::start(client.clone(), o, detectors());
    // Synced, probed everything, a few health rounds and relists more.
    wait_status(&second, "several probe rounds and relists", |s| {
        s.synced && s.probe_rounds >= 4 && s.discovery_passes >= 4
    })
    .await;
    let s = status(&second);
    assert_eq!(s.writes, 0, "{s:?}");
    assert_eq!(s.toolsets, status_toolsets(&cm), "{s:?}");
    let now = get_cm(&cms).await.unwrap();
    assert_eq!(now.metadata.resource_version, rv, "no write");
    second.stop().await;
}

fn status_toolsets(cm: &ConfigMap) -> usize {
    let discovery: Value = serde_json::from_str(&data(cm)[DISCOVERY_KEY]).unwrap();
    discovery["toolsets"].as_object().map_or(0, |m| m.len())
}

/// A controller that may not list Services never syncs, so it never touches the
/// ConfigMap (an empty cache must not wipe it); once it may, it syncs and publishes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn never_publishes_before_the_initial_list() {
    init_logs();
    let ns = "ctl-sync";
    let server = tokio::task::spawn_blocking(kube_harness::shared)
        .await
        .unwrap()
        .unwrap();
    let admin = controller::client(Some(server.kubeconfig_path()))
        .await
        .unwrap();
    namespace(&admin, ns).await;
    let prom = Backend::start().await;
    apply_service(&admin, &prometheus(ns, prom.port)).await;
    let cms: Api<ConfigMap> = Api::namespaced(admin.clone(), ns);
    let existing: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": CM},
        "data": {TOOLSETS_KEY: "toolsets:\n  kept: {enabled: true}\n", OVERRIDES_KEY: "{}\n"},
    }))
    .unwrap();
    let existing = cms.create(&PostParams::default(), &existing).await.unwrap();

    // The unprivileged user may manage the ConfigMap and Events here, but not list Services.
    let user = kube_harness::UNPRIVILEGED_USER;
    let role: Role = serde_json::from_value(json!({
        "metadata": {"name": "dynamic-toolset", "namespace": ns},
        "rules": [
            {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list", "watch", "create", "update", "patch"]},
            {"apiGroups": ["events.k8s.io"], "resources": ["events"], "verbs": ["create", "patch"]},
        ],
    }))
    .unwrap();
    let binding: RoleBinding = serde_json::from_value(json!({
        "metadata": {"name": "dynamic-toolset", "namespace": ns},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "dynamic-toolset"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}],
    }))
    .unwrap();
    Api::<Role>::namespaced(admin.clone(), ns)
        .create(&PostParams::default(), &role)
        .await
        .unwrap();
    Api::<RoleBinding>::namespaced(admin.clone(), ns)
        .create(&PostParams::default(), &binding)
        .await
        .unwrap();
    let restricted = controller::client(Some(server.user_kubeconfig_path()))
        .await
        .unwrap();
    let h = controller::start(restricted, options(ns), detectors());

    // Let the Service watch fail for a while: nothing is written meanwhile.
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        let s = status(&h);
        assert!(!s.synced && s.writes == 0, "{s:?}");
        tokio::time::sleep(ms(100)).await;
    }
    let cm = get_cm(&cms).await.unwrap();
    assert_eq!(
        cm.metadata.resource_version, existing.metadata.resource_version,
        "untouched before the initial list"
    );

    // Allowed to list Services now: the watcher's retry syncs and publishes.
    let cluster_role: ClusterRole = serde_json::from_value(json!({
        "metadata": {"name": "ctl-sync-services"},
        "rules": [{"apiGroups": [""], "resources": ["services"], "verbs": ["get", "list", "watch"]}],
    }))
    .unwrap();
    let cluster_binding: ClusterRoleBinding = serde_json::from_value(json!({
        "metadata": {"name": "ctl-sync-services"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "ctl-sync-services"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}],
    }))
    .unwrap();
    Api::<ClusterRole>::all(admin.clone())
        .create(&PostParams::default(), &cluster_role)
        .await
        .unwrap();
    Api::<ClusterRoleBinding>::all(admin.clone())
        .create(&PostParams::default(), &cluster_binding)
        .await
        .unwrap();
    let cm = wait_for(
        "published after sync",
        Duration::from_secs(60),
        async || {
            get_cm(&cms)
                .await
                .filter(|c| enabled(c, "prometheus/metrics").is_some())
        },
    )
    .await;
    assert_eq!(
        data(&cm)[OVERRIDES_KEY],
        "{}\n",
        "the admin's overrides kept"
    );
    h.stop().await;
}

fn data_bytes(cm: &ConfigMap) -> usize {
    data(cm).iter().map(|(k, v)| k.len() + v.len()).sum()
}

/// A configuration that would take the ConfigMap over its size budget is not written:
/// the last good content stays, a Warning Event names what is large, the status (and so
/// readiness and the stale metric) says stale; once room is made it converges.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_configuration_is_refused_and_last_good_kept() {
    init_logs();
    let ns = "ctl-oversize";
    let client = shared_client().await;
    namespace(&client, ns).await;
    let (prom, graf) = (Backend::start().await, Backend::start().await);
    apply_service(&client, &prometheus(ns, prom.port)).await;
    let h = controller::start(client.clone(), options(ns), detectors());
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    let good = wait_cm(&cms, "prometheus published", |c| {
        enabled(c, "prometheus/metrics").is_some()
    })
    .await;
    // An admin key fills the budget to 100 bytes short of the limit.
    let budget = 900 * 1024;
    let filler = "x".repeat(budget - 100 - data_bytes(&good) - "notes.txt".len());
    patch_data(&cms, json!({"notes.txt": filler})).await;
    wait_cm(&cms, "notes stored", |c| data(c).contains_key("notes.txt")).await;
    let before = get_cm(&cms).await.unwrap();

    // Grafana adds far more than 100 bytes: refused.
    apply_service(&client, &grafana(ns, graf.port)).await;
    let s = wait_status(&h, "write refused as too large", |s| s.refused_writes >= 1).await;
    let stale = s.stale.clone().unwrap_or_default();
    assert!(stale.contains("budget"), "{s:?}");
    assert_eq!(s.write_failures, 0, "never sent to the API server: {s:?}");
    let event = wait_for("a ConfigurationTooLarge Event", WAIT, async || {
        events_with_reason(&client, ns, "ConfigurationTooLarge")
            .await
            .into_iter()
            .next()
    })
    .await;
    let note = event.note.unwrap_or_default();
    assert!(note.contains("notes.txt"), "names the largest key: {note}");
    assert!(
        note.contains("grafana/dashboards") || note.contains("prometheus/metrics"),
        "{note}"
    );
    let now = get_cm(&cms).await.unwrap();
    assert_eq!(
        now.metadata.resource_version, before.metadata.resource_version,
        "nothing written"
    );
    assert!(
        enabled(&now, "prometheus/metrics").is_some(),
        "last good kept"
    );
    assert!(enabled(&now, "grafana/dashboards").is_none());
    // Refused once per distinct reason, not an Event per loop step.
    tokio::time::sleep(ms(1000)).await;
    assert_eq!(
        events_with_reason(&client, ns, "ConfigurationTooLarge")
            .await
            .len(),
        1
    );

    // Room made: published, no longer stale.
    patch_data(&cms, json!({"notes.txt": null})).await;
    wait_cm(&cms, "grafana published once there is room", |c| {
        enabled(c, "grafana/dashboards").is_some() && enabled(c, "prometheus/metrics").is_some()
    })
    .await;
    wait_status(&h, "no longer stale", |s| s.stale.is_none()).await;
    h.stop().await;
}

/// Invalid overrides at start: the published configuration is left as it is (nothing is
/// written, the output counts as stale), an Event carries the error; once fixed, the
/// controller converges.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_overrides_at_start_keep_published_output_then_converge() {
    init_logs();
    let ns = "ctl-overrides-start";
    let client = shared_client().await;
    namespace(&client, ns).await;
    let prom = Backend::start().await;
    apply_service(&client, &prometheus(ns, prom.port)).await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    let published = "toolsets:\n  kept/by-admin: {enabled: true}\n";
    let invalid = "toolsets:\n  prometheus/metrics:\n    enabeld: false\n";
    let existing: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": CM},
        "data": {TOOLSETS_KEY: published, OVERRIDES_KEY: invalid},
    }))
    .unwrap();
    let existing = cms.create(&PostParams::default(), &existing).await.unwrap();
    let h = controller::start(client.clone(), options(ns), detectors());
    let event = wait_for("an InvalidOverrides Event", WAIT, async || {
        events_with_reason(&client, ns, "InvalidOverrides")
            .await
            .into_iter()
            .next()
    })
    .await;
    let note = event.note.unwrap_or_default();
    assert!(note.contains("enabeld"), "{note}");
    let s = wait_status(&h, "stale while invalid", |s| s.stale.is_some()).await;
    assert_eq!(s.writes, 0, "{s:?}");
    // Several probe rounds later, still untouched.
    let rounds = s.probe_rounds;
    wait_status(&h, "probe rounds", |s| s.probe_rounds >= rounds + 3).await;
    let cm = get_cm(&cms).await.unwrap();
    assert_eq!(
        cm.metadata.resource_version,
        existing.metadata.resource_version
    );
    assert_eq!(data(&cm)[TOOLSETS_KEY], published);

    let fixed =
        "toolsets:\n  prometheus/metrics:\n    config:\n      query_timeout_seconds_default: 30\n";
    patch_data(&cms, json!({OVERRIDES_KEY: fixed})).await;
    let cm = wait_cm(&cms, "converged once fixed", |c| {
        enabled(c, "prometheus/metrics").is_some()
    })
    .await;
    assert_eq!(data(&cm)[OVERRIDES_KEY], fixed);
    assert_eq!(
        enabled(&cm, "prometheus/metrics").unwrap()["config"]["query_timeout_seconds_default"],
        30
    );
    wait_status(&h, "no longer stale", |s| s.stale.is_none()).await;
    h.stop().await;
}

/// A controller on its own single-threaded runtime, so that the test can freeze it all
/// (lease renewals, watches, the loop) as a paused process would be.
struct Pausable {
    status: controller::StatusSource,
    cmd: tokio::sync::mpsc::UnboundedSender<Option<Duration>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Pausable {
    /// Its own client: connections are driven by the runtime that opened them, and a
    /// shared pool would freeze the other replicas' requests too.
    fn start(opts: ControllerOptions) -> Pausable {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Option<Duration>>();
        let (status_tx, status_rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let client = shared_client().await;
                let h = controller::start(client, opts, detectors());
                status_tx.send(h.status.clone()).unwrap();
                while let Some(Some(pause)) = rx.recv().await {
                    // Blocks the only runtime thread: every task of this controller freezes.
                    std::thread::sleep(pause);
                }
                h.stop().await;
            });
        });
        Pausable {
            status: status_rx.recv().unwrap(),
            cmd: tx,
            thread: Some(thread),
        }
    }

    fn status(&self) -> Status {
        self.status.read().unwrap().clone()
    }

    fn pause(&self, d: Duration) {
        self.cmd.send(Some(d)).unwrap();
    }

    async fn stop(mut self) {
        let _ = self.cmd.send(None);
        let t = self.thread.take().unwrap();
        tokio::task::spawn_blocking(move || t.join().unwrap())
            .await
            .unwrap();
    }
}

/// Split brain: a leader frozen past its lease resumes and must not overwrite what the
/// new leader wrote (fenced by its lease time, and by the writer annotation).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paused_leader_does_not_overwrite_its_successor() {
    init_logs();
    let ns = "ctl-split-brain";
    let client = shared_client().await;
    namespace(&client, ns).await;
    apply_service(&client, &prometheus(ns, 9090)).await;
    // The two replicas disagree on purpose (cluster domain), so an overwrite shows.
    let replica = |id: &str, domain: &str| {
        let mut o = options(ns);
        o.health = None;
        o.policy.cluster_domain = domain.into();
        o.leader = Some(leader(ns, id));
        o.reporter = id.into();
        o
    };
    let url_a = format!("http://{PROM}.{ns}.svc.cluster.local:9090");
    let url_b = format!("http://{PROM}.{ns}.svc.cluster.example:9090");
    let a = Pausable::start(replica("a", "cluster.local"));
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    wait_cm(&cms, "a publishes", |c| {
        prometheus_url(c).as_deref() == Some(url_a.as_str())
    })
    .await;
    assert!(a.status().leader);
    let b = controller::start(client.clone(), replica("b", "cluster.example"), detectors());
    wait_status(&b, "b synced as a follower", |s| s.synced).await;
    assert!(!status(&b).leader);
    let a_writes = a.status().writes;

    // a freezes for 8 s (lease 4 s): b takes over and writes its content.
    a.pause(Duration::from_secs(8));
    let paused_at = Instant::now();
    let cm = wait_cm(&cms, "b writes after taking over", |c| {
        prometheus_url(c).as_deref() == Some(url_b.as_str())
    })
    .await;
    assert!(
        paused_at.elapsed() < Duration::from_secs(8),
        "during the pause: {:?}",
        paused_at.elapsed()
    );
    let written_by = cm.metadata.annotations.clone().unwrap_or_default();
    assert!(
        written_by["kubernaut.io/written-by"].starts_with("b "),
        "{written_by:?}"
    );
    let after_b = cm.metadata.resource_version.clone();

    // a resumes with the old view: it must not write.
    while paused_at.elapsed() < Duration::from_secs(8) {
        tokio::time::sleep(ms(100)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(4);
    while Instant::now() < deadline {
        let cm = get_cm(&cms).await.unwrap();
        assert_eq!(
            prometheus_url(&cm).as_deref(),
            Some(url_b.as_str()),
            "the resumed leader overwrote its successor"
        );
        tokio::time::sleep(ms(50)).await;
    }
    let sa = a.status();
    assert_eq!(sa.writes, a_writes, "{sa:?}");
    assert!(!sa.leader, "{sa:?}");
    assert!(status(&b).leader);
    assert_eq!(
        get_cm(&cms).await.unwrap().metadata.resource_version,
        after_b,
        "nothing written since b's write"
    );

    // Writes are made under our field manager, not `unknown`.
    let managers: Vec<String> = cms
        .get(CM)
        .await
        .unwrap()
        .metadata
        .managed_fields
        .unwrap_or_default()
        .into_iter()
        .filter_map(|m| m.manager)
        .collect();
    assert!(
        managers.iter().all(|m| m == "dynamic-toolset"),
        "{managers:?}"
    );
    a.stop().await;
    b.stop().await;
}

/// Label-heavy Services: Services past the apiserver-like bounds (25,000 labels) are
/// refused at the watch, and Services at the bounds (250 labels of maximal values, 200 KiB
/// of annotations) are detected on blocking threads, so even with the deployment's CPU
/// the loop keeps beating (liveness) while detectors grind through them, and the result
/// is still published.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn label_heavy_services_do_not_stall_the_loop() {
    init_logs();
    let ns = "ctl-heavy";
    let client = shared_client().await;
    namespace(&client, ns).await;
    let mut o = options(ns);
    o.health = None;
    let c = Pausable::start(o);
    wait_for("synced", WAIT, async || c.status().synced.then_some(())).await;
    for i in 0..6 {
        let mut svc = prometheus(ns, 9090);
        svc.metadata.name = Some(format!("over-{i}"));
        let labels = svc.metadata.labels.get_or_insert_with(Default::default);
        labels.insert("release".into(), format!("over-{i}"));
        for l in 0..25_000 {
            labels.insert(format!("l{l}"), "v".into());
        }
        apply_service(&client, &svc).await;
    }
    for i in 0..6 {
        let mut svc = prometheus(ns, 9090);
        svc.metadata.name = Some(format!("heavy-{i}"));
        let labels = svc.metadata.labels.get_or_insert_with(Default::default);
        labels.insert("release".into(), format!("heavy-{i}"));
        labels.insert("app.kubernetes.io/instance".into(), format!("heavy-{i}"));
        for l in 0..240 {
            labels.insert(format!("l{l}"), "v".repeat(63));
        }
        let annotations = svc
            .metadata
            .annotations
            .get_or_insert_with(Default::default);
        for a in 0..100 {
            annotations.insert(format!("example.com/a{a}"), "x".repeat(2_000));
        }
        apply_service(&client, &svc).await;
    }
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut worst = Duration::ZERO;
    loop {
        let s = c.status();
        if let Some(beat) = s.heartbeat {
            worst = worst.max(beat.elapsed());
        }
        if s.services == 6 && s.discovery_passes > 0 {
            let cm = get_cm(&cms).await;
            if cm.as_ref().and_then(prometheus_url).is_some() {
                break;
            }
        }
        assert!(Instant::now() < deadline, "not published: {s:?}");
        tokio::time::sleep(ms(50)).await;
    }
    assert!(
        worst < Duration::from_millis(2500),
        "the loop stalled {worst:?} (it beats every second)"
    );
    c.stop().await;
}

/// The validation gate in the controller: a tenant's annotation pointing off-cluster and an
/// ExternalName look-alike are refused and counted by detector and reason; the legitimate
/// Prometheus beside them is still published.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gate_refuses_hostile_services_and_counts_them() {
    init_logs();
    let ns = "ctl-gate";
    let client = shared_client().await;
    namespace(&client, ns).await;
    let mut o = options(ns);
    o.health = None;
    let h = controller::start(client.clone(), o, detectors());
    apply_service(&client, &prometheus(ns, 9090)).await;
    apply_service(
        &client,
        &service(&format!(
            r#"
apiVersion: v1
kind: Service
metadata:
  name: tenant-grafana
  namespace: {ns}
  annotations:
    kubernaut.io/toolset: "true"
    kubernaut.io/toolset-type: grafana
    kubernaut.io/toolset-endpoint: https://attacker.example.com
spec:
  ports: [{{name: http, port: 3000, protocol: TCP}}]
"#
        )),
    )
    .await;
    let mut ext = grafana(ns, 80);
    ext.metadata.name = Some("ext-grafana".into());
    if let Some(spec) = ext.spec.as_mut() {
        spec.type_ = Some("ExternalName".into());
        spec.external_name = Some("attacker.example.com".into());
        spec.selector = None;
    }
    apply_service(&client, &ext).await;

    wait_status(&h, "both refusals counted", |s| {
        s.gate_refusals
            .contains_key(&("custom".into(), "endpoint".into()))
            && s.gate_refusals
                .contains_key(&("grafana".into(), "external_name".into()))
    })
    .await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    let want = format!("http://{}:9090", fqdn(PROM, ns));
    let cm = wait_cm(&cms, "prometheus published", |c| {
        prometheus_url(c).as_deref() == Some(want.as_str())
    })
    .await;
    assert!(
        enabled(&cm, "grafana/dashboards").is_none(),
        "{:?}",
        data(&cm)
    );
    for (k, v) in data(&cm) {
        assert!(
            !v.contains("attacker.example.com"),
            "{k} names the attacker"
        );
    }
    let metrics = dynamic_toolset::metrics::Exported::encode(&*h.metrics()).unwrap();
    assert!(
        metrics.contains(
            r#"dynamic_toolset_gate_refusals_total{detector="custom",reason="endpoint"}"#
        ),
        "{metrics}"
    );
    h.stop().await;
}

/// Namespaced watches of an empty list (every listed namespace excluded): synced at once
/// with no Services, the ConfigMap published with the always-on part.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_namespaced_watch_list_syncs_with_no_services() {
    init_logs();
    let ns = "ctl-empty-watch";
    let client = shared_client().await;
    namespace(&client, ns).await;
    let opts = ControllerOptions {
        watch_namespaces: Some(Vec::new()),
        ..options(ns)
    };
    let h = controller::start(client.clone(), opts, detectors());
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    let cm = wait_cm(&cms, "the ConfigMap", |_| true).await;
    assert!(enabled(&cm, "kubernetes/core").is_some());
    let s = wait_status(&h, "synced", |s| s.synced).await;
    assert_eq!(s.services, 0, "{s:?}");
    h.stop().await;
}
