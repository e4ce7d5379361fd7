//! Hot reload of declared detectors in a running controller on the real kube-apiserver
//! (issue 8): a declaration change swaps a new version in without a restart while
//! Services keep coming, no Service event is lost, no published configuration mixes the
//! two versions, a new version that fails to load keeps the last good one (reported by a
//! Warning Event), a required detector that cannot load makes the controller not ready,
//! and a detector removed from the declarations leaves, and comes back when re-declared.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "common/cluster.rs"]
mod cluster;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use cluster::*;
use dynamic_toolset::controller::{self, ControllerOptions, Detectors};
use dynamic_toolset::pipeline::{self, DetectorSetup};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use serde_json::Value;

fn options(ns: &str) -> ControllerOptions {
    controller_options(ns, "reload-test", Duration::from_secs(600), None)
}

/// Builds the `versioned` test guest (tests/guests/versioned) into `dir`.
fn versioned_guest(dir: &Path) -> PathBuf {
    let root = guest_build::find_workspace_root(Path::new(env!("CARGO_MANIFEST_DIR"))).unwrap();
    let guests: Vec<_> = guest_build::discover(&root.join("tests/guests"), "test-guest-", &[])
        .unwrap()
        .into_iter()
        .filter(|g| g.package == "test-guest-versioned")
        .collect();
    assert_eq!(guests.len(), 1);
    let built = guest_build::build(&guest_build::Options {
        workspace_root: root,
        guests,
        show_progress: false,
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join("versioned.wasm");
    std::fs::copy(&built[0].path, &path).unwrap();
    path
}

fn sha256(path: &Path) -> String {
    use sha2::Digest as _;
    format!("{:x}", sha2::Sha256::digest(std::fs::read(path).unwrap()))
}

/// Writes the declarations atomically (write + rename, as a ConfigMap volume updates).
fn declare(file: &Path, body: &str) {
    let tmp = file.with_extension("tmp");
    std::fs::write(&tmp, body).unwrap();
    std::fs::rename(&tmp, file).unwrap();
}

fn versioned_decl(wasm: &Path, pin: &str, version: i64) -> String {
    format!(
        "detectors:\n  - name: versioned\n    source: {}\n    sha256: {pin}\n    settings: {{version: {version}}}\n",
        wasm.display()
    )
}

fn labelled(ns: &str, name: &str) -> k8s_openapi::api::core::v1::Service {
    service(&format!(
        "apiVersion: v1
kind: Service
metadata:
  name: {name}
  namespace: {ns}
  labels:
    test.dynamic-toolset.io/backend: prometheus
spec:
  ports:
    - name: http
      port: 9090
      protocol: TCP
"
    ))
}

/// The instance names of `prometheus/metrics` in the published ConfigMap (one instance:
/// its `prometheus_url` host's Service name stands in for the missing name).
fn instances(cm: &ConfigMap) -> BTreeSet<String> {
    let text = cm
        .data
        .as_ref()
        .and_then(|d| d.get("toolsets.yaml"))
        .cloned()
        .unwrap_or_default();
    let doc: Value = serde_yaml::from_str(&text).unwrap_or(Value::Null);
    let config = &doc["toolsets"]["prometheus/metrics"]["config"];
    match config.get("instances").and_then(Value::as_array) {
        Some(list) => list
            .iter()
            .filter_map(|i| i["name"].as_str().map(str::to_string))
            .collect(),
        None => BTreeSet::new(),
    }
}

fn versions(names: &BTreeSet<String>) -> BTreeSet<String> {
    names
        .iter()
        .filter_map(|n| n.rsplit_once("-v").map(|(_, v)| v.to_string()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declaration_changes_swap_detectors_without_a_restart() {
    init_logs();
    let ns = "reload";
    let client = shared_client().await;
    namespace(&client, ns).await;
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("reload-detectors");
    let wasm = versioned_guest(&dir);
    let pin = sha256(&wasm);
    let decl = dir.join("detectors.yaml");
    declare(&decl, &versioned_decl(&wasm, &pin, 1));

    let setup = DetectorSetup {
        file: Some(decl.clone()),
        ..DetectorSetup::new(
            None,
            Some(PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("detector-cache")),
        )
    };
    let loaded = pipeline::load_detectors(&setup).unwrap();
    assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
    let handle = controller::start(
        client.clone(),
        options(ns),
        Detectors {
            loaded,
            reload: Some((setup, ms(100))),
        },
    );
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    for i in 0..3 {
        apply_service(&client, &labelled(ns, &format!("p{i}"))).await;
    }
    wait_for("three v1 instances", Duration::from_secs(30), async || {
        let cm = cms.get_opt(CM).await.ok().flatten()?;
        (instances(&cm).len() == 3 && versions(&instances(&cm)) == BTreeSet::from(["1".into()]))
            .then_some(())
    })
    .await;

    // Outside its grant (a declaration without `grants:`: its own Service, what it
    // declares): an endpoint on another Service and an undeclared toolset are dropped,
    // counted by detector and reason, and nothing of them is published.
    let mut escapes = labelled(ns, "escapes");
    let mut undeclared = labelled(ns, "undeclared");
    for (svc, label) in [
        (&mut escapes, "test.dynamic-toolset.io/escape"),
        (&mut undeclared, "test.dynamic-toolset.io/undeclared"),
    ] {
        svc.metadata
            .labels
            .get_or_insert_default()
            .insert(label.into(), "true".into());
        apply_service(&client, svc).await;
    }
    wait_for(
        "both refusals counted",
        Duration::from_secs(30),
        async || {
            let refusals = handle.status().gate_refusals;
            (refusals.contains_key(&("versioned".into(), "grant".into()))
                && refusals.contains_key(&("versioned".into(), "toolset".into())))
            .then_some(())
        },
    )
    .await;
    let cm = cms.get_opt(CM).await.unwrap().unwrap();
    let text = cm.data.as_ref().unwrap()["toolsets.yaml"].clone();
    assert!(
        !text.contains("elsewhere") && !text.contains("grafana/loki") && !text.contains("escapes"),
        "{text}"
    );
    assert_eq!(instances(&cm).len(), 3, "{text}");

    // Every published configuration, recorded while Services keep coming and the
    // declaration changes under them.
    let seen = Arc::new(std::sync::Mutex::new(Vec::<BTreeSet<String>>::new()));
    let watcher = {
        let (cms, seen) = (cms.clone(), seen.clone());
        tokio::spawn(async move {
            loop {
                if let Ok(Some(cm)) = cms.get_opt(CM).await {
                    seen.lock().unwrap().push(instances(&cm));
                }
                tokio::time::sleep(ms(20)).await;
            }
        })
    };
    let total = 20;
    for i in 3..total {
        apply_service(&client, &labelled(ns, &format!("p{i}"))).await;
        if i == 8 {
            declare(&decl, &versioned_decl(&wasm, &pin, 2));
        }
        tokio::time::sleep(ms(60)).await;
    }
    wait_for("every Service as v2", Duration::from_secs(60), async || {
        let cm = cms.get_opt(CM).await.ok().flatten()?;
        let names = instances(&cm);
        (names.len() == total && versions(&names) == BTreeSet::from(["2".into()])).then_some(())
    })
    .await;
    watcher.abort();
    let seen = seen.lock().unwrap().clone();
    assert!(seen.len() > 10, "too few observations: {}", seen.len());
    for names in &seen {
        assert!(
            versions(names).len() <= 1,
            "a published configuration mixes versions: {names:?}"
        );
    }

    // A new version whose settings the detector refuses: version 2 keeps serving.
    let metrics = handle.metrics();
    let reloads = |result: &str| metrics.detector_reloads(result);
    let partial_before = reloads("partial");
    declare(&decl, &versioned_decl(&wasm, &pin, 0));
    wait_for("a partial reload", Duration::from_secs(30), async || {
        (reloads("partial") > partial_before).then_some(())
    })
    .await;
    // ... reported beside the ConfigMap, naming the detector and its reason.
    let events = wait_for(
        "a DetectorReloadFailed Event",
        Duration::from_secs(30),
        async || {
            let events = events_with_reason(&client, ns, "DetectorReloadFailed").await;
            (!events.is_empty()).then_some(events)
        },
    )
    .await;
    let note = events[0].note.clone().unwrap_or_default();
    assert!(
        note.contains("versioned") && note.contains("settings.version must be a positive integer"),
        "{note}"
    );
    assert_eq!(events[0].type_.as_deref(), Some("Warning"));
    assert_eq!(
        events[0].regarding.as_ref().and_then(|r| r.name.as_deref()),
        Some(CM)
    );
    apply_service(&client, &labelled(ns, "late")).await;
    wait_for(
        "the late Service, still as v2",
        Duration::from_secs(30),
        async || {
            let cm = cms.get_opt(CM).await.ok().flatten()?;
            let names = instances(&cm);
            (names.len() == total + 1 && versions(&names) == BTreeSet::from(["2".into()]))
                .then_some(())
        },
    )
    .await;
    assert!(
        handle
            .readiness()
            .read()
            .unwrap()
            .detector_load_errors
            .is_empty()
    );

    // Invalid declarations change nothing.
    let failures_before = reloads("failure");
    declare(&decl, "detectors:\n  - name: versioned\n    sorce: x\n");
    wait_for("a failed reload", Duration::from_secs(30), async || {
        (reloads("failure") > failures_before).then_some(())
    })
    .await;
    let events = wait_for(
        "a DetectorDeclarationsInvalid Event",
        Duration::from_secs(30),
        async || {
            let events = events_with_reason(&client, ns, "DetectorDeclarationsInvalid").await;
            (!events.is_empty()).then_some(events)
        },
    )
    .await;
    let note = events[0].note.clone().unwrap_or_default();
    assert!(note.contains("sorce"), "{note}");

    // A required detector that cannot load makes the controller not ready.
    declare(
        &decl,
        &format!(
            "{}  - name: required\n    source: {}\n    sha256: {}\n    fail_strategy: fail\n",
            versioned_decl(&wasm, &pin, 2),
            dir.join("absent.wasm").display(),
            "a".repeat(64)
        ),
    );
    wait_for(
        "not ready for the required detector",
        Duration::from_secs(30),
        async || {
            let errors = handle
                .readiness()
                .read()
                .unwrap()
                .detector_load_errors
                .clone();
            errors
                .iter()
                .any(|e| e.starts_with("required detector `required` is rejected"))
                .then_some(errors)
        },
    )
    .await;

    // Remove: declarations without it drop the detector; its toolset leaves the ConfigMap,
    // and the controller is ready again (the required one is gone too).
    declare(&decl, "detectors: []\n");
    wait_for(
        "the detector and its toolset removed",
        Duration::from_secs(30),
        async || {
            let cm = cms.get_opt(CM).await.ok().flatten()?;
            let text = cm.data.as_ref()?.get("toolsets.yaml")?.clone();
            let doc: Value = serde_yaml::from_str(&text).ok()?;
            let ready = handle
                .readiness()
                .read()
                .unwrap()
                .detector_load_errors
                .is_empty();
            (doc["toolsets"].get("prometheus/metrics").is_none() && ready).then_some(())
        },
    )
    .await;

    // Add it back, pinned and configured: every Service is served again, as version 3.
    declare(&decl, &versioned_decl(&wasm, &pin, 3));
    wait_for("every Service as v3", Duration::from_secs(60), async || {
        let cm = cms.get_opt(CM).await.ok().flatten()?;
        let names = instances(&cm);
        (names.len() == total + 1 && versions(&names) == BTreeSet::from(["3".into()])).then_some(())
    })
    .await;
    handle.stop().await;
}
