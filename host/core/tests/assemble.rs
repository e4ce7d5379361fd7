#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;

use common::*;
use dynamic_toolset_core::assemble::{EntryForm, Health, LeftOutReason, assemble};
use dynamic_toolset_core::select::{InstanceKey, select};
use serde_json::json;

fn no_health() -> BTreeMap<InstanceKey, Health> {
    BTreeMap::new()
}

#[test]
fn always_on_toolsets_even_with_nothing_found() {
    let a = assemble(&select(&[]), &no_health(), None);
    assert_eq!(
        a.document(),
        json!({"toolsets": {
            "kubernetes/core": {"enabled": true},
            "kubernetes/logs": {"enabled": true},
        }})
    );
    assert_eq!(a.provenance["kubernetes/core"].form, EntryForm::AlwaysOn);
}

#[test]
fn one_installation_gives_flat_config() {
    let input = vec![prom_sd("monitoring", "prom", "monitoring/prom", 100)];
    let mut health = BTreeMap::new();
    health.insert(
        InstanceKey::new("prometheus/metrics", "monitoring/prom"),
        Health::Healthy,
    );
    let a = assemble(&select(&input), &health, Some("2026-01-01T00:00:00Z"));
    assert_eq!(
        a.toolsets["prometheus/metrics"],
        json!({"enabled": true, "config": {"prometheus_url": "http://prom.monitoring.svc.cluster.local:9090"}})
    );
    let p = &a.provenance["prometheus/metrics"];
    assert_eq!(p.form, EntryForm::Single);
    assert_eq!(p.instances[0].service, svc("monitoring", "prom"));
    assert_eq!(p.instances[0].detector, "prometheus");
    assert_eq!(p.instances[0].health, Health::Healthy);
    assert_eq!(
        p.instances[0].probed_at.as_deref(),
        Some("2026-01-01T00:00:00Z")
    );
}

#[test]
fn several_installations_use_the_instances_form() {
    let input = vec![
        prom_sd("team-b", "prom", "team-b/prom", 100),
        prom_sd("monitoring", "kps", "monitoring/kube-prometheus-stack", 100),
    ];
    let a = assemble(&select(&input), &no_health(), None);
    assert_eq!(
        a.toolsets["prometheus/metrics"],
        json!({"enabled": true, "config": {"instances": [
            {"name": "monitoring-kube-prometheus-stack", "prometheus_url": "http://kps.monitoring.svc.cluster.local:9090"},
            {"name": "team-b-prom", "prometheus_url": "http://prom.team-b.svc.cluster.local:9090"},
        ]}})
    );
    let p = &a.provenance["prometheus/metrics"];
    assert_eq!(p.form, EntryForm::Instances);
    assert_eq!(p.instances[1].instance_name.as_deref(), Some("team-b-prom"));
    assert!(a.left_out.is_empty());
}

#[test]
fn colliding_instance_names_get_suffixes() {
    let input = vec![prom_sd("a", "p", "a/b", 100), prom_sd("a", "q", "a-b", 100)];
    let a = assemble(&select(&input), &no_health(), None);
    let names: Vec<_> = a.toolsets["prometheus/metrics"]["config"]["instances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["a-b", "a-b-2"]);
}

#[test]
fn single_instance_toolset_prefers_monitoring_namespace_then_rank() {
    let t = "kubernetes/kube-prometheus-stack";
    let input = vec![
        matched_sd(
            "apps",
            "x",
            "d",
            vec![builtin(t, "apps", "x", "apps/x", 500)],
        ),
        matched_sd(
            "monitoring",
            "y",
            "d",
            vec![builtin(t, "monitoring", "y", "monitoring/y", 10)],
        ),
        matched_sd(
            "monitoring",
            "z",
            "d",
            vec![builtin(t, "monitoring", "z", "monitoring/z", 20)],
        ),
    ];
    let a = assemble(&select(&input), &no_health(), None);
    assert_eq!(
        a.toolsets[t]["config"]["api_url"],
        "http://z.monitoring.svc.cluster.local:8080"
    );
    assert_eq!(a.left_out.len(), 2);
    for l in &a.left_out {
        assert_eq!(
            l.reason,
            LeftOutReason::AnotherInstancePreferred {
                chosen_instance: "monitoring/z".into(),
                chosen_service: svc("monitoring", "z"),
            }
        );
    }
    assert_eq!(a.notes.len(), 1);
    assert!(
        a.notes[0].contains("apps/x") && a.notes[0].contains("monitoring/y"),
        "{}",
        a.notes[0]
    );
}

#[test]
fn custom_toolsets_get_distinct_names_and_tool_names() {
    let input = vec![
        jaeger_sd("tracing", "jaeger-query", 100),
        jaeger_sd("apps", "jaeger", 100),
    ];
    let a = assemble(&select(&input), &no_health(), None);
    // Neither namespace is monitoring-like, same rank: instance key order, "apps/jaeger" first.
    let base = &a.toolsets["jaeger/traces"];
    assert_eq!(base["description"], "Jaeger traces");
    assert_eq!(base["enabled"], true);
    assert_eq!(
        base["prerequisites"],
        json!([{"command": "curl --version"}])
    );
    assert_eq!(base["tools"][0]["name"], "jaeger_find_traces");
    assert!(
        base["tools"][0]["command"]
            .as_str()
            .unwrap()
            .contains("jaeger.apps.svc")
    );
    let extra = &a.toolsets["jaeger/traces-tracing-jaeger-query"];
    assert_eq!(
        extra["tools"][0]["name"],
        "jaeger_find_traces_tracing_jaeger_query"
    );
    assert!(extra.get("config").is_none());
    assert_eq!(
        a.provenance["jaeger/traces-tracing-jaeger-query"].detected_as,
        "jaeger/traces"
    );
    assert_eq!(
        a.provenance["jaeger/traces-tracing-jaeger-query"].form,
        EntryForm::Custom
    );
}

#[test]
fn unhealthy_installations_are_left_out_with_the_reason() {
    let input = vec![
        prom_sd("monitoring", "prom", "monitoring/prom", 100),
        prom_sd("apps", "prom", "apps/prom", 100),
    ];
    let mut health = BTreeMap::new();
    health.insert(
        InstanceKey::new("prometheus/metrics", "apps/prom"),
        Health::Unhealthy {
            reason: "HTTP 503".into(),
        },
    );
    health.insert(
        InstanceKey::new("prometheus/metrics", "monitoring/prom"),
        Health::Healthy,
    );
    let a = assemble(&select(&input), &health, Some("t1"));
    // One healthy instance left: flat config.
    assert_eq!(
        a.toolsets["prometheus/metrics"]["config"]["prometheus_url"],
        "http://prom.monitoring.svc.cluster.local:9090"
    );
    assert_eq!(a.left_out.len(), 1);
    assert_eq!(a.left_out[0].service, svc("apps", "prom"));
    assert_eq!(
        a.left_out[0].reason,
        LeftOutReason::Unhealthy {
            reason: "HTTP 503".into()
        }
    );

    // All unhealthy: toolset absent, a note says why.
    health.insert(
        InstanceKey::new("prometheus/metrics", "monitoring/prom"),
        Health::Unhealthy {
            reason: "connection refused".into(),
        },
    );
    let a = assemble(&select(&input), &health, None);
    assert!(!a.toolsets.contains_key("prometheus/metrics"));
    assert_eq!(a.left_out.len(), 2);
    assert!(
        a.notes
            .iter()
            .any(|n| n.starts_with("prometheus/metrics: every installation"))
    );
}

#[test]
fn not_checked_is_kept() {
    let input = vec![grafana_sd()];
    let a = assemble(&select(&input), &no_health(), Some("t"));
    assert!(a.toolsets.contains_key("grafana/dashboards"));
    let i = &a.provenance["grafana/dashboards"].instances[0];
    assert_eq!(i.health, Health::NotChecked);
    assert_eq!(i.probed_at, None);
}

#[test]
fn duplicate_custom_tool_names_across_toolsets_are_noted() {
    let am = dynamic_toolset_core::Fragment {
        toolset: "alertmanager/alerts".into(),
        ..jaeger("monitoring", "am", 100)
    };
    let input = vec![
        jaeger_sd("tracing", "jaeger", 100),
        matched_sd("monitoring", "am", "alertmanager", vec![am]),
    ];
    let a = assemble(&select(&input), &no_health(), None);
    assert!(
        a.notes.iter().any(|n| n.contains(
            "tool `jaeger_find_traces` is defined by alertmanager/alerts and jaeger/traces"
        )),
        "{:?}",
        a.notes
    );
}

#[test]
fn victoriametrics_only_entries_get_the_subtype_and_search_entries_instructions() {
    let vm = |ns: &str, name: &str| {
        let mut f = prom(ns, name, &format!("{ns}/{name}"), 200);
        f.backend = "victoriametrics".into();
        matched_sd(ns, name, "victoriametrics", vec![f])
    };
    let a = assemble(&select(&[vm("a", "vm"), vm("b", "vm")]), &no_health(), None);
    assert_eq!(
        a.toolsets["prometheus/metrics"]["subtype"],
        "victoriametrics"
    );
    assert_eq!(
        a.provenance["prometheus/metrics"].form,
        EntryForm::Instances
    );

    // A mix with Prometheus keeps HolmesGPT's default (the subtype is per entry).
    let p = prom_sd("c", "prom", "c/prom", 200);
    let a = assemble(&select(&[vm("a", "vm"), p]), &no_health(), None);
    assert!(a.toolsets["prometheus/metrics"].get("subtype").is_none());

    let es = builtin("elasticsearch/data", "logs", "es", "logs/es", 200);
    let a = assemble(
        &select(&[matched_sd("logs", "es", "elasticsearch", vec![es])]),
        &no_health(),
        None,
    );
    let instructions = a.toolsets["elasticsearch/data"]["llm_instructions"]
        .as_str()
        .unwrap();
    assert!(instructions.contains("logs"), "{instructions}");
}
