//! Kubernetes writes: the ConfigMap (with resourceVersion preconditions and conflict
//! retries), Events, and the leader Lease.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context;
use dynamic_toolset_core::render::{self, GENERATED_AT_ANNOTATION};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::Api;

use super::ControllerOptions;
use super::lease::post_params;
use super::state::{self, Action, Generated, Leadership, WRITER_ANNOTATION};

/// Writes Warning Events about the ConfigMap: each distinct (reason, note) once per
/// [`EVENT_REPEAT_AFTER`], so a failure repeated every loop step raises one Event, and a
/// different error raises its own (with its own message). Every Event is a new object:
/// kube's Recorder would patch the first one's series and keep its old note.
pub struct EventSink {
    client: kube::Client,
    instance: String,
    sent: std::collections::HashMap<String, (String, std::time::Instant)>,
}

/// A repeated identical Event is raised again after this long.
pub const EVENT_REPEAT_AFTER: Duration = Duration::from_secs(600);

impl EventSink {
    pub fn new(client: kube::Client, reporter: &str) -> Self {
        Self {
            client,
            instance: reporter.to_string(),
            sent: std::collections::HashMap::new(),
        }
    }

    /// A Warning Event on the ConfigMap `namespace/name` (which may not exist).
    /// Failures are logged, never fatal. Returns true when an Event was written.
    pub async fn warn(
        &mut self,
        namespace: &str,
        name: &str,
        reason: &str,
        action: &str,
        note: &str,
    ) -> bool {
        use k8s_openapi::api::core::v1::ObjectReference;
        use k8s_openapi::api::events::v1::Event;
        use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
        // Events take at most 1 kB of note.
        let note: String = note.chars().take(1000).collect();
        let now = std::time::Instant::now();
        if let Some((last, at)) = self.sent.get(reason)
            && *last == note
            && now.duration_since(*at) < EVENT_REPEAT_AFTER
        {
            return false;
        }
        let stamp = k8s_openapi::jiff::Timestamp::now();
        let event = Event {
            metadata: ObjectMeta {
                // As kubectl and client-go name them: unique per instant.
                name: Some(format!("{name}.{:x}", stamp.as_nanosecond())),
                namespace: Some(namespace.to_string()),
                ..Default::default()
            },
            action: Some(action.to_string()),
            reason: Some(reason.to_string()),
            note: Some(note.clone()),
            type_: Some("Warning".into()),
            event_time: Some(MicroTime(stamp)),
            reporting_controller: Some("dynamic-toolset".into()),
            reporting_instance: Some(self.instance.clone()),
            regarding: Some(ObjectReference {
                api_version: Some("v1".into()),
                kind: Some("ConfigMap".into()),
                name: Some(name.to_string()),
                namespace: Some(namespace.to_string()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let api: Api<Event> = Api::namespaced(self.client.clone(), namespace);
        match tokio::time::timeout(EVENT_TIMEOUT, api.create(&post_params(), &event)).await {
            Ok(Ok(_)) => {
                self.sent.insert(reason.to_string(), (note, now));
                true
            }
            Ok(Err(e)) => {
                tracing::warn!("cannot write Event {reason}: {e}");
                false
            }
            Err(_) => {
                tracing::warn!("cannot write Event {reason}: timed out");
                false
            }
        }
    }
}

const EVENT_TIMEOUT: Duration = Duration::from_secs(5);
/// One API request of a ConfigMap write at most (the loop must not hang on it).
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a write did not happen.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("{0}")]
    Fenced(state::Fenced),
    #[error("{0}")]
    TooLarge(state::Oversize),
    #[error(transparent)]
    Api(#[from] anyhow::Error),
}

/// What a write did.
pub struct WriteOutcome {
    /// The object as the API server stored it, if something was written.
    pub written: Option<Box<ConfigMap>>,
    /// 409 conflicts retried.
    pub conflicts: u64,
}

const MAX_ATTEMPTS: u32 = 5;

/// What to write, besides the generated keys.
pub struct WriteRequest<'a> {
    pub generated: &'a Generated,
    /// `overrides.yaml` for a (re)created ConfigMap (else the example).
    pub last_overrides: Option<&'a str>,
    /// Rendered size of every toolset entry (to name the large ones when refused).
    pub toolset_sizes: &'a [(String, usize)],
    pub leadership: &'a Leadership,
}

/// Brings the ConfigMap to `generated`, touching only generated keys (and creating
/// `overrides.yaml` when absent). Starts from `current` (the watch cache); on a conflict
/// re-reads from the API server and decides again. Before every attempt the leadership
/// is checked against the clock and against the object's last writer ([`state::may_write`]),
/// and the size against [`state::MAX_CONFIGMAP_DATA_BYTES`]; every write carries the
/// object's resourceVersion (or is a create), so the check holds for what is replaced.
pub async fn write(
    client: &kube::Client,
    opts: &ControllerOptions,
    mut current: Option<ConfigMap>,
    req: &WriteRequest<'_>,
) -> Result<WriteOutcome, WriteError> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), &opts.configmap_namespace);
    let mut conflicts = 0;
    let what = || {
        format!(
            "writing ConfigMap {}/{}",
            opts.configmap_namespace, opts.configmap_name
        )
    };
    for _ in 0..MAX_ATTEMPTS {
        let data = current.as_ref().and_then(|c| c.data.as_ref());
        let action = state::decide(data, req.generated, req.last_overrides);
        let Some(after) = state::data_after(data, &action) else {
            return Ok(WriteOutcome {
                written: None,
                conflicts,
            });
        };
        state::check_size(&after, req.toolset_sizes, state::MAX_CONFIGMAP_DATA_BYTES)
            .map_err(WriteError::TooLarge)?;
        let written_by = current
            .as_ref()
            .and_then(|c| c.metadata.annotations.as_ref())
            .and_then(|a| a.get(WRITER_ANNOTATION))
            .map(String::as_str);
        state::may_write(req.leadership, written_by, std::time::Instant::now())
            .map_err(WriteError::Fenced)?;
        let (create, data) = match action {
            Action::Create(data) => (true, data),
            Action::Update(data) => (false, data),
            Action::Nothing => (false, BTreeMap::new()),
        };
        let request = async {
            if create {
                let cm = build(opts, ConfigMap::default(), data, req.leadership);
                api.create(&post_params(), &cm).await
            } else {
                // `current` carries metadata.resourceVersion: replace is a precondition.
                let base = current.clone().unwrap_or_default();
                let cm = build(opts, base, data, req.leadership);
                api.replace(&opts.configmap_name, &post_params(), &cm).await
            }
        };
        let result = tokio::time::timeout(WRITE_TIMEOUT, request)
            .await
            .map_err(|_| anyhow::anyhow!("timed out after {} s", WRITE_TIMEOUT.as_secs()))
            .with_context(what)?;
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
                current = tokio::time::timeout(WRITE_TIMEOUT, api.get_opt(&opts.configmap_name))
                    .await
                    .map_err(|_| anyhow::anyhow!("timed out"))
                    .context("re-reading the ConfigMap after a conflict")?
                    .context("re-reading the ConfigMap after a conflict")?;
            }
            Err(e) => return Err(anyhow::Error::from(e).context(what()).into()),
        }
    }
    Err(anyhow::anyhow!(
        "ConfigMap {}/{}: still conflicting after {MAX_ATTEMPTS} attempts",
        opts.configmap_namespace,
        opts.configmap_name
    )
    .into())
}

/// `base` with our data keys, labels, generated-at annotation and owner reference.
fn build(
    opts: &ControllerOptions,
    mut cm: ConfigMap,
    data: BTreeMap<String, String>,
    leadership: &Leadership,
) -> ConfigMap {
    cm.metadata.name = Some(opts.configmap_name.clone());
    cm.metadata.namespace = Some(opts.configmap_namespace.clone());
    let labels = cm.metadata.labels.get_or_insert_with(BTreeMap::new);
    for (k, v) in render::configmap_labels() {
        labels.insert(k.to_string(), v.to_string());
    }
    // Content changed (we only write when it did): stamp the time and the writer.
    let annotations = cm.metadata.annotations.get_or_insert_with(BTreeMap::new);
    annotations.insert(
        GENERATED_AT_ANNOTATION.to_string(),
        crate::pipeline::timestamp(),
    );
    annotations.insert(WRITER_ANNOTATION.to_string(), leadership.annotation());
    if let Some(owner) = &opts.owner {
        let refs = cm.metadata.owner_references.get_or_insert_with(Vec::new);
        if !refs.iter().any(|r| r.uid == owner.uid) {
            refs.push(owner.clone());
        }
    }
    cm.data.get_or_insert_with(BTreeMap::new).extend(data);
    cm
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
