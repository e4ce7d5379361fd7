//! All bundled detectors over 10,000 synthetic Services (about a third belong to a
//! backend family, the rest are everyday workloads), as wasm components on reused
//! instances and as the same crates called natively; plus startup (load + compile every
//! bundled detector, with and without the precompiled cache).
//!
//! `cargo bench -p dynamic-toolset-runtime --bench detect`
//! After criterion's figures it prints a per-detector table (see BENCHMARKS.md).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group};
use dynamic_toolset_core::{ServicePort, ServiceSnapshot};
use dynamic_toolset_runtime::{DetectorSet, RuntimeConfig, bundled::BUNDLED};

const SERVICES: usize = 10_000;
const DOMAIN: &str = "cluster.local";

/// The same detector crates, linked natively (the SDK's list of them).
#[path = "../../../guest-detectors/sdk/tests/native/mod.rs"]
mod native;
use native::detectors as native_detectors;

struct Template {
    name: &'static str,
    labels: &'static [(&'static str, &'static str)],
    annotations: &'static [(&'static str, &'static str)],
    ports: &'static [(Option<&'static str>, u16)],
    headless: bool,
}

const fn t(
    name: &'static str,
    labels: &'static [(&'static str, &'static str)],
    ports: &'static [(Option<&'static str>, u16)],
) -> Template {
    Template {
        name,
        labels,
        annotations: &[],
        ports,
        headless: false,
    }
}

const HELM: (&str, &str) = ("app.kubernetes.io/managed-by", "Helm");

/// Services as common charts render them (labels abbreviated to what identifies them).
const BACKENDS: &[Template] = &[
    t(
        "kps-kube-prometheus-stack-prometheus",
        &[
            ("app", "kube-prometheus-stack-prometheus"),
            ("app.kubernetes.io/instance", "kps"),
            ("app.kubernetes.io/part-of", "kube-prometheus-stack"),
            ("release", "kps"),
            ("self-monitor", "true"),
            HELM,
        ],
        &[(Some("http-web"), 9090), (Some("reloader-web"), 8080)],
    ),
    Template {
        headless: true,
        ..t(
            "prometheus-operated",
            &[("operated-prometheus", "true")],
            &[(Some("http-web"), 9090)],
        )
    },
    t(
        "kps-kube-prometheus-stack-alertmanager",
        &[
            ("app", "kube-prometheus-stack-alertmanager"),
            ("app.kubernetes.io/instance", "kps"),
            ("app.kubernetes.io/part-of", "kube-prometheus-stack"),
            ("release", "kps"),
            HELM,
        ],
        &[(Some("http-web"), 9093), (Some("reloader-web"), 8080)],
    ),
    t(
        "kps-grafana",
        &[
            ("app.kubernetes.io/instance", "kps"),
            ("app.kubernetes.io/name", "grafana"),
            HELM,
        ],
        &[(Some("http-web"), 80)],
    ),
    t(
        "loki-gateway",
        &[
            ("app.kubernetes.io/component", "gateway"),
            ("app.kubernetes.io/instance", "loki"),
            ("app.kubernetes.io/name", "loki"),
            HELM,
        ],
        &[(Some("http-metrics"), 80)],
    ),
    t(
        "loki-write",
        &[
            ("app.kubernetes.io/component", "write"),
            ("app.kubernetes.io/instance", "loki"),
            ("app.kubernetes.io/name", "loki"),
            HELM,
        ],
        &[(Some("http-metrics"), 3100), (Some("grpc"), 9095)],
    ),
    t(
        "tempo",
        &[
            ("app.kubernetes.io/instance", "tempo"),
            ("app.kubernetes.io/name", "tempo"),
            HELM,
        ],
        &[
            (Some("tempo-prom-metrics"), 3100),
            (Some("tempo-jaeger-ui"), 16686),
            (Some("tempo-otlp-grpc"), 4317),
        ],
    ),
    t(
        "jaeger-query",
        &[
            ("app.kubernetes.io/component", "query"),
            ("app.kubernetes.io/instance", "jaeger"),
            ("app.kubernetes.io/name", "jaeger"),
            HELM,
        ],
        &[
            (Some("query"), 80),
            (Some("grpc"), 16685),
            (Some("admin"), 16687),
        ],
    ),
    t(
        "elasticsearch-master",
        &[
            ("app", "elasticsearch-master"),
            ("chart", "elasticsearch"),
            ("heritage", "Helm"),
            ("release", "elasticsearch"),
        ],
        &[(Some("http"), 9200), (Some("transport"), 9300)],
    ),
    t(
        "thanos-query",
        &[
            ("app.kubernetes.io/component", "query"),
            ("app.kubernetes.io/instance", "thanos"),
            ("app.kubernetes.io/name", "thanos"),
            HELM,
        ],
        &[(Some("http"), 9090), (Some("grpc"), 10901)],
    ),
    t(
        "vm-victoria-metrics-single-server",
        &[
            ("app", "server"),
            ("app.kubernetes.io/instance", "vm"),
            ("app.kubernetes.io/name", "victoria-metrics-single"),
            HELM,
        ],
        &[(Some("http"), 8428)],
    ),
    t(
        "kps-prometheus-node-exporter",
        &[
            ("app.kubernetes.io/instance", "kps"),
            ("app.kubernetes.io/name", "prometheus-node-exporter"),
            ("jobLabel", "node-exporter"),
            HELM,
        ],
        &[(Some("http-metrics"), 9100)],
    ),
    t(
        "kps-kube-state-metrics",
        &[
            ("app.kubernetes.io/instance", "kps"),
            ("app.kubernetes.io/name", "kube-state-metrics"),
            HELM,
        ],
        &[(Some("http"), 8080)],
    ),
    Template {
        annotations: &[
            ("kubernaut.io/toolset", "true"),
            ("kubernaut.io/toolset-type", "prometheus"),
        ],
        ..t(
            "custom-metrics",
            &[("app", "custom-metrics")],
            &[(Some("http"), 9090)],
        )
    },
];

const EVERYDAY: &[Template] = &[
    t(
        "kubernetes",
        &[("component", "apiserver"), ("provider", "kubernetes")],
        &[(Some("https"), 443)],
    ),
    t(
        "kube-dns",
        &[
            ("k8s-app", "kube-dns"),
            ("kubernetes.io/cluster-service", "true"),
            ("kubernetes.io/name", "CoreDNS"),
        ],
        &[
            (Some("dns"), 53),
            (Some("dns-tcp"), 53),
            (Some("metrics"), 9153),
        ],
    ),
    t(
        "ingress-nginx-controller",
        &[
            ("app.kubernetes.io/component", "controller"),
            ("app.kubernetes.io/instance", "ingress-nginx"),
            ("app.kubernetes.io/name", "ingress-nginx"),
            HELM,
        ],
        &[(Some("http"), 80), (Some("https"), 443)],
    ),
    t(
        "cert-manager-webhook",
        &[
            ("app.kubernetes.io/component", "webhook"),
            ("app.kubernetes.io/instance", "cert-manager"),
            ("app.kubernetes.io/name", "webhook"),
            HELM,
        ],
        &[(Some("https"), 443)],
    ),
    t(
        "redis-master",
        &[
            ("app.kubernetes.io/component", "master"),
            ("app.kubernetes.io/instance", "redis"),
            ("app.kubernetes.io/name", "redis"),
            HELM,
        ],
        &[(Some("tcp-redis"), 6379)],
    ),
    t(
        "postgresql",
        &[
            ("app.kubernetes.io/component", "primary"),
            ("app.kubernetes.io/instance", "postgresql"),
            ("app.kubernetes.io/name", "postgresql"),
            HELM,
        ],
        &[(Some("tcp-postgresql"), 5432)],
    ),
    t(
        "argocd-server",
        &[
            ("app.kubernetes.io/component", "server"),
            ("app.kubernetes.io/name", "argocd-server"),
            ("app.kubernetes.io/part-of", "argocd"),
        ],
        &[(Some("http"), 80), (Some("https"), 443)],
    ),
    Template {
        annotations: &[
            ("prometheus.io/port", "8080"),
            ("prometheus.io/scrape", "true"),
        ],
        ..t(
            "checkout",
            &[
                ("app", "checkout"),
                ("app.kubernetes.io/name", "checkout"),
                ("app.kubernetes.io/version", "1.4.2"),
                ("team", "payments"),
            ],
            &[(Some("http"), 8080), (Some("grpc"), 9000)],
        )
    },
    t(
        "frontend",
        &[("app", "frontend"), ("tier", "web")],
        &[(None, 80)],
    ),
    t(
        "orders-api",
        &[
            ("app.kubernetes.io/name", "orders"),
            ("app.kubernetes.io/component", "api"),
        ],
        &[(Some("http"), 8080)],
    ),
];

fn snapshot(t: &Template, i: usize) -> ServiceSnapshot {
    let map = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    ServiceSnapshot {
        // Distinct names and namespaces; the chart-given names stay recognisable.
        name: if i < 100 {
            t.name.to_string()
        } else {
            format!("{}-{i}", t.name)
        },
        namespace: format!("team-{}", i % 40),
        labels: map(t.labels),
        annotations: map(t.annotations),
        service_type: "ClusterIP".to_string(),
        cluster_ip: Some(if t.headless {
            "None".to_string()
        } else {
            format!("10.96.{}.{}", i / 250, i % 250)
        }),
        ports: t
            .ports
            .iter()
            .map(|(name, port)| ServicePort {
                name: name.map(str::to_string),
                port: *port,
                target_port: Some(port.to_string()),
                protocol: "TCP".to_string(),
                app_protocol: None,
            })
            .collect(),
        ..Default::default()
    }
}

/// 10,000 Services: one in three from a backend family, the rest everyday workloads.
fn services() -> Vec<ServiceSnapshot> {
    (0..SERVICES)
        .map(|i| {
            if i % 3 == 0 {
                snapshot(&BACKENDS[(i / 3) % BACKENDS.len()], i)
            } else {
                snapshot(&EVERYDAY[i % EVERYDAY.len()], i)
            }
        })
        .collect()
}

fn to_sdk(s: &ServiceSnapshot) -> detector_sdk::Service {
    detector_sdk::Service {
        name: s.name.clone(),
        namespace: s.namespace.clone(),
        labels: s
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        annotations: s
            .annotations
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        service_type: s.service_type.clone(),
        cluster_ip: s.cluster_ip.clone(),
        headless: s.headless(),
        ports: s
            .ports
            .iter()
            .map(|p| detector_sdk::ServicePort {
                name: p.name.clone(),
                port: p.port,
                target_port: p.target_port.clone(),
                protocol: p.protocol.clone(),
                app_protocol: p.app_protocol.clone(),
            })
            .collect(),
        cluster_domain: DOMAIN.to_string(),
    }
}

fn load(cfg: &RuntimeConfig) -> DetectorSet {
    let (set, errors) = DetectorSet::load(cfg, None).unwrap();
    assert!(errors.is_empty(), "{errors:?}");
    set
}

fn detect_pass(c: &mut Criterion) {
    let services = services();
    let sdk_services: Vec<_> = services.iter().map(to_sdk).collect();
    let natives = native_detectors();
    let mut set = load(&RuntimeConfig::default());
    let wasm_names: Vec<String> = set.detectors().into_iter().map(|d| d.info.name).collect();
    let native_names: Vec<&str> = natives.iter().map(|(n, _)| *n).collect();
    assert_eq!(
        wasm_names, native_names,
        "bundled detectors and the bench's native list differ: add the new crate to \
         host/runtime/Cargo.toml [dev-dependencies] and guest-detectors/sdk/tests/native/mod.rs"
    );
    // Warm up (the first thousand calls of a process are slower).
    for s in services.iter().take(2_000) {
        black_box(set.detect(s, DOMAIN));
    }

    let mut group = c.benchmark_group("detect_10k_services_all_detectors");
    group.sample_size(10);
    group.throughput(Throughput::Elements(SERVICES as u64));
    group.bench_function("wasm", |b| {
        b.iter(|| {
            for s in &services {
                black_box(set.detect(black_box(s), DOMAIN));
            }
        })
    });
    group.bench_function("native", |b| {
        b.iter(|| {
            for s in &sdk_services {
                for (_, detect) in &natives {
                    black_box(detect(black_box(s)));
                }
            }
        })
    });
    group.finish();
}

/// The validation gate over what the bundled detectors answered for the 10,000 Services:
/// time per matched fragment (issue 9: under 1 µs), with a trusted namespace so the
/// credential path runs too.
fn gate(c: &mut Criterion) {
    use dynamic_toolset_core::gate::{self, Grants, Policy};
    let services = services();
    let mut set = load(&RuntimeConfig::default());
    let infos: Vec<_> = set.detectors().into_iter().map(|d| d.info).collect();
    let grants = Grants::from_infos(&infos);
    let mut policy = Policy::baseline(DOMAIN);
    policy.credential_namespaces.insert("monitoring".into());
    let detected: Vec<_> = services.iter().map(|s| set.detect(s, DOMAIN)).collect();
    let fragments: usize = detected
        .iter()
        .flat_map(|d| &d.verdicts)
        .filter_map(|v| match &v.outcome {
            Ok(dynamic_toolset_core::Detection::Matched(f)) => Some(f.len()),
            _ => None,
        })
        .sum();
    // Only Services with a match do any work; screen just those (the others are a loop
    // over their verdicts, measured too but negligible).
    let matched: Vec<(usize, _)> = detected
        .into_iter()
        .enumerate()
        .filter(|(_, d)| {
            d.verdicts
                .iter()
                .any(|v| matches!(&v.outcome, Ok(dynamic_toolset_core::Detection::Matched(_))))
        })
        .collect();
    let mut refused = 0;
    for (i, d) in &matched {
        let mut d = d.clone();
        gate::screen(&services[*i], &mut d, &grants, &policy);
        refused += d.gate.iter().filter(|n| n.refused()).count();
    }
    println!(
        "gate: {fragments} fragments from {} matched Services, {refused} refused",
        matched.len()
    );
    let mut group = c.benchmark_group("gate_fragments_of_10k_services");
    group.sample_size(20);
    group.throughput(Throughput::Elements(fragments as u64));
    group.bench_function("screen", |b| {
        b.iter_batched(
            || matched.clone(),
            |mut batch| {
                for (i, d) in batch.iter_mut() {
                    gate::screen(&services[*i], d, &grants, &policy);
                }
                // Returned: criterion drops it outside the measurement.
                batch
            },
            criterion::BatchSize::LargeInput,
        )
    });
    group.finish();
}

fn startup(c: &mut Criterion) {
    let mut group = c.benchmark_group("startup_load_all_bundled");
    group.sample_size(10);
    let compile = RuntimeConfig {
        precompiled: false,
        ..RuntimeConfig::default()
    };
    group.bench_function(BenchmarkId::new("compile", BUNDLED.len()), |b| {
        b.iter(|| black_box(load(&compile)))
    });
    group.bench_function(
        BenchmarkId::new("embedded_precompiled", BUNDLED.len()),
        |b| b.iter(|| black_box(load(&RuntimeConfig::default()))),
    );
    let cache = std::env::temp_dir().join(format!("dt-bench-cache-{}", std::process::id()));
    let cached = RuntimeConfig {
        cache_dir: Some(cache.clone()),
        precompiled: false,
        ..RuntimeConfig::default()
    };
    drop(load(&cached)); // fill the cache
    group.bench_function(BenchmarkId::new("precompiled_cache", BUNDLED.len()), |b| {
        b.iter(|| black_box(load(&cached)))
    });
    group.finish();
    let _ = std::fs::remove_dir_all(cache);
}

/// Per-detector figures: wasm from the runtime's own stats, native timed the same way.
fn per_detector_table() {
    let services = services();
    let sdk_services: Vec<_> = services.iter().map(to_sdk).collect();
    let mut set = load(&RuntimeConfig::default());
    for s in &services {
        black_box(set.detect(s, DOMAIN));
    }
    // Fresh set for measurement, after warm-up of the code paths.
    let mut set = load(&RuntimeConfig::default());
    let start = Instant::now();
    for s in &services {
        black_box(set.detect(s, DOMAIN));
    }
    let wasm_pass = start.elapsed();
    let natives = native_detectors();
    let mut native_total = Duration::ZERO;
    println!();
    println!(
        "per detector over {SERVICES} Services (wasm: guest call on a reused instance, from stats())"
    );
    println!(
        "{:<16} {:>8} {:>8} {:>8} {:>12} {:>12} {:>12}",
        "detector", "matched", "declined", "unrel.", "wasm us/svc", "max wasm us", "native us/svc"
    );
    for (stats, (name, detect)) in set.stats().iter().zip(&natives) {
        let start = Instant::now();
        for s in &sdk_services {
            black_box(detect(black_box(s)));
        }
        let native = start.elapsed();
        native_total += native;
        let per = |d: Duration| d.as_secs_f64() * 1e6 / SERVICES as f64;
        println!(
            "{:<16} {:>8} {:>8} {:>8} {:>12.3} {:>12.1} {:>12.3}",
            name,
            stats.matched,
            stats.declined,
            stats.unrelated,
            per(stats.total_time),
            stats.max_time.as_secs_f64() * 1e6,
            per(native)
        );
        assert_eq!(stats.failures.total(), 0, "{stats:?}");
    }
    let n = natives.len() as f64;
    println!(
        "whole pass {SERVICES} x {} detectors: wasm {:.1} ms ({:.3} us per Service per detector), native {:.1} ms ({:.3} us)",
        natives.len(),
        wasm_pass.as_secs_f64() * 1e3,
        wasm_pass.as_secs_f64() * 1e6 / SERVICES as f64 / n,
        native_total.as_secs_f64() * 1e3,
        native_total.as_secs_f64() * 1e6 / SERVICES as f64 / n,
    );
}

/// The floor: a guest whose `detect` returns `unrelated` at once (the `looper` test guest
/// on any Service not named "loop"), so the time is the call itself: lowering the Service
/// into the guest, the transition, lifting the answer, the host's checks.
fn call_floor() {
    let root =
        guest_build::find_workspace_root(std::path::Path::new(env!("CARGO_MANIFEST_DIR"))).unwrap();
    let opts = guest_build::Options {
        workspace_root: root,
        guests: vec![guest_build::GuestSpec::new("test-guest-", "looper")],
        show_progress: false,
    };
    let built = guest_build::build(&opts).unwrap();
    let dir = std::env::temp_dir().join(format!("dt-bench-floor-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(&built[0].path, dir.join("looper.wasm")).unwrap();
    let (mut set, errors) =
        DetectorSet::load_with(&RuntimeConfig::default(), false, &[dir.as_path()]).unwrap();
    assert!(errors.is_empty(), "{errors:?}");
    let services = services();
    for s in &services {
        black_box(set.detect(s, DOMAIN));
    }
    let start = Instant::now();
    for s in &services {
        black_box(set.detect(s, DOMAIN));
    }
    let elapsed = start.elapsed();
    println!(
        "call floor (guest returns unrelated at once): {:.3} us per call",
        elapsed.as_secs_f64() * 1e6 / SERVICES as f64
    );
    let _ = std::fs::remove_dir_all(dir);
}

criterion_group!(benches, detect_pass, gate, startup);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    per_detector_table();
    call_floor();
}
