//! Candidate endpoints with fingerprints (contract 1.1 `identify`).
//!
//! When a Service's metadata cannot settle the scheme (a TLS proxy on a port named
//! `web`), the base path (Jaeger under `/jaeger`, Mimir under `/prometheus`) or even the
//! backend (only `app=jaeger`), a detector lists candidates, each a complete alternative
//! of the fragment, with a fingerprint: a request and what its answer must hold. The host
//! probes them and keeps the first, in this order, that proves itself.
//!
//! ```ignore
//! fn identify(svc: &Service, f: &Fragment) -> Identification {
//!     let fp = fingerprint("/api/v1/status/buildinfo", &["/data/version"], &[]);
//!     let schemes = identify::schemes(identify::port_of(svc, f));
//!     identify::among(svc, f, &identify::places(schemes, &["", "/prometheus"]), &fp, false)
//! }
//! ```
//!
//! What settles a scheme: only a port's `appProtocol` (`http`/`https`). Port names do
//! not: charts keep a port's name when TLS is switched on (kube-prometheus-stack's
//! `portName: http-web` with `prometheusSpec.web.tlsConfig`, the elastic chart's `http`
//! port with its default TLS), and an OpenShift serving certificate turns a `web` port
//! into TLS. So [`schemes`] offers both unless `appProtocol` names one; the metadata's
//! guess is still tried first.

use crate::{
    Candidate, Fingerprint, Fragment, Identification, Scheme, Service, ServiceExt, ServicePort,
};

/// Rank for a match on thin labels whose identification is `required`: below every
/// band of [`crate::rank`], a headless twin's included. Such a fragment may vanish when
/// probes run and it does not prove itself, and the host does not fall back to a sibling
/// of its installation then; so it must never displace a Service that stands without
/// proof, and wins only when it is alone.
pub const THIN_RANK: u32 = crate::rank::HEADLESS / 2;

/// Nothing to identify: the fragment stands as it is.
pub fn none() -> Identification {
    Identification {
        candidates: Vec::new(),
        required: false,
    }
}

/// A fingerprint: `path` (relative to the candidate's endpoint) must answer 200 with a
/// JSON body holding every pointer of `json_pointers` and a body containing every text of
/// `contains`.
pub fn fingerprint(path: &str, json_pointers: &[&str], contains: &[&str]) -> Fingerprint {
    Fingerprint {
        path: path.to_string(),
        statuses: Vec::new(),
        json_pointers: json_pointers.iter().map(|p| p.to_string()).collect(),
        body_contains: contains.iter().map(|c| c.to_string()).collect(),
    }
}

/// The parts of an endpoint URL this module needs.
struct Parsed<'a> {
    scheme: Scheme,
    port: u16,
    path: &'a str,
}

fn parse(endpoint: &str) -> Option<Parsed<'_>> {
    let (scheme, rest) = if let Some(rest) = endpoint.strip_prefix("https://") {
        (Scheme::Https, rest)
    } else {
        (Scheme::Http, endpoint.strip_prefix("http://")?)
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let port = match authority.rsplit_once(':') {
        Some((_, p)) => p.parse().ok()?,
        None if scheme == Scheme::Https => 443,
        None => 80,
    };
    Some(Parsed { scheme, port, path })
}

fn scheme_name(s: Scheme) -> &'static str {
    match s {
        Scheme::Http => "http",
        Scheme::Https => "https",
    }
}

/// `fragment` moved to `scheme` and base path `base` on the same Service port: the
/// endpoint, every occurrence of the old endpoint in the config, and the health probe
/// (scheme, and the path under the new base) follow. `None` if the fragment's endpoint
/// is not a URL this SDK made.
pub fn variant(
    svc: &Service,
    fragment: &Fragment,
    scheme: Scheme,
    base: &str,
    fingerprint: &Fingerprint,
    why: &str,
) -> Option<Candidate> {
    let old = parse(&fragment.endpoint)?;
    let endpoint = svc.url(scheme, old.port, base);
    let config = fragment.config.replace(&fragment.endpoint, &endpoint);
    let health = fragment.health.as_ref().map(|h| {
        let mut h = h.clone();
        h.scheme = scheme;
        // A health path outside the old base path (Mimir's `/ready` beside its
        // `/prometheus` API) is the server's own: it stays where it is.
        let Some(tail) = under(&h.path, old.path) else {
            return h;
        };
        let tail = if tail.starts_with('/') || tail.is_empty() {
            tail.to_string()
        } else {
            format!("/{tail}")
        };
        h.path = format!("{}{}", base.trim_end_matches('/'), tail);
        if h.path.is_empty() {
            h.path = "/".to_string();
        }
        h
    });
    Some(Candidate {
        endpoint,
        health,
        config,
        fingerprint: fingerprint.clone(),
        why: why.to_string(),
    })
}

/// What in the Service's metadata chose `scheme` for `port`, for a person.
fn hint(svc: &Service, port: Option<&ServicePort>, scheme: Scheme) -> String {
    let Some(port) = port else {
        return "the detector's default".to_string();
    };
    if let Some(p) = port.app_protocol.as_deref() {
        return format!("appProtocol {p}");
    }
    let named_http = port
        .name
        .as_deref()
        .is_some_and(|n| n == "http" || n.starts_with("http-"));
    if scheme == Scheme::Https && svc.serving_cert() && !named_http {
        return "the Service carries a serving-certificate annotation".to_string();
    }
    match port.name.as_deref() {
        Some(n)
            if Service::port_scheme(port, Scheme::Http)
                == Service::port_scheme(port, Scheme::Https) =>
        {
            format!("port name {n}")
        }
        Some(n) => format!("port name {n} names no scheme; the detector's default"),
        None => "the detector's default".to_string(),
    }
}

/// `path` relative to base path `base` ("" is the root, under which every path is):
/// `None` when `path` is not under `base`.
fn under<'a>(path: &'a str, base: &str) -> Option<&'a str> {
    if base.is_empty() || base == "/" {
        return Some(path);
    }
    let rest = path.strip_prefix(base.trim_end_matches('/'))?;
    (rest.is_empty() || rest.starts_with('/')).then_some(rest)
}

/// The Service port `fragment`'s endpoint is on (`None` for an endpoint this SDK did not
/// make, or a port the Service does not have).
pub fn port_of<'a>(svc: &'a Service, fragment: &Fragment) -> Option<&'a ServicePort> {
    let own = parse(&fragment.endpoint)?;
    svc.ports.iter().find(|p| p.port == own.port)
}

/// The schemes a port may speak, for identification: the one its `appProtocol` names
/// (`http`, `https`), else both (see the module documentation). [`among`] still tries the
/// fragment's own scheme first.
pub fn schemes(port: Option<&ServicePort>) -> &'static [Scheme] {
    match port.and_then(|p| p.app_protocol.as_deref()) {
        Some(p) if p.eq_ignore_ascii_case("https") => &[Scheme::Https],
        Some(p) if p.eq_ignore_ascii_case("http") => &[Scheme::Http],
        _ => &[Scheme::Http, Scheme::Https],
    }
}

/// Every `(scheme, base path)` pair, base paths outermost: all schemes at the first base
/// path, then at the next, ...
pub fn places<'a>(schemes: &[Scheme], bases: &[&'a str]) -> Vec<(Scheme, &'a str)> {
    bases
        .iter()
        .flat_map(|b| schemes.iter().map(move |s| (*s, *b)))
        .collect()
}

/// A candidate from a complete alternative fragment (e.g. the detector's own builder run
/// with another scheme, so that scheme-dependent config such as `verify_ssl` follows):
/// its endpoint, health probe and config.
pub fn from_fragment(alternative: &Fragment, fingerprint: &Fingerprint, why: &str) -> Candidate {
    Candidate {
        endpoint: alternative.endpoint.clone(),
        health: alternative.health.clone(),
        config: alternative.config.clone(),
        fingerprint: fingerprint.clone(),
        why: why.to_string(),
    }
}

/// Candidates for `fragment` at each scheme its port may speak ([`schemes`]) on its own
/// port and base path, its own scheme first. Each is the detector's own fragment with
/// `fragment`'s toolset among those `rebuild(scheme, port)` returns (so scheme-dependent
/// config such as `verify_ssl` follows); a scheme for which it returns none is skipped.
/// Reasons as [`among`] gives them. `required`: as for [`among`].
pub fn rebuilt(
    svc: &Service,
    fragment: &Fragment,
    rebuild: impl Fn(Scheme, u16) -> Vec<Fragment>,
    fingerprint: &Fingerprint,
    required: bool,
) -> Identification {
    let Some(own) = parse(&fragment.endpoint) else {
        return none();
    };
    let port = svc.ports.iter().find(|p| p.port == own.port);
    let mut ordered = vec![own.scheme];
    ordered.extend(schemes(port).iter().filter(|s| **s != own.scheme));
    let candidates = ordered
        .iter()
        .enumerate()
        .filter_map(|(i, scheme)| {
            let alternative = if i == 0 {
                fragment.clone()
            } else {
                rebuild(*scheme, own.port)
                    .into_iter()
                    .find(|f| f.toolset == fragment.toolset)?
            };
            let why = reason(svc, i == 0, *scheme, port, own.port, own.path);
            Some(from_fragment(&alternative, fingerprint, &why))
        })
        .collect();
    Identification {
        candidates,
        required,
    }
}

/// Why a candidate: the metadata's own (`first`, with what chose its scheme) or an
/// alternative.
fn reason(
    svc: &Service,
    first: bool,
    scheme: Scheme,
    port: Option<&ServicePort>,
    number: u16,
    base: &str,
) -> String {
    let place = format!("{} on port {number}{base}", scheme_name(scheme));
    if first {
        format!("metadata: {place} ({})", hint(svc, port, scheme))
    } else {
        format!("alternative: {place}")
    }
}

/// Candidates for `fragment` at each `(scheme, base path)` of `places`, in that order,
/// all recognised by `fingerprint`. The fragment's own place comes first whatever its
/// position in `places` (the metadata's best guess is tried first); duplicates are
/// dropped. `required`: drop the fragment when probes run and no candidate proves itself.
pub fn among(
    svc: &Service,
    fragment: &Fragment,
    places: &[(Scheme, &str)],
    fingerprint: &Fingerprint,
    required: bool,
) -> Identification {
    let Some(own) = parse(&fragment.endpoint) else {
        return none();
    };
    let own_place = (own.scheme, own.path);
    let mut ordered: Vec<(Scheme, &str)> = vec![own_place];
    for p in places {
        if !ordered.iter().any(|o| o.0 == p.0 && o.1 == p.1) {
            ordered.push(*p);
        }
    }
    let port = svc.ports.iter().find(|p| p.port == own.port);
    let candidates = ordered
        .iter()
        .enumerate()
        .filter_map(|(i, (scheme, base))| {
            let why = reason(svc, i == 0, *scheme, port, own.port, base);
            variant(svc, fragment, *scheme, base, fingerprint, &why)
        })
        .collect();
    Identification {
        candidates,
        required,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::FragmentBuilder;
    use crate::service::build::{ServiceBuild as _, service};

    #[test]
    fn variants_follow_scheme_and_base_path() {
        let svc = service("monitoring", "prom").with_port(Some("web"), 9090);
        let f = FragmentBuilder::new(&svc, "prometheus/metrics", "prometheus")
            .endpoint(Scheme::Http, 9090, "")
            .health("/-/ready", &[])
            .config_url("prometheus_url")
            .build();
        let fp = fingerprint("/api/v1/status/buildinfo", &["/data/version"], &[]);
        let id = among(
            &svc,
            &f,
            &[
                (Scheme::Https, ""),
                (Scheme::Http, ""),
                (Scheme::Http, "/prometheus"),
            ],
            &fp,
            true,
        );
        let endpoints: Vec<&str> = id.candidates.iter().map(|c| c.endpoint.as_str()).collect();
        assert_eq!(
            endpoints,
            vec![
                "http://prom.monitoring.svc.cluster.local:9090",
                "https://prom.monitoring.svc.cluster.local:9090",
                "http://prom.monitoring.svc.cluster.local:9090/prometheus",
            ]
        );
        let https = &id.candidates[1];
        assert!(
            https
                .config
                .contains("\"https://prom.monitoring.svc.cluster.local:9090\"")
        );
        assert_eq!(https.health.as_ref().map(|h| h.scheme), Some(Scheme::Https));
        let based = &id.candidates[2];
        assert_eq!(
            based.health.as_ref().map(|h| h.path.as_str()),
            Some("/prometheus/-/ready")
        );
        assert!(
            based
                .why
                .starts_with("alternative: http on port 9090/prometheus")
        );
        assert!(id.required);
    }
    #[test]
    fn health_outside_the_base_path_stays_and_inside_follows() {
        // Mimir: API under /prometheus, readiness at the server's root.
        let svc = service("mimir", "qf").with_port(Some("http-metrics"), 8080);
        let f = FragmentBuilder::new(&svc, "prometheus/metrics", "prometheus")
            .endpoint(Scheme::Http, 8080, "/prometheus")
            .health("/ready", &[200])
            .config_url("prometheus_url")
            .build();
        let fp = fingerprint("/api/v1/status/buildinfo", &["/data/version"], &[]);
        let https = variant(&svc, &f, Scheme::Https, "/prometheus", &fp, "x").unwrap();
        let h = https.health.unwrap();
        assert_eq!((h.scheme, h.path.as_str()), (Scheme::Https, "/ready"));
        // Jaeger: the UI health path lives under the query base path.
        let svc = service("tracing", "jaeger").with_port(Some("http-query"), 16686);
        let f = FragmentBuilder::new(&svc, "jaeger/traces", "jaeger")
            .endpoint(Scheme::Http, 16686, "")
            .health("/", &[200])
            .build();
        let based = variant(&svc, &f, Scheme::Http, "/jaeger", &fp, "x").unwrap();
        assert_eq!(based.health.unwrap().path, "/jaeger/");
        assert_eq!(under("/jaegerx/", "/jaeger"), None);
        assert_eq!(under("/jaeger", "/jaeger"), Some(""));
    }

    #[test]
    fn only_app_protocol_settles_the_scheme() {
        let mut svc = service("m", "p")
            .with_port(Some("https"), 9091)
            .with_port(Some("web"), 9090);
        assert_eq!(schemes(svc.ports.first()), &[Scheme::Http, Scheme::Https]);
        svc.ports[1].app_protocol = Some("HTTPS".into());
        assert_eq!(schemes(svc.ports.get(1)), &[Scheme::Https]);
        svc.ports[1].app_protocol = Some("http".into());
        assert_eq!(schemes(svc.ports.get(1)), &[Scheme::Http]);
        assert_eq!(schemes(None), &[Scheme::Http, Scheme::Https]);
        assert_eq!(
            places(&[Scheme::Http, Scheme::Https], &["", "/prometheus"]),
            vec![
                (Scheme::Http, ""),
                (Scheme::Https, ""),
                (Scheme::Http, "/prometheus"),
                (Scheme::Https, "/prometheus"),
            ]
        );
    }

    #[test]
    fn the_metadata_candidate_says_what_chose_its_scheme() {
        let svc = service("openshift-monitoring", "alertmanager-main")
            .with_annotation(
                "service.beta.openshift.io/serving-cert-secret-name",
                "alertmanager-main-tls",
            )
            .with_port(Some("web"), 9094);
        let f = FragmentBuilder::new(&svc, "alertmanager/alerts", "alertmanager")
            .port_endpoint(&svc.ports[0], "")
            .health("/-/ready", &[200])
            .build();
        assert_eq!(port_of(&svc, &f).map(|p| p.port), Some(9094));
        let fp = fingerprint("/api/v2/status", &["/versionInfo"], &[]);
        let id = among(
            &svc,
            &f,
            &places(schemes(port_of(&svc, &f)), &[""]),
            &fp,
            false,
        );
        let whys: Vec<&str> = id.candidates.iter().map(|c| c.why.as_str()).collect();
        assert_eq!(
            whys,
            vec![
                "metadata: https on port 9094 (the Service carries a serving-certificate annotation)",
                "alternative: http on port 9094",
            ]
        );
        let plain = service("m", "am").with_port(Some("http-web"), 9093);
        let f = FragmentBuilder::new(&plain, "alertmanager/alerts", "alertmanager")
            .port_endpoint(&plain.ports[0], "")
            .build();
        let id = among(&plain, &f, &[(Scheme::Https, "")], &fp, false);
        assert_eq!(
            id.candidates[0].why,
            "metadata: http on port 9093 (port name http-web)"
        );
        let alt = from_fragment(&f, &fp, "why");
        assert_eq!(
            (alt.endpoint, alt.config, alt.why),
            (f.endpoint.clone(), f.config.clone(), "why".to_string())
        );
    }
}
