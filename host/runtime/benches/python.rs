//! The example Python detector (componentize-py, under the deny-by-default WASI) beside a
//! bundled Rust detector (prometheus), measured in one run: component size, load time
//! (compile; from the precompiled cache), `detect` on a reused instance over 10,000
//! synthetic Services, the linear memory one instance needs, and the process RSS a loaded
//! detector adds.
//!
//! `cargo bench -p dynamic-toolset-runtime --bench python` (builds the Python component
//! first if needed: pip and componentize-py). Prints one table (see BENCHMARKS.md).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use dynamic_toolset_core::{ServicePort, ServiceSnapshot};
use dynamic_toolset_runtime::{
    DetectorSet, DetectorSource, Limits, RuntimeConfig, Spec, bundled::BUNDLED,
};

const SERVICES: usize = 10_000;
const DOMAIN: &str = "cluster.local";

fn service(i: usize) -> ServiceSnapshot {
    let (name, labels, port): (String, &[(&str, &str)], u16) = match i % 100 {
        // The Kubernaut Context API (the example's fixture), 1 in 100.
        0 => ("kubernaut-context-api".into(), &[], 8091),
        // Prometheus as kube-prometheus-stack renders it, 1 in 10.
        1..=10 => (
            format!("kps-prometheus-{i}"),
            &[
                ("app", "kube-prometheus-stack-prometheus"),
                ("app.kubernetes.io/instance", "kps"),
                ("release", "kps"),
            ],
            9090,
        ),
        // Everyday workloads.
        _ => (
            format!("web-{i}"),
            &[
                ("app.kubernetes.io/name", "web"),
                ("app.kubernetes.io/instance", "shop"),
            ],
            8080,
        ),
    };
    ServiceSnapshot {
        name,
        namespace: format!("team-{}", i % 40),
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>(),
        service_type: "ClusterIP".into(),
        cluster_ip: Some(format!("10.96.{}.{}", i / 250, i % 250)),
        ports: vec![ServicePort {
            name: Some("http".into()),
            port,
            target_port: Some(port.to_string()),
            protocol: "TCP".into(),
            app_protocol: None,
        }],
        ..Default::default()
    }
}

struct Subject {
    label: &'static str,
    spec: Spec,
    bytes: usize,
}

fn python_spec(path: &Path, memory: usize) -> Spec {
    Spec {
        origin: DetectorSource::File(path.to_path_buf()),
        sha256: None,
        settings: serde_json::Map::new(),
        limits: Limits {
            memory_limit_bytes: Some(memory),
            ..Limits::default()
        },
        name: Some("kubernaut-context".into()),
        wasi: true,
    }
}

fn with_memory(spec: &Spec, memory: usize) -> Spec {
    let mut s = spec.clone();
    s.limits.memory_limit_bytes = Some(memory);
    s
}

fn load(cfg: &RuntimeConfig, spec: &Spec) -> Result<DetectorSet, String> {
    let (set, errors) = DetectorSet::load_specs(cfg, vec![spec.clone()]).unwrap();
    match errors.first() {
        Some(e) => Err(e.to_string()),
        None => Ok(set),
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// Smallest memory limit (MiB) at which the detector loads and answers the Service.
fn memory_floor(cfg: &RuntimeConfig, spec: &Spec, svc: &ServiceSnapshot) -> usize {
    let works = |mib: usize| {
        load(cfg, &with_memory(spec, mib << 20))
            .map(|mut set| set.detect(svc, DOMAIN).verdicts[0].outcome.is_ok())
            .unwrap_or(false)
    };
    let (mut lo, mut hi) = (0usize, 256usize);
    assert!(works(hi));
    while hi - lo > 1 {
        let mid = (lo + hi) / 2;
        if works(mid) { hi = mid } else { lo = mid }
    }
    hi
}

fn main() {
    let root = guest_build::find_workspace_root(Path::new(env!("CARGO_MANIFEST_DIR"))).unwrap();
    let built = guest_build::python::build(&root, &[guest_build::python::DETECTOR]).unwrap();
    let python: PathBuf = built[0].clone();
    let prometheus_bytes = BUNDLED
        .iter()
        .find(|(n, _)| *n == "prometheus")
        .map(|(_, b)| b.len())
        .unwrap();
    let subjects = [
        Subject {
            label: "prometheus (Rust, bundled)",
            spec: Spec::bundled("prometheus"),
            bytes: prometheus_bytes,
        },
        Subject {
            label: "kubernaut-context (Python, WASI)",
            spec: python_spec(&python, 64 << 20),
            bytes: std::fs::metadata(&python).unwrap().len() as usize,
        },
    ];
    let services: Vec<ServiceSnapshot> = (0..SERVICES).map(service).collect();
    let cache = std::env::temp_dir().join(format!("dt-bench-python-{}", std::process::id()));
    let cached = RuntimeConfig {
        cache_dir: Some(cache.clone()),
        ..RuntimeConfig::default()
    };
    let uncached = RuntimeConfig::default();

    println!();
    println!(
        "Python detector beside a Rust one ({SERVICES} synthetic Services, 1% Context API, 10% Prometheus)"
    );
    println!(
        "{:<34} {:>10} {:>11} {:>11} {:>10} {:>10} {:>9} {:>9} {:>9}",
        "detector",
        "size KiB",
        "compile ms",
        "cached ms",
        "us/call",
        "max us",
        "matched",
        "mem MiB",
        "RSS MiB"
    );
    for s in &subjects {
        // Load (compile + instantiate + metadata/configure), no cache: 3 runs.
        let compile = median(
            (0..3)
                .map(|_| {
                    let t = Instant::now();
                    black_box(load(&uncached, &s.spec).unwrap());
                    t.elapsed()
                })
                .collect(),
        );
        drop(load(&cached, &s.spec).unwrap()); // fill the cache
        let from_cache = median(
            (0..5)
                .map(|_| {
                    let t = Instant::now();
                    black_box(load(&cached, &s.spec).unwrap());
                    t.elapsed()
                })
                .collect(),
        );
        // RSS a loaded detector adds (engine, code from the cache, one instance).
        let before = rss_kib();
        let mut set = load(&cached, &s.spec).unwrap();
        let rss = rss_kib().saturating_sub(before);
        // Warm up, then measure on a fresh set.
        for svc in &services {
            black_box(set.detect(svc, DOMAIN));
        }
        let mut set = load(&cached, &s.spec).unwrap();
        for svc in &services {
            black_box(set.detect(svc, DOMAIN));
        }
        let stats = &set.stats()[0];
        assert_eq!(stats.failures.total(), 0, "{stats:?}");
        let mem = memory_floor(&cached, &s.spec, &services[0]);
        println!(
            "{:<34} {:>10.0} {:>11.1} {:>11.1} {:>10.2} {:>10.0} {:>9} {:>9} {:>9.1}",
            s.label,
            s.bytes as f64 / 1024.0,
            compile.as_secs_f64() * 1e3,
            from_cache.as_secs_f64() * 1e3,
            stats.total_time.as_secs_f64() * 1e6 / stats.calls as f64,
            stats.max_time.as_secs_f64() * 1e6,
            stats.matched,
            mem,
            rss as f64 / 1024.0,
        );
    }
    let _ = std::fs::remove_dir_all(cache);
}
