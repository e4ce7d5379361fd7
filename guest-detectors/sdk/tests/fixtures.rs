//! Native fixture harness: runs every bundled detector (as plain Rust) over each
//! `tests/fixtures/charts/<chart>.yaml` and compares the fragments per Service with
//! `<chart>.expect.yaml`. Every Service must be listed; unlisted or extra entries fail.
//! `FIXTURES_PRINT=1 cargo test -p detector-sdk --test fixtures -- --nocapture` prints the
//! actual results in the expect format (to review, never to paste blindly).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use detector_sdk::{Detection, Service, ServicePort};
use native::detectors;
use serde::Deserialize;

mod native;

#[derive(Deserialize)]
struct Svc {
    metadata: Meta,
    spec: Spec,
}

#[derive(Deserialize)]
struct Meta {
    name: String,
    namespace: String,
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

#[derive(Deserialize, Debug, PartialEq, Eq, PartialOrd, Ord, Clone)]
#[serde(deny_unknown_fields)]
struct Expected {
    toolset: String,
    instance: String,
    endpoint: String,
}

#[derive(Deserialize)]
struct ExpectFile {
    services: BTreeMap<String, Vec<Expected>>,
}

fn to_service(s: Svc) -> Service {
    let cluster_ip = s.spec.cluster_ip;
    Service {
        headless: cluster_ip.as_deref() == Some("None"),
        name: s.metadata.name,
        namespace: s.metadata.namespace,
        labels: s.metadata.labels.into_iter().collect(),
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

fn charts_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/charts")
}

fn load_services(path: &Path) -> Vec<Service> {
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
            Some(to_service(serde_yaml::from_value(v).unwrap()))
        })
        .collect()
}

#[test]
fn chart_fixtures_match_expectations() {
    let print = std::env::var_os("FIXTURES_PRINT").is_some();
    let mut failures = Vec::new();
    let mut charts = 0;
    let mut services = 0;
    let mut entries: Vec<_> = std::fs::read_dir(charts_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        let file = path.file_name().unwrap().to_string_lossy().to_string();
        if !file.ends_with(".yaml") || file.ends_with(".expect.yaml") {
            continue;
        }
        charts += 1;
        let expect_path = path.with_file_name(file.replace(".yaml", ".expect.yaml"));
        let expect: Option<ExpectFile> = std::fs::read_to_string(&expect_path)
            .ok()
            .map(|t| serde_yaml::from_str(&t).unwrap());
        let mut seen = std::collections::BTreeSet::new();
        if print {
            println!("# ---- {file}\nservices:");
        }
        for svc in load_services(&path) {
            services += 1;
            let key = format!("{}/{}", svc.namespace, svc.name);
            assert!(seen.insert(key.clone()), "{file}: duplicate Service {key}");
            let mut actual = Vec::new();
            let mut notes = Vec::new();
            for (name, detect) in detectors() {
                match detect(&svc) {
                    Detection::Matched(fs) => {
                        for f in fs {
                            assert!(!f.config.is_empty());
                            actual.push(Expected {
                                toolset: f.toolset,
                                instance: f.instance,
                                endpoint: f.endpoint,
                            });
                            notes.push(format!("{name} rank {}", f.rank));
                        }
                    }
                    Detection::Declined(r) => notes.push(format!("{name}: {r}")),
                    Detection::Unrelated => {}
                }
            }
            actual.sort();
            if print {
                if actual.is_empty() {
                    println!(
                        "  {key}: []  # {}",
                        if notes.is_empty() {
                            "unrelated".into()
                        } else {
                            notes.join("; ")
                        }
                    );
                } else {
                    println!("  {key}:  # {}", notes.join("; "));
                    for a in &actual {
                        println!(
                            "    - toolset: {}\n      instance: {}\n      endpoint: {}",
                            a.toolset, a.instance, a.endpoint
                        );
                    }
                }
            }
            match expect.as_ref().map(|e| e.services.get(&key)) {
                None => failures.push(format!("{file}: no {}", expect_path.display())),
                Some(None) => failures.push(format!(
                    "{file}: Service {key} not listed in the expect file"
                )),
                Some(Some(want)) => {
                    let mut want = want.clone();
                    want.sort();
                    if want != actual {
                        failures.push(format!(
                            "{file}: {key}\n  want {want:?}\n  got  {actual:?}\n  ({})",
                            notes.join("; ")
                        ));
                    }
                }
            }
        }
        if let Some(e) = &expect {
            for k in e.services.keys() {
                if !seen.contains(k) {
                    failures.push(format!(
                        "{file}: expect lists {k}, which is not in the fixture"
                    ));
                }
            }
        }
    }
    assert!(charts > 0, "no fixtures found");
    failures.dedup();
    assert!(
        failures.is_empty(),
        "{} charts, {services} Services; failures:\n{}",
        charts,
        failures.join("\n")
    );
}

/// Rough native cost of `detect` over all fixture Services (run with
/// `cargo test --release -p detector-sdk --test fixtures -- --ignored --nocapture`).
#[test]
#[ignore]
fn detect_cost() {
    let mut all = Vec::new();
    for e in std::fs::read_dir(charts_dir()).unwrap() {
        let p = e.unwrap().path();
        let n = p.to_string_lossy().to_string();
        if n.ends_with(".yaml") && !n.ends_with(".expect.yaml") {
            all.extend(load_services(&p));
        }
    }
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
