//! Selection folds Services of one installation together by their selectors, owners
//! and prometheus-operator's governing labels (see `select` module documentation).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;

use common::*;
use dynamic_toolset_core::select::{InstanceKey, SiblingLoss, select};
use dynamic_toolset_core::{Grouping, OwnerRef, ServiceDetections, ServiceSnapshot};

fn sel(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// One prometheus/metrics candidate with grouping signals.
fn prom_sd(ns: &str, name: &str, instance: &str, rank: u32, g: Grouping) -> ServiceDetections {
    let mut d = sd(
        ns,
        name,
        vec![matched("prometheus", vec![prom(ns, name, instance, rank)])],
    );
    d.grouping = g;
    d
}

fn selector(pairs: &[(&str, &str)]) -> Grouping {
    Grouping {
        selector: sel(pairs),
        ..Grouping::default()
    }
}

fn governing(pairs: &[(&str, &str)]) -> Grouping {
    Grouping {
        selector: sel(pairs),
        governing: true,
        ..Grouping::default()
    }
}

/// kube-prometheus: `prometheus-k8s` (selects name, instance, component, part-of) and the
/// operator's `prometheus-operated` (selects only the name).
fn kube_prometheus() -> Vec<ServiceDetections> {
    vec![
        prom_sd(
            "monitoring",
            "prometheus-k8s",
            "monitoring/k8s",
            80,
            selector(&[
                ("app.kubernetes.io/component", "prometheus"),
                ("app.kubernetes.io/instance", "k8s"),
                ("app.kubernetes.io/name", "prometheus"),
                ("app.kubernetes.io/part-of", "kube-prometheus"),
            ]),
        ),
        prom_sd(
            "monitoring",
            "prometheus-operated",
            "monitoring/prometheus-operated",
            50,
            governing(&[("app.kubernetes.io/name", "prometheus")]),
        ),
    ]
}

#[test]
fn subset_selector_folds_into_the_installation_whatever_the_order() {
    let input = kube_prometheus();
    let mut rev = input.clone();
    rev.reverse();
    for input in [input, rev] {
        let s = select(&input);
        assert_eq!(s.groups.len(), 1, "{s:#?}");
        let g = &s.groups[0];
        assert_eq!(
            g.key,
            InstanceKey::new("prometheus/metrics", "monitoring/k8s")
        );
        assert_eq!(g.chosen.service, svc("monitoring", "prometheus-k8s"));
        assert_eq!(g.siblings.len(), 1);
        assert_eq!(
            g.siblings[0].candidate.service,
            svc("monitoring", "prometheus-operated")
        );
        // The folded candidate is named after the installation.
        assert_eq!(g.siblings[0].candidate.fragment.instance, "monitoring/k8s");
    }
}

#[test]
fn installation_name_holds_when_the_governing_service_wins() {
    // Even if the governing Service outranked the user's Service, the instance keeps the
    // installation's name (the group it folds into).
    let mut input = kube_prometheus();
    input[0] = prom_sd(
        "monitoring",
        "prometheus-k8s",
        "monitoring/k8s",
        40,
        input[0].grouping.clone(),
    );
    let s = select(&input);
    assert_eq!(s.groups.len(), 1, "{s:#?}");
    assert_eq!(s.groups[0].key.instance, "monitoring/k8s");
    assert_eq!(s.groups[0].chosen.fragment.instance, "monitoring/k8s");
}

#[test]
fn other_namespace_or_toolset_or_disjoint_selector_stays_apart() {
    let mut input = kube_prometheus();
    // Same selector in another namespace.
    input.push(prom_sd(
        "other",
        "prometheus-operated",
        "other/prometheus-operated",
        50,
        governing(&[("app.kubernetes.io/name", "prometheus")]),
    ));
    // Another release in the same namespace: selectors differ on the instance.
    input.push(prom_sd(
        "monitoring",
        "team-prometheus",
        "monitoring/team",
        200,
        selector(&[
            ("app.kubernetes.io/instance", "team"),
            ("app.kubernetes.io/name", "team-prom"),
        ]),
    ));
    let s = select(&input);
    let keys: Vec<_> = s.groups.iter().map(|g| g.key.instance.as_str()).collect();
    assert_eq!(
        keys,
        [
            "monitoring/k8s",
            "monitoring/team",
            "other/prometheus-operated"
        ]
    );
}

#[test]
fn a_governing_service_of_two_installations_stands_for_none() {
    let mut input = kube_prometheus();
    input.push(prom_sd(
        "monitoring",
        "prometheus-apps",
        "monitoring/apps",
        80,
        selector(&[
            ("app.kubernetes.io/instance", "apps"),
            ("app.kubernetes.io/name", "prometheus"),
        ]),
    ));
    let s = select(&input);
    let keys: Vec<_> = s.groups.iter().map(|g| g.key.instance.as_str()).collect();
    // prometheus-operated selects the pods of both: it is published for neither, kept as
    // a sibling that says why.
    assert_eq!(keys, ["monitoring/apps", "monitoring/k8s"]);
    let ambiguous: Vec<_> = s
        .groups
        .iter()
        .flat_map(|g| &g.siblings)
        .filter(|sib| matches!(sib.lost, SiblingLoss::Ambiguous { installations: 2 }))
        .map(|sib| sib.candidate.service.name.as_str())
        .collect();
    assert_eq!(ambiguous, ["prometheus-operated"]);
}

#[test]
fn an_unfolded_governing_service_joins_the_only_installation_of_its_backend() {
    // Gardener (tests/fixtures/real/gardener-monitoring.yaml): the Prometheus Services select
    // `prometheus=<name>`, the governing one `app.kubernetes.io/name=prometheus`; no label is
    // shared. With one installation in the namespace it is that one's; with three, none's.
    let one = vec![
        prom_sd(
            "shoot",
            "prometheus-shoot",
            "shoot/shoot",
            200,
            selector(&[("prometheus", "shoot")]),
        ),
        prom_sd(
            "shoot",
            "prometheus-operated",
            "shoot/prometheus-operated",
            50,
            governing(&[("app.kubernetes.io/name", "prometheus")]),
        ),
    ];
    let s = select(&one);
    assert_eq!(s.groups.len(), 1);
    assert_eq!(s.groups[0].key.instance, "shoot/shoot");
    let mut three = vec![prom_sd(
        "garden",
        "prometheus-operated",
        "garden/prometheus-operated",
        50,
        governing(&[("app.kubernetes.io/name", "prometheus")]),
    )];
    for cr in ["cache", "seed", "aggregate"] {
        three.push(prom_sd(
            "garden",
            &format!("prometheus-{cr}"),
            &format!("garden/{cr}"),
            200,
            selector(&[("prometheus", cr)]),
        ));
    }
    let s = select(&three);
    let keys: Vec<_> = s.groups.iter().map(|g| g.key.instance.as_str()).collect();
    assert_eq!(keys, ["garden/aggregate", "garden/cache", "garden/seed"]);
    assert!(
        s.groups
            .iter()
            .all(|g| g.chosen.service.name != "prometheus-operated")
    );
}

#[test]
fn governing_label_folds_on_a_shared_selector_label() {
    // Older prometheus-operator: governing selector `app=prometheus`, the user's Service
    // selects `prometheus=k8s` and `app=prometheus` plus a label the pods carry but the
    // governing Service does not select... and a different one it does not share.
    let input = vec![
        prom_sd(
            "monitoring",
            "prometheus-k8s",
            "monitoring/k8s",
            80,
            selector(&[("app", "prometheus"), ("prometheus", "k8s")]),
        ),
        prom_sd(
            "monitoring",
            "prometheus-operated",
            "monitoring/prometheus-operated",
            50,
            governing(&[("app", "prometheus"), ("operated", "yes")]),
        ),
    ];
    let s = select(&input);
    assert_eq!(s.groups.len(), 1, "{s:#?}");
    assert_eq!(s.groups[0].key.instance, "monitoring/k8s");
    // Without the governing label the same selectors stay apart.
    let mut plain = input.clone();
    plain[1].grouping.governing = false;
    assert_eq!(select(&plain).groups.len(), 2);
}

#[test]
fn equal_selectors_and_common_owner_fold_into_the_stronger_group() {
    let same = [("app", "grafana"), ("release", "g")];
    let input = vec![
        prom_sd("obs", "a", "obs/a", 100, selector(&same)),
        prom_sd("obs", "b", "obs/b", 200, selector(&same)),
    ];
    let s = select(&input);
    assert_eq!(s.groups.len(), 1);
    assert_eq!(s.groups[0].key.instance, "obs/b");
    assert_eq!(s.groups[0].chosen.service, svc("obs", "b"));

    let owned = |name: &str| Grouping {
        owners: vec![OwnerRef {
            kind: "TempoMonolithic".into(),
            name: name.into(),
        }],
        ..Grouping::default()
    };
    let input = vec![
        prom_sd("obs", "x", "obs/x", 200, owned("sample")),
        prom_sd("obs", "y", "obs/y", 200, owned("sample")),
        prom_sd("obs", "z", "obs/z", 200, owned("other")),
    ];
    let s = select(&input);
    let keys: Vec<_> = s.groups.iter().map(|g| g.key.instance.as_str()).collect();
    // Named after the owning resource (the detectors could only name the Services).
    assert_eq!(keys, ["obs/other", "obs/sample"]);
    // Equal ranks: the earlier Service wins the folded group.
    assert_eq!(s.groups[1].chosen.service, svc("obs", "x"));
    assert_eq!(s.groups[1].siblings.len(), 1);
}

#[test]
fn an_owning_resource_names_an_installation_only_the_service_could_name() {
    let owned = |owners: &[(&str, &str)]| Grouping {
        owners: owners
            .iter()
            .map(|(k, n)| OwnerRef {
                kind: (*k).into(),
                name: (*n).into(),
            })
            .collect(),
        ..Grouping::default()
    };
    // grafana-operator v4 (tests/fixtures/real/old-grafana-operator-v4.yaml): the fixed
    // `grafana-service`, owned by the Grafana resource `example-grafana`.
    let s = select(&[prom_sd(
        "grafana",
        "grafana-service",
        "grafana/grafana-service",
        200,
        owned(&[("Grafana", "example-grafana")]),
    )]);
    assert_eq!(s.groups[0].key.instance, "grafana/example-grafana");
    // A detector's own name (a release) stays; workload owners and two owners name nothing.
    for (instance, owners) in [
        ("grafana/release", vec![("Grafana", "example-grafana")]),
        ("grafana/grafana-service", vec![("Deployment", "grafana")]),
        (
            "grafana/grafana-service",
            vec![("Grafana", "a"), ("Grafana", "b")],
        ),
    ] {
        let s = select(&[prom_sd(
            "grafana",
            "grafana-service",
            instance,
            200,
            owned(&owners),
        )]);
        assert_eq!(s.groups[0].key.instance, instance);
    }
}

#[test]
fn empty_selector_never_folds() {
    let input = vec![
        prom_sd("m", "a", "m/a", 100, selector(&[])),
        prom_sd("m", "b", "m/b", 200, selector(&[("app", "prometheus")])),
    ];
    assert_eq!(select(&input).groups.len(), 2);
}

#[test]
fn snapshot_grouping_reads_selector_owners_and_governing_labels() {
    let snap = ServiceSnapshot {
        name: "alertmanager-operated".into(),
        namespace: "monitoring".into(),
        labels: sel(&[("operated-alertmanager", "true")]),
        selector: sel(&[("app.kubernetes.io/name", "alertmanager")]),
        owners: vec![OwnerRef {
            kind: "Alertmanager".into(),
            name: "main".into(),
        }],
        ..ServiceSnapshot::default()
    };
    let g = snap.grouping();
    assert!(g.governing);
    assert_eq!(g.selector.len(), 1);
    assert_eq!(g.owners[0].name, "main");
    assert!(ServiceSnapshot::default().grouping().is_empty());
}

#[test]
fn explain_finds_a_folded_fragment_in_the_installation_it_joined() {
    // `prometheus-operated` (instance monitoring/prometheus-operated) folds into k8s: the
    // explanation must say it lost to prometheus-k8s, not that its key is unknown.
    let input = kube_prometheus();
    let s = select(&input);
    let health = BTreeMap::new();
    let assembly = dynamic_toolset_core::assemble::assemble(&s, &health, None);
    let (_, merge) =
        dynamic_toolset_core::overrides::merge(&assembly.document(), &Default::default());
    let text = dynamic_toolset_core::explain::explain(&input, &s, &assembly, &merge).render_text();
    assert!(!text.contains("unknown"), "{text}");
    assert!(
        text.contains("not chosen: lower rank than monitoring/prometheus-k8s"),
        "{text}"
    );
}
