//! The example Python detector (examples/detectors/kubernaut-context-py) the way an
//! operator runs it: declared in a detectors file (pinned by sha256, `wasi: true`, memory
//! for CPython, a grant naming its toolset), loaded with the bundled detectors, and
//! run over its fixture Service read from YAML (transcribed from the seed document; see the
//! fixture's header). Without `wasi: true` the same declaration is rejected, with a reason
//! naming the WASI import, and the other detectors still load.
//!
//! The host's sandbox tests for this detector are in host/runtime/tests/python.rs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use dynamic_toolset::manifest::{self, ReadOptions};
use dynamic_toolset::pipeline::{self, DetectorSetup};
use dynamic_toolset_core::gate::Policy;
use dynamic_toolset_core::{Detection, ServiceSnapshot};
use guest_build::python;

#[path = "common/holmes.rs"]
mod holmes;

/// The Context API's operations (the seed document's three tools), as requests the model
/// is told about.
const REQUESTS: [&str; 3] = [
    "GET /api/v1/context/action-history",
    "GET /api/v1/context/patterns/<signature>",
    "GET /api/v1/context/discover",
];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn component() -> PathBuf {
    let built = python::build(&root(), &[python::DETECTOR])
        .unwrap_or_else(|e| panic!("building the Python detector: {e}"));
    built[0].clone()
}

fn sha256(path: &Path) -> String {
    let out = std::process::Command::new("sha256sum")
        .arg(path)
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap()[..64].to_string()
}

fn fixture() -> ServiceSnapshot {
    let path = root()
        .join(python::EXAMPLE_DIR)
        .join("fixtures/kubernaut-context-api.yaml");
    let mut loaded = manifest::read_paths(&[path], &ReadOptions::default()).unwrap();
    assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
    assert_eq!(loaded.services.len(), 1);
    loaded.services.remove(0).1
}

/// A declarations file for the component, `wasi` as given.
fn declare(dir: &Path, wasm: &Path, wasi: bool) -> PathBuf {
    let file = dir.join("detectors.yaml");
    let text = format!(
        "detectors:
  - name: kubernaut-context
    source: {}
    sha256: {}
    wasi: {wasi}
    limits: {{memory: 32Mi}}
    settings: {{port: 8091}}
    grants: {{toolsets: [kubernaut/context]}}
",
        wasm.display(),
        sha256(wasm)
    );
    std::fs::write(&file, text).unwrap();
    file
}

fn setup(file: PathBuf) -> DetectorSetup {
    DetectorSetup {
        file: Some(file),
        ..DetectorSetup::new(
            None,
            Some(Path::new(env!("CARGO_TARGET_TMPDIR")).join("python-detector-cache")),
        )
    }
}

#[test]
fn declared_with_wasi_it_matches_its_fixture_service() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = component();
    let mut loaded = pipeline::load_detectors(&setup(declare(dir.path(), &wasm, true))).unwrap();
    assert!(loaded.errors.is_empty(), "{:#?}", loaded.errors);
    let statuses = pipeline::statuses(&loaded.set, &loaded.errors, &loaded.declarations);
    let status = statuses
        .iter()
        .find(|s| s.detector == "kubernaut-context")
        .unwrap();
    assert_eq!(status.status, "loaded");

    let svc = fixture();
    assert_eq!(
        (svc.namespace.as_str(), svc.name.as_str(), svc.ports[0].port),
        ("default", "kubernaut-context-api", 8091)
    );
    let policy = Policy::baseline("cluster.local");
    let grants = loaded.grants();
    // Through the whole pipeline (every detector, then the validation gate): no failure,
    // and the gate admits its toolset under the declaration's grant (no commands: the
    // gate attaches the API the detector described).
    let detections = pipeline::detect_one(&mut loaded.set, &grants, &policy, &svc);
    for v in &detections.verdicts {
        assert!(v.outcome.is_ok(), "{} failed: {:?}", v.detector, v.outcome);
    }
    assert!(
        detections.gate.iter().all(|n| !n.refused()),
        "{:#?}",
        detections.gate
    );
    let admitted = detections
        .verdicts
        .iter()
        .find(|v| v.detector == "kubernaut-context")
        .map(|v| &v.outcome);
    let Some(Ok(Detection::Matched(admitted))) = admitted else {
        panic!("{admitted:?}");
    };
    assert_eq!(admitted[0].toolset, "kubernaut/context");
    let api = admitted[0].http.as_ref().unwrap();
    assert_eq!(api.paths, ["/api/v1/context/*"]);
    // Only the Python detector claims the Service: no bundled detector knows it.
    let raw = loaded.set.detect(&svc, "cluster.local");
    let claimed: Vec<&str> = raw
        .verdicts
        .iter()
        .filter(|v| matches!(v.outcome, Ok(Detection::Matched(_))))
        .map(|v| v.detector.as_str())
        .collect();
    assert_eq!(claimed, ["kubernaut-context"]);
    let Some(Ok(Detection::Matched(fragments))) = raw
        .verdicts
        .iter()
        .find(|v| v.detector == "kubernaut-context")
        .map(|v| &v.outcome)
    else {
        panic!("{raw:?}");
    };
    let f = &fragments[0];
    assert_eq!(
        f.endpoint,
        "http://kubernaut-context-api.default.svc.cluster.local:8091"
    );
    assert_eq!(f.custom, None);
}

#[test]
fn declared_without_wasi_it_is_rejected_naming_the_import() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = component();
    let loaded = pipeline::load_detectors(&setup(declare(dir.path(), &wasm, false))).unwrap();
    let statuses = pipeline::statuses(&loaded.set, &loaded.errors, &loaded.declarations);
    let status = statuses
        .iter()
        .find(|s| s.detector == "kubernaut-context")
        .unwrap();
    assert_eq!(status.status, "rejected");
    let reason = status.reason.as_deref().unwrap();
    assert!(
        reason.contains("calls WASI (`wasi:") && reason.contains("add `wasi: true`"),
        "{reason}"
    );
    // The bundled detectors are unaffected.
    assert!(
        loaded
            .set
            .detectors()
            .iter()
            .any(|d| d.info.name == "prometheus")
    );
}

/// `discover` with the declaration, over the fixture: the output carries a HolmesGPT
/// `type: http` toolset for the Context API on the Service found (GET only, its paths),
/// and HolmesGPT's own loader (holmesgpt 0.45.0, `validate.py --strict`) loads it. A grant
/// that does not list the toolset leaves it out, naming the grant.
#[test]
fn discovered_by_the_binary_its_toolset_loads_in_holmesgpt() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = component();
    let decl = declare(dir.path(), &wasm, true);
    let manifests = root()
        .join(python::EXAMPLE_DIR)
        .join("fixtures/kubernaut-context-api.yaml");
    let run = |decl: &Path| {
        std::process::Command::new(env!("CARGO_BIN_EXE_dynamic-toolset"))
            .args([
                "discover",
                "--no-health-check",
                "--explain",
                "--detectors-file",
            ])
            .arg(decl)
            .arg("--manifests")
            .arg(&manifests)
            .env(
                "DETECTOR_CACHE_DIR",
                Path::new(env!("CARGO_TARGET_TMPDIR")).join("python-detector-cache"),
            )
            .output()
            .unwrap()
    };
    let out = run(&decl);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let doc: serde_yaml::Value = serde_yaml::from_slice(&out.stdout).unwrap();
    let ts = &doc["toolsets"]["kubernaut/context"];
    assert_eq!(
        ts["type"],
        "http",
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(ts.get("tools").is_none(), "no commands: {ts:?}");
    let endpoint = &ts["config"]["endpoints"][0];
    assert_eq!(
        endpoint["hosts"][0],
        "http://kubernaut-context-api.default.svc.cluster.local:8091"
    );
    assert_eq!(endpoint["paths"][0], "/api/v1/context/*");
    assert_eq!(endpoint["methods"][0], "GET");
    let instructions = ts["llm_instructions"].as_str().unwrap();
    for request in REQUESTS {
        assert!(instructions.contains(request), "{instructions}");
    }
    let file = dir.path().join("holmes.yaml");
    std::fs::write(&file, &out.stdout).unwrap();
    let check = std::process::Command::new(holmes::holmes_python())
        .arg(holmes::repo().join("tests/holmes/validate.py"))
        .arg("--strict")
        .arg(&file)
        .env("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "HolmesGPT rejected the output:\n{}\n{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
    let summary = String::from_utf8_lossy(&check.stdout);
    assert!(
        summary.starts_with("OK ") && !summary.contains(" 0 custom"),
        "{summary}"
    );

    // Attacked with HolmesGPT's own code (tests/holmes/attack.py: canaries in every secret,
    // every tool invoked with hostile parameters, network and processes intercepted): its
    // requests stay on the Context API's Service.
    let attack = std::process::Command::new(holmes::holmes_python())
        .arg(holmes::repo().join("tests/holmes/attack.py"))
        .arg(&file)
        .args([
            "--trusted",
            "kubernaut-context-api.default.svc.cluster.local:8091",
            "--strict-egress",
        ])
        .env("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&attack.stdout);
    assert!(
        attack.status.success()
            && report.contains("OK no findings")
            && !report.contains("invocations 0;"),
        "attack.py:\n{report}\n{}",
        String::from_utf8_lossy(&attack.stderr)
    );

    // A grant that lists another toolset: left out, and --explain names the grant.
    let text = std::fs::read_to_string(&decl).unwrap().replace(
        "toolsets: [kubernaut/context]",
        "toolsets: [kubernaut/other]",
    );
    std::fs::write(&decl, text).unwrap();
    let out = run(&decl);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Exit status 3: the configuration is written, but input was refused.
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    let doc: serde_yaml::Value = serde_yaml::from_slice(&out.stdout).unwrap();
    assert!(doc["toolsets"]["kubernaut/context"].is_null(), "{doc:?}");
    assert!(stderr.contains("outside the detector's grant"), "{stderr}");
}

/// What an author of such a detector iterates with: `detectors test --wasi` runs it over the
/// fixture. Under the strict default grant its described API is refused, naming the grant it
/// needs (exit status 3); with `--grants` as the operator will declare it, admitted (0); a
/// component that needs WASI is refused without `--wasi` (1).
#[test]
fn detectors_test_runs_it_with_wasi_and_a_grant() {
    let wasm = component();
    let manifests = root()
        .join(python::EXAMPLE_DIR)
        .join("fixtures/kubernaut-context-api.yaml");
    let run = |extra: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_dynamic-toolset"))
            .args(["detectors", "test"])
            .arg(&wasm)
            .arg("-m")
            .arg(&manifests)
            .args(extra)
            .env(
                "DETECTOR_CACHE_DIR",
                Path::new(env!("CARGO_TARGET_TMPDIR")).join("python-detector-cache"),
            )
            .output()
            .unwrap()
    };
    let without_wasi = run(&[]);
    assert_eq!(without_wasi.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&without_wasi.stderr);
    assert!(stderr.contains("wasi: true"), "{stderr}");

    let strict = run(&["--wasi"]);
    let stdout = String::from_utf8_lossy(&strict.stdout);
    assert_eq!(strict.status.code(), Some(3), "{stdout}");
    assert!(stdout.contains("grants.toolsets"), "{stdout}");

    let granted = run(&[
        "--wasi",
        "--grants",
        "{toolsets: [kubernaut/context]}",
        "-o",
        "json",
    ]);
    let stdout = String::from_utf8_lossy(&granted.stdout);
    assert_eq!(granted.status.code(), Some(0), "{stdout}");
    let report: serde_json::Value = serde_json::from_slice(&granted.stdout).unwrap();
    assert_eq!(report["summary"]["fragments_admitted"], 1, "{report}");
    assert_eq!(
        report["detector"]["exports"],
        serde_json::json!(["detector", "setup", "http-apis"])
    );
    let fragment = &report["services"][0]["fragments"][0]["fragment"];
    assert_eq!(fragment["toolset"], "kubernaut/context");
    assert_eq!(fragment["custom"], serde_json::Value::Null);
    let api = &report["detector"]["http_apis"][0];
    assert_eq!(api["toolset"], "kubernaut/context");
    assert_eq!(api["paths"][0], "/api/v1/context/*");

    let narrow = run(&["--wasi", "--grants", "{toolsets: [kubernaut/other]}"]);
    let stdout = String::from_utf8_lossy(&narrow.stdout);
    assert_eq!(narrow.status.code(), Some(3), "{stdout}");
    assert!(stdout.contains("outside the detector's grant"), "{stdout}");

    let bad = run(&["--wasi", "--grants", "{allow_comands: true}"]);
    assert_eq!(bad.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(
        stderr.contains("--grants") && stderr.contains("allow_comands"),
        "{stderr}"
    );
}
