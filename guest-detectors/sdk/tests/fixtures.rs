//! Native fixture harness: runs every bundled detector (as plain Rust) over each family of
//! `tests/fixtures/real` (Services from upstream sources) and `tests/fixtures/synthetic`, and
//! holds the fragments to the family's `<family>.canonical.yaml` without the host's selection:
//! every canonical endpoint is among the candidates (its URL or an accepted alternative), and
//! every fragment is a toolset the judgement expects in that namespace (a sibling that
//! selection folds into the canonical instance), never one out of nowhere (an exporter, Zipkin
//! as Jaeger, Kubecost's bundled Prometheus, a Service named like a backend). The exact choice,
//! instance names included, is `tests/detection_real.rs`'s.
//! `FIXTURES_PRINT=1 cargo test -p detector-sdk --test fixtures -- --nocapture` prints the
//! fragments per Service (to review).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use detector_sdk::{Detection, Service, ServicePort};
use native::detectors;
use serde::Deserialize;

#[path = "../../../tests/common/canonical.rs"]
mod canonical;
mod native;

#[derive(Deserialize)]
struct Svc {
    metadata: Meta,
    spec: Spec,
}

#[derive(Deserialize)]
struct Meta {
    name: String,
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Spec {
    #[serde(rename = "type", default)]
    service_type: Option<String>,
    #[serde(rename = "clusterIP", default)]
    cluster_ip: Option<String>,
    #[serde(default)]
    ports: Vec<Port>,
    #[serde(default)]
    selector: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Port {
    name: Option<String>,
    port: u16,
    target_port: Option<serde_yaml::Value>,
    protocol: Option<String>,
    app_protocol: Option<String>,
}

/// One fragment a detector returned, as the harness compares it.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord, Clone)]
struct Found {
    service: String,
    toolset: String,
    instance: String,
    endpoint: String,
}

fn to_service(s: Svc, default_namespace: &str) -> Service {
    let cluster_ip = s.spec.cluster_ip;
    Service {
        headless: cluster_ip.as_deref() == Some("None"),
        name: s.metadata.name,
        namespace: s
            .metadata
            .namespace
            .unwrap_or_else(|| default_namespace.to_string()),
        labels: detector_sdk::harness::labels_for_detectors(
            s.metadata.labels.into_iter().collect(),
            s.spec.selector.into_iter().collect(),
        ),
        annotations: s
            .metadata
            .annotations
            .unwrap_or_default()
            .into_iter()
            .collect(),
        service_type: s.spec.service_type.unwrap_or_else(|| "ClusterIP".into()),
        cluster_ip,
        ports: s
            .spec
            .ports
            .into_iter()
            .map(|p| ServicePort {
                name: p.name,
                port: p.port,
                target_port: p.target_port.map(|v| match v {
                    serde_yaml::Value::String(s) => s,
                    serde_yaml::Value::Number(n) => n.to_string(),
                    other => panic!("bad targetPort {other:?}"),
                }),
                protocol: p.protocol.unwrap_or_else(|| "TCP".into()),
                app_protocol: p.app_protocol,
            })
            .collect(),
        cluster_domain: "cluster.local".into(),
    }
}

/// The list covers every bundled detector: each directory of `guest-detectors/` but the SDK.
#[test]
fn native_list_names_every_bundled_detector() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut bundled: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("Cargo.toml").is_file() && !p.ends_with("sdk"))
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    bundled.sort();
    let native: Vec<&str> = detectors().iter().map(|(n, _)| *n).collect();
    assert_eq!(
        bundled, native,
        "add the new detector to tests/native/mod.rs"
    );
}

/// Every family of `tests/fixtures/real` and `tests/fixtures/synthetic`, with its judgement.
fn families() -> Vec<(String, Vec<Service>, canonical::CanonicalFile)> {
    let dir = canonical::fixtures_dir();
    let mut out = Vec::new();
    for sub in ["real", "synthetic"] {
        for (family, fixture, canon) in canonical::families_in(&dir.join(sub)) {
            let canon = canonical::read_canonical(&canon);
            let services = load_services(&fixture, canon.default_namespace());
            out.push((family, services, canon));
        }
    }
    assert!(out.len() > 40, "fixture families found: {}", out.len());
    out
}

fn load_services(path: &Path, default_namespace: &str) -> Vec<Service> {
    let text = std::fs::read_to_string(path).unwrap();
    serde_yaml::Deserializer::from_str(&text)
        .filter_map(|doc| {
            let v = serde_yaml::Value::deserialize(doc).unwrap();
            if v.is_null() {
                return None;
            }
            assert_eq!(
                v["kind"].as_str(),
                Some("Service"),
                "{}: non-Service document",
                path.display()
            );
            assert_eq!(v["apiVersion"].as_str(), Some("v1"), "{}", path.display());
            Some(to_service(
                serde_yaml::from_value(v).unwrap(),
                default_namespace,
            ))
        })
        .collect()
}

/// Every fragment the native detectors return for the family's Services, with a note per
/// Service (who matched at which rank, who declined and why).
fn detect_family(
    family: &str,
    services: &[Service],
) -> (Vec<Found>, BTreeMap<String, Vec<String>>) {
    let mut found = Vec::new();
    let mut notes: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut seen = BTreeSet::new();
    for svc in services {
        let key = format!("{}/{}", svc.namespace, svc.name);
        assert!(
            seen.insert(key.clone()),
            "{family}: duplicate Service {key}"
        );
        let note = notes.entry(key.clone()).or_default();
        for (name, detect) in detectors() {
            match detect(svc) {
                Detection::Matched(fs) => {
                    for f in fs {
                        assert!(
                            !f.config.is_empty(),
                            "{family}: {key}: {name}: empty config"
                        );
                        note.push(format!("{name} rank {}", f.rank));
                        found.push(Found {
                            service: key.clone(),
                            toolset: f.toolset,
                            instance: f.instance,
                            endpoint: f.endpoint,
                        });
                    }
                }
                Detection::Declined(r) => note.push(format!("{name}: {r}")),
                Detection::Unrelated => {}
            }
        }
    }
    found.sort();
    (found, notes)
}

#[test]
fn fixture_families_match_their_judgements() {
    let print = std::env::var_os("FIXTURES_PRINT").is_some();
    let mut failures = Vec::new();
    let mut services = 0;
    let families = families();
    for (family, svcs, canon) in &families {
        services += svcs.len();
        let (found, notes) = detect_family(family, svcs);
        if print {
            println!("# ---- {family}");
            for (key, note) in &notes {
                println!("  {key}:  # {}", note.join("; "));
                for f in found.iter().filter(|f| &f.service == key) {
                    println!("    - {} {} {}", f.toolset, f.instance, f.endpoint);
                }
            }
        }
        // A known gap (see `KNOWN_GAPS`) is not expected to reach its canonical endpoints.
        let known_gap = canonical::KNOWN_GAPS.iter().any(|(f, _)| f == family);
        for k in &canon.canonical {
            if !known_gap
                && !found
                    .iter()
                    .any(|f| k.reaches_offline(&f.toolset, &f.endpoint))
            {
                failures.push(format!(
                    "{family}: no candidate for canonical {} {} ({})",
                    k.toolset, k.url, k.service
                ));
            }
        }
        // Toolsets the judgement expects, per namespace.
        let expected: BTreeSet<(&str, &str)> = canon
            .canonical
            .iter()
            .map(|k| (k.toolset.as_str(), k.service.as_str()))
            .chain(
                canon
                    .acceptable
                    .iter()
                    .map(|a| (a.toolset.as_str(), a.service.as_str())),
            )
            .map(|(t, svc)| (t, svc.split_once('/').map_or("", |(ns, _)| ns)))
            .collect();
        for f in &found {
            let ns = f.service.split_once('/').map_or("", |(ns, _)| ns);
            if !expected.contains(&(f.toolset.as_str(), ns)) {
                failures.push(format!(
                    "{family}: {} produced {} {} ({}), which the judgement does not expect in namespace {ns} ({})",
                    f.service,
                    f.toolset,
                    f.endpoint,
                    f.instance,
                    notes.get(&f.service).map(|n| n.join("; ")).unwrap_or_default()
                ));
            }
        }
    }
    failures.dedup();
    assert!(
        failures.is_empty(),
        "{} families, {services} Services; failures:\n{}",
        families.len(),
        failures.join("\n")
    );
}

/// Rough native cost of `detect` over all fixture Services (run with
/// `cargo test --release -p detector-sdk --test fixtures -- --ignored --nocapture`).
#[test]
#[ignore]
fn detect_cost() {
    let all: Vec<Service> = families().into_iter().flat_map(|(_, s, _)| s).collect();
    let dets = detectors();
    let rounds = 2000;
    let start = std::time::Instant::now();
    let mut matched = 0usize;
    for _ in 0..rounds {
        for s in &all {
            for (_, d) in &dets {
                if let Detection::Matched(f) = std::hint::black_box(d(s)) {
                    matched += f.len();
                }
            }
        }
    }
    let calls = (rounds * all.len() * dets.len()) as f64;
    println!(
        "{} Services x {} detectors: {:.3} us per detect call (matched {matched})",
        all.len(),
        dets.len(),
        start.elapsed().as_secs_f64() * 1e6 / calls
    );
}
