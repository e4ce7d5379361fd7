//! `dynamic-toolset config check` run as a process on good and bad settings files.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Output};

use dynamic_toolset::config::{EXAMPLE_CONFIG, Settings};

/// Environment variables the settings read; cleared so the host's environment cannot leak in.
const SETTINGS_ENV: &[&str] = &[
    "DISCOVERY_INTERVAL",
    "RECONCILIATION_INTERVAL",
    "HEALTH_CHECK_ENABLED",
    "HEALTH_CHECK_INTERVAL",
    "LEADER_ELECTION_ENABLED",
    "LEASE_DURATION",
    "RENEW_DEADLINE",
    "RETRY_PERIOD",
    "NAMESPACES",
    "POD_NAMESPACE",
    "CONFIGMAP_NAME",
    "CONFIGMAP_NAMESPACE",
    "DETECTORS_DIR",
    "DETECTOR_CACHE_DIR",
];

fn check(file: &Path, env: &[(&str, &str)], extra: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dynamic-toolset"));
    cmd.args(["config", "check"]).arg(file).args(extra);
    for var in SETTINGS_ENV {
        cmd.env_remove(var);
    }
    cmd.env("RUST_LOG", "off");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run dynamic-toolset")
}

fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn good_file_prints_effective_settings_with_env_applied() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        &dir,
        "config.yaml",
        "service_discovery:\n  discovery_interval: 10m\n  namespaces: [monitoring, team-*]\n",
    );
    let out = check(
        &path,
        &[
            ("LEASE_DURATION", "30s"),
            ("POD_NAMESPACE", "observability"),
        ],
        &[],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    let settings = Settings::from_yaml(Path::new("stdout"), &stdout).unwrap();
    assert_eq!(settings.service_discovery.discovery_interval.as_secs(), 600);
    assert_eq!(
        settings.service_discovery.namespaces,
        ["monitoring", "team-*"]
    );
    assert_eq!(settings.leader_election.lease_duration.as_secs(), 30);
    assert_eq!(settings.configmap.namespace, "observability");
    assert_eq!(settings.leader_election.lease_namespace, "observability");
    assert!(
        stderr.contains("leader_election.lease_duration from env LEASE_DURATION"),
        "{stderr}"
    );

    // --no-env checks the file alone.
    let out = check(&path, &[("LEASE_DURATION", "30s")], &["--no-env"]);
    assert!(out.status.success());
    let settings =
        Settings::from_yaml(Path::new("stdout"), &String::from_utf8_lossy(&out.stdout)).unwrap();
    assert_eq!(settings.leader_election.lease_duration.as_secs(), 15);
}

#[test]
fn example_config_passes() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "example.yaml", EXAMPLE_CONFIG);
    let out = check(&path, &[], &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn bad_file_exits_1_and_names_every_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        &dir,
        "bad.yaml",
        "service_discovery:\n  discovery_interval: 5x\n  namespacs: [a]\nleader_election:\n  renew_deadline: 20s\n",
    );
    let out = check(&path, &[], &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(out.stdout.is_empty(), "nothing on stdout on error");
    assert!(
        stderr.contains(
            "bad.yaml:2: service_discovery.discovery_interval: \"5x\" is not a duration (e.g. 30s, 5m)"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains(
            "bad.yaml:3: service_discovery.namespacs: unknown key; did you mean namespaces?"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("bad.yaml:5: leader_election.renew_deadline: 20s must be shorter than leader_election.lease_duration"),
        "{stderr}"
    );
    assert!(stderr.contains("3 errors"), "{stderr}");
}

#[test]
fn bad_env_fails_a_good_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "config.yaml", "service_discovery: {}\n");
    let out = check(&path, &[("HEALTH_CHECK_ENABLED", "yes")], &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("env HEALTH_CHECK_ENABLED: service_discovery.health_check.enabled"),
        "{stderr}"
    );
}

#[test]
fn missing_file_exits_1_naming_it() {
    let out = check(Path::new("/nonexistent/settings.yaml"), &[], &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("/nonexistent/settings.yaml"), "{stderr}");
}
