//! Builders shared by the core integration tests.
#![allow(dead_code)]

use dynamic_toolset_core::{
    CustomToolset, Detection, Fragment, HealthProbe, Scheme, ServiceDetections, ServiceRef, Tool,
    Verdict,
};
use serde_json::{Map, Value, json};

pub fn svc(ns: &str, name: &str) -> ServiceRef {
    ServiceRef {
        namespace: ns.into(),
        name: name.into(),
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
    }
}

/// A built-in fragment of any toolset with `api_url`.
pub fn builtin(toolset: &str, ns: &str, name: &str, instance: &str, rank: u32) -> Fragment {
    let endpoint = format!("http://{name}.{ns}.svc.cluster.local:8080");
    Fragment {
        toolset: toolset.into(),
        backend: toolset.split('/').next().unwrap_or(toolset).into(),
        instance: instance.into(),
        rank,
        endpoint: endpoint.clone(),
        health: None,
        config: obj(json!({ "api_url": endpoint })),
        custom: None,
    }
}

/// A custom jaeger/traces fragment.
pub fn jaeger(ns: &str, name: &str, rank: u32) -> Fragment {
    let endpoint = format!("http://{name}.{ns}.svc.cluster.local:16686");
    Fragment {
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

pub fn failed(detector: &str, error: &str) -> Verdict {
    Verdict {
        detector: detector.into(),
        outcome: Err(error.into()),
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
