//! Builders shared by the core integration tests.
#![allow(dead_code)]

use std::collections::BTreeMap;

use dynamic_toolset_core::{
    CustomToolset, Detection, DetectorFailure, FailureKind, Fragment, HealthProbe, Scheme,
    ServiceDetections, ServicePort, ServiceRef, ServiceSnapshot, Tool, Verdict,
};
use serde_json::{Map, Value, json};

pub fn svc(ns: &str, name: &str) -> ServiceRef {
    ServiceRef {
        namespace: ns.into(),
        name: name.into(),
    }
}

/// A ClusterIP Service `ns/name` (no labels or annotations) with one TCP port named
/// "http" per number of `ports`.
pub fn snapshot(ns: &str, name: &str, ports: &[u16]) -> ServiceSnapshot {
    ServiceSnapshot {
        name: name.into(),
        namespace: ns.into(),
        labels: BTreeMap::new(),
        annotations: BTreeMap::new(),
        service_type: "ClusterIP".into(),
        cluster_ip: Some("10.96.0.20".into()),
        ports: ports
            .iter()
            .map(|p| ServicePort {
                name: Some("http".into()),
                port: *p,
                target_port: None,
                protocol: "TCP".into(),
                app_protocol: None,
            })
            .collect(),
        ..Default::default()
    }
}

fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// A prometheus/metrics fragment for Service ns/name.
pub fn prom(ns: &str, name: &str, instance: &str, rank: u32) -> Fragment {
    let endpoint = format!("http://{name}.{ns}.svc.cluster.local:9090");
    Fragment {
        http: None,
        toolset: "prometheus/metrics".into(),
        backend: "prometheus".into(),
        instance: instance.into(),
        rank,
        endpoint: endpoint.clone(),
        health: Some(HealthProbe {
            port: 9090,
            scheme: Scheme::Http,
            path: "/-/ready".into(),
            accepted_statuses: vec![],
        }),
        config: obj(json!({ "prometheus_url": endpoint })),
        custom: None,
        identification: None,
    }
}

/// A built-in fragment of any toolset with `api_url`.
pub fn builtin(toolset: &str, ns: &str, name: &str, instance: &str, rank: u32) -> Fragment {
    let endpoint = format!("http://{name}.{ns}.svc.cluster.local:8080");
    Fragment {
        http: None,
        toolset: toolset.into(),
        backend: toolset.split('/').next().unwrap_or(toolset).into(),
        instance: instance.into(),
        rank,
        endpoint: endpoint.clone(),
        health: None,
        config: obj(json!({ "api_url": endpoint })),
        custom: None,
        identification: None,
    }
}

/// A custom jaeger/traces fragment.
pub fn jaeger(ns: &str, name: &str, rank: u32) -> Fragment {
    let endpoint = format!("http://{name}.{ns}.svc.cluster.local:16686");
    Fragment {
        http: None,
        toolset: "jaeger/traces".into(),
        backend: "jaeger".into(),
        instance: format!("{ns}/{name}"),
        rank,
        endpoint: endpoint.clone(),
        health: None,
        config: Map::new(),
        custom: Some(CustomToolset {
            description: "Jaeger traces".into(),
            prerequisites: vec!["curl --version".into()],
            tools: vec![Tool {
                name: "jaeger_find_traces".into(),
                description: "Find traces of a service".into(),
                command: format!("curl -s '{endpoint}/api/traces?service={{{{ service }}}}'"),
            }],
        }),
        identification: None,
    }
}

pub fn matched(detector: &str, fragments: Vec<Fragment>) -> Verdict {
    Verdict {
        detector: detector.into(),
        outcome: Ok(Detection::Matched(fragments)),
    }
}

pub fn unrelated(detector: &str) -> Verdict {
    Verdict {
        detector: detector.into(),
        outcome: Ok(Detection::Unrelated),
    }
}

pub fn declined(detector: &str, reason: &str) -> Verdict {
    Verdict {
        detector: detector.into(),
        outcome: Ok(Detection::Declined(reason.into())),
    }
}

pub fn failed(detector: &str, kind: FailureKind, message: &str) -> Verdict {
    Verdict {
        detector: detector.into(),
        outcome: Err(DetectorFailure {
            kind,
            message: message.into(),
        }),
    }
}

pub fn sd(ns: &str, name: &str, verdicts: Vec<Verdict>) -> ServiceDetections {
    ServiceDetections {
        service: svc(ns, name),
        verdicts,
        trusted: false,
        gate: Vec::new(),
        grouping: Default::default(),
    }
}

/// Service `ns/name` on which one detector matched `fragments`.
pub fn matched_sd(
    ns: &str,
    name: &str,
    detector: &str,
    fragments: Vec<Fragment>,
) -> ServiceDetections {
    sd(ns, name, vec![matched(detector, fragments)])
}

/// Service `ns/name` on which the prometheus detector matched one [`prom`] fragment.
pub fn prom_sd(ns: &str, name: &str, instance: &str, rank: u32) -> ServiceDetections {
    matched_sd(ns, name, "prometheus", vec![prom(ns, name, instance, rank)])
}

/// Service `ns/name` on which the jaeger detector matched one [`jaeger`] fragment.
pub fn jaeger_sd(ns: &str, name: &str, rank: u32) -> ServiceDetections {
    matched_sd(ns, name, "jaeger", vec![jaeger(ns, name, rank)])
}

/// Service `ns/name` on which the detector named after the toolset's backend matched one
/// [`builtin`] fragment.
pub fn builtin_sd(
    toolset: &str,
    ns: &str,
    name: &str,
    instance: &str,
    rank: u32,
) -> ServiceDetections {
    let detector = toolset.split('/').next().unwrap_or(toolset);
    matched_sd(
        ns,
        name,
        detector,
        vec![builtin(toolset, ns, name, instance, rank)],
    )
}

/// The `monitoring/grafana` Service, matched by the grafana detector as a
/// `grafana/dashboards` installation of rank 100 (no health probe).
pub fn grafana_sd() -> ServiceDetections {
    builtin_sd(
        "grafana/dashboards",
        "monitoring",
        "grafana",
        "monitoring/grafana",
        100,
    )
}
