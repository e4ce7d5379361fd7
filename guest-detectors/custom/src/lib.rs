//! Custom detector: toolsets declared by an administrator with annotations on a Service.
//!
//! | annotation | meaning |
//! |---|---|
//! | `kubernaut.io/toolset: "true"` | required; any other value → declined (opt-out shown by `--explain`) |
//! | `kubernaut.io/toolset-type` | required: `prometheus`, `thanos`, `victoriametrics`, `grafana`, `loki`, `tempo`, `elasticsearch`, `opensearch`, `victorialogs`, `alertmanager`, `jaeger`, or `custom` (HolmesGPT toolset names such as `prometheus/metrics` are accepted too) |
//! | `kubernaut.io/toolset-name` | instance name: the instance key becomes `<namespace>/<name>` |
//! | `kubernaut.io/toolset-endpoint` | full `http(s)://host[:port][/path]` URL replacing the computed one |
//! | `kubernaut.io/toolset-health-path` | health probe path (starting with `/`) replacing the type's default |
//!
//! Each type maps to the HolmesGPT toolset and config key the label-based detector of that
//! backend uses (e.g. `prometheus` → `prometheus/metrics` + `prometheus_url`; `loki` →
//! `grafana/loki` + `api_url`; `elasticsearch`/`opensearch` → `elasticsearch/data` and
//! `elasticsearch/cluster`; `alertmanager`/`jaeger` → the custom `alertmanager/alerts` /
//! `jaeger/traces` toolsets; `custom` → the host's generic `custom/http` toolset: a HolmesGPT
//! `type: http` toolset, read-only GET requests under the Service's endpoint, described by
//! the host's own text, since nothing an annotation says may reach the model). An unknown type, an invalid endpoint (not http/https, no
//! host, bad port, embedded credentials, characters unsafe in a shell command) or an invalid
//! health path is declined with a reason naming the annotation.
//!
//! Endpoint: without `toolset-endpoint`, `http(s)://<svc>.<ns>.svc.<domain>:<port>` where
//! the port is chosen by the type's port names, then numbers, then the only TCP port.
//! With it, the URL is used as given and probed where it points (the URL's host and port,
//! the type's health path prefixed with the URL path), like every other endpoint. The
//! host's validation gate decides whether the URL is acceptable at all (in-cluster: this
//! Service or another Service of its namespace, unless the admin widens it).
//!
//! Rank and relation to label-based matches: every fragment has [`rank::CUSTOM`], the same
//! as a label-based detector's main Service: an annotation gives no advantage (whoever
//! owns a Service can annotate it). The instance key is `<namespace>/<toolset-name>`
//! when named, else `<namespace>/<release>` (`app.kubernetes.io/instance`/`release`), else
//! `<namespace>/<service name>` — the same default key the label-based detectors use for a
//! chart Service. Naming the instance (`toolset-name`) creates a separate instance.
//!
//! Credentials (`GRAFANA_API_KEY` for grafana, `ELASTICSEARCH_PASSWORD` /
//! `OPENSEARCH_PASSWORD` for https search engines) are attached by the host, only for
//! namespaces the admin trusts.

use detector_sdk::catalog::{self, UrlToolset, search_engine_fragments};
use detector_sdk::prelude::*;

/// The custom (annotation-driven) detector.
pub struct Custom;

/// Annotation keys.
pub const ANN_ENABLED: &str = "kubernaut.io/toolset";
/// Backend type annotation.
pub const ANN_TYPE: &str = "kubernaut.io/toolset-type";
/// Instance name annotation.
pub const ANN_NAME: &str = "kubernaut.io/toolset-name";
/// Endpoint override annotation.
pub const ANN_ENDPOINT: &str = "kubernaut.io/toolset-endpoint";
/// Health path override annotation.
pub const ANN_HEALTH: &str = "kubernaut.io/toolset-health-path";

#[derive(Clone, Copy)]
enum Shape {
    /// One built-in toolset with the URL under its key.
    Url(UrlToolset),
    Grafana,
    Search,
    Alertmanager,
    Jaeger,
    /// The Service's own HTTP API (`custom/http`).
    Http,
}

struct Kind {
    backend: &'static str,
    shape: Shape,
    port_names: &'static [&'static str],
    port_numbers: &'static [u16],
    health: &'static str,
    accepted: &'static [u16],
}

const PROM: Shape = Shape::Url(catalog::PROMETHEUS);

const KINDS: &[(&[&str], Kind)] = &[
    (
        &["prometheus", "prometheus/metrics"],
        Kind {
            backend: "prometheus",
            shape: PROM,
            port_names: &["http-web", "web", "http"],
            port_numbers: &[9090],
            health: "/-/ready",
            accepted: &[200],
        },
    ),
    (
        &["thanos"],
        Kind {
            backend: "thanos",
            shape: PROM,
            port_names: &["http"],
            port_numbers: &[9090, 10902],
            health: "/-/ready",
            accepted: &[200],
        },
    ),
    (
        &["victoriametrics", "victoria-metrics"],
        Kind {
            backend: "victoriametrics",
            shape: PROM,
            port_names: &["http"],
            port_numbers: &[8428, 8429, 8481],
            health: "/health",
            accepted: &[200],
        },
    ),
    (
        &["grafana", "grafana/dashboards"],
        Kind {
            backend: "grafana",
            shape: Shape::Grafana,
            port_names: &["service", "http", "grafana"],
            port_numbers: &[80, 3000],
            health: "/api/health",
            accepted: &[200],
        },
    ),
    (
        &["loki", "grafana/loki"],
        Kind {
            backend: "loki",
            shape: Shape::Url(catalog::LOKI),
            port_names: &["http-metrics", "http"],
            port_numbers: &[3100, 80],
            health: "/ready",
            accepted: &[200],
        },
    ),
    (
        &["tempo", "grafana/tempo"],
        Kind {
            backend: "tempo",
            shape: Shape::Url(catalog::TEMPO),
            port_names: &["http-metrics", "tempo-prom-metrics", "http"],
            port_numbers: &[3200, 3100, 80],
            health: "/ready",
            accepted: &[200],
        },
    ),
    (
        &[
            "elasticsearch",
            "elasticsearch/data",
            "elasticsearch/cluster",
        ],
        Kind {
            backend: "elasticsearch",
            shape: Shape::Search,
            port_names: &["https", "http"],
            port_numbers: &[9200],
            health: "/_cluster/health",
            accepted: &[200, 401],
        },
    ),
    (
        &["opensearch"],
        Kind {
            backend: "opensearch",
            shape: Shape::Search,
            port_names: &["https", "http"],
            port_numbers: &[9200],
            health: "/_cluster/health",
            accepted: &[200, 401],
        },
    ),
    (
        &["victorialogs", "victoria-logs"],
        Kind {
            backend: "victorialogs",
            shape: Shape::Url(catalog::VICTORIALOGS),
            port_names: &["http"],
            port_numbers: &[9428],
            health: "/health",
            accepted: &[200],
        },
    ),
    (
        &["alertmanager", "alertmanager/alerts"],
        Kind {
            backend: "alertmanager",
            shape: Shape::Alertmanager,
            port_names: &["http-web", "web", "http"],
            port_numbers: &[9093],
            health: "/-/ready",
            accepted: &[200],
        },
    ),
    (
        &["jaeger", "jaeger/traces"],
        Kind {
            backend: "jaeger",
            shape: Shape::Jaeger,
            port_names: &["http-query", "query", "http"],
            port_numbers: &[16686, 80],
            health: "/",
            accepted: &[200],
        },
    ),
    (
        &["custom", "http", "custom/http"],
        Kind {
            backend: "http",
            shape: Shape::Http,
            port_names: &["http", "https", "web", "api"],
            port_numbers: &[80, 443, 8080],
            health: "/",
            // Any answer short of a server error shows the service is up: its root may
            // redirect, ask for credentials or not exist.
            accepted: &[200, 204, 301, 302, 307, 308, 401, 403, 404],
        },
    ),
];

const KNOWN: &str = "prometheus, thanos, victoriametrics, grafana, loki, tempo, elasticsearch, opensearch, victorialogs, alertmanager, jaeger, custom";

impl Detector for Custom {
    fn emits() -> Emits {
        emits(
            &[
                "prometheus/metrics",
                "grafana/dashboards",
                "grafana/loki",
                "grafana/tempo",
                "elasticsearch/data",
                "elasticsearch/cluster",
                "victorialogs",
                "alertmanager/alerts",
                "jaeger/traces",
                catalog::SERVICE_HTTP_TOOLSET,
            ],
            false,
        )
    }

    fn metadata() -> DetectorInfo {
        metadata(
            "custom",
            env!("CARGO_PKG_VERSION"),
            &[
                "prometheus",
                "thanos",
                "victoriametrics",
                "grafana",
                "loki",
                "tempo",
                "elasticsearch",
                "opensearch",
                "victorialogs",
                "alertmanager",
                "jaeger",
                "http",
            ],
        )
    }

    fn detect(svc: &Service) -> Detection {
        let Some(enabled) = svc.annotation(ANN_ENABLED) else {
            return Detection::Unrelated;
        };
        if !enabled.trim().eq_ignore_ascii_case("true") {
            return declined(format!(
                "annotation {ANN_ENABLED} is {enabled:?}, not \"true\""
            ));
        }
        let Some(ty) = svc
            .annotation(ANN_TYPE)
            .map(str::trim)
            .filter(|t| !t.is_empty())
        else {
            return declined(format!(
                "annotation {ANN_TYPE} is missing (known types: {KNOWN})"
            ));
        };
        let lower = ty.to_ascii_lowercase();
        let Some((_, kind)) = KINDS
            .iter()
            .find(|(names, _)| names.contains(&lower.as_str()))
        else {
            return declined(format!(
                "annotation {ANN_TYPE} has unknown type {ty:?} (known types: {KNOWN})"
            ));
        };
        let instance = match svc.annotation(ANN_NAME).map(str::trim) {
            Some(n) if !n.is_empty() => {
                if !n
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
                {
                    return declined(format!(
                        "annotation {ANN_NAME} {n:?} must use only letters, digits, '-', '_' and '.'"
                    ));
                }
                svc.instance_key(n)
            }
            _ => svc.release_instance(&svc.name),
        };
        let health_override = match svc.annotation(ANN_HEALTH).map(str::trim) {
            Some(p) if p.starts_with('/') && safe(p) => Some(p),
            Some(p) => {
                return declined(format!(
                    "annotation {ANN_HEALTH} {p:?} must be a path starting with '/' without spaces or quotes"
                ));
            }
            None => None,
        };

        // Where the toolset points and how to probe it.
        let target = match svc.annotation(ANN_ENDPOINT).map(str::trim) {
            Some(raw) => match parse_url(raw) {
                Ok(u) => {
                    let path = u.path.trim_end_matches('/');
                    Target {
                        url: Some(raw.trim_end_matches('/').to_string()),
                        scheme: u.scheme,
                        port: u.port,
                        health_path: health_override
                            .map_or_else(|| join(path, kind.health), str::to_string),
                    }
                }
                Err(why) => {
                    return declined(format!("annotation {ANN_ENDPOINT} is invalid: {why}"));
                }
            },
            None => {
                let Some(port) = svc
                    .pick_port(kind.port_names, kind.port_numbers)
                    .or_else(|| svc.single_tcp_port())
                else {
                    return declined(format!(
                        "no port for type {ty:?}: expected a port named {:?} or numbered {:?}, or set {ANN_ENDPOINT}",
                        kind.port_names, kind.port_numbers
                    ));
                };
                Target {
                    url: None,
                    scheme: Service::port_scheme(port, Scheme::Http),
                    port: port.port,
                    health_path: health_override.unwrap_or(kind.health).to_string(),
                }
            }
        };

        let make = |toolset: &str| {
            let b = FragmentBuilder::new(svc, toolset, kind.backend)
                .instance(instance.clone())
                .rank(rank::CUSTOM);
            let b = match &target.url {
                Some(u) => b.endpoint_url(u.clone(), target.scheme, target.port),
                None => b.endpoint(target.scheme, target.port, ""),
            };
            b.health(&target.health_path, kind.accepted)
        };
        let https = matches!(target.scheme, Scheme::Https);
        match kind.shape {
            Shape::Url(t) => matched(make(t.toolset).config_url(t.key).build()),
            Shape::Grafana => {
                matched(catalog::with_grafana(make(catalog::GRAFANA_TOOLSET)).build())
            }
            Shape::Search => Detection::Matched(search_engine_fragments(make, https)),
            Shape::Alertmanager => matched(make(catalog::ALERTMANAGER_TOOLSET).build()),
            Shape::Jaeger => matched(make(catalog::JAEGER_TOOLSET).build()),
            Shape::Http => matched(make(catalog::SERVICE_HTTP_TOOLSET).build()),
        }
    }
}

struct Target {
    url: Option<String>,
    scheme: Scheme,
    port: u16,
    health_path: String,
}

struct Url<'a> {
    scheme: Scheme,
    port: u16,
    path: &'a str,
}

/// Characters allowed in URLs and paths: they end up inside single-quoted shell commands
/// and Jinja templates, so quotes, braces, backslashes, backticks and spaces are refused.
fn safe(s: &str) -> bool {
    s.chars()
        .all(|c| c.is_ascii_alphanumeric() || "-._~:/?#[]@&+,;=%".contains(c))
}

fn parse_url(raw: &str) -> Result<Url<'_>, String> {
    let (scheme, rest) = if let Some(r) = raw.strip_prefix("http://") {
        (Scheme::Http, r)
    } else if let Some(r) = raw.strip_prefix("https://") {
        (Scheme::Https, r)
    } else {
        return Err("must start with http:// or https://".to_string());
    };
    if !safe(raw) {
        return Err(
            "contains characters that are not allowed (spaces, quotes, braces, backslashes...)"
                .to_string(),
        );
    }
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    if authority.contains('@') {
        return Err(
            "must not carry credentials (user:password@); use environment variables".to_string(),
        );
    }
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => match p.parse::<u16>() {
            Ok(n) if n > 0 => (h, n),
            _ => return Err(format!("port {p:?} is not a number from 1 to 65535")),
        },
        _ => (
            authority,
            if matches!(scheme, Scheme::Https) {
                443
            } else {
                80
            },
        ),
    };
    if host.is_empty() {
        return Err("has no host".to_string());
    }
    Ok(Url { scheme, port, path })
}

fn join(base: &str, path: &str) -> String {
    if base.is_empty() {
        path.to_string()
    } else {
        format!("{base}{path}")
    }
}

detector_sdk::export_detector!(Custom);

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use detector_sdk::serde_json::{Value, from_str, json};
    use detector_sdk::service::build::{ServiceBuild, one, service};

    fn annotated(ty: &str) -> Service {
        service("apps", "metrics")
            .with_annotation(ANN_ENABLED, "true")
            .with_annotation(ANN_TYPE, ty)
    }

    fn reason(d: Detection) -> String {
        match d {
            Detection::Declined(r) => r,
            other => panic!("expected declined, got {other:?}"),
        }
    }

    #[test]
    fn prometheus_from_ports() {
        let f = one(Custom::detect(
            &annotated("prometheus").with_port(Some("web"), 9090),
        ));
        assert_eq!(f.toolset, "prometheus/metrics");
        assert_eq!(f.rank, rank::CUSTOM);
        assert_eq!(f.instance, "apps/metrics");
        assert_eq!(
            f.config,
            r#"{"prometheus_url":"http://metrics.apps.svc.cluster.local:9090"}"#
        );
        assert_eq!(f.health.expect("health").path, "/-/ready");
    }

    #[test]
    fn same_instance_as_chart_service_unless_named() {
        let s = annotated("loki")
            .with_label("app.kubernetes.io/instance", "loki")
            .with_port(Some("http-metrics"), 3100);
        assert_eq!(one(Custom::detect(&s)).instance, "apps/loki");
        let named = s.with_annotation(ANN_NAME, "team-logs");
        let f = one(Custom::detect(&named));
        assert_eq!(f.instance, "apps/team-logs");
        assert_eq!(f.toolset, "grafana/loki");
    }

    #[test]
    fn endpoint_override_and_health() {
        let s = annotated("prometheus")
            .with_port(Some("http"), 8080)
            .with_annotation(ANN_ENDPOINT, "http://metrics.apps.svc:8080/prom/")
            .with_annotation(ANN_NAME, "edge");
        let f = one(Custom::detect(&s));
        assert_eq!(f.endpoint, "http://metrics.apps.svc:8080/prom");
        let h = f.health.expect("probe own Service");
        assert_eq!((h.port, h.path.as_str()), (8080, "/prom/-/ready"));

        let ext = annotated("grafana").with_annotation(ANN_ENDPOINT, "https://grafana.example.com");
        let f = one(Custom::detect(&ext));
        // Probed where it points, like every endpoint (the host's gate decides whether a
        // foreign host is acceptable at all); no credentials from the detector.
        let h = f.health.expect("every endpoint is probed");
        assert_eq!((h.port, h.path.as_str()), (443, "/api/health"));
        let c: Value = from_str(&f.config).expect("json");
        assert_eq!(c, json!({"api_url": "https://grafana.example.com"}));

        let hp = annotated("loki")
            .with_port(Some("http"), 3100)
            .with_annotation(ANN_HEALTH, "/loki/ready");
        assert_eq!(
            one(Custom::detect(&hp)).health.expect("health").path,
            "/loki/ready"
        );
    }

    #[test]
    fn custom_toolsets_and_search_engines() {
        let a = one(Custom::detect(
            &annotated("alertmanager").with_port(Some("web"), 9093),
        ));
        assert_eq!(a.toolset, "alertmanager/alerts");
        assert!(
            a.custom.is_none(),
            "the host builds the toolset, not the detector"
        );
        let j = one(Custom::detect(
            &annotated("jaeger").with_port(Some("http-query"), 16686),
        ));
        assert_eq!(j.toolset, "jaeger/traces");
        let Detection::Matched(es) =
            Custom::detect(&annotated("opensearch").with_port(Some("https"), 9200))
        else {
            panic!()
        };
        assert_eq!(es.len(), 2);
        assert!(
            !es[0].config.contains("password"),
            "credentials come from the host"
        );
        assert!(es[0].config.contains(r#""verify_ssl":false"#));
    }

    #[test]
    fn custom_type_is_the_generic_http_toolset_on_the_service() {
        // The seed's example (tests/fixtures/synthetic/annotations.yaml, shop/legacy).
        let f = one(Custom::detect(
            &annotated("custom")
                .with_annotation(ANN_NAME, "my-service")
                .with_port(Some("http"), 80),
        ));
        assert_eq!(f.toolset, catalog::SERVICE_HTTP_TOOLSET);
        assert_eq!(f.backend, "http");
        assert_eq!(f.instance, "apps/my-service");
        assert_eq!(f.endpoint, "http://metrics.apps.svc.cluster.local:80");
        let c: Value = from_str(&f.config).unwrap();
        assert_eq!(c, json!({}), "no config: the host builds the toolset");
        let h = f.health.unwrap();
        assert!(h.accepted_statuses.contains(&404) && !h.accepted_statuses.contains(&500));
    }

    #[test]
    fn declines_name_the_annotation() {
        assert!(
            reason(Custom::detect(&annotated("graphite").with_port(None, 80))).contains(ANN_TYPE)
        );
        assert!(reason(Custom::detect(&annotated("graphite"))).contains("\"graphite\""));
        let no_type = service("apps", "x").with_annotation(ANN_ENABLED, "true");
        assert!(reason(Custom::detect(&no_type)).contains(ANN_TYPE));
        for bad in [
            "ftp://x:21",
            "http://",
            "http://host:99999",
            "http://user:secret@host:9090",
            "http://host:9090/'; rm -rf /",
            "http://host/{{ env.X }}",
        ] {
            let s = annotated("prometheus").with_annotation(ANN_ENDPOINT, bad);
            let r = reason(Custom::detect(&s));
            assert!(r.contains(ANN_ENDPOINT), "{bad}: {r}");
            assert!(!r.contains("secret"), "no echo of credentials: {r}");
        }
        let hp = annotated("loki")
            .with_port(None, 3100)
            .with_annotation(ANN_HEALTH, "ready");
        assert!(reason(Custom::detect(&hp)).contains(ANN_HEALTH));
        let off = annotated("loki").with_annotation(ANN_ENABLED, "false");
        assert!(matches!(Custom::detect(&off), Detection::Declined(_)));
        let no_port = annotated("loki");
        assert!(reason(Custom::detect(&no_port)).contains(ANN_ENDPOINT));
        assert!(matches!(
            Custom::detect(&service("apps", "x").with_port(None, 80)),
            Detection::Unrelated
        ));
    }
}
