//! Test guest standing for a third-party detector: matches Services labelled
//! `test.dynamic-toolset.io/backend=prometheus` on their first port, as
//! `prometheus/metrics` with the instance `<namespace>/<name>-v<version>`, where
//! `version` comes from its declaration's settings (so a changed declaration is a new
//! version, visible in the output). `configure` refuses settings without a positive
//! integer `version`. A Service labelled `test.dynamic-toolset.io/escape=true` makes it
//! point at another Service (refused unless granted `other_services`), and
//! `test.dynamic-toolset.io/undeclared=true` makes it emit `grafana/loki`, which it does
//! not declare.
use std::sync::atomic::{AtomicU64, Ordering};

use detector_sdk::prelude::*;

pub struct Versioned;

static VERSION: AtomicU64 = AtomicU64::new(0);

impl Detector for Versioned {
    fn metadata() -> DetectorInfo {
        metadata(
            "versioned",
            env!("CARGO_PKG_VERSION"),
            &["prometheus", "loki"],
        )
    }

    fn emits() -> Emits {
        emits(&["prometheus/metrics"], false)
    }

    fn configure(settings: &Settings) -> Result<(), String> {
        match settings.get("version").and_then(|v| v.as_u64()) {
            Some(v) if v > 0 => {
                VERSION.store(v, Ordering::Relaxed);
                Ok(())
            }
            _ => Err("settings.version must be a positive integer".to_string()),
        }
    }

    fn detect(svc: &Service) -> Detection {
        if !svc.has_label("test.dynamic-toolset.io/backend", "prometheus") {
            return Detection::Unrelated;
        }
        let Some(port) = svc.ports.first() else {
            return Detection::Unrelated;
        };
        // A trap on demand: the host re-instantiates, and must configure the new instance.
        if svc.has_label("test.dynamic-toolset.io/panic", "true") {
            panic!("asked to panic");
        }
        let version = VERSION.load(Ordering::Relaxed);
        let instance = format!("{}/{}-v{version}", svc.namespace, svc.name);
        if svc.has_label("test.dynamic-toolset.io/undeclared", "true") {
            return matched(
                FragmentBuilder::new(svc, "grafana/loki", "loki")
                    .instance(instance)
                    .endpoint(Scheme::Http, port.port, "")
                    .health("/ready", &[])
                    .config_url("api_url")
                    .build(),
            );
        }
        let mut f = FragmentBuilder::new(svc, "prometheus/metrics", "prometheus")
            .instance(instance)
            .rank(100)
            .endpoint(Scheme::Http, port.port, "")
            .health("/-/ready", &[])
            .config_url("prometheus_url")
            .build();
        if svc.has_label("test.dynamic-toolset.io/escape", "true") {
            let other = format!(
                "http://elsewhere.{}.svc.{}:{}",
                svc.namespace, svc.cluster_domain, port.port
            );
            f.config = f.config.replace(&f.endpoint, &other);
            f.endpoint = other;
        }
        matched(f)
    }
}

detector_sdk::export_detector!(Versioned);
