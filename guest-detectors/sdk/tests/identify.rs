//! Every bundled detector's `identify`, natively: the candidates each names for its own
//! fragments, in order, with the fingerprint intended (`tests/identify.rs` at the
//! repository root proves them against loopback servers through the host).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use detector_sdk::service::build::{ServiceBuild, service};
use detector_sdk::{Detection, Fragment, Identification, Service, identify, rank};
use native::{detectors, identifiers};

mod native;

/// Every fragment every detector returns for `svc`, with its identification.
fn identified(svc: &Service) -> Vec<(&'static str, Fragment, Identification)> {
    let mut out = Vec::new();
    for ((name, detect), (same, identify)) in detectors().into_iter().zip(identifiers()) {
        assert_eq!(name, same);
        if let Detection::Matched(fragments) = detect(svc) {
            for f in fragments {
                let id = identify(svc, &f);
                out.push((name, f, id));
            }
        }
    }
    out
}

/// `scheme://host:port` of a URL.
fn origin_host(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.split('/').next().unwrap_or(rest)
}

/// What must hold for any identification.
fn check(detector: &str, svc: &Service, f: &Fragment, id: &Identification) {
    let what = format!("{detector} on {}/{}", svc.namespace, svc.name);
    if id.candidates.is_empty() {
        assert!(!id.required, "{what}: required without candidates");
        return;
    }
    // The metadata's guess first, unchanged.
    let own = &id.candidates[0];
    assert_eq!(own.endpoint, f.endpoint, "{what}");
    // (The WIT types have no PartialEq: compare what they print.)
    assert_eq!(
        format!("{:?}", own.health),
        format!("{:?}", f.health),
        "{what}"
    );
    assert_eq!(own.config, f.config, "{what}");
    assert!(own.why.starts_with("metadata: "), "{what}: {}", own.why);
    for (i, c) in id.candidates.iter().enumerate() {
        // On the fragment's own Service and port.
        assert_eq!(origin_host(&c.endpoint), origin_host(&f.endpoint), "{what}");
        assert_eq!(
            c.health.as_ref().map(|h| h.port),
            f.health.as_ref().map(|h| h.port),
            "{what}"
        );
        assert!(c.fingerprint.path.starts_with('/'), "{what}");
        assert!(
            c.fingerprint
                .json_pointers
                .iter()
                .all(|p| p.starts_with('/')),
            "{what}"
        );
        assert!(
            !c.fingerprint.json_pointers.is_empty() || !c.fingerprint.body_contains.is_empty(),
            "{what}: a fingerprint must look at the answer"
        );
        if i > 0 {
            assert!(c.why.starts_with("alternative: "), "{what}: {}", c.why);
        }
        assert!(
            !id.candidates[..i].iter().any(|o| o.endpoint == c.endpoint
                && format!("{:?}", o.fingerprint) == format!("{:?}", c.fingerprint)),
            "{what}: candidate {i} repeats an earlier one"
        );
    }
    // Only thin matches, published on proof alone, are required, and they rank below any
    // sibling (a headless twin's included) that stands without proof.
    if id.required {
        assert_eq!(f.rank, identify::THIN_RANK, "{what}");
        assert!(f.rank < rank::HEADLESS, "{what}");
    }
}

struct Case {
    svc: Service,
    detector: &'static str,
    toolset: &'static str,
    endpoints: Vec<String>,
    fingerprint: (
        &'static str,
        &'static [&'static str],
        &'static [&'static str],
    ),
    required: bool,
}

fn schemes(host: &str, bases: &[&str]) -> Vec<String> {
    bases
        .iter()
        .flat_map(|b| [format!("http://{host}{b}"), format!("https://{host}{b}")])
        .collect()
}

const BUILDINFO: (&str, &[&str], &[&str]) = ("/api/v1/status/buildinfo", &["/data/version"], &[]);

fn cases() -> Vec<Case> {
    let c = |ns: &str, name: &str, labels: &[(&str, &str)]| {
        labels
            .iter()
            .fold(service(ns, name), |s, (k, v)| s.with_label(k, v))
    };
    let serving_cert = "service.beta.openshift.io/serving-cert-secret-name";
    vec![
        Case {
            svc: c(
                "monitoring",
                "kps-prometheus",
                &[
                    ("app", "kube-prometheus-stack-prometheus"),
                    ("release", "kps"),
                    ("app.kubernetes.io/part-of", "kube-prometheus-stack"),
                ],
            )
            .with_port(Some("http-web"), 9090),
            detector: "prometheus",
            toolset: "prometheus/metrics",
            endpoints: schemes(
                "kps-prometheus.monitoring.svc.cluster.local:9090",
                &["", "/prometheus"],
            ),
            fingerprint: BUILDINFO,
            required: false,
        },
        Case {
            svc: c("metrics", "prom", &[("component", "prometheus")]).with_port(Some("web"), 9090),
            detector: "prometheus",
            toolset: "prometheus/metrics",
            endpoints: schemes("prom.metrics.svc.cluster.local:9090", &["", "/prometheus"]),
            fingerprint: BUILDINFO,
            required: true,
        },
        Case {
            svc: c(
                "mimir",
                "mimir-gateway",
                &[
                    ("app.kubernetes.io/name", "mimir"),
                    ("app.kubernetes.io/instance", "mimir"),
                    ("app.kubernetes.io/component", "gateway"),
                ],
            )
            .with_port(Some("http"), 80),
            detector: "prometheus",
            toolset: "prometheus/metrics",
            endpoints: schemes("mimir-gateway.mimir.svc.cluster.local:80", &["/prometheus"]),
            fingerprint: BUILDINFO,
            required: false,
        },
        Case {
            svc: c(
                "openshift-monitoring",
                "thanos-querier",
                &[("app.kubernetes.io/name", "thanos-query")],
            )
            .with_annotation(serving_cert, "thanos-querier-tls")
            .with_port(Some("web"), 9091),
            detector: "thanos",
            toolset: "prometheus/metrics",
            endpoints: vec![
                "https://thanos-querier.openshift-monitoring.svc.cluster.local:9091".into(),
                "http://thanos-querier.openshift-monitoring.svc.cluster.local:9091".into(),
            ],
            fingerprint: BUILDINFO,
            required: false,
        },
        Case {
            svc: c(
                "vm",
                "vmselect-vmc",
                &[
                    ("app.kubernetes.io/name", "vmselect"),
                    ("app.kubernetes.io/instance", "vmc"),
                ],
            )
            .with_port(Some("http"), 8481),
            detector: "victoriametrics",
            toolset: "prometheus/metrics",
            endpoints: schemes(
                "vmselect-vmc.vm.svc.cluster.local:8481",
                &["/select/0/prometheus"],
            ),
            fingerprint: BUILDINFO,
            required: false,
        },
        Case {
            svc: c(
                "prom",
                "prometheus-alertmanager",
                &[
                    ("app.kubernetes.io/name", "alertmanager"),
                    ("app.kubernetes.io/instance", "prometheus"),
                ],
            )
            .with_port(Some("http"), 9093),
            detector: "alertmanager",
            toolset: "alertmanager/alerts",
            endpoints: schemes(
                "prometheus-alertmanager.prom.svc.cluster.local:9093",
                &["", "/alertmanager"],
            ),
            fingerprint: (
                "/api/v2/status",
                &["/versionInfo/version", "/cluster/status"],
                &[],
            ),
            required: false,
        },
        Case {
            svc: c(
                "tracing",
                "jaeger",
                &[
                    ("app.kubernetes.io/name", "jaeger"),
                    ("app.kubernetes.io/instance", "jaeger"),
                    ("app.kubernetes.io/component", "all-in-one"),
                ],
            )
            .with_port(Some("http-zipkin"), 9411)
            .with_port(Some("http-query"), 16686),
            detector: "jaeger",
            toolset: "jaeger/traces",
            endpoints: schemes(
                "jaeger.tracing.svc.cluster.local:16686",
                &["", "/jaeger", "/jaeger/ui"],
            ),
            fingerprint: ("/api/services", &["/data", "/total"], &[]),
            required: false,
        },
        Case {
            svc: c("tracing", "jaeger-query", &[("app", "jaeger")]).with_port_full(
                Some("jaeger-query"),
                80,
                Some("16686"),
                "TCP",
            ),
            detector: "jaeger",
            toolset: "jaeger/traces",
            endpoints: schemes(
                "jaeger-query.tracing.svc.cluster.local:80",
                &["", "/jaeger", "/jaeger/ui"],
            ),
            fingerprint: ("/api/services", &["/data", "/total"], &[]),
            required: true,
        },
        Case {
            svc: c(
                "monitoring",
                "grafana",
                &[
                    ("app.kubernetes.io/name", "grafana"),
                    ("app.kubernetes.io/instance", "grafana"),
                ],
            )
            .with_port(Some("service"), 80),
            detector: "grafana",
            toolset: "grafana/dashboards",
            endpoints: schemes("grafana.monitoring.svc.cluster.local:80", &["", "/grafana"]),
            fingerprint: ("/api/health", &["/database"], &[]),
            required: false,
        },
        Case {
            svc: c(
                "elastic",
                "quickstart-es-http",
                &[
                    ("common.k8s.elastic.co/type", "elasticsearch"),
                    ("elasticsearch.k8s.elastic.co/cluster-name", "quickstart"),
                ],
            )
            .with_port(Some("https"), 9200),
            detector: "elasticsearch",
            toolset: "elasticsearch/data",
            endpoints: vec![
                "https://quickstart-es-http.elastic.svc.cluster.local:9200".into(),
                "http://quickstart-es-http.elastic.svc.cluster.local:9200".into(),
            ],
            fingerprint: ("/", &["/version/number"], &["You Know, for Search"]),
            required: false,
        },
        Case {
            svc: c(
                "search",
                "opensearch-cluster-master",
                &[
                    ("app.kubernetes.io/name", "opensearch"),
                    ("app.kubernetes.io/instance", "opensearch"),
                ],
            )
            .with_port(Some("http"), 9200),
            detector: "opensearch",
            toolset: "elasticsearch/cluster",
            endpoints: vec![
                "https://opensearch-cluster-master.search.svc.cluster.local:9200".into(),
                "http://opensearch-cluster-master.search.svc.cluster.local:9200".into(),
            ],
            fingerprint: (
                "/",
                &["/version/number", "/version/distribution"],
                &["\"opensearch\""],
            ),
            required: false,
        },
    ]
}

#[test]
fn candidates_in_order_with_the_intended_fingerprints() {
    for case in cases() {
        let all = identified(&case.svc);
        let Some((_, f, id)) = all
            .iter()
            .find(|(d, f, _)| *d == case.detector && f.toolset == case.toolset)
        else {
            panic!("{} did not match {}", case.detector, case.svc.name)
        };
        check(case.detector, &case.svc, f, id);
        let endpoints: Vec<&str> = id.candidates.iter().map(|c| c.endpoint.as_str()).collect();
        assert_eq!(endpoints, case.endpoints, "{}", case.svc.name);
        let (path, pointers, contains) = case.fingerprint;
        for c in &id.candidates {
            assert_eq!(c.fingerprint.path, path, "{}", case.svc.name);
            assert_eq!(c.fingerprint.json_pointers, pointers, "{}", case.svc.name);
            assert_eq!(c.fingerprint.body_contains, contains, "{}", case.svc.name);
            assert!(
                c.fingerprint.statuses.is_empty(),
                "{}: 200 only",
                case.svc.name
            );
        }
        assert_eq!(id.required, case.required, "{}", case.svc.name);
    }
}

#[test]
fn every_fragment_of_every_detector_identifies_consistently() {
    let mut services: Vec<Service> = cases().into_iter().map(|c| c.svc).collect();
    // Detectors without `identify`: their fragments stand as they are.
    services.push(
        service("monitoring", "grafana")
            .with_label("app.kubernetes.io/name", "grafana")
            .with_label("app.kubernetes.io/instance", "grafana")
            .with_port(Some("http-web"), 80),
    );
    services.push(
        service("loki", "loki")
            .with_label("app.kubernetes.io/name", "loki")
            .with_label("app.kubernetes.io/instance", "loki")
            .with_label("app.kubernetes.io/component", "single-binary")
            .with_port(Some("http-metrics"), 3100),
    );
    let mut seen = Vec::new();
    for svc in &services {
        for (detector, f, id) in identified(svc) {
            check(detector, svc, &f, &id);
            if !id.candidates.is_empty() {
                seen.push(detector);
            }
            if matches!(detector, "loki" | "tempo" | "victorialogs" | "custom") {
                assert!(id.candidates.is_empty() && !id.required, "{detector}");
            }
        }
    }
    seen.sort_unstable();
    seen.dedup();
    assert_eq!(
        seen,
        [
            "alertmanager",
            "elasticsearch",
            "grafana",
            "jaeger",
            "opensearch",
            "prometheus",
            "thanos",
            "victoriametrics"
        ]
    );
}
