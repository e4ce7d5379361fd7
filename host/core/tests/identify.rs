//! Endpoint candidates (contract 1.1 `identify`) through the pure core: fingerprint
//! matching, the gate's screening of candidates, adoption of the winner by the
//! selection, and what `--explain` says.

mod common;

use std::collections::BTreeMap;

use common::{matched_sd, snapshot};
use dynamic_toolset_core::assemble::Health;
use dynamic_toolset_core::gate::{self, Grants, Policy};
use dynamic_toolset_core::select;
use dynamic_toolset_core::{
    Detection, DetectorInfo, Emits, EndpointCandidate, Fingerprint, Fragment, HealthProbe,
    Identification, NoteKind, Scheme, ServiceDetections, ServiceSnapshot,
};
use serde_json::{Map, Value, json};

fn fp() -> Fingerprint {
    Fingerprint {
        path: "/api/v2/status".into(),
        statuses: vec![],
        json_pointers: vec!["/versionInfo/version".into()],
        body_contains: vec![],
    }
}

fn config(key: &str, url: &str) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert(key.into(), Value::String(url.into()));
    m
}

fn candidate(scheme: Scheme, host: &str, port: u16, base: &str) -> EndpointCandidate {
    let s = match scheme {
        Scheme::Http => "http",
        Scheme::Https => "https",
    };
    let url = format!("{s}://{host}:{port}{base}");
    EndpointCandidate {
        config: config("api_url", &url),
        endpoint: url,
        health: Some(HealthProbe {
            port,
            scheme,
            path: format!("{base}/-/ready"),
            accepted_statuses: vec![],
        }),
        fingerprint: fp(),
        why: format!("{s} on {port}{base}"),
    }
}

/// An Elasticsearch fragment on `svc` (port 9200, http) whose candidates are http and
/// https on the same port.
fn es(svc: &ServiceSnapshot, extra: Vec<EndpointCandidate>) -> Fragment {
    let host = format!("{}.{}.svc.cluster.local", svc.name, svc.namespace);
    let url = format!("http://{host}:9200");
    let mut candidates = vec![
        candidate(Scheme::Http, &host, 9200, ""),
        candidate(Scheme::Https, &host, 9200, ""),
    ];
    candidates.extend(extra);
    Fragment {
        http: None,
        toolset: "elasticsearch/data".into(),
        backend: "elasticsearch".into(),
        instance: "logging/es".into(),
        rank: 200,
        endpoint: url.clone(),
        health: Some(HealthProbe {
            port: 9200,
            scheme: Scheme::Http,
            path: "/_cluster/health".into(),
            accepted_statuses: vec![],
        }),
        config: config("api_url", &url),
        custom: None,
        identification: Some(Identification {
            candidates,
            required: false,
        }),
    }
}

fn grants(emits: Option<&[&str]>) -> Grants {
    Grants::from_infos(&[DetectorInfo {
        name: "elasticsearch".into(),
        version: "1".into(),
        backends: vec!["elasticsearch".into()],
        emits: emits.map(|t| Emits {
            toolsets: t.iter().map(|s| s.to_string()).collect(),
            custom_toolsets: false,
        }),
        http_apis: Vec::new(),
    }])
}

fn screened(
    svc: &ServiceSnapshot,
    f: Fragment,
    grants: &Grants,
    policy: &Policy,
) -> ServiceDetections {
    let mut d = matched_sd(&svc.namespace, &svc.name, "elasticsearch", vec![f]);
    gate::screen(svc, &mut d, grants, policy);
    d
}

fn only_fragment(d: &ServiceDetections) -> Option<&Fragment> {
    match &d.verdicts[0].outcome {
        Ok(Detection::Matched(f)) => f.first(),
        _ => None,
    }
}

#[test]
fn fingerprints_need_status_pointers_and_texts() {
    let mut f = fp();
    assert_eq!(
        f.url_for("http://a:1/base/"),
        "http://a:1/base/api/v2/status"
    );
    assert!(
        f.matches(200, br#"{"versionInfo":{"version":"0.27.0"}}"#)
            .is_ok()
    );
    assert_eq!(
        f.matches(200, br#"{"data":[]}"#).unwrap_err(),
        "HTTP 200 but the JSON has no /versionInfo/version"
    );
    assert_eq!(f.matches(404, b"{}").unwrap_err(), "HTTP 404");
    assert_eq!(
        f.matches(200, b"<html>").unwrap_err(),
        "HTTP 200 but the body is not JSON"
    );
    f.body_contains = vec!["opensearch".into()];
    assert!(
        f.matches(200, br#"{"versionInfo":{"version":"x"}}"#)
            .unwrap_err()
            .contains("lacks \"opensearch\"")
    );
    f.statuses = vec![401];
    assert_eq!(f.matches(200, b"").unwrap_err(), "HTTP 200");
}

#[test]
fn candidates_off_the_service_are_refused_by_field_and_the_rest_kept() {
    let svc = snapshot("logging", "es", &[9200]);
    let foreign = candidate(Scheme::Http, "other.logging.svc.cluster.local", 9200, "");
    let off_port = candidate(Scheme::Http, "es.logging.svc.cluster.local", 9300, "");
    let d = screened(
        &svc,
        es(&svc, vec![foreign, off_port]),
        &grants(None),
        &Policy::baseline("cluster.local"),
    );
    let f = only_fragment(&d).expect("the fragment itself stands");
    let kept: Vec<&str> = f
        .identification
        .as_ref()
        .unwrap()
        .candidates
        .iter()
        .map(|c| c.endpoint.as_str())
        .collect();
    assert_eq!(
        kept,
        vec![
            "http://es.logging.svc.cluster.local:9200",
            "https://es.logging.svc.cluster.local:9200"
        ]
    );
    let notes: Vec<(NoteKind, &str)> = d.gate.iter().map(|n| (n.kind, n.field.as_str())).collect();
    assert_eq!(
        notes,
        vec![
            (NoteKind::Endpoint, "identify.candidates[2].endpoint"),
            (NoteKind::Endpoint, "identify.candidates[3].endpoint"),
        ]
    );
    assert!(d.gate[0].message.contains("on Service logging/es itself"));
}

#[test]
fn trusted_candidates_get_the_credentials_of_their_own_scheme() {
    let svc = snapshot("logging", "es", &[9200]);
    let mut policy = Policy::baseline("cluster.local");
    policy.credential_namespaces.insert("logging".into());
    let d = screened(&svc, es(&svc, vec![]), &grants(None), &policy);
    let f = only_fragment(&d).unwrap();
    let c = &f.identification.as_ref().unwrap().candidates;
    // Basic auth only over https (catalog::credentials), per candidate.
    assert!(!c[0].config.contains_key("api_key") && c[0].config.len() == 1);
    assert!(c[1].config.len() > 1, "{:?}", c[1].config);
}

#[test]
fn undeclared_toolsets_are_refused_when_the_detector_declared_its_output() {
    let svc = snapshot("logging", "es", &[9200]);
    let policy = Policy::baseline("cluster.local");
    let d = screened(
        &svc,
        es(&svc, vec![]),
        &grants(Some(&["elasticsearch/cluster"])),
        &policy,
    );
    assert!(only_fragment(&d).is_none());
    assert_eq!(d.gate[0].kind, NoteKind::Toolset);
    assert_eq!(d.gate[0].field, "toolset");
    assert!(
        d.gate[0]
            .message
            .contains("not one the detector declared (elasticsearch/cluster)"),
        "{}",
        d.gate[0].message
    );
    let d = screened(
        &svc,
        es(&svc, vec![]),
        &grants(Some(&["elasticsearch/cluster", "elasticsearch/data"])),
        &policy,
    );
    assert!(only_fragment(&d).is_some());
}

#[test]
fn the_winner_is_adopted_probed_for_health_and_explained() {
    let svc = snapshot("logging", "es", &[9200]);
    let d = screened(
        &svc,
        es(&svc, vec![]),
        &grants(None),
        &Policy::baseline("cluster.local"),
    );
    let detections = vec![d];
    let mut selection = select::select(&detections);
    let key = selection.groups[0].key.clone();

    // Before identification the probe request carries the candidates.
    let probes = selection.probes();
    assert_eq!(
        probes[0]
            .identification
            .as_ref()
            .map(|i| i.candidates.len()),
        Some(2)
    );

    assert!(
        !selection.adopt(&key, 7, "nothing".into()),
        "no 8th candidate"
    );
    assert!(selection.adopt(&key, 1, "GET ...: HTTP 200 with /version/number".into()));
    let g = selection.group(&key).unwrap();
    assert_eq!(
        g.chosen.fragment.endpoint,
        "https://es.logging.svc.cluster.local:9200"
    );
    assert_eq!(
        g.chosen.fragment.config["api_url"],
        json!("https://es.logging.svc.cluster.local:9200")
    );
    assert_eq!(
        g.chosen.fragment.health.as_ref().map(|h| h.scheme),
        Some(Scheme::Https)
    );
    // Adopted: health probes the winner only.
    let probes = selection.probes();
    assert_eq!(probes[0].identification, None);
    assert_eq!(probes[0].probe.scheme, Scheme::Https);

    // The explanation names the candidate and the proof.
    let health = BTreeMap::from([(key.clone(), Health::Healthy)]);
    let assembly = dynamic_toolset_core::assemble::assemble(&selection, &health, None);
    let (_, merge) =
        dynamic_toolset_core::overrides::merge(&assembly.document(), &Default::default());
    let text = dynamic_toolset_core::explain::explain(&detections, &selection, &assembly, &merge)
        .render_text();
    assert!(
        text.contains("candidate 2 of 2 (https on 9200) proved itself: GET ...: HTTP 200 with /version/number; endpoint https://es.logging.svc.cluster.local:9200"),
        "{text}"
    );
    let out = assembly.document();
    assert_eq!(
        out["toolsets"]["elasticsearch/data"]["config"]["api_url"],
        json!("https://es.logging.svc.cluster.local:9200")
    );

    // Undo: back to the detector's own fragment, candidates probed again.
    assert!(selection.unadopt(&key));
    assert!(!selection.unadopt(&key));
    let g = selection.group(&key).unwrap();
    assert_eq!(
        g.chosen.fragment.endpoint,
        "http://es.logging.svc.cluster.local:9200"
    );
    assert!(selection.probes()[0].identification.is_some());
}

#[test]
fn without_probes_the_metadata_guess_stands_and_says_so() {
    let svc = snapshot("logging", "es", &[9200]);
    let d = screened(
        &svc,
        es(&svc, vec![]),
        &grants(None),
        &Policy::baseline("cluster.local"),
    );
    let detections = vec![d];
    let selection = select::select(&detections);
    let assembly = dynamic_toolset_core::assemble::assemble(&selection, &BTreeMap::new(), None);
    let (_, merge) =
        dynamic_toolset_core::overrides::merge(&assembly.document(), &Default::default());
    let text = dynamic_toolset_core::explain::explain(&detections, &selection, &assembly, &merge)
        .render_text();
    assert!(
        text.contains("2 candidate(s) not probed (no health checks): the metadata's guess http://es.logging.svc.cluster.local:9200 is used"),
        "{text}"
    );
}
