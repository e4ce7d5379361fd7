//! Grafana detector: `grafana/dashboards` for Grafana servers.
//!
//! Recognised: the `grafana` Helm chart (also as a subchart of kube-prometheus-stack,
//! loki-stack, victoria-metrics-k8s-stack): `app.kubernetes.io/name=grafana` (old charts
//! and hand-written manifests: `app` or `k8s-app` `grafana`; Kubernetes' addons:
//! `kubernetes.io/name` `Grafana` or `monitoring-grafana`; Gardener's Grafana fork Plutono,
//! component `plutono`, which keeps Grafana's HTTP API; a stack's bundled Grafana: component
//! `grafana`, Linkerd's `linkerd.io/control-plane-component=grafana`, or an application
//! named `<stack>-grafana`), port
//! `service`/`http`/`http-web`/`grafana` or 80/3000.
//! grafana-operator's Service of a `Grafana` resource (`<name>-service`): labels carry only
//! `app.kubernetes.io/managed-by=grafana-operator`, the port is named `grafana` (3000);
//! instance `<namespace>/<resource name>`. Its headless `-alerting` Service (unified
//! alerting gossip) is declined.
//! Rank [`rank::PRIMARY`]; headless twin [`rank::HEADLESS`]. Instance key
//! `<namespace>/<release>`, fallback the Service name without `-headless`.
//!
//! Config: `api_url` (the Service URL). The host adds `api_key: "{{ env.GRAFANA_API_KEY }}"`
//! for namespaces the admin trusts with credentials.
//!
//! Environment variables the host references:
//! - `GRAFANA_API_KEY`: a Grafana service-account token with Viewer rights. Grafana's
//!   HTTP API refuses anonymous requests by default, so the toolset needs it.
//!
//! Declined: grafana-agent, grafana-agent-operator, Alloy (collectors), grafana-operator,
//! the image renderer, and Kubecost's bundled Grafana (HolmesGPT excludes it).
//! Health: `GET /api/health` → 200 (no authentication needed).
//!
//! Identification (contract 1.1 `identify`): candidates on the web port at the root and
//! under `/grafana` ([`SUB_PATH`]: `root_url .../grafana` with `serve_from_sub_path`, as the
//! OpenTelemetry demo and many ingress setups run it, which the Service does not show),
//! http and https unless `appProtocol` settles it; recognised by `GET /api/health`
//! ([`health`]), which Grafana answers without authentication.

use detector_sdk::catalog::{self, GRAFANA_TOOLSET};
use detector_sdk::identify;
use detector_sdk::prelude::*;

/// The sub-path Grafana is commonly served from behind a shared front proxy.
const SUB_PATH: &str = "/grafana";

/// The Grafana detector.
pub struct Grafana;

const PORT_NAMES: &[&str] = &["service", "http", "http-web", "grafana", "web"];
const PORT_NUMBERS: &[u16] = &[80, 3000];

impl Detector for Grafana {
    fn emits() -> Emits {
        emits(&[GRAFANA_TOOLSET], false)
    }

    fn metadata() -> DetectorInfo {
        metadata("grafana", env!("CARGO_PKG_VERSION"), &["grafana"])
    }

    fn identify(svc: &Service, f: &Fragment) -> Identification {
        let schemes = identify::schemes(identify::port_of(svc, f));
        identify::among(
            svc,
            f,
            &identify::places(schemes, &["", SUB_PATH]),
            &health(),
            false,
        )
    }

    fn detect(svc: &Service) -> Detection {
        if svc.has_label("app.kubernetes.io/managed-by", "grafana-operator") {
            return operator_service(svc);
        }
        // Kubernetes' addons name the application for people (`kubernetes.io/name:
        // Grafana`, heapster's `monitoring-grafana`); else `app.kubernetes.io/name`, `app`,
        // `k8s-app`.
        let addon = svc
            .label("kubernetes.io/name")
            .is_some_and(|n| n.eq_ignore_ascii_case("grafana") || n == "monitoring-grafana");
        // Plutono: Gardener's fork of Grafana 7.5, which keeps Grafana's HTTP API
        // (component `plutono`).
        let plutono = svc.component() == Some("plutono") || svc.app_name() == Some("plutono");
        // A stack's bundled Grafana: its component `grafana` (Traefik Mesh's `app=maesh`,
        // Linkerd's `linkerd.io/control-plane-component`) or an application named
        // `<stack>-grafana` (Open Service Mesh's `osm-grafana`).
        let stack = svc.component() == Some("grafana")
            || svc.has_label("linkerd.io/control-plane-component", "grafana")
            || [svc.app_name(), svc.label("app")]
                .into_iter()
                .flatten()
                .any(|n| n.ends_with("-grafana"));
        let Some(app) = (if addon || plutono || stack {
            Some("grafana")
        } else {
            svc.app_name()
        }) else {
            return Detection::Unrelated;
        };
        match app {
            "grafana" => {}
            "grafana-agent" | "grafana-agent-operator" | "alloy" | "grafana-alloy" => {
                return declined(format!("{app} (a telemetry collector)"));
            }
            "grafana-operator" => return declined("grafana-operator (an operator)"),
            "grafana-image-renderer" => return declined("Grafana image renderer (a helper)"),
            _ => return Detection::Unrelated,
        }
        if svc.is_kubecost() {
            return declined(
                "Kubecost's bundled Grafana (release kubecost); HolmesGPT excludes it",
            );
        }
        // A web port by name or number, else one to Grafana's own 3000 (Knative's old
        // monitoring bundle exposes it as an unnamed 30802).
        let Some(port) = svc.pick_port(PORT_NAMES, PORT_NUMBERS).or_else(|| {
            svc.ports
                .iter()
                .find(|p| p.target_port.as_deref() == Some("3000"))
        }) else {
            return declined("Grafana Service without a web port (service, http, 80, 3000)");
        };
        matched(
            catalog::with_grafana(
                FragmentBuilder::new(svc, GRAFANA_TOOLSET, "grafana")
                    .instance(svc.chart_instance())
                    .rank(rank::unless_headless(svc, rank::PRIMARY))
                    .port_endpoint(port, "")
                    .health("/api/health", &[200]),
            )
            .build(),
        )
    }
}

/// Grafana's `GET /api/health`: `{"database": "ok", "version": ..., "commit": ...}`, the
/// version and commit left out when `[auth.anonymous] hide_version` is set
/// (`healthResponse` and `apiHealthHandler`, `pkg/api/http_server.go` of
/// grafana/grafana@ab59f3cb1a71e3f7b31fe71b0d19b5754733c640). Answered without
/// authentication (503 with `"database": "failing"` when the database is down: such a
/// Grafana does not prove itself, and the metadata's guess stands).
pub fn health() -> Fingerprint {
    identify::fingerprint("/api/health", &["/database"], &[])
}

/// A Service grafana-operator made for a `Grafana` resource.
fn operator_service(svc: &Service) -> Detection {
    if svc.pick_port(&["grafana-alert"], &[]).is_some() {
        return declined("grafana-operator's alerting gossip Service (not an API)");
    }
    let Some(port) = svc.pick_port(&["grafana"], &[]) else {
        return Detection::Unrelated;
    };
    matched(
        catalog::with_grafana(
            FragmentBuilder::new(svc, GRAFANA_TOOLSET, "grafana")
                .instance(svc.instance_key(svc.name_base(&["-service"])))
                .rank(rank::unless_headless(svc, rank::PRIMARY))
                .port_endpoint(port, "")
                .health("/api/health", &[200]),
        )
        .build(),
    )
}

detector_sdk::export_detector!(Grafana);

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use detector_sdk::service::build::{ServiceBuild, one, service};

    #[test]
    fn a_stacks_bundled_grafana() {
        // tests/fixtures/real/open-service-mesh.yaml, linkerd-old-addons.yaml, traefik-mesh.yaml.
        for svc in [
            service("osm-system", "osm-grafana")
                .with_label("app.kubernetes.io/name", "openservicemesh.io")
                .with_label("app", "osm-grafana")
                .with_port(Some("grafana-dashboard"), 3000),
            service("linkerd", "linkerd-grafana")
                .with_label("linkerd.io/control-plane-component", "grafana")
                .with_port(Some("http"), 3000),
            service("traefik-mesh", "grafana")
                .with_label("app", "maesh")
                .with_label("component", "grafana")
                .with_port(None, 3000),
        ] {
            let Detection::Matched(f) = Grafana::detect(&svc) else {
                panic!("{}", svc.name)
            };
            assert!(f[0].endpoint.ends_with(":3000"), "{}", svc.name);
        }
        let agent = service("monitoring", "x")
            .with_label("app.kubernetes.io/name", "grafana-agent")
            .with_port(Some("http"), 80);
        assert!(!matches!(Grafana::detect(&agent), Detection::Matched(_)));
    }

    #[test]
    fn chart_service() {
        let s = service("monitoring", "kps-grafana")
            .with_label("app.kubernetes.io/name", "grafana")
            .with_label("app.kubernetes.io/instance", "kps")
            .with_port_full(Some("http-web"), 80, Some("3000"), "TCP");
        let Detection::Matched(f) = Grafana::detect(&s) else {
            panic!("no match")
        };
        assert_eq!(f[0].toolset, "grafana/dashboards");
        assert_eq!(f[0].instance, "monitoring/kps");
        let config: detector_sdk::serde_json::Value =
            detector_sdk::serde_json::from_str(&f[0].config).expect("json");
        assert_eq!(
            config,
            detector_sdk::serde_json::json!({
                "api_url": "http://kps-grafana.monitoring.svc.cluster.local:80",
            })
        );
        let h = f[0].health.as_ref().expect("health");
        assert_eq!((h.port, h.path.as_str()), (80, "/api/health"));
    }

    #[test]
    fn negatives() {
        let kc = service("kubecost", "kubecost-grafana")
            .with_label("app", "grafana")
            .with_label("release", "kubecost")
            .with_port(Some("service"), 80);
        assert!(matches!(Grafana::detect(&kc), Detection::Declined(_)));
        for n in ["grafana-agent", "alloy", "grafana-operator"] {
            let s = service("monitoring", n).with_label("app.kubernetes.io/name", n);
            assert!(matches!(Grafana::detect(&s), Detection::Declined(_)), "{n}");
        }
        let by_name = service("monitoring", "grafana").with_port(Some("http"), 3000);
        assert!(matches!(Grafana::detect(&by_name), Detection::Unrelated));
    }

    #[test]
    fn grafana_operator_service_and_alerting() {
        let op = |name: &str| {
            service("grafana", name)
                .with_label("app.kubernetes.io/managed-by", "grafana-operator")
                .with_label("dashboards", "grafana")
        };
        let f = one(Grafana::detect(
            &op("grafana-service").with_port(Some("grafana"), 3000),
        ));
        assert_eq!(
            f.endpoint,
            "http://grafana-service.grafana.svc.cluster.local:3000"
        );
        assert_eq!(f.instance, "grafana/grafana");
        let alerting = op("grafana-alerting")
            .with_port(Some("grafana-alert"), 9094)
            .headless();
        assert!(matches!(Grafana::detect(&alerting), Detection::Declined(_)));
    }
}
