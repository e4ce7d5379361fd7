#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;

use common::*;
use dynamic_toolset_core::FailureKind;
use dynamic_toolset_core::assemble::{Health, assemble};
use dynamic_toolset_core::explain::explain;
use dynamic_toolset_core::overrides::{Overrides, merge};
use dynamic_toolset_core::render::*;
use dynamic_toolset_core::select::{InstanceKey, select};
use dynamic_toolset_core::{Fragment, ServiceDetections};
use serde_json::{Value, json};

/// A varied set of detections: multi-instance, custom, unhealthy, declined.
fn detections() -> Vec<ServiceDetections> {
    let mut loki = builtin(
        "grafana/loki",
        "logging",
        "loki-gateway",
        "logging/loki",
        80,
    );
    loki.config.insert(
        "additional_headers".into(),
        json!({"X-Scope-OrgID": "tenant-1"}),
    );
    let mut grafana = builtin(
        "grafana/dashboards",
        "monitoring",
        "grafana",
        "monitoring/grafana",
        100,
    );
    grafana
        .config
        .insert("api_key".into(), json!("{{ env.GRAFANA_API_KEY }}"));
    let mut alertmanager = Fragment {
        toolset: "alertmanager/alerts".into(),
        backend: "alertmanager".into(),
        ..jaeger("monitoring", "alertmanager", 100)
    };
    if let Some(c) = alertmanager.custom.as_mut() {
        c.description = "Alertmanager alerts".into();
        c.tools = vec![dynamic_toolset_core::Tool {
            name: "alertmanager_list_alerts".into(),
            description: "List firing alerts".into(),
            command: "curl -s 'http://alertmanager.monitoring.svc.cluster.local:9093/api/v2/alerts?filter={{ filter }}'".into(),
        }];
    }
    vec![
        sd(
            "monitoring",
            "kps-prometheus",
            vec![
                matched(
                    "prometheus",
                    vec![prom("monitoring", "kps-prometheus", "monitoring/kps", 100)],
                ),
                unrelated("grafana"),
            ],
        ),
        sd(
            "monitoring",
            "prometheus-operated",
            vec![
                matched(
                    "prometheus",
                    vec![prom(
                        "monitoring",
                        "prometheus-operated",
                        "monitoring/kps",
                        10,
                    )],
                ),
                unrelated("grafana"),
            ],
        ),
        sd(
            "team-a",
            "prometheus",
            vec![
                matched(
                    "prometheus",
                    vec![prom("team-a", "prometheus", "team-a/prometheus", 100)],
                ),
                unrelated("grafana"),
            ],
        ),
        sd(
            "broken",
            "prometheus",
            vec![
                matched(
                    "prometheus",
                    vec![prom("broken", "prometheus", "broken/prometheus", 100)],
                ),
                unrelated("grafana"),
            ],
        ),
        sd(
            "monitoring",
            "grafana",
            vec![unrelated("prometheus"), matched("grafana", vec![grafana])],
        ),
        matched_sd("logging", "loki-gateway", "loki", vec![loki]),
        sd(
            "logging",
            "loki-write",
            vec![declined("loki", "write path")],
        ),
        jaeger_sd("tracing", "jaeger-query", 100),
        matched_sd(
            "monitoring",
            "alertmanager",
            "alertmanager",
            vec![alertmanager],
        ),
        sd(
            "default",
            "kubernetes",
            vec![unrelated("prometheus"), unrelated("grafana")],
        ),
        sd(
            "default",
            "web",
            vec![
                unrelated("prometheus"),
                failed("grafana", FailureKind::Timeout, "timeout after 100ms"),
            ],
        ),
    ]
}

fn health() -> BTreeMap<InstanceKey, Health> {
    BTreeMap::from([
        (
            InstanceKey::new("prometheus/metrics", "monitoring/kps"),
            Health::Healthy,
        ),
        (
            InstanceKey::new("prometheus/metrics", "team-a/prometheus"),
            Health::Healthy,
        ),
        (
            InstanceKey::new("prometheus/metrics", "broken/prometheus"),
            Health::Unhealthy {
                reason: "HTTP 503".into(),
            },
        ),
    ])
}

const OVERRIDES: &str = "\
# admin file
toolsets:
  grafana/loki:
    enabled: false
  grafana/dashboards:
    config:
      verify_ssl: false
mcp_servers:
  remote:
    description: remote tools
    config:
      url: http://mcp.tools.svc.cluster.local:8000/sse
";

fn render_all(input: &[ServiceDetections]) -> (String, String, String, String) {
    let selection = select(input);
    let assembly = assemble(&selection, &health(), Some("2026-01-01T00:00:00Z"));
    let overrides = Overrides::parse(OVERRIDES).unwrap();
    let (doc, report) = merge(&assembly.document(), &overrides);
    let discovery = Discovery::new(&assembly, &report);
    let target = ConfigMapTarget::new("kubernaut", "2026-01-01T00:00:05Z");
    (
        render_yaml(&doc).unwrap(),
        render_json(&doc).unwrap(),
        render_configmap_yaml(&target, &doc, Some(OVERRIDES), &discovery).unwrap(),
        explain(input, &selection, &assembly, &report).render_text(),
    )
}

#[test]
fn same_input_in_any_order_gives_identical_bytes() {
    let input = detections();
    let first = render_all(&input);
    let mut reversed = input.clone();
    reversed.reverse();
    assert_eq!(render_all(&reversed), first);
    // Rotate and shuffle verdict order within Services too.
    let mut rotated = input.clone();
    rotated.rotate_left(4);
    for s in &mut rotated {
        s.verdicts.reverse();
    }
    assert_eq!(render_all(&rotated), first);
    assert_eq!(render_all(&input), first);
}

#[test]
fn yaml_is_the_merged_holmesgpt_file_with_a_header() {
    let (yaml, json_text, _, _) = render_all(&detections());
    assert!(yaml.starts_with(YAML_HEADER));
    assert!(yaml.contains("overrides.yaml"));
    let parsed: Value = serde_yaml::from_str(&yaml).unwrap();
    let from_json: Value = serde_json::from_str(&json_text).unwrap();
    assert_eq!(parsed, from_json);
    let t = &parsed["toolsets"];
    assert_eq!(t["kubernetes/core"], json!({"enabled": true}));
    assert_eq!(t["grafana/loki"]["enabled"], false);
    assert_eq!(t["grafana/dashboards"]["config"]["verify_ssl"], false);
    assert_eq!(
        t["grafana/dashboards"]["config"]["api_key"],
        "{{ env.GRAFANA_API_KEY }}"
    );
    assert_eq!(
        t["prometheus/metrics"]["config"]["instances"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(t["alertmanager/alerts"]["enabled"], true);
    assert_eq!(t["jaeger/traces"]["enabled"], true);
    assert_eq!(
        parsed["mcp_servers"]["remote"]["config"]["url"],
        "http://mcp.tools.svc.cluster.local:8000/sse"
    );
    // `toolsets` first, entries sorted, `enabled` first in each entry.
    let body: Vec<&str> = yaml.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(body[0], "toolsets:");
    assert_eq!(body[1], "  alertmanager/alerts:");
    assert_eq!(body[2], "    enabled: true");
}

#[test]
fn configmap_has_name_labels_annotation_and_three_keys() {
    let input = detections();
    let selection = select(&input);
    let assembly = assemble(&selection, &health(), Some("2026-01-01T00:00:00Z"));
    let (doc, report) = merge(&assembly.document(), &Overrides::default());
    let discovery = Discovery::new(&assembly, &report);
    let target = ConfigMapTarget::new("kubernaut", "2026-01-01T00:00:05Z");
    let cm = render_configmap(&target, &doc, None, &discovery).unwrap();
    assert_eq!(cm["kind"], "ConfigMap");
    assert_eq!(cm["metadata"]["name"], DEFAULT_CONFIGMAP_NAME);
    assert_eq!(cm["metadata"]["namespace"], "kubernaut");
    assert_eq!(
        cm["metadata"]["labels"],
        json!({
            "app.kubernetes.io/name": "dynamic-toolset",
            "app.kubernetes.io/managed-by": "dynamic-toolset",
            "app.kubernetes.io/component": "dynamic-toolsets",
        })
    );
    assert_eq!(
        cm["metadata"]["annotations"][GENERATED_AT_ANNOTATION],
        "2026-01-01T00:00:05Z"
    );
    let data = cm["data"].as_object().unwrap();
    assert_eq!(
        data.keys().collect::<Vec<_>>(),
        [TOOLSETS_KEY, OVERRIDES_KEY, DISCOVERY_KEY]
    );
    assert_eq!(data[OVERRIDES_KEY], OVERRIDES_EXAMPLE);
    // The example parses as valid, empty overrides.
    assert!(Overrides::parse(OVERRIDES_EXAMPLE).unwrap().is_empty());
    assert_eq!(
        data[TOOLSETS_KEY].as_str().unwrap(),
        render_yaml(&doc).unwrap()
    );

    let text = data[DISCOVERY_KEY].as_str().unwrap();
    assert_eq!(text.lines().count(), 1, "compact: {text}");
    let disc: Value = serde_json::from_str(text).unwrap();
    assert_eq!(disc["format"], 2);
    assert_eq!(
        disc["columns"],
        json!([
            "instance",
            "service",
            "detector",
            "backend",
            "rank",
            "health",
            "probed_at"
        ])
    );
    let prom = &disc["toolsets"]["prometheus/metrics"];
    assert_eq!(prom["form"], "instances");
    assert!(
        prom.get("detected_as").is_none(),
        "same as the name: {prom}"
    );
    let row = &prom["instances"][0];
    assert_eq!(row[1], "monitoring/kps-prometheus");
    assert_eq!(row[5], "healthy");
    assert_eq!(row[6], "2026-01-01T00:00:00Z");
    assert_eq!(
        prom["instances"].as_array().unwrap().len(),
        doc["toolsets"]["prometheus/metrics"]["config"]["instances"]
            .as_array()
            .unwrap()
            .len(),
        "one row per output instance, in output order"
    );
    assert_eq!(disc["left_out"][0]["service"], "broken/prometheus");
    assert_eq!(disc["left_out"][0]["reason"], "unhealthy: HTTP 503");
    assert_eq!(disc["left_out_omitted"], 0);
}

#[test]
fn explain_says_what_became_of_every_fragment() {
    let (_, _, _, text) = render_all(&detections());
    if std::env::var_os("SHOW").is_some() {
        eprintln!("{text}");
    }
    let expect = [
        "monitoring/kps-prometheus\n  prometheus    matched prometheus/metrics [prometheus] instance=monitoring/kps rank=100",
        "-> chosen: prometheus/metrics (instance monitoring-kps), healthy",
        "-> not chosen: lower rank than monitoring/kps-prometheus (rank 100)",
        "-> left out: unhealthy: HTTP 503",
        "-> not used: grafana/loki disabled by override (enabled: false)",
        "declined: write path",
        "FAILED: timeout after 100ms",
        "-> chosen: jaeger/traces, not checked",
        "No detector claimed 1 Service(s): default/kubernetes",
    ];
    for e in expect {
        assert!(text.contains(e), "missing {e:?} in:\n{text}");
    }
}

#[test]
fn explain_structure_serialises() {
    let input = detections();
    let selection = select(&input);
    let assembly = assemble(&selection, &health(), None);
    let (_, report) = merge(&assembly.document(), &Overrides::default());
    let ex = explain(&input, &selection, &assembly, &report);
    let v = serde_json::to_value(&ex).unwrap();
    let first = &v["services"][0];
    assert_eq!(
        first["service"],
        json!({"namespace": "broken", "name": "prometheus"})
    );
    assert_eq!(first["verdicts"][1]["verdict"], "matched");
    assert_eq!(
        first["verdicts"][1]["fragments"][0]["outcome"]["kind"],
        "left_out"
    );
}

/// Writes the rendered file for the HolmesGPT validator (`tests/holmes/selftest.sh`).
/// `UPDATE_GOLDEN=1 cargo test -p dynamic-toolset-core --test render` refreshes it.
#[test]
fn generated_sample_matches_golden() {
    let (yaml, _, _, _) = render_all(&detections());
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/holmes/samples/good-generated.yaml"
    );
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(path, &yaml).unwrap();
    }
    let golden = std::fs::read_to_string(path).unwrap_or_default();
    assert_eq!(golden, yaml, "run with UPDATE_GOLDEN=1 to refresh {path}");
}
