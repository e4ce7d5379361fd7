//! Integration tests against a real kube-apiserver v1.20.2 + etcd, driven with kube 5 /
//! k8s-openapi 0.29 (v1_33), the versions the controller uses.
//!
//! These tests FAIL (they never skip) when the binary is missing: run `cargo xtask kube build`.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, Service, ServicePort, ServiceSpec};
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};
use kube::api::{Api, ListParams, ObjectMeta, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Config};
use kube_harness::{ApiServer, Options, UNPRIVILEGED_USER};

async fn client_from(yaml: &str) -> Result<Client> {
    let kubeconfig = Kubeconfig::from_yaml(yaml).context("parsing the harness kubeconfig")?;
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .context("building a kube Config from the harness kubeconfig")?;
    Client::try_from(config).context("building a kube Client")
}

async fn create_namespace(client: &Client, name: &str) -> Result<()> {
    let api: Api<Namespace> = Api::all(client.clone());
    let ns = Namespace {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    };
    api.create(&PostParams::default(), &ns)
        .await
        .with_context(|| format!("creating namespace {name}"))?;
    Ok(())
}

fn service(name: &str, port: i32) -> Service {
    Service {
        metadata: ObjectMeta {
            name: Some(name.into()),
            labels: Some(
                [(
                    "app.kubernetes.io/name".to_string(),
                    "prometheus".to_string(),
                )]
                .into(),
            ),
            ..ObjectMeta::default()
        },
        spec: Some(ServiceSpec {
            ports: Some(vec![ServicePort {
                name: Some("http".into()),
                port,
                ..ServicePort::default()
            }]),
            selector: Some([("app".to_string(), name.to_string())].into()),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}

/// Waits until the stream of applied Services yields one called `name`.
async fn wait_for_applied<S>(stream: &mut S, name: &str, timeout: Duration) -> Result<Service>
where
    S: futures::Stream<Item = Result<Service, watcher::Error>> + Unpin,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let next = tokio::time::timeout_at(deadline, stream.next())
            .await
            .with_context(|| {
                format!("watcher did not deliver Service {name} within {timeout:?}")
            })?;
        match next {
            Some(Ok(svc)) if svc.metadata.name.as_deref() == Some(name) => return Ok(svc),
            Some(Ok(_)) => {}
            // With a backoff the watcher retries after errors (e.g. while the apiserver is down).
            Some(Err(err)) => eprintln!("watcher error (retrying): {err}"),
            None => bail!("watcher stream ended before Service {name} arrived"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crud_list_watch_and_apiserver_restart() -> Result<()> {
    let started = Instant::now();
    let mut server = tokio::task::spawn_blocking(ApiServer::start).await??;
    eprintln!(
        "apiserver ready at {} in {:?}; RSS apiserver {:?} KiB, etcd {:?} KiB",
        server.url(),
        started.elapsed(),
        server.apiserver_rss_kib(),
        server.etcd_rss_kib()
    );
    let client = client_from(&server.kubeconfig_yaml()).await?;
    let version = client.apiserver_version().await?;
    assert_eq!(version.git_version, "v1.20.2");

    let ns = "restart-test";
    create_namespace(&client, ns).await?;
    let services: Api<Service> = Api::namespaced(client.clone(), ns);
    services
        .create(&PostParams::default(), &service("prom-1", 9090))
        .await?;

    let listed = services
        .list(&ListParams::default().labels("app.kubernetes.io/name=prometheus"))
        .await?;
    let names: Vec<_> = listed
        .items
        .iter()
        .filter_map(|s| s.metadata.name.clone())
        .collect();
    assert_eq!(names, ["prom-1"]);
    let cluster_ip = listed.items[0]
        .spec
        .as_ref()
        .and_then(|s| s.cluster_ip.clone());
    assert!(
        cluster_ip
            .as_deref()
            .is_some_and(|ip| ip.starts_with("10.96.")),
        "clusterIP allocated from 10.96.0.0/16, got {cluster_ip:?}"
    );

    let mut stream = watcher(services.clone(), watcher::Config::default())
        .default_backoff()
        .applied_objects()
        .boxed();
    wait_for_applied(&mut stream, "prom-1", Duration::from_secs(20)).await?;

    // The API server goes away (etcd keeps the data) and comes back on the same port.
    tokio::task::block_in_place(|| server.stop_apiserver());
    assert!(!server.apiserver_running());
    assert!(
        services.list(&ListParams::default()).await.is_err(),
        "list must fail while stopped"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    tokio::task::block_in_place(|| server.start_apiserver())?;
    assert!(server.apiserver_running());
    eprintln!(
        "apiserver restarted; RSS {:?} KiB",
        server.apiserver_rss_kib()
    );

    // The same client and the same watcher carry on.
    let before: Vec<_> = services.list(&ListParams::default()).await?.items;
    assert_eq!(
        before.len(),
        1,
        "prom-1 survived the restart (stored in etcd)"
    );
    services
        .create(&PostParams::default(), &service("prom-2", 9091))
        .await?;
    let seen = wait_for_applied(&mut stream, "prom-2", Duration::from_secs(60)).await?;
    assert_eq!(
        seen.spec.and_then(|s| s.ports).map(|p| p[0].port),
        Some(9091)
    );
    Ok(())
}

#[tokio::test]
async fn unprivileged_token_is_subject_to_rbac() -> Result<()> {
    let server = tokio::task::spawn_blocking(kube_harness::shared).await??;
    let admin = client_from(&server.kubeconfig_yaml()).await?;
    let user = client_from(&server.user_kubeconfig_yaml()).await?;
    let ns = "rbac-test";
    create_namespace(&admin, ns).await?;

    let as_user: Api<Service> = Api::namespaced(user.clone(), ns);
    match as_user.list(&ListParams::default()).await {
        Err(kube::Error::Api(status)) if status.code == 403 => {}
        other => bail!("expected 403 for {UNPRIVILEGED_USER} before any binding, got {other:?}"),
    }

    let role = Role {
        metadata: ObjectMeta {
            name: Some("svc-reader".into()),
            ..ObjectMeta::default()
        },
        rules: Some(vec![PolicyRule {
            api_groups: Some(vec![String::new()]),
            resources: Some(vec!["services".into()]),
            verbs: vec!["get".into(), "list".into(), "watch".into()],
            ..PolicyRule::default()
        }]),
    };
    Api::<Role>::namespaced(admin.clone(), ns)
        .create(&PostParams::default(), &role)
        .await?;
    let binding = RoleBinding {
        metadata: ObjectMeta {
            name: Some("svc-reader".into()),
            ..ObjectMeta::default()
        },
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".into(),
            kind: "Role".into(),
            name: "svc-reader".into(),
        },
        subjects: Some(vec![Subject {
            kind: "User".into(),
            name: UNPRIVILEGED_USER.into(),
            api_group: Some("rbac.authorization.k8s.io".into()),
            ..Subject::default()
        }]),
    };
    Api::<RoleBinding>::namespaced(admin.clone(), ns)
        .create(&PostParams::default(), &binding)
        .await?;

    // RBAC caches are updated by a watch: allow a moment.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match as_user.list(&ListParams::default()).await {
            Ok(list) => {
                assert!(list.items.is_empty());
                break;
            }
            Err(err) if Instant::now() < deadline => {
                eprintln!("not yet allowed: {err}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(err) => {
                bail!("{UNPRIVILEGED_USER} still cannot list services after binding: {err}")
            }
        }
    }
    // Still no write access.
    let created = as_user
        .create(&PostParams::default(), &service("nope", 80))
        .await;
    assert!(
        matches!(created, Err(kube::Error::Api(ref s)) if s.code == 403),
        "{created:?}"
    );
    Ok(())
}

#[test]
fn raw_endpoints_and_shared_server() -> Result<()> {
    let server = kube_harness::shared()?;
    let ready = server.get_as("/readyz", None)?;
    assert_eq!(
        (ready.status, ready.body.trim()),
        (200, "ok"),
        "anonymous /readyz"
    );
    let version = server.get("/version")?;
    assert_eq!(version.status, 200);
    assert!(
        version.body.contains("\"gitVersion\": \"v1.20.2\""),
        "{}",
        version.body
    );
    // A bad token is rejected (401), the unprivileged one authenticates but is forbidden (403).
    assert_eq!(
        server
            .get_as("/api/v1/namespaces", Some("not-a-token"))?
            .status,
        401
    );
    assert_eq!(
        server
            .get_as("/api/v1/namespaces", Some(server.user_token()))?
            .status,
        403
    );
    assert_eq!(server.get("/api/v1/namespaces")?.status, 200);
    // Written kubeconfigs match the accessors and carry no other secret.
    let written = std::fs::read_to_string(server.kubeconfig_path())?;
    assert_eq!(written, server.kubeconfig_yaml());
    assert!(written.contains(server.admin_token()));
    assert!(!written.contains(server.user_token()));
    Ok(())
}

#[test]
fn missing_binary_error_says_how_to_build_it() {
    let err = ApiServer::start_with(Options {
        apiserver_binary: Some("/nonexistent/kube-apiserver".into()),
        ..Options::default()
    })
    .err()
    .map(|e| format!("{e:#}"))
    .unwrap_or_default();
    assert!(err.contains("/nonexistent/kube-apiserver"), "{err}");
    assert!(err.contains("cargo xtask kube build"), "{err}");
}

#[test]
fn drop_stops_processes_and_removes_the_dir() -> Result<()> {
    let server = ApiServer::start()?;
    let dir = server.dir().to_path_buf();
    let pids: Vec<u32> = ["kube-apiserver.pid", "etcd.pid"]
        .iter()
        .map(|f| -> Result<u32> { Ok(std::fs::read_to_string(dir.join(f))?.trim().parse()?) })
        .collect::<Result<_>>()?;
    let port = server.port();
    drop(server);
    for pid in pids {
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "pid {pid} still runs"
        );
    }
    assert!(!dir.exists(), "{} still exists", dir.display());
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "port {port} still open"
    );
    Ok(())
}

#[tokio::test]
async fn kube_client_verifies_the_serving_certificate() -> Result<()> {
    let server = tokio::task::spawn_blocking(kube_harness::shared).await??;
    let yaml = server.kubeconfig_yaml_verified()?;
    assert!(yaml.contains("certificate-authority-data: ") && !yaml.contains("insecure"));
    let client = client_from(&yaml).await?;
    // The API server's bootstrap controller creates `default` shortly after /readyz on a
    // fresh server: poll (a TLS failure errors out at once instead).
    let api = Api::<Namespace>::all(client);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let namespaces = api.list(&ListParams::default()).await?;
        if namespaces
            .items
            .iter()
            .any(|n| n.metadata.name.as_deref() == Some("default"))
        {
            return Ok(());
        }
        assert!(
            std::time::Instant::now() < deadline,
            "namespace `default` never appeared"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}
