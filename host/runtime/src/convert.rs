//! Conversions between the WIT types and `dynamic_toolset_core`, with the output checks a
//! host must make on anything a guest returns. Pure functions.

use std::collections::HashSet;

use dynamic_toolset_core as core;

use crate::Error;
use crate::bindings::wit;

/// Output limits of one call.
#[derive(Debug, Clone, Copy)]
pub(crate) struct OutputLimits {
    pub max_fragments: usize,
    pub max_output_bytes: usize,
}

/// The WIT view of a Service.
pub(crate) fn service_to_wit(svc: &core::ServiceSnapshot, cluster_domain: &str) -> wit::Service {
    wit::Service {
        name: svc.name.clone(),
        namespace: svc.namespace.clone(),
        // BTreeMaps iterate sorted by key, as the contract promises. The selector's
        // labels (those of the pods the Service serves) fill in keys the Service's own
        // labels lack, as the contract says.
        labels: labels_for_detectors(svc)
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        annotations: svc
            .annotations
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        service_type: if svc.service_type.is_empty() {
            "ClusterIP".to_string()
        } else {
            svc.service_type.clone()
        },
        cluster_ip: svc.cluster_ip.clone(),
        headless: svc.headless(),
        ports: svc
            .ports
            .iter()
            .map(|p| wit::ServicePort {
                name: p.name.clone(),
                port: p.port,
                target_port: p.target_port.clone(),
                protocol: if p.protocol.is_empty() {
                    "TCP".to_string()
                } else {
                    p.protocol.clone()
                },
                app_protocol: p.app_protocol.clone(),
            })
            .collect(),
        cluster_domain: cluster_domain.to_string(),
    }
}

/// The labels detectors see: the Service's own, then each selector label whose key the
/// Service's labels lack (hand-written manifests and addons often label the pods, not the
/// Service: `kubernetes.io/name: Prometheus` on the Service, `k8s-app: prometheus` in its
/// selector). Sorted by key.
pub(crate) fn labels_for_detectors(svc: &core::ServiceSnapshot) -> Vec<(&str, &str)> {
    let mut merged: std::collections::BTreeMap<&str, &str> = svc
        .selector
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    merged.extend(svc.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    merged.into_iter().collect()
}

/// Checks a guest's `detector-info`.
pub(crate) fn info_from_wit(info: wit::DetectorInfo) -> Result<core::DetectorInfo, Error> {
    if info.name.is_empty() {
        return Err(Error::EmptyName);
    }
    if info.name.len() > 64
        || !info
            .name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
    {
        return Err(Error::InvalidName);
    }
    if info.version.is_empty() || info.version.len() > 64 {
        return Err(Error::InvalidVersion { name: info.name });
    }
    Ok(core::DetectorInfo {
        name: info.name,
        version: info.version,
        backends: info.backends,
        emits: None,
        http_apis: Vec::new(),
    })
}

/// Checks and converts a guest's answer. The error names the field at fault.
pub(crate) fn detection_from_wit(
    detection: wit::Detection,
    limits: OutputLimits,
) -> Result<core::Detection, Error> {
    match detection {
        wit::Detection::Unrelated => Ok(core::Detection::Unrelated),
        wit::Detection::Declined(reason) => {
            if reason.len() > limits.max_output_bytes {
                return Err(Error::ReasonTooLong {
                    size: reason.len(),
                    limit: limits.max_output_bytes,
                });
            }
            Ok(core::Detection::Declined(reason))
        }
        wit::Detection::Matched(fragments) => {
            if fragments.is_empty() {
                return Err(Error::NoFragment);
            }
            if fragments.len() > limits.max_fragments {
                return Err(Error::TooManyFragments {
                    count: fragments.len(),
                    limit: limits.max_fragments,
                });
            }
            let size: usize = fragments.iter().map(fragment_bytes).sum();
            if size > limits.max_output_bytes {
                return Err(Error::OutputTooLarge {
                    size,
                    limit: limits.max_output_bytes,
                });
            }
            fragments
                .into_iter()
                .enumerate()
                .map(|(index, f)| fragment_from_wit(index, f))
                .collect::<Result<Vec<_>, _>>()
                .map(core::Detection::Matched)
        }
    }
}

/// [`detection_from_wit`], with each matched fragment's identification (contract 1.1
/// `identify`, one per fragment, in order; empty for detectors without it) attached.
/// Identifications count against the same output limit as the fragments.
pub(crate) fn detection_with_identifications(
    detection: wit::Detection,
    identifications: Vec<crate::bindings::identify::Identification>,
    limits: OutputLimits,
) -> Result<core::Detection, Error> {
    let fragment_size: usize = match &detection {
        wit::Detection::Matched(fragments) => fragments.iter().map(fragment_bytes).sum(),
        _ => 0,
    };
    let mut detection = detection_from_wit(detection, limits)?;
    if identifications.is_empty() {
        return Ok(detection);
    }
    let size = fragment_size
        + identifications
            .iter()
            .map(crate::since_v1_1::identification_bytes)
            .sum::<usize>();
    if size > limits.max_output_bytes {
        return Err(Error::OutputTooLarge {
            size,
            limit: limits.max_output_bytes,
        });
    }
    if let core::Detection::Matched(fragments) = &mut detection {
        for (index, (fragment, id)) in fragments.iter_mut().zip(identifications).enumerate() {
            fragment.identification = crate::since_v1_1::identification_from_wit(index, id)?;
        }
    }
    Ok(detection)
}

fn fragment_bytes(f: &wit::Fragment) -> usize {
    let health = f.health.as_ref().map_or(0, |h| h.path.len());
    let custom = f.custom.as_ref().map_or(0, |c| {
        c.description.len()
            + c.prerequisites.iter().map(String::len).sum::<usize>()
            + c.tools
                .iter()
                .map(|t| t.name.len() + t.description.len() + t.command.len())
                .sum::<usize>()
    });
    f.toolset.len()
        + f.backend.len()
        + f.instance.len()
        + f.endpoint.len()
        + f.config.len()
        + health
        + custom
}

/// What is wrong with a field of fragment `index`.
pub(crate) fn invalid(index: usize, field: impl Into<String>, problem: impl Into<String>) -> Error {
    Error::InvalidFragment {
        index,
        field: field.into(),
        problem: problem.into(),
    }
}

fn fragment_from_wit(index: usize, f: wit::Fragment) -> Result<core::Fragment, Error> {
    let problem = |field, problem| invalid(index, field, problem);
    for (field, value) in [
        ("toolset", &f.toolset),
        ("backend", &f.backend),
        ("instance", &f.instance),
    ] {
        if value.trim().is_empty() {
            return Err(problem(field, "is empty".into()));
        }
        if value.chars().any(char::is_control) {
            return Err(problem(field, "contains control characters".into()));
        }
    }
    check_http_url(&f.endpoint).map_err(|e| problem("endpoint", e.into()))?;
    let config = match serde_json::from_str::<serde_json::Value>(&f.config) {
        Ok(serde_json::Value::Object(map)) => map,
        Ok(other) => {
            return Err(problem(
                "config",
                format!("is JSON {} where an object is required", json_kind(&other)),
            ));
        }
        Err(e) => return Err(problem("config", format!("is not valid JSON: {e}"))),
    };
    let health = f.health.map(|h| health_from_wit(index, h)).transpose()?;
    let custom = f.custom.map(|c| custom_from_wit(index, c)).transpose()?;
    Ok(core::Fragment {
        toolset: f.toolset,
        backend: f.backend,
        instance: f.instance,
        rank: f.rank,
        endpoint: f.endpoint,
        health,
        config,
        custom,
        identification: None,
        http: None,
    })
}

pub(crate) fn health_from_wit(
    index: usize,
    h: wit::HealthProbe,
) -> Result<core::HealthProbe, Error> {
    if h.port == 0 {
        return Err(invalid(index, "health.port", "is 0"));
    }
    if !h.path.starts_with('/') || h.path.chars().any(|c| c.is_control() || c == ' ') {
        return Err(invalid(
            index,
            "health.path",
            "must start with '/' and contain no spaces",
        ));
    }
    if let Some(bad) = h
        .accepted_statuses
        .iter()
        .find(|s| !(100..600).contains(*s))
    {
        return Err(invalid(
            index,
            "health.accepted-statuses",
            format!("has {bad}, not an HTTP status"),
        ));
    }
    Ok(core::HealthProbe {
        port: h.port,
        scheme: match h.scheme {
            wit::Scheme::Http => core::Scheme::Http,
            wit::Scheme::Https => core::Scheme::Https,
        },
        path: h.path,
        accepted_statuses: h.accepted_statuses,
    })
}

fn custom_from_wit(index: usize, c: wit::CustomToolset) -> Result<core::CustomToolset, Error> {
    if c.tools.is_empty() {
        return Err(invalid(index, "custom.tools", "is empty"));
    }
    let mut names = HashSet::new();
    for (i, t) in c.tools.iter().enumerate() {
        if t.name.is_empty() || t.command.trim().is_empty() {
            return Err(invalid(
                index,
                format!("custom.tools[{i}]"),
                "has an empty name or command",
            ));
        }
        if !names.insert(t.name.as_str()) {
            return Err(invalid(
                index,
                format!("custom.tools[{i}].name"),
                format!("`{}` is repeated", t.name),
            ));
        }
    }
    Ok(core::CustomToolset {
        description: c.description,
        prerequisites: c.prerequisites,
        tools: c
            .tools
            .into_iter()
            .map(|t| core::Tool {
                name: t.name,
                description: t.description,
                command: t.command,
            })
            .collect(),
    })
}

pub(crate) fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "boolean",
        serde_json::Value::Number(_) => "number",
        serde_json::Value::String(_) => "string",
        serde_json::Value::Array(_) => "array",
        serde_json::Value::Object(_) => "object",
    }
}

/// Checks that `url` is an absolute http(s) URL with a host and no credentials. The value
/// is not echoed in the error (it might carry a secret): the error is what is wrong with it.
pub(crate) fn check_http_url(url: &str) -> Result<(), &'static str> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or("is not an http:// or https:// URL")?;
    if url.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err("contains whitespace or control characters");
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains('@') {
        return Err("carries credentials (user@host); use {{ env.VAR }} in config");
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6.split_once(']').ok_or("has an unterminated IPv6 host")?;
        (host, after.strip_prefix(':'))
    } else {
        match authority.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err("has no host");
    }
    if let Some(port) = port {
        match port.parse::<u16>() {
            Ok(p) if p > 0 => {}
            _ => return Err("has an invalid port"),
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const LIMITS: OutputLimits = OutputLimits {
        max_fragments: 2,
        max_output_bytes: 1000,
    };

    fn fragment() -> wit::Fragment {
        wit::Fragment {
            toolset: "prometheus/metrics".into(),
            backend: "prometheus".into(),
            instance: "monitoring/kps".into(),
            rank: 10,
            endpoint: "http://prom.monitoring.svc.cluster.local:9090".into(),
            health: Some(wit::HealthProbe {
                port: 9090,
                scheme: wit::Scheme::Http,
                path: "/-/ready".into(),
                accepted_statuses: vec![200],
            }),
            config: r#"{"prometheus_url":"http://prom.monitoring.svc.cluster.local:9090"}"#.into(),
            custom: None,
        }
    }

    fn check(f: wit::Fragment) -> Result<core::Detection, String> {
        detection_from_wit(wit::Detection::Matched(vec![f]), LIMITS).map_err(|e| e.to_string())
    }

    #[test]
    fn converts_a_valid_fragment() {
        let core::Detection::Matched(fs) = check(fragment()).unwrap() else {
            panic!("not matched")
        };
        assert_eq!(fs.len(), 1);
        assert_eq!(
            fs[0].config["prometheus_url"],
            "http://prom.monitoring.svc.cluster.local:9090"
        );
        assert_eq!(fs[0].health.as_ref().unwrap().scheme, core::Scheme::Http);
    }

    #[test]
    fn rejects_bad_fields_naming_them() {
        type Case = (fn(&mut wit::Fragment), &'static str);
        let cases: Vec<Case> = vec![
            (
                |f| f.config = "{nope".into(),
                "fragment[0].config is not valid JSON",
            ),
            (
                |f| f.config = "[1]".into(),
                "fragment[0].config is JSON array",
            ),
            (|f| f.toolset = " ".into(), "fragment[0].toolset is empty"),
            (
                |f| f.instance = String::new(),
                "fragment[0].instance is empty",
            ),
            (
                |f| f.endpoint = "ftp://x:1".into(),
                "fragment[0].endpoint is not an http",
            ),
            (
                |f| f.endpoint = "http://:9090".into(),
                "fragment[0].endpoint has no host",
            ),
            (
                |f| f.endpoint = "http://u:secret@h:1".into(),
                "fragment[0].endpoint carries credentials",
            ),
            (
                |f| f.endpoint = "http://h:99999".into(),
                "fragment[0].endpoint has an invalid port",
            ),
            (
                |f| f.health.as_mut().unwrap().path = "ready".into(),
                "fragment[0].health.path",
            ),
        ];
        for (mutate, expected) in cases {
            let mut f = fragment();
            mutate(&mut f);
            let err = check(f).unwrap_err();
            assert!(err.starts_with(expected), "{err:?} vs {expected:?}");
            assert!(!err.contains("secret"), "{err}");
        }
    }

    #[test]
    fn caps_fragment_count_and_bytes() {
        let three = wit::Detection::Matched(vec![fragment(), fragment(), fragment()]);
        assert_eq!(
            detection_from_wit(three, LIMITS).unwrap_err().to_string(),
            "3 fragments (limit 2)"
        );
        let mut big = fragment();
        big.config = format!(r#"{{"k":"{}"}}"#, "x".repeat(2000));
        assert!(
            check(big)
                .unwrap_err()
                .contains("bytes of fragments (limit 1000)")
        );
        assert!(detection_from_wit(wit::Detection::Matched(vec![]), LIMITS).is_err());
    }

    #[test]
    fn urls() {
        for ok in [
            "http://a",
            "https://a.b.svc.cluster.local:9200/x?y#z",
            "http://[::1]:80/",
        ] {
            assert!(check_http_url(ok).is_ok(), "{ok}");
        }
        for bad in [
            "a:80",
            "http://",
            "http://a b",
            "https://a:0",
            "http://[::1",
        ] {
            assert!(check_http_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn service_to_wit_sorts_and_defaults() {
        let mut svc = core::ServiceSnapshot {
            name: "s".into(),
            namespace: "ns".into(),
            labels: Default::default(),
            annotations: Default::default(),
            service_type: String::new(),
            cluster_ip: Some("None".into()),
            ports: vec![core::ServicePort {
                name: None,
                port: 80,
                target_port: None,
                protocol: String::new(),
                app_protocol: None,
            }],
            ..Default::default()
        };
        svc.labels.insert("b".into(), "2".into());
        svc.labels.insert("a".into(), "1".into());
        let w = service_to_wit(&svc, "example.org");
        assert_eq!(w.labels[0].0, "a");
        assert!(w.headless);
        assert_eq!(w.service_type, "ClusterIP");
        assert_eq!(w.ports[0].protocol, "TCP");
        assert_eq!(w.cluster_domain, "example.org");
    }

    #[test]
    fn service_without_labels_is_described_by_its_selector() {
        let mut svc = core::ServiceSnapshot {
            name: "prometheus-service".into(),
            namespace: "monitoring".into(),
            ..Default::default()
        };
        svc.selector
            .insert("app".into(), "prometheus-server".into());
        let w = service_to_wit(&svc, "cluster.local");
        assert_eq!(w.labels, vec![("app".into(), "prometheus-server".into())]);
        // Own labels win on a shared key; the selector fills in the others.
        svc.labels.insert("team".into(), "a".into());
        svc.labels.insert("app".into(), "prometheus".into());
        svc.selector.insert("component".into(), "server".into());
        let w = service_to_wit(&svc, "cluster.local");
        assert_eq!(
            w.labels,
            vec![
                ("app".into(), "prometheus".into()),
                ("component".into(), "server".into()),
                ("team".into(), "a".into())
            ]
        );
    }

    #[test]
    fn metadata_names() {
        let info = |name: &str| wit::DetectorInfo {
            name: name.into(),
            version: "1.0.0".into(),
            backends: vec![],
        };
        assert!(info_from_wit(info("prometheus")).is_ok());
        assert!(info_from_wit(info("")).is_err());
        assert!(info_from_wit(info("Bad Name")).is_err());
    }
}
