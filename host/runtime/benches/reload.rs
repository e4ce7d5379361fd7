//! Reload time of a declared detector (issue 8): from a changed declaration to the new
//! version serving, without the file-watch interval (`detectors.reload_interval`, 2 s
//! by default) and the kubelet's ConfigMap refresh. Two parts: `prepare` (read, pin check,
//! compile or load from the on-disk cache, instantiate, `metadata`, `declares`,
//! `configure`), done off the hot path, and `swap`, the only part the detection worker
//! waits for. Run: `cargo bench -p dynamic-toolset-runtime --bench reload`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::path::{Path, PathBuf};

use criterion::{Criterion, criterion_group};
use dynamic_toolset_runtime::{DetectorSet, DetectorSource, Limits, RuntimeConfig, Spec};
use sha2::Digest as _;

fn versioned() -> PathBuf {
    let root = guest_build::find_workspace_root(Path::new(env!("CARGO_MANIFEST_DIR"))).unwrap();
    let built = guest_build::build(&guest_build::Options {
        workspace_root: root,
        guests: vec![guest_build::GuestSpec::new("test-guest-", "versioned")],
        show_progress: false,
    })
    .unwrap();
    built[0].path.clone()
}

fn spec(path: &Path, version: u64) -> Spec {
    Spec {
        origin: DetectorSource::File(path.to_path_buf()),
        sha256: Some(hex::encode(sha2::Sha256::digest(
            std::fs::read(path).unwrap(),
        ))),
        settings: serde_json::json!({ "version": version })
            .as_object()
            .cloned()
            .unwrap(),
        limits: Limits::default(),
        name: Some("versioned".into()),
        wasi: false,
    }
}

fn reload(c: &mut Criterion) {
    let path = versioned();
    let mut group = c.benchmark_group("reload_one_declared_detector");
    group.sample_size(10);
    for (label, cache) in [
        ("compile", None),
        (
            "cached",
            Some(std::env::temp_dir().join(format!("dt-reload-cache-{}", std::process::id()))),
        ),
    ] {
        let cfg = RuntimeConfig {
            cache_dir: cache.clone(),
            ..RuntimeConfig::default()
        };
        let (mut set, errors) = DetectorSet::load_specs(&cfg, vec![spec(&path, 1)]).unwrap();
        assert!(errors.is_empty(), "{errors:?}");
        let reloader = set.reloader();
        let mut version = 1;
        group.bench_function(format!("{label}/prepare_and_swap"), |b| {
            b.iter(|| {
                version += 1;
                let prepared = reloader.prepare(vec![spec(&path, version)]);
                let (report, errors) = set.swap(prepared);
                assert!(errors.is_empty() && report.loaded.len() == 1);
                black_box(report)
            })
        });
        group.bench_function(format!("{label}/swap_only"), |b| {
            b.iter_batched(
                || {
                    version += 1;
                    reloader.prepare(vec![spec(&path, version)])
                },
                |prepared| black_box(set.swap(prepared)),
                criterion::BatchSize::PerIteration,
            )
        });
        if let Some(dir) = cache {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
    group.finish();
}

criterion_group!(benches, reload);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}
