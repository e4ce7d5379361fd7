//! Hostile guests (tests/guests/*) loaded next to the bundled detectors: every failure is
//! reported with its kind and the detector's name, the failing detector works again on the
//! next call (re-instantiated), the other detectors' verdicts stand, and bad files give
//! load errors naming the file.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use dynamic_toolset_core::{Detection, ServicePort, ServiceSnapshot, Verdict};
use dynamic_toolset_runtime::{
    CodeOrigin, DetectorSet, DetectorSource, Error, FailureKind, RuntimeConfig, bundled::BUNDLED,
};

fn workspace_root() -> PathBuf {
    guest_build::find_workspace_root(Path::new(env!("CARGO_MANIFEST_DIR"))).unwrap()
}

/// Builds every test guest once per test binary.
fn test_guests() -> &'static BTreeMap<String, PathBuf> {
    static BUILT: OnceLock<BTreeMap<String, PathBuf>> = OnceLock::new();
    BUILT.get_or_init(|| {
        let root = workspace_root();
        let guests = guest_build::discover(&root.join("tests/guests"), "test-guest-", &[]).unwrap();
        let opts = guest_build::Options {
            workspace_root: root,
            guests,
            show_progress: false,
        };
        let built = guest_build::build(&opts).unwrap_or_else(|e| panic!("{e}"));
        built.into_iter().map(|g| (g.name, g.path)).collect()
    })
}

/// A fresh plugin directory holding the named test guests (plus extra raw files).
fn plugin_dir(tag: &str, guests: &[&str], extra: &[(&str, &[u8])]) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("plugins-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for name in guests {
        let src = &test_guests()[*name];
        std::fs::copy(src, dir.join(format!("{name}.wasm"))).unwrap();
    }
    for (file, bytes) in extra {
        std::fs::write(dir.join(file), bytes).unwrap();
    }
    dir
}

/// Compiled components are shared by the tests through the cache (debug builds compile
/// slowly).
fn config() -> RuntimeConfig {
    RuntimeConfig {
        cache_dir: Some(Path::new(env!("CARGO_TARGET_TMPDIR")).join("detector-cache")),
        ..RuntimeConfig::default()
    }
}

const HOSTILE: &[&str] = &["looper", "hog", "panicker", "oversized", "bad-output"];

fn load_hostile(tag: &str) -> DetectorSet {
    let _ = tracing_subscriber::fmt().with_test_writer().try_init();
    let dir = plugin_dir(tag, HOSTILE, &[]);
    let (set, errors) = DetectorSet::load(&config(), Some(&dir)).unwrap();
    assert!(errors.is_empty(), "{errors:#?}");
    set
}

fn service(name: &str) -> ServiceSnapshot {
    ServiceSnapshot {
        name: name.to_string(),
        namespace: "monitoring".to_string(),
        labels: BTreeMap::from([
            (
                "app.kubernetes.io/name".to_string(),
                "prometheus".to_string(),
            ),
            ("app.kubernetes.io/instance".to_string(), "kps".to_string()),
        ]),
        annotations: BTreeMap::new(),
        service_type: "ClusterIP".to_string(),
        cluster_ip: Some("10.96.0.20".to_string()),
        ports: vec![ServicePort {
            name: Some("http-web".to_string()),
            port: 9090,
            target_port: Some("9090".to_string()),
            protocol: "TCP".to_string(),
            app_protocol: None,
        }],
        ..Default::default()
    }
}

fn verdict<'a>(verdicts: &'a [Verdict], detector: &str) -> &'a Verdict {
    verdicts
        .iter()
        .find(|v| v.detector == detector)
        .unwrap_or_else(|| panic!("no verdict from {detector}"))
}

fn failure(verdicts: &[Verdict], detector: &str) -> (FailureKind, String) {
    let v = verdict(verdicts, detector);
    let failure = v
        .outcome
        .clone()
        .expect_err(&format!("{detector} should fail"));
    let msg = failure.to_string();
    eprintln!("{detector}: {msg}");
    let kind = failure.kind;
    assert!(
        msg.contains(&format!("detector `{detector}`")),
        "message does not name the detector: {msg}"
    );
    (kind, msg)
}

/// Every detector other than `except` answered (no failure).
fn others_ok(verdicts: &[Verdict], except: &str) {
    for v in verdicts.iter().filter(|v| v.detector != except) {
        assert!(v.outcome.is_ok(), "{} failed: {:?}", v.detector, v.outcome);
    }
}

/// The baseline: what every detector says of `svc` when nothing misbehaves.
fn baseline(set: &mut DetectorSet, svc: &ServiceSnapshot) -> Vec<Verdict> {
    set.detect(svc, "cluster.local").verdicts
}

fn assert_recovers(set: &mut DetectorSet, detector: &str) {
    let v = set.detect(&service("calm"), "cluster.local");
    assert_eq!(
        verdict(&v.verdicts, detector).outcome,
        Ok(Detection::Unrelated),
        "{detector} did not recover"
    );
    let stats = set.stats();
    let s = stats.iter().find(|s| s.detector == detector).unwrap();
    assert_eq!(s.reinstantiations, 1, "{s:?}");
}

#[test]
fn verdicts_cover_every_detector_in_name_order() {
    let mut set = load_hostile("order");
    let names: Vec<String> = set.detectors().into_iter().map(|d| d.info.name).collect();
    for name in HOSTILE {
        assert!(names.contains(&name.to_string()), "{names:?}");
    }
    for (bundled, _) in BUNDLED {
        assert!(
            names.contains(&bundled.to_string()),
            "{bundled} missing from {names:?}"
        );
    }
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
    let verdicts = baseline(&mut set, &service("calm"));
    let order: Vec<&str> = verdicts.iter().map(|v| v.detector.as_str()).collect();
    assert_eq!(order, names.iter().map(String::as_str).collect::<Vec<_>>());
    others_ok(&verdicts, "");
}

#[test]
fn endless_loop_times_out_and_recovers() {
    // What the other detectors say of this Service, from a set without the looper.
    let calm_dir = plugin_dir("loop-baseline", &["hog", "panicker"], &[]);
    let (mut calm, errors) = DetectorSet::load(&config(), Some(&calm_dir)).unwrap();
    assert!(errors.is_empty(), "{errors:#?}");
    let expected = baseline(&mut calm, &service("loop"));
    let mut set = load_hostile("loop");
    let start = Instant::now();
    let v = set.detect(&service("loop"), "cluster.local").verdicts;
    let elapsed = start.elapsed();
    let (kind, msg) = failure(&v, "looper");
    assert_eq!(kind, FailureKind::Timeout, "{msg}");
    assert!(msg.contains("deadline"), "{msg}");
    assert!(elapsed < Duration::from_secs(2), "took {elapsed:?}");
    others_ok(&v, "looper");
    // Other detectors' verdicts are exactly what they were before.
    for b in &expected {
        assert_eq!(verdict(&v, &b.detector), b);
    }
    assert_recovers(&mut set, "looper");
    let stats = set.stats();
    let s = stats.iter().find(|s| s.detector == "looper").unwrap();
    assert_eq!(s.failures.timeout, 1);
    assert!(s.max_time >= Duration::from_millis(100), "{s:?}");
}

#[test]
fn unbounded_memory_is_reported_as_out_of_memory() {
    let mut set = load_hostile("hog");
    let v = set.detect(&service("hog"), "cluster.local").verdicts;
    let (kind, msg) = failure(&v, "hog");
    assert_eq!(kind, FailureKind::OutOfMemory, "{msg}");
    assert!(msg.contains("16 MiB"), "{msg}");
    others_ok(&v, "hog");
    assert_recovers(&mut set, "hog");
    assert_eq!(
        set.stats()
            .iter()
            .find(|s| s.detector == "hog")
            .unwrap()
            .failures
            .out_of_memory,
        1
    );
}

#[test]
fn panic_message_reaches_the_verdict() {
    let mut set = load_hostile("panic");
    let v = set.detect(&service("panic"), "cluster.local").verdicts;
    let (kind, msg) = failure(&v, "panicker");
    assert_eq!(kind, FailureKind::Trap, "{msg}");
    assert!(
        msg.contains("boom: panicker refuses monitoring/panic"),
        "{msg}"
    );
    others_ok(&v, "panicker");
    assert_recovers(&mut set, "panicker");
}

#[test]
fn oversized_output_is_refused() {
    let mut set = load_hostile("oversized");
    let v = set.detect(&service("many"), "cluster.local").verdicts;
    let (kind, msg) = failure(&v, "oversized");
    assert_eq!(kind, FailureKind::InvalidOutput, "{msg}");
    assert!(msg.contains("100 fragments (limit 32)"), "{msg}");
    others_ok(&v, "oversized");

    let v = set.detect(&service("large"), "cluster.local").verdicts;
    let (kind, msg) = failure(&v, "oversized");
    assert_eq!(kind, FailureKind::InvalidOutput, "{msg}");
    assert!(msg.contains("bytes of fragments (limit 262144)"), "{msg}");

    let v = set.detect(&service("calm"), "cluster.local").verdicts;
    assert_eq!(verdict(&v, "oversized").outcome, Ok(Detection::Unrelated));
    let stats = set.stats();
    let s = stats.iter().find(|s| s.detector == "oversized").unwrap();
    assert_eq!(s.failures.invalid_output, 2);
    // Invalid output is not a trap: the instance is kept.
    assert_eq!(s.reinstantiations, 0);
}

#[test]
fn invalid_fragments_name_the_field() {
    let mut set = load_hostile("bad-output");
    for (name, expected) in [
        ("bad-json", "fragment[0].config is not valid JSON"),
        (
            "not-object",
            "fragment[0].config is JSON array where an object is required",
        ),
        (
            "bad-endpoint",
            "fragment[0].endpoint is not an http:// or https:// URL",
        ),
        ("empty-toolset", "fragment[0].toolset is empty"),
    ] {
        let v = set.detect(&service(name), "cluster.local").verdicts;
        let (kind, msg) = failure(&v, "bad-output");
        assert_eq!(kind, FailureKind::InvalidOutput, "{msg}");
        assert!(msg.contains(expected), "{name}: {msg}");
        others_ok(&v, "bad-output");
    }
    let v = set.detect(&service("good"), "example.org").verdicts;
    let Ok(Detection::Matched(fragments)) = &verdict(&v, "bad-output").outcome else {
        panic!("good should match: {:?}", verdict(&v, "bad-output"));
    };
    assert_eq!(
        fragments[0].endpoint,
        "http://good.monitoring.svc.example.org:3100"
    );
    assert_eq!(
        fragments[0].config["api_url"],
        "http://good.monitoring.svc.example.org:3100"
    );
}

fn error_for<'a>(errors: &'a [Error], file: &str) -> &'a Error {
    errors
        .iter()
        .find(|e| matches!(e.origin(), Some(DetectorSource::File(p)) if p.file_name().unwrap() == file))
        .unwrap_or_else(|| panic!("no load error for {file}: {errors:#?}"))
}

#[test]
fn bad_files_give_named_load_errors() {
    let prometheus = BUNDLED.iter().find(|(n, _)| *n == "prometheus").unwrap().1;
    let dir = plugin_dir(
        "bad-files",
        &["wit-v2", "metadata-trap", "panicker"],
        &[
            ("core.wasm", b"\0asm\x01\0\0\0"),
            ("random.wasm", b"this is not webassembly at all"),
            ("empty-component.wasm", b"\0asm\x0d\0\x01\0"),
            ("prometheus-copy.wasm", prometheus),
            ("notes.txt", b"ignored: not *.wasm"),
        ],
    );
    let (mut set, errors) = DetectorSet::load(&config(), Some(&dir)).unwrap();
    for e in &errors {
        eprintln!("load error: {e}");
    }
    assert_eq!(errors.len(), 6, "{errors:#?}");
    let text = |file| {
        let e = error_for(&errors, file);
        let s = e.to_string();
        assert!(s.contains(file), "error does not name {file}: {s}");
        s
    };
    assert!(text("core.wasm").contains("core WebAssembly module, not a component"));
    assert!(text("random.wasm").contains("not a WebAssembly file"));
    assert!(
        text("empty-component.wasm")
            .contains("does not export dynamic-toolset:detector/detector@1.x")
    );
    let v2 = text("wit-v2.wasm");
    assert!(
        v2.contains("built against dynamic-toolset:detector 2.0.0; this host supports 1.x"),
        "{v2}"
    );
    let meta = text("metadata-trap.wasm");
    assert!(meta.contains("metadata() failed (trap)"), "{meta}");
    assert!(meta.contains("metadata-trap has no metadata"), "{meta}");
    let dup = text("prometheus-copy.wasm");
    assert!(
        dup.contains("`prometheus` is already taken by bundled detector `prometheus`"),
        "{dup}"
    );

    // The good plugin and all bundled detectors still loaded, and the bundled prometheus
    // is the one that kept the name.
    let loaded = set.detectors();
    assert_eq!(loaded.len(), BUNDLED.len() + 1);
    let prom = loaded.iter().find(|d| d.info.name == "prometheus").unwrap();
    assert_eq!(
        prom.source,
        DetectorSource::Bundled("prometheus".to_string())
    );
    assert_eq!(prom.sha256.len(), 64);
    let panicker = loaded.iter().find(|d| d.info.name == "panicker").unwrap();
    assert_eq!(
        panicker.source,
        DetectorSource::File(dir.join("panicker.wasm"))
    );
    let v = set.detect(&service("calm"), "cluster.local").verdicts;
    assert_eq!(v.len(), BUNDLED.len() + 1);
    others_ok(&v, "");
}

#[test]
fn missing_plugin_dir_is_an_error() {
    let missing = Path::new(env!("CARGO_TARGET_TMPDIR")).join("no-such-plugin-dir");
    let err = DetectorSet::load(&config(), Some(&missing)).err().unwrap();
    assert!(format!("{err:#}").contains("no-such-plugin-dir"), "{err:#}");
}

#[test]
fn bundled_detectors_load_cleanly() {
    assert!(BUNDLED.iter().any(|(n, _)| *n == "prometheus"));
    let (set, errors) = DetectorSet::load(&config(), None).unwrap();
    assert!(errors.is_empty(), "{errors:#?}");
    let names: Vec<String> = set.detectors().into_iter().map(|d| d.info.name).collect();
    let mut bundled: Vec<String> = BUNDLED.iter().map(|(n, _)| n.to_string()).collect();
    bundled.sort();
    assert_eq!(names, bundled);
}

#[test]
fn precompiled_cache_is_written_and_reused() {
    let cache =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("cache-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&cache);
    // The bundled detectors go through the cache too when their embedded precompiled code
    // is turned off (see `embedded_bundled_detectors_leave_the_cache_to_files`).
    let cfg = RuntimeConfig {
        cache_dir: Some(cache.clone()),
        precompiled: false,
        ..RuntimeConfig::default()
    };
    let dir = plugin_dir("cache", &["panicker"], &[]);
    let (first, errors) = DetectorSet::load(&cfg, Some(&dir)).unwrap();
    assert!(errors.is_empty(), "{errors:#?}");
    let files: Vec<_> = std::fs::read_dir(&cache)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(files.len(), BUNDLED.len() + 1, "{files:?}");
    assert!(files.iter().all(|f| f.ends_with(".cwasm")), "{files:?}");
    // Every cached file is named after the sha256 of its component.
    for d in first.detectors() {
        assert!(
            files.iter().any(|f| f.starts_with(&d.sha256)),
            "{} not cached",
            d.info.name
        );
    }
    drop(first);

    // A corrupt cache entry is ignored (recompiled), not fatal.
    let victim = cache.join(&files[0]);
    std::fs::write(&victim, b"garbage").unwrap();
    let (mut second, errors) = DetectorSet::load(&cfg, Some(&dir)).unwrap();
    assert!(errors.is_empty(), "{errors:#?}");
    assert_eq!(second.detectors().len(), BUNDLED.len() + 1);
    let v = second.detect(&service("panic"), "cluster.local").verdicts;
    assert_eq!(failure(&v, "panicker").0, FailureKind::Trap);
    assert!(
        std::fs::read(&victim).unwrap().len() > 1000,
        "corrupt entry not rewritten"
    );
}

/// Bundled detectors load from the code precompiled into the binary and never touch the
/// on-disk cache; a plugin file is compiled once, cached, and read from the cache next time.
#[test]
fn embedded_bundled_detectors_leave_the_cache_to_files() {
    let cache = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("embedded-cache-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&cache);
    let cfg = RuntimeConfig {
        cache_dir: Some(cache.clone()),
        ..RuntimeConfig::default()
    };
    let dir = plugin_dir("embedded-cache", &["panicker"], &[]);
    let origins = |set: &DetectorSet| -> BTreeMap<String, CodeOrigin> {
        set.detectors()
            .into_iter()
            .map(|d| (d.info.name, d.code))
            .collect()
    };
    let (first, errors) = DetectorSet::load(&cfg, Some(&dir)).unwrap();
    assert!(errors.is_empty(), "{errors:#?}");
    let first = origins(&first);
    assert_eq!(first.len(), BUNDLED.len() + 1);
    assert_eq!(first["panicker"], CodeOrigin::Compiled);
    assert!(
        first
            .iter()
            .all(|(name, code)| name == "panicker" || *code == CodeOrigin::Embedded),
        "{first:?}"
    );
    let files = std::fs::read_dir(&cache).unwrap().count();
    assert_eq!(files, 1, "only the plugin is cached");

    let (second, errors) = DetectorSet::load(&cfg, Some(&dir)).unwrap();
    assert!(errors.is_empty(), "{errors:#?}");
    let second = origins(&second);
    assert_eq!(second["panicker"], CodeOrigin::Cache);
    assert_eq!(
        second
            .values()
            .filter(|c| **c == CodeOrigin::Embedded)
            .count(),
        BUNDLED.len()
    );
    let _ = std::fs::remove_dir_all(cache);
}

#[test]
fn timeouts_respect_the_configured_deadline() {
    let dir = plugin_dir("deadline", &["looper"], &[]);
    let cfg = RuntimeConfig {
        call_deadline: Duration::from_millis(20),
        epoch_tick: Duration::from_millis(2),
        ..config()
    };
    let (mut set, errors) = DetectorSet::load_with(&cfg, false, &[&dir]).unwrap();
    assert!(errors.is_empty(), "{errors:#?}");
    let start = Instant::now();
    let v = set.detect(&service("loop"), "cluster.local").verdicts;
    let elapsed = start.elapsed();
    assert_eq!(v.len(), 1);
    let (kind, msg) = failure(&v, "looper");
    assert_eq!(kind, FailureKind::Timeout);
    assert!(msg.contains("20ms"), "{msg}");
    assert!(elapsed >= Duration::from_millis(20), "{elapsed:?}");
    assert!(elapsed < Duration::from_millis(500), "{elapsed:?}");
}

#[test]
fn newer_minor_contract_version_is_accepted() {
    let dir = plugin_dir("minor", &["wit-v1-9"], &[]);
    let (mut set, errors) = DetectorSet::load_with(&config(), false, &[&dir]).unwrap();
    assert!(errors.is_empty(), "{errors:#?}");
    let v = set.detect(&service("calm"), "cluster.local").verdicts;
    assert_eq!(
        verdict(&v, "wit-v1-9").outcome,
        Ok(Detection::Declined(
            "built against contract 1.9.0".to_string()
        ))
    );
}

#[test]
fn first_contract_guest_runs_unchanged_on_this_host() {
    let dir = plugin_dir("v1-0", &["wit-v1-0"], &[]);
    let (mut set, errors) = DetectorSet::load(&config(), Some(&dir)).unwrap();
    assert!(errors.is_empty(), "{errors:#?}");
    let infos = set.detectors();
    let old = infos.iter().find(|d| d.info.name == "wit-v1-0").unwrap();
    // A 1.0 guest has neither `setup` nor `identify`, and declares no toolsets.
    assert!(
        !old.capabilities.setup && !old.capabilities.identify,
        "{old:?}"
    );
    assert_eq!(old.info.emits, None);
    // Bundled detectors are 1.1 guests with both.
    let prometheus = infos.iter().find(|d| d.info.name == "prometheus").unwrap();
    assert!(prometheus.capabilities.setup && prometheus.capabilities.identify);
    assert_eq!(
        prometheus.info.emits.as_ref().map(|e| e.toolsets.clone()),
        Some(vec!["prometheus/metrics".to_string()])
    );

    let v = set
        .detect(&service("old-prometheus"), "cluster.local")
        .verdicts;
    let Ok(Detection::Matched(fragments)) = &verdict(&v, "wit-v1-0").outcome else {
        panic!("{v:?}");
    };
    assert_eq!(fragments.len(), 1);
    assert_eq!(
        fragments[0].endpoint,
        "http://old-prometheus.monitoring.svc.cluster.local:9090"
    );
    assert_eq!(fragments[0].identification, None);
    others_ok(&v, "");
}

#[test]
fn second_contract_guest_runs_unchanged_on_this_host() {
    let dir = plugin_dir("v1-1", &["wit-v1-1"], &[]);
    let file = dir.join("wit-v1-1.wasm");
    let spec = declared(&file, "wit-v1-1", serde_json::json!({"port": 9091}));
    let (mut set, errors) = DetectorSet::load_specs(&config(), vec![spec]).unwrap();
    assert!(errors.is_empty(), "{errors:#?}");
    let info = set.detectors().into_iter().next().unwrap();
    // A 1.1 guest has `setup` and `identify`, not the 1.2 `http-apis`.
    assert!(info.capabilities.setup && info.capabilities.identify);
    assert!(!info.capabilities.http_apis);
    assert!(info.info.http_apis.is_empty());
    assert_eq!(
        info.info.emits.as_ref().map(|e| e.toolsets.clone()),
        Some(vec!["prometheus/metrics".to_string()])
    );

    // Configured (port 9091), it logs and matches; `identify` answers its candidate.
    let mut svc = service("second-prometheus");
    svc.ports[0].port = 9091;
    let v = set.detect(&svc, "cluster.local").verdicts;
    let Ok(Detection::Matched(fragments)) = &verdict(&v, "wit-v1-1").outcome else {
        panic!("{v:?}");
    };
    assert_eq!(
        fragments[0].endpoint,
        "http://second-prometheus.monitoring.svc.cluster.local:9091"
    );
    let id = fragments[0].identification.as_ref().unwrap();
    assert_eq!(
        id.candidates[0].fingerprint.path,
        "/api/v1/status/buildinfo"
    );

    // Its settings are checked by its own configure.
    let bad = declared(&file, "wit-v1-1", serde_json::json!({"port": "x"}));
    let (_, errors) = DetectorSet::load_specs(&config(), vec![bad]).unwrap();
    assert!(
        errors[0].to_string().contains("settings must be"),
        "{errors:?}"
    );
}

// --- Declared detectors (issue 8): pins, settings, names, limits, swaps ---------------

use dynamic_toolset_runtime::{Limits, Spec};

fn sha256_of(path: &Path) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(std::fs::read(path).unwrap()))
}

fn declared(path: &Path, name: &str, settings: serde_json::Value) -> Spec {
    Spec {
        origin: DetectorSource::File(path.to_path_buf()),
        sha256: Some(sha256_of(path)),
        settings: settings.as_object().cloned().unwrap_or_default(),
        limits: Limits::default(),
        name: Some(name.to_string()),
        wasi: false,
    }
}

fn labelled(name: &str) -> ServiceSnapshot {
    let mut s = service(name);
    s.labels.insert(
        "test.dynamic-toolset.io/backend".to_string(),
        "prometheus".to_string(),
    );
    s
}

fn instance_of(set: &mut DetectorSet, detector: &str, svc: &ServiceSnapshot) -> String {
    let v = set.detect(svc, "cluster.local").verdicts;
    match &verdict(&v, detector).outcome {
        Ok(Detection::Matched(f)) => f[0].instance.clone(),
        other => panic!("{other:?}"),
    }
}

#[test]
fn an_instance_that_replaces_a_trapped_one_runs_with_the_declared_settings() {
    let dir = plugin_dir("retrap", &["versioned"], &[]);
    let versioned = dir.join("versioned.wasm");
    let spec = declared(&versioned, "versioned", serde_json::json!({"version": 7}));
    let (mut set, errors) = DetectorSet::load_specs(&config(), vec![spec]).unwrap();
    assert!(errors.is_empty(), "{errors:#?}");
    let svc = labelled("prom");
    assert_eq!(
        instance_of(&mut set, "versioned", &svc),
        "monitoring/prom-v7"
    );

    let mut panics = labelled("prom");
    panics
        .labels
        .insert("test.dynamic-toolset.io/panic".into(), "true".into());
    let v = set.detect(&panics, "cluster.local").verdicts;
    let Err(failure) = &verdict(&v, "versioned").outcome else {
        panic!("{v:?}");
    };
    assert_eq!(failure.kind, FailureKind::Trap, "{failure:?}");
    // The fresh instance was configured with version 7, not left at its default (0).
    assert_eq!(
        instance_of(&mut set, "versioned", &svc),
        "monitoring/prom-v7"
    );
}

#[test]
fn declared_files_are_pinned_configured_and_named_or_refused_with_the_reason() {
    let dir = plugin_dir("declared", &["versioned", "wit-v1-0", "looper"], &[]);
    let versioned = dir.join("versioned.wasm");
    let old = dir.join("wit-v1-0.wasm");
    let mut wrong_pin = declared(&versioned, "versioned", serde_json::json!({"version": 1}));
    wrong_pin.sha256 = Some("0".repeat(64));
    let specs = vec![
        Spec::bundled("prometheus"),
        wrong_pin,
        declared(&versioned, "versioned", serde_json::json!({"version": "x"})),
        declared(&old, "wit-v1-0", serde_json::json!({"port": 1})),
        declared(
            &dir.join("looper.wasm"),
            "not-looper",
            serde_json::json!({}),
        ),
        Spec {
            origin: DetectorSource::File(dir.join("missing.wasm")),
            sha256: Some("1".repeat(64)),
            settings: serde_json::Map::new(),
            limits: Limits::default(),
            name: Some("missing".into()),
            wasi: false,
        },
    ];
    let (set, errors) = DetectorSet::load_specs(&config(), specs).unwrap();
    let names: Vec<String> = set.detectors().into_iter().map(|d| d.info.name).collect();
    assert_eq!(names, vec!["prometheus"], "{errors:#?}");
    let texts: Vec<String> = errors.iter().map(ToString::to_string).collect();
    let expect = [
        format!(
            "{}: sha256 mismatch: the declaration pins {}, the file has {}",
            versioned.display(),
            "0".repeat(64),
            sha256_of(&versioned)
        ),
        format!(
            "{}: refused its settings: settings.version must be a positive integer",
            versioned.display()
        ),
        format!(
            "{}: takes no settings (it does not export `setup`), but settings were given: port",
            old.display()
        ),
        format!(
            "{}: is declared as `not-looper` but calls itself `looper` (metadata().name)",
            dir.join("looper.wasm").display()
        ),
    ];
    for e in &expect {
        assert!(texts.contains(e), "missing {e:?} in {texts:#?}");
    }
    assert!(
        texts.iter().any(|t| t.starts_with(&format!(
            "{}: cannot read: ",
            dir.join("missing.wasm").display()
        ))),
        "{texts:#?}"
    );
    assert_eq!(errors.len(), 5, "{texts:#?}");
}

#[test]
fn declared_limits_apply_to_that_detector_only() {
    let dir = plugin_dir("declared-limits", &["looper"], &[]);
    let mut spec = declared(&dir.join("looper.wasm"), "looper", serde_json::json!({}));
    spec.limits.call_deadline = Some(Duration::from_millis(30));
    let (mut set, errors) = DetectorSet::load_specs(&config(), vec![spec]).unwrap();
    assert!(errors.is_empty(), "{errors:#?}");
    let (kind, msg) = failure(
        &set.detect(&service("loop"), "cluster.local").verdicts,
        "looper",
    );
    assert_eq!(kind, FailureKind::Timeout);
    assert!(msg.contains("30ms"), "{msg}");
}

#[test]
fn a_swap_replaces_versions_keeps_the_last_good_one_and_drops_the_undeclared() {
    let dir = plugin_dir("swap", &["versioned", "panicker"], &[]);
    let versioned = dir.join("versioned.wasm");
    let v1 = declared(&versioned, "versioned", serde_json::json!({"version": 1}));
    let panicker = declared(
        &dir.join("panicker.wasm"),
        "panicker",
        serde_json::json!({}),
    );
    let (mut set, errors) = DetectorSet::load_specs(&config(), vec![v1, panicker.clone()]).unwrap();
    assert!(errors.is_empty(), "{errors:#?}");
    let svc = labelled("prom");
    assert_eq!(
        instance_of(&mut set, "versioned", &svc),
        "monitoring/prom-v1"
    );

    // Version 2: swapped in; panicker no longer declared: dropped.
    let reloader = set.reloader();
    let prepared = reloader.prepare(vec![declared(
        &versioned,
        "versioned",
        serde_json::json!({"version": 2}),
    )]);
    let (report, errors) = set.swap(prepared);
    assert!(errors.is_empty(), "{errors:#?}");
    assert_eq!(report.loaded, vec!["versioned"]);
    assert_eq!(report.removed, vec!["panicker"]);
    assert_eq!(
        instance_of(&mut set, "versioned", &svc),
        "monitoring/prom-v2"
    );

    // A new version whose settings are refused: version 2 keeps running.
    let prepared = reloader.prepare(vec![declared(
        &versioned,
        "versioned",
        serde_json::json!({"version": 0}),
    )]);
    let (report, errors) = set.swap(prepared);
    assert_eq!(report.kept_last_good, vec!["versioned"]);
    assert!(
        errors[0].to_string().contains("refused its settings"),
        "{errors:#?}"
    );
    assert_eq!(
        instance_of(&mut set, "versioned", &svc),
        "monitoring/prom-v2"
    );
    // Declared with a wrong pin: the running version stays as well.
    let mut bad_pin = declared(&versioned, "versioned", serde_json::json!({"version": 3}));
    bad_pin.sha256 = Some("f".repeat(64));
    let (report, _) = set.swap(reloader.prepare(vec![bad_pin]));
    assert_eq!(report.kept_last_good, vec!["versioned"]);
    assert_eq!(
        instance_of(&mut set, "versioned", &svc),
        "monitoring/prom-v2"
    );
}
