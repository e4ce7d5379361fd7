//! VictoriaMetrics detector: `prometheus/metrics` (backend `victoriametrics`) for
//! VictoriaMetrics single-node and the cluster's vmselect, which serve the Prometheus
//! query API (vmselect under `/select/<tenant>/prometheus`, tenant 0).
//!
//! Recognised:
//! - `victoria-metrics-single` chart: `app.kubernetes.io/name=victoria-metrics-single`,
//!   component `server` (label `app` or `app.kubernetes.io/component`); port `http` 8428;
//! - `victoria-metrics-cluster` chart: `app.kubernetes.io/name=victoria-metrics-cluster`,
//!   component `vmselect`; port `http` 8481; endpoint path `/select/0/prometheus`;
//! - vm-operator (also what victoria-metrics-k8s-stack deploys): VMSingle
//!   (`app.kubernetes.io/name=vmsingle`, port `http` 8429) and VMCluster's vmselect
//!   (`app.kubernetes.io/name=vmselect`);
//! - victoria-metrics-distributed's global read VMAuth (`app.kubernetes.io/name=vmauth`,
//!   instance `vmauth-global-read-*`, port `http` 8427), which routes
//!   `/select/0/prometheus` to every zone's vmselect.
//!
//! Rank: [`rank::PRIMARY`], headless twins [`rank::HEADLESS`]. Instance key:
//! `<namespace>/<app.kubernetes.io/instance>` (the Helm release, or the VMSingle/VMCluster
//! name for vm-operator), fallback the Service name without `-headless`.
//!
//! Declined: vminsert (write path), vmstorage (storage), vmagent (agent), vmalert (rule
//! evaluator), other vmauth (proxies with user-defined routing), vm-operator, and the
//! victoria-metrics-k8s-stack scrape-target Services.
//! Health: `GET /health` → 200. Environment variables referenced: none.
//!
//! Identification (contract 1.1 `identify`): http and https (`-tls`) on the port unless
//! `appProtocol` settles it, at the fragment's own base path, recognised by the
//! Prometheus-compatible build information ([`buildinfo`]).

use detector_sdk::catalog::PROMETHEUS;
use detector_sdk::identify;
use detector_sdk::prelude::*;

/// The VictoriaMetrics detector.
pub struct VictoriaMetrics;

impl Detector for VictoriaMetrics {
    fn emits() -> Emits {
        emits(&[PROMETHEUS.toolset], false)
    }

    fn metadata() -> DetectorInfo {
        metadata(
            "victoriametrics",
            env!("CARGO_PKG_VERSION"),
            &["victoriametrics"],
        )
    }

    fn identify(svc: &Service, f: &Fragment) -> Identification {
        let schemes = identify::schemes(identify::port_of(svc, f));
        let base = if f.endpoint.ends_with(VMSELECT_PATH) {
            VMSELECT_PATH
        } else {
            ""
        };
        identify::among(
            svc,
            f,
            &identify::places(schemes, &[base]),
            &buildinfo(),
            false,
        )
    }

    fn detect(svc: &Service) -> Detection {
        let Some(name) = svc.label("app.kubernetes.io/name") else {
            return match svc.label("app") {
                // Old charts labelled only `app`.
                Some("vmselect") if svc.release().is_some() => vmselect(svc),
                // Hand-written manifests of a single-node server.
                Some("victoria-metrics" | "victoriametrics" | "victoria-metrics-single") => {
                    single(svc, 8428)
                }
                _ => Detection::Unrelated,
            };
        };
        let component = svc.first_label(&["app", "app.kubernetes.io/component"]);
        match name {
            "victoria-metrics-single" => match component {
                Some("server") | None => single(svc, 8428),
                Some(c) => declined(format!("victoria-metrics-single component {c}")),
            },
            "victoria-metrics-cluster" => {
                match component.or(svc.label("app.kubernetes.io/component")) {
                    Some("vmselect") => vmselect(svc),
                    Some(c) => decline_component(c),
                    None => Detection::Unrelated,
                }
            }
            "vmsingle" => single(svc, 8429),
            "vmselect" => vmselect(svc),
            // victoria-metrics-distributed's global read VMAuth fronts every zone's vmselect
            // under the cluster's tenant path (the chart's own Grafana datasource).
            "vmauth"
                if svc
                    .release()
                    .is_some_and(|r| r.starts_with("vmauth-global-read-")) =>
            {
                build(svc, &[8427], VMSELECT_PATH)
            }
            "vminsert" | "vmstorage" | "vmagent" | "vmalert" | "vmauth" => decline_component(name),
            "victoria-metrics-agent" => decline_component("vmagent"),
            "victoria-metrics-alert" => decline_component("vmalert"),
            "victoria-metrics-auth" => decline_component("vmauth"),
            "victoria-metrics-operator" => declined("vm-operator (an operator)"),
            "victoria-metrics-k8s-stack" => declined(
                "scrape-target Service created by victoria-metrics-k8s-stack (kube-system component)",
            ),
            _ => Detection::Unrelated,
        }
    }
}

fn decline_component(c: &str) -> Detection {
    let why = match c {
        "vminsert" => "vminsert (the write path of a VictoriaMetrics cluster)",
        "vmstorage" => "vmstorage (the storage component of a VictoriaMetrics cluster)",
        "vmagent" => "vmagent (a scraping agent)",
        "vmalert" => "vmalert (a rule evaluator, not the query path)",
        "vmauth" => "vmauth (a proxy whose routes are user-defined)",
        other => {
            return declined(format!(
                "VictoriaMetrics component {other} (not the query path)"
            ));
        }
    };
    declined(why)
}

fn single(svc: &Service, default_port: u16) -> Detection {
    build(svc, &[default_port, 8428, 8429], "")
}

/// vmselect's Prometheus API for tenant 0.
const VMSELECT_PATH: &str = "/select/0/prometheus";

fn vmselect(svc: &Service) -> Detection {
    build(svc, &[8481], VMSELECT_PATH)
}

/// VictoriaMetrics answers Prometheus' `/api/v1/status/buildinfo` with a fixed
/// `{"status":"success","data":{"version":"2.24.0"}}` (for Grafana):
/// single-node `app/vmselect/main.go` lines 601-607 of
/// VictoriaMetrics/VictoriaMetrics@b7ef6cc3ed35c607e053a8b7755fc3b896a10eaa; the
/// cluster's vmselect under `/select/<accountID>/` as `prometheus/api/v1/status/buildinfo`,
/// `app/vmselect/main.go` line 817 of the `cluster` branch,
/// VictoriaMetrics/VictoriaMetrics@64fce8baf72eb618ebaa65e48ea36be03b808cb0.
pub fn buildinfo() -> Fingerprint {
    identify::fingerprint("/api/v1/status/buildinfo", &["/data/version"], &[])
}

fn build(svc: &Service, numbers: &[u16], path: &str) -> Detection {
    let Some(port) = svc.pick_port(&["http"], numbers) else {
        return declined("VictoriaMetrics Service without an http port");
    };
    matched(
        FragmentBuilder::new(svc, PROMETHEUS.toolset, "victoriametrics")
            .instance(svc.chart_instance())
            .rank(rank::unless_headless(svc, rank::PRIMARY))
            .port_endpoint(port, path)
            .health("/health", &[200])
            .config_url(PROMETHEUS.key)
            .build(),
    )
}

detector_sdk::export_detector!(VictoriaMetrics);

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use detector_sdk::service::build::{ServiceBuild, one, service};

    #[test]
    fn single_chart() {
        let s = service("vm", "vms-victoria-metrics-single-server")
            .with_label("app", "server")
            .with_label("app.kubernetes.io/name", "victoria-metrics-single")
            .with_label("app.kubernetes.io/instance", "vms")
            .with_port(Some("http"), 8428);
        let f = one(VictoriaMetrics::detect(&s));
        assert_eq!(f.backend, "victoriametrics");
        assert_eq!(f.instance, "vm/vms");
        assert_eq!(
            f.config,
            r#"{"prometheus_url":"http://vms-victoria-metrics-single-server.vm.svc.cluster.local:8428"}"#
        );
        assert_eq!(f.health.expect("health").path, "/health");
    }

    #[test]
    fn cluster_vmselect_path_and_declines() {
        let c = |n: &str, app: &str, port: u16| {
            service("vm", n)
                .with_label("app", app)
                .with_label("app.kubernetes.io/name", "victoria-metrics-cluster")
                .with_label("app.kubernetes.io/instance", "vmc")
                .with_port(Some("http"), port)
        };
        let f = one(VictoriaMetrics::detect(&c(
            "vmc-victoria-metrics-cluster-vmselect",
            "vmselect",
            8481,
        )));
        assert_eq!(
            f.endpoint,
            "http://vmc-victoria-metrics-cluster-vmselect.vm.svc.cluster.local:8481/select/0/prometheus"
        );
        assert_eq!(f.health.expect("health").port, 8481);
        for (n, a, p) in [("i", "vminsert", 8480), ("s", "vmstorage", 8482)] {
            assert!(matches!(
                VictoriaMetrics::detect(&c(n, a, p)),
                Detection::Declined(_)
            ));
        }
    }

    #[test]
    fn operator_resources() {
        let s = service("monitoring", "vmsingle-vmks")
            .with_label("app.kubernetes.io/name", "vmsingle")
            .with_label("app.kubernetes.io/instance", "vmks")
            .with_label("managed-by", "vm-operator")
            .with_port(Some("http"), 8429);
        let f = one(VictoriaMetrics::detect(&s));
        assert!(
            f.endpoint
                .ends_with("vmsingle-vmks.monitoring.svc.cluster.local:8429")
        );
        for n in [
            "vmagent",
            "vmalert",
            "vminsert",
            "victoria-metrics-operator",
        ] {
            let s = service("monitoring", n).with_label("app.kubernetes.io/name", n);
            assert!(
                matches!(VictoriaMetrics::detect(&s), Detection::Declined(_)),
                "{n}"
            );
        }
        let named_only = service("monitoring", "vmselect").with_port(Some("http"), 8481);
        assert!(matches!(
            VictoriaMetrics::detect(&named_only),
            Detection::Unrelated
        ));
    }

    #[test]
    fn identify_keeps_the_vmselect_path_and_tries_both_schemes() {
        let s = service("vm", "vmselect-vmc")
            .with_label("app.kubernetes.io/name", "vmselect")
            .with_label("app.kubernetes.io/instance", "vmc")
            .with_port(Some("http"), 8481);
        let f = one(VictoriaMetrics::detect(&s));
        let id = VictoriaMetrics::identify(&s, &f);
        let eps: Vec<&str> = id.candidates.iter().map(|c| c.endpoint.as_str()).collect();
        assert_eq!(
            eps,
            vec![
                "http://vmselect-vmc.vm.svc.cluster.local:8481/select/0/prometheus",
                "https://vmselect-vmc.vm.svc.cluster.local:8481/select/0/prometheus",
            ]
        );
        // /health is vmselect's own, not under the tenant path.
        assert!(
            id.candidates
                .iter()
                .all(|c| c.health.as_ref().map(|h| h.path.as_str()) == Some("/health"))
        );
        assert_eq!(
            id.candidates[0].fingerprint.path,
            "/api/v1/status/buildinfo"
        );
        let single = service("vm", "vms")
            .with_label("app.kubernetes.io/name", "victoria-metrics-single")
            .with_label("app.kubernetes.io/instance", "vms")
            .with_port(Some("http"), 8428);
        let f = one(VictoriaMetrics::detect(&single));
        let id = VictoriaMetrics::identify(&single, &f);
        assert_eq!(
            id.candidates[1].endpoint,
            "https://vms.vm.svc.cluster.local:8428"
        );
        assert!(!id.required);
    }
}
