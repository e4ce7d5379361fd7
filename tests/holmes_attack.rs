//! Adversarial end to end (issue 9 items 2 and 7): the `dynamic-toolset` binary runs `discover`
//! on hostile cluster input (tests/fixtures/hostile: tenant annotations naming the internet,
//! cloud metadata, the apiserver, other namespaces, `{{ env.* }}` templates, userinfo and curl
//! globs; Grafana/ECK look-alikes in a tenant namespace; an ExternalName Grafana; names the
//! apiserver would refuse) next to legitimate backends in `monitoring`, and optionally with a
//! hostile third-party detector (tests/guests/evil-fragments) in `--detectors-dir`.
//!
//! The output is then loaded into HolmesGPT's own code by tests/holmes/attack.py, with canary
//! secrets in the environment, all network and processes intercepted, prerequisites run and
//! every tool invoked with hostile parameters. It must report nothing: no canary reaches a host
//! other than the legitimate monitoring Services, nothing injected runs, no `bash`/unexpected
//! built-in, no prerequisites command beyond `curl --version`, no request to a forbidden host.
//! And the legitimate toolsets must still be there.
//!
//! Needs python3 (venv made by tests/holmes/setup.sh) and, for the detector test, the
//! wasm32-wasip2 target (guest_build adds it). Run:
//!   cargo test -p dynamic-toolset --test holmes_attack -- --nocapture

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "common/holmes.rs"]
mod holmes;
use holmes::{holmes_python, repo};

use std::path::{Path, PathBuf};
use std::process::Command;

const NS: &str = "monitoring";
/// The legitimate backends of tests/fixtures/hostile/00-legit-monitoring.yaml.
const PROMETHEUS: &str = "prometheus-server.monitoring.svc.cluster.local:80";
const GRAFANA: &str = "grafana.monitoring.svc.cluster.local:80";
const ALERTMANAGER: &str = "prometheus-alertmanager.monitoring.svc.cluster.local:9093";

fn tmp(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("holmes-attack");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// `discover` on the hostile fixtures; exit 0, or 3 (output printed, some input rejected).
/// Returns the output and the `--explain`/log text.
fn discover(extra: &[&str]) -> (String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_dynamic-toolset"))
        .arg("discover")
        .arg("-m")
        .arg(repo().join("tests/fixtures/hostile"))
        .args([
            "--no-health-check",
            "--explain",
            "--credential-namespace",
            NS,
        ])
        .args(extra)
        .env(
            "DETECTOR_CACHE_DIR",
            PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("detector-cache"),
        )
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        matches!(out.status.code(), Some(0 | 3)),
        "discover {extra:?} failed ({}):\n{stderr}",
        out.status
    );
    eprintln!("--- discover {extra:?} --explain:\n{stderr}");
    (String::from_utf8(out.stdout).unwrap(), stderr.into_owned())
}

/// Every `needle` is in the `--explain`/log text (each refusal named with its field).
fn assert_refused(explain: &str, needles: &[&str]) {
    for n in needles {
        assert!(explain.contains(n), "explain lacks {n:?}:\n{explain}");
    }
}

/// Runs attack.py on `yaml`; panics with its findings unless it exits 0 having invoked tools.
fn attack(name: &str, yaml: &str) {
    let file = tmp(name);
    std::fs::write(&file, yaml).unwrap();
    let out = Command::new(holmes_python())
        .arg(repo().join("tests/holmes/attack.py"))
        .arg(&file)
        .args([
            "--trusted",
            PROMETHEUS,
            "--trusted",
            GRAFANA,
            "--trusted",
            ALERTMANAGER,
        ])
        .args(["--allow-prereq", "curl --version"])
        // Other namespaces than the tenant's own: no request at all may go there.
        .args([
            "--forbid-host",
            "*.vault.svc.cluster.local",
            "--forbid-host",
            "*.team-b.svc.cluster.local",
        ])
        .env("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("--- attack.py {}:\n{stdout}", file.display());
    assert!(
        out.status.success(),
        "attack.py found problems in {} (exit {}):\n{stdout}\n{stderr}\n--- output was:\n{yaml}",
        file.display(),
        out.status
    );
    assert!(
        stdout.contains("OK no findings") && !stdout.contains("invocations 0;"),
        "attack.py did not exercise any tool:\n{stdout}"
    );
}

/// The legitimate backends survived the attacks, with credentials where the admin trusts.
fn assert_legit_present(yaml: &str) {
    let doc: serde_yaml::Value = serde_yaml::from_str(yaml).expect("output is YAML");
    let toolsets = &doc["toolsets"];
    let text = |name: &str| serde_yaml::to_string(&toolsets[name]).unwrap();
    for (toolset, host) in [
        ("prometheus/metrics", PROMETHEUS),
        ("grafana/dashboards", GRAFANA),
        ("alertmanager/alerts", ALERTMANAGER),
    ] {
        assert_eq!(
            toolsets[toolset]["enabled"],
            serde_yaml::Value::Bool(true),
            "{toolset} missing or disabled:\n{yaml}"
        );
        assert!(
            text(toolset).contains(host),
            "{toolset} does not point at {host}:\n{}",
            text(toolset)
        );
    }
    assert!(
        text("grafana/dashboards").contains("GRAFANA_API_KEY"),
        "the monitoring Grafana lost its credential:\n{}",
        text("grafana/dashboards")
    );
    assert_eq!(
        toolsets["kubernetes/core"]["enabled"],
        serde_yaml::Value::Bool(true),
        "{yaml}"
    );
}

#[test]
fn hostile_services_cannot_steer_holmesgpt() {
    let (yaml, explain) = discover(&[]);
    assert_legit_present(&yaml);
    assert_refused(
        &explain,
        &[
            "REFUSED grafana/dashboards: spec.type: ExternalName Services alias an arbitrary host",
            "endpoint: host \"attacker.example.com\" is not an in-cluster Service name",
            "endpoint: IP address 169.254.169.254 is not the cluster IP of Service team-a/meta",
            "endpoint: the Kubernetes API server is never a backend",
            "REFUSED custom/http: endpoint: the Kubernetes API server is never a backend",
            "REFUSED custom/http: endpoint: host \"attacker.example.com\" is not an in-cluster Service name",
            "endpoint: Service vault.vault is in another namespace than team-a",
            "endpoint: path \"/[1-100000000]\" has characters outside",
            "note grafana/dashboards: config: namespace team-a is not in credential_namespaces: emitted without api_key",
            "(Service team-a/grafana{{ env.OPENAI_API_KEY }}): field `metadata.name`",
        ],
    );
    attack("hostile-services.yaml", &yaml);
}

#[test]
fn hostile_detector_cannot_steer_holmesgpt() {
    let root = guest_build::find_workspace_root(Path::new(env!("CARGO_MANIFEST_DIR"))).unwrap();
    let guests = guest_build::discover(&root.join("tests/guests"), "test-guest-", &[]).unwrap();
    let guests: Vec<_> = guests
        .into_iter()
        .filter(|g| g.package == "test-guest-evil-fragments")
        .collect();
    assert_eq!(guests.len(), 1, "tests/guests/evil-fragments not found");
    let built = guest_build::build(&guest_build::Options {
        workspace_root: root,
        guests,
        show_progress: false,
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let dir = tmp("evil-detectors");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(&built[0].path, dir.join("evil-fragments.wasm")).unwrap();

    let (yaml, explain) = discover(&["--detectors-dir", dir.to_str().unwrap()]);
    assert_legit_present(&yaml);
    assert_refused(
        &explain,
        &[
            "detector=evil-fragments toolset=bash field=toolset kind=toolset",
            "detector=evil-fragments toolset=kubernetes/core field=toolset kind=toolset",
            "detector=evil-fragments toolset=evil/tools field=toolset kind=toolset",
            "detector=evil-fragments toolset=alertmanager/alerts field=custom kind=commands",
            "detector=evil-fragments toolset=grafana/dashboards field=endpoint kind=endpoint",
            "detector=evil-fragments toolset=prometheus/metrics field=endpoint kind=endpoint",
        ],
    );
    attack("hostile-detector.yaml", &yaml);
}
