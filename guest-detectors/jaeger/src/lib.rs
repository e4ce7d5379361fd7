//! Jaeger detector: the `jaeger/traces` toolset (HolmesGPT has no built-in Jaeger toolset;
//! the host builds a `type: http` toolset on the Jaeger query HTTP API from the endpoint).
//!
//! Recognised by `app.kubernetes.io/name=jaeger` (jaegertracing `jaeger` chart) with
//! component `query` (v1: port `query` 80 → 16686) or `all-in-one` (v2 chart: port
//! `http-query` 16686 among the receiver ports); jaeger-operator Services
//! (`app=jaeger` + `app.kubernetes.io/component=service-query`, port `http-query`).
//!
//! Rank [`rank::PRIMARY`]; headless twins [`rank::HEADLESS`]. Instance
//! `<namespace>/<release>` (jaeger-operator: the Jaeger CR name in
//! `app.kubernetes.io/instance`), fallback the Service name without `-query`.
//! Health: `GET /` on the query port → 200 (the UI). Config: `{}`.
//!
//! Declined: collector, agent, ingester (write path), the jaeger-operator, the HotROD
//! demo, and the chart's storage subcharts' helpers (es index cleaner, spark jobs).
//! Environment variables referenced: none.

use detector_sdk::catalog::JAEGER_TOOLSET;
use detector_sdk::prelude::*;

/// The Jaeger detector.
pub struct Jaeger;

const PORT_NAMES: &[&str] = &["http-query", "https-query", "query", "http"];

/// Thin `app=jaeger` query Services (no component label), known by their query ports:
/// (Service name, port, base path). Istio's Jaeger addon (`samples/addons/jaeger.yaml`)
/// publishes `tracing` on port 80 and runs the query service with base path `/jaeger`.
const THIN_QUERY: &[(&str, u16, &str)] = &[("tracing", 80, "/jaeger")];
const PORT_NUMBERS: &[u16] = &[16686, 80];

impl Detector for Jaeger {
    fn emits() -> Emits {
        emits(&[JAEGER_TOOLSET], false)
    }

    fn metadata() -> DetectorInfo {
        metadata("jaeger", env!("CARGO_PKG_VERSION"), &["jaeger"])
    }

    fn detect(svc: &Service) -> Detection {
        let jaeger = match svc.label("app.kubernetes.io/name") {
            Some("jaeger") => true,
            Some("jaeger-operator") => return declined("jaeger-operator (an operator)"),
            _ => svc.has_label("app", "jaeger"),
        };
        if !jaeger {
            return Detection::Unrelated;
        }
        match svc.component() {
            Some("query" | "service-query" | "all-in-one" | "allinone") => {}
            Some(c) if c.contains("collector") => {
                return declined(format!("Jaeger {c} (the write path)"));
            }
            Some(c) if c.contains("agent") => return declined(format!("Jaeger {c} (an agent)")),
            Some(c) if c.contains("ingester") => {
                return declined(format!("Jaeger {c} (the write path)"));
            }
            Some("hotrod") => return declined("HotROD demo application"),
            Some(c) => return declined(format!("Jaeger {c} (not the query service)")),
            None => return thin(svc),
        }
        let Some(port) = svc.pick_port(PORT_NAMES, PORT_NUMBERS) else {
            return declined(
                "Jaeger query Service without a query port (http-query, query, 16686)",
            );
        };
        let b = FragmentBuilder::new(svc, JAEGER_TOOLSET, "jaeger")
            .instance(svc.release_instance(svc.name_base(&["-query", "-headless"])))
            .rank(rank::unless_headless(svc, rank::PRIMARY))
            .port_endpoint(port, "")
            .health("/", &[200]);
        matched(b.build())
    }
}

/// `app=jaeger` without a component: a query Service only when it has both query ports
/// (`http-query` and `grpc-query`); base path from [`THIN_QUERY`].
fn thin(svc: &Service) -> Detection {
    let (Some(port), Some(_)) = (
        svc.pick_port(&["http-query"], &[]),
        svc.pick_port(&["grpc-query"], &[]),
    ) else {
        return Detection::Unrelated;
    };
    let path = THIN_QUERY
        .iter()
        .find(|(name, number, _)| svc.name == *name && port.port == *number)
        .map_or("", |(_, _, path)| *path);
    let b = FragmentBuilder::new(svc, JAEGER_TOOLSET, "jaeger")
        .instance(svc.release_instance(svc.name_base(&["-query", "-headless"])))
        .rank(rank::unless_headless(svc, rank::GENERIC))
        .port_endpoint(port, path)
        .health(&format!("{path}/"), &[200]);
    matched(b.build())
}

detector_sdk::export_detector!(Jaeger);

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use detector_sdk::service::build::{ServiceBuild, chart_service, one, service};

    fn jaeger(name: &str, component: &str) -> Service {
        chart_service("tracing", name, "jaeger", "jaeger", Some(component))
    }

    #[test]
    fn v1_query() {
        let s = jaeger("jaeger-query", "query")
            .with_port_full(Some("query"), 80, Some("query"), "TCP")
            .with_port_full(Some("admin"), 16687, Some("admin"), "TCP");
        let f = one(Jaeger::detect(&s));
        assert_eq!(f.toolset, "jaeger/traces");
        assert_eq!(f.instance, "tracing/jaeger");
        assert_eq!(
            f.endpoint,
            "http://jaeger-query.tracing.svc.cluster.local:80"
        );
        // No tools or commands from the detector: the host builds the toolset.
        assert!(f.custom.is_none());
    }

    #[test]
    fn v2_all_in_one_picks_query_port() {
        let s = jaeger("jaeger", "all-in-one")
            .with_port_full(Some("jg-compact-trft"), 6831, Some("6831"), "UDP")
            .with_port(Some("http-zipkin"), 9411)
            .with_port(Some("otlp-http"), 4318)
            .with_port(Some("http-query"), 16686)
            .with_port(Some("grpc-query"), 16685);
        let f = one(Jaeger::detect(&s));
        assert_eq!(f.endpoint, "http://jaeger.tracing.svc.cluster.local:16686");
        assert_eq!(f.health.expect("health").port, 16686);
    }

    #[test]
    fn declines_write_path_and_operator() {
        for (n, c) in [
            ("jaeger-collector", "collector"),
            ("jaeger-agent", "agent"),
            ("jaeger-ingester", "ingester"),
        ] {
            assert!(matches!(
                Jaeger::detect(&jaeger(n, c).with_port(Some("http"), 14268)),
                Detection::Declined(_)
            ));
        }
        let op = service("observability", "jaeger-operator-metrics")
            .with_label("app.kubernetes.io/name", "jaeger-operator");
        assert!(matches!(Jaeger::detect(&op), Detection::Declined(_)));
        let by_name = service("tracing", "jaeger-query").with_port(Some("query"), 16686);
        assert!(matches!(Jaeger::detect(&by_name), Detection::Unrelated));
    }

    #[test]
    fn thin_istio_addon_under_base_path_and_openshift_oauth_proxy() {
        let tracing = service("istio-system", "tracing")
            .with_label("app", "jaeger")
            .with_port(Some("http-query"), 80)
            .with_port(Some("grpc-query"), 16685);
        let f = one(Jaeger::detect(&tracing));
        assert_eq!(
            f.endpoint,
            "http://tracing.istio-system.svc.cluster.local:80/jaeger"
        );
        assert_eq!(f.rank, rank::GENERIC);
        // The collector and the Zipkin port of the same pod are not the query API.
        let collector = service("istio-system", "jaeger-collector")
            .with_label("app", "jaeger")
            .with_port(Some("jaeger-collector-http"), 14268)
            .with_port(Some("http-zipkin"), 9411);
        assert!(matches!(Jaeger::detect(&collector), Detection::Unrelated));
        let zipkin = service("istio-system", "zipkin")
            .with_label("name", "zipkin")
            .with_port(Some("http-query"), 9411);
        assert!(matches!(Jaeger::detect(&zipkin), Detection::Unrelated));

        let query = service("observability", "simplest-query")
            .with_label("app", "jaeger")
            .with_label("app.kubernetes.io/instance", "simplest")
            .with_label("app.kubernetes.io/component", "service-query")
            .with_annotation(
                "service.alpha.openshift.io/serving-cert-secret-name",
                "simplest-ui-oauth-proxy-tls",
            )
            .with_port(Some("https-query"), 443)
            .with_port(Some("grpc-query"), 16685);
        let f = one(Jaeger::detect(&query));
        assert_eq!(
            f.endpoint,
            "https://simplest-query.observability.svc.cluster.local:443"
        );
    }
}
