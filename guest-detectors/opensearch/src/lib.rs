//! OpenSearch detector: HolmesGPT `elasticsearch/data` and `elasticsearch/cluster`
//! (HolmesGPT's Elasticsearch toolsets also serve OpenSearch), backend `opensearch`.
//!
//! Recognised: the `opensearch` chart (`app.kubernetes.io/name=opensearch`, component
//! `<cluster>-<nodeGroup>`, port `http` 9200; `-headless` twin [`rank::HEADLESS`]) and
//! opensearch-k8s-operator clusters (`opster.io/opensearch-cluster=<name>`, newer
//! operators `opensearch.org/opensearch-cluster=<name>`; node-pool headless Services
//! [`rank::HEADLESS`]). Rank [`rank::PRIMARY`]. Instance `<namespace>/<release>`
//! (operator: the cluster name). The chart enables the security plugin with demo
//! (self-signed) certificates by default, so https is used; on an operator Service the
//! port's `appProtocol` (`http` when the security plugin is off) decides. Bitnami's
//! `opensearch` chart (REST port named `tcp-rest-api`) has the security plugin off by
//! default (`security.enabled: false`), so http.
//!
//! Config: `api_url`, `verify_ssl: false`. The host adds `username: admin`,
//! `password: "{{ env.OPENSEARCH_PASSWORD }}"` over https for namespaces the admin trusts
//! with credentials.
//!
//! Environment variables the host references:
//! - `OPENSEARCH_PASSWORD`: the `admin` user's password (chart 2.12+:
//!   `OPENSEARCH_INITIAL_ADMIN_PASSWORD` given at install; operator: Secret
//!   `<cluster>-admin-password`).
//!
//! Health: `GET /_cluster/health` → 200, or 401 (alive, authentication required).
//! Declined: OpenSearch Dashboards (a UI), the operator, `*-discovery` Services.
//!
//! Identification (contract 1.1 `identify`): the fragment rebuilt for https and http on its
//! port unless `appProtocol` settles it (the chart's https default holds only while the
//! security plugin is on), so `verify_ssl` follows the scheme; recognised by the root
//! document's `version.distribution` ([`root`]).

use detector_sdk::catalog::search_engine_fragments;
use detector_sdk::identify;
use detector_sdk::prelude::*;

/// The OpenSearch detector.
pub struct OpenSearch;

/// Labels opensearch-k8s-operator puts on a cluster's Services (old and new API group).
const OPERATOR_CLUSTER_LABELS: [&str; 2] = [
    "opster.io/opensearch-cluster",
    "opensearch.org/opensearch-cluster",
];

impl Detector for OpenSearch {
    fn emits() -> Emits {
        emits(&["elasticsearch/data", "elasticsearch/cluster"], false)
    }

    fn metadata() -> DetectorInfo {
        metadata("opensearch", env!("CARGO_PKG_VERSION"), &["opensearch"])
    }

    fn identify(svc: &Service, f: &Fragment) -> Identification {
        let rebuild = |scheme, port| fragments(svc, &f.instance, f.rank, port, scheme);
        identify::rebuilt(svc, f, rebuild, &root(), false)
    }

    fn detect(svc: &Service) -> Detection {
        let instance = match (svc.app_name(), svc.first_label(&OPERATOR_CLUSTER_LABELS)) {
            (Some("opensearch-dashboards"), _) => return declined("OpenSearch Dashboards (a UI)"),
            (Some("opensearch-operator" | "opensearch-k8s-operator"), _) => {
                return declined("OpenSearch operator (an operator)");
            }
            (Some("opensearch"), _) => svc.chart_instance(),
            (_, Some(cluster)) => {
                if svc.name.ends_with("-dashboards") || svc.pick_port(&[], &[5601]).is_some() {
                    return declined("OpenSearch Dashboards (a UI)");
                }
                svc.instance_key(cluster)
            }
            _ => return Detection::Unrelated,
        };
        if svc.name.ends_with("-discovery") {
            return declined("OpenSearch discovery Service (transport)");
        }
        let Some(port) = svc.pick_port(&["https", "http", "http-rest"], &[9200]) else {
            return declined(
                "OpenSearch Service without an HTTP port (http, 9200): transport only",
            );
        };
        let rank = rank::unless_headless(svc, rank::PRIMARY);
        let operator = svc.app_name() != Some("opensearch");
        // Bitnami's chart (port `tcp-rest-api`) ships with the security plugin off.
        let bitnami = port.name.as_deref() == Some("tcp-rest-api");
        let scheme = match port.app_protocol.as_deref() {
            Some(p) if operator && p.eq_ignore_ascii_case("http") => Scheme::Http,
            Some(p) if p.eq_ignore_ascii_case("https") => Scheme::Https,
            _ if bitnami => Scheme::Http,
            _ => Scheme::Https,
        };
        Detection::Matched(fragments(svc, &instance, rank, port.port, scheme))
    }
}

/// Both toolsets' fragments on `port` with `scheme` (on https with `verify_ssl: false`).
fn fragments(svc: &Service, instance: &str, rank: u32, port: u16, scheme: Scheme) -> Vec<Fragment> {
    search_engine_fragments(
        |toolset| {
            FragmentBuilder::new(svc, toolset, "opensearch")
                .instance(instance)
                .rank(rank)
                .endpoint(scheme, port, "")
                .health("/_cluster/health", &[200, 401])
        },
        scheme == Scheme::Https,
    )
}

/// OpenSearch's root: `GET /` answers `{"name", "cluster_name", "cluster_uuid",
/// "version": {"distribution", "number", ...}, "tagline": "The OpenSearch Project: ..."}`
/// (`MainResponse.toXContent`, `server/src/main/java/org/opensearch/action/main/MainResponse.java`
/// of opensearch-project/OpenSearch@2928b75566d3d8dc0e97f9fd1883e9b18609d6db) with
/// `distribution` always `"opensearch"` (`Build`, `final String distribution =
/// "opensearch"`, `server/src/main/java/org/opensearch/Build.java` of
/// opensearch-project/OpenSearch@80a08d03597958729871c34aec611d5f1630de0a). Elasticsearch's
/// root has no `version.distribution`, so it does not pass as OpenSearch. With the
/// security plugin on, the root answers 401 without credentials (the probe sends none)
/// and the metadata's guess stands.
pub fn root() -> Fingerprint {
    identify::fingerprint(
        "/",
        &["/version/number", "/version/distribution"],
        &["\"opensearch\""],
    )
}

detector_sdk::export_detector!(OpenSearch);

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use detector_sdk::serde_json::{Value, from_str, json};
    use detector_sdk::service::build::{ServiceBuild, chart_service, service};

    fn chart(name: &str) -> Service {
        chart_service(
            "search",
            name,
            "opensearch",
            "opensearch",
            Some("opensearch-cluster-master"),
        )
        .with_port(Some("http"), 9200)
        .with_port(Some("transport"), 9300)
        .with_port(Some("metrics"), 9600)
    }

    #[test]
    fn chart_master_and_headless() {
        let Detection::Matched(f) = OpenSearch::detect(&chart("opensearch-cluster-master")) else {
            panic!()
        };
        assert_eq!(f.len(), 2);
        assert_eq!(f[0].backend, "opensearch");
        assert_eq!(f[0].instance, "search/opensearch");
        let c: Value = from_str(&f[0].config).expect("json");
        assert_eq!(
            c,
            json!({"api_url": "https://opensearch-cluster-master.search.svc.cluster.local:9200",
                   "verify_ssl": false})
        );
        let Detection::Matched(h) =
            OpenSearch::detect(&chart("opensearch-cluster-master-headless").headless())
        else {
            panic!()
        };
        assert_eq!(h[0].instance, f[0].instance);
        assert!(h[0].rank < f[0].rank);
    }

    #[test]
    fn negatives() {
        let d = service("search", "opensearch-dashboards")
            .with_label("app.kubernetes.io/name", "opensearch-dashboards")
            .with_port(Some("http"), 5601);
        assert!(matches!(OpenSearch::detect(&d), Detection::Declined(_)));
        let by_name = service("search", "opensearch").with_port(Some("http"), 9200);
        assert!(matches!(OpenSearch::detect(&by_name), Detection::Unrelated));
    }

    #[test]
    fn operator_cluster_new_label_app_protocol_decides_scheme() {
        let mut svc = service("opensearch", "opensearch")
            .with_label("opensearch.org/opensearch-cluster", "opensearch-sample")
            .with_port(Some("http"), 9200)
            .with_port(Some("transport"), 9300);
        let Detection::Matched(f) = OpenSearch::detect(&svc) else {
            panic!()
        };
        // No appProtocol: the security plugin's default, https.
        assert!(f[0].endpoint.starts_with("https://"));
        assert_eq!(f[0].instance, "opensearch/opensearch-sample");
        svc.ports[0].app_protocol = Some("http".into());
        let Detection::Matched(f) = OpenSearch::detect(&svc) else {
            panic!()
        };
        assert_eq!(f.len(), 2);
        assert_eq!(
            f[0].endpoint,
            "http://opensearch.opensearch.svc.cluster.local:9200"
        );
        let c: Value = from_str(&f[0].config).expect("json");
        assert_eq!(
            c,
            json!({"api_url": "http://opensearch.opensearch.svc.cluster.local:9200"})
        );
    }

    #[test]
    fn bitnami_chart_is_http_by_default() {
        // bitnami/charts bitnami/opensearch templates/coordinating/svc.yaml (see
        // tests/fixtures/real/bitnami-logging.yaml): port tcp-rest-api, security off.
        let svc = chart_service(
            "logging",
            "opensearch",
            "opensearch",
            "opensearch",
            Some("coordinating-only"),
        )
        .with_port(Some("tcp-rest-api"), 9200)
        .with_port(Some("tcp-transport"), 9300);
        let Detection::Matched(f) = OpenSearch::detect(&svc) else {
            panic!()
        };
        assert_eq!(
            f[0].endpoint,
            "http://opensearch.logging.svc.cluster.local:9200"
        );
        let mut tls = svc.clone();
        tls.ports[0].app_protocol = Some("https".into());
        let Detection::Matched(f) = OpenSearch::detect(&tls) else {
            panic!()
        };
        assert!(f[0].endpoint.starts_with("https://"));
    }

    #[test]
    fn identify_https_then_http_with_security_plugin_off() {
        let svc = chart("opensearch-cluster-master");
        let Detection::Matched(f) = OpenSearch::detect(&svc) else {
            panic!()
        };
        let id = OpenSearch::identify(&svc, &f[0]);
        let eps: Vec<&str> = id.candidates.iter().map(|c| c.endpoint.as_str()).collect();
        assert_eq!(
            eps,
            vec![
                "https://opensearch-cluster-master.search.svc.cluster.local:9200",
                "http://opensearch-cluster-master.search.svc.cluster.local:9200",
            ]
        );
        let http = &id.candidates[1];
        assert_eq!(
            from_str::<Value>(&http.config).expect("json"),
            json!({"api_url": "http://opensearch-cluster-master.search.svc.cluster.local:9200"})
        );
        assert_eq!(
            http.fingerprint.json_pointers,
            vec!["/version/number", "/version/distribution"]
        );
        assert_eq!(http.fingerprint.body_contains, vec!["\"opensearch\""]);
        assert!(!id.required);
        // appProtocol settles it: one candidate.
        let mut op = service("opensearch", "opensearch")
            .with_label("opensearch.org/opensearch-cluster", "opensearch-sample")
            .with_port(Some("http"), 9200);
        op.ports[0].app_protocol = Some("http".into());
        let Detection::Matched(f) = OpenSearch::detect(&op) else {
            panic!()
        };
        let id = OpenSearch::identify(&op, &f[1]);
        assert_eq!(id.candidates.len(), 1);
        assert!(id.candidates[0].why.contains("appProtocol http"));
    }
}
