//! A detector written out of tree, the way its author goes: `cargo xtask new-detector` (its
//! code, included below) creates a crate in a temporary directory outside the repository;
//! plain `cargo build --release --target wasm32-wasip2` inside it builds the component; its
//! own `cargo test` (the SDK's harness over its example manifest) passes; and
//! `dynamic-toolset detectors test` runs the component over that manifest in the host's
//! sandbox and gate. The nested builds run offline and share `target/new-detector`, so only
//! the first run compiles wit-bindgen.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

#[path = "../xtask/src/new_detector.rs"]
#[allow(dead_code)]
mod new_detector;

const NAME: &str = "acme-metrics";

fn workspace_root() -> PathBuf {
    guest_build::find_workspace_root(Path::new(env!("CARGO_MANIFEST_DIR"))).unwrap()
}

/// A cargo command for the scaffolded crate: none of the outer build's settings, offline,
/// the shared target directory.
fn cargo(dir: &Path, args: &[&str]) -> Output {
    let program = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = guest_build::scrubbed_command(program)
        .current_dir(dir)
        .args(args)
        .env("CARGO_NET_OFFLINE", "true")
        .env("CARGO_TARGET_DIR", target_dir())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cargo {} in {} failed ({}):\n{}",
        args.join(" "),
        dir.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn target_dir() -> PathBuf {
    workspace_root().join("target/new-detector")
}

/// The scaffolded crate (kept for the test binary's life) and its built component.
struct Scaffolded {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    wasm: PathBuf,
    test_stdout: String,
}

fn scaffolded() -> &'static Scaffolded {
    static ONCE: OnceLock<Scaffolded> = OnceLock::new();
    ONCE.get_or_init(|| {
        let tmp = tempfile::tempdir().unwrap();
        let created = new_detector::create(&workspace_root(), NAME, &tmp.path().join(NAME))
            .unwrap_or_else(|e| panic!("{e:#}"));
        guest_build::ensure_target().unwrap_or_else(|e| panic!("{e}"));
        cargo(
            &created.dir,
            &["build", "--release", "--target", "wasm32-wasip2"],
        );
        let wasm = target_dir().join(&created.component);
        assert!(wasm.is_file(), "{} was not built", wasm.display());
        let test = cargo(&created.dir, &["test"]);
        Scaffolded {
            _tmp: tmp,
            dir: created.dir,
            wasm,
            test_stdout: String::from_utf8_lossy(&test.stdout).into_owned(),
        }
    })
}

fn detectors_test(wasm: &Path, manifests: &Path, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dynamic-toolset"))
        .args(["detectors", "test"])
        .arg(wasm)
        .arg("-m")
        .arg(manifests)
        .args(extra)
        .env_remove("RUST_LOG")
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn scaffolded_crate_builds_tests_and_runs_in_the_host() {
    let s = scaffolded();
    assert!(
        !s.dir.starts_with(workspace_root().canonicalize().unwrap()),
        "the crate must live outside the repository"
    );
    assert!(
        s.test_stdout
            .contains("test the_query_service_becomes_a_prometheus_toolset ... ok"),
        "{}",
        s.test_stdout
    );
    assert!(s.test_stdout.contains("4 passed"), "{}", s.test_stdout);

    let manifests = s.dir.join("manifests");
    let out = detectors_test(&s.wasm, &manifests, &["-o", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["detector"]["name"], NAME);
    assert_eq!(
        report["detector"]["exports"],
        serde_json::json!(["detector", "setup", "identify", "http-apis"])
    );
    let services = report["services"].as_array().unwrap();
    let service = |key: &str| {
        services
            .iter()
            .find(|s| s["service"] == key)
            .unwrap_or_else(|| panic!("no {key} in {report:#}"))
    };
    let server = service("monitoring/acme-metrics");
    assert_eq!(server["verdict"], "matched");
    let fragment = &server["fragments"][0];
    assert_eq!(fragment["admitted"], true);
    assert!(
        fragment["gate"].as_array().unwrap().is_empty(),
        "{fragment:#}"
    );
    let f = &fragment["fragment"];
    let endpoint = "http://acme-metrics.monitoring.svc.cluster.local:9090";
    assert_eq!(f["toolset"], "prometheus/metrics");
    assert_eq!(f["instance"], "monitoring/acme-metrics");
    assert_eq!(f["rank"], 200);
    assert_eq!(f["endpoint"], endpoint);
    assert_eq!(f["health"]["path"], "/-/ready");
    assert_eq!(f["config"], serde_json::json!({"prometheus_url": endpoint}));
    let candidates = f["identification"]["candidates"].as_array().unwrap();
    assert_eq!(candidates.len(), 2);
    assert_eq!(
        candidates[1]["endpoint"],
        "https://acme-metrics.monitoring.svc.cluster.local:9090"
    );
    assert_eq!(
        candidates[1]["fingerprint"]["path"],
        "/api/v1/status/buildinfo"
    );
    assert_eq!(
        service("monitoring/acme-metrics-headless")["fragments"][0]["fragment"]["rank"],
        50
    );
    assert_eq!(
        service("monitoring/acme-metrics-exporter")["verdict"],
        "declined"
    );
    assert_eq!(service("default/kubernetes")["verdict"], "unrelated");
    assert_eq!(
        report["summary"],
        serde_json::json!({"services": 4, "matched": 2, "declined": 1, "unrelated": 1,
            "failed": 0, "fragments_admitted": 2, "fragments_refused": 0, "gate_refusals": 0})
    );

    let out = detectors_test(&s.wasm, &manifests, &["--hide-unrelated"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let shown = text(&out.stdout);
    assert!(
        shown.starts_with("detector acme-metrics 0.1.0 ("),
        "{shown}"
    );
    assert!(
        shown.contains("monitoring/acme-metrics (") && shown.contains("): matched, 1 fragment\n"),
        "{shown}"
    );
    assert!(shown.contains("  - prometheus/metrics  backend prometheus  instance monitoring/acme-metrics  rank 200  admitted\n"), "{shown}");
    assert!(
        shown.contains(&format!("      endpoint    {endpoint}\n")),
        "{shown}"
    );
    assert!(shown.contains("fingerprint GET https://acme-metrics.monitoring.svc.cluster.local:9090/api/v1/status/buildinfo -> 200, JSON with /data/version"), "{shown}");
    assert!(
        shown.contains("declined: acme-metrics exporter: a scrape target"),
        "{shown}"
    );
    assert!(!shown.contains("default/kubernetes"), "{shown}");
}

/// What the gate refuses is shown on the fragment, and the exit status says so.
#[test]
fn a_refused_fragment_is_shown_with_the_gate_note_and_exit_status_3() {
    let s = scaffolded();
    let tmp = tempfile::tempdir().unwrap();
    let manifest = tmp.path().join("external.yaml");
    std::fs::write(
        &manifest,
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: acme-metrics\n  namespace: shop\n  \
         labels: {app.kubernetes.io/name: acme-metrics}\nspec:\n  type: ExternalName\n  \
         externalName: metrics.example.com\n  ports: [{name: http, port: 9090}]\n",
    )
    .unwrap();
    let out = detectors_test(&s.wasm, &manifest, &[]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let shown = text(&out.stdout);
    assert!(shown.contains("rank 200  REFUSED by the gate"), "{shown}");
    assert!(
        shown.contains("gate        refused spec.type (external_name): ExternalName Services"),
        "{shown}"
    );
    assert!(
        shown.contains("fragments: 0 admitted, 1 refused"),
        "{shown}"
    );
}

/// A file that is not a loadable component is named with the reason; exit status 1.
#[test]
fn a_bad_component_is_named_with_the_reason() {
    let s = scaffolded();
    let tmp = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(&s.wasm).unwrap();
    let truncated = tmp.path().join("truncated.wasm");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let text_file = tmp.path().join("notes.wasm");
    std::fs::write(&text_file, "not a component").unwrap();
    let missing = tmp.path().join("missing.wasm");
    for (file, reason) in [
        (&truncated, "invalid component"),
        (&text_file, "not a WebAssembly file"),
        (&missing, "cannot read"),
        (&tmp.path().to_path_buf(), "cannot read: not a regular file"),
    ] {
        let out = detectors_test(file, &s.dir.join("manifests"), &[]);
        assert_eq!(out.status.code(), Some(1), "{}", file.display());
        let err = text(&out.stderr);
        assert!(
            err.contains(&format!(
                "error: cannot load detector {}: {reason}",
                file.display()
            )),
            "{err}"
        );
        assert!(out.stdout.is_empty());
    }
}

/// Settings reach the detector's `configure`; the example takes none, and says which.
#[test]
fn settings_the_detector_refuses_are_named_with_its_reason() {
    let s = scaffolded();
    let manifests = s.dir.join("manifests");
    let out = detectors_test(&s.wasm, &manifests, &["--settings", "{}"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = detectors_test(&s.wasm, &manifests, &["--settings", r#"{"tenant": "a"}"#]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!(
            "error: cannot load detector {}: refused its settings: this detector takes no settings (got: tenant)",
            s.wasm.display()
        )),
        "{err}"
    );
    let out = detectors_test(&s.wasm, &manifests, &["--settings", "[1]"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("--settings must be a JSON object"));
}

/// The SDK is self-contained: the contract is in the crate (the repository's `wit/` is that
/// same file, one copy), and the package carries it.
#[test]
fn the_sdk_carries_the_one_copy_of_the_contract() {
    let root = workspace_root();
    let sdk_wit = root.join("guest-detectors/sdk/wit/detector.wit");
    assert!(
        !std::fs::symlink_metadata(&sdk_wit)
            .unwrap()
            .file_type()
            .is_symlink(),
        "the SDK's copy is the file itself"
    );
    assert_eq!(
        root.join("wit/detector.wit").canonicalize().unwrap(),
        sdk_wit.canonicalize().unwrap(),
        "wit/ (read by the host's bindings) must be the SDK's wit/"
    );
    let program = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = guest_build::scrubbed_command(program)
        .current_dir(&root)
        .args(["package", "-p", "detector-sdk", "--list", "--allow-dirty"])
        .env("CARGO_NET_OFFLINE", "true")
        .env("CARGO_TARGET_DIR", target_dir())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let files = text(&out.stdout);
    for f in [
        "wit/detector.wit",
        "src/lib.rs",
        "src/harness.rs",
        "README.md",
    ] {
        assert!(files.lines().any(|l| l == f), "{f} not packaged:\n{files}");
    }
    assert!(!files.contains("tests/"), "{files}");
}
