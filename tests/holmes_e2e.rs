//! End to end: the `dynamic-toolset` binary runs `discover` on the example cluster (and on
//! real-source fixtures, `tests/fixtures/real/`, with admin overrides), and HolmesGPT's own loader (holmesgpt 0.45.0, in a
//! venv made by tests/holmes/setup.sh) must accept every toolset and validate every config
//! against the toolset's config class (`validate.py --strict`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "common/holmes.rs"]
mod holmes;
use holmes::{holmes_python, repo};

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn tmp(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("holmes-e2e");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn discover(args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_dynamic-toolset"))
        .arg("discover")
        .args(args)
        .env(
            "DETECTOR_CACHE_DIR",
            PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("detector-cache"),
        )
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "discover {args:?} failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn validate(file: &Path) -> String {
    let out = Command::new(holmes_python())
        .arg(repo().join("tests/holmes/validate.py"))
        .arg("--strict")
        .arg(file)
        .env("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "HolmesGPT rejected {}:\n{}\n{}",
        file.display(),
        stdout,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn example_cluster_output_loads_in_holmesgpt() {
    let out = discover(&["--example", "--no-health-check"]);
    let file = tmp("example.yaml");
    std::fs::write(&file, &out.stdout).unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    // The example cluster must exercise the interesting paths, or this test proves little.
    for needle in [
        "prometheus/metrics",
        "instances:",
        "grafana/loki",
        "grafana/tempo",
        "elasticsearch/data",
        "jaeger/traces",
        "alertmanager/alerts",
        "victorialogs",
    ] {
        assert!(
            text.contains(needle),
            "example output lacks {needle}:\n{text}"
        );
    }
    assert!(
        !text.contains("kubecost"),
        "Kubecost's bundled backends leaked:\n{text}"
    );
    let summary = validate(&file);
    eprintln!("{summary}");
}

#[test]
fn overrides_merge_and_still_load() {
    let overrides = tmp("overrides.yaml");
    std::fs::write(
        &overrides,
        r#"# admin overrides
toolsets:
  grafana/dashboards:
    enabled: false
  prometheus/metrics:
    config:
      query_timeout_seconds_default: 30
  kubernetes/live-metrics:
    enabled: true
mcp_servers:
  company-runbooks:
    description: Runbooks MCP server
    config:
      url: http://runbooks.tools.svc.cluster.local:8000/sse
"#,
    )
    .unwrap();
    let real = repo().join("tests/fixtures/real");
    let out = discover(&[
        "--no-health-check",
        "--overrides",
        overrides.to_str().unwrap(),
        // loki-distributed's MinIO objects carry no namespace (its canonical file: loki).
        "--default-namespace",
        "loki",
        "--manifests",
        real.join("kube-prometheus-stack.yaml").to_str().unwrap(),
        real.join("loki-distributed.yaml").to_str().unwrap(),
    ]);
    let file = tmp("with-overrides.yaml");
    std::fs::write(&file, &out.stdout).unwrap();
    let doc: serde_yaml::Value = serde_yaml::from_slice(&out.stdout).unwrap();
    let ts = &doc["toolsets"];
    assert_eq!(
        ts["grafana/dashboards"]["enabled"],
        serde_yaml::Value::Bool(false)
    );
    // The discovered URL survives next to the admin's key.
    assert!(ts["prometheus/metrics"]["config"]["prometheus_url"].is_string());
    assert_eq!(
        ts["prometheus/metrics"]["config"]["query_timeout_seconds_default"],
        serde_yaml::Value::from(30)
    );
    assert_eq!(
        ts["kubernetes/live-metrics"]["enabled"],
        serde_yaml::Value::Bool(true)
    );
    assert!(doc["mcp_servers"]["company-runbooks"]["config"]["url"].is_string());
    validate(&file);
}

#[test]
fn output_is_byte_identical_whatever_the_input_order() {
    let real = repo().join("tests/fixtures/real");
    let files = [
        "bitnami-thanos.yaml",
        "kube-prometheus-stack.yaml",
        "eck.yaml",
        "jaeger.yaml",
    ];
    let paths: Vec<String> = files
        .iter()
        .map(|f| real.join(f).to_str().unwrap().to_string())
        .collect();
    let mut reversed = paths.clone();
    reversed.reverse();
    // jaeger.yaml's Service carries no namespace (its canonical file: tracing).
    let common = [
        "--no-health-check",
        "--default-namespace",
        "tracing",
        "--format",
        "json",
        "--manifests",
    ];
    let mut a_args = common.to_vec();
    a_args.extend(paths.iter().map(String::as_str));
    let mut b_args = common.to_vec();
    b_args.extend(reversed.iter().map(String::as_str));
    let a = discover(&a_args).stdout;
    let again = discover(&a_args).stdout;
    let b = discover(&b_args).stdout;
    assert_eq!(a, again, "same input, different output");
    assert_eq!(a, b, "input order changed the output");
    assert!(
        String::from_utf8(a)
            .unwrap()
            .contains("\"prometheus/metrics\"")
    );
}

#[test]
fn malformed_overrides_is_an_error_naming_the_line() {
    let overrides = tmp("bad-overrides.yaml");
    std::fs::write(
        &overrides,
        "toolsets:\n  grafana/dashboards:\n    enable: false\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_dynamic-toolset"))
        .args(["discover", "--example", "--no-health-check", "--overrides"])
        .arg(&overrides)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        out.stdout.is_empty(),
        "nothing may be printed on a bad overrides file"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 3"), "{err}");
    assert!(err.contains("enable"), "{err}");
}

#[test]
fn bad_manifest_is_reported_and_the_rest_still_processed() {
    let manifest = tmp("mixed.yaml");
    std::fs::write(
        &manifest,
        "apiVersion: v1\nkind: Service\nmetadata: {name: broken, namespace: monitoring}\nspec:\n  ports: [{name: web, port: http}]\n---\n\
         apiVersion: v1\nkind: Service\nmetadata:\n  name: vm\n  namespace: monitoring\n  labels: {app.kubernetes.io/name: victoria-metrics-single, app.kubernetes.io/instance: vm}\n\
         spec:\n  ports: [{name: http, port: 8428, targetPort: http}]\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_dynamic-toolset"))
        .args(["discover", "--no-health-check", "--manifests"])
        .arg(&manifest)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(3),
        "partial success has its own exit status"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("document 1"), "{err}");
    assert!(err.contains("Service monitoring/broken"), "{err}");
    assert!(err.contains("spec.ports[0].port"), "{err}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("prometheus/metrics"), "{text}");
}

/// `dynamic-toolset overrides import`: what an admin configured in HolmesGPT's own chart
/// (its real default values, and a customised values file) becomes our overrides.yaml, an
/// existing overrides.yaml wins on top, and the merged output still loads in HolmesGPT.
#[test]
fn holmes_chart_toolsets_move_into_overrides() {
    let import = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_dynamic-toolset"))
            .args(["overrides", "import"])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "overrides import {args:?} failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    // The chart's real defaults (tests/fixtures/holmes, cited there).
    let chart = repo().join("tests/fixtures/holmes/holmes-chart-values.yaml");
    let text = import(&[chart.to_str().unwrap()]);
    let doc: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    for name in [
        "kubernetes/core",
        "robusta",
        "internet",
        "prometheus/metrics",
    ] {
        assert_eq!(
            doc["toolsets"][name]["enabled"],
            serde_yaml::Value::Bool(true),
            "{name}:\n{text}"
        );
    }
    assert!(doc.get("image").is_none(), "chart keys leaked:\n{text}");

    // A customised values file, with an existing overrides.yaml that must win.
    let values = tmp("holmes-values.yaml");
    std::fs::write(
        &values,
        r#"image: holmes:0.45.0
toolsets:
  grafana/loki:
    enabled: true
    config:
      api_url: http://loki-gateway.logs.svc.cluster.local
  prometheus/metrics:
    enabled: true
    config:
      query_timeout_seconds_default: 60
mcp_servers:
  runbooks:
    description: Company runbooks
    config:
      url: http://runbooks.tools.svc.cluster.local:8000/sse
"#,
    )
    .unwrap();
    let existing = tmp("existing-overrides.yaml");
    std::fs::write(
        &existing,
        "toolsets:\n  grafana/loki:\n    enabled: false\n",
    )
    .unwrap();
    let text = import(&[
        values.to_str().unwrap(),
        "--overrides",
        existing.to_str().unwrap(),
    ]);
    let imported = tmp("imported-overrides.yaml");
    std::fs::write(&imported, &text).unwrap();
    let doc: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    assert_eq!(
        doc["toolsets"]["grafana/loki"]["enabled"],
        serde_yaml::Value::Bool(false),
        "the existing overrides win:\n{text}"
    );
    assert_eq!(
        doc["toolsets"]["grafana/loki"]["config"]["api_url"],
        "http://loki-gateway.logs.svc.cluster.local"
    );
    assert!(doc["mcp_servers"]["runbooks"].is_mapping(), "{text}");

    // The imported overrides over a discovered cluster: HolmesGPT loads the result and
    // the admin's settings are in it.
    let out = discover(&[
        "--example",
        "--no-health-check",
        "--overrides",
        imported.to_str().unwrap(),
    ]);
    let file = tmp("example-with-imported.yaml");
    std::fs::write(&file, &out.stdout).unwrap();
    let merged: serde_yaml::Value = serde_yaml::from_slice(&out.stdout).unwrap();
    assert_eq!(
        merged["toolsets"]["prometheus/metrics"]["config"]["query_timeout_seconds_default"],
        serde_yaml::Value::from(60)
    );
    assert_eq!(
        merged["mcp_servers"]["runbooks"]["config"]["url"],
        "http://runbooks.tools.svc.cluster.local:8000/sse"
    );
    validate(&file);

    // HolmesGPT's old list format is refused with a reason, not silently dropped.
    let old = tmp("old-format.yaml");
    std::fs::write(&old, "toolsets:\n  - name: x\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_dynamic-toolset"))
        .args(["overrides", "import", old.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("`toolsets` is a list"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
