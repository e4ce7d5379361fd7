//! A watch-fed mirror of some objects, safe against relists: objects listed after a
//! (re)start are buffered and swapped in atomically when the list is complete, so a
//! restarted watch never shows an empty or partial view. Readers wait for `synced`. The
//! mirror stores what the watch converted ([`Change`]); it never converts.

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
    /// Lists in progress, by scope: `None` for a cluster-wide (or single) watch, the
    /// namespace for one of several namespaced watches feeding this mirror.
    buffers: BTreeMap<Option<String>, BTreeMap<(String, String), V>>,
    /// Scopes whose first list has not completed yet: `synced` waits for all of them.
    pending: std::collections::BTreeSet<Option<String>>,
    /// Bumped on every applied change (for cheap "did anything change" checks).
    pub generation: u64,
    /// Lists completed (swapped in) since start: a relist is done when this grows.
    pub lists_completed: u64,
}

impl<V> Default for Mirror<V> {
    fn default() -> Self {
        Self {
            synced: false,
            objects: BTreeMap::new(),
            buffers: BTreeMap::new(),
            pending: std::collections::BTreeSet::new(),
            generation: 0,
            lists_completed: 0,
        }
    }
}

pub type Shared<V> = Arc<RwLock<Mirror<V>>>;

fn key_of<K: kube::Resource>(obj: &K) -> Key {
    let meta = obj.meta();
    (
        meta.namespace.clone().unwrap_or_default(),
        meta.name.clone().unwrap_or_default(),
    )
}

impl<V> Mirror<V> {
    /// Every entry: the current view, then the objects of lists still in progress (not
    /// yet swapped in). A key can appear in both.
    pub fn entries(&self) -> impl Iterator<Item = (&(String, String), &V)> {
        self.objects
            .iter()
            .chain(self.buffers.values().flat_map(|b| b.iter()))
    }

    /// The entries of `key` (current view and lists in progress), for in-place updates.
    pub fn entries_mut<'a>(
        &'a mut self,
        key: &'a (String, String),
    ) -> impl Iterator<Item = &'a mut V> + 'a {
        self.objects.get_mut(key).into_iter().chain(
            self.buffers
                .values_mut()
                .filter_map(move |b| b.get_mut(key)),
        )
    }

    /// Declares the namespaced watches that will feed this mirror (one per namespace):
    /// it is `synced` only once each of them has listed. No effect once synced (a
    /// restarted watch keeps the old view until its list completes).
    /// True while a (re)list is in progress.
    pub fn listing(&self) -> bool {
        !self.buffers.is_empty()
    }

    pub fn expect_scopes<'a>(&mut self, namespaces: impl IntoIterator<Item = &'a str>) {
        if !self.synced {
            self.pending = namespaces
                .into_iter()
                .map(|n| Some(n.to_string()))
                .collect();
        }
    }
}

/// `(namespace, name)` of an object.
pub type Key = (String, String);

/// A watch event whose object is already converted (`None`: filtered out), so the mirror
/// stores what the watch made of it and never calls back into it.
#[derive(Debug)]
pub enum Change<V> {
    /// A (re)list starts.
    Init,
    /// An object of the list in progress.
    Listed(Key, Option<V>),
    /// The list is complete: it replaces the view (of its scope).
    InitDone,
    /// An object was created or changed.
    Applied(Key, Option<V>),
    Deleted(Key),
}

impl<V> Change<V> {
    /// Converts one watch event's object with `convert`.
    pub fn of<K: kube::Resource>(
        event: watcher::Event<K>,
        convert: impl Fn(&K) -> Option<V>,
    ) -> Self {
        match event {
            watcher::Event::Init => Change::Init,
            watcher::Event::InitApply(obj) => Change::Listed(key_of(&obj), convert(&obj)),
            watcher::Event::InitDone => Change::InitDone,
            watcher::Event::Apply(obj) => Change::Applied(key_of(&obj), convert(&obj)),
            watcher::Event::Delete(obj) => Change::Deleted(key_of(&obj)),
        }
    }
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
    apply_scoped(mirror, None, event, convert)
}

/// [`apply`] for an event of the namespaced watch of `scope`.
pub fn apply_scoped<K, V>(
    mirror: &mut Mirror<V>,
    scope: Option<&str>,
    event: watcher::Event<K>,
    convert: &impl Fn(&K) -> Option<V>,
) -> bool
where
    K: kube::Resource,
{
    apply_change(mirror, scope, Change::of(event, convert))
}

/// Applies one change of the watch of `scope` (None: a watch whose list replaces the
/// whole mirror; a completed list of a namespaced watch replaces only the objects of its
/// namespace). True when a consumer should look (the view changed, or an object was
/// listed).
pub fn apply_change<V>(mirror: &mut Mirror<V>, scope: Option<&str>, change: Change<V>) -> bool {
    let scope = scope.map(str::to_string);
    match change {
        Change::Init => {
            mirror.buffers.insert(scope, BTreeMap::new());
            false
        }
        Change::Listed(key, value) => {
            // Signalled (the view is unchanged): a consumer may process listed objects
            // while the list goes on, e.g. the detection worker, so a large list is never
            // held whole in its unprocessed form.
            if let (Some(buf), Some(v)) = (mirror.buffers.get_mut(&scope), value) {
                buf.insert(key, v);
                return true;
            }
            false
        }
        Change::InitDone => {
            if let Some(buf) = mirror.buffers.remove(&scope) {
                match &scope {
                    None => mirror.objects = buf,
                    Some(ns) => {
                        mirror.objects.retain(|(n, _), _| n != ns);
                        mirror.objects.extend(buf);
                    }
                }
            }
            mirror.pending.remove(&scope);
            mirror.synced = mirror.pending.is_empty();
            mirror.generation += 1;
            mirror.lists_completed += 1;
            true
        }
        Change::Applied(key, value) => {
            match value {
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
        Change::Deleted(key) => {
            mirror.objects.remove(&key);
            mirror.generation += 1;
            true
        }
    }
}

/// Stores a stream of converted changes in `shared`, each tagged with the namespace of
/// its watch (None: a single watch), signalling `changed` after each change a consumer
/// should see. Errors are logged; the stream (with backoff) goes on.
pub async fn run<V, S>(what: &'static str, stream: S, shared: Shared<V>, changed: mpsc::Sender<()>)
where
    S: Stream<Item = (Option<String>, Result<Change<V>, watcher::Error>)>,
{
    let mut stream = std::pin::pin!(stream);
    while let Some((scope, item)) = stream.next().await {
        match item {
            Ok(change) => {
                let notify = match shared.write() {
                    Ok(mut m) => apply_change(&mut m, scope.as_deref(), change),
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
            Err(e) => {
                tracing::warn!(what, namespace = scope.as_deref(), error = %e, "watch failed; retrying with backoff")
            }
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

    #[test]
    fn listed_objects_are_reachable_before_the_swap() {
        let conv = |c: &ConfigMap| c.metadata.name.clone();
        let mut m = Mirror::default();
        apply(&mut m, watcher::Event::Init, &conv);
        apply(&mut m, watcher::Event::InitApply(cm("a")), &conv);
        apply(&mut m, watcher::Event::InitDone, &conv);
        // A relist in progress: "a" listed again, "b" new; the view still shows the old "a".
        apply(&mut m, watcher::Event::Init, &conv);
        assert!(
            apply(&mut m, watcher::Event::InitApply(cm("b")), &conv),
            "a listed object is signalled so a consumer can process it at once"
        );
        apply(&mut m, watcher::Event::InitApply(cm("a")), &conv);
        let keys: Vec<_> = m.entries().map(|(k, _)| k.1.clone()).collect();
        assert_eq!(keys, ["a", "a", "b"]);
        // Updated in place, in the view and in the list: the swap keeps the listed value.
        let key = ("ns".to_string(), "a".to_string());
        for v in m.entries_mut(&key) {
            v.push_str("-seen");
        }
        assert_eq!(m.objects[&key], "a-seen");
        apply(&mut m, watcher::Event::InitDone, &conv);
        assert_eq!(m.objects[&key], "a-seen");
        assert_eq!(m.objects.len(), 2);
    }

    fn cm_in(ns: &str, name: &str) -> ConfigMap {
        let mut c = cm(name);
        c.metadata.namespace = Some(ns.into());
        c
    }

    #[test]
    fn namespaced_watches_sync_together_and_relist_only_their_namespace() {
        let conv = |c: &ConfigMap| c.metadata.name.clone();
        let mut m = Mirror::default();
        m.expect_scopes(["a", "b"]);
        apply_scoped(&mut m, Some("a"), watcher::Event::Init, &conv);
        apply_scoped(&mut m, Some("b"), watcher::Event::Init, &conv);
        apply_scoped(
            &mut m,
            Some("a"),
            watcher::Event::InitApply(cm_in("a", "x")),
            &conv,
        );
        apply_scoped(&mut m, Some("a"), watcher::Event::InitDone, &conv);
        assert!(!m.synced, "b has not listed yet");
        apply_scoped(
            &mut m,
            Some("b"),
            watcher::Event::InitApply(cm_in("b", "y")),
            &conv,
        );
        apply_scoped(&mut m, Some("b"), watcher::Event::InitDone, &conv);
        assert!(m.synced);
        assert_eq!(m.objects.len(), 2);
        // b relists (its watch restarted) with nothing: a's objects stay.
        apply_scoped(&mut m, Some("b"), watcher::Event::Init, &conv);
        apply_scoped(&mut m, Some("b"), watcher::Event::InitDone, &conv);
        assert_eq!(
            m.objects.keys().cloned().collect::<Vec<_>>(),
            vec![("a".to_string(), "x".to_string())]
        );
        // Declaring scopes after sync does not unsync.
        m.expect_scopes(["a", "b"]);
        assert!(m.synced);
    }
}
