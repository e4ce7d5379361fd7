//! Prometheus detector: `prometheus/metrics` for Prometheus servers.
//!
//! Recognised (labels first, names never on their own):
//! - kube-prometheus-stack (and its ancestors prometheus-operator / rancher-monitoring):
//!   the chart's Prometheus Service, `app=<chart>-prometheus` with
//!   `app.kubernetes.io/part-of=kube-prometheus-stack` (or the historical `app` values
//!   HolmesGPT itself looks for);
//! - prometheus-operator's governing Service `prometheus-operated`
//!   (label `operated-prometheus=true`, headless);
//! - the community `prometheus` chart's server (`app.kubernetes.io/name=prometheus` +
//!   `app.kubernetes.io/component=server`, or the old `app=prometheus` + `component=server`),
//!   and its `-headless` twin;
//! - any other Service labelled `app.kubernetes.io/name=prometheus` that exposes a web
//!   port (`web`, `http-web`, `http` or 9090), at a lower rank;
//! - a Service for a prometheus-operator `Prometheus` resource (application name none or
//!   `prometheus`; it selects the operator's pod label `prometheus=<name>` on port or
//!   targetPort `web`, as kube-prometheus' old releases and prometheus-operator's own guides
//!   write it), instance `<namespace>/<name>`;
//! - promxy (`app.kubernetes.io/name=promxy`), an aggregating proxy serving the Prometheus
//!   API.
//!
//! Declined first: PrometheusAgent pods (`app.kubernetes.io/name=prometheus-agent`, agent
//! mode has no query API).
//!
//! Instance keys: a chart-managed server (kube-prometheus-stack included) uses
//! `<namespace>/<release>` (`app.kubernetes.io/instance`, else `release`), falling back
//! to the Service name without `-headless`. prometheus-operator's governing Service
//! cannot name its installation (`prometheus-operated` carries only
//! `operated-prometheus=true`): it uses `<namespace>/prometheus-operated`, and the host
//! folds it into the installation whose pods it selects (selector subset, see the host's
//! selection).
//!
//! OpenShift cluster monitoring (`app.kubernetes.io/part-of=openshift-monitoring`, and
//! the governing Services in the platform's `openshift-monitoring` /
//! `openshift-user-workload-monitoring` namespaces) is declined: its Prometheus servers
//! are queried through `thanos-querier` (the Thanos detector), the documented
//! cluster-wide endpoint; the user-workload Prometheus serves only `/metrics` and
//! `/federate`.
//!
//! Grafana Mimir and Cortex serve the Prometheus API under `/prometheus` (backend
//! `prometheus`: they speak its API): by `app.kubernetes.io/name` ([`MIMIR_NAMES`]:
//! grafana `mimir-distributed`, Bitnami `grafana-mimir`, the `cortex` chart) and the
//! component ([`MIMIR_COMPONENTS`]): the gateway (nginx) [`rank::GATEWAY`] >
//! query-frontend [`rank::FRONTEND`] > querier [`rank::SECONDARY`], instance
//! `<namespace>/<release>`; the write and storage path (distributor, ingester,
//! store-gateway, compactor, ...) is declined. Mimir's jsonnet Services carry only
//! `name=<component>`: the query-frontend is recognised by `name=query-frontend` with its
//! `query-frontend-http-metrics` port on 8080 (Loki's and Tempo's jsonnet use 3100/3200),
//! instance `<namespace>/mimir`.
//!
//! Thin labels: a Service whose only sign is the component `prometheus`
//! (`app.kubernetes.io/component`, `component` or Linkerd's
//! `linkerd.io/control-plane-component`, whatever the application) or an application named
//! `<stack>-prometheus` (Open Service Mesh), and a web port (`http-web`, `web`, `http`,
//! `http-prometheus` or 9090; a stack application's only port), or whose labels say nothing
//! this detector knows but which has a port named `web` on 9090 (Prometheus' own name and
//! port: GKE Managed Prometheus' query `frontend`), is matched at
//! [`identify::THIN_RANK`] (below any sibling) with a *required* identification: when
//! probes run, it is published only if it answers as Prometheus (Bitnami's
//! `name=kube-prometheus, component=prometheus` Service included: its operator's
//! `prometheus-operated` joins it).
//!
//! Identification (contract 1.1 `identify`): every fragment names candidates on its port,
//! http and https unless `appProtocol` settles the scheme (TLS can be on behind a port
//! named `http-web` or `web`), and for a Prometheus server also under `/prometheus` (a
//! `--web.route-prefix` / prometheus-operator `routePrefix` the Service does not show);
//! Mimir and Cortex only under their `/prometheus` prefix. Fingerprint: `GET
//! /api/v1/status/buildinfo` answering JSON with `/data/version` ([`buildinfo`]).
//!
//! Declined: exporters (node-exporter, blackbox, kube-state-metrics, pushgateway,
//! `*-exporter`), prometheus-operator and its admission webhook, prometheus-adapter,
//! the kubelet Service the operator maintains in kube-system, the kube-prometheus-stack
//! scrape-target Services (coredns, kube-proxy, etcd, ...), the Thanos sidecar
//! discovery Service, and Kubecost's bundled Prometheus (HolmesGPT excludes it too).
//!
//! Environment variables referenced: none.

use detector_sdk::catalog::{KPS_APP_PREFIXES, PROMETHEUS};
use detector_sdk::identify;
use detector_sdk::prelude::*;

/// The Prometheus detector.
pub struct Prometheus;

/// Port names in order of preference, then port numbers.
const PORT_NAMES: &[&str] = &["http-web", "web", "http", "http-prometheus"];
const PORT_NUMBERS: &[u16] = &[9090, 80];

/// Application names (`app.kubernetes.io/name`, `app`, `k8s-app`) of Prometheus-family
/// components that are deliberately not toolsets, with the reason.
const DECLINED_APPS: &[(&str, &str)] = &[
    (
        "prometheus-node-exporter",
        "node exporter (a scrape target)",
    ),
    ("node-exporter", "node exporter (a scrape target)"),
    ("kube-state-metrics", "kube-state-metrics (a scrape target)"),
    ("prometheus-pushgateway", "Pushgateway (a write path)"),
    ("pushgateway", "Pushgateway (a write path)"),
    (
        "prometheus-blackbox-exporter",
        "blackbox exporter (a prober)",
    ),
    (
        "prometheus-adapter",
        "prometheus-adapter (a metrics API adapter)",
    ),
    ("prometheus-operator", "prometheus-operator (an operator)"),
    (
        "kube-prometheus-stack-prometheus-operator",
        "prometheus-operator (an operator)",
    ),
    (
        "prometheus-operator-admission-webhook",
        "prometheus-operator admission webhook",
    ),
];

/// Why OpenShift cluster monitoring's Prometheus Services are declined.
const OPENSHIFT: &str = "OpenShift cluster monitoring Prometheus: queried through thanos-querier \
                         (the cluster-wide endpoint); user-workload Prometheus serves only /metrics and /federate";

/// The namespaces of OpenShift's cluster monitoring (reserved `openshift-` namespaces).
const OPENSHIFT_NAMESPACES: &[&str] =
    &["openshift-monitoring", "openshift-user-workload-monitoring"];

/// `app.kubernetes.io/name` of Grafana Mimir / Cortex chart Services.
const MIMIR_NAMES: &[&str] = &["mimir", "grafana-mimir", "cortex"];

/// Mimir / Cortex components: (component, rank, health path) for the query path; `None`
/// for components that are not (write path, storage, caches, rules, Alertmanager, which
/// is the Alertmanager detector's business).
const MIMIR_COMPONENTS: &[(&str, Option<(u32, &str)>)] = &[
    ("gateway", Some((rank::GATEWAY, "/"))),
    ("nginx", Some((rank::GATEWAY, "/"))),
    ("query-frontend", Some((rank::FRONTEND, "/ready"))),
    ("querier", Some((rank::SECONDARY, "/ready"))),
    ("distributor", None),
    ("ingester", None),
    ("store-gateway", None),
    ("compactor", None),
    ("ruler", None),
    ("query-scheduler", None),
    ("overrides-exporter", None),
    ("table-manager", None),
    ("purger", None),
];

/// The Prometheus API prefix of Mimir and Cortex (`-http.prometheus-http-prefix`).
const MIMIR_PREFIX: &str = "/prometheus";
const MIMIR_PORT_NAMES: &[&str] = &["http-metrics", "http", "query-frontend-http-metrics"];
const MIMIR_PORT_NUMBERS: &[u16] = &[8080, 80];

impl Detector for Prometheus {
    fn emits() -> Emits {
        emits(&[PROMETHEUS.toolset], false)
    }

    fn metadata() -> DetectorInfo {
        metadata("prometheus", env!("CARGO_PKG_VERSION"), &["prometheus"])
    }

    fn identify(svc: &Service, f: &Fragment) -> Identification {
        let schemes = identify::schemes(identify::port_of(svc, f));
        let bases: &[&str] = if mimir(svc).is_some() {
            &[MIMIR_PREFIX]
        } else {
            &["", ROUTE_PREFIX]
        };
        identify::among(
            svc,
            f,
            &identify::places(schemes, bases),
            &buildinfo(),
            is_thin(svc),
        )
    }

    fn detect(svc: &Service) -> Detection {
        match labelled(svc) {
            Detection::Unrelated if thin(svc).is_some() => {
                fragment(svc, svc.chart_instance(), identify::THIN_RANK)
            }
            d => d,
        }
    }
}

/// Detection on the labels and names this detector knows (everything but the thin
/// `component=prometheus` match).
fn labelled(svc: &Service) -> Detection {
    if let Some(d) = mimir(svc) {
        return d;
    }
    // prometheus-operator's PrometheusAgent pods (`app.kubernetes.io/name=prometheus-agent`,
    // also through a selector): agent mode scrapes and remote-writes; its query API answers
    // "unavailable with Prometheus Agent".
    if svc.has_label("app.kubernetes.io/name", "prometheus-agent") {
        return declined("Prometheus in agent mode (no query API)");
    }
    if svc.has_label("app.kubernetes.io/part-of", "openshift-monitoring")
        && svc.app_name() == Some("prometheus")
    {
        return declined(OPENSHIFT);
    }
    // prometheus-operator's governing Service.
    if svc.has_label("operated-prometheus", "true") {
        if OPENSHIFT_NAMESPACES.contains(&svc.namespace.as_str()) {
            return declined(OPENSHIFT);
        }
        return fragment(svc, operator_instance(svc), rank::HEADLESS);
    }
    if svc.has_label("app.kubernetes.io/managed-by", "prometheus-operator") {
        if svc.app_name() == Some("kubelet") {
            return declined("kubelet Service maintained by prometheus-operator (a scrape target)");
        }
        return Detection::Unrelated;
    }

    let app = svc.label("app");
    let component = svc.component();

    // kube-prometheus-stack and its ancestors.
    let kps_app = app.and_then(|a| {
        KPS_APP_PREFIXES
            .iter()
            .find_map(|p| a.strip_prefix(p).map(|rest| (a, rest)))
    });
    let part_of_kps = svc.has_label("app.kubernetes.io/part-of", "kube-prometheus-stack");
    if let Some((app, role)) = kps_app.or_else(|| {
        // A renamed chart (nameOverride) still says part-of=kube-prometheus-stack.
        app.filter(|_| part_of_kps)
            .and_then(|a| a.rsplit_once('-').map(|(_, r)| (a, r)))
    }) {
        return match role {
            "prometheus" => {
                if svc.is_kubecost() {
                    return kubecost();
                }
                fragment(
                    svc,
                    svc.chart_instance(),
                    rank::unless_headless(svc, rank::PRIMARY),
                )
            }
            // The other detectors' business.
            "alertmanager" | "grafana" => Detection::Unrelated,
            "operator" => declined(format!(
                "prometheus-operator of kube-prometheus-stack (app={app})"
            )),
            "thanos-discovery" => {
                declined("Thanos sidecar discovery Service of kube-prometheus-stack (gRPC only)")
            }
            _ => declined(format!(
                "scrape-target Service created by kube-prometheus-stack (app={app})"
            )),
        };
    }

    if let Some(app_name) = svc.app_name()
        && let Some((_, why)) = DECLINED_APPS.iter().find(|(n, _)| *n == app_name)
    {
        return declined(format!("{why}; app name {app_name}"));
    }
    if component == Some("prometheus-operator") {
        return declined("prometheus-operator (an operator)");
    }

    // A Service for a prometheus-operator `Prometheus` resource: it selects the label the
    // operator puts on that resource's pods (`prometheus: <name>`, seen through the
    // selector) and its `web` port. Named after the resource (kube-prometheus' old
    // `prometheus-k8s`, labelled only `prometheus: k8s`, and hand-written Services alike).
    if matches!(svc.app_name(), None | Some("prometheus"))
        && let Some(cr) = svc.label("prometheus").filter(|n| !n.is_empty())
        && operator_web_port(svc)
    {
        return fragment(
            svc,
            svc.instance_key(cr),
            rank::unless_headless(svc, rank::PRIMARY),
        );
    }
    // promxy: an aggregating proxy serving the Prometheus HTTP API.
    if svc.app_name() == Some("promxy") {
        return fragment(
            svc,
            svc.chart_instance(),
            rank::unless_headless(svc, rank::GENERIC),
        );
    }

    // The community chart: new labels, then the old ones.
    // A hand-written server Service (`app=prometheus-server`, as widely copied tutorials
    // label it) is the server itself.
    if svc.app_name() == Some("prometheus-server") && component.is_none() {
        return match svc
            .pick_port(PORT_NAMES, &[9090])
            .or_else(|| target_9090(svc))
        {
            Some(_) => fragment(
                svc,
                svc.chart_instance(),
                rank::unless_headless(svc, rank::GENERIC),
            ),
            None => Detection::Unrelated,
        };
    }
    // The community chart (`app.kubernetes.io/name`, the old `app`); Kubernetes' own
    // addon selects `k8s-app=prometheus`. The first of these keys names the application:
    // a Thanos sidecar Service (`app.kubernetes.io/name=thanos-sidecar`) selecting
    // `app=prometheus` pods is not Prometheus' API.
    let community = svc.app_name() == Some("prometheus");
    if community {
        if svc.is_kubecost() {
            return kubecost();
        }
        return match component {
            Some("server") => fragment(
                svc,
                svc.chart_instance(),
                rank::unless_headless(svc, rank::PRIMARY),
            ),
            Some("alertmanager") => Detection::Unrelated,
            Some(c @ ("node-exporter" | "pushgateway" | "kube-state-metrics")) => {
                declined(format!("{c} of the prometheus chart (not queryable)"))
            }
            Some(c) if c.ends_with("-exporter") => {
                declined(format!("{c} of the prometheus chart (an exporter)"))
            }
            // app.kubernetes.io/name=prometheus with no/other component: weaker signal
            // (a web port, or any port to Prometheus' 9090, as Knative's unnamed 8080).
            _ => match svc
                .pick_port(PORT_NAMES, &[9090])
                .or_else(|| target_9090(svc))
            {
                Some(_) => fragment(
                    svc,
                    svc.chart_instance(),
                    rank::unless_headless(svc, rank::GENERIC),
                ),
                None => Detection::Unrelated,
            },
        };
    }

    if let Some(n) = svc.app_name()
        && n.ends_with("-exporter")
        && n.contains("prometheus")
    {
        return declined(format!("exporter {n} (a scrape target)"));
    }
    Detection::Unrelated
}

/// A port to the `web` container port prometheus-operator gives Prometheus and
/// Alertmanager pods (by name or targetPort).
fn operator_web_port(svc: &Service) -> bool {
    svc.ports
        .iter()
        .any(|p| p.name.as_deref() == Some("web") || p.target_port.as_deref() == Some("web"))
}

/// The port whose `targetPort` is Prometheus' 9090 (a Service exposing it as 80 or 8080).
fn target_9090(svc: &Service) -> Option<&ServicePort> {
    svc.ports
        .iter()
        .find(|p| p.target_port.as_deref() == Some("9090"))
}

/// Whether [`Prometheus::detect`] matched `svc` on the thin `component=prometheus` alone.
fn is_thin(svc: &Service) -> bool {
    thin(svc).is_some() && matches!(labelled(svc), Detection::Unrelated)
}

/// Application names of other backends, whose Services a `component=prometheus` label does
/// not make Prometheus.
const OTHER_BACKENDS: &[&str] = &[
    "loki",
    "tempo",
    "grafana",
    "jaeger",
    "thanos",
    "alertmanager",
    "elasticsearch",
    "opensearch",
    "mimir",
    "cortex",
];

/// The route prefix a Prometheus server may run under without the Service showing it
/// (`--web.route-prefix`, prometheus-operator's `routePrefix`).
const ROUTE_PREFIX: &str = "/prometheus";

/// Prometheus' build information, which Thanos, VictoriaMetrics and Mimir serve too
/// (relative to the candidate's base path).
///
/// - Prometheus: `r.Get("/status/buildinfo", ...)` on the `/api/v1` router and
///   `PrometheusVersion{Version string \`json:"version"\`...}` as the `data` of the
///   `{"status","data"}` envelope: `web/api/v1/api.go` (lines 173-180, 200-207, 479) of
///   prometheus/prometheus@d15adb9ad7e5d9fbde3a9a8f30200593a5a14d86; example answer in
///   `docs/querying/api.md` (lines 1516-1537) of the same commit.
/// - Mimir: `RegisterQueryAPI` registers `<prometheus-http-prefix>/api/v1/status/buildinfo`
///   with `auth=false` (no tenant needed), `pkg/api/api.go` of
///   grafana/mimir@7b5f5289734a675ff347650899ac3d2e8a8ac693; answer
///   `BuildInfoResponse{Status "status", BuildInfo "data"{version, ...}}`,
///   `pkg/util/version/info_handler.go` of grafana/mimir@e4ad3ea2d9d1ccbe2dcde39292c77021cbf70841.
/// - Cortex serves it only with `-api.build-info-enabled` (default false) and behind the
///   tenant header (`pkg/api/api.go` lines 99 and 482-486 of
///   cortexproject/cortex@a8c6358a13073af1dfa81394420273e5fe9ce88c): a default Cortex does
///   not prove itself and keeps the metadata's guess.
pub fn buildinfo() -> Fingerprint {
    identify::fingerprint("/api/v1/status/buildinfo", &["/data/version"], &[])
}

/// A Service labelled only with the component `prometheus`, or one whose labels say
/// nothing this detector knows but whose port carries Prometheus' own name and number
/// (`web` on 9090, e.g. Google Cloud Managed Service for Prometheus' query `frontend`,
/// which serves the Prometheus HTTP API and its buildinfo): that port, or `None` (see
/// the module documentation).
fn thin(svc: &Service) -> Option<&ServicePort> {
    // The component `prometheus` of a stack (Traefik Mesh's `app=maesh`, Linkerd's
    // `linkerd.io/control-plane-component`), or an application named `<stack>-prometheus`
    // (Open Service Mesh's `osm-prometheus`): a stack's bundled Prometheus.
    let other_backend = svc.app_name().is_some_and(|n| OTHER_BACKENDS.contains(&n));
    let component = !other_backend
        && (svc.component() == Some("prometheus")
            || svc.has_label("linkerd.io/control-plane-component", "prometheus"));
    let stack_app = [svc.app_name(), svc.label("app")]
        .into_iter()
        .flatten()
        .any(|n| n.ends_with("-prometheus") && n != "kube-prometheus");
    if component || stack_app {
        if let Some(p) = svc.pick_port(PORT_NAMES, &[9090]) {
            return Some(p);
        }
        if stack_app {
            return svc.single_tcp_port();
        }
    }
    svc.ports.iter().find(|p| {
        p.name.as_deref() == Some("web")
            && (p.port == 9090 || p.target_port.as_deref() == Some("9090"))
    })
}

/// Grafana Mimir / Cortex, or `None` when the Service is not one of theirs.
fn mimir(svc: &Service) -> Option<Detection> {
    let name = svc.label("app.kubernetes.io/name");
    let (component, instance) = if name.is_some_and(|n| MIMIR_NAMES.contains(&n)) {
        let component = svc.component().unwrap_or("");
        (component, svc.chart_instance())
    } else if svc.has_label("name", "query-frontend")
        && svc
            .ports
            .iter()
            .any(|p| p.name.as_deref() == Some("query-frontend-http-metrics") && p.port == 8080)
    {
        ("query-frontend", svc.instance_key("mimir"))
    } else {
        return None;
    };
    let system = name.unwrap_or("mimir");
    let Some((_, role)) = MIMIR_COMPONENTS.iter().find(|(c, _)| *c == component) else {
        return Some(declined(format!(
            "{system} {component} (not the query path)"
        )));
    };
    let Some((rank, health)) = role else {
        return Some(declined(format!(
            "{system} {component} (not the query path)"
        )));
    };
    let Some(port) = svc.pick_port(MIMIR_PORT_NAMES, MIMIR_PORT_NUMBERS) else {
        return Some(declined(format!(
            "{system} {component} without an HTTP port (gRPC only)"
        )));
    };
    Some(matched(
        FragmentBuilder::new(svc, PROMETHEUS.toolset, "prometheus")
            .instance(instance)
            .rank(rank::unless_headless(svc, *rank))
            .port_endpoint(port, MIMIR_PREFIX)
            .health(health, &[200])
            .config_url(PROMETHEUS.key)
            .build(),
    ))
}

fn kubecost() -> Detection {
    declined("Kubecost's bundled Prometheus (release kubecost); HolmesGPT excludes it as well")
}

fn operator_instance(svc: &Service) -> String {
    svc.instance_key("prometheus-operated")
}

fn fragment(svc: &Service, instance: String, rank: u32) -> Detection {
    let Some(port) = svc
        .pick_port(PORT_NAMES, PORT_NUMBERS)
        .or_else(|| svc.single_tcp_port())
    else {
        return declined(
            "Prometheus Service without a recognisable web port (http-web, web, http, 9090)",
        );
    };
    matched(
        FragmentBuilder::new(svc, PROMETHEUS.toolset, "prometheus")
            .instance(instance)
            .rank(rank)
            .port_endpoint(port, "")
            .health("/-/ready", &[200])
            .config_url(PROMETHEUS.key)
            .build(),
    )
}

detector_sdk::export_detector!(Prometheus);

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use detector_sdk::service::build::{ServiceBuild, one, service};

    fn kps(name: &str, app: &str) -> Service {
        service("monitoring", name)
            .with_label("app", app)
            .with_label("release", "kps")
            .with_label("app.kubernetes.io/instance", "kps")
            .with_label("app.kubernetes.io/part-of", "kube-prometheus-stack")
    }

    #[test]
    fn kube_prometheus_stack_server() {
        let svc = kps(
            "kps-kube-prometheus-stack-prometheus",
            "kube-prometheus-stack-prometheus",
        )
        .with_port(Some("reloader-web"), 8080)
        .with_port(Some("http-web"), 9090);
        let f = one(Prometheus::detect(&svc));
        assert_eq!(f.toolset, "prometheus/metrics");
        assert_eq!(f.instance, "monitoring/kps");
        assert_eq!(f.rank, rank::PRIMARY);
        assert_eq!(
            f.endpoint,
            "http://kps-kube-prometheus-stack-prometheus.monitoring.svc.cluster.local:9090"
        );
        assert_eq!(
            f.config,
            r#"{"prometheus_url":"http://kps-kube-prometheus-stack-prometheus.monitoring.svc.cluster.local:9090"}"#
        );
        let h = f.health.expect("health");
        assert_eq!((h.port, h.path.as_str()), (9090, "/-/ready"));
    }

    #[test]
    fn operated_is_a_lower_ranked_sibling() {
        let svc = service("monitoring", "prometheus-operated")
            .with_label("operated-prometheus", "true")
            .with_port(Some("http-web"), 9090)
            .with_port(Some("grpc"), 10901)
            .headless();
        let f = one(Prometheus::detect(&svc));
        assert_eq!(f.instance, "monitoring/prometheus-operated");
        assert_eq!(f.rank, rank::HEADLESS);
        assert!(f.endpoint.ends_with(":9090"));
    }

    #[test]
    fn community_chart_server_and_headless() {
        let base = |n: &str| {
            service("prom", n)
                .with_label("app.kubernetes.io/name", "prometheus")
                .with_label("app.kubernetes.io/instance", "prometheus")
                .with_label("app.kubernetes.io/component", "server")
        };
        let f = one(Prometheus::detect(
            &base("prometheus-server").with_port(Some("http"), 80),
        ));
        assert_eq!(f.instance, "prom/prometheus");
        assert_eq!(
            f.endpoint,
            "http://prometheus-server.prom.svc.cluster.local:80"
        );
        let h = one(Prometheus::detect(
            &base("prometheus-server-headless")
                .with_port(Some("http"), 9090)
                .headless(),
        ));
        assert_eq!(h.instance, f.instance);
        assert!(h.rank < f.rank);
    }

    #[test]
    fn old_community_labels() {
        let svc = service("default", "prom-prometheus-server")
            .with_label("app", "prometheus")
            .with_label("component", "server")
            .with_label("release", "prom")
            .with_port(Some("http"), 80);
        assert_eq!(one(Prometheus::detect(&svc)).instance, "default/prom");
    }

    #[test]
    fn declines_exporters_operators_and_kubecost() {
        let cases = [
            service("monitoring", "kps-prometheus-node-exporter")
                .with_label("app.kubernetes.io/name", "prometheus-node-exporter")
                .with_port(Some("http-metrics"), 9100),
            service("monitoring", "kps-kube-state-metrics")
                .with_label("app.kubernetes.io/name", "kube-state-metrics")
                .with_port(Some("http"), 8080),
            service("monitoring", "pg")
                .with_label("app.kubernetes.io/name", "prometheus-pushgateway"),
            service("monitoring", "bb")
                .with_label("app.kubernetes.io/name", "prometheus-blackbox-exporter"),
            service("monitoring", "pa").with_label("app.kubernetes.io/name", "prometheus-adapter"),
            kps(
                "kps-kube-prometheus-stack-operator",
                "kube-prometheus-stack-operator",
            )
            .with_port(Some("https"), 443),
            kps(
                "kps-kube-prometheus-stack-coredns",
                "kube-prometheus-stack-coredns",
            )
            .with_port(Some("http-metrics"), 9153),
            service("kube-system", "kps-kube-prometheus-stack-kubelet")
                .with_label("app.kubernetes.io/managed-by", "prometheus-operator")
                .with_label("app.kubernetes.io/name", "kubelet")
                .with_label("k8s-app", "kubelet")
                .with_port(Some("https-metrics"), 10250),
            service("kubecost", "kubecost-prometheus-server")
                .with_label("app", "prometheus")
                .with_label("component", "server")
                .with_label("release", "kubecost")
                .with_port(Some("http"), 80),
            service("monitoring", "redis-exporter")
                .with_label("app.kubernetes.io/name", "prometheus-redis-exporter"),
        ];
        for svc in cases {
            assert!(
                matches!(Prometheus::detect(&svc), Detection::Declined(_)),
                "{} should be declined",
                svc.name
            );
        }
    }

    #[test]
    fn unrelated_by_name_alone_and_siblings() {
        let cases = [
            service("monitoring", "prometheus").with_port(Some("http"), 9090),
            service("default", "my-prometheus-proxy").with_port(Some("http"), 9090),
            kps(
                "kps-kube-prometheus-stack-alertmanager",
                "kube-prometheus-stack-alertmanager",
            ),
            service("monitoring", "grafana").with_label("app.kubernetes.io/name", "grafana"),
        ];
        for svc in cases {
            assert!(
                matches!(Prometheus::detect(&svc), Detection::Unrelated),
                "{}",
                svc.name
            );
        }
    }

    #[test]
    fn web_port_9090_alone_is_a_thin_match_needing_proof() {
        // GoogleCloudPlatform/prometheus-engine examples/frontend.yaml (see
        // tests/fixtures/real/gke-managed-prometheus.yaml): selector app=frontend, web 9090.
        let frontend = service("default", "frontend")
            .with_label("app", "frontend")
            .with_port(Some("web"), 9090);
        let f = one(Prometheus::detect(&frontend));
        assert_eq!(f.rank, identify::THIN_RANK);
        assert!(Prometheus::identify(&frontend, &f).required);
        // Another name or number is not Prometheus' own.
        for svc in [
            service("default", "frontend").with_port(Some("web"), 8080),
            service("default", "frontend").with_port(Some("http"), 9090),
        ] {
            assert!(matches!(Prometheus::detect(&svc), Detection::Unrelated));
        }
    }

    #[test]
    fn agent_mode_is_declined_and_promxy_serves_the_api() {
        // tests/fixtures/real/prometheus-agent-mode.yaml: the governing Service of a
        // PrometheusAgent (selector app.kubernetes.io/name=prometheus-agent, seen as a label).
        let agent = service("default", "prometheus-agent-operated")
            .with_label("operated-prometheus", "true")
            .with_label("app.kubernetes.io/name", "prometheus-agent")
            .with_port(Some("web"), 9090)
            .headless();
        assert!(matches!(Prometheus::detect(&agent), Detection::Declined(_)));
        let promxy = service("monitoring", "promxy")
            .with_label("app.kubernetes.io/name", "promxy")
            .with_label("app.kubernetes.io/instance", "promxy")
            .with_port(Some("http"), 8082);
        let f = one(Prometheus::detect(&promxy));
        assert_eq!(
            f.endpoint,
            "http://promxy.monitoring.svc.cluster.local:8082"
        );
        assert_eq!(f.instance, "monitoring/promxy");
    }

    #[test]
    fn service_written_for_a_prometheus_resource() {
        // prometheus-operator Documentation/platform/exposing-prometheus-and-alertmanager.md
        // (tests/fixtures/real/prometheus-operator-exposing-ingress.yaml): no labels, selector
        // prometheus=main (seen as a label), targetPort web.
        let main = service("default", "prometheus-main")
            .with_label("prometheus", "main")
            .with_port_full(Some("web"), 9090, Some("web"), "TCP");
        let f = one(Prometheus::detect(&main));
        assert_eq!(
            (f.instance.as_str(), f.rank),
            ("default/main", rank::PRIMARY)
        );
        // Without the web port, or with an application name, it is not this rule's.
        let other = service("default", "x")
            .with_label("prometheus", "main")
            .with_port(Some("metrics"), 8080);
        assert!(matches!(Prometheus::detect(&other), Detection::Unrelated));
    }

    #[test]
    fn openshift_cluster_monitoring_is_left_to_thanos_querier() {
        let k8s = service("openshift-monitoring", "prometheus-k8s")
            .with_label("app.kubernetes.io/name", "prometheus")
            .with_label("app.kubernetes.io/part-of", "openshift-monitoring")
            .with_port(Some("web"), 9091);
        let operated = service("openshift-user-workload-monitoring", "prometheus-operated")
            .with_label("operated-prometheus", "true")
            .with_port(Some("web"), 9090)
            .headless();
        for svc in [k8s, operated] {
            assert!(
                matches!(Prometheus::detect(&svc), Detection::Declined(_)),
                "{}",
                svc.name
            );
        }
    }

    #[test]
    fn mimir_and_cortex_query_path_under_prometheus_prefix() {
        let c = |name: &str, app: &str, component: &str| {
            service("mimir", name)
                .with_label("app.kubernetes.io/name", app)
                .with_label("app.kubernetes.io/instance", "mimir")
                .with_label("app.kubernetes.io/component", component)
        };
        let gw = one(Prometheus::detect(
            &c("mimir-grafana-mimir-gateway", "grafana-mimir", "gateway")
                .with_port(Some("http"), 80),
        ));
        assert_eq!(
            gw.endpoint,
            "http://mimir-grafana-mimir-gateway.mimir.svc.cluster.local:80/prometheus"
        );
        assert_eq!(
            (gw.instance.as_str(), gw.rank),
            ("mimir/mimir", rank::GATEWAY)
        );
        let qf = one(Prometheus::detect(
            &c("cortex-query-frontend", "cortex", "query-frontend")
                .with_port(Some("http-metrics"), 8080)
                .with_port(Some("grpc"), 9095),
        ));
        assert!(qf.endpoint.ends_with(":8080/prometheus"));
        assert_eq!(qf.rank, rank::FRONTEND);
        for comp in [
            "distributor",
            "ingester",
            "store-gateway",
            "compactor",
            "ruler",
        ] {
            assert!(
                matches!(
                    Prometheus::detect(
                        &c("x", "mimir", comp).with_port(Some("http-metrics"), 8080)
                    ),
                    Detection::Declined(_)
                ),
                "{comp}"
            );
        }
    }

    #[test]
    fn mimir_jsonnet_query_frontend_by_name_label_and_port() {
        let qf = service("default", "query-frontend")
            .with_label("name", "query-frontend")
            .with_port(Some("query-frontend-http-metrics"), 8080)
            .with_port(Some("query-frontend-grpc"), 9095);
        let f = one(Prometheus::detect(&qf));
        assert_eq!(
            f.endpoint,
            "http://query-frontend.default.svc.cluster.local:8080/prometheus"
        );
        assert_eq!(f.instance, "default/mimir");
        // Loki's jsonnet query-frontend (3100) is not Mimir.
        let loki = service("default", "query-frontend")
            .with_label("name", "query-frontend")
            .with_port(Some("query-frontend-http-metrics"), 3100);
        assert!(matches!(Prometheus::detect(&loki), Detection::Unrelated));
        let ingester = service("default", "ingester")
            .with_label("name", "ingester")
            .with_port(Some("ingester-http-metrics"), 8080);
        assert!(matches!(
            Prometheus::detect(&ingester),
            Detection::Unrelated
        ));
    }
    fn endpoints(id: &Identification) -> Vec<&str> {
        id.candidates.iter().map(|c| c.endpoint.as_str()).collect()
    }

    #[test]
    fn identify_tries_both_schemes_then_the_route_prefix() {
        let svc = kps(
            "kps-kube-prometheus-stack-prometheus",
            "kube-prometheus-stack-prometheus",
        )
        .with_port(Some("http-web"), 9090);
        let f = one(Prometheus::detect(&svc));
        let id = Prometheus::identify(&svc, &f);
        let host = "kps-kube-prometheus-stack-prometheus.monitoring.svc.cluster.local:9090";
        assert_eq!(
            endpoints(&id),
            vec![
                format!("http://{host}"),
                format!("https://{host}"),
                format!("http://{host}/prometheus"),
                format!("https://{host}/prometheus"),
            ]
        );
        assert!(!id.required);
        for c in &id.candidates {
            assert_eq!(c.fingerprint.path, "/api/v1/status/buildinfo");
            assert_eq!(c.fingerprint.json_pointers, vec!["/data/version"]);
            assert!(c.fingerprint.statuses.is_empty() && c.fingerprint.body_contains.is_empty());
            assert_eq!(
                c.config,
                format!(r#"{{"prometheus_url":"{}"}}"#, c.endpoint)
            );
        }
        let prefixed = &id.candidates[3];
        let h = prefixed.health.as_ref().expect("health");
        assert_eq!(
            (h.scheme, h.path.as_str()),
            (Scheme::Https, "/prometheus/-/ready")
        );
        assert!(
            id.candidates[0]
                .why
                .starts_with("metadata: http on port 9090")
        );
    }

    #[test]
    fn identify_https_first_behind_a_serving_certificate_and_app_protocol_settles() {
        let mut svc = service("team", "prometheus")
            .with_label("app.kubernetes.io/name", "prometheus")
            .with_label("app.kubernetes.io/component", "server")
            .with_annotation(
                "service.beta.openshift.io/serving-cert-secret-name",
                "prometheus-tls",
            )
            .with_port(Some("web"), 9091);
        let f = one(Prometheus::detect(&svc));
        let id = Prometheus::identify(&svc, &f);
        assert_eq!(
            endpoints(&id)[..2],
            [
                "https://prometheus.team.svc.cluster.local:9091",
                "http://prometheus.team.svc.cluster.local:9091"
            ]
        );
        svc.ports[0].app_protocol = Some("https".into());
        let f = one(Prometheus::detect(&svc));
        let id = Prometheus::identify(&svc, &f);
        assert!(
            id.candidates
                .iter()
                .all(|c| c.endpoint.starts_with("https://"))
        );
        assert_eq!(id.candidates.len(), 2);
    }

    #[test]
    fn identify_mimir_only_under_its_prefix_health_at_the_root() {
        let svc = service("mimir", "mimir-query-frontend")
            .with_label("app.kubernetes.io/name", "mimir")
            .with_label("app.kubernetes.io/instance", "mimir")
            .with_label("app.kubernetes.io/component", "query-frontend")
            .with_port(Some("http-metrics"), 8080);
        let f = one(Prometheus::detect(&svc));
        let id = Prometheus::identify(&svc, &f);
        assert_eq!(
            endpoints(&id),
            vec![
                "http://mimir-query-frontend.mimir.svc.cluster.local:8080/prometheus",
                "https://mimir-query-frontend.mimir.svc.cluster.local:8080/prometheus",
            ]
        );
        for c in &id.candidates {
            assert_eq!(c.health.as_ref().map(|h| h.path.as_str()), Some("/ready"));
        }
        assert!(!id.required);
    }

    #[test]
    fn thin_component_label_is_accepted_only_with_proof() {
        let bare = service("metrics", "prom")
            .with_label("component", "prometheus")
            .with_port(Some("web"), 9090);
        let f = one(Prometheus::detect(&bare));
        assert_eq!(f.rank, identify::THIN_RANK);
        assert!(f.rank < rank::HEADLESS);
        assert_eq!(f.instance, "metrics/prom");
        assert!(Prometheus::identify(&bare, &f).required);
        // A labelled match stays as it was: not required.
        let k8s = service("monitoring", "prometheus-k8s")
            .with_label("app.kubernetes.io/name", "prometheus")
            .with_label("app.kubernetes.io/component", "prometheus")
            .with_port(Some("web"), 9090);
        let f = one(Prometheus::detect(&k8s));
        assert!(!Prometheus::identify(&k8s, &f).required);
        // A stack's component (Bitnami's kube-prometheus, Traefik Mesh's maesh) is thin too.
        let bitnami = service("monitoring", "kube-prometheus-prometheus")
            .with_label("app.kubernetes.io/name", "kube-prometheus")
            .with_label("app.kubernetes.io/component", "prometheus")
            .with_port(Some("http"), 9090);
        assert_eq!(one(Prometheus::detect(&bitnami)).rank, identify::THIN_RANK);
        // Another backend's application name, or no web port: nothing.
        for svc in [
            service("logs", "x")
                .with_label("app.kubernetes.io/name", "loki")
                .with_label("app.kubernetes.io/component", "prometheus")
                .with_port(Some("http"), 9090),
            service("metrics", "y")
                .with_label("component", "prometheus")
                .with_port(Some("grpc"), 10901),
        ] {
            assert!(
                matches!(Prometheus::detect(&svc), Detection::Unrelated),
                "{}",
                svc.name
            );
        }
    }
}
