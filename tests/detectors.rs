//! Detection judged on real Helm chart output: every fixture under `tests/fixtures/charts/`
//! (Services as the charts render them) is run through the bundled wasm detectors, and the
//! fragments each Service produces are compared with `<chart>.expect.yaml`, which lists
//! every Service of the fixture — including the exporters, operators, agents and headless
//! twins that must produce nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use dynamic_toolset::manifest::{self, ReadOptions};
use dynamic_toolset_core::Detection;
use dynamic_toolset_runtime::{DetectorSet, RuntimeConfig};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Expectations {
    services: BTreeMap<String, Vec<Expected>>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(deny_unknown_fields)]
struct Expected {
    toolset: String,
    instance: String,
    endpoint: String,
}

fn charts_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/charts")
}

fn fixtures() -> Vec<(PathBuf, PathBuf)> {
    let mut out: Vec<(PathBuf, PathBuf)> = std::fs::read_dir(charts_dir())
        .expect("tests/fixtures/charts exists")
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.extension().is_some_and(|e| e == "yaml")
                && !p.to_string_lossy().ends_with(".expect.yaml")
        })
        .map(|p| {
            let expect = p.with_extension("expect.yaml");
            (p, expect)
        })
        .collect();
    out.sort();
    out
}

pub fn detector_set() -> DetectorSet {
    let cfg = RuntimeConfig {
        cache_dir: Some(PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("detector-cache")),
        ..RuntimeConfig::default()
    };
    let (set, errors) = DetectorSet::load(&cfg, None).expect("runtime starts");
    assert!(
        errors.is_empty(),
        "bundled detectors failed to load: {errors:?}"
    );
    set
}

#[test]
fn every_chart_fixture_matches_its_expectations() {
    let fixtures = fixtures();
    assert!(
        fixtures.len() >= 10,
        "expected the chart fixtures, found {}",
        fixtures.len()
    );
    let mut set = detector_set();
    let mut failures = Vec::new();
    let mut checked = 0usize;
    let mut positives = 0usize;
    for (fixture, expect_path) in &fixtures {
        let name = fixture.file_name().unwrap().to_string_lossy().to_string();
        let text = std::fs::read_to_string(fixture).unwrap();
        let loaded = manifest::parse_str(&name, &text, &ReadOptions::default());
        assert!(loaded.errors.is_empty(), "{name}: {:?}", loaded.errors);
        let expect_text = std::fs::read_to_string(expect_path)
            .unwrap_or_else(|e| panic!("{}: {e}", expect_path.display()));
        let expectations: Expectations = serde_yaml::from_str(&expect_text)
            .unwrap_or_else(|e| panic!("{}: {e}", expect_path.display()));
        let mut seen = BTreeSet::new();
        for (_, svc) in &loaded.services {
            let key = format!("{}/{}", svc.namespace, svc.name);
            seen.insert(key.clone());
            let detections = set.detect(svc, "cluster.local");
            let mut got = Vec::new();
            for v in &detections.verdicts {
                match &v.outcome {
                    Err(e) => failures.push(format!(
                        "{name}: {key}: detector {} failed: {e}",
                        v.detector
                    )),
                    Ok(Detection::Matched(frags)) => got.extend(frags.iter().map(|f| Expected {
                        toolset: f.toolset.clone(),
                        instance: f.instance.clone(),
                        endpoint: f.endpoint.clone(),
                    })),
                    Ok(_) => {}
                }
            }
            got.sort();
            match expectations.services.get(&key) {
                None => failures.push(format!(
                    "{name}: {key} is not listed in the expectations (got {got:?})"
                )),
                Some(want) => {
                    let mut want = want.clone();
                    want.sort();
                    positives += want.len();
                    if want != got {
                        failures.push(format!(
                            "{name}: {key}:\n    want {want:?}\n    got  {got:?}"
                        ));
                    }
                }
            }
            checked += 1;
        }
        for listed in expectations.services.keys() {
            if !seen.contains(listed) {
                failures.push(format!(
                    "{name}: expectation for {listed}, which the fixture does not contain"
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {checked} Services differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(
        positives > 20,
        "suspiciously few positive expectations: {positives}"
    );
    eprintln!(
        "{checked} Services in {} fixtures match ({positives} fragments)",
        fixtures.len()
    );
}
