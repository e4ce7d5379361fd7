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
//!
//! Linkerd's Jaeger (the `linkerd-jaeger` extension, component `jaeger`, and the 2.9
//! tracing add-on `linkerd-jaeger`) on port `ui` 16686 under `/jaeger` (Linkerd runs it with
//! `--query.base-path=/jaeger`); instance `<namespace>/<Service name>`.
//!
//! The OpenTelemetry operator's `<name>-collector-extension` Service (label
//! `operator.opentelemetry.io/collector-service-type=extension`) with a port named
//! `jaeger-query` is Jaeger v2's query extension; instance `<namespace>/<name>`.
//!
//! Thin labels: `app=jaeger` (or `app.kubernetes.io/name=jaeger`) without a component is
//! a query Service when it has both `http-query` and `grpc-query` ports (Istio's addon,
//! see [`THIN_QUERY`]); with only a query-looking port ([`THIN_PORT_NAMES`], or port or
//! targetPort 16686, e.g. the old jaeger-kubernetes templates' `jaeger-query` Service) it
//! is matched at [`identify::THIN_RANK`] (below any sibling) with a *required*
//! identification: when probes run it is published only if the port answers as Jaeger.
//!
//! Identification (contract 1.1 `identify`): candidates on the query port at the
//! fragment's base path and at the others of `""`, `/jaeger` (Istio's addon and demo
//! setups) and `/jaeger/ui` (the OpenTelemetry demo), http and https unless `appProtocol` settles it; recognised by
//! the query service's `GET /api/services` ([`services`]), which a Zipkin (bare JSON
//! array at `/api/v2/services`, nothing at `/api/services`) does not answer.

use detector_sdk::catalog::JAEGER_TOOLSET;
use detector_sdk::identify;
use detector_sdk::prelude::*;

/// The Jaeger detector.
pub struct Jaeger;

const PORT_NAMES: &[&str] = &["http-query", "https-query", "query", "http"];

/// Thin `app=jaeger` query Services (no component label), known by their query ports:
/// (Service name, port, base path). Istio's Jaeger addon (`samples/addons/jaeger.yaml`)
/// publishes `tracing` on port 80 and runs the query service with base path `/jaeger`.
const THIN_QUERY: &[(&str, u16, &str)] = &[("tracing", 80, "/jaeger")];
const PORT_NUMBERS: &[u16] = &[16686, 80];

/// Port names of a thin `app=jaeger` Service that look like the query API (besides port
/// or targetPort 16686).
const THIN_PORT_NAMES: &[&str] = &[
    "http-query",
    "https-query",
    "query",
    "query-http",
    "jaeger-query",
];
/// Jaeger's query HTTP port (`QUERY_HTTP_SERVER_HOST_PORT` default `:16686`).
const QUERY_PORT: u16 = 16686;
/// The base path demo setups and Istio's addon serve the query service under.
const BASE_PATH: &str = "/jaeger";
/// The base path the OpenTelemetry demo serves Jaeger's UI and API under
/// (`jaeger_query.base_path: /jaeger/ui`, see tests/fixtures/real/opentelemetry-demo.yaml).
const UI_BASE_PATH: &str = "/jaeger/ui";

impl Detector for Jaeger {
    fn emits() -> Emits {
        emits(&[JAEGER_TOOLSET], false)
    }

    fn metadata() -> DetectorInfo {
        metadata("jaeger", env!("CARGO_PKG_VERSION"), &["jaeger"])
    }

    fn identify(svc: &Service, f: &Fragment) -> Identification {
        let schemes = identify::schemes(identify::port_of(svc, f));
        // The fragment's own base path first (every scheme), then the others.
        let own = [UI_BASE_PATH, BASE_PATH]
            .into_iter()
            .find(|b| f.endpoint.ends_with(b))
            .unwrap_or("");
        let mut bases = vec![own];
        bases.extend(["", BASE_PATH, UI_BASE_PATH].iter().filter(|b| **b != own));
        identify::among(
            svc,
            f,
            &identify::places(schemes, &bases),
            &services(),
            is_thin_port(svc),
        )
    }

    fn detect(svc: &Service) -> Detection {
        if svc.has_label("app.kubernetes.io/name", "jaeger-operator") {
            return declined("jaeger-operator (an operator)");
        }
        // Jaeger v2 run by the OpenTelemetry operator as a collector with the
        // `jaeger_query` extension: the operator puts the extension's ports on
        // `<name>-collector-extension`, named after the extension (`jaeger-query`).
        if svc.has_label(
            "operator.opentelemetry.io/collector-service-type",
            "extension",
        ) && let Some(port) = svc.pick_port(&["jaeger-query"], &[])
        {
            let b = FragmentBuilder::new(svc, JAEGER_TOOLSET, "jaeger")
                .instance(svc.instance_key(svc.name_base(&["-collector-extension"])))
                .rank(rank::GENERIC)
                .port_endpoint(port, "")
                .health("/", &[200]);
            return matched(b.build());
        }
        // Linkerd's Jaeger: the `linkerd-jaeger` extension (`linkerd.io/extension=jaeger`,
        // component `jaeger`) and the 2.9 tracing add-on
        // (`linkerd.io/control-plane-component=linkerd-jaeger`) run Jaeger all-in-one with
        // `--query.base-path=/jaeger` (for the Linkerd dashboard) on port `ui` 16686.
        let linkerd = (svc.has_label("linkerd.io/extension", "jaeger")
            && svc.component() == Some("jaeger"))
            || svc.has_label("linkerd.io/control-plane-component", "linkerd-jaeger");
        if linkerd && let Some(port) = svc.pick_port(&["ui"], &[QUERY_PORT]) {
            let b = FragmentBuilder::new(svc, JAEGER_TOOLSET, "jaeger")
                .instance(svc.instance_key(&svc.name))
                .rank(rank::GENERIC)
                .port_endpoint(port, BASE_PATH)
                .health(&format!("{BASE_PATH}/"), &[200]);
            return matched(b.build());
        }
        if !labelled_jaeger(svc) {
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

/// `app=jaeger` without a component: a query Service when it has both query ports
/// (`http-query` and `grpc-query`; base path from [`THIN_QUERY`]), else one with only a
/// query-looking port ([`thin_port`], identification required).
fn thin(svc: &Service) -> Detection {
    let (Some(port), Some(_)) = (
        svc.pick_port(&["http-query"], &[]),
        svc.pick_port(&["grpc-query"], &[]),
    ) else {
        let Some(port) = thin_port(svc) else {
            return Detection::Unrelated;
        };
        let b = FragmentBuilder::new(svc, JAEGER_TOOLSET, "jaeger")
            .instance(svc.release_instance(svc.name_base(&["-query", "-headless"])))
            .rank(identify::THIN_RANK)
            .port_endpoint(port, "")
            .health("/", &[200]);
        return matched(b.build());
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

/// A thin Service's query-looking port: by name ([`THIN_PORT_NAMES`]), else port or
/// targetPort 16686.
fn thin_port(svc: &Service) -> Option<&ServicePort> {
    svc.pick_port(THIN_PORT_NAMES, &[QUERY_PORT]).or_else(|| {
        svc.ports.iter().find(|p| {
            p.protocol.eq_ignore_ascii_case("TCP") && p.target_port.as_deref() == Some("16686")
        })
    })
}

/// Labelled as Jaeger: `app.kubernetes.io/name=jaeger`, or `app=jaeger` (the operator's
/// own `app.kubernetes.io/name=jaeger-operator` is declined before).
fn labelled_jaeger(svc: &Service) -> bool {
    svc.has_label("app.kubernetes.io/name", "jaeger") || svc.has_label("app", "jaeger")
}

/// Whether [`Jaeger::detect`] matched `svc` on a thin `app=jaeger` with only a
/// query-looking port (its identification is then required).
fn is_thin_port(svc: &Service) -> bool {
    labelled_jaeger(svc)
        && !svc.has_label("app.kubernetes.io/name", "jaeger-operator")
        && svc.component().is_none()
        && !(svc.pick_port(&["http-query"], &[]).is_some()
            && svc.pick_port(&["grpc-query"], &[]).is_some())
        && thin_port(svc).is_some()
}

/// The query service's services list: `GET <base>/api/services` answers
/// `structuredResponse{Data "data", Total "total", Limit, Offset, Errors}` with the
/// service names as `data` (`getServices`;
/// `cmd/jaeger/internal/extension/jaegerquery/internal/http_handler.go` lines 57-63, 112
/// and 147-162 of jaegertracing/jaeger@83f312167ee91c5e1299616011f33bde6f87bb75). Its
/// child 639eefe045ca6d1a1beb001960c36021b50b2758 (#9260, 2026-08-07, after v2.20.0)
/// removes `/api/services` from Jaeger's main branch; the host's Jaeger toolset calls
/// that same endpoint, so a Jaeger without it is rightly not proven.
/// Zipkin has no `/api/services`; its `/api/v2/services` is a bare JSON array
/// (`ZipkinQueryApiV2.getServiceNames`,
/// `zipkin-server/src/main/java/zipkin2/server/internal/ZipkinQueryApiV2.java` line 85,
/// openzipkin/zipkin@878ce2a1fad54ca941d17fdcf2e1d924b148eb1f), which has no `/data`.
pub fn services() -> Fingerprint {
    identify::fingerprint("/api/services", &["/data", "/total"], &[])
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
    fn linkerd_jaeger_under_its_base_path() {
        // linkerd2 jaeger/charts (tests/fixtures/real/linkerd-jaeger.yaml).
        let svc = service("linkerd-jaeger", "jaeger")
            .with_label("linkerd.io/extension", "jaeger")
            .with_label("component", "jaeger")
            .with_port(Some("collection"), 14268)
            .with_port(Some("grpc"), 14250)
            .with_port(Some("ui"), 16686);
        let f = one(Jaeger::detect(&svc));
        assert_eq!(
            f.endpoint,
            "http://jaeger.linkerd-jaeger.svc.cluster.local:16686/jaeger"
        );
        assert_eq!(f.instance, "linkerd-jaeger/jaeger");
    }

    #[test]
    fn opentelemetry_operator_jaeger_query_extension() {
        // open-telemetry/opentelemetry-operator tests/e2e/extension (see
        // tests/fixtures/real/opentelemetry-operator.yaml).
        let ext = service("observability", "jaeger-inmemory-collector-extension")
            .with_label(
                "operator.opentelemetry.io/collector-service-type",
                "extension",
            )
            .with_label("app.kubernetes.io/component", "opentelemetry-collector")
            .with_port(Some("jaeger-query"), 16686)
            .with_port(Some("jaeger-query-2"), 16685);
        let f = one(Jaeger::detect(&ext));
        assert_eq!(f.instance, "observability/jaeger-inmemory");
        assert_eq!(
            f.endpoint,
            "http://jaeger-inmemory-collector-extension.observability.svc.cluster.local:16686"
        );
        // A collector's receiver Service is not a query API.
        let receivers = service("observability", "otel-collector")
            .with_label("app.kubernetes.io/component", "opentelemetry-collector")
            .with_port(Some("jaeger-grpc"), 14250);
        assert!(matches!(Jaeger::detect(&receivers), Detection::Unrelated));
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

    fn endpoints(id: &Identification) -> Vec<&str> {
        id.candidates.iter().map(|c| c.endpoint.as_str()).collect()
    }

    #[test]
    fn identify_query_port_at_root_then_under_jaeger() {
        let s = jaeger("jaeger-query", "query")
            .with_port_full(Some("query"), 80, Some("query"), "TCP")
            .with_port_full(Some("admin"), 16687, Some("admin"), "TCP");
        let f = one(Jaeger::detect(&s));
        let id = Jaeger::identify(&s, &f);
        let host = "jaeger-query.tracing.svc.cluster.local:80";
        assert_eq!(
            endpoints(&id),
            vec![
                format!("http://{host}"),
                format!("https://{host}"),
                format!("http://{host}/jaeger"),
                format!("https://{host}/jaeger"),
                format!("http://{host}/jaeger/ui"),
                format!("https://{host}/jaeger/ui"),
            ]
        );
        assert!(!id.required);
        let fp = &id.candidates[0].fingerprint;
        assert_eq!(fp.path, "/api/services");
        assert_eq!(fp.json_pointers, vec!["/data", "/total"]);
        let based = &id.candidates[2];
        assert_eq!(
            based.health.as_ref().map(|h| h.path.as_str()),
            Some("/jaeger/")
        );
        assert_eq!(based.config, "{}");
    }

    #[test]
    fn identify_istio_addon_keeps_its_base_path_first() {
        let tracing = service("istio-system", "tracing")
            .with_label("app", "jaeger")
            .with_port(Some("http-query"), 80)
            .with_port(Some("grpc-query"), 16685);
        let f = one(Jaeger::detect(&tracing));
        let id = Jaeger::identify(&tracing, &f);
        let host = "tracing.istio-system.svc.cluster.local:80";
        assert_eq!(
            endpoints(&id),
            vec![
                format!("http://{host}/jaeger"),
                format!("https://{host}/jaeger"),
                format!("http://{host}"),
                format!("https://{host}"),
                format!("http://{host}/jaeger/ui"),
                format!("https://{host}/jaeger/ui"),
            ]
        );
        assert_eq!(
            id.candidates[2].health.as_ref().map(|h| h.path.as_str()),
            Some("/")
        );
        // Accepted on both query ports before identification existed: not required.
        assert!(!id.required);
    }

    #[test]
    fn thin_app_label_with_a_query_port_needs_proof() {
        // jaeger-kubernetes' hand-written query Service: app=jaeger, port 80 -> 16686.
        let svc = service("tracing", "jaeger-query")
            .with_label("app", "jaeger")
            .with_label("jaeger-infra", "query-service")
            .with_port_full(Some("jaeger-query"), 80, Some("16686"), "TCP");
        let f = one(Jaeger::detect(&svc));
        assert_eq!(
            f.endpoint,
            "http://jaeger-query.tracing.svc.cluster.local:80"
        );
        assert_eq!(
            (f.rank, f.instance.as_str()),
            (identify::THIN_RANK, "tracing/jaeger")
        );
        assert!(Jaeger::identify(&svc, &f).required);
        // By target port alone, unnamed.
        let unnamed = service("demo", "jaeger")
            .with_label("app", "jaeger")
            .with_port_full(None, 8080, Some("16686"), "TCP");
        let f = one(Jaeger::detect(&unnamed));
        assert!(f.endpoint.ends_with(":8080"));
        assert!(Jaeger::identify(&unnamed, &f).required);
        // No query-looking port (Istio's collector): nothing, as before.
        let collector = service("istio-system", "jaeger-collector")
            .with_label("app", "jaeger")
            .with_port(Some("jaeger-collector-http"), 14268)
            .with_port(Some("http-zipkin"), 9411);
        assert!(matches!(Jaeger::detect(&collector), Detection::Unrelated));
        // Labelled components keep their identification optional.
        let q = jaeger("jaeger-query", "query").with_port(Some("http-query"), 16686);
        let f = one(Jaeger::detect(&q));
        assert!(!Jaeger::identify(&q, &f).required);
    }
}
