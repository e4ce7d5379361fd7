//! The first step of the route: watches. Services are converted to slim snapshots
//! ([`crate::services::snapshot`]) as their events arrive and stored in a [`mirror`]
//! as [`Watched::Pending`]; the [`super::detect`] worker takes them from there. The
//! generated ConfigMap is mirrored too (what is published, and the admin's overrides).

use std::sync::Arc;

use dynamic_toolset_core::{ServiceDetections, ServiceSnapshot};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use kube::Api;
use kube::runtime::{WatchStreamExt, watcher};
use tokio::sync::mpsc;

use super::mirror::{self, Change};
use super::{AbortOnDrop, ControllerOptions};

/// Annotations no detector reads, possibly large: not passed to the detectors.
const DROPPED_ANNOTATIONS: &[&str] = &["kubectl.kubernetes.io/last-applied-configuration"];

/// One Service as the controller keeps it. The watch records only a slim snapshot
/// (`Pending`, the detectors' input without the dropped annotations); the detection
/// worker runs the detectors on a blocking thread and replaces it with what they matched
/// (`Done`). Nothing else is kept, so a detected unrelated Service costs its key and one
/// word, and the watch task never runs a detector (label-heavy Services cannot stall the
/// async runtime, so `/healthz` stays answered).
#[derive(Debug)]
pub enum Watched {
    Pending(Arc<ServiceSnapshot>),
    Done(Option<Box<ServiceDetections>>),
}

/// What the watch keeps of a Service: its slim snapshot, or None when it is filtered out
/// (namespace) or refused (logged, naming the field).
fn watched(filter: &super::NamespaceFilter, svc: &Service) -> Option<Watched> {
    let ns = svc.metadata.namespace.as_deref().unwrap_or_default();
    if !filter(ns) {
        return None;
    }
    let mut snapshot = match crate::services::snapshot(svc, ns) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(namespace = ns, service = ?svc.metadata.name, "Service skipped: {}: {}", e.field, e.message);
            return None;
        }
    };
    for a in DROPPED_ANNOTATIONS {
        snapshot.annotations.remove(*a);
    }
    Some(Watched::Pending(Arc::new(snapshot)))
}

/// Starts the Service watch (all namespaces, or one watch per namespace of
/// `watch_namespaces`; optional label selector; the namespace filter is applied here)
/// feeding `shared` with slim snapshots for the detection worker. Dropping the result
/// stops it.
pub fn services(
    client: &kube::Client,
    opts: &ControllerOptions,
    shared: mirror::Shared<Watched>,
    changed: mpsc::Sender<()>,
) -> AbortOnDrop<()> {
    let mut wcfg = watcher::Config::default();
    if let Some(sel) = &opts.label_selector {
        wcfg = wcfg.labels(sel);
    }
    type Events = futures::stream::BoxStream<
        'static,
        (
            Option<String>,
            Result<watcher::Event<Service>, watcher::Error>,
        ),
    >;
    let stream: Events = match &opts.watch_namespaces {
        None => Box::pin(
            watcher(Api::<Service>::all(client.clone()), wcfg)
                .default_backoff()
                .map(|e| (None, e)),
        ),
        Some(namespaces) if namespaces.is_empty() => {
            // Every listed namespace is excluded: nothing to watch, synced with no Services.
            tracing::warn!(
                "service_discovery: every listed namespace is excluded; no Service is watched"
            );
            if let Ok(mut m) = shared.write() {
                m.synced = true;
                m.generation += 1;
            }
            let _ = changed.try_send(());
            Box::pin(futures::stream::pending())
        }
        Some(namespaces) => {
            if let Ok(mut m) = shared.write() {
                m.expect_scopes(namespaces.iter().map(String::as_str));
            }
            Box::pin(futures::stream::select_all(namespaces.iter().map(|ns| {
                let scope = Some(ns.clone());
                watcher(Api::<Service>::namespaced(client.clone(), ns), wcfg.clone())
                    .default_backoff()
                    .map(move |e| (scope.clone(), e))
                    .boxed()
            })))
        }
    };
    let filter = opts.namespaces.clone();
    let changes = stream
        .map(move |(scope, e)| (scope, e.map(|e| Change::of(e, |svc| watched(&filter, svc)))));
    AbortOnDrop::new(tokio::spawn(mirror::run(
        "services", changes, shared, changed,
    )))
}

/// Starts the watch of the generated ConfigMap (by name), feeding `shared`.
pub fn configmap(
    client: &kube::Client,
    opts: &ControllerOptions,
    shared: mirror::Shared<ConfigMap>,
    changed: mpsc::Sender<()>,
) -> impl std::future::Future<Output = ()> + Send + 'static {
    let stream = watcher(
        Api::<ConfigMap>::namespaced(client.clone(), &opts.configmap_namespace),
        watcher::Config::default().fields(&format!("metadata.name={}", opts.configmap_name)),
    )
    .default_backoff()
    .map(|e| {
        (
            None,
            e.map(|e| Change::of(e, |cm: &ConfigMap| Some(slim_configmap(cm.clone())))),
        )
    });
    mirror::run("configmap", stream, shared, changed)
}

/// The ConfigMap as kept: without its managed fields (not needed for decisions; the
/// biggest part of the object after data).
pub fn slim_configmap(mut cm: ConfigMap) -> ConfigMap {
    cm.metadata.managed_fields = None;
    cm
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc(ns: &str, name: &str) -> Service {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "namespace": ns, "annotations": {
                "kubectl.kubernetes.io/last-applied-configuration": "{...}",
                "kubernaut.io/toolset": "true",
            }},
            "spec": {"ports": [{"port": 80}]},
        }))
        .unwrap()
    }

    #[test]
    fn the_watch_keeps_slim_snapshots_of_wanted_namespaces() {
        let filter: super::super::NamespaceFilter = Arc::new(|ns: &str| ns == "mon");
        let Some(Watched::Pending(s)) = watched(&filter, &svc("mon", "prom")) else {
            panic!("kept as pending");
        };
        assert_eq!((s.namespace.as_str(), s.name.as_str()), ("mon", "prom"));
        assert_eq!(
            s.annotations.keys().collect::<Vec<_>>(),
            ["kubernaut.io/toolset"]
        );
        assert!(watched(&filter, &svc("other", "prom")).is_none());
        // Refused by the conversion (port out of range): skipped.
        let mut bad = svc("mon", "bad");
        if let Some(p) = bad.spec.as_mut().and_then(|s| s.ports.as_mut()) {
            p[0].port = 0;
        }
        assert!(watched(&filter, &bad).is_none());
    }
}
