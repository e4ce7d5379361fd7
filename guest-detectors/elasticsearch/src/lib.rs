//! Elasticsearch detector: HolmesGPT `elasticsearch/data` and `elasticsearch/cluster`
//! (one fragment each, same config).
//!
//! Recognised:
//! - ECK (`common.k8s.elastic.co/type=elasticsearch`): `<cluster>-es-http`
//!   [`rank::PRIMARY`], `<cluster>-es-internal-http` [`rank::SECONDARY`], per-nodeSet
//!   headless Services [`rank::HEADLESS`]; instance `<namespace>/<cluster-name>`
//!   (`elasticsearch.k8s.elastic.co/cluster-name`). The HTTP port is named `https` when
//!   ECK's self-signed TLS is on (the default), `http` when disabled.
//! - the elastic `elasticsearch` chart (`chart=elasticsearch`, `app=<cluster>-<nodeGroup>`,
//!   port `http` 9200): `<uname>` [`rank::PRIMARY`], `<uname>-headless` [`rank::HEADLESS`];
//!   instance `<namespace>/<release>`. Chart 8.x enables TLS with a self-signed
//!   certificate and the `elastic` user by default, so https is assumed for it.
//! - Open Distro for Elasticsearch's chart (`app=opendistro-es`): the `role=client`
//!   Service over https (the security plugin's demo TLS, whatever the port's name says),
//!   the data nodes' Service below it; master (transport) and Kibana declined.
//! - OpenShift Logging's elasticsearch-operator: the `<cluster>` Service (label
//!   `cluster-name`, selecting `es-node-client=true` pods, port `elasticsearch` 9200) is
//!   elasticsearch-proxy over https; instance `<namespace>/<cluster>`. Its `-cluster`
//!   (transport) and `-metrics` Services are not the search API.
//! - the deprecated helm/charts `stable/elasticsearch` (also in `stable/elastic-stack`):
//!   `app=elasticsearch`, `chart=elasticsearch-<version>`, the `-client` Service on port
//!   `http` 9200, plain http (elasticsearch-oss without TLS).
//! - Bitnami and other charts labelled `app.kubernetes.io/name=elasticsearch` with a 9200
//!   port, and hand-written manifests and addons labelled `app`/`k8s-app`
//!   `elasticsearch` (Kubernetes' fluentd-elasticsearch addon: `elasticsearch-logging`) or
//!   only `component=elasticsearch` (kubernetes/examples' Elasticsearch cluster);
//!   scheme from the port name (`https*` → https, else http).
//!
//! Config: `api_url`; on https also `verify_ssl: false`. Over https the host adds
//! `username: elastic`, `password: "{{ env.ELASTICSEARCH_PASSWORD }}"` for namespaces the
//! admin trusts with credentials (the detector never writes credentials).
//!
//! Environment variables the host references:
//! - `ELASTICSEARCH_PASSWORD`: the `elastic` user's password (ECK: Secret
//!   `<cluster>-es-elastic-user`, key `elastic`; elastic chart: Secret
//!   `<uname>-credentials`, key `password`).
//!
//! Health: `GET /_cluster/health` → 200, or 401 (alive, authentication required).
//! Declined: ECK transport Services, Kibana / APM / Enterprise Search / Beats / Agent /
//! Logstash / Maps resources, the ECK operator and its webhook, Kibana from the elastic
//! chart, and elasticsearch exporters.
//!
//! Identification (contract 1.1 `identify`): the fragment rebuilt for http and https on its
//! port unless `appProtocol` settles it (the elastic chart defaults to https but may run
//! with security off; a Bitnami `http` port may carry TLS), so `verify_ssl` follows the
//! scheme; recognised by the root document ([`root`]).

use detector_sdk::catalog::search_engine_fragments;
use detector_sdk::identify;
use detector_sdk::prelude::*;

/// The Elasticsearch detector.
pub struct Elasticsearch;

const PORT_NAMES: &[&str] = &["https", "http", "tcp-rest-api", "rest"];

impl Detector for Elasticsearch {
    fn emits() -> Emits {
        emits(&["elasticsearch/data", "elasticsearch/cluster"], false)
    }

    fn metadata() -> DetectorInfo {
        metadata(
            "elasticsearch",
            env!("CARGO_PKG_VERSION"),
            &["elasticsearch"],
        )
    }

    fn identify(svc: &Service, f: &Fragment) -> Identification {
        let rebuild = |scheme, port| fragments(svc, &f.instance, f.rank, port, scheme);
        identify::rebuilt(svc, f, rebuild, &root(), false)
    }

    fn detect(svc: &Service) -> Detection {
        // ECK
        if let Some(kind) = svc.label("common.k8s.elastic.co/type") {
            if kind != "elasticsearch" {
                return declined(format!("ECK {kind} resource (not Elasticsearch)"));
            }
            let cluster = svc
                .label("elasticsearch.k8s.elastic.co/cluster-name")
                .unwrap_or_else(|| svc.name_base(&["-es-http", "-es-internal-http"]));
            let rank = if svc.headless {
                rank::HEADLESS
            } else if svc.name.ends_with("-es-internal-http") {
                rank::SECONDARY
            } else {
                rank::PRIMARY
            };
            return build(svc, svc.instance_key(cluster), rank, Scheme::Http);
        }
        if svc.has_label("control-plane", "elastic-operator")
            || matches!(svc.app_name(), Some("elastic-operator" | "eck-operator"))
        {
            return declined("ECK operator / elastic-webhook-server (an operator)");
        }
        // Open Distro for Elasticsearch's chart (`app=opendistro-es`, a `role` per node
        // group): the client Service serves the REST API, over https by default (the
        // image's entrypoint installs the security plugin's demo TLS), whatever the port's
        // name says; the data nodes' Service too, below it; master and Kibana are not it.
        if svc.has_label("app", "opendistro-es") {
            return match svc.label("role") {
                Some("client") => build(svc, svc.chart_instance(), rank::PRIMARY, Scheme::Https),
                Some("data") => build(svc, svc.chart_instance(), rank::HEADLESS, Scheme::Https),
                Some("kibana") => declined("Open Distro Kibana (a UI)"),
                _ => declined("Open Distro node Service without the REST API (transport)"),
            };
        }
        // OpenShift Logging's elasticsearch-operator: `cluster-name=<es>` on every Service;
        // the REST Service selects the client nodes (`es-node-client=true`, seen through the
        // selector) on port `elasticsearch` 9200, served by elasticsearch-proxy over https.
        if let Some(cluster) = svc.label("cluster-name")
            && svc.has_label("es-node-client", "true")
        {
            return build(svc, svc.instance_key(cluster), rank::PRIMARY, Scheme::Https);
        }
        // elastic/helm-charts (`chart: elasticsearch`, `app: <cluster>-<nodeGroup>`); the
        // deprecated helm/charts `stable/elasticsearch` (`chart: elasticsearch-<version>`,
        // `app: elasticsearch`, component client/master/data: http, below) is not it.
        if let Some(chart) = svc.label("chart")
            && (chart == "elasticsearch" || chart.starts_with("elasticsearch-"))
            && svc.label("app").is_some_and(|a| a != "elasticsearch")
        {
            let instance = svc.chart_instance();
            return build(
                svc,
                instance,
                rank::unless_headless(svc, rank::PRIMARY),
                Scheme::Https,
            );
        }
        if let Some(chart) = svc.label("chart")
            && (chart == "kibana" || chart.starts_with("kibana-"))
        {
            return declined("Kibana (a UI)");
        }
        // kubernetes/examples' hand-written cluster: `component=elasticsearch` and a role
        // (`client` serves the REST API on 9200; `master` is transport only).
        let examples = svc.app_name().is_none() && svc.component() == Some("elasticsearch");
        match svc.app_name().or(examples.then_some("elasticsearch")) {
            Some("elasticsearch" | "elasticsearch-logging") => {
                let instance =
                    svc.release_instance(svc.name_base(&["-headless", "-master-hl", "-data-hl"]));
                build(
                    svc,
                    instance,
                    rank::unless_headless(svc, rank::PRIMARY),
                    Scheme::Http,
                )
            }
            Some("kibana" | "kibana-logging") => declined("Kibana (a UI)"),
            Some(n) if n.contains("elasticsearch-exporter") => {
                declined("Elasticsearch exporter (a scrape target)")
            }
            _ => Detection::Unrelated,
        }
    }
}

fn build(svc: &Service, instance: String, rank: u32, default_scheme: Scheme) -> Detection {
    let Some(port) = svc.pick_port(PORT_NAMES, &[9200]) else {
        return declined(
            "Elasticsearch Service without an HTTP port (https, http, 9200): transport only",
        );
    };
    let named_http = port.name.as_deref() == Some("http");
    // The elastic chart names its port "http" even when TLS is on: keep its https default.
    let scheme = match Service::port_scheme(port, default_scheme) {
        Scheme::Http if named_http && matches!(default_scheme, Scheme::Https) => Scheme::Https,
        s => s,
    };
    Detection::Matched(fragments(svc, &instance, rank, port.port, scheme))
}

/// Both toolsets' fragments on `port` with `scheme` (on https with `verify_ssl: false`).
fn fragments(svc: &Service, instance: &str, rank: u32, port: u16, scheme: Scheme) -> Vec<Fragment> {
    search_engine_fragments(
        |toolset| {
            FragmentBuilder::new(svc, toolset, "elasticsearch")
                .instance(instance)
                .rank(rank)
                .endpoint(scheme, port, "")
                .health("/_cluster/health", &[200, 401])
        },
        matches!(scheme, Scheme::Https),
    )
}

/// Elasticsearch's root: `GET /` answers `{"name", "cluster_name", "cluster_uuid",
/// "version": {"number", "build_flavor", ...}, "tagline": "You Know, for Search"}`
/// (`MainResponse.toXContent`,
/// `modules/rest-root/src/main/java/org/elasticsearch/rest/root/MainResponse.java` of
/// elastic/elasticsearch@6b782ac950ade0f733b6a8845c39f152ebb96670). OpenSearch changed the
/// tagline (see the OpenSearch detector), so it does not pass as Elasticsearch. A secured
/// cluster answers 401 without credentials (the probe sends none) and keeps the
/// metadata's guess.
pub fn root() -> Fingerprint {
    identify::fingerprint("/", &["/version/number"], &["You Know, for Search"])
}

detector_sdk::export_detector!(Elasticsearch);

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use detector_sdk::serde_json::{Value, from_str, json};
    use detector_sdk::service::build::{ServiceBuild, fragments, service};

    fn two(d: Detection) -> Vec<Fragment> {
        fragments(d, 2)
    }

    fn eck(name: &str) -> Service {
        service("elastic", name)
            .with_label("common.k8s.elastic.co/type", "elasticsearch")
            .with_label("elasticsearch.k8s.elastic.co/cluster-name", "quickstart")
    }

    #[test]
    fn openshift_logging_elasticsearch_operator() {
        // openshift/elasticsearch-operator internal/elasticsearch/service.go (see
        // tests/fixtures/real/openshift-logging-elasticsearch.yaml); es-node-client comes
        // from the selector, as the host passes it.
        let rest = service("openshift-logging", "elasticsearch")
            .with_label("cluster-name", "elasticsearch")
            .with_label("es-node-client", "true")
            .with_port(Some("elasticsearch"), 9200);
        let Detection::Matched(f) = Elasticsearch::detect(&rest) else {
            panic!()
        };
        assert_eq!(
            f[0].endpoint,
            "https://elasticsearch.openshift-logging.svc.cluster.local:9200"
        );
        assert_eq!(f[0].instance, "openshift-logging/elasticsearch");
        let transport = service("openshift-logging", "elasticsearch-cluster")
            .with_label("cluster-name", "elasticsearch")
            .with_label("es-node-master", "true")
            .with_port(Some("elasticsearch"), 9300);
        assert!(!matches!(
            Elasticsearch::detect(&transport),
            Detection::Matched(_)
        ));
    }

    #[test]
    fn eck_http_is_https_with_env_password() {
        let f = two(Elasticsearch::detect(
            &eck("quickstart-es-http").with_port(Some("https"), 9200),
        ));
        assert_eq!(f[0].toolset, "elasticsearch/data");
        assert_eq!(f[1].toolset, "elasticsearch/cluster");
        assert_eq!(f[0].instance, "elastic/quickstart");
        assert_eq!(
            f[0].endpoint,
            "https://quickstart-es-http.elastic.svc.cluster.local:9200"
        );
        let c: Value = from_str(&f[0].config).expect("json");
        assert_eq!(
            c,
            json!({"api_url": "https://quickstart-es-http.elastic.svc.cluster.local:9200",
                   "verify_ssl": false})
        );
        assert_eq!(f[1].config, f[0].config);
        let h = f[0].health.as_ref().expect("health");
        assert_eq!(h.accepted_statuses, vec![200, 401]);
        assert!(matches!(h.scheme, Scheme::Https));
    }

    #[test]
    fn eck_siblings_and_declines() {
        let http = two(Elasticsearch::detect(
            &eck("quickstart-es-http").with_port(Some("https"), 9200),
        ));
        let internal = two(Elasticsearch::detect(
            &eck("quickstart-es-internal-http").with_port(Some("https"), 9200),
        ));
        let nodes = two(Elasticsearch::detect(
            &eck("quickstart-es-default")
                .with_port(Some("https"), 9200)
                .headless(),
        ));
        assert!(http[0].rank > internal[0].rank && internal[0].rank > nodes[0].rank);
        assert_eq!(nodes[0].instance, http[0].instance);
        let transport = eck("quickstart-es-transport")
            .with_port(Some("tls-transport"), 9300)
            .headless();
        assert!(matches!(
            Elasticsearch::detect(&transport),
            Detection::Declined(_)
        ));
        let kb = service("elastic", "quickstart-kb-http")
            .with_label("common.k8s.elastic.co/type", "kibana")
            .with_port(Some("https"), 5601);
        assert!(matches!(Elasticsearch::detect(&kb), Detection::Declined(_)));
        let op = service("elastic-system", "elastic-webhook-server")
            .with_label("control-plane", "elastic-operator");
        assert!(matches!(Elasticsearch::detect(&op), Detection::Declined(_)));
    }

    #[test]
    fn elastic_chart_defaults_to_https() {
        let s = service("logging", "elasticsearch-master")
            .with_label("app", "elasticsearch-master")
            .with_label("chart", "elasticsearch")
            .with_label("release", "elasticsearch")
            .with_port(Some("http"), 9200)
            .with_port(Some("transport"), 9300);
        let f = two(Elasticsearch::detect(&s));
        assert_eq!(
            f[0].endpoint,
            "https://elasticsearch-master.logging.svc.cluster.local:9200"
        );
        assert_eq!(f[0].instance, "logging/elasticsearch");
    }

    #[test]
    fn plain_http_has_no_credentials() {
        let s = service("search", "es")
            .with_label("app.kubernetes.io/name", "elasticsearch")
            .with_label("app.kubernetes.io/instance", "es")
            .with_port(Some("tcp-rest-api"), 9200);
        let f = two(Elasticsearch::detect(&s));
        let c: Value = from_str(&f[0].config).expect("json");
        assert_eq!(
            c,
            json!({"api_url": "http://es.search.svc.cluster.local:9200"})
        );
        let by_name = service("search", "elasticsearch").with_port(Some("http"), 9200);
        assert!(matches!(
            Elasticsearch::detect(&by_name),
            Detection::Unrelated
        ));
    }

    #[test]
    fn identify_rebuilds_each_scheme_with_its_own_tls_config() {
        let s = service("logging", "elasticsearch-master")
            .with_label("app", "elasticsearch-master")
            .with_label("chart", "elasticsearch")
            .with_label("release", "elasticsearch")
            .with_port(Some("http"), 9200);
        let f = two(Elasticsearch::detect(&s));
        for fragment in &f {
            let id = Elasticsearch::identify(&s, fragment);
            assert_eq!(id.candidates.len(), 2);
            let (https, http) = (&id.candidates[0], &id.candidates[1]);
            assert_eq!(
                https.endpoint,
                "https://elasticsearch-master.logging.svc.cluster.local:9200"
            );
            assert_eq!(https.config, fragment.config);
            assert_eq!(
                from_str::<Value>(&http.config).expect("json"),
                json!({"api_url": "http://elasticsearch-master.logging.svc.cluster.local:9200"})
            );
            assert_eq!(
                http.health.as_ref().map(|h| (h.scheme, h.path.as_str())),
                Some((Scheme::Http, "/_cluster/health"))
            );
            assert_eq!(http.fingerprint.path, "/");
            assert_eq!(http.fingerprint.json_pointers, vec!["/version/number"]);
            assert_eq!(http.fingerprint.body_contains, vec!["You Know, for Search"]);
            assert!(https.why.starts_with("metadata: https on port 9200"));
            assert_eq!(http.why, "alternative: http on port 9200");
            assert!(!id.required);
        }
        // Plain http first, https (verify_ssl off) second.
        let plain = service("search", "es")
            .with_label("app.kubernetes.io/name", "elasticsearch")
            .with_port(Some("tcp-rest-api"), 9200);
        let f = two(Elasticsearch::detect(&plain));
        let id = Elasticsearch::identify(&plain, &f[1]);
        assert_eq!(
            from_str::<Value>(&id.candidates[1].config).expect("json"),
            json!({"api_url": "https://es.search.svc.cluster.local:9200", "verify_ssl": false})
        );
    }
}
