//! Thanos detector: `prometheus/metrics` (backend `thanos`) for Thanos Query and Query
//! Frontend, which speak the Prometheus HTTP API.
//!
//! Recognised: the Bitnami `thanos` chart (`app.kubernetes.io/name=thanos` with
//! `app.kubernetes.io/component` `query` / `query-frontend`), kube-thanos
//! (`app.kubernetes.io/name=thanos-query` / `thanos-query-frontend`) and the older
//! `app=thanos-query` / `app=thanos-querier` / `app=thanos-query-frontend` labels.
//!
//! Rank: query-frontend [`rank::FRONTEND`] > query [`rank::PRIMARY`]; headless twins
//! [`rank::HEADLESS`]. Instance key: `<namespace>/<release>`; kube-thanos labels each
//! component with its own `app.kubernetes.io/instance`, so for `thanos-*` names the key is
//! `<namespace>/<app.kubernetes.io/part-of>` (fallback `thanos`), making query and
//! query-frontend siblings.
//!
//! Declined: store gateway, compactor, receive (write path), ruler, bucket web, sidecar,
//! and gRPC-only Services (e.g. Bitnami's `-query-grpc`).
//! Health: `GET /-/ready` → 200. Environment variables referenced: none.
//!
//! Identification (contract 1.1 `identify`): http and https on the query port unless
//! `appProtocol` settles it (OpenShift's `thanos-querier` serves TLS on a port named
//! `web`), recognised by Prometheus' build information ([`buildinfo`]).

use detector_sdk::catalog::PROMETHEUS;
use detector_sdk::identify;
use detector_sdk::prelude::*;

/// The Thanos detector.
pub struct Thanos;

const PORT_NAMES: &[&str] = &["http", "http-query", "web"];
const PORT_NUMBERS: &[u16] = &[9090, 10902];

#[derive(Clone, Copy, PartialEq)]
enum Role {
    Query,
    Frontend,
}

impl Detector for Thanos {
    fn emits() -> Emits {
        emits(&[PROMETHEUS.toolset], false)
    }

    fn metadata() -> DetectorInfo {
        metadata("thanos", env!("CARGO_PKG_VERSION"), &["thanos"])
    }

    fn identify(svc: &Service, f: &Fragment) -> Identification {
        let schemes = identify::schemes(identify::port_of(svc, f));
        identify::among(
            svc,
            f,
            &identify::places(schemes, &[""]),
            &buildinfo(),
            false,
        )
    }

    fn detect(svc: &Service) -> Detection {
        // Red Hat's observability-operator: a `ThanosQuerier` resource's Service
        // (`thanos-querier-<name>`, part-of `<name>`); its MonitoringStacks' sidecar
        // Services (`<stack>-thanos-sidecar`, gRPC) are not a query API.
        if svc.has_label("app.kubernetes.io/managed-by", "observability-operator") {
            let name = svc.label("app.kubernetes.io/name").unwrap_or("");
            if name.ends_with("-thanos-sidecar") {
                return declined("Thanos sidecar of a MonitoringStack (gRPC StoreAPI)");
            }
            if !name.starts_with("thanos-querier") {
                return Detection::Unrelated;
            }
            let Some(port) = svc.pick_port(PORT_NAMES, PORT_NUMBERS) else {
                return declined("ThanosQuerier Service without an HTTP port");
            };
            let owner = svc.label("app.kubernetes.io/part-of").unwrap_or(name);
            return matched(
                FragmentBuilder::new(svc, PROMETHEUS.toolset, "thanos")
                    .instance(svc.instance_key(owner))
                    .rank(rank::PRIMARY)
                    .port_endpoint(port, "")
                    .health("/-/ready", &[200])
                    .config_url(PROMETHEUS.key)
                    .build(),
            );
        }
        let name = svc.label("app.kubernetes.io/name");
        let (component, kube_thanos) = match name {
            Some("thanos") => (svc.component().unwrap_or(""), false),
            Some(n) if n.starts_with("thanos-") => (&n["thanos-".len()..], true),
            _ => match svc.label("app") {
                Some(a) if a.starts_with("thanos-") => (&a["thanos-".len()..], true),
                _ => return Detection::Unrelated,
            },
        };
        let role = match component {
            "query" | "querier" => Role::Query,
            "query-frontend" => Role::Frontend,
            "store" | "storegateway" | "store-gateway" => {
                return declined("Thanos store gateway (a storage component)");
            }
            "compactor" | "compact" => return declined("Thanos compactor (a storage component)"),
            "receive" | "receiver" | "receive-distributor" => {
                return declined("Thanos receive (a write path)");
            }
            "ruler" | "rule" => {
                return declined("Thanos ruler (evaluates rules; not the query path)");
            }
            "bucketweb" | "bucket-web" | "bucket" => return declined("Thanos bucket web UI"),
            "sidecar" | "discovery" => {
                return declined("Thanos sidecar (gRPC StoreAPI for Thanos Query)");
            }
            _ => return Detection::Unrelated,
        };
        let Some(port) = svc.pick_port(PORT_NAMES, PORT_NUMBERS) else {
            return declined("Thanos Query Service without an HTTP port (gRPC only)");
        };
        let instance = if let Some(owner) = svc.label("operator.thanos.io/owner") {
            // thanos-community/thanos-operator: the owning ThanosQuery resource.
            svc.instance_key(owner)
        } else if kube_thanos {
            svc.instance_key(svc.label("app.kubernetes.io/part-of").unwrap_or("thanos"))
        } else {
            svc.release_instance(svc.name_base(&["-query-frontend", "-query", "-headless"]))
        };
        let base = if role == Role::Frontend {
            rank::FRONTEND
        } else {
            rank::PRIMARY
        };
        matched(
            FragmentBuilder::new(svc, PROMETHEUS.toolset, "thanos")
                .instance(instance)
                .rank(rank::unless_headless(svc, base))
                .port_endpoint(port, "")
                .health("/-/ready", &[200])
                .config_url(PROMETHEUS.key)
                .build(),
        )
    }
}

/// Thanos Query serves Prometheus' `/api/v1/status/buildinfo` (`data.version`):
/// `BaseAPI.Register` adds `r.Get("/status/buildinfo", ...)` answering `ThanosVersion`
/// (`json:"version"`, ...), `pkg/api/api.go` lines 77-85 and 170-178, mounted on
/// `/api/v1` in `cmd/thanos/query.go` line 600, thanos-io/thanos@e103a81bd5943697394afcb4fb592b6ffa806c30.
/// Query Frontend passes every path it does not split to the downstream querier
/// (`pkg/queryfrontend/roundtrip.go`, `default: return r.next.RoundTrip(req)`, same commit).
pub fn buildinfo() -> Fingerprint {
    identify::fingerprint("/api/v1/status/buildinfo", &["/data/version"], &[])
}

detector_sdk::export_detector!(Thanos);

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use detector_sdk::service::build::{ServiceBuild, chart_service, one, service};

    fn bitnami(name: &str, component: &str) -> Service {
        chart_service("thanos", name, "thanos", "thanos", Some(component))
    }

    #[test]
    fn observability_operator_thanos_querier_and_sidecar() {
        // rhobs/observability-operator (tests/fixtures/real/observability-operator.yaml).
        let oo = |name: &str, part_of: &str| {
            service("project-d", name)
                .with_label("app.kubernetes.io/managed-by", "observability-operator")
                .with_label("app.kubernetes.io/name", name)
                .with_label("app.kubernetes.io/part-of", part_of)
        };
        let f = one(Thanos::detect(
            &oo("thanos-querier-metrics-api", "metrics-api").with_port(Some("http"), 10902),
        ));
        assert_eq!(f.instance, "project-d/metrics-api");
        assert_eq!(
            f.endpoint,
            "http://thanos-querier-metrics-api.project-d.svc.cluster.local:10902"
        );
        let sidecar = oo("api-monitoring-thanos-sidecar", "api-monitoring")
            .with_port(Some("grpc"), 10901)
            .headless();
        assert!(matches!(Thanos::detect(&sidecar), Detection::Declined(_)));
    }

    #[test]
    fn query_and_frontend_are_siblings() {
        let q = one(Thanos::detect(
            &bitnami("thanos-query", "query").with_port(Some("http"), 9090),
        ));
        let f = one(Thanos::detect(
            &bitnami("thanos-query-frontend", "query-frontend").with_port(Some("http"), 9090),
        ));
        assert_eq!(q.toolset, "prometheus/metrics");
        assert_eq!(q.backend, "thanos");
        assert_eq!(q.instance, "thanos/thanos");
        assert_eq!(f.instance, q.instance);
        assert!(f.rank > q.rank);
        assert_eq!(
            f.endpoint,
            "http://thanos-query-frontend.thanos.svc.cluster.local:9090"
        );
        assert!(f.config.contains("\"prometheus_url\""));
    }

    #[test]
    fn kube_thanos() {
        let q = service("monitoring", "thanos-query")
            .with_label("app.kubernetes.io/name", "thanos-query")
            .with_label("app.kubernetes.io/instance", "thanos-query")
            .with_label("app.kubernetes.io/part-of", "kube-thanos")
            .with_port(Some("grpc"), 10901)
            .with_port(Some("http"), 9090);
        let f = one(Thanos::detect(&q));
        assert_eq!(f.instance, "monitoring/kube-thanos");
        assert!(f.endpoint.ends_with(":9090"));
    }

    #[test]
    fn declines_storage_write_and_grpc() {
        for (n, c) in [
            ("thanos-storegateway", "storegateway"),
            ("thanos-compactor", "compactor"),
            ("thanos-receive", "receive"),
            ("thanos-ruler", "ruler"),
            ("thanos-bucketweb", "bucketweb"),
        ] {
            assert!(matches!(
                Thanos::detect(&bitnami(n, c).with_port(Some("http"), 10902)),
                Detection::Declined(_)
            ));
        }
        let grpc = bitnami("thanos-query-grpc", "query").with_port(Some("grpc"), 10901);
        assert!(matches!(Thanos::detect(&grpc), Detection::Declined(_)));
    }

    #[test]
    fn unrelated_names() {
        let s = service("monitoring", "thanos-query").with_port(Some("http"), 9090);
        assert!(matches!(Thanos::detect(&s), Detection::Unrelated));
    }

    #[test]
    fn identify_openshift_thanos_querier_https_first() {
        let svc = service("openshift-monitoring", "thanos-querier")
            .with_label("app.kubernetes.io/name", "thanos-query")
            .with_label("app.kubernetes.io/part-of", "openshift-monitoring")
            .with_annotation(
                "service.beta.openshift.io/serving-cert-secret-name",
                "thanos-querier-tls",
            )
            .with_port(Some("web"), 9091)
            .with_port(Some("tenancy"), 9092);
        let f = one(Thanos::detect(&svc));
        let id = Thanos::identify(&svc, &f);
        let eps: Vec<&str> = id.candidates.iter().map(|c| c.endpoint.as_str()).collect();
        assert_eq!(
            eps,
            vec![
                "https://thanos-querier.openshift-monitoring.svc.cluster.local:9091",
                "http://thanos-querier.openshift-monitoring.svc.cluster.local:9091",
            ]
        );
        assert!(!id.required);
        let fp = &id.candidates[1].fingerprint;
        assert_eq!(
            (fp.path.as_str(), fp.json_pointers.as_slice()),
            (
                "/api/v1/status/buildinfo",
                &["/data/version".to_string()][..]
            )
        );
        assert_eq!(
            id.candidates[1]
                .health
                .as_ref()
                .map(|h| (h.scheme, h.path.as_str())),
            Some((Scheme::Http, "/-/ready"))
        );
    }
}
