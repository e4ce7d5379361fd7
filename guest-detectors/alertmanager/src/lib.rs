//! Alertmanager detector: the `alertmanager/alerts` toolset (HolmesGPT has no built-in
//! Alertmanager toolset; the host builds a `type: http` toolset on Alertmanager's v2 API
//! from the endpoint).
//!
//! Recognised:
//! - kube-prometheus-stack's Alertmanager Service (`app=<chart>-alertmanager` with
//!   `app.kubernetes.io/part-of=kube-prometheus-stack`, or the historical
//!   `kube-prometheus-stack-` / `prometheus-operator-` / `rancher-monitoring-` prefixes);
//! - prometheus-operator's governing Service `alertmanager-operated`
//!   (label `operated-alertmanager=true`, headless);
//! - the prometheus-community `alertmanager` chart (`app.kubernetes.io/name=alertmanager`,
//!   or `app`/`k8s-app` `alertmanager` as hand-written manifests and addons label it,
//!   as a subchart of `prometheus` too) and its `-headless` twin; any Service whose
//!   component label is `alertmanager` (the old `prometheus` chart's
//!   `app=prometheus,component=alertmanager`, Bitnami's `prometheus` chart);
//! - vm-operator's VMAlertmanager (`app.kubernetes.io/name=vmalertmanager`);
//! - a Service written for a prometheus-operator `Alertmanager` resource (no application
//!   name; it selects the operator's pod label `alertmanager=<name>` on port or targetPort
//!   `web`), instance `<namespace>/<name>`;
//! - the multi-tenant Alertmanager of Cortex / Grafana Mimir ([`PREFIXED`]: component
//!   `alertmanager` of `app.kubernetes.io/name` `cortex`, `mimir`, `grafana-mimir`), whose
//!   API is under `/alertmanager` on port `http-metrics`/`http` 8080.
//!
//! Instance keys: chart Services (kube-prometheus-stack included) `<namespace>/<release>`
//! (fallback: Service name without `-headless`). The governing `alertmanager-operated`
//! cannot name its installation (it only carries `operated-alertmanager=true`): it uses
//! `<namespace>/alertmanager-operated`, and the host folds it into the installation whose
//! pods it selects. On OpenShift the ports are TLS proxies (serving-certificate
//! annotation): the endpoint is https.
//!
//! Health: `GET /-/ready` → 200. Config: `{}` (the host builds the toolset from the endpoint).
//! Declined: Kubecost's bundled Alertmanager. Environment variables referenced: none.
//!
//! Identification (contract 1.1 `identify`): http and https on the web port unless
//! `appProtocol` settles it (TLS via `--web.config.file` keeps the port's name; OpenShift's
//! serving certificate puts https first), at the fragment's base path and under
//! `/alertmanager` ([`ROUTE_PREFIX`]), recognised by the
//! v2 status API ([`status`]). Cortex/Mimir's multi-tenant Alertmanager answers it only
//! with a tenant, so it keeps the metadata's guess.

use detector_sdk::identify;
use detector_sdk::prelude::*;

/// The Alertmanager detector.
pub struct Alertmanager;

use detector_sdk::catalog::{ALERTMANAGER_TOOLSET as TOOLSET, KPS_APP_PREFIXES};
const PORT_NAMES: &[&str] = &["http-web", "web", "http"];
const PORT_NUMBERS: &[u16] = &[9093, 80];

/// The route prefix an Alertmanager may run under without the Service showing it
/// (`--web.route-prefix`, prometheus-operator's `routePrefix`; kube-prometheus-stack's
/// documented example is `/alertmanager`).
const ROUTE_PREFIX: &str = "/alertmanager";

/// Systems whose Alertmanager component serves the API under a prefix:
/// (`app.kubernetes.io/name`, prefix).
const PREFIXED: &[(&str, &str)] = &[
    ("cortex", "/alertmanager"),
    ("mimir", "/alertmanager"),
    ("grafana-mimir", "/alertmanager"),
];

impl Detector for Alertmanager {
    fn emits() -> Emits {
        emits(&[TOOLSET], false)
    }

    fn metadata() -> DetectorInfo {
        metadata("alertmanager", env!("CARGO_PKG_VERSION"), &["alertmanager"])
    }

    fn identify(svc: &Service, f: &Fragment) -> Identification {
        let schemes = identify::schemes(identify::port_of(svc, f));
        let base = PREFIXED
            .iter()
            .map(|(_, prefix)| *prefix)
            .find(|prefix| f.endpoint.ends_with(prefix))
            .unwrap_or("");
        // A Cortex/Mimir Alertmanager keeps its prefix; any other may run under a route
        // prefix the Service does not show.
        let bases: &[&str] = if base.is_empty() {
            &["", ROUTE_PREFIX]
        } else {
            &[base]
        };
        identify::among(svc, f, &identify::places(schemes, bases), &status(), false)
    }

    fn detect(svc: &Service) -> Detection {
        if let Some((_, prefix)) = PREFIXED
            .iter()
            .find(|(n, _)| svc.has_label("app.kubernetes.io/name", n))
        {
            if svc.component() != Some("alertmanager") {
                return Detection::Unrelated;
            }
            let Some(port) = svc.pick_port(&["http-metrics", "http"], &[8080]) else {
                return declined("Alertmanager Service without an HTTP port (gRPC/gossip only)");
            };
            return matched(
                FragmentBuilder::new(svc, TOOLSET, "alertmanager")
                    .instance(svc.chart_instance())
                    .rank(rank::unless_headless(svc, rank::PRIMARY))
                    .port_endpoint(port, prefix)
                    .health("/ready", &[200])
                    .build(),
            );
        }
        if svc.has_label("operated-alertmanager", "true") {
            return fragment(
                svc,
                svc.instance_key("alertmanager-operated"),
                rank::HEADLESS,
            );
        }
        let app = svc.label("app");
        if let Some(a) = app {
            let kps = KPS_APP_PREFIXES
                .iter()
                .any(|p| a.strip_prefix(p) == Some("alertmanager"))
                || (svc.has_label("app.kubernetes.io/part-of", "kube-prometheus-stack")
                    && a.ends_with("-alertmanager"));
            if kps {
                return fragment(
                    svc,
                    svc.chart_instance(),
                    rank::unless_headless(svc, rank::PRIMARY),
                );
            }
        }
        // The component label settles it whatever the chart calls itself: the old
        // `prometheus` chart (`app=prometheus`), Bitnami's `prometheus` chart
        // (`app.kubernetes.io/name=prometheus`), and other stacks bundling Alertmanager.
        let chart = matches!(svc.app_name(), Some("alertmanager" | "vmalertmanager"))
            || svc.component() == Some("alertmanager");
        // A Service for a prometheus-operator `Alertmanager` resource: it selects the
        // operator's pod label `alertmanager: <name>` (seen through the selector) on the
        // `web` port or 9093 (Gardener names it `metrics`). Named after the resource (kube-prometheus' old `alertmanager-main`,
        // labelled only `alertmanager: main`, and hand-written Services alike).
        if matches!(svc.app_name(), None | Some("alertmanager"))
            && let Some(cr) = svc.label("alertmanager").filter(|n| !n.is_empty())
            && svc.ports.iter().any(|p| {
                p.name.as_deref() == Some("web")
                    || p.target_port.as_deref() == Some("web")
                    || p.port == 9093
            })
        {
            return fragment(
                svc,
                svc.instance_key(cr),
                rank::unless_headless(svc, rank::PRIMARY),
            );
        }
        if !chart {
            return Detection::Unrelated;
        }
        if svc.is_kubecost() {
            return declined("Kubecost's bundled Alertmanager (release kubecost)");
        }
        let instance = svc.chart_instance();
        fragment(svc, instance, rank::unless_headless(svc, rank::PRIMARY))
    }
}

fn fragment(svc: &Service, instance: String, rank: u32) -> Detection {
    let Some(port) = svc.pick_port(PORT_NAMES, PORT_NUMBERS) else {
        return declined("Alertmanager Service without a web port (http-web, web, http, 9093)");
    };
    let b = FragmentBuilder::new(svc, TOOLSET, "alertmanager")
        .instance(instance)
        .rank(rank)
        .port_endpoint(port, "")
        .health("/-/ready", &[200]);
    matched(b.build())
}

/// `GET /api/v2/status` answers `alertmanagerStatus`, whose `cluster` (with `status`),
/// `versionInfo` (with `version`), `config` and `uptime` are all required:
/// `api/v2/openapi.yaml` (basePath `/api/v2/`, path `/status`, definitions
/// `alertmanagerStatus`, `clusterStatus`, `versionInfo`) of
/// prometheus/alertmanager@68fb2d5759b3a92c0bb2a1a13d4ef7ff5b06256d.
pub fn status() -> Fingerprint {
    identify::fingerprint(
        "/api/v2/status",
        &["/versionInfo/version", "/cluster/status"],
        &[],
    )
}

detector_sdk::export_detector!(Alertmanager);

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use detector_sdk::service::build::{ServiceBuild, one, service};

    #[test]
    fn kube_prometheus_stack_named_after_release_operated_lower_ranked() {
        let svc = service("monitoring", "kps-kube-prometheus-stack-alertmanager")
            .with_label("app", "kube-prometheus-stack-alertmanager")
            .with_label("release", "kps")
            .with_port(Some("http-web"), 9093)
            .with_port(Some("reloader-web"), 8080);
        let f = one(Alertmanager::detect(&svc));
        assert_eq!(f.toolset, "alertmanager/alerts");
        assert_eq!(f.instance, "monitoring/kps");
        assert_eq!(
            f.endpoint,
            "http://kps-kube-prometheus-stack-alertmanager.monitoring.svc.cluster.local:9093"
        );
        assert_eq!(f.config, "{}");
        // No tools or commands from the detector: the host builds the toolset.
        assert!(f.custom.is_none());

        let op = service("monitoring", "alertmanager-operated")
            .with_label("operated-alertmanager", "true")
            .with_port(Some("http-web"), 9093)
            .with_port_full(Some("tcp-mesh"), 9094, Some("9094"), "TCP")
            .with_port_full(Some("udp-mesh"), 9094, Some("9094"), "UDP")
            .headless();
        let o = one(Alertmanager::detect(&op));
        // The host folds the governing Service into the installation (selector subset).
        assert_eq!(o.instance, "monitoring/alertmanager-operated");
        assert!(o.rank < f.rank);
    }

    #[test]
    fn community_chart_and_vm_operator() {
        let svc = service("prom", "prometheus-alertmanager")
            .with_label("app.kubernetes.io/name", "alertmanager")
            .with_label("app.kubernetes.io/instance", "prometheus")
            .with_port(Some("http"), 9093);
        let f = one(Alertmanager::detect(&svc));
        assert_eq!(f.instance, "prom/prometheus");
        let h = one(Alertmanager::detect(
            &service("prom", "prometheus-alertmanager-headless")
                .with_label("app.kubernetes.io/name", "alertmanager")
                .with_label("app.kubernetes.io/instance", "prometheus")
                .with_port(Some("http"), 9093)
                .headless(),
        ));
        assert_eq!(h.instance, f.instance);
        assert_eq!(h.rank, rank::HEADLESS);
        let vm = service("vm", "vmalertmanager-vmks")
            .with_label("app.kubernetes.io/name", "vmalertmanager")
            .with_label("app.kubernetes.io/instance", "vmks")
            .with_port(Some("http"), 9093);
        assert_eq!(one(Alertmanager::detect(&vm)).instance, "vm/vmks");
    }

    #[test]
    fn negatives() {
        for svc in [
            service("monitoring", "alertmanager").with_port(Some("web"), 9093),
            service("monitoring", "kps-kube-prometheus-stack-prometheus")
                .with_label("app", "kube-prometheus-stack-prometheus"),
            service("monitoring", "x").with_label("app.kubernetes.io/name", "prometheus"),
        ] {
            assert!(
                matches!(Alertmanager::detect(&svc), Detection::Unrelated),
                "{}",
                svc.name
            );
        }
        let kc = service("kubecost", "kubecost-alertmanager")
            .with_label("app.kubernetes.io/name", "alertmanager")
            .with_label("app.kubernetes.io/instance", "kubecost")
            .with_port(Some("http"), 9093);
        assert!(matches!(Alertmanager::detect(&kc), Detection::Declined(_)));
    }

    #[test]
    fn openshift_tls_proxy_is_https() {
        let svc = service("openshift-monitoring", "alertmanager-main")
            .with_label("app.kubernetes.io/name", "alertmanager")
            .with_label("app.kubernetes.io/instance", "main")
            .with_annotation(
                "service.beta.openshift.io/serving-cert-secret-name",
                "alertmanager-main-tls",
            )
            .with_port(Some("web"), 9094)
            .with_port(Some("tenancy"), 9092);
        let f = one(Alertmanager::detect(&svc));
        assert_eq!(
            f.endpoint,
            "https://alertmanager-main.openshift-monitoring.svc.cluster.local:9094"
        );
        assert_eq!(f.health.unwrap().scheme, Scheme::Https);
    }

    #[test]
    fn cortex_alertmanager_under_its_prefix() {
        let svc = service("cortex", "cortex-alertmanager")
            .with_label("app.kubernetes.io/name", "cortex")
            .with_label("app.kubernetes.io/instance", "cortex")
            .with_label("app.kubernetes.io/component", "alertmanager")
            .with_port(Some("http-metrics"), 8080);
        let f = one(Alertmanager::detect(&svc));
        assert_eq!(
            f.endpoint,
            "http://cortex-alertmanager.cortex.svc.cluster.local:8080/alertmanager"
        );
        let querier = service("cortex", "cortex-querier")
            .with_label("app.kubernetes.io/name", "cortex")
            .with_label("app.kubernetes.io/component", "querier")
            .with_port(Some("http-metrics"), 8080);
        assert!(matches!(
            Alertmanager::detect(&querier),
            Detection::Unrelated
        ));
    }

    #[test]
    fn service_written_for_an_alertmanager_resource() {
        let main = service("default", "alertmanager-main")
            .with_label("alertmanager", "main")
            .with_port_full(Some("web"), 9093, Some("web"), "TCP");
        let f = one(Alertmanager::detect(&main));
        assert_eq!(f.instance, "default/main");
        let bare = service("default", "x")
            .with_label("alertmanager", "main")
            .with_port(Some("metrics"), 8080);
        assert!(!matches!(
            Alertmanager::detect(&bare),
            Detection::Matched(_)
        ));
    }

    #[test]
    fn identify_https_first_on_openshift_then_http() {
        let svc = service("openshift-monitoring", "alertmanager-main")
            .with_label("app.kubernetes.io/name", "alertmanager")
            .with_label("app.kubernetes.io/instance", "main")
            .with_annotation(
                "service.beta.openshift.io/serving-cert-secret-name",
                "alertmanager-main-tls",
            )
            .with_port(Some("web"), 9094);
        let f = one(Alertmanager::detect(&svc));
        let id = Alertmanager::identify(&svc, &f);
        let eps: Vec<&str> = id.candidates.iter().map(|c| c.endpoint.as_str()).collect();
        assert_eq!(
            eps,
            vec![
                "https://alertmanager-main.openshift-monitoring.svc.cluster.local:9094",
                "http://alertmanager-main.openshift-monitoring.svc.cluster.local:9094",
                "http://alertmanager-main.openshift-monitoring.svc.cluster.local:9094/alertmanager",
                "https://alertmanager-main.openshift-monitoring.svc.cluster.local:9094/alertmanager",
            ]
        );
        let fp = &id.candidates[0].fingerprint;
        assert_eq!(fp.path, "/api/v2/status");
        assert_eq!(
            fp.json_pointers,
            vec!["/versionInfo/version", "/cluster/status"]
        );
        assert!(id.candidates[0].why.contains("serving-certificate"));
        assert_eq!(id.candidates[1].config, "{}");
        assert!(!id.required);
    }

    #[test]
    fn identify_cortex_alertmanager_keeps_its_prefix_and_root_health() {
        let svc = service("cortex", "cortex-alertmanager")
            .with_label("app.kubernetes.io/name", "cortex")
            .with_label("app.kubernetes.io/instance", "cortex")
            .with_label("app.kubernetes.io/component", "alertmanager")
            .with_port(Some("http-metrics"), 8080);
        let f = one(Alertmanager::detect(&svc));
        let id = Alertmanager::identify(&svc, &f);
        assert_eq!(id.candidates.len(), 2);
        for c in &id.candidates {
            assert!(c.endpoint.ends_with(":8080/alertmanager"), "{}", c.endpoint);
            assert_eq!(c.health.as_ref().map(|h| h.path.as_str()), Some("/ready"));
        }
    }
}
