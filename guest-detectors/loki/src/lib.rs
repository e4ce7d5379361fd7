//! Loki detector: `grafana/loki` (direct to Loki, `api_url`).
//!
//! Recognised by `app.kubernetes.io/name` `loki` (grafana/loki chart 3.x-6.x: single
//! binary, simple scalable, distributed), `loki-distributed` (legacy chart) or
//! `grafana-loki` (Bitnami's microservices chart, nginx gateway on port `http` 80), the
//! component in `app.kubernetes.io/component`; the legacy `loki` 2.x chart (used by
//! loki-stack) labelled `app=loki` + `release`, and hand-written manifests labelled
//! `app=loki` (or `k8s-app=loki`) alone; and the Services the Loki operator makes
//! for a `LokiStack` (`app.kubernetes.io/name=lokistack`, instance the LokiStack's name:
//! `<name>-query-frontend-http` / `-querier-http` on port `metrics` 3100; its gateway,
//! which needs a tenant's token, is declined, except on OpenShift Logging (serving
//! certificate, namespace `openshift-logging`), where it is the only way in: its
//! `application` tenant over https at [`rank::GATEWAY`]).
//!
//! Also `loki-<component>` application names (Loki's Istio guide: `loki-querier`), and
//! Loki's jsonnet Services labelled only `name=query-frontend` / `name=querier` with their
//! `<component>-http` port on 3100 (instance: the Service's name).
//!
//! Rank (per installation): gateway [`rank::GATEWAY`] > query-frontend
//! [`rank::FRONTEND`] > read / single binary [`rank::PRIMARY`] > querier
//! [`rank::SECONDARY`] > headless twins [`rank::HEADLESS`].
//! Instance key `<namespace>/<release>`, fallback the Service name without its role
//! suffix (`-gateway`, `-read`, `-query-frontend`, `-querier`, `-headless`).
//!
//! Health: Loki components `GET /ready` → 200; the nginx gateway `GET /` → 200.
//! Declined: write path (write, distributor, ingester), backend/compactor/index-gateway/
//! query-scheduler/ruler/bloom components, canary, memcached caches, memberlist and
//! `*-discovery` Services, promtail and other agents.
//! Environment variables referenced: none. (A multi-tenant Loki also needs an
//! `X-Scope-OrgID` header: add it through an override.)

use detector_sdk::catalog::LOKI;
use detector_sdk::prelude::*;

/// The Loki detector.
pub struct Loki;

const PORT_NAMES: &[&str] = &["http-metrics", "http", "http-web"];
const PORT_NUMBERS: &[u16] = &[3100, 80];

enum Role {
    Gateway,
    Frontend,
    Primary,
    Querier,
}

impl Detector for Loki {
    fn emits() -> Emits {
        emits(&[LOKI.toolset], false)
    }

    fn metadata() -> DetectorInfo {
        metadata("loki", env!("CARGO_PKG_VERSION"), &["loki"])
    }

    fn detect(svc: &Service) -> Detection {
        // Loki's jsonnet (and docs copied from it) labels only `name=<component>`, with the
        // component's HTTP port `<component>-http` on 3100 (Mimir's uses 8080).
        if let Some(c @ ("query-frontend" | "querier")) = svc.label("name")
            && svc.app_name().is_none()
            && let Some(port) = svc
                .ports
                .iter()
                .find(|p| p.port == 3100 && p.name.as_deref() == Some(&format!("{c}-http")))
        {
            let base = if c == "query-frontend" {
                rank::FRONTEND
            } else {
                rank::SECONDARY
            };
            return matched(
                FragmentBuilder::new(svc, LOKI.toolset, "loki")
                    .instance(svc.instance_key(&svc.name))
                    .rank(rank::unless_headless(svc, base))
                    .port_endpoint(port, "")
                    .health("/ready", &[200])
                    .config_url(LOKI.key)
                    .build(),
            );
        }
        // `loki-<component>` as the application name (Loki's Istio guide).
        let named = svc
            .label("app.kubernetes.io/name")
            .and_then(|n| n.strip_prefix("loki-"))
            .filter(|c| NAMED_COMPONENTS.contains(c));
        match svc.label("app.kubernetes.io/name") {
            _ if named.is_some() => {}
            // `enterprise-logs`: Grafana Enterprise Logs, whose chart renames its
            // loki-distributed subchart.
            Some("loki" | "loki-distributed" | "grafana-loki" | "enterprise-logs") => {}
            Some("lokistack") => {
                if svc.component() == Some("lokistack-gateway") {
                    return lokistack_gateway(svc);
                }
            }
            Some("promtail") => return declined("promtail (a log collector)"),
            Some("loki-canary") => return declined("Loki canary (a test client)"),
            Some(_) => return Detection::Unrelated,
            None => match svc.first_label(&["app", "k8s-app"]) {
                // The legacy chart (`app=loki` + `release`) and hand-written manifests.
                Some("loki") => {}
                Some("promtail") => return declined("promtail (a log collector)"),
                _ => return Detection::Unrelated,
            },
        }
        if svc.name.ends_with("-memberlist")
            || svc.has_label("app.kubernetes.io/part-of", "memberlist") && !has_http(svc)
        {
            return declined("Loki memberlist gossip Service");
        }
        if svc.name.ends_with("-discovery") {
            return declined("Loki discovery Service (internal, gRPC service discovery)");
        }
        let role = match named.or(svc.component()) {
            // Grafana Enterprise Logs' gateway is its authentication gateway: it wants a
            // GEL access-policy token, which HolmesGPT does not hold.
            Some("gateway") if svc.has_label("app.kubernetes.io/name", "enterprise-logs") => {
                return declined(
                    "Grafana Enterprise Logs gateway (needs a GEL access token); the query-frontend serves the API",
                );
            }
            Some("gateway" | "nginx") => Role::Gateway,
            Some("query-frontend") => Role::Frontend,
            Some("read" | "single-binary") => Role::Primary,
            Some("querier") => Role::Querier,
            Some(c @ ("write" | "distributor" | "ingester")) => {
                return declined(format!("Loki {c} (the write path)"));
            }
            Some(c) if c.starts_with("ingester") || c.starts_with("pattern-ingester") => {
                return declined(format!("Loki {c} (the write path)"));
            }
            Some("canary") => return declined("Loki canary (a test client)"),
            Some(c) if c.contains("cache") || c.starts_with("memcached") => {
                return declined(format!("Loki {c} (a cache)"));
            }
            Some(c) => return declined(format!("Loki {c} (not the query path)")),
            // Single binary (and the legacy chart's only Service) carry no component.
            None => Role::Primary,
        };
        let Some(port) = svc.pick_port(PORT_NAMES, PORT_NUMBERS) else {
            return declined("Loki Service without an HTTP port (http-metrics, http, 3100)");
        };
        let (base, health) = match role {
            Role::Gateway => (rank::GATEWAY, "/"),
            Role::Frontend => (rank::FRONTEND, "/ready"),
            Role::Primary => (rank::PRIMARY, "/ready"),
            Role::Querier => (rank::SECONDARY, "/ready"),
        };
        let headless = svc.headless || svc.has_label("variant", "headless");
        let fallback = svc.name_base(&[
            "-gateway",
            "-read",
            "-query-frontend",
            "-querier",
            "-headless",
        ]);
        let fallback = fallback.strip_suffix("-headless").unwrap_or(fallback);
        matched(
            FragmentBuilder::new(svc, LOKI.toolset, "loki")
                .instance(svc.release_instance(fallback))
                .rank(if headless { rank::HEADLESS } else { base })
                .port_endpoint(port, "")
                .health(health, &[200])
                .config_url(LOKI.key)
                .build(),
        )
    }
}

/// Loki components that may appear as `loki-<component>` application names.
const NAMED_COMPONENTS: &[&str] = &[
    "gateway",
    "query-frontend",
    "querier",
    "read",
    "write",
    "backend",
    "distributor",
    "ingester",
    "compactor",
    "index-gateway",
    "query-scheduler",
    "ruler",
];

/// OpenShift Logging's LokiStack tenant for application logs (`openshift-logging` tenancy
/// mode: tenants application, infrastructure, audit; grafana/loki
/// `operator/internal/manifests/openshift`).
const OPENSHIFT_LOGGING_TENANT: &str = "/api/logs/v1/application";

/// A LokiStack gateway. On OpenShift Logging (a serving certificate, namespace
/// `openshift-logging`) every Loki component demands the operator's client certificate and
/// the gateway is the only way in: its application-logs tenant over https, with the
/// caller's OpenShift token. Elsewhere (static or dynamic tenants, named only in the
/// LokiStack resource) it is declined: the query-frontend serves the same API.
fn lokistack_gateway(svc: &Service) -> Detection {
    if !(svc.serving_cert() && svc.namespace == "openshift-logging") {
        return declined(
            "LokiStack gateway (a per-tenant API needing the tenant's token); the query-frontend serves the same API",
        );
    }
    let Some(port) = svc.pick_port(&["public"], &[8080]) else {
        return declined("LokiStack gateway without its public port (public, 8080)");
    };
    matched(
        FragmentBuilder::new(svc, LOKI.toolset, "loki")
            .instance(svc.release_instance(svc.name_base(&["-gateway-http"])))
            .rank(rank::GATEWAY)
            .endpoint(Scheme::Https, port.port, OPENSHIFT_LOGGING_TENANT)
            // The public port answers API requests only with a token: 401/403 without one
            // still shows the gateway up (its own /live is on the internal port).
            .health(
                &format!("{OPENSHIFT_LOGGING_TENANT}/loki/api/v1/labels"),
                &[200, 401, 403],
            )
            .config_url(LOKI.key)
            .build(),
    )
}

fn has_http(svc: &Service) -> bool {
    svc.pick_port(PORT_NAMES, PORT_NUMBERS).is_some()
}

detector_sdk::export_detector!(Loki);

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use detector_sdk::service::build::{ServiceBuild, chart_service, one, service};

    fn loki(name: &str, component: Option<&str>) -> Service {
        chart_service("loki", name, "loki", "loki", component)
    }

    #[test]
    fn simple_scalable_prefers_gateway_then_read() {
        let gw = one(Loki::detect(
            &loki("loki-gateway", Some("gateway")).with_port_full(
                Some("http-metrics"),
                80,
                Some("http-metrics"),
                "TCP",
            ),
        ));
        let read = one(Loki::detect(
            &loki("loki-read", Some("read"))
                .with_port(Some("http-metrics"), 3100)
                .with_port(Some("grpc"), 9095),
        ));
        let read_h = one(Loki::detect(
            &loki("loki-read-headless", Some("read"))
                .with_label("variant", "headless")
                .with_port(Some("http-metrics"), 3100)
                .headless(),
        ));
        assert_eq!(gw.toolset, "grafana/loki");
        assert_eq!(gw.instance, "loki/loki");
        assert_eq!(read.instance, gw.instance);
        assert_eq!(read_h.instance, gw.instance);
        assert!(gw.rank > read.rank && read.rank > read_h.rank);
        assert_eq!(gw.endpoint, "http://loki-gateway.loki.svc.cluster.local:80");
        assert_eq!(
            gw.config,
            r#"{"api_url":"http://loki-gateway.loki.svc.cluster.local:80"}"#
        );
        assert_eq!(read.health.expect("health").path, "/ready");
    }

    #[test]
    fn single_binary_and_legacy_chart() {
        let f = one(Loki::detect(
            &loki("loki", None)
                .with_port(Some("http-metrics"), 3100)
                .with_port(Some("grpc"), 9095),
        ));
        assert_eq!(f.rank, rank::PRIMARY);
        let legacy = service("logging", "loki")
            .with_label("app", "loki")
            .with_label("release", "loki")
            .with_port(Some("http-metrics"), 3100);
        assert_eq!(one(Loki::detect(&legacy)).instance, "logging/loki");
    }

    #[test]
    fn declines() {
        let cases = [
            loki("loki-write", Some("write")).with_port(Some("http-metrics"), 3100),
            loki("loki-backend", Some("backend")).with_port(Some("http-metrics"), 3100),
            loki("loki-canary", Some("canary")).with_port(Some("http-metrics"), 3500),
            loki("loki-chunks-cache", Some("memcached-chunks-cache"))
                .with_port(Some("memcache"), 11211),
            loki("loki-memberlist", None)
                .with_port(Some("tcp"), 7946)
                .headless(),
            loki("loki-query-scheduler-discovery", Some("backend"))
                .with_port(Some("http-metrics"), 3100),
            loki("loki-distributor", Some("distributor")).with_port(Some("http-metrics"), 3100),
            loki("loki-ingester-zone-a-headless", Some("ingester-zone-a"))
                .with_port(Some("http-metrics"), 3100),
            service("loki", "promtail").with_label("app.kubernetes.io/name", "promtail"),
        ];
        for s in cases {
            assert!(
                matches!(Loki::detect(&s), Detection::Declined(_)),
                "{}",
                s.name
            );
        }
        let by_name = service("loki", "loki").with_port(Some("http-metrics"), 3100);
        assert!(matches!(Loki::detect(&by_name), Detection::Unrelated));
    }

    #[test]
    fn bitnami_grafana_loki_gateway() {
        let gw = chart_service(
            "loki",
            "loki-grafana-loki-gateway",
            "grafana-loki",
            "loki",
            Some("gateway"),
        )
        .with_port(Some("http"), 80);
        let f = one(Loki::detect(&gw));
        assert_eq!(
            f.endpoint,
            "http://loki-grafana-loki-gateway.loki.svc.cluster.local:80"
        );
        assert_eq!((f.instance.as_str(), f.rank), ("loki/loki", rank::GATEWAY));
        let ing = chart_service(
            "loki",
            "loki-grafana-loki-ingester",
            "grafana-loki",
            "loki",
            Some("ingester"),
        )
        .with_port(Some("http"), 3100);
        assert!(matches!(Loki::detect(&ing), Detection::Declined(_)));
    }

    #[test]
    fn loki_operator_lokistack() {
        // grafana/loki operator/internal/manifests (see tests/fixtures/real/loki-operator.yaml).
        let svc = |name: &str, component: &str, port: (&str, u16)| {
            chart_service("loki", name, "lokistack", "lokistack-dev", Some(component))
                .with_port(Some(port.0), port.1)
        };
        let qf = one(Loki::detect(&svc(
            "lokistack-dev-query-frontend-http",
            "query-frontend",
            ("metrics", 3100),
        )));
        assert_eq!(
            qf.endpoint,
            "http://lokistack-dev-query-frontend-http.loki.svc.cluster.local:3100"
        );
        assert_eq!(
            (qf.instance.as_str(), qf.rank),
            ("loki/lokistack-dev", rank::FRONTEND)
        );
        let q = one(Loki::detect(&svc(
            "lokistack-dev-querier-http",
            "querier",
            ("metrics", 3100),
        )));
        assert!(q.rank < qf.rank);
        // On OpenShift Logging the gateway is the way in, its application tenant over https
        // (tests/fixtures/real/loki-operator-openshift.yaml).
        let mut ocp = svc(
            "lokistack-dev-gateway-http",
            "lokistack-gateway",
            ("public", 8080),
        )
        .with_annotation(
            "service.beta.openshift.io/serving-cert-secret-name",
            "lokistack-dev-gateway-http",
        );
        ocp.namespace = "openshift-logging".into();
        let gw = one(Loki::detect(&ocp));
        assert_eq!(
            gw.endpoint,
            "https://lokistack-dev-gateway-http.openshift-logging.svc.cluster.local:8080/api/logs/v1/application"
        );
        assert_eq!(
            (gw.instance.as_str(), gw.rank),
            ("openshift-logging/lokistack-dev", rank::GATEWAY)
        );
        for (name, component, port) in [
            (
                "lokistack-dev-gateway-http",
                "lokistack-gateway",
                ("public", 8080),
            ),
            (
                "lokistack-dev-distributor-http",
                "distributor",
                ("metrics", 3100),
            ),
            (
                "lokistack-dev-query-frontend-grpc",
                "query-frontend",
                ("grpclb", 9095),
            ),
        ] {
            assert!(
                matches!(
                    Loki::detect(&svc(name, component, port)),
                    Detection::Declined(_)
                ),
                "{name}"
            );
        }
    }

    #[test]
    fn component_application_names_and_jsonnet_services() {
        // grafana/loki docs (tests/fixtures/real/grafana-docs-kubernetes.yaml).
        let querier = service("observability", "loki-querier")
            .with_label("app.kubernetes.io/name", "loki-querier")
            .with_label("app.kubernetes.io/instance", "observability")
            .with_port(Some("http"), 3100);
        let f = one(Loki::detect(&querier));
        assert_eq!(
            (f.instance.as_str(), f.rank),
            ("observability/observability", rank::SECONDARY)
        );
        let qf = service("loki", "query-frontend")
            .with_label("name", "query-frontend")
            .with_port(Some("query-frontend-http"), 3100);
        let f = one(Loki::detect(&qf));
        assert_eq!(f.instance, "loki/query-frontend");
        assert_eq!(f.rank, rank::FRONTEND);
        // Mimir's jsonnet query-frontend (8080) is not Loki's.
        let mimir = service("default", "query-frontend")
            .with_label("name", "query-frontend")
            .with_port(Some("query-frontend-http-metrics"), 8080);
        assert!(matches!(Loki::detect(&mimir), Detection::Unrelated));
    }
}
