//! Kubernetes `Service` -> [`ServiceSnapshot`]: what the detectors see of a Service. The
//! one conversion, used by `discover` (Services read from manifests, see
//! [`crate::manifest`]) and by the controller's Service watch.

use dynamic_toolset_core::k8s_names::{self, FieldError};
use dynamic_toolset_core::{OwnerRef, ServicePort, ServiceSnapshot};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

fn field_error(field: impl Into<String>, message: impl Into<String>) -> FieldError {
    FieldError {
        field: field.into(),
        message: message.into(),
    }
}

/// Converts a Kubernetes Service into what detectors see (`default_namespace` for an
/// object without one, e.g. `helm template` output). The error names the field at fault:
/// a missing name, a port out of range, or what the apiserver would refuse
/// ([`k8s_names::validate_service`], with the label and annotation counts we take).
pub fn snapshot(svc: &Service, default_namespace: &str) -> Result<ServiceSnapshot, FieldError> {
    let name = svc
        .metadata
        .name
        .clone()
        .filter(|n| !n.is_empty())
        .ok_or_else(|| field_error("metadata.name", "missing"))?;
    let namespace = svc
        .metadata
        .namespace
        .clone()
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| default_namespace.to_string());
    let spec = svc.spec.as_ref();
    let mut ports = Vec::new();
    for (i, p) in spec
        .and_then(|s| s.ports.as_ref())
        .into_iter()
        .flatten()
        .enumerate()
    {
        let port = u16::try_from(p.port)
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| {
                field_error(
                    format!("spec.ports[{i}].port"),
                    format!("{} is not a port number (1-65535)", p.port),
                )
            })?;
        ports.push(ServicePort {
            name: p.name.clone().filter(|n| !n.is_empty()),
            port,
            target_port: p.target_port.as_ref().map(|t| match t {
                IntOrString::Int(n) => n.to_string(),
                IntOrString::String(s) => s.clone(),
            }),
            protocol: p.protocol.clone().unwrap_or_else(|| "TCP".to_string()),
            app_protocol: p.app_protocol.clone(),
        });
    }
    let snapshot = ServiceSnapshot {
        name,
        namespace,
        labels: svc.metadata.labels.clone().unwrap_or_default(),
        annotations: svc.metadata.annotations.clone().unwrap_or_default(),
        service_type: spec
            .and_then(|s| s.type_.clone())
            .unwrap_or_else(|| "ClusterIP".to_string()),
        cluster_ip: spec.and_then(|s| s.cluster_ip.clone()),
        ports,
        // For grouping the Services of one installation (selector subsets, owners).
        selector: spec.and_then(|s| s.selector.clone()).unwrap_or_default(),
        owners: (svc.metadata.owner_references.iter().flatten())
            .map(|o| OwnerRef {
                kind: o.kind.clone(),
                name: o.name.clone(),
            })
            .collect(),
    };
    k8s_names::validate_service(&snapshot)?;
    Ok(snapshot)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc(json: serde_json::Value) -> Service {
        serde_json::from_value(json).expect("a Service")
    }

    #[test]
    fn defaults_and_ports() {
        let s = snapshot(
            &svc(serde_json::json!({
                "metadata": {"name": "a", "labels": {"app": "x"}},
                "spec": {"ports": [{"name": "http", "port": 80, "targetPort": "web"}, {"port": 81, "targetPort": 8081}]}
            })),
            "dflt",
        )
        .expect("valid");
        assert_eq!((s.namespace.as_str(), s.name.as_str()), ("dflt", "a"));
        assert_eq!(s.service_type, "ClusterIP");
        assert_eq!(s.ports[0].target_port.as_deref(), Some("web"));
        assert_eq!(s.ports[1].target_port.as_deref(), Some("8081"));
        assert_eq!(s.ports[1].name, None);
        assert_eq!(s.ports[0].protocol, "TCP");
    }

    #[test]
    fn errors_name_the_field() {
        let e = snapshot(&svc(serde_json::json!({"metadata": {}})), "d").unwrap_err();
        assert_eq!(
            (e.field.as_str(), e.message.as_str()),
            ("metadata.name", "missing")
        );
        let e = snapshot(
            &svc(serde_json::json!({"metadata": {"name": "a"}, "spec": {"ports": [{"port": 80}, {"port": 70000}]}})),
            "d",
        )
        .unwrap_err();
        assert_eq!(e.field, "spec.ports[1].port");
        assert!(e.message.contains("70000"), "{}", e.message);
        let e = snapshot(
            &svc(serde_json::json!({"metadata": {"name": "Not_A_Name"}})),
            "d",
        )
        .unwrap_err();
        assert_eq!(e.field, "metadata.name");
    }
}
