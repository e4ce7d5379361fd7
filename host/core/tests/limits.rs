//! Input bounds (issue 9): the pre-scan refuses hostile YAML before it is parsed, names
//! where, and lets everything ordinary through; Services are held to the apiserver's name
//! grammar.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;

use dynamic_toolset_core::ServiceSnapshot;
use dynamic_toolset_core::k8s_names::{self, FieldError};
use dynamic_toolset_core::limits::{self, MANIFEST, OVERRIDES, check_yaml, split_documents};
use dynamic_toolset_core::overrides::Overrides;

/// Every YAML file of `tests/fixtures/real` (Services from upstream sources and their
/// canonical judgements) and `tests/fixtures/synthetic`.
fn fixtures() -> Vec<(String, String)> {
    let mut out = Vec::new();
    for dir in ["real", "synthetic"] {
        let dir = format!("{}/../../tests/fixtures/{dir}", env!("CARGO_MANIFEST_DIR"));
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|e| e == "yaml") {
                out.push((
                    p.display().to_string(),
                    std::fs::read_to_string(&p).unwrap(),
                ));
            }
        }
    }
    assert!(out.len() > 40, "fixtures found: {}", out.len());
    out
}

#[test]
fn every_fixture_passes_the_pre_scan() {
    for (name, text) in fixtures() {
        assert_eq!(check_yaml(&text, &MANIFEST), Ok(()), "{name}");
        for d in split_documents(&text, &MANIFEST) {
            assert_eq!(d.checked, Ok(()), "{name} line {}", d.first_line);
        }
    }
}

#[test]
fn split_documents_numbers_lines_and_skips_a_comment_preamble() {
    let text = "# Source: chart\n---\na: 1\n---\nb: [\n---\nc: 3\n";
    let docs = split_documents(text, &MANIFEST);
    let firsts: Vec<usize> = docs.iter().map(|d| d.first_line).collect();
    assert_eq!(firsts, [2, 4, 6]);
    assert_eq!(docs[1].text, "---\nb: [\n");
    let plain = split_documents("a: 1\n---\nb: 2\n", &MANIFEST);
    assert_eq!(plain.len(), 2);
    assert_eq!(plain[0].text, "a: 1\n");
}

#[test]
fn nested_brackets_in_overrides_are_refused_with_line_and_column() {
    // The reported attack: 100 KB of `[` cost ~25 s per parse.
    let text = format!("toolsets:\n  x: {}\n", "[".repeat(100_000));
    let e = Overrides::parse(&text).unwrap_err();
    assert_eq!(
        e.to_string(),
        "line 2 column 36: nested more than 32 levels deep (YAML nesting limit)"
    );
}

#[test]
fn alias_bomb_in_overrides_is_refused_naming_the_alias() {
    let mut text = String::from("a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for i in 1..9 {
        let refs = vec![format!("*a{}", i - 1); 9].join(", ");
        text += &format!("a{i}: &a{i} [{refs}]\n");
    }
    let e = Overrides::parse(&text).unwrap_err();
    assert_eq!(e.line, Some(5), "{e}");
    assert!(
        e.message
            .ends_with("expands the document past 256 KiB (YAML alias expansion limit)"),
        "{e}"
    );
    assert!(e.message.starts_with("alias `*a3`"), "{e}");
}

#[test]
fn oversized_overrides_are_refused_before_parsing() {
    let text = format!("toolsets: {{}}\n# {}\n", "x".repeat(OVERRIDES.max_bytes));
    let e = Overrides::parse(&text).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "too large: {} bytes, the limit is 256 KiB",
            OVERRIDES.max_bytes + 16
        )
    );
}

#[test]
fn ordinary_anchors_and_json_style_overrides_still_parse() {
    let text = "\
common: &common
  query_timeout_seconds_default: 30
toolsets:
  prometheus/metrics:
    config: *common
  grafana/loki: {\"enabled\":false, \"config\":{\"url\":\"http://x[1]\"}}
";
    let o = Overrides::parse(text).unwrap();
    assert_eq!(o.disabled(), ["grafana/loki"]);
    let cfg = &o.toolsets().unwrap()["prometheus/metrics"]["config"];
    assert_eq!(cfg["query_timeout_seconds_default"], 30);
}

#[test]
fn human_bytes_words() {
    assert_eq!(limits::human_bytes(16 * 1024 * 1024), "16 MiB");
    assert_eq!(limits::human_bytes(256 * 1024), "256 KiB");
    assert_eq!(limits::human_bytes(1000), "1000 bytes");
}

// ---- Services ------------------------------------------------------------------------

fn svc() -> ServiceSnapshot {
    let mut s = common::snapshot("monitoring", "prometheus", &[9090]);
    s.labels = BTreeMap::from([("app.kubernetes.io/name".into(), "prometheus".into())]);
    s.annotations = BTreeMap::from([("Example.com/Note".into(), "free text {}".into())]);
    s.cluster_ip = None;
    s.ports[0].name = Some("http-web".into());
    s
}

fn refused(f: impl FnOnce(&mut ServiceSnapshot)) -> FieldError {
    let mut s = svc();
    f(&mut s);
    k8s_names::validate_service(&s).unwrap_err()
}

#[test]
fn a_valid_service_passes() {
    assert_eq!(k8s_names::validate_service(&svc()), Ok(()));
}

#[test]
fn service_names_are_dns_1035_labels() {
    let e = refused(|s| s.name = "1prometheus".into());
    assert_eq!(e.field, "metadata.name");
    assert!(e.message.contains("DNS-1035"), "{}", e.message);
    let e = refused(|s| s.name = "prom.{{ env.OPENAI_API_KEY }}".into());
    assert_eq!(e.field, "metadata.name");
    let e = refused(|s| s.name = "a".repeat(64));
    assert_eq!(
        e.message,
        format!("{:?} is longer than 63 characters", "a".repeat(64))
    );
}

#[test]
fn namespaces_are_dns_1123_labels() {
    let e = refused(|s| s.namespace = "Monitoring".into());
    assert_eq!(e.field, "metadata.namespace");
    assert_eq!(
        e.message,
        "\"Monitoring\" is not a valid name (lowercase letters, digits and '-', starting and \
         ending with a letter or digit)"
    );
}

#[test]
fn label_keys_and_values_follow_the_apiserver() {
    let e = refused(|s| {
        s.labels.insert("Bad.Prefix/x".into(), "v".into());
    });
    assert_eq!(e.field, "metadata.labels[\"Bad.Prefix/x\"]");
    assert!(e.message.contains("prefix"), "{}", e.message);
    let e = refused(|s| {
        s.labels
            .insert("app".into(), "{{ env.GRAFANA_API_KEY }}".into());
    });
    assert_eq!(e.field, "metadata.labels[\"app\"]");
    assert!(e.message.contains("is not a label value"), "{}", e.message);
    let e = refused(|s| {
        s.labels.insert("app".into(), "v".repeat(64));
    });
    assert_eq!(e.field, "metadata.labels[\"app\"]");
}

#[test]
fn annotation_keys_and_total_size() {
    let e = refused(|s| {
        s.annotations.insert("bad key".into(), String::new());
    });
    assert_eq!(e.field, "metadata.annotations[\"bad key\"]");
    assert!(
        e.message.contains("is not an annotation key"),
        "{}",
        e.message
    );
    let e = refused(|s| {
        s.annotations
            .insert("a".into(), "x".repeat(k8s_names::ANNOTATIONS_TOTAL_MAX));
    });
    assert_eq!(e.field, "metadata.annotations");
    assert!(
        e.message.ends_with("the limit is 262144 (256 KiB)"),
        "{}",
        e.message
    );
}

#[test]
fn label_and_annotation_counts_are_bounded() {
    let e = refused(|s| {
        for i in 0..=limits::MAX_LABELS {
            s.labels.insert(format!("l{i}"), "v".into());
        }
    });
    assert_eq!(e.field, "metadata.labels");
    assert_eq!(e.message, "258 labels, the limit is 256 per Service");
    let e = refused(|s| {
        for i in 0..=limits::MAX_ANNOTATIONS {
            s.annotations.insert(format!("a{i}"), "v".into());
        }
    });
    assert_eq!(e.field, "metadata.annotations");
    assert_eq!(e.message, "258 annotations, the limit is 256 per Service");
}

#[test]
fn port_names_are_dns_labels_and_named_target_ports_iana_names() {
    // As the apiserver: `http-c-binary-trft` (jaeger chart) is a valid Service port name.
    for good in ["http", "web-8080", "h2c", "http-c-binary-trft", "8080"] {
        let mut s = svc();
        s.ports[0].name = Some(good.into());
        assert_eq!(k8s_names::validate_service(&s), Ok(()), "{good}");
    }
    for bad in ["HTTP", "http_web", "-http", "{{x}}"] {
        let e = refused(|s| s.ports[0].name = Some(bad.into()));
        assert_eq!(e.field, "spec.ports[0].name", "{bad}");
        assert!(
            e.message.contains("is not a valid port name"),
            "{}",
            e.message
        );
    }
    let e = refused(|s| {
        let mut p = s.ports[0].clone();
        p.port = 9091;
        s.ports.push(p);
    });
    assert_eq!(e.field, "spec.ports[1].name");
    assert_eq!(e.message, "duplicate port name \"http-web\"");
    for good in ["web", "9090", "0"] {
        let mut s = svc();
        s.ports[0].target_port = Some(good.into());
        assert_eq!(k8s_names::validate_service(&s), Ok(()), "{good}");
    }
    for bad in ["http--web", "a-very-long-port-name", "70000", "8080x_"] {
        let e = refused(|s| s.ports[0].target_port = Some(bad.into()));
        assert_eq!(e.field, "spec.ports[0].targetPort", "{bad}");
    }
}
