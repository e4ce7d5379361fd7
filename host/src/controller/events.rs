//! Warning Events about the generated ConfigMap (invalid overrides, too large, write
//! failures), written beside it.

use std::time::Duration;

use kube::api::Api;

use super::lease::post_params;

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
