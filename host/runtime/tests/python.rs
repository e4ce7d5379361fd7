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

use dynamic_toolset_core::{Detection, ServicePort, ServiceSnapshot, Verdict};
use dynamic_toolset_runtime::{
    DetectorFailure, DetectorSet, DetectorSource, Error, FailureKind, Limits, RuntimeConfig, Spec,
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

/// Memory given to the Python detector (it needs 13 MiB; see BENCHMARKS.md).
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

fn probe(mode: &str) -> (DetectorSet, String) {
    load(&components().1, true, serde_json::json!({ "probe": mode }))
}

fn detect(set: &mut DetectorSet, svc: &ServiceSnapshot) -> (Verdict, String) {
    let (mut d, log) = logged(|| set.detect(svc, "cluster.local"));
    assert_eq!(d.verdicts.len(), 1);
    (d.verdicts.remove(0), log)
}

fn failure(v: &Verdict) -> &DetectorFailure {
    v.outcome.as_ref().expect_err("the call should fail")
}

/// Log lines of the detector's own output (`target: detector`).
fn output_lines(log: &str) -> Vec<&str> {
    log.lines()
        .filter(|l| l.contains(" detector: ") && l.contains("detector=\"kubernaut-context\""))
        .collect()
}

#[test]
fn the_vendored_wit_is_the_contract() {
    let root = workspace_root();
    let vendored = std::fs::read_to_string(root.join(python::EXAMPLE_DIR).join("wit/detector.wit"));
    let contract = std::fs::read_to_string(root.join("wit/detector.wit"));
    assert_eq!(
        vendored.unwrap(),
        contract.unwrap(),
        "examples/detectors/kubernaut-context-py/wit/detector.wit differs from wit/detector.wit: copy it again"
    );
}

#[test]
fn without_wasi_it_is_refused_naming_the_wasi_import() {
    let (detector, _) = components();
    let ((set, errors), _) = logged(|| {
        DetectorSet::load_specs(
            &config(),
            vec![spec(detector, false, serde_json::json!({}))],
        )
        .unwrap()
    });
    assert!(set.detectors().is_empty());
    assert_eq!(errors.len(), 1, "{errors:#?}");
    let Error::Load { origin, reason } = &errors[0] else {
        panic!("{:?}", errors[0]);
    };
    assert_eq!(origin, &DetectorSource::File(detector.clone()));
    assert!(matches!(**reason, Error::NeedsWasi { .. }), "{reason:?}");
    let message = errors[0].to_string();
    assert!(
        message.starts_with(&format!("{}: calls WASI (`wasi:", detector.display())),
        "{message}"
    );
    assert!(message.contains("add `wasi: true`"), "{message}");
}

#[test]
fn bundled_detectors_never_get_wasi() {
    let mut bundled = Spec::bundled("prometheus");
    bundled.wasi = true;
    let (set, errors) = DetectorSet::load_specs(&config(), vec![bundled]).unwrap();
    assert!(set.detectors().is_empty());
    let message = errors[0].to_string();
    assert_eq!(
        message,
        "bundled detector `prometheus`: `wasi: true` is for declared detector files; bundled \
         detectors never get WASI"
    );
}

#[test]
fn with_wasi_it_loads_configures_and_matches_the_context_api() {
    let (detector, _) = components();
    let (mut set, log) = load(detector, true, serde_json::json!({}));
    let info = &set.detectors()[0];
    assert_eq!(info.info.name, "kubernaut-context");
    assert_eq!(info.info.backends, ["kubernaut"]);
    let emits = info.info.emits.as_ref().unwrap();
    assert_eq!(emits.toolsets, ["kubernaut/context"]);
    assert!(!emits.custom_toolsets);
    // Contract 1.2 `http-apis`: the Context API, checked at load.
    assert!(info.capabilities.http_apis);
    let apis = &info.info.http_apis;
    assert_eq!(apis.len(), 1);
    assert_eq!(apis[0].toolset, "kubernaut/context");
    assert_eq!(apis[0].paths, ["/api/v1/context/*"]);
    for path in [
        "/api/v1/context/action-history",
        "/api/v1/context/patterns/<signature>",
        "/api/v1/context/discover",
    ] {
        assert!(
            apis[0].instructions.contains(path),
            "{}",
            apis[0].instructions
        );
    }
    // configure's print reached the log, tagged with the detector and the stream.
    assert!(
        output_lines(&log).iter().any(|l| l.contains("INFO")
            && l.contains("kubernaut-context 0.1.0 (Python) ready: port 8091")
            && l.contains("stream=\"stdout\"")),
        "{log}"
    );

    let (v, log) = detect(&mut set, &context_api());
    let Ok(Detection::Matched(fragments)) = &v.outcome else {
        panic!("{v:?}\n{log}");
    };
    let f = &fragments[0];
    assert_eq!(
        (
            f.toolset.as_str(),
            f.backend.as_str(),
            f.instance.as_str(),
            f.rank
        ),
        (
            "kubernaut/context",
            "kubernaut",
            "default/kubernaut-context-api",
            200
        )
    );
    let base = "http://kubernaut-context-api.default.svc.cluster.local:8091";
    assert_eq!(f.endpoint, base);
    let health = f.health.as_ref().unwrap();
    assert_eq!(
        (health.port, health.path.as_str()),
        (8091, "/api/v1/context/health")
    );
    assert!(f.config.is_empty());
    // No commands: the host builds its toolset from the described API.
    assert_eq!(f.custom, None);
    assert!(
        output_lines(&log)
            .iter()
            .any(|l| l.contains("matched default/kubernaut-context-api on port 8091")),
        "{log}"
    );

    // Not the Context API: unrelated; the Context API without its port: declined.
    let mut other = context_api();
    other.name = "prometheus".into();
    assert_eq!(detect(&mut set, &other).0.outcome, Ok(Detection::Unrelated));
    let mut portless = context_api();
    portless.ports[0].port = 80;
    let (v, _) = detect(&mut set, &portless);
    assert_eq!(
        v.outcome,
        Ok(Detection::Declined(
            "Kubernaut Context API Service without TCP port 8091 (ports: 80)".into()
        ))
    );
}

#[test]
fn settings_are_checked_by_the_python_code() {
    let (detector, _) = components();
    let (mut set, _) = load(
        detector,
        true,
        serde_json::json!({"port": 9000, "service_names": ["context"]}),
    );
    let mut svc = context_api();
    svc.name = "context".into();
    svc.ports[0].port = 9000;
    let (v, _) = detect(&mut set, &svc);
    assert!(matches!(v.outcome, Ok(Detection::Matched(_))), "{v:?}");

    let ((_, errors), _) = logged(|| {
        DetectorSet::load_specs(
            &config(),
            vec![spec(detector, true, serde_json::json!({"prot": 8091}))],
        )
        .unwrap()
    });
    assert!(
        errors[0]
            .to_string()
            .ends_with("refused its settings: unknown setting `prot` (known: port, service_names)"),
        "{errors:?}"
    );
}

#[test]
fn output_reaches_the_log_capped_per_call() {
    let (mut set, _) = probe("print");
    let (v, log) = detect(&mut set, &context_api());
    assert!(v.outcome.is_ok(), "{v:?}");
    let lines = output_lines(&log);
    // 100 lines + the match line + one stderr line: the first 32 (the per-call cap) are
    // logged, the rest counted.
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.contains("stream=\"stdout\""))
            .count(),
        32,
        "{log}"
    );
    assert!(lines.iter().any(|l| l.contains("line 0 ")), "{log}");
    assert!(!lines.iter().any(|l| l.contains("line 32 ")), "{log}");
    assert!(
        log.lines()
            .any(|l| l.contains("log lines dropped (per-call cap)") && l.contains("dropped=70")),
        "{log}"
    );
    // The next call has a fresh budget.
    let (_, log) = detect(&mut set, &context_api());
    assert!(output_lines(&log).iter().any(|l| l.contains("line 0 ")));
}

#[test]
fn files_and_environment_are_not_there() {
    let (_, log) = probe("files");
    let lines = output_lines(&log);
    for what in [
        "open('/etc/passwd')",
        "listdir('/')",
        "listdir('.')",
        "open('/proc/self/environ')",
        "open('/tmp/x', 'w')",
    ] {
        let line = lines
            .iter()
            .find(|l| l.contains(&format!("probe {what} -> ")))
            .unwrap_or_else(|| panic!("no probe line for {what}:\n{log}"));
        assert!(line.contains("-> denied: FileNotFoundError"), "{line}");
    }

    let (_, log) = probe("env");
    let lines = output_lines(&log);
    assert!(
        lines.iter().any(|l| l.contains("probe environ -> {} ")),
        "{log}"
    );
    assert!(
        lines.iter().any(|l| l.contains("probe argv -> [] ")),
        "{log}"
    );
}

#[test]
fn python_has_no_socket_module() {
    // componentize-py's CPython has no `socket` module at all; the WASI sockets its libc
    // imports are denied by the host (see wasi.rs's unit tests).
    for mode in ["socket", "resolve"] {
        let (mut set, _) = probe(mode);
        let (v, _) = detect(&mut set, &context_api());
        let f = failure(&v);
        assert_eq!(f.kind, FailureKind::Trap);
        assert!(
            f.message
                .ends_with("after stderr: ModuleNotFoundError: No module named 'socket'"),
            "{}",
            f.message
        );
    }
}

#[test]
fn an_uncaught_exception_is_the_failure_message() {
    let (mut set, log) = probe("raise");
    drop(log);
    let (v, log) = detect(&mut set, &context_api());
    let f = failure(&v);
    assert_eq!(f.kind, FailureKind::Trap);
    assert_eq!(
        f.message,
        "trap: detector `kubernaut-context` trapped (wasm trap: wasm `unreachable` instruction \
         executed) after stderr: ValueError: boom from Python"
    );
    assert!(
        output_lines(&log).iter().any(|l| l.contains("WARN")
            && l.contains("Traceback")
            && l.contains("stream=\"stderr\"")),
        "{log}"
    );
}

#[test]
fn the_deadline_holds_for_loops_and_sleeps() {
    for mode in ["loop", "sleep"] {
        let (mut set, _) = probe(mode);
        let started = Instant::now();
        let (v, _) = detect(&mut set, &context_api());
        let took = started.elapsed();
        assert!(v.outcome.is_err(), "{mode}: {v:?}");
        let f = failure(&v);
        assert_eq!(f.kind, FailureKind::Timeout, "{mode}: {}", f.message);
        assert!(
            f.message.ends_with("exceeded its 100ms deadline"),
            "{}",
            f.message
        );
        assert!(took < Duration::from_secs(2), "{mode} took {took:?}");
        // The instance was discarded and a fresh one made; the next call is bounded too
        // (today the fresh instance is not configured again, so it answers; were
        // `configure` replayed, it would time out again).
        let started = Instant::now();
        let (v, _) = detect(&mut set, &context_api());
        assert!(started.elapsed() < Duration::from_secs(2), "{mode}: {v:?}");
        assert!(
            matches!(
                &v.outcome,
                Ok(Detection::Matched(_))
                    | Err(DetectorFailure {
                        kind: FailureKind::Timeout,
                        ..
                    })
            ),
            "{mode}: {v:?}"
        );
        assert!(set.stats()[0].reinstantiations >= 1);
    }
}

#[test]
fn the_memory_limit_holds() {
    let (mut set, _) = probe("allocate");
    let (v, _) = detect(&mut set, &context_api());
    let f = failure(&v);
    assert_eq!(f.kind, FailureKind::OutOfMemory, "{}", f.message);
    assert!(
        f.message.contains("exceeded its memory limit of 64 MiB"),
        "{}",
        f.message
    );

    // Below what CPython needs to start, it cannot even be instantiated.
    let mut small = spec(&components().0, true, serde_json::json!({}));
    small.limits.memory_limit_bytes = Some(4 << 20);
    let ((set, errors), _) = logged(|| DetectorSet::load_specs(&config(), vec![small]).unwrap());
    assert!(set.detectors().is_empty());
    let message = errors[0].to_string();
    assert!(
        message.contains("exceeded its memory limit of 4 MiB"),
        "{message}"
    );
}

#[test]
fn a_wasi_detector_can_be_called_from_any_thread() {
    // wasmtime-wasi blocks on tokio inside stdout writes: calls from inside a runtime must
    // neither panic nor deadlock.
    let (mut set, _) = load(&components().0, true, serde_json::json!({}));
    let current = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let v = current.block_on(async { set.detect(&context_api(), "cluster.local") });
    assert!(
        matches!(v.verdicts[0].outcome, Ok(Detection::Matched(_))),
        "{v:?}"
    );
    let multi = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .build()
        .unwrap();
    let (v, set) = multi.block_on(async move {
        let v = set.detect(&context_api(), "cluster.local");
        (v, set)
    });
    assert!(
        matches!(v.verdicts[0].outcome, Ok(Detection::Matched(_))),
        "{v:?}"
    );
    let v = multi.block_on(async move {
        tokio::spawn(async move {
            let mut set = set;
            set.detect(&context_api(), "cluster.local")
        })
        .await
        .unwrap()
    });
    assert!(
        matches!(v.verdicts[0].outcome, Ok(Detection::Matched(_))),
        "{v:?}"
    );
}
