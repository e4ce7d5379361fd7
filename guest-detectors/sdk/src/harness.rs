//! Test harness: runs a [`Detector`] natively (as plain Rust, no wasm) over Services read
//! from Kubernetes manifests, so a detector's author writes ordinary `#[test]`s against the
//! YAML of the charts they target (`helm template ...`, `kubectl get svc -A -o yaml`).
//!
//! ```
//! use detector_sdk::harness;
//! use detector_sdk::prelude::*;
//!
//! struct Mine;
//! impl Detector for Mine {
//!     fn metadata() -> DetectorInfo { metadata("mine", "0.1.0", &["prometheus"]) }
//!     fn emits() -> Emits { emits(&["prometheus/metrics"], false) }
//!     fn detect(svc: &Service) -> Detection {
//!         match svc.pick_port(&["http"], &[]) {
//!             Some(port) if svc.app_name() == Some("mine") => matched(
//!                 FragmentBuilder::new(svc, "prometheus/metrics", "prometheus")
//!                     .port_endpoint(port, "")
//!                     .health("/-/ready", &[200])
//!                     .config_url("prometheus_url")
//!                     .build(),
//!             ),
//!             _ => Detection::Unrelated,
//!         }
//!     }
//! }
//!
//! let verdicts = harness::run_yaml::<Mine>("inline", r#"
//! apiVersion: v1
//! kind: Service
//! metadata: {name: mine, namespace: monitoring, labels: {app.kubernetes.io/name: mine}}
//! spec: {ports: [{name: http, port: 9090}]}
//! ---
//! apiVersion: apps/v1
//! kind: Deployment
//! metadata: {name: mine}
//! "#).unwrap();
//! let fragment = verdicts.verdict("monitoring/mine").one();
//! assert_eq!(fragment.endpoint, "http://mine.monitoring.svc.cluster.local:9090");
//! assert_eq!(harness::config(fragment)["prometheus_url"], fragment.endpoint.as_str());
//! assert!(verdicts.problems().is_empty());
//! ```
//!
//! The harness also checks each fragment against the detector's own declarations
//! ([`Detector::metadata`]'s backends, [`Detector::emits`]) and the contract's basic shape
//! ([`Verdict::problems`]): what the host would refuse before looking any further. The
//! host's validation gate checks more (the endpoint must be on the given Service, `config`
//! may hold only the toolset's URL key and `verify_ssl`, no templates, ranks clamped to
//! 300): run the built component with `dynamic-toolset detectors test FILE.wasm -m
//! MANIFESTS...` to see the host's verdict.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize as _;
use serde_yaml::Value;

use crate::{Detection, Detector, Emits, Fragment, Identification, Service, ServicePort};

/// Cluster DNS domain of the Services the harness builds (the host's default).
pub const CLUSTER_DOMAIN: &str = "cluster.local";
/// Namespace of objects that carry none (`helm template` output), as the host assumes.
pub const DEFAULT_NAMESPACE: &str = "default";

/// A manifest that could not be read: the file (or name given), the 1-based document and
/// what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    /// File path, or the name given to [`parse_services`].
    pub source: String,
    /// 1-based document number; 0 when the file itself could not be read.
    pub document: usize,
    pub message: String,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.document == 0 {
            write!(f, "{}: {}", self.source, self.message)
        } else {
            write!(
                f,
                "{}: document {}: {}",
                self.source, self.document, self.message
            )
        }
    }
}

impl std::error::Error for Error {}

/// The Services of every document of `text` (multi-document YAML, or JSON), including the
/// items of a `kind: List` (`kubectl get svc -A -o yaml`). Objects of other kinds are
/// skipped. `source` names the text in errors.
pub fn parse_services(source: &str, text: &str) -> Result<Vec<Service>, Error> {
    let mut services = Vec::new();
    for (i, doc) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let error = |message: String| Error {
            source: source.to_string(),
            document: i + 1,
            message,
        };
        let value = Value::deserialize(doc).map_err(|e| error(format!("not YAML: {e}")))?;
        collect(&value, &mut services).map_err(error)?;
    }
    Ok(services)
}

/// The Services of manifest files, in the order given; a directory contributes its
/// `*.yaml`, `*.yml` and `*.json` files (not its subdirectories), sorted by name.
pub fn read_services<P: AsRef<Path>>(paths: &[P]) -> Result<Vec<Service>, Error> {
    let mut services = Vec::new();
    for path in paths {
        for file in manifest_files(path.as_ref())? {
            let source = file.display().to_string();
            let text = std::fs::read_to_string(&file).map_err(|e| Error {
                source: source.clone(),
                document: 0,
                message: format!("cannot read: {e}"),
            })?;
            services.extend(parse_services(&source, &text)?);
        }
    }
    Ok(services)
}

fn manifest_files(path: &Path) -> Result<Vec<PathBuf>, Error> {
    let unreadable = |e: std::io::Error| Error {
        source: path.display().to_string(),
        document: 0,
        message: format!("cannot read: {e}"),
    };
    if !path.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files = Vec::new();
    for entry in std::fs::read_dir(path).map_err(unreadable)? {
        let file = entry.map_err(unreadable)?.path();
        let manifest = matches!(
            file.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml" | "json")
        );
        if manifest && file.is_file() {
            files.push(file);
        }
    }
    files.sort();
    Ok(files)
}

/// Adds the Services of one object (a Service, a list of objects, or anything else).
fn collect(object: &Value, out: &mut Vec<Service>) -> Result<(), String> {
    if object.is_null() {
        return Ok(());
    }
    match object["kind"].as_str() {
        Some("Service") => out.push(service(object)?),
        Some(kind) if kind.ends_with("List") => {
            let items = object["items"].as_sequence().map_or(&[][..], Vec::as_slice);
            for (i, item) in items.iter().enumerate() {
                collect(item, out).map_err(|e| format!("items[{i}]: {e}"))?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// One Service object as the host hands it to detectors.
fn service(object: &Value) -> Result<Service, String> {
    let meta = &object["metadata"];
    let name = meta["name"]
        .as_str()
        .filter(|n| !n.is_empty())
        .ok_or("a Service without metadata.name")?;
    let namespace = meta["namespace"].as_str().unwrap_or(DEFAULT_NAMESPACE);
    let at = |field: &str, message: &str| format!("Service {namespace}/{name}: {field} {message}");
    let spec = &object["spec"];
    let text = |v: &Value, field: &str| -> Result<Option<String>, String> {
        match v {
            Value::Null => Ok(None),
            Value::String(s) => Ok(Some(s.clone())),
            _ => Err(at(field, "must be a string")),
        }
    };
    let mut ports = Vec::new();
    if let Some(list) = spec["ports"].as_sequence() {
        for (i, p) in list.iter().enumerate() {
            let field = |f: &str| format!("spec.ports[{i}].{f}");
            let port = p["port"]
                .as_u64()
                .and_then(|n| u16::try_from(n).ok())
                .filter(|n| *n > 0)
                .ok_or_else(|| at(&field("port"), "must be a number from 1 to 65535"))?;
            let target_port = match &p["targetPort"] {
                Value::Number(n) => Some(n.to_string()),
                other => text(other, &field("targetPort"))?,
            };
            ports.push(ServicePort {
                name: text(&p["name"], &field("name"))?,
                port,
                target_port,
                protocol: text(&p["protocol"], &field("protocol"))?.unwrap_or_else(|| "TCP".into()),
                app_protocol: text(&p["appProtocol"], &field("appProtocol"))?,
            });
        }
    }
    let cluster_ip = text(&spec["clusterIP"], "spec.clusterIP")?;
    Ok(Service {
        name: name.to_string(),
        namespace: namespace.to_string(),
        labels: labels_for_detectors(
            pairs(&meta["labels"]).map_err(|m| at("metadata.labels", &m))?,
            pairs(&spec["selector"]).map_err(|m| at("spec.selector", &m))?,
        ),
        annotations: pairs(&meta["annotations"]).map_err(|m| at("metadata.annotations", &m))?,
        service_type: text(&spec["type"], "spec.type")?.unwrap_or_else(|| "ClusterIP".into()),
        headless: cluster_ip.as_deref() == Some("None"),
        cluster_ip,
        ports,
        cluster_domain: CLUSTER_DOMAIN.to_string(),
    })
}

/// The labels a detector is given, as the host gives them (the contract's `labels`): the
/// Service's own, then each `spec.selector` label whose key they lack, sorted by key.
/// (The host's `labels_for_detectors` in `host/runtime/src/convert.rs` is the same rule.)
pub fn labels_for_detectors(
    labels: Vec<(String, String)>,
    selector: Vec<(String, String)>,
) -> Vec<(String, String)> {
    let mut merged: std::collections::BTreeMap<String, String> = selector.into_iter().collect();
    merged.extend(labels);
    merged.into_iter().collect()
}

/// A string map as the contract passes it: pairs sorted by key.
fn pairs(map: &Value) -> Result<Vec<(String, String)>, String> {
    let Some(map) = map.as_mapping() else {
        return if map.is_null() {
            Ok(Vec::new())
        } else {
            Err("must be a map".into())
        };
    };
    let mut out = Vec::with_capacity(map.len());
    for (k, v) in map {
        match (k.as_str(), v.as_str()) {
            (Some(k), Some(v)) => out.push((k.to_string(), v.to_string())),
            (Some(k), None) => return Err(format!("{k}: the value must be a string")),
            (None, _) => return Err("keys must be strings".into()),
        }
    }
    out.sort();
    Ok(out)
}

/// One Service and what the detector said of it.
#[derive(Debug, Clone)]
pub struct Verdict {
    pub service: Service,
    pub detection: Detection,
    /// [`Detector::identify`] of each fragment, in order (empty unless matched).
    pub identifications: Vec<Identification>,
    /// What the host would refuse on the detector's own declarations or the contract's
    /// shape, one sentence each (see the [module docs](self)).
    pub problems: Vec<String>,
}

impl Verdict {
    /// `<namespace>/<name>` of the Service.
    pub fn key(&self) -> String {
        format!("{}/{}", self.service.namespace, self.service.name)
    }

    /// The fragments of a match; empty otherwise.
    pub fn fragments(&self) -> &[Fragment] {
        match &self.detection {
            Detection::Matched(f) => f,
            _ => &[],
        }
    }

    /// The fragment of a match that has exactly one; panics otherwise, saying what the
    /// detector answered (for tests).
    pub fn one(&self) -> &Fragment {
        match self.fragments() {
            [f] => f,
            _ => panic!(
                "{}: expected one fragment, got {:?}",
                self.key(),
                self.detection
            ),
        }
    }

    /// The reason of a decline.
    pub fn declined(&self) -> Option<&str> {
        match &self.detection {
            Detection::Declined(r) => Some(r),
            _ => None,
        }
    }

    /// True when the detector said the Service is none of its business.
    pub fn is_unrelated(&self) -> bool {
        matches!(self.detection, Detection::Unrelated)
    }
}

/// Every Service's [`Verdict`], in manifest order.
#[derive(Debug, Clone, Default)]
pub struct Verdicts {
    pub verdicts: Vec<Verdict>,
}

impl Verdicts {
    /// The verdict on Service `<namespace>/<name>`.
    pub fn get(&self, key: &str) -> Option<&Verdict> {
        self.verdicts.iter().find(|v| v.key() == key)
    }

    /// The verdict on Service `<namespace>/<name>`; panics naming the Services there are
    /// when there is none (for tests).
    pub fn verdict(&self, key: &str) -> &Verdict {
        self.get(key).unwrap_or_else(|| {
            let keys: Vec<String> = self.verdicts.iter().map(Verdict::key).collect();
            panic!("no Service {key} in the manifests (there are: {keys:?})")
        })
    }

    /// The verdicts that matched.
    pub fn matched(&self) -> impl Iterator<Item = &Verdict> {
        self.verdicts
            .iter()
            .filter(|v| matches!(v.detection, Detection::Matched(_)))
    }

    /// Every problem of every verdict, each prefixed with its Service.
    pub fn problems(&self) -> Vec<String> {
        self.verdicts
            .iter()
            .flat_map(|v| v.problems.iter().map(move |p| format!("{}: {p}", v.key())))
            .collect()
    }
}

/// Runs `D` over `services` the way the host does: `detect`, then `identify` for each
/// fragment of a match.
pub fn run<D: Detector>(services: impl IntoIterator<Item = Service>) -> Verdicts {
    let backends = D::metadata().backends;
    let emits = D::emits();
    let verdicts = services
        .into_iter()
        .map(|service| {
            let detection = D::detect(&service);
            let mut identifications = Vec::new();
            let mut problems = Vec::new();
            if let Detection::Matched(fragments) = &detection {
                if fragments.is_empty() {
                    problems.push("matched with no fragment (return unrelated or declined)".into());
                }
                for (i, f) in fragments.iter().enumerate() {
                    problems.extend(
                        fragment_problems(f, &backends, &emits)
                            .into_iter()
                            .map(|p| format!("fragment[{i}] ({}): {p}", f.toolset)),
                    );
                    identifications.push(D::identify(&service, f));
                }
            }
            Verdict {
                service,
                detection,
                identifications,
                problems,
            }
        })
        .collect();
    Verdicts { verdicts }
}

/// [`run`] over the Services of `text` ([`parse_services`]).
pub fn run_yaml<D: Detector>(source: &str, text: &str) -> Result<Verdicts, Error> {
    Ok(run::<D>(parse_services(source, text)?))
}

/// [`run`] over the Services of manifest files and directories ([`read_services`]).
pub fn run_manifests<D: Detector, P: AsRef<Path>>(paths: &[P]) -> Result<Verdicts, Error> {
    Ok(run::<D>(read_services(paths)?))
}

/// Calls `D::configure` with `settings`, the text of a JSON object, as the host does at
/// load (use `"{}"` for none).
pub fn configure<D: Detector>(settings: &str) -> Result<(), String> {
    D::configure(&crate::parse_settings(settings)?)
}

/// A fragment's `config` parsed (the contract carries it as JSON text); `Null` when it is
/// not JSON, which [`Verdict::problems`] reports.
pub fn config(fragment: &Fragment) -> serde_json::Value {
    serde_json::from_str(&fragment.config).unwrap_or(serde_json::Value::Null)
}

fn fragment_problems(f: &Fragment, backends: &[String], emits: &Emits) -> Vec<String> {
    let mut problems = Vec::new();
    if !backends.contains(&f.backend) {
        problems.push(format!(
            "backend {:?} is not in metadata().backends {backends:?}",
            f.backend
        ));
    }
    if !emits.toolsets.contains(&f.toolset) {
        problems.push(format!(
            "toolset {:?} is not in emits().toolsets {:?}",
            f.toolset, emits.toolsets
        ));
    }
    if f.custom.is_some() && !emits.custom_toolsets {
        problems.push("carries a custom toolset but emits() does not declare them".into());
    }
    if f.instance.is_empty() {
        problems.push("empty instance".into());
    }
    if !(f.endpoint.starts_with("http://") || f.endpoint.starts_with("https://")) {
        problems.push(format!("endpoint {:?} is not an http(s) URL", f.endpoint));
    }
    if f.health.is_none() {
        problems.push("no health probe (the host refuses fragments without one)".into());
    }
    if !config(f).is_object() {
        problems.push("config is not the text of a JSON object".into());
    }
    problems
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::prelude::*;

    const MANIFESTS: &str = r#"
apiVersion: v1
kind: List
items:
  - apiVersion: v1
    kind: Service
    metadata:
      name: web
      namespace: shop
      labels: {app.kubernetes.io/name: demo, tier: front}
      annotations: {b: "2", a: "1"}
    spec:
      clusterIP: None
      ports:
        - {name: http, port: 8080, targetPort: web, appProtocol: http}
        - {port: 9000, targetPort: 9000, protocol: UDP}
  - apiVersion: v1
    kind: ConfigMap
    metadata: {name: ignored}
---
{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "plain"}, "spec": {"type": "NodePort"}}
---
"#;

    struct Demo;
    impl Detector for Demo {
        fn metadata() -> DetectorInfo {
            metadata("demo", "0.1.0", &["prometheus"])
        }
        fn emits() -> Emits {
            emits(&["prometheus/metrics"], false)
        }
        fn detect(svc: &Service) -> Detection {
            if svc.app_name() != Some("demo") {
                return Detection::Unrelated;
            }
            let Some(port) = svc.pick_port(&["http"], &[]) else {
                return declined("no http port");
            };
            Detection::Matched(vec![
                FragmentBuilder::new(svc, "prometheus/metrics", "prometheus")
                    .port_endpoint(port, "")
                    .health("/-/ready", &[])
                    .config_url("prometheus_url")
                    .build(),
                // Undeclared on purpose: the harness reports it.
                FragmentBuilder::new(svc, "grafana/loki", "loki").build(),
            ])
        }
    }

    #[test]
    fn services_are_read_as_the_host_passes_them() {
        let services = parse_services("m.yaml", MANIFESTS).unwrap();
        assert_eq!(services.len(), 2);
        let web = &services[0];
        assert_eq!((web.namespace.as_str(), web.name.as_str()), ("shop", "web"));
        assert!(web.headless);
        assert_eq!(web.cluster_ip.as_deref(), Some("None"));
        assert_eq!(web.service_type, "ClusterIP");
        assert_eq!(web.label("tier"), Some("front"));
        assert_eq!(
            web.annotations,
            vec![("a".into(), "1".into()), ("b".into(), "2".into())]
        );
        assert_eq!(web.ports[0].target_port.as_deref(), Some("web"));
        assert_eq!(web.ports[0].protocol, "TCP");
        assert_eq!(web.ports[0].app_protocol.as_deref(), Some("http"));
        assert_eq!(web.ports[1].name, None);
        assert_eq!(web.ports[1].target_port.as_deref(), Some("9000"));
        assert_eq!(web.ports[1].protocol, "UDP");
        assert_eq!(web.cluster_domain, CLUSTER_DOMAIN);
        let plain = &services[1];
        assert_eq!(plain.namespace, DEFAULT_NAMESPACE);
        assert_eq!(plain.service_type, "NodePort");
        assert!(!plain.headless && plain.ports.is_empty());
    }

    #[test]
    fn bad_documents_name_the_source_document_and_field() {
        let bad_port = "kind: Service\nmetadata: {name: a}\n---\nkind: Service\nmetadata: {name: b, namespace: n}\nspec: {ports: [{port: 70000}]}\n";
        let e = parse_services("x.yaml", bad_port).unwrap_err();
        assert_eq!(e.document, 2);
        assert_eq!(
            e.to_string(),
            "x.yaml: document 2: Service n/b: spec.ports[0].port must be a number from 1 to 65535"
        );
        let e = parse_services("x.yaml", "kind: Service\nmetadata: {labels: {}}\n").unwrap_err();
        assert!(e.message.contains("metadata.name"), "{e}");
        let e = parse_services(
            "x.yaml",
            "kind: Service\nmetadata: {name: a, labels: {v: 1}}\n",
        )
        .unwrap_err();
        assert!(
            e.message
                .contains("metadata.labels v: the value must be a string"),
            "{e}"
        );
        let e = parse_services("x.yaml", "a: [").unwrap_err();
        assert!(e.message.starts_with("not YAML"), "{e}");
        let e = read_services(&["/nonexistent/m.yaml"]).unwrap_err();
        assert_eq!(e.document, 0);
        assert!(
            e.to_string()
                .starts_with("/nonexistent/m.yaml: cannot read"),
            "{e}"
        );
    }

    #[test]
    fn run_gives_verdicts_and_reports_undeclared_output() {
        let v = run_yaml::<Demo>("m.yaml", MANIFESTS).unwrap();
        assert_eq!(v.verdicts.len(), 2);
        let web = v.verdict("shop/web");
        assert_eq!(web.fragments().len(), 2);
        assert_eq!(web.identifications.len(), 2);
        let f = &web.fragments()[0];
        assert_eq!(f.endpoint, "http://web.shop.svc.cluster.local:8080");
        assert_eq!(config(f)["prometheus_url"], f.endpoint.as_str());
        assert!(v.verdict("default/plain").is_unrelated());
        assert_eq!(v.matched().count(), 1);
        let problems = v.problems();
        assert_eq!(problems.len(), 4, "{problems:#?}");
        assert!(
            problems
                .iter()
                .all(|p| p.starts_with("shop/web: fragment[1] (grafana/loki): "))
        );
        assert!(
            problems
                .iter()
                .any(|p| p.contains("backend \"loki\" is not in metadata().backends"))
        );
        assert!(
            problems
                .iter()
                .any(|p| p.contains("not in emits().toolsets"))
        );
        assert!(problems.iter().any(|p| p.contains("no health probe")));
        assert!(problems.iter().any(|p| p.contains("not an http(s) URL")));
        assert!(v.get("shop/none").is_none());
        assert_eq!(configure::<Demo>("{}"), Ok(()));
        assert!(configure::<Demo>(r#"{"x": 1}"#).unwrap_err().contains("x"));
    }

    #[test]
    fn directories_contribute_their_manifests_in_name_order() {
        let dir = std::env::temp_dir().join(format!("detector-sdk-harness-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let svc = |n: &str| format!("kind: Service\nmetadata: {{name: {n}}}\n");
        std::fs::write(dir.join("b.yaml"), svc("b")).unwrap();
        std::fs::write(dir.join("a.yml"), svc("a")).unwrap();
        std::fs::write(dir.join("notes.txt"), svc("c")).unwrap();
        let names: Vec<String> = read_services(&[&dir])
            .unwrap()
            .into_iter()
            .map(|s| s.name)
            .collect();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(names, ["a", "b"]);
    }

    #[test]
    #[should_panic(expected = "no Service x/y in the manifests")]
    fn a_missing_service_is_named() {
        Verdicts::default().verdict("x/y");
    }
}
