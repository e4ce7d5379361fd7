//! `dynamic-toolset detectors test FILE.wasm -m MANIFESTS...`: one detector component, no
//! bundled detector beside it, run over the Services of manifests the way the host runs it
//! (the sandbox, the runtime's output checks, then the validation gate), with every verdict,
//! fragment, candidate and gate note shown. What a detector author iterates with.
//!
//! Each fragment goes through the gate ([`gate::screen`], as [`crate::pipeline::detect_one`]
//! calls it) on its own, so every note is tied to the fragment it is about and a refused
//! fragment is still shown as the detector wrote it.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use dynamic_toolset_core::gate::{self, Grants, Policy};
use dynamic_toolset_core::{
    Detection, DetectorFailure, Emits, FailureKind, Fragment, GateNote, ServiceDetections,
    ServiceSnapshot, Verdict,
};
use dynamic_toolset_runtime::{DetectorSet, LoadedInfo, RuntimeConfig};
use serde::Serialize;

use crate::cli::{DetectorTestArgs, TestOutput};
use crate::config::keys;
use crate::manifest::{self, ReadOptions};
use crate::pipeline;

/// Exit status when the detector ran but something needs the author's attention.
const EXIT_PROBLEMS: u8 = 3;

/// The whole report (`-o json` prints it as is).
#[derive(Debug, Serialize)]
pub struct Report {
    pub detector: DetectorReport,
    pub services: Vec<ServiceReport>,
    /// Manifest documents that could not be used (file, document, object, field, reason).
    pub manifest_errors: Vec<String>,
    pub summary: Summary,
}

/// The component and what it says of itself.
#[derive(Debug, Serialize)]
pub struct DetectorReport {
    pub file: String,
    pub sha256: String,
    pub name: String,
    pub version: String,
    pub backends: Vec<String>,
    /// What it declares it may emit (contract 1.1 `setup`); none without that export.
    pub emits: Option<Emits>,
    /// The HTTP APIs it describes (contract 1.2 `http-apis`), as the host read them: the
    /// host builds a HolmesGPT `type: http` toolset of each on an admitted fragment.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub http_apis: Vec<dynamic_toolset_core::HttpApi>,
    /// The contract interfaces it exports.
    pub exports: Vec<&'static str>,
}

/// One Service and the detector's verdict on it.
#[derive(Debug, Serialize)]
pub struct ServiceReport {
    /// `<namespace>/<name>`.
    pub service: String,
    /// Where it was read: file and document.
    pub origin: String,
    /// `matched`, `declined`, `unrelated` or `failed`.
    pub verdict: &'static str,
    /// The decline reason, or the failure's message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<FailureKind>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fragments: Vec<FragmentReport>,
}

/// One fragment as the detector returned it (after the runtime's checks), with its
/// candidates, and what the validation gate did with it.
#[derive(Debug, Serialize)]
pub struct FragmentReport {
    /// False when the gate refused it: the host would drop it.
    pub admitted: bool,
    pub fragment: Fragment,
    /// The gate's notes on it: refusals (of the fragment or one of its candidates) and
    /// changes (rank clamped, credentials withheld).
    pub gate: Vec<GateNote>,
}

/// Counts over every Service.
#[derive(Debug, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub services: usize,
    pub matched: usize,
    pub declined: usize,
    pub unrelated: usize,
    pub failed: usize,
    pub fragments_admitted: usize,
    pub fragments_refused: usize,
    /// Gate notes that refused a fragment or a candidate.
    pub gate_refusals: usize,
}

/// `dynamic-toolset detectors test`.
pub fn run(args: &DetectorTestArgs) -> anyhow::Result<ExitCode> {
    let cache_dir = args.cache_dir.clone().or_else(|| {
        keys::env_name(keys::DET_CACHE)
            .and_then(std::env::var_os)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    });
    let cfg = RuntimeConfig {
        cache_dir,
        ..RuntimeConfig::default()
    };
    let settings = match &args.settings {
        None => serde_json::Map::new(),
        Some(text) => match serde_json::from_str(text) {
            Ok(serde_json::Value::Object(map)) => map,
            Ok(_) => bail!("--settings must be a JSON object, e.g. '{{\"key\": \"value\"}}'"),
            Err(e) => bail!("--settings is not valid JSON: {e}"),
        },
    };
    let (mut set, errors) = DetectorSet::load_file(&cfg, &args.file, settings, args.wasi)
        .context("cannot start the detector runtime")?;
    if let Some(e) = errors.first() {
        bail!("cannot load detector {e}");
    }
    let Some(info) = set.detectors().into_iter().next() else {
        bail!(
            "cannot load detector {}: nothing loaded",
            args.file.display()
        );
    };

    let opts = ReadOptions {
        default_namespace: args.default_namespace.clone(),
    };
    let loaded = manifest::read_paths(&args.manifests, &opts)?;
    for e in &loaded.errors {
        tracing::error!("{e}");
    }
    let policy = args
        .security
        .policy(&args.cluster_domain, |k| std::env::var(k).ok());
    // Screened as a declared file would be: the baseline gate, its own declared output,
    // and its grant (`--grants`; without it the strict default grant: endpoints on its
    // Service only, no commands).
    let grant = match &args.grants {
        None => dynamic_toolset_core::gate::DetectorGrant::default(),
        Some(text) => crate::detectors::declare::parse_grants(text)
            .map_err(|e| anyhow::anyhow!("--grants: {e}"))?,
    };
    let mut grants = pipeline::grants(&set, &Default::default());
    grants.grant(&info.info.name, grant);
    let services = loaded
        .services
        .iter()
        .map(|(origin, svc)| {
            let detections = set.detect(svc, &policy.cluster_domain);
            service_report(origin.to_string(), svc, detections, &grants, &policy)
        })
        .collect();
    let report = build_report(
        &info,
        args.file.display().to_string(),
        services,
        loaded.errors.iter().map(ToString::to_string).collect(),
    );

    match args.output {
        TestOutput::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        TestOutput::Text => print!("{}", render_text(&report, args.hide_unrelated)),
    }
    let s = &report.summary;
    Ok(
        if s.failed + s.gate_refusals + report.manifest_errors.len() > 0 {
            ExitCode::from(EXIT_PROBLEMS)
        } else {
            ExitCode::SUCCESS
        },
    )
}

fn build_report(
    info: &LoadedInfo,
    file: String,
    services: Vec<ServiceReport>,
    manifest_errors: Vec<String>,
) -> Report {
    let mut summary = Summary {
        services: services.len(),
        ..Summary::default()
    };
    for s in &services {
        match s.verdict {
            "matched" => summary.matched += 1,
            "declined" => summary.declined += 1,
            "failed" => summary.failed += 1,
            _ => summary.unrelated += 1,
        }
        for f in &s.fragments {
            if f.admitted {
                summary.fragments_admitted += 1;
            } else {
                summary.fragments_refused += 1;
            }
            summary.gate_refusals += f.gate.iter().filter(|n| n.refused()).count();
        }
    }
    let mut exports = vec!["detector"];
    if info.capabilities.setup {
        exports.push("setup");
    }
    if info.capabilities.identify {
        exports.push("identify");
    }
    if info.capabilities.http_apis {
        exports.push("http-apis");
    }
    Report {
        detector: DetectorReport {
            file,
            sha256: info.sha256.clone(),
            name: info.info.name.clone(),
            version: info.info.version.clone(),
            backends: info.info.backends.clone(),
            emits: info.info.emits.clone(),
            http_apis: info.info.http_apis.clone(),
            exports,
        },
        services,
        manifest_errors,
        summary,
    }
}

/// The report on one Service from the runtime's detections (one verdict: one detector).
fn service_report(
    origin: String,
    svc: &ServiceSnapshot,
    detections: ServiceDetections,
    grants: &Grants,
    policy: &Policy,
) -> ServiceReport {
    let mut report = ServiceReport {
        service: detections.service.to_string(),
        origin,
        verdict: "unrelated",
        reason: None,
        failure: None,
        fragments: Vec::new(),
    };
    let Some(verdict) = detections.verdicts.first() else {
        return report;
    };
    match &verdict.outcome {
        Ok(Detection::Unrelated) => {}
        Ok(Detection::Declined(reason)) => {
            report.verdict = "declined";
            report.reason = Some(reason.clone());
        }
        Err(DetectorFailure { kind, message }) => {
            report.verdict = "failed";
            report.failure = Some(*kind);
            report.reason = Some(message.clone());
        }
        Ok(Detection::Matched(fragments)) => {
            report.verdict = "matched";
            report.fragments = fragments
                .iter()
                .map(|f| screen_one(svc, &detections, &verdict.detector, f, grants, policy))
                .collect();
        }
    }
    report
}

/// Passes one fragment alone through the gate.
fn screen_one(
    svc: &ServiceSnapshot,
    detections: &ServiceDetections,
    detector: &str,
    fragment: &Fragment,
    grants: &Grants,
    policy: &Policy,
) -> FragmentReport {
    let mut alone = ServiceDetections {
        verdicts: vec![Verdict {
            detector: detector.to_string(),
            outcome: Ok(Detection::Matched(vec![fragment.clone()])),
        }],
        gate: Vec::new(),
        ..detections.clone()
    };
    gate::screen(svc, &mut alone, grants, policy);
    let admitted = matches!(
        alone.verdicts.first().map(|v| &v.outcome),
        Some(Ok(Detection::Matched(kept))) if !kept.is_empty()
    );
    FragmentReport {
        admitted,
        fragment: fragment.clone(),
        gate: alone.gate,
    }
}

/// Text from a third-party component or a manifest as it may reach a terminal: control
/// characters (escape sequences, newlines) become `?`.
fn clean(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// The report for a person.
pub fn render_text(r: &Report, hide_unrelated: bool) -> String {
    let mut out = String::new();
    let d = &r.detector;
    let _ = writeln!(
        out,
        "detector {} {} ({})",
        clean(&d.name),
        clean(&d.version),
        d.file
    );
    let _ = writeln!(out, "  sha256    {}", d.sha256);
    let _ = writeln!(out, "  backends  {}", clean(&d.backends.join(", ")));
    let declares = match &d.emits {
        Some(e) => format!(
            "{}{}",
            clean(&e.toolsets.join(", ")),
            if e.custom_toolsets {
                " (and custom toolsets)"
            } else {
                ""
            }
        ),
        None => "nothing (no setup export: its backends' toolsets)".to_string(),
    };
    let _ = writeln!(out, "  declares  {declares}");
    // What HolmesGPT's model will read, shown whole for the operator to review.
    for api in &d.http_apis {
        let _ = writeln!(
            out,
            "  http api  {}: GET {} (a type: http toolset the host builds)",
            clean(&api.toolset),
            clean(&api.paths.join(", "))
        );
        let _ = writeln!(out, "            {}", clean(&api.description));
        for line in api.instructions.lines() {
            let _ = writeln!(out, "            | {}", clean(line));
        }
    }
    let _ = writeln!(out, "  exports   {}", d.exports.join(", "));
    for s in &r.services {
        if hide_unrelated && s.verdict == "unrelated" {
            continue;
        }
        let _ = write!(
            out,
            "\n{} ({}): {}",
            clean(&s.service),
            clean(&s.origin),
            s.verdict
        );
        match (&s.reason, s.fragments.len()) {
            (Some(reason), _) => {
                let _ = writeln!(out, ": {}", clean(reason));
            }
            (None, 0) => out.push('\n'),
            (None, 1) => out.push_str(", 1 fragment\n"),
            (None, n) => {
                let _ = writeln!(out, ", {n} fragments");
            }
        }
        for f in &s.fragments {
            render_fragment(&mut out, f);
        }
    }
    let s = &r.summary;
    let _ = writeln!(
        out,
        "\n{} Services: {} matched, {} declined, {} unrelated, {} failed; fragments: {} admitted, {} refused",
        s.services,
        s.matched,
        s.declined,
        s.unrelated,
        s.failed,
        s.fragments_admitted,
        s.fragments_refused
    );
    if !r.manifest_errors.is_empty() {
        let _ = writeln!(
            out,
            "{} manifest document(s) rejected (see stderr)",
            r.manifest_errors.len()
        );
    }
    out
}

fn render_fragment(out: &mut String, r: &FragmentReport) {
    let f = &r.fragment;
    let _ = writeln!(
        out,
        "  - {}  backend {}  instance {}  rank {}  {}",
        clean(&f.toolset),
        clean(&f.backend),
        clean(&f.instance),
        f.rank,
        if r.admitted {
            "admitted"
        } else {
            "REFUSED by the gate"
        }
    );
    let _ = writeln!(out, "      endpoint    {}", clean(&f.endpoint));
    let health = |h: &Option<dynamic_toolset_core::HealthProbe>| match h {
        Some(h) => format!(
            "{} port {} {}{}",
            h.scheme.as_str(),
            h.port,
            clean(&h.path),
            if h.accepted_statuses.is_empty() {
                ", statuses 200-399".to_string()
            } else {
                format!(", statuses {:?}", h.accepted_statuses)
            }
        ),
        None => "none".to_string(),
    };
    let _ = writeln!(out, "      health      {}", health(&f.health));
    let config = serde_json::Value::Object(f.config.clone()).to_string();
    let _ = writeln!(out, "      config      {}", clean(&config));
    if let Some(id) = &f.identification {
        let _ = writeln!(
            out,
            "      candidates  {} ({})",
            id.candidates.len(),
            if id.required {
                "required: without a proven candidate the fragment is dropped"
            } else {
                "optional: without a proven candidate the fragment's own endpoint stands"
            }
        );
        for (i, c) in id.candidates.iter().enumerate() {
            let fp = &c.fingerprint;
            let mut proof = format!("GET {}", clean(&fp.url_for(&c.endpoint)));
            let statuses = if fp.statuses.is_empty() {
                "200".to_string()
            } else {
                format!("{:?}", fp.statuses)
            };
            let _ = write!(proof, " -> {statuses}");
            if !fp.json_pointers.is_empty() {
                let _ = write!(proof, ", JSON with {}", clean(&fp.json_pointers.join(" ")));
            }
            for t in &fp.body_contains {
                let _ = write!(proof, ", body contains {:?}", clean(t));
            }
            let _ = writeln!(out, "        {}. {}", i + 1, clean(&c.endpoint));
            let _ = writeln!(out, "           fingerprint {proof}");
            let _ = writeln!(out, "           health {}", health(&c.health));
            if !c.why.is_empty() {
                let _ = writeln!(out, "           why {}", clean(&c.why));
            }
        }
    }
    for n in &r.gate {
        let verb = if n.refused() { "refused" } else { "noted" };
        let _ = writeln!(
            out,
            "      gate        {verb} {} ({}): {}",
            clean(&n.field),
            n.kind,
            clean(&n.message)
        );
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use dynamic_toolset_core::{
        DetectorInfo, EndpointCandidate, Fingerprint, HealthProbe, Identification, Scheme,
        ServicePort,
    };
    use std::collections::BTreeMap;

    fn svc() -> ServiceSnapshot {
        ServiceSnapshot {
            name: "acme".into(),
            namespace: "monitoring".into(),
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
            service_type: "ClusterIP".into(),
            cluster_ip: Some("10.0.0.1".into()),
            ports: vec![ServicePort {
                name: Some("http".into()),
                port: 9090,
                target_port: None,
                protocol: "TCP".into(),
                app_protocol: None,
            }],
            ..ServiceSnapshot::default()
        }
    }

    fn fragment(endpoint: &str, rank: u32) -> Fragment {
        let mut config = serde_json::Map::new();
        config.insert("prometheus_url".into(), endpoint.into());
        Fragment {
            toolset: "prometheus/metrics".into(),
            backend: "prometheus".into(),
            instance: "monitoring/acme".into(),
            rank,
            endpoint: endpoint.into(),
            health: Some(HealthProbe {
                port: 9090,
                scheme: Scheme::Http,
                path: "/-/ready".into(),
                accepted_statuses: vec![200],
            }),
            config,
            custom: None,
            identification: None,
            http: None,
        }
    }

    fn detections(outcome: Result<Detection, DetectorFailure>) -> ServiceDetections {
        ServiceDetections {
            service: svc().service_ref(),
            verdicts: vec![Verdict {
                detector: "acme".into(),
                outcome,
            }],
            trusted: false,
            gate: Vec::new(),
            grouping: Default::default(),
        }
    }

    fn info() -> LoadedInfo {
        LoadedInfo {
            info: DetectorInfo {
                name: "acme".into(),
                version: "0.1.0".into(),
                backends: vec!["prometheus".into()],
                emits: Some(Emits {
                    toolsets: vec!["prometheus/metrics".into()],
                    custom_toolsets: false,
                }),
                http_apis: Vec::new(),
            },
            source: dynamic_toolset_runtime::DetectorSource::File("acme.wasm".into()),
            sha256: "ab".repeat(32),
            capabilities: Default::default(),
            code: dynamic_toolset_runtime::CodeOrigin::Compiled,
        }
    }

    const OWN: &str = "http://acme.monitoring.svc.cluster.local:9090";

    #[test]
    fn each_fragment_gets_its_own_gate_notes() {
        let grants = Grants::from_infos([&info().info]);
        let policy = Policy::baseline("cluster.local");
        let mut good = fragment(OWN, 500);
        good.identification = Some(Identification {
            required: false,
            candidates: vec![
                EndpointCandidate {
                    endpoint: "https://acme.monitoring.svc.cluster.local:9090".into(),
                    health: Some(HealthProbe {
                        port: 9090,
                        scheme: Scheme::Https,
                        path: "/-/ready".into(),
                        accepted_statuses: vec![],
                    }),
                    config: fragment("https://acme.monitoring.svc.cluster.local:9090", 0).config,
                    fingerprint: Fingerprint {
                        path: "/api/v1/status/buildinfo".into(),
                        statuses: vec![],
                        json_pointers: vec!["/data/version".into()],
                        body_contains: vec![],
                    },
                    why: "TLS proxy".into(),
                },
                EndpointCandidate {
                    endpoint: "http://evil.example.com:9090".into(),
                    health: None,
                    config: serde_json::Map::new(),
                    fingerprint: Fingerprint {
                        path: "/".into(),
                        statuses: vec![],
                        json_pointers: vec![],
                        body_contains: vec![],
                    },
                    why: String::new(),
                },
            ],
        });
        let bad = fragment("http://evil.example.com:9090", 100);
        let d = detections(Ok(Detection::Matched(vec![good, bad])));
        let r = service_report("m.yaml: document 1".into(), &svc(), d, &grants, &policy);
        assert_eq!(r.verdict, "matched");
        assert_eq!(r.fragments.len(), 2);
        let (good, bad) = (&r.fragments[0], &r.fragments[1]);
        assert!(good.admitted);
        assert_eq!(good.fragment.rank, 500, "shown as the detector wrote it");
        assert!(good.gate.iter().any(|n| n.kind.as_str() == "rank_clamped"));
        let refused: Vec<&str> = good
            .gate
            .iter()
            .filter(|n| n.refused())
            .map(|n| n.field.as_str())
            .collect();
        assert_eq!(
            refused,
            ["identify.candidates[1].endpoint"],
            "{:#?}",
            good.gate
        );
        assert!(!bad.admitted);
        assert!(bad.gate.iter().all(|n| n.refused()) && !bad.gate.is_empty());

        let report = build_report(&info(), "acme.wasm".into(), vec![r], vec![]);
        assert_eq!(
            report.summary,
            Summary {
                services: 1,
                matched: 1,
                fragments_admitted: 1,
                fragments_refused: 1,
                gate_refusals: 2,
                ..Summary::default()
            }
        );
        let text = render_text(&report, false);
        assert!(
            text.contains("monitoring/acme (m.yaml: document 1): matched, 2 fragments"),
            "{text}"
        );
        assert!(text.contains("rank 500  admitted"), "{text}");
        assert!(text.contains("REFUSED by the gate"), "{text}");
        assert!(text.contains("fingerprint GET https://acme.monitoring.svc.cluster.local:9090/api/v1/status/buildinfo -> 200, JSON with /data/version"), "{text}");
        assert!(
            text.contains("gate        noted rank (rank_clamped): 500 lowered to 300"),
            "{text}"
        );
        assert!(text.contains("1 Services: 1 matched, 0 declined, 0 unrelated, 0 failed; fragments: 1 admitted, 1 refused"), "{text}");
    }

    #[test]
    fn declines_failures_and_hostile_text() {
        let grants = Grants::from_infos([&info().info]);
        let policy = Policy::baseline("cluster.local");
        let declined = service_report(
            "a".into(),
            &svc(),
            detections(Ok(Detection::Declined("an exporter\x1b[2J".into()))),
            &grants,
            &policy,
        );
        let failed = service_report(
            "b".into(),
            &svc(),
            detections(Err(DetectorFailure {
                kind: FailureKind::Trap,
                message: "trap: detector `acme` panicked".into(),
            })),
            &grants,
            &policy,
        );
        let unrelated = service_report(
            "c".into(),
            &svc(),
            detections(Ok(Detection::Unrelated)),
            &grants,
            &policy,
        );
        assert_eq!(failed.failure, Some(FailureKind::Trap));
        let report = build_report(
            &info(),
            "acme.wasm".into(),
            vec![declined, failed, unrelated],
            vec!["m.yaml: document 3: bad".into()],
        );
        assert_eq!(
            (
                report.summary.declined,
                report.summary.failed,
                report.summary.unrelated
            ),
            (1, 1, 1)
        );
        let text = render_text(&report, true);
        assert!(text.contains("declined: an exporter?[2J\n"), "{text}");
        assert!(!text.contains('\x1b'));
        assert!(
            text.contains("failed: trap: detector `acme` panicked"),
            "{text}"
        );
        assert!(!text.contains("(c): unrelated"), "hidden: {text}");
        assert!(text.contains("1 manifest document(s) rejected"), "{text}");
        assert!(render_text(&report, false).contains("(c): unrelated"));
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["services"][1]["failure"], "trap");
        assert_eq!(
            json["detector"]["emits"]["toolsets"][0],
            "prometheus/metrics"
        );
    }
}
