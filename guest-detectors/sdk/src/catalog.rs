//! Toolset definitions shared by the label-based detectors and the annotation-driven
//! `custom` detector: custom toolsets for backends HolmesGPT has no built-in toolset for,
//! the Grafana and search-engine configs, and chart naming conventions.

use crate::fragment::tool;
use crate::{FragmentBuilder, Tool};

/// Toolset name of the Alertmanager custom toolset.
pub const ALERTMANAGER_TOOLSET: &str = "alertmanager/alerts";
/// Toolset name of the Jaeger custom toolset.
pub const JAEGER_TOOLSET: &str = "jaeger/traces";
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
/// The `api_key` config value of the Grafana toolset: an environment variable reference.
pub const GRAFANA_API_KEY: &str = "{{ env.GRAFANA_API_KEY }}";
/// kube-prometheus-stack and the charts it grew from: the `app` prefix of their Services.
pub const KPS_APP_PREFIXES: &[&str] = &[
    "kube-prometheus-stack-",
    "prometheus-operator-",
    "rancher-monitoring-",
];
/// Prerequisites of every curl-based toolset.
pub const CURL_PREREQUISITES: &[&str] = &["curl --version"];

/// Attaches the Alertmanager toolset (tools against the builder's endpoint URL).
pub fn with_alertmanager(b: FragmentBuilder<'_>) -> FragmentBuilder<'_> {
    let tools = alertmanager_tools(b.url());
    b.custom(
        "Alertmanager: firing alerts, alert groups, silences and cluster status, through its HTTP API v2.",
        CURL_PREREQUISITES,
        tools,
    )
}

/// Sets the Grafana toolset's config: `api_url` (the builder's endpoint URL) and
/// `api_key` ([`GRAFANA_API_KEY`]).
pub fn with_grafana(b: FragmentBuilder<'_>) -> FragmentBuilder<'_> {
    b.config_url("api_url")
        .config_str("api_key", GRAFANA_API_KEY)
}

/// Attaches the Jaeger toolset (tools against the builder's endpoint URL).
pub fn with_jaeger(b: FragmentBuilder<'_>) -> FragmentBuilder<'_> {
    let tools = jaeger_tools(b.url());
    b.custom(
        "Jaeger: traced services, their operations, trace search and single traces, through the Jaeger query HTTP API.",
        CURL_PREREQUISITES,
        tools,
    )
}

/// Alertmanager v2 API tools against base URL `url`.
pub fn alertmanager_tools(url: &str) -> Vec<Tool> {
    vec![
        tool(
            "alertmanager_active_alerts",
            "List the alerts that are currently firing and neither silenced nor inhibited, with labels, annotations, start time and receivers (JSON).",
            &format!(
                "curl -sS --max-time 30 '{url}/api/v2/alerts?active=true&silenced=false&inhibited=false'"
            ),
        ),
        tool(
            "alertmanager_find_alerts",
            "List alerts (active, silenced and inhibited) matching one label matcher, e.g. alertname=\"KubePodCrashLooping\" or namespace=\"prod\".",
            &format!(
                "curl -sS --max-time 30 --get '{url}/api/v2/alerts' --data-urlencode 'filter={{{{ matcher }}}}'"
            ),
        ),
        tool(
            "alertmanager_alert_groups",
            "List active alerts grouped the way Alertmanager routes them (by receiver and grouping labels).",
            &format!("curl -sS --max-time 30 '{url}/api/v2/alerts/groups?active=true'"),
        ),
        tool(
            "alertmanager_silences",
            "List silences (active, pending and expired) with their matchers, creator, comment and time window.",
            &format!("curl -sS --max-time 30 '{url}/api/v2/silences'"),
        ),
        tool(
            "alertmanager_status",
            "Alertmanager status: version, uptime, cluster peers and the loaded configuration.",
            &format!("curl -sS --max-time 30 '{url}/api/v2/status'"),
        ),
    ]
}

/// Jaeger query API tools against base URL `url`.
pub fn jaeger_tools(url: &str) -> Vec<Tool> {
    vec![
        tool(
            "jaeger_list_services",
            "List the service names that have reported traces to Jaeger.",
            &format!("curl -sS --max-time 30 '{url}/api/services'"),
        ),
        tool(
            "jaeger_list_operations",
            "List the operations (span names) recorded for one service.",
            &format!("curl -sS --max-time 30 '{url}/api/services/{{{{ service }}}}/operations'"),
        ),
        tool(
            "jaeger_find_traces",
            "Find recent traces of a service: lookback_minutes is how far back to search (e.g. 60), limit caps the number of traces (e.g. 20). The query server ignores the UI's lookback parameter, so the command also sends start (now minus lookback, in microseconds).",
            &format!(
                "curl -sS --max-time 60 --get '{url}/api/traces' --data-urlencode 'service={{{{ service }}}}' --data-urlencode 'limit={{{{ limit }}}}' --data-urlencode 'lookback={{{{ lookback_minutes }}}}m' --data-urlencode \"start=$(( ($(date +%s) - 60 * {{{{ lookback_minutes }}}}) * 1000000 ))\""
            ),
        ),
        tool(
            "jaeger_get_trace",
            "Fetch one trace with all its spans by trace ID (hex).",
            &format!("curl -sS --max-time 30 '{url}/api/traces/{{{{ trace_id }}}}'"),
        ),
    ]
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_jinja_style_and_urls_embedded() {
        let t = jaeger_tools("http://j:16686");
        let find = t
            .iter()
            .find(|t| t.name == "jaeger_find_traces")
            .expect("find");
        assert!(find.command.contains("'http://j:16686/api/traces'"));
        for p in [
            "{{ service }}",
            "lookback={{ lookback_minutes }}m",
            "{{ limit }}",
            "start=$((",
        ] {
            assert!(find.command.contains(p), "{p}");
        }
        let trace = t
            .iter()
            .find(|t| t.name == "jaeger_get_trace")
            .expect("trace");
        assert!(trace.command.ends_with("/api/traces/{{ trace_id }}'"));
        let a = alertmanager_tools("http://a:9093");
        assert!(a.iter().any(|t| t.command.contains("/api/v2/silences")));
        assert!(a.iter().any(|t| t.command.contains("/api/v2/status")));
        assert!(a.iter().any(|t| t.command.contains("filter={{ matcher }}")));
    }
}

/// Basic-auth credentials for a search engine: the user name and the environment
/// variable that holds the password (written as `{{ env.VAR }}`, never as a value).
#[derive(Clone, Copy, Debug)]
pub struct EnvAuth<'a> {
    /// User name, e.g. `elastic`.
    pub username: &'a str,
    /// Environment variable holding the password, e.g. `ELASTICSEARCH_PASSWORD`.
    pub password_env: &'a str,
}

/// The HolmesGPT toolsets an Elasticsearch-compatible search engine gets: both
/// `elasticsearch/data` and `elasticsearch/cluster`, with the same config:
/// `api_url` (the endpoint), and with `auth` `username`/`password`, and with
/// `insecure_tls` `verify_ssl: false` (self-signed certificates of ECK, the elastic chart
/// and OpenSearch's demo security).
pub fn search_engine_fragments<'a>(
    make: impl Fn(&str) -> FragmentBuilder<'a>,
    auth: Option<EnvAuth<'_>>,
    insecure_tls: bool,
) -> Vec<crate::Fragment> {
    ["elasticsearch/data", "elasticsearch/cluster"]
        .iter()
        .map(|toolset| {
            let mut b = make(toolset).config_url("api_url");
            if let Some(a) = auth {
                b = b
                    .config_str("username", a.username)
                    .config_str("password", &format!("{{{{ env.{} }}}}", a.password_env));
            }
            if insecure_tls {
                b = b.config_value("verify_ssl", serde_json::Value::Bool(false));
            }
            b.build()
        })
        .collect()
}
