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
//!     identify::among(svc, f, &[(Scheme::Http, ""), (Scheme::Https, "")], &fp, false)
//! }
//! ```

use crate::{Candidate, Fingerprint, Fragment, Identification, Scheme, Service, ServiceExt};

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
        let tail = h.path.strip_prefix(old.path).unwrap_or(&h.path);
        let tail = if tail.starts_with('/') || tail.is_empty() {
            tail.to_string()
        } else {
            format!("/{tail}")
        };
        let mut h = h.clone();
        h.scheme = scheme;
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
    let candidates = ordered
        .iter()
        .enumerate()
        .filter_map(|(i, (scheme, base))| {
            let why = if i == 0 {
                format!(
                    "metadata: {} on port {}{}",
                    scheme_name(*scheme),
                    own.port,
                    base
                )
            } else {
                format!(
                    "alternative: {} on port {}{}",
                    scheme_name(*scheme),
                    own.port,
                    base
                )
            };
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
}
