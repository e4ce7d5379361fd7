//! `dynamic-toolset discover` and `dynamic-toolset detectors`: the offline pipeline.
//!
//! manifests → detectors (sandboxed) → selection → health probes → assembly → overrides →
//! rendering. Every step but reading, detecting and probing is the pure core.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use anyhow::Context;
use dynamic_toolset_core::assemble::{self, Assembly, Health};
use dynamic_toolset_core::overrides::{self, MergeReport, Overrides};
use dynamic_toolset_core::render::{self, ConfigMapTarget, Discovery};
use dynamic_toolset_core::select::{self, InstanceKey, Selection};
use dynamic_toolset_core::{ServiceDetections, ServiceSnapshot, explain};
use dynamic_toolset_runtime::{DetectorSet, LoadError, RuntimeConfig};

use crate::cli::{DetectorArgs, DiscoverArgs, Format, ProbeArgs, RuntimeArgs};
use crate::manifest::{self, ReadOptions};
use crate::probe::{ProbeOutcome, ProbeSettings, ProbeTarget, Prober};

/// The example cluster embedded in the binary (`discover --example`): Services rendered
/// from real Helm charts, see `examples/README.md`.
pub const EXAMPLE_CLUSTER: &str = include_str!("../../examples/cluster.yaml");

/// Exit status when output was produced but some input was rejected.
const EXIT_PARTIAL: u8 = 3;

/// Loads the detectors, reporting plugin files that could not be loaded.
pub fn load_detectors(args: &RuntimeArgs) -> anyhow::Result<(DetectorSet, Vec<LoadError>)> {
    let cfg = RuntimeConfig {
        cache_dir: args.cache_dir.clone(),
        ..RuntimeConfig::default()
    };
    let started = std::time::Instant::now();
    let (set, errors) = DetectorSet::load(&cfg, args.detectors_dir.as_deref())
        .context("cannot start the detector runtime")?;
    tracing::info!(
        detectors = set.detectors().len(),
        failed = errors.len(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "detectors loaded"
    );
    Ok((set, errors))
}

/// Runs every detector over every Service, in input order.
pub fn detect_all(
    set: &mut DetectorSet,
    services: &[ServiceSnapshot],
    cluster_domain: &str,
) -> Vec<ServiceDetections> {
    services
        .iter()
        .map(|s| set.detect(s, cluster_domain))
        .collect()
}

/// The probes a selection needs, each verifying TLS unless the toolset is configured with
/// `verify_ssl: false` (so the probe sees what HolmesGPT will see).
pub fn probe_targets(selection: &Selection) -> Vec<ProbeTarget<InstanceKey>> {
    selection
        .probes()
        .into_iter()
        .map(|req| {
            let verify_tls = selection
                .group(&req.key)
                .and_then(|g| g.chosen.fragment.config.get("verify_ssl"))
                .and_then(|v| v.as_bool())
                .unwrap_or(true);
            ProbeTarget {
                key: req.key,
                endpoint: req.endpoint,
                probe: req.probe,
                verify_tls,
            }
        })
        .collect()
}

/// Maps probe outcomes to the core's health verdicts, logging each unhealthy endpoint.
pub fn health_map(outcomes: Vec<(InstanceKey, ProbeOutcome)>) -> BTreeMap<InstanceKey, Health> {
    outcomes
        .into_iter()
        .map(|(key, outcome)| {
            let health = match outcome {
                ProbeOutcome::Healthy { .. } => Health::Healthy,
                ProbeOutcome::Unhealthy {
                    url,
                    reason,
                    attempts,
                } => {
                    tracing::warn!(toolset = %key.toolset, instance = %key.instance, %url, attempts, %reason, "endpoint unhealthy: left out");
                    Health::Unhealthy {
                        reason: format!("{url}: {reason}"),
                    }
                }
            };
            (key, health)
        })
        .collect()
}

/// Probe settings from the command line.
pub fn probe_settings(args: &ProbeArgs) -> anyhow::Result<ProbeSettings> {
    let secs = |name: &str, v: f64| {
        Duration::try_from_secs_f64(v)
            .ok()
            .filter(|d| !d.is_zero())
            .with_context(|| format!("--{name}: {v} is not a positive number of seconds"))
    };
    Ok(ProbeSettings {
        timeout: secs("probe-timeout", args.probe_timeout)?,
        attempts: args.probe_attempts,
        interval: secs("probe-interval", args.probe_interval)?,
        insecure_tls: args.insecure_skip_tls_verify,
        resolve: args.resolve.clone(),
        ..ProbeSettings::default()
    })
}

/// The result of the pure part of the pipeline.
pub struct Outcome {
    pub assembly: Assembly,
    /// The merged HolmesGPT document.
    pub document: serde_json::Value,
    pub merge: MergeReport,
}

/// Assembly and overrides: pure.
pub fn assemble_output(
    selection: &Selection,
    health: &BTreeMap<InstanceKey, Health>,
    probed_at: Option<&str>,
    overrides: &Overrides,
) -> Outcome {
    let assembly = assemble::assemble(selection, health, probed_at);
    let (document, merge) = overrides::merge(&assembly.document(), overrides);
    Outcome {
        assembly,
        document,
        merge,
    }
}

/// RFC 3339 time of `SOURCE_DATE_EPOCH` when set (reproducible output), else now.
fn timestamp() -> String {
    let t = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .map(|s| SystemTime::UNIX_EPOCH + Duration::from_secs(s))
        .unwrap_or_else(SystemTime::now);
    humantime::format_rfc3339_seconds(t).to_string()
}

/// `dynamic-toolset discover`.
pub fn run(args: &DiscoverArgs) -> anyhow::Result<ExitCode> {
    let mut problems = 0usize;

    // Overrides first: a bad file is a fatal error, before any work.
    let (overrides, overrides_text) = match &args.overrides {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read overrides file {}", path.display()))?;
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
        manifest::parse_str("<example cluster>", EXAMPLE_CLUSTER, &opts)
    } else {
        manifest::read_paths(&args.manifests, &opts).map_err(anyhow::Error::msg)?
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

    let (mut set, load_errors) = load_detectors(&args.runtime)?;
    problems += load_errors.len();
    let detections = detect_all(&mut set, &services, &args.cluster_domain);
    for sd in &detections {
        for v in &sd.verdicts {
            if let Err(e) = &v.outcome {
                tracing::error!(service = %sd.service, detector = %v.detector, "detector failed: {e}");
                problems += 1;
            }
        }
    }
    let selection = select::select(&detections);

    let (health, probed_at) = if args.no_health_check {
        (BTreeMap::new(), None)
    } else {
        let targets = probe_targets(&selection);
        let prober = Prober::new(probe_settings(&args.probe)?).map_err(anyhow::Error::msg)?;
        tracing::info!(endpoints = targets.len(), "probing endpoints");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start the async runtime")?;
        let outcomes = rt.block_on(prober.probe_all(&targets));
        (health_map(outcomes), Some(timestamp()))
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

/// `dynamic-toolset detectors`.
pub fn list_detectors(args: &DetectorArgs) -> anyhow::Result<ExitCode> {
    let (set, errors) = load_detectors(&args.runtime)?;
    for d in set.detectors() {
        println!(
            "{:<16} {:<8} {:<40} {}",
            d.info.name,
            d.info.version,
            d.info.backends.join(","),
            d.source
        );
    }
    for e in &errors {
        println!("NOT LOADED: {e}");
    }
    Ok(if errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_PARTIAL)
    })
}
