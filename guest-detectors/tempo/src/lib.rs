//! Tempo detector: `grafana/tempo` (direct to Tempo, `api_url`).
//!
//! Recognised by `app.kubernetes.io/name` (else `app` or `k8s-app`, as hand-written
//! manifests label) (table [`NAMES`]): `tempo` (grafana `tempo`
//! and `tempo-distributed` charts, tempo-operator's TempoStack; early tempo-distributed
//! charts, before 2022, label `tempo-distributed` and serve the API on `http` 3100),
//! `grafana-tempo`
//! (Bitnami's chart: query-frontend on port `http` 3200) and `tempo-monolithic`
//! (tempo-operator's TempoMonolithic: component `tempo`, port `http` 3200; its `jaegerui`
//! Service is Jaeger's business); the component comes from `app.kubernetes.io/component`. The single-binary
//! chart's Service has no component and exposes the HTTP API on `tempo-prom-metrics`
//! (3100) next to many receiver ports.
//!
//! Rank: gateway [`rank::GATEWAY`] > query-frontend [`rank::FRONTEND`] > single binary
//! [`rank::PRIMARY`] > querier [`rank::SECONDARY`] > headless twins / `*-discovery`
//! [`rank::HEADLESS`]. Instance `<namespace>/<release>`, fallback the Service name without
//! its role suffix.
//!
//! Health: `GET /ready` → 200 (gateway: `GET /` → 200).
//! Declined: distributor, ingester (write path), compactor, metrics-generator,
//! memcached, the gossip ring, and the Tempo operator.
//! Environment variables referenced: none.

use detector_sdk::catalog::TEMPO;
use detector_sdk::prelude::*;

/// The Tempo detector.
pub struct Tempo;

const PORT_NAMES: &[&str] = &["http-metrics", "tempo-prom-metrics", "http", "tempo"];
const PORT_NUMBERS: &[u16] = &[3100, 3200, 80];

/// `app.kubernetes.io/name` values of Tempo Services.
const NAMES: &[&str] = &[
    "tempo",
    "tempo-distributed",
    "grafana-tempo",
    "tempo-monolithic",
];

impl Detector for Tempo {
    fn emits() -> Emits {
        emits(&[TEMPO.toolset], false)
    }

    fn metadata() -> DetectorInfo {
        metadata("tempo", env!("CARGO_PKG_VERSION"), &["tempo"])
    }

    fn detect(svc: &Service) -> Detection {
        // `app.kubernetes.io/name`, else `app` / `k8s-app` (hand-written manifests).
        match svc.app_name() {
            Some(n) if NAMES.contains(&n) => {}
            Some("tempo-operator") => return declined("Tempo operator (an operator)"),
            _ => return Detection::Unrelated,
        }
        if svc.name.ends_with("-gossip-ring")
            || svc.has_label("app.kubernetes.io/part-of", "memberlist") && svc.component().is_none()
        {
            return declined("Tempo gossip ring (memberlist)");
        }
        let (base, health) = match svc.component() {
            None | Some("single-binary") => (rank::PRIMARY, "/ready"),
            // TempoMonolithic's Tempo Service.
            Some("tempo") if svc.has_label("app.kubernetes.io/name", "tempo-monolithic") => {
                (rank::PRIMARY, "/ready")
            }
            Some("jaegerui") => return Detection::Unrelated,
            Some("gateway") => (rank::GATEWAY, "/"),
            Some("query-frontend") => (rank::FRONTEND, "/ready"),
            Some("querier") => (rank::SECONDARY, "/ready"),
            Some(c @ ("distributor" | "ingester")) => {
                return declined(format!("Tempo {c} (the write path)"));
            }
            Some(c) if c.starts_with("memcached") => return declined("Tempo memcached (a cache)"),
            Some(c) => return declined(format!("Tempo {c} (not the query path)")),
        };
        let Some(port) = svc.pick_port(PORT_NAMES, PORT_NUMBERS) else {
            return declined(
                "Tempo Service without an HTTP port (http-metrics, tempo-prom-metrics, 3100)",
            );
        };
        let secondary = svc.headless || svc.name.ends_with("-discovery");
        let fallback = svc.name_base(&[
            "-gateway",
            "-query-frontend-discovery",
            "-query-frontend",
            "-querier",
            "-headless",
        ]);
        matched(
            FragmentBuilder::new(svc, TEMPO.toolset, "tempo")
                .instance(svc.release_instance(fallback))
                .rank(if secondary { rank::HEADLESS } else { base })
                .port_endpoint(port, "")
                .health(health, &[200])
                .config_url(TEMPO.key)
                .build(),
        )
    }
}

detector_sdk::export_detector!(Tempo);

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use detector_sdk::service::build::{ServiceBuild, chart_service, one, service};

    fn tempo(name: &str, component: Option<&str>) -> Service {
        chart_service("tracing", name, "tempo", "tempo", component)
    }

    #[test]
    fn single_binary_picks_the_http_port_among_receivers() {
        let s = tempo("tempo", None)
            .with_port_full(
                Some("tempo-jaeger-thrift-compact"),
                6831,
                Some("6831"),
                "UDP",
            )
            .with_port(Some("tempo-prom-metrics"), 3100)
            .with_port(Some("grpc-tempo-otlp"), 4317)
            .with_port(Some("tempo-zipkin"), 9411);
        let f = one(Tempo::detect(&s));
        assert_eq!(f.toolset, "grafana/tempo");
        assert_eq!(
            f.config,
            r#"{"api_url":"http://tempo.tracing.svc.cluster.local:3100"}"#
        );
        assert_eq!(f.health.expect("health").path, "/ready");
    }

    #[test]
    fn distributed_ranks() {
        let qf = one(Tempo::detect(
            &tempo("tempo-query-frontend", Some("query-frontend"))
                .with_port(Some("http-metrics"), 3100),
        ));
        let disc = one(Tempo::detect(
            &tempo("tempo-query-frontend-discovery", Some("query-frontend"))
                .with_port(Some("http-metrics"), 3100)
                .headless(),
        ));
        let q = one(Tempo::detect(
            &tempo("tempo-querier", Some("querier")).with_port(Some("http-metrics"), 3100),
        ));
        assert_eq!(qf.instance, "tracing/tempo");
        assert_eq!(disc.instance, qf.instance);
        assert_eq!(q.instance, qf.instance);
        assert!(qf.rank > q.rank && q.rank > disc.rank);
    }

    #[test]
    fn declines() {
        for (n, c) in [
            ("tempo-distributor", Some("distributor")),
            ("tempo-ingester", Some("ingester")),
            ("tempo-compactor", Some("compactor")),
            ("tempo-metrics-generator", Some("metrics-generator")),
            ("tempo-memcached", Some("memcached")),
            ("tempo-gossip-ring", None),
        ] {
            let s = tempo(n, c).with_port(Some("http-metrics"), 3100);
            assert!(matches!(Tempo::detect(&s), Detection::Declined(_)), "{n}");
        }
        let by_name = service("tracing", "tempo").with_port(Some("http"), 3100);
        assert!(matches!(Tempo::detect(&by_name), Detection::Unrelated));
    }

    #[test]
    fn bitnami_chart_and_tempo_monolithic() {
        let qf = chart_service(
            "tempo",
            "tempo-grafana-tempo-query-frontend",
            "grafana-tempo",
            "tempo",
            Some("query-frontend"),
        )
        .with_port(Some("http"), 3200)
        .with_port(Some("grpc"), 9095);
        let f = one(Tempo::detect(&qf));
        assert!(
            f.endpoint
                .ends_with("tempo-grafana-tempo-query-frontend.tempo.svc.cluster.local:3200")
        );
        let vulture = chart_service("tempo", "v", "grafana-tempo", "tempo", Some("vulture"))
            .with_port(Some("http"), 3200);
        assert!(matches!(Tempo::detect(&vulture), Detection::Declined(_)));

        let mono = |component: &str| {
            chart_service(
                "observability",
                "tempo-sample",
                "tempo-monolithic",
                "sample",
                Some(component),
            )
            .with_label("app.kubernetes.io/managed-by", "tempo-operator")
        };
        let f = one(Tempo::detect(
            &mono("tempo")
                .with_port(Some("http"), 3200)
                .with_port(Some("otlp-grpc"), 4317),
        ));
        assert_eq!(
            f.endpoint,
            "http://tempo-sample.observability.svc.cluster.local:3200"
        );
        assert_eq!(f.instance, "observability/sample");
        assert!(matches!(
            Tempo::detect(&mono("jaegerui").with_port(Some("jaeger-ui"), 16686)),
            Detection::Unrelated
        ));
    }
}
