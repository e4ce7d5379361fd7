//! Toolset names and configs shared by the label-based detectors and the annotation-driven
//! `custom` detector, and chart naming conventions.
//!
//! Detectors say which backend a Service is and where it answers; nothing more. The host
//! builds the Alertmanager and Jaeger toolsets itself (HolmesGPT `type: http`) and attaches
//! credentials (`{{ env.GRAFANA_API_KEY }}`, search-engine passwords) only for namespaces
//! the admin trusts: a fragment carrying tools, commands, templates or credentials is
//! refused by the host's validation gate.

use crate::FragmentBuilder;

/// Toolset name of the Alertmanager toolset (built by the host).
pub const ALERTMANAGER_TOOLSET: &str = "alertmanager/alerts";
/// Toolset name of the Jaeger toolset (built by the host).
pub const JAEGER_TOOLSET: &str = "jaeger/traces";
/// Toolset name of a Service's generic HTTP API (annotation type `custom`; built by the
/// host as a `type: http` toolset, GET only, with the host's own text).
pub const SERVICE_HTTP_TOOLSET: &str = "custom/http";
/// A HolmesGPT built-in toolset whose config is the endpoint URL under one key.
#[derive(Clone, Copy, Debug)]
pub struct UrlToolset {
    /// HolmesGPT toolset name, e.g. `prometheus/metrics`.
    pub toolset: &'static str,
    /// Config key of the endpoint URL, e.g. `prometheus_url`.
    pub key: &'static str,
}

impl UrlToolset {
    const fn new(toolset: &'static str, key: &'static str) -> Self {
        Self { toolset, key }
    }
}

/// `prometheus/metrics` with `prometheus_url` (Prometheus, Thanos, VictoriaMetrics).
pub const PROMETHEUS: UrlToolset = UrlToolset::new("prometheus/metrics", "prometheus_url");
/// `grafana/loki` with `api_url`.
pub const LOKI: UrlToolset = UrlToolset::new("grafana/loki", "api_url");
/// `grafana/tempo` with `api_url`.
pub const TEMPO: UrlToolset = UrlToolset::new("grafana/tempo", "api_url");
/// `victorialogs` with `api_url`.
pub const VICTORIALOGS: UrlToolset = UrlToolset::new("victorialogs", "api_url");

/// Toolset name of HolmesGPT's built-in Grafana toolset.
pub const GRAFANA_TOOLSET: &str = "grafana/dashboards";
/// kube-prometheus-stack and the charts it grew from: the `app` prefix of their Services.
pub const KPS_APP_PREFIXES: &[&str] = &[
    "kube-prometheus-stack-",
    "prometheus-operator-",
    "rancher-monitoring-",
];
/// Sets the Grafana toolset's config: `api_url` (the builder's endpoint URL). The host adds
/// `api_key` for trusted namespaces.
pub fn with_grafana(b: FragmentBuilder<'_>) -> FragmentBuilder<'_> {
    b.config_url("api_url")
}

/// The HolmesGPT toolsets an Elasticsearch-compatible search engine gets: both
/// `elasticsearch/data` and `elasticsearch/cluster`, with the same config: `api_url` (the
/// endpoint), and with `insecure_tls` `verify_ssl: false` (self-signed certificates of ECK,
/// the elastic chart and OpenSearch's demo security). Over https the host adds basic auth
/// (`elastic`/`ELASTICSEARCH_PASSWORD`, `admin`/`OPENSEARCH_PASSWORD`) for trusted namespaces.
pub fn search_engine_fragments<'a>(
    make: impl Fn(&str) -> FragmentBuilder<'a>,
    insecure_tls: bool,
) -> Vec<crate::Fragment> {
    ["elasticsearch/data", "elasticsearch/cluster"]
        .iter()
        .map(|toolset| {
            let mut b = make(toolset).config_url("api_url");
            if insecure_tls {
                b = b.config_value("verify_ssl", serde_json::Value::Bool(false));
            }
            b.build()
        })
        .collect()
}
