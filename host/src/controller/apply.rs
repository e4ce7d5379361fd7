//! The last step of the route: the ConfigMap write, by server-side apply.
//!
//! The applied object is [`render::configmap_object`] (what `discover --format
//! configmap` prints, without `overrides.yaml`) with the writer annotation, the optional
//! ownerReference and the resourceVersion the decision was made on. Applied with field
//! manager [`FIELD_MANAGER`] and force, it owns only the generated keys, our labels and
//! annotations: an admin's own keys are never touched. `overrides.yaml` is seeded, never
//! applied: written when the ConfigMap is created, or added when the key is absent, by
//! ordinary writes (not apply), so whoever edits it owns it and no apply removes it.
//!
//! Every write is conditional on the resourceVersion that [`state::may_write`] and the
//! size budget were checked against (or is a create): a conflict (409) is reported, the
//! loop re-reads the ConfigMap and decides again on its next pass.

use std::time::Duration;

use anyhow::Context;
use dynamic_toolset_core::render::{self, ConfigMapTarget, Generated, OVERRIDES_KEY};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams};
use serde_json::{Value, json};

use super::ControllerOptions;
use super::lease::{FIELD_MANAGER, post_params};
use super::state::{self, Action, Leadership, WRITER_ANNOTATION};

/// One API request of a ConfigMap write at most (the loop must not hang on it).
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a write did not happen.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("{0}")]
    Fenced(state::Fenced),
    #[error("{0}")]
    TooLarge(state::Oversize),
    /// The ConfigMap changed since it was read (409): decide again on a fresh view.
    #[error("ConfigMap changed since it was read: {0}")]
    Conflict(String),
    #[error(transparent)]
    Api(#[from] anyhow::Error),
}

/// What to write.
pub struct WriteRequest<'a> {
    /// The ConfigMap as last seen (None: absent), which `action` was decided on.
    pub current: Option<&'a ConfigMap>,
    /// [`state::decide`]'s answer (not [`Action::Nothing`]).
    pub action: &'a Action,
    pub generated: &'a Generated,
    /// Rendered size of every toolset entry (to name the large ones when refused).
    pub toolset_sizes: &'a [(String, usize)],
    pub leadership: &'a Leadership,
    /// The generated-at annotation's value.
    pub generated_at: String,
}

/// The ConfigMap object we write: [`render::configmap_object`] with the writer
/// annotation, the ownerReference (when configured) and, for an apply, the
/// resourceVersion precondition. `overrides`: Some only for a create (the seed).
pub fn object(
    opts: &ControllerOptions,
    generated: &Generated,
    overrides: Option<&str>,
    leadership: &Leadership,
    generated_at: &str,
    resource_version: Option<&str>,
) -> Value {
    let target = ConfigMapTarget {
        name: opts.configmap_name.clone(),
        namespace: opts.configmap_namespace.clone(),
        generated_at: generated_at.to_string(),
    };
    let mut obj = render::configmap_object(&target, generated, overrides);
    let meta = &mut obj["metadata"];
    meta["annotations"][WRITER_ANNOTATION] = Value::String(leadership.annotation());
    if let Some(owner) = &opts.owner {
        meta["ownerReferences"] = json!([owner]);
    }
    if let Some(rv) = resource_version {
        meta["resourceVersion"] = Value::String(rv.to_string());
    }
    obj
}

/// The merge patch that adds `overrides.yaml` (absent) to the ConfigMap at `rv`.
pub fn seed_patch(rv: Option<&str>, text: &str) -> Value {
    json!({
        "metadata": {"resourceVersion": rv},
        "data": {OVERRIDES_KEY: text},
    })
}

/// Carries out `req.action` after checking the size budget
/// ([`state::MAX_CONFIGMAP_DATA_BYTES`]) and leadership ([`state::may_write`]).
/// Returns the object as the API server stored it.
pub async fn write(
    client: &kube::Client,
    opts: &ControllerOptions,
    req: &WriteRequest<'_>,
) -> Result<ConfigMap, WriteError> {
    let data = req.current.and_then(|c| c.data.as_ref());
    let after = state::data_after(data, req.action).unwrap_or_default();
    state::check_size(&after, req.toolset_sizes, state::MAX_CONFIGMAP_DATA_BYTES)
        .map_err(WriteError::TooLarge)?;
    let written_by = req
        .current
        .and_then(|c| c.metadata.annotations.as_ref())
        .and_then(|a| a.get(WRITER_ANNOTATION))
        .map(String::as_str);
    state::may_write(req.leadership, written_by, std::time::Instant::now())
        .map_err(WriteError::Fenced)?;

    let api: Api<ConfigMap> = Api::namespaced(client.clone(), &opts.configmap_namespace);
    let object = |overrides: Option<&str>, rv: Option<&str>| {
        object(
            opts,
            req.generated,
            overrides,
            req.leadership,
            &req.generated_at,
            rv,
        )
    };
    match req.action {
        Action::Create(data) => {
            let seed = data.get(OVERRIDES_KEY).map(String::as_str);
            let cm: ConfigMap =
                serde_json::from_value(object(seed, None)).context("building the ConfigMap")?;
            request(opts, "creating", api.create(&post_params(), &cm)).await
        }
        Action::Update(keys) => {
            let mut current = req.current.cloned().unwrap_or_default();
            if let Some(text) = keys.get(OVERRIDES_KEY) {
                let rv = current.metadata.resource_version.as_deref();
                let params = PatchParams {
                    field_manager: Some(FIELD_MANAGER.to_string()),
                    ..PatchParams::default()
                };
                let patch = Patch::Merge(seed_patch(rv, text));
                current = request(
                    opts,
                    "seeding overrides.yaml in",
                    api.patch(&opts.configmap_name, &params, &patch),
                )
                .await?;
            }
            if keys.keys().all(|k| k == OVERRIDES_KEY) {
                return Ok(current);
            }
            let rv = current.metadata.resource_version.as_deref();
            let params = PatchParams::apply(FIELD_MANAGER).force();
            let patch = Patch::Apply(object(None, rv));
            request(
                opts,
                "applying",
                api.patch(&opts.configmap_name, &params, &patch),
            )
            .await
        }
        Action::Nothing => Ok(req.current.cloned().unwrap_or_default()),
    }
}

/// One request, bounded by [`WRITE_TIMEOUT`]; 409 is a [`WriteError::Conflict`].
async fn request(
    opts: &ControllerOptions,
    what: &str,
    call: impl std::future::Future<Output = kube::Result<ConfigMap>>,
) -> Result<ConfigMap, WriteError> {
    let context = || {
        format!(
            "{what} ConfigMap {}/{}",
            opts.configmap_namespace, opts.configmap_name
        )
    };
    match tokio::time::timeout(WRITE_TIMEOUT, call).await {
        Err(_) => Err(
            anyhow::anyhow!("timed out after {} s", WRITE_TIMEOUT.as_secs())
                .context(context())
                .into(),
        ),
        Ok(Ok(cm)) => Ok(cm),
        Ok(Err(kube::Error::Api(s))) if s.code == 409 => Err(WriteError::Conflict(s.message)),
        Ok(Err(e)) => Err(anyhow::Error::from(e).context(context()).into()),
    }
}

/// Reads the ConfigMap again (after a conflict).
pub async fn read(
    client: &kube::Client,
    opts: &ControllerOptions,
) -> anyhow::Result<Option<ConfigMap>> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), &opts.configmap_namespace);
    tokio::time::timeout(WRITE_TIMEOUT, api.get_opt(&opts.configmap_name))
        .await
        .map_err(|_| anyhow::anyhow!("timed out"))
        .context("re-reading the ConfigMap")?
        .context("re-reading the ConfigMap")
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use dynamic_toolset_core::overrides::Overrides;
    use dynamic_toolset_core::render::{
        DISCOVERY_KEY, Discovery, GENERATED_AT_ANNOTATION, OVERRIDES_EXAMPLE, TOOLSETS_KEY,
    };
    use dynamic_toolset_core::select::Selection;

    use super::*;

    fn opts(owner: bool) -> ControllerOptions {
        ControllerOptions {
            configmap_name: "cm".into(),
            configmap_namespace: "holmes".into(),
            owner: owner.then(
                || k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference {
                    api_version: "apps/v1".into(),
                    kind: "Deployment".into(),
                    name: "dynamic-toolset".into(),
                    uid: "u-1".into(),
                    controller: Some(true),
                    block_owner_deletion: Some(true),
                },
            ),
            namespaces: Arc::new(|_: &str| true),
            watch_namespaces: None,
            label_selector: None,
            policy: dynamic_toolset_core::gate::Policy::baseline("cluster.local"),
            debounce: Duration::from_millis(50),
            discovery_interval: Duration::from_secs(60),
            reconciliation_interval: Duration::from_secs(60),
            health: None,
            leader: None,
            reporter: "test".into(),
        }
    }

    /// The always-on configuration, as `discover` would render it with no Service.
    fn rendered() -> (Value, Discovery, Generated) {
        let out = crate::pipeline::assemble_output(
            &Selection::default(),
            &BTreeMap::new(),
            None,
            &Overrides::default(),
        );
        let discovery = Discovery::new(&out.assembly, &out.merge);
        let generated = Generated::render(&out.document, &discovery).unwrap();
        (out.document, discovery, generated)
    }

    const AT: &str = "2026-01-01T00:00:00Z";

    #[test]
    fn applied_object_is_render_configmaps_without_overrides() {
        let (document, discovery, generated) = rendered();
        let o = opts(false);
        let applied = object(
            &o,
            &generated,
            None,
            &Leadership::sole("me"),
            AT,
            Some("42"),
        );
        let target = ConfigMapTarget {
            name: "cm".into(),
            ..ConfigMapTarget::new("holmes", AT)
        };
        let mut want = render::render_configmap(&target, &document, None, &discovery).unwrap();
        want["data"].as_object_mut().unwrap().remove(OVERRIDES_KEY);
        want["metadata"]["annotations"][WRITER_ANNOTATION] = json!("me");
        want["metadata"]["resourceVersion"] = json!("42");
        assert_eq!(applied, want);
        // Owns only the generated keys, never the admin's overrides.
        let keys: Vec<&String> = applied["data"].as_object().unwrap().keys().collect();
        assert_eq!(keys, [TOOLSETS_KEY, DISCOVERY_KEY]);
        assert_eq!(
            applied["metadata"]["annotations"][GENERATED_AT_ANNOTATION],
            AT
        );
    }

    #[test]
    fn created_object_seeds_overrides_and_carries_the_owner() {
        let (document, discovery, generated) = rendered();
        let o = opts(true);
        let mine = "toolsets: {}\n";
        let created = object(
            &o,
            &generated,
            Some(mine),
            &Leadership::sole("me"),
            AT,
            None,
        );
        let target = ConfigMapTarget {
            name: "cm".into(),
            ..ConfigMapTarget::new("holmes", AT)
        };
        let want = render::render_configmap(&target, &document, Some(mine), &discovery).unwrap();
        assert_eq!(created["data"], want["data"]);
        assert_eq!(created["metadata"]["labels"], want["metadata"]["labels"]);
        assert_eq!(created["metadata"]["ownerReferences"][0]["uid"], "u-1");
        assert!(created["metadata"].get("resourceVersion").is_none());
        let cm: ConfigMap = serde_json::from_value(created).unwrap();
        assert_eq!(cm.data.unwrap()[OVERRIDES_KEY], mine);
    }

    #[test]
    fn seeding_adds_only_the_overrides_key_at_the_version_read() {
        let p = seed_patch(Some("7"), OVERRIDES_EXAMPLE);
        assert_eq!(p["metadata"]["resourceVersion"], "7");
        assert_eq!(p["data"].as_object().unwrap().len(), 1);
        assert_eq!(p["data"][OVERRIDES_KEY], OVERRIDES_EXAMPLE);
        // What decides the seed: an existing ConfigMap without the key gets the example,
        // one with it never gets it written.
        let g = rendered().2;
        let without = BTreeMap::from([
            (TOOLSETS_KEY.to_string(), g.toolsets_yaml.clone()),
            (DISCOVERY_KEY.to_string(), g.discovery_json.clone()),
        ]);
        assert_eq!(
            state::decide(Some(&without), &g, None),
            Action::Update(BTreeMap::from([(
                OVERRIDES_KEY.to_string(),
                OVERRIDES_EXAMPLE.to_string()
            )]))
        );
        let mut with = without.clone();
        with.insert(OVERRIDES_KEY.into(), "admin".into());
        assert_eq!(state::decide(Some(&with), &g, None), Action::Nothing);
    }
}
