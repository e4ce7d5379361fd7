//! The validation gate: every fragment of every detector (bundled ones included) passes
//! here between detection and selection. HolmesGPT runs what our file says with its own
//! credentials, so what a Service or a detector puts in a fragment is untrusted input.
//!
//! A fragment is refused (dropped, with a [`GateNote`] naming the detector, toolset,
//! field and reason; the detector's other fragments and the other detectors stand) when:
//! - the Service is an `ExternalName` Service (an alias to any host, not a backend);
//! - its backend is not one the detector declared, or its toolset is not one the backend
//!   maps to ([`crate::catalog::toolsets_for`]): no `bash`, no `kubernetes/*`, no foreign
//!   built-in;
//! - it carries a custom toolset definition (tools, commands, prerequisites): the host
//!   builds the toolsets of backends HolmesGPT has no built-in for itself
//!   ([`crate::catalog::http_entry`]). Only a declared detector whose grant sets
//!   `allow_commands` and lists the toolset by name may, and then under a name that is
//!   neither a HolmesGPT built-in nor one the host builds (the catalog mapping of its
//!   backend does not apply to it);
//! - a toolset the detector describes as an HTTP API (contract 1.2 `http-apis`) passes
//!   without a catalog entry or a grant of commands (the host builds it as a HolmesGPT
//!   `type: http` toolset: GET only, on the fragment's endpoint), but only when a declared
//!   detector's grant lists it by name (its text reaches HolmesGPT's model), never under
//!   a reserved name and never with a custom definition; the gate attaches the API
//!   ([`Fragment::http`]) to the admitted fragment, replacing whatever it held;
//! - any text in it holds a template (`{{`, `}}`, `{%`, `%}`, `{#`, `#}`): HolmesGPT expands
//!   `{{ env.VAR }}` anywhere in its configuration;
//! - its endpoint is not in-cluster: it must be the given Service (DNS name
//!   `<svc>.<ns>.svc[.<domain>]` or its cluster IP) on one of its ports, or another
//!   Service of the same namespace (or of a namespace in [`Policy::endpoint_namespaces`]),
//!   or a host in [`Policy::external_hosts`]; never `kubernetes.default`, never an IP
//!   address other than the Service's cluster IP, no userinfo, query, fragment or
//!   characters outside `[A-Za-z0-9-._~/%]` in the path;
//! - it has no health probe, or the probe's port/path are not on that endpoint;
//! - its `config` holds a key other than the toolset's URL key (which must equal the
//!   endpoint) and `verify_ssl` (a boolean): credentials and headers come from the host.
//!
//! Admitted fragments get their rank clamped to [`MAX_RANK`] and, when the Service's
//! namespace is in [`Policy::credential_namespaces`], the credentials of
//! [`crate::catalog::credentials`]; elsewhere they are emitted without them (noted).
//!
//! Pure and cheap: no I/O, no allocation beyond the notes for a clean fragment.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::catalog;
use crate::model::{
    Detection, DetectorInfo, Fragment, GateNote, HttpApi, NoteKind, Scheme, ServiceDetections,
    ServiceSnapshot,
};

/// The highest rank a fragment may carry (the top band of the bundled detectors).
pub const MAX_RANK: u32 = 300;

/// Longest instance key accepted.
pub const MAX_INSTANCE_LEN: usize = 253;

/// What the admin allows beyond the baseline. The default is the baseline: credentials
/// nowhere, endpoints only in the Service's own namespace, no off-cluster host.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Policy {
    /// Cluster DNS domain, e.g. `cluster.local`, lowercase (the constructors lowercase it).
    pub cluster_domain: String,
    /// Namespaces whose backends receive `{{ env.* }}` credentials (exact names).
    pub credential_namespaces: BTreeSet<String>,
    /// Namespaces (besides the Service's own) an endpoint may point into.
    pub endpoint_namespaces: BTreeSet<String>,
    /// Off-cluster hosts an endpoint may name (`host` or `host:port`, lowercase).
    pub external_hosts: BTreeSet<String>,
}

impl Policy {
    /// The baseline for a cluster domain.
    pub fn baseline(cluster_domain: &str) -> Self {
        Policy {
            cluster_domain: cluster_domain.to_ascii_lowercase(),
            ..Policy::default()
        }
    }

    /// Whether backends in `namespace` may receive credentials.
    pub fn trusts_credentials(&self, namespace: &str) -> bool {
        self.credential_namespaces.contains(namespace)
    }
}

/// The backends each detector declared in its metadata: what it may emit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grants {
    backends: BTreeMap<String, BTreeSet<String>>,
    /// Toolsets of the detectors that declared them (contract 1.1 `setup.declares`).
    toolsets: BTreeMap<String, BTreeSet<String>>,
    /// What operators granted declared detectors (none for bundled ones: the baseline).
    granted: BTreeMap<String, DetectorGrant>,
    /// HTTP APIs of the detectors that describe any (contract 1.2 `http-apis`), by
    /// detector and toolset.
    http_apis: BTreeMap<String, BTreeMap<String, HttpApi>>,
}

/// What an operator grants one declared detector on top of the baseline.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DetectorGrant {
    /// Toolsets it may emit; none: whatever it declares and its backends allow.
    pub toolsets: Option<BTreeSet<String>>,
    /// Its endpoints may name other Services (of the Service's namespace, or of
    /// [`Policy::endpoint_namespaces`]); false: only the Service it was given.
    pub other_services: bool,
    /// It may define custom toolsets (tools that run commands in HolmesGPT).
    pub allow_commands: bool,
}

impl Grants {
    /// Grants from the loaded detectors' metadata.
    pub fn from_infos<'a>(infos: impl IntoIterator<Item = &'a DetectorInfo>) -> Self {
        let mut grants = Grants::default();
        for i in infos {
            grants
                .backends
                .insert(i.name.clone(), i.backends.iter().cloned().collect());
            if let Some(emits) = &i.emits {
                grants
                    .toolsets
                    .insert(i.name.clone(), emits.toolsets.iter().cloned().collect());
            }
            if !i.http_apis.is_empty() {
                let apis = i.http_apis.iter().map(|a| (a.toolset.clone(), a.clone()));
                grants.http_apis.insert(i.name.clone(), apis.collect());
            }
        }
        grants
    }

    /// The HTTP API `detector` describes for `toolset`, if any.
    fn http_api(&self, detector: &str, toolset: &str) -> Option<&HttpApi> {
        self.http_apis.get(detector)?.get(toolset)
    }

    /// Grants `detector` (a declared detector, by name) exactly `grant`.
    pub fn grant(&mut self, detector: &str, grant: DetectorGrant) {
        self.granted.insert(detector.to_string(), grant);
    }

    /// The toolsets `detector` declared, when it declared any.
    fn declared_toolsets(&self, detector: &str) -> Option<&BTreeSet<String>> {
        self.toolsets.get(detector)
    }

    fn allows_backend(&self, detector: &str, backend: &str) -> bool {
        self.backends
            .get(detector)
            .is_some_and(|b| b.contains(backend))
    }
}

struct Refusal {
    kind: NoteKind,
    field: String,
    message: String,
}

fn refuse(kind: NoteKind, field: impl Into<String>, message: impl Into<String>) -> Refusal {
    Refusal {
        kind,
        field: field.into(),
        message: message.into(),
    }
}

/// Text safe to show in a note: printable, at most 80 characters.
fn shown(s: &str) -> String {
    let mut out: String = s.chars().filter(|c| !c.is_control()).take(80).collect();
    if s.chars().count() > 80 {
        out.push('…');
    }
    out
}

/// Whether text holds a template opener/closer HolmesGPT (Jinja) would expand.
pub fn has_template(s: &str) -> bool {
    ["{{", "}}", "{%", "%}", "{#", "#}"]
        .iter()
        .any(|t| s.contains(t))
}

fn value_has_template(v: &Value) -> bool {
    match v {
        Value::String(s) => has_template(s),
        Value::Array(a) => a.iter().any(value_has_template),
        Value::Object(o) => o
            .iter()
            .any(|(k, v)| has_template(k) || value_has_template(v)),
        _ => false,
    }
}

/// Screens every matched fragment of one Service in place: refused fragments are removed
/// from their verdict, admitted ones clamped and given the host's credentials where
/// trusted. Everything done is recorded in `detections.gate`.
pub fn screen(
    svc: &ServiceSnapshot,
    detections: &mut ServiceDetections,
    grants: &Grants,
    policy: &Policy,
) {
    let trusted = policy.trusts_credentials(&svc.namespace);
    detections.trusted = trusted;
    let mut notes = Vec::new();
    for verdict in &mut detections.verdicts {
        let Ok(Detection::Matched(fragments)) = &mut verdict.outcome else {
            continue;
        };
        let detector = verdict.detector.as_str();
        fragments.retain_mut(|fragment| {
            let toolset = shown(&fragment.toolset);
            let note = |kind, field: String, message: String| GateNote {
                detector: detector.to_string(),
                toolset: toolset.clone(),
                kind,
                field,
                message,
            };
            match check(svc, detector, fragment, grants, policy) {
                Err(r) => {
                    notes.push(note(r.kind, r.field, r.message));
                    false
                }
                Ok(target) => {
                    let scheme = target.scheme;
                    // Only the host attaches an API, and only the detector's own.
                    fragment.http = grants.http_api(detector, &fragment.toolset).cloned();
                    let refused = screen_candidates(svc, detector, fragment, grants, policy, trusted);
                    for (field, r) in refused {
                        notes.push(note(r.kind, field, r.message));
                    }
                    if fragment.rank > MAX_RANK {
                        notes.push(note(
                            NoteKind::RankClamped,
                            "rank".into(),
                            format!("{} lowered to {MAX_RANK}", fragment.rank),
                        ));
                        fragment.rank = MAX_RANK;
                    }
                    let creds = catalog::credentials(&fragment.toolset, &fragment.backend, scheme);
                    if !creds.is_empty() {
                        if trusted {
                            add_credentials(&mut fragment.config, creds);
                        } else {
                            notes.push(note(
                                NoteKind::CredentialsWithheld,
                                "config".into(),
                                format!(
                                    "namespace {} is not in credential_namespaces: emitted without {}",
                                    svc.namespace,
                                    creds.iter().map(|c| c.key).collect::<Vec<_>>().join(", ")
                                ),
                            ));
                        }
                    }
                    true
                }
            }
        });
    }
    detections.gate = notes;
}

fn add_credentials(config: &mut serde_json::Map<String, Value>, creds: &[catalog::Credential]) {
    for c in creds {
        config.insert(c.key.to_string(), Value::String(c.value.to_string()));
    }
}

/// Screens an admitted fragment's candidates (contract 1.1 `identify`) as fragments of
/// their own: each must pass [`check`] and stay on the given Service (the host requests
/// each one's fingerprint, and only Services we discovered are ever requested).
/// Refused candidates are removed and returned with the field at fault; the admitted
/// ones get the credentials their scheme calls for, like the fragment.
fn screen_candidates(
    svc: &ServiceSnapshot,
    detector: &str,
    fragment: &mut Fragment,
    grants: &Grants,
    policy: &Policy,
    trusted: bool,
) -> Vec<(String, Refusal)> {
    let mut refused = Vec::new();
    let Some(id) = fragment.identification.take() else {
        return refused;
    };
    let mut kept = Vec::with_capacity(id.candidates.len());
    for (i, mut c) in id.candidates.into_iter().enumerate() {
        let alternative = Fragment {
            endpoint: c.endpoint.clone(),
            health: c.health.clone(),
            config: c.config.clone(),
            identification: None,
            ..fragment.clone()
        };
        let field = |f: &str| format!("identify.candidates[{i}].{f}");
        match check(svc, detector, &alternative, grants, policy) {
            Err(r) => refused.push((field(&r.field), r)),
            Ok(target) if !target.own => refused.push((
                field("endpoint"),
                endpoint_error(format!(
                    "a candidate must be on Service {}/{} itself",
                    svc.namespace, svc.name
                )),
            )),
            Ok(target) => {
                if trusted {
                    let creds =
                        catalog::credentials(&fragment.toolset, &fragment.backend, target.scheme);
                    add_credentials(&mut c.config, creds);
                }
                kept.push(c);
            }
        }
    }
    fragment.identification = Some(crate::model::Identification {
        candidates: kept,
        required: id.required,
    });
    refused
}

/// Checks one fragment; on success returns its validated endpoint.
fn check(
    svc: &ServiceSnapshot,
    detector: &str,
    f: &Fragment,
    grants: &Grants,
    policy: &Policy,
) -> Result<Target, Refusal> {
    if svc.service_type == "ExternalName" {
        return Err(refuse(
            NoteKind::ExternalName,
            "spec.type",
            "ExternalName Services alias an arbitrary host and are never backends",
        ));
    }
    for (field, text) in [
        ("toolset", &f.toolset),
        ("backend", &f.backend),
        ("instance", &f.instance),
        ("endpoint", &f.endpoint),
    ] {
        if has_template(text) {
            return Err(refuse(
                NoteKind::Template,
                field,
                format!("{:?} holds a template", shown(text)),
            ));
        }
    }
    if !grants.allows_backend(detector, &f.backend) {
        return Err(refuse(
            NoteKind::Toolset,
            "backend",
            format!(
                "backend {:?} is not one the detector declared",
                shown(&f.backend)
            ),
        ));
    }
    if let Some(declared) = grants.declared_toolsets(detector)
        && !declared.contains(&f.toolset)
    {
        return Err(refuse(
            NoteKind::Toolset,
            "toolset",
            format!(
                "toolset {:?} is not one the detector declared ({})",
                shown(&f.toolset),
                declared.iter().cloned().collect::<Vec<_>>().join(", ")
            ),
        ));
    }
    let granted = grants.granted.get(detector);
    if let Some(toolsets) = granted.and_then(|g| g.toolsets.as_ref())
        && !toolsets.contains(&f.toolset)
    {
        return Err(refuse(
            NoteKind::Grant,
            "toolset",
            format!(
                "toolset {:?} is outside the detector's grant ({})",
                shown(&f.toolset),
                toolsets.iter().cloned().collect::<Vec<_>>().join(", ")
            ),
        ));
    }
    // A detector's own custom toolset, under a name its grant lists and with commands
    // allowed, is outside the host's catalog: the catalog maps only backends the host knows.
    let own_custom = f.custom.is_some()
        && granted.is_some_and(|g| {
            g.allow_commands && g.toolsets.as_ref().is_some_and(|t| t.contains(&f.toolset))
        });
    // A toolset the detector describes as an HTTP API (contract 1.2): the host builds it
    // as a `type: http` toolset (GET only, on this fragment's endpoint), so it needs no
    // grant of commands and no catalog entry, only a name nobody else owns. Its
    // description and instructions reach HolmesGPT's model as written, so a declared
    // detector's grant must list it by name (the operator's consent to that text).
    let described = grants.http_api(detector, &f.toolset).is_some();
    if described
        && granted.is_some_and(|g| !g.toolsets.as_ref().is_some_and(|t| t.contains(&f.toolset)))
    {
        return Err(refuse(
            NoteKind::Grant,
            "toolset",
            format!(
                "{:?} is an HTTP API the detector describes, and its text reaches HolmesGPT's model: the grant must list it (grants.toolsets)",
                shown(&f.toolset)
            ),
        ));
    }
    if (own_custom || described) && crate::assemble::is_reserved_toolset(&f.toolset) {
        return Err(refuse(
            NoteKind::Toolset,
            "toolset",
            format!(
                "a detector's own toolset may not take the name {:?}: HolmesGPT or the host owns it",
                shown(&f.toolset)
            ),
        ));
    }
    let allowed = catalog::toolsets_for(&f.backend);
    if !own_custom && !described && !allowed.contains(&f.toolset.as_str()) {
        return Err(refuse(
            NoteKind::Toolset,
            "toolset",
            format!(
                "backend {} may only become {}{}",
                f.backend,
                if allowed.is_empty() {
                    "nothing (unknown backend)".to_string()
                } else {
                    allowed.join(", ")
                },
                if f.custom.is_some() {
                    "; a detector's own custom toolset needs a grant that lists it and sets allow_commands"
                } else {
                    ""
                }
            ),
        ));
    }
    if described && f.custom.is_some() {
        return Err(refuse(
            NoteKind::Commands,
            "custom",
            "a toolset the detector describes as an HTTP API is built by the host; it carries no custom definition",
        ));
    }
    if f.custom.is_some() && !granted.is_some_and(|g| g.allow_commands) {
        return Err(refuse(
            NoteKind::Commands,
            "custom",
            "custom toolset definitions (tools, commands, prerequisites) are not accepted from detectors; the host builds this toolset itself",
        ));
    }
    if f.instance.is_empty()
        || f.instance.len() > MAX_INSTANCE_LEN
        || f.instance.chars().any(char::is_control)
    {
        return Err(refuse(
            NoteKind::Instance,
            "instance",
            format!("must be 1 to {MAX_INSTANCE_LEN} printable characters"),
        ));
    }
    let target = check_endpoint(svc, &f.endpoint, policy)?;
    if !target.own && granted.is_some_and(|g| !g.other_services) {
        return Err(refuse(
            NoteKind::Grant,
            "endpoint",
            format!(
                "may only point at Service {}/{} itself (not granted other_services)",
                svc.namespace, svc.name
            ),
        ));
    }
    check_health(svc, f, &target)?;
    check_config(f)?;
    Ok(target)
}

/// A validated endpoint.
struct Target {
    scheme: Scheme,
    port: u16,
    /// The host is the given Service itself (its DNS name or cluster IP).
    own: bool,
}

fn endpoint_error(message: impl Into<String>) -> Refusal {
    refuse(NoteKind::Endpoint, "endpoint", message)
}

/// Characters accepted in an endpoint's (and a probe's) path.
fn path_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-._~/%".contains(c)
}

/// A DNS label as the apiserver accepts Service and namespace names.
fn dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// The form every bundled detector writes, checked without a URL parser:
/// `http(s)://<svc>.<ns>.svc.<domain>:<port>[/path]` with `<port>` one of the Service's.
/// Anything else (or any doubt) goes through [`check_endpoint`]'s full parse; what this
/// accepts is a subset of what that accepts.
fn own_service_endpoint(svc: &ServiceSnapshot, raw: &str, policy: &Policy) -> Option<Target> {
    if !dns_label(&svc.name) || !dns_label(&svc.namespace) {
        return None;
    }
    let (scheme, rest) = match raw.strip_prefix("http://") {
        Some(r) => (Scheme::Http, r),
        None => (Scheme::Https, raw.strip_prefix("https://")?),
    };
    let rest = rest
        .strip_prefix(svc.name.as_str())?
        .strip_prefix('.')?
        .strip_prefix(svc.namespace.as_str())?
        .strip_prefix(".svc.")?
        .strip_prefix(policy.cluster_domain.as_str())?
        .strip_prefix(':')?;
    let (port, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    if port.is_empty() || port.len() > 5 || !port.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let port: u16 = port.parse().ok().filter(|p| *p != 0)?;
    if !path.chars().all(path_char) || !svc.ports.iter().any(|p| p.port == port) {
        return None;
    }
    Some(Target {
        scheme,
        port,
        own: true,
    })
}

fn check_endpoint(svc: &ServiceSnapshot, raw: &str, policy: &Policy) -> Result<Target, Refusal> {
    if let Some(target) = own_service_endpoint(svc, raw, policy) {
        return Ok(target);
    }
    // What is published is the raw text (the parser would percent-encode `{`, quotes...):
    // judge its characters first. `[`/`]` only delimit an IPv6 host (a path with them is
    // refused below), `@` only gets its own message.
    if raw.contains(['?', '#']) {
        return Err(endpoint_error("must not have a query string or fragment"));
    }
    if !raw
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-._~:/%[]@".contains(c))
    {
        return Err(endpoint_error(
            "has characters outside [A-Za-z0-9-._~:/%] in its host or path (quotes, braces, spaces, backslashes...)",
        ));
    }
    // The text is not echoed: it may hold credentials (user:password@...).
    let url = url::Url::parse(raw).map_err(|e| endpoint_error(format!("not a URL: {e}")))?;
    let scheme = match url.scheme() {
        "http" => Scheme::Http,
        "https" => Scheme::Https,
        s => return Err(endpoint_error(format!("scheme {s:?} is not http or https"))),
    };
    if !url.username().is_empty() || url.password().is_some() {
        return Err(endpoint_error(
            "carries credentials (user:password@); the host attaches credentials itself",
        ));
    }
    if url.query().is_some() || url.fragment().is_some() || raw.contains(['?', '#']) {
        return Err(endpoint_error("must not have a query string or fragment"));
    }
    if !url.path().chars().all(path_char) {
        return Err(endpoint_error(format!(
            "path {:?} has characters outside [A-Za-z0-9-._~/%]",
            shown(url.path())
        )));
    }
    let Some(port) = url.port_or_known_default() else {
        return Err(endpoint_error("has no port"));
    };
    let own_port = svc.ports.iter().any(|p| p.port == port);
    let on_own = |own: bool| -> Result<Target, Refusal> {
        if own && !own_port {
            return Err(endpoint_error(format!(
                "port {port} is not a port of Service {}/{}",
                svc.namespace, svc.name
            )));
        }
        Ok(Target { scheme, port, own })
    };
    match url.host() {
        Some(url::Host::Domain(host)) => {
            // The URL parser lowercases hosts of http(s) URLs.
            let host = host.trim_end_matches('.');
            let in_cluster = host
                .strip_suffix(policy.cluster_domain.as_str())
                .and_then(|rest| rest.strip_suffix(".svc."))
                .or_else(|| host.strip_suffix(".svc"))
                .and_then(|rest| rest.split_once('.'))
                .filter(|(name, ns)| !name.contains('.') && !ns.contains('.'));
            if let Some((name, ns)) = in_cluster {
                if name == "kubernetes" && ns == "default" {
                    return Err(endpoint_error(
                        "the Kubernetes API server is never a backend",
                    ));
                }
                if ns == svc.namespace {
                    return on_own(name == svc.name);
                }
                if policy.endpoint_namespaces.contains(ns) {
                    return on_own(false);
                }
                return Err(endpoint_error(format!(
                    "Service {name}.{ns} is in another namespace than {} (allowed: endpoint_namespaces)",
                    svc.namespace
                )));
            }
            if policy.external_hosts.contains(host)
                || policy.external_hosts.contains(&format!("{host}:{port}"))
            {
                return on_own(false);
            }
            Err(endpoint_error(format!(
                "host {:?} is not an in-cluster Service name (<svc>.<namespace>.svc.{}) nor in external_hosts",
                shown(host),
                policy.cluster_domain
            )))
        }
        Some(url::Host::Ipv4(ip)) => check_ip(svc, &ip.to_string(), on_own),
        Some(url::Host::Ipv6(ip)) => check_ip(svc, &ip.to_string(), on_own),
        None => Err(endpoint_error("has no host")),
    }
}

fn check_ip(
    svc: &ServiceSnapshot,
    ip: &str,
    on_own: impl Fn(bool) -> Result<Target, Refusal>,
) -> Result<Target, Refusal> {
    match svc.cluster_ip.as_deref() {
        Some(own) if own == ip => on_own(true),
        _ => Err(endpoint_error(format!(
            "IP address {ip} is not the cluster IP of Service {}/{}",
            svc.namespace, svc.name
        ))),
    }
}

fn check_health(svc: &ServiceSnapshot, f: &Fragment, target: &Target) -> Result<(), Refusal> {
    let Some(h) = &f.health else {
        return Err(refuse(
            NoteKind::Health,
            "health",
            "no health probe: every endpoint is checked before it is published",
        ));
    };
    if target.own && !svc.ports.iter().any(|p| p.port == h.port) {
        return Err(refuse(
            NoteKind::Health,
            "health.port",
            format!(
                "port {} is not a port of Service {}/{}",
                h.port, svc.namespace, svc.name
            ),
        ));
    }
    if !target.own && h.port != target.port {
        return Err(refuse(
            NoteKind::Health,
            "health.port",
            format!(
                "port {} differs from the endpoint's port {}",
                h.port, target.port
            ),
        ));
    }
    if !h.path.starts_with('/') || has_template(&h.path) || !h.path.chars().all(path_char) {
        return Err(refuse(
            NoteKind::Health,
            "health.path",
            format!(
                "{:?} must start with '/' and use only [A-Za-z0-9-._~/%]",
                shown(&h.path)
            ),
        ));
    }
    if h.accepted_statuses.iter().any(|s| !(100..600).contains(s)) {
        return Err(refuse(
            NoteKind::Health,
            "health.accepted_statuses",
            "statuses must be from 100 to 599",
        ));
    }
    Ok(())
}

fn check_config(f: &Fragment) -> Result<(), Refusal> {
    let url_key = catalog::url_key(&f.toolset);
    for (key, value) in &f.config {
        // Only built for a refusal (this loop runs for every admitted fragment).
        let field = || format!("config.{}", shown(key));
        if has_template(key) || value_has_template(value) {
            return Err(refuse(NoteKind::Template, field(), "holds a template"));
        }
        if Some(key.as_str()) == url_key {
            let same = value
                .as_str()
                .is_some_and(|v| v.trim_end_matches('/') == f.endpoint.trim_end_matches('/'));
            if !same {
                return Err(refuse(
                    NoteKind::Config,
                    field(),
                    "must equal the fragment's endpoint",
                ));
            }
        } else if key == catalog::VERIFY_SSL {
            if !value.is_boolean() {
                return Err(refuse(NoteKind::Config, field(), "must be true or false"));
            }
        } else if catalog::is_credential_key(key) {
            return Err(refuse(
                NoteKind::Config,
                field(),
                "credentials are attached by the host, only for trusted namespaces",
            ));
        } else {
            return Err(refuse(
                NoteKind::Config,
                field(),
                format!(
                    "key not accepted from detectors for {} (accepted: {}{})",
                    f.toolset,
                    url_key.map(|k| format!("{k}, ")).unwrap_or_default(),
                    catalog::VERIFY_SSL
                ),
            ));
        }
    }
    Ok(())
}
