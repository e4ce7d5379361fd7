//! Assembly: the selection plus health results become HolmesGPT's `toolsets:` map.
//!
//! Rules (all deterministic; see `tests/holmes/NOTES.md` for the HolmesGPT facts):
//! - Every entry has `enabled: true`; [`ALWAYS_ON`] toolsets are always present.
//! - An installation whose probe answered [`Health::Unhealthy`] is left out (recorded in
//!   [`Assembly::left_out`] with the reason). [`Health::NotChecked`] (no probe declared,
//!   or no result given) is kept.
//! - Built-in toolset, one installation: `config` is the fragment's config.
//! - Built-in toolset, several installations, toolset in [`MULTI_INSTANCE_TOOLSETS`]:
//!   `config: {instances: [{name: <instance name>, ...config}, ...]}` ordered by instance
//!   key; the name is the instance key made DNS-label-like (`monitoring/kps` →
//!   `monitoring-kps`), with `-2`, `-3`... appended on collision.
//! - Built-in toolset, several installations, toolset not multi-instance: one is kept,
//!   chosen by [`preference`] (namespace trusted with credentials first, then one that
//!   looks like a monitoring namespace, then highest rank, then instance key); the
//!   others are left out with
//!   [`LeftOutReason::AnotherInstancePreferred`] and a note.
//! - Toolsets the host builds ([`catalog::is_http_toolset`]: Alertmanager, Jaeger), and
//!   those a detector describes as an HTTP API ([`Fragment::http`](crate::Fragment),
//!   contract 1.2), are HolmesGPT `type: http` entries ([`catalog::http_entry`]: GET on the
//!   endpoint's API paths only, no shell); custom toolsets a detector defined (`custom`, only where an
//!   operator granted it) keep their tools. One entry per installation. The preferred
//!   installation (same [`preference`] order) gets the detector's toolset name; every
//!   other one gets `<toolset>-<namespace>-<service>` and its tool names get the suffix
//!   `_<namespace>_<service>` (HolmesGPT keys tools by name across toolsets, so equal
//!   names would shadow each other).

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::catalog;
use crate::model::{CustomToolset, ServiceRef};
use crate::select::{Candidate, InstanceGroup, InstanceKey, Selection};

/// Toolsets every generated configuration enables.
pub const ALWAYS_ON: &[&str] = &["kubernetes/core", "kubernetes/logs"];

/// Built-in toolsets HolmesGPT 0.45.0 wraps with `multi_instance` (accept
/// `config: {instances: [...]}`), from `holmes/plugins/toolsets/__init__.py`.
pub const MULTI_INSTANCE_TOOLSETS: &[&str] = &[
    "MongoDBAtlas",
    "confluence",
    "coralogix",
    "datadog/general",
    "datadog/logs",
    "datadog/metrics",
    "datadog/traces",
    "elasticsearch/cluster",
    "elasticsearch/data",
    "grafana/dashboards",
    "grafana/loki",
    "grafana/tempo",
    "newrelic",
    "prometheus/metrics",
    "servicenow/tables",
    "victorialogs",
];

/// Toolset names HolmesGPT 0.45.0 ships (`load_builtin_toolsets()`, checked with the
/// installed package). Any other name in the file is a custom toolset and needs
/// `description` and `tools`.
pub const BUILTIN_TOOLSETS: &[&str] = &[
    "MongoDBAtlas",
    "aks/core",
    "aks/node-health",
    "argocd/core",
    "bash",
    "cilium/core",
    "confluence",
    "connectivity_check",
    "coralogix",
    "core_investigation",
    "crossplane/core",
    "database/sql",
    "datadog/general",
    "datadog/logs",
    "datadog/metrics",
    "datadog/traces",
    "docker/core",
    "elasticsearch/cluster",
    "elasticsearch/data",
    "grafana/dashboards",
    "grafana/loki",
    "grafana/tempo",
    "helm/core",
    "hubble/observability",
    "inspektor-gadget/node",
    "inspektor-gadget/tcpdump",
    "internet",
    "kafka/admin",
    "kubernetes/core",
    "kubernetes/kube-prometheus-stack",
    "kubernetes/live-metrics",
    "kubernetes/logs",
    "kubevela/core",
    "newrelic",
    "notion",
    "opensearch/query_assist",
    "openshift/core",
    "openshift/live-metrics",
    "openshift/logs",
    "openshift/security",
    "prometheus/metrics",
    "prometheus/multi-tenant-metrics",
    "rabbitmq/core",
    "robusta",
    "servicenow/tables",
    "skills",
    "slab",
    "victorialogs",
];

/// Whether HolmesGPT 0.45.0 ships a toolset of this name.
pub fn is_builtin(toolset: &str) -> bool {
    BUILTIN_TOOLSETS.contains(&toolset)
}

/// Whether HolmesGPT or the host already owns the toolset name: a HolmesGPT built-in, or
/// one of the `type: http` toolsets the host builds. A detector's own custom toolset (a
/// grant's `allow_commands`) may never take such a name.
pub fn is_reserved_toolset(toolset: &str) -> bool {
    is_builtin(toolset) || catalog::is_http_toolset(toolset)
}

/// A namespace containing one of these words is preferred when only one installation
/// of a toolset can be kept.
pub const MONITORING_NAMESPACE_HINTS: &[&str] = &["monitoring", "observability"];

/// Whether HolmesGPT accepts `config.instances` for this toolset.
pub fn supports_instances(toolset: &str) -> bool {
    MULTI_INSTANCE_TOOLSETS.contains(&toolset)
}

/// Result of a chosen candidate's health probe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Health {
    Healthy,
    Unhealthy {
        reason: String,
    },
    /// No probe declared, or the host did not run it.
    #[default]
    NotChecked,
}

impl fmt::Display for Health {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Health::Healthy => f.write_str("healthy"),
            Health::Unhealthy { reason } => write!(f, "unhealthy: {reason}"),
            Health::NotChecked => f.write_str("not checked"),
        }
    }
}

/// How an output entry was produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryForm {
    /// One of [`ALWAYS_ON`], no backend behind it.
    AlwaysOn,
    /// Built-in toolset with a flat `config`.
    Single,
    /// Built-in toolset with `config.instances`.
    Instances,
    /// Custom toolset defined by the detector.
    Custom,
}

/// Where one backend behind an output toolset comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceProvenance {
    /// Installation key.
    pub instance: String,
    /// Name in `config.instances`, for [`EntryForm::Instances`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance_name: Option<String>,
    pub service: ServiceRef,
    pub detector: String,
    pub backend: String,
    pub endpoint: String,
    pub rank: u32,
    pub health: Health,
    /// When the probe ran (as passed in), if a result was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub probed_at: Option<String>,
}

/// Provenance of one output toolset entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolsetProvenance {
    /// Name in the output `toolsets:` map.
    pub toolset: String,
    /// Toolset name the detector used (differs for extra custom installations).
    pub detected_as: String,
    pub form: EntryForm,
    /// Ordered as in the output.
    pub instances: Vec<InstanceProvenance>,
}

/// Why a chosen candidate is not in the output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LeftOutReason {
    Unhealthy {
        reason: String,
    },
    /// The toolset takes a single installation and another one was preferred.
    AnotherInstancePreferred {
        chosen_instance: String,
        chosen_service: ServiceRef,
    },
}

impl fmt::Display for LeftOutReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LeftOutReason::Unhealthy { reason } => write!(f, "unhealthy: {reason}"),
            LeftOutReason::AnotherInstancePreferred {
                chosen_instance,
                chosen_service,
            } => write!(
                f,
                "toolset takes one installation; {chosen_instance} ({chosen_service}) preferred"
            ),
        }
    }
}

/// A chosen candidate that did not make it into the output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeftOut {
    pub toolset: String,
    pub instance: String,
    pub service: ServiceRef,
    pub detector: String,
    pub backend: String,
    pub endpoint: String,
    pub health: Health,
    pub reason: LeftOutReason,
}

/// Where a chosen installation ended up in the output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Placement {
    pub toolset: String,
    pub instance_name: Option<String>,
}

/// The assembled configuration and how it came about.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Assembly {
    /// HolmesGPT `toolsets:` entries by output name.
    pub toolsets: BTreeMap<String, Value>,
    /// Provenance by output name (every entry of `toolsets` has one).
    pub provenance: BTreeMap<String, ToolsetProvenance>,
    /// Chosen candidates left out, ordered by (toolset, instance).
    pub left_out: Vec<LeftOut>,
    /// Human-readable remarks (choices made, toolsets with no usable installation).
    pub notes: Vec<String>,
}

impl Assembly {
    /// The HolmesGPT configuration document: `{"toolsets": {...}}`.
    pub fn document(&self) -> Value {
        let toolsets: Map<String, Value> = self
            .toolsets
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        json!({ "toolsets": toolsets })
    }

    /// Where the installation `key` ended up, if it is in the output.
    pub fn placement(&self, key: &InstanceKey) -> Option<Placement> {
        self.provenance.values().find_map(|p| {
            (p.detected_as == key.toolset)
                .then(|| p.instances.iter().find(|i| i.instance == key.instance))
                .flatten()
                .map(|i| Placement {
                    toolset: p.toolset.clone(),
                    instance_name: i.instance_name.clone(),
                })
        })
    }

    /// Why the installation `key` was left out, if it was.
    pub fn left_out_reason(&self, key: &InstanceKey) -> Option<&LeftOut> {
        self.left_out
            .iter()
            .find(|l| l.toolset == key.toolset && l.instance == key.instance)
    }
}

/// A usable chosen candidate with its health.
struct Usable<'a> {
    group: &'a InstanceGroup,
    health: Health,
    probed_at: Option<String>,
}

impl Usable<'_> {
    fn chosen(&self) -> &Candidate {
        &self.group.chosen
    }

    fn provenance(&self, instance_name: Option<String>) -> InstanceProvenance {
        let c = self.chosen();
        InstanceProvenance {
            instance: c.fragment.instance.clone(),
            instance_name,
            service: c.service.clone(),
            detector: c.detector.clone(),
            backend: c.fragment.backend.clone(),
            endpoint: c.fragment.endpoint.clone(),
            rank: c.fragment.rank,
            health: self.health.clone(),
            probed_at: self.probed_at.clone(),
        }
    }

    fn left_out(&self, reason: LeftOutReason) -> LeftOut {
        let c = self.chosen();
        LeftOut {
            toolset: c.fragment.toolset.clone(),
            instance: c.fragment.instance.clone(),
            service: c.service.clone(),
            detector: c.detector.clone(),
            backend: c.fragment.backend.clone(),
            endpoint: c.fragment.endpoint.clone(),
            health: self.health.clone(),
            reason,
        }
    }
}

/// Whether a namespace looks like a monitoring namespace ([`MONITORING_NAMESPACE_HINTS`]).
pub fn is_monitoring_namespace(namespace: &str) -> bool {
    let ns = namespace.to_ascii_lowercase();
    MONITORING_NAMESPACE_HINTS.iter().any(|h| ns.contains(h))
}

/// Preference order among installations of one toolset when only one entry can carry
/// the plain name: namespace trusted with credentials first (a tenant's Service never
/// takes the name from the admin's backend), then monitoring-like namespace, then
/// highest rank, then instance key, then Service.
pub fn preference(candidate: &Candidate) -> (bool, bool, Reverse<u32>, &str, &ServiceRef) {
    (
        !candidate.trusted,
        !is_monitoring_namespace(&candidate.service.namespace),
        Reverse(candidate.fragment.rank),
        candidate.fragment.instance.as_str(),
        &candidate.service,
    )
}

/// Lowercase `[a-z0-9-]`, other characters become `-`, runs collapsed, trimmed.
fn dns_like(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        let c = ch.to_ascii_lowercase();
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let trimmed = out.trim_matches('-');
    if trimmed.is_empty() {
        "instance".to_string()
    } else {
        trimmed.to_string()
    }
}

/// `[A-Za-z0-9_]`, other characters become `_`.
fn ident_like(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

/// Returns `base`, or `base-2`, `base-3`... whichever is not yet in `taken`; records it.
fn unique(base: String, taken: &mut BTreeSet<String>) -> String {
    let mut name = base.clone();
    let mut n = 2;
    while taken.contains(&name) {
        name = format!("{base}-{n}");
        n += 1;
    }
    taken.insert(name.clone());
    name
}

fn custom_entry(custom: &CustomToolset, config: &Map<String, Value>, tool_suffix: &str) -> Value {
    let mut entry = Map::new();
    entry.insert("enabled".into(), Value::Bool(true));
    entry.insert(
        "description".into(),
        Value::String(custom.description.clone()),
    );
    if !custom.prerequisites.is_empty() {
        let prereqs = custom
            .prerequisites
            .iter()
            .map(|c| json!({ "command": c }))
            .collect();
        entry.insert("prerequisites".into(), Value::Array(prereqs));
    }
    let tools = custom
        .tools
        .iter()
        .map(|t| {
            json!({
                "name": format!("{}{}", t.name, tool_suffix),
                "description": t.description,
                "command": t.command,
            })
        })
        .collect();
    entry.insert("tools".into(), Value::Array(tools));
    if !config.is_empty() {
        entry.insert("config".into(), Value::Object(config.clone()));
    }
    Value::Object(entry)
}

/// A built-in toolset's entry; `backends` (of the installations in it) select the host's
/// entry-level additions ([`catalog::entry_extras`]).
fn builtin_entry(toolset: &str, backends: &[&str], config: Option<Value>) -> Value {
    let mut entry = Map::new();
    entry.insert("enabled".into(), Value::Bool(true));
    for (k, v) in catalog::entry_extras(toolset, backends) {
        entry.insert(k.into(), v);
    }
    if let Some(config) = config {
        entry.insert("config".into(), config);
    }
    Value::Object(entry)
}

/// Builds the HolmesGPT `toolsets:` map from the selection and the health results.
///
/// `health` maps a [`crate::select::ProbeRequest::key`] to its result; a missing key
/// means [`Health::NotChecked`]. `probed_at` is the time of that probe round (any text,
/// normally RFC 3339), recorded in the provenance of installations that have a result.
pub fn assemble(
    selection: &Selection,
    health: &BTreeMap<InstanceKey, Health>,
    probed_at: Option<&str>,
) -> Assembly {
    let mut out = Assembly::default();

    // 1. Health filter; split built-in and custom, by toolset.
    let mut builtin: BTreeMap<&str, Vec<Usable<'_>>> = BTreeMap::new();
    let mut custom: BTreeMap<&str, Vec<Usable<'_>>> = BTreeMap::new();
    for group in &selection.groups {
        let result = health.get(&group.key);
        let usable = Usable {
            group,
            health: result.cloned().unwrap_or_default(),
            probed_at: result.and(probed_at.map(str::to_string)),
        };
        if let Health::Unhealthy { reason } = &usable.health {
            out.left_out.push(usable.left_out(LeftOutReason::Unhealthy {
                reason: reason.clone(),
            }));
            continue;
        }
        let toolset = group.key.toolset.as_str();
        let fragment = &group.chosen.fragment;
        if fragment.custom.is_some() || fragment.http.is_some() || catalog::is_http_toolset(toolset)
        {
            custom.entry(toolset).or_default().push(usable);
        } else {
            builtin.entry(toolset).or_default().push(usable);
        }
    }

    // Toolsets every candidate of which was unhealthy.
    let mut unhealthy_only: BTreeSet<&str> =
        out.left_out.iter().map(|l| l.toolset.as_str()).collect();
    for name in builtin.keys().chain(custom.keys()) {
        unhealthy_only.remove(name);
    }
    for name in unhealthy_only {
        out.notes.push(format!(
            "{name}: every installation found is unhealthy; toolset not enabled"
        ));
    }

    let mut taken: BTreeSet<String> = BTreeSet::new();

    // 2. Built-in toolsets (they own their names).
    for (toolset, mut usables) in builtin {
        taken.insert(toolset.to_string());
        if usables.len() > 1 && supports_instances(toolset) {
            // `selection.groups` is ordered by key, so `usables` is ordered by instance.
            let mut names = BTreeSet::new();
            let mut instances = Vec::with_capacity(usables.len());
            let mut prov = Vec::with_capacity(usables.len());
            for u in &usables {
                let name = unique(dns_like(&u.chosen().fragment.instance), &mut names);
                let mut inst = Map::new();
                inst.insert("name".into(), Value::String(name.clone()));
                for (k, v) in &u.chosen().fragment.config {
                    if k != "name" {
                        inst.insert(k.clone(), v.clone());
                    }
                }
                instances.push(Value::Object(inst));
                prov.push(u.provenance(Some(name)));
            }
            out.toolsets.insert(
                toolset.to_string(),
                builtin_entry(
                    toolset,
                    &usables
                        .iter()
                        .map(|u| u.chosen().fragment.backend.as_str())
                        .collect::<Vec<_>>(),
                    Some(json!({ "instances": instances })),
                ),
            );
            out.provenance.insert(
                toolset.to_string(),
                ToolsetProvenance {
                    toolset: toolset.to_string(),
                    detected_as: toolset.to_string(),
                    form: EntryForm::Instances,
                    instances: prov,
                },
            );
            continue;
        }

        usables.sort_by(|a, b| preference(a.chosen()).cmp(&preference(b.chosen())));
        let mut iter = usables.into_iter();
        let Some(first) = iter.next() else { continue };
        let config = &first.chosen().fragment.config;
        out.toolsets.insert(
            toolset.to_string(),
            builtin_entry(
                toolset,
                &[first.chosen().fragment.backend.as_str()],
                (!config.is_empty()).then(|| Value::Object(config.clone())),
            ),
        );
        out.provenance.insert(
            toolset.to_string(),
            ToolsetProvenance {
                toolset: toolset.to_string(),
                detected_as: toolset.to_string(),
                form: EntryForm::Single,
                instances: vec![first.provenance(None)],
            },
        );
        let rest: Vec<_> = iter.collect();
        if !rest.is_empty() {
            let chosen = first.chosen();
            let others: Vec<String> = rest
                .iter()
                .map(|u| u.chosen().fragment.instance.clone())
                .collect();
            out.notes.push(format!(
                "{toolset}: HolmesGPT takes one installation; using {} ({}), left out: {}",
                chosen.fragment.instance,
                chosen.service,
                others.join(", ")
            ));
            for u in rest {
                out.left_out
                    .push(u.left_out(LeftOutReason::AnotherInstancePreferred {
                        chosen_instance: chosen.fragment.instance.clone(),
                        chosen_service: chosen.service.clone(),
                    }));
            }
        }
    }

    // 3. Custom toolsets: one entry per installation.
    for (toolset, mut usables) in custom {
        usables.sort_by(|a, b| preference(a.chosen()).cmp(&preference(b.chosen())));
        for (i, u) in usables.iter().enumerate() {
            let c = u.chosen();
            let entry = |suffix: &str| match &c.fragment.custom {
                Some(def) => Some(custom_entry(def, &c.fragment.config, suffix)),
                None => catalog::http_entry(
                    toolset,
                    c.fragment.http.as_ref(),
                    &c.fragment.endpoint,
                    c.fragment
                        .health
                        .as_ref()
                        .and_then(|h| h.url_for(&c.fragment.endpoint).ok())
                        .as_deref(),
                    c.fragment
                        .config
                        .get(catalog::VERIFY_SSL)
                        .and_then(Value::as_bool),
                ),
            };
            let (name, suffix) = if i == 0 && !taken.contains(toolset) {
                (unique(toolset.to_string(), &mut taken), String::new())
            } else {
                let svc = format!("{}-{}", c.service.namespace, c.service.name);
                (
                    unique(format!("{toolset}-{}", dns_like(&svc)), &mut taken),
                    format!(
                        "_{}_{}",
                        ident_like(&c.service.namespace),
                        ident_like(&c.service.name)
                    ),
                )
            };
            let Some(entry) = entry(&suffix) else {
                continue;
            };
            out.toolsets.insert(name.clone(), entry);
            out.provenance.insert(
                name.clone(),
                ToolsetProvenance {
                    toolset: name,
                    detected_as: toolset.to_string(),
                    form: EntryForm::Custom,
                    instances: vec![u.provenance(None)],
                },
            );
        }
    }

    // HolmesGPT keys non-MCP tools by name across toolsets: a later one shadows.
    let mut owners: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (toolset, entry) in &out.toolsets {
        for tool in entry
            .get("tools")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(name) = tool.get("name").and_then(Value::as_str) {
                owners.entry(name).or_default().push(toolset);
            }
        }
    }
    let shadowed: Vec<String> = owners
        .into_iter()
        .filter(|(_, ts)| ts.len() > 1)
        .map(|(tool, ts)| format!("tool `{tool}` is defined by {}", ts.join(" and ")))
        .collect();
    out.notes.extend(shadowed.into_iter().map(|n| {
        format!("{n}; HolmesGPT keeps only one tool of a name, rename it in the detector")
    }));

    // 4. Always-on toolsets.
    for name in ALWAYS_ON {
        if !out.toolsets.contains_key(*name) {
            out.toolsets
                .insert((*name).to_string(), builtin_entry(name, &[], None));
            out.provenance.insert(
                (*name).to_string(),
                ToolsetProvenance {
                    toolset: (*name).to_string(),
                    detected_as: (*name).to_string(),
                    form: EntryForm::AlwaysOn,
                    instances: Vec::new(),
                },
            );
        }
    }

    out.left_out.sort_by(|a, b| {
        (&a.toolset, &a.instance, &a.service).cmp(&(&b.toolset, &b.instance, &b.service))
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_like_names() {
        assert_eq!(
            dns_like("monitoring/kube-prometheus-stack"),
            "monitoring-kube-prometheus-stack"
        );
        assert_eq!(dns_like("A_B//c."), "a-b-c");
        assert_eq!(dns_like("//"), "instance");
    }

    #[test]
    fn unique_names_get_suffixes() {
        let mut taken = BTreeSet::new();
        assert_eq!(unique("a".into(), &mut taken), "a");
        assert_eq!(unique("a".into(), &mut taken), "a-2");
        assert_eq!(unique("a".into(), &mut taken), "a-3");
    }

    #[test]
    fn monitoring_namespaces() {
        assert!(is_monitoring_namespace("monitoring"));
        assert!(is_monitoring_namespace("cattle-monitoring-system"));
        assert!(is_monitoring_namespace("Observability"));
        assert!(!is_monitoring_namespace("default"));
    }
}
