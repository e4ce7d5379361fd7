//! `dynamic-toolset discover` and `dynamic-toolset detectors`: the offline pipeline over
//! manifests (see [`crate::pipeline`]), printed as YAML, JSON or a ConfigMap.

use std::collections::BTreeMap;
use std::process::ExitCode;

use anyhow::Context;
use dynamic_toolset_core::assemble;
use dynamic_toolset_core::overrides::Overrides;
use dynamic_toolset_core::render::{self, ConfigMapTarget, Discovery};
use dynamic_toolset_core::{ServiceSnapshot, explain, limits, select};

use crate::cli::{DetectorArgs, DiscoverArgs, Format};
use crate::manifest::{self, ReadOptions};
use crate::pipeline::{
    assemble_output, detect_all, health_map, load_detectors, probe_targets, timestamp,
};
use crate::probe::{ProbeOutcome, Prober};

/// One [`EXAMPLE_CLUSTER`] entry: a file under `tests/fixtures/` and its release namespace.
macro_rules! example {
    ($file:literal, $namespace:literal) => {
        (
            $file,
            $namespace,
            include_str!(concat!("../../tests/fixtures/", $file)),
        )
    };
}

/// The example cluster embedded in the binary (`discover --example`): a realistic mixed
/// cluster made of Services from real upstream sources (`tests/fixtures/real/`, each file citing
/// its repository, commit and command; see `tests/fixtures/real/SOURCES.md`):
/// kube-prometheus-stack (Prometheus, Alertmanager, Grafana), Bitnami Thanos, Loki (simple
/// scalable), tempo-distributed, Jaeger, ECK, VictoriaLogs, VictoriaMetrics, Grafana, Kubecost
/// (whose bundled backends must stay out), everyday workloads (ingress-nginx, cert-manager,
/// Argo CD, Redis, PostgreSQL, the API server and CoreDNS), plus the synthetic example of this
/// project's own `kubernaut.io/toolset*` annotations (`tests/fixtures/synthetic/annotations.yaml`).
///
/// Each entry: (file name, the release namespace its objects without `metadata.namespace` live
/// in, as its `<family>.canonical.yaml` says, text).
pub const EXAMPLE_CLUSTER: &[(&str, &str, &str)] = &[
    example!("real/kube-prometheus-stack.yaml", "monitoring"),
    example!("real/bitnami-thanos.yaml", "monitoring"),
    example!("real/loki-simple-scalable.yaml", "loki"),
    example!("real/tempo-distributed.yaml", "tempo"),
    example!("real/jaeger.yaml", "tracing"),
    example!("real/eck.yaml", "default"),
    example!("real/victoria-logs-single.yaml", "logs"),
    example!("real/victoria-metrics-single.yaml", "vm"),
    example!("real/grafana.yaml", "grafana"),
    example!("real/kubecost.yaml", "kubecost"),
    example!("real/infra-unrelated.yaml", "default"),
    example!("real/bitnami-apps.yaml", "apps"),
    example!("real/argo-cd.yaml", "argocd"),
    example!("real/kubernetes-core.yaml", "default"),
    example!("synthetic/annotations.yaml", "default"),
];

/// Reads [`EXAMPLE_CLUSTER`], each file with its own release namespace.
pub fn example_cluster() -> manifest::Loaded {
    let mut loaded = manifest::Loaded::default();
    for (file, namespace, text) in EXAMPLE_CLUSTER {
        let opts = ReadOptions {
            default_namespace: (*namespace).to_string(),
        };
        let one = manifest::parse_str(&format!("<example cluster: {file}>"), text, &opts);
        loaded.services.extend(one.services);
        loaded.errors.extend(one.errors);
        loaded.skipped += one.skipped;
        loaded.too_many_services |= one.too_many_services;
    }
    loaded
}

/// The process environment (for the settings flags not given).
fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// Exit status when output was produced but some input was rejected.
const EXIT_PARTIAL: u8 = 3;

/// `dynamic-toolset discover`.
pub fn run(args: &DiscoverArgs) -> anyhow::Result<ExitCode> {
    let mut problems = 0usize;

    // Overrides first: a bad file is a fatal error, before any work.
    let (overrides, overrides_text) = match &args.overrides {
        Some(path) => {
            let text = manifest::read_file_bounded(path, limits::OVERRIDES.max_bytes)
                .map_err(|e| anyhow::anyhow!("overrides file {}: {e}", path.display()))?;
            let parsed = Overrides::parse(&text)
                .map_err(|e| anyhow::anyhow!("overrides file {}: {e}", path.display()))?;
            (parsed, Some(text))
        }
        None => (Overrides::default(), None),
    };

    let opts = ReadOptions {
        default_namespace: args.default_namespace.clone(),
    };
    let loaded = if args.example {
        example_cluster()
    } else {
        manifest::read_paths(&args.manifests, &opts)?
    };
    for e in &loaded.errors {
        tracing::error!("{e}");
    }
    problems += loaded.errors.len();
    tracing::info!(
        services = loaded.services.len(),
        skipped_other_kinds = loaded.skipped,
        rejected = loaded.errors.len(),
        "manifests read"
    );
    let services: Vec<ServiceSnapshot> = loaded.services.into_iter().map(|(_, s)| s).collect();

    let mut loaded = load_detectors(&args.runtime.setup(process_env))?;
    problems += loaded.errors.len();
    let policy = args.security.policy(&args.cluster_domain, process_env);
    let grants = loaded.grants();
    let detections = detect_all(&mut loaded.set, &policy, &services, &grants);
    for sd in &detections {
        problems += sd.gate.iter().filter(|n| n.refused()).count();
        for v in &sd.verdicts {
            if let Err(e) = &v.outcome {
                tracing::error!(service = %sd.service, detector = %v.detector, "detector failed: {e}");
                problems += 1;
            }
        }
    }
    let mut selection = select::select(&detections);

    let (health, probed_at) = if args.no_health_check {
        (BTreeMap::new(), None)
    } else {
        let targets = probe_targets(&selection);
        let prober = Prober::new(args.probe.settings()?)?;
        tracing::info!(endpoints = targets.len(), "probing endpoints");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start the async runtime")?;
        let outcomes = rt.block_on(prober.probe_all(&targets));
        let unresolved = outcomes
            .iter()
            .filter(|(_, o)| matches!(o, ProbeOutcome::Unhealthy { reason, .. } if reason.contains("lookup")))
            .count();
        if unresolved > 0 && unresolved == outcomes.len() {
            tracing::warn!(
                "no endpoint name resolved: cluster DNS names do not resolve outside the cluster; \
                 use --no-health-check offline, or --resolve HOST=ADDR (e.g. with kubectl port-forward)"
            );
        }
        (health_map(&mut selection, outcomes), Some(timestamp()))
    };

    let out = assemble_output(&selection, &health, probed_at.as_deref(), &overrides);
    for note in &out.assembly.notes {
        tracing::info!("{note}");
    }

    let text = match args.format {
        Format::Yaml => render::render_yaml(&out.document)?,
        Format::Json => render::render_json(&out.document)?,
        Format::Configmap => {
            let target = ConfigMapTarget {
                name: args.configmap_name.clone(),
                ..ConfigMapTarget::new(&args.configmap_namespace, timestamp())
            };
            render::render_configmap_yaml(
                &target,
                &out.document,
                overrides_text.as_deref(),
                &Discovery::new(&out.assembly, &out.merge),
            )?
        }
    };
    print!("{text}");
    if !text.ends_with('\n') {
        println!();
    }

    if args.explain {
        let ex = explain::explain(&detections, &selection, &out.assembly, &out.merge);
        eprint!("{}", ex.render_text());
    }
    let enabled = out
        .assembly
        .provenance
        .values()
        .filter(|p| p.form != assemble::EntryForm::AlwaysOn)
        .count();
    tracing::info!(
        toolsets = enabled,
        left_out = out.assembly.left_out.len(),
        "configuration written"
    );
    Ok(if problems > 0 {
        tracing::warn!(
            problems,
            "some input was rejected (see the errors above); exit status {EXIT_PARTIAL}"
        );
        ExitCode::from(EXIT_PARTIAL)
    } else {
        ExitCode::SUCCESS
    })
}

/// `dynamic-toolset detectors`: every detector with its state (loaded, rejected with the
/// reason, disabled), source and what it may emit.
pub fn list_detectors(args: &DetectorArgs) -> anyhow::Result<ExitCode> {
    let loaded = load_detectors(&args.runtime.setup(process_env))?;
    let statuses = crate::pipeline::statuses(&loaded.set, &loaded.errors, &loaded.declarations);
    let infos = loaded.set.detectors();
    println!(
        "{:<18} {:<9} {:<9} {:<28} EMITS",
        "DETECTOR", "STATUS", "VERSION", "SOURCE"
    );
    for s in &statuses {
        let info = infos.iter().find(|d| d.info.name == s.detector);
        let source = match info.map(|d| &d.source) {
            Some(dynamic_toolset_runtime::DetectorSource::Bundled(_)) => "bundled".to_string(),
            Some(dynamic_toolset_runtime::DetectorSource::File(p)) => p.display().to_string(),
            None => "-".to_string(),
        };
        let emits = match info {
            Some(d) => match &d.info.emits {
                Some(e) => e.toolsets.join(", "),
                None => format!("backends: {}", d.info.backends.join(", ")),
            },
            None => String::new(),
        };
        println!(
            "{:<18} {:<9} {:<9} {:<28} {}",
            s.detector,
            s.status,
            info.map_or("-", |d| d.info.version.as_str()),
            source,
            emits
        );
        if let Some(reason) = &s.reason {
            println!("  {reason}");
        }
    }
    let errors = loaded.errors;
    Ok(if errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_PARTIAL)
    })
}
