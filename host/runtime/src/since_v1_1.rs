//! Conversions of what contract 1.1.0 added (`setup.declares`, `identify`), with the
//! checks a host must make on anything a guest returns. Pure functions; the 1.0 surface
//! is in `convert.rs`.

use dynamic_toolset_core as core;

use crate::Error;
use crate::bindings::{identify, setup};
use crate::convert::{check_http_url, health_from_wit, invalid, json_kind};

/// Toolset names one detector may declare.
const MAX_DECLARED_TOOLSETS: usize = 64;
/// Candidates one fragment may carry.
pub(crate) const MAX_CANDIDATES: usize = 8;
/// Pointers or texts one fingerprint may require.
const MAX_FINGERPRINT_TERMS: usize = 8;

/// Checks a detector's declared output.
pub(crate) fn emits_from_wit(e: setup::Emits) -> Result<core::Emits, Error> {
    if e.toolsets.len() > MAX_DECLARED_TOOLSETS {
        return Err(Error::InvalidEmits(format!(
            "declares {} toolsets (limit {MAX_DECLARED_TOOLSETS})",
            e.toolsets.len()
        )));
    }
    if let Some(i) = e
        .toolsets
        .iter()
        .position(|t| t.trim().is_empty() || t.len() > 128 || t.chars().any(|c| c.is_control()))
    {
        return Err(Error::InvalidEmits(format!(
            "toolsets[{i}] is empty, longer than 128 bytes or holds control characters"
        )));
    }
    let mut toolsets = e.toolsets;
    toolsets.sort();
    toolsets.dedup();
    Ok(core::Emits {
        toolsets,
        custom_toolsets: e.custom_toolsets,
    })
}

/// Text size of an identification, counted against the call's output limit.
pub(crate) fn identification_bytes(id: &identify::Identification) -> usize {
    id.candidates
        .iter()
        .map(|c| {
            c.endpoint.len()
                + c.config.len()
                + c.why.len()
                + c.health.as_ref().map_or(0, |h| h.path.len())
                + c.fingerprint.path.len()
                + c.fingerprint
                    .json_pointers
                    .iter()
                    .map(String::len)
                    .sum::<usize>()
                + c.fingerprint
                    .body_contains
                    .iter()
                    .map(String::len)
                    .sum::<usize>()
        })
        .sum()
}

/// Checks and converts the identification of fragment `index`. The error names the
/// field at fault (`identify.candidates[1].endpoint`, ...).
pub(crate) fn identification_from_wit(
    index: usize,
    id: identify::Identification,
) -> Result<Option<core::Identification>, Error> {
    if id.candidates.is_empty() {
        return Ok(None);
    }
    if id.candidates.len() > MAX_CANDIDATES {
        return Err(invalid(
            index,
            "identify.candidates",
            format!(
                "has {} candidates (limit {MAX_CANDIDATES})",
                id.candidates.len()
            ),
        ));
    }
    let candidates = id
        .candidates
        .into_iter()
        .enumerate()
        .map(|(i, c)| candidate_from_wit(index, i, c))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(core::Identification {
        candidates,
        required: id.required,
    }))
}

fn candidate_from_wit(
    index: usize,
    i: usize,
    c: identify::Candidate,
) -> Result<core::EndpointCandidate, Error> {
    let field = |name: &str| format!("identify.candidates[{i}].{name}");
    check_http_url(&c.endpoint).map_err(|e| invalid(index, field("endpoint"), e))?;
    let config = match serde_json::from_str::<serde_json::Value>(&c.config) {
        Ok(serde_json::Value::Object(map)) => map,
        Ok(other) => {
            return Err(invalid(
                index,
                field("config"),
                format!("is JSON {} where an object is required", json_kind(&other)),
            ));
        }
        Err(e) => {
            return Err(invalid(
                index,
                field("config"),
                format!("is not valid JSON: {e}"),
            ));
        }
    };
    let health = c
        .health
        .map(|h| {
            health_from_wit(index, h).map_err(|e| match e {
                Error::InvalidFragment {
                    field: f, problem, ..
                } => invalid(index, field(&f), problem),
                other => other,
            })
        })
        .transpose()?;
    let fp = c.fingerprint;
    if !fp.path.starts_with('/') || fp.path.chars().any(|c| c.is_control() || c == ' ') {
        return Err(invalid(
            index,
            field("fingerprint.path"),
            "must start with '/' and contain no spaces",
        ));
    }
    if let Some(bad) = fp.statuses.iter().find(|s| !(100..600).contains(*s)) {
        return Err(invalid(
            index,
            field("fingerprint.statuses"),
            format!("has {bad}, not an HTTP status"),
        ));
    }
    if fp.json_pointers.len() > MAX_FINGERPRINT_TERMS
        || fp.body_contains.len() > MAX_FINGERPRINT_TERMS
    {
        return Err(invalid(
            index,
            field("fingerprint"),
            format!("requires more than {MAX_FINGERPRINT_TERMS} pointers or texts"),
        ));
    }
    if let Some(bad) = fp
        .json_pointers
        .iter()
        .position(|p| !(p.is_empty() || p.starts_with('/')))
    {
        return Err(invalid(
            index,
            field(&format!("fingerprint.json-pointers[{bad}]")),
            "is not a JSON pointer (must start with '/')",
        ));
    }
    if fp.json_pointers.is_empty() && fp.body_contains.is_empty() {
        return Err(invalid(
            index,
            field("fingerprint"),
            "requires nothing of the body: a status alone proves no identity",
        ));
    }
    let why: String = c
        .why
        .chars()
        .filter(|c| !c.is_control())
        .take(160)
        .collect();
    Ok(core::EndpointCandidate {
        endpoint: c.endpoint,
        health,
        config,
        fingerprint: core::Fingerprint {
            path: fp.path,
            statuses: fp.statuses,
            json_pointers: fp.json_pointers,
            body_contains: fp.body_contains,
        },
        why,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::bindings::wit;

    fn candidate(endpoint: &str) -> identify::Candidate {
        identify::Candidate {
            endpoint: endpoint.to_string(),
            health: Some(wit::HealthProbe {
                port: 9090,
                scheme: wit::Scheme::Https,
                path: "/-/ready".to_string(),
                accepted_statuses: vec![],
            }),
            config: r#"{"prometheus_url":"https://p.m.svc.cluster.local:9090"}"#.to_string(),
            fingerprint: identify::Fingerprint {
                path: "/api/v1/status/buildinfo".to_string(),
                statuses: vec![],
                json_pointers: vec!["/data/version".to_string()],
                body_contains: vec![],
            },
            why: "https:\u{1b}[31m serving cert".to_string(),
        }
    }

    #[test]
    fn candidates_are_checked_field_by_field() {
        let ok = identification_from_wit(
            0,
            identify::Identification {
                candidates: vec![candidate("https://p.m.svc.cluster.local:9090")],
                required: true,
            },
        )
        .unwrap()
        .unwrap();
        assert!(ok.required);
        assert_eq!(ok.candidates[0].why, "https:[31m serving cert");

        let bad = |c: identify::Candidate| {
            identification_from_wit(
                2,
                identify::Identification {
                    candidates: vec![candidate("http://a.b.svc.cluster.local:1"), c],
                    required: false,
                },
            )
            .unwrap_err()
            .to_string()
        };
        assert_eq!(
            bad(candidate("ftp://x")),
            "fragment[2].identify.candidates[1].endpoint is not an http:// or https:// URL"
        );
        let mut c = candidate("http://a.b.svc.cluster.local:1");
        c.config = "[]".into();
        assert!(bad(c).contains("candidates[1].config is JSON array"));
        let mut c = candidate("http://a.b.svc.cluster.local:1");
        c.fingerprint.json_pointers = vec![];
        assert!(bad(c).contains("a status alone proves no identity"));
        let mut c = candidate("http://a.b.svc.cluster.local:1");
        c.fingerprint.json_pointers = vec!["data".into()];
        assert!(bad(c).contains("fingerprint.json-pointers[0] is not a JSON pointer"));
        let mut c = candidate("http://a.b.svc.cluster.local:1");
        c.health.as_mut().unwrap().path = "ready".into();
        assert!(bad(c).contains("candidates[1].health.path must start"));
    }

    #[test]
    fn no_candidates_is_no_identification() {
        let none = identification_from_wit(
            0,
            identify::Identification {
                candidates: vec![],
                required: true,
            },
        )
        .unwrap();
        assert_eq!(none, None);
    }

    #[test]
    fn declared_toolsets_are_sorted_and_checked() {
        let e = emits_from_wit(setup::Emits {
            toolsets: vec!["b".into(), "a".into(), "a".into()],
            custom_toolsets: true,
        })
        .unwrap();
        assert_eq!(e.toolsets, vec!["a", "b"]);
        assert!(
            emits_from_wit(setup::Emits {
                toolsets: vec!["".into()],
                custom_toolsets: false,
            })
            .is_err()
        );
    }
}
