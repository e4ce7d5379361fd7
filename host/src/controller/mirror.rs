//! A watch-fed mirror of some objects, safe against relists: objects listed after a
//! (re)start are buffered and swapped in atomically when the list is complete, so a
//! restarted watch never shows an empty or partial view. Readers wait for `synced`.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use futures::{Stream, StreamExt};
use kube::runtime::watcher;
use tokio::sync::mpsc;

/// Objects keyed by `(namespace, name)`, converted by the caller.
#[derive(Debug)]
pub struct Mirror<V> {
    pub synced: bool,
    pub objects: BTreeMap<(String, String), V>,
    buffer: Option<BTreeMap<(String, String), V>>,
    /// Bumped on every applied change (for cheap "did anything change" checks).
    pub generation: u64,
}

impl<V> Default for Mirror<V> {
    fn default() -> Self {
        Self {
            synced: false,
            objects: BTreeMap::new(),
            buffer: None,
            generation: 0,
        }
    }
}

pub type Shared<V> = Arc<RwLock<Mirror<V>>>;

fn key_of<K: kube::Resource>(obj: &K) -> (String, String) {
    let meta = obj.meta();
    (
        meta.namespace.clone().unwrap_or_default(),
        meta.name.clone().unwrap_or_default(),
    )
}

/// Applies one watch event. `convert` returns None for objects to ignore (filtered out).
pub fn apply<K, V>(
    mirror: &mut Mirror<V>,
    event: watcher::Event<K>,
    convert: &impl Fn(&K) -> Option<V>,
) -> bool
where
    K: kube::Resource,
{
    match event {
        watcher::Event::Init => {
            mirror.buffer = Some(BTreeMap::new());
            false
        }
        watcher::Event::InitApply(obj) => {
            if let (Some(buf), Some(v)) = (mirror.buffer.as_mut(), convert(&obj)) {
                buf.insert(key_of(&obj), v);
            }
            false
        }
        watcher::Event::InitDone => {
            if let Some(buf) = mirror.buffer.take() {
                mirror.objects = buf;
            }
            mirror.synced = true;
            mirror.generation += 1;
            true
        }
        watcher::Event::Apply(obj) => {
            let key = key_of(&obj);
            match convert(&obj) {
                Some(v) => {
                    mirror.objects.insert(key, v);
                }
                None => {
                    mirror.objects.remove(&key);
                }
            }
            mirror.generation += 1;
            true
        }
        watcher::Event::Delete(obj) => {
            mirror.objects.remove(&key_of(&obj));
            mirror.generation += 1;
            true
        }
    }
}

/// Drives a watch stream into `shared`, signalling `changed` after each applied change.
/// Errors are logged; the stream (with backoff) goes on.
pub async fn run<K, V, S>(
    what: &'static str,
    stream: S,
    shared: Shared<V>,
    changed: mpsc::Sender<()>,
    convert: impl Fn(&K) -> Option<V>,
) where
    K: kube::Resource,
    S: Stream<Item = Result<watcher::Event<K>, watcher::Error>>,
{
    let mut stream = std::pin::pin!(stream);
    while let Some(item) = stream.next().await {
        match item {
            Ok(event) => {
                let notify = match shared.write() {
                    Ok(mut m) => apply(&mut m, event, &convert),
                    Err(_) => {
                        tracing::error!(what, "mirror lock poisoned");
                        return;
                    }
                };
                if notify {
                    // Capacity 1: a pending notification already covers this one.
                    let _ = changed.try_send(());
                }
            }
            Err(e) => tracing::warn!(what, error = %e, "watch failed; retrying with backoff"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;

    fn cm(name: &str) -> ConfigMap {
        let mut c = ConfigMap::default();
        c.metadata.name = Some(name.into());
        c.metadata.namespace = Some("ns".into());
        c
    }

    #[test]
    fn relist_swaps_atomically_and_keeps_old_view_meanwhile() {
        let conv = |c: &ConfigMap| c.metadata.name.clone();
        let mut m = Mirror::default();
        apply(&mut m, watcher::Event::Init, &conv);
        apply(&mut m, watcher::Event::InitApply(cm("a")), &conv);
        assert!(!m.synced);
        assert!(m.objects.is_empty());
        apply(&mut m, watcher::Event::InitDone, &conv);
        assert!(m.synced);
        assert_eq!(m.objects.len(), 1);
        // A relist (after an API outage) keeps showing the old view until it completes.
        apply(&mut m, watcher::Event::Init, &conv);
        assert_eq!(m.objects.len(), 1);
        apply(&mut m, watcher::Event::InitApply(cm("b")), &conv);
        assert!(m.objects.contains_key(&("ns".into(), "a".into())));
        apply(&mut m, watcher::Event::InitDone, &conv);
        assert_eq!(
            m.objects.keys().cloned().collect::<Vec<_>>(),
            vec![("ns".to_string(), "b".to_string())]
        );
        apply(&mut m, watcher::Event::Delete(cm("b")), &conv);
        assert!(m.objects.is_empty());
    }
}
