//! Detection scored on Services from real upstream sources (`tests/fixtures/real/`: rendered
//! charts, committed manifests and Services transcribed from operators' source, each citing
//! its repository, path and commit; see `tests/fixtures/real/SOURCES.md`).
//!
//! Every `<family>.yaml` goes through discovery as `discover --no-health-check` runs it
//! (bundled detectors, validation gate with the baseline policy, selection; no probing),
//! and the chosen toolsets are compared with `<family>.canonical.yaml`, a person's judgement
//! of the endpoints HolmesGPT should get:
//!
//! - `canonical`: toolset, Service and full URL (scheme, port, base path), with acceptable
//!   `alternatives` (another Service or URL reaching the same API), and the `instance` name the
//!   chosen toolset must carry (what the model in HolmesGPT chooses between);
//! - `acceptable`: toolsets that are neither required nor wrong (e.g. a second, redundant view);
//! - `nothing`: every other Service of the fixture, which must produce no toolset.
//!
//! Per family: canonical endpoints found / missed, and false toolsets (a chosen toolset
//! whose URL is neither canonical nor an alternative nor acceptable: a Service that must
//! not be a toolset, or a canonical Service with a wrong scheme, port or base path). A
//! second chosen instance reaching an already-found canonical endpoint is counted as a
//! duplicate. The test prints the table (`tests/fixtures/real/SCORE.md` records it) and
//! asserts that detection is exact on every family (every canonical endpoint found, no false
//! toolset, no duplicate; a family may be exempted only in `KNOWN_GAPS`, with its reason),
//! and that every endpoint found carries its canonical instance name.
//!
//! `tests/fixtures/synthetic/` holds the few inputs no upstream source can give (this project's
//! own `kubernaut.io/toolset*` annotations, Services named like backends without being one), in
//! the same format, each file saying so in its header; they are judged exactly.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use dynamic_toolset::manifest::{self, ReadOptions};
use dynamic_toolset::pipeline;
use dynamic_toolset_core::ServiceSnapshot;
use dynamic_toolset_core::gate::Policy;
use dynamic_toolset_core::select;
use dynamic_toolset_runtime::DetectorSet;

#[path = "common/canonical.rs"]
mod canonical;
use canonical::{
    Acceptable, Alternative, Canonical, CanonicalFile, KNOWN_GAPS, families_in, normalize,
    read_canonical,
};

/// One chosen toolset instance: what HolmesGPT would be configured with.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Chosen {
    toolset: String,
    service: String,
    endpoint: String,
    instance: String,
    /// The detector whose fragment won the instance.
    detector: String,
    /// The fragment's identification candidates in the order a probe tries them (contract
    /// 1.1 `identify`; empty without), and whether it must prove itself to be published.
    candidates: Vec<String>,
    required: bool,
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Score {
    canonical: usize,
    found: Vec<String>,
    missed: Vec<String>,
    false_toolsets: Vec<String>,
    duplicates: Vec<String>,
    acceptable: Vec<String>,
    /// Found only through a canonical entry's documented offline guess.
    guessed: Vec<String>,
}

/// Whether `c` reaches canonical endpoint `k` (its URL or one of its alternatives).
fn reaches(k: &Canonical, c: &Chosen) -> bool {
    k.reaches(&c.toolset, &c.endpoint)
}

/// Compares the chosen toolsets of offline discovery with the canonical file, where a
/// canonical entry's documented `offline` guess also counts as found. Pure, so the scorer
/// itself can be tested (see `scorer_counts_a_deliberate_miss_and_a_false_toolset`).
fn score(canon: &CanonicalFile, chosen: &[Chosen]) -> Score {
    score_by(canon, chosen, true)
}

/// What discovery publishes with probes on, if every backend proves its identity at its
/// canonical (or alternative, or acceptable) URL and nowhere else, as the stub servers of
/// `tests/identify.rs` show for each fingerprint: a chosen fragment moves to the first of
/// its candidates (in the detector's order) that is such a URL; with none, a fragment
/// whose identification is required is dropped, any other keeps the metadata's guess.
fn probed(canon: &CanonicalFile, chosen: &[Chosen]) -> Vec<Chosen> {
    let proves = |toolset: &str, endpoint: &str| {
        canon.canonical.iter().any(|k| k.reaches(toolset, endpoint))
            || canon
                .acceptable
                .iter()
                .any(|a| a.toolset == toolset && normalize(&a.url) == normalize(endpoint))
    };
    chosen
        .iter()
        .filter_map(|c| {
            if c.candidates.is_empty() {
                return Some(c.clone());
            }
            match c.candidates.iter().find(|e| proves(&c.toolset, e)) {
                Some(e) => Some(Chosen {
                    endpoint: e.clone(),
                    ..c.clone()
                }),
                None if c.required => None,
                None => Some(c.clone()),
            }
        })
        .collect()
}

/// [`score`] of offline discovery (`offline`: documented guesses count) or, strictly, of
/// discovery with probes ([`probed`]).
fn score_by(canon: &CanonicalFile, chosen: &[Chosen], offline: bool) -> Score {
    let mut s = Score {
        canonical: canon.canonical.len(),
        ..Score::default()
    };
    let mut hit = vec![false; canon.canonical.len()];
    for c in chosen {
        let url = normalize(&c.endpoint);
        let matched = canon.canonical.iter().position(|k| {
            if offline {
                k.reaches_offline(&c.toolset, &c.endpoint)
            } else {
                reaches(k, c)
            }
        });
        let label = format!("{} {} ({})", c.toolset, c.endpoint, c.service);
        match matched {
            Some(i) if !hit[i] => {
                hit[i] = true;
                if !reaches(&canon.canonical[i], c) {
                    s.guessed.push(label.clone());
                }
                s.found.push(label);
            }
            Some(_) => s.duplicates.push(label),
            None => {
                if canon
                    .acceptable
                    .iter()
                    .any(|a| a.toolset == c.toolset && normalize(&a.url) == url)
                {
                    s.acceptable.push(label);
                } else {
                    s.false_toolsets.push(label);
                }
            }
        }
    }
    for (k, hit) in canon.canonical.iter().zip(&hit) {
        if !hit {
            s.missed
                .push(format!("{} {} ({})", k.toolset, k.url, k.service));
        }
    }
    s
}

fn real_dir() -> PathBuf {
    canonical::fixtures_dir().join("real")
}

fn synthetic_dir() -> PathBuf {
    canonical::fixtures_dir().join("synthetic")
}

/// Every `<family>.yaml` of `tests/fixtures/real` with its `<family>.canonical.yaml`.
fn families() -> Vec<(String, PathBuf, PathBuf)> {
    families_in(&real_dir())
}

/// The bundled detectors, loaded as `discover` loads them (no third-party directory).
fn detector_set() -> DetectorSet {
    let mut setup = pipeline::DetectorSetup::new(
        None,
        Some(PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("detector-cache")),
    );
    // This scores what detectors decide, over thousands of calls; a debug build on a busy
    // machine can pass the default 100 ms call budget (tested on its own in the runtime).
    setup.runtime.call_deadline = std::time::Duration::from_secs(5);
    let loaded = pipeline::load_detectors(&setup).expect("runtime starts");
    assert!(
        loaded.errors.is_empty(),
        "detectors failed to load: {:?}",
        loaded.errors
    );
    loaded.set
}

struct Family {
    name: String,
    canon: CanonicalFile,
    services: BTreeSet<String>,
    chosen: Vec<Chosen>,
}

/// Reads one family and runs it through detect + gate + select, as `discover` does.
fn run_family(set: &mut DetectorSet, name: &str, fixture: &Path, canon_path: &Path) -> Family {
    let canon = read_canonical(canon_path);
    let text = std::fs::read_to_string(fixture).unwrap();
    let opts = ReadOptions {
        default_namespace: canon.default_namespace().to_string(),
    };
    let loaded = manifest::parse_str(name, &text, &opts);
    assert!(loaded.errors.is_empty(), "{name}: {:?}", loaded.errors);
    let services: Vec<_> = loaded.services.into_iter().map(|(_, s)| s).collect();
    let keys: BTreeSet<String> = services
        .iter()
        .map(|s| format!("{}/{}", s.namespace, s.name))
        .collect();
    assert_eq!(
        keys.len(),
        services.len(),
        "{name}: a Service appears twice in the fixture"
    );
    Family {
        name: name.to_string(),
        canon,
        services: keys,
        chosen: choose(set, name, &services),
    }
}

/// Detect + gate (baseline policy) + select, as `discover --no-health-check` does.
fn choose(set: &mut DetectorSet, name: &str, services: &[ServiceSnapshot]) -> Vec<Chosen> {
    let policy = Policy::baseline("cluster.local");
    let grants = pipeline::grants(set, &Default::default());
    let detections = pipeline::detect_all(set, &policy, services, &grants);
    for sd in &detections {
        for v in &sd.verdicts {
            if let Err(e) = &v.outcome {
                panic!(
                    "{name}: {}: detector {} failed: {e}",
                    sd.service, v.detector
                );
            }
        }
    }
    let selection = select::select(&detections);
    let mut chosen: Vec<Chosen> = selection
        .groups
        .iter()
        .map(|g| Chosen {
            toolset: g.key.toolset.clone(),
            service: g.chosen.service.to_string(),
            endpoint: g.chosen.fragment.endpoint.clone(),
            instance: g.key.instance.clone(),
            detector: g.chosen.detector.clone(),
            candidates: g
                .chosen
                .fragment
                .identification
                .as_ref()
                .map(|i| i.candidates.iter().map(|c| c.endpoint.clone()).collect())
                .unwrap_or_default(),
            required: g
                .chosen
                .fragment
                .identification
                .as_ref()
                .is_some_and(|i| i.required),
        })
        .collect();
    chosen.sort();
    chosen
}

/// The canonical file names every Service of the fixture exactly once (canonical,
/// alternative, acceptable or nothing) and no Service the fixture lacks.
fn coverage_problems(f: &Family) -> Vec<String> {
    let mut listed = BTreeSet::new();
    let mut problems = Vec::new();
    for k in &f.canon.canonical {
        if k.instance.as_deref().is_none_or(|i| i.trim().is_empty()) {
            problems.push(format!("{}: {} has no instance", f.name, k.url));
        }
        listed.insert(k.service.clone());
        listed.extend(k.alternatives.iter().map(|a| a.service.clone()));
        assert!(
            !k.why.trim().is_empty(),
            "{}: {} has no reason",
            f.name,
            k.url
        );
        for a in &k.alternatives {
            assert!(
                !a.why.trim().is_empty(),
                "{}: {} has no reason",
                f.name,
                a.url
            );
        }
    }
    for a in &f.canon.acceptable {
        listed.insert(a.service.clone());
        assert!(
            !a.why.trim().is_empty(),
            "{}: {} has no reason",
            f.name,
            a.url
        );
    }
    for (svc, why) in &f.canon.nothing {
        if why.trim().is_empty() {
            problems.push(format!("{}: nothing.{svc} has no reason", f.name));
        }
        if listed.contains(svc) {
            problems.push(format!(
                "{}: {svc} is both an endpoint and in `nothing`",
                f.name
            ));
        }
        listed.insert(svc.clone());
    }
    for svc in &f.services {
        if !listed.contains(svc) {
            problems.push(format!(
                "{}: {svc} is not judged in the canonical file",
                f.name
            ));
        }
    }
    for svc in &listed {
        if !f.services.contains(svc) {
            problems.push(format!(
                "{}: the canonical file names {svc}, which the fixture does not contain",
                f.name
            ));
        }
    }
    problems
}

/// A chosen toolset that reaches a canonical endpoint carries the canonical instance name.
fn instance_problems(f: &Family) -> Vec<String> {
    let mut problems = Vec::new();
    for k in &f.canon.canonical {
        let Some(want) = &k.instance else { continue };
        for c in f
            .chosen
            .iter()
            .filter(|c| k.reaches_offline(&c.toolset, &c.endpoint))
        {
            if &c.instance != want {
                problems.push(format!(
                    "{}: {} {} ({}) is instance {}, canonical instance {want}",
                    f.name, c.toolset, c.endpoint, c.service, c.instance
                ));
            }
        }
    }
    problems
}

fn table_row(name: &str, s: &Score, p: &Score) -> String {
    format!(
        "| {name} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
        s.canonical,
        s.found.len(),
        s.missed.len(),
        s.false_toolsets.len(),
        s.duplicates.len(),
        s.acceptable.len(),
        s.guessed.len(),
        p.found.len(),
        p.false_toolsets.len()
    )
}

/// The table of SCORE.md: offline discovery's score, then with probes ([`probed`]).
fn table(rows: &[(String, Score, Score)]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| family | canonical | found | missed | false | duplicate | acceptable | offline guess | found, probed | false, probed |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut total = Score::default();
    let mut total_p = Score::default();
    for (name, s, p) in rows {
        let _ = writeln!(out, "{}", table_row(name, s, p));
        for (t, s) in [(&mut total, s), (&mut total_p, p)] {
            t.canonical += s.canonical;
            t.found.extend(s.found.iter().cloned());
            t.missed.extend(s.missed.iter().cloned());
            t.false_toolsets.extend(s.false_toolsets.iter().cloned());
            t.duplicates.extend(s.duplicates.iter().cloned());
            t.acceptable.extend(s.acceptable.iter().cloned());
            t.guessed.extend(s.guessed.iter().cloned());
        }
    }
    let _ = writeln!(out, "{}", table_row("**total**", &total, &total_p));
    let _ = writeln!(out);
    for (name, s, p) in rows {
        for (kind, items) in [
            ("missed", &s.missed),
            ("false", &s.false_toolsets),
            ("duplicate", &s.duplicates),
            ("offline guess", &s.guessed),
            ("missed with probes", &p.missed),
            ("false with probes", &p.false_toolsets),
            ("duplicate with probes", &p.duplicates),
        ] {
            for m in items {
                let _ = writeln!(out, "- {name}: {kind} {m}");
            }
        }
    }
    out
}

#[test]
fn real_fixtures_are_detected_exactly() {
    let families = families();
    assert!(
        families.len() >= 15,
        "expected the real fixtures, found {}",
        families.len()
    );
    let mut set = detector_set();
    let mut rows = Vec::new();
    let mut problems = Vec::new();
    let mut misnamed = Vec::new();
    for (name, fixture, canon) in &families {
        let f = run_family(&mut set, name, fixture, canon);
        problems.extend(coverage_problems(&f));
        rows.push((
            name.clone(),
            score(&f.canon, &f.chosen),
            score_by(&f.canon, &probed(&f.canon, &f.chosen), false),
        ));
        misnamed.extend(instance_problems(&f));
    }
    let printed = table(&rows);
    eprintln!("{printed}");
    assert!(
        problems.is_empty(),
        "canonical files out of step with their fixtures:\n{}",
        problems.join("\n")
    );
    let positives: usize = rows.iter().map(|(_, s, _)| s.canonical).sum();
    assert!(
        positives > 20,
        "suspiciously few canonical endpoints: {positives}"
    );
    assert!(
        misnamed.is_empty(),
        "instances named otherwise than the canonical files say:\n{}",
        misnamed.join("\n")
    );

    let gaps: BTreeMap<&str, &str> = KNOWN_GAPS.iter().copied().collect();
    let mut regressions = Vec::new();
    let exact =
        |s: &Score| s.missed.is_empty() && s.false_toolsets.is_empty() && s.duplicates.is_empty();
    for (name, s, p) in &rows {
        match (exact(s) && exact(p), gaps.get(name.as_str())) {
            (true, Some(why)) => regressions.push(format!(
                "{name}: exact now, remove it from KNOWN_GAPS ({why})"
            )),
            (false, None) => regressions.push(format!(
                "{name}: not exact (offline: found {} of {}, false {}, duplicate {}; probed: found {}, false {}, duplicate {})",
                s.found.len(),
                s.canonical,
                s.false_toolsets.len(),
                s.duplicates.len(),
                p.found.len(),
                p.false_toolsets.len(),
                p.duplicates.len()
            )),
            _ => {}
        }
    }
    for name in gaps.keys() {
        if !rows.iter().any(|(n, _, _)| n == name) {
            regressions.push(format!("{name}: known gap recorded for a missing family"));
        }
    }
    assert!(
        regressions.is_empty(),
        "detection is not exact on real fixtures (see the table above):\n{}",
        regressions.join("\n")
    );
}

fn canonical(toolset: &str, service: &str, url: &str, alts: &[(&str, &str)]) -> Canonical {
    Canonical {
        toolset: toolset.into(),
        service: service.into(),
        url: url.into(),
        instance: None,
        why: "test".into(),
        offline: None,
        alternatives: alts
            .iter()
            .map(|(s, u)| Alternative {
                service: (*s).into(),
                url: (*u).into(),
                why: "test".into(),
            })
            .collect(),
    }
}

fn chosen(toolset: &str, service: &str, endpoint: &str) -> Chosen {
    Chosen {
        toolset: toolset.into(),
        service: service.into(),
        endpoint: endpoint.into(),
        instance: "test/test".into(),
        detector: "test".into(),
        candidates: Vec::new(),
        required: false,
    }
}

#[test]
fn scorer_counts_a_deliberate_miss_and_a_false_toolset() {
    let canon = CanonicalFile {
        canonical: vec![
            canonical(
                "prometheus/metrics",
                "m/prom",
                "http://prom.m.svc.cluster.local:9090",
                &[(
                    "m/prom-operated",
                    "http://prom-operated.m.svc.cluster.local:9090",
                )],
            ),
            canonical(
                "jaeger/traces",
                "t/tracing",
                "http://tracing.t.svc.cluster.local:80/jaeger",
                &[],
            ),
        ],
        acceptable: vec![Acceptable {
            toolset: "grafana/tempo".into(),
            service: "t/tempo".into(),
            url: "http://tempo.t.svc.cluster.local:3200".into(),
            why: "test".into(),
        }],
        ..CanonicalFile::default()
    };
    let picked = [
        // The alternative counts as found; the second instance of it is a duplicate.
        chosen(
            "prometheus/metrics",
            "m/prom-operated",
            "HTTP://prom-operated.m.svc.cluster.local:9090/",
        ),
        chosen(
            "prometheus/metrics",
            "m/prom",
            "http://prom.m.svc.cluster.local:9090",
        ),
        // Right Service, base path missing: a miss and a false toolset.
        chosen(
            "jaeger/traces",
            "t/tracing",
            "http://tracing.t.svc.cluster.local",
        ),
        // Neither required nor wrong.
        chosen(
            "grafana/tempo",
            "t/tempo",
            "http://tempo.t.svc.cluster.local:3200",
        ),
        // A Service that must produce nothing.
        chosen(
            "prometheus/metrics",
            "m/node-exporter",
            "http://node-exporter.m.svc.cluster.local:9100",
        ),
    ];
    let s = score(&canon, &picked);
    assert_eq!(s.canonical, 2);
    assert_eq!(s.found.len(), 1, "{s:?}");
    assert_eq!(s.duplicates.len(), 1, "{s:?}");
    assert_eq!(s.missed.len(), 1, "{s:?}");
    assert!(s.missed[0].contains("/jaeger"), "{s:?}");
    assert_eq!(s.false_toolsets.len(), 2, "{s:?}");
    assert_eq!(s.acceptable.len(), 1, "{s:?}");

    // Nothing chosen: every canonical endpoint is missed, nothing is false.
    let s = score(&canon, &[]);
    assert_eq!(
        (s.found.len(), s.missed.len(), s.false_toolsets.len()),
        (0, 2, 0)
    );
}

#[test]
fn scorer_on_a_real_family_sees_a_removed_endpoint_and_an_unlisted_one() {
    // kube-prometheus: perturb the judgement, not the detectors, and check the score moves.
    let dir = real_dir();
    let mut set = detector_set();
    let f = run_family(
        &mut set,
        "kube-prometheus",
        &dir.join("kube-prometheus.yaml"),
        &dir.join("kube-prometheus.canonical.yaml"),
    );
    let base = score(&f.canon, &f.chosen);
    let found_before = base.found.len();
    let false_before = base.false_toolsets.len();

    // A deliberate miss: a canonical endpoint no detector can produce.
    let mut canon = f.canon.clone();
    canon.canonical.push(canonical(
        "grafana/loki",
        "monitoring/loki",
        "http://loki.monitoring.svc.cluster.local:3100",
        &[],
    ));
    let s = score(&canon, &f.chosen);
    assert_eq!(s.missed.len(), base.missed.len() + 1);
    assert_eq!(s.found.len(), found_before);

    // A deliberate false positive: drop a found canonical endpoint from the judgement; the
    // chosen toolset that matched it is now unlisted, hence false.
    if let Some(i) = canon
        .canonical
        .iter()
        .position(|k| f.chosen.iter().any(|c| reaches(k, c)))
    {
        canon.canonical.remove(i);
        let s = score(&canon, &f.chosen);
        assert_eq!(s.found.len(), found_before - 1);
        assert!(s.false_toolsets.len() > false_before);
    } else {
        // Nothing found today: a fabricated chosen toolset must count as false.
        let mut picked = f.chosen.clone();
        picked.push(chosen(
            "prometheus/metrics",
            "monitoring/node-exporter",
            "https://node-exporter.monitoring.svc.cluster.local:9100",
        ));
        let s = score(&f.canon, &picked);
        assert_eq!(s.false_toolsets.len(), false_before + 1);
    }
}

#[test]
fn url_normalization() {
    assert_eq!(normalize("http://a.b:80/"), "http://a.b:80");
    assert_eq!(normalize("http://a.b"), "http://a.b:80");
    assert_eq!(normalize("https://A.b/x/"), "https://a.b:443/x");
    assert_ne!(
        normalize("http://a.b:80/prometheus"),
        normalize("http://a.b:80")
    );
}

#[test]
fn synthetic_examples_are_judged_exactly() {
    let families = families_in(&synthetic_dir());
    assert!(
        families.len() >= 2,
        "expected the synthetic examples, found {}",
        families.len()
    );
    let mut set = detector_set();
    let mut failures = Vec::new();
    for (name, fixture, canon) in &families {
        let text = std::fs::read_to_string(fixture).unwrap();
        assert!(
            text.starts_with("# SYNTHETIC"),
            "{name}: a synthetic example says so in its first line"
        );
        let f = run_family(&mut set, name, fixture, canon);
        failures.extend(coverage_problems(&f));
        failures.extend(instance_problems(&f));
        let s = score(&f.canon, &f.chosen);
        if !(s.missed.is_empty() && s.false_toolsets.is_empty() && s.duplicates.is_empty()) {
            failures.push(format!(
                "{name}: missed {:?}, false {:?}, duplicate {:?}",
                s.missed, s.false_toolsets, s.duplicates
            ));
        }
        if name == "annotations" {
            // A chart Service that is also annotated is one instance, won by the annotation.
            let won: Vec<_> = f
                .chosen
                .iter()
                .filter(|c| c.service == "obs/prometheus-server")
                .collect();
            assert_eq!(won.len(), 1, "{:?}", f.chosen);
            assert_eq!(won[0].detector, "custom", "{:?}", won[0]);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn instance_check_sees_a_renamed_instance() {
    let dir = real_dir();
    let mut set = detector_set();
    let mut f = run_family(
        &mut set,
        "kube-prometheus-stack",
        &dir.join("kube-prometheus-stack.yaml"),
        &dir.join("kube-prometheus-stack.canonical.yaml"),
    );
    assert!(
        instance_problems(&f).is_empty(),
        "{:?}",
        instance_problems(&f)
    );
    let renamed = f
        .chosen
        .iter_mut()
        .find(|c| c.toolset == "prometheus/metrics")
        .expect("kube-prometheus-stack has a Prometheus");
    renamed.instance = "monitoring/prometheus-operated".into();
    let problems = instance_problems(&f);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].contains("monitoring/prometheus-operated"));
}

/// The example cluster `discover --example` embeds (`host/src/discover.rs`) is made of these
/// fixtures: each read with the namespace its canonical file gives, and discovery over all of
/// them together finds exactly what the families' judgements say, named as they say.
#[test]
fn embedded_example_cluster_is_judged_by_its_families() {
    use dynamic_toolset::discover::{EXAMPLE_CLUSTER, example_cluster};
    let fixtures = canonical::fixtures_dir();
    let mut canon = CanonicalFile::default();
    for (file, namespace, text) in EXAMPLE_CLUSTER {
        let path = fixtures.join(file);
        assert_eq!(
            *text,
            std::fs::read_to_string(&path).unwrap(),
            "{file} is embedded as is"
        );
        let family = read_canonical(&path.with_extension("canonical.yaml"));
        assert_eq!(
            *namespace,
            family.default_namespace(),
            "{file}: embedded with another namespace than its canonical file's"
        );
        canon.canonical.extend(family.canonical);
        canon.acceptable.extend(family.acceptable);
        canon.nothing.extend(family.nothing);
    }
    let loaded = example_cluster();
    assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
    let services: Vec<_> = loaded.services.into_iter().map(|(_, s)| s).collect();
    let keys: BTreeSet<String> = services
        .iter()
        .map(|s| format!("{}/{}", s.namespace, s.name))
        .collect();
    assert_eq!(keys.len(), services.len(), "a Service is in two families");
    let mut set = detector_set();
    let f = Family {
        name: "example cluster".into(),
        chosen: choose(&mut set, "example cluster", &services),
        canon,
        services: keys,
    };
    let mut problems = coverage_problems(&f);
    problems.extend(instance_problems(&f));
    let s = score(&f.canon, &f.chosen);
    assert!(
        s.missed.is_empty() && s.false_toolsets.is_empty() && s.duplicates.is_empty(),
        "missed {:?}, false {:?}, duplicate {:?}",
        s.missed,
        s.false_toolsets,
        s.duplicates
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    let toolsets: BTreeSet<&str> = f.chosen.iter().map(|c| c.toolset.as_str()).collect();
    assert!(toolsets.len() >= 8, "a thin example: {toolsets:?}");
}

#[test]
fn probed_scoring_moves_to_the_proving_candidate_and_drops_unproven_required_ones() {
    let mut k = canonical(
        "jaeger/traces",
        "tracing/jaeger",
        "http://jaeger.tracing.svc.cluster.local:16686/jaeger/ui",
        &[],
    );
    k.offline = Some(canonical::OfflineGuess {
        url: "http://jaeger.tracing.svc.cluster.local:16686".into(),
        why: "test".into(),
    });
    let canon = CanonicalFile {
        canonical: vec![k],
        ..CanonicalFile::default()
    };
    let mut guess = chosen(
        "jaeger/traces",
        "tracing/jaeger",
        "http://jaeger.tracing.svc.cluster.local:16686",
    );
    // Offline, the documented guess counts as found (and is reported as a guess).
    let s = score(&canon, std::slice::from_ref(&guess));
    assert_eq!((s.found.len(), s.guessed.len()), (1, 1));
    // Strictly (with probes) the guess alone is a miss and a false toolset.
    let p = score_by(&canon, &probed(&canon, std::slice::from_ref(&guess)), false);
    assert_eq!((p.found.len(), p.false_toolsets.len()), (0, 1));
    // With candidates, the probe moves it to the one that proves itself.
    guess.candidates = vec![
        "http://jaeger.tracing.svc.cluster.local:16686".into(),
        "http://jaeger.tracing.svc.cluster.local:16686/jaeger".into(),
        "http://jaeger.tracing.svc.cluster.local:16686/jaeger/ui".into(),
    ];
    let p = score_by(&canon, &probed(&canon, std::slice::from_ref(&guess)), false);
    assert_eq!((p.found.len(), p.false_toolsets.len()), (1, 0));
    // A required identification that nothing proves is not published.
    let mut thin = chosen(
        "jaeger/traces",
        "tracing/other",
        "http://other.tracing.svc.cluster.local:16686",
    );
    thin.candidates = vec!["http://other.tracing.svc.cluster.local:16686".into()];
    thin.required = true;
    assert!(probed(&canon, &[thin.clone()]).is_empty());
    thin.required = false;
    assert_eq!(probed(&canon, &[thin]).len(), 1);
}
