//! The example Python detector (examples/detectors/kubernaut-context-py, built with
//! componentize-py) under the deny-by-default WASI of `wasi.rs`: it loads only when its
//! spec grants WASI (refused otherwise, naming the WASI import it called), answers, its
//! stdout/stderr reach the log tagged with its name and capped, it cannot read files, the
//! environment or the network, and the call deadline and memory limit hold.
//!
//! The sandbox tests use the detector's test-only variant (`sandbox_probe.py`), whose
//! `probe` setting makes it try what must be refused or misbehave.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use dynamic_toolset_core::{Detection, ServicePort, ServiceSnapshot};
use dynamic_toolset_runtime::{
    DetectorSet, DetectorSource, FailureKind, Limits, RuntimeConfig, Spec,
};
use guest_build::python;

fn workspace_root() -> PathBuf {
    guest_build::find_workspace_root(Path::new(env!("CARGO_MANIFEST_DIR"))).unwrap()
}

/// (detector, probe variant), built once per test binary (cached across runs).
fn components() -> &'static (PathBuf, PathBuf) {
    static BUILT: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    BUILT.get_or_init(|| {
        let built = python::build(&workspace_root(), &[python::DETECTOR, python::PROBE])
            .unwrap_or_else(|e| panic!("building the Python detector: {e}"));
        (built[0].clone(), built[1].clone())
    })
}

/// Memory a CPython instance needs (its linear memory starts near 20 MiB).
const PYTHON_MEMORY: usize = 64 << 20;

fn config() -> RuntimeConfig {
    RuntimeConfig {
        cache_dir: Some(Path::new(env!("CARGO_TARGET_TMPDIR")).join("python-cache")),
        ..RuntimeConfig::default()
    }
}

fn spec(path: &Path, wasi: bool, settings: serde_json::Value) -> Spec {
    Spec {
        origin: DetectorSource::File(path.to_path_buf()),
        sha256: None,
        settings: settings.as_object().cloned().unwrap_or_default(),
        limits: Limits {
            memory_limit_bytes: Some(PYTHON_MEMORY),
            ..Limits::default()
        },
        name: Some("kubernaut-context".into()),
        wasi,
    }
}

/// Every log line, as text, while `f` runs on this thread.
fn logged<R>(f: impl FnOnce() -> R) -> (R, String) {
    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buf = Buf::default();
    let writer = buf.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let r = tracing::subscriber::with_default(subscriber, f);
    let text = String::from_utf8_lossy(&buf.0.lock().unwrap()).into_owned();
    (r, text)
}

fn load(path: &Path, wasi: bool, settings: serde_json::Value) -> (DetectorSet, String) {
    let ((set, errors), log) =
        logged(|| DetectorSet::load_specs(&config(), vec![spec(path, wasi, settings)]).unwrap());
    assert!(errors.is_empty(), "{errors:#?}\n{log}");
    (set, log)
}

/// The fixture Service (examples/detectors/kubernaut-context-py/fixtures/).
fn context_api() -> ServiceSnapshot {
    ServiceSnapshot {
        name: "kubernaut-context-api".into(),
        namespace: "default".into(),
        service_type: "ClusterIP".into(),
        ports: vec![ServicePort {
            name: None,
            port: 8091,
            target_port: Some("8091".into()),
            protocol: "TCP".into(),
            app_protocol: None,
        }],
        labels: BTreeMap::new(),
        ..Default::default()
    }
}

#[test]
fn experiment() {
    let (detector, probe) = components();
    let r = logged(|| {
        DetectorSet::load_specs(
            &config(),
            vec![spec(detector, false, serde_json::json!({}))],
        )
        .unwrap()
    });
    eprintln!("no wasi: {:#?}\n{}", r.0.1, r.1);
    let (mut set, log) = load(detector, true, serde_json::json!({}));
    eprintln!("wasi log: {log}");
    let (d, log) = logged(|| set.detect(&context_api(), "cluster.local"));
    eprintln!("{d:#?}\n{log}");
    for mode in ["files", "env"] {
        let (_, log) = load(probe, true, serde_json::json!({"probe": mode}));
        eprintln!("{mode}: {log}");
    }
    for mode in [
        "socket", "resolve", "loop", "sleep", "allocate", "print", "raise",
    ] {
        let (mut set, _) = load(probe, true, serde_json::json!({"probe": mode}));
        let t = Instant::now();
        let (d, log) = logged(|| set.detect(&context_api(), "cluster.local"));
        eprintln!(
            "{mode} ({:?}): {:?}\n{log}",
            t.elapsed(),
            d.verdicts[0].outcome.as_ref().err()
        );
    }
    let _ = (Detection::Unrelated, FailureKind::Timeout, Duration::ZERO);
}
