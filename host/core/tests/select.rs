#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use dynamic_toolset_core::FailureKind;
use dynamic_toolset_core::select::{InstanceKey, SiblingLoss, select};

#[test]
fn highest_rank_wins_whatever_the_input_order() {
    let a = prom_sd("monitoring", "kps-prometheus", "monitoring/kps", 100);
    let b = prom_sd("monitoring", "prometheus-operated", "monitoring/kps", 10);
    for input in [vec![a.clone(), b.clone()], vec![b.clone(), a.clone()]] {
        let sel = select(&input);
        assert_eq!(sel.groups.len(), 1);
        let g = &sel.groups[0];
        assert_eq!(
            g.key,
            InstanceKey::new("prometheus/metrics", "monitoring/kps")
        );
        assert_eq!(g.chosen.service, svc("monitoring", "kps-prometheus"));
        assert_eq!(g.siblings.len(), 1);
        assert_eq!(
            g.siblings[0].candidate.service,
            svc("monitoring", "prometheus-operated")
        );
        assert_eq!(
            g.siblings[0].lost,
            SiblingLoss::LowerRank {
                winner: svc("monitoring", "kps-prometheus"),
                winner_rank: 100
            }
        );
    }
}

#[test]
fn ties_are_broken_by_namespace_then_name() {
    let mk = |ns: &str, name: &str| prom_sd(ns, name, "x/shared", 50);
    let input = vec![mk("b", "a"), mk("a", "z"), mk("a", "b")];
    let sel = select(&input);
    let g = &sel.groups[0];
    assert_eq!(g.chosen.service, svc("a", "b"));
    let losers: Vec<_> = g
        .siblings
        .iter()
        .map(|s| s.candidate.service.to_string())
        .collect();
    assert_eq!(losers, ["a/z", "b/a"]);
    assert!(g.siblings.iter().all(
        |s| matches!(&s.lost, SiblingLoss::TieBreak { winner, .. } if *winner == svc("a", "b"))
    ));
    let mut rev = input.clone();
    rev.reverse();
    assert_eq!(select(&rev), sel);
}

#[test]
fn only_matched_fragments_are_candidates() {
    let input = vec![
        sd(
            "monitoring",
            "prom",
            vec![
                unrelated("grafana"),
                declined("loki", "gateway"),
                failed("tempo", FailureKind::Trap, "trap: unreachable"),
                matched(
                    "prometheus",
                    vec![prom("monitoring", "prom", "monitoring/prom", 100)],
                ),
            ],
        ),
        sd("default", "kubernetes", vec![unrelated("prometheus")]),
    ];
    let sel = select(&input);
    assert_eq!(sel.groups.len(), 1);
    assert_eq!(sel.groups[0].chosen.detector, "prometheus");
}

#[test]
fn distinct_instances_and_toolsets_are_distinct_groups_in_key_order() {
    let input = vec![
        prom_sd("team-b", "prom", "team-b/prom", 100),
        grafana_sd(),
        prom_sd("team-a", "prom", "team-a/prom", 100),
    ];
    let sel = select(&input);
    let keys: Vec<String> = sel.groups.iter().map(|g| g.key.to_string()).collect();
    assert_eq!(
        keys,
        [
            "grafana/dashboards [monitoring/grafana]",
            "prometheus/metrics [team-a/prom]",
            "prometheus/metrics [team-b/prom]",
        ]
    );
}

#[test]
fn probes_are_keyed_by_instance_and_only_for_declared_health() {
    let input = vec![
        prom_sd("monitoring", "prom", "monitoring/prom", 100),
        grafana_sd(),
    ];
    let probes = select(&input).probes();
    assert_eq!(probes.len(), 1);
    assert_eq!(
        probes[0].key,
        InstanceKey::new("prometheus/metrics", "monitoring/prom")
    );
    assert_eq!(
        probes[0].url().as_deref(),
        Ok("http://prom.monitoring.svc.cluster.local:9090/-/ready")
    );
}
