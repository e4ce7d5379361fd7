//! Kubernetes writes: the ConfigMap (with resourceVersion preconditions and conflict
//! retries), Events, and the leader Lease.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context;
use dynamic_toolset_core::render::{self, GENERATED_AT_ANNOTATION};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, PostParams};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use tokio::sync::watch;

use super::state::{self, Action, Generated};
use super::{ControllerOptions, LeaderOptions};

/// Writes Events about the ConfigMap.
pub struct EventSink {
    recorder: Recorder,
}

impl EventSink {
    pub fn new(client: kube::Client, reporter: &str) -> Self {
        let reporter = Reporter {
            controller: "dynamic-toolset".into(),
            instance: Some(reporter.to_string()),
        };
        Self {
            recorder: Recorder::new(client, reporter),
        }
    }

    /// A Warning Event on `cm`. Failures are logged, never fatal.
    pub async fn warn(&self, cm: &ConfigMap, reason: &str, action: &str, note: &str) {
        use kube::Resource;
        let event = Event {
            type_: EventType::Warning,
            reason: reason.into(),
            // Events take at most 1 kB of note.
            note: Some(note.chars().take(1000).collect()),
            action: action.into(),
            secondary: None,
        };
        if let Err(e) = self.recorder.publish(&event, &cm.object_ref(&())).await {
            tracing::warn!("cannot write Event {reason}: {e}");
        }
    }
}

/// What a write did.
pub struct WriteOutcome {
    /// The object as the API server stored it, if something was written.
    pub written: Option<Box<ConfigMap>>,
    /// 409 conflicts retried.
    pub conflicts: u64,
}

const MAX_ATTEMPTS: u32 = 5;

/// Brings the ConfigMap to `generated`, touching only generated keys (and creating
/// `overrides.yaml` when absent). Starts from `current` (the watch cache); on a conflict
/// re-reads from the API server and decides again.
pub async fn write(
    client: &kube::Client,
    opts: &ControllerOptions,
    mut current: Option<ConfigMap>,
    generated: &Generated,
) -> anyhow::Result<WriteOutcome> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), &opts.configmap_namespace);
    let mut conflicts = 0;
    for _ in 0..MAX_ATTEMPTS {
        let action = state::decide(current.as_ref().and_then(|c| c.data.as_ref()), generated);
        let result = match action {
            Action::Nothing => {
                return Ok(WriteOutcome {
                    written: None,
                    conflicts,
                });
            }
            Action::Create(data) => {
                let cm = build(opts, ConfigMap::default(), data);
                api.create(&PostParams::default(), &cm).await
            }
            Action::Update(data) => {
                // `current` carries metadata.resourceVersion: replace is a precondition.
                let base = current.clone().unwrap_or_default();
                let cm = build(opts, base, data);
                api.replace(&opts.configmap_name, &PostParams::default(), &cm)
                    .await
            }
        };
        match result {
            Ok(obj) => {
                return Ok(WriteOutcome {
                    written: Some(Box::new(obj)),
                    conflicts,
                });
            }
            Err(kube::Error::Api(s)) if s.code == 409 => {
                conflicts += 1;
                tracing::debug!("configmap write conflict ({}); re-reading", s.message);
                current = api
                    .get_opt(&opts.configmap_name)
                    .await
                    .context("re-reading the ConfigMap after a conflict")?;
            }
            Err(e) => {
                return Err(e).with_context(|| {
                    format!(
                        "writing ConfigMap {}/{}",
                        opts.configmap_namespace, opts.configmap_name
                    )
                });
            }
        }
    }
    anyhow::bail!(
        "ConfigMap {}/{}: still conflicting after {MAX_ATTEMPTS} attempts",
        opts.configmap_namespace,
        opts.configmap_name
    )
}

/// `base` with our data keys, labels, generated-at annotation and owner reference.
fn build(opts: &ControllerOptions, mut cm: ConfigMap, data: BTreeMap<String, String>) -> ConfigMap {
    cm.metadata.name = Some(opts.configmap_name.clone());
    cm.metadata.namespace = Some(opts.configmap_namespace.clone());
    let labels = cm.metadata.labels.get_or_insert_with(BTreeMap::new);
    for (k, v) in render::configmap_labels() {
        labels.insert(k.to_string(), v.to_string());
    }
    // Content changed (we only write when it did): stamp the time.
    cm.metadata
        .annotations
        .get_or_insert_with(BTreeMap::new)
        .insert(
            GENERATED_AT_ANNOTATION.to_string(),
            crate::pipeline::timestamp(),
        );
    if let Some(owner) = &opts.owner {
        let refs = cm.metadata.owner_references.get_or_insert_with(Vec::new);
        if !refs.iter().any(|r| r.uid == owner.uid) {
            refs.push(owner.clone());
        }
    }
    cm.data.get_or_insert_with(BTreeMap::new).extend(data);
    cm
}

/// Holds (or waits for) the leader Lease and publishes leadership on `tx` until
/// `shutdown`; then releases the lease. Survives API outages (rebuilds the manager).
pub async fn lead(
    client: kube::Client,
    opts: LeaderOptions,
    tx: watch::Sender<bool>,
    mut shutdown: watch::Receiver<bool>,
) {
    let secs = |d: Duration| d.as_secs().max(1);
    let duration = secs(opts.lease_duration);
    // Renew `grace` seconds before expiry: at the latest when renew_deadline has passed.
    let grace = duration
        .saturating_sub(secs(opts.renew_deadline))
        .clamp(1, duration.saturating_sub(1).max(1));
    loop {
        let manager =
            kube_lease_manager::LeaseManagerBuilder::new(client.clone(), &opts.lease_name)
                .with_namespace(&opts.lease_namespace)
                .with_identity(&opts.identity)
                .with_duration(duration)
                .with_grace(grace)
                .build()
                .await;
        let manager = match manager {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!("cannot set up leader election (retrying): {e}");
                let _ = tx.send(false);
                tokio::select! {
                    _ = shutdown.changed() => return,
                    _ = tokio::time::sleep(opts.retry_period) => continue,
                }
            }
        };
        let (mut rx, task) = manager.watch().await;
        // Declared after `rx`, so dropped first: when this future is cancelled (a crash,
        // [`super::Handle::abort`]) the manager stops before it could see its channel
        // close and release the lease.
        let task = super::AbortOnDrop::new(task);
        loop {
            tokio::select! {
                _ = shutdown.changed() => {
                    let _ = tx.send(false);
                    drop(rx);
                    // The manager task ends when its channel closes; release the lock.
                    let Some(task) = task.into_inner() else { return };
                    if let Ok(Ok(Ok(m))) = tokio::time::timeout(Duration::from_secs(3), task).await
                        && let Err(e) = m.release().await
                    {
                        tracing::warn!("cannot release the lease: {e}");
                    }
                    return;
                }
                r = rx.changed() => {
                    if r.is_err() {
                        tracing::warn!("leader election stopped; restarting it");
                        let _ = tx.send(false);
                        break;
                    }
                    let is_leader = *rx.borrow_and_update();
                    let _ = tx.send(is_leader);
                }
            }
        }
        tokio::time::sleep(opts.retry_period).await;
    }
}

/// The ownerReference to Deployment `name` in `namespace` (its uid is looked up).
pub async fn owner_reference(
    client: &kube::Client,
    namespace: &str,
    name: &str,
) -> anyhow::Result<k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference> {
    let api: Api<k8s_openapi::api::apps::v1::Deployment> =
        Api::namespaced(client.clone(), namespace);
    let dep = api
        .get(name)
        .await
        .with_context(|| format!("owner Deployment {namespace}/{name}"))?;
    Ok(
        k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference {
            api_version: "apps/v1".into(),
            kind: "Deployment".into(),
            name: name.to_string(),
            uid: dep.metadata.uid.unwrap_or_default(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        },
    )
}
